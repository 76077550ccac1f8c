"""The generation run: owns one upstream stream, relays it, persists it, finishes it.

A run is detached from the request that started it: it goes on when the browser leaves and
ends only on completion, error, Stop or shutdown (docs/ARCHITECTURE.md, "The flow of one
turn"). It speaks the stream protocol of `turns.protocol`: numbered, coalesced `stream.delta`
frames from one publisher task, a `stream.snapshot` for a late watcher, one `stream.end` after
the final state is saved.

Persistence is bounded (`turns.persistence`): a checkpoint of the new text at most once per
`checkpoint_interval` (and only when text changed) and one UPDATE at the end; never a write
per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from channels.layers import BaseChannelLayer
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from chatapp import rendering
from chatapp.conversations.models import Message
from chatapp.core.db import db
from chatapp.core.inline import run_inline
from chatapp.core.layers import InMemoryChannelLayer
from chatapp.core.logging import secret_in_use
from chatapp.credentials.selectors import KEY_ROUTES, OwnKey, own_key
from chatapp.credentials.services import key_mark_rejected, route_failure_record
from chatapp.providers import provider_for
from chatapp.providers.base import Provider
from chatapp.providers.catalog import ROUTE_LABELS
from chatapp.providers.errors import AuthenticationError, ProviderError
from chatapp.providers.gemini import tools as gemini_tools
from chatapp.providers.logprobs import Kept
from chatapp.providers.types import (
    CandidateDelta,
    CandidateFinish,
    ChatRequest,
    Event,
    Finish,
    Logprobs,
    ProviderExtras,
    ReasoningDelta,
    ResponseInfo,
    Status,
    TextDelta,
    Usage,
    deep_merge,
)

from .fragments import stream_end
from .pacing import FrameBudget, Pacing
from .persistence import Outcome, candidates_insert, message_checkpoint, message_finish
from .protocol import StreamDelta, StreamEnd, StreamSnapshot, StreamStatus, stream_group
from .published import PublishedText
from .workers import INTERRUPTED_MESSAGE

log = logging.getLogger(__name__)

# The errors that say something about a route and the server's key (the Admin page's "Last
# error"): not a prompt the model refused, nor settings it did not take.
ROUTE_ERRORS = frozenset(
    {
        "auth",
        "credits",
        "rate_limited",
        "model_unavailable",
        "upstream_error",
        "timeout",
        "connection",
        "malformed_response",
        "provider_error",
    }
)

SAVE_FAILED = (
    "Something went wrong on this server while saving the answer. The text it had is kept; "
    "press Retry to ask again."
)


def _save_final(
    message_id: uuid.UUID, outcome: Outcome, launched: Message | None = None
) -> tuple[StreamEnd, bool]:
    """On a database thread: render the answer once, save the final state, and build the
    `stream.end` frame from the row as saved: the row the run was launched with and the
    values just written, or, if another worker ended it first (or the run was launched
    without its row), the row read back."""
    # Citations of a grounded answer are marked in its HTML (providers/gemini/tools.py).
    marks = gemini_tools.citations(outcome.provider_extras)
    outcome.content_html = (
        rendering.render_markdown(outcome.content, marks, anchor=gemini_tools.anchor(message_id))
        if outcome.content
        else ""
    )
    outcome.html_version = rendering.RENDERER_VERSION
    if outcome.candidates:
        written = _save_with_candidates(message_id, outcome, launched)
    else:
        written = message_finish(message_id=message_id, outcome=outcome)
    if written is not None and launched is not None:
        message = launched
        for name, value in written.items():
            setattr(message, name, value)
        if outcome.candidates:
            message.versions_known = False  # its candidates are versions beside it now
    else:
        message = Message.objects.get(pk=message_id)
    return stream_end(message), written is not None


def _save_with_candidates(
    message_id: uuid.UUID, outcome: Outcome, launched: Message | None
) -> dict[str, Any] | None:
    """The final save of an answer with other candidates: the answer, then its candidates as
    versions beside it, in one transaction, so the page that ends the stream (and every
    reload) shows "1 / n" at once. Nothing is added to an answer another worker ended."""
    for candidate in outcome.candidates:
        candidate.content_html = (
            rendering.render_markdown(candidate.content) if candidate.content else ""
        )
        candidate.html_version = rendering.RENDERER_VERSION
    with transaction.atomic():
        written = message_finish(message_id=message_id, outcome=outcome)
        if written is not None:
            answer = launched if launched is not None else Message.objects.get(pk=message_id)
            candidates_insert(answer=answer, outcome=outcome, now=written["finished_at"])
    return written


@dataclass(frozen=True, slots=True)
class KeyRead:
    """The person's own key for a run's route as read, `None` when they have none."""

    key: OwnKey | None


def read_key(*, owner_id: int | None, route: str) -> KeyRead:
    """The key a run of `owner_id`'s on `route` uses in preference to the server's: the
    person's own, on a route that takes them. On a thread that may use the database."""
    if owner_id is None or route not in KEY_ROUTES:
        return KeyRead(None)
    return KeyRead(own_key(owner_id=owner_id, route=route))


def _detached_copy(message: Message) -> Message:
    """A shallow copy of a row that shares no mutable state with it: copy.copy() of a model
    pickles it (~60 µs, 4% of a turn's CPU)."""
    copied = Message.__new__(Message)
    copied.__dict__ = dict(message.__dict__)
    state = copy.copy(message._state)
    state.fields_cache = dict(message._state.fields_cache)
    copied.__dict__["_state"] = state
    return copied


# Another candidate's text is bounded as an answer is by its model's output limit (65,536
# tokens at most, some 260,000 characters): an upstream sending more for one is cut here.
CANDIDATE_MAX_CHARS = 1_000_000


class Candidate:
    """Another candidate of the request as it arrives: its text and reasoning, kept apart
    from the answer and from each other (grouped by index, never concatenated)."""

    __slots__ = ("finish", "length", "logprobs", "parts", "reasoning")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.length = 0
        self.finish: Finish | None = None
        self.logprobs = Kept()

    def add(self, text: str, reasoning: str) -> None:
        room = CANDIDATE_MAX_CHARS - self.length
        if text and room > 0:
            self.parts.append(text[:room])
            self.length += min(len(text), room)
        if reasoning and sum(map(len, self.reasoning)) < CANDIDATE_MAX_CHARS:
            self.reasoning.append(reasoning)


class Run:
    """One generation (see the module docstring). It owns nothing beyond its answer: the
    manager gives it the channel layer, the HTTP client and `CHAT_RUN`, and tidies up after it."""

    def __init__(
        self,
        *,
        message_id: uuid.UUID,
        route: str,
        request: ChatRequest | Callable[[], ChatRequest],
        layer: BaseChannelLayer,
        client: httpx.AsyncClient,
        config: Mapping[str, Any],
        prefix: str = "",
        published: PublishedText | None = None,
        message: Message | None = None,
        pacing: Pacing | None = None,
        owner_id: int | None = None,
        frame_interval: float = 0.0,
        key: KeyRead | None = None,
    ) -> None:
        self.layer = layer
        # Whose turn it is: their own key for the route, if they have one, is used in
        # preference to the server's (chatapp/credentials): read as the run begins, unless
        # the view that launched it read it (`key`).
        self.owner_id = owner_id
        self._key = key
        self.pacing = pacing or Pacing(
            free_rate=config["unpaced_chunks_per_second"],
            max_interval=config["max_frame_interval"],
        )
        # The pending row as launched (a copy: the view that launched it goes on rendering
        # its own), for the final fragment without reading it back.
        self._launched = _detached_copy(message) if message is not None else None
        self.published_text = published or PublishedText()
        self._prefix = prefix
        self.client = client
        self.config = config
        self.message_id = message_id
        self.route = route
        # Built on a database thread as the run begins when given as a function: the send's
        # response does not wait for the thread to be read (it grows with the conversation).
        self.request: ChatRequest | None = None if callable(request) else request
        self._build_request = request if callable(request) else None
        self.group = stream_group(message_id)
        self._inner: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None
        # Set once the final state is saved, as the end is published (RunManager.is_going).
        self.ended = False

        # The answer so far: pieces in order; `_published_parts` of them have been framed.
        # A continued answer starts with the text it had, already published and saved.
        self._parts: list[str] = [prefix] if prefix else []
        self._published_parts = len(self._parts)
        self.length = len(prefix)
        self.published = len(prefix)
        self._reasoning: list[str] = []
        self._status_text = ""
        self._status_published = ""
        self._dirty = asyncio.Event()  # wakes the publisher task
        # What the page that started it asked for between frames (turns/pacing.py,
        # `asked_interval`), or the server's cap if longer; 0: every frame at once.
        self._frames = FrameBudget(interval=max(config["min_frame_interval"], frame_interval))
        self._changed = False  # the event just handled changed what watchers see
        self._publish_lock = asyncio.Lock()

        self.info = ResponseInfo()
        self.usage: Usage | None = None
        self.finish: Finish | None = None
        self.extras: dict[str, Any] = {}
        # Token log probabilities of the answer, when asked for (bounded: providers.logprobs).
        self.logprobs: Kept | None = None
        # The request's other candidates, by index: kept apart, never shown while they come,
        # saved as versions of this answer at the final save (docs/ARCHITECTURE.md).
        self.others: dict[int, Candidate] = {}
        # A continued answer keeps what its first part recorded of these.
        extras = message.provider_extras if prefix and message is not None else None
        self._carried = {
            key: extras[key] for key in ("logprobs", "candidate") if extras and key in extras
        }

        self.started = time.monotonic()
        self.first_token_at: float | None = None
        self._saved_length = len(prefix)
        self._saved_reasoning = 0
        self._last_checkpoint = self.started
        self._checkpoint_timer: asyncio.TimerHandle | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        # Set when the final save is under way: the last frame must not schedule a checkpoint
        # (it ran a second after every answer, an UPDATE that matched no active row).
        self._finishing = False

    @property
    def own_key(self) -> OwnKey | None:
        """The person's own key the run sends with (None: the server's), once read."""
        return self._key.key if self._key is not None else None

    @property
    def frame_interval(self) -> float:
        """The seconds its frame budget keeps between frames (0: none)."""
        return self._frames.interval

    # -- control --

    def stop(self, reason: str) -> None:
        """Stop ("stopped") or shutdown ("interrupted"): cancel the upstream stream; the text
        so far is saved with that status."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self._inner is not None and not self._inner.done():
            self._inner.cancel()

    def snapshot(self, after: int) -> StreamSnapshot:
        # Only what has been published: that is what is kept where another worker can read
        # it (turns.published), so a late watcher is never shown text a crash could lose; the
        # rest reaches it in the next frame. (Giving it every part lost text in CI once: the
        # page had "The first half…", the recovered answer "The first".)
        text = "".join(self._parts[: self._published_parts])
        after = max(0, min(after, len(text)))
        return {
            "type": "stream.snapshot",
            "o": after,
            "t": text[after:],
            "status": self._status_text,
        }

    # -- the run --

    async def main(self) -> None:
        with contextlib.ExitStack() as in_use:
            try:
                if self.request is None or self._key is None:
                    await db(self._prepare)
                if self.own_key is not None:
                    # Redacted from every log line while this run holds it (core.logging).
                    in_use.enter_context(secret_in_use(self.own_key.api_key))
                outcome = await self._execute()
            except Exception:
                log.exception("generation run for %s crashed", self.message_id)
                outcome = self._outcome(
                    Message.Status.FAILED,
                    error_code="internal",
                    error_message="Something went wrong on this server while writing the answer.",
                )
        await self._finalise(outcome)

    def _prepare(self) -> None:
        """On a database thread as the run begins: the request (when given as a function)
        and the person's own key for the route (unless given), in one hop."""
        if self.request is None:
            assert self._build_request is not None
            self.request = self._build_request()
        if self._key is None:
            self._key = read_key(owner_id=self.owner_id, route=self.route)

    async def _execute(self) -> Outcome:
        key = self.own_key.api_key if self.own_key is not None else None
        if key is None and self.route not in settings.PROVIDERS:
            # The person's key went (removed, or no longer opens) after the turn was sent.
            label = ROUTE_LABELS.get(self.route, self.route)
            return self._outcome(
                Message.Status.FAILED,
                error_code="auth",
                error_message=f"There is no {label} API key to send this with any more: add "
                "yours on the Your API keys page, or choose another model, and press Retry.",
            )
        provider = provider_for(self.route, client=self.client, api_key=key)
        await self._keep_published(self.published_text.begin, self._prefix)
        publisher = asyncio.create_task(self._publisher())
        self._inner = asyncio.create_task(self._generate(provider))
        if self.stop_reason is not None:  # Stop arrived before the run began
            self._inner.cancel()
        try:
            await self._inner
            reason = self.finish.reason if self.finish else ""
            return self._outcome(Message.Status.COMPLETE, finish_reason=reason)
        except asyncio.CancelledError:
            if self.stop_reason is None or not self._inner.cancelled():
                raise
            if self.stop_reason == "stopped":
                return self._outcome(Message.Status.STOPPED, finish_reason="stopped")
            return self._outcome(
                Message.Status.INTERRUPTED,
                error_code="interrupted",
                error_message=INTERRUPTED_MESSAGE,
            )
        except ProviderError as exc:
            log.warning(
                "run %s failed: %s %s (%s)", self.message_id, exc.code, exc.status, exc.detail[:300]
            )
            message = await self._note_failure(exc, provider)
            return self._outcome(
                Message.Status.FAILED,
                error_code=exc.code,
                error_message=message,
                upstream_request_id=exc.upstream_request_id,
            )
        finally:
            # Never cancel a frame half-sent: a lost frame would leave watchers with a gap.
            async with self._publish_lock:
                publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

    async def _note_failure(self, exc: ProviderError, provider: Provider) -> str:
        """Where a failure is remembered, and what the person is told: a person's own key
        that the upstream refused is marked on their keys page; an error with the server's
        key is the route's last error (the Admin page). Never the key (`provider.redact`)."""
        try:
            if self.own_key is not None and isinstance(exc, AuthenticationError):
                assert self.owner_id is not None
                await db(
                    key_mark_rejected,
                    owner_id=self.owner_id,
                    route=self.route,
                    saved_at=self.own_key.updated_at,
                    message=exc.detail or exc.message,
                    api_key=provider.api_key,
                )
                label = ROUTE_LABELS.get(self.route, self.route)
                return (
                    f"{label} rejected your own API key. Replace it on the Your API keys page "
                    "(or remove it to use this server's key, if it has one)."
                )
            if self.own_key is None and self.route in KEY_ROUTES and exc.code in ROUTE_ERRORS:
                await db(
                    route_failure_record,
                    route=self.route,
                    code=exc.code,
                    message=exc.message,
                    api_key=provider.api_key,
                )
        except Exception:
            log.exception("could not record the failure of %s", self.message_id)
        return exc.message

    async def _generate(self, provider: Provider) -> None:
        attempts = self.config["retry_attempts"]
        attempt = 1
        redact = provider.redact_event
        while True:
            try:
                assert self.request is not None
                inline = self._publishes_inline()
                pacing, dirty = self.pacing, self._dirty
                async for event in provider.stream(self.request):
                    self._on_event(redact(event))
                    if self._changed:
                        self._changed = False
                        if inline and not pacing.current() and not self._frames.wait():
                            # Unpaced: the frame goes out here, and the publisher task is
                            # not woken at all (a task switch per token).
                            self._publish_now()
                        else:
                            dirty.set()
                return
            except ProviderError as exc:
                # Once text has been shown, a retry would repeat or contradict it; once another
                # candidate has some, a retry would drop what was billed.
                if self.length or self.others or not exc.retryable or attempt >= attempts:
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = self.config["retry_backoff"] * 2 ** (attempt - 1)
                delay = min(delay, self.config["retry_max_wait"])
                attempt += 1
                # Nothing of a failed attempt may stick to the answer of the next one.
                self.extras, self.usage, self.finish = {}, None, None
                self.logprobs = None
                self._reasoning.clear()
                self._set_status(f"{exc.message} Trying again (attempt {attempt} of {attempts})…")
                await asyncio.sleep(delay)

    def _on_event(self, event: Event) -> None:
        """The per-token path: append and mark the change (`_generate` publishes it or wakes
        the publisher); no I/O, no allocation beyond the piece itself. Text deltas come
        first: they are nearly every event."""
        match event:
            case TextDelta(text=text):
                if not text:
                    return
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
                    self._status_text = ""
                self._parts.append(text)
                self.length += len(text)
                self.pacing.arrived()
                self._changed = True
            case ReasoningDelta(text=text):
                self._reasoning.append(text)
            case Usage():
                self.usage = event
            case Finish():
                self.finish = event
            case ResponseInfo(request_id=request_id, response_id=response_id, model=model):
                self.info = ResponseInfo(
                    request_id=request_id or self.info.request_id,
                    response_id=response_id or self.info.response_id,
                    model=model or self.info.model,
                )
            case ProviderExtras(data=data):
                deep_merge(self.extras, data)
            case Status(text=text):
                self._status_text = text
                self._changed = True
            case CandidateDelta(index=index, text=text, reasoning=reasoning):
                self._other(index).add(text, reasoning)
            case CandidateFinish(index=index, reason=reason, raw=raw):
                self._other(index).finish = Finish(reason=reason, raw=raw)
            case Logprobs(tokens=tokens, index=index):
                if index:
                    self._other(index).logprobs.add(tokens)
                else:
                    if self.logprobs is None:
                        self.logprobs = Kept()
                    self.logprobs.add(tokens)

    def _other(self, index: int) -> Candidate:
        other = self.others.get(index)
        if other is None:
            other = self.others[index] = Candidate()
        return other

    def _set_status(self, text: str) -> None:
        self._status_text = text
        self._dirty.set()

    # -- publishing and checkpoints --

    def _publishes_inline(self) -> bool:
        """Whether a frame can be published without suspending: the in-process layer, and no
        published text to keep first (turns.published). Then the reading task publishes each
        frame itself, and a Stop can never cancel one half-sent."""
        return isinstance(self.layer, InMemoryChannelLayer) and not self.published_text.active

    def _publish_now(self) -> None:
        """Run `_publish` to its end now (it cannot suspend: see `_publishes_inline`)."""
        carried_on = run_inline(self._publish())
        if carried_on is not None:
            carried_on.cancel()
            raise RuntimeError("an inline publish suspended")

    async def _publisher(self) -> None:
        # A frame as soon as text arrives, unless the process is busy enough that frames
        # are paced (turns/pacing.py): then the text of the interval goes in one frame.
        pacing = self.pacing
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            early = self._frames.wait()
            if early > 0:
                await asyncio.sleep(early)
            async with self._publish_lock:
                await self._publish()
            interval = pacing.current()
            if interval:
                await asyncio.sleep(interval)

    async def _publish(self) -> None:
        if self._status_text != self._status_published:
            self._status_published = self._status_text
            status: StreamStatus = {"type": "stream.status", "text": self._status_text}
            await self.layer.group_send(self.group, status)
        if self.published < self.length:
            pending = self._parts[self._published_parts :]
            text = pending[0] if len(pending) == 1 else "".join(pending)
            # Keep one piece per frame, so snapshots and checkpoints join few strings.
            self._parts[self._published_parts :] = [text]
            self._published_parts = len(self._parts)
            start, self.published = self.published, self.length
            self._frames.spend()
            delta: StreamDelta = {"type": "stream.delta", "o": start, "t": text}
            # Kept before it is sent: what a person sees survives this worker (turns.published).
            if self.published_text.active:
                await self._keep_published(self.published_text.append, text)
            await self.layer.group_send(self.group, delta)
            self._schedule_checkpoint()

    def _schedule_checkpoint(self) -> None:
        if (
            self._finishing
            or self._checkpoint_timer is not None
            or (self._checkpoint_task is not None and not self._checkpoint_task.done())
        ):
            return
        due = self._last_checkpoint + self.config["checkpoint_interval"]
        loop = asyncio.get_running_loop()
        self._checkpoint_timer = loop.call_at(
            loop.time() + max(0.0, due - time.monotonic()), self._checkpoint
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
                message_checkpoint,
                message_id=self.message_id,
                content_tail=text[self._saved_length :],
                reasoning_tail=reasoning[self._saved_reasoning :],
            )
        )
        self._checkpoint_task.add_done_callback(lambda task: self._checkpoint_done(task, saving))

    def _checkpoint_done(self, task: asyncio.Task[None], saving: tuple[int, int]) -> None:
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

    async def _finalise(self, outcome: Outcome) -> None:
        self._finishing = True
        if self._checkpoint_timer is not None:
            self._checkpoint_timer.cancel()
            self._checkpoint_timer = None
        if self._checkpoint_task is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint_task
        try:
            await self._publish()  # the last frame, so the delta stream is complete
        except Exception:
            # Watchers resync by offset from what is saved next; the save must still happen.
            log.exception("the last frame of %s could not be published", self.message_id)
        end, saved = await self._save_with_retries(outcome)
        with contextlib.suppress(Exception):
            await self.published_text.forget(self.message_id)
        if not saved:
            log.warning("run %s finished after its message was already final", self.message_id)
        self.ended = True
        try:
            await self.layer.group_send(self.group, end)
        except Exception:
            # The answer is saved: a watcher that misses this frame finds it final when it
            # next looks at the database (turns.consumer).
            log.exception("the end of %s could not be published", self.message_id)

    async def _keep_published(
        self, step: Callable[[uuid.UUID, str], Awaitable[None]], text: str
    ) -> None:
        try:
            await step(self.message_id, text)
        except Exception:
            # The frame still goes out; only a crash before the next checkpoint would lose it.
            log.warning("could not keep the published text of %s", self.message_id)

    async def _save_with_retries(self, outcome: Outcome) -> tuple[StreamEnd, bool]:
        """Save the final state, whatever goes wrong: a database blip is retried (with
        backoff, until it works or the process stops); anything else about this outcome
        (a value the database refuses) saves it as failed instead, with its text, so no
        answer is left active and its conversation locked."""
        delay, reduced = 0.2, False
        while True:
            try:
                return await db(_save_final, self.message_id, outcome, self._launched)
            except (OperationalError, InterfaceError):
                log.warning("saving %s failed; retrying in %.1f s", self.message_id, delay)
            except Exception:
                if reduced:
                    log.exception("saving %s as failed failed too; retrying", self.message_id)
                else:
                    log.exception("saving %s failed; saving it as failed", self.message_id)
                    outcome, reduced = self._failure(outcome), True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _failure(self, outcome: Outcome) -> Outcome:
        """The outcome reduced to what cannot be refused: the text, no upstream figures (nor
        other candidates, whose values may be what was refused)."""
        return Outcome(
            status=Message.Status.FAILED,
            content=outcome.content,
            reasoning=outcome.reasoning,
            error_code="internal",
            error_message=SAVE_FAILED,
            duration_ms=outcome.duration_ms,
        )

    def _outcome(self, status: str, **fields: Any) -> Outcome:
        now = time.monotonic()
        fields.setdefault("upstream_request_id", None)
        extras = dict(self.extras)
        if self._prefix and extras:
            # A continuation's offsets count from what it sent; the answer starts before it.
            extras = gemini_tools.shifted(extras, len(self._prefix))
        if self.finish is not None and self.finish.raw:
            # The neutral reason is stored on the message; the upstream's own word stays here.
            extras["finish_reason"] = self.finish.raw
        if self.logprobs is not None and (kept := self.logprobs.stored()) is not None:
            extras["logprobs"] = kept
        candidates = self._candidate_outcomes(status, fields) if self.others else []
        if candidates:
            count = self.request.candidates if self.request is not None else len(candidates) + 1
            extras["candidate"] = {"index": 0, "of": count}
        if extras and self._carried:
            # The extras are written whole (none: the row keeps its own, carried included).
            extras = {**self._carried, **extras}
        return Outcome(
            status=status,
            content="".join(self._parts),
            reasoning="".join(self._reasoning),
            model_reported=self.info.model or "",
            upstream_request_id=fields.pop("upstream_request_id") or self.info.request_id or "",
            upstream_response_id=self.info.response_id or "",
            usage=self.usage or Usage(),
            ttft_ms=round((self.first_token_at - self.started) * 1000)
            if self.first_token_at is not None
            else None,
            duration_ms=round((now - self.started) * 1000),
            provider_extras=extras or None,
            route=self.route,
            model=self.request.model if self.request is not None else "",
            own_key=self.own_key is not None,
            candidates=candidates,
            **fields,
        )

    def _candidate_outcomes(self, status: str, fields: Mapping[str, Any]) -> list[Outcome]:
        """The other candidates as they are when the answer ends. One that finished is
        complete with its own finish reason; one cut short shares the answer's ending
        (stopped, failed, interrupted) and keeps its partial text: Stop loses none of what
        was billed. One with nothing at all (no text, no finish) is not saved."""
        count = self.request.candidates if self.request is not None else len(self.others) + 1
        outcomes = []
        for index in sorted(self.others):
            other = self.others[index]
            if not other.parts and not other.reasoning and other.finish is None:
                continue
            extras: dict[str, Any] = {"candidate": {"index": index, "of": count}}
            if other.finish is not None and other.finish.raw:
                extras["finish_reason"] = other.finish.raw
            if (kept := other.logprobs.stored()) is not None:
                extras["logprobs"] = kept
            if other.finish is not None:
                ending: dict[str, Any] = {
                    "status": Message.Status.COMPLETE,
                    "finish_reason": other.finish.reason,
                }
            elif status == Message.Status.COMPLETE:
                # The stream ended without this candidate's finish: ended as far as the
                # upstream is concerned, as an answer's [DONE] without a finish_reason.
                ending = {"status": status, "finish_reason": ""}
            else:
                ending = {
                    "status": status,
                    "finish_reason": fields.get("finish_reason", ""),
                    "error_code": fields.get("error_code", ""),
                    "error_message": fields.get("error_message", ""),
                }
            outcomes.append(
                Outcome(
                    content="".join(other.parts),
                    reasoning="".join(other.reasoning),
                    provider_extras=extras,
                    **ending,
                )
            )
        return outcomes
