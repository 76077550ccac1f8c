"""The stream protocol: what a run, the processes around it and a watching browser say to each
other. Described here once; docs/ARCHITECTURE.md tells the same story with the flow of a turn.

Channel-layer groups
- `stream_group(id)`: the SSE consumers watching one answer, on any worker.
- `control_group(id)`: the control channel of the one process running that answer, so that Stop
  and a snapshot request reach the run wherever the browser is attached.
- `session_group(key)`: the streams of one login session; logging out ends them.

Frames on the channel layer (the TypedDicts below; a consumer's handler for `stream.delta` is
its method `stream_delta`, as in Channels):
- `stream.delta`: characters [o, o + len(t)) of the answer. A run publishes its frames in order
  from a single task, coalesced to at most one per `CHAT_RUN["frame_interval"]` (~20 a second),
  the first at once.
- `stream.snapshot`: the run's text after the offset a watcher asked with (`run.sync`); a late
  joiner takes it, then the frames it buffered meanwhile. Overlap is cut by offset, so nothing
  is missing and nothing repeats.
- `stream.status`: a short note while no text has arrived (waiting for Segmind, retrying).
- `stream.end`: published after the final state is saved, with the message's final HTML; a
  watcher that finds the message already terminal reads the same from the database.
- `session.ended`: the session logged out.
- `run.stop`, `run.sync` (to the control group) and `manager.close` (to a manager's own channel).

Server-sent events to the browser
- At once `retry:` and a comment (`: stream open`), so proxies and the browser see the stream
  open; `: live` once attached to a running answer.
- `event: delta`, `id: <end offset>`, `data: {"o": <start offset>, "t": "<text>"}` for each
  piece, in order. The browser appends `t` from its own offset: a piece it has is never shown
  twice. Resume: `Last-Event-ID` (automatic reconnect) or `?after=<offset>` (a page rendered
  with some text already) says what it has; everything after it comes first.
- `event: status` with an escaped note.
- Exactly one terminal event: `done` (complete, stopped or interrupted) or `error` (failed),
  whose data is the message's final HTML fragment; then the response ends.
- `: hb` comments at most `SSE_HEARTBEAT_SECONDS` apart while nothing else is sent.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal, TypedDict

import orjson

from chatapp.conversations.models import Message

TerminalEvent = Literal["done", "error"]


class StreamDelta(TypedDict):
    type: Literal["stream.delta"]
    o: int
    t: str


class StreamSnapshot(TypedDict):
    type: Literal["stream.snapshot"]
    o: int
    t: str
    status: str


class StreamStatus(TypedDict):
    type: Literal["stream.status"]
    text: str


class StreamEnd(TypedDict):
    type: Literal["stream.end"]
    event: TerminalEvent
    html: str
    end: int


class SessionEnded(TypedDict):
    type: Literal["session.ended"]


class RunStop(TypedDict):
    type: Literal["run.stop"]
    message: str


class RunSync(TypedDict):
    type: Literal["run.sync"]
    message: str
    after: int
    reply_to: str


class ManagerClose(TypedDict):
    type: Literal["manager.close"]


StreamFrame = StreamDelta | StreamSnapshot | StreamStatus | StreamEnd | SessionEnded
ControlFrame = RunStop | RunSync | ManagerClose


def stream_group(message_id: uuid.UUID) -> str:
    """Watchers of a message's stream."""
    return f"stream.{message_id.hex}"


def control_group(message_id: uuid.UUID) -> str:
    """The control channel of the process running a message."""
    return f"run.{message_id.hex}"


def session_group(session_key: str) -> str:
    """Streams of one login session (docs/SECURITY.md rule 11)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def terminal_event(status: str) -> TerminalEvent:
    """The terminal SSE event of a message in this final status."""
    return "error" if status == Message.Status.FAILED else "done"


# --- Server-sent events ----------------------------------------------------------------------

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]
SSE_OPEN = b"retry: 2000\n: stream open\n\n"
SSE_LIVE = b": live\n\n"
SSE_HEARTBEAT = b": hb\n\n"


def sse_event(event: str, data: str, event_id: int | str | None = None) -> bytes:
    """One SSE event. Multi-line data becomes several `data:` lines (the browser rejoins them
    with newlines); a bare CR would end a line in SSE, so line endings are normalised."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines.append(f"event: {event}")
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    lines.extend(f"data: {line}" for line in text.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def sse_delta(start: int, text: str) -> bytes:
    """A `delta` event. The hot path: one per ~50 ms per stream, built as bytes in one step."""
    end = start + len(text)
    return b"id: %d\nevent: delta\ndata: %b\n\n" % (end, orjson.dumps({"o": start, "t": text}))
