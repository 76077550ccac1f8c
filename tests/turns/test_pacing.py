"""Pacing (turns/pacing.py): frames go out as text arrives until the process is busy, then
wait longer as the rate of arriving chunks grows, up to the most coalescing allowed."""

from __future__ import annotations

import pytest

from chatapp.turns.pacing import FrameBudget, Pacing, asked_interval


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def steady(rate: float, seconds: float = 3.0) -> Pacing:
    """A pacing that has seen `rate` chunks a second for `seconds`."""
    clock = Clock()
    pacing = Pacing(free_rate=5000, max_interval=0.05, clock=clock)
    step = Pacing.WINDOW
    for _ in range(int(seconds / step)):
        for _ in range(int(rate * step)):
            pacing.arrived()
        clock.now += step
        pacing.current()
    return pacing


@pytest.mark.parametrize("rate", [0, 50, 1000, 4900])
def test_below_the_free_rate_every_frame_goes_at_once(rate: float):
    assert steady(rate).current() == 0


@pytest.mark.parametrize(("rate", "interval"), [(6250, 0.0125), (7500, 0.025), (8750, 0.0375)])
def test_above_it_the_interval_grows_with_the_rate(rate: float, interval: float):
    assert steady(rate).current() == pytest.approx(interval, rel=0.02)


@pytest.mark.parametrize("rate", [10_000, 50_000])
def test_from_twice_the_free_rate_frames_are_coalesced_the_most(rate: float):
    assert steady(rate).current() == pytest.approx(0.05)


def test_when_the_load_goes_the_interval_falls_back_to_zero_within_a_second():
    clock = Clock()
    pacing = Pacing(free_rate=5000, max_interval=0.05, clock=clock)
    for _ in range(12):
        for _ in range(2500):  # 10,000 a second
            pacing.arrived()
        clock.now += Pacing.WINDOW
        pacing.current()
    assert pacing.current() == pytest.approx(0.05)
    for _ in range(4):  # one quiet second
        clock.now += Pacing.WINDOW
        pacing.current()
    assert pacing.current() == 0


def test_a_stream_slower_than_the_frame_budget_never_waits():
    clock = Clock()
    frames = FrameBudget(interval=1 / 60, clock=clock)
    for _ in range(100):  # 50 a second
        clock.now += 0.02
        assert frames.wait() == 0
        frames.spend()


def test_a_few_tokens_close_together_go_at_once_then_frames_are_spaced():
    clock = Clock()
    frames = FrameBudget(interval=0.01, burst=3, clock=clock)
    for _ in range(3):
        assert frames.wait() == 0
        frames.spend()
    assert frames.wait() == pytest.approx(0.01)
    clock.now += 0.004
    assert frames.wait() == pytest.approx(0.006)


def test_a_fast_stream_gets_one_frame_per_interval_on_average():
    clock = Clock()
    frames = FrameBudget(interval=1 / 60, clock=clock)
    sent = 0
    for _ in range(2500):  # 250 tokens a second for 10 s
        clock.now += 0.004
        if frames.wait() == 0:
            frames.spend()
            sent += 1
    assert 600 <= sent <= 603


@pytest.mark.parametrize(("asked", "interval"), [("30", 1 / 30), ("1", 1.0), ("999", 1 / 999)])
def test_a_page_asks_for_its_frames_a_second_as_a_whole_number(asked: str, interval: float):
    assert asked_interval(asked) == pytest.approx(interval)


@pytest.mark.parametrize(
    "asked",
    [
        "",
        "0",
        "000",
        "-30",
        "30.5",
        "1e3",
        "1000",
        "nan",
        "inf",
        "\u0663\u0660",
        " 30",
        "30 ",
        "0x1e",
    ],
)
def test_anything_else_a_page_sends_asks_for_nothing(asked: str):
    assert asked_interval(asked) == 0.0
