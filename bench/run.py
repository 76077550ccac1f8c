"""`make bench`: the benchmark harness.

Starts the fake upstream (stamped, paced replies) and the app under an ASGI server, and
measures each scenario side by side with a direct client reading the same upstream in the
same run. Writes bench/results/<stamp>.json, a Markdown report and a latency chart.

    python -m bench.run                     # everything, SQLite + in-memory layer
    python -m bench.run --quick             # a few minutes, smaller ladders
    python -m bench.run --only S1,S2 --server granian
    python -m bench.run --database-url postgres://postgres@127.0.0.1:5432/bench \\
                        --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from . import report
from .client import Session
from .procs import (
    PYTHON,
    ROOT,
    AppConfig,
    Process,
    new_workdir,
    prepare_app,
    remove_workdir,
    start_app,
    start_fake,
)
from .streams import compare, disconnect_keeps_answer, probe_seconds, stop_and_disconnect

RESULTS = ROOT / "bench" / "results"

FULL = {
    "S1": [(1000, 50.0), (1000, 250.0)],
    "S2": [1, 50, 200, 500],
    "S2_gemini": 1000,
    "S6": ["250:250", "1000:250", "4000:250", "1000:50"],
}
QUICK = {
    "S1": [(200, 50.0), (500, 250.0)],
    "S2": [1, 50, 200],
    "S2_gemini": 200,
    "S6": ["250:250", "1000:250", "500:50"],
}


def _ramp(count: int) -> float:
    # At most ~100 new streams per second, as real traffic arrives, not a thundering herd.
    return max(0.0, count / 100.0)


async def stream_scenarios(
    args: argparse.Namespace, plan: dict[str, Any], fake: Process, app: Process
) -> dict[str, Any]:
    session = Session("127.0.0.1", app.port)
    await session.sign_up(f"bench-{uuid.uuid4().hex[:8]}")
    # Warm up, as a server that has served one request is: imports, templates, connections.
    await compare(fake=fake, app=app, session=session, count=4, tokens=20, rate=100.0, ttft=0.05)
    out: dict[str, Any] = {}
    if "S1" in args.only:
        out["S1"] = []
        for tokens, rate in plan["S1"]:
            print(f"S1: one stream, {tokens} tokens at {rate:g} tok/s", flush=True)
            out["S1"].append(
                await compare(
                    fake=fake, app=app, session=session, count=1, tokens=tokens, rate=rate
                )
            )
    if "S2" in args.only:
        out["S2"] = []
        for count in plan["S2"]:
            ramp = _ramp(count)
            # Every stream overlaps every other for the probes' duration and then some.
            tokens = int(50 * (ramp + probe_seconds() + 2))
            print(
                f"S2: {count} concurrent streams at 50 tok/s ({tokens} tokens, ramp {ramp:g} s)",
                flush=True,
            )
            out["S2"].append(
                await compare(
                    fake=fake,
                    app=app,
                    session=session,
                    count=count,
                    tokens=tokens,
                    rate=50.0,
                    probe=True,
                    ramp=ramp,
                )
            )
        if count := plan["S2_gemini"]:
            ramp = _ramp(count)
            tokens = int(50 * (ramp + 6))
            print(f"S2: {count} Gemini-style streams (8 tokens per chunk) at 50 tok/s", flush=True)
            out["S2_gemini"] = await compare(
                fake=fake,
                app=app,
                session=session,
                count=count,
                tokens=tokens,
                rate=50.0,
                chunk=8,
                ramp=ramp,
            )
    if "S4" in args.only:
        print("S4: Stop and browser disconnect", flush=True)
        out["S4"] = {
            "stop": await stop_and_disconnect(fake=fake, session=session),
            "disconnect": await disconnect_keeps_answer(session=session),
        }
    return out


def script(module: str, env: dict[str, str], *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", module, *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller ladders (a few minutes)")
    parser.add_argument(
        "--only", default="S1,S2,S4,S6,S8,S9,S10,S11,S12,S13", help="comma-separated scenarios"
    )
    parser.add_argument(
        "--server", default="uvicorn", help="uvicorn | uvicorn-asyncio | granian | daphne"
    )
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--redis-url", default="", help="Redis URL (default: in-memory layer)")
    parser.add_argument("--env", action="append", default=[], help="extra app setting, NAME=VALUE")
    parser.add_argument("--name", default="", help="label for this run in the results")
    parser.add_argument(
        "--ladder",
        default="",
        help="S2 rungs only, e.g. 200 or 200,200,200 (to compare a change); no Gemini rung",
    )
    args = parser.parse_args(argv)
    args.only = {item.strip().upper() for item in args.only.split(",")}
    plan = dict(QUICK if args.quick else FULL)
    if args.ladder:
        plan["S2"] = [int(count) for count in args.ladder.split(",")]
        plan["S2_gemini"] = 0

    workdir = new_workdir()
    extra = dict(item.split("=", 1) for item in args.env)
    results: dict[str, Any] = {
        "name": args.name or ("quick" if args.quick else "full"),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {
            "server": args.server,
            "database": "postgresql" if args.database_url else "sqlite",
            "channel_layer": "redis" if args.redis_url else "in-memory",
            "extra_env": extra,
        },
    }
    fake = start_fake(workdir)
    config = AppConfig(
        fake_port=fake.port,
        server=args.server,
        database_url=args.database_url,
        redis_url=args.redis_url,
        extra_env=extra,
    )
    app: Process | None = None
    try:
        env = prepare_app(config, workdir)
        if args.only & {"S1", "S2", "S4"}:
            app = start_app(config, workdir, env)
            results.update(asyncio.run(stream_scenarios(args, plan, fake, app)))
            app.stop()
            app = None
        if "S6" in args.only:
            print("S6: statements and bytes written per streamed message", flush=True)
            results["S6"] = script("bench.writes", env, *plan["S6"])
        if "S8" in args.only:
            print("S8: history pages", flush=True)
            results["S8"] = script("bench.history", env)
        if "S10" in args.only:
            print("S10: rendering CPU per answer, streamed and whole", flush=True)
            results["S10"] = script("bench.render", env)
        if "S11" in args.only:
            print("S11: search over 100,000 messages", flush=True)
            results["S11"] = script("bench.search", env)
        if "S13" in args.only:
            print("S13: the Usage page over a year of 100,000 answers", flush=True)
            results["S13"] = script("bench.usage", env)
        if "S12" in args.only:
            from . import exchange

            print("S12: exporting every conversation (100,000 messages)", flush=True)
            results["S12"] = exchange.run(config, workdir, env)
        if "S9" in args.only:
            from . import browser

            if Path(browser.CHROMIUM).exists():
                print("S9: browser main thread", flush=True)
                results["S9"] = browser.run(config, workdir, env, fake)
            else:
                print(f"S9 skipped: {browser.CHROMIUM} is missing (apt-get install chromium)")
    finally:
        if app is not None:
            app.stop()
        fake.stop()
        with contextlib.suppress(Exception):
            remove_workdir(workdir)

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    base = RESULTS / f"{stamp}-{results['name']}"
    Path(f"{base}.json").write_text(json.dumps(results, indent=2))
    markdown = report.render(results, chart=report.chart(results, Path(f"{base}-latency.png")))
    Path(f"{base}.md").write_text(markdown)
    print(markdown)
    print(f"\nwrote {base}.json, {base}.md")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
