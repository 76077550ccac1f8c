"""The OpenAI-compatible chat completions route (AI/ML API, or any compatible base URL).

Wire facts are in docs/PROTOCOLS.md §1. What this adapter adds on top of plain OpenAI:
- errors are not OpenAI-shaped: every documented body is parsed, and a 500 wrapping an
  upstream 4xx ("400 Unable to access model ...") is treated as that 4xx;
- `x-inference-id` is AI/ML API's billing reference: it is reported in `ResponseInfo` and on
  every error raised after the response head arrived, so an interrupted answer can still be
  reconciled;
- cost arrives in `meta.usage` next to the token usage;
- Gemini's `extra_content` (thought signatures) is collected and echoed back on later turns.

The SSE parser works on bytes: httpx's `aiter_lines` splits on U+2028 and other Unicode line
separators, which a JSON string may legally contain raw, and would cut a data line in two.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx
import orjson

from . import catalog, functions, params
from .base import JSON_BODY_LIMIT, TRANSPORT_ERRORS, Provider
from .errors import (
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
from .http import body_chunks, upstream_url
from .logprobs import from_openai
from .params import WireFormat
from .types import (
    CandidateDelta,
    CandidateFinish,
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    Logprobs,
    ProviderExtras,
    ReasoningDelta,
    ResponseInfo,
    TextDelta,
    TextPart,
    Usage,
    deep_merge,
    json_copy,
)
from .wire import (
    SSEParser,
    StrayJSON,
    clip_detail,
    error_object,
    message_text,
    read_limited,
    request_content,
    retry_after,
    shorten,
    status_code,
    text_reason,
)

# The OpenAI format's finish_reason -> the neutral reason (the raw word is kept with the message).
FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}

# AI/ML API echoes X-Client-Request-Id only in this form; anything else is not sent.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# After [DONE] the zero-length chunk normally follows at once; reading it lets httpx return the
# connection to the pool. A server that keeps the stream open after [DONE] is not waited for.
DRAIN_AFTER_DONE = 0.5


class OpenAICompatProvider(Provider):
    label = "AI/ML API"
    wire_format: ClassVar[WireFormat] = "openai"

    # --- request --------------------------------------------------------------------------

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system.strip():
            messages.append({"role": "system", "content": request.system})
        origin = {"route": self.alias, "model": request.model}
        for message in request.messages:
            if message.role == "tool":
                messages.extend(_tool_messages(message))
            else:
                messages.append(_wire_message(message, origin))
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        spec = catalog.find_model(self.alias, request.model)
        # docs/PROTOCOLS.md §1: legacy ids accept `stream` only (they send usage anyway);
        # current ids and other OpenAI-compatible servers report usage only when asked.
        if spec is None or not spec.legacy:
            body["stream_options"] = {"include_usage": True}
        body.update(params.wire_fields(request.options, self.wire_format))
        if "tools" in body and "parallel_tool_calls" not in body:
            # "Parallel calls" off: the OpenAI format's default is on (docs/PROTOCOLS.md §1b).
            body["parallel_tool_calls"] = False
        return body

    def build_headers(self, request: ChatRequest) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        if request.request_id and _CLIENT_REQUEST_ID.fullmatch(request.request_id):
            headers["X-Client-Request-Id"] = request.request_id
        return headers

    # --- the stream -----------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        client = self.http_client()
        content = await request_content(self.build_body, request)
        state = _State()
        state.origin = {"route": self.alias, "model": request.model}
        state.candidates = request.candidates
        try:
            async with client.stream(
                "POST",
                upstream_url(f"{self.base_url}/chat/completions"),
                content=content,
                headers=self.build_headers(request),
            ) as response:
                state.started = True
                inference_id = response.headers.get("x-inference-id")
                # Redacted once here: it reaches the UI, and an upstream could echo anything.
                state.inference_id = self.redact(inference_id) if inference_id else None
                if not response.is_success:
                    raise await self._status_error(response, state)
                content_type = response.headers.get("content-type", "").lower()
                if "json" in content_type and "event-stream" not in content_type:
                    raw = await read_limited(response, JSON_BODY_LIMIT)
                    for event in self._completion_events(raw, state):
                        yield event
                else:
                    parser = SSEParser()
                    chunks = body_chunks(response)
                    try:
                        async for chunk in chunks:
                            for data in parser.feed(chunk):
                                if isinstance(data, StrayJSON):
                                    self._check_stray(data, state)
                                    continue
                                for event in self._chunk_events(data, state):
                                    yield event
                                if state.done:
                                    break
                            if state.done:
                                break
                        else:
                            for data in parser.close():
                                if isinstance(data, StrayJSON):
                                    self._check_stray(data, state)
                                    continue
                                for event in self._chunk_events(data, state):
                                    yield event
                    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout):
                        # Once the finish chunk is in, the answer is whole: only the trailer
                        # (usage, [DONE]) was lost, which is no reason to fail the message.
                        if state.finish is None:
                            raise
                    if not state.done and state.finish is None:
                        if not state.saw_data and parser.sample:
                            raise MalformedResponseError(
                                upstream_request_id=self._rid(state),
                                detail=self._detail(
                                    b"\n".join(parser.sample).decode("utf-8", "replace")
                                ),
                            )
                        raise UpstreamConnectionError(
                            "The provider's stream ended before the answer was complete. "
                            "Press Retry.",
                            upstream_request_id=self._rid(state),
                        )
                    for event in self._final_events(state):
                        yield event
                    if state.done:
                        await _drain(chunks)
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(
                exc, started=state.started, request_id=state.inference_id
            ) from exc

    # --- events ---------------------------------------------------------------------------

    def _chunk_events(self, data: bytes, state: _State) -> list[Event]:
        """The events of one SSE `data:` payload. This is the per-token hot path."""
        state.saw_data = True
        if data[:1] == b"[" and data.strip() == b"[DONE]":
            state.done = True
            return []
        try:
            chunk = orjson.loads(data)  # 2-3x json.loads; same values for valid JSON
        except ValueError:
            events = self._split_multiline(data, state)
            if events is None:
                raise self._malformed(data, state) from None
            return events
        return self._object_events(chunk, data, state)

    def _malformed(self, data: bytes, state: _State) -> MalformedResponseError:
        return MalformedResponseError(
            upstream_request_id=self._rid(state),
            detail=self._detail(data.decode("utf-8", "replace")),
        )

    def _object_events(self, chunk: Any, data: bytes, state: _State) -> list[Event]:
        """Events of one `chat.completion.chunk`, or of a whole `chat.completion` body."""
        if type(chunk) is not dict:
            raise self._malformed(data, state)
        if chunk.get("error"):
            raise self._body_error(None, chunk, data.decode("utf-8", "replace"), None, state)
        events: list[Event] = []
        if not state.info_sent and chunk.get("id"):
            state.info_sent = True
            events.append(
                ResponseInfo(
                    request_id=state.inference_id,
                    response_id=str(chunk["id"]),
                    model=_str_or_none(chunk.get("model")),
                )
            )
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                if type(choice) is not dict:
                    continue
                index = choice.get("index", 0)
                if index != 0:
                    # n > 1: each other choice is an answer of its own, grouped by its index
                    # and never mixed into ours (docs/PROTOCOLS.md §1); one not asked for is
                    # ignored.
                    if type(index) is int and 0 < index < state.candidates:
                        self._candidate_events(index, choice, state, events)
                    continue
                delta = choice.get("delta") or choice.get("message")
                if type(delta) is dict:
                    self._delta_events(delta, state, events)
                extra = choice.get("extra_content")
                if extra:
                    self._extras(extra, state, events)
                logprobs = choice.get("logprobs")
                if logprobs:
                    tokens = from_openai(logprobs)
                    if tokens:
                        events.append(Logprobs(tokens))
                reason = choice.get("finish_reason")
                if reason:
                    state.finish = str(reason)
        if chunk.get("usage") or chunk.get("meta"):
            self._usage(chunk, state, events)
        return events

    def _delta_events(self, delta: dict[str, Any], state: _State, events: list[Event]) -> None:
        reasoning = delta.get("reasoning_content")
        if reasoning and type(reasoning) is str:
            events.append(ReasoningDelta(reasoning))
        content = delta.get("content")
        if content:
            if type(content) is str:
                events.append(TextDelta(content))
            else:
                text = _content_text(content)
                if text:
                    events.append(TextDelta(text))
        extra = delta.get("extra_content")
        if extra:
            self._extras(extra, state, events)
        calls = delta.get("tool_calls")
        if calls:
            state.calls.feed(calls)

    def _candidate_events(
        self, index: int, choice: dict[str, Any], state: _State, events: list[Event]
    ) -> None:
        """Another choice's text, reasoning, log probabilities and finish, by its index.
        Its `extra_content` (thought signatures) is not kept: a later turn sends a text answer
        without one, which Gemini accepts (docs/PROTOCOLS.md §3)."""
        delta = choice.get("delta") or choice.get("message")
        if type(delta) is dict:
            text = _content_text(delta.get("content"))
            reasoning = delta.get("reasoning_content")
            reasoning = reasoning if type(reasoning) is str else ""
            if text or reasoning:
                events.append(CandidateDelta(index, text, reasoning))
        logprobs = choice.get("logprobs")
        if logprobs:
            tokens = from_openai(logprobs)
            if tokens:
                events.append(Logprobs(tokens, index))
        reason = choice.get("finish_reason")
        if reason and index not in state.finished:
            state.finished.add(index)
            raw = str(reason)
            events.append(CandidateFinish(index, FINISH_REASONS.get(raw, "other"), raw))

    def _extras(self, extra: Any, state: _State, events: list[Event]) -> None:
        if not isinstance(extra, dict):
            return
        deep_merge(state.extras, extra)
        # Cumulative, so that whoever merges it (shallowly or not) ends with every field seen.
        # `google_echo` records which route and model signed it: Gemini refuses a thought
        # signature made by another model ("Corrupted thought signature"), so it is echoed
        # only to the same one.
        events.append(
            ProviderExtras({**json_copy(state.extras), "google_echo": dict(state.origin)})
        )

    def _usage(self, chunk: dict[str, Any], state: _State, events: list[Event]) -> None:
        usage = chunk.get("usage")
        figures = state.usage
        if isinstance(usage, dict):
            for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
                value = _number(usage.get(name))
                if value is not None:
                    figures[name] = value
            details = usage.get("completion_tokens_details")
            reasoning = (
                _number(details.get("reasoning_tokens")) if isinstance(details, dict) else None
            )
            if reasoning is None:
                reasoning = _number(usage.get("reasoning_tokens"))
            if reasoning is not None:
                figures["reasoning_tokens"] = reasoning
        meta = chunk.get("meta")
        cost = meta.get("usage") if isinstance(meta, dict) else None
        if isinstance(cost, dict):
            for name in ("credits_used", "usd_spent"):
                value = _number(cost.get(name))
                if value is not None:
                    figures[name] = value
        snapshot = Usage(**figures)
        if figures and snapshot != state.last_usage:
            # Cumulative too: usage and cost may come in separate chunks.
            state.last_usage = snapshot
            events.append(snapshot)

    def _final_events(self, state: _State) -> list[Event]:
        events: list[Event] = []
        if not state.info_sent and state.inference_id is not None:
            state.info_sent = True
            events.append(ResponseInfo(request_id=state.inference_id))
        # A complete answer without a finish_reason ([DONE] or a whole JSON body) ended
        # normally as far as the upstream is concerned.
        calls = state.calls.calls()
        if calls:
            # Checked and bounded (providers/functions.py); the page offers a result for each.
            events.append(ProviderExtras({functions.CALLS_KEY: calls}))
        raw = state.finish or ""
        events.append(Finish(reason=FINISH_REASONS.get(raw, "other") if raw else "stop", raw=raw))
        return events

    def _completion_events(self, raw: bytes, state: _State) -> list[Event]:
        """Events of a whole `chat.completion` body (servers that ignore `stream`)."""
        try:
            body = json.loads(raw)
        except ValueError:
            raise self._malformed(raw, state) from None
        events = self._object_events(body, raw, state)
        events.extend(self._final_events(state))
        return events

    def _split_multiline(self, data: bytes, state: _State) -> list[Event] | None:
        """Rescue for servers that put several JSON chunks in one event without blank lines
        between them (the spec would join them into one invalid document)."""
        if b"\n" not in data:
            return None
        events: list[Event] = []
        for line in data.split(b"\n"):
            line = line.strip()
            if not line:
                continue
            try:
                json.loads(line)
            except ValueError:
                return None
            events.extend(self._chunk_events(line, state))
        return events

    def _check_stray(self, data: StrayJSON, state: _State) -> None:
        """JSON outside the SSE grammar that is an error object (some gateways write one bare,
        without `data:`, and Google's compatible endpoint wraps it in a list) is an error;
        anything else stays ignored. Checked where it falls among the events: a read may carry
        it together with the end of the stream."""
        if error_object(data.value) is not None:
            text = json.dumps(data.value, ensure_ascii=False)
            raise self._body_error(None, data.value, text, None, state)

    # --- errors ---------------------------------------------------------------------------

    def _rid(self, state: _State) -> str | None:
        return state.inference_id

    def _detail(self, text: str) -> str:
        return clip_detail(self.redact(text))

    async def _status_error(self, response: httpx.Response, state: _State) -> ProviderError:
        raw = await self.read_error_body(response)
        text = self.error_text(raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return self._body_error(response.status_code, body, text, response.headers, state)

    def _body_error(
        self,
        status: int | None,
        body: Any,
        text: str,
        headers: httpx.Headers | None,
        state: _State,
    ) -> ProviderError:
        reason, code = _error_reason(body)
        if reason is None and text.strip():
            reason = text_reason(text)
        effective = status if status is not None else code
        if status == 500:
            # AI/ML API wraps an upstream 4xx in a 500: "400 Unable to access model ...".
            wrapped = _leading_status(reason)
            if wrapped is not None:
                effective, reason = wrapped
            elif code is not None and 400 <= code < 500:
                effective = code
        cls = _error_class(effective)
        reason = shorten(self.redact(reason or ""))
        if effective is not None and 300 <= effective < 400:
            message = (
                f"The provider answered with a redirect (HTTP {effective}), which is not "
                "followed. Check this route's base URL."
            )
        else:
            message = cls.default_message
            if reason:
                message = f"{message} (upstream said: {reason})"
        return cls(
            message,
            status=effective,
            retry_after=retry_after(headers.get("retry-after")) if headers is not None else None,
            upstream_request_id=self._rid(state),
            detail=self._detail(text),
        )


# --- state and parsing helpers -----------------------------------------------------------------


class _State:
    __slots__ = (
        "calls",
        "candidates",
        "done",
        "extras",
        "finish",
        "finished",
        "inference_id",
        "info_sent",
        "last_usage",
        "origin",
        "saw_data",
        "started",
        "usage",
    )

    def __init__(self) -> None:
        self.started = False  # the response head arrived
        self.inference_id: str | None = None
        self.info_sent = False
        self.done = False
        self.saw_data = False
        self.finish: str | None = None
        self.candidates = 1  # choices asked for (`n`)
        self.finished: set[int] = set()  # the other choices that have ended
        self.extras: dict[str, Any] = {}
        self.calls = functions.CallAssembler()  # delta.tool_calls, joined by index
        self.origin: dict[str, str] = {}
        self.usage: dict[str, Any] = {}
        self.last_usage: Usage | None = None


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    # Bounded: a timeout here only costs the connection its place in the pool.
    try:
        async with asyncio.timeout(DRAIN_AFTER_DONE):
            async for _ in chunks:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass


def _tool_messages(message: ChatMessage) -> list[dict[str, Any]]:
    """The results a person typed: one `{role: tool, tool_call_id, content}` per call
    (docs/PROTOCOLS.md §1b)."""
    return [
        {"role": "tool", "tool_call_id": result["id"], "content": result["content"]}
        for result in functions.results_of(message.extras)
    ]


def _wire_call(call: functions.Call) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": call["arguments"]},
    }
    if "extra_content" in call:
        wire["extra_content"] = call["extra_content"]
    return wire


def _wire_message(message: ChatMessage, origin: dict[str, str]) -> dict[str, Any]:
    if message.role == "assistant":
        extras = message.extras or {}
        calls = functions.calls_of(extras)
        wire: dict[str, Any] = {"role": "assistant", "content": message.text}
        if calls:
            # The model's turn as it was: its calls with their ids and argument text.
            wire["content"] = message.text or None
            wire["tool_calls"] = [_wire_call(call) for call in calls]
        google = extras.get("google")
        if google and extras.get("google_echo") == origin:
            # Echoed exactly as the provider sent it (thought signatures are opaque).
            wire["extra_content"] = {"google": json_copy(google)}
        return wire
    if all(isinstance(part, TextPart) for part in message.parts):
        return {"role": "user", "content": message.text}
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            encoded = base64.b64encode(part.data).decode("ascii")
            content.append(
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:{part.mime_type};base64,{encoded}"},
                }
            )
        elif part.text:
            content.append({"type": "text", "text": part.text})
    return {"role": "user", "content": content}


def _content_text(content: Any) -> str:
    """A delta's content as text: a string, or (some compatible servers) content parts."""
    if type(content) is str:
        return content
    if type(content) is list:
        return "".join(str(p.get("text", "")) for p in content if type(p) is dict and "text" in p)
    return ""


def _number(value: Any) -> int | float | None:
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _error_reason(body: Any) -> tuple[str | None, int | None]:
    """(reason, status code) from any documented error body shape."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]  # Google's OpenAI-compatible endpoint wraps errors in a list
    if isinstance(body, str):
        return message_text(body), None
    if not isinstance(body, dict):
        return None, None
    code = status_code(body.get("statusCode")) or status_code(body.get("status"))
    reason = message_text(body.get("message"))
    error = body.get("error")
    if isinstance(error, dict):
        reason = reason or message_text(error.get("message"))
        code = code or status_code(error.get("code")) or status_code(error.get("status"))
    elif reason is None:
        reason = message_text(error)
    reason = reason or message_text(body.get("detail")) or message_text(body.get("title"))
    return reason, code


def _leading_status(reason: str | None) -> tuple[int, str] | None:
    """("400", "Unable to access model x") from "400 Unable to access model x"."""
    if not reason or len(reason) < 4 or not reason[:3].isdigit() or reason[3] not in " :-":
        return None
    code = int(reason[:3])
    if not 400 <= code < 500:
        return None
    return code, reason[4:].lstrip(" :-")


def _error_class(status: int | None) -> type[ProviderError]:
    if status in (400, 422):
        return BadRequestError
    if status == 401:
        return AuthenticationError
    if status in (402, 403):
        return InsufficientCreditsError
    if status in (404, 410):
        return ModelUnavailableError
    if status == 429:
        return RateLimitError
    if status in (408, 504):
        return UpstreamTimeout
    if status is not None and 300 <= status < 400:
        return ProviderError
    if status is not None and 400 <= status < 500:
        return BadRequestError
    return UpstreamError
