"""Shared, cached simulated walks for the simulator tests (built once per test session)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from capture.sim.paths import Line
from capture.sim.patterns import make_style
from capture.sim.person import Go, Person, Stand
from capture.sim.style import WalkerParams


@lru_cache(maxsize=None)
def straight(pattern: str = "normal", severity: int = 0, length: float = 8.0, seed: int = 1,
             height: float = 1.75, speed: float | None = None, side: str | None = "right"
             ) -> Person:
    """One person standing, walking a straight line along +x, standing again."""
    params = WalkerParams(height_m=height, speed_mps=speed)
    style = make_style(pattern, severity, side=side if pattern in (
        "stiff_knee", "hemiparetic", "antalgic") else None)
    return Person.build(params, style, [Stand(0.5), Go((Line(length),)), Stand(0.5)], (0.0, 0.0),
                        0.0, 0.0, np.random.default_rng(seed))


def steady_strides(person: Person, side: str, skip: int = 2) -> list[tuple[float, float]]:
    """(start, end) of the strides of ``side`` away from the start and the stop."""
    hs = [e.t for e in person.events() if e.side == side and e.kind == "foot_strike"]
    pairs = list(zip(hs[:-1], hs[1:]))
    return pairs[skip:len(pairs) - skip]
