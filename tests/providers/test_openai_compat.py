"""The OpenAI-compatible adapter against the fake upstream, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
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
    ProviderError,
    RateLimitError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from chatapp.providers.openai_compat import OpenAICompatProvider
from chatapp.providers.types import (
    ChatMessage,
    ChatRequest,
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
from tests.provider_kit import of_type, text_of

pytestmark = pytest.mark.usefixtures("transport")

KEY = "sk-aiml-0123456789abcdef0123456789"
MODEL = "google/gemini-2.5-flash"


def make_provider(client: httpx.AsyncClient | None, base_url: str) -> OpenAICompatProvider:
    return OpenAICompatProvider(alias="aimlapi", client=client, api_key=KEY, base_url=base_url)


@pytest.fixture
def provider(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> OpenAICompatProvider:
    return make_provider(http_client, fake_upstream.openai_base_url)


def ask(text: str = "Hello", **kwargs: Any) -> ChatRequest:
    kwargs.setdefault("model", MODEL)
    return ChatRequest(messages=(ChatMessage.of_text("user", text),), **kwargs)


collect, collect_until_error = provider_kit.collectors(ask)


def chunk_line(content: str | None = None, *, finish: str | None = None, **delta: Any) -> bytes:
    if content is not None:
        delta["content"] = content
    chunk = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return json.dumps(chunk, ensure_ascii=False).encode()


# --- the happy path ---------------------------------------------------------------------------


async def test_streams_info_text_usage_and_finish(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            up.words("Hello there, world"),
            model="google/gemini-3.1-pro-preview",
            inference_id="inf-123",
            response_id="chatcmpl-abc",
            usage=up.Usage(
                prompt_tokens=11,
                completion_tokens=7,
                total_tokens=25,
                reasoning_tokens=7,
                credits_used=420,
                usd_spent=0.00021,
            ),
        )
    )
    events = await collect(provider)

    assert events[0] == ResponseInfo(
        request_id="inf-123", response_id="chatcmpl-abc", model="google/gemini-3.1-pro-preview"
    )
    assert len(of_type(events, ResponseInfo)) == 1
    assert text_of(events) == "Hello there, world"
    # The role-only first chunk yields no empty delta.
    assert all(e.text for e in of_type(events, TextDelta))
    # Exactly as sent: total is not prompt + completion here, and is not "corrected".
    assert of_type(events, Usage)[-1] == Usage(
        prompt_tokens=11,
        completion_tokens=7,
        reasoning_tokens=7,
        total_tokens=25,
        credits_used=420,
        usd_spent=0.00021,
    )
    assert events[-1] == Finish(reason="stop", raw="stop")


async def test_sends_the_documented_request(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    image = b"\x89PNG\r\n\x1a\n-not-really-a-png"
    request = ChatRequest(
        model=MODEL,
        system="Be brief.",
        request_id="0f8c2a4e-6b1d-4c3e-9a7f-1234567890ab",
        messages=(
            ChatMessage.of_text("user", "First question"),
            ChatMessage(
                role="assistant",
                parts=(TextPart("First answer"),),
                extras={
                    "google": {"thought_signature": "c2ln/+==", "traffic_type": "ON_DEMAND"},
                    "google_echo": {"route": "aimlapi", "model": MODEL},
                },
            ),
            ChatMessage(
                role="user",
                parts=(TextPart("What is this?"), ImagePart("image/png", image, 10, 10)),
            ),
        ),
        options={"temperature": 0.5, "max_tokens": 256, "stop": ["END"], "seed": 7},
    )
    await collect(provider, request)

    record = fake_upstream.wait_for_requests(1)[0]
    assert record.path == "/v1/chat/completions"
    assert record.headers["authorization"] == f"Bearer {KEY}"
    assert record.headers["content-type"] == "application/json"
    assert record.headers["accept"] == "text/event-stream"
    assert record.headers["x-client-request-id"] == request.request_id
    data_uri = "data:image/png;base64," + base64.b64encode(image).decode()
    assert record.json == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "First question"},
            {
                "role": "assistant",
                "content": "First answer",
                "extra_content": {
                    "google": {"thought_signature": "c2ln/+==", "traffic_type": "ON_DEMAND"}
                },
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": data_uri}},
                ],
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "max_tokens": 256,
        "stop": ["END"],
        "seed": 7,
    }


async def test_sends_no_system_message_and_no_options_when_none_are_set(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    await collect(provider, ask(system="  "))
    assert fake_upstream.last_request.json == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert "x-client-request-id" not in fake_upstream.last_request.headers


@pytest.mark.parametrize(
    ("request_id", "sent"),
    [
        ("abc:1.2_3-4", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("ünïcode", False),
        ("a/b", False),
    ],
)
async def test_client_request_id_is_sent_only_in_the_accepted_form(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream, request_id: str, sent: bool
) -> None:
    await collect(provider, ask(request_id=request_id))
    headers = fake_upstream.last_request.headers
    assert headers.get("x-client-request-id") == (request_id if sent else None)


FORM_VALUES = {
    "temperature": "1",
    "top_p": "0.95",
    "max_tokens": "1024",
    "max_completion_tokens": "2048",
    "frequency_penalty": "-0.5",
    "presence_penalty": "0.25",
    "stop": "END\n###",
    "seed": "42",
}


@pytest.mark.parametrize("spec", catalog.CATALOG["aimlapi"], ids=lambda spec: spec.id)
async def test_catalog_options_reach_the_wire_typed_and_valid(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream, spec: catalog.ModelSpec
) -> None:
    raw = {name: value for name, value in FORM_VALUES.items() if name in spec.ranges}
    options, errors = catalog.validate_options(spec, raw)
    assert errors == {}
    await collect(provider, ask(model=spec.id, options=catalog.options_to_send(spec, options)))

    sent = fake_upstream.last_request.json
    # docs/PROTOCOLS.md §1: legacy ids take `stream` alone (and report usage anyway).
    asked_usage = () if spec.legacy else ("stream_options",)
    assert set(sent) == {"model", "messages", "stream", *asked_usage, *raw}
    assert sent["model"] == spec.id
    assert sent["temperature"] == 1.0
    assert type(sent["temperature"]) is float
    assert type(sent["max_tokens"]) is int
    assert sent["stop"] == ["END", "###"]
    if not spec.legacy:
        assert sent["seed"] == 42
        assert type(sent["max_completion_tokens"]) is int
    # The autouse fixture validates the body against CreateChatCompletionRequest.


@pytest.mark.parametrize(
    "spec", [s for s in catalog.CATALOG["aimlapi"] if s.legacy], ids=lambda s: s.id
)
async def test_legacy_models_get_an_explicit_max_tokens(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream, spec: catalog.ModelSpec
) -> None:
    await collect(provider, ask(model=spec.id, options=catalog.options_to_send(spec, {})))
    sent = fake_upstream.last_request.json
    assert sent["max_tokens"] == spec.ranges["max_tokens"].default


async def test_integer_options_given_as_whole_floats_are_sent_as_integers(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    await collect(provider, ask(options={"max_tokens": 100.0, "seed": 3.0, "stop": "END"}))
    sent = fake_upstream.last_request.json
    assert (sent["max_tokens"], sent["seed"], sent["stop"]) == (100, 3, ["END"])
    assert type(sent["max_tokens"]) is int


# --- stream shapes ----------------------------------------------------------------------------


async def test_usage_is_reported_as_sent_even_when_partial(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("x")], usage=up.Usage(prompt_tokens=5, total_tokens=5)))
    usage = of_type(await collect(provider), Usage)
    assert usage == [Usage(prompt_tokens=5, total_tokens=5)]


async def test_usage_and_cost_in_separate_chunks_are_combined(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Text("x"),
                up.Data(
                    {
                        **base,
                        "choices": [],
                        "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
                    }
                ),
                up.Data(
                    {
                        **base,
                        "choices": [],
                        "meta": {"usage": {"credits_used": 10, "usd_spent": 0.5}},
                    }
                ),
            ],
            usage=None,
        )
    )
    usage = of_type(await collect(provider), Usage)
    assert usage[-1] == Usage(
        prompt_tokens=4, completion_tokens=1, total_tokens=5, credits_used=10, usd_spent=0.5
    )


async def test_chunks_with_empty_choices_are_skipped(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    empty = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [],
    }
    fake_upstream.enqueue(up.Reply([up.Text("a"), up.Data(empty), up.Text("b")]))
    events = await collect(provider)
    assert text_of(events) == "ab"
    assert events[-1] == Finish(reason="stop", raw="stop")


async def test_extra_content_is_merged_and_kept_whole(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.ExtraContent({"google": {"thought_signature": "Zmlyc3Q="}}),
                up.Text("Answer"),
                up.ExtraContent({"google": {"traffic_type": "ON_DEMAND"}, "vendor": {"x": [1, 2]}}),
            ]
        )
    )
    extras = of_type(await collect(provider), ProviderExtras)
    signed_by = {"route": "aimlapi", "model": MODEL}
    assert extras[0].data == {"google": {"thought_signature": "Zmlyc3Q="}, "google_echo": signed_by}
    assert extras[-1].data == {
        "google": {"thought_signature": "Zmlyc3Q=", "traffic_type": "ON_DEMAND"},
        "vendor": {"x": [1, 2]},
        "google_echo": signed_by,
    }


async def test_a_signature_is_echoed_only_to_the_model_that_made_it(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    """Gemini refuses a thought signature made by another model (a 400, "Corrupted thought
    signature"): after a switch of model, the earlier answer goes back as plain text."""
    answer = ChatMessage(
        role="assistant",
        parts=(TextPart("Earlier answer"),),
        extras={
            "google": {"thought_signature": "c2ln"},
            "google_echo": {"route": "aimlapi", "model": "google/gemini-2.5-pro"},
        },
    )
    request = ChatRequest(
        model=MODEL,
        messages=(ChatMessage.of_text("user", "Q"), answer, ChatMessage.of_text("user", "Q2")),
    )
    await collect(provider, request)
    sent = fake_upstream.wait_for_requests(1)[0].json["messages"]
    assert sent[1] == {"role": "assistant", "content": "Earlier answer"}


async def test_reasoning_deltas(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Reasoning("Think"), up.Reasoning("ing"), up.Text("Done")]))
    events = await collect(provider)
    assert [e.text for e in of_type(events, ReasoningDelta)] == ["Think", "ing"]
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(i < first_text for i, e in enumerate(events) if isinstance(e, ReasoningDelta))


async def test_only_the_first_choice_is_read(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Text("A1", 0), up.Text("B1", 1), up.Text("A2", 0), up.Text("B2", 1)])
    )
    assert text_of(await collect(provider)) == "A1A2"


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("SAFETY", "other"),
    ],
)
async def test_finish_reasons(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream, raw: str, neutral: str
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("x")], finish=raw))
    assert (await collect(provider))[-1] == Finish(reason=neutral, raw=raw)


async def test_a_json_answer_instead_of_a_stream(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Reasoning("Hmm"),
                up.Text("Whole "),
                up.Text("answer"),
                up.ExtraContent({"google": {"thought_signature": "sig"}}),
            ],
            stream_mode="json",
            status=201,
            finish="length",
            model="gemini-1.5-pro",
            inference_id="inf-json",
            response_id="chatcmpl-json",
            usage=up.Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5),
        )
    )
    events = await collect(provider)
    assert events == [
        ResponseInfo(request_id="inf-json", response_id="chatcmpl-json", model="gemini-1.5-pro"),
        ReasoningDelta("Hmm"),
        TextDelta("Whole answer"),
        ProviderExtras(
            {
                "google": {"thought_signature": "sig"},
                "google_echo": {"route": "aimlapi", "model": MODEL},
            }
        ),
        Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5),
        Finish(reason="length", raw="length"),
    ]


async def test_eof_without_done_after_a_finish_is_a_normal_end(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(up.words("All here"), done=False))
    events = await collect(provider)
    assert text_of(events) == "All here"
    assert events[-1] == Finish(reason="stop", raw="stop")


async def test_eof_without_a_finish_is_an_incomplete_answer(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            up.words("Partial answer"), finish=None, usage=None, done=False, inference_id="inf-9"
        )
    )
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Partial answer"
    assert isinstance(error, UpstreamConnectionError)
    assert "ended before the answer was complete" in error.message
    assert error.upstream_request_id == "inf-9"


async def test_done_without_a_finish_reason_ends_normally(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("x")], finish=None))
    assert (await collect(provider))[-1] == Finish(reason="stop", raw="")


async def test_a_drop_after_the_finish_chunk_keeps_the_answer(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    finish = b"data: " + chunk_line(finish="stop") + b"\n\n"
    fake_upstream.enqueue(
        up.Reply([up.Text("Complete"), up.Raw(finish), up.Drop()], finish=None, usage=None)
    )
    events = await collect(provider)
    assert text_of(events) == "Complete"
    assert events[-1] == Finish(reason="stop", raw="stop")


async def test_sse_framing_variants(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    pretty = json.dumps(json.loads(chunk_line("multi-line ")), indent=1).encode()
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Raw(b"data: " + chunk_line("crlf ") + b"\r\n\r\n"),
                up.Raw(b"data: " + chunk_line("cr ") + b"\r\r"),
                up.Raw(
                    b": comment\nevent: message\nid: 7\nretry: 1000\ndata:"
                    + chunk_line("fields ")
                    + b"\n\n"
                ),
                up.Raw(b"".join(b"data: " + line + b"\n" for line in pretty.split(b"\n")) + b"\n"),
                up.Comment("keep-alive"),
                up.Text("sep\u2028ara\u2029tors\x85 "),
                up.Text("ünïcødé ✓"),
            ]
        )
    )
    events = await collect(provider)
    assert text_of(events) == "crlf cr fields multi-line sep\u2028ara\u2029tors\x85 ünïcødé ✓"


async def test_lines_split_across_network_reads(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    line = b"data: " + chunk_line("splitté ") + b"\r\n\r\n"
    cut = line.index("é".encode()) + 1  # inside the two bytes of "é"
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Raw(line[:cut]),
                up.Gate("first"),
                up.Raw(line[cut:-3]),
                up.Gate("second"),
                up.Raw(line[-3:]),  # "\n\r\n": the CRLF itself split after its CR
                up.Text("end"),
            ]
        )
    )
    task = asyncio.create_task(collect(provider))
    for gate in ("first", "second"):
        # Each half is on the wire, alone, before the next is written.
        await fake_upstream.wait_for_gate_async(gate)
        fake_upstream.release(gate)
    assert text_of(await task) == "splitté end"


async def test_several_json_chunks_in_one_event_are_still_read(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    event = b"data: " + chunk_line("one ") + b"\ndata: " + chunk_line("two") + b"\n\n"
    fake_upstream.enqueue(up.Reply([up.Raw(event)]))
    assert text_of(await collect(provider)) == "one two"


async def test_a_stream_without_the_event_stream_content_type_is_still_read(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(up.words("plain label"), headers={"Content-Type": "text/plain"}))
    assert text_of(await collect(provider)) == "plain label"


async def test_connections_are_reused_between_answers(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    first = await collect(provider, ask("one"))
    second = await collect(provider, ask("two"))
    assert (text_of(first), text_of(second)) == ("Echo: one", "Echo: two")
    # Both responses completed on the server side without the client hanging up early.
    assert [r.client_disconnected for r in fake_upstream.requests] == [False, False]


# --- errors -----------------------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(
        up.ErrorReply.bad_request(),
        BadRequestError,
        400,
        "temperature must not be greater than 2",
        id="400",
    ),
    pytest.param(
        up.ErrorReply.aimlapi(400, ["top_p must not be less than 0.1", "seed must be a number"]),
        BadRequestError,
        400,
        "top_p must not be less than 0.1; seed must be a number",
        id="400-message-list",
    ),
    pytest.param(
        up.ErrorReply.aimlapi(422, "Unprocessable"), BadRequestError, 422, "Unprocessable", id="422"
    ),
    pytest.param(
        up.ErrorReply.unauthorized(),
        AuthenticationError,
        401,
        "Invalid or missing API key",
        id="401",
    ),
    pytest.param(
        up.ErrorReply.out_of_credits(),
        InsufficientCreditsError,
        403,
        "run out of credits",
        id="403-string-code",
    ),
    pytest.param(
        up.ErrorReply.model_not_found(),
        ModelUnavailableError,
        404,
        "gemini-1.5-pro is deprecated",
        id="404",
    ),
    pytest.param(
        up.ErrorReply.aimlapi(410, "Model retired"),
        ModelUnavailableError,
        410,
        "Model retired",
        id="410",
    ),
    pytest.param(up.ErrorReply.rate_limited(), RateLimitError, 429, "Free-tier limit", id="429"),
    pytest.param(
        up.ErrorReply.internal_error(), UpstreamError, 500, "Internal server error", id="500"
    ),
    pytest.param(
        up.ErrorReply.wrapped(400, "Unable to access model gemini-1.5-pro"),
        BadRequestError,
        400,
        "Unable to access model gemini-1.5-pro",
        id="500-wrapping-400",
    ),
    pytest.param(
        up.ErrorReply.wrapped(404, "Model not found"),
        ModelUnavailableError,
        404,
        "Model not found",
        id="500-wrapping-404",
    ),
    pytest.param(
        up.ErrorReply.wrapped(401, "Invalid key"),
        AuthenticationError,
        401,
        "Invalid key",
        id="500-wrapping-401",
    ),
    pytest.param(
        up.ErrorReply(500, {"message": "upstream refused", "statusCode": "403"}),
        InsufficientCreditsError,
        403,
        "upstream refused",
        id="500-with-4xx-statusCode",
    ),
    pytest.param(up.ErrorReply.bad_gateway(), UpstreamError, 502, "502 Bad Gateway", id="502-html"),
    pytest.param(
        up.ErrorReply.service_unavailable(),
        UpstreamError,
        503,
        "under maintenance",
        id="503-problem-json",
    ),
    pytest.param(
        up.ErrorReply.gateway_timeout(), UpstreamTimeout, 504, "Generation timed out", id="504"
    ),
    pytest.param(
        up.ErrorReply.text(500, "plain failure\n"),
        UpstreamError,
        500,
        "plain failure",
        id="500-text",
    ),
    pytest.param(
        up.ErrorReply(
            400,
            {
                "title": "Bad Request",
                "status": 400,
                "error": {"name": "ValidationError", "message": "seed must be >= 1"},
            },
            content_type="application/problem+json",
        ),
        BadRequestError,
        400,
        "seed must be >= 1",
        id="problem-nested-message",
    ),
    pytest.param(
        up.ErrorReply(
            400, {"error": {"message": "Invalid value for 'n'", "type": "invalid_request_error"}}
        ),
        BadRequestError,
        400,
        "Invalid value for 'n'",
        id="openai-shape",
    ),
    pytest.param(
        up.ErrorReply(
            429,
            [
                {
                    "error": {
                        "code": 429,
                        "message": "Resource exhausted",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                }
            ],
        ),
        RateLimitError,
        429,
        "Resource exhausted",
        id="google-list-shape",
    ),
    pytest.param(
        up.ErrorReply(409, {"error": "Conflict here"}),
        BadRequestError,
        409,
        "Conflict here",
        id="error-string",
    ),
    pytest.param(up.ErrorReply(503, b""), UpstreamError, 503, None, id="503-empty"),
]


@pytest.mark.parametrize(("reply", "kind", "status", "reason"), ERROR_CASES)
async def test_error_bodies_and_statuses(
    provider: OpenAICompatProvider,
    fake_upstream: up.FakeUpstream,
    reply: up.ErrorReply,
    kind: type[ProviderError],
    status: int,
    reason: str | None,
) -> None:
    fake_upstream.enqueue(reply)
    events, error = await collect_until_error(provider)

    assert events == []
    assert type(error) is kind
    assert error.status == status
    assert error.message.startswith(kind.default_message)
    if reason is None:
        assert error.message == kind.default_message
    else:
        assert "(upstream said: " in error.message
        assert reason in error.message
        assert reason.split(";")[0] in error.detail
    assert error.upstream_request_id == fake_upstream.last_request.inference_id


async def test_retry_after_in_seconds_or_as_a_date(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    in_30s = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake_upstream.enqueue(
        up.ErrorReply.rate_limited(retry_after=7),
        up.ErrorReply.rate_limited(retry_after="1.5"),
        up.ErrorReply.rate_limited(retry_after=in_30s),
        up.ErrorReply.rate_limited(retry_after="soon"),
        up.ErrorReply.rate_limited(),
    )
    waits = [(await collect_until_error(provider))[1].retry_after for _ in range(5)]
    assert waits[:2] == [7.0, 1.5]
    assert 20 < waits[2] <= 30
    assert waits[3:] == [None, None]
    assert RateLimitError.retryable


async def test_an_error_object_inside_the_stream(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Text("Partial "),
                up.Data({"error": {"message": "Upstream overloaded", "code": 503}}),
            ]
        )
    )
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Partial "
    assert type(error) is UpstreamError
    assert error.status == 503
    assert "Upstream overloaded" in error.message


async def test_a_bare_json_error_line_inside_the_stream(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Text("Some "), up.Raw(b'{"error": {"message": "quota", "code": 429}}\n\n')])
    )
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Some "
    assert type(error) is RateLimitError


async def test_a_bare_pretty_printed_list_wrapped_error_inside_the_stream(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    # Google's OpenAI-compatible endpoint: a list-wrapped error over several lines, and an
    # event after it in the same read that must not be taken for more of the answer.
    error_json = json.dumps(
        [{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}],
        indent=2,
    ).encode()
    after = b'data: {"choices": [{"index": 0, "delta": {"content": "never"}}]}\n\n'
    fake_upstream.enqueue(up.Reply([up.Text("Some "), up.Raw(error_json + b"\n" + after)]))
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Some "
    assert type(error) is UpstreamError
    assert error.status == 503
    assert "The model is overloaded." in error.message


async def test_a_malformed_line_after_some_text(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Text("Good "), up.Raw(b"data: {not json\n\n"), up.Text("never")])
    )
    events, error = await collect_until_error(provider)
    assert text_of(events) == "Good "
    assert type(error) is MalformedResponseError
    assert "{not json" in error.detail
    assert not error.retryable


async def test_a_success_status_with_something_else_than_a_stream(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.ErrorReply(
            200, "<html><body>Welcome to the portal</body></html>", content_type="text/html"
        ),
        up.ErrorReply(200, b"{truncated", content_type="application/json"),
    )
    assert type((await collect_until_error(provider))[1]) is MalformedResponseError
    assert type((await collect_until_error(provider))[1]) is MalformedResponseError


async def test_error_bodies_are_read_bounded(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.ErrorReply.text(500, "x" * 500_000))
    _, error = await collect_until_error(provider)
    assert len(error.detail) <= 4001
    assert len(error.message) < 400


# --- transport failures -----------------------------------------------------------------------


async def test_a_drop_mid_stream_still_names_the_inference_id(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    # The rest of a drop is common to every route (test_provider_transport.py); the billing
    # reference is AI/ML API's, and an interrupted answer is what needs reconciling.
    fake_upstream.enqueue(up.Reply([up.Text("Half "), up.Drop()], inference_id="inf-drop"))
    _, error = await collect_until_error(provider)
    assert type(error) is UpstreamConnectionError
    assert error.upstream_request_id == "inf-drop"


# --- the key never leaks ----------------------------------------------------------------------

LEAKY_REPLIES = [
    pytest.param(up.ErrorReply.aimlapi(401, f"Invalid key {up.ECHO_KEY}"), id="401-message"),
    pytest.param(up.ErrorReply.wrapped(400, f"Bad key {up.ECHO_KEY} for model"), id="500-wrapped"),
    pytest.param(up.ErrorReply.problem(403, "Forbidden", f"key={up.ECHO_KEY}"), id="problem-json"),
    pytest.param(up.ErrorReply.html(502, f"502 {up.ECHO_KEY}", up.ECHO_KEY), id="html"),
    pytest.param(up.ErrorReply.text(500, f"Authorization: Bearer {up.ECHO_KEY}"), id="text"),
    # The 64 KB read limit falls inside the key: its first part alone must not show either.
    pytest.param(
        up.ErrorReply(500, "x" * (64 * 1024 - len(KEY) + 4) + up.ECHO_KEY),
        id="key-across-the-read-limit",
    ),
    pytest.param(up.ErrorReply.internal_error(), id="inference-id-header"),
    pytest.param(
        up.Reply([up.Text("a"), up.Data({"error": {"message": up.ECHO_KEY}})]), id="in-stream-error"
    ),
    pytest.param(
        up.Reply([up.Text("a"), up.Raw(f"data: {{{up.ECHO_KEY}\n\n".encode())]), id="malformed-line"
    ),
]


@pytest.mark.parametrize("reply", LEAKY_REPLIES)
async def test_the_api_key_never_appears_in_an_error(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream, reply: up.Reply | up.ErrorReply
) -> None:
    # The fake replaces ECHO_KEY with the key the adapter sent, here also in x-inference-id.
    fake_upstream.enqueue(replace_inference_id(reply, f"inf-{up.ECHO_KEY}"))
    events, error = await collect_until_error(provider)

    assert fake_upstream.last_request.bearer == KEY
    exposed = [
        str(error),
        error.message,
        error.detail,
        repr(error.args),
        error.upstream_request_id or "",
        "".join(traceback.format_exception(error)),
        repr(events),
    ]
    for text in exposed:
        assert KEY not in text
        assert KEY[:-4] not in text  # nor most of it
    assert "[redacted]" in error.upstream_request_id


async def test_the_api_key_never_appears_in_response_info(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("ok")], inference_id=f"inf-{up.ECHO_KEY}"))
    events = await collect(provider)
    assert KEY not in repr(events)


def replace_inference_id(reply: up.Reply | up.ErrorReply, inference_id: str) -> Any:
    return dataclasses.replace(reply, inference_id=inference_id)


async def test_a_rejected_key_is_an_authentication_error(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.api_key = "another-key-entirely"
    _, error = await collect_until_error(provider)
    assert type(error) is AuthenticationError
    assert error.status == 401
    assert not error.retryable


def test_legacy_ids_get_no_stream_options_and_current_ids_ask_for_usage(settings):
    """docs/PROTOCOLS.md §1: `stream_options` is for current ids; legacy ids take `stream` only."""
    from chatapp.providers.openai_compat import OpenAICompatProvider
    from chatapp.providers.types import ChatMessage, ChatRequest

    settings.PROVIDERS = {"aimlapi": {"BACKEND": "x", "OPTIONS": {}}}
    provider = OpenAICompatProvider(alias="aimlapi", api_key="k", base_url="http://x")
    messages = (ChatMessage.of_text("user", "hi"),)
    legacy = provider.build_body(ChatRequest(model="gemini-1.5-pro", messages=messages))
    current = provider.build_body(ChatRequest(model="google/gemini-2.5-flash", messages=messages))
    assert "stream_options" not in legacy
    assert current["stream_options"] == {"include_usage": True}
