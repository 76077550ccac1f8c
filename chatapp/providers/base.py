"""The one contract every route adapter fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import ClassVar

import httpx

from .errors import redact
from .types import ChatRequest, Event


class Provider(ABC):
    """A route adapter: turns a neutral `ChatRequest` into one upstream call and the upstream's
    answer into neutral events.

    Contract:
    - One instance serves one configured route (`alias`) with its key and base URL. It takes an
      injected `httpx.AsyncClient` (explicit timeouts, redirects off) and owns no other I/O.
    - `stream()` is an async generator. It yields `ResponseInfo` as soon as identifiers are
      known, then `TextDelta` / `ReasoningDelta` in order, and `Usage`, `ProviderExtras` and
      `Finish` when the upstream sends them; a route that answers in one piece yields `Status`
      notes while it waits. It raises a `ProviderError` subclass on failure, possibly after
      some deltas (the caller keeps the partial text).
    - Stop and shutdown arrive as `asyncio.CancelledError` at an await: the adapter lets it
      propagate, and its `async with client.stream(...)` closes the upstream connection.
    - Only parameters present in `request.options` are sent, where `params.PARAMETERS` puts
      them in the adapter's `wire_format`.
    - Nothing it raises or logs contains the API key (`self.redact`).
    - Adapters never import `chatapp` models.
    """

    # Shown in the UI; a configured route may rename it (OPTIONS["label"]).
    label: str = ""
    # The wire format whose names `params.wire_fields` uses for this adapter's options.
    wire_format: ClassVar[str] = ""

    def __init__(
        self,
        *,
        alias: str,
        client: httpx.AsyncClient | None = None,
        api_key: str = "",
        base_url: str = "",
        label: str = "",
    ) -> None:
        self.alias = alias
        self.client = client
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        if label:
            self.label = label

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        """Yield the events of one generation (see the class docstring)."""

    def redact(self, text: str) -> str:
        return redact(text, self.api_key)

    def http_client(self) -> httpx.AsyncClient:
        """The injected client; an adapter built without one is a configuration error."""
        if self.client is None:
            raise RuntimeError(
                f"{type(self).__name__} ({self.alias}) has no httpx.AsyncClient: "
                "pass client=... when constructing it"
            )
        if not self.base_url:
            raise RuntimeError(f"{type(self).__name__} ({self.alias}) has no base_url")
        return self.client
