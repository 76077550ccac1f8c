"""Segmind's adapter against the fake upstream, over real sockets: a Gemini-native body, an
answer in one piece, progress while waiting, and Segmind's error bodies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from chatapp.providers import catalog
from chatapp.providers.errors import (
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    MalformedResponseError,
    ModelUnavailableError,
    PromptBlockedError,
    ProviderError,
    RateLimitError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from chatapp.providers.gemini.segmind import SegmindProvider
from chatapp.providers.types import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    ImagePart,
    ProviderExtras,
    ResponseInfo,
    Status,
    TextDelta,
    TextPart,
    Usage,
)
from tests import provider_kit
from tests.fakes import upstream as up
from tests.provider_kit import of_type, text_of

pytestmark = pytest.mark.usefixtures("transport")

KEY = "sg-segmind-0123456789abcdef0123"
MODEL = "gemini-2.5-flash"
SIG = base64.b64encode(hashlib.sha512(b"segmind").digest()).decode()


def make_provider(
    client: httpx.AsyncClient | None, base_url: str, **options: Any
) -> SegmindProvider:
    options.setdefault("status_interval", 0.02)
    options.setdefault("reveal_seconds", 0)
    return SegmindProvider(
        alias="segmind", client=client, api_key=KEY, base_url=base_url, **options
    )


@pytest.fixture
def provider(http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream) -> SegmindProvider:
    return make_provider(http_client, fake_upstream.segmind_base_url)


@pytest.fixture(autouse=True)
def no_key_travels_in_a_url(fake_upstream: up.FakeUpstream) -> Iterator[None]:
    # Every body is validated by the fake_upstream fixture (tests/fakes/fixtures.py).
    yield
    for record in fake_upstream.chat_requests:
        assert KEY not in record.path
        assert "key" not in record.query


def ask(text: str = "Hello", **kwargs: Any) -> ChatRequest:
    kwargs.setdefault("model", MODEL)
    return ChatRequest(messages=(ChatMessage.of_text("user", text),), **kwargs)


collect, collect_until_error = provider_kit.collectors(ask)


def answer_events(events: list[Event]) -> list[Event]:
    return [e for e in events if not isinstance(e, Status)]


# --- the request ------------------------------------------------------------------------------


async def test_sends_the_documented_request(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    image = b"\xff\xd8\xff\xe0-not-really-a-jpeg"
    request = ChatRequest(
        model=MODEL,
        system="You are terse.",
        messages=(
            ChatMessage(
                role="user", parts=(ImagePart("image/jpeg", image), TextPart("What is it?"))
            ),
        ),
        options={"temperature": 0.2, "top_p": 0.9, "max_tokens": 500, "stop": ["A", "B"]},
    )
    await collect(provider, request)

    record = fake_upstream.wait_for_requests(1)[0]
    assert record.path == "/segmind/gemini-2.5-flash"
    assert record.query == {}
    assert record.headers["x-api-key"] == KEY
    assert record.headers["authorization"] == f"Bearer {KEY}"  # harmless, per the model page
    assert record.headers["content-type"] == "application/json"
    assert record.json == {
        "messages": {
            "system_instruction": {"parts": {"text": "You are terse."}},
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": "image/jpeg",
                                "data": base64.b64encode(image).decode(),
                            }
                        },
                        {"text": "What is it?"},
                    ],
                }
            ],
            # Whether Segmind honours it is unverified: it is sent all the same.
            "generationConfig": {
                "temperature": 0.2,
                "topP": 0.9,
                "maxOutputTokens": 500,
                "stopSequences": ["A", "B"],
            },
        }
    }


@pytest.mark.parametrize("spec", catalog.CATALOG["segmind"], ids=lambda spec: spec.id)
async def test_catalog_options_reach_the_wire(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream, spec: catalog.ModelSpec
) -> None:
    values = {
        "temperature": "0.3",
        "max_tokens": "800",
        "stop": "1\n2\n3\n4\n5",
        "seed": "9",
        "response_format": "json",
        "presence_penalty": "0.5",
        "thinking_budget": "1024",
        "thinking_level": "low",
    }
    options, errors = catalog.validate_options(
        spec, {k: v for k, v in values.items() if k in spec.ranges}
    )
    assert errors == {}
    await collect(provider, ask(model=spec.id, options=catalog.options_to_send(spec, options)))
    config = fake_upstream.last_request.json["messages"]["generationConfig"]
    assert config["stopSequences"] == ["1", "2", "3", "4", "5"]
    assert (config["maxOutputTokens"], config["seed"]) == (800, 9)
    assert config["responseMimeType"] == "application/json"
    assert fake_upstream.last_request.path == f"/segmind/{spec.id}"


# --- waiting, then the answer -----------------------------------------------------------------


async def test_progress_while_waiting_then_the_answer(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Gate("thinking"), *up.words("The whole answer at once.")]))
    events: list[Event] = []
    statuses = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(ask()):
            events.append(event)
            if len(of_type(events, Status)) >= 3:
                statuses.set()

    task = asyncio.create_task(consume())
    await fake_upstream.wait_for_gate_async("thinking")
    await asyncio.wait_for(statuses.wait(), 5)
    assert of_type(events, TextDelta) == []  # nothing but progress so far
    fake_upstream.release("thinking")
    await task

    status = [e.text for e in of_type(events, Status)]
    assert status[0] == "Waiting for Segmind…"
    assert all(s.startswith("Waiting for Segmind · ") and s.endswith(" s") for s in status[1:])
    assert text_of(events) == "The whole answer at once."
    # Progress comes first; the answer's events after it, in the usual order.
    first_answer = next(i for i, e in enumerate(events) if not isinstance(e, Status))
    assert all(isinstance(e, Status) for e in events[:first_answer])
    assert isinstance(events[first_answer], ResponseInfo)
    assert events[-1] == Finish(reason="stop", raw="STOP")
    assert of_type(events, Usage)[-1].completion_tokens == 5


async def test_the_answer_is_revealed_in_pieces(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    provider = make_provider(http_client, fake_upstream.segmind_base_url, reveal_seconds=0.05)
    text = " ".join(f"word{i}" for i in range(100))
    fake_upstream.enqueue(up.Reply([up.Text(text)]))
    pieces = [e.text for e in of_type(await collect(provider), TextDelta)]
    assert "".join(pieces) == text
    assert 2 <= len(pieces) <= 24


async def test_the_older_openai_style_answer(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            up.words("Old style answer"),
            legacy_shape=True,
            model="gemini-1.5-pro",
            response_id="seg-123",
            usage=up.Usage(prompt_tokens=4, completion_tokens=3, total_tokens=7),
        )
    )
    events = answer_events(await collect(provider, ask(model="gemini-1.5-pro")))
    assert events == [
        ResponseInfo(response_id="seg-123", model="gemini-1.5-pro"),
        TextDelta("Old style answer"),
        Usage(prompt_tokens=4, completion_tokens=3, total_tokens=7),
        Finish(reason="stop", raw="stop"),
    ]


async def test_the_gemini_native_answer_joins_all_text_parts(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "One. "}, {"text": "Two."}]},
                "finishReason": "STOP",
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
                ],
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        "modelVersion": "gemini-2.5-flash",
    }
    fake_upstream.enqueue(up.ErrorReply(200, body))
    events = answer_events(await collect(provider))
    assert text_of(events) == "One. Two."
    assert of_type(events, ProviderExtras)[-1].data == {
        "safety_ratings": body["candidates"][0]["safetyRatings"]
    }
    assert events[-1] == Finish(reason="stop", raw="STOP")


async def test_a_safety_ending_with_no_parts(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(finish="SAFETY"))
    events = await collect(provider)
    assert of_type(events, TextDelta) == []
    assert events[-1] == Finish(reason="safety", raw="SAFETY")


async def test_a_blocked_prompt(provider: SegmindProvider, fake_upstream: up.FakeUpstream) -> None:
    fake_upstream.enqueue(up.Reply(blocked="SAFETY"))
    _, error = await collect_until_error(provider)
    assert type(error) is PromptBlockedError
    assert error.message.startswith("Your prompt was blocked:")
    assert "safety settings" not in error.message  # Segmind has none to relax


async def test_a_thought_signature_goes_back_byte_for_byte(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Signed answer.", signature=SIG)]))
    first = await collect(provider, ask(model="gemini-3-pro"))
    extras = of_type(first, ProviderExtras)[-1].data
    history = (
        ChatMessage.of_text("user", "Hello"),
        ChatMessage(role="assistant", parts=(TextPart("Signed answer."),), extras=extras),
        ChatMessage.of_text("user", "Go on"),
    )
    await collect(provider, ChatRequest(model="gemini-3-pro", messages=history))
    contents = fake_upstream.last_request.json["messages"]["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"text": "Signed answer.", "thoughtSignature": SIG}],
    }
    assert f'"thoughtSignature":"{SIG}"'.encode() in fake_upstream.last_request.body


# --- errors -----------------------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(
        up.ErrorReply.segmind(401, "Invalid API key"),
        AuthenticationError,
        "Invalid API key",
        id="401",
    ),
    pytest.param(
        up.ErrorReply.segmind(404, "Model not found"),
        ModelUnavailableError,
        "Model not found",
        id="404",
    ),
    pytest.param(
        up.ErrorReply.html(405, "405 Not Allowed"),
        ModelUnavailableError,
        "405 Not Allowed",
        id="405-html",
    ),
    pytest.param(
        up.ErrorReply.segmind(406, "Not enough credits"),
        InsufficientCreditsError,
        "Not enough credits",
        id="406-credits",
    ),
    pytest.param(
        up.ErrorReply.segmind(406, "Invalid Content-Type header"),
        BadRequestError,
        "Invalid Content-Type header",
        id="406-content-type",
    ),
    pytest.param(
        up.ErrorReply.segmind(410, "This model has been retired"),
        ModelUnavailableError,
        "retired",
        id="410",
    ),
    pytest.param(
        up.ErrorReply.segmind(422, "messages.contents: field required"),
        BadRequestError,
        "field required",
        id="422",
    ),
    pytest.param(
        up.ErrorReply.segmind(500, "Internal Server Error"),
        UpstreamError,
        "Internal Server Error",
        id="500",
    ),
    pytest.param(
        up.ErrorReply.segmind(504, "Upstream timed out"),
        UpstreamTimeout,
        "Upstream timed out",
        id="504",
    ),
    pytest.param(
        up.ErrorReply(200, {"error": "Model is loading, try later"}),
        UpstreamError,
        "Model is loading",
        id="200-with-error",
    ),
]


@pytest.mark.parametrize(("reply", "kind", "reason"), ERROR_CASES)
async def test_error_bodies_and_statuses(
    provider: SegmindProvider,
    fake_upstream: up.FakeUpstream,
    reply: up.ErrorReply,
    kind: type[ProviderError],
    reason: str,
) -> None:
    fake_upstream.enqueue(reply)
    events, error = await collect_until_error(provider)
    assert answer_events(events) == []
    assert type(error) is kind
    assert "(upstream said: " in error.message
    assert reason in error.message
    assert any(word in error.message.lower() for word in ("check", "retry", "choose", "top it"))


async def test_429_waits_until_the_reset_time(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake_upstream.enqueue(
        up.ErrorReply.segmind(
            429, "Rate limit exceeded: 5 RPM", headers={"x-rate-limit-reset-at-utc": reset}
        )
    )
    _, error = await collect_until_error(provider)
    assert type(error) is RateLimitError
    assert error.retryable
    assert 15 < error.retry_after <= 20


async def test_a_success_status_with_an_html_page(
    provider: SegmindProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.ErrorReply(200, "<html>maintenance</html>", content_type="text/html"))
    _, error = await collect_until_error(provider)
    assert type(error) is MalformedResponseError


async def test_a_truncated_body(provider: SegmindProvider, fake_upstream: up.FakeUpstream) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Lost"), up.Drop()]))
    events, error = await collect_until_error(provider)
    assert of_type(events, TextDelta) == []
    assert type(error) is UpstreamConnectionError


LEAKY = [
    pytest.param(up.ErrorReply.segmind(401, f"Invalid API key {up.ECHO_KEY}"), id="401"),
    pytest.param(up.ErrorReply.html(405, f"405 {up.ECHO_KEY}", up.ECHO_KEY), id="405-html"),
    pytest.param(up.ErrorReply(200, {"error": f"bad key {up.ECHO_KEY}"}), id="200-error"),
    pytest.param(
        up.ErrorReply.segmind(500, "boom", headers={"x-request-id": f"r-{up.ECHO_KEY}"}),
        id="request-id",
    ),
]


@pytest.mark.parametrize("reply", LEAKY)
async def test_the_api_key_never_appears_in_an_error_or_a_log(
    provider: SegmindProvider,
    fake_upstream: up.FakeUpstream,
    reply: up.ErrorReply,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_upstream.enqueue(reply)
    events, error = await collect_until_error(provider)
    assert fake_upstream.last_request.api_key == KEY
    for text in (
        error.message,
        error.detail,
        repr(error.args),
        error.upstream_request_id or "",
        "".join(traceback.format_exception(error)),
        repr(events),
        caplog.text,
    ):
        assert KEY not in text
    assert "[redacted]" in error.message + error.detail + (error.upstream_request_id or "")


# --- Stop -------------------------------------------------------------------------------------


async def test_stop_while_revealing_keeps_what_was_shown(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    provider = make_provider(http_client, fake_upstream.segmind_base_url, reveal_seconds=60)
    fake_upstream.enqueue(up.Reply([up.Text(" ".join(["word"] * 50))]))
    events = await provider_kit.cancel_after(provider, ask(), TextDelta)
    shown = text_of(events)
    assert shown
    assert len(shown) < len(" ".join(["word"] * 50))
