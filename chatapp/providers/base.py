"""The one contract every route adapter fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from .errors import redact
from .types import ChatRequest, Event


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One generation parameter a model accepts, with its range.

    `kind` is "float", "int", "stop" (a list of stop strings, at most `max_items`), "choice"
    (one of `choices`, matched case-insensitively, stored as spelled there), "bool" (on/off;
    off is the same as not set) or "safety" (harm category -> block threshold; `choices`
    lists the thresholds, `catalog.HARM_CATEGORIES` the categories).
    `special` lists numbers accepted outside [minimum, maximum] with their meaning, e.g.
    Gemini 2.5's thinking budget: `((0, "off"), (-1, "dynamic"))`.
    `default` is sent when the person leaves the field empty (None: send nothing); legacy
    models need an explicit `max_tokens` because the upstream default (512) cuts answers.
    """

    name: str
    label: str
    kind: Literal["float", "int", "stop", "choice", "bool", "safety"]
    minimum: float | None = None
    maximum: float | None = None
    max_items: int | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    special: tuple[tuple[int, str], ...] = ()

    def describe(self) -> str:
        """The range in words, used in hints and in error messages."""
        if self.kind == "stop":
            return f"up to {self.max_items} sequences, one per line"
        if self.kind == "choice":
            return _either([choice.lower() for choice in self.choices])
        if self.kind == "bool":
            return "on or off"
        if self.kind == "safety":
            return "category=threshold, one per line; thresholds " + _either(list(self.choices))
        if self.minimum is not None and self.maximum is not None:
            text = f"{_num(self.minimum)}–{_num(self.maximum)}"
        elif self.minimum is not None:
            text = f"at least {_num(self.minimum)}"
        else:
            text = "any number"
        if self.special:
            extra = [f"{_num(value)} ({meaning})" for value, meaning in self.special]
            text += (" or " if len(extra) == 1 else ", ") + _either(extra)
        return text


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model on a route can do; checked before any network I/O."""

    streaming: bool = True
    vision: bool = False
    tools: bool = False
    json_schema: bool = False
    seed: bool = False
    n: bool = False
    params: Mapping[str, ParamSpec] = field(default_factory=dict)


class Provider(ABC):
    """A route adapter: turns a neutral `ChatRequest` into one upstream call and the upstream's
    answer into neutral events.

    Contract:
    - One instance serves one configured route (`alias`) with its key and base URL. It takes an
      injected `httpx.AsyncClient` (explicit timeouts, redirects off) and owns no other I/O.
    - `stream()` is an async generator. It yields `ResponseInfo` as soon as identifiers are
      known, then `TextDelta` / `ReasoningDelta` in order, and `Usage`, `ProviderExtras` and
      `Finish` when the upstream sends them. A route that answers in one piece
      (`streams = False`) yields `Status` notes while it waits. It raises a `ProviderError` subclass on failure,
      possibly after some deltas (the caller keeps the partial text).
    - Stop and shutdown arrive as `asyncio.CancelledError` at an await: the adapter lets it
      propagate, and its `async with client.stream(...)` closes the upstream connection.
    - Only parameters present in `request.options` are sent, under the route's wire names.
    - Nothing it raises or logs contains the API key (`self.redact`).
    - Adapters never import `chatapp.models`.
    """

    label: ClassVar[str] = ""
    wire_format: ClassVar[str] = ""
    # False for routes that answer in one piece (Segmind): the run shows progress meanwhile.
    streams: ClassVar[bool] = True

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
