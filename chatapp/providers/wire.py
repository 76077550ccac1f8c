"""What every adapter's wire code shares: the byte-level SSE parser and the small helpers that
turn upstream bodies and headers into error messages (docs/PROTOCOLS.md §1-§3).

One parser for every route on purpose: the OpenAI-compatible route and Gemini's own both
stream `text/event-stream`, and both have been seen writing an error as bare JSON outside
the SSE grammar. A fix to one (a CR split across reads, a pretty-printed error) must reach
the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from .http import body_chunks
from .types import ChatRequest, ImagePart

# One line of "upstream said: ..." in the UI; the full text goes to the error's detail.
REASON_MAX = 200
DETAIL_MAX = 4000
# Stray lines buffered while waiting for a bare JSON value to complete.
_STRAY_LIMIT = 64 * 1024
# Stray lines kept for a "this is not an event stream" diagnosis.
_SAMPLE_LINES = 8


# --- request bodies ---------------------------------------------------------------------------


def encode_body(body: dict[str, Any]) -> bytes:
    """A request body as compact UTF-8 JSON: nothing escaped that need not be (not "/", not
    non-ASCII), so a Gemini thought signature goes back byte for byte. orjson writes what
    `json.dumps(ensure_ascii=False, separators=(",", ":"))` writes, but for the spelling of a
    float's exponent (1e-5 for 1e-05, the same number), ~14x faster: a 3 MB image after 200
    messages, 26 ms against 1.8 ms (docs/ARCHITECTURE.md "The cost of a turn"). An integer
    beyond 64 bits (a person's JSON schema may hold one) is left to the standard library,
    which writes it as it was given."""
    try:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def carries_images(request: ChatRequest) -> bool:
    return any(isinstance(part, ImagePart) for m in request.messages for part in m.parts)


async def request_content(
    build: Callable[[ChatRequest], dict[str, Any]], request: ChatRequest
) -> bytes:
    """The encoded body of `request`, as `build` makes it. A request with images is built on
    a thread: their base64 and the JSON around it are megabytes, which on the event loop
    would hold back every stream's next chunk for as long (a text-only body is built here,
    where a thread hop would cost more than the work)."""
    if carries_images(request):
        return await asyncio.to_thread(lambda: encode_body(build(request)))
    return encode_body(build(request))


# --- SSE --------------------------------------------------------------------------------------


class SSEParser:
    """Incremental `text/event-stream` parser over bytes (not httpx's `aiter_lines`, which
    splits on U+2028 and friends that a JSON string may carry raw, cutting a data line in two).

    Lines end with CRLF, LF or CR, possibly split across reads; comments and the `event`,
    `id` and `retry` fields are ignored; the `data` lines of one event are joined with LF.
    Lines outside that grammar are buffered in `stray`: a gateway or Google itself may write a
    mid-stream error as bare JSON, pretty-printed over several lines, without `data:`. Once
    they form a JSON value it is returned as a `StrayJSON`, in its place among the events:
    what follows an error in the same network read must not be taken for more of the answer.
    The first few stray lines also stay in `sample`, for the error's detail when the body
    turns out not to be an event stream at all.
    """

    __slots__ = ("buffer", "data", "sample", "skip_lf", "stray", "stray_size")

    def __init__(self) -> None:
        self.buffer = b""
        self.data: list[bytes] = []
        self.skip_lf = False
        self.stray: list[bytes] = []
        self.stray_size = 0
        self.sample: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes | StrayJSON]:
        if self.skip_lf:
            self.skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if self.buffer:
            chunk = self.buffer + chunk
        if b"\r" in chunk:
            # A CR ending this read may be half of a CRLF: skip a LF starting the next one
            # rather than reading an empty line (which would end the event).
            self.skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        self.buffer = lines.pop()
        return self._lines(lines)

    def close(self) -> list[bytes | StrayJSON]:
        """At EOF: an unterminated last line or event still counts (lenient on purpose)."""
        lines = [self.buffer] if self.buffer else []
        self.buffer = b""
        lines.append(b"")
        return self._lines(lines)

    def _take_stray(self) -> StrayJSON | None:
        """The stray lines as one JSON value, once they parse (they are then forgotten)."""
        try:
            value = json.loads(b"\n".join(self.stray))
        except ValueError:
            return None
        self.stray, self.stray_size = [], 0
        return StrayJSON(value)

    def _lines(self, lines: list[bytes]) -> list[bytes | StrayJSON]:
        events: list[bytes | StrayJSON] = []
        for line in lines:
            if not line:
                if self.data:
                    events.append(self.data[0] if len(self.data) == 1 else b"\n".join(self.data))
                    self.data = []
                continue
            if line[:1] == b":":
                continue
            name, _, value = line.partition(b":")
            if name == b"data":
                self.data.append(value[1:] if value[:1] == b" " else value)
            elif name in (b"event", b"id", b"retry"):
                continue
            else:
                if len(self.sample) < _SAMPLE_LINES:
                    self.sample.append(line)
                if line[:1] in (b"{", b"["):
                    # A new top-level JSON value: what came before it will never parse.
                    self.stray, self.stray_size = [], 0
                if self.stray_size < _STRAY_LIMIT:
                    self.stray.append(line)
                    self.stray_size += len(line)
                if line.rstrip()[-1:] in (b"}", b"]"):
                    stray = self._take_stray()
                    if stray is not None:
                        events.append(stray)
        return events


class StrayJSON:
    """A JSON value found outside the SSE grammar (see `SSEParser`)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def error_object(value: Any) -> dict[str, Any] | None:
    """`value` if it is an error body (`{"error": ...}`, or Google's list-wrapped form)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = value[0]
    if isinstance(value, dict) and value.get("error"):
        return value
    return None


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body: an error page or a JSON answer, never unbounded."""
    parts: list[bytes] = []
    size = 0
    async with contextlib.aclosing(body_chunks(response)) as chunks:
        async for part in chunks:
            parts.append(part)
            size += len(part)
            if size >= limit:
                break
    return b"".join(parts)[:limit]


# --- error bodies ----------------------------------------------------------------------------


def status_code(value: Any) -> int | None:
    """An HTTP status as sent: an int, or a string of digits (AI/ML API sends "429");
    Google's textual statuses ("RESOURCE_EXHAUSTED") are not codes."""
    if type(value) is int:
        return value if 100 <= value <= 599 else None
    if isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
        return code if 100 <= code <= 599 else None
    return None


def message_text(value: Any) -> str | None:
    """An error message: a string, or a list of them (NestJS validation errors)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list):
        items = [str(item).strip() for item in value if str(item).strip()]
        return "; ".join(items) or None
    return None


# --- error text -------------------------------------------------------------------------------

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def text_reason(text: str) -> str:
    """A plain-text or HTML error page (a proxy's 502, Segmind's 405) in one line."""
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", text)
    return " ".join(text.split())


def shorten(text: str) -> str:
    """One line of at most `REASON_MAX` characters."""
    text = " ".join(text.split())
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


def clip_detail(text: str) -> str:
    """An error's detail (already redacted) cut to `DETAIL_MAX` characters."""
    return text if len(text) <= DETAIL_MAX else text[:DETAIL_MAX] + "…"


# --- rate-limit timing ------------------------------------------------------------------------


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return seconds_until(value)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def seconds_until(text: str) -> float | None:
    """Seconds from now until an ISO 8601 or HTTP date (0 if it has passed)."""
    when: datetime | None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text.strip())
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
