"""Segmind's Gemini models (docs/PROTOCOLS.md §2): a Gemini-native body behind Segmind's gateway.

`POST {base}/{model}` with `x-api-key` (and `Authorization: Bearer`, which its model pages
show; sending both is harmless). The body is `{"messages": {"system_instruction": ...,
"contents": [...], "generationConfig": {...}}}` - `messages` is an object. Whether Segmind
honours `generationConfig` is unverified: it is sent when the person set something, and the
settings panel says Segmind may ignore it.

There is no streaming: the answer comes in one piece after ~11 s. Meanwhile the adapter
yields a `Status` every `status_interval` seconds ("Waiting for Segmind · 3 s"), which the
run relays to the browser next to the Stop button; then it yields the text in a few pieces
over at most `reveal_seconds`, so the answer still appears progressively. Stop cancels the
request at once: the HTTP exchange runs in a task that is cancelled, which closes the
connection.

Both documented answer shapes are read: Gemini's `candidates[0].content.parts[].text` and
the older OpenAI-style `choices[0].message.content`. Errors are `{"error": "<string>"}`;
406 means out of credits (or a wrong Content-Type, which this adapter never sends), 405
comes with an HTML page, 429 carries `x-rate-limit-reset-at-utc` instead of `Retry-After`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from ..base import ERROR_BODY_LIMIT, JSON_BODY_LIMIT, TRANSPORT_ERRORS
from ..http import upstream_url
from ..types import ChatRequest, Event, Status, TextDelta
from ..wire import read_limited, request_content
from .wire import (
    NativeProvider,
    option_fields,
    system_instruction,
)

DEFAULT_BASE_URL = "https://api.segmind.com/v1"

_PIECES = re.compile(r"\S+\s*|\s+")


class SegmindProvider(NativeProvider):
    label = "Segmind"
    segmind = True

    def __init__(
        self, *, status_interval: float = 1.0, reveal_seconds: float = 0.6, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.status_interval = status_interval
        self.reveal_seconds = reveal_seconds

    def url(self, model: str) -> httpx.URL:
        return upstream_url(f"{self.base_url}/{quote(model, safe='')}")

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        messages: dict[str, Any] = {}
        system = system_instruction(request.system, parts_as_object=True)
        if system is not None:
            messages["system_instruction"] = system
        messages["contents"] = self.contents(request)
        # Segmind's envelope has no place for safetySettings (not offered on this route).
        fields = option_fields(request.options)
        config = fields.get("generationConfig")
        if config:
            messages["generationConfig"] = config
        # Declared functions, beside `contents` as generationConfig is (docs/PROTOCOLS.md §2:
        # whether Segmind passes them on is unverified; the built-in tools are not offered).
        for key in ("tools", "toolConfig"):
            if fields.get(key):
                messages[key] = fields[key]
        return {"messages": messages}

    def build_headers(self) -> dict[str, str]:
        return {
            "x-api-key": self.api_key,
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        self.http_client()
        content = await request_content(self.build_body, request)
        errors = self.error_mapper()
        reader = self.reader(request, errors)
        loop = asyncio.get_running_loop()
        started = loop.time()
        exchange = asyncio.ensure_future(self._exchange(request.model, content))
        try:
            yield Status(f"Waiting for {self.label}…")
            while True:
                done, _ = await asyncio.wait({exchange}, timeout=self.status_interval)
                if done:
                    break
                yield Status(f"Waiting for {self.label} · {round(loop.time() - started)} s")
            try:
                status, headers, raw = exchange.result()
            except TRANSPORT_ERRORS as exc:
                raise self.transport_error(exc, started=False, request_id=None) from exc
        finally:
            if not exchange.done():
                # Stop (CancelledError at the wait above) or the consumer went away: cancel the
                # request, which closes its connection, and wait until it has.
                exchange.cancel()
                await asyncio.wait({exchange})
        request_id = headers.get("x-request-id")
        errors.request_id = self.redact(request_id) if request_id else None
        if not 200 <= status < 300:
            raise self.error_from_raw(status, raw, headers, errors)
        content_type = headers.get("content-type", "").lower()
        if "html" in content_type:
            raise errors.malformed(raw)
        events = reader.feed_body(raw)
        events.extend(reader.end(whole_body=True))
        for event in events:
            match event:
                case TextDelta(text=text):
                    async for piece in self._reveal(text):
                        yield piece
                case _:
                    yield event

    async def _exchange(self, model: str, content: bytes) -> tuple[int, httpx.Headers, bytes]:
        async with self.http_client().stream(
            "POST", self.url(model), content=content, headers=self.build_headers()
        ) as response:
            limit = JSON_BODY_LIMIT if response.is_success else ERROR_BODY_LIMIT
            try:
                raw = await read_limited(response, limit)
            except httpx.HTTPError:
                if response.is_success:
                    raise
                raw = b""  # an error status says enough without its body
            return response.status_code, response.headers, raw

    async def _reveal(self, text: str) -> AsyncIterator[TextDelta]:
        """The text in at most 24 pieces over at most `reveal_seconds`."""
        pieces = _PIECES.findall(text)
        if self.reveal_seconds <= 0 or len(pieces) < 2:
            yield TextDelta(text)
            return
        steps = min(24, len(pieces))
        size = -(-len(pieces) // steps)
        delay = self.reveal_seconds / steps
        for index in range(0, len(pieces), size):
            if index:
                await asyncio.sleep(delay)
            yield TextDelta("".join(pieces[index : index + size]))
