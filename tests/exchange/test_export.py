"""Exports: a conversation as Markdown (the branch shown) and as JSON in a zip (the whole
tree, its record, its images), every conversation in one zip; export -> import -> export
gives the same content; someone else's conversation is a 404; the stream is made a piece
at a time on a thread of its own."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import zipfile
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from chatapp.exchange.export import FORMAT, VERSION
from chatapp.models import Conversation
from chatapp.web.responses import ThreadedStreamingHttpResponse
from tests.exchange.conftest import import_data, sample_bytes

pytestmark = [pytest.mark.django_db]


def download(client: Client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    assert response.streaming
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return b"".join(response.streaming_content)


def documents(data: bytes) -> tuple[list[dict[str, Any]], zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    names = sorted(n for n in archive.namelist() if n.startswith("conversations/"))
    return [json.loads(archive.read(n)) for n in names], archive


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A document without what an import gives anew: ids (as positions), the origin, the
    time of the export."""
    position = {m["id"]: i for i, m in enumerate(document["messages"])}
    conversation = {k: v for k, v in document["conversation"].items() if k not in ("id", "origin")}
    conversation["current_leaf"] = position[conversation["current_leaf"]]
    messages = []
    for message in document["messages"]:
        message = {**message, "id": position[message["id"]]}
        message["parent"] = position.get(message["parent"])
        if "images" in message:
            message["images"] = [
                (i["mime_type"], i["width"], i["height"]) for i in message["images"]
            ]
        messages.append(message)
    return {"conversation": conversation, "messages": messages, "version": document["version"]}


def test_the_json_export_holds_the_whole_tree_its_records_and_its_images(user_client, branched):
    data = download(user_client, reverse("conversation-export-json", args=[branched.id]))
    (document,), archive = documents(data)
    assert (document["format"], document["version"]) == (FORMAT, VERSION) == ("chatapp-export", 1)
    conversation = document["conversation"]
    assert conversation["id"] == str(branched.id)
    assert conversation["settings"] == {"temperature": 0.4}
    assert conversation["system_prompt"] == "Answer briefly."
    assert conversation["current_leaf"] == str(branched.current_leaf_id)
    messages = document["messages"]
    assert len(messages) == 8  # every branch
    ids = {m["id"] for m in messages}
    assert all(m["parent"] is None or m["parent"] in ids for m in messages)
    answer = messages[-1]
    assert answer["content"] == "Blue."
    assert {k: answer[k] for k in ("route", "model", "status", "finish_reason")} == {
        "route": "aimlapi",
        "model": "google/gemini-2.5-flash",
        "status": "complete",
        "finish_reason": "stop",
    }
    assert (answer["prompt_tokens"], answer["completion_tokens"], answer["ttft_ms"]) == (
        12,
        34,
        210,
    )
    assert answer["credits_used"] == "0.00012000"
    assert answer["request_options"] == {"temperature": 0.4}
    # What the page shows of the provider's details; never an opaque thought signature.
    assert answer["provider"] == {"finish_reason": "STOP"}
    assert "thought_signature" not in data.decode("latin-1")
    (image,) = messages[0]["images"]
    assert image["file"] == f"images/{image['id']}.png"
    assert archive.read(image["file"]).startswith(b"\x89PNG")


def test_export_then_import_then_export_gives_the_same_content(
    user_client, branched, other_user, aimlapi
):
    first = download(user_client, reverse("conversation-export-json", args=[branched.id]))
    report = import_data(other_user, first)
    assert report.imported == 1
    assert not report.conversations[0].note_lines
    copy = Conversation.objects.get(owner=other_user)
    assert copy.origin == f"chatapp:{branched.id}"
    again_client = Client()
    again_client.force_login(other_user)
    second = download(again_client, reverse("conversation-export-json", args=[copy.id]))
    (before,), _ = documents(first)
    (after,), archive = documents(second)
    assert comparable(after) == comparable(before)
    assert any(n.startswith("images/") for n in archive.namelist())


def test_importing_an_export_into_the_account_it_came_from_finds_it_there(
    user, user_client, branched
):
    data = download(user_client, reverse("conversation-export-json", args=[branched.id]))
    report = import_data(user, data)
    assert [c.outcome for c in report.conversations] == ["already imported"]
    assert Conversation.objects.filter(owner=user).count() == 1


def test_export_all_holds_every_conversation_of_the_person_and_each_image_once(
    user, user_client, branched, other_user
):
    import_data(user, sample_bytes("chatgpt-export.json"))
    import_data(other_user, sample_bytes("chatgpt-tree.json"))
    data = download(user_client, reverse("conversations-export"))
    found, archive = documents(data)
    assert sorted(d["conversation"]["title"] for d in found) == [
        "Branches and an image",
        "Conversation 1. Web Search",
        "Conversation 2",
    ]
    assert len([n for n in archive.namelist() if n.startswith("images/")]) == 1
    # The whole export imports back elsewhere, into an empty account.
    newcomer = type(user).objects.create_user(username="newcomer", password="pw-new-123!")
    report = import_data(newcomer, data)
    assert report.imported == 3


def test_markdown_is_the_branch_shown_with_a_heading_per_turn(user_client, branched, aimlapi):
    response = user_client.get(reverse("conversation-export-markdown", args=[branched.id]))
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="Branches-and-an-image.md"'
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("# Branches and an image\n")
    assert "- Model: Gemini 2.5 Flash · AI/ML API" in text
    image = branched.messages.get(role="user", parent=None).images[0]
    assert f"![Image 1 (40 × 30)](images/{image.id}.png)" in text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## You", "## Gemini 2.5 Flash · AI/ML API"] * 2
    assert "Which is last?" in text
    assert "Which is first?" not in text
    assert "> Answer briefly." in text


@pytest.mark.parametrize("name", ["conversation-export-json", "conversation-export-markdown"])
def test_someone_elses_conversation_cannot_be_exported(name, branched, other_user):
    client = Client()
    client.force_login(other_user)
    assert client.get(reverse(name, args=[branched.id])).status_code == 404
    everything = b"".join(client.get(reverse("conversations-export")).streaming_content)
    assert documents(everything)[0] == []


def test_the_stream_is_made_a_piece_at_a_time_on_a_thread_of_its_own_and_closed_early():
    made: list[tuple[int, int]] = []
    closed = threading.Event()

    def pieces():
        try:
            for number in range(1000):
                made.append((number, threading.get_ident()))
                yield b"x" * 10
        finally:
            closed.set()

    async def read_three() -> list[bytes]:
        response = ThreadedStreamingHttpResponse(pieces())
        got = []
        stream = response.__aiter__()
        async for piece in stream:
            got.append(piece)
            if len(got) == 3:
                break
        await stream.aclose()
        return got

    got = asyncio.run(read_three())
    assert got == [b"x" * 10] * 3
    assert len(made) <= 4  # made as they are taken, not all at once
    assert len({thread for _, thread in made}) == 1
    assert made[0][1] != threading.get_ident()
    assert closed.wait(5)


def test_a_grounded_answer_with_code_run_travels_through_export_and_import(
    user, user_client, other_user, all_routes
):
    """The tools' details the page shows leave with the JSON export and come back, checked
    again and with markers under the new message's ids; the code stays fences in both exports."""
    from chatapp.models import Message
    from chatapp.providers.gemini import tools
    from tests.conftest import add_message

    code = tools.code_fence({"executableCode": {"language": "PYTHON", "code": "print(2)"}})
    text = f"Bern liegt an der Aare.\n{code}"
    conversation = Conversation.objects.create(owner=user, route="gemini", model="gemini-2.5-flash")
    add_message(conversation, role=Message.Role.USER, content="Wo?")
    grounding = {
        "sources": [{"title": "bern.ch", "uri": "https://r.example/1", "domain": "bern.ch"}],
        "citations": [{"at": text.index("\n"), "sources": [1]}],
    }
    add_message(
        conversation,
        role=Message.Role.ASSISTANT,
        content=text,
        status=Message.Status.COMPLETE,
        route="gemini",
        model="gemini-2.5-flash",
        provider_extras={"grounding": grounding, "gemini": {"parts": [{"at": 24, "x": 1}]}},
    )
    data = download(user_client, reverse("conversation-export-json", args=[conversation.id]))
    (document,), _ = documents(data)
    assert document["messages"][-1]["provider"] == {"grounding": grounding}

    assert import_data(other_user, data).imported == 1
    copy = Message.objects.get(conversation__owner=other_user, role=Message.Role.ASSISTANT)
    assert copy.provider_extras == {"grounding": grounding}
    assert f'Aare.<sup class="cite">[<a href="#m-{copy.id}-source-1"' in copy.content_html
    assert "Code run by the model · python" in copy.content_html

    markdown = download(
        user_client, reverse("conversation-export-markdown", args=[conversation.id])
    )
    assert "```python model-executed-code\nprint(2)\n```" in markdown.decode()


def test_function_calls_and_results_travel_through_both_exports_and_an_import(
    user, user_client, other_user, all_routes
):
    """The calls (without the signatures beside them) and the typed results leave with the
    JSON export and come back checked; the Markdown export shows each call's arguments and
    each result."""
    from chatapp.models import Message
    from chatapp.providers import functions
    from tests.conftest import add_message

    conversation = Conversation.objects.create(owner=user, route="aimlapi", model="m")
    add_message(conversation, role=Message.Role.USER, content="Weather in Bern?")
    call = {"id": "c1", "name": "get_weather", "arguments": '{"city":"Bern"}'}
    signed = {**call, "extra_content": {"google": {"thought_signature": "c2ln"}}}
    add_message(
        conversation,
        role=Message.Role.ASSISTANT,
        content="",
        status=Message.Status.COMPLETE,
        finish_reason="tool_calls",
        route="aimlapi",
        model="m",
        provider_extras={functions.CALLS_KEY: [signed]},
    )
    result = {"id": "c1", "name": "get_weather", "content": '{"temp": 21}'}
    add_message(
        conversation,
        role=Message.Role.USER,
        content=functions.results_text([result]),
        provider_extras={functions.RESULTS_KEY: [result]},
    )
    data = download(user_client, reverse("conversation-export-json", args=[conversation.id]))
    (document,), _ = documents(data)
    assert document["messages"][1]["provider"] == {functions.CALLS_KEY: [call]}
    assert document["messages"][2]["function_results"] == [result]

    assert import_data(other_user, data).imported == 1
    copies = Message.objects.filter(conversation__owner=other_user).order_by("created_at")
    assert [m.provider_extras for m in copies] == [
        {},
        {functions.CALLS_KEY: [call]},
        {functions.RESULTS_KEY: [result]},
    ]

    markdown = download(
        user_client, reverse("conversation-export-markdown", args=[conversation.id])
    ).decode()
    assert 'Function call: `get_weather`\n\n```json\n{\n  "city": "Bern"\n}\n```' in markdown
    assert '## Function results\n\nResult for `get_weather`:\n\n```\n{"temp": 21}\n```' in markdown
    assert "*No text.*" not in markdown
