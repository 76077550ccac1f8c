"""Charts drawn on the server as SVG shapes for a template (no script, no CDN, nothing the CSP
would refuse: presentation attributes and classes only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, AXIS = 720, 180, 16  # the viewBox; the bottom AXIS is for the day labels


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    segments: tuple[tuple[str, float, float], ...]  # (css class, y, height), bottom first
    label: str  # under the bar ("" for most days)
    title: str  # its values, in words (a tooltip)


def stacked_bars(
    columns: Sequence[tuple[str, str, Sequence[tuple[str, float]]]],
) -> list[Bar]:
    """`columns`: (label under it, title, [(css class, value), ...] bottom first), one per bar,
    scaled so the tallest column fills the chart."""
    top = max((sum(v for _, v in parts) for _, _, parts in columns), default=0) or 1
    slot = WIDTH / max(1, len(columns))
    plot = HEIGHT - AXIS
    bars = []
    for index, (label, title, parts) in enumerate(columns):
        y = float(plot)
        segments = []
        for css, value in parts:
            height = plot * value / top
            y -= height
            segments.append((css, round(y, 2), round(height, 2)))
        bars.append(
            Bar(
                round(index * slot + slot * 0.15, 2),
                round(slot * 0.7, 2),
                tuple(segments),
                label,
                title,
            )
        )
    return bars
