"""The simulator as a live source, its sensor models, its patterns' measurable effects, and its
datasets read back by the same tools as the real data (events recovered by the classical
analysis, degradation with noise)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest

from capture.sim.dataset import simulate_trial, write_dataset
from capture.sim.source import SimSource
from capture.sources import make_source
from streams.schema import decode, encode
from streams.skeletons import LAYOUTS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def take(src: SimSource, n: int) -> list:
    frames = list(itertools.islice(src.frames(), n))
    src.close()
    return frames


def test_sim_source_publishes_canonical_frames_at_its_rate():
    frames = take(SimSource("sim", rate_hz=30.0, seed=4), 90)
    assert len(frames) == 90
    t = np.array([f.t_us for f in frames])
    np.testing.assert_allclose(np.diff(t), 1e6 / 30.0, atol=1)
    for f in frames:
        assert f.layout == "canonical22" and len(f.bodies) == 1
        j = f.bodies[0].joints
        assert j.shape == (22, 3) and j.dtype == np.float32 and np.isfinite(j).all()
        assert decode(encode(f)).bodies[0].joints.tobytes() == j.tobytes()  # valid on the wire
    # a standing adult of plausible height, feet on the floor (y up, metres)
    j0 = frames[0].bodies[0].joints
    assert 1.3 < j0[:, 1].max() - j0[:, 1].min() < 2.1
    assert abs(j0[:, 1].min()) < 0.1


def test_same_seed_same_frames_other_seed_other_frames():
    def walk(seed: int) -> tuple[list[int], list[bytes]]:
        frames = take(SimSource("sim", seed=seed, sensor="kinect"), 150)
        return ([f.t_us for f in frames],
                [b"".join(b.joints.tobytes() + b.confidence.tobytes() for b in f.bodies)
                 for f in frames])

    a, b, c = walk(7), walk(7), walk(8)
    assert sum(1 for x in a[1] if x) > 50  # the walker was seen
    assert a == b
    assert a[1] != c[1]


@pytest.mark.parametrize("sensor,layout", [("kinect", "azure_kinect32"),
                                           ("mediapipe", "mediapipe33"),
                                           ("kinect", "canonical22")])
def test_sensor_models_report_in_the_device_layout(sensor, layout):
    kw = {} if layout != "canonical22" else {"layout": "canonical22"}
    src = SimSource("cam", rate_hz=30.0, seed=1, sensor=sensor, duration_s=20.0, **kw)
    frames = list(src.frames())
    n_joints = len(LAYOUTS[layout])
    assert all(f.layout == layout for f in frames)
    bodies = [b for f in frames for b in f.bodies]
    assert len(bodies) > 0.8 * 20 * 30
    conf = np.stack([b.confidence for b in bodies])
    assert conf.shape[1] == n_joints
    assert ((conf >= 0) & (conf <= 1)).all()
    # some joints are occluded or out of view at some time, most are seen most of the time
    assert (conf < 0.5).any() and (conf >= 0.5).mean() > 0.6
    # the camera frame: the walker is in front of the camera (-z), within the Kinect's range
    pelvis = np.stack([b.joints[0] for b in bodies])
    assert (pelvis[:, 2] < -0.4).mean() > 0.95 and (pelvis[:, 2] > -6.0).all()


def test_kinect_noise_scales_the_error_against_the_exact_joints():
    def err(noise: float) -> float:
        trial = simulate_trial(0, "normal", "towards", (1,), "kinect", noise, 30.0,
                               np.random.default_rng(3))
        f = trial["frames"]
        seen = f["confidence"] >= 0.5
        # both are in different frames (camera vs floor): compare joint-to-pelvis vectors
        rep = f["joints"] - f["joints"][:, :1]
        tru = f["joints_true"] - f["joints_true"][:, :1]
        d = np.linalg.norm(np.linalg.norm(rep, axis=2) - np.linalg.norm(tru, axis=2), axis=0)
        return float(np.nanmedian(np.abs(
            np.linalg.norm(rep, axis=2) - np.linalg.norm(tru, axis=2))[seen]))

    e0, e1, e3 = err(0.0), err(1.0), err(3.0)
    assert e0 < 1e-3  # x0: exact positions
    assert 0.005 < e1 < 0.05  # about the published 1-5 cm
    assert e3 > 2 * e1


def test_unknown_options_and_bad_values_are_refused_with_their_names():
    with pytest.raises(TypeError, match="speed"):
        SimSource("sim", speeed_mps=1.0)
    with pytest.raises(ValueError, match="rate_hz"):
        SimSource("sim", rate_hz=0.0)
    with pytest.raises(ValueError, match="scene"):
        SimSource("sim", scene="moon")
    with pytest.raises(ValueError, match="pattern"):
        SimSource("sim", pattern="moonwalk")


def test_sim_is_a_configured_capture_source():
    src = make_source("sim", "camera", {"rate_hz": 30, "seed": 2, "duration_s": 2.0})
    frames = list(src.frames())
    assert len(frames) == 60 and src.paced
    assert src.state["sim"] == "ended"


def _steady(cycles: list[dict], key: str, side: str | None = None) -> float:
    vals = [float(c[key]) for c in cycles[2:-2]
            if c[key] not in ("", None) and (side is None or c["side"].lower() == side)]
    assert vals, key
    return float(np.median(vals))


@pytest.fixture(scope="module")
def trials():
    def run(pattern: str, severity: int):
        return simulate_trial(0, pattern, "walkway", (severity,), "none", 0.0, 100.0,
                              np.random.default_rng(11))
    return run


def test_patterns_change_what_the_clinical_descriptions_say(trials):
    normal = trials("normal", 0)["cycles"]
    shuffle = trials("shuffling", 3)["cycles"]
    assert _steady(shuffle, "step_length_m") < 0.75 * _steady(normal, "step_length_m")
    stiff = trials("stiff_knee", 3)
    side = stiff["row"]["affected_side"]
    assert (_steady(stiff["cycles"], "peak_swing_knee_flexion_deg", side)
            < _steady(normal, "peak_swing_knee_flexion_deg") - 20)
    antalgic = trials("antalgic", 3)
    side = antalgic["row"]["affected_side"]
    other = {"left": "right", "right": "left"}[side]
    assert (_steady(antalgic["cycles"], "stance_pct", side)
            < _steady(antalgic["cycles"], "stance_pct", other) - 3)
    arms = trials("reduced_arm_swing", 3)["cycles"]
    assert _steady(arms, "arm_swing_deg") < 0.6 * _steady(normal, "arm_swing_deg")


def test_severity_grades_are_ordered(trials):
    peaks = [_steady(trials("crouch", s)["cycles"], "knee_rom_deg") for s in (0, 1, 2, 3)]
    # crouch keeps the knee flexed through stance: its range over the cycle shrinks with grade
    assert peaks == sorted(peaks, reverse=True) and peaks[0] - peaks[3] > 10


def test_dataset_is_read_by_eval_events_and_events_are_recovered(tmp_path):
    from capture.readers import load_recording
    from inference.eval.events import evaluate

    write_dataset(tmp_path, trials=4, seed=5, patterns=("normal",), sensor="none",
                  rate_hz=30.0, scenes=("towards", "away", "across", "walkway"))
    with open(tmp_path / "ground_truth" / "events.csv", newline="") as fh:
        header = next(csv.reader(fh))
    with open(SHARED / "c3d_gait_lab_samples" / "ground_truth" / "events.csv", newline="") as fh:
        assert header == next(csv.reader(fh))  # the layout of the real folders
    rec = load_recording(sorted((tmp_path / "trials").glob("*.c3d"))[0])
    np.testing.assert_allclose(np.diff(rec.t_us), 1e6 / 30.0, atol=1)
    rep = evaluate([tmp_path])["overall"]
    # noise-free: the classical analysis finds the steady-state events within one 30 Hz frame
    # (gait initiation's first foot off and the last foot off before stopping are its misses)
    assert rep["foot_strike"]["median_abs_ms"] <= 1000 / 30
    assert rep["foot_off"]["median_abs_ms"] <= 1000 / 30
    assert rep["recall"] >= 0.8 and rep["precision"] >= 0.85


def test_event_errors_grow_with_sensor_noise(tmp_path):
    from inference.eval.noise import run_study

    study = run_study(tmp_path, levels=(0.0, 3.0), trials=3, seed=1)
    rows = {r["setting"]: r for r in study["rows"]}
    assert set(rows) == {"exact", "kinect x0", "kinect x3"}
    # three walks (~35 events) per row: strike medians move by a few ms with any change of the
    # walker or the detector (measured exact 14.7, x3 43.9 ms), so the clear effects are
    # asserted: foot off 15.4 -> 66.6 ms, precision 0.97 -> 0.54
    med = {k: {e: r[e]["median_abs_ms"] for e in ("foot_strike", "foot_off")}
           for k, r in rows.items()}
    assert med["kinect x3"]["foot_strike"] > med["exact"]["foot_strike"]
    assert med["kinect x3"]["foot_off"] > med["exact"]["foot_off"] + 20
    assert rows["kinect x3"]["precision"] < rows["exact"]["precision"] - 0.2
    assert rows["kinect x3"]["knee_rms_median_deg"] > 3 * rows["exact"]["knee_rms_median_deg"]
    assert (tmp_path / "noise_study.png").stat().st_size > 10_000


def _live_events(src: SimSource) -> list:
    """The worker's events for every frame of ``src``: its own live code path per track."""
    import logging

    from inference.worker import Worker, WorkerConfig
    from streams.schema import GaitEvent
    from streams.node import StatusReporter

    logging.getLogger("inference.analysis.analyzer").setLevel(logging.ERROR)
    worker = Worker(WorkerConfig(), None, StatusReporter("cam", "worker"))
    for frame in src.frames():
        worker.handle(frame)
    worker.expire(force=True)
    return [m for m in worker.outputs if isinstance(m, GaitEvent)]


def _near(e, x, person_of=None) -> bool:
    """Detected event ``e`` is true event ``x`` (same side and kind, within 100 ms) on the same
    track, or with ``person_of`` (track -> person) of the same person."""
    return (e.side == x.side and e.kind == x.kind and abs(x.t * 1e6 - e.event_us) <= 1e5
            and (x.body_id == e.track if person_of is None else x.person == person_of(e.track)))


def test_live_truth_keeps_body_ids_so_detected_events_match_per_track():
    # two people on the walkway loop, a Kinect (exact positions, so the check is about ids, not
    # noise) that switches body ids now and then
    src = SimSource("cam", rate_hz=30.0, seed=5, people=2, scene="walkway", sensor="kinect",
                    noise=0.0, duration_s=16.0, id_switches_per_min=3.0, swaps_per_min=0.0)
    detected = _live_events(src)
    true = src.events

    # the truth: every id change the sensor made, and each event carrying the id its person
    # had then (None only where the sensor did not report the person)
    changes = src.truth.body_ids
    assert len({bid for _, _, bid in changes}) >= 3  # an id switch happened
    assert src.sensor.counters["id_switches"] == len(changes) - 2
    assert all(e.t <= 16.0 for e in true) and {e.person for e in true} == {0, 1}

    def id_at(person: int, t_us: float) -> int:
        return [b for t, w, b in changes if w == person and t <= t_us + 1][-1]

    with_id = [e for e in true if e.body_id is not None]
    assert len(with_id) >= 50
    for e in with_id:
        assert e.body_id == id_at(e.person, int(np.ceil(e.t * 30)) / 30 * 1e6)

    # detected events match the true events of their own track (measured 0.88 and 0.84; 0.77
    # and 0.84 before the detector judged extrema as steps: events.EventOptions)
    precision = np.mean([any(_near(e, x) for x in true) for e in detected])
    recall = np.mean([any(_near(e, x) for e in detected) for x in with_id])
    assert precision >= 0.85 and recall >= 0.8
    # the ids carry the information: credited to the other person, they mostly do not (0.2)
    person = {bid: w for _, w, bid in changes}
    assert np.mean([any(_near(e, x, lambda track: 1 - person[track]) for x in true)
                    for e in detected]) <= 0.4
    # what the sensor did is kept compactly, as far as frames were sent
    assert len(src.truth.dropped_us) == src.sensor.counters["dropped"]
    assert src.truth.swaps == []


def test_live_events_degrade_gracefully_with_kinect_noise():
    # the same two walkers seen by the Azure-Kinect-like sensor at its published error, with its
    # default faults (occlusion, dropped frames, id switches, left/right swaps)
    src = SimSource("cam", rate_hz=30.0, seed=5, people=2, scene="walkway", sensor="kinect",
                    noise=1.0, duration_s=16.0)
    detected = _live_events(src)
    true = [x for x in src.events if x.body_id is not None]
    precision = np.mean([any(_near(e, x) for x in true) for e in detected])
    recall = np.mean([any(_near(e, x) for e in detected) for x in true])
    # measured 0.63 and 0.80 with 80 events for 61 true ones; before the detector judged
    # extrema as steps, jitter made 137 events (precision 0.40) at recall 0.84
    assert precision >= 0.55 and recall >= 0.75 and len(detected) <= 1.5 * len(true)


def test_live_truth_keeps_swaps_and_drops():
    src = SimSource("cam", rate_hz=30.0, seed=2, sensor="kinect", scene="away",
                    layout="canonical22", swaps_per_min=30.0, drop_rate=0.05,
                    id_switches_per_min=0.0)
    sent = {f.t_us for f in src.frames()}
    truth = src.truth
    assert 2 <= len(truth.swaps) <= src.sensor.counters["swaps"]  # back-to-back swaps merge
    for who, a, b in truth.swaps:
        # 0.3-1.5 s from the first to the last swapped frame (one frame of rounding either way)
        assert who == 0 and 0.3 - 0.07 <= (b - a) / 1e6 <= 1.5 + 0.07
    assert len(truth.dropped_us) == src.sensor.counters["dropped"] >= 3
    assert not sent & set(truth.dropped_us)  # a dropped frame was never sent
