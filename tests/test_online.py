"""OnlineGaitAnalyzer: bad input, options, batching invariance, cycles and bouts of a constructed
walker, and a real Kinect v1 walk (no event truth there: plausibility only)."""

import numpy as np
import pytest

from inference.online import AnalyzerOptions, OnlineGaitAnalyzer
from streams.schema import GaitCycle, GaitEvent, decode, encode

from _stepping_walker import Gait, walk


def _feed(a, t_s, joints, conf=None):
    conf = np.ones((len(t_s), 22), np.float32) if conf is None else conf
    out = []
    for i, t in enumerate((np.asarray(t_s) * 1e6).round().astype(np.int64)):
        out += a.push(int(t), joints[i].astype(np.float32), conf[i])
    return out + a.flush()


def test_bad_frames_are_rejected_counted_and_survived():
    a = OnlineGaitAnalyzer("cam", 1)
    j = walk(Gait(), np.array([0.0, 0.1]))
    assert a.push(0, j[0], np.ones(22)) == []
    assert a.push(100, np.zeros((20, 3)), np.ones(20)) == []  # wrong layout
    assert a.push(0, j[1], np.ones(22)) == []  # not after the previous frame
    nan = j[1].copy()
    nan[3] = np.nan
    a.push(200_000, nan, np.ones(22))  # a NaN joint is a lost joint, not a crash
    assert a.counters["rejected"] == 2 and a.counters["frames"] == 2
    a.flush()


def test_options_are_checked_and_look_ahead_stated():
    with pytest.raises(ValueError, match="unknown"):
        OnlineGaitAnalyzer("cam", 0, smothing_ms=50)
    o = AnalyzerOptions.from_flat({"confirm_ms": 150, "stance_pct_range": [40, 80],
                                   "min_confidence": 0.3, "batch_ms": 0})
    assert o.events.confirm_ms == 150 and o.cycles.stance_pct_range == (40, 80)
    assert o.frames.min_confidence == 0.3
    assert o.lookahead_ms == o.smoothing_ahead_ms + 150


def test_batching_changes_latency_not_results():
    t = np.arange(0, 7, 1 / 60)
    j = walk(Gait(heading_deg=-30), t)
    out0 = _feed(OnlineGaitAnalyzer("cam", 0, batch_ms=0), t, j)
    out1 = _feed(OnlineGaitAnalyzer("cam", 0, batch_ms=150), t, j)
    ev = lambda out: [(e.side, e.kind, e.event_us) for e in out if isinstance(e, GaitEvent)]
    cy = lambda out: [(c.side, c.start_us, c.metrics) for c in out if isinstance(c, GaitCycle)]
    assert ev(out0) == ev(out1) and len(ev(out0)) > 20
    assert cy(out0) == cy(out1)


def test_cycles_of_the_constructed_walker():
    g = Gait()
    t = np.arange(0, 9, 1 / 30)
    out = _feed(OnlineGaitAnalyzer("cam", 4), t, walk(g, t))
    cycles = [c for c in out if isinstance(c, GaitCycle)]
    assert len(cycles) >= 12
    for c in cycles:
        m = c.metrics
        assert c.flags == [] and c.track == 4 and c.method == "classical"
        assert m["stride_time_s"] == pytest.approx(1.1, abs=0.005)
        assert m["cadence_spm"] == pytest.approx(120 / 1.1, abs=0.5)
        assert m["step_width_m"] == pytest.approx(0.16, abs=0.005)
        # strikes are found 45 ms early (see test_events), the foot then still moving: lengths
        # and speed come out 1-2 % short
        assert m["stride_length_m"] == pytest.approx(1.3, rel=0.03)
        assert m["speed_mps"] == pytest.approx(g.speed, rel=0.03)
        assert m["step_time_symmetry"] == pytest.approx(1.0, abs=0.02)
        assert m["knee_rom_deg"] > 30 and m["arm_swing_deg"] == pytest.approx(28.6, abs=1.5)
        # every record crosses the wire intact
        back = decode(encode(c))
        assert back.metrics == pytest.approx(m) and back.flags == c.flags


def test_bouts_are_split_by_standing():
    g = Gait()
    walk_t = np.arange(0, 5, 1 / 30)
    j = walk(g, walk_t)
    stand = np.repeat(j[:1], 60, axis=0)  # 2 s standing still before
    stand2 = np.repeat(j[-1:], 60, axis=0)  # and 2 s between two walks
    joints = np.concatenate([stand, j, stand2, j - j[0] + j[-1]])
    t = np.arange(len(joints)) / 30
    a = OnlineGaitAnalyzer("cam", 0, keep_trace=True)
    out = _feed(a, t, joints)
    assert len(a.bouts) == 2
    (s1, e1), (s2, e2) = a.bouts
    assert 1.8 < s1 / 1e6 < 2.8 and 6.2 < e1 / 1e6 < 7.2 and 8.8 < s2 / 1e6 < 9.8
    # no stride is made across the standing pause
    assert all(c.end_us - c.start_us < 1.5e6 for c in out if isinstance(c, GaitCycle))


def test_kinect_v1_walk_gives_plausible_events_and_cycles(shared_data):
    from capture.readers import load_recording

    rec = load_recording(shared_data / "kinect_v1_walking_andersson2015/walks/Person003/1.txt")
    a = OnlineGaitAnalyzer("kinect", 0, keep_trace=True)
    out = _feed(a, rec.t_us / 1e6, rec.joints, rec.confidence)
    events = [e for e in out if isinstance(e, GaitEvent)]
    cycles = [c for c in out if isinstance(c, GaitCycle)]
    # ~19 s of walking at ~1.1 s strides: about 17 strides, 4 events each
    assert 55 <= len(events) <= 95 and len(cycles) >= 25
    # the camera turned to follow the walker: the direction came from the body
    assert sum("direction_from_body" in c.flags for c in cycles) >= 0.8 * len(cycles)
    trusted = [c for c in cycles if not {"missing_events", "implausible_timing"} & set(c.flags)]
    cad = np.median([c.metrics["cadence_spm"] for c in trusted])
    assert len(trusted) >= 15 and 90 <= cad <= 125
