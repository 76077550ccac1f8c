"""What each run has published, kept where any worker can read it after the run's own worker
dies: with Redis, a string per answer that every frame is appended to before it is sent, so
the text a person saw is never lost with its worker (the worker that marks the answer
interrupted takes it from here). Without Redis there is one process, whose death loses its
runs' text since their last checkpoint (docs/ARCHITECTURE.md, "The flow of one turn")."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

log = logging.getLogger(__name__)

# Long enough for any answer; the run deletes its key when its final state is saved.
TTL_SECONDS = 24 * 3600


def _key(message_id: uuid.UUID) -> str:
    return f"chat:published:{message_id.hex}"


class PublishedText:
    """A no-op without `url` (one process: nothing to hand over)."""

    def __init__(self, url: str = "") -> None:
        if url:
            import redis.asyncio

            self._redis: redis.asyncio.Redis | None = redis.asyncio.Redis.from_url(url)
        else:
            self._redis = None

    @property
    def active(self) -> bool:
        """Whether anything is kept (callers on the per-frame path skip the call otherwise)."""
        return self._redis is not None

    async def begin(self, message_id: uuid.UUID, prefix: str) -> None:
        """A run starts (a continued answer with the text it already has)."""
        if self._redis is not None:
            await self._redis.set(_key(message_id), prefix.encode(), ex=TTL_SECONDS)

    async def append(self, message_id: uuid.UUID, text: str) -> None:
        """Before a frame goes out: what is shown is here first."""
        if self._redis is not None:
            await self._redis.append(_key(message_id), text.encode())

    async def forget(self, message_id: uuid.UUID) -> None:
        if self._redis is not None:
            await self._redis.delete(_key(message_id))

    async def recover(self, message_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The published text of answers whose worker died (those with any)."""
        ids = list(message_ids)
        if self._redis is None or not ids:
            return {}
        values = await self._redis.mget([_key(i) for i in ids])
        return {
            i: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for i, v in zip(ids, values, strict=True)
            if v
        }

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
