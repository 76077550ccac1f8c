"""A lean HTTP/1.1 + SSE client on asyncio streams, used for both sides of every comparison.

The baseline (reading the fake upstream directly) and the app client must cost the same per
event, or the difference measures the clients rather than the app; httpx's pool also slows
down with the square of the open connections (hundreds of streams), so neither side uses it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

STAMP = re.compile(r"⟦(\d+)⟧")


@dataclass
class Response:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        return values[0] if values else ""


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, list[str]]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before the response")
    status = int(status_line.split()[1])
    headers: dict[str, list[str]] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers


async def _body_chunks(
    reader: asyncio.StreamReader, headers: dict[str, list[str]]
) -> AsyncIterator[bytes]:
    if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data
    elif "content-length" in headers:
        remaining = int(headers["content-length"][0])
        while remaining:
            data = await reader.read(min(remaining, 65536))
            if not data:
                return
            remaining -= len(data)
            yield data
    else:
        while data := await reader.read(65536):
            yield data


def _request_bytes(
    method: str, host: str, path: str, headers: dict[str, str], body: bytes
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def request(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    response, _ = await timed_request(host, port, method, path, headers, body)
    return response


@dataclass
class StreamResult:
    """What one stream delivered: when it started, when each stamped chunk arrived."""

    started_ns: int
    first_text_ns: int | None = None
    ended_ns: int | None = None
    # (stamp written by the fake, time received here), both time.time_ns()
    chunks: list[tuple[int, int]] = field(default_factory=list)
    text_chars: int = 0
    events: int = 0
    terminal: str = ""
    error: str = ""

    @property
    def ttft_ms(self) -> float | None:
        if self.first_text_ns is None:
            return None
        return (self.first_text_ns - self.started_ns) / 1e6

    def latencies_ms(self) -> list[float]:
        return [(received - sent) / 1e6 for sent, received in self.chunks]


def _note_text(result: StreamResult, text: str, received_ns: int) -> None:
    if not text:
        return
    if result.first_text_ns is None:
        result.first_text_ns = received_ns
    result.text_chars += len(text)
    for stamp in STAMP.findall(text):
        result.chunks.append((int(stamp), received_ns))


async def _sse_lines(
    reader: asyncio.StreamReader, head: dict[str, list[str]]
) -> AsyncIterator[tuple[int, bytes]]:
    """(receive time, one complete SSE event block) as they arrive."""
    buffer = b""
    async for chunk in _body_chunks(reader, head):
        received = time.time_ns()
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            yield received, block


def _parse_block(block: bytes) -> tuple[str, str]:
    event, data = "message", []
    for line in block.decode().split("\n"):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line.startswith("data:"):
            data.append(line[5:])
    return event, "\n".join(data)


# --- The direct baseline: read the fake upstream's OpenAI-format stream ----------------------


async def direct_stream(
    host: str, port: int, prompt: str, model: str = "google/gemini-2.5-flash"
) -> StreamResult:
    body = json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    ).encode()
    return await openai_stream(
        host, port, "/v1/chat/completions", body, {"Authorization": "Bearer bench"}
    )


# --- The app: a logged-in browser's requests -------------------------------------------------


@dataclass
class Session:
    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _remember(self, response: Response) -> None:
        for value in response.headers.get("set-cookie", []):
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    async def get(self, path: str, **headers: str) -> Response:
        response = await request(
            self.host, self.port, "GET", path, {"Cookie": self.cookie_header, **headers}
        )
        self._remember(response)
        return response

    def form_headers(self) -> dict[str, str]:
        """What htmx sends with a form POST of a signed-in page."""
        return {
            "Cookie": self.cookie_header,
            "Content-Type": "application/x-www-form-urlencoded",
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
            "HX-Request": "true",
        }

    async def post(self, path: str, form: dict[str, str], **headers: str) -> Response:
        body = urllib.parse.urlencode(form).encode()
        response = await request(
            self.host, self.port, "POST", path, {**self.form_headers(), **headers}, body
        )
        self._remember(response)
        return response

    async def sign_up(self, username: str, password: str = "Bench-Password-1!") -> None:
        page = await self.get("/accounts/signup/")
        token = (
            re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
        )
        response = await self.post(
            "/accounts/signup/",
            {
                "csrfmiddlewaretoken": token,
                "username": username,
                "password1": password,
                "password2": password,
            },
        )
        assert response.status == 302, f"signup failed: {response.status} {response.body[:300]!r}"

    async def send(
        self, prompt: str, model_key: str = "aimlapi:google/gemini-2.5-flash"
    ) -> tuple[str, str, int]:
        """POST a first message in a new conversation; (conversation id, stream path, t0)."""
        conversation = str(uuid.uuid4())
        _, stream, _, t0 = await send_timed(self, conversation, prompt, model_key=model_key)
        return conversation, stream, t0

    async def stop(self, conversation: str) -> Response:
        return await self.post(f"/c/{conversation}/stop/", {})

    async def stream(self, path: str, started_ns: int, *, until_text: bool = False) -> StreamResult:
        """Read an SSE stream to its terminal event (or, with `until_text`, to the first text)."""
        result = StreamResult(started_ns=started_ns)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(
                _request_bytes(
                    "GET",
                    f"{self.host}:{self.port}",
                    path,
                    {"Cookie": self.cookie_header, "Accept": "text/event-stream"},
                    b"",
                )
            )
            _, head = await _read_head(reader)
            async for received, block in _sse_lines(reader, head):
                event, data = _parse_block(block)
                if event == "delta":
                    result.events += 1
                    _note_text(result, json.loads(data)["t"], received)
                    if until_text:
                        break
                elif event in ("done", "error"):
                    result.terminal = event
                    # The final HTML carries the whole answer: text never seen as a delta
                    # (a run that ended before the stream attached) still counts.
                    if result.first_text_ns is None and "tok" in data:
                        result.first_text_ns = received
                    break
        except Exception as exc:
            result.error = repr(exc)
        finally:
            result.ended_ns = time.time_ns()
            writer.close()
        return result


# --- Helpers for bench/peers.py (other servers' OpenAI-style streams, timed response heads) ---


async def openai_stream(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str]
) -> StreamResult:
    """`direct_stream` for any OpenAI-compatible server: POST `body` to `path`, read the SSE
    stream of `chat.completion.chunk`s to `[DONE]` (or its end)."""
    result = StreamResult(started_ns=time.time_ns())
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            _request_bytes(
                "POST",
                f"{host}:{port}",
                path,
                {"Content-Type": "application/json", **headers},
                body,
            )
        )
        status, head = await _read_head(reader)
        if status != 200:
            rest = b"".join([chunk async for chunk in _body_chunks(reader, head)])
            raise RuntimeError(f"HTTP {status}: {rest[:300]!r}")
        async for received, block in _sse_lines(reader, head):
            _, data = _parse_block(block.replace(b"\r\n", b"\n"))
            if data == "[DONE]":
                result.terminal = "done"
                break
            if not data:
                continue
            try:
                chunk = json.loads(data)
            except ValueError:
                continue
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk and not chunk.get("choices"):
                raise RuntimeError(f"error event: {data[:300]}")
            result.events += 1
            for choice in chunk.get("choices") or ():
                _note_text(result, (choice.get("delta") or {}).get("content") or "", received)
        if not result.terminal:
            result.terminal = "eof"
    except Exception as exc:
        result.error = repr(exc)
    finally:
        result.ended_ns = time.time_ns()
        writer.close()
    return result


async def timed_request(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> tuple[Response, float]:
    """`request`, and the milliseconds from its start to the response head."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_request_bytes(method, f"{host}:{port}", path, headers or {}, body))
        status, head = await _read_head(reader)
        head_ms = (time.perf_counter() - started) * 1000
        parts = [chunk async for chunk in _body_chunks(reader, head)]
        return Response(status, head, b"".join(parts)), head_ms
    finally:
        writer.close()


_MESSAGE_ID = re.compile(rb'id="m-([0-9a-f-]{36})"')


async def send_timed(
    session: Session,
    conversation: str,
    text: str,
    parent: str = "",
    model_key: str = "aimlapi:google/gemini-2.5-flash",
) -> tuple[float, str, str, int]:
    """The composer's send POST (`/c/<id>/messages/`, with the `parent` the page carries: the
    answer at the end of the branch shown); (ms to the response head, the answer's stream
    path, the answer's id, t0). A new conversation when `parent` is empty and it has none."""
    form = {"text": text, "idempotency_key": str(uuid.uuid4()), "model": model_key}
    if parent:
        form["parent"] = parent
    t0 = time.time_ns()
    response, head_ms = await timed_request(
        session.host,
        session.port,
        "POST",
        f"/c/{conversation}/messages/",
        session.form_headers(),
        urllib.parse.urlencode(form).encode(),
    )
    session._remember(response)
    if response.status != 200:
        raise RuntimeError(f"send failed: {response.status} {response.body[:300]!r}")
    stream = re.search(rb'sse-connect="([^"]+)"', response.body)
    ids = _MESSAGE_ID.findall(response.body)
    if stream is None or not ids:
        raise RuntimeError(f"no stream in the send's response: {response.body[:300]!r}")
    return head_ms, stream.group(1).decode().replace("&amp;", "&"), ids[-1].decode(), t0
