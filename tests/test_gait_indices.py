"""Clinical gait indices: GVS/GPS (Baker 2009), GDI (Schwartz & Rozumalski 2008), the nine
gait variables from skeletons, the FGDI-layout reader and the eval / analyze outputs."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from _sim import straight
from capture.sim.skeleton import layout_joints
from conftest import REPO
from inference.analysis.gait_variables import VARIABLES, V
from inference.data.fgdi import read_folder
from inference.models.gdi.indices import (
    GdiBasis, bout_indices, gait_vector, gps, gvs, load_basis, speed_class, stride_indices)

FGDI = "pathological_kinematics_fgdi"


def test_gvs_and_gps_against_a_hand_computation():
    rng = np.random.default_rng(3)
    norm = rng.normal(0, 10, (9, 51))
    dev = rng.normal(0, 5, (9, 51))
    curves = np.empty((9, 101))
    curves[:, ::2] = norm + dev  # the 51 points GVS uses: 0, 2, ..., 100 %
    curves[:, 1::2] = 1e6  # between them: must not count
    hand = []
    for i in range(9):
        total = 0.0
        for k in range(51):
            total += dev[i, k] ** 2
        hand.append((total / 51) ** 0.5)
    got = gvs(curves, norm)
    assert np.allclose(got, hand)
    assert gps(got) == pytest.approx((sum(h * h for h in hand) / 9) ** 0.5)
    # a variable not measured leaves the RMS over the others
    curves[V["pelvis_tilt"]] = np.nan
    g8 = gvs(curves, norm)
    assert np.isnan(g8[0]) and gps(g8) == pytest.approx((sum(h * h for h in hand[1:]) / 8) ** 0.5)
    # overall GPS: RMS over both sides' 18 GVS
    other = np.array(hand) * 2
    assert gps(np.concatenate([hand, other])) == pytest.approx(
        ((sum(h * h for h in hand) + sum(o * o for o in other)) / 18) ** 0.5)


def test_speed_class_by_dimensionless_speed():
    leg = 0.9  # v* = v / sqrt(9.81 * 0.9) = v / 2.971
    assert speed_class(1.28, leg) == "Free"  # v* 0.431
    assert speed_class(0.5, leg) == "VerySlow"  # 0.168
    assert speed_class(0.9, leg) == "Slow"  # 0.303
    assert speed_class(1.6, leg) == "Fast"  # 0.539
    assert speed_class(2.2, leg) == "VeryFast"  # 0.740
    assert speed_class(None, leg) == speed_class(1.2, None) == "Free"


def test_gdi_of_the_controls_is_100_sd_10_by_construction():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 20, 459)
    ctrl = base + rng.normal(0, 3, (40, 459))
    pat = base + rng.normal(0, 3, (30, 459)) + rng.normal(0, 6, (30, 1)) * rng.normal(0, 1, 459)
    x = np.vstack([ctrl, pat])
    control = np.arange(len(x)) < 40
    b = GdiBasis.fit(x, control)
    g = b.gdi(x)
    assert g[control].mean() == pytest.approx(100.0, abs=1e-9)
    assert g[control].std(ddof=1) == pytest.approx(10.0, abs=1e-9)
    assert g[~control].mean() < 90  # the patients deviate more
    assert np.allclose(b.features.T @ b.features, np.eye(15), atol=1e-9)
    # a variable not measured: features fitted to the rest are exact for a vector in the span
    v = b.features @ rng.normal(0, 50, 15)
    v_missing = v.copy()
    v_missing[:51] = np.nan
    assert np.allclose(b.features_of(v_missing[None]), b.features_of(v[None]), atol=1e-6)


def test_shipped_basis_gives_the_fgdi_controls_100_sd_10_and_holds_out_of_sample(shared_data):
    from inference.eval.gdi import control_property

    data = read_folder(shared_data / FGDI)
    x = np.stack([gait_vector(s.curves) for s in data.strides])
    control = np.array([s.group == "healthy_WBDS" for s in data.strides])
    g = load_basis().gdi(x)
    # the basis is stored in float32: a few thousandths
    assert g[control].mean() == pytest.approx(100.0, abs=0.01)
    assert g[control].std(ddof=1) == pytest.approx(10.0, abs=0.01)
    cp = control_property(x, control, np.array([s.subject for s in data.strides]))
    cv = cp["cross_validated"]
    # unseen controls: mean within 3 standard errors (10 / sqrt(84) ~ 1.1) of 100, SD near 10
    assert abs(cv["mean"] - 100.0) < 3.3 and 8.0 < cv["sd"] < 12.0
    for group in ("TF_amputee", "PD off", "PD on"):
        sel = np.array([s.group == group for s in data.strides])
        assert g[sel].mean() < 95  # each patient group deviates from the controls


def _walk_indices(pattern, severity):
    """The bout indices of a simulated straight walk from its true foot strikes."""
    p = straight(pattern, severity)
    t = np.arange(0.0, p.t_stop, 1 / 30)
    pts, _ = p.evaluate(t)
    joints = layout_joints(pts, "canonical22")
    t_us = (t * 1e6).round().astype(np.int64)
    strides = []
    for side in ("left", "right"):
        hs = [e.t for e in p.events() if e.side == side and e.kind == "foot_strike"]
        for a, b in list(zip(hs, hs[1:]))[1:-1]:
            strides.append((side, stride_indices(t_us, joints, side, int(a * 1e6),
                                                 int(b * 1e6), None)))
    return bout_indices(strides, "canonical22")


def test_simulated_walks_normal_near_100_and_pathological_lower():
    normal = _walk_indices("normal", 0)
    for side in ("left", "right"):
        # within 1.5 control SDs of 100, and a GPS of a few degrees
        assert 85.0 < normal["gdi"][side] < 115.0, normal["gdi"]
        assert normal["gps"][side] < 6.0, normal["gps"]
    assert normal["not_measured"] == ["pelvis_tilt"] and normal["gvs"]["left"]["pelvis_tilt"] is None
    crouch = _walk_indices("crouch", 3)
    for side in ("left", "right"):
        assert crouch["gdi"][side] < normal["gdi"][side] - 20.0  # two control SDs
        assert crouch["gps"][side] > normal["gps"][side] + 5.0
    stiff = _walk_indices("stiff_knee", 3)  # the right knee (tests/_sim.py)
    assert stiff["gdi"]["right"] < stiff["gdi"]["left"] - 5.0
    assert stiff["gvs"]["right"]["knee_flexion"] > 2 * normal["gvs"]["right"]["knee_flexion"]


def _write_fgdi(folder, rng, n_controls=12, n_patients=6):
    """A tiny folder in the FGDI layout: columns in another order than the original's, other
    file names, a value that says which variable a row is."""
    comps = [("PelvisAngles", 2), ("PelvisAngles", 1), ("PelvisAngles", 3), ("HipAngles", 2),
             ("HipAngles", 1), ("HipAngles", 3), ("KneeAngles", 2), ("AnkleAngles", 2),
             ("FootProgressAngles", 3)]
    head = ["Side", "StrideID", "VariableName", "Dim", "SubjectStudyID", "SessionID",
            "TrialName"] + [f"GCpc_{k}" for k in range(101)]
    rows, index = [], [["SubjectStudyID", "subject", "group"]]
    stride = 0
    for sid in range(1, n_controls + n_patients + 1):
        code = f"S{sid:02d}"
        patient = sid > n_controls
        index.append([sid, code, "PAT" if patient else "healthy adults"])
        for sess in ([f"{code}_off", f"{code}_on"] if patient else [code]):
            for side in ("L", "R"):
                stride += 1
                shift = rng.normal(0, 8 if patient else 2)
                for i, (name, dim) in enumerate(comps):
                    if patient and sid == n_controls + n_patients and i == 8 and side == "R":
                        continue  # a stride without foot progression: no GDI vector
                    curve = 10 * i + shift + rng.normal(0, 1) + np.sin(np.linspace(0, 6.28, 101))
                    rows.append([side, stride, name, dim, sid, sess, f"t{stride}"]
                                + [f"{v:.4f}" for v in curve])
    with open(folder / "curves_export.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([head] + rows)
    with open(folder / "who.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(index)


def test_fgdi_layout_read_by_its_columns(tmp_path):
    _write_fgdi(tmp_path, np.random.default_rng(1), n_controls=2, n_patients=1)
    data = read_folder(tmp_path)
    assert data.files == ["curves_export.csv"]
    assert data.groups == ["PAT off", "PAT on", "healthy adults"]
    # the last patient's right strides (both sessions) lack a curve and are left out
    assert len(data.strides) == 2 * 2 + 2 * 2 - 2
    s = data.strides[0]
    assert s.side == "left" and s.subject == "S01" and s.curves.shape == (9, 101)
    # each variable's row holds its own component (10 * index, +- the shift and sine)
    assert np.all(np.abs(s.curves.mean(axis=1) - 10 * np.arange(9)) < 8)


def test_eval_gdi_on_a_generated_folder(tmp_path):
    from inference.eval.gdi import evaluate

    _write_fgdi(tmp_path, np.random.default_rng(2))
    rep = evaluate(tmp_path, refit=True, folds=3)
    ctrl = rep["groups"]["healthy adults"]
    assert ctrl["control"] and ctrl["gdi"]["mean"] == pytest.approx(100.0, abs=1e-6)
    lo, hi = ctrl["gdi"]["ci95"]
    assert lo < 100.0 < hi
    assert rep["control_property"]["in_sample"]["sd"] == pytest.approx(10.0, abs=1e-6)
    assert rep["groups"]["PAT off"]["gdi"]["mean"] < 90  # patients spread 4x wider
    assert set(rep["groups"]) == {"healthy adults", "PAT off", "PAT on"}


def test_eval_gdi_command_on_the_fgdi_folder(shared_data, tmp_path):
    out = subprocess.run([sys.executable, "-m", "deploy.cli", "eval", "gdi",
                          str(shared_data / FGDI), "--json", "--plot", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    g = rep["groups"]
    assert g["healthy_WBDS"]["gdi"]["mean"] == pytest.approx(100.0, abs=0.01)
    for group in ("TF_amputee", "PD off", "PD on"):
        assert g[group]["gdi"]["ci95"][1] < 95.0
        assert g[group]["gps_overall"]["mean"] > g["healthy_WBDS"]["gps_overall"]["mean"]
    assert min(rep["layout_check_r"].values()) > 0.5
    assert (tmp_path / "gdi_groups.png").stat().st_size > 0
    assert (tmp_path / "gdi_curves.png").stat().st_size > 0
    assert "leave-subjects-out" in out.stdout


def test_each_stride_record_and_the_bout_summary_carry_the_indices(shared_data):
    from capture.readers import load_recording
    from inference.analyze import analyze_recording, bout_summaries, wire_layout
    from sinks.log.records import cycle_row

    rec = load_recording(shared_data / "c3d_gait_lab_samples/trials/KTK_walk.c3d")
    res = analyze_recording(rec)
    cyc = [c for c in res.cycles if c.metrics.get("gdi") is not None]
    assert cyc and all(0 < c.metrics["gps"] < 30 for c in cyc)
    assert "gvs_knee_flexion" in cyc[0].metrics and "gvs_pelvis_tilt" not in cyc[0].metrics
    # the log keeps them without a migration: metrics beyond CYCLE_METRICS are extra_metrics
    extra = json.loads(cycle_row(cyc[0], 0)["extra_metrics"])
    assert extra["gdi"] == pytest.approx(cyc[0].metrics["gdi"])
    bouts = bout_summaries(res.cycles, res.bouts, wire_layout(rec))
    ix = [b["indices"] for b in bouts if b["indices"]]
    assert ix, bouts
    assert set(ix[0]["gdi"]) == {"left", "right"} and ix[0]["gps"]["overall"] > 0
    mine = [c.metrics["gdi"] for c in cyc if c.side == "left"]
    assert ix[0]["gdi"]["left"] == pytest.approx(np.mean(mine))
    assert "hip_rotation" in ix[0]["weak"] and ix[0]["not_measured"] == ["pelvis_tilt"]
    assert set(ix[0]["gvs"]["left"]) == set(VARIABLES)
    assert ix[0]["caution"] is None  # marker-quality joints
    cam = bout_indices([(c.side, c.metrics) for c in cyc], "azure_kinect32")
    assert "not comparable" in cam["caution"] and "ankle_dorsiflexion" in cam["weak"]
