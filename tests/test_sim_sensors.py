"""The simulator's sensor models checked against their own ground truth (SensorTruth): dropped
frames, body-id switches and left/right swaps at the configured rates, several people each with
its own id (and hiding each other), errors that scale linearly with the noise setting, and
simulated swaps flagged ``left_right_swap`` by the classical analysis."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from capture.sim.paths import Line
from capture.sim.patterns import make_style
from capture.sim.person import Go, Person, Stand
from capture.sim.scenes import AWAY, TOWARDS
from capture.sim.sensors import Camera, Sensor, SensorConfig
from capture.sim.skeleton import LAYOUT_POINTS
from capture.sim.source import SimSource
from capture.sim.style import WalkerParams
from inference.analysis.analyzer import OnlineGaitAnalyzer
from streams.schema import GaitCycle
from streams.skeletons import CJ

RATE = 30.0
QUIET = dict(drop_rate=0.0, id_switches_per_min=0.0, swaps_per_min=0.0)


def stander(heading: float, seconds: float, x: float = 0.0, z: float = 2.5) -> Person:
    return Person.build(WalkerParams(), make_style(), [Stand(seconds)], (x, z), heading, 0.0,
                        np.random.default_rng(0))


def walker(heading: float, seed: int, length: float = 4.0) -> Person:
    """Stand 0.5 s, walk ``length`` m straight towards or away from the camera, stand 0.5 s."""
    z0 = 1.2 + length if heading == TOWARDS else 1.5
    return Person.build(WalkerParams(), make_style(),
                        [Stand(0.5), Go((Line(length),)), Stand(0.5)], (0.0, z0), heading, 0.0,
                        np.random.default_rng(seed))


def observe(persons: list[Person], cfg: SensorConfig, seconds: float | None = None,
            layout: str = "canonical22", seed: int = 1, shift=None):
    """Run the sensor over the persons at 30 Hz. Returns (t, [(bodies, truth)], sensor, true
    points per person: name -> (T, 3) world). ``shift(k)``: a world offset for frame k (to move
    a person out of view)."""
    end = seconds if seconds is not None else max(p.t_stop for p in persons)
    t = np.arange(0.0, end, 1 / RATE)
    ev = [p.evaluate(t) for p in persons]
    sensor = Sensor(cfg, layout, [p.params.height_m for p in persons], np.random.default_rng(seed))
    out = []
    for k, tk in enumerate(t):
        off = np.zeros(3) if shift is None else shift(k)
        people = [{n: v[k] + off for n, v in pts.items()} for pts, _ in ev]
        facing = [np.array([np.cos(st["heading"][k]), 0.0, np.sin(st["heading"][k])])
                  for _, st in ev]
        out.append(sensor.observe(float(tk), people, facing))
    return t, out, sensor, [pts for pts, _ in ev]


def onsets(flags: np.ndarray) -> int:
    f = np.asarray(flags, dtype=int)
    return int(f[0] + (np.diff(f) == 1).sum())


def test_dropped_frames_at_the_configured_rate():
    _, out, sensor, _ = observe([stander(TOWARDS, 60.0)],
                                SensorConfig("kinect", **{**QUIET, "drop_rate": 0.1}))
    dropped = np.array([truth.dropped for _, truth in out])
    assert 0.075 < dropped.mean() < 0.125  # 1800 frames: binomial sd 0.007
    assert sensor.counters["dropped"] == dropped.sum()
    # a dropped frame reports nothing, every other one the person
    assert all((len(bodies) == 0) == truth.dropped for bodies, truth in out)


def test_body_id_switches_at_the_configured_rate():
    _, out, sensor, _ = observe([stander(TOWARDS, 60.0)],
                                SensorConfig("kinect", **{**QUIET, "id_switches_per_min": 60.0}))
    ids = np.array([truth.body_ids[0] for _, truth in out])
    switches = int((np.diff(ids) != 0).sum())
    assert switches == sensor.counters["id_switches"]
    assert 40 <= switches <= 80  # 60 expected in a minute (Poisson sd 7.7)
    assert len(set(ids.tolist())) == switches + 1  # a new id each time, never an old one
    # the reported body carries the id the truth says
    assert all(bodies[0][0] == truth.body_ids[0] for bodies, truth in out)


@pytest.mark.parametrize("away_s,new_id", [(1.0, True), (0.3, False)])
def test_a_body_unseen_for_over_half_a_second_comes_back_with_a_new_id(away_s, new_id):
    n_away = int(away_s * RATE)
    # the person is carried 20 m sideways (out of view) for a while, then comes back
    shift = lambda k: np.array([20.0, 0.0, 0.0]) if 30 <= k < 30 + n_away else np.zeros(3)
    _, out, sensor, _ = observe([stander(TOWARDS, 3.0)], SensorConfig("kinect", **QUIET),
                                shift=shift)
    seen = [bool(bodies) for bodies, _ in out]
    assert seen[:30] == [True] * 30 and not any(seen[30:30 + n_away]) and all(seen[30 + n_away:])
    ids = [truth.body_ids[0] for bodies, truth in out if bodies]
    assert (len(set(ids)) == 2) == new_id and sensor.counters["id_switches"] == int(new_id)


def test_left_right_swaps_at_the_configured_rate_likelier_facing_away():
    cfg = SensorConfig("kinect", noise=0.0, **{**QUIET, "swaps_per_min": 12.0})
    counts = {}
    for name, heading, factor in (("towards", TOWARDS, 0.5), ("away", AWAY, 4.0)):
        _, out, sensor, pts = observe([stander(heading, 60.0)], cfg)
        swapped = np.array([truth.swapped[0] for _, truth in out])
        counts[name] = onsets(swapped)
        assert counts[name] <= sensor.counters["swaps"] <= counts[name] + 1  # back-to-back
        # a swap starts at rate (12/min x factor) while none is under way, lasts 0.3-1.5 s
        expected = 60.0 / (60.0 / (12.0 * factor) + 0.9)
        assert 0.6 * expected <= counts[name] <= 1.4 * expected, (name, counts[name], expected)
        # noise-free: the reported left leg is exactly the true right one while swapped
        cam = cfg.camera
        for k in (np.flatnonzero(swapped)[:5].tolist() + np.flatnonzero(~swapped)[:5].tolist()):
            (_, joints, _), = out[k][0]
            for a, b in (("left_knee", "right_knee"), ("left_ankle", "right_ankle")):
                true_src = b if swapped[k] else a
                np.testing.assert_allclose(joints[CJ[a]], cam.to_camera(pts[0][true_src][k]),
                                           atol=1e-5)
    assert counts["away"] > 3 * counts["towards"]


def test_several_people_each_with_its_own_id_and_hiding_each_other():
    front, behind = stander(TOWARDS, 2.0, z=2.0), stander(TOWARDS, 2.0, x=0.3, z=3.5)
    cfg = SensorConfig("kinect", noise=0.0, **QUIET)
    _, both, _, pts = observe([front, behind], cfg)
    _, alone, _, _ = observe([behind], cfg)
    for k, (bodies, truth) in enumerate(both):
        assert sorted(truth.body_ids) == [0, 1] and len(set(truth.body_ids.values())) == 2
        by_id = {bid: (j, c) for bid, j, c in bodies}
        for who in (0, 1):  # each reported id is on its own person
            j, _ = by_id[truth.body_ids[who]]
            np.testing.assert_allclose(j[CJ["pelvis"]], cfg.camera.to_camera(pts[who]["pelvis"][k]),
                                       atol=1e-3)  # canonical pelvis: mapped from the hips
    hidden = lambda out, who: np.mean([(c < 0.5).sum() for bid, j, c in out[0][0]
                                       if bid == out[0][1].body_ids[who]])
    # the person behind loses joints to the one in front (LOW confidence), not when alone
    assert hidden(both, 1) >= 5 and hidden(alone, 0) == 0 and hidden(both, 0) == 0


def test_the_live_source_sends_several_people_with_their_own_ids():
    src = SimSource("sim", rate_hz=30.0, seed=3, people=3, scene="towards", duration_s=6.0)
    frames = list(src.frames())
    counts = [len(f.bodies) for f in frames]
    assert counts[0] == 3 and all(n == 3 for n in counts)
    ids = {b.body_id for f in frames for b in f.bodies}
    assert ids == {1, 2, 3}  # no sensor: one stable id per person
    # three lanes 0.9 m apart across the walking direction, each body staying in its own
    lanes = {b.body_id: [] for b in frames[0].bodies}
    for f in frames:
        for b in f.bodies:
            lanes[b.body_id].append(b.joints[CJ["pelvis"], 0])
    means = sorted(float(np.mean(v)) for v in lanes.values())
    np.testing.assert_allclose(np.diff(means), 0.9, atol=0.05)
    assert all(np.ptp(v) < 0.2 for v in lanes.values())
    assert {who for who, *_ in src.events} == {0, 1, 2}


def test_mediapipe_errors_scale_linearly_with_the_noise_setting():
    # same seed, same draws: every error term must scale with `noise` once (the per-person
    # bias and scale error were drawn scaled and must not be scaled again)
    person = walker(TOWARDS, seed=2)
    cam = Camera()
    names = LAYOUT_POINTS["mediapipe33"]
    err = {}
    for noise in (1.0, 3.0):
        _, out, _, pts = observe([person], SensorConfig("mediapipe", noise=noise, **QUIET),
                                 layout="mediapipe33", seed=4, seconds=3.0)
        e = []
        for k, (bodies, _) in enumerate(out):
            if not bodies:
                e.append(np.full((len(names), 3), np.nan))
                continue
            _, j, c = bodies[0]
            true = cam.to_camera(np.stack([pts[0][n][k] for n in names]))
            e.append(np.where((c > 0.2)[:, None], j - true, np.nan))  # seen landmarks
        err[noise] = np.array(e)
    ok = np.isfinite(err[1.0])
    assert ok.mean() > 0.5
    np.testing.assert_allclose(err[3.0][ok], 3.0 * err[1.0][ok], atol=2e-4)


def _swap_strides(seed: int) -> list[tuple[float, bool]]:
    """A walk towards the camera seen by a noisy Kinect that swaps often: per published stride,
    the share of its frames the sensor had swapped and whether the analysis flagged it."""
    t, out, _, _ = observe([walker(TOWARDS, seed)],
                           SensorConfig("kinect", noise=1.0, **{**QUIET, "swaps_per_min": 40.0}),
                           seed=seed)
    a = OnlineGaitAnalyzer("cam", 0)
    rec = []
    for tk, (bodies, _) in zip(t, out):
        if bodies:
            rec += a.push(int(round(tk * 1e6)), bodies[0][1], bodies[0][2])
    rec += a.flush()
    swapped = np.array([truth.swapped.get(0, False) for _, truth in out])
    res = []
    for c in rec:
        if isinstance(c, GaitCycle):
            inside = (t * 1e6 >= c.start_us) & (t * 1e6 <= c.end_us)
            res.append((float(swapped[inside].mean()), "left_right_swap" in c.flags))
    return res


def test_simulated_swaps_are_flagged_by_the_classical_analysis():
    logging.getLogger("inference.analysis.analyzer").setLevel(logging.ERROR)
    strides = list(itertools.chain.from_iterable(_swap_strides(s) for s in range(1, 7)))
    share = np.array([s for s, _ in strides])
    flagged = np.array([f for _, f in strides])
    mostly, clean = share >= 0.5, share == 0
    assert mostly.sum() >= 8 and clean.sum() >= 20
    # measured: 11 of the 11 strides swapped for at least half their frames are flagged, 1 of
    # the 27 without a swapped frame (depth noise at 1.5-5 m reads as crossed legs); fewer
    # strides than the 19 and 40 before the event detector stopped taking noise for steps
    assert flagged[mostly].mean() >= 0.8
    assert flagged[clean].mean() <= 0.1
