"""Each format's reader on the real samples (tests/fixtures/exchange/) and on the variations
docs/ARCHITECTURE.md ("Export and import") lists, built from them: what is kept as chat turns, where each message
hangs, and what is noted as not carried."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime

import pytest

from chatapp.exchange import readers
from chatapp.exchange.neutral import Budget, ImportRefused, timestamp
from tests.exchange.conftest import (
    chatgpt_node,
    chatgpt_picture,
    chatgpt_with,
    pointer,
    sample,
    sample_bytes,
    zipped,
)


def read(data: bytes):
    return readers.read_upload(io.BytesIO(data), len(data))


def read_value(value):
    return read(json.dumps(value).encode())


def by_key(conversation):
    return {m.key: m for m in conversation.messages}


def test_chatgpt_keeps_what_was_shown_and_notes_tool_calls_and_their_output():
    source = read(sample_bytes("chatgpt-export.json"))
    assert source.format == "ChatGPT"
    assert len(source.conversations) == 2
    browsing, plain = source.conversations
    assert browsing.origin == "chatgpt:d6523d1e-7ec3-474f-a363-0e9dffdb3d93"
    assert [m.role for m in browsing.messages] == ["user", "assistant"] * 3
    # Each answer, written after tool calls and their outputs, follows its question itself.
    answers = [m for m in browsing.messages if m.role == "assistant"]
    questions = [m for m in browsing.messages if m.role == "user"]
    assert [a.parent for a in answers] == [q.key for q in questions]
    assert [q.parent for q in questions] == [None, answers[0].key, answers[1].key]
    assert all(a.model == "gpt-4" and a.route == "chatgpt" for a in answers)
    assert browsing.notes.counts == {"tool_call": 4, "tool_output": 5}
    assert any("browser" in e for e in browsing.notes.examples["tool_output"])
    # The empty hidden system message carried nothing: not worth a note.
    assert plain.notes.counts == {}
    assert plain.title == "Conversation 2"
    assert plain.current == plain.messages[-1].key
    assert plain.messages[0].created == datetime.fromtimestamp(1697373097.900124, UTC)


def test_chatgpt_keeps_both_branch_points_and_the_branch_shown():
    (conversation,) = read(sample_bytes("chatgpt-tree.json")).conversations
    messages = by_key(conversation)
    assert len(messages) == 11
    children: dict = {}
    for m in conversation.messages:
        children.setdefault(m.parent, []).append(m.key)
    # An edited prompt (two questions after the first answer), in the order they were written.
    assert children["bda8a275-886d-4f59-b38c-d7037144f0d5"] == [
        "aaa24023-b02f-4d49-b568-5856b41750c0",
        "aaa236a3-cdfc-4eb1-b5c5-790c6641f880",
    ]
    # A regenerated answer.
    assert children["aaa20127-b9e3-44f6-afbe-a2475838625a"] == [
        "d0d2a7df-d2fc-4df9-bf0a-1c5121e227ae",
        "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8",
    ]
    assert {messages[k].role for k in children[None]} == {"user"}
    assert conversation.current == "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8"
    story = next(m for m in conversation.messages if m.key.startswith("ada93f81"))
    assert story.status == "interrupted"  # ChatGPT's "in_progress"
    assert "still writing" in story.error_message


def test_open_webui_keeps_the_failed_version_and_reads_seconds_and_milliseconds():
    (conversation,) = read(sample_bytes("chat-export-branches.json")).conversations
    assert conversation.origin == "openwebui:265e6749-f3e4-4062-b2fc-59d4f573790f"
    assert conversation.title == "🦅 Arrested for Freedom?"
    assert len(conversation.messages) == 11
    assert conversation.current == "9292b728-95fe-43b5-8aa8-eca7ef52437b"
    failed = next(m for m in conversation.messages if m.key.startswith("38fc9200"))
    assert (failed.status, failed.error_message) == ("failed", "TypeError: Load failed")
    good = next(m for m in conversation.messages if m.key.startswith("9fbde16b"))
    assert failed.parent == good.parent
    # The failed version comes first, as childrenIds lists it.
    keys = [m.key for m in conversation.messages]
    assert keys.index(failed.key) < keys.index(good.key)
    assert good.model == "truepatriot"
    assert good.route == "openwebui"
    assert good.prompt_tokens == 1831
    assert good.completion_tokens == 457
    # The record's created_at is in seconds; the chat's timestamp in milliseconds: the same.
    assert conversation.created == datetime.fromtimestamp(1749614131, UTC)
    missing = [m for m in conversation.messages if m.role == "user" and m.created is None]
    assert len(missing) == 3  # placed after their parents by the importer


def test_times_in_seconds_milliseconds_microseconds_and_iso_are_the_same_moment():
    moment = datetime(2025, 6, 11, 4, 15, 31, tzinfo=UTC)
    seconds = moment.timestamp()
    assert timestamp(seconds) == moment
    assert timestamp(int(seconds * 1000)) == moment
    assert timestamp(int(seconds * 1_000_000)) == moment
    assert timestamp("2025-06-11T04:15:31Z") == moment
    assert timestamp("2025-06-11T06:15:31+02:00") == moment
    for nothing in (None, True, float("nan"), float("inf"), -5, 10**30, "yesterday", "", [1]):
        assert timestamp(nothing) is None


def test_open_webui_in_milliseconds_reads_the_same_times():
    record = sample("chat-export-branches.json")
    ms = copy.deepcopy(record)
    for message in ms[0]["chat"]["history"]["messages"].values():
        if message.get("timestamp"):
            message["timestamp"] *= 1000
    plain = read_value(record).conversations[0]
    fast = read_value(ms).conversations[0]
    assert [m.created for m in fast.messages] == [m.created for m in plain.messages]


def test_a_conversation_without_its_mapping_has_no_messages_and_the_file_still_reads():
    broken = {"title": "Corrupted entry", "id": "abc", "create_time": 1700000000.0}
    source = read_value([broken, *sample("chatgpt-tree.json")])
    assert [len(c.messages) for c in source.conversations] == [0, 11]


def test_a_parent_missing_from_the_mapping_leaves_its_child_at_the_start_noted():
    (tree,) = sample("chatgpt-tree.json")
    orphan = chatgpt_node(
        "orphan", "not-in-the-file", "user", {"content_type": "text", "parts": ["lost?"]}
    )
    conversation = read_value(chatgpt_with(tree, orphan)).conversations[0]
    assert by_key(conversation)["orphan"].parent is None
    assert conversation.notes.counts["dangling"] == 1


def test_hidden_messages_with_words_are_noted_and_their_children_keep_their_place():
    (tree,) = sample("chatgpt-tree.json")
    tree = copy.deepcopy(tree)
    root_system = "d38605d2-7b2c-43de-b044-22ce472c749b"
    instructions = chatgpt_node(
        "instructions",
        root_system,
        "user",
        {
            "content_type": "user_editable_context",
            "user_profile": "I am a pilot.",
            "user_instructions": "Be terse.",
        },
        metadata={"is_visually_hidden_from_conversation": True, "is_user_system_message": True},
    )
    first_user = "aaa297ba-e2da-440e-84f4-e62e7be8b003"
    tree["mapping"][first_user]["parent"] = "instructions"
    conversation = read_value(chatgpt_with(tree, instructions)).conversations[0]
    assert conversation.notes.counts == {"hidden": 1}
    assert "pilot" in conversation.notes.examples["hidden"][0]
    assert by_key(conversation)[first_user].parent is None


def test_an_image_pointer_is_an_image_of_the_message_found_in_the_zip_or_noted_missing():
    (tree,) = sample("chatgpt-tree.json")
    picture = chatgpt_picture(
        pointer("sediment://file_00ab"),
        pointer("file-service://file-Q1"),
        pointer("sediment://file_77", kind="audio_asset_pointer"),
        "What is this?",
    )
    document = json.dumps([chatgpt_with(tree, picture)]).encode()
    alone = by_key(read(document).conversations[0])["picture"]
    assert alone.content == "What is this?"
    assert [(i.name, i.load) for i in alone.images] == [("file_00ab", None), ("file-Q1", None)]
    archive = zipped(
        {
            "conversations.json": document,
            "file_00ab-3f1e.png": b"png bytes",
            "user-123/file-Q1.jpeg": b"jpeg bytes",
            "chat.html": b"<html>",
        }
    )
    source = read(archive)
    found = by_key(source.conversations[0])["picture"]
    assert [i.load() for i in found.images] == [b"png bytes", b"jpeg bytes"]
    assert source.conversations[0].notes.counts["audio"] == 1


def test_a_single_chatgpt_conversation_is_read_as_well_as_the_list():
    (tree,) = sample("chatgpt-tree.json")
    assert len(read_value(tree).conversations[0].messages) == 11


def test_open_webui_first_prompt_edited_gives_two_roots_and_reasoning_is_kept_apart():
    records = sample("chat-export-branches.json")
    messages = records[0]["chat"]["history"]["messages"]
    messages["second-root"] = {
        "id": "second-root",
        "parentId": None,
        "childrenIds": ["its-answer"],
        "role": "user",
        "content": "Another first question",
        "timestamp": 1749614999,
        "files": [
            {"type": "image", "url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "image", "url": "/api/v1/files/abc/content", "name": "photo.png"},
            {"type": "file", "name": "notes.pdf"},
        ],
    }
    messages["its-answer"] = {
        "id": "its-answer",
        "parentId": "second-root",
        "childrenIds": [],
        "role": "assistant",
        "model": "llama3",
        "content": '<details type="reasoning" done="true" duration="3">\n<summary>Thought for 3 '
        "seconds</summary>\n> Think first.\n> Then answer.\n</details>\nThe answer."
        '<details type="tool_calls" done="true">{"name": "search"}</details>',
        "timestamp": 1749615000,
    }
    conversation = read_value(records).conversations[0]
    roots = [m for m in conversation.messages if m.parent is None]
    assert [r.key for r in roots][-1] == "second-root"
    assert len(roots) == 2
    answer = by_key(conversation)["its-answer"]
    assert (answer.content, answer.reasoning) == ("The answer.", "Think first.\nThen answer.")
    assert conversation.notes.counts["tool_call"] == 1
    assert conversation.notes.counts["file"] == 1
    images = by_key(conversation)["second-root"].images
    assert images[0].load() == b"\x89PNG\r\n\x1a\n"
    assert images[1].name == "photo.png"
    assert images[1].load is None


def test_open_webui_inner_chat_object_and_feedback_wrappers_are_read_once_each():
    record = sample("chat-export-branches.json")[0]
    inner = read_value(record["chat"]).conversations[0]
    assert len(inner.messages) == 11
    feedback = [{"id": f"f{i}", "type": "rating", "snapshot": {"chat": record}} for i in range(3)]
    assert len(read_value(feedback).conversations) == 1


def test_a_system_prompt_message_becomes_the_conversations_system_prompt():
    records = sample("chat-export-branches.json")
    messages = records[0]["chat"]["history"]["messages"]
    root = next(k for k, m in messages.items() if m["parentId"] is None)
    messages["sys"] = {
        "id": "sys",
        "parentId": None,
        "childrenIds": [root],
        "role": "system",
        "content": "You are a patriot.",
    }
    messages[root]["parentId"] = "sys"
    conversation = read_value(records).conversations[0]
    assert conversation.system_prompt == "You are a patriot."
    assert by_key(conversation)[root].parent is None
    assert "sys" not in by_key(conversation)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"this is not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b'{"hello": "world"}', "not an export this server reads"),
        (b"[1, 2, 3]", "not an export this server reads"),
        (b"[]", "holds no conversations"),
        (b"[" * 2000 + b"]" * 2000, "nested deeper than 1,024 levels"),
        (b'{"format": "chatapp-export", "version": 2}', "reads version 1"),
        (b'{"format": "chatapp-export", "version": 1}', "not a complete export"),
        (zipped({"readme.txt": b"hi"}), "holds no conversations"),
        (zipped({"conversations.json": b"{oops"}), "conversations.json is not JSON"),
        (b"PK\x03\x04 not really a zip", "damaged"),
    ],
)
def test_files_that_are_not_exports_are_refused_saying_why(data, words):
    with pytest.raises(ImportRefused) as refused:
        read(data)
    assert words in refused.value.message


def test_the_budget_names_the_limits():
    budget = Budget(conversations=1, messages=10)
    budget.conversation()
    budget.take(10)
    with pytest.raises(ImportRefused, match="more than 10 messages, the limit for one import"):
        budget.take(1)
    with pytest.raises(ImportRefused, match="more than 1 conversations, the limit"):
        budget.conversation()
