"""The runs of one server process: their manager, its control channel, its heartbeat and
its reaper; and the two entry points synchronous views call (`launch`, `request_stop`).

One `RunManager` per event loop. Control frames (`run.stop`, `run.sync`) reach it through
the channel layer wherever the browser is attached (`turns.protocol`), so Stop and a late
watcher's snapshot work across workers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import httpx
from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from chatapp.conversations.models import Message
from chatapp.core.db import db
from chatapp.providers.http import new_http_client
from chatapp.providers.types import ChatRequest

from . import titles
from .fragments import stream_end
from .pacing import Pacing
from .persistence import message_not_started
from .protocol import (
    ManagerClose,
    RunStop,
    RunSync,
    StreamEnd,
    control_group,
    stream_group,
)
from .published import PublishedText
from .run import KeyRead, Run, read_key
from .workers import HOSTNAME, WORKER_ID, runs_interrupt, runs_orphaned, worker_heartbeat

log = logging.getLogger(__name__)

T = TypeVar("T")
# What a view asks of the server's manager, on its event loop.
Step = Callable[["RunManager"], Coroutine[Any, Any, Any]]


def _end_of(message_id: uuid.UUID) -> StreamEnd:
    return stream_end(Message.objects.select_related("conversation").get(pk=message_id))


class RunManager:
    """The runs of this process, its control channel, its heartbeat and its reaper."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS has no default layer"
        self.layer: BaseChannelLayer = layer
        self.runs: dict[uuid.UUID, Run] = {}
        self.published = PublishedText(settings.REDIS_URL)
        # One pacing for the process's runs: its load is all of theirs.
        self.pacing = Pacing(
            free_rate=self.config["unpaced_chunks_per_second"],
            max_interval=self.config["max_frame_interval"],
        )
        self._run_tasks: dict[uuid.UUID, asyncio.Task[Any]] = {}
        # Titles being written after first answers (turns/titles.py), by answer.
        self.titles: dict[uuid.UUID, asyncio.Task[Any]] = {}
        self.control_channel = ""
        self._client: httpx.AsyncClient | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._control_task: asyncio.Task[Any] | None = None
        self._started = False
        self._start_lock = asyncio.Lock()

    @property
    def config(self) -> dict[str, Any]:
        return settings.CHAT_RUN

    # -- lifecycle --

    async def start(self) -> None:
        """Register this worker, mark runs of dead workers interrupted, listen for control
        messages. Idempotent; called at ASGI lifespan startup and lazily before a launch."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            # The default prefix matters: channels-redis receives every local channel of a
            # process through one blocking pop on one key, and a channel under another prefix
            # would hold that pop (5 s) while SSE consumers' messages wait.
            self.control_channel = await self.layer.new_channel()
            self._control_task = self._spawn(self._control_loop())
            await db(worker_heartbeat, worker_id=WORKER_ID, hostname=HOSTNAME, pid=os.getpid())
            await self.reap()
            self._spawn(self._heartbeat_loop())
            self._started = True

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Save every run still going as interrupted, with its text, then stop."""
        runs = list(self.runs.values())
        for run in runs:
            run.stop("interrupted")
        tasks = list(self._run_tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        if self._control_task is not None:
            # Ask the control loop to return rather than cancel its blocking receive:
            # channels-redis may then sit out its 5 s pop before the task ends.
            with contextlib.suppress(Exception):
                close: ManagerClose = {"type": "manager.close"}
                await self.layer.send(self.control_channel, close)
                await asyncio.wait_for(asyncio.shield(self._control_task), 1.0)
        background = list(self._background)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        with contextlib.suppress(Exception):
            await self.published.close()
        self.published = PublishedText(settings.REDIS_URL)
        self._started = False

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = new_http_client()
        return self._client

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        # A fresh context: runs must not inherit the request's (its thread-sensitive executor
        # is shut down when the request ends).
        task = self.loop.create_task(coro, context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- runs --

    async def launch(
        self,
        *,
        message_id: uuid.UUID,
        route: str,
        request: ChatRequest | Callable[[], ChatRequest],
        prefix: str = "",
        message: Message | None = None,
        owner_id: int | None = None,
        frame_interval: float = 0.0,
        key: KeyRead | None = None,
    ) -> Run:
        """Start the generation for a pending assistant message saved by `turns.services`
        (`turn_start`, `turn_retry`, or `turn_continue`: then `prefix` is the text it already
        has, and what the upstream sends is appended to it, offsets and all).

        Returns once the run can receive Stop, so a Stop pressed right after Send is not lost.
        `frame_interval`: what the page that started it asks for between frames
        (`pacing.asked_interval`), if longer than the server's cap. `key`: the person's own
        key for the route, if already read (`run.read_key`).
        """
        await self.start()
        if message_id in self.runs:
            return self.runs[message_id]  # a replayed submit: it is already running
        run = Run(
            message_id=message_id,
            route=route,
            request=request,
            prefix=prefix,
            layer=self.layer,
            client=self.client(),
            config=self.config,
            published=self.published,
            message=message,
            pacing=self.pacing,
            owner_id=owner_id,
            frame_interval=frame_interval,
            key=key,
        )
        self.runs[message_id] = run
        try:
            await self.layer.group_add(control_group(message_id), self.control_channel)
        except BaseException:
            del self.runs[message_id]  # not started: nothing is to wait on it or stop it
            raise
        self._run_tasks[message_id] = self._spawn(self._run(run))
        return run

    def is_going(self, message_id: uuid.UUID) -> bool:
        """Whether this process is writing the answer and has not yet published its end: a
        watcher that joined its stream group before asking gets every frame to the end."""
        run = self.runs.get(message_id)
        return run is not None and not run.ended

    def running(self, message_id: uuid.UUID) -> asyncio.Task[Any] | None:
        """The task of a run of this process, until it has ended and saved its final state."""
        return self._run_tasks.get(message_id)

    async def _run(self, run: Run) -> None:
        try:
            await run.main()
        finally:
            self.runs.pop(run.message_id, None)
            self._run_tasks.pop(run.message_id, None)
            with contextlib.suppress(Exception):
                await self.layer.group_discard(control_group(run.message_id), self.control_channel)
        first_turn = run.request is not None and len(run.request.messages) == 1
        if first_turn and settings.CHAT_TITLE_MODEL != "off":
            # A first turn: its title, once the answer is saved and its stream has ended.
            self.titles[run.message_id] = self._spawn(self._title(run.message_id))

    async def _title(self, message_id: uuid.UUID) -> None:
        try:
            await titles.write_title(message_id=message_id, client=self.client())
        except Exception:
            log.exception("the title after %s could not be written", message_id)
        finally:
            self.titles.pop(message_id, None)

    async def request_stop(self, message_id: uuid.UUID) -> None:
        run = self.runs.get(message_id)
        if run is not None:
            run.stop("stopped")
            return
        stop: RunStop = {"type": "run.stop", "message": message_id.hex}
        await self.layer.group_send(control_group(message_id), stop)

    async def request_snapshot(self, message_id: uuid.UUID, *, after: int, reply_to: str) -> None:
        """Ask the run (here or on another worker) for its text after `after`; the answer
        arrives on `reply_to` as `stream.snapshot`."""
        run = self.runs.get(message_id)
        if run is not None:
            await self.layer.send(reply_to, run.snapshot(after))
            return
        sync: RunSync = {
            "type": "run.sync",
            "message": message_id.hex,
            "after": after,
            "reply_to": reply_to,
        }
        await self.layer.group_send(control_group(message_id), sync)

    async def _control_loop(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.control_channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # channels-redis turns a cancelled blocking pop into redis' TimeoutError.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                # A channel-layer hiccup (Redis restarting) must not leave runs unstoppable.
                log.exception("control channel receive failed; retrying")
                await asyncio.sleep(1.0)
                continue
            match message:
                case {"type": "manager.close"}:
                    return
                case {"type": "run.stop", "message": str(hex_id)}:
                    run = self._run_named(hex_id)
                    if run is not None:
                        run.stop("stopped")
                case {"type": "run.sync", "message": str(hex_id), "after": int(after)}:
                    run = self._run_named(hex_id)
                    reply_to = message.get("reply_to")
                    if run is not None and isinstance(reply_to, str):
                        await self._reply(reply_to, run, after)
                case _:
                    log.warning("bad control message %r", message.get("type"))

    def _run_named(self, hex_id: str) -> Run | None:
        try:
            return self.runs.get(uuid.UUID(hex_id))
        except ValueError:
            return None

    async def _reply(self, reply_to: str, run: Run, after: int) -> None:
        try:
            await self.layer.send(reply_to, run.snapshot(after))
        except Exception:
            # The watcher went away (its channel is gone or full): it asks again if it is back.
            log.warning("could not answer a snapshot request for %s", run.message_id)

    # -- liveness --

    async def reap(self) -> None:
        """Mark runs of dead workers interrupted and tell their watchers."""
        orphans = await db(
            runs_orphaned,
            live_worker_id=WORKER_ID,
            stale_after=self.config["worker_stale_after"],
            hostname=HOSTNAME,
        )
        if not orphans:
            return
        try:
            recovered = await self.published.recover(orphans)
        except Exception:
            # Without it the checkpointed text stands: at most a checkpoint interval short.
            log.exception("could not recover the published text of %d runs", len(orphans))
            recovered = {}
        ids = await db(runs_interrupt, message_ids=orphans, recovered=recovered)
        for message_id in ids:
            await self.announce_end(message_id)
            with contextlib.suppress(Exception):
                await self.published.forget(message_id)

    async def announce_end(self, message_id: uuid.UUID) -> None:
        end = await db(_end_of, message_id)
        await self.layer.group_send(stream_group(message_id), end)

    async def _heartbeat_loop(self) -> None:
        interval = self.config["heartbeat_interval"]
        while True:
            await asyncio.sleep(interval)
            try:
                await db(
                    worker_heartbeat,
                    worker_id=WORKER_ID,
                    hostname=HOSTNAME,
                    pid=os.getpid(),
                )
                await self.reap()
            except Exception:
                log.exception("worker heartbeat failed; retrying in %s s", interval)


# --- Entry points for synchronous views -------------------------------------------------------
#
# Views are synchronous: under ASGI Django then runs the whole middleware chain in one thread,
# where an async view behind its middleware pays two thread switches per middleware. These hop
# once onto the server's event loop from the request's thread, or, for a launch in a request
# the server's handler runs, hand the run to the handler, which starts it on the loop.


def launch(
    *,
    message: Message,
    request: ChatRequest | Callable[[], ChatRequest],
    prefix: str = "",
    owner_id: int | None = None,
    frame_interval: float = 0.0,
) -> None:
    """Start the run of a pending answer. `request` may be the function that builds it,
    which the run calls on a database thread. `owner_id`: whose turn it is (their own key for
    the route is used, if they have one); `frame_interval`: what the page asks for between
    frames (`RunManager.launch`). A run that cannot be started marks its answer failed,
    saying so, rather than leave it pending.

    In a request the server's handler runs (`launches_after`), the run is started on the
    event loop once the view returns, before its response goes out: the view's thread does
    not wait for a hop to the loop and back (~2.5% of a short turn's CPU: bench.ab B/A
    median 0.961-0.979 in five runs of 40 rounds, against itself 1.008). Elsewhere (a test's
    client) it is started from here, and this returns once it can receive Stop. Either way a
    Stop pressed right after Send is not lost: the page learns of the answer from the
    response.

    Given the request itself, the person's key is read here too, on the view's thread: the
    run then starts with no hop to a database thread and back, 3-6% of a short turn's CPU
    (bench.ab, three runs: B/A 0.94-0.968 median, 0.969-0.972 of the sums). If it cannot be
    read here, the run reads it."""
    key = None
    if not callable(request):
        try:
            key = read_key(owner_id=owner_id, route=message.route)
        except Exception:
            log.exception("the key for %s could not be read before its run", message.id)

    async def start(runs: RunManager) -> None:
        try:
            await runs.launch(
                message_id=message.id,
                route=message.route,
                request=request,
                prefix=prefix,
                message=message,
                owner_id=owner_id,
                frame_interval=frame_interval,
                key=key,
            )
        except Exception:
            log.exception("the run of %s could not be started", message.id)
            try:
                await db(message_not_started, message_id=message.id)
            except Exception:  # the reaper marks it once this worker is gone
                log.exception("%s could not be marked failed", message.id)

    deferred = _LAUNCHES.get()
    if deferred is None or not deferred.add(start):
        _on_loop(start, wait=True)


class _Launches:
    """The runs a request's view asked to start, while the server's handler runs it. Once
    the handler has taken them, a launch from the view's thread (one the handler stopped
    waiting for) is made from that thread, as without a handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: list[Step] | None = []

    def add(self, step: Step) -> bool:
        with self._lock:
            if self._steps is None:
                return False
            self._steps.append(step)
            return True

    def take(self) -> list[Step]:
        with self._lock:
            steps, self._steps = self._steps or [], None
        return steps


_LAUNCHES: contextvars.ContextVar[_Launches | None] = contextvars.ContextVar(
    "chat_launches", default=None
)


async def launches_after(view: Callable[[], Awaitable[T]]) -> T:
    """Await `view` (a view on a request thread, which sees this context), then start on
    this loop the runs it asked for (`launch`), also when it raised: the answers it saved
    are pending."""
    launches = _Launches()
    token = _LAUNCHES.set(launches)
    try:
        return await view()
    finally:
        _LAUNCHES.reset(token)
        if steps := launches.take():
            runs = manager()
            for start in steps:
                await start(runs)


def request_stop(message_id: uuid.UUID) -> None:
    _on_loop(lambda runs: runs.request_stop(message_id), wait=True)


def group_send(group: str, frame: Mapping[str, Any]) -> None:
    """Publish a frame from a view without waiting for it to go out (the live frames of a
    conversation's other open pages)."""

    async def _send(runs: RunManager) -> None:
        await runs.layer.group_send(group, dict(frame))

    _on_loop(_send, wait=False)


def _on_loop(step: Step, *, wait: bool) -> None:
    """Run `step` with the server's manager on its event loop, from a view's thread. Once
    the manager has started, a plain `run_coroutine_threadsafe` (asgiref's `async_to_sync`
    cost ~8% of a turn's CPU: its thread-sensitivity bookkeeping and context copies, bench
    "turn cost"); before that (tests without a lifespan), through asgiref."""
    runs = _manager
    if runs is None or not runs._started or not runs.loop.is_running():

        async def _first() -> None:
            await step(manager())

        async_to_sync(_first)()
        return
    future = asyncio.run_coroutine_threadsafe(step(runs), runs.loop)
    if wait:
        future.result()
    else:
        future.add_done_callback(_log_failure)


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("a frame from a view could not be published: %s", future.exception())


# --- The process's manager --------------------------------------------------------------------

_manager: RunManager | None = None


def manager() -> RunManager:
    """The RunManager of the running event loop (a new loop - e.g. in tests - gets a new one)."""
    global _manager
    loop = asyncio.get_running_loop()
    if _manager is None or _manager.loop is not loop:
        _manager = RunManager()
    return _manager
