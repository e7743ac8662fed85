"""Simulated walks through the classical analysis end to end: strides through a turn are flagged
``turning`` and straight ones are not."""

from __future__ import annotations

import numpy as np

from capture.sim.paths import Arc, Line
from capture.sim.person import Person
from capture.sim.source import SimSource
from inference.analysis.analyzer import OnlineGaitAnalyzer
from streams.schema import GaitCycle

from tests._sim import check_turning, path_walk, true_swing_deg


def _analyse(t_us: np.ndarray, joints: np.ndarray) -> list[GaitCycle]:
    a = OnlineGaitAnalyzer("sim", 0)
    out = []
    for tk, j in zip(t_us.tolist(), joints):
        out += a.push(tk, j, np.ones(22))
    out += a.flush()
    return [c for c in out if isinstance(c, GaitCycle)]


def _walk_cycles(segments, seed: int) -> tuple[Person, list[GaitCycle]]:
    """A walker along ``segments`` (``_sim.path_walk``) through the analysis."""
    person, t_us, joints = path_walk(segments, seed)
    return person, _analyse(t_us, joints)


def test_strides_through_a_u_turn_are_turning_and_straight_ones_are_not():
    # walk 5 m, turn 180 deg on a 0.8 m radius (about 95 deg/s), walk back 5 m
    person, cycles = _walk_cycles((Line(5.0), Arc(0.8, 180.0), Line(5.0)), seed=1)
    turned, straight = check_turning(cycles, person)
    assert turned >= 3 and straight >= 6


def test_the_turns_scene_through_the_live_source():
    # the live `sim` source's turns scene: a 60 deg turn one way, then 90 deg the other way
    src = SimSource("sim", rate_hz=30.0, seed=2, scene="turns", layout="canonical22")
    frames = list(src.frames())
    (person,) = src.persons[0]
    cycles = _analyse(np.array([f.t_us for f in frames]),
                      np.stack([f.bodies[0].joints for f in frames]))
    turned, _ = check_turning(cycles, person)
    assert turned >= 2
    # measured swings of the strides: flagged ones hold both turns, unflagged ones little
    calm = [c for c in cycles if "turning" not in c.flags]
    assert calm and all(true_swing_deg(person, c.start_us, c.end_us) < 35.0 for c in calm)


def test_a_gentle_curve_is_not_a_turn():
    # 30 deg over 3.1 m of arc (about 12 deg/s, up to 15 deg within a stride): curved walking,
    # below the 20 deg a stride must swing through to be a turn (measured 9-15 deg)
    _, cycles = _walk_cycles((Line(2.0), Arc(6.0, 30.0), Line(2.0)), seed=3)
    steady = [c for c in cycles if c.metrics["stance_pct"] is not None
              and "implausible_timing" not in c.flags]
    assert len(steady) >= 4 and not any("turning" in c.flags for c in steady)
