"""Stream scenarios against live processes: S1 (one stream), S2 (a concurrency ladder) and S4
(Stop and browser disconnect), each measured side by side with a direct client reading the
same fake upstream in the same run."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .client import Response, Session, StreamResult, direct_stream, request
from .procs import Process


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def prompt(tokens: int, rate: float, chunk: int = 1, ttft: float = 0.3) -> str:
    # A unique tail keeps idempotency keys and titles apart; the fake reads the directive.
    return f"BENCH tokens={tokens} rate={rate} chunk={chunk} ttft={ttft} #{uuid.uuid4().hex[:8]}"


@dataclass
class Sampler:
    """Peak memory and CPU time of a process while a scenario runs."""

    process: Process
    interval: float = 0.1

    async def __aenter__(self) -> Sampler:
        self.start = self.process.usage()
        self.peak_rss_kb = self.start.rss_kb
        self.samples: list[tuple[float, float]] = [(time.time(), self.start.cpu_s)]
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            usage = self.process.usage()
            self.peak_rss_kb = max(self.peak_rss_kb, usage.rss_kb)
            self.samples.append((time.time(), usage.cpu_s))

    def cpu_between(self, start: float, end: float) -> float | None:
        """CPU seconds the process used between two wall-clock times (sample resolution)."""
        inside = [cpu for stamp, cpu in self.samples if start <= stamp <= end]
        if len(inside) < 2:
            return None
        stamps = [stamp for stamp, _ in self.samples if start <= stamp <= end]
        return (inside[-1] - inside[0]) * (end - start) / (stamps[-1] - stamps[0])

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        self.end = self.process.usage()
        self.peak_rss_kb = max(self.peak_rss_kb, self.end.rss_kb)

    @property
    def cpu_s(self) -> float:
        return self.end.cpu_s - self.start.cpu_s


async def _staggered(count: int, ramp: float, start_one) -> list[Any]:
    """Start `count` coroutines spread evenly over `ramp` seconds; gather them."""
    loop = asyncio.get_running_loop()
    begin = loop.time()
    tasks = []
    for i in range(count):
        delay = begin + (ramp * i / count if count > 1 else 0) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(start_one(i)))
    return await asyncio.gather(*tasks)


async def direct_streams(fake: Process, count: int, ramp: float, text: str) -> list[StreamResult]:
    return await _staggered(count, ramp, lambda i: direct_stream("127.0.0.1", fake.port, text))


async def app_streams(session: Session, count: int, ramp: float, text: str) -> list[StreamResult]:
    async def one(i: int) -> StreamResult:
        try:
            _, path, t0 = await session.send(text)
        except Exception as exc:
            failed = StreamResult(started_ns=time.time_ns())
            failed.error = repr(exc)
            return failed
        return await session.stream(path, t0)

    return await _staggered(count, ramp, one)


def describe(results: list[StreamResult]) -> dict[str, Any]:
    ttfts = [r.ttft_ms for r in results if r.ttft_ms is not None]
    latencies = [lat for r in results for lat in r.latencies_ms()]
    return {
        "streams": len(results),
        "errors": sum(1 for r in results if r.error or r.terminal == "error"),
        "error_samples": [r.error for r in results if r.error][:3],
        "ttft_ms": {"p50": percentile(ttfts, 50), "p99": percentile(ttfts, 99)},
        "chunk_latency_ms": {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": max(latencies) if latencies else None,
        },
        "chunks": len(latencies),
        "events": sum(r.events for r in results),
        "duration_s": statistics.median(
            [(r.ended_ns - r.started_ns) / 1e9 for r in results if r.ended_ns]
        ),
    }


def added(app: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    def diff(metric: str, q: str) -> float | None:
        a, d = app[metric][q], direct[metric][q]
        return None if a is None or d is None else a - d

    return {
        "ttft_ms": {"p50": diff("ttft_ms", "p50"), "p99": diff("ttft_ms", "p99")},
        "chunk_latency_ms": {
            "p50": diff("chunk_latency_ms", "p50"),
            "p99": diff("chunk_latency_ms", "p99"),
        },
    }


PROBE = 20


async def _probes(start_one) -> list[StreamResult]:
    """Streams started one after another while the rung's streams run: their time to first
    token is the latency at that concurrency, apart from the burst of arrivals at its start."""
    results = []
    for _ in range(PROBE):
        results.append(await start_one())
    return results


def probe_seconds(ttft: float = 0.3) -> float:
    return PROBE * (ttft + 0.2) + 1.0


async def compare(
    *,
    fake: Process,
    app: Process,
    session: Session,
    count: int,
    tokens: int,
    rate: float,
    chunk: int = 1,
    ramp: float = 0.0,
    ttft: float = 0.3,
    probe: bool = False,
) -> dict[str, Any]:
    """One rung: `count` direct streams, then `count` app streams, same script. With `probe`,
    while each side's streams run, `PROBE` more streams start one at a time (the rung's
    streams must last `probe_seconds()` past the ramp)."""
    text = prompt(tokens, rate, chunk, ttft)
    probe_text = prompt(10, 100.0, 1, ttft)

    async def direct_probe() -> StreamResult:
        return await direct_stream("127.0.0.1", fake.port, probe_text)

    async def app_probe() -> StreamResult:
        _, path, t0 = await session.send(probe_text)
        return await session.stream(path, t0)

    async def with_probes(run, start_one):
        main = asyncio.create_task(run)
        probes: list[StreamResult] = []
        if probe:
            await asyncio.sleep(ramp + 1.0)
            probes = await _probes(start_one)
        return await main, probes

    direct_results, direct_probes = await with_probes(
        direct_streams(fake, count, ramp, text), direct_probe
    )
    direct = describe(direct_results)
    idle = app.usage()
    fake_before, client_before = fake.usage().cpu_s, time.process_time()
    started = time.monotonic()
    async with Sampler(app) as sampler:
        results, app_probes = await with_probes(app_streams(session, count, ramp, text), app_probe)
    elapsed = time.monotonic() - started
    harness = {
        # The fake upstream and this client share the machine with the server.
        "fake_cores": (fake.usage().cpu_s - fake_before) / elapsed,
        "client_cores": (time.process_time() - client_before) / elapsed,
        "server_cores": sampler.cpu_s / elapsed,
    }
    via_app = describe(results)
    upstream_chunks = count * -(-tokens // chunk)
    # Steady state: every stream started and none finished yet (POSTs and connects excluded).
    firsts = [r.first_text_ns / 1e9 for r in results if r.first_text_ns]
    ends = [r.ended_ns / 1e9 for r in results if r.ended_ns]
    steady = None
    if firsts and ends and min(ends) - max(firsts) > 1.5:
        window = (max(firsts) + 0.5, min(ends) - 0.5)
        cpu = sampler.cpu_between(*window)
        if cpu is not None:
            chunks_in_window = count * rate / chunk * (window[1] - window[0])
            steady = {
                "window_s": round(window[1] - window[0], 2),
                "cpu_us_per_upstream_chunk": cpu * 1e6 / chunks_in_window,
                "cpu_cores": cpu / (window[1] - window[0]),
            }
    return {
        "streams": count,
        "tokens": tokens,
        "rate": rate,
        "chunk": chunk,
        "ramp_s": ramp,
        "direct": direct,
        "app": via_app,
        "added": added(via_app, direct),
        "probes": None
        if not probe
        else {
            "direct_ttft_ms": describe(direct_probes)["ttft_ms"],
            "app_ttft_ms": describe(app_probes)["ttft_ms"],
            "added_ttft_ms": added(describe(app_probes), describe(direct_probes))["ttft_ms"],
        },
        "server": {
            "cpu_s": sampler.cpu_s,
            "cpu_us_per_upstream_chunk": sampler.cpu_s * 1e6 / upstream_chunks,
            "cpu_us_per_relayed_frame": sampler.cpu_s * 1e6 / max(1, via_app["events"]),
            "rss_idle_kb": idle.rss_kb,
            "rss_peak_kb": sampler.peak_rss_kb,
            "rss_kb_per_stream": (sampler.peak_rss_kb - idle.rss_kb) / count,
            "steady": steady,
        },
        "harness": harness,
    }


async def stop_and_disconnect(
    *, fake: Process, session: Session, count: int = 10
) -> dict[str, Any]:
    """S4. Stop: how soon the upstream connection closes after the Stop POST, and how many
    upstream chunks are sent meanwhile. Disconnect: closing the browser does NOT stop the
    answer (it is finished and saved); the upstream keeps streaming to the end by design."""
    rate = 50.0
    text = prompt(2000, rate, 1, 0.1)
    started = await asyncio.gather(*(session.send(text) for _ in range(count)))
    # Wait for text on every stream, then press Stop on each.
    await asyncio.gather(*(session.stream(path, t0, until_text=True) for _, path, t0 in started))
    stopped_at: dict[str, float] = {}
    ids = {}
    for conversation, path, _ in started:
        ids[conversation] = path.split("/")[2].replace("-", "")
        stopped_at[conversation] = time.time()
        response: Response = await session.stop(conversation)
        assert response.status == 204, response.status
    # The stream ends with the stopped answer: read each to its terminal event.
    finals = await asyncio.gather(*(session.stream(path, time.time_ns()) for _, path, _ in started))
    log = (await request("127.0.0.1", fake.port, "GET", "/_fake/requests")).body
    import json

    by_id = {entry["client_request_id"]: entry for entry in json.loads(log)}
    close_ms = []
    for conversation, message_hex in ids.items():
        entry = by_id.get(message_hex)
        if entry and entry["closed_at"]:
            close_ms.append((entry["closed_at"] - stopped_at[conversation]) * 1000)
    return {
        "streams": count,
        "stop_to_upstream_close_ms": {
            "p50": percentile(close_ms, 50),
            "max": max(close_ms) if close_ms else None,
            "measured": len(close_ms),
        },
        "upstream_chunks_after_stop_max": None if not close_ms else max(close_ms) / 1000 * rate,
        "terminal_events": sorted({f.terminal for f in finals}),
    }


async def disconnect_keeps_answer(
    *, session: Session, tokens: int = 100, rate: float = 100.0
) -> dict[str, Any]:
    """Close the stream right after the first text; the answer must still complete."""
    _, path, t0 = await session.send(prompt(tokens, rate, 1, 0.05))
    first = await session.stream(path, t0, until_text=True)  # closes the connection after
    again = await session.stream(path, time.time_ns())  # waits for the terminal event
    return {
        "first_text": first.first_text_ns is not None,
        "terminal_after_reconnect": again.terminal,
        "answer_complete": again.terminal == "done",
    }
