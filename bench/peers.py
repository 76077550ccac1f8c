"""`make bench-peers`: this app beside two peers (LiteLLM's proxy, Open WebUI) on the same fake
upstream, measured with the same lean client.

Each peer is installed, pinned, into a venv of its own under bench/.peers/<name>/ (not a
project dependency; a stamp file makes the install a one-time cost). The fake upstream runs
once; the targets run one at a time on it, each rep in a fresh process (one worker, nothing
else listening). Every latency is *added*: the target minus a direct client reading the fake
in the same rep, same percentile. CPU and memory are the target's whole process tree, from
/proc. A peer that cannot be installed or started is "not measured", and the run goes on.

    python -m bench.peers --peers none --reps 1          # this app only (a few minutes)
    python -m bench.peers --peers litellm,open-webui --reps 3

Writes bench/results/peers-<stamp>.json and .md, and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import (
    Session,
    StreamResult,
    direct_stream,
    openai_stream,
    send_timed,
)
from .peers_openwebui import OpenWebUI
from .procs import (
    ROOT,
    AppConfig,
    Process,
    free_port,
    new_workdir,
    prepare_app,
    remove_workdir,
    start_app,
    start_fake,
)
from .streams import Sampler, describe, percentile, prompt
from .targets import (
    MODEL,
    Target,
    TreeProcess,
    peer_env,
    short_prompt,
    start_server,
    stream_prompt,
)

RESULTS = ROOT / "bench" / "results"
PEERS_HOME = ROOT / "bench" / ".peers"

# What a rep measures (the brief in bench/peers.py's docstring and the report's notes).
SEQUENTIAL = 5  # streams one after another: 300 tokens at 50 tok/s, upstream ttft 0.3 s
BURST = 100  # streams arriving evenly within BURST_RAMP seconds, same script
BURST_RAMP = 1.0
TURNS = 40  # sequential short turns for CPU per turn: 10 tokens, fast, ttft 0
HISTORY_TURNS = 100  # turns sent to seed 200 earlier messages
SENDS = 10  # timed sends at each history size


# --- Installing a peer -----------------------------------------------------------------------


@dataclass(frozen=True)
class PeerPackage:
    name: str
    label: str
    # pip install arguments, one step after another (torch first: the local CPU wheel, so a
    # dependency does not pull a multi-GB CUDA build)
    steps: tuple[tuple[str, ...], ...]
    install_timeout: float = 1800


PACKAGES = {
    "litellm": PeerPackage(
        "litellm",
        "LiteLLM",
        # The newest whose `proxy` extra resolves here: 1.110's needs `litellm-proxy`, 1.109's
        # and 1.108.8+'s a `litellm-proxy-extras` the registry does not have. (1.107.0 was
        # the compromised release.)
        (("litellm[proxy]==1.108.7",),),
    ),
    "open-webui": PeerPackage(
        "open-webui",
        "Open WebUI",
        (("torch==2.13.0",), ("open-webui==0.12.4",)),
        install_timeout=3600,
    ),
}


def _du_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return round(total / 1e6, 1)


def install(package: PeerPackage) -> tuple[Path | None, dict[str, Any]]:
    """The peer's venv (None if it could not be installed) and what the install cost."""
    home = PEERS_HOME / package.name
    venv = home / "venv"
    stamp = home / "installed.json"
    pins = [list(step) for step in package.steps]
    if stamp.exists() and (venv / "bin" / "python").exists():
        with contextlib.suppress(ValueError):
            info = json.loads(stamp.read_text())
            if info.get("pins") == pins:
                return venv, {**info, "reused": True}
    home.mkdir(parents=True, exist_ok=True)
    log = home / "install.log"
    print(f"installing {package.label} into {venv} ({pins})", flush=True)
    started = time.monotonic()
    try:
        with log.open("w") as out:
            if not (venv / "bin" / "python").exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(venv)],
                    check=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            for step in package.steps:
                out.write(f"\n$ pip install {' '.join(step)}\n")
                out.flush()
                done = subprocess.run(
                    [
                        str(venv / "bin" / "python"),
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "--progress-bar",
                        "off",
                        *step,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=package.install_timeout,
                )
                if done.returncode != 0:
                    errors = [
                        line
                        for line in log.read_text(errors="replace").splitlines()
                        if line.startswith("ERROR")
                    ]
                    reason = errors[-1] if errors else f"pip exited {done.returncode}"
                    return None, {"error": f"pip install {' '.join(step)}: {reason}"[:300]}
    except subprocess.TimeoutExpired:
        return None, {"error": f"install took over {package.install_timeout:.0f} s"}
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, {"error": f"install failed: {exc}"[:300]}
    info = {
        "pins": pins,
        "seconds": round(time.monotonic() - started, 1),
        "size_mb": _du_mb(venv),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    stamp.write_text(json.dumps(info, indent=2))
    return venv, {**info, "reused": False}


class ThisApp(Target):
    key = "app"
    label = "this app"
    # Settings of this app's server (`--env NAME=VALUE`), to measure a setting's effect.
    settings: dict[str, str] = {}

    def start(self, rep: int) -> TreeProcess:
        var_dir = self.workdir / f"app-{rep}"
        var_dir.mkdir(parents=True, exist_ok=True)
        # No title request after a first answer: the peers write none here either, and the
        # issue's "turn" is send, stream, run and final save (the title's own cost is
        # reported apart in the closing note).
        config = AppConfig(
            fake_port=self.fake.port, extra_env={"CHAT_TITLE_MODEL": "off", **self.settings}
        )
        env = prepare_app(config, var_dir)
        app = start_app(config, var_dir, env)
        self.process = TreeProcess(app.name, app.port, app.proc, app.log)
        return self.process

    async def setup(self) -> None:
        assert self.process is not None
        self.session = Session("127.0.0.1", self.process.port)
        await self.session.sign_up(f"bench-{uuid.uuid4().hex[:8]}")

    async def stream(self, text: str) -> StreamResult:
        try:
            _, path, t0 = await self.session.send(text)
        except Exception as exc:
            failed = StreamResult(started_ns=time.time_ns())
            failed.error = repr(exc)
            return failed
        return await self.session.stream(path, t0)

    async def _turn(self, conversation: str, parent: str) -> tuple[float, str]:
        """One timed send and its answer read to the end: (ms to head, the answer's id)."""
        head_ms, path, answer, t0 = await send_timed(
            self.session, conversation, short_prompt(), parent
        )
        done = await self.session.stream(path, t0)
        if done.terminal != "done":
            raise RuntimeError(f"answer ended with {done.terminal or done.error!r}")
        return head_ms, answer

    async def accept(self, earlier: int, sends: int) -> list[float] | None:
        times = []
        if earlier == 0:
            # The first message of a conversation (no earlier ones).
            for _ in range(sends):
                head_ms, _ = await self._turn(str(uuid.uuid4()), "")
                times.append(head_ms)
            return times
        # A conversation of `earlier` messages, really sent, then sends that follow its leaf
        # (the `parent` the page carries); each waits for its answer.
        conversation, parent = str(uuid.uuid4()), ""
        for _ in range(earlier // 2):
            _, parent = await self._turn(conversation, parent)
        for _ in range(sends):
            head_ms, parent = await self._turn(conversation, parent)
            times.append(head_ms)
        return times


class LiteLLM(Target):
    key = "litellm"
    label = "LiteLLM"
    stateless = True
    notes = [
        "`litellm --config … --num_workers 1` (Uvicorn), the model `openai/google/gemini-2.5-flash` "
        "at the fake's /v1, a master key (it refuses to start without one), no database, "
        "LITELLM_LOCAL_MODEL_COST_MAP=True; streams are `POST /v1/chat/completions`, stream "
        "true. It keeps its upstream connections alive (this app and the direct client open "
        "one per stream).",
    ]

    master_key = "sk-bench-" + uuid.uuid4().hex + uuid.uuid4().hex

    def start(self, rep: int) -> TreeProcess:
        assert self.venv is not None
        home = self.workdir / f"litellm-{rep}"
        env = peer_env(self.venv, home)
        config = home / "config.yaml"
        config.write_text(
            json.dumps(
                {
                    "model_list": [
                        {
                            "model_name": MODEL,
                            "litellm_params": {
                                "model": f"openai/{MODEL}",
                                "api_base": f"http://127.0.0.1:{self.fake.port}/v1",
                                "api_key": "bench",
                            },
                        }
                    ],
                    "litellm_settings": {"telemetry": False, "drop_params": True},
                    # Every request authenticated, as this app's are (no database: the master
                    # key is the only key).
                    "general_settings": {"master_key": self.master_key},
                }
            )
        )
        env.update(
            {
                # The price map from the package, not from GitHub.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_TELEMETRY": "False",
                "LITELLM_LOG": "ERROR",
                "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
                "DISABLE_ADMIN_UI": "True",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "TIKTOKEN_CACHE_DIR": str(home / "tiktoken"),
            }
        )
        port = free_port()
        command = [
            str(self.venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]
        self.process = start_server("litellm", command, env, home, port, timeout=120)
        return self.process

    async def stream(self, text: str) -> StreamResult:
        assert self.process is not None
        body = json.dumps(
            {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": text}]}
        ).encode()
        return await openai_stream(
            "127.0.0.1",
            self.process.port,
            "/v1/chat/completions",
            body,
            {"Authorization": f"Bearer {self.master_key}"},
        )


TARGETS: dict[str, type[Target]] = {"app": ThisApp, "litellm": LiteLLM, "open-webui": OpenWebUI}


# --- One rep of one target -------------------------------------------------------------------


async def _sequential(
    start_one: Callable[[], Coroutine[Any, Any, StreamResult]],
) -> list[StreamResult]:
    return [await start_one() for _ in range(SEQUENTIAL)]


async def _burst(start_one: Callable[[], Coroutine[Any, Any, StreamResult]]) -> list[StreamResult]:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    tasks: list[asyncio.Task[StreamResult]] = []
    for i in range(BURST):
        delay = begin + BURST_RAMP * i / BURST - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(start_one()))
    return list(await asyncio.gather(*tasks))


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _failures(results: list[StreamResult]) -> int:
    return sum(1 for r in results if r.error or r.terminal not in ("done", "eof"))


async def measure(target: Target, fake: Process) -> dict[str, Any]:
    process = target.process
    assert process is not None
    await target.setup()

    async def direct() -> StreamResult:
        return await direct_stream("127.0.0.1", fake.port, stream_prompt())

    async def via() -> StreamResult:
        return await target.stream(stream_prompt())

    # Warm-up: imports, templates, connections, the models list.
    warm = [await target.stream(prompt(20, 100.0, 1, 0.05)) for _ in range(3)]
    warm += await asyncio.gather(*(target.stream(prompt(20, 100.0, 1, 0.05)) for _ in range(4)))
    if all(r.error or r.first_text_ns is None for r in warm):
        raise RuntimeError(f"no stream works: {warm[0].error or warm[0].terminal}"[:300])
    out: dict[str, Any] = {"warmup_failures": _failures(warm)}

    # One stream at a time.
    d_seq, t_seq = describe(await _sequential(direct)), None
    t_results = await _sequential(via)
    t_seq = describe(t_results)
    out["one_stream"] = {"direct": d_seq, "target": t_seq, "failures": _failures(t_results)}
    out["ttft_1_added_ms"] = _diff(t_seq["ttft_ms"]["p50"], d_seq["ttft_ms"]["p50"])
    out["chunk_p50_1_added_ms"] = _diff(
        t_seq["chunk_latency_ms"]["p50"], d_seq["chunk_latency_ms"]["p50"]
    )
    out["chunk_p99_1_added_ms"] = _diff(
        t_seq["chunk_latency_ms"]["p99"], d_seq["chunk_latency_ms"]["p99"]
    )

    # CPU per sequential short turn.
    await asyncio.sleep(0.5)
    before = process.usage()
    turns = [await target.stream(short_prompt()) for _ in range(TURNS)]
    await asyncio.sleep(0.3)
    out["cpu_ms_per_turn"] = (process.usage().cpu_s - before.cpu_s) * 1000 / TURNS
    out["turn_failures"] = _failures(turns)

    # The burst: 100 streams arriving within a second.
    d_burst = describe(await _burst(direct))
    await asyncio.sleep(1.0)
    idle = process.usage()
    async with Sampler(process) as sampler:
        b_results = await _burst(via)
    t_burst = describe(b_results)
    out["burst"] = {
        "direct": d_burst,
        "target": t_burst,
        "failures": _failures(b_results),
        "cpu_s": sampler.cpu_s,
        "rss_peak_kb": sampler.peak_rss_kb,
    }
    out["ttft_100_added_ms"] = _diff(t_burst["ttft_ms"]["p50"], d_burst["ttft_ms"]["p50"])
    out["chunk_p99_100_added_ms"] = _diff(
        t_burst["chunk_latency_ms"]["p99"], d_burst["chunk_latency_ms"]["p99"]
    )
    out["cpu_ms_per_1000_chunks"] = (
        sampler.cpu_s * 1000 * 1000 / t_burst["chunks"] if t_burst["chunks"] else None
    )
    out["rss_idle_mb"] = idle.rss_kb / 1024
    out["rss_kb_per_stream"] = (sampler.peak_rss_kb - idle.rss_kb) / BURST

    # Accepting a message after 0 and 200 earlier ones.
    if not target.stateless:
        await asyncio.sleep(0.5)
        at0 = await target.accept(0, SENDS)
        at200 = await target.accept(HISTORY_TURNS * 2, SENDS)
        out["accept_ms"] = {"0": at0, str(HISTORY_TURNS * 2): at200}
        out["accept_0_ms"] = percentile(at0, 50) if at0 else None
        out["accept_200_ms"] = percentile(at200, 50) if at200 else None
    out["failures"] = (
        out["one_stream"]["failures"] + out["turn_failures"] + out["burst"]["failures"]
    )
    return out


# --- The report ------------------------------------------------------------------------------


def rows() -> list[tuple[str, str, int]]:
    """(metric, label, digits) of each row of the table."""
    return [
        ("ttft_1_added_ms", "added time to first token p50, 1 stream (ms)", 1),
        ("chunk_p50_1_added_ms", "added chunk latency p50, 1 stream (ms)", 1),
        ("chunk_p99_1_added_ms", "added chunk latency p99, 1 stream (ms)", 1),
        (
            "ttft_100_added_ms",
            f"added time to first token p50, {BURST} streams within {BURST_RAMP:g} s (ms)",
            1,
        ),
        ("chunk_p99_100_added_ms", f"added chunk latency p99, {BURST} streams (ms)", 1),
        ("cpu_ms_per_turn", f"server CPU per sequential short turn ({TURNS} turns, ms)", 2),
        (
            "cpu_ms_per_1000_chunks",
            f"server CPU per 1,000 relayed chunks, {BURST} streams (ms)",
            1,
        ),
        ("rss_idle_mb", "RSS idle, after warm-up (MB)", 1),
        ("rss_kb_per_stream", f"RSS per stream at {BURST} streams (KB)", 1),
        (
            "accept",
            f"accepting a message after 0 → {HISTORY_TURNS * 2} earlier ones, p50 (ms)",
            1,
        ),
        ("failures", "failed streams (all reps)", 0),
    ]


def summarize(reps: list[dict[str, Any]]) -> dict[str, dict[str, float] | None]:
    out: dict[str, dict[str, float] | None] = {}
    keys = {key for rep in reps for key, value in rep.items() if isinstance(value, int | float)}
    for key in sorted(keys):
        values = [rep[key] for rep in reps if isinstance(rep.get(key), int | float)]
        out[key] = (
            None
            if not values
            else {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "n": len(values),
            }
        )
    return out


def _cell(stats: dict[str, float] | None, digits: int) -> str:
    if not stats:
        return "—"
    median, low, high = stats["median"], stats["min"], stats["max"]
    if stats["n"] == 1 or low == high:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def render(results: dict[str, Any]) -> str:
    columns = list(results["targets"].values())
    lines = [
        f"# This app and its peers, {results['date']}",
        "",
        f"{results['reps']} rep(s) per target, each in a fresh process (one worker) on the same "
        f"fake upstream; cells are median (min–max) over the reps. *Added* = target minus a "
        f"direct client reading the fake in the same rep, same percentile. CPU and RSS are the "
        f"target's process tree. {results['machine']['cpus']} cores, Python "
        f"{results['machine']['python']}.",
        "",
        "| | " + " | ".join(col["label"] for col in columns) + " |",
        "|---|" + "---|" * len(columns),
        "| status | " + " | ".join(col["status"] for col in columns) + " |",
    ]
    for key, label, digits in rows():
        cells = []
        for col in columns:
            summary = col.get("summary") or {}
            if not col.get("reps"):
                cells.append("—")
            elif key == "accept":
                if col.get("stateless"):
                    cells.append("— (stateless)")
                else:
                    cells.append(
                        f"{_cell(summary.get('accept_0_ms'), digits)} → "
                        f"{_cell(summary.get('accept_200_ms'), digits)}"
                    )
            elif key == "failures":
                cells.append(str(sum(int(rep.get("failures", 0)) for rep in col["reps"])))
            else:
                cells.append(_cell(summary.get(key), digits))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Notes:",
        f"- 1 stream: {SEQUENTIAL} sequential streams of 300 one-token chunks at 50 tok/s, "
        "upstream time to first token 0.3 s; chunk latency = receive time minus the fake's "
        "stamp in each chunk (how this app coalesces chunks into frames: bench/README.md, "
        "CHAT_STREAM_FRAMES_PER_SECOND).",
        f"- {BURST} streams: the same script, arrivals evenly spread over {BURST_RAMP:g} s; CPU "
        "per 1,000 chunks is the target's CPU over the burst divided by the stamped chunks "
        "received; RSS per stream is (peak − idle) / streams.",
        f"- Short turn: {TURNS} sequential turns of 10 tokens at 1,000 tok/s, ttft 0. For this "
        "app a turn is the send POST plus its SSE stream read to `done`; for a peer, one "
        "streamed chat completion.",
        f"- Accepting a message: p50 of {SENDS} sends, request start to response head. This "
        "app: 0 = the first message of a new conversation, "
        f"{HISTORY_TURNS * 2} = the send POST following the leaf of a conversation of "
        f"{HISTORY_TURNS * 2} messages ({HISTORY_TURNS} turns really sent; the sends follow "
        "one another, so the last has 18 more). Open WebUI: the chat completion its page "
        "sends, carrying the earlier messages (its notes below). LiteLLM keeps no "
        "conversations.",
    ]
    for col in columns:
        for note in col.get("notes", []):
            lines.append(f"- {col['label']}: {note}")
    for name, info in results.get("installs", {}).items():
        if "error" in info:
            lines.append(f"- install {name}: {info['error']}")
        else:
            lines.append(
                f"- install {name}: {info['pins']}, {info['size_mb']:.0f} MB, "
                f"{info['seconds']:.0f} s" + (" (reused)" if info.get("reused") else "")
            )
    return "\n".join(lines) + "\n"


# --- Main ------------------------------------------------------------------------------------


@dataclass
class Column:
    key: str
    label: str
    status: str = "measured"
    stateless: bool = False
    reps: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        status = self.status
        if status == "measured":
            status = f"measured ({len(self.reps)} rep{'s' if len(self.reps) != 1 else ''})"
            if self.errors:
                status += f"; {len(self.errors)} rep(s) failed: {self.errors[0][:120]}"
        return {
            "key": self.key,
            "label": self.label,
            "status": status,
            "stateless": self.stateless,
            "reps": self.reps,
            "summary": summarize(self.reps) if self.reps else None,
            "errors": self.errors,
            "notes": self.notes,
        }


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    return text[:200]


async def _rep(target: Target, fake: Process) -> dict[str, Any]:
    try:
        return await measure(target, fake)
    finally:
        target.stop()


def run_target(target: Target, column: Column, fake: Process, rep: int) -> None:
    print(f"[rep {rep + 1}] {column.label}: starting", flush=True)
    started = time.monotonic()
    try:
        target.start(rep)
    except Exception as exc:
        target.stop()
        column.errors.append(f"did not start: {_one_line(exc)}")
        print(f"[rep {rep + 1}] {column.label}: did not start: {_one_line(exc)}", flush=True)
        return
    print(f"[rep {rep + 1}] {column.label}: up in {time.monotonic() - started:.1f} s", flush=True)
    try:
        result = asyncio.run(_rep(target, fake))
    except Exception as exc:
        column.errors.append(_one_line(exc))
        print(f"[rep {rep + 1}] {column.label}: failed: {_one_line(exc)}", flush=True)
        return
    result["rep_s"] = round(time.monotonic() - started, 1)  # start to stop
    column.reps.append(result)
    print(
        f"[rep {rep + 1}] {column.label}: ttft +{result['ttft_1_added_ms']} ms, "
        f"burst ttft +{result['ttft_100_added_ms']} ms, "
        f"{result['cpu_ms_per_turn']:.2f} ms CPU per turn, "
        f"{result['failures']} failed streams",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--peers",
        default="litellm",
        help="comma-separated: litellm, open-webui; 'none' for this app alone",
    )
    parser.add_argument("--reps", type=int, default=3, help="reps per target (default 3)")
    parser.add_argument("--name", default="", help="label for this run in the results")
    parser.add_argument(
        "--env", action="append", default=[], help="a setting of this app's server, NAME=VALUE"
    )
    args = parser.parse_args(argv)
    bad = [pair for pair in args.env if "=" not in pair]
    if bad:
        parser.error(f"--env takes NAME=VALUE, not {bad[0]!r}")
    ThisApp.settings = dict(pair.split("=", 1) for pair in args.env)
    peers = [p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
    unknown = [p for p in peers if p not in PACKAGES]
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(unknown)} (known: {', '.join(PACKAGES)})")

    columns: dict[str, Column] = {"app": Column("app", ThisApp.label)}
    venvs: dict[str, Path | None] = {"app": None}
    installs: dict[str, dict[str, Any]] = {}
    for name in peers:
        package = PACKAGES[name]
        column = columns[name] = Column(name, package.label)
        venv, info = install(package)
        installs[name] = info
        if venv is None:
            column.status = f"not measured: {info['error']}"[:200]
            print(f"{package.label}: {column.status}", flush=True)
            continue
        venvs[name] = venv
    results: dict[str, Any] = {
        "name": args.name or "peers",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "reps": args.reps,
        "peers": peers,
        "app_settings": ThisApp.settings,
        "installs": installs,
        "script": {
            "sequential": SEQUENTIAL,
            "burst": BURST,
            "burst_ramp_s": BURST_RAMP,
            "turns": TURNS,
            "history_turns": HISTORY_TURNS,
            "sends": SENDS,
        },
    }
    workdir = new_workdir()
    fake = start_fake(workdir)
    targets = {
        key: TARGETS[key](fake, workdir, venvs.get(key))
        for key in columns
        if key == "app" or venvs.get(key) is not None
    }
    for key, target in targets.items():
        columns[key].stateless = target.stateless
    try:
        keys = list(targets)
        for rep in range(args.reps):
            # Each rep starts with the next target, so no target always runs right after the
            # same one: this app's reps that followed Open WebUI's (a ~800 MB process just
            # stopped) cost 13.25 and 14.75 ms a turn, its first 12.25 (2026-12-03).
            shift = rep % len(keys)
            for key in keys[shift:] + keys[:shift]:
                run_target(targets[key], columns[key], fake, rep)
                _settle()
        for key, target in targets.items():
            columns[key].notes.extend(getattr(target, "notes", []))
    finally:
        for target in targets.values():
            target.stop()
        fake.stop()
        with contextlib.suppress(Exception):
            remove_workdir(workdir)

    for column in columns.values():
        if column.status == "measured" and not column.reps:
            reason = column.errors[0] if column.errors else "no rep completed"
            column.status = f"not measured: {reason}"[:200]
    results["targets"] = {key: column.as_dict() for key, column in columns.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    base = RESULTS / f"peers-{stamp}"
    Path(f"{base}.json").write_text(json.dumps(results, indent=2))
    markdown = render(results)
    Path(f"{base}.md").write_text(markdown)
    print()
    print(markdown)
    print(f"wrote {base}.json, {base}.md")
    return 0


def _settle() -> None:
    """Between targets: let the machine go quiet (sockets closing, the fake's tasks)."""
    time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
