"""The processes a benchmark run starts: the fake upstream and the app under an ASGI server,
with their CPU time and memory read from /proc."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port} after {timeout} s")


@dataclass
class Usage:
    cpu_s: float
    rss_kb: int


# CPUCLOCK_SCHED, the kernel's per-process CPU clock (what clock_getcpuclockid(3) gives).
_SCHED_CLOCK = 2


def cpu_s(pid: int, stat_fields: list[str] | None = None) -> float:
    """The CPU time a process has used, every thread of it, those that ended too, to the
    nanosecond: its CPU clock. /proc/<pid>/stat counts clock ticks (10 ms here: a quarter of
    a millisecond over the peers bench's 40 turns), and summing each live thread's schedstat
    loses the threads that ended (a thread that ran 0.5 s and ended read 0.05 s). Falls back
    on the ticks if the clock cannot be read."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | _SCHED_CLOCK) / 1e9
    except OSError:
        fields = stat_fields or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


def usage_of(pid: int) -> Usage:
    """CPU time (user + system, `cpu_s`) and resident memory of a process."""
    cpu = cpu_s(pid)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return Usage(cpu, rss)


@dataclass
class Process:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    def usage(self) -> Usage:
        return usage_of(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_fake(workdir: Path) -> Process:
    port = free_port()
    log = workdir / "fake.log"
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "tests.fakes.upstream",
            "--bench",
            "--port",
            str(port),
            "--token-delay",
            "0",
            "--first-token-delay",
            "0",
        ],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, proc)
    return Process("fake", port, proc, log)


@dataclass
class AppConfig:
    fake_port: int
    server: str = "uvicorn"
    database_url: str = ""
    redis_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)


def app_env(config: AppConfig, var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CHAT_", "AIMLAPI_", "GEMINI_", "SEGMIND_"))
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "DJANGO_SECRET_KEY": "bench-not-secret",
            "CHAT_VAR_DIR": str(var_dir),
            "STATIC_ROOT": str(var_dir / "static"),
            "AIMLAPI_API_KEY": "bench",
            "AIMLAPI_BASE_URL": f"http://127.0.0.1:{config.fake_port}/v1",
            # Accounts the benchmark makes can be used at once (no administrator approves them).
            "DJANGO_SIGNUP": "open",
            # The benchmark is one person opening hundreds of streams: lift the per-person caps.
            "CHAT_SENDS_PER_MINUTE": "1000000",
            "CHAT_MAX_ACTIVE_TURNS_PER_USER": "1000000",
            "LOG_LEVEL": "WARNING",
        }
    )
    if config.database_url:
        env["DATABASE_URL"] = config.database_url
    if config.redis_url:
        env["REDIS_URL"] = config.redis_url
    env.update(config.extra_env)
    return env


def prepare_app(config: AppConfig, var_dir: Path, root: Path = ROOT) -> dict[str, str]:
    """Migrate and collect static files once, as `make run` does; `root` is the source tree
    (another checkout's, for `bench.ab`)."""
    env = app_env(config, var_dir)
    for command in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run([PYTHON, "manage.py", *command], cwd=root, env=env, check=True)
    return env


SERVERS = {
    "uvicorn": lambda port: [
        PYTHON,
        "-m",
        "uvicorn",
        "chatapp.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "5",
    ],
    "uvicorn-asyncio": lambda port: [
        PYTHON,
        "-m",
        "uvicorn",
        "chatapp.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "asyncio",
        "--http",
        "h11",
    ],
    "granian": lambda port: [
        PYTHON,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-ws",
        "chatapp.asgi:application",
    ],
    "daphne": lambda port: [
        PYTHON,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "chatapp.asgi:application",
    ],
}


def start_app(
    config: AppConfig,
    var_dir: Path,
    env: dict[str, str],
    port: int | None = None,
    root: Path = ROOT,
) -> Process:
    port = port or free_port()
    log = var_dir / f"app-{port}.log"
    proc = subprocess.Popen(
        SERVERS[config.server](port),
        cwd=root,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, proc)
    return Process(f"app:{config.server}", port, proc, log)


def new_workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    return path


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
