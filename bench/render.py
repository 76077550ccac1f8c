"""S10: the server's rendering CPU for one answer, streamed block by block (what an SSE
consumer spends: `rendering.StreamRenderer` fed frame by frame) against one render of the
whole answer (`rendering.render_markdown`, what the final fragment costs).

Answers of 1 KB, 10 KB and 100 KB mix paragraphs, lists, code, a table and math (bench.history's
answers plus a formula), fed in the pieces a stream at 50 tokens/s, 20 frames/s brings
(~10 characters each). Process CPU time, best of `repeat` runs, so that noise from the other
core does not count.

    python -m bench.render [repeat]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

SIZES = (1_000, 10_000, 100_000)
PIECE_CHARS = 10


def _answer(size: int) -> str:
    from bench.history import ANSWERS

    unit = "\n\n".join(
        [*ANSWERS, "The area is $\\pi r^2$, and $$\\int_0^1 x\\,dx = \\frac{1}{2}$$"]
    )
    text = ""
    while len(text) < size:
        text += unit + "\n\n"
    return text[:size]


def _cpu_ms(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best * 1000


def measure(repeat: int = 5) -> dict[str, object]:
    from chatapp import rendering
    from chatapp.rendering import StreamRenderer, render_markdown

    rows = []
    for size in SIZES:
        text = _answer(size)
        pieces = [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)]

        def streamed(pieces: list[str] = pieces) -> None:
            renderer = StreamRenderer()
            for piece in pieces:
                renderer.feed(piece)
            renderer.finish()

        def whole(text: str = text) -> None:
            render_markdown(text)

        def one_pass(text: str = text) -> None:
            # The whole document through markdown-it and the sanitiser at once, as the renderer
            # did before blocks: the cost of rendering block by block, for reference.
            rendering._CLEANER.clean(rendering._MD.render(text, {}))

        whole_ms = _cpu_ms(whole, repeat)
        streamed_ms = _cpu_ms(streamed, repeat)
        one_pass_ms = _cpu_ms(one_pass, repeat)
        rows.append(
            {
                "chars": size,
                "frames": len(pieces),
                "whole_ms": round(whole_ms, 2),
                "streamed_ms": round(streamed_ms, 2),
                "ratio": round(streamed_ms / whole_ms, 2),
                "one_pass_ms": round(one_pass_ms, 2),
            }
        )
    return {"piece_chars": PIECE_CHARS, "rows": rows}


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
    django.setup()
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(json.dumps(measure(repeat)))


if __name__ == "__main__":
    main()
