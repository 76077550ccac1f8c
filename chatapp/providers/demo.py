"""The offline demo route: deterministic, no network, labelled "Offline demo" everywhere.

It lets a fresh install be tried before any API key is configured. Its answers depend only on
the prompt and the options, and stream at a pace close to a real model so the interface
behaves as it will in earnest.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

from .base import Provider
from .types import (
    CandidateDelta,
    CandidateFinish,
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    ResponseInfo,
    TextDelta,
    Usage,
)

_PIECES = re.compile(r"\S+\s*|\s+")

_TOPICS = (
    "streaming answers that survive a reload",
    "per-model parameter ranges checked before any request",
    "markdown rendered and sanitised on the server",
    "conversations you can come back to exactly as they were",
)


def demo_answer(prompt: str, seed: int | None = None) -> str:
    """The demo's answer to a prompt: fixed text that quotes the prompt, with markdown that
    exercises the renderer (a list, inline code, a code block)."""
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    topic = _TOPICS[digest[0] % len(_TOPICS)]
    quoted = " ".join(prompt.split())[:200] or "(an empty message)"
    return (
        "**Offline demo** - no API key is configured on this server, so this answer comes "
        "from the built-in demo, not from Gemini.\n\n"
        f"You wrote:\n\n> {quoted}\n\n"
        f"A real model would answer that. Meanwhile, this demo shows {topic}:\n\n"
        "- the answer streams in piece by piece, and a reload mid-answer picks up where it was;\n"
        "- the settings panel validates `temperature`, `top_p` and the rest per model;\n"
        "- code blocks are highlighted:\n\n"
        "```python\n"
        "def greet(name: str) -> str:\n"
        '    return f"Hello, {name}!"\n'
        "```\n\n"
        "Set `AIMLAPI_API_KEY` (see the README) and restart to chat with Gemini."
    )


class DemoProvider(Provider):
    label = "Offline demo"

    def __init__(
        self,
        *,
        first_token_delay: float = 0.4,
        token_delay: float = 0.025,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.first_token_delay = first_token_delay
        self.token_delay = token_delay

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        prompt = request.messages[-1].text if request.messages else ""
        answer = demo_answer(prompt, request.options.get("seed"))
        pieces = _PIECES.findall(answer)
        limit = request.options.get("max_completion_tokens") or request.options.get("max_tokens")
        finish: FinishReason = "stop"
        if limit is not None and len(pieces) > limit:
            pieces, finish = pieces[:limit], "length"
        yield ResponseInfo(response_id=f"demo-{request.request_id}", model="demo")
        await asyncio.sleep(self.first_token_delay)
        for index, piece in enumerate(pieces):
            if index:
                await asyncio.sleep(self.token_delay)
            yield TextDelta(piece)
        prompt_tokens = sum(len(_PIECES.findall(m.text)) for m in request.messages)
        yield Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=len(pieces),
            reasoning_tokens=0,
            total_tokens=prompt_tokens + len(pieces),
            credits_used=0.0,
            usd_spent=0.0,
        )
        # Other candidates (params "candidate_count"): the demo's answer with another seed
        # each, whole, as an upstream's other choices arrive beside the streamed one.
        seed = request.options.get("seed") or 0
        for index in range(1, request.candidates):
            yield CandidateDelta(index, demo_answer(prompt, seed + index))
            yield CandidateFinish(index, "stop", "stop")
        yield Finish(reason=finish, raw=finish)
