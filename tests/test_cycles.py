"""Per-stride measures from exact events and a constructed per-frame trace; bout summaries."""

import numpy as np
import pytest

from inference.analysis.cycles import CycleOptions, Event, cycle_record, summarize
from inference.analysis.motion import Q_GAP, Q_LOW_CONF, TURNING, WALKING
from inference.analysis.kinematics import F, FEATURES
from streams.schema import CYCLE_METRICS

# A left stride 0.10 -> 1.20 s: right off 0.22, right strike 0.65, left off 0.77.
FS0, FO_R, FS_R, FO_L, FS1 = 100_000, 220_000, 650_000, 770_000, 1_200_000
EVENTS = [Event("left", "foot_strike", FS0), Event("right", "foot_off", FO_R),
          Event("right", "foot_strike", FS_R), Event("left", "foot_off", FO_L),
          Event("left", "foot_strike", FS1)]


def _trace():
    t = np.arange(0, 1_300_001, 10_000, dtype=np.int64)
    s = t * 1e-6
    f = np.zeros((len(t), len(FEATURES)))
    # ankles along the walking direction, linear in time so that interpolation is exact:
    # left ahead of right at the left strike (1.2 s) and behind at the right strike (0.65 s)
    f[:, F["ankle_fwd_left"]] = -0.5 + 0.6 * s
    f[:, F["ankle_fwd_right"]] = 0.6 - 0.7 * s
    f[:, F["ankle_lat_left"]] = 0.07
    f[:, F["ankle_lat_right"]] = -0.06
    f[:, F["knee_flexion_left"]] = 30 + 30 * np.sin(2 * np.pi * s)  # range 60, peak 60 at 0.25
    f[:, F["hip_flexion_left"]] = 10 + 20 * np.cos(2 * np.pi * s)
    f[:, F["arm_angle_left"]] = 15 * np.sin(2 * np.pi * s)
    for name in ("heel_fwd", "heel_vy"):  # a source without heels
        f[:, F[f"{name}_left"]] = f[:, F[f"{name}_right"]] = np.nan
    return t, f


def test_metrics_of_a_stride():
    t, f = _trace()
    q = np.zeros(len(t), np.int32)
    st = np.full(len(t), WALKING, np.int8)
    c = cycle_record("cam", 3, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(), 1_400_000)
    m = c.metrics
    assert set(m) == set(CYCLE_METRICS)
    assert (c.track, c.side, c.start_us, c.end_us, c.t_us) == (3, "left", FS0, FS1, 1_400_000)
    assert m["stride_time_s"] == pytest.approx(1.1)
    assert m["step_time_s"] == pytest.approx(0.55)
    assert m["cadence_spm"] == pytest.approx(120 / 1.1)
    left_step = (-0.5 + 0.6 * 1.2) - (0.6 - 0.7 * 1.2)  # 0.46 m
    right_step = (0.6 - 0.7 * 0.65) - (-0.5 + 0.6 * 0.65)  # 0.255 m
    assert m["step_length_m"] == pytest.approx(left_step)
    assert m["stride_length_m"] == pytest.approx(left_step + right_step)
    assert m["speed_mps"] == pytest.approx((left_step + right_step) / 1.1)
    assert m["step_width_m"] == pytest.approx(0.13)
    assert m["stance_pct"] == pytest.approx(100 * 0.67 / 1.1)
    assert m["swing_pct"] == pytest.approx(100 - 100 * 0.67 / 1.1)
    assert m["double_support_pct"] == pytest.approx(100 * (0.12 + 0.12) / 1.1)
    assert m["single_support_pct"] == pytest.approx(100 * 0.43 / 1.1)
    assert m["knee_rom_deg"] == pytest.approx(60.0, abs=0.1)
    assert m["hip_rom_deg"] == pytest.approx(40.0, abs=0.1)
    # swing 0.77-1.2 s: knee 30 + 30 sin(2 pi s) peaks at 1.2 s there
    assert m["peak_swing_knee_flexion_deg"] == pytest.approx(30 + 30 * np.sin(2 * np.pi * 1.2),
                                                             abs=0.01)
    assert m["arm_swing_deg"] == pytest.approx(30.0, abs=0.1)
    assert m["step_time_symmetry"] == pytest.approx(0.55 / 0.55)
    assert m["step_length_symmetry"] == pytest.approx(left_step / right_step)
    assert c.flags == []


def test_untrustworthy_strides_say_so():
    t, f = _trace()
    q = np.zeros(len(t), np.int32)
    q[20:60] = Q_LOW_CONF
    st = np.full(len(t), WALKING, np.int8)
    st[50] = TURNING
    no_off = [e for e in EVENTS if not (e.side == "left" and e.kind == "foot_off")]
    c = cycle_record("cam", 0, "left", FS0, FS1, no_off, t, f, q, st, CycleOptions(), FS1)
    assert c.metrics["stance_pct"] is None and c.metrics["peak_swing_knee_flexion_deg"] is None
    assert c.metrics["stride_time_s"] == pytest.approx(1.1)
    assert {"missing_events", "low_confidence", "turning"} <= set(c.flags)
    slow = cycle_record("cam", 0, "left", FS0, FS0 + 3_500_000, EVENTS, t, f, q,
                        st, CycleOptions(), FS1)
    assert "implausible_timing" in slow.flags


def test_summary_uses_trusted_cycles_only():
    t, f = _trace()
    q = np.zeros(len(t), np.int32)
    st = np.full(len(t), WALKING, np.int8)
    good = [cycle_record("c", 0, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(), 0)
            for _ in range(3)]
    good[1].metrics["stride_time_s"] = 1.0
    good[2].metrics["stride_time_s"] = 1.2
    bad = cycle_record("c", 0, "left", FS0, FS1, EVENTS[:1] + EVENTS[-1:], t, f, q, st,
                       CycleOptions(), 0)
    s = summarize(good + [bad])
    assert (s["cycles"], s["trusted_cycles"]) == (4, 3)
    st_m = s["metrics"]["stride_time_s"]
    assert st_m["n"] == 3 and st_m["mean"] == pytest.approx(1.1)
    assert st_m["cv_pct"] == pytest.approx(100 * 0.1 / 1.1)


def test_a_stride_longer_than_the_trace_gives_no_frame_measures():
    from inference.analysis.cycles import trusted

    t, f = _trace()
    q = np.zeros(len(t), np.int32)
    st = np.full(len(t), WALKING, np.int8)
    # the trace starts 0.3 s after the stride: range and peak measures would cover part of it
    keep = t >= FS0 + 300_000
    c = cycle_record("cam", 0, "left", FS0, FS1, EVENTS, t[keep], f[keep], q[keep], st[keep],
                     CycleOptions(), FS1)
    assert "too_few_frames" in c.flags and not trusted(c)
    assert c.metrics["knee_rom_deg"] is None and c.metrics["arm_swing_deg"] is None
    assert c.metrics["stride_time_s"] == pytest.approx(1.1)  # timing needs only the events
    # one gap in time inside the stride is enough to flag it (its events may be missing)
    q[60] = Q_GAP
    c = cycle_record("cam", 0, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(), FS1)
    assert c.flags == ["time_gap"]


def test_turn_is_judged_on_the_headings_shifted_by_their_delay():
    from inference.analysis.cycles import turn_deg

    t = np.arange(0, 3_000_001, 10_000, dtype=np.int64)
    # the heading estimate turns 90 deg between 1.3 and 1.6 s, 0.3 s after the walker did
    heading = np.radians(np.clip((t - 1_300_000) / 300_000, 0, 1) * 90.0)
    assert turn_deg(t, heading, 1_000_000, 1_300_000) == pytest.approx(0.0)
    assert turn_deg(t, heading, 1_000_000, 1_300_000, delay_us=300_000) == pytest.approx(90.0)
    assert turn_deg(t, heading, 5_000_000, 6_000_000) is None  # no heading there
    f = np.zeros((len(t), len(FEATURES)))
    q = np.zeros(len(t), np.int32)
    st = np.full(len(t), WALKING, np.int8)
    c = cycle_record("cam", 0, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(), FS1,
                     turned_deg=25.0)
    assert "turning" in c.flags
    st[50] = TURNING  # the lagging motion state does not decide when the swing is known
    c = cycle_record("cam", 0, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(), FS1,
                     turned_deg=5.0)
    assert "turning" not in c.flags


def test_every_flag_the_analysis_can_set_is_in_the_wire_vocabulary():
    """Reports and consoles say what a flag means from streams.schema.CYCLE_FLAGS: a flag the
    analysis or the worker sets must be there (and every untrusted flag is a flag)."""
    import re

    from conftest import REPO
    from inference.analysis.motion import QUALITY_NAMES
    from streams.schema import CYCLE_FLAGS, UNTRUSTED_FLAGS

    set_in_code = set(QUALITY_NAMES.values())
    for path in (REPO / "inference").rglob("*.py"):
        set_in_code |= set(re.findall(r'flags\.append\("(\w+)"\)', path.read_text()))
    assert len(set_in_code) >= 10
    assert set_in_code <= set(CYCLE_FLAGS)
    assert UNTRUSTED_FLAGS <= set(CYCLE_FLAGS)


def test_steps_are_measured_heel_to_heel_where_the_heels_are_seen():
    """With heels, a step is the heel-to-heel distance along the walking direction (the
    clinician's), not the ankles'; a strike whose heels are not both seen falls back to the
    ankles."""
    t, f = _trace()
    s = t * 1e-6
    # the left heel 4 cm behind its ankle, the right 7 cm (feet of different size or placing)
    f[:, F["heel_fwd_left"]] = f[:, F["ankle_fwd_left"]] - 0.04
    f[:, F["heel_fwd_right"]] = f[:, F["ankle_fwd_right"]] - 0.07
    f[s > 0.5, F["heel_fwd_right"]] = np.nan  # right heel unseen at the right strike (0.65 s)
    q = np.zeros(len(t), np.int32)
    st = np.full(len(t), WALKING, np.int8)
    m = cycle_record("cam", 3, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(),
                     1_400_000).metrics
    # left strike at 1.2 s: right heel unseen -> ankles; right strike at 0.65 s: ankles too
    assert m["step_length_m"] == pytest.approx((-0.5 + 0.6 * 1.2) - (0.6 - 0.7 * 1.2))
    f[:, F["heel_fwd_right"]] = f[:, F["ankle_fwd_right"]] - 0.07
    m = cycle_record("cam", 3, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(),
                     1_400_000).metrics
    heel_left_step = (-0.5 + 0.6 * 1.2 - 0.04) - (0.6 - 0.7 * 1.2 - 0.07)
    assert m["step_length_m"] == pytest.approx(heel_left_step)
    # the stride is the left heel's own travel, strike to strike: relative to the pelvis
    # (0.6 m/s * 1.1 s) plus the pelvis' (its forward speed, 0.9 m/s, over the stride); the
    # sum of the steps (0.46 + 0.285 m) would miss where the rear heel had gone at 0.65 s
    f[:, F["pelvis_fwd_speed"]] = 0.9
    m = cycle_record("cam", 3, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(),
                     1_400_000).metrics
    assert m["stride_length_m"] == pytest.approx(0.6 * 1.1 + 0.9 * 1.1)
    assert m["speed_mps"] == pytest.approx(0.6 + 0.9)
    assert m["step_length_m"] == pytest.approx(heel_left_step)


def test_on_a_treadmill_the_stride_is_the_sum_of_the_steps_not_the_heels_travel():
    """On a treadmill the pelvis does not progress and the footprints ride the belt: the heel's
    own travel, strike to strike, is near zero (OpenSim's subject01_walk1 read 0.00-0.03 m/s),
    while the two heel-to-heel steps are the belt's travel over the stride."""
    t, f = _trace()
    f[:, F["heel_fwd_left"]] = f[:, F["ankle_fwd_left"]] - 0.04
    f[:, F["heel_fwd_right"]] = f[:, F["ankle_fwd_right"]] - 0.07
    f[:, F["pelvis_fwd_speed"]] = 0.0
    q = np.zeros(len(t), np.int32)
    st = np.full(len(t), WALKING, np.int8)
    m = cycle_record("cam", 3, "left", FS0, FS1, EVENTS, t, f, q, st, CycleOptions(),
                     1_400_000).metrics
    left = (-0.5 + 0.6 * 1.2 - 0.04) - (0.6 - 0.7 * 1.2 - 0.07)
    right = (0.6 - 0.7 * 0.65 - 0.07) - (-0.5 + 0.6 * 0.65 - 0.04)
    assert m["stride_length_m"] == pytest.approx(left + right)
    assert m["speed_mps"] == pytest.approx((left + right) / 1.1)
