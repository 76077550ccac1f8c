"""Database calls from async code: the generation runs' writes and the SSE consumers' reads.

They run on a small pool of dedicated threads that keep their connections open. Channels'
`database_sync_to_async` closes and reopens the connection around every call when
CONN_MAX_AGE is 0 (on SQLite that also replays the PRAGMAs): at 150 streams that was 17% of
the server's CPU for one-row checkpoint UPDATEs (bench/, profiled). One thread for SQLite, which
serialises writers anyway; a few for PostgreSQL, each holding one pooled connection.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connections

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _threads() -> int:
    return 1 if connections["default"].vendor == "sqlite" else 4


def executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="chat-db")
        return _executor


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
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor(), functools.partial(_call, fn, args, kwargs))


def on_every_thread(fn: Callable[[], Any]) -> None:
    """Run `fn` once on each database thread (tests: install query logging, close connections
    before the test database is dropped)."""
    pool = executor()
    count = pool._max_workers
    barrier = threading.Barrier(count)

    def each() -> None:
        barrier.wait(timeout=10)  # every thread takes exactly one of these
        fn()

    for future in [pool.submit(each) for _ in range(count)]:
        future.result(timeout=20)
