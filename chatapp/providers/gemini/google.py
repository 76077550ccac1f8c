"""Google's Gemini API, directly (docs/PROTOCOLS.md §3).

`POST {base}/models/{model}:streamGenerateContent?alt=sse` with the key in `x-goog-api-key` -
never in the URL (a key in a query string ends up in access logs and tracebacks;
docs/SECURITY.md rule 12). The body and the response reading are shared with Segmind (`wire`), the
SSE parser with every route (`wire`). What is particular to this route:
- the stream has no `[DONE]`: it ends when the connection closes, and the `finishReason`
  (usually riding on the last text chunk) is the only sign that the answer is complete, so a
  close without one is an incomplete answer, and a drop after one is not;
- a mid-stream error may arrive as bare, pretty-printed JSON without `data:`;
- `usageMetadata` is cumulative: each report replaces the previous one;
- a blocked prompt is HTTP 200 with no candidates and `promptFeedback.blockReason`: it raises
  `PromptBlockedError` ("Your prompt was blocked: ...") after yielding the feedback as
  `ProviderExtras`, so the message never ends as an empty bubble;
- a SAFETY / MAX_TOKENS / RECITATION ending, with or without text, is a normal `Finish`
  whose `raw` says why; the safety ratings come as `ProviderExtras`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from ..base import JSON_BODY_LIMIT, TRANSPORT_ERRORS
from ..http import body_chunks, upstream_url
from ..types import ChatRequest, Event
from ..wire import SSEParser, StrayJSON, error_object, read_limited, request_content
from .wire import (
    ErrorMapper,
    NativeProvider,
    ResponseReader,
    option_fields,
    system_instruction,
)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"


class GeminiProvider(NativeProvider):
    label = "Google"

    def url(self, model: str) -> httpx.URL:
        model = model.removeprefix("models/")
        return upstream_url(
            f"{self.base_url}/models/{quote(model, safe='')}:streamGenerateContent?alt=sse"
        )

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"contents": self.contents(request)}
        system = system_instruction(request.system)
        if system is not None:
            body["systemInstruction"] = system
        body.update(option_fields(request.options))
        return body

    def build_headers(self) -> dict[str, str]:
        return {
            "x-goog-api-key": self.api_key,
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        client = self.http_client()
        content = await request_content(self.build_body, request)
        errors = self.error_mapper()
        reader = self.reader(request, errors)
        started = False
        try:
            async with client.stream(
                "POST", self.url(request.model), content=content, headers=self.build_headers()
            ) as response:
                started = True
                request_id = response.headers.get("x-request-id")
                errors.request_id = self.redact(request_id) if request_id else None
                if not response.is_success:
                    raise await self.status_error(response, errors)
                content_type = response.headers.get("content-type", "").lower()
                if "json" in content_type and "event-stream" not in content_type:
                    # `:generateContent`-style body, or a JSON array if `alt=sse` was lost.
                    raw = await read_limited(response, JSON_BODY_LIMIT)
                    for event in reader.feed_body(raw):
                        yield event
                    for event in reader.end(whole_body=True):
                        yield event
                    return
                parser = SSEParser()
                try:
                    async for chunk in body_chunks(response):
                        for data in parser.feed(chunk):
                            for event in self._events(data, reader, errors):
                                yield event
                    for data in parser.close():
                        for event in self._events(data, reader, errors):
                            yield event
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout):
                    # After the finishReason the answer is whole: a drop then loses nothing.
                    if reader.finish is None:
                        raise
                if not reader.seen and parser.sample:
                    raise errors.malformed(b"\n".join(parser.sample))
                for event in reader.end(whole_body=False):
                    yield event
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(exc, started=started, request_id=errors.request_id) from exc

    @staticmethod
    def _events(
        data: bytes | StrayJSON, reader: ResponseReader, errors: ErrorMapper
    ) -> list[Event]:
        if not isinstance(data, StrayJSON):
            return reader.feed_data(data)
        # Bare JSON outside the SSE grammar: an error object ends the answer with it.
        error = error_object(data.value)
        if error is not None:
            raise errors.from_body(None, error, json.dumps(error, ensure_ascii=False))
        return []
