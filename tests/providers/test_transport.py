"""What every adapter does when the connection itself misbehaves, on all three routes and both
transports: drops, stalls, nothing listening, redirects, a consumer that goes away. What each
route reads from a healthy stream is in its own module."""

from __future__ import annotations

import gzip
import socket

import httpx
import pytest

from chatapp.providers.errors import ProviderError, UpstreamConnectionError, UpstreamTimeout
from chatapp.providers.http import AIOHTTP_BODY, body_chunks, new_http_client
from chatapp.providers.types import ChatMessage, ChatRequest, Status, TextDelta
from tests import provider_kit
from tests.fakes import upstream as up
from tests.provider_kit import ROUTES, STREAMING_ROUTES, cancel_after, route_provider, text_of

pytestmark = pytest.mark.usefixtures("transport")


def ask() -> ChatRequest:
    return ChatRequest(messages=(ChatMessage.of_text("user", "Hello"),), model="gemini-2.5-flash")


collect, collect_until_error = provider_kit.collectors(ask)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_drop_before_the_response(
    route: str, http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply(before_headers=[up.Drop()]))
    events, error = await collect_until_error(route_provider(route, http_client, fake_upstream))
    assert [e for e in events if isinstance(e, TextDelta)] == []
    assert type(error) is UpstreamConnectionError
    assert error.message == UpstreamConnectionError.default_message
    assert error.retryable


@pytest.mark.parametrize("route", STREAMING_ROUTES)
async def test_a_drop_mid_stream(
    route: str, http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Half "), up.Drop()]))
    events, error = await collect_until_error(route_provider(route, http_client, fake_upstream))
    assert text_of(events) == "Half "
    assert type(error) is UpstreamConnectionError
    assert "dropped" in error.message
    assert error.retryable


@pytest.mark.parametrize(
    ("route", "where"),
    [(route, "mid-stream") for route in STREAMING_ROUTES]
    + [(route, "before-headers") for route in ROUTES],
)
async def test_a_stall_becomes_a_read_timeout(
    route: str, where: str, transport: str, fake_upstream: up.FakeUpstream
) -> None:
    if where == "mid-stream":
        fake_upstream.enqueue(up.Reply([up.Text("Before the stall "), up.Stall()]))
    else:
        fake_upstream.enqueue(up.Reply([up.Text("never")], before_headers=[up.Stall()]))
    async with new_http_client(
        timeout=httpx.Timeout(5.0, read=0.3), transport=transport
    ) as impatient:
        events, error = await collect_until_error(route_provider(route, impatient, fake_upstream))
    assert type(error) is UpstreamTimeout
    assert "0.3 s" in error.message  # the limit is named
    assert text_of(events) == ("Before the stall " if where == "mid-stream" else "")
    assert (await fake_upstream.wait_closed_async(0)).client_disconnected


@pytest.mark.parametrize("route", ROUTES)
async def test_nothing_listening(
    route: str, http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = route_provider(
        route, http_client, fake_upstream, base_url=f"http://127.0.0.1:{port}/v1"
    )
    events, error = await collect_until_error(provider)
    assert [e for e in events if isinstance(e, TextDelta)] == []
    assert type(error) is UpstreamConnectionError
    assert error.retryable


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("status", [302, 307])
async def test_redirects_are_not_followed(
    route: str, status: int, http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.ErrorReply(status, b"", headers={"Location": "http://127.0.0.1:9/elsewhere"})
    )
    _, error = await collect_until_error(route_provider(route, http_client, fake_upstream))
    assert type(error) is ProviderError
    assert error.status == status
    assert "base URL" in error.message
    assert len(fake_upstream.requests) == 1


# What the consumer sees before the cancel, and the text it must have by then: a streaming route
# has shown text; Segmind, whose answer comes in one body, has only said it is waiting.
CANCEL_WHILE = {
    "aimlapi": ([up.Text("Before "), up.Gate("hold"), up.Text("after")], TextDelta, "Before "),
    "gemini": ([up.Text("Before "), up.Gate("hold"), up.Text("after")], TextDelta, "Before "),
    "segmind": ([up.Gate("hold"), *up.words("never shown")], Status, ""),
}


@pytest.mark.parametrize("route", ROUTES)
async def test_cancelling_the_consumer_closes_the_upstream_connection(
    route: str, http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    provider = route_provider(route, http_client, fake_upstream)
    script, signal, shown = CANCEL_WHILE[route]
    fake_upstream.enqueue(up.Reply(script))
    events = await cancel_after(
        provider, ask(), signal, before_cancel=lambda: fake_upstream.wait_for_gate_async("hold")
    )

    # Stop is immediate: the request is closed at once, not left to finish (and be billed).
    record = await fake_upstream.wait_closed_async(0)
    assert record.client_disconnected
    assert text_of(events) == shown
    assert fake_upstream.held_gates() == {}


@pytest.mark.parametrize("route", ROUTES)
async def test_a_provider_without_a_client_says_so(
    route: str, fake_upstream: up.FakeUpstream
) -> None:
    with pytest.raises(RuntimeError, match=r"httpx\.AsyncClient"):
        await collect(route_provider(route, None, fake_upstream))
    assert fake_upstream.requests == []


@pytest.mark.parametrize("route", ROUTES)
async def test_a_cookie_an_upstream_sets_never_goes_back_with_the_next_request(
    route: str, http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    # The client is shared by every person's turns: a cookie kept from one (set by the API or
    # a proxy in front of it) would travel with the next person's.
    fake_upstream.enqueue(up.Reply.text("First.", headers={"Set-Cookie": "session=alice; Path=/"}))
    fake_upstream.enqueue(up.Reply.text("Second."))
    for _ in range(2):
        assert "." in text_of(await collect(route_provider(route, http_client, fake_upstream)))
    assert [r.headers.get("cookie") for r in fake_upstream.requests] == [None, None]


GZIPPED_STREAMS = {
    "aimlapi": (
        b'data: {"choices":[{"index":0,"delta":{"content":"Packed "}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"text."},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    ),
    "gemini": (
        b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Packed "}]}}]}\r\n\r\n'
        b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"text."}]},'
        b'"finishReason":"STOP"}]}\r\n\r\n'
    ),
}


@pytest.mark.parametrize("route", STREAMING_ROUTES)
async def test_a_compressed_stream_is_read_decoded(
    route: str, http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> None:
    # A proxy in front of the API may gzip the stream: the bytes are read straight from
    # aiohttp only when the body is not encoded (providers/http.body_chunks).
    fake_upstream.enqueue(
        up.Reply(
            [up.Raw(gzip.compress(GZIPPED_STREAMS[route]))],
            headers={"Content-Encoding": "gzip"},
            role_chunk=False,
            finish=None,
            usage=None,
            done=False,
            ts=False,
        )
    )
    events = await collect(route_provider(route, http_client, fake_upstream))
    assert text_of(events) == "Packed text."


# A bare body through the transport alone, no adapter's request.
@pytest.mark.fake_upstream_any_request
async def test_the_aiohttp_transport_hands_over_its_body_reader(
    fake_upstream: up.FakeUpstream,
) -> None:
    # Else body_chunks quietly falls back to httpx's slower stack (an httpx-aiohttp upgrade
    # that renames its response's reader would do that): the bench would notice, this first.
    client = new_http_client(transport="aiohttp")
    fake_upstream.enqueue(up.Reply.text("Hi."))
    try:
        async with client.stream(
            "POST",
            f"{fake_upstream.openai_base_url}/chat/completions",
            json={"model": "gemini-2.5-flash", "stream": True, "messages": []},
            headers={"Authorization": "Bearer route-test-key-0123456789abcdef"},
        ) as response:
            assert AIOHTTP_BODY in response.extensions
            assert b"Hi." in b"".join([chunk async for chunk in body_chunks(response)])
    finally:
        await client.aclose()
