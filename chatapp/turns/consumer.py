"""The SSE endpoint `/stream/<message uuid>/`: attach a browser to one answer's stream.

It speaks the browser half of `turns.protocol`. The consumer never loops inside `handle()`: it
sets up and returns, then relays group frames as they come while a second task waits for
`http.disconnect`, so it sees the browser leave at once. It checks the session cookie itself
when the browser connects (no auth middleware wrapping every send).

A watcher that joins a running answer asks the run for a snapshot of its text. If no snapshot
comes within `CHAT_RUN["snapshot_timeout"]` (the run's worker died, or the control message was
lost), it falls back to the text saved in the database, then keeps relaying live frames; the
offsets keep that seamless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.generic.http import AsyncHttpConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.html import escape

from chatapp.conversations.models import Message
from chatapp.core.asgi_types import Receive, Scope, Send
from chatapp.core.db import db
from chatapp.core.inline import run_inline
from chatapp.rendering import StreamRenderer, StreamUpdate

from . import manager
from .access import pass_holder
from .fragments import message_fragment
from .protocol import (
    SSE_HEADERS,
    SSE_HEARTBEAT,
    SSE_LIVE,
    SSE_OPEN,
    SessionEnded,
    StreamDelta,
    StreamEnd,
    StreamSnapshot,
    StreamStatus,
    event_id,
    parse_event_id,
    session_group,
    sse_blocks,
    sse_delta,
    sse_event,
    stream_group,
    terminal_event,
)
from .selectors import stream_state

log = logging.getLogger(__name__)

# A block this long renders on a thread, so that highlighting ~50 KB of code (~100 ms) does not
# hold up every other stream on the event loop; shorter ones (~0.1-2 ms) render in place.
RENDER_IN_THREAD_CHARS = 8_000


def session_user(session_key: str) -> User | None:
    """The person a session cookie belongs to, verified as Django's auth does (session hash
    included); None for anyone else."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key or None)
    user = auth.get_user(request)
    if isinstance(user, AnonymousUser) or not isinstance(user, User):
        return None
    return user


def _authorise(session_key: str, message_id: uuid.UUID) -> tuple[User | None, Message | None]:
    """The session's person and the message if it is theirs, in one trip to the database
    thread."""
    user = session_user(session_key)
    if user is None:
        return None, None
    return user, stream_state(owner_id=user.pk, message_id=message_id)


class SSEConsumer(AsyncHttpConsumer):
    """What every SSE endpoint here shares: the connection loop, the session cookie, the host
    check, joining groups, and ending cleanly. Subclasses set up in `handle()` and handle the
    frames of their groups (a method per frame type, as in Channels)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished = False
        self.groups_joined: list[str] = []
        self.ticker: asyncio.Task[None] | None = None
        self.last_sent = 0.0
        # The sink's state (`_accept`): frames waiting their turn, whether one is being
        # handled, the task carrying on one that suspended, and the stream's end.
        self._backlog: deque[dict[str, Any]] = deque()
        self._handling = False
        self._draining: asyncio.Task[None] | None = None
        self._over: asyncio.Future[None] | None = None
        self.backlog_capacity = 0
        self._held = b""  # bytes that go out with the next write (`_hold`)

    # The connection loop. Channels' AsyncHttpConsumer ends the consumer as soon as handle()
    # returns, and its dispatch loop starts a task and an asyncio.wait() per message (plus a
    # database-connection check, a thread hop). An SSE response outlives handle(), and a
    # stream's frames come as fast as its tokens, so the loop is our own: set up in handle(),
    # then frames are handled as they come while a task waits for the browser to leave. On
    # this process's own layer they are handled in the publisher's task as it sends them (a
    # sink: no queue, no task switch; see `_accept`); on Redis one task relays them.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        attach = getattr(self.channel_layer, "attach", None)
        self._over = over = asyncio.get_running_loop().create_future()
        if attach is not None:
            self.backlog_capacity = self.channel_layer.get_capacity(self.channel_name)
            # Frames that come during handle() wait in the backlog until it is done.
            self._handling = True
            attach(self.channel_name, self._accept)
        message = await receive()
        if message["type"] != "http.request":
            self._detach()
            return
        try:
            await self.handle(b"")
            if self.finished:
                return
            waits: set[asyncio.Future[Any]] = {over}
            if attach is not None:
                self._drain()
            else:
                waits.add(asyncio.create_task(self._relay()))
            leave = asyncio.create_task(self._wait_for_disconnect(receive))
            waits.add(leave)
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                tasks = [task for task in (*waits, self._draining) if task is not None]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._detach()
            await self._cleanup()

    async def _relay(self) -> None:
        receive, name = self.channel_layer.receive, self.channel_name
        while not self.finished:
            message = await receive(name)
            handler = self._handler(message)
            if handler is not None:
                self._handling = True
                try:
                    await handler(message)
                finally:
                    self._handling = False

    def _handler(self, message: dict[str, Any]) -> Callable[[Any], Any] | None:
        """The method a frame type names (`stream.delta` -> `stream_delta`), as in Channels."""
        return getattr(self, message["type"].replace(".", "_"), None)

    def _accept(self, message: dict[str, Any]) -> bool:
        """The sink: a frame from the publisher's task. Handled now unless one is being
        handled (or handle() is not done): then it waits its turn in the backlog, as it would
        in a channel's queue, of the same capacity."""
        if self._handling:
            if len(self._backlog) >= self.backlog_capacity:
                return False
            self._backlog.append(message)
            return True
        self._handling = True
        self._backlog.append(message)
        self._drain()
        return True

    def _drain(self) -> None:
        """Handle the backlog in order, in this task, until a handler suspends: then a task
        carries that handler on and drains the rest after it. Nothing a handler raises
        reaches the publisher: it ends this stream."""
        while self._backlog and not self.finished:
            message = self._backlog.popleft()
            handler = self._handler(message)
            if handler is None:
                continue
            try:
                task = run_inline(handler(message))
            except Exception as exc:
                self._fail(exc)
                return
            if task is not None:
                self._draining = task
                task.add_done_callback(self._resumed)
                return
        self._handling = False
        if self.finished:
            self._end()

    def _resumed(self, task: asyncio.Task[None]) -> None:
        self._draining = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._fail(error)
            return
        self._drain()

    def _fail(self, exc: BaseException | None) -> None:
        log.error("SSE stream %s failed", self.channel_name, exc_info=exc)
        self.finished = True
        self._end()

    def _end(self) -> None:
        """The stream is over: the connection loop may return (once no frame is mid-way)."""
        if self._over is not None and not self._over.done():
            self._over.set_result(None)

    def _detach(self) -> None:
        detach = getattr(self.channel_layer, "detach", None)
        if detach is not None:
            detach(self.channel_name)
        self._backlog.clear()

    async def _wait_for_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    def _hold(self, data: bytes) -> None:
        """Send `data` with the next write rather than on its own. Each write wakes the reader
        (a browser's network thread, or a sleeping client on this host: ~25-95 µs of the
        sender's CPU here, bench "turn cost"), so the stream's opening comment goes with the
        first frame after it, and its last frame with the end of the body."""
        self._held += data

    async def _send(self, data: bytes) -> None:
        if self.finished:
            return
        self.last_sent = asyncio.get_running_loop().time()
        if self._held:
            data, self._held = self._held + data, b""
        # The server's send itself, not send_body's two coroutines around it: once per frame.
        await self.base_send({"type": "http.response.body", "body": data, "more_body": True})

    async def _close(self, last: bytes = b"") -> None:
        """End the body, with `last` (a final frame) in the same write."""
        if self.finished:
            return
        self.finished = True
        data, self._held = self._held + last, b""
        await self.base_send({"type": "http.response.body", "body": data, "more_body": False})
        if not self._handling:  # else the loop ends once the frame's handler is done
            self._end()

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
            # The cancelled task keeps its CancelledError, whose traceback holds the tick's
            # frame and so this consumer: held here too, that is a cycle, and the consumer,
            # its renderer and the connection's objects would wait for the garbage collector.
            self.ticker = None
        for group in self.groups_joined:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    def _cookie(self, name: str) -> str:
        """A cookie's value as Django reads it (`django.http.parse_cookie`: lenient about
        other cookies' syntax, as SimpleCookie is not)."""
        for key, value in self.scope.get("headers", []):
            if key == b"cookie":
                found = parse_cookie(value.decode("latin-1")).get(name)
                if found:
                    return found
        return ""

    def _host_allowed(self) -> bool:
        headers = dict(self.scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        domain, _port = split_domain_port(host)
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        return bool(domain) and validate_host(domain, allowed)


class MessageStreamConsumer(SSEConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delivered = 0  # the text the browser has: characters [0, delivered)
        # The answer's blocks from the one the browser's page left open: each is rendered once,
        # when it closes, and sent as a `blocks` event after the `delta` that closed it.
        self.renderer = StreamRenderer()
        self.awaiting_snapshot = False
        self.snapshot_requested_at = 0.0
        self.buffer: list[tuple[int, str]] = []
        self.owner_id = 0
        self.message_id = uuid.UUID(int=0)

    # -- setup --

    async def handle(self, body: bytes) -> None:
        if not self._host_allowed():
            await self._respond(400, b"Bad host")
            return
        self.message_id = self.scope["url_route"]["kwargs"]["message_id"]
        session_key = self._cookie(settings.SESSION_COOKIE_NAME)
        # A pass from the page (turns.access) proves the person without the database.
        owner_id = pass_holder(
            self._query("pass"), message_id=self.message_id, session_key=session_key
        )
        message: Message | None = None
        if owner_id is None:
            user, message = await db(_authorise, session_key, self.message_id)
            if user is None:
                await self._respond(403, b"Log in to watch this answer.")
                return
            if message is None:
                await self._respond(404, b"Not found")
                return
            owner_id = user.pk
        self.owner_id = owner_id
        block, self.delivered = self._resume_offsets()
        self.renderer = StreamRenderer(block)
        await self.send_headers(status=200, headers=SSE_HEADERS)
        self._hold(SSE_OPEN)
        if message is not None and message.is_terminal:
            await self._finish_from_db(message)
            return
        # Join before looking: a run that ends after that publishes its end to us; one that
        # ended before has saved its final state, which we then read.
        await self._join(stream_group(self.message_id))
        if session_key:
            await self._join(session_group(session_key))
        if not manager.manager().is_going(self.message_id):
            # Not being written here: it may be on another worker, or over.
            message = await db(stream_state, owner_id=owner_id, message_id=self.message_id)
            if message is None or message.is_terminal:
                await self._finish_from_db(message)
                return
        await self._request_snapshot()
        await self._send(SSE_LIVE)
        self.ticker = asyncio.create_task(self._tick())

    # -- group frames (handler names mirror the frame types of turns.protocol) --

    async def stream_delta(self, frame: StreamDelta) -> None:
        if self.awaiting_snapshot:
            self.buffer.append((frame["o"], frame["t"]))
            return
        await self._deliver(frame["o"], frame["t"])

    async def stream_snapshot(self, frame: StreamSnapshot) -> None:
        if not self.awaiting_snapshot:
            return
        if frame.get("status"):
            await self.stream_status({"type": "stream.status", "text": frame["status"]})
        await self._caught_up(frame["o"], frame["t"])

    async def stream_status(self, frame: StreamStatus) -> None:
        await self._send(sse_event("status", escape(frame["text"]), self._event_id()))

    async def stream_end(self, frame: StreamEnd) -> None:
        html = frame["html"]
        end = frame["end"]
        if frame.get("shell") and self.renderer.offset == end and self.delivered == end:
            # The browser has every character: close the last block for it, then send the
            # final fragment without its body, which the page fills with the blocks it shows
            # (the same HTML), rather than the whole answer again (S9: a 60 KB answer's final
            # swap was the one long task at 4x CPU throttle).
            update = await self._render(self.renderer.finish)
            if update is not None:
                self._hold(sse_blocks(update, end))
            html = frame["shell"]
        await self._close(sse_event(frame["event"], html, end))

    async def session_ended(self, frame: SessionEnded) -> None:
        # Logged out: end the stream at this event boundary; the page will ask to log in.
        await self._close()

    # -- internals --

    async def _caught_up(self, start: int, text: str) -> None:
        """The text up to now arrived (a snapshot, or the saved text): send it, then the frames
        buffered while waiting for it."""
        self.awaiting_snapshot = False
        await self._deliver(start, text)
        buffered, self.buffer = self.buffer, []
        for offset, piece in buffered:
            await self._deliver(offset, piece)

    async def _deliver(self, start: int, text: str) -> None:
        fed = self.renderer.offset  # from the start of the open block, which may be < delivered
        end = start + len(text)
        if end <= fed:
            return  # already seen (overlap between a snapshot and frames)
        if start > fed:
            # A frame was lost (e.g. a full channel), or the saved text lags the live frames:
            # get the missing text, keeping this piece until it comes.
            if not self.awaiting_snapshot:
                await self._request_snapshot()
            self.buffer.append((start, text))
            return
        if start < fed:
            text = text[fed - start :]
            start = fed
        # The delta's id names the block the browser has open until the `blocks` event after it.
        # The text goes out before the renderer runs: the piece that closes a block would
        # otherwise wait for the block's HTML (one chunk a paragraph, the one-stream p99).
        if end > self.delivered:
            fresh = text[max(0, self.delivered - start) :]
            await self._send(sse_delta(end - len(fresh), fresh, self.renderer.block_start))
        update = await self._render(self.renderer.feed, text)
        if update is not None:
            # The open block is sent whole, up to `end`: from here the browser has exactly
            # that (less than before, if the saved text it caught up from lagged the page).
            await self._send(sse_blocks(update, end))
            self.delivered = end
        else:
            self.delivered = max(self.delivered, end)

    async def _render(
        self, step: Callable[..., StreamUpdate | None], *text: str
    ) -> StreamUpdate | None:
        """One renderer step: on a thread when the block it may close is long."""
        if sum(map(len, text)) + self.renderer.pending > RENDER_IN_THREAD_CHARS:
            return await asyncio.to_thread(step, *text)
        return step(*text)

    def _event_id(self) -> str:
        return event_id(self.renderer.block_start, self.delivered)

    async def _request_snapshot(self) -> None:
        self.awaiting_snapshot = True
        self.snapshot_requested_at = asyncio.get_running_loop().time()
        await manager.manager().request_snapshot(
            self.message_id, after=self.renderer.offset, reply_to=self.channel_name
        )

    async def _tick(self) -> None:
        """Heartbeats, and the fallback when a snapshot does not come: the saved text, or the
        final state if the answer ended meanwhile (the reaper announces the end of an answer
        whose worker died)."""
        loop = asyncio.get_running_loop()
        heartbeat = settings.SSE_HEARTBEAT_SECONDS
        timeout = settings.CHAT_RUN["snapshot_timeout"]
        interval = min(1.0, timeout / 2)
        while not self.finished:
            await asyncio.sleep(interval)
            now = loop.time()
            if self.awaiting_snapshot and now - self.snapshot_requested_at > timeout:
                await self._fall_back_to_saved_text()
                if self.finished:
                    return
            if now - self.last_sent >= heartbeat:
                # Quiet for a heartbeat: also make sure the answer has not ended unannounced
                # (its end frame lost with a channel-layer hiccup). One read per quiet period.
                if await self._still_running() is None:
                    return
                await self._send(SSE_HEARTBEAT)

    async def _still_running(self) -> Message | None:
        """The answer as saved if it is still being written; if it has ended (or gone), its
        final state is sent and the stream ends, and None is returned."""
        message = await db(stream_state, owner_id=self.owner_id, message_id=self.message_id)
        if message is None or message.is_terminal:
            await self._finish_from_db(message)
            return None
        return message

    async def _fall_back_to_saved_text(self) -> None:
        message = await self._still_running()
        if message is None:
            return
        # The saved text lags the run by at most a checkpoint interval: a buffered frame beyond
        # it is a gap, for which `_deliver` asks the run again (and, if it stays silent, the
        # next fallback reads a later checkpoint).
        fed = self.renderer.offset
        await self._caught_up(fed, message.content[fed:])

    async def _finish_from_db(self, message: Message | None) -> None:
        if message is None:
            await self._close()
            return
        html = await db(message_fragment, message)
        await self._close(sse_event(terminal_event(message.status), html, len(message.content)))

    def _query(self, name: str) -> str:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return (query.get(name) or [""])[0]

    def _resume_offsets(self) -> tuple[int, int]:
        """(start of the open block, end of the text) that the browser already shows:
        Last-Event-ID on an automatic reconnect, else `?block=&after=` from the page that
        rendered the partial answer. Anything unreadable starts from the beginning."""
        headers = dict(self.scope.get("headers", []))
        raw = headers.get(b"last-event-id", b"").decode("latin-1").strip()
        if not raw:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            after = (query.get("after") or ["0"])[0]
            # Without `block`, blocks are rendered from `after` on (a client that reads only
            # the text gets exactly the text after what it has).
            raw = f"{(query.get('block') or [after])[0]}.{after}"
        elif raw.isdigit():
            raw = f"{raw}.{raw}"
        return parse_event_id(raw) or (0, 0)
