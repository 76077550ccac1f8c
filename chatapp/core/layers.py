"""The single-process channel layer (used when REDIS_URL is unset).

Channels' InMemoryChannelLayer sweeps every channel and group for expired entries on every
send and receive, deep-copies every message, and starts a task per group member for each group
message. Each of those costs grows with the number of open streams: at 150 streams the sweep
alone was 16% of the server's CPU (bench/, profiled with py-spy). This subclass keeps the same
semantics (capacity, expiry, group expiry) with the sweep at most once a second, a shallow copy
(the app's messages are flat dicts of immutable values) and direct delivery to group members.

A consumer in this process may also `attach` a sink to its channel: what is sent there is then
handed to the sink in the sender's task, with no queue and no task switch (for the SSE relay,
that was ~10% of the CPU per frame: docs/ARCHITECTURE.md, "The cost of a turn").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryLayer

SWEEP_INTERVAL = 1.0

# Takes one message (shared with the group's other members: it must not change it); False
# when it has no room for it (the channel is full).
Sink = Callable[[dict[str, Any]], bool]


class InMemoryChannelLayer(ChannelsInMemoryLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0
        # Receivers waiting on each channel: a queue someone awaits is never dropped.
        self._receivers: dict[str, int] = {}
        self._sinks: dict[str, Sink] = {}

    def attach(self, channel: str, sink: Sink) -> None:
        """From now on, deliver what is sent to `channel` by calling `sink` (anything queued
        there first). Only for a channel of this process that nobody `receive`s from."""
        self.require_valid_channel_name(channel)
        queue = self.channels.pop(channel, None)
        self._sinks[channel] = sink
        while queue is not None and not queue.empty():
            _, message = queue.get_nowait()
            sink(message)

    def detach(self, channel: str) -> None:
        self._sinks.pop(channel, None)

    def _clean_expired(self) -> None:
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        sink = self._sinks.get(channel)
        if sink is not None:
            if not sink(message):
                raise ChannelFull(channel)
            return
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels.setdefault(
                channel, asyncio.Queue(maxsize=self.get_capacity(channel))
            )
        try:
            queue.put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        # Channels drops a channel's queue whenever it runs empty and makes a new one on the
        # next send: an allocation and a loop binding per frame. The queue stays while the
        # channel lives; group_discard and the expiry sweep let it go.
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels.setdefault(
                channel, asyncio.Queue(maxsize=self.get_capacity(channel))
            )
        self._receivers[channel] = self._receivers.get(channel, 0) + 1
        try:
            _, message = await queue.get()
        finally:
            left = self._receivers[channel] - 1
            if left:
                self._receivers[channel] = left
            else:
                del self._receivers[channel]
        return message

    async def group_discard(self, group: str, channel: str) -> None:
        await super().group_discard(group, channel)
        queue = self.channels.get(channel)
        if (
            queue is not None
            and queue.empty()
            and channel not in self._receivers
            and not any(channel in members for members in self.groups.values())
        ):
            del self.channels[channel]

    async def flush(self) -> None:
        await super().flush()
        self._receivers = {}
        self._sinks = {}

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        members = self.groups.get(group)
        if members is None:
            self.require_valid_group_name(group)
            return
        self._clean_expired()
        # A group with members and its members were checked when they joined: each frame is
        # sent without a regular expression per group and per member (6% and 1% of the
        # relay's CPU at 100 unpaced streams, bench "turn cost").
        for channel in list(members):
            try:  # noqa: SIM105 - a plain try costs less than a context manager per member
                self._put(channel, message)
            except ChannelFull:
                # As in Channels: a full channel (a reader that stopped reading) loses the
                # message; the SSE consumer notices the gap by offset and asks for a snapshot.
                pass
