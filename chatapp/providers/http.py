"""The HTTP client every adapter is given: httpx's interface over aiohttp's transport, with no
cookie jar."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator

import httpx
from django.conf import settings

TRANSPORTS = ("aiohttp", "httpx")

# Where the aiohttp transport leaves the body's reader on a response (see `body_chunks`).
AIOHTTP_BODY = "chatapp.aiohttp_body"


@functools.lru_cache(maxsize=512)
def upstream_url(text: str) -> httpx.URL:
    """An upstream endpoint's URL, parsed once (a route's base and a catalog model: a bounded
    set). Given a string, httpx parses it on every request with its pure-Python parser, ~2% of
    a short turn's CPU (py-spy); a parsed URL is only copied."""
    return httpx.URL(text)


def _aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    class Transport(AiohttpTransport):
        """httpx-aiohttp reports any aiohttp connection error, a server that hung up
        included, as a connect timeout; say what happened, as httpx's transport does."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response = await super().handle_async_request(request)
            except httpx.ConnectTimeout as exc:
                if isinstance(exc.__cause__, aiohttp.ServerDisconnectedError):
                    raise httpx.RemoteProtocolError(str(exc), request=request) from exc.__cause__
                if isinstance(exc.__cause__, aiohttp.ClientOSError):
                    raise httpx.ConnectError(str(exc), request=request) from exc.__cause__
                raise
            aiohttp_response = getattr(response.stream, "_aiohttp_response", None)
            if isinstance(aiohttp_response, aiohttp.ClientResponse):
                response.extensions[AIOHTTP_BODY] = aiohttp_response.content
            return response

    return Transport(limits=limits, trust_env=False)


async def body_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """A streamed body's bytes as they arrive. From aiohttp's reader itself when it moves
    them and the body is not encoded: httpx's `aiter_bytes` stacks four async generators
    (its decoder, chunker, byte counter and the transport's) on every chunk, ~6% of the CPU
    per relayed chunk (bench "turn cost"). Errors are httpx's either way."""
    content = response.extensions.get(AIOHTTP_BODY)
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if content is None or encoding not in ("", "identity"):
        async for chunk in response.aiter_bytes():
            yield chunk
        return
    from httpx_aiohttp.transport import map_aiohttp_exceptions

    with map_aiohttp_exceptions():
        async for chunk in content.iter_any():
            yield chunk


class NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing. The client is shared by every person's requests, so
    a cookie an upstream (or a proxy in front of it) sets must not go back with the next
    person's request; and httpx's extraction (a urllib Request per response) was 12% of a
    turn's upstream request (bench "turn cost")."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


def new_http_client(
    *, timeout: httpx.Timeout | None = None, transport: str = "aiohttp"
) -> httpx.AsyncClient:
    """The client adapters share: explicit timeouts, redirects off (docs/SECURITY.md rule 13), no proxy
    settings from the environment, and a pool large enough for many concurrent streams.

    Adapters speak httpx; underneath, aiohttp moves the bytes. Measured reading 200 streams of
    300 chunks through the real adapter (bench/README.md): 19 µs of CPU per chunk with
    aiohttp against 40 µs with httpx's own transport, whose anyio cancel scopes cost a task
    lookup on every read. Both pass the same adapter test suite.
    """
    limits = httpx.Limits(max_connections=4096, max_keepalive_connections=256)
    if transport == "aiohttp":
        chosen: httpx.AsyncBaseTransport = _aiohttp_transport(limits)
    else:
        chosen = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    client = httpx.AsyncClient(
        transport=chosen,
        timeout=timeout or httpx.Timeout(**settings.UPSTREAM_TIMEOUTS),
        follow_redirects=False,
        trust_env=False,
    )
    # The `cookies` setter would copy it into a plain jar.
    client._cookies = NoCookies()
    return client
