"""How long a run waits after sending a frame before it sends the next (docs/ARCHITECTURE.md,
"The cost of a turn"): not at all while the process is lightly loaded, longer as load grows.

Every frame costs the same to relay whatever it carries (a publish, a consumer's wake-up, a
socket write), so under load coalescing is what keeps one core ahead of its streams; at low
load it only delays tokens (a fixed 20 frames a second made every one-token chunk wait up to
50 ms, 25 ms on average). The load is the rate at which text arrives from the upstreams of
this process, counted as it arrives: unlike the frames sent it does not fall when pacing
rises, so the interval does not oscillate. Below `free_rate` chunks a second every chunk is
sent at once; from there the interval grows linearly, to `max_interval` at twice that rate
(measured: one core relays 200 one-token streams at 50 tokens a second, 10,000 chunks a
second, with 50 ms frames at ~55 µs a chunk; without coalescing the same streams cost ~2x).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacing:
    """The pacing interval of one process's runs, from the rate of chunks arriving."""

    WINDOW = 0.25  # seconds a rate is counted over before the interval is set again

    def __init__(
        self,
        *,
        free_rate: float,
        max_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_rate = free_rate
        self.max_interval = max_interval
        self.interval = 0.0
        self.rate = 0.0
        self._clock = clock
        self._count = 0
        self._since = clock()

    def arrived(self) -> None:
        """One chunk of text from an upstream (the per-token path: a counter, no clock)."""
        self._count += 1

    def current(self) -> float:
        """The interval a run waits after a frame, seconds (0: send the next at once)."""
        now = self._clock()
        elapsed = now - self._since
        if elapsed >= self.WINDOW:
            measured = self._count / elapsed
            # Half the new window, half the past: a second's burst moves it within ~0.5 s.
            self.rate = measured if self.rate == 0 else (self.rate + measured) / 2
            self._count, self._since = 0, now
            load = (self.rate - self.free_rate) / self.free_rate if self.free_rate > 0 else 1.0
            self.interval = self.max_interval * min(1.0, max(0.0, load))
        return self.interval


def asked_interval(asked: str) -> float:
    """The seconds between frames that a stream's page asks for, naming its frames a second
    (a whole number, 1-999): a page pays for every event it receives, whether or not a frame
    shows it, so app.js asks for 20 (S9: 0.52-0.64 ms of main thread per token, 0.70-0.74 at
    30). Anything else asks for nothing, 0 (a hint: ignoring it loses nothing). A run never
    goes faster than the server's cap, if it has one."""
    frames = int(asked) if asked.isascii() and asked.isdigit() and len(asked) <= 3 else 0
    return 1.0 / frames if frames else 0.0


class FrameBudget:
    """One stream's frames: at most one per `interval` on average, however idle the process,
    with up to `burst` at once (`interval` 0: every frame at once). The interval is what the
    page that started the stream asked for (`asked_interval`: a browser pays for every event
    it receives, S9, ~0.3 ms of its main thread each), or the server's cap if longer
    (`CHAT_STREAM_PEAK_FRAMES_PER_SECOND`, none by default); the burst lets two tokens that
    happen to arrive close together (a late read) go at once rather than one waiting out the
    interval (the peers bench's chunk p99 at one stream: 0.6–1.5 ms with a plain minimum
    gap)."""

    def __init__(
        self, *, interval: float, burst: int = 3, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.burst = float(burst)
        self._credit = float(burst)
        self._clock = clock
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        if self.interval > 0:
            self._credit = min(self.burst, self._credit + (now - self._at) / self.interval)
        else:
            self._credit = self.burst
        self._at = now
        return self._credit

    def wait(self) -> float:
        """Seconds until the next frame may go (0: now)."""
        credit = self._refill()
        return 0.0 if credit >= 1 else (1 - credit) * self.interval

    def spend(self) -> None:
        """A frame went out."""
        self._refill()
        self._credit -= 1
