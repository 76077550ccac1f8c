"""The import's write: the tree as the app keeps it (every child newer than its parent, the
versions in order, the branch shown), the conversation's own model for Regenerate, skipping
what was imported before, the importer's account only, and one transaction."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from chatapp.attachments.models import Attachment, MessageAttachment
from chatapp.conversations import tree
from chatapp.exchange import services
from chatapp.exchange.neutral import ImportRefused
from chatapp.models import Conversation, Message
from tests import imagegen
from tests.exchange.conftest import (
    chatgpt_node,
    chatgpt_picture,
    chatgpt_with,
    import_data,
    pointer,
    sample,
    sample_bytes,
    zipped,
)

pytestmark = [pytest.mark.django_db]


def shown(conversation: Conversation) -> list[Message]:
    return tree.path(conversation_id=conversation.id, leaf_id=conversation.current_leaf_id)


def assert_every_child_is_newer_than_its_parent(conversation: Conversation) -> None:
    rows = {m.pk: m for m in Message.objects.filter(conversation=conversation)}
    for message in rows.values():
        if message.parent_id is not None:
            assert message.created_at > rows[message.parent_id].created_at


def test_a_chatgpt_tree_arrives_with_its_versions_and_the_branch_chatgpt_showed(user):
    report = import_data(user, sample_bytes("chatgpt-tree.json"))
    (item,) = report.conversations
    assert (item.outcome, item.messages, item.branch_points) == ("imported", 11, 2)
    conversation = Conversation.objects.get(owner=user)
    assert conversation.title == "Assist user with summary"
    assert conversation.origin == "chatgpt:" + sample("chatgpt-tree.json")[0]["id"]
    assert not conversation.title_locked
    path = shown(conversation)
    assert [m.content[:14] for m in path] == [
        "hi there",
        "Hello! How can",
        "hi again",
        "Hey! Welcome b",
        "tell me a joke",
        "Sure, here's o",
    ]
    assert [m.role for m in path] == ["user", "assistant"] * 3
    tree.with_versions(path)
    assert (path[2].versions.position, path[2].versions.count) == (2, 2)
    assert (path[5].versions.position, path[5].versions.count) == (2, 2)
    assert_every_child_is_newer_than_its_parent(conversation)
    answer = path[-1]
    assert (answer.route, answer.model, answer.status) == (
        "chatgpt",
        "text-davinci-002-render-sha",
        "complete",
    )
    assert "<p>" in answer.content_html
    assert answer.html_version > 0


def test_equal_and_missing_times_are_moved_on_so_each_message_is_newer_than_its_parent(user):
    import_data(user, sample_bytes("chat-export-branches.json"))
    conversation = Conversation.objects.get(owner=user)
    assert_every_child_is_newer_than_its_parent(conversation)
    path = shown(conversation)
    assert len(path) == 10
    failed = Message.objects.get(conversation=conversation, status="failed")
    assert failed.error_message == "TypeError: Load failed"
    # The failed answer is the older of the two versions; the one shown is the good one.
    siblings = list(Message.objects.filter(parent_id=failed.parent_id).order_by("created_at", "id"))
    assert siblings[0] == failed
    assert siblings[1] in path


def test_an_imported_answer_shows_where_it_came_from_and_regenerate_uses_this_chats_model(
    user, user_client, aimlapi
):
    from chatapp.turns.services import turn_regenerate
    from chatapp.turns.workers import WORKER_ID

    import_data(user, sample_bytes("chatgpt-tree.json"))
    conversation = Conversation.objects.get(owner=user)
    assert (conversation.route, conversation.model) == ("aimlapi", "google/gemini-2.5-flash")
    page = user_client.get(f"/c/{conversation.id}/")
    assert page.status_code == 200
    assert "ChatGPT · text-davinci-002-render-sha" in page.content.decode()
    old = shown(conversation)[-1]
    again = turn_regenerate(message=old, worker_id=WORKER_ID)
    assert (again.route, again.model) == ("aimlapi", "google/gemini-2.5-flash")
    assert again.parent_id == old.parent_id


def test_importing_the_same_file_again_adds_nothing_and_says_so(user):
    data = sample_bytes("chatgpt-export.json")
    first = import_data(user, data)
    assert [c.outcome for c in first.conversations] == ["imported", "imported"]
    again = import_data(user, data)
    assert [c.outcome for c in again.conversations] == ["already imported"] * 2
    assert again.already == 2
    assert again.imported == 0
    assert Conversation.objects.filter(owner=user).count() == 2


def test_imports_land_in_the_importers_account_only(user, other_user):
    data = sample_bytes("chatgpt-tree.json")
    import_data(user, data)
    report = import_data(other_user, data)
    assert report.imported == 1  # someone else's import of it does not count
    assert Conversation.objects.filter(owner=user).count() == 1
    assert Conversation.objects.filter(owner=other_user).count() == 1
    mine = Conversation.objects.get(owner=user)
    theirs = Conversation.objects.get(owner=other_user)
    assert not set(mine.messages.values_list("id", flat=True)) & set(
        theirs.messages.values_list("id", flat=True)
    )


def test_what_could_not_be_carried_is_in_the_report_by_conversation(user):
    report = import_data(user, sample_bytes("chatgpt-export.json"))
    browsing = report.conversations[0]
    lines = {line.what: line for line in browsing.note_lines}
    assert lines["tool calls"].count == 4
    assert lines["tool outputs"].count == 5
    assert lines["tool outputs"].examples


def test_a_conversation_with_no_messages_is_reported_and_not_created(user):
    broken = {"title": "Corrupted entry", "id": "abc", "create_time": 1700000000.0}
    report = import_data(user, json.dumps([broken, *sample("chatgpt-tree.json")]).encode())
    assert [c.outcome for c in report.conversations] == ["nothing to import", "imported"]
    assert Conversation.objects.filter(owner=user).count() == 1


def test_an_image_in_a_chatgpt_zip_is_checked_and_stored_and_a_missing_one_reported(user):
    (conversation,) = sample("chatgpt-tree.json")
    picture = chatgpt_picture(
        pointer("sediment://file_1"),
        pointer("sediment://file_2"),
        pointer("sediment://file_3"),
        "What is this?",
    )
    document = json.dumps([chatgpt_with(conversation, picture)]).encode()
    archive = zipped(
        {
            "conversations.json": document,
            "file_1-photo.jpg": imagegen.jpeg(80, 60, exif=imagegen.gps_exif()),
            "file_3-page.png": imagegen.png_html_polyglot(),
        }
    )
    report = import_data(user, archive)
    (item,) = report.conversations
    lines = {line.what: line for line in item.note_lines}
    assert lines["image not in the file"].examples == ("file_2",)
    assert lines["image refused"].count == 1
    message = Message.objects.get(content="What is this?")
    (image,) = message.images
    assert image.mime_type == "image/jpeg"
    assert (image.width, image.height) == (80, 60)
    assert default_storage.exists(image.file_name)


def test_a_file_over_the_size_limit_is_refused_unread_naming_the_limit(user, tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(100_000_000)  # 100 MB of nothing, never read
    with big.open("rb") as fh, pytest.raises(ImportRefused) as refused:
        services.import_file(owner=user, upload=fh, size=100_000_000)
    assert refused.value.message == "This file is 100 MB; the limit is 50 MB for an import."
    assert refused.value.status == 413


def test_a_zip_bomb_is_refused_from_its_headers_before_it_is_unpacked(user):
    bomb = zipped({"conversations.json": b"[" + b" " * 299_999_998 + b"]"})
    assert len(bomb) < 1_000_000
    with pytest.raises(ImportRefused) as refused:
        import_data(user, bomb)
    assert refused.value.message == (
        "conversations.json is 300 MB uncompressed; the limit is 50 MB for one JSON document."
    )


def test_a_zip_whose_headers_understate_its_size_is_stopped_as_its_bytes_come_out(user):
    import struct
    import zipfile

    document = json.dumps(sample("chatgpt-tree.json")).encode() + b" " * 5_000_000
    honest = bytearray(zipped({"conversations.json": document}))
    # Say the document is 1,000 bytes, in the entry's own header and in the zip's table.
    local = honest.index(b"PK\x03\x04")
    struct.pack_into("<I", honest, local + 22, 1000)
    central = honest.index(b"PK\x01\x02")
    struct.pack_into("<I", honest, central + 24, 1000)
    assert zipfile.ZipFile(io.BytesIO(bytes(honest))).infolist()[0].file_size == 1000
    with pytest.raises(ImportRefused, match="damaged"):
        import_data(user, bytes(honest))
    assert not Conversation.objects.exists()


def test_images_past_what_a_zip_may_unpack_to_stop_the_import(user, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "import_unzipped_bytes": 5_000_000}
    (conversation,) = sample("chatgpt-tree.json")
    nodes = [
        chatgpt_node(
            f"p{n}",
            "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8",
            "user",
            {
                "content_type": "multimodal_text",
                "parts": [
                    {"content_type": "image_asset_pointer", "asset_pointer": f"x://file_{n}"}
                ],
            },
            create_time=1714585070.0 + n,
        )
        for n in range(3)
    ]
    archive = zipped(
        {
            "conversations.json": json.dumps([chatgpt_with(conversation, *nodes)]).encode(),
            **{f"file_{n}.png": b"\0" * 2_000_000 for n in range(3)},
        }
    )
    with pytest.raises(ImportRefused, match="unpacks to more than 5 MB, the limit for an import"):
        import_data(user, archive)
    assert not Conversation.objects.exists()


def test_a_zip_of_too_many_files_is_refused_before_it_is_read(user, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "import_zip_entries": 50}
    archive = zipped({f"x/{n}.txt": b"" for n in range(51)})
    with pytest.raises(ImportRefused) as refused:
        import_data(user, archive)
    assert refused.value.message == "This zip holds 51 files; the limit is 50 files for an import."


def test_a_json_document_in_a_zip_over_the_size_limit_is_refused_naming_it(user, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "import_bytes": 1_000_000}
    archive = zipped({"conversations.json": b"[" + b" " * 1_999_998 + b"]"})
    with pytest.raises(ImportRefused) as refused:
        import_data(user, archive)
    assert refused.value.message == (
        "conversations.json is 2 MB uncompressed; the limit is 1 MB for one JSON document."
    )


def test_too_many_messages_or_conversations_name_their_limits(user, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "import_messages": 10}
    with pytest.raises(ImportRefused, match="more than 10 messages, the limit for one import"):
        import_data(user, sample_bytes("chatgpt-tree.json"))
    settings.CHAT_LIMITS = {
        **settings.CHAT_LIMITS,
        "import_messages": 100_000,
        "import_conversations": 1,
    }
    with pytest.raises(ImportRefused, match="more than 1 conversations, the limit"):
        import_data(user, sample_bytes("chatgpt-export.json"))
    assert not Conversation.objects.exists()


def test_a_tree_deeper_than_pythons_recursion_limit_imports(user):
    messages = {}
    parent = None
    for number in range(5000):
        key = f"m{number}"
        messages[key] = {
            "id": key,
            "parentId": parent,
            "childrenIds": [f"m{number + 1}"] if number < 4999 else [],
            "role": "user" if number % 2 == 0 else "assistant",
            "content": f"message {number}",
            "timestamp": 1700000000,
        }
        parent = key
    chat = {
        "id": "deep",
        "title": "Deep",
        "chat": {"history": {"messages": messages, "currentId": "m4999"}},
    }
    import_data(user, json.dumps([chat]).encode())
    conversation = Conversation.objects.get(owner=user)
    assert len(shown(conversation)) == 5000
    assert_every_child_is_newer_than_its_parent(conversation)


def test_a_loop_of_parents_is_noted_and_the_rest_imports(user):
    (conversation,) = sample("chatgpt-tree.json")
    a = chatgpt_node("loop-a", "loop-b", "user", {"content_type": "text", "parts": ["a"]})
    b = chatgpt_node("loop-b", "loop-a", "user", {"content_type": "text", "parts": ["b"]})
    report = import_data(user, json.dumps([chatgpt_with(conversation, a, b)]).encode())
    lines = {line.what: line.count for line in report.conversations[0].note_lines}
    assert lines == {"messages in a loop of parents": 2}
    assert report.conversations[0].messages == 11


@pytest.mark.django_db(transaction=True)
def test_a_failure_part_way_leaves_nothing_imported_and_no_image_files(user, monkeypatch):
    (conversation,) = sample("chatgpt-tree.json")
    picture = chatgpt_picture(pointer("x://file_1"))
    second = chatgpt_with(conversation, picture)
    second["id"] = second["conversation_id"] = str(uuid.uuid4())
    archive = zipped(
        {
            "conversations.json": json.dumps([second, *sample("chatgpt-export.json")]).encode(),
            "file_1.png": imagegen.png(30, 20),
        }
    )
    written = services._write
    calls = []

    def fail_on_the_second(*args, **kwargs):
        calls.append(1)
        written(*args, **kwargs)
        if len(calls) == 2:
            assert Attachment.objects.count() == 1
            assert set(_stored_files()) - stored_before
            raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_write", fail_on_the_second)
    stored_before = set(_stored_files())
    with pytest.raises(RuntimeError):
        import_data(user, archive)
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert not Attachment.objects.exists()
    assert not MessageAttachment.objects.exists()
    assert set(_stored_files()) == stored_before


def _stored_files() -> list[str]:
    root = Path(default_storage.location)
    return [str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()]


def test_a_long_system_prompt_is_cut_to_the_limit_and_said(user, settings):
    records = sample("chat-export-branches.json")
    records[0]["chat"]["params"]["system"] = "x" * 25_000
    report = import_data(user, json.dumps(records).encode())
    conversation = Conversation.objects.get(owner=user)
    assert len(conversation.system_prompt) == settings.CHAT_LIMITS["system_prompt_chars"]
    assert [line.what for line in report.conversations[0].note_lines] == [
        "system prompt cut to the limit"
    ]
