"""The Gemini-native routes end to end: the real run and SSE consumer, the real adapters over a
real socket to the fake upstream, the database in between. One conversation moves between
AI/ML API, Google and Segmind; Gemini's endings and blocks reach the saved message."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from chatapp.models import Message
from tests.conftest import API_KEY, open_stream, reload_message, start_turn, wait_for_run
from tests.fakes import upstream as up
from tests.fakes.gemini_schema import validate_recorded

pytestmark = [pytest.mark.django_db(transaction=True)]

SIG = base64.b64encode(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(5))).decode()
RATINGS = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]


@pytest.fixture
def routes(settings: Any, fake_upstream: up.FakeUpstream) -> up.FakeUpstream:
    """All three routes, pointed at the fake upstream."""
    settings.PROVIDERS = {
        "aimlapi": {
            "BACKEND": "chatapp.providers.openai_compat.OpenAICompatProvider",
            "OPTIONS": {"api_key": API_KEY, "base_url": fake_upstream.openai_base_url},
        },
        "gemini": {
            "BACKEND": "chatapp.providers.gemini.google.GeminiProvider",
            "OPTIONS": {"api_key": API_KEY, "base_url": fake_upstream.gemini_base_url},
        },
        "segmind": {
            "BACKEND": "chatapp.providers.gemini.segmind.SegmindProvider",
            "OPTIONS": {
                "api_key": API_KEY,
                "base_url": fake_upstream.segmind_base_url,
                "status_interval": 0.02,
                "reveal_seconds": 0,
            },
        },
    }
    yield fake_upstream
    for record in fake_upstream.chat_requests:
        validate_recorded(record)


async def run_turn(user: Any, text: str, model_key: str, **kwargs: Any) -> Message:
    turn = await start_turn(user, text, model_key=model_key, **kwargs)
    await wait_for_run(turn.assistant_message.id)
    return await reload_message(turn.assistant_message.id)


async def test_one_conversation_over_all_three_routes(routes, run_manager, user) -> None:
    routes.enqueue(
        up.Reply([up.Text("From AI/ML API.", signature=SIG)]),
        up.Reply([up.Text("From Google.")]),
        up.Reply([up.Text("From Segmind.", signature=SIG)]),
        up.Reply([up.Text("Segmind again.")]),
    )

    # The settings panel sends the system prompt with every turn, whatever the route.
    def turn(text: str, model_key: str, **kwargs: Any) -> Any:
        return run_turn(user, text, model_key, system_prompt="Answer briefly.", **kwargs)

    first = await turn("One", "aimlapi:google/gemini-2.5-flash")
    conversation = first.conversation_id
    second = await turn("Two", "gemini:gemini-2.5-flash", conversation_id=conversation)
    third = await turn("Three", "segmind:gemini-2.5-flash", conversation_id=conversation)
    fourth = await turn("Four", "segmind:gemini-2.5-flash", conversation_id=conversation)

    assert [m.status for m in (first, second, third, fourth)] == [Message.Status.COMPLETE] * 4
    assert [m.route for m in (first, second, third, fourth)] == [
        "aimlapi",
        "gemini",
        "segmind",
        "segmind",
    ]
    aiml, google, segmind, segmind_again = routes.chat_requests
    assert aiml.path == "/v1/chat/completions"
    assert first.provider_extras == {
        "google": {"thought_signature": SIG},
        "google_echo": {"route": "aimlapi", "model": "google/gemini-2.5-flash"},
        "finish_reason": "stop",  # the upstream's own word; the row holds the neutral one
    }
    # Google gets the whole history, system prompt included, and no AI/ML API extras.
    assert google.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert google.json["systemInstruction"] == {"parts": [{"text": "Answer briefly."}]}
    assert google.json["contents"] == [
        {"role": "user", "parts": [{"text": "One"}]},
        {"role": "model", "parts": [{"text": "From AI/ML API."}]},
        {"role": "user", "parts": [{"text": "Two"}]},
    ]
    assert segmind.json["messages"]["system_instruction"] == {"parts": {"text": "Answer briefly."}}
    assert third.provider_extras["gemini"]["parts"] == [
        {"at": 0, "text": "From Segmind.", "thoughtSignature": SIG}
    ]
    # The signature Segmind sent comes back to Segmind, byte for byte.
    assert segmind_again.json["messages"]["contents"][5] == {
        "role": "model",
        "parts": [{"text": "From Segmind.", "thoughtSignature": SIG}],
    }
    assert f'"thoughtSignature":"{SIG}"'.encode() in segmind_again.body


async def test_a_safety_ending_is_saved_with_its_ratings(routes, run_manager, user) -> None:
    routes.enqueue(up.Reply(finish="SAFETY", safety_ratings=RATINGS))
    message = await run_turn(user, "Something", "gemini:gemini-2.5-flash")
    assert message.status == Message.Status.COMPLETE
    assert message.content == ""
    assert message.finish_reason == "safety"
    assert message.provider_extras["finish_reason"] == "SAFETY"
    assert message.provider_extras["safety_ratings"] == RATINGS


async def test_a_max_tokens_ending_keeps_the_text(routes, run_manager, user) -> None:
    routes.enqueue(
        up.Reply(
            [up.Text("A long answer that")],
            finish="length",
            usage=up.Usage(
                prompt_tokens=3, completion_tokens=4, reasoning_tokens=90, total_tokens=97
            ),
        )
    )
    message = await run_turn(user, "Write", "gemini:gemini-2.5-pro", options={"max_tokens": "4"})
    assert (message.status, message.content) == (Message.Status.COMPLETE, "A long answer that")
    assert message.finish_reason == "length"
    assert message.provider_extras["finish_reason"] == "MAX_TOKENS"
    assert (message.reasoning_tokens, message.total_tokens) == (90, 97)
    assert routes.last_request.json["generationConfig"] == {"maxOutputTokens": 4}


async def test_a_blocked_prompt_fails_with_a_readable_reason(routes, run_manager, user) -> None:
    routes.enqueue(up.Reply(blocked="SAFETY", safety_ratings=RATINGS))
    message = await run_turn(user, "Something", "gemini:gemini-2.5-flash")
    assert message.status == Message.Status.FAILED
    assert message.error_code == "prompt_blocked"
    assert message.error_message.startswith(
        "Your prompt was blocked: the safety filters flagged it (dangerous content)"
    )
    assert message.provider_extras["prompt_feedback"]["blockReason"] == "SAFETY"
    assert len(routes.chat_requests) == 1  # not retried


async def test_segmind_shows_progress_while_waiting(routes, run_manager, user, cookie) -> None:
    routes.enqueue(up.Reply([up.Gate("segmind"), *up.words("Done at last.")]))
    turn = await start_turn(user, "Slow", model_key="segmind:gemini-2.5-flash")
    stream = open_stream(turn.assistant_message.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    event = await stream.next_event()
    assert event is not None
    assert (event.event, event.data.startswith("Waiting for Segmind")) == ("status", True)
    await routes.wait_for_gate_async("segmind")
    routes.release("segmind")
    text, terminal = await stream.read_until_terminal()
    assert terminal.event == "done"
    assert text == "Done at last."


async def test_stop_while_segmind_is_thinking_closes_the_request(routes, run_manager, user) -> None:
    from chatapp.turns.manager import manager

    routes.enqueue(up.Reply([up.Gate("never"), up.Text("unseen")]))
    turn = await start_turn(user, "Slow", model_key="segmind:gemini-2.5-flash")
    await routes.wait_for_gate_async("never")
    await manager().request_stop(turn.assistant_message.id)
    await wait_for_run(turn.assistant_message.id)

    assert (await routes.wait_closed_async(0)).client_disconnected
    message = await reload_message(turn.assistant_message.id)
    assert message.status == Message.Status.STOPPED
    assert message.content == ""


async def test_gemini_options_are_validated_and_frozen_on_the_message(
    routes, run_manager, user
) -> None:
    message = await run_turn(
        user,
        "Hi",
        "gemini:gemini-3-flash-preview",
        options={
            "top_k": "20",
            "thinking_level": "minimal",
            "response_format": "json",
            "safety_settings": "harassment=BLOCK_NONE",
        },
    )
    assert message.request_options == {
        "top_k": 20,
        "response_format": "json",
        "thinking_level": "MINIMAL",
        "safety_settings": {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"},
    }
    sent = routes.last_request.json
    assert sent["generationConfig"] == {
        "topK": 20,
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingLevel": "MINIMAL", "includeThoughts": True},
    }
    assert sent["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
    ]
    assert json.loads(json.dumps(message.request_options)) == message.request_options
