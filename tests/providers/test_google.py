"""Google's Gemini API adapter against the fake upstream, over real sockets; and thought
signatures round-tripping on all three routes."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chatapp.providers import catalog
from chatapp.providers.errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    ModelUnavailableError,
    PromptBlockedError,
    ProviderError,
    RateLimitError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.types import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    ImagePart,
    ProviderExtras,
    ReasoningDelta,
    ResponseInfo,
    TextDelta,
    TextPart,
    Usage,
)
from tests import provider_kit
from tests.fakes import upstream as up
from tests.fakes.gemini_schema import validate_gemini_response
from tests.provider_kit import of_type, text_of

pytestmark = pytest.mark.usefixtures("transport")

KEY = "AIzaSy-gemini-0123456789abcdefABCDEF"
MODEL = "gemini-2.5-flash"
SIG = base64.b64encode(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(9))).decode()
SIG2 = base64.b64encode(hashlib.sha512(b"second").digest()).decode()
RATINGS = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


def make_provider(client: httpx.AsyncClient | None, base_url: str) -> GeminiProvider:
    return GeminiProvider(alias="gemini", client=client, api_key=KEY, base_url=base_url)


@pytest.fixture
def provider(http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream) -> GeminiProvider:
    return make_provider(http_client, fake_upstream.gemini_base_url)


@pytest.fixture(autouse=True)
def no_key_travels_in_a_url(fake_upstream: up.FakeUpstream) -> Iterator[None]:
    """No key ever travels in a URL (every body is validated by the fake_upstream fixture)."""
    yield
    for record in fake_upstream.chat_requests:
        assert "key" not in record.query
        assert KEY not in record.path


def ask(text: str = "Hello", **kwargs: Any) -> ChatRequest:
    kwargs.setdefault("model", MODEL)
    return ChatRequest(messages=(ChatMessage.of_text("user", text),), **kwargs)


collect, collect_until_error = provider_kit.collectors(ask)


def merged_extras(events: list[Event]) -> dict[str, Any]:
    """What the run stores on the message (it deep-merges ProviderExtras)."""
    merged: dict[str, Any] = {}
    for event in of_type(events, ProviderExtras):
        merged.update(event.data)
    return merged


def sse_chunks(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: ")]


# --- the happy path ---------------------------------------------------------------------------


async def test_streams_info_text_usage_and_finish(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            # Gemini's chunks carry several tokens each.
            [up.Text("Hello there, "), up.Text("how are "), up.Text("you today?")],
            model="gemini-2.5-flash-001",
            response_id="resp-abc",
        )
    )
    events = await collect(provider)

    assert events[0] == ResponseInfo(response_id="resp-abc", model="gemini-2.5-flash-001")
    assert len(of_type(events, ResponseInfo)) == 1
    assert [e.text for e in of_type(events, TextDelta)] == [
        "Hello there, ",
        "how are ",
        "you today?",
    ]
    # Cumulative usage in every chunk: the last report is the total.
    usage = of_type(events, Usage)
    assert usage[-1] == Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5)
    assert [u.completion_tokens for u in usage] == [1, 2, 3]
    assert events[-1] == Finish(reason="stop", raw="STOP")
    # Text and finishReason arrived in the same, last chunk: no extra chunk was needed.
    record = fake_upstream.last_request
    assert not record.client_disconnected


async def test_sends_the_documented_request(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    image = b"\x89PNG\r\n\x1a\n-not-really-a-png"
    request = ChatRequest(
        model=MODEL,
        system="Be brief.",
        request_id="0f8c2a4e6b1d4c3e9a7f1234567890ab",
        messages=(
            ChatMessage.of_text("user", "First question"),
            ChatMessage.of_text("assistant", "First answer"),
            ChatMessage(
                role="user",
                parts=(TextPart("What is this?"), ImagePart("image/png", image, 10, 10)),
            ),
        ),
        options={
            "temperature": 0.5,
            "max_tokens": 256,
            "stop": ["END"],
            "seed": 7,
            "safety_settings": {"HARM_CATEGORY_HARASSMENT": "BLOCK_ONLY_HIGH"},
        },
    )
    await collect(provider, request)

    record = fake_upstream.wait_for_requests(1)[0]
    assert record.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert record.query == {"alt": "sse"}
    assert record.headers["x-goog-api-key"] == KEY
    assert "authorization" not in record.headers
    assert record.headers["content-type"] == "application/json"
    assert record.headers["accept"] == "text/event-stream"
    assert record.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "First question"}]},
            {"role": "model", "parts": [{"text": "First answer"}]},
            {
                "role": "user",
                "parts": [
                    {"text": "What is this?"},
                    {
                        "inlineData": {
                            "mimeType": "image/png",
                            "data": base64.b64encode(image).decode(),
                        }
                    },
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.5,
            "maxOutputTokens": 256,
            "stopSequences": ["END"],
            "seed": 7,
        },
        "safetySettings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}
        ],
    }


async def test_sends_no_system_instruction_and_no_config_when_none_are_set(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    await collect(provider, ask(system="  "))
    assert fake_upstream.last_request.json == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]
    }


FORM_VALUES = {
    "temperature": "1",
    "top_p": "0.95",
    "top_k": "40",
    "max_tokens": "1024",
    "frequency_penalty": "-0.5",
    "presence_penalty": "0.25",
    "stop": "END\n###\nA\nB\nC",
    "seed": "42",
    "candidate_count": "2",
    "response_format": "json_schema",
    "json_schema": '{"type": "object", "properties": {"city": {"type": "string"}}}',
    "thinking_budget": "-1",
    "thinking_level": "high",
    "safety_settings": "harassment=BLOCK_NONE\ndangerous_content=OFF",
}


@pytest.mark.parametrize("spec", catalog.CATALOG["gemini"], ids=lambda spec: spec.id)
async def test_catalog_options_reach_the_wire_typed_and_valid(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream, spec: catalog.ModelSpec
) -> None:
    raw = {name: value for name, value in FORM_VALUES.items() if name in spec.ranges}
    options, errors = catalog.validate_options(spec, raw)
    assert errors == {}
    await collect(provider, ask(model=spec.id, options=catalog.options_to_send(spec, options)))

    record = fake_upstream.last_request
    assert record.path == f"/v1beta/models/{spec.id}:streamGenerateContent"
    sent = record.json
    config = sent["generationConfig"]
    assert config["temperature"] == 1.0
    assert type(config["temperature"]) is float
    assert (config["topK"], config["maxOutputTokens"], config["seed"]) == (40, 1024, 42)
    assert config["stopSequences"] == ["END", "###", "A", "B", "C"]
    assert config["candidateCount"] == 2
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
    }
    assert config["thinkingConfig"] == (
        {"thinkingBudget": -1, "includeThoughts": True}
        if "thinking_budget" in spec.ranges
        else {"thinkingLevel": "HIGH", "includeThoughts": True}
    )
    assert sent["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "OFF"},
    ]
    # The autouse fixture validates the body with google-genai's types.


async def test_both_thinking_options_fail_before_any_request(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    events, error = await collect_until_error(
        provider, ask(options={"thinking_budget": 100, "thinking_level": "LOW"})
    )
    assert events == []
    assert type(error) is BadRequestError
    assert fake_upstream.requests == []


# --- stream shapes ----------------------------------------------------------------------------


async def test_thought_summaries_are_reasoning_and_count_in_usage(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Reasoning("Thinking about it. "), up.Reasoning("Done."), up.Text("Answer")])
    )
    events = await collect(provider)
    assert [e.text for e in of_type(events, ReasoningDelta)] == ["Thinking about it. ", "Done."]
    assert text_of(events) == "Answer"
    assert of_type(events, Usage)[-1].reasoning_tokens == 2


async def test_a_safety_ending_with_no_parts(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(finish="SAFETY", safety_ratings=RATINGS))
    events = await collect(provider)
    assert of_type(events, TextDelta) == []
    assert events[-1] == Finish(reason="safety", raw="SAFETY")
    assert merged_extras(events)["safety_ratings"] == RATINGS


async def test_a_safety_ending_after_some_text_keeps_the_text(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Text("Here is how "), up.Text("you")], finish="SAFETY", safety_ratings=RATINGS)
    )
    events = await collect(provider)
    assert text_of(events) == "Here is how you"
    assert events[-1] == Finish(reason="safety", raw="SAFETY")


@pytest.mark.parametrize("steps", [[], [up.Text("Cut sho")]], ids=["no-parts", "partial"])
async def test_max_tokens(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream, steps: list[up.Step]
) -> None:
    fake_upstream.enqueue(up.Reply(steps, finish="length"))
    events = await collect(provider)
    assert text_of(events) == "".join(s.text for s in steps)
    assert events[-1] == Finish(reason="length", raw="MAX_TOKENS")


async def test_a_blocked_prompt_is_an_error_that_says_why(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(blocked="PROHIBITED_CONTENT"))
    events, error = await collect_until_error(provider)
    assert of_type(events, TextDelta) == []
    assert merged_extras(events)["prompt_feedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert type(error) is PromptBlockedError
    assert error.message.startswith("Your prompt was blocked: it may contain prohibited content")
    assert error.block_reason == "PROHIBITED_CONTENT"
    assert not error.retryable


async def test_a_blocked_prompt_as_one_json_body(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(blocked="SAFETY", safety_ratings=RATINGS, stream_mode="json"))
    _, error = await collect_until_error(provider)
    assert type(error) is PromptBlockedError
    assert "(dangerous content)" in error.message


async def test_a_separate_closing_chunk(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    """Google sometimes closes with a chunk holding an empty text part and the finishReason."""
    fake_upstream.enqueue(up.Reply([up.Text("All "), up.Text("done"), up.Comment()]))
    events = await collect(provider)
    assert text_of(events) == "All done"
    assert events[-1] == Finish(reason="stop", raw="STOP")


async def test_a_close_without_a_finish_reason_is_an_incomplete_answer(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(up.words("Partial answer"), finish=None))
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Partial answer"
    assert type(error) is UpstreamConnectionError
    assert "ended before the answer was complete" in error.message


async def test_an_empty_stream_is_an_upstream_error(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(finish=None, usage=None))
    events, error = await collect_until_error(provider)
    assert events == []
    assert type(error) is UpstreamError
    assert error.retryable


async def test_a_bare_json_error_mid_stream(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Text("Some "),
                up.Text("text "),
                up.bare_json(
                    {
                        "error": up.google_error(
                            503, "The model is overloaded. Please try again later.", "UNAVAILABLE"
                        )
                    }
                ),
                up.Text("never"),
            ]
        )
    )
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Some text "
    assert type(error) is UpstreamError
    assert error.status == 503
    assert "The model is overloaded" in error.message


async def test_a_data_error_mid_stream(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Text("Some "),
                up.Data(
                    {"error": up.google_error(429, "Quota", "RESOURCE_EXHAUSTED", retry_delay="2s")}
                ),
            ]
        )
    )
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Some "
    assert type(error) is RateLimitError
    assert error.retry_after == 2.0


async def test_a_malformed_data_line(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Good "), up.Raw(b"data: {not json\n\n")]))
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Good "
    assert type(error) is MalformedResponseError
    assert "{not json" in error.detail


async def test_lines_split_across_network_reads(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    chunk = {"candidates": [{"content": {"parts": [{"text": "splitté "}], "role": "model"}}]}
    line = b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\r\n\r\n"
    cut = line.index("é".encode()) + 1  # inside the two bytes of "é"
    fake_upstream.enqueue(
        up.Reply([up.Raw(line[:cut]), up.Gate("first"), up.Raw(line[cut:]), up.Text("end")])
    )
    task = asyncio.create_task(collect(provider))
    await fake_upstream.wait_for_gate_async("first")
    fake_upstream.release("first")
    assert text_of(await task) == "splitté end"


async def test_a_json_body_instead_of_a_stream(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [up.Reasoning("Hmm"), up.Text("Whole "), up.Text("answer", signature=SIG)],
            stream_mode="json",
            response_id="resp-json",
            usage=up.Usage(
                prompt_tokens=2, completion_tokens=3, reasoning_tokens=1, total_tokens=6
            ),
        )
    )
    events = await collect(provider)
    assert events == [
        ResponseInfo(response_id="resp-json", model=MODEL),
        ReasoningDelta("Hmm"),
        TextDelta("Whole "),
        TextDelta("answer"),
        Usage(prompt_tokens=2, completion_tokens=3, reasoning_tokens=1, total_tokens=6),
        ProviderExtras(
            {
                "gemini": {
                    "route": "gemini",
                    "model": MODEL,
                    "parts": [{"at": 6, "text": "answer", "thoughtSignature": SIG}],
                }
            }
        ),
        Finish(reason="stop", raw="STOP"),
    ]


# --- errors -----------------------------------------------------------------------------------

KEY_INVALID = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID",
    "domain": "googleapis.com",
}

ERROR_CASES = [
    pytest.param(
        up.ErrorReply.google(400, "Invalid value at 'generation_config.top_k'", "INVALID_ARGUMENT"),
        BadRequestError,
        400,
        "Invalid value at 'generation_config.top_k'",
        None,
        id="400",
    ),
    pytest.param(
        up.ErrorReply.google(
            400,
            "API key not valid. Please pass a valid API key.",
            "INVALID_ARGUMENT",
            details=[KEY_INVALID],
        ),
        AuthenticationError,
        400,
        "API key not valid",
        None,
        id="400-key-invalid",
    ),
    pytest.param(
        up.ErrorReply.google(
            401, "Request had invalid authentication credentials.", "UNAUTHENTICATED"
        ),
        AuthenticationError,
        401,
        "invalid authentication credentials",
        None,
        id="401",
    ),
    pytest.param(
        up.ErrorReply.google(403, "The caller does not have permission", "PERMISSION_DENIED"),
        AuthenticationError,
        403,
        "The caller does not have permission",
        None,
        id="403",
    ),
    pytest.param(
        up.ErrorReply.google(
            404, "models/gemini-9 is not found for API version v1beta", "NOT_FOUND"
        ),
        ModelUnavailableError,
        404,
        "is not found",
        None,
        id="404",
    ),
    pytest.param(
        up.ErrorReply.google_rate_limited(retry_delay="37s"),
        RateLimitError,
        429,
        "exceeded your current quota",
        37.0,
        id="429-retry-delay",
    ),
    pytest.param(
        up.ErrorReply.google(429, "Resource exhausted", "RESOURCE_EXHAUSTED", as_list=True),
        RateLimitError,
        429,
        "Resource exhausted",
        None,
        id="429-list-wrapped",
    ),
    pytest.param(
        up.ErrorReply.google(500, "An internal error has occurred.", "INTERNAL"),
        UpstreamError,
        500,
        "An internal error has occurred",
        None,
        id="500",
    ),
    pytest.param(
        up.ErrorReply.google(503, "The model is overloaded.", "UNAVAILABLE"),
        UpstreamError,
        503,
        "overloaded",
        None,
        id="503",
    ),
    pytest.param(
        up.ErrorReply.google(504, "Deadline exceeded", "DEADLINE_EXCEEDED"),
        UpstreamTimeout,
        504,
        "Deadline exceeded",
        None,
        id="504",
    ),
    pytest.param(
        up.ErrorReply.html(502), UpstreamError, 502, "502 Bad Gateway", None, id="502-html"
    ),
]


@pytest.mark.parametrize(("reply", "kind", "status", "reason", "retry_after"), ERROR_CASES)
async def test_error_bodies_and_statuses(
    provider: GeminiProvider,
    fake_upstream: up.FakeUpstream,
    reply: up.ErrorReply,
    kind: type[ProviderError],
    status: int,
    reason: str,
    retry_after: float | None,
) -> None:
    fake_upstream.enqueue(reply)
    events, error = await collect_until_error(provider)
    assert events == []
    assert type(error) is kind
    assert error.status == status
    assert f"(upstream said: {reason}" in error.message or reason in error.message
    assert error.retry_after == retry_after
    # Each message says what to do.
    assert any(word in error.message.lower() for word in ("check", "retry", "choose"))


async def test_the_fakes_own_key_check_is_an_authentication_error(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.api_key = "another-key-entirely"
    _, error = await collect_until_error(provider)
    assert type(error) is AuthenticationError
    assert "API key not valid" in error.message
    assert not error.retryable


# --- transport failures -----------------------------------------------------------------------


async def test_a_drop_after_the_finish_keeps_the_answer(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    closing = {
        "candidates": [
            {"content": {"parts": [{"text": "!"}], "role": "model"}, "finishReason": "STOP"}
        ]
    }
    fake_upstream.enqueue(
        up.Reply([up.Text("Complete"), up.Data(closing), up.Drop()], finish=None, usage=None)
    )
    events = await collect(provider)
    assert text_of(events) == "Complete!"
    assert events[-1] == Finish(reason="stop", raw="STOP")


# --- the key never leaks ----------------------------------------------------------------------

LEAKY_REPLIES = [
    pytest.param(
        up.ErrorReply.google(400, f"API key {up.ECHO_KEY} not valid", "INVALID_ARGUMENT"),
        id="error-message",
    ),
    pytest.param(
        up.ErrorReply.google(429, f"quota for {up.ECHO_KEY}", "RESOURCE_EXHAUSTED", as_list=True),
        id="list-wrapped",
    ),
    pytest.param(up.ErrorReply.html(502, f"502 {up.ECHO_KEY}", up.ECHO_KEY), id="html"),
    pytest.param(
        up.ErrorReply(500, "x" * (64 * 1024 - len(KEY) + 4) + up.ECHO_KEY),
        id="key-across-the-read-limit",
    ),
    pytest.param(
        up.Reply(
            [
                up.Text("a"),
                up.bare_json({"error": up.google_error(503, f"key={up.ECHO_KEY}", "UNAVAILABLE")}),
            ]
        ),
        id="bare-json-mid-stream",
    ),
    pytest.param(
        up.Reply([up.Text("a"), up.Raw(f"data: {{{up.ECHO_KEY}\n\n".encode())]),
        id="malformed-line",
    ),
    pytest.param(
        up.ErrorReply.google(
            500, "boom", "INTERNAL", headers={"x-request-id": f"req-{up.ECHO_KEY}"}
        ),
        id="request-id-header",
    ),
]


@pytest.mark.parametrize("reply", LEAKY_REPLIES)
async def test_the_api_key_never_appears_in_an_error_or_a_log(
    provider: GeminiProvider,
    fake_upstream: up.FakeUpstream,
    reply: up.Reply | up.ErrorReply,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs every request URL at this level
    fake_upstream.enqueue(reply)
    events, error = await collect_until_error(provider)

    record = fake_upstream.last_request
    assert record.api_key == KEY
    assert KEY not in record.path
    assert "key" not in record.query
    exposed = [
        str(error),
        error.message,
        error.detail,
        repr(error.args),
        error.upstream_request_id or "",
        "".join(traceback.format_exception(error)),
        repr(events),
        caplog.text,
    ]
    for text in exposed:
        assert KEY not in text
        assert KEY[:-4] not in text
    if record.reply is not None and "x" * 1000 not in str(record.reply):
        # The key was there whole, and was replaced (the read limit cuts the other case).
        assert "[redacted]" in error.message + error.detail + (error.upstream_request_id or "")


async def test_the_api_key_never_appears_in_response_info(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    chunk = {
        "candidates": [
            {"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP"}
        ],
        "modelVersion": f"m-{up.ECHO_KEY}",
        "responseId": f"r-{up.ECHO_KEY}",
    }
    fake_upstream.enqueue(up.Reply([up.Data(chunk)], finish=None, usage=None))
    events = await collect(provider)
    assert KEY not in repr(events)
    assert events[0] == ResponseInfo(response_id="r-[redacted]", model="m-[redacted]")


# --- thought signatures on all three routes ---------------------------------------------------


# The model each route's fake names in its signed answer.
ROUTE_MODELS = {
    "aimlapi": "google/gemini-3-flash-preview",
    "gemini": "gemini-3-flash-preview",
    "segmind": "gemini-3-pro",
}


def model_turn(body: dict[str, Any], route: str) -> Any:
    """The earlier answer as the second request sent it."""
    if route == "aimlapi":
        return body["messages"][1]
    contents = body["messages"]["contents"] if route == "segmind" else body["contents"]
    return contents[1]


@pytest.mark.parametrize("route", provider_kit.ROUTES)
async def test_a_thought_signature_is_sent_back_byte_for_byte(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream, route: str
) -> None:
    model = ROUTE_MODELS[route]
    provider = provider_kit.route_provider(route, http_client, fake_upstream, api_key=KEY)
    fake_upstream.enqueue(
        up.Reply(
            [up.Text("The answer", signature=SIG), up.Text(" is 42."), up.Text("", signature=SIG2)]
        )
    )
    first = await collect(provider, ask("Question", model=model))
    answer = text_of(first)
    assert answer == "The answer is 42."

    # What the run keeps on the message, given back as the next turn's history.
    history = (
        ChatMessage.of_text("user", "Question"),
        ChatMessage(role="assistant", parts=(TextPart(answer),), extras=merged_extras(first)),
        ChatMessage.of_text("user", "Why?"),
    )
    await collect(provider, ChatRequest(model=model, messages=history))

    second = fake_upstream.last_request
    turn = model_turn(second.json, route)
    if route == "aimlapi":
        assert turn == {
            "role": "assistant",
            "content": "The answer is 42.",
            "extra_content": {"google": {"thought_signature": SIG2}},
        }
    else:
        assert turn == {
            "role": "model",
            "parts": [
                {"text": "The answer", "thoughtSignature": SIG},
                {"text": " is 42."},
                {"text": "", "thoughtSignature": SIG2},
            ],
        }
        # On the wire, byte for byte: the very characters, no escaping of "/" or "+".
        assert f'"thoughtSignature":"{SIG}"'.encode() in second.body
    assert SIG2.encode() in second.body


async def test_a_signature_is_not_sent_to_another_model(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Answer", signature=SIG)]))
    first = await collect(provider, ask(model="gemini-2.5-pro"))
    history = (
        ChatMessage.of_text("user", "Hello"),
        ChatMessage(role="assistant", parts=(TextPart("Answer"),), extras=merged_extras(first)),
        ChatMessage.of_text("user", "More"),
    )
    await collect(provider, ChatRequest(model=MODEL, messages=history))
    assert fake_upstream.last_request.json["contents"][1] == {
        "role": "model",
        "parts": [{"text": "Answer"}],
    }
    assert SIG.encode() not in fake_upstream.last_request.body


# --- the fake speaks valid Gemini -------------------------------------------------------------


def test_the_fakes_chunks_are_valid_responses(fake_upstream: up.FakeUpstream) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [up.Reasoning("Hm", signature=SIG), up.Text("a"), up.Text("b", signature=SIG2)],
            safety_ratings=RATINGS,
        ),
        up.Reply(finish="SAFETY", safety_ratings=RATINGS),
        up.Reply(blocked="SAFETY", safety_ratings=RATINGS),
        up.Reply([up.Text("x"), up.Text("y")], stream_mode="json", finish="length"),
    )
    url = f"{fake_upstream.gemini_base_url}/models/{MODEL}:streamGenerateContent?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    headers = {"x-goog-api-key": KEY}
    responses = []
    for _ in range(3):
        response = httpx.post(url, json=body, headers=headers)
        assert response.headers["content-type"].startswith("text/event-stream")
        responses.append(sse_chunks(response.text))
    whole = httpx.post(
        url.replace("streamGenerateContent?alt=sse", "generateContent"), json=body, headers=headers
    )
    for chunk in [c for chunks in responses for c in chunks] + [whole.json()]:
        validate_gemini_response(chunk)

    normal, safety, blocked = responses
    assert normal[-1]["candidates"][0]["finishReason"] == "STOP"
    assert normal[-1]["candidates"][0]["content"]["parts"] == [
        {"text": "b", "thoughtSignature": SIG2}
    ]
    assert normal[0]["candidates"][0]["content"]["parts"][0]["thought"] is True
    assert safety == [
        {
            "candidates": [{"index": 0, "finishReason": "SAFETY", "safetyRatings": RATINGS}],
            "usageMetadata": safety[0]["usageMetadata"],
            "modelVersion": MODEL,
            "responseId": safety[0]["responseId"],
        }
    ]
    assert "candidates" not in blocked[0]
    assert blocked[0]["promptFeedback"] == {"blockReason": "SAFETY", "safetyRatings": RATINGS}
    assert whole.json()["candidates"][0]["content"]["parts"] == [{"text": "xy"}]
    assert whole.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_the_fake_refuses_a_key_in_the_url_and_a_missing_key(
    fake_upstream: up.FakeUpstream,
) -> None:
    url = f"{fake_upstream.gemini_base_url}/models/{MODEL}:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    in_url = httpx.post(url, params={"alt": "sse", "key": KEY}, json=body)
    assert in_url.status_code == 400
    assert "x-goog-api-key" in in_url.json()["error"]["message"]
    missing = httpx.post(url, params={"alt": "sse"}, json=body)
    assert (missing.status_code, missing.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    empty = httpx.post(url, params={"alt": "sse"}, json={}, headers={"x-goog-api-key": KEY})
    assert empty.status_code == 400
    fake_upstream.reset()  # those hand-made requests are not the adapters'


def test_the_default_reply_echoes_the_prompt(fake_upstream: up.FakeUpstream) -> None:
    url = f"{fake_upstream.gemini_base_url}/models/{MODEL}:generateContent"
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Describe"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                ],
            }
        ]
    }
    answer = httpx.post(url, json=body, headers={"x-goog-api-key": KEY}).json()
    assert answer["candidates"][0]["content"]["parts"] == [{"text": "Echo: Describe [1 image]"}]


def test_replies_are_frozen_dataclasses_with_gemini_fields() -> None:
    reply = up.Reply(blocked="SAFETY")
    assert dataclasses.replace(reply, blocked=None).blocked is None
    assert up.Text("x", signature="s").signature == "s"
