"""The pooled threads (chatapp.core.threads): the thread that went idle last takes the next job,
a lane bounds its jobs without holding a thread, and a job's result, error or cancellation
reaches its future."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future

import pytest

from chatapp.core.threads import Lane, WarmThreads


@pytest.fixture
def pool() -> Iterator[WarmThreads]:
    pool = WarmThreads(max_workers=4, thread_name_prefix="test-warm")
    yield pool
    pool.shutdown(wait=True)


def _three_threads_idle_in_turn(pool: WarmThreads) -> list[str]:
    """Start three threads, then let them go idle one after another: their names, in the
    order they went idle (the last is the warmest)."""
    started = threading.Barrier(4, timeout=10)
    gates = [threading.Event() for _ in range(3)]

    def hold(gate: threading.Event) -> str:
        started.wait()
        gate.wait(10)
        return threading.current_thread().name

    futures = [pool.submit(hold, gate) for gate in gates]
    started.wait()  # all three are running: three threads
    names = []
    for count, (gate, future) in enumerate(zip(gates, futures, strict=True), start=1):
        gate.set()
        names.append(future.result(10))
        assert pool.wait_idle(count, timeout=10)
    return names


def test_the_thread_that_went_idle_last_takes_the_next_job(pool):
    idle_in_turn = _three_threads_idle_in_turn(pool)
    assert sorted(idle_in_turn) == ["test-warm_0", "test-warm_1", "test-warm_2"]
    # After a burst started three threads, jobs one at a time stay on the one that went idle
    # last (the standard library's pool hands them round its idle threads in turn).
    ran = []
    for _ in range(10):
        ran.append(pool.submit(lambda: threading.current_thread().name).result(10))
        assert pool.wait_idle(3, timeout=10)
    assert ran == [idle_in_turn[-1]] * 10


def test_jobs_beyond_its_threads_wait_in_order_and_all_run(pool):
    gate = threading.Event()

    def job(i: int) -> int:
        gate.wait(10)
        return i * i

    futures = [pool.submit(job, i) for i in range(10)]
    assert len(pool._threads) == 4  # no more threads than its bound
    assert [queued[2] for queued in pool._queued] == [(i,) for i in range(4, 10)]
    gate.set()
    assert [f.result(10) for f in futures] == [i * i for i in range(10)]


def test_a_lane_runs_at_most_its_limit_at_once_and_the_rest_in_order(pool):
    lane = Lane(1)
    running, most, order = 0, 0, []
    lock = threading.Lock()
    gate = threading.Event()

    def job(i: int) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(10)
        with lock:
            order.append(i)
            running -= 1

    futures = [pool.submit_in(lane, job, i) for i in range(6)]
    # Waiting in a lane holds no thread: another job runs beside them.
    assert pool.submit(lambda: "free").result(10) == "free"
    gate.set()
    for future in futures:
        future.result(10)
    assert most == 1
    assert order == list(range(6))
    assert pool.wait_idle(len(pool._threads), timeout=10)  # each job's thread let go of it
    assert lane.running == 0
    assert not lane.waiting


def test_a_job_cancelled_while_waiting_in_its_lane_never_runs_and_frees_its_turn(pool):
    lane = Lane(1)
    gate = threading.Event()
    ran: list[str] = []
    first = pool.submit_in(lane, lambda: gate.wait(10))
    cancelled = pool.submit_in(lane, lambda: ran.append("cancelled"))
    last = pool.submit_in(lane, lambda: ran.append("last"))
    assert cancelled.cancel()
    gate.set()
    first.result(10)
    assert last.result(10) is None
    assert ran == ["last"]
    with pytest.raises(CancelledError):
        cancelled.result(0)
    assert pool.wait_idle(len(pool._threads), timeout=10)
    assert lane.running == 0


def test_a_jobs_error_reaches_its_future_and_the_thread_goes_on(pool):
    def fails() -> None:
        raise ValueError("the job's own error")

    with pytest.raises(ValueError, match="the job's own error"):
        pool.submit(fails).result(10)
    assert pool.wait_idle(1, timeout=10)
    assert pool.submit(lambda: 42).result(10) == 42
    assert len(pool._threads) == 1


def test_nothing_of_a_job_is_kept_by_its_idle_thread(pool):
    import weakref

    class Payload:
        pass

    payload = Payload()
    ref = weakref.ref(payload)
    future: Future[Payload] = pool.submit(lambda p: p, payload)
    assert future.result(10) is payload
    del payload, future
    assert pool.wait_idle(1, timeout=10)
    assert ref() is None


def test_after_shutdown_its_threads_end_and_it_takes_no_more_jobs():
    pool = WarmThreads(max_workers=3, thread_name_prefix="test-warm")
    _three_threads_idle_in_turn(pool)
    pool.shutdown(wait=True)
    assert not any(thread.is_alive() for thread in pool._threads)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)


def test_a_lane_that_would_run_no_job_is_refused():
    with pytest.raises(ValueError, match="at least one job at a time, not 0"):
        Lane(0)
