"""OnlineGaitAnalyzer: bad input, options, batching invariance, cycles and bouts of a constructed
walker, and a real Kinect v1 walk (no event truth there: plausibility only)."""

import numpy as np
import pytest

from inference.analysis.analyzer import AnalyzerOptions, OnlineGaitAnalyzer
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


def test_a_jittery_standing_walker_makes_no_steps():
    # a depth camera's correlated jitter (AR(1), 0.1 s; 5 cm at the feet, 2 cm elsewhere) on a
    # walker standing still for 10 s made 70-80 events; the foot that never moved makes none
    # (the noise's rare 25 cm excursion may make one or two)
    from streams.skeletons import CJ

    t = np.arange(0, 10, 1 / 30)
    j = np.repeat(walk(Gait(), t[:1]), len(t), axis=0)
    rng = np.random.default_rng(0)
    sigma = np.full(22, 0.02)
    sigma[[CJ[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]] = 0.05
    rho, ar = np.exp(-1 / 3), np.zeros((22, 3))
    for k in range(len(t)):
        ar = rho * ar + np.sqrt(1 - rho ** 2) * rng.standard_normal((22, 3))
        j[k] += sigma[:, None] * (0.8 * ar + 0.6 * rng.standard_normal((22, 3)))
    a = OnlineGaitAnalyzer("cam", 0)
    events = [m for m in _feed(a, t, j) if isinstance(m, GaitEvent)]
    assert len(events) <= 4 and a.counters["frames"] == len(t)


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


def _walk_with(hold_s: float = 0.0, gap_s: float = 0.0, g: Gait = Gait(), rate: float = 30.0):
    """5 s of walking, then ``hold_s`` standing still (the last pose held) or ``gap_s`` without
    frames, then 5 s more; returns (t, joints) and the time the interruption starts."""
    j1 = walk(g, np.arange(0, 5, 1 / rate))
    j2 = walk(g, np.arange(5, 10, 1 / rate))
    joints = np.concatenate([j1, np.repeat(j1[-1:], int(round(hold_s * rate)), axis=0),
                             j2 - j2[0] + j1[-1]])
    t = np.arange(len(joints)) / rate
    t[len(j1) + int(round(hold_s * rate)):] += gap_s
    return t, joints, len(j1) / rate


def _spanning(out, t0: float, t1: float) -> list:
    return [c for c in out if isinstance(c, GaitCycle) and c.start_us < t0 * 1e6
            and c.end_us > t1 * 1e6]


def test_strides_that_should_not_be_trusted_are_published_flagged():
    from inference.analysis.cycles import trusted

    # a 1.6 s stand inside a walk (shorter than the 1 s standing-state pause after the 1 s the
    # motion state needs to call it standing): both sides' strides across it are published,
    # flagged, and not trusted
    t, j, t_stop = _walk_with(hold_s=1.6)
    a = OnlineGaitAnalyzer("cam", 0)
    out = _feed(a, t, j)
    across = _spanning(out, t_stop, t_stop + 1.6)
    assert sorted(c.side for c in across) == ["left", "right"]
    for c in across:
        assert "standing" in c.flags and not trusted(c)
        assert c.metrics["stride_time_s"] == pytest.approx((c.end_us - c.start_us) / 1e6)
        assert c.metrics["stride_time_s"] > 2.0
    assert a.counters["unpaired_strikes"] == 0
    # the strides around it are untouched
    clean = [c for c in out if isinstance(c, GaitCycle) and c not in across]
    assert len(clean) >= 12 and all(c.flags == [] for c in clean)

    # strides longer than max_stride_s (3.3 s): every one published, flagged
    slow = Gait(stride_s=3.3)
    ts = np.arange(0, 16, 1 / 30)
    out = _feed(OnlineGaitAnalyzer("cam", 0), ts, walk(slow, ts))
    cycles = [c for c in out if isinstance(c, GaitCycle)]
    assert len(cycles) >= 6
    for c in cycles:
        assert "implausible_timing" in c.flags and not trusted(c)
        assert c.metrics["stride_time_s"] == pytest.approx(3.3, abs=0.02)
        assert c.metrics["knee_rom_deg"] > 20  # the trace covers the whole stride

    # half a second without frames inside a stride: published, flagged time_gap
    t, j, t_gap = _walk_with(gap_s=0.5)
    out = _feed(OnlineGaitAnalyzer("cam", 0), t, j)
    across = _spanning(out, t_gap, t_gap + 0.5)
    assert len(across) >= 1 and all("time_gap" in c.flags for c in across)


@pytest.mark.parametrize("hold_s,gap_s", [(3.0, 0.0), (0.0, 2.0)])
def test_a_pause_splits_strides_without_a_record(hold_s, gap_s):
    # standing 3 s (2 s of it in the standing state) or 2 s without frames: the strikes before
    # and after belong to two walks; the interval is counted, not published as a stride
    t, j, t_stop = _walk_with(hold_s=hold_s, gap_s=gap_s)
    a = OnlineGaitAnalyzer("cam", 0)
    out = _feed(a, t, j)
    cycles = [c for c in out if isinstance(c, GaitCycle)]
    assert _spanning(out, t_stop, t_stop + hold_s + gap_s) == []
    assert a.counters["unpaired_strikes"] == 2  # one per side
    before = [c for c in cycles if c.end_us <= t_stop * 1e6]
    after = [c for c in cycles if c.start_us >= (t_stop + hold_s + gap_s) * 1e6]
    assert len(before) >= 6 and len(after) >= 5 and len(before) + len(after) == len(cycles)
