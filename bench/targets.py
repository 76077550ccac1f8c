"""What every target of `bench.peers` shares: the model it is asked for, the prompts, a server
started as a process tree (its CPU and memory from /proc), a clean environment for a peer,
and the `Target` base class that this app, LiteLLM and Open WebUI implement.

Its own module so that each target's module imports it and `bench.peers` imports the targets:
data flows one way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import ClassVar

from .client import StreamResult
from .procs import TICKS, Process, Usage, cpu_s, wait_for_port
from .streams import prompt

MODEL = "google/gemini-2.5-flash"


def stream_prompt() -> str:
    return prompt(300, 50.0, 1, 0.3)


def short_prompt() -> str:
    return prompt(10, 1000.0, 1, 0.0)


# --- CPU and memory of a process tree --------------------------------------------------------


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def tree_pids(pid: int) -> list[int]:
    parents = _parents()
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(children.get(current, ()))
    return pids


def tree_usage(pid: int) -> Usage:
    """User + system CPU of a process and all its descendants (the finished ones' through
    their parents' cutime/cstime), and the sum of their resident memory."""
    cpu, rss = 0.0, 0
    for member in tree_pids(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        # Its own CPU to the nanosecond, and its finished children's in clock ticks.
        cpu += cpu_s(member, fields) + (int(fields[13]) + int(fields[14])) / TICKS
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
    return Usage(cpu, rss)


class TreeProcess(Process):
    """A target server: its usage is its whole process tree's."""

    group: bool = False  # started in a session of its own: stop the whole group

    def usage(self) -> Usage:
        return tree_usage(self.proc.pid)

    def stop(self) -> None:
        if not self.group:
            super().stop()
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def start_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    workdir: Path,
    port: int,
    timeout: float = 60,
) -> TreeProcess:
    log = workdir / f"{name}-{port}.log"
    proc = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = TreeProcess(name, port, proc, log)
    server.group = True
    try:
        wait_for_port(port, proc, timeout)
    except Exception as exc:
        server.stop()
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{exc}; log: {' | '.join(tail)[-300:]}") from None
    return server


def peer_env(venv: Path, home: Path) -> dict[str, str]:
    """A clean environment for a peer: no proxies (nothing may leave the machine), nothing of
    this app's settings."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "TERM")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["HOME"] = str(home)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["VIRTUAL_ENV"] = str(venv)
    home.mkdir(parents=True, exist_ok=True)
    return env


# --- The targets -----------------------------------------------------------------------------


class Target:
    """One server under test: started fresh for each rep on the shared fake upstream."""

    key: ClassVar[str]
    label: ClassVar[str]
    stateless: ClassVar[bool] = False
    # What the report should say about how this target was driven.
    notes: ClassVar[list[str]] = []

    def __init__(self, fake: Process, workdir: Path, venv: Path | None) -> None:
        self.fake = fake
        self.workdir = workdir
        self.venv = venv
        self.process: TreeProcess | None = None

    def start(self, rep: int) -> TreeProcess:
        raise NotImplementedError

    async def setup(self) -> None:
        """After the start: sign up, whatever a stream needs."""

    async def stream(self, text: str) -> StreamResult:
        raise NotImplementedError

    async def accept(self, earlier: int, sends: int) -> list[float] | None:
        """Milliseconds from the start of the request that submits a message to its response
        head, `sends` times, with `earlier` messages before it (None: the target keeps none)."""
        return None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
