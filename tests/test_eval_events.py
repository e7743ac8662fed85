"""Event evaluation: matching rules, truth checks, and the accuracy pinned on the shared data."""

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from inference.eval.events import (evaluate, full_contacts, lab_marks_disagree,
                                   lab_marks_inconsistent, match_events)


def test_matching_is_one_to_one_nearest_first_within_tolerance():
    truth = [("left", "foot_strike", 1_000_000), ("left", "foot_strike", 1_080_000),
             ("right", "foot_off", 2_000_000)]
    det = [("left", "foot_strike", 1_070_000), ("left", "foot_strike", 1_300_000),
           ("left", "foot_off", 2_000_000)]
    m, used = match_events(truth, det, 100_000)
    # the detection at 1.07 s goes to the truth at 1.08 s (closer), the one at 1.0 s stays
    # unmatched; a detection of the wrong side never matches; 1.3 s is too far
    assert [x.error_ms for x in m] == [None, -10.0, None] and used == {0}
    m2, _ = match_events([("any", "foot_off", 2_050_000)], det, 100_000, side_aware=False)
    assert m2[0].error_ms == -50.0


@dataclass
class E:
    side: str
    kind: str
    t_us: int


@dataclass
class C:
    plate: int
    on_us: int
    off_us: int
    complete: bool
    peak_vertical_n: float


def test_lab_marks_that_contradict_themselves_or_the_plates():
    ok = [E("right", "foot_strike", 1_000_000), E("right", "foot_off", 1_650_000),
          E("left", "foot_strike", 1_550_000), E("left", "foot_off", 2_200_000)]
    assert lab_marks_inconsistent(ok) is None
    bad = ok + [E("left", "foot_off", 1_650_000)]  # 100 ms after its own strike
    assert "stance of 100 ms" in lab_marks_inconsistent(bad)
    plates = [C(1, 1_010_000, 1_640_000, True, 700.0), C(2, 3_000_000, 3_600_000, True, 690.0)]
    assert lab_marks_disagree(ok, plates, 100_000) is None  # plate 2 lies outside the marks
    shifted = [C(1, 1_400_000, 1_900_000, True, 700.0)]
    assert "150 ms from any marked" in lab_marks_disagree(ok, shifted, 100_000)
    keep, why = full_contacts([C(1, 0, 1, True, 700.0), C(2, 0, 1, True, 150.0),
                               C(3, 0, 1, False, 650.0)])
    assert [c.plate for c in keep] == [1] and "partial" in why[0] and "cut" in why[1]


def test_accuracy_on_the_shared_gait_data(shared_data):
    rep = evaluate([shared_data / "c3d_gait_lab_samples",
                    shared_data / "opensim_walking_trc_grf",
                    shared_data / "opencap_mocap_modified_gait"])
    o = rep["overall"]
    # Measured: 78 events in 11 trials, recall 1.000, precision 1.000, foot strike median
    # 11.5 ms (p90 45.4), foot off 13.1 ms (p90 38.2); plates (side-agnostic) recall 1.000,
    # strike 9.1 ms, off 12.5 ms; knee RMS after offset removal max 3.4 deg. (Before the
    # heels timed the strikes: strike 14.4 ms (p90 40.1), plates 23.7 ms.)
    # Goals: strike <= 20 ms, off <= 25 ms, recall >= 0.9, precision >= 0.95, knee <= 5 deg.
    assert o["events"] >= 75
    assert o["recall"] >= 0.97 and o["precision"] >= 0.97
    assert o["foot_strike"]["median_abs_ms"] <= 13.0 and o["foot_strike"]["p90_abs_ms"] <= 48
    assert o["foot_off"]["median_abs_ms"] <= 17.0 and o["foot_off"]["p90_abs_ms"] <= 48
    assert o["plates"]["recall"] >= 0.95 and o["plates"]["contacts_events"] >= 50
    assert o["plates"]["foot_strike"]["median_abs_ms"] <= 12.0
    assert o["plates"]["foot_off"]["median_abs_ms"] <= 17.0
    assert o["angles"]["knee_flexion"]["max_rms_deg"] <= 4.0
    # steps and stride speeds against the heel markers at the true strikes. Measured: step
    # bias +0.1 cm (median |err| 0.4 cm, 15 steps), speed bias +0.005 m/s (13 strides);
    # ankle to ankle and steps summed (before): -2.8 cm (3.3 cm), -0.123 m/s
    assert o["step_length_m"]["n"] >= 12 and abs(o["step_length_m"]["bias"]) <= 0.01
    assert o["step_length_m"]["median_abs"] <= 0.015
    assert o["speed_mps"]["n"] >= 10 and abs(o["speed_mps"]["bias"]) <= 0.02
    assert o["angles"]["knee_flexion"]["series"] >= 36
    lab = rep["datasets"]["c3d_gait_lab_samples"]
    assert lab["recall"] >= 0.97 and lab["foot_strike"]["median_abs_ms"] <= 18.0
    # what was skipped, and why, is reported
    rows = {r["trial"]: r for r in rep["trials"]}
    assert any("disagree with force plate" in s
               for s in rows["BTK__PiG_Motion-FlatFoot-Full"]["skipped_events"])
    assert any("side label must be wrong" in s
               for s in rows["BTK__FunctionalWalk"]["skipped_events"])
    assert any("partial contact" in s for s in rows["C3DORG_s03_gait-pig-nz"]["skipped_events"])
    assert any("markers missing" in s for s in rows["C3DORG_s03_gait-pig"]["skipped_events"])
    assert "marker clusters alone" in rep["skipped_trials"]["C3DORG_s01_Eb015pr"]


def test_cli_prints_the_report_and_json_last(shared_data):
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "eval", "events",
                        str(shared_data / "opensim_walking_trc_grf"), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    rep = json.loads(lines[-1])
    assert rep["model"] == "classical" and rep["overall"]["events"] == 6
    assert rep["overall"]["recall"] == 1.0
    assert any(line.startswith("subject01_walk1") for line in lines)
    with pytest.raises(ValueError, match="unknown model"):
        evaluate([shared_data / "opensim_walking_trc_grf"], model="nonsense")
    bad = subprocess.run([sys.executable, "-m", "deploy.cli", "eval", "events",
                          str(shared_data / "opensim_walking_trc_grf"), "--model", "nonsense"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown model 'nonsense'" in bad.stdout


def test_the_shared_data_folder_stands_for_its_datasets_with_event_truth(shared_data):
    """`gaitstream eval events ../shared/data` must evaluate every folder with event truth
    (it used to find only the TRC folders and silently leave out the gait-lab C3Ds)."""
    from inference.eval.events import dataset_dirs

    assert [d.name for d in dataset_dirs(shared_data)] == [
        "c3d_gait_lab_samples", "opencap_mocap_modified_gait", "opensim_walking_trc_grf"]
    assert dataset_dirs(shared_data / "opensim_walking_trc_grf") == \
        [shared_data / "opensim_walking_trc_grf"]


class _WithoutFootPoints:
    """The classical analysis as for a source without heels (the 22 joints only)."""

    def __init__(self, source: str, track: int):
        from inference.analysis.analyzer import OnlineGaitAnalyzer

        self.inner = OnlineGaitAnalyzer(source, track)

    def push(self, t_us, joints, conf):
        return self.inner.push(t_us, joints, conf)

    def flush(self):
        return self.inner.flush()


def _strike_errors(paths, factory):
    from inference.eval.events import evaluate_trial

    plates, marks = [], []
    for p in paths:
        r = evaluate_trial(p, factory, 100.0, 0.3)
        plates += [m.error_ms for m in r.plate_matches if m.kind == "foot_strike"]
        marks += [m.error_ms for m in r.matches if m.kind == "foot_strike"]
    return plates, marks


def test_heel_strikes_against_force_plates_and_lab_marks(shared_data):
    """Where the lab has heel markers the strike is the end of the heel's fall: against the
    force plates of the 240 Hz Qualisys walks (C3DORG_s26, 13 contacts) and the lab marks of a
    Vicon and a Motion Analysis trial. Measured: plates median 8.0 ms (max 12.4), marks median
    7.6 ms (max 18), every event found; the ankle-based strike on the same frames (a source
    without heels): plates median 21 ms, marks 27 ms."""
    import numpy as np

    from inference.eval.events import MODELS

    trials = shared_data / "c3d_gait_lab_samples" / "trials"
    s26 = sorted(trials.glob("C3DORG_s26_*.c3d"))
    plates, _ = _strike_errors(s26, MODELS["classical"])
    assert len(plates) >= 12 and None not in plates
    assert np.median(np.abs(plates)) <= 10.0 and np.max(np.abs(plates)) <= 15.0
    ankle, _ = _strike_errors(s26, _WithoutFootPoints)
    assert np.median(np.abs([e for e in ankle if e is not None])) >= 18.0
    _, marks = _strike_errors([trials / "BTK__PiG_Motion-FlatFoot-One.c3d",
                               trials / "C3DORG_s00_MAC_Walk1.c3d"], MODELS["classical"])
    assert len(marks) >= 6 and None not in marks
    assert np.median(np.abs(marks)) <= 10.0 and np.max(np.abs(marks)) <= 22.0


def test_the_intellevent_peer_runs_beside_ours_with_the_same_matching(shared_data):
    """With the extra (gaitkit) installed, the peer's events go through the same evaluation;
    the side-by-side table names both. Measured on all shared lab data, clean: ours recall
    1.000 / strike 11 ms / plates 10 ms, IntellEvent 0.692 / 18 ms / 10 ms. gaitkit needs
    numpy 2, which the webcam extra's MediaPipe forbids, so the dev install (CI) has no gaitkit:
    there the command must stop at once with the one line naming the extra."""
    import importlib.util

    cmd = [sys.executable, "-m", "deploy.cli", "eval", "events",
           str(shared_data / "c3d_gait_lab_samples"), "--peer", "intellevent", "--json"]
    if importlib.util.find_spec("gaitkit") is None:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert p.returncode == 2
        assert p.stdout.strip().splitlines()[-1].startswith(
            'error: the IntellEvent peer needs gaitkit and onnxruntime: pip install '
            '"gaitstream[peers]"'), p.stdout[-500:]
        assert "[c3d_gait_lab_samples" not in p.stderr  # nothing was evaluated first
        return
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    assert rep["peer"]["model"] == "peer:intellevent" and "classical vs peer:intellevent" in p.stdout
    assert rep["peer"]["overall"]["events"] == rep["overall"]["events"]
    assert rep["peer"]["overall"]["recall"] >= 0.6
