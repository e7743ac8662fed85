"""Shared, cached simulated walks for the simulator tests (built once per test session)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from capture.sim.paths import Line
from capture.sim.patterns import make_style
from capture.sim.person import Go, Person, Stand
from capture.sim.skeleton import layout_joints
from capture.sim.style import WalkerParams
from streams.schema import GaitCycle


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


def path_walk(segments: tuple, seed: int) -> tuple[Person, np.ndarray, np.ndarray]:
    """A person standing 0.5 s, walking ``segments``, standing 0.5 s: the person, and its
    exact canonical joints at 30 Hz (t_us (n,), joints (n, 22, 3))."""
    person = Person.build(WalkerParams(), make_style(), [Stand(0.5), Go(segments), Stand(0.5)],
                          (0.0, 0.0), 0.0, 0.0, np.random.default_rng(seed))
    t = np.arange(0.0, person.t_stop, 1 / 30)
    pts, _ = person.evaluate(t)
    return person, (t * 1e6).round().astype(np.int64), layout_joints(pts, "canonical22")


def true_swing_deg(person: Person, a_us: int, b_us: int) -> float:
    """How far the walker's true heading swings between two times."""
    ts = np.linspace(a_us / 1e6, b_us / 1e6, 60)
    _, st = person.evaluate(ts)
    h = np.unwrap(st["heading"])
    return float(np.degrees(h.max() - h.min()))


def check_turning(cycles: list[GaitCycle], person: Person) -> tuple[int, int]:
    """Asserts that the strides through a turn (45 deg or more) are flagged ``turning`` and
    straight ones (half a second clear of any turn either side) carry no flag at all; returns
    how many of each there were."""
    turned = straight = 0
    for c in cycles:
        if true_swing_deg(person, c.start_us, c.end_us) >= 45.0:
            assert "turning" in c.flags, (c.start_us / 1e6, c.flags)
            turned += 1
        elif true_swing_deg(person, c.start_us - 500_000, c.end_us + 500_000) < 1.0:
            assert c.flags == [], (c.start_us / 1e6, c.flags)
            straight += 1
    return turned, straight
