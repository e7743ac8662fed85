"""Each walker parameter and gait pattern moves what it should, measured on the simulator's ground
truth (exact per-stride measures) or by the classical analysis, in the right direction and in
order of severity. Short straight walks (8-12 m), shared between tests."""

from __future__ import annotations

import logging
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import pytest

from capture.sim.body import body_dims
from capture.sim.paths import Line
from capture.sim.patterns import ONE_SIDED, make_style
from capture.sim.person import Go, Person, Stand
from capture.sim.skeleton import layout_joints
from capture.sim.style import WalkerParams
from capture.sim.truth import cycle_truth, frame_truth
from inference.analysis.cycles import trusted
from inference.analysis.kinematics import F
from inference.analysis.analyzer import OnlineGaitAnalyzer
from streams.schema import GaitCycle

AFFECTED = "right"  # the side one-sided patterns affect here


@lru_cache(maxsize=None)
def walk(pattern: str = "normal", severity: int = 0, length: float = 8.0, seed: int = 1,
         params: tuple = ()) -> Person:
    """Stand 0.5 s, walk ``length`` m straight along +x, stand 0.5 s."""
    style = make_style(pattern, severity, side=AFFECTED if pattern in ONE_SIDED else None)
    return Person.build(WalkerParams(**dict(params)), style,
                        [Stand(0.5), Go((Line(length),)), Stand(0.5)], (0.0, 0.0), 0.0, 0.0,
                        np.random.default_rng(seed))


_STEADY: dict[int, tuple[dict, ...]] = {}  # by id(person): the walks above are kept alive
_ANALYSED: dict[int, tuple[list[GaitCycle], dict[str, np.ndarray]]] = {}


def steady(person: Person, margin_s: float = 1.5) -> tuple[dict, ...]:
    """True strides at least ``margin_s`` from the first and last strike (no start, no stop)."""
    if id(person) not in _STEADY:
        ev = person.events()
        _STEADY[id(person)] = tuple(
            c for c in cycle_truth(person)
            if c["start_s"] > ev[0].t + margin_s and c["end_s"] < ev[-1].t - margin_s)
    return _STEADY[id(person)]


def values(strides, key: str, side: str | None = None) -> np.ndarray:
    return np.array([c["metrics"][key] for c in strides
                     if c["metrics"][key] is not None and (side is None or c["side"] == side)])


def median(strides, key: str, side: str | None = None) -> float:
    v = values(strides, key, side)
    assert len(v), key
    return float(np.median(v))


def analysed(person: Person) -> tuple[list[GaitCycle], dict[str, np.ndarray]]:
    """The person's exact canonical joints at 30 Hz through the classical analysis."""
    if id(person) in _ANALYSED:
        return _ANALYSED[id(person)]
    logging.getLogger("inference.analysis.analyzer").setLevel(logging.ERROR)
    t = np.arange(0.0, person.t_stop, 1 / 30)
    pts, _ = person.evaluate(t)
    joints = layout_joints(pts, "canonical22")
    a = OnlineGaitAnalyzer("sim", 0, keep_trace=True)
    out = []
    for tk, j in zip((t * 1e6).round().astype(np.int64).tolist(), joints):
        out += a.push(tk, j, np.ones(22))
    out += a.flush()
    _ANALYSED[id(person)] = [c for c in out if isinstance(c, GaitCycle)], a.trace_arrays()
    return _ANALYSED[id(person)]


def measured(person: Person, key: str) -> float:
    """Median of a measure over the trusted strides the classical analysis published."""
    v = [c.metrics[key] for c in analysed(person)[0] if trusted(c) and c.metrics[key] is not None]
    assert len(v) >= 4, key
    return float(np.median(v))


def with_(**params) -> Person:
    return walk(params=tuple(sorted(params.items())))


# --------------------------------------------------------------------------- walker parameters


@pytest.mark.parametrize("cadence", [95.0, 125.0])
def test_cadence_is_what_was_asked(cadence):
    person = with_(cadence_spm=cadence)
    assert median(steady(person), "cadence_spm") == pytest.approx(cadence, rel=0.01)
    assert measured(person, "cadence_spm") == pytest.approx(cadence, rel=0.02)


def test_step_width_moves_the_feet_apart():
    narrow, wide = with_(step_width_m=0.06), with_(step_width_m=0.16)
    # the parameter is the heel line; the measure is between the ankle centres, which the
    # foot's toe-out puts ~1-2 cm further apart: the difference is what was asked
    for get in (lambda p: median(steady(p), "step_width_m"),
                lambda p: measured(p, "step_width_m")):
        assert get(wide) - get(narrow) == pytest.approx(0.10, abs=0.01)
        assert get(narrow) == pytest.approx(0.06, abs=0.025)


def test_arm_swing_gain_scales_the_arm_swing():
    swing = {g: measured(with_(arm_swing=g), "arm_swing_deg") for g in (0.5, 1.5)}
    swing[1.0] = measured(walk(), "arm_swing_deg")
    # measured 20.1, 38.6, 57.1 deg
    assert swing[0.5] / swing[1.0] == pytest.approx(0.5, abs=0.05)
    assert swing[1.5] / swing[1.0] == pytest.approx(1.5, abs=0.05)


def test_trunk_lean_tilts_the_trunk_forward():
    def tilt(person: Person) -> float:
        _, tr = analysed(person)
        mid = (tr["t"] > 2e6) & (tr["t"] < tr["t"][-1] - 2e6)
        return float(np.median(tr["f"][mid, F["trunk_tilt"]]))

    upright, leaning = with_(trunk_lean_deg=0.0), with_(trunk_lean_deg=10.0)
    # the lean bends the spine above its first segment; the analysis' trunk line runs from
    # the pelvis to the neck, so it sees ~3/4 of it (measured 0.5 and 8.1 deg)
    assert abs(tilt(upright)) < 1.5
    assert 6.0 < tilt(leaning) - tilt(upright) < 10.0


@pytest.mark.parametrize("asymmetry", [-0.3, 0.3])
def test_asymmetry_lengthens_one_sides_steps_in_time_and_space(asymmetry):
    person = with_(asymmetry=asymmetry)
    # + lengthens right steps and shortens left ones, both by the factor: left / right
    ratio = (1 - asymmetry) / (1 + asymmetry)
    strides = steady(person)
    assert median(strides, "step_time_symmetry") == pytest.approx(ratio, rel=0.05)
    # the achieved lengths are learnt step by step: the first steady steps still lag
    assert median(strides, "step_length_symmetry") == pytest.approx(ratio, rel=0.2)
    assert measured(person, "step_time_symmetry") == pytest.approx(ratio, rel=0.08)
    symmetric = median(steady(walk()), "step_time_symmetry")
    assert symmetric == pytest.approx(1.0, abs=0.03)


def test_variability_scales_stride_to_stride_variation():
    def spread(variability: float) -> tuple[float, float]:
        params = (("variability", variability),) if variability != 1.0 else ()  # the default
        strides = steady(walk(length=12.0, params=params))
        stride_t, width = values(strides, "stride_time_s"), values(strides, "step_width_m")
        assert len(stride_t) >= 10
        return 100 * stride_t.std(ddof=1) / stride_t.mean(), width.std(ddof=1)

    (cv0, sd0), (cv1, sd1), (cv3, sd3) = spread(0.0), spread(1.0), spread(3.0)
    assert cv0 < 0.01 and sd0 < 1e-4  # no variability: every stride alike
    # x3 variability: about x3 spread (the same draws, scaled)
    assert cv3 / cv1 == pytest.approx(3.0, rel=0.15) and sd3 / sd1 == pytest.approx(3.0, rel=0.15)
    assert 0.5 < cv1 < 3.0  # healthy stride-time CV ~1-2 % (Hausdorff 2005)


# --------------------------------------------------------------------------- gait patterns


def _lateral_trunk_range(person: Person, strides) -> float:
    """Range (deg) of the trunk's lateral lean (pelvis -> neck against vertical) over strides."""
    ts = np.arange(strides[0]["start_s"], strides[-1]["end_s"], 0.02)
    pts, st = person.evaluate(ts)
    fwd = np.stack([np.cos(st["heading"]), np.zeros(len(ts)), np.sin(st["heading"])], axis=1)
    lateral = np.cross([0.0, 1.0, 0.0], fwd)
    v = pts["neck"] - pts["pelvis"]
    return float(np.ptp(np.degrees(np.arctan2(np.einsum("nk,nk->n", v, lateral), v[:, 1]))))


def _cv(strides) -> float:
    v = values(strides, "stride_time_s")
    return float(v.std(ddof=1) / v.mean())


MEASURES = {
    # pattern: [(what, measure(person, steady strides), +1 rises / -1 falls with severity)]
    "shuffling": [("step length", lambda p, s: median(s, "step_length_m"), -1),
                  ("arm swing", lambda p, s: median(s, "arm_swing_deg"), -1)],
    "stiff_knee": [("affected peak swing knee flexion",
                    lambda p, s: median(s, "peak_swing_knee_flexion_deg", AFFECTED), -1)],
    "hemiparetic": [("affected peak swing knee flexion",
                     lambda p, s: median(s, "peak_swing_knee_flexion_deg", AFFECTED), -1),
                    ("affected arm swing", lambda p, s: median(s, "arm_swing_deg", AFFECTED), -1),
                    ("affected minus other stance %",
                     lambda p, s: median(s, "stance_pct", AFFECTED) - median(s, "stance_pct",
                                                                              "left"), -1),
                    ("speed", lambda p, s: median(s, "speed_mps"), -1),
                    ("step width", lambda p, s: median(s, "step_width_m"), +1)],
    "antalgic": [("affected minus other stance %",
                  lambda p, s: median(s, "stance_pct", AFFECTED) - median(s, "stance_pct", "left"),
                  -1)],
    "trunk_sway": [("lateral trunk lean range", _lateral_trunk_range, +1),
                   ("step width", lambda p, s: median(s, "step_width_m"), +1)],
    "reduced_arm_swing": [("arm swing", lambda p, s: median(s, "arm_swing_deg"), -1)],
    "ataxic": [("stride time CV", lambda p, s: _cv(s), +1),
               ("step width SD", lambda p, s: float(values(s, "step_width_m").std(ddof=1)), +1),
               ("step width", lambda p, s: median(s, "step_width_m"), +1)],
}


@pytest.mark.parametrize("pattern", sorted(MEASURES))
def test_patterns_move_their_measures_in_order_of_severity(pattern):
    length = 12.0 if pattern == "ataxic" else 8.0  # variability needs more strides
    people = [walk(pattern if s else "normal", s, length) for s in range(4)]
    for what, measure, sign in MEASURES[pattern]:
        v = np.array([measure(p, steady(p)) for p in people])
        steps = sign * np.diff(v)
        # each grade further than the one before, by a share of the whole change
        assert (steps > 0.1 * abs(v[3] - v[0]) / 3).all(), (what, v.round(3).tolist())


def test_festination_bouts_shorten_and_quicken_the_steps():
    person = walk("festination", 3, 12.0)
    t = np.arange(0.0, person.t_stop, 0.02)
    fest = frame_truth(person, t)["festination"]
    assert 0.05 < fest.mean() < 0.5  # bouts, not the whole walk
    assert not frame_truth(walk("normal", 0, 12.0), t)["festination"].any()
    inside, outside = [], []
    for c in cycle_truth(person):
        sel = (t >= c["start_s"]) & (t <= c["end_s"])
        (inside if fest[sel].mean() > 0.5 else outside).append(c)
    assert len(inside) >= 2 and len(outside) >= 6
    assert median(inside, "step_length_m") < 0.8 * median(outside, "step_length_m")
    assert median(inside, "cadence_spm") > 1.03 * median(outside, "cadence_spm")


@pytest.mark.parametrize("severity", [1, 2, 3])
def test_freezing_episodes_come_at_their_rate_and_length(severity):
    style = make_style("freezing", severity)
    params = WalkerParams()
    person = Person(params, style, body_dims(params.height_m))
    km = 5000.0
    # the plan reads only the path's length (a sampled 5 km path would cost seconds)
    plan = person._freeze_plan(SimpleNamespace(length=km), np.random.default_rng(0))
    minutes = km / (params.preferred_speed() * style.speed_gain) / 60.0
    assert len(plan) / minutes == pytest.approx(0.8 * severity, rel=0.25)
    durations = np.array([d for _, d in plan])
    assert durations.min() >= 1.0 and durations.max() <= 1.0 + severity
    assert make_style("freezing", 0).freezes_per_min == 0


def test_a_freeze_is_in_the_truth_and_no_trusted_stride_spans_it():
    person = walk("freezing", 3, 10.0, seed=2)  # this seed freezes once, 6.3-8.2 s
    ((f0, f1),) = person.freezes
    t = np.arange(0.0, person.t_stop, 0.02)
    truth = frame_truth(person, t)
    assert truth["freezing"][(t >= f0) & (t < f1)].all()
    assert not truth["freezing"][(t < f0 - 0.1) | (t > f1 + 0.1)].any()
    _, st = person.evaluate(t)
    # the feet stay planted (no walking) while the knees tremble
    assert (st["a"][(t > f0 + 0.3) & (t < f1 - 0.3)] == 0).all()
    knee = truth["knee_flexion_left"][(t > f0 + 0.3) & (t < f1 - 0.3)]
    assert np.ptp(knee) > 3.0
    cycles, _ = analysed(person)
    across = [c for c in cycles if c.start_us < f1 * 1e6 and c.end_us > f0 * 1e6]
    clear = [c for c in cycles if c not in across]
    assert across and not any(trusted(c) for c in across)  # published, flagged
    assert len(clear) >= 12 and all(trusted(c) for c in clear)
