"""Kinect v2 skeleton text (the pathological-gait CSVs): the format told by content, time wrap,
unmeasured joints and rows, the kinect_v2_25 layout, reading a zip member, and `analyze` on
real walks of the BVH and Kinect v2 corpora."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from capture.readers import RecordingError, load_recording
from capture.readers.kinect_v2 import is_kinect_v2_text, load_kinect_v2
from inference.analyze import analyze_recording
from streams.skeletons import KINECT_V2_JOINTS, MAPPINGS, to_canonical

# A standing figure in the data set's calibrated axes (z up, metres), by joint name
STAND = {
    "SpineBase": (0, 0, 0.95), "SpineMid": (0, 0, 1.20), "Neck": (0, 0, 1.48),
    "Head": (0, 0, 1.62), "SpineShoulder": (0, 0, 1.42), "ShoulderLeft": (-0.18, 0, 1.40),
    "ElbowLeft": (-0.2, 0, 1.12), "WristLeft": (-0.2, 0, 0.88), "HandLeft": (-0.2, 0, 0.8),
    "HandTipLeft": (-0.2, 0, 0.72), "ThumbLeft": (-0.18, 0.03, 0.8),
    "HipLeft": (-0.08, 0, 0.92), "KneeLeft": (-0.09, 0, 0.5), "AnkleLeft": (-0.1, 0, 0.09),
    "FootLeft": (-0.1, 0.1, 0.03),
}
for _k, (_x, _y, _z) in list(STAND.items()):
    if _k.endswith("Left"):
        STAND[_k[:-4] + "Right"] = (-_x, _y, _z)


def kinect_v2_text(n: int, t0: float = 58.5, dt: float = 0.0333, speed: float = 1.2) -> str:
    rows = []
    for i in range(n):
        t = (t0 + i * dt) % 60.0
        cells = [f"{t:.3f}"]
        for k, name in enumerate(KINECT_V2_JOINTS):
            x, y, z = STAND[name]
            cells += [f"{float(k)}", f"{x:.6g}", f"{y + speed * i * dt:.6g}", f"{z:.6g}"]
        rows.append("\t".join(cells))
    return "\n".join(rows) + "\n"


def test_layout_maps_every_canonical_joint():
    assert len(KINECT_V2_JOINTS) == 25 and set(MAPPINGS["kinect_v2_25"]) >= {"pelvis", "neck"}
    j = np.array([STAND[n] for n in KINECT_V2_JOINTS], np.float32)
    canon, conf = to_canonical("kinect_v2_25", j, np.ones(25, np.float32))
    assert canon.shape == (22, 3) and (conf == 1).all()
    for w in MAPPINGS["kinect_v2_25"].values():
        assert sum(w.values()) == pytest.approx(1.0)


def test_time_wrap_unmeasured_joints_and_garbage_rows(tmp_path):
    lines = kinect_v2_text(60).splitlines()
    # frame 10: the left knee unmeasured (zeros); frame 20 missing (a gap); the last row
    # uninitialised denormals, as some of the data set's files end
    cells = lines[10].split("\t")
    k = 1 + 4 * KINECT_V2_JOINTS.index("KneeLeft")
    cells[k + 1:k + 4] = ["0", "0", "0"]
    lines[10] = "\t".join(cells)
    del lines[20]
    # as in the data set: x, y uninitialised and z a number, in some joints only
    garbage = lines[-1].split("\t")
    for j in (0, 9, 15):
        garbage[2 + 4 * j:4 + 4 * j] = ["6.90933e-310", "4.94e-324"]
    lines[-1] = "\t".join(garbage)
    path = tmp_path / "human9_normal1_SkeletonData4.csv"
    path.write_text("\n".join(lines) + "\n")
    assert is_kinect_v2_text(path)
    rec = load_recording(path)  # a .csv told by its content
    assert rec.source_layout == rec.raw_layout == "kinect_v2_25"
    assert rec.n_frames == 58 and rec.meta["kinect"] == 4
    assert np.all(np.diff(rec.t_us) > 0)
    assert rec.t_us[0] == 58_500_000 and rec.t_us[-1] > 60_000_000  # wrapped 59.97 -> 0.0
    assert rec.meta["frame_gaps"] == 1
    assert any("wrapped" in p for p in rec.meta["problems"])
    assert any("uninitialised" in p for p in rec.meta["problems"])
    knee = KINECT_V2_JOINTS.index("KneeLeft")
    assert rec.raw_confidence[10, knee] == 0 and rec.raw_confidence[11, knee] == 1
    assert rec.confidence[10, 4] == 0  # canonical left_knee
    # levelled: y up, the filled knee between its neighbours, nothing NaN
    assert rec.meta["up_axis"] == "+Z"
    assert np.isfinite(rec.joints).all()
    assert rec.joint("head")[:, 1].min() > 1.5 and rec.joint("left_ankle")[:, 1].max() < 0.15
    np.testing.assert_allclose(rec.raw_joints[10, knee], rec.raw_joints[[9, 11], knee].mean(0),
                               atol=1e-5)


def test_format_is_told_by_content(tmp_path):
    other = tmp_path / "table.csv"
    other.write_text("a,b,c\n1,2,3\n")
    assert not is_kinect_v2_text(other)
    with pytest.raises(RecordingError, match="not a Kinect v1 or v2 skeleton text"):
        load_recording(other)
    v1 = tmp_path / "1.csv"  # a Kinect v1 text under a .csv name
    v1.write_text("".join(f"{n};0.1;{0.5 + i / 40};2.0\n" for i, n in enumerate(
        ["Head", "Shoulder-Center", "Shoulder-Left", "Elbow-Left", "Wrist-Left", "Hand-Left",
         "Shoulder-Right", "Elbow-Right", "Wrist-Right", "Hand-Right", "Spine", "Hip-centro",
         "Hip-Left", "Knee-Left", "Ankle-Left", "Foot-Left", "Hip-Right", "Knee-Right",
         "Ankle-Right", "Foot-Right"])) * 3)
    assert not is_kinect_v2_text(v1)
    assert load_recording(v1).source_layout == "kinect_v1_20"
    v2 = tmp_path / "walk.txt"
    v2.write_text(kinect_v2_text(10))
    assert load_recording(v2).source_layout == "kinect_v2_25"


def test_reads_a_zip_member(tmp_path):
    z = tmp_path / "walks.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a/human1_normal1_SkeletonData2.csv", kinect_v2_text(30))
    rec = load_kinect_v2(f"{z}::a/human1_normal1_SkeletonData2.csv")
    assert rec.n_frames == 30 and rec.meta["kinect"] == 2
    with pytest.raises(RecordingError, match="no such file"):
        load_recording(f"{z}::a/missing.csv")


# --- real walks ------------------------------------------------------------------------------

KV2 = ("pathological_gait_kinect_v2/kinect_v2_pathological_gait_dev.zip::Pathological_Gaits/"
       "human1_normal1/human1_normal1_SkeletonData3.csv")
BANDAI_WALK = ("motion_corpus_bandai_namco/bandai_dataset1.zip::dataset/"
               "Bandai-Namco-Research-Motiondataset-1/data/dataset-1_walk_normal_001.bvh")


def test_real_kinect_v2_normal_walk_gives_walking_cycles(shared_data):
    rec = load_recording(f"{shared_data}/{KV2}")
    assert rec.meta["kinect"] == 3 and rec.meta["up_axis"] == "+Z"
    assert 25 < rec.rate_hz < 35
    seg = np.median(np.linalg.norm(rec.joint("left_knee") - rec.joint("left_ankle"), axis=1))
    assert 0.3 < seg < 0.55
    res = analyze_recording(rec)
    assert len(res.cycles) >= 2
    # adults' free walking cadence is about 90-130 steps/min (measured: 100-102, 3 cycles
    # in the 3.1 s this Kinect saw)
    for c in res.cycles:
        assert 85 < c.metrics["cadence_spm"] < 130, c.metrics


def test_analyze_cli_on_a_bandai_namco_walk(shared_data):
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "analyze",
                        f"{shared_data}/{BANDAI_WALK}", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    assert rep["layout"] == "bvh:humanoid"
    cycles = [c for c in rep["cycles"] if c["trusted"]]
    assert len(cycles) >= 6  # measured: 10 of 10 trusted in 6.5 s
    cad = [c["metrics"]["cadence_spm"] for c in cycles]
    speed = [c["metrics"]["speed_mps"] for c in cycles]
    # measured: cadence 108-112 steps/min, 1.08-1.13 m/s
    assert 90 < min(cad) and max(cad) < 130 and 0.8 < min(speed) and max(speed) < 1.6
