"""A paired A/B of the server CPU a short turn costs, for changes smaller than the machine's
drift (docs/ARCHITECTURE.md, "The cost of a turn").

On a machine whose speed moves by ±20% within minutes (seen here: the same tree measured 15.3
and 18.8 ms a turn in runs a minute apart), two runs one after the other cannot show a 3%
change. Here two servers run at once on one fake upstream, A and B, each from its own source
tree and settings, and the turns alternate between them in blocks (B first in every other
round), so what the machine does in the meantime falls on both alike. Each block's CPU is its
server's, from its CPU clock (`procs.cpu_s`: nanoseconds, not clock ticks). The figure to
read is the ratio B/A: its median and quartiles over the rounds, and the ratio of the sums.
Run A against itself first to see the noise: on the 2-core VM this was written on, 0.98-1.00.

    python -m bench.ab                                    # this tree against itself
    python -m bench.ab --b ../other-checkout              # another tree (a git worktree)
    python -m bench.ab --env-b CHAT_REQUEST_CONCURRENCY=1 # the same tree, other settings

A turn is the peers bench's short turn (`bench.targets.short_prompt`): the send POST of a new
conversation and its stream read to `done`, titles off. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .client import Session
from .procs import (
    ROOT,
    AppConfig,
    Process,
    cpu_s,
    new_workdir,
    prepare_app,
    remove_workdir,
    start_app,
    start_fake,
)
from .targets import short_prompt


@dataclass
class Side:
    name: str
    root: Path
    env: dict[str, str]
    process: Process | None = None
    session: Session | None = None
    blocks: list[float] = field(default_factory=list)  # ms of CPU per turn, one per block

    async def turn(self) -> None:
        assert self.session is not None
        _, path, t0 = await self.session.send(short_prompt())
        result = await self.session.stream(path, t0)
        if result.terminal != "done":
            raise RuntimeError(f"{self.name}: answer ended with {result.terminal or result.error}")

    async def block(self, turns: int) -> None:
        assert self.process is not None
        # `done` comes after the final save; what follows it (closing the stream, the
        # connections) settles in these pauses, so each block counts its own turns' tails.
        await asyncio.sleep(0.15)
        before = cpu_s(self.process.proc.pid)
        for _ in range(turns):
            await self.turn()
        await asyncio.sleep(0.15)
        self.blocks.append((cpu_s(self.process.proc.pid) - before) * 1000 / turns)


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {value!r}")
        out[name] = setting
    return out


def summary(a: list[float], b: list[float]) -> dict[str, float]:
    ratios = [y / x for x, y in zip(a, b, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "a_ms": round(statistics.median(a), 3),
        "b_ms": round(statistics.median(b), 3),
        "ratio_median": round(statistics.median(ratios), 4),
        "ratio_q1": round(quartiles[0], 4),
        "ratio_q3": round(quartiles[2], 4),
        "ratio_of_sums": round(sum(b) / sum(a), 4),
    }


async def measure(a: Side, b: Side, *, rounds: int, block: int, warm: int) -> dict[str, float]:
    for side in (a, b):
        assert side.process is not None
        side.session = Session("127.0.0.1", side.process.port)
        await side.session.sign_up(f"ab-{side.name}-{uuid.uuid4().hex[:6]}")
    for _ in range(warm):  # imports, templates, connections, on both alike
        await a.turn()
        await b.turn()
    for index in range(rounds):
        for side in (a, b) if index % 2 == 0 else (b, a):
            await side.block(block)
    return summary(a.blocks, b.blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--a", type=Path, default=ROOT, help="source tree A (default: this)")
    parser.add_argument("--b", type=Path, default=ROOT, help="source tree B (default: this)")
    parser.add_argument("--env-a", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--env-b", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block", type=int, default=20, help="turns per block")
    parser.add_argument("--warm", type=int, default=20, help="turns on each before measuring")
    args = parser.parse_args(argv)
    try:
        env_a, env_b = _pairs(args.env_a), _pairs(args.env_b)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    workdir = new_workdir()
    fake = start_fake(workdir)
    sides = [
        Side("a", args.a.resolve(), env_a),
        Side("b", args.b.resolve(), env_b),
    ]
    try:
        for side in sides:
            var_dir = workdir / side.name
            var_dir.mkdir()
            config = AppConfig(
                fake_port=fake.port, extra_env={"CHAT_TITLE_MODEL": "off", **side.env}
            )
            env = prepare_app(config, var_dir, root=side.root)
            side.process = start_app(config, var_dir, env, root=side.root)
        result = asyncio.run(measure(*sides, rounds=args.rounds, block=args.block, warm=args.warm))
    finally:
        for side in sides:
            if side.process is not None:
                side.process.stop()
        fake.stop()
        remove_workdir(workdir)
    print(
        json.dumps(
            {
                "a": {"root": str(sides[0].root), "env": env_a},
                "b": {"root": str(sides[1].root), "env": env_b},
                "rounds": args.rounds,
                "block": args.block,
                **result,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
