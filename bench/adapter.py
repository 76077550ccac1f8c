"""The upstream read path alone: CPU per chunk of the real adapters reading the fake upstream.

    python -m bench.adapter                      # 200 streams x 300 chunks, both routes
    python -m bench.adapter --streams 50 --transport httpx
    python -m bench.adapter --image-mb 3          # also: the loop's longest stall per image turn

No app, no database, no channel layer: the adapter (`provider.stream`) is iterated to the
end in this process, under uvloop as Uvicorn runs it, and the process's CPU time is divided by
the text chunks it yielded. This is the per-token share of the relay that does not depend on
how many browsers watch, so changes to the HTTP client, the SSE parser or an adapter's hot
path are measured here first, with less noise than the whole-app ladder (S2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from .procs import new_workdir, remove_workdir, start_fake
from .streams import prompt

# The model each route is asked for; the fake answers any.
MODELS = {"aimlapi": "google/gemini-2.5-flash", "gemini": "gemini-2.5-flash"}


def _setup_django(fake_port: int) -> None:
    """The app's settings, with both streaming routes pointed at the fake upstream, so the
    adapters are built as the app builds them (`provider_for`)."""
    base = f"http://127.0.0.1:{fake_port}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="chatapp.settings",
        AIMLAPI_API_KEY="bench-key",
        AIMLAPI_BASE_URL=f"{base}/v1",
        GEMINI_API_KEY="bench-key",
        GEMINI_BASE_URL=f"{base}/v1beta",
    )
    import django

    django.setup()


async def _one_round(route: str, transport: str, streams: int, tokens: int) -> dict:
    from chatapp.providers import provider_for
    from chatapp.providers.http import new_http_client
    from chatapp.providers.types import ChatMessage, ChatRequest, TextDelta

    client = new_http_client(transport=transport)
    provider = provider_for(route, client=client)
    model = MODELS[route]
    # 50 tok/s, one token per chunk: the S2 ladder's load, the adapter's worst case per token.
    ramp = streams / 100.0

    async def one(i: int) -> int:
        await asyncio.sleep(ramp * i / streams)
        request = ChatRequest(
            model=model,
            messages=(ChatMessage.of_text("user", prompt(tokens, 50.0, ttft=0.05)),),
        )
        count = 0
        async for event in provider.stream(request):
            if type(event) is TextDelta:
                count += 1
        return count

    cpu, wall = time.process_time(), time.monotonic()
    counts = await asyncio.gather(*(one(i) for i in range(streams)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    await client.aclose()
    chunks = sum(counts)
    return {"chunks": chunks, "cpu_s": cpu, "wall_s": wall, "us_per_chunk": cpu / chunks * 1e6}


async def _image_stall(route: str, megabytes: float, earlier: int = 200) -> float:
    """The event loop's longest stall, in ms, while a request with an image of `megabytes`
    and `earlier` messages before it is sent, up to its first event: what every other
    stream's next chunk waits at most (a probe that wakes every millisecond measures it)."""
    from chatapp.providers import provider_for
    from chatapp.providers.http import new_http_client
    from chatapp.providers.types import ChatMessage, ChatRequest, ImagePart, TextPart

    client = new_http_client()
    provider = provider_for(route, client=client)
    history = tuple(
        ChatMessage.of_text("user" if i % 2 == 0 else "assistant", "An earlier message. " * 25)
        for i in range(earlier)
    )
    image = ImagePart("image/png", os.urandom(int(megabytes * 1_000_000)), 2000, 1500)
    request = ChatRequest(
        model=MODELS[route],
        messages=(
            *history,
            ChatMessage(role="user", parts=(TextPart(prompt(1, 50.0, ttft=0.05)), image)),
        ),
    )
    loop = asyncio.get_running_loop()
    worst = 0.0
    running = True

    async def probe() -> None:
        nonlocal worst
        while running:
            before = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - before - 0.001)

    async def first_event() -> None:
        async for _ in provider.stream(request):
            return

    watching = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    worst = 0.0
    await first_event()
    running = False
    await watching
    await client.aclose()
    return worst * 1000


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.adapter", description=__doc__)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transport", default="aiohttp", choices=("aiohttp", "httpx"))
    parser.add_argument("--routes", default="aimlapi,gemini")
    parser.add_argument(
        "--image-mb", type=float, default=0, help="also time the loop's stall per image turn"
    )
    args = parser.parse_args(argv)
    import uvloop

    workdir = new_workdir()
    fake = start_fake(workdir)
    _setup_django(fake.port)
    results: dict[str, Any] = {"transport": args.transport, "streams": args.streams}
    try:
        for route in args.routes.split(","):
            rounds = [
                uvloop.run(_one_round(route, args.transport, args.streams, args.tokens))
                for _ in range(args.rounds)
            ]
            per_chunk = [r["us_per_chunk"] for r in rounds]
            results[route] = {
                "us_per_chunk_median": statistics.median(per_chunk),
                "us_per_chunk": per_chunk,
                "chunks_per_round": rounds[0]["chunks"],
            }
            print(
                f"{route}: {statistics.median(per_chunk):.1f} µs CPU per chunk "
                f"(rounds: {', '.join(f'{v:.1f}' for v in per_chunk)}; "
                f"{rounds[0]['chunks']} chunks each)",
                flush=True,
            )
            if args.image_mb:
                stalls = [
                    uvloop.run(_image_stall(route, args.image_mb)) for _ in range(args.rounds)
                ]
                results[route]["image_stall_ms"] = stalls
                print(
                    f"{route}: the loop's longest stall while a {args.image_mb:g} MB image "
                    f"turn starts: {statistics.median(stalls):.1f} ms "
                    f"(rounds: {', '.join(f'{v:.1f}' for v in stalls)})",
                    flush=True,
                )
    finally:
        fake.stop()
        remove_workdir(workdir)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
