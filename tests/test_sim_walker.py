"""The walker's geometry and ground truth: feet on the floor, events exact, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from capture.sim.patterns import PATTERNS, make_style
from capture.sim.paths import Arc, Line, Path
from capture.sim.person import Go, Person, Stand
from capture.sim.skeleton import layout_joints
from capture.sim.style import WalkerParams
from capture.sim.truth import cycle_truth, frame_truth
from capture.sim.walker import SIDES, foot_axes, toe_clearance
from streams.schema import CYCLE_METRICS
from tests._sim import steady_strides, straight

SOLE = ("heel", "toe", "foot")


def sole_heights(points, side):
    return np.stack([points[f"{side}_{n}"][:, 1] for n in SOLE], axis=1)


def test_joints_are_the_canonical_skeleton_in_metres_y_up_on_the_floor():
    p = straight()
    t = np.arange(0.0, p.t_stop, 1 / 30)
    pts, _ = p.evaluate(t)
    j = layout_joints(pts, "canonical22")
    assert j.shape == (len(t), 22, 3) and np.isfinite(j).all()
    # standing height ~ body height (head joint sits ~8% below the vertex), feet on the floor
    assert 0.85 * 1.75 < j[0, 15, 1] < 0.95 * 1.75
    assert abs(min(pts["left_heel"][:, 1].min(), pts["right_heel"][:, 1].min()) - 0.026) < 0.01
    # bones keep their lengths while walking (rigid segments)
    for a, b in ((1, 4), (4, 7), (2, 5), (5, 8), (16, 18), (18, 20)):
        length = np.linalg.norm(j[:, a] - j[:, b], axis=1)
        assert np.ptp(length) < 1e-6, (a, b)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_no_pattern_puts_a_foot_through_the_floor(pattern):
    p = straight(pattern, 3, length=5.0)
    t = np.arange(0.0, p.t_stop, 1 / 200)
    pts, _ = p.evaluate(t)
    for side in SIDES:
        assert sole_heights(pts, side).min() > -1e-3, (pattern, side)


@pytest.mark.parametrize("pattern", ["normal", "hemiparetic", "crouch", "shuffling"])
def test_the_stance_foot_does_not_slide(pattern):
    """Mid-stance (15-30% of the stride): the whole foot is flat and still; terminal stance
    (35-50%): the heel rises but the ball of the foot (canonical foot joint) stays put."""
    p = straight(pattern, 2, length=5.0)
    for side in SIDES:
        for a, b in steady_strides(p, side, skip=1):
            mid = np.linspace(a + 0.15 * (b - a), a + 0.30 * (b - a), 16)
            pts, _ = p.evaluate(mid)
            for n in ("foot", "ankle", "heel"):
                assert np.ptp(pts[f"{side}_{n}"], axis=0).max() < 0.005, (pattern, side, n)
            late = np.linspace(a + 0.36 * (b - a), a + 0.48 * (b - a), 16)
            pts, _ = p.evaluate(late)
            assert np.ptp(pts[f"{side}_foot"], axis=0).max() < 0.005, (pattern, side)


def lowest_sole_point(person, side, t):
    """Height of the lowest point of the sole (heel, ball, toe tip) at times t."""
    pts, st = person.evaluate(t)
    ankle, yaw, phi = pts[f"{side}_ankle"], st[f"yaw_{side}"], st[f"phi_{side}"]
    return toe_clearance(ankle, yaw, phi, st[f"toe_{side}"], person.body).clip(
        max=_heel_sole(ankle, yaw, phi, person.body))


def _heel_sole(ankle, yaw, phi, b):
    e1, e2 = foot_axes(yaw, phi)
    return (ankle - b.heel_back * e1 - b.ankle_height * e2)[:, 1]


def test_events_are_exact_foot_contacts():
    """At a foot strike the sole touches the floor and was in the air 20 ms before; at a foot
    off the toes are on the floor and 20 ms later in the air: the truth is the geometry's."""
    p = straight()
    ev = p.events()
    assert [e.kind for e in ev[:2]] == ["foot_off", "foot_strike"]
    for e in ev:
        h = lowest_sole_point(p, e.side, np.array([e.t - 0.02, e.t, e.t + 0.02]))
        assert abs(h[1]) < 1e-3, (e, h)
        if e.kind == "foot_strike":
            assert h[0] > 2e-3 and abs(h[2]) < 1e-3, (e, h)
        else:
            assert h[2] > 1e-3 and abs(h[0]) < 1e-3, (e, h)
    # per side the events alternate strike / off
    for side in SIDES:
        kinds = [e.kind for e in ev if e.side == side]
        assert all(k1 != k2 for k1, k2 in zip(kinds, kinds[1:])), kinds


def test_frame_truth_phases_contacts_and_cycle_records():
    p = straight()
    t = np.arange(0.0, p.t_stop, 1 / 60)
    tr = frame_truth(p, t)
    for side in SIDES:
        ph = tr[f"phase_{side}"]
        ok = np.isfinite(ph)
        assert ok.sum() > 200 and ph[ok].min() >= 0 and ph[ok].max() < 1
        # contact True in stance (phase < ~0.6), False in swing
        c = tr[f"contact_{side}"]
        assert c[ok & (ph < 0.55)].all() and not c[ok & (ph > 0.65) & (ph < 0.95)].any()
    assert not tr["walking"][0] and tr["walking"][len(t) // 2]
    cycles = cycle_truth(p)
    assert len(cycles) >= 8
    for c in cycles:
        assert set(c["metrics"]) == set(CYCLE_METRICS)
        m = c["metrics"]
        assert m["stance_pct"] + m["swing_pct"] == pytest.approx(100.0)
        assert m["cadence_spm"] == pytest.approx(120.0 / m["stride_time_s"])


def test_same_seed_same_walk_other_seed_other_walk():
    def build(seed):
        return Person.build(WalkerParams(), make_style("ataxic", 2), [Go((Line(4.0),))],
                            (0.0, 0.0), 0.0, 0.0, np.random.default_rng(seed))
    t = np.linspace(0, 4, 97)
    a, b, c = build(5), build(5), build(6)
    ja = layout_joints(a.evaluate(t)[0], "canonical22")
    assert np.array_equal(ja, layout_joints(b.evaluate(t)[0], "canonical22"))
    assert [e.t for e in a.events()] == [e.t for e in b.events()]
    assert np.abs(ja - layout_joints(c.evaluate(t)[0], "canonical22")).max() > 0.05


def test_turns_follow_the_path_and_start_stop_stands_still():
    params = WalkerParams()
    p = Person.build(params, make_style(), [Go((Line(2.0), Arc(1.0, 180.0), Line(2.0))),
                                            Stand(1.5), Go((Line(1.5),))],
                     (0.0, 0.0), 0.0, 0.0, np.random.default_rng(0))
    path = Path((0.0, 0.0), 0.0, [Line(2.0), Arc(1.0, 180.0), Line(2.0)])
    t = np.arange(0.0, p.t_stop, 1 / 30)
    pts, st = p.evaluate(t)
    walking = st["a"] > 0.9
    _, lateral = path.project(pts["pelvis"][walking & (t < p.walks[0].t_end)])
    assert np.abs(lateral).max() < 0.25  # the pelvis keeps to the path through the U-turn
    assert np.degrees(st["heading"][walking][-1] - st["heading"][0]) == pytest.approx(180, abs=10)
    # during the pause nothing but quiet-standing sway moves
    pause = (t > p.walks[0].t_end + 0.1) & (t < p.walks[1].t0 - 0.1)
    assert pause.sum() > 30
    assert np.ptp(pts["left_ankle"][pause], axis=0).max() < 1e-6
    assert np.ptp(pts["pelvis"][pause], axis=0).max() < 0.02
