"""The SSE endpoint `/stream/<message uuid>/`: attach a browser to one message's stream.

Protocol (what the browser receives):
- `retry:` and a comment at once, so proxies and the browser see the stream open; a second
  comment (`: live`) once attached to a running generation.
- `event: delta`, `id: <end offset>`, `data: {"o": <start offset>, "t": "<text>"}` for each
  piece of the answer, in order. Offsets count characters of the answer; the browser appends
  `t` from its own offset, so a piece it already has is never shown twice.
- `event: status` with a short escaped note (retrying, waiting), while no text has arrived.
- exactly one terminal event: `event: done` (complete, stopped or interrupted) or
  `event: error` (failed), whose data is the message's final HTML fragment; then the
  response ends.
- comments (`: hb`) at most `SSE_HEARTBEAT_SECONDS` apart while nothing else is sent.
Resume: the browser's `Last-Event-ID` header (automatic reconnect) or `?after=<offset>` (a
page rendered with some text already) says what it has; everything after it is sent first.

The consumer never loops inside `handle()`: it sets up and returns, then relays group events
as they come while a second task waits for `http.disconnect`, so it sees the browser leave at
once. It checks the session cookie itself when the browser connects (no auth middleware
wrapping every send).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from http.cookies import SimpleCookie
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import orjson
from channels.generic.http import AsyncHttpConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.http.request import split_domain_port, validate_host
from django.utils.html import escape

from . import generation, selectors
from .db import db
from .generation import render_message_fragment, stream_group, terminal_event_name

log = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]
# How long to wait for a snapshot from the run before asking again.
SNAPSHOT_TIMEOUT = 5.0


def sse_event(event: str, data: str, event_id: int | str | None = None) -> bytes:
    """One SSE event. Multi-line data becomes several `data:` lines (the browser rejoins them
    with newlines); a bare CR would end a line in SSE, so line endings are normalised."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines.append(f"event: {event}")
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    lines.extend(f"data: {line}" for line in text.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def _authorise(session_key: str, message_id: Any) -> tuple[Any, Any]:
    """The person a session cookie belongs to (verified as Django's auth does, session hash
    included), and the message if it is theirs - in one trip to the database thread."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key or None)
    user = auth.get_user(SimpleNamespace(session=store))
    if not user.is_authenticated:
        return user, None
    return user, selectors.stream_state(owner=user, message_id=message_id)


def session_group(session_key: str) -> str:
    """Streams of one login session; logging out ends them (SECURITY 11)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


class MessageStreamConsumer(AsyncHttpConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished = False
        self.groups_joined: list[str] = []
        self.delivered = 0
        self.awaiting_snapshot = False
        self.snapshot_requested_at = 0.0
        self.buffer: list[dict[str, Any]] = []
        self.ticker: asyncio.Task | None = None
        self.last_sent = 0.0

    # The connection loop. Channels' AsyncHttpConsumer ends the consumer as soon as handle()
    # returns, and its dispatch loop starts a task and an asyncio.wait() per message (plus a
    # database-connection check, a thread hop). An SSE response outlives handle(), and frames
    # come ~20 times a second per stream, so the loop is our own: set up in handle(), then one
    # task relays channel-layer messages while another waits for the browser to leave.
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        message = await receive()
        if message["type"] != "http.request":
            return
        try:
            await self.handle(b"")
            if self.finished:
                return
            relay = asyncio.create_task(self._relay())
            leave = asyncio.create_task(self._wait_for_disconnect(receive))
            try:
                await asyncio.wait({relay, leave}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (relay, leave):
                    task.cancel()
                await asyncio.gather(relay, leave, return_exceptions=True)
        finally:
            await self._cleanup()

    async def _relay(self) -> None:
        receive, name = self.channel_layer.receive, self.channel_name
        while not self.finished:
            message = await receive(name)
            handler = getattr(self, message["type"].replace(".", "_"), None)
            if handler is not None:
                await handler(message)

    async def _wait_for_disconnect(self, receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    # -- setup --

    async def handle(self, body: bytes) -> None:
        if not self._host_allowed():
            await self._respond(400, b"Bad host")
            return
        self.message_id = self.scope["url_route"]["kwargs"]["message_id"]
        self.session_key = self._cookie(settings.SESSION_COOKIE_NAME)
        user, message = await db(_authorise, self.session_key, self.message_id)
        if not user.is_authenticated:
            await self._respond(403, b"Log in to watch this answer.")
            return
        self.user = user
        if message is None:
            await self._respond(404, b"Not found")
            return
        self.delivered = self._resume_offset()
        await self.send_headers(status=200, headers=SSE_HEADERS)
        await self._send(b"retry: 2000\n: stream open\n\n")
        if message.is_terminal:
            await self._finish_from_db(message)
            return
        # Join before re-reading: a run that ends between the two reads has saved its final
        # state first (we then read it) or publishes its end after we joined (we receive it).
        await self._join(stream_group(self.message_id))
        if self.session_key:
            await self._join(session_group(self.session_key))
        message = await db(selectors.stream_state, owner=user, message_id=self.message_id)
        if message is None or message.is_terminal:
            await self._finish_from_db(message)
            return
        await self._request_snapshot()
        await self._send(b": live\n\n")
        self.ticker = asyncio.create_task(self._tick())

    # -- group events --

    async def stream_delta(self, event: dict[str, Any]) -> None:
        if self.awaiting_snapshot:
            self.buffer.append(event)
            return
        await self._deliver(event["o"], event["t"])

    async def stream_snapshot(self, event: dict[str, Any]) -> None:
        if not self.awaiting_snapshot:
            return
        self.awaiting_snapshot = False
        if event.get("status"):
            await self.stream_status({"text": event["status"]})
        await self._deliver(event["o"], event["t"])
        buffered, self.buffer = self.buffer, []
        for frame in buffered:
            await self._deliver(frame["o"], frame["t"])

    async def stream_status(self, event: dict[str, Any]) -> None:
        await self._send(sse_event("status", escape(event["text"]), self.delivered))

    async def stream_end(self, event: dict[str, Any]) -> None:
        await self._send(sse_event(event["event"], event["html"], event["end"]))
        await self._close()

    async def session_ended(self, event: dict[str, Any]) -> None:
        # Logged out: end the stream at this event boundary; the page will ask to log in.
        await self._close()

    # -- internals --

    async def _deliver(self, start: int, text: str) -> None:
        end = start + len(text)
        if end <= self.delivered:
            return  # already sent (overlap between a snapshot and frames)
        if start > self.delivered:
            # A frame was lost (e.g. a full channel): get the missing text from the run.
            await self._request_snapshot()
            self.buffer.append({"o": start, "t": text})
            return
        if start < self.delivered:
            text = text[self.delivered - start :]
            start = self.delivered
        self.delivered = end
        # The hot path: one frame per ~50 ms per stream, built as bytes in one step.
        await self._send(
            b"id: %d\nevent: delta\ndata: %b\n\n" % (end, orjson.dumps({"o": start, "t": text}))
        )

    async def _request_snapshot(self) -> None:
        self.awaiting_snapshot = True
        self.snapshot_requested_at = asyncio.get_running_loop().time()
        await generation.manager().request_snapshot(
            self.message_id, after=self.delivered, reply_to=self.channel_name
        )

    async def _tick(self) -> None:
        """Heartbeats, and a second look when a snapshot does not come (the run's worker may
        have died: then the database says so, or the reaper will soon announce the end)."""
        loop = asyncio.get_running_loop()
        heartbeat = settings.SSE_HEARTBEAT_SECONDS
        while not self.finished:
            await asyncio.sleep(1.0)
            now = loop.time()
            if self.awaiting_snapshot and now - self.snapshot_requested_at > SNAPSHOT_TIMEOUT:
                message = await db(
                    selectors.stream_state, owner=self.scope["user"], message_id=self.message_id
                )
                if message is None or message.is_terminal:
                    await self._finish_from_db(message)
                    await self._cleanup()
                    return
                await self._request_snapshot()
            if now - self.last_sent >= heartbeat:
                await self._send(b": hb\n\n")

    async def _finish_from_db(self, message: Any) -> None:
        if message is None:
            await self._close()
            return
        html = await db(render_message_fragment, message)
        await self._send(sse_event(terminal_event_name(message.status), html, len(message.content)))
        await self._close()

    async def _send(self, data: bytes) -> None:
        if self.finished:
            return
        self.last_sent = asyncio.get_running_loop().time()
        await self.send_body(data, more_body=True)

    async def _close(self) -> None:
        if self.finished:
            return
        self.finished = True
        await self.send_body(b"", more_body=False)

    async def _respond(self, status: int, body: bytes) -> None:
        await self.send_response(
            status, body, headers=[(b"content-type", b"text/plain; charset=utf-8")]
        )
        self.finished = True

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def _cleanup(self) -> None:
        self.finished = True
        if self.ticker is not None and self.ticker is not asyncio.current_task():
            self.ticker.cancel()
        for group in self.groups_joined:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    def _cookie(self, name: str) -> str:
        for key, value in self.scope.get("headers", []):
            if key == b"cookie":
                cookies = SimpleCookie()
                cookies.load(value.decode("latin-1"))
                if name in cookies:
                    return cookies[name].value
        return ""

    def _resume_offset(self) -> int:
        """The offset the browser already has: Last-Event-ID on an automatic reconnect, else
        `?after=` from the page that rendered the partial text."""
        headers = dict(self.scope.get("headers", []))
        raw = headers.get(b"last-event-id", b"").decode("latin-1").strip()
        if not raw:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            raw = (query.get("after") or [""])[0]
        try:
            return max(0, int(raw))
        except ValueError:
            return 0

    def _host_allowed(self) -> bool:
        headers = dict(self.scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        domain, _port = split_domain_port(host)
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        return bool(domain) and validate_host(domain, allowed)
