"""Database calls from async code: the generation runs' writes and the SSE consumers' reads.

They run on the process's pooled threads (`core.threads`, shared with request views), which
keep their connections open. Channels' `database_sync_to_async` closes and reopens the
connection around every call when CONN_MAX_AGE is 0 (on SQLite that also replays the PRAGMAs):
at 150 streams that was 17% of the server's CPU for one-row checkpoint UPDATEs (bench/,
profiled). One call at a time for SQLite, which serialises writers anyway; a few for
PostgreSQL, each holding one pooled connection (the database lane).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connections

from .threads import SYNC_THREADS, Lane

T = TypeVar("T")

_lane: Lane | None = None
_lock = threading.Lock()


def _calls_at_once() -> int:
    return 1 if connections["default"].vendor == "sqlite" else 4


def lane() -> Lane:
    """The bound on database calls running at once (`_calls_at_once`), set on first use: the
    database's vendor is known only once settings are."""
    global _lane
    if _lane is not None:
        return _lane
    with _lock:
        if _lane is None:
            _lane = Lane(_calls_at_once())
        return _lane


def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError):
        # A broken connection (database restarted) is replaced on the next call.
        for conn in connections.all(initialized_only=True):
            conn.close()
        raise


async def db(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a synchronous ORM function on a database thread and await its result."""
    future = SYNC_THREADS.submit_in(lane(), _call, fn, args, kwargs)
    return await asyncio.wrap_future(future)


def on_every_thread(fn: Callable[[], Any]) -> None:
    """Run `fn` once on each pooled thread, starting them all (tests: install query logging,
    close connections before the test database is dropped)."""
    pool = SYNC_THREADS
    count = pool._max_workers
    barrier = threading.Barrier(count)

    def each() -> None:
        barrier.wait(timeout=10)  # every thread takes exactly one of these
        fn()

    for future in [pool.submit(each) for _ in range(count)]:
        future.result(timeout=20)
