"""The stream protocol's definition: the channel-layer groups, the frames sent to them
(TypedDicts; a consumer's handler for `stream.delta` is its method `stream_delta`, as in
Channels) and the server-sent events a browser reads. docs/ARCHITECTURE.md, "The stream
protocol", tells how they fit together; every part that speaks it imports it from here."""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal, TypedDict

import orjson

from chatapp.conversations.models import Message
from chatapp.rendering import StreamUpdate

TerminalEvent = Literal["done", "error"]


class StreamDelta(TypedDict):
    """Characters [o, o + len(t)) of the answer, in order, at most one frame per interval."""

    type: Literal["stream.delta"]
    o: int
    t: str


class StreamSnapshot(TypedDict):
    """The run's text after the offset a watcher asked with `run.sync`, and its status note."""

    type: Literal["stream.snapshot"]
    o: int
    t: str
    status: str


class StreamStatus(TypedDict):
    """A short note while no text has arrived (waiting for Segmind, retrying)."""

    type: Literal["stream.status"]
    text: str


class StreamEnd(TypedDict):
    """Published after the final state is saved: the terminal event and the final fragment;
    `shell` is the same fragment with an empty body, for a page that already shows every
    block (or "" when the page's blocks may differ from the final ones)."""

    type: Literal["stream.end"]
    event: TerminalEvent
    html: str
    shell: str
    end: int


class SessionEnded(TypedDict):
    type: Literal["session.ended"]


class ConversationTitle(TypedDict):
    """A conversation's new title (turns/titles.py), for its open pages' header and sidebar."""

    type: Literal["conversation.title"]
    title: str


class ConversationTurn(TypedDict):
    """Messages a page of the conversation should show: a new turn's two articles, which go
    `after` the article of the message they follow; or articles that take the place of the
    one `replaces` names and of all after it (a version: an answer regenerated, a message
    edited; or what is left when a turn is deleted). `tab` is the page that made them, which
    has them already."""

    type: Literal["conversation.turn"]
    html: str
    replaces: str
    after: str
    tab: str


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


def conversation_group(conversation_id: uuid.UUID) -> str:
    """The open pages of one conversation (a second tab sees what the first sends)."""
    return f"conversation.{conversation_id.hex}"


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


def event_id(block: int, end: int) -> str:
    """An event's id: where the open block starts and how much text the page has, so that a
    reconnect (the browser sends it back as Last-Event-ID) resumes at a block boundary."""
    return f"{block}.{end}"


def parse_event_id(raw: str) -> tuple[int, int] | None:
    """(block, end) from an id written by `event_id`, None for anything else."""
    block, dot, end = raw.strip().partition(".")
    if not dot or not block.isdigit() or not end.isdigit() or len(raw) > 40:
        return None
    first, last = int(block), int(end)
    return (first, last) if first <= last else None


def sse_delta(start: int, text: str, block: int) -> bytes:
    """A `delta` event: characters [o, o + len(t)) for the open block, shown as text. The hot
    path: one per ~50 ms per stream, built as bytes in one step."""
    end = start + len(text)
    return b"id: %d.%d\nevent: delta\ndata: %b\n\n" % (
        block,
        end,
        orjson.dumps({"o": start, "t": text}),
    )


def sse_blocks(update: StreamUpdate, end: int) -> bytes:
    """A `blocks` event: the sanitised HTML of the blocks that closed (characters [o, e)), and
    the open block anew: its text `t` (up to `n`), shown in a code box when `c` names one."""
    data = {"h": str(update.html), "o": update.start, "e": update.end, "t": update.tail, "n": end}
    if update.code_lang is not None:
        data["c"] = update.code_lang
    return b"id: %d.%d\nevent: blocks\ndata: %b\n\n" % (update.end, end, orjson.dumps(data))
