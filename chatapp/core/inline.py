"""Run a coroutine in the caller's task until it first suspends, and only then in a task.

A frame handed to an SSE consumer nearly always completes without suspending (the socket takes
it at once). Running it where it was published, rather than queuing it for the consumer's own
task to pick up, saves a queue and a task switch per frame per watcher (docs/ARCHITECTURE.md,
"The cost of a turn"). When the coroutine does suspend (the socket's buffer is full, a long
block renders on a thread), the rest of it goes on in a task, from exactly where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any


def run_inline(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Step `coro` now. None if it finished (an exception it raised propagates); otherwise
    the task that carries it on from where it suspended."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return asyncio.create_task(_Resumed(coro, yielded))


class _Resumed(Coroutine[Any, Any, None]):
    """A started coroutine, as a coroutine a task can run: its first step gives back what the
    coroutine yielded when it suspended (the future it waits on), so the task waits on that
    future; after that everything (values, a cancellation, even one before the task's first
    step) goes straight into the coroutine."""

    def __init__(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded
        self._started = False

    def send(self, value: Any) -> Any:
        if not self._started:
            self._started = True
            return self._yielded
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        self._started = True
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, Any, None]:
        # Awaited rather than run as a task (nothing here does): the same steps.
        try:
            value = self.send(None)
            while True:
                try:
                    sent = yield value
                except BaseException as exc:
                    value = self.throw(exc)
                else:
                    value = self.send(sent)
        except StopIteration:
            return
