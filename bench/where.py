"""Where a short turn's CPU goes: the CPU of each of the server's threads per turn, and of named
functions in them, counted exactly rather than sampled (docs/ARCHITECTURE.md, "The cost of a
turn").

    python -m bench.where                          # the default functions, 200 turns
    python -m bench.where --turns 400 --tokens 1   # a one-token answer
    python -m bench.where --env CHAT_STREAM_PEAK_FRAMES_PER_SECOND=30  # an app setting
    python -m bench.where --functions chatapp.turns.limits:check_rate,chatapp.rendering:render_markdown
    python -m bench.where --calls 40               # also every call a turn makes, counted

A turn is the peers bench's short turn (`bench.targets.short_prompt`: the send POST of a new
conversation and its stream read to `done`, titles off). The server runs with
`bench/where_hooks` on its PYTHONPATH, whose `sitecustomize` wraps each named function where
it is looked up (so name it where its callers find it: `chatapp.turns.services:check_rate`
is what `turn_start` calls, `chatapp.turns.limits:check_rate` is not) and counts the CPU time
of the thread running it, inclusive of what it calls; a coroutine or async generator is
charged only for its own steps. Every SQL statement is counted apart. The wrappers cost a
little themselves (~1 µs a call), so the threads' totals read a few percent high.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

from .client import Session
from .procs import ROOT, AppConfig, new_workdir, prepare_app, remove_workdir, start_app, start_fake
from .targets import prompt

HOOKS = ROOT / "bench" / "where_hooks"

_UVICORN = "uvicorn.protocols.http.httptools_impl"
# What one turn does, by thread: the send view and the run's database work (a pooled thread,
# one for both when idle: core.threads), the two requests, the upstream call and the relay
# (the event loop).
DEFAULT_FUNCTIONS = [
    # the send's view (a pooled thread)
    "chatapp.asgi:SyncChainASGIHandler._get_response_here",
    "django.contrib.auth:get_user",
    "django.forms.forms:BaseForm.full_clean",
    "chatapp.turns.services:turn_start",
    "chatapp.turns.services:check_rate",
    "chatapp.turns.services:check_budget",
    "chatapp.turns.services:_conversation_for_turn",
    "chatapp.turns.services:_insert_turn",
    "chatapp.web.views.turns:_articles",
    "chatapp.web.views.turns:_ensure_running",
    # the run's database work (a pooled thread)
    "chatapp.turns.run:Run._prepare",
    "chatapp.turns.run:own_key",
    "chatapp.turns.run:_save_final",
    "chatapp.turns.run:message_finish",
    "chatapp.turns.run:stream_end",
    "chatapp.rendering:render_markdown",
    # event loop
    f"{_UVICORN}:HttpToolsProtocol.data_received",
    f"{_UVICORN}:RequestResponseCycle.run_asgi",
    f"{_UVICORN}:RequestResponseCycle.send",
    "chatapp.turns.consumer:SSEConsumer.__call__",
    "chatapp.turns.manager:RunManager.launch",
    "chatapp.turns.run:Run._generate",
    "chatapp.turns.run:Run._finalise",
    "chatapp.providers.openai_compat:OpenAICompatProvider.stream",
    "httpx._client:AsyncClient.send",
    "chatapp.turns.consumer:MessageStreamConsumer.stream_delta",
    "chatapp.turns.consumer:MessageStreamConsumer.stream_end",
    # every statement, wherever it runs
    "django.db.backends.utils:CursorWrapper.execute",
]


def _threads(pid: int) -> dict[str, int]:
    """Each thread's CPU so far, in ns, by its id (schedstat, as `bench.ab` reads it)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[task.name] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return out


def _written(path: Path) -> bool:
    return path.exists()


def _text(path: Path) -> str:
    return path.read_text()


async def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not _written(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not install its timers in {timeout:.0f} s")
        await asyncio.sleep(0.05)


def _where(filename: str) -> str:
    """A function's file as a short name: its path in the project or under site-packages."""
    if not filename:
        return "(builtin)"
    for anchor in ("/site-packages/", f"{ROOT}/"):
        if anchor in filename:
            return filename.split(anchor, 1)[1]
    return "stdlib/" + Path(filename).name if "/lib/python" in filename else filename


def _package(where: str) -> str:
    """What calls are summed by: django's and chatapp's subpackages, any other top level."""
    parts = where.split("/")
    return "/".join(parts[:2]) if parts[0] in ("django", "chatapp", "stdlib") else parts[0]


def calls_report(path: Path, turns: int, top: int) -> str:
    """The calls a turn makes (`--calls`): in all, by package, and the most frequent."""
    rows = []
    for line in _text(path).splitlines():
        count, filename, name = line.split("\t")
        rows.append((int(count) / turns, _where(filename), name))
    python = sum(count for count, where, _ in rows if where != "(builtin)")
    builtin = sum(count for count, where, _ in rows if where == "(builtin)")
    lines = [f"\ncalls a turn: {python:,.0f} of Python functions, {builtin:,.0f} of builtins"]
    packages: dict[str, float] = {}
    for count, where, _ in rows:
        packages[_package(where)] = packages.get(_package(where), 0.0) + count
    lines.append("\nby package (calls a turn)")
    for name, count in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {count:9,.1f}  {name}")
    lines.append("\nfunctions (calls a turn)")
    for count, where, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"  {count:9,.1f}  {where}:{name}")
    return "\n".join(lines)


async def measure(
    pid: int, port: int, out: Path, turns: int, tokens: int, warm: int, top_calls: int = 0
) -> str:
    ready = Path(f"{out}.ready")
    await _wait_for(ready)
    if problem := _text(ready):
        raise SystemExit(problem)
    session = Session("127.0.0.1", port)
    await session.sign_up(f"where-{uuid.uuid4().hex[:6]}")

    async def turn() -> None:
        _, path, t0 = await session.send(prompt(tokens, 1000.0, 1, 0.0))
        result = await session.stream(path, t0)
        if result.terminal != "done":
            raise RuntimeError(f"answer ended with {result.terminal or result.error}")

    for _ in range(warm):  # imports, templates, connections
        await turn()
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGUSR2)
    await asyncio.sleep(0.1)
    before = _threads(pid)
    for _ in range(turns):
        await turn()
    await asyncio.sleep(0.3)  # what follows `done` (closing the stream) settles
    after = _threads(pid)
    os.kill(pid, signal.SIGUSR1)
    await _wait_for(out, timeout=5.0)

    names, rows = {}, []
    for line in _text(out).splitlines():
        name, value, calls = line.split("\t")
        if name == "#thread":
            names[value] = calls
        else:
            rows.append((int(value) / 1e6 / turns, int(calls) / turns, name))
    spent = {tid: (ns - before.get(tid, 0)) / 1e6 / turns for tid, ns in after.items()}
    lines = [f"{turns} turns of {tokens} tokens: {sum(spent.values()):.3f} ms of CPU a turn"]
    lines.append("\nthreads (ms of CPU a turn)")
    for tid, ms in sorted(spent.items(), key=lambda kv: -kv[1]):
        if ms >= 0.01:
            lines.append(f"  {ms:7.3f}  {names.get(tid, 'thread ' + tid)}")
    lines.append("\nfunctions (ms of CPU a turn, calls a turn; inclusive)")
    for spent, count, name in sorted(rows, reverse=True):
        lines.append(f"  {spent:7.3f}  {count:6.2f}  {name}")
    if top_calls:
        lines.append(calls_report(Path(f"{out}.calls"), turns, top_calls))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.where", description=__doc__)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=10, help="tokens an answer streams")
    parser.add_argument("--warm", type=int, default=30, help="turns before counting")
    parser.add_argument(
        "--functions",
        default=",".join(DEFAULT_FUNCTIONS),
        help="module:Qualified.name, comma-separated (default: a turn's main parts)",
    )
    parser.add_argument("--env", action="append", default=[], help="extra app setting, NAME=VALUE")
    parser.add_argument(
        "--calls",
        type=int,
        default=0,
        metavar="N",
        help="also count every call a turn makes and show the N most frequent (exact, but the "
        "counting slows the server: its CPU figures then compare only with each other)",
    )
    args = parser.parse_args(argv)
    workdir = new_workdir()
    fake = start_fake(workdir)
    out = workdir / "where.tsv"
    var_dir = workdir / "app"
    var_dir.mkdir()
    config = AppConfig(
        fake_port=fake.port,
        extra_env={
            **dict(item.split("=", 1) for item in args.env),
            "CHAT_TITLE_MODEL": "off",
            "PYTHONPATH": str(HOOKS),
            "BENCH_WHERE": args.functions,
            "BENCH_WHERE_OUT": str(out),
            **({"BENCH_WHERE_CALLS": "1"} if args.calls else {}),
        },
    )
    app = None
    try:
        env = prepare_app(config, var_dir)
        app = start_app(config, var_dir, env)
        print(
            asyncio.run(
                measure(app.proc.pid, app.port, out, args.turns, args.tokens, args.warm, args.calls)
            )
        )
    finally:
        if app is not None:
            app.stop()
        fake.stop()
        remove_workdir(workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
