"""The one contract every route adapter fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx

from .errors import (
    MalformedResponseError,
    ProviderError,
    UpstreamConnectionError,
    UpstreamTimeout,
    redact,
)
from .params import WireFormat
from .types import (
    CandidateDelta,
    CandidateFinish,
    ChatRequest,
    Event,
    Finish,
    Logprobs,
    ProviderExtras,
    ReasoningDelta,
    ResponseInfo,
    Status,
    TextDelta,
    TokenLogprob,
)
from .wire import clip_detail, read_limited

# An error page is read this far at most; a non-streamed answer is one JSON document, and this
# only guards memory against a runaway body.
ERROR_BODY_LIMIT = 64 * 1024
JSON_BODY_LIMIT = 32 * 1024 * 1024
# What httpx raises for a request that never got a usable answer.
TRANSPORT_ERRORS = (httpx.TransportError, httpx.InvalidURL, httpx.DecodingError)


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
    # Where `params.wire_fields` puts this adapter's options ("openai" or "gemini"); the
    # offline demo reads its few options directly.
    wire_format: ClassVar[WireFormat | None] = None

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

    def redact_event(self, event: Event) -> Event:
        """The event with the key taken out of every string the upstream sent (an upstream
        may echo it in an id, a model name, a safety rating...; docs/SECURITY.md rule 12).
        The per-token path: a text delta without the key is returned as it is."""
        key = self.api_key
        if len(key) < 4:
            return event
        match event:
            case TextDelta(text=text):
                return TextDelta(self.redact(text)) if key in text else event
            case ReasoningDelta(text=text):
                return ReasoningDelta(self.redact(text)) if key in text else event
            case ResponseInfo(request_id=rid, response_id=response_id, model=model):
                return ResponseInfo(
                    request_id=self._redact_optional(rid),
                    response_id=self._redact_optional(response_id),
                    model=self._redact_optional(model),
                )
            case ProviderExtras(data=data):
                return ProviderExtras(self._redact_json(data))
            case Finish(reason=reason, raw=raw):
                return Finish(reason=reason, raw=self.redact(raw))
            case Status(text=text):
                return Status(self.redact(text))
            case CandidateDelta(index=index, text=text, reasoning=reasoning):
                if key not in text and key not in reasoning:
                    return event
                return CandidateDelta(index, self.redact(text), self.redact(reasoning))
            case CandidateFinish(index=index, reason=reason, raw=raw):
                return CandidateFinish(index, reason, self.redact(raw))
            case Logprobs(tokens=tokens, index=index):
                if not any(key in t.token or any(key in a for a, _ in t.top) for t in tokens):
                    return event
                return Logprobs(
                    tuple(
                        TokenLogprob(
                            self.redact(t.token),
                            t.logprob,
                            tuple((self.redact(alt), lp) for alt, lp in t.top),
                        )
                        for t in tokens
                    ),
                    index,
                )
        return event

    def _redact_optional(self, value: str | None) -> str | None:
        return None if value is None else self.redact(value)

    def _redact_json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact(str(k)): self._redact_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact_json(v) for v in value]
        return value

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

    # --- errors every route maps alike -------------------------------------------------------

    async def read_error_body(self, response: httpx.Response) -> bytes:
        """At most ERROR_BODY_LIMIT bytes of an error response (none if it breaks off)."""
        try:
            return await read_limited(response, ERROR_BODY_LIMIT)
        except httpx.HTTPError:
            return b""

    def error_text(self, raw: bytes) -> str:
        """An error body as text, safe to redact: a body cut at the limit may end in part of
        the key, which `redact` would then miss, so that tail goes."""
        text = raw.decode("utf-8", "replace")
        if len(raw) >= ERROR_BODY_LIMIT and self.api_key:
            text = text[: -len(self.api_key)]
        return text

    def transport_error(
        self, exc: Exception, *, started: bool, request_id: str | None
    ) -> ProviderError:
        """One of httpx's TRANSPORT_ERRORS as the error tree's (the caller raises it `from
        exc`); `started`: the response head had arrived."""
        detail = clip_detail(self.redact(str(exc) or type(exc).__name__))
        if isinstance(exc, httpx.ConnectTimeout):
            return UpstreamConnectionError(
                "Could not reach the provider (the connection timed out). Press Retry.",
                detail=detail,
            )
        if isinstance(exc, httpx.PoolTimeout):
            return UpstreamConnectionError(
                "Too many answers are streaming at once; no connection to the provider was "
                "free. Press Retry.",
                detail=detail,
            )
        if isinstance(exc, httpx.TimeoutException):
            which = "write" if isinstance(exc, httpx.WriteTimeout) else "read"
            seconds = getattr(self.client.timeout, which, None) if self.client else None
            what = "sending the request" if which == "write" else "no data"
            suffix = f" ({what} for {seconds:g} s)." if seconds else "."
            return UpstreamTimeout(
                UpstreamTimeout.default_message.rstrip(".") + suffix,
                upstream_request_id=request_id,
                detail=detail,
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            message = (
                "The connection to the provider dropped before the answer was complete. "
                "Press Retry."
                if started
                else None
            )
            return UpstreamConnectionError(message, upstream_request_id=request_id, detail=detail)
        if isinstance(exc, httpx.DecodingError):
            return MalformedResponseError(upstream_request_id=request_id, detail=detail)
        if isinstance(exc, httpx.InvalidURL):
            return UpstreamConnectionError(
                f"The provider's base URL is not usable ({self.redact(str(exc))}). "
                "Check this route's configuration.",
            )
        # ConnectError, WriteError, proxy and protocol errors before any answer.
        return UpstreamConnectionError(upstream_request_id=request_id, detail=detail)
