"""Gemini's built-in tools through the real run: the switches frozen on the answer reach Google,
what the tools left is saved on the message (checked, in `provider_extras`), a grounded
answer's HTML carries its citation markers and its stream ends with the whole fragment, and code
run by the model is kept as fences that go back to Gemini as the parts they were."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chatapp.models import Message
from chatapp.turns.fragments import message_fragment, stream_end
from chatapp.turns.manager import manager
from chatapp.turns.requests import continuation_request
from chatapp.turns.services import turn_continue
from chatapp.turns.workers import WORKER_ID
from tests.conftest import API_KEY, reload_message, start_turn, wait_for_run
from tests.fakes import upstream as up
from tests.fakes.gemini_schema import validate_recorded

pytestmark = [pytest.mark.django_db(transaction=True)]

GOOGLE = "gemini:gemini-2.5-flash"
SIG = base64.b64encode(hashlib.sha256(b"signed code").digest() * 3).decode()
TEXT = "Die Aare fließt durch Bern. Sie ist grün."


@pytest.fixture
def google(settings: Any, fake_upstream: up.FakeUpstream) -> up.FakeUpstream:
    settings.PROVIDERS = {
        "gemini": {
            "BACKEND": "chatapp.providers.gemini.google.GeminiProvider",
            "OPTIONS": {"api_key": API_KEY, "base_url": fake_upstream.gemini_base_url},
        }
    }
    yield fake_upstream
    for record in fake_upstream.chat_requests:
        validate_recorded(record)


async def run_turn(user: Any, text: str, **kwargs: Any) -> Message:
    turn = await start_turn(user, text, model_key=GOOGLE, **kwargs)
    await wait_for_run(turn.assistant_message.id)
    return await reload_message(turn.assistant_message.id)


def grounded_reply(**kwargs: Any) -> up.Reply:
    return up.Reply(
        [up.Text("Die Aare fließt "), up.Text("durch Bern. Sie ist grün.")],
        grounding=up.grounding_metadata(
            TEXT,
            [("Die Aare fließt durch Bern.", [0]), ("Sie ist grün.", [1])],
            sources=[("bern.ch", "https://r.example/1"), ("Aare", "javascript:alert(1)")],
            queries=["Aare Bern"],
            rendered='<a class="chip" href="https://www.google.com/search?q=Aare">Aare</a>',
        ),
        **kwargs,
    )


async def test_a_grounded_answer_is_saved_with_its_sources_and_its_markers(
    google, run_manager, user
) -> None:
    google.enqueue(grounded_reply())
    message = await run_turn(user, "Wo fließt die Aare?", options={"google_search": "on"})

    assert google.last_request.json["tools"] == [{"googleSearch": {}}]
    assert message.request_options == {"google_search": True}
    assert (message.status, message.content) == (Message.Status.COMPLETE, TEXT)
    grounding = message.provider_extras["grounding"]
    assert grounding["queries"] == ["Aare Bern"]
    # The javascript: source is kept by its title, without a link.
    assert [s["uri"] for s in grounding["sources"]] == ["https://r.example/1", ""]
    assert grounding["citations"] == [
        {"at": TEXT.index(" Sie"), "sources": [1]},
        {"at": len(TEXT), "sources": [2]},
    ]
    anchor = f"m-{message.id}"
    assert f'Bern.<sup class="cite">[<a href="#{anchor}-source-1"' in message.content_html
    assert f'grün.<sup class="cite">[<a href="#{anchor}-source-2"' in message.content_html

    end = await sync_to_async(stream_end)(message)
    # The stream showed the text without markers: the whole fragment replaces it.
    assert end["shell"] == ""
    assert (
        f'<li id="{anchor}-source-1"><a href="https://r.example/1" target="_blank" rel="noopener noreferrer">bern.ch</a>'
        in end["html"]
    )
    assert f'<li id="{anchor}-source-2"><span>Aare</span>' in end["html"]
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in end["html"]
    assert "javascript:" not in end["html"]


async def test_search_without_metadata_completes_and_says_no_sources_came(
    google, run_manager, user
) -> None:
    google.enqueue(up.Reply([up.Text("Bern is the capital.")]))
    message = await run_turn(user, "Capital?", options={"google_search": "on"})
    assert message.status == Message.Status.COMPLETE
    assert "grounding" not in message.provider_extras
    html = await sync_to_async(message_fragment)(message)
    assert "Google Search was on, but no sources came with this answer." in html
    assert 'aria-label="Sources"' not in html


async def test_metadata_after_the_last_text_is_read_all_the_same(google, run_manager, user) -> None:
    google.enqueue(grounded_reply(metadata_chunk=True))
    message = await run_turn(user, "Wo?", options={"google_search": "on"})
    assert len(message.provider_extras["grounding"]["citations"]) == 2


async def test_url_context_lists_the_urls_read_with_their_status(google, run_manager, user) -> None:
    google.enqueue(
        up.Reply(
            [up.Text("The page says hello.")],
            url_context={
                "urlMetadata": [
                    {
                        "retrievedUrl": "https://hello.example/",
                        "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS",
                    },
                    {
                        "retrievedUrl": "https://gone.example/",
                        "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_ERROR",
                    },
                ]
            },
        )
    )
    message = await run_turn(user, "Read https://hello.example/", options={"url_context": "on"})
    assert google.last_request.json["tools"] == [{"urlContext": {}}]
    html = await sync_to_async(message_fragment)(message)
    assert '<ul class="msg-urls" aria-label="URLs read">' in html
    assert '>https://hello.example/</a> <span class="url-status">read</span>' in html
    assert '<span class="url-status url-failed">could not be read</span>' in html


async def test_code_run_by_the_model_is_kept_as_fences_and_replayed_as_its_parts(
    google, run_manager, user
) -> None:
    google.enqueue(
        up.Reply(
            [
                up.Text("Let me check."),
                up.Code("print(sum(range(5)))", signature=SIG),
                up.CodeResult("10\n"),
                up.Text("The sum is 10."),
            ]
        ),
        up.Reply([up.Text("You are welcome.")]),
    )
    first = await run_turn(user, "Sum of 0..4?", options={"code_execution": "on"})
    assert google.last_request.json["tools"] == [{"codeExecution": {}}]
    assert "```python model-executed-code\nprint(sum(range(5)))\n```" in first.content
    assert "```text model-execution-output ok\n10\n```" in first.content
    assert (
        '<div class="code-block code-run"><div class="code-lang">Code run by the model · python</div>'
        in first.content_html
    )
    assert (
        '<div class="code-block code-output outcome-ok"><div class="code-lang">Output · OK</div>'
        in first.content_html
    )

    await run_turn(
        user,
        "Thanks",
        options={"code_execution": "on"},
        conversation_id=first.conversation_id,
    )
    model_turn = google.last_request.json["contents"][1]
    assert model_turn == {
        "role": "model",
        "parts": [
            {"text": "Let me check."},
            {
                "executableCode": {"language": "PYTHON", "code": "print(sum(range(5)))"},
                "thoughtSignature": SIG,
            },
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "10\n"}},
            {"text": "The sum is 10."},
        ],
    }
    assert f'"thoughtSignature":"{SIG}"'.encode() in google.last_request.body


async def test_a_continued_answers_markers_land_on_the_text_the_continuation_wrote(
    google, run_manager, user
) -> None:
    google.enqueue(up.Reply([up.Text("Bern liegt an der Aare. "), up.Drop()]))
    first = await run_turn(user, "Wo liegt Bern?", options={"google_search": "on"})
    assert (first.status, first.content) == (Message.Status.FAILED, "Bern liegt an der Aare. ")

    more = "Sie ist im Sommer grün."
    google.enqueue(
        up.Reply(
            [up.Text(more)],
            grounding=up.grounding_metadata(
                more, [(more, [0])], sources=[("aare.ch", "https://r.example/aare")]
            ),
        )
    )
    answer = await sync_to_async(turn_continue)(message=first, worker_id=WORKER_ID)
    await manager().launch(
        message_id=answer.id,
        route=answer.route,
        request=lambda: continuation_request(message=answer),
        prefix=answer.content,
    )
    await wait_for_run(answer.id)
    continued = await reload_message(answer.id)
    assert continued.content == "Bern liegt an der Aare. " + more
    assert continued.provider_extras["grounding"]["citations"] == [
        {"at": len(continued.content), "sources": [1]}
    ]
    assert f'grün.<sup class="cite">[<a href="#m-{answer.id}-source-1"' in continued.content_html
