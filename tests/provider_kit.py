"""What the adapter test modules share: the transport matrix, a client on it, and the helpers
that drain a provider's stream.

The fixtures are registered for the whole suite (`pytest_plugins` in conftest.py); a module
runs all its tests over every transport with `pytestmark = pytest.mark.usefixtures("transport")`
and binds the collectors to its own `ask()`, so that `collect(provider)` asks that module's
default question of that module's default model:

    collect, collect_until_error = provider_kit.collectors(ask)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from chatapp.providers.base import Provider
from chatapp.providers.errors import ProviderError
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.gemini.segmind import SegmindProvider
from chatapp.providers.http import TRANSPORTS, new_http_client
from chatapp.providers.openai_compat import OpenAICompatProvider
from chatapp.providers.types import ChatRequest, Event, TextDelta
from tests.fakes import upstream as up


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each of the transports the app can use (production: aiohttp)."""
    return request.param


@pytest.fixture
async def http_client(
    fake_upstream: up.FakeUpstream, transport: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `transport`, as the app makes them (the fake upstream is up first)."""
    async with new_http_client(timeout=httpx.Timeout(5.0), transport=transport) as client:
        yield client


Collect = Callable[..., Awaitable[list[Event]]]
CollectUntilError = Callable[..., Awaitable[tuple[list[Event], ProviderError]]]


def collectors(ask: Callable[[], ChatRequest]) -> tuple[Collect, CollectUntilError]:
    """`collect(provider, request=None)` -> every event of a stream that must succeed;
    `collect_until_error(provider, request=None)` -> (the events before it, the error) of one
    that must fail. Without a request, each asks `ask()`."""

    async def collect(provider: Provider, request: ChatRequest | None = None) -> list[Event]:
        return [event async for event in provider.stream(request or ask())]

    async def collect_until_error(
        provider: Provider, request: ChatRequest | None = None
    ) -> tuple[list[Event], ProviderError]:
        events: list[Event] = []

        async def consume() -> None:
            async for event in provider.stream(request or ask()):
                events.append(event)

        with pytest.raises(ProviderError) as caught:
            await consume()
        return events, caught.value

    return collect, collect_until_error


async def cancel_after(
    provider: Provider,
    request: ChatRequest,
    kind: type,
    *,
    before_cancel: Callable[[], Awaitable[Any]] | None = None,
) -> list[Event]:
    """Stream `request` until the first event of `kind` (and `before_cancel`, if given), then
    cancel the consumer as Stop does; the events it had by then."""
    events: list[Event] = []
    seen = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(request):
            events.append(event)
            if isinstance(event, kind):
                seen.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(seen.wait(), 5)
    if before_cancel is not None:
        await before_cancel()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return events


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def of_type(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# --- the three routes -------------------------------------------------------------------------

ROUTES = ("aimlapi", "gemini", "segmind")
# Segmind answers in one body (the adapter reveals it in pieces): no mid-stream faults there.
STREAMING_ROUTES = ("aimlapi", "gemini")


def route_provider(
    route: str,
    client: httpx.AsyncClient | None,
    fake: up.FakeUpstream,
    *,
    api_key: str = "route-test-key-0123456789abcdef",
    base_url: str | None = None,
) -> Provider:
    """The adapter of `route` pointed at the fake upstream (or at `base_url`)."""
    if route == "aimlapi":
        return OpenAICompatProvider(
            alias=route, client=client, api_key=api_key, base_url=base_url or fake.openai_base_url
        )
    if route == "gemini":
        return GeminiProvider(
            alias=route, client=client, api_key=api_key, base_url=base_url or fake.gemini_base_url
        )
    return SegmindProvider(
        alias=route,
        client=client,
        api_key=api_key,
        base_url=base_url or fake.segmind_base_url,
        status_interval=0.05,
        reveal_seconds=0,
    )
