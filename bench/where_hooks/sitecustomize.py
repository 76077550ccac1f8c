"""Loaded by the app's Python when `python -m bench.where` starts it (this directory on its
PYTHONPATH), and only then: times named functions in the server's own threads.

Each function in BENCH_WHERE (`module:Qualified.name`, comma-separated) is replaced, where it is
looked up (the module's or the class's attribute), by a wrapper that adds the CPU time of its
calling thread (`time.thread_time_ns`) while it runs: for a coroutine or an async generator,
only while one of its steps runs, not while it waits, so a function that awaits the database
thread is not charged for that thread's work. Times are inclusive (a function counts what it
calls). `CursorWrapper.execute` is also split by statement. SIGUSR2 starts the count afresh,
SIGUSR1 writes it to BENCH_WHERE_OUT as `name<TAB>ns<TAB>calls` lines, after a
`#thread<TAB>id<TAB>name` line per thread.

Sampling profilers mislead here: py-spy's `--gil` mode, on this project's 2-core VM, put 36% of
a single stream's event loop in one line of markdown-it, which runs six times a stream at ~7 µs
a call when its calls are timed (bench/README.md).
"""

from __future__ import annotations

import collections
import functools
import importlib
import inspect
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

_STATS: collections.defaultdict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
_SQL_CHARS = 100  # of a statement, to tell statements apart


class _Timed:
    """An awaitable that drives `awaitable` and adds the CPU time of each of its steps."""

    __slots__ = ("_it", "_stat")

    def __init__(self, awaitable: Any, stat: list[int]) -> None:
        self._it = awaitable.__await__()
        self._stat = stat

    def __await__(self) -> Generator[Any, Any, Any]:
        it, stat = self._it, self._stat
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.thread_time_ns()
            try:
                step = it.throw(error) if error is not None else it.send(value)
            except StopIteration as done:
                stat[0] += time.thread_time_ns() - started
                return done.value
            except BaseException:
                stat[0] += time.thread_time_ns() - started
                raise
            stat[0] += time.thread_time_ns() - started
            try:
                value, error = (yield step), None
            except BaseException as thrown:  # handed on to the coroutine
                value, error = None, thrown


def _sync(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    stat = _STATS[name]
    per_statement = name.endswith("CursorWrapper.execute")

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        own = stat
        if per_statement and len(args) > 1:
            own = _STATS[f"{name} {' '.join(str(args[1]).split())[:_SQL_CHARS]}"]
        started = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            own[0] += time.thread_time_ns() - started
            own[1] += 1

    return timed


def _coroutine(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    stat = _STATS[name]

    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        stat[1] += 1
        return await _Timed(fn(*args, **kwargs), stat)

    return timed


def _generator(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    stat = _STATS[name]

    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        stat[1] += 1
        inner = fn(*args, **kwargs)
        try:
            while True:
                try:
                    item = await _Timed(inner.__anext__(), stat)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            await inner.aclose()

    return timed


def _install(spec: str) -> None:
    module_name, _, qualname = spec.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, attr = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    fn = inspect.getattr_static(owner, attr)
    if isinstance(fn, staticmethod | classmethod):
        raise SystemExit(f"bench.where: {spec} is a {type(fn).__name__}; time its caller")
    if inspect.isasyncgenfunction(fn):
        wrapped = _generator(spec, fn)
    elif inspect.iscoroutinefunction(fn):
        wrapped = _coroutine(spec, fn)
    else:
        wrapped = _sync(spec, fn)
    setattr(owner, attr, wrapped)


# With BENCH_WHERE_CALLS, every call is counted too, by function (Python's) or by name (a
# builtin's), in every thread: exact where CPU is not. A change smaller than `bench.ab` can
# tell (a few percent) still shows here as the work it removes. The hook makes the process a
# few times slower, so its CPU figures are not comparable with a run without it.
_CALLS: collections.Counter[tuple[str, str]] = collections.Counter()


def _count_call(frame: Any, event: str, arg: Any) -> None:
    if event == "call":
        code = frame.f_code
        _CALLS[(code.co_filename, code.co_name)] += 1
    elif event == "c_call":
        _CALLS[("", getattr(arg, "__qualname__", "?"))] += 1


def _dump_calls(target: str) -> None:
    sys.setprofile(None)  # this thread's writing is not a turn's
    while True:
        try:
            # Other threads go on counting; a collection during the copy may run their code.
            counted = sorted(_CALLS.items(), key=lambda item: -item[1])
            break
        except RuntimeError:  # the dictionary changed size meanwhile: copy again
            continue
    with open(f"{target}.calls", "w") as out:
        for (filename, name), count in counted:
            out.write(f"{count}\t{filename}\t{name}\n")
    sys.setprofile(_count_call)


def _dump(*_: Any) -> None:
    # Written whole, then renamed: the driver reads the file as soon as it exists.
    target = os.environ["BENCH_WHERE_OUT"]
    if os.environ.get("BENCH_WHERE_CALLS"):
        _dump_calls(target)  # before the file the driver waits for
    with open(f"{target}.part", "w") as out:
        for thread in threading.enumerate():  # the OS shows every thread as "python"
            out.write(f"#thread\t{thread.native_id}\t{thread.name}\n")
        for name, (ns, calls) in sorted(_STATS.items()):
            if calls:
                out.write(f"{name}\t{ns}\t{calls}\n")
    os.replace(f"{target}.part", target)


def _reset(*_: Any) -> None:
    for stat in _STATS.values():
        stat[0] = stat[1] = 0
    _CALLS.clear()


def _install_when_ready(specs: list[str]) -> None:
    # After the app has imported itself (chatapp.asgi defines `application` last), so that
    # the wrappers replace what its modules defined, not what a later import would.
    while getattr(sys.modules.get("chatapp.asgi"), "application", None) is None:
        time.sleep(0.01)
    problem = ""
    try:
        for spec in specs:
            _install(spec)
    except (ImportError, AttributeError, SystemExit) as exc:
        problem = f"bench.where: cannot time {spec}: {exc}"
    with open(os.environ["BENCH_WHERE_OUT"] + ".ready", "w") as ready:
        ready.write(problem)


if os.environ.get("BENCH_WHERE"):
    signal.signal(signal.SIGUSR1, _dump)
    signal.signal(signal.SIGUSR2, _reset)
    if os.environ.get("BENCH_WHERE_CALLS"):
        sys.setprofile(_count_call)
        threading.setprofile(_count_call)
    threading.Thread(
        target=_install_when_ready,
        args=([s for s in os.environ["BENCH_WHERE"].split(",") if s],),
        daemon=True,
    ).start()
