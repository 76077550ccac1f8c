"""The threads that run this process's synchronous Django code for the event loop: request
views, and the database work of runs and stream consumers (`core.db`). One pool for both, which
hands each job to the thread that went idle last (docs/ARCHITECTURE.md, "The cost of a turn").

Two pools of their own (a request pool and a database pool) ran each turn on two threads: the
send on one, the run's final save on the other. One warm thread doing both costs less: on the
peers bench's short turn, B/A 0.963, 0.956 and 0.964 of CPU (`bench.ab`, 40 rounds each), ~0.4
ms a turn. The standard library's pool hands jobs round its idle threads in turn (seen here:
one job at a time, after three threads were started, alternated between two of them), which
would lose that once a burst had started more than one thread, hence "last idle first".

A lane bounds how many of its jobs run at once, without holding a thread: a job over the
bound waits in the lane, and the thread that finishes one of the lane's jobs runs the next at
once. The database lane keeps SQLite's writers to one thread, as a pool of one did."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any], "Lane | None"]


class Lane:
    """At most `limit` of its jobs run at once; the others wait, in order."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a lane runs at least one job at a time, not {limit}")
        self.limit = limit
        self.running = 0
        self.waiting: deque[_Job] = deque()


class _Worker:
    __slots__ = ("job", "wake")

    def __init__(self, job: _Job | None) -> None:
        self.job = job
        self.wake = threading.Lock()
        self.wake.acquire()  # released to hand it a job (or None: stop)


class WarmThreads(Executor):
    """A pool of up to `max_workers` threads, started as they are needed (none at first),
    each kept for the life of the process with its database connection; the thread that went
    idle last takes the next job."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # a stack: the last one idle is the warmest
        self._queued: deque[_Job] = deque()  # jobs no thread was free for
        self._threads: list[threading.Thread] = []
        self._shutdown = False
        self._went_idle = threading.Condition(self._lock)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self.submit_in(None, fn, *args, **kwargs)

    def submit_in(
        self, lane: Lane | None, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> Future[T]:
        """`submit`, bounded by `lane` (None: only by the pool's threads)."""
        future: Future[T] = Future()
        job: _Job = (future, fn, args, kwargs, lane)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new jobs after shutdown")
            if lane is not None:
                if lane.running >= lane.limit:
                    lane.waiting.append(job)
                    return future
                lane.running += 1
            self._dispatch(job)
        return future

    def _dispatch(self, job: _Job) -> None:
        """Under the lock: the job to the warmest idle thread, a new one, or the queue."""
        if self._idle:
            worker = self._idle.pop()
            worker.job = job
            worker.wake.release()
        elif len(self._threads) < self._max_workers:
            thread = threading.Thread(
                target=self._work,
                args=(_Worker(job),),
                name=f"{self._prefix}_{len(self._threads)}",
                # Joined at shutdown (`shutdown`); a daemon, so that a job still running at
                # interpreter exit (the lifespan has ended every run by then) cannot hang it.
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        else:
            self._queued.append(job)

    def _work(self, worker: _Worker) -> None:
        job = worker.job
        while job is not None:
            future, fn, args, kwargs, lane = job
            job = None
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            # Nothing of the job is kept while idle (a request's objects are freed with its
            # response, tests/core/test_request_threads.py).
            del future, fn, args, kwargs
            with self._lock:
                if lane is not None:
                    if lane.waiting:
                        job = lane.waiting.popleft()  # its slot passes to the next
                    else:
                        lane.running -= 1
                if job is None and self._queued:
                    job = self._queued.popleft()
                if job is None:
                    if self._shutdown:
                        return
                    worker.job = None
                    self._idle.append(worker)
                    self._went_idle.notify_all()
            if job is None:
                worker.wake.acquire()
                job = worker.job

    def wait_idle(self, count: int, timeout: float) -> bool:
        """Until at least `count` threads are idle (False if `timeout` seconds pass first): a
        thread reports a job's result before it is free for the next."""
        with self._lock:
            return self._went_idle.wait_for(lambda: len(self._idle) >= count, timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for job in self._queued:
                    job[0].cancel()
                self._queued.clear()
            idle, self._idle = self._idle, []
            threads = list(self._threads)
        for worker in idle:
            worker.job = None
            worker.wake.release()
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


# Eight for requests (views at once are bounded apart, `CHAT_REQUEST_CONCURRENCY`; the rest
# close streamed responses and send Django's request signals) and four for database work.
SYNC_THREADS = WarmThreads(max_workers=12, thread_name_prefix="chat-sync")
