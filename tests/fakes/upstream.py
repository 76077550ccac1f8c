"""A fake upstream: a real HTTP/1.1 server on loopback that plays scripted model answers.

Tests, the benchmark and the browser tests point the real adapters at it, so what is exercised
is the adapters' actual HTTP, SSE parsing, timeouts and cancellation over a real socket.

    fake = FakeUpstream()                        # starts serving on 127.0.0.1:<free port>
    fake.enqueue(Reply([Text("Hel"), Gate("mid"), Text("lo")], model="google/gemini-x"))
    ...                                          # point an adapter at fake.openai_base_url
    fake.wait_for_gate("mid"); fake.release("mid")
    fake.wait_closed(0).client_disconnected      # did the client hang up?
    fake.close()

Design:
- The server runs on its own event loop in a daemon thread, so it works the same from sync
  tests, async tests on any loop, the benchmark and a live server thread. Every public method
  is synchronous and thread-safe; the `*_async` waiters await the same conditions from any
  event loop without blocking it.
- A reply is a protocol-neutral script (`Reply` and its steps). A `Renderer`, chosen by the
  request path, turns the script into one wire format: the OpenAI format (AI/ML API, under
  `openai_base_url`), Google's Gemini API (`gemini_base_url`: SSE without `[DONE]`, the
  finish on the last chunk, cumulative usage, blocked prompts) and Segmind (`segmind_base_url`:
  one Gemini-native or older OpenAI-style JSON body). The same script plays on all three.
- One asyncio task per connection, no threads per connection: the benchmark opens 500+
  concurrent streams.
- Streams use `Transfer-Encoding: chunked`, so `Drop()` (closing the socket without the final
  zero-length chunk) is seen by httpx as a protocol error, exactly like a real dropped stream.

Run it by hand (serves the default echo reply at a realistic pace):

    python -m tests.fakes.upstream --port 9999
    AIMLAPI_BASE_URL=http://127.0.0.1:9999/v1 AIMLAPI_API_KEY=x python manage.py runserver
    GEMINI_BASE_URL=http://127.0.0.1:9999/v1beta GEMINI_API_KEY=x ...
    SEGMIND_BASE_URL=http://127.0.0.1:9999/segmind SEGMIND_API_KEY=x ...
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "ECHO_KEY",
    "ROUTES",
    "Code",
    "CodeResult",
    "Comment",
    "Data",
    "Delay",
    "Drop",
    "ErrorReply",
    "ExtraContent",
    "FakeUpstream",
    "Gate",
    "Headers",
    "Raw",
    "Reasoning",
    "RecordedRequest",
    "Renderer",
    "Reply",
    "Stall",
    "Text",
    "TokenProb",
    "Usage",
    "bare_json",
    "chunks",
    "google_error",
    "grounding_metadata",
    "words",
]

# Replaced, in error bodies, `Raw`/`Data` steps and response header values, by the bearer token
# the client sent: lets a test prove that an upstream echoing the key never leaks it further.
ECHO_KEY = "<<echo-api-key>>"
_ECHO_KEY_BYTES = ECHO_KEY.encode()

_MAX_HEAD = 64 * 1024
# Generous: Gemini accepts 100 MB of base64 per request and tests may send large images.
_MAX_BODY = 256 * 1024 * 1024


# --- The script: steps ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """One content delta (one chunk). `index` is the choice index, for n > 1.

    `stamp=True` prefixes the text, when it is sent, with `⟦<time.time_ns()>⟧`: the benchmark
    reads it back at the far end of the app (a Python client, or the browser's page clock) to
    measure each chunk's added latency. Wall-clock time, because the browser has no other clock
    in common with us; all parties run on one machine.

    `signature` is a thought signature carried by this piece: Gemini puts `thoughtSignature`
    on the part (an empty text with a signature is how a stream often ends); the OpenAI format
    sends it as `extra_content.google.thought_signature` on the same delta.
    """

    text: str
    index: int = 0
    stamp: bool = False
    signature: str | None = None
    # Token log probabilities sent with this piece: (token, logprob, ((alternative, logprob),
    # ...)) each, as `choices[].logprobs.content` (OpenAI) or the candidate's
    # `logprobsResult` (Gemini).
    logprobs: Sequence[TokenProb] = ()


# One token's log probability with its top alternatives, for `Text(logprobs=...)`.
TokenProb = tuple[str, float, Sequence[tuple[str, float]]]


@dataclass(frozen=True, slots=True)
class Reasoning:
    """One reasoning delta, sent as `delta.reasoning_content` (the form DeepSeek-style
    OpenAI-compatible servers use; whether AI/ML API sends it for Gemini is unverified), and
    by Gemini as a `thought: true` part (a thought summary), with `signature` if given."""

    text: str
    index: int = 0
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class Code:
    """Code the model runs with Gemini's code execution: one `executableCode` part (Gemini
    renderers only; the OpenAI format has no such part and sends nothing for it)."""

    code: str
    language: str = "PYTHON"
    index: int = 0
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class CodeResult:
    """The result of running it: one `codeExecutionResult` part (`outcome` OUTCOME_OK,
    OUTCOME_FAILED or OUTCOME_DEADLINE_EXCEEDED)."""

    output: str
    outcome: str = "OUTCOME_OK"
    index: int = 0
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """The model calls a function (docs/PROTOCOLS.md §1b, §3b). OpenAI format: streamed as
    `delta.tool_calls` fragments of call `call` (its index in the step): the id, type and
    name first with empty arguments, then `arguments` in pieces of `piece` characters (the
    reply should end with `finish="tool_calls"`); `signature` goes on the first fragment as
    `extra_content.google.thought_signature`, as Google's OpenAI-compatible endpoint sends
    it. Gemini: one `functionCall{name, args, id}` part (`args` is `arguments` parsed), with
    `thoughtSignature` when `signature` is given; several Call steps are parallel calls."""

    name: str
    arguments: str = "{}"
    id: str | None = None
    call: int = 0
    index: int = 0
    signature: str | None = None
    piece: int = 7


@dataclass(frozen=True, slots=True)
class ExtraContent:
    """A delta chunk carrying `extra_content`, e.g. `{"google": {"thought_signature": "..."}}`.
    In a non-stream answer the extras of all such steps are merged into `message.extra_content`."""

    data: Mapping[str, Any]
    index: int = 0


@dataclass(frozen=True, slots=True)
class Data:
    """One `data:` event carrying exactly this JSON value, e.g. an in-stream `{"error": ...}`."""

    value: Any


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes written into the stream as they are (malformed lines, split lines, CRLF...)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Comment:
    """An SSE comment line; a leading ":" is added if missing."""

    text: str = ": keep-alive"


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait before the next step (the fake's pacing; tests synchronise with `Gate` instead)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class At:
    """Wait until `seconds` after the response head was sent: pacing without the drift that
    many relative `Delay`s accumulate."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Gate:
    """Pause until the test calls `fake.release(name)`. Release is a latch: every stream that
    reaches the gate afterwards passes straight through, until `reset()`."""

    name: str


@dataclass(frozen=True, slots=True)
class Stall:
    """Send nothing more; keep the connection open until the client leaves or the fake closes."""


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection abruptly: no further chunks, no terminating zero-length chunk."""


Step = (
    Text
    | Call
    | Reasoning
    | Code
    | CodeResult
    | ExtraContent
    | Data
    | Raw
    | Comment
    | Delay
    | At
    | Gate
    | Stall
    | Drop
)
_CONTROL = (Delay, At, Gate, Stall, Drop)

STAMP = re.compile(r"⟦(\d+)⟧")


def stamped(text: str) -> str:
    return f"⟦{time.time_ns()}⟧{text}"


def bench_reply(prompt: str) -> Reply | None:
    """The benchmark's reply, described in the prompt: `BENCH tokens=1000 rate=50 chunk=1
    ttft=0.3` streams 1,000 tokens at 50 per second, `chunk` tokens per chunk (Gemini sends
    several), the first after `ttft` seconds, in paragraphs of 50 tokens; every chunk carries
    its send time."""
    match = re.search(r"BENCH((?:\s+\w+=[\d.]+)+)", prompt)
    if match is None:
        return None
    spec = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", match.group(1))}
    tokens, rate = int(spec.get("tokens", 100)), spec.get("rate", 50.0)
    size, ttft = max(1, int(spec.get("chunk", 1))), spec.get("ttft", 0.3)
    steps: list[Step] = []
    for first in range(0, tokens, size):
        count = min(size, tokens - first)
        # Paragraphs, as real answers have them: a break every 50 tokens.
        text = " tok" * count + ("\n\n" if (first + count) // 50 > first // 50 else "")
        steps.append(At(ttft + first / rate))
        steps.append(Text(text, stamp=True))
    return Reply(
        steps, usage=Usage(prompt_tokens=10, completion_tokens=tokens, total_tokens=tokens + 10)
    )


def chunks(text: str, size: int = 4) -> list[Text]:
    """`text` as `Text` steps of `size` characters each."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [Text(text[i : i + size]) for i in range(0, len(text), size)]


_WORD = re.compile(r"\s*\S+\s*|\s+")


def words(text: str) -> list[Text]:
    """`text` as one `Text` step per word, whitespace kept, so the pieces join back exactly."""
    return [Text(piece) for piece in _WORD.findall(text)]


# --- The script: replies ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage figures to report. A field left None is omitted from the wire, so tests can send
    partial or inconsistent usage (e.g. total != prompt + completion) on purpose."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    credits_used: float | None = None
    usd_spent: float | None = None
    # Merged into the wire `usage` object, e.g. {"extra_properties": {"google": {...}}}.
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """A successful answer.

    `stream_mode`: "auto" streams when the request asked for it, "sse" always streams and
    "json" always answers one JSON body (as servers that ignore `stream` do).
    `usage`: "auto" derives figures from the request and the steps; None sends no usage.
    `finish`: the finish_reason of every choice, or None for no finish chunk at all.
    `finishes`: the finish_reason of single choices (candidates) by index, over `finish`;
    None there: that one never finishes.
    `done`: whether `data: [DONE]` ends the stream.
    `before_headers`: control steps (Delay, Gate, Stall, Drop) run before the response head
    is sent, e.g. to hold the client before the first byte.
    `ts`: add `"x_ts": time.time_ns()` to every chunk (None: the server's `ts` setting).

    Gemini-native renderers (Google, Segmind) also read:
    `finish` in either spelling ("stop" is sent as STOP, "length" as MAX_TOKENS,
    "content_filter" as SAFETY; "SAFETY", "RECITATION"... as they are). With no Text steps
    and finish="SAFETY" the candidate has no parts at all, as Google sends it.
    `blocked`: the prompt was blocked - HTTP 200, no candidates, `promptFeedback.blockReason`.
    `safety_ratings`: sent on the finishing candidate (or in `promptFeedback` when blocked).
    `legacy_shape`: Segmind's older OpenAI-style body (`choices[0].message.content`).
    `grounding`, `url_context`: a `groundingMetadata` (see `grounding_metadata`) and a
    `urlContextMetadata`, sent as they are on the finishing candidate (or, with
    `metadata_chunk`, in a closing chunk of their own after the last text).
    """

    steps: Sequence[Step] = ()
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    usage: Usage | Literal["auto"] | None = "auto"
    finish: str | None = "stop"
    finishes: Mapping[int, str | None] = field(default_factory=dict)
    done: bool = True
    stream_mode: Literal["auto", "sse", "json"] = "auto"
    inference_id: str | None = None
    response_id: str | None = None
    before_headers: Sequence[Step] = ()
    role_chunk: bool = True
    ts: bool | None = None
    blocked: str | None = None
    safety_ratings: Sequence[Mapping[str, Any]] = ()
    legacy_shape: bool = False
    grounding: Mapping[str, Any] | None = None
    url_context: Mapping[str, Any] | None = None
    metadata_chunk: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "before_headers", _control_only(self.before_headers))

    @classmethod
    def text(cls, text: str, **kwargs: Any) -> Reply:
        """A reply streaming `text` one word per chunk."""
        return cls(words(text), **kwargs)

    @classmethod
    def candidates(cls, *texts: str, **kwargs: Any) -> Reply:
        """A reply with one choice (candidate) per text, their words interleaved by index
        (0, 1, 0, 1, ...), as an upstream streams several answers at once."""
        pieces = [
            [dataclasses.replace(t, index=i) for t in words(text)] for i, text in enumerate(texts)
        ]
        steps: list[Step] = []
        for position in range(max(map(len, pieces), default=0)):
            steps.extend(p[position] for p in pieces if position < len(p))
        return cls(steps, **kwargs)

    def finish_of(self, index: int) -> str | None:
        return self.finishes.get(index, self.finish)


@dataclass(frozen=True)
class ErrorReply:
    """A fixed response: any status, any body. dict/list bodies are sent as JSON, str as
    text/plain, bytes as they are. The constructors below reproduce each documented AI/ML API
    error shape (docs/PROTOCOLS.md §1, errors)."""

    status: int
    body: Any = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    inference_id: str | None = None
    before_headers: Sequence[Step] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "before_headers", _control_only(self.before_headers))

    def encode(self) -> tuple[bytes, str]:
        body = self.body
        if isinstance(body, bytes):
            return body, self.content_type or "application/octet-stream"
        if isinstance(body, str):
            return body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(body).encode(), self.content_type or "application/json; charset=utf-8"

    # -- AI/ML API's shapes --

    @classmethod
    def aimlapi(
        cls,
        status: int,
        message: str | list[str],
        *,
        path: str = "/v1/chat/completions",
        status_as_string: bool = False,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ErrorReply:
        """`{message, path, requestId, statusCode, timestamp}`; statusCode may be a string."""
        body = {
            "message": message,
            "path": path,
            "requestId": request_id or str(uuid.uuid4()),
            "statusCode": str(status) if status_as_string else status,
            "timestamp": _iso_now(),
        }
        return cls(status, body, headers=dict(headers or {}))

    @classmethod
    def problem(
        cls,
        status: int,
        title: str,
        message: str,
        *,
        error_name: str = "Error",
        error_message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ErrorReply:
        """`application/problem+json` `{title, status, message, error{name, message}}`."""
        body = {
            "title": title,
            "status": status,
            "message": message,
            "error": {"name": error_name, "message": error_message or message},
        }
        return cls(
            status, body, content_type="application/problem+json", headers=dict(headers or {})
        )

    @classmethod
    def wrapped(cls, inner_status: int, message: str, *, status: int = 500) -> ErrorReply:
        """An upstream 4xx wrapped in a 500: `message: "400 Unable to access model ..."`."""
        return cls.aimlapi(status, f"{inner_status} {message}")

    @classmethod
    def text(
        cls, status: int, text: str, *, headers: Mapping[str, str] | None = None
    ) -> ErrorReply:
        return cls(status, text, headers=dict(headers or {}))

    @classmethod
    def html(cls, status: int, title: str | None = None, body: str = "") -> ErrorReply:
        """An HTML error page, as a proxy or load balancer in front of the API sends."""
        title = title or f"{status} {_phrase(status)}"
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n{body}<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return cls(status, page, content_type="text/html")

    # -- One typical body per documented status --

    @classmethod
    def bad_request(cls, message: str = "temperature must not be greater than 2") -> ErrorReply:
        return cls.aimlapi(400, message)

    @classmethod
    def unauthorized(cls, message: str = "Invalid or missing API key") -> ErrorReply:
        return cls.aimlapi(401, message)

    @classmethod
    def out_of_credits(cls) -> ErrorReply:
        return cls.aimlapi(
            403,
            "You've run out of credits. Please top up your balance or update your payment "
            "method to continue: https://aimlapi.com/app/billing",
            status_as_string=True,
        )

    @classmethod
    def model_not_found(cls, model: str = "gemini-1.5-pro") -> ErrorReply:
        return cls.aimlapi(404, f"Model {model} is deprecated and no longer available")

    @classmethod
    def rate_limited(cls, retry_after: str | float | None = None) -> ErrorReply:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls.aimlapi(
            429,
            "Free-tier limit: You've reached your free limit for the hour. Get AI/ML "
            "Subscription to use API, visit https://aimlapi.com/app/billing/ !",
            status_as_string=True,
            headers=headers,
        )

    @classmethod
    def internal_error(cls, message: str = "Internal server error") -> ErrorReply:
        return cls.aimlapi(500, message)

    @classmethod
    def bad_gateway(cls) -> ErrorReply:
        return cls.html(502)

    @classmethod
    def service_unavailable(cls) -> ErrorReply:
        return cls.problem(
            503,
            "Service Unavailable",
            "The service is under maintenance. Please try again later.",
            error_name="ServiceUnavailableException",
        )

    @classmethod
    def gateway_timeout(cls) -> ErrorReply:
        return cls.aimlapi(504, "Generation timed out")

    # -- Google's and Segmind's shapes (docs/PROTOCOLS.md §2, §3) --

    @classmethod
    def google(
        cls,
        code: int,
        message: str,
        status: str,
        *,
        retry_delay: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        as_list: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> ErrorReply:
        """`{"error": {code, message, status, details}}`, pretty-printed as Google sends it;
        `retry_delay` adds a RetryInfo detail ("37s"); `as_list` wraps the body in a list (the
        form of Google's OpenAI-compatible endpoint)."""
        body = {
            "error": google_error(code, message, status, retry_delay=retry_delay, details=details)
        }
        text = json.dumps([body] if as_list else body, indent=2)
        return cls(code, text, "application/json; charset=UTF-8", headers=dict(headers or {}))

    @classmethod
    def google_rate_limited(cls, retry_delay: str = "37s") -> ErrorReply:
        quota = {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaValue": "10",
                }
            ],
        }
        return cls.google(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "RESOURCE_EXHAUSTED",
            retry_delay=retry_delay,
            details=[quota],
        )

    @classmethod
    def segmind(
        cls, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> ErrorReply:
        """Segmind's `{"error": "<string>"}`."""
        return cls(status, {"error": message}, headers=dict(headers or {}))


def google_error(
    code: int,
    message: str,
    status: str,
    *,
    retry_delay: str | None = None,
    details: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The inside of Google's error body."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    found = [dict(d) for d in details]
    if retry_delay is not None:
        found.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    if found:
        error["details"] = found
    return error


def grounding_metadata(
    text: str,
    cites: Sequence[tuple[str, Sequence[int]]] = (),
    *,
    sources: Sequence[tuple[str, str] | tuple[str, str, str]] = (),
    queries: Sequence[str] = (),
    rendered: str | None = None,
    part_index: int | None = None,
) -> dict[str, Any]:
    """A `groundingMetadata` for an answer whose text (or, with `part_index`, that part's text)
    is `text`: each cite names a piece of it and the sources it rests on, its segment counted
    in bytes of UTF-8 as Google documents it; `sources` are (title, uri[, domain]) chunks."""
    data = text.encode()
    supports = []
    for piece, indices in cites:
        start = data.index(piece.encode())
        segment: dict[str, Any] = {
            "startIndex": start,
            "endIndex": start + len(piece.encode()),
            "text": piece,
        }
        if part_index is not None:
            segment["partIndex"] = part_index
        supports.append({"segment": segment, "groundingChunkIndices": list(indices)})
    chunks = []
    for source in sources:
        web = {"title": source[0], "uri": source[1]}
        if len(source) > 2:
            web["domain"] = source[2]  # type: ignore[misc]
        chunks.append({"web": web})
    metadata: dict[str, Any] = {}
    if queries:
        metadata["webSearchQueries"] = list(queries)
    if rendered is not None:
        metadata["searchEntryPoint"] = {"renderedContent": rendered}
    if chunks:
        metadata["groundingChunks"] = chunks
    if supports:
        metadata["groundingSupports"] = supports
    return metadata


def bare_json(value: Any) -> Raw:
    """A JSON value written into a stream as it is, pretty-printed, without `data:`: how
    Google reports an error after the stream has started."""
    return Raw(json.dumps(value, indent=2).encode() + b"\n")


def _control_only(steps: Sequence[Step]) -> tuple[Step, ...]:
    steps = tuple(steps)
    for step in steps:
        if not isinstance(step, _CONTROL):
            raise TypeError(f"before_headers takes Delay, Gate, Stall or Drop, not {step!r}")
    return steps


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# --- Recording --------------------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively; repeated headers are joined with ", "."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self.raw = list(items)
        merged: dict[str, str] = {}
        for name, value in self.raw:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._merged = merged

    def __getitem__(self, name: str) -> str:
        return self._merged[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._merged

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged)

    def __len__(self) -> int:
        return len(self._merged)

    def __repr__(self) -> str:
        return f"Headers({self._merged!r})"


@dataclass(eq=False)
class RecordedRequest:
    """One request as the fake received it, and how its response ended.

    `closed_at` is set when the response is over: completed, dropped by the script, or the
    client went away (`client_disconnected`). Times are `time.time()`.
    """

    index: int
    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any
    received_at: float
    status: int | None = None
    inference_id: str | None = None
    reply: Reply | ErrorReply | None = None
    closed_at: float | None = None
    client_disconnected: bool = False
    dropped: bool = False

    @property
    def bearer(self) -> str:
        value = self.headers.get("authorization", "")
        return value[7:].strip() if value[:7].lower() == "bearer " else ""

    @property
    def api_key(self) -> str:
        """The key the client sent, wherever it put it: the Bearer token, Google's
        `x-goog-api-key`, Segmind's `x-api-key`, or (never acceptable) `?key=`."""
        return (
            self.bearer
            or self.headers.get("x-goog-api-key", "").strip()
            or self.headers.get("x-api-key", "").strip()
            or self.query.get("key", "")
        )

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


# --- Renderers: the neutral script in one wire format -----------------------------------------


class _Turn:
    """State of one scripted answer while it is rendered."""

    __slots__ = (
        "created",
        "extras",
        "inference_id",
        "logprobs",
        "model",
        "reasoning",
        "reasoning_steps",
        "rec",
        "reply",
        "response_id",
        "text_steps",
        "texts",
        "ts",
    )

    def __init__(self, reply: Reply, rec: RecordedRequest, model: str, ts: bool) -> None:
        self.reply = reply
        self.rec = rec
        self.model = reply.model or model
        self.response_id = reply.response_id or f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.inference_id = rec.inference_id or ""
        self.ts = reply.ts if reply.ts is not None else ts
        self.texts: dict[int, list[str]] = {}
        self.reasoning: dict[int, list[str]] = {}
        self.extras: dict[int, dict[str, Any]] = {}
        self.logprobs: dict[int, list[TokenProb]] = {}
        self.text_steps = 0
        self.reasoning_steps = 0

    def note(self, step: Step) -> None:
        if isinstance(step, Text):
            self.texts.setdefault(step.index, []).append(step.text)
            self.text_steps += 1
            if step.logprobs:
                self.logprobs.setdefault(step.index, []).extend(step.logprobs)
            if step.signature is not None:
                google = {"google": {"thought_signature": step.signature}}
                _deep_merge(self.extras.setdefault(step.index, {}), google)
        elif isinstance(step, Reasoning):
            self.reasoning.setdefault(step.index, []).append(step.text)
            self.reasoning_steps += 1
        elif isinstance(step, ExtraContent):
            _deep_merge(self.extras.setdefault(step.index, {}), step.data)

    @property
    def indexes(self) -> list[int]:
        return sorted({0, *self.texts, *self.reasoning, *self.extras})


def _deep_merge(target: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = json.loads(json.dumps(value)) if isinstance(value, Mapping) else value


def openai_logprobs(tokens: Sequence[TokenProb]) -> dict[str, Any]:
    """A choice's `logprobs` object, as OpenAI's ChatCompletionTokenLogprob lists it."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    return {
        "content": [
            {**entry(token, logprob), "top_logprobs": [entry(a, lp) for a, lp in top]}
            for token, logprob, top in tokens
        ],
        "refusal": None,
    }


def gemini_logprobs(tokens: Sequence[TokenProb]) -> dict[str, Any]:
    """A candidate's `logprobsResult`: the chosen token and the top candidates of each step."""
    return {
        "topCandidates": [
            {"candidates": [{"token": a, "logProbability": lp} for a, lp in top]}
            for _, _, top in tokens
        ],
        "chosenCandidates": [
            {"token": token, "logProbability": logprob} for token, logprob, _ in tokens
        ],
    }


def sse_event(value: Any) -> bytes:
    # ensure_ascii=False, like Node's JSON.stringify: raw U+2028 and friends reach the client,
    # which must not treat them as line breaks.
    return (
        b"data: " + json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )


class Renderer:
    """Turns the neutral script into one protocol's bytes. One instance per request.

    The server core runs the control steps (Delay, Gate, Stall, Drop) and the protocol-neutral
    SSE steps (Raw, Comment, Data); a renderer provides the rest.
    """

    implemented: ClassVar[bool] = True
    name: ClassVar[str] = ""

    def __init__(self, rec: RecordedRequest, match: re.Match[str]) -> None:
        self.rec = rec
        self.match = match
        # Called with every response object the renderer makes (FakeUpstream.check_response).
        self.check_response: Callable[[Any], None] | None = None

    def check(self, expected_key: str | None) -> ErrorReply | None:
        """An error to answer instead of the script (bad auth, unreadable body), or None."""
        return None

    def wants_stream(self) -> bool:
        raise NotImplementedError

    def requested_model(self) -> str:
        raise NotImplementedError

    def prompt_text(self) -> str:
        """The last user text, for the default echo reply."""
        raise NotImplementedError

    def prompt_tokens(self) -> int:
        raise NotImplementedError

    def stream_content_type(self) -> str:
        return "text/event-stream; charset=utf-8"

    def open(self, turn: _Turn) -> bytes:
        raise NotImplementedError

    def step(self, step: Step, turn: _Turn) -> bytes:
        raise NotImplementedError

    def close(self, turn: _Turn) -> bytes:
        raise NotImplementedError

    def whole(self, turn: _Turn) -> bytes:
        raise NotImplementedError


class OpenAIChatRenderer(Renderer):
    """AI/ML API's OpenAI-compatible `POST /v1/chat/completions`."""

    name = "openai"

    def check(self, expected_key: str | None) -> ErrorReply | None:
        token = self.rec.bearer
        if not token or (expected_key is not None and token != expected_key):
            return ErrorReply.unauthorized()
        body = self.rec.json
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            return ErrorReply.aimlapi(
                400, ["model should not be empty", "messages must be an array"]
            )
        return None

    def wants_stream(self) -> bool:
        return bool(self.rec.json.get("stream"))

    def requested_model(self) -> str:
        return str(self.rec.json.get("model", ""))

    def _messages(self) -> list[dict[str, Any]]:
        messages = self.rec.json.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    @staticmethod
    def _text_of(message: dict[str, Any]) -> tuple[str, int]:
        content = message.get("content")
        if isinstance(content, str):
            return content, 0
        texts, images = [], 0
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif isinstance(part, dict) and part.get("type") == "image_url":
                images += 1
        return "".join(texts), images

    def prompt_text(self) -> str:
        for message in reversed(self._messages()):
            if message.get("role") == "user":
                text, images = self._text_of(message)
                if images:
                    text += f" [{images} image{'s' if images > 1 else ''}]"
                return text
        return ""

    def prompt_tokens(self) -> int:
        return sum(len(self._text_of(m)[0].split()) + 1 for m in self._messages())

    # -- stream --

    def _chunk(self, turn: _Turn, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": turn.response_id,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.model,
            "choices": choices,
            **extra,
        }
        if turn.ts:
            chunk["x_ts"] = time.time_ns()
        return sse_event(chunk)

    @staticmethod
    def _choice(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    def open(self, turn: _Turn) -> bytes:
        return self._chunk(turn, [self._choice(0, {"role": "assistant", "content": ""})])

    def step(self, step: Step, turn: _Turn) -> bytes:
        if isinstance(step, Text):
            delta: dict[str, Any] = {"content": step.text}
            if step.signature is not None:
                delta["extra_content"] = {"google": {"thought_signature": step.signature}}
        elif isinstance(step, Reasoning):
            delta = {"reasoning_content": step.text}
        elif isinstance(step, ExtraContent):
            delta = {"extra_content": dict(step.data)}
        elif isinstance(step, Code | CodeResult):
            return b""  # Gemini's code execution has no OpenAI-format counterpart
        elif isinstance(step, Call):
            return self._call(step, turn)
        else:
            raise TypeError(f"not a content step: {step!r}")
        choice = self._choice(step.index, delta)
        if isinstance(step, Text) and step.logprobs:
            choice["logprobs"] = openai_logprobs(step.logprobs)
        return self._chunk(turn, [choice])

    def _call(self, step: Call, turn: _Turn) -> bytes:
        """A call's `delta.tool_calls` fragments: its head, then its arguments in pieces."""
        head: dict[str, Any] = {
            "index": step.call,
            "id": step.id or f"call_{step.call}",
            "type": "function",
            "function": {"name": step.name, "arguments": ""},
        }
        if step.signature is not None:
            head["extra_content"] = {"google": {"thought_signature": step.signature}}
        out = [self._chunk(turn, [self._choice(step.index, {"tool_calls": [head]})])]
        text = step.arguments
        for start in range(0, len(text), max(1, step.piece)):
            piece = {
                "index": step.call,
                "function": {"arguments": text[start : start + step.piece]},
            }
            out.append(self._chunk(turn, [self._choice(step.index, {"tool_calls": [piece]})]))
        return b"".join(out)

    def close(self, turn: _Turn) -> bytes:
        reply = turn.reply
        out = []
        finish = [
            self._choice(i, {}, reply.finish_of(i))
            for i in turn.indexes
            if reply.finish_of(i) is not None
        ]
        if finish:
            out.append(self._chunk(turn, finish))
        usage, meta = self._usage(turn)
        if usage is not None or meta is not None:
            extra: dict[str, Any] = {}
            if usage is not None:
                extra["usage"] = usage
            if meta is not None:
                extra["meta"] = meta
            out.append(self._chunk(turn, [], **extra))
        if reply.done:
            out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    def _usage(self, turn: _Turn) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        usage = turn.reply.usage
        if usage is None:
            return None, None
        if usage == "auto":
            prompt = self.prompt_tokens()
            total = prompt + turn.text_steps + turn.reasoning_steps
            credits = total * 21
            usage = Usage(
                prompt_tokens=prompt,
                completion_tokens=turn.text_steps,
                total_tokens=total,
                reasoning_tokens=turn.reasoning_steps,
                credits_used=credits,
                usd_spent=round(credits * 5e-7, 9),
            )
        assert isinstance(usage, Usage)
        wire: dict[str, Any] = {}
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = getattr(usage, name)
            if value is not None:
                wire[name] = value
        if usage.reasoning_tokens is not None:
            wire["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
        wire.update(usage.extra)
        cost = {
            name: getattr(usage, name)
            for name in ("credits_used", "usd_spent")
            if getattr(usage, name) is not None
        }
        return (wire or None), ({"usage": cost} if cost else None)

    # -- one JSON body --

    def whole(self, turn: _Turn) -> bytes:
        choices = []
        for index in turn.indexes:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(turn.texts.get(index, [])),
                "refusal": None,
            }
            if index in turn.reasoning:
                message["reasoning_content"] = "".join(turn.reasoning[index])
            if index in turn.extras:
                message["extra_content"] = turn.extras[index]
            calls = [
                {
                    "id": step.id or f"call_{step.call}",
                    "type": "function",
                    "function": {"name": step.name, "arguments": step.arguments},
                }
                for step in turn.reply.steps
                if isinstance(step, Call) and step.index == index
            ]
            if calls:  # a whole message's calls carry no index
                message["tool_calls"] = calls
                message["content"] = message["content"] or None
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": openai_logprobs(turn.logprobs[index])
                    if index in turn.logprobs
                    else None,
                    "finish_reason": turn.reply.finish_of(index),
                }
            )
        body: dict[str, Any] = {
            "id": turn.response_id,
            "object": "chat.completion",
            "created": turn.created,
            "model": turn.model,
            "choices": choices,
        }
        usage, meta = self._usage(turn)
        if usage is not None:
            body["usage"] = usage
        if meta is not None:
            body["meta"] = meta
        if turn.ts:
            body["x_ts"] = time.time_ns()
        return json.dumps(body, ensure_ascii=False).encode()


# Neutral finish reasons in Gemini's spelling; anything else is sent as it is.
_GEMINI_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
_CONTENT_STEPS = (Text, Call, Reasoning, Code, CodeResult)
_ENDS_EARLY = (Drop, Stall, Raw, Data)


class GeminiRenderer(Renderer):
    """Google's `:streamGenerateContent?alt=sse` and `:generateContent` (docs/PROTOCOLS.md §3).

    Streams are `data: <GenerateContentResponse>` events with no `[DONE]`: the body ends when
    the answer does. Each Text step is one chunk (a step may hold several tokens, as Gemini's
    chunks do); the finishReason and the final usage ride on the last content chunk, unless
    something (a Drop, a Stall, an error) follows it, in which case a separate closing chunk
    carries them. `usageMetadata` is cumulative in every chunk. Requests need
    `x-goog-api-key`; `?key=` in the URL is refused (docs/SECURITY.md rule 12).
    """

    name = "gemini"

    def __init__(self, rec: RecordedRequest, match: re.Match[str]) -> None:
        super().__init__(rec, match)
        self._content_steps = 0  # content steps rendered so far
        self._finish_on: int | None = None  # the content step that carries the finish
        self._planned = False

    # -- the request --

    def _body(self) -> dict[str, Any] | None:
        """The Gemini-shaped request body."""
        body = self.rec.json
        return body if isinstance(body, dict) else None

    def check(self, expected_key: str | None) -> ErrorReply | None:
        if "key" in self.rec.query:
            return ErrorReply.google(
                400,
                "The fake refuses ?key= in the URL (it leaks into logs): send x-goog-api-key.",
                "INVALID_ARGUMENT",
            )
        key = self.rec.headers.get("x-goog-api-key", "").strip()
        if not key:
            return ErrorReply.google(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
                "PERMISSION_DENIED",
            )
        if expected_key is not None and key != expected_key:
            return ErrorReply.google(
                400,
                "API key not valid. Please pass a valid API key.",
                "INVALID_ARGUMENT",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )
        return self._check_body()

    def _check_body(self) -> ErrorReply | None:
        body = self._body()
        if body is None or not isinstance(body.get("contents"), list) or not body["contents"]:
            return ErrorReply.google(
                400,
                "* GenerateContentRequest.contents: contents is not specified",
                "INVALID_ARGUMENT",
            )
        return None

    def wants_stream(self) -> bool:
        return (
            self.match["method"] == "streamGenerateContent" and self.rec.query.get("alt") == "sse"
        )

    def requested_model(self) -> str:
        return self.match["model"]

    def _contents(self) -> list[dict[str, Any]]:
        body = self._body() or {}
        contents = body.get("contents")
        return [c for c in contents if isinstance(c, dict)] if isinstance(contents, list) else []

    @staticmethod
    def _text_of(content: dict[str, Any]) -> tuple[str, int]:
        texts, images = [], 0
        parts = content.get("parts")
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict) or part.get("thought"):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif "inlineData" in part:
                images += 1
        return "".join(texts), images

    def prompt_text(self) -> str:
        for content in reversed(self._contents()):
            if content.get("role", "user") == "user":
                text, images = self._text_of(content)
                if images:
                    text += f" [{images} image{'s' if images > 1 else ''}]"
                return text
        return ""

    def prompt_tokens(self) -> int:
        return sum(len(self._text_of(c)[0].split()) + 1 for c in self._contents())

    # -- pieces of a response --

    @staticmethod
    def _finish(reply: Reply, index: int = 0) -> str | None:
        finish = reply.finish_of(index)
        return None if finish is None else _GEMINI_FINISH.get(finish, finish)

    @staticmethod
    def _part(step: Step) -> dict[str, Any] | None:
        if isinstance(step, Text):
            part: dict[str, Any] = {"text": step.text}
        elif isinstance(step, Reasoning):
            part = {"text": step.text, "thought": True}
        elif isinstance(step, Code):
            part = {"executableCode": {"language": step.language, "code": step.code}}
        elif isinstance(step, CodeResult):
            part = {"codeExecutionResult": {"outcome": step.outcome, "output": step.output}}
        elif isinstance(step, Call):
            call: dict[str, Any] = {"name": step.name, "args": json.loads(step.arguments)}
            if step.id is not None:
                call["id"] = step.id
            part = {"functionCall": call}
        else:
            return None  # ExtraContent is the OpenAI format's
        if step.signature is not None:
            part["thoughtSignature"] = step.signature
        return part

    def _usage(self, turn: _Turn, *, final: bool) -> dict[str, Any] | None:
        usage = turn.reply.usage
        if usage is None or (usage != "auto" and not final):
            return None
        if usage == "auto":
            prompt = self.prompt_tokens()
            wire = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": turn.text_steps,
                "totalTokenCount": prompt + turn.text_steps + turn.reasoning_steps,
            }
            if turn.reasoning_steps:
                wire["thoughtsTokenCount"] = turn.reasoning_steps
            return wire
        assert isinstance(usage, Usage)
        names = (
            ("prompt_tokens", "promptTokenCount"),
            ("completion_tokens", "candidatesTokenCount"),
            ("reasoning_tokens", "thoughtsTokenCount"),
            ("total_tokens", "totalTokenCount"),
        )
        wire = {w: getattr(usage, n) for n, w in names if getattr(usage, n) is not None}
        return wire or None

    def _response(
        self,
        turn: _Turn,
        candidates: list[dict[str, Any]] | None,
        *,
        final: bool,
        feedback: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response: dict[str, Any] = {}
        if candidates is not None:
            response["candidates"] = candidates
        if feedback is not None:
            response["promptFeedback"] = feedback
        usage = self._usage(turn, final=final)
        if usage is not None:
            response["usageMetadata"] = usage
        response["modelVersion"] = turn.model
        response["responseId"] = turn.response_id
        if self.check_response is not None:
            self.check_response(response)
        return response

    def _ending(self, candidate: dict[str, Any], reply: Reply, index: int = 0) -> dict[str, Any]:
        finish = self._finish(reply, index)
        if finish is None:
            return candidate
        candidate["finishReason"] = finish
        if reply.safety_ratings:
            candidate["safetyRatings"] = [dict(r) for r in reply.safety_ratings]
        if not reply.metadata_chunk:
            self._metadata(candidate, reply)
        return candidate

    @staticmethod
    def _metadata(candidate: dict[str, Any], reply: Reply) -> None:
        if reply.grounding is not None:
            candidate["groundingMetadata"] = json.loads(json.dumps(reply.grounding))
        if reply.url_context is not None:
            candidate["urlContextMetadata"] = json.loads(json.dumps(reply.url_context))

    def _blocked(self, turn: _Turn) -> dict[str, Any]:
        reply = turn.reply
        feedback: dict[str, Any] = {"blockReason": reply.blocked}
        if reply.safety_ratings:
            feedback["safetyRatings"] = [dict(r) for r in reply.safety_ratings]
        return self._response(turn, None, final=True, feedback=feedback)

    # -- stream --

    def _plan(self, turn: _Turn) -> None:
        """Which content step carries the finishReason (None: a separate closing chunk)."""
        self._planned = True
        reply = turn.reply
        content = [i for i, s in enumerate(reply.steps) if isinstance(s, _CONTENT_STEPS)]
        if reply.finish_of(0) is None or reply.blocked or not content:
            return
        if any(reply.steps[i].index != 0 for i in content):
            return
        if any(isinstance(s, _ENDS_EARLY) for s in reply.steps[content[-1] + 1 :]):
            return
        if reply.metadata_chunk:
            return  # the metadata and the finish come in a closing chunk of their own
        self._finish_on = len(content)

    def open(self, turn: _Turn) -> bytes:
        return b""  # Gemini sends no role-only chunk

    def step(self, step: Step, turn: _Turn) -> bytes:
        if not self._planned:
            self._plan(turn)
        part = self._part(step)
        if part is None or turn.reply.blocked:
            return b""
        self._content_steps += 1
        candidate: dict[str, Any] = {
            "content": {"parts": [part], "role": "model"},
            "index": step.index,
        }
        if isinstance(step, Text) and step.logprobs:
            candidate["logprobsResult"] = gemini_logprobs(step.logprobs)
        last = self._content_steps == self._finish_on
        if last:
            self._ending(candidate, turn.reply)
        return sse_event(self._response(turn, [candidate], final=last))

    def close(self, turn: _Turn) -> bytes:
        if not self._planned:
            self._plan(turn)
        reply = turn.reply
        if reply.blocked:
            return sse_event(self._blocked(turn))
        ending = [index for index in turn.indexes if reply.finish_of(index) is not None]
        if self._finish_on is not None or not ending:
            return b""
        candidates = []
        for index in ending:
            candidate: dict[str, Any] = {"index": index}
            if index in turn.texts or index in turn.reasoning:
                candidate["content"] = {"parts": [{"text": ""}], "role": "model"}
            candidates.append(self._ending(candidate, reply, index))
            if reply.metadata_chunk and index == 0:
                self._metadata(candidate, reply)
        return sse_event(self._response(turn, candidates, final=True))

    # -- one JSON body --

    def _whole_parts(self, reply: Reply, index: int) -> list[dict[str, Any]]:
        """Parts of one candidate: thought parts first, unsigned text merged, signed parts
        kept whole."""
        parts: list[dict[str, Any]] = []
        for step in reply.steps:
            part = self._part(step)
            if part is None or step.index != index:  # type: ignore[union-attr]
                continue
            previous = parts[-1] if parts else None
            mergeable = (
                previous is not None
                and "text" in previous
                and "text" in part
                and "thoughtSignature" not in previous
                and "thoughtSignature" not in part
                and previous.get("thought") == part.get("thought")
            )
            if mergeable:
                previous["text"] += part["text"]
            else:
                parts.append(part)
        return parts

    def whole(self, turn: _Turn) -> bytes:
        reply = turn.reply
        if reply.blocked:
            body: Any = self._blocked(turn)
        else:
            candidates = []
            for index in turn.indexes:
                candidate: dict[str, Any] = {"index": index}
                parts = self._whole_parts(reply, index)
                if parts:
                    candidate["content"] = {"parts": parts, "role": "model"}
                if index in turn.logprobs:
                    candidate["logprobsResult"] = gemini_logprobs(turn.logprobs[index])
                self._ending(candidate, reply, index)
                if reply.metadata_chunk and index == 0:
                    self._metadata(candidate, reply)
                candidates.append(candidate)
            body = self._response(turn, candidates, final=True)
        if self.match.groupdict().get("method") == "streamGenerateContent":
            body = [body]  # without alt=sse, Google streams a JSON array
        return json.dumps(body, ensure_ascii=False).encode()


class SegmindRenderer(GeminiRenderer):
    """Segmind's `POST /segmind/{model}` (docs/PROTOCOLS.md §2): `{"messages": {"system_instruction",
    "contents", "generationConfig"}}` in, one JSON body out (no streaming). Answers
    Gemini-native `candidates` by default, or the older OpenAI-style `choices` with
    `Reply(legacy_shape=True)`. Errors are `{"error": "<string>"}` (`ErrorReply.segmind`)."""

    name = "segmind"

    def _body(self) -> dict[str, Any] | None:
        body = self.rec.json
        messages = body.get("messages") if isinstance(body, dict) else None
        return messages if isinstance(messages, dict) else None

    def check(self, expected_key: str | None) -> ErrorReply | None:
        key = self.rec.headers.get("x-api-key", "").strip()
        if not key or (expected_key is not None and key != expected_key):
            return ErrorReply.segmind(401, "Invalid or missing API key (x-api-key)")
        if "application/json" not in self.rec.headers.get("content-type", "").lower():
            return ErrorReply.segmind(406, "Unsupported Content-Type: use application/json")
        if self._check_body() is not None:
            return ErrorReply.segmind(422, "messages.contents must be a non-empty array")
        return None

    def wants_stream(self) -> bool:
        return False

    def whole(self, turn: _Turn) -> bytes:
        reply = turn.reply
        if not reply.legacy_shape:
            return super().whole(turn)
        usage = self._usage(turn, final=True) or {}
        body = {
            "id": turn.response_id,
            "object": "chat.completion",
            "created": turn.created,
            "model": turn.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(turn.texts.get(0, []))},
                    "finish_reason": reply.finish,
                }
            ],
            "usage": {
                "prompt_tokens": usage.get("promptTokenCount"),
                "completion_tokens": usage.get("candidatesTokenCount"),
                "total_tokens": usage.get("totalTokenCount"),
            },
        }
        return json.dumps(body, ensure_ascii=False).encode()


# Path pattern -> renderer, for POST requests. New protocols plug in here.
ROUTES: dict[re.Pattern[str], type[Renderer]] = {
    re.compile(r"/v1/chat/completions"): OpenAIChatRenderer,
    re.compile(
        r"/v1beta/models/(?P<model>[^/:]+):(?P<method>streamGenerateContent|generateContent)"
    ): GeminiRenderer,
    re.compile(r"/segmind/(?P<model>[^/]+)"): SegmindRenderer,
}

DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    {
        "id": "google/gemini-2.5-flash",
        "type": "chat-completion",
        "aliases": ["gemini-2.5-flash"],
        "info": {"name": "Gemini 2.5 Flash", "contextLength": 1_000_000, "outputMax": 65_536},
        "tags": ["google"],
    },
    {
        "id": "google/gemini-3-1-pro-preview",
        "type": "chat-completion",
        "aliases": ["google/gemini-3.1-pro-preview"],
        "info": {
            "name": "Gemini 3.1 Pro (preview)",
            "contextLength": 1_000_000,
            "outputMax": 65_536,
        },
        "tags": ["google"],
    },
    {
        "id": "gemini-1.5-pro",
        "type": "chat-completion",
        "aliases": [],
        "info": {"name": "Gemini 1.5 Pro", "contextLength": 2_000_000, "outputMax": 8192},
        "tags": ["google", "deprecated"],
    },
)


# --- The server -------------------------------------------------------------------------------


class _HttpError(Exception):
    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message or _phrase(status)


class _Connection:
    """One client connection: request parsing over a buffer we own, so that bytes read while
    watching for a disconnect are not lost."""

    __slots__ = ("buffer", "eof", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.eof = False

    async def _fill(self) -> bool:
        data = await self.reader.read(65536)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    async def read_request(self) -> tuple[str, str, str, Headers, bytes] | None:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > _MAX_HEAD:
                raise _HttpError(431)
            if self.eof or not await self._fill():
                return None
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        request_line, *header_lines = head.split("\r\n")
        try:
            method, target, version = request_line.split(" ", 2)
            headers = Headers(
                (name.strip(), value.strip())
                for name, value in (line.split(":", 1) for line in header_lines if line)
            )
            length = int(headers.get("content-length", "0") or "0")
        except ValueError:
            raise _HttpError(400, "malformed request head") from None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _HttpError(411, "the fake reads Content-Length bodies only")
        if length > _MAX_BODY:
            raise _HttpError(413)
        while len(self.buffer) < length:
            if self.eof or not await self._fill():
                return None
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return method, target, version, headers, body

    async def wait_disconnect(self) -> None:
        """Return when the client closes its end. HTTP clients send nothing while a response is
        in flight, so reading here only ever sees EOF (anything else is kept for later)."""
        with contextlib.suppress(ConnectionError, OSError):
            while await self._fill():
                pass
        self.eof = True

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


@dataclass
class _GateState:
    released: bool = False
    waiting: int = 0
    reached: int = 0
    event: asyncio.Event | None = None


_Predicate = Callable[[], tuple[bool, Any]]


def _frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk. Never called with empty data: that would end the body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class FakeUpstream:
    """The fake server. See the module docstring; every public method is thread-safe."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        ts: bool = False,
        token_delay: float = 0.0,
        first_token_delay: float = 0.0,
        default_reply: Callable[[RecordedRequest], Reply | ErrorReply] | None = None,
        models: Sequence[Mapping[str, Any]] = DEFAULT_MODELS,
        bench: bool = False,
    ) -> None:
        self.host = host
        # Answer prompts that carry a `BENCH ...` directive with `bench_reply`.
        self.bench = bench
        self._initial = {
            "api_key": api_key,
            "ts": ts,
            "token_delay": token_delay,
            "first_token_delay": first_token_delay,
            "default_reply": default_reply,
            "models": [dict(m) for m in models],
        }
        # Settings tests may change; reset() restores them.
        self.api_key: str | None = api_key
        self.ts = ts
        self.token_delay = token_delay
        self.first_token_delay = first_token_delay
        self.default_reply = default_reply
        self.models: list[dict[str, Any]] = [dict(m) for m in models]
        # Called with every Gemini response object the fake makes (e.g. google-genai's
        # validation, `tests.fakes.gemini_schema.validate_gemini_response`); what it raises is
        # kept in `response_problems`, and the chunk is sent all the same.
        self.check_response: Callable[[Any], Any] | None = None
        self.response_problems: list[str] = []

        self._lock = threading.Lock()
        self._queue: deque[Reply | ErrorReply] = deque()
        self._requests: list[RecordedRequest] = []
        self._gates: dict[str, _GateState] = {}
        self._watchers: list[tuple[_Predicate, concurrent.futures.Future[Any]]] = []
        # Touched only on the server loop.
        self._connections: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()

        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.port = port  # 0 until the OS assigns one, then the real port
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise RuntimeError(f"fake upstream failed to start: {self._startup_error}")

    # -- addresses --

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def gemini_base_url(self) -> str:
        """For GEMINI_BASE_URL: `{base}/models/{model}:streamGenerateContent` lands here."""
        return f"{self.base_url}/v1beta"

    @property
    def segmind_base_url(self) -> str:
        """For SEGMIND_BASE_URL: `{base}/{model}` lands here."""
        return f"{self.base_url}/segmind"

    # -- scripting --

    def enqueue(self, *replies: Reply | ErrorReply) -> None:
        """The next chat requests get these replies, in order; then the default reply."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending_replies(self) -> int:
        with self._lock:
            return len(self._queue)

    def release(self, name: str) -> None:
        """Open gate `name` for every stream held there now or reaching it later."""
        with self._lock:
            gate = self._gates.setdefault(name, _GateState())
            gate.released = True
            event = gate.event
            ready = self._collect_ready()
        self._resolve(ready)
        if event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(event.set)

    def release_all(self) -> None:
        with self._lock:
            names = list(self._gates)
        for name in names:
            self.release(name)

    def held_gates(self) -> dict[str, int]:
        """Gates that streams are waiting at right now, with how many streams."""
        with self._lock:
            return self._held()

    def _held(self) -> dict[str, int]:
        return {n: g.waiting for n, g in self._gates.items() if g.waiting and not g.released}

    # -- recordings --

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Requests that reached a model route (any protocol), in order."""
        with self._lock:
            return [r for r in self._requests if r.method == "POST" and _route(r.path)]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError("the fake upstream has received no request")
            return self._requests[-1]

    # -- waiters: sync (block the calling thread) and async (await on any loop) --

    def _requests_predicate(self, n: int, path: str | None) -> _Predicate:
        def ready() -> tuple[bool, Any]:
            matching = [r for r in self._requests if path is None or r.path == path]
            return len(matching) >= n, matching

        return ready

    def _closed_predicate(self, index: int) -> _Predicate:
        def ready() -> tuple[bool, Any]:
            if index >= len(self._requests):
                return False, None
            rec = self._requests[index]
            return rec.closed_at is not None, rec

        return ready

    def _gate_predicate(self, name: str, count: int) -> _Predicate:
        def ready() -> tuple[bool, Any]:
            gate = self._gates.get(name)
            return gate is not None and gate.waiting >= count, None

        return ready

    def _clear_predicate(self) -> tuple[bool, Any]:
        held = self._held()
        return not held, held

    def wait_for_requests(
        self, n: int, timeout: float = 5.0, *, path: str | None = None
    ) -> list[RecordedRequest]:
        """Block until at least `n` requests (to `path`, if given) arrived; return them."""
        return self._wait(self._requests_predicate(n, path), timeout, f"{n} request(s)")

    def wait_closed(self, index: int = 0, timeout: float = 5.0) -> RecordedRequest:
        """Block until the response to request `index` is over (finished, dropped, or the
        client disconnected); return its recording."""
        return self._wait(self._closed_predicate(index), timeout, f"request {index} to close")

    def wait_for_gate(self, name: str, timeout: float = 5.0, *, count: int = 1) -> None:
        """Block until `count` streams are held at gate `name`."""
        self._wait(self._gate_predicate(name, count), timeout, f"{count} stream(s) at {name!r}")

    def wait_gates_clear(self, timeout: float = 2.0) -> dict[str, int]:
        """Wait until no stream is held at an unreleased gate; return what is still held."""
        future = self._watch(self._clear_predicate)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return self.held_gates()

    # The async waiters take `timeout` like the sync ones, so that a timeout names what was
    # awaited and what had arrived (ASYNC109 prefers asyncio.timeout, which cannot say that).
    async def wait_for_requests_async(
        self,
        n: int,
        timeout: float = 5.0,
        *,
        path: str | None = None,
    ) -> list[RecordedRequest]:
        return await self._wait_async(self._requests_predicate(n, path), timeout, f"{n} request(s)")

    async def wait_closed_async(
        self,
        index: int = 0,
        timeout: float = 5.0,
    ) -> RecordedRequest:
        return await self._wait_async(
            self._closed_predicate(index), timeout, f"request {index} to close"
        )

    async def wait_for_gate_async(
        self,
        name: str,
        timeout: float = 5.0,
        *,
        count: int = 1,
    ) -> None:
        await self._wait_async(
            self._gate_predicate(name, count), timeout, f"{count} stream(s) at {name!r}"
        )

    def _watch(self, predicate: _Predicate) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            done, value = predicate()
            if not done:
                self._watchers.append((predicate, future))
                return future
        future.set_result(value)
        return future

    def _wait(self, predicate: _Predicate, timeout: float, what: str) -> Any:
        future = self._watch(predicate)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(self._timeout_message(what, timeout)) from None

    async def _wait_async(
        self,
        predicate: _Predicate,
        timeout: float,
        what: str,
    ) -> Any:
        future = self._watch(predicate)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            raise TimeoutError(self._timeout_message(what, timeout)) from None
        finally:
            future.cancel()

    def _timeout_message(self, what: str, timeout: float) -> str:
        with self._lock:
            seen = [f"{r.method} {r.path}" for r in self._requests]
            held = self._held()
        return (
            f"fake upstream: waited {timeout:g} s for {what}; requests so far: {seen or 'none'}"
            + (f"; held at gates: {held}" if held else "")
        )

    def _collect_ready(self) -> list[tuple[concurrent.futures.Future[Any], Any]]:
        """With the lock held: pop the watchers whose condition now holds."""
        ready, keep = [], []
        for predicate, future in self._watchers:
            if future.cancelled():
                continue
            done, value = predicate()
            if done:
                ready.append((future, value))
            else:
                keep.append((predicate, future))
        self._watchers = keep
        return ready

    @staticmethod
    def _resolve(ready: list[tuple[concurrent.futures.Future[Any], Any]]) -> None:
        # Outside the lock: resolving runs callbacks (wrap_future's) that must not re-enter it.
        for future, value in ready:
            if future.set_running_or_notify_cancel():
                future.set_result(value)

    # -- lifecycle --

    def reset(self) -> None:
        """Abort responses in flight, then clear the queue, recordings, gates and settings."""
        self._call(self._abort_busy())
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._gates.clear()
            self.response_problems.clear()
            stale = self._watchers
            self._watchers = []
        for _, future in stale:
            future.cancel()
        for name, value in self._initial.items():
            setattr(self, name, [dict(m) for m in value] if name == "models" else value)

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is None or stop is None or not self._thread.is_alive():
            return
        loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        if threading.current_thread() is self._thread:
            raise RuntimeError("call the fake's blocking methods from outside its own thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _abort_busy(self) -> None:
        tasks = list(self._busy)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the constructor, which re-raises
            self._startup_error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(
            self._handle_connection, self.host, self.port, backlog=4096, reuse_address=True
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- HTTP --

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = _Connection(reader, writer)
        graceful = True
        try:
            while not conn.eof:
                try:
                    request = await conn.read_request()
                except _HttpError as exc:
                    await conn.send(self._simple(exc.status, exc.message))
                    break
                if request is None:
                    break
                self._busy.add(task)
                try:
                    keep_alive = await self._respond(conn, *request)
                finally:
                    self._busy.discard(task)
                if not keep_alive:
                    break
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # Only reset() and close() cancel us. Ending normally, not cancelled, because
            # Python 3.11's start_server callback calls task.exception() on the finished task,
            # which raises (and logs a traceback) for a cancelled one.
            graceful = False
        finally:
            self._connections.discard(task)
            if graceful:
                writer.close()
            else:
                writer.transport.abort()

    @staticmethod
    def _simple(status: int, message: str) -> bytes:
        body = message.encode()
        head = (
            f"HTTP/1.1 {status} {_phrase(status)}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body

    def _record(self, rec_fields: dict[str, Any]) -> RecordedRequest:
        with self._lock:
            rec = RecordedRequest(index=len(self._requests), **rec_fields)
            self._requests.append(rec)
            ready = self._collect_ready()
        self._resolve(ready)
        return rec

    def _mark_closed(self, rec: RecordedRequest, *, disconnected: bool) -> None:
        with self._lock:
            rec.closed_at = time.time()
            rec.client_disconnected = disconnected
            ready = self._collect_ready()
        self._resolve(ready)

    async def _respond(
        self,
        conn: _Connection,
        method: str,
        target: str,
        version: str,
        headers: Headers,
        body: bytes,
    ) -> bool:
        split = urlsplit(target)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = self._record(
            {
                "method": method,
                "path": split.path,
                "query": dict(parse_qsl(split.query, keep_blank_values=True)),
                "headers": headers,
                "body": body,
                "json": parsed,
                "received_at": time.time(),
            }
        )
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"

        renderer: Renderer | None = None
        reply: Reply | ErrorReply
        route = _route(split.path)
        if method == "GET" and split.path == "/v1/models":
            reply = self._models_reply(headers)
        elif method == "GET" and split.path == "/_fake/requests":
            reply = self._log_reply()
        elif route is None or method != "POST":
            reply = ErrorReply.aimlapi(404, f"Cannot {method} {split.path}", path=split.path)
        elif not route[0].implemented:
            reply = ErrorReply.text(501, f"the fake's {route[0].name} renderer is not written yet")
        else:
            renderer = route[0](rec, route[1])
            renderer.check_response = self._check_response
            denial = renderer.check(self.api_key)
            reply = denial if denial is not None else self._next_reply(rec, renderer)

        rec.reply = reply
        rec.status = reply.status
        rec.inference_id = reply.inference_id or f"inf-{uuid.uuid4()}"

        serving = asyncio.ensure_future(self._serve_reply(conn, rec, renderer, reply, keep_alive))
        watching = asyncio.ensure_future(conn.wait_disconnect())
        try:
            await asyncio.wait({serving, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also runs when reset()/close() cancel us: never leave either task behind.
            failed = serving.done() and not serving.cancelled() and serving.exception() is not None
            completed = serving.done() and not serving.cancelled() and not failed
            left = watching.done() and not watching.cancelled()
            for task in (serving, watching):
                task.cancel()
            await asyncio.gather(serving, watching, return_exceptions=True)
            self._mark_closed(rec, disconnected=not completed and (failed or left))
        if failed:
            error = serving.exception()
            if not isinstance(error, ConnectionError | OSError):
                raise error  # a bug in the fake: let asyncio report it
            return False
        return completed and serving.result() and not conn.eof

    def _check_response(self, response: Any) -> None:
        check = self.check_response
        if check is None:
            return
        try:
            check(response)
        except AssertionError as exc:
            with self._lock:
                self.response_problems.append(str(exc))

    def _next_reply(self, rec: RecordedRequest, renderer: Renderer) -> Reply | ErrorReply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.default_reply is not None:
            return self.default_reply(rec)
        if self.bench:
            reply = bench_reply(renderer.prompt_text())
            if reply is not None:
                return reply
        steps: list[Step] = []
        if self.first_token_delay:
            steps.append(Delay(self.first_token_delay))
        for piece in words(f"Echo: {renderer.prompt_text()}"):
            steps.append(piece)
            if self.token_delay:
                steps.append(Delay(self.token_delay))
        return Reply(steps)

    def _log_reply(self) -> ErrorReply:
        """What the fake saw, for a benchmark in another process (times are time.time())."""
        with self._lock:
            log = [
                {
                    "index": r.index,
                    "path": r.path,
                    "client_request_id": r.headers.get("x-client-request-id"),
                    "received_at": r.received_at,
                    "closed_at": r.closed_at,
                    "client_disconnected": r.client_disconnected,
                }
                for r in self._requests
                if r.path != "/_fake/requests"
            ]
        return ErrorReply(200, json.dumps(log).encode(), "application/json")

    def _models_reply(self, headers: Headers) -> ErrorReply:
        body = json.dumps({"object": "list", "data": self.models}).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if headers.get("if-none-match") == etag:
            return ErrorReply(304, b"", headers={"ETag": etag})
        return ErrorReply(200, body, "application/json; charset=utf-8", headers={"ETag": etag})

    def _head(
        self,
        rec: RecordedRequest,
        status: int,
        defaults: list[tuple[str, str]],
        overrides: Mapping[str, str],
        keep_alive: bool,
    ) -> bytes:
        headers = {name.lower(): (name, value) for name, value in defaults}
        headers["x-inference-id"] = ("x-inference-id", rec.inference_id or "")
        client_id = rec.headers.get("x-client-request-id")
        if client_id is not None:
            headers["x-client-request-id"] = ("X-Client-Request-Id", client_id)
        headers["connection"] = ("Connection", "keep-alive" if keep_alive else "close")
        for name, value in overrides.items():
            headers[name.lower()] = (name, value)
        lines = [f"HTTP/1.1 {status} {_phrase(status)}"]
        lines += [f"{n}: {v.replace(ECHO_KEY, rec.api_key)}" for n, v in headers.values()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    async def _control(self, step: Step, started: float = 0.0) -> None:
        if isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, At):
            delay = started + step.seconds - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
        elif isinstance(step, Gate):
            await self._wait_gate(step.name)
        elif isinstance(step, Stall):
            await asyncio.get_running_loop().create_future()

    async def _wait_gate(self, name: str) -> None:
        with self._lock:
            gate = self._gates.setdefault(name, _GateState())
            if gate.released:
                return
            if gate.event is None:
                gate.event = asyncio.Event()
            event = gate.event
            gate.waiting += 1
            gate.reached += 1
            ready = self._collect_ready()
        self._resolve(ready)
        try:
            await event.wait()
        finally:
            with self._lock:
                gate.waiting -= 1
                ready = self._collect_ready()
            self._resolve(ready)

    async def _serve_reply(
        self,
        conn: _Connection,
        rec: RecordedRequest,
        renderer: Renderer | None,
        reply: Reply | ErrorReply,
        keep_alive: bool,
    ) -> bool:
        """Play one reply. Returns whether the connection may serve another request."""
        for step in reply.before_headers:
            if isinstance(step, Drop):
                rec.dropped = True
                return False
            await self._control(step)

        if isinstance(reply, ErrorReply) or renderer is None:
            assert isinstance(reply, ErrorReply)
            body, content_type = reply.encode()
            body = body.replace(_ECHO_KEY_BYTES, rec.api_key.encode())
            defaults = [("Content-Type", content_type)] if reply.status != 304 else []
            defaults.append(("Content-Length", str(len(body))))
            await conn.send(
                self._head(rec, reply.status, defaults, reply.headers, keep_alive) + body
            )
            return keep_alive

        turn = _Turn(reply, rec, renderer.requested_model(), self.ts)
        streaming = reply.stream_mode == "sse" or (
            reply.stream_mode == "auto" and renderer.wants_stream()
        )
        if streaming:
            return await self._play_stream(conn, rec, renderer, turn, keep_alive)
        return await self._play_whole(conn, rec, renderer, turn, keep_alive)

    async def _play_stream(
        self, conn: _Connection, rec: RecordedRequest, renderer: Renderer, turn: _Turn, keep: bool
    ) -> bool:
        reply = turn.reply
        defaults = [
            ("Content-Type", renderer.stream_content_type()),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
        ]
        first = self._head(rec, reply.status, defaults, reply.headers, keep)
        opening = renderer.open(turn) if reply.role_chunk else b""
        if opening:  # an empty frame would end the body
            first += _frame(opening)
        await conn.send(first)
        started = asyncio.get_running_loop().time()
        echo = rec.api_key.encode()
        for step in reply.steps:
            if isinstance(step, _CONTROL):
                if isinstance(step, Drop):
                    rec.dropped = True
                    return False
                await self._control(step, started)
                continue
            if isinstance(step, Text) and step.stamp:
                step = dataclasses.replace(step, text=stamped(step.text))
            if isinstance(step, Raw):
                data = step.data.replace(_ECHO_KEY_BYTES, echo)
            elif isinstance(step, Comment):
                text = step.text if step.text.startswith(":") else f": {step.text}"
                data = text.encode() + b"\n\n"
            elif isinstance(step, Data):
                data = sse_event(step.value).replace(_ECHO_KEY_BYTES, echo)
            else:
                turn.note(step)
                data = renderer.step(step, turn)
            if data:
                await conn.send(_frame(data))
        tail = renderer.close(turn)
        await conn.send((_frame(tail) if tail else b"") + b"0\r\n\r\n")
        return keep

    async def _play_whole(
        self, conn: _Connection, rec: RecordedRequest, renderer: Renderer, turn: _Turn, keep: bool
    ) -> bool:
        reply = turn.reply
        dropping = False
        for step in reply.steps:
            if isinstance(step, Drop):
                dropping = True
                break
            if isinstance(step, _CONTROL):
                await self._control(step)
            else:
                turn.note(step)  # Raw, Comment and Data have no place in a JSON body
        body = renderer.whole(turn)
        defaults = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        head = self._head(rec, reply.status, defaults, reply.headers, keep)
        if dropping:
            # Half the promised body, then EOF: the client sees a truncated response.
            rec.dropped = True
            await conn.send(head + body[: len(body) // 2])
            return False
        await conn.send(head + body)
        return keep


def _route(path: str) -> tuple[type[Renderer], re.Match[str]] | None:
    for pattern, renderer in ROUTES.items():
        match = pattern.fullmatch(path)
        if match is not None:
            return renderer, match
    return None


# --- CLI --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.upstream",
        description="Serve the fake upstream's default echo reply until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--api-key", default=None, help="require this key (default: any)")
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds per word")
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    parser.add_argument("--ts", action="store_true", help='add "x_ts" to every chunk')
    parser.add_argument(
        "--bench", action="store_true", help="answer `BENCH tokens=.. rate=..` prompts (bench/)"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop  # the benchmark's fake should cost as little CPU as it can

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    fake = FakeUpstream(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        ts=args.ts,
        token_delay=args.token_delay,
        first_token_delay=args.first_token_delay,
        bench=args.bench,
    )
    print(f"fake upstream listening on {fake.base_url}", flush=True)
    print(f"  AIMLAPI_BASE_URL={fake.openai_base_url} AIMLAPI_API_KEY=x", flush=True)
    print(f"  GEMINI_BASE_URL={fake.gemini_base_url} GEMINI_API_KEY=x", flush=True)
    print(f"  SEGMIND_BASE_URL={fake.segmind_base_url} SEGMIND_API_KEY=x", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()


if __name__ == "__main__":
    main()
