"""A property of every run, whatever an upstream sends: once its stream has ended, the answer
is final in the database and a `stream.end` frame has gone out. Hypothesis feeds each route's
real reader (the adapter, over an in-memory transport) random and extreme bytes: SSE lines,
JSON of any shape and size, numbers out of every range, cut or binary data, error statuses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from channels.layers import get_channel_layer
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatapp.models import Conversation, Message
from chatapp.providers.types import ChatMessage, ChatRequest
from chatapp.turns.protocol import stream_group
from chatapp.turns.run import Run
from chatapp.turns.workers import WORKER_ID
from tests.conftest import API_KEY

pytestmark = [pytest.mark.django_db(transaction=True)]

ROUTES = {
    "aimlapi": (
        "chatapp.providers.openai_compat.OpenAICompatProvider",
        "google/gemini-2.5-flash",
        "text/event-stream",
    ),
    "gemini": ("chatapp.providers.gemini.google.GeminiProvider", "gemini-2.5-flash", None),
    "segmind": (
        "chatapp.providers.gemini.segmind.SegmindProvider",
        "gemini-2.5-flash",
        "application/json",
    ),
}
EXTREME_INTS = st.sampled_from([0, -1, 2**31, 2**63 + 5, -(2**64), 10**30])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | EXTREME_INTS
    | st.floats(allow_nan=False)  # JSON has no NaN; orjson refuses one anyway
    | st.text(max_size=30)
    | st.sampled_from(["STOP", "SAFETY", "MAX_TOKENS", "stop", "length", "\x00", API_KEY])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
NUMBER = EXTREME_INTS | st.integers() | SCALARS
TEXT = st.text(max_size=20) | st.sampled_from(["\x00", API_KEY, "\u202e", "a" * 500])


def counts(*names: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, NUMBER))


# Plausible chunks of each wire format with fields of any value, so the readers get past
# their first checks often; and plain noise around them.
OPENAI_CHUNK = st.fixed_dictionaries(
    {
        "id": SCALARS,
        "choices": st.lists(
            st.fixed_dictionaries(
                {"index": st.just(0) | SCALARS},
                optional={
                    "delta": st.fixed_dictionaries(
                        {},
                        optional={"content": TEXT | JSON, "reasoning_content": TEXT | JSON},
                    ),
                    "finish_reason": SCALARS,
                    "extra_content": JSON,
                },
            ),
            max_size=2,
        ),
    },
    optional={
        "usage": counts("prompt_tokens", "completion_tokens", "total_tokens"),
        "meta": st.fixed_dictionaries({"usage": counts("credits_used", "usd_spent")}),
        "model": SCALARS,
    },
)
GEMINI_CHUNK = st.fixed_dictionaries(
    {
        "candidates": st.lists(
            st.fixed_dictionaries(
                {
                    "index": st.just(0) | SCALARS,
                    "content": st.fixed_dictionaries(
                        {"parts": st.lists(st.fixed_dictionaries({"text": TEXT}), max_size=3)}
                    ),
                },
                optional={
                    "finishReason": SCALARS,
                    "finishMessage": TEXT,
                    "safetyRatings": JSON,
                    "citationMetadata": JSON,
                },
            ),
            max_size=2,
        )
    },
    optional={
        "usageMetadata": counts(
            "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount"
        ),
        "modelVersion": SCALARS,
        "responseId": SCALARS,
        "promptFeedback": JSON,
    },
)


def sse_line(value: Any) -> bytes:
    return b"data: " + json.dumps(value).encode() + b"\n\n"


PIECES = st.one_of(
    OPENAI_CHUNK.map(sse_line),
    OPENAI_CHUNK.map(sse_line),
    GEMINI_CHUNK.map(sse_line),
    GEMINI_CHUNK.map(sse_line),
    JSON.map(sse_line),
    st.just(b"data: [DONE]\n\n"),
    st.binary(max_size=40),
    st.sampled_from([b"\r", b"\n", b"\r\n", b": comment\n", b"event: x\n", b"data: {", b"}\n\n"]),
    JSON.map(lambda v: json.dumps(v, indent=2).encode()),  # bare, pretty-printed JSON
)
# Gemini's last chunk carries the finish reason: without one a stream is incomplete.
FINAL = st.fixed_dictionaries(
    {
        "candidates": st.just([{"index": 0, "content": {"parts": [{"text": "."}]}}]),
        "usageMetadata": counts("promptTokenCount", "candidatesTokenCount", "totalTokenCount"),
    }
).map(
    lambda chunk: sse_line(
        {**chunk, "candidates": [{**chunk["candidates"][0], "finishReason": "STOP"}]}
    )
)
CLEAN = {
    "aimlapi": st.lists(OPENAI_CHUNK.map(sse_line), min_size=1, max_size=8).map(
        lambda lines: [*lines, b"data: [DONE]\n\n"]
    ),
    "gemini": st.tuples(st.lists(GEMINI_CHUNK.map(sse_line), max_size=8), FINAL).map(
        lambda parts: [*parts[0], parts[1]]
    ),
    "segmind": GEMINI_CHUNK.map(lambda v: [json.dumps(v).encode()]),
}


def reply_for(route: str) -> st.SearchStrategy[dict[str, Any]]:
    """Half well-formed streams of the route's own shape with values of any size and kind
    (reaching usage, finish and extras), half noise and mixtures (reaching the error paths)."""
    return st.fixed_dictionaries(
        {
            "route": st.just(route),
            "status": st.sampled_from([200] * 8 + [400, 401, 403, 404, 429, 500, 503]),
            "pieces": CLEAN[route] | st.lists(PIECES, max_size=12),
        }
    )


REPLIES = st.sampled_from(sorted(ROUTES)).flatmap(reply_for)


def transport(reply: dict[str, Any]) -> httpx.MockTransport:
    async def pieces():
        for piece in reply["pieces"]:
            yield piece

    content_type = ROUTES[reply["route"]][2] or "text/event-stream"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            reply["status"], headers={"content-type": content_type}, content=pieces()
        )

    return httpx.MockTransport(handler)


async def run_once(owner: Any, reply: dict[str, Any]) -> tuple[Message, list[dict[str, Any]]]:
    route = reply["route"]
    backend, model, _ = ROUTES[route]
    conversation = await Conversation.objects.acreate(owner=owner, route=route, model=model)
    message = await Message.objects.acreate(
        conversation=conversation,
        role="assistant",
        status=Message.Status.PENDING,
        route=route,
        model=model,
        worker_id=WORKER_ID,
    )
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(stream_group(message.id), watcher)
    client = httpx.AsyncClient(transport=transport(reply), timeout=httpx.Timeout(2.0))
    providers = {
        route: {
            "BACKEND": backend,
            "OPTIONS": {"api_key": API_KEY, "base_url": "http://upstream.test"}
            | ({"status_interval": 0.01, "reveal_seconds": 0} if route == "segmind" else {}),
        }
    }
    run_config = {
        "unpaced_chunks_per_second": 5000,
        "max_frame_interval": 0.001,
        "min_frame_interval": 0.0,
        "checkpoint_interval": 0.05,
        "retry_attempts": 2,
        "retry_backoff": 0.001,
        "retry_max_wait": 0.001,
        "snapshot_timeout": 1.0,
        "heartbeat_interval": 10,
        "worker_stale_after": 30,
    }
    with override_settings(PROVIDERS=providers):
        run = Run(
            message_id=message.id,
            route=route,
            request=ChatRequest(model=model, messages=(ChatMessage.of_text("user", "Hi"),)),
            layer=layer,
            client=client,
            config=run_config,
        )
        await asyncio.wait_for(run.main(), 20)
    await client.aclose()
    frames = []
    while True:
        frame = await asyncio.wait_for(layer.receive(watcher), 5)
        frames.append(frame)
        if frame["type"] == "stream.end":
            break
    await layer.group_discard(stream_group(message.id), watcher)
    return await Message.objects.aget(pk=message.id), frames


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reply=REPLIES)
def test_whatever_an_upstream_sends_the_answer_ends_final_with_its_stream(user, reply):
    message, frames = asyncio.run(run_once(user, reply))
    assert message.is_terminal, (message.status, reply)
    assert frames[-1]["event"] in ("done", "error")
    assert API_KEY not in message.content + message.model_reported + json.dumps(
        message.provider_extras
    )
    delivered = "".join(f["t"] for f in frames if f["type"] == "stream.delta")
    # What watchers were sent is what was kept (NUL is stored as U+FFFD, one for one).
    assert delivered.replace("\x00", "\ufffd") == message.content
