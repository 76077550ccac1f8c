"""The generation run: owns one upstream stream, relays it, persists it, finishes it.

One `RunManager` per server process (per event loop) holds the runs it executes. A run is
detached from the request that started it: it goes on when the browser leaves and ends only on
completion, error, Stop or shutdown (DESIGN.md, the flow of one turn, steps 2-5).

Stream protocol (what the SSE consumer relies on):
- Text is numbered by offset: a frame `{"type": "stream.delta", "o": start, "t": text}` carries
  the answer's characters [start, start + len(text)). Frames of one run are published in order
  by a single publisher task, coalesced to at most one per `frame_interval` (~20/s), the first
  one immediately.
- A watcher that joins late asks for a snapshot (`run.sync` with the offset it already has) and
  gets `stream.snapshot` with the text after that offset; overlap with later frames is removed
  by offset, so nothing is missing and nothing repeats.
- The end is `stream.end`, published after the final state is saved, carrying the rendered
  final fragment: a watcher that finds the message already terminal reads it from the database.
- Control messages (`run.stop`, `run.sync`) go to the group `run.<message id>`, whose only
  member is the control channel of the process running it, so Stop and resume work whichever
  worker the browser is attached to.

Persistence is bounded: a checkpoint of the partial text at most once per `checkpoint_interval`
(and only when text changed) and one UPDATE at the end; never a write per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import httpx
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import OperationalError
from django.template.loader import render_to_string

from . import services
from .db import db
from .models import Message
from .providers import new_http_client, provider_for
from .providers.errors import ProviderError
from .providers.types import (
    ChatRequest,
    Finish,
    ProviderExtras,
    ReasoningDelta,
    ResponseInfo,
    Status,
    TextDelta,
    Usage,
)

log = logging.getLogger(__name__)

# This process. Messages record the worker that runs them (see models.Worker).
WORKER_ID = uuid.uuid4()
HOSTNAME = socket.gethostname()


def stream_group(message_id: uuid.UUID) -> str:
    """Watchers of a message's stream."""
    return f"stream.{message_id.hex}"


def control_group(message_id: uuid.UUID) -> str:
    """The control channel of the process running a message."""
    return f"run.{message_id.hex}"


def terminal_event_name(status: str) -> str:
    return "error" if status == Message.Status.FAILED else "done"


def render_message_fragment(message: Message, *, is_last: bool = True) -> str:
    """The final HTML of a message, as the conversation page shows it."""
    return render_to_string(
        "chatapp/_message.html", {"message": message, "is_last": is_last, "live": True}
    )


def _finish_and_render(message_id: uuid.UUID, outcome: services.Outcome) -> tuple[str, str, bool]:
    saved = services.message_finish(message_id=message_id, outcome=outcome)
    message = Message.objects.select_related("conversation").get(pk=message_id)
    return message.status, render_message_fragment(message), saved


class RunManager:
    """The runs of this process, its control channel, its heartbeat and its reaper."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.layer = get_channel_layer()
        self.runs: dict[uuid.UUID, Run] = {}
        self.control_channel = ""
        self._client: httpx.AsyncClient | None = None
        self._background: set[asyncio.Task] = set()
        self._control_task: asyncio.Task | None = None
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
            await db(
                services.worker_heartbeat, worker_id=WORKER_ID, hostname=HOSTNAME, pid=os.getpid()
            )
            await self.reap()
            self._spawn(self._heartbeat_loop())
            self._started = True

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Save every run still going as interrupted, with its text, then stop."""
        runs = list(self.runs.values())
        for run in runs:
            run.stop("interrupted")
        tasks = [run.task for run in runs if run.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        if self._control_task is not None:
            # Ask the control loop to return rather than cancel its blocking receive:
            # channels-redis may then sit out its 5 s pop before the task ends.
            with contextlib.suppress(Exception):
                await self.layer.send(self.control_channel, {"type": "manager.close"})
                await asyncio.wait_for(asyncio.shield(self._control_task), 1.0)
        background = list(self._background)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._started = False

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = new_http_client()
        return self._client

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        # A fresh context: runs must not inherit the request's (its thread-sensitive executor
        # is shut down when the request ends).
        task = self.loop.create_task(coro, context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- runs --

    async def launch(
        self, *, message_id: uuid.UUID, route: str, request: ChatRequest, prefix: str = ""
    ) -> Run:
        """Start the generation for a pending assistant message saved by `services.turn_start`
        (or put back to pending by `services.turn_continue`: then `prefix` is the text it
        already has, and what the upstream sends is appended to it, offsets and all).

        Returns once the run can receive Stop, so a Stop pressed right after Send is not lost.
        """
        await self.start()
        if message_id in self.runs:
            return self.runs[message_id]  # a replayed submit: it is already running
        run = Run(self, message_id=message_id, route=route, request=request, prefix=prefix)
        self.runs[message_id] = run
        await self.layer.group_add(control_group(message_id), self.control_channel)
        run.task = self._spawn(run.main())
        return run

    async def request_stop(self, message_id: uuid.UUID) -> None:
        run = self.runs.get(message_id)
        if run is not None:
            run.stop("stopped")
            return
        await self.layer.group_send(
            control_group(message_id), {"type": "run.stop", "message": message_id.hex}
        )

    async def request_snapshot(self, message_id: uuid.UUID, *, after: int, reply_to: str) -> None:
        """Ask the run (here or on another worker) for its text after `after`; the answer
        arrives on `reply_to` as `stream.snapshot`."""
        run = self.runs.get(message_id)
        if run is not None:
            await self.layer.send(reply_to, run.snapshot(after))
            return
        await self.layer.group_send(
            control_group(message_id),
            {"type": "run.sync", "message": message_id.hex, "after": after, "reply_to": reply_to},
        )

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
            if message["type"] == "manager.close":
                return
            try:
                run = self.runs.get(uuid.UUID(message["message"]))
                if run is None:
                    continue
                if message["type"] == "run.stop":
                    run.stop("stopped")
                elif message["type"] == "run.sync":
                    await self.layer.send(message["reply_to"], run.snapshot(int(message["after"])))
            except Exception:
                log.exception("bad control message %r", message.get("type"))

    # -- liveness --

    async def reap(self) -> None:
        """Mark runs of dead workers interrupted and tell their watchers."""
        ids = await db(
            services.runs_reap,
            live_worker_id=WORKER_ID,
            stale_after=self.config["worker_stale_after"],
            hostname=HOSTNAME,
        )
        for message_id in ids:
            await self.announce_end(message_id)

    async def announce_end(self, message_id: uuid.UUID) -> None:
        message = await db(Message.objects.select_related("conversation").get, pk=message_id)
        html = await db(render_message_fragment, message)
        await self.layer.group_send(
            stream_group(message_id),
            {
                "type": "stream.end",
                "event": terminal_event_name(message.status),
                "html": html,
                "end": len(message.content),
            },
        )

    async def _heartbeat_loop(self) -> None:
        interval = self.config["heartbeat_interval"]
        while True:
            await asyncio.sleep(interval)
            try:
                await db(
                    services.worker_heartbeat,
                    worker_id=WORKER_ID,
                    hostname=HOSTNAME,
                    pid=os.getpid(),
                )
                await self.reap()
            except Exception:
                log.exception("worker heartbeat failed; retrying in %s s", interval)


class Run:
    """One generation. See the module docstring for the protocol it speaks."""

    def __init__(
        self,
        manager: RunManager,
        *,
        message_id: uuid.UUID,
        route: str,
        request: ChatRequest,
        prefix: str = "",
    ) -> None:
        self.manager = manager
        self.layer = manager.layer
        self.message_id = message_id
        self.route = route
        self.request = request
        self.group = stream_group(message_id)
        self.task: asyncio.Task | None = None
        self._inner: asyncio.Task | None = None
        self.stop_reason: str | None = None

        # The answer so far: pieces in order; `_published_parts` of them have been framed.
        # A continued answer starts with the text it had, already published and saved.
        self._parts: list[str] = [prefix] if prefix else []
        self._published_parts = len(self._parts)
        self.length = len(prefix)
        self.published = len(prefix)
        self._reasoning: list[str] = []
        self._status_text = ""
        self._status_published = ""
        self._dirty = asyncio.Event()
        self._publish_lock = asyncio.Lock()

        self.info = ResponseInfo()
        self.usage: Usage | None = None
        self.finish: Finish | None = None
        self.extras: dict[str, Any] = {}

        self.started = time.monotonic()
        self.first_token_at: float | None = None
        self._saved_length = len(prefix)
        self._saved_reasoning = 0
        self._last_checkpoint = self.started
        self._checkpoint_timer: asyncio.TimerHandle | None = None
        self._checkpoint_task: asyncio.Task | None = None

    # -- control --

    def stop(self, reason: str) -> None:
        """Stop ("stopped") or shutdown ("interrupted"): cancel the upstream stream; the text
        so far is saved with that status."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self._inner is not None and not self._inner.done():
            self._inner.cancel()

    def snapshot(self, after: int) -> dict[str, Any]:
        text = "".join(self._parts)
        after = max(0, min(after, len(text)))
        return {
            "type": "stream.snapshot",
            "o": after,
            "t": text[after:],
            "status": self._status_text,
        }

    # -- the run --

    async def main(self) -> None:
        try:
            outcome = await self._execute()
        except Exception:
            log.exception("generation run for %s crashed", self.message_id)
            outcome = self._outcome(
                Message.Status.FAILED,
                error_code="internal",
                error_message="Something went wrong on this server while writing the answer.",
            )
        try:
            await self._finalise(outcome)
        finally:
            self.manager.runs.pop(self.message_id, None)
            with contextlib.suppress(Exception):
                await self.layer.group_discard(
                    control_group(self.message_id), self.manager.control_channel
                )

    async def _execute(self) -> services.Outcome:
        provider = provider_for(self.route, client=self.manager.client())
        publisher = asyncio.create_task(self._publisher())
        self._inner = asyncio.create_task(self._generate(provider))
        if self.stop_reason is not None:  # Stop arrived before the run began
            self._inner.cancel()
        try:
            await self._inner
            reason = (self.finish.raw or self.finish.reason) if self.finish else ""
            return self._outcome(Message.Status.COMPLETE, finish_reason=reason)
        except asyncio.CancelledError:
            if self.stop_reason is None or not self._inner.cancelled():
                raise
            if self.stop_reason == "stopped":
                return self._outcome(Message.Status.STOPPED, finish_reason="stopped")
            return self._outcome(
                Message.Status.INTERRUPTED,
                error_code="interrupted",
                error_message=services.INTERRUPTED_MESSAGE,
            )
        except ProviderError as exc:
            log.warning(
                "run %s failed: %s %s (%s)", self.message_id, exc.code, exc.status, exc.detail[:300]
            )
            return self._outcome(
                Message.Status.FAILED,
                error_code=exc.code,
                error_message=exc.message,
                upstream_request_id=exc.upstream_request_id,
            )
        finally:
            # Never cancel a frame half-sent: a lost frame would leave watchers with a gap.
            async with self._publish_lock:
                publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

    async def _generate(self, provider: Any) -> None:
        attempts = self.manager.config["retry_attempts"]
        attempt = 1
        while True:
            try:
                async for event in provider.stream(self.request):
                    self._on_event(event)
                return
            except ProviderError as exc:
                # Once text has been shown, a retry would repeat or contradict it.
                if self.length or not exc.retryable or attempt >= attempts:
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = self.manager.config["retry_backoff"] * 2 ** (attempt - 1)
                delay = min(delay, self.manager.config["retry_max_wait"])
                attempt += 1
                # Nothing of a failed attempt may stick to the answer of the next one.
                self.extras, self.usage, self.finish = {}, None, None
                self._reasoning.clear()
                self._set_status(f"{exc.message} Trying again (attempt {attempt} of {attempts})…")
                await asyncio.sleep(delay)

    def _on_event(self, event: Any) -> None:
        """The per-token path: append and wake the publisher; no I/O, no allocation beyond the
        piece itself."""
        kind = type(event)
        if kind is TextDelta:
            text = event.text
            if not text:
                return
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
                self._status_text = ""
            self._parts.append(text)
            self.length += len(text)
            self._dirty.set()
        elif kind is ReasoningDelta:
            self._reasoning.append(event.text)
        elif kind is Usage:
            self.usage = event
        elif kind is Finish:
            self.finish = event
        elif kind is ResponseInfo:
            self.info = ResponseInfo(
                request_id=event.request_id or self.info.request_id,
                response_id=event.response_id or self.info.response_id,
                model=event.model or self.info.model,
            )
        elif kind is ProviderExtras:
            _deep_merge(self.extras, event.data)
        elif kind is Status:
            self._set_status(event.text)

    def _set_status(self, text: str) -> None:
        self._status_text = text
        self._dirty.set()

    # -- publishing and checkpoints --

    async def _publisher(self) -> None:
        interval = self.manager.config["frame_interval"]
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with self._publish_lock:
                await self._publish()
            await asyncio.sleep(interval)

    async def _publish(self) -> None:
        if self._status_text != self._status_published:
            self._status_published = self._status_text
            await self.layer.group_send(
                self.group, {"type": "stream.status", "text": self._status_text}
            )
        if self.published < self.length:
            pending = self._parts[self._published_parts :]
            text = pending[0] if len(pending) == 1 else "".join(pending)
            # Keep one piece per frame, so snapshots and checkpoints join few strings.
            self._parts[self._published_parts :] = [text]
            self._published_parts = len(self._parts)
            start, self.published = self.published, self.length
            await self.layer.group_send(self.group, {"type": "stream.delta", "o": start, "t": text})
            self._schedule_checkpoint()

    def _schedule_checkpoint(self) -> None:
        if self._checkpoint_timer is not None or (
            self._checkpoint_task is not None and not self._checkpoint_task.done()
        ):
            return
        due = self._last_checkpoint + self.manager.config["checkpoint_interval"]
        self._checkpoint_timer = self.manager.loop.call_at(
            self.manager.loop.time() + max(0.0, due - time.monotonic()), self._checkpoint
        )

    def _checkpoint(self) -> None:
        self._checkpoint_timer = None
        if self._saved_length >= self.length:
            return
        self._last_checkpoint = time.monotonic()
        text = "".join(self._parts)
        reasoning = "".join(self._reasoning)
        saving = (len(text), len(reasoning))
        self._checkpoint_task = asyncio.ensure_future(
            db(
                services.message_checkpoint,
                message_id=self.message_id,
                content_tail=text[self._saved_length :],
                reasoning_tail=reasoning[self._saved_reasoning :],
            )
        )
        self._checkpoint_task.add_done_callback(lambda task: self._checkpoint_done(task, saving))

    def _checkpoint_done(self, task: asyncio.Task, saving: tuple[int, int]) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            # Nothing advanced: the next checkpoint appends from the last saved offset, and
            # the final save writes the whole text anyway.
            log.warning("checkpoint of %s failed: %s", self.message_id, task.exception())
            self._schedule_checkpoint()
            return
        self._saved_length, self._saved_reasoning = saving
        if self._saved_length < self.length:  # text arrived while this one was saving
            self._schedule_checkpoint()

    async def _finalise(self, outcome: services.Outcome) -> None:
        if self._checkpoint_timer is not None:
            self._checkpoint_timer.cancel()
            self._checkpoint_timer = None
        if self._checkpoint_task is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint_task
        await self._publish()  # the last frame, so the delta stream is complete
        status, html, saved = await self._save_with_retries(outcome)
        if not saved:
            log.warning("run %s finished after its message was already %s", self.message_id, status)
        await self.layer.group_send(
            self.group,
            {
                "type": "stream.end",
                "event": terminal_event_name(status),
                "html": html,
                "end": self.length,
            },
        )

    async def _save_with_retries(self, outcome: services.Outcome) -> tuple[str, str, bool]:
        # A database blip at the very end must not lose a finished answer.
        delay = 0.2
        for attempt in range(8):
            try:
                return await db(_finish_and_render, self.message_id, outcome)
            except OperationalError:
                if attempt == 7:
                    raise
                log.warning("saving %s failed; retrying in %.1f s", self.message_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _outcome(self, status: str, **fields: Any) -> services.Outcome:
        now = time.monotonic()
        usage = self.usage or Usage()
        fields.setdefault("upstream_request_id", None)
        return services.Outcome(
            status=status,
            content="".join(self._parts),
            reasoning="".join(self._reasoning),
            model_reported=self.info.model or "",
            upstream_request_id=fields.pop("upstream_request_id") or self.info.request_id or "",
            upstream_response_id=self.info.response_id or "",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            total_tokens=usage.total_tokens,
            credits_used=usage.credits_used,
            usd_spent=usage.usd_spent,
            ttft_ms=round((self.first_token_at - self.started) * 1000)
            if self.first_token_at is not None
            else None,
            duration_ms=round((now - self.started) * 1000),
            provider_extras=self.extras or None,
            **fields,
        )


def _deep_merge(into: dict[str, Any], data: Any) -> None:
    for key, value in dict(data).items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


# --- Entry points for synchronous views ------------------------------------------------------
#
# Views are synchronous: under ASGI Django then runs the whole middleware chain in one thread,
# where an async view behind its middleware pays two thread switches per middleware. These hop
# once onto the server's event loop (asgiref's async_to_sync, from the request's thread).


def launch(*, message_id: uuid.UUID, route: str, request: ChatRequest, prefix: str = "") -> None:
    async def _launch() -> None:
        await manager().launch(message_id=message_id, route=route, request=request, prefix=prefix)

    async_to_sync(_launch)()


def request_stop(message_id: uuid.UUID) -> None:
    async def _stop() -> None:
        await manager().request_stop(message_id)

    async_to_sync(_stop)()


# --- The process's manager --------------------------------------------------------------------

_manager: RunManager | None = None


def manager() -> RunManager:
    """The RunManager of the running event loop (a new loop - e.g. in tests - gets a new one)."""
    global _manager
    loop = asyncio.get_running_loop()
    if _manager is None or _manager.loop is not loop:
        _manager = RunManager()
    return _manager
