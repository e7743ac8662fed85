"""`gaitstream eval anomaly DIR` on folders of each documented layout that use other names than
../shared/data (labels, persons, severities and views read from the folders' own files), and
the per-set summary's numbers on hand-made scores."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile

import pytest
from scipy.stats import spearmanr

from inference.eval.anomaly import Scored, auc, summarize_set


def _row(name, label, value, person, **kw) -> Scored:
    return Scored(name, label, [{"subject": value}], person=person,
                  normal=label in ("normal", "healthy"), **kw)


def test_set_summary_compares_groups_with_held_out_normal_walks_only():
    rows = [_row("a1", "normal", 1.0, "a"), _row("b1", "normal", 1.2, "b"),
            _row("c1", "normal", 1.1, "c"),
            _row("t1", "normal", 5.0, "t", trained_on=True),  # trained on: no yardstick
            _row("a2", "limp", 2.0, "a"), _row("b2", "limp", 3.0, "b"),
            _row("a3", "sway", 1.05, "a"), _row("c3", "sway", 0.9, "c")]
    res = summarize_set(rows, "subject", "trial_labels")
    assert res["normal"] == pytest.approx({"n": 3, "mean": 1.1, "sd": 0.1})
    assert res["normal_trained_on"] == 1
    limp, sway = res["vs_normal"]["limp"], res["vs_normal"]["sway"]
    assert limp["auc"] == 1.0 and limp["normal_sds_above"] == pytest.approx(14.0)
    assert sway["auc"] == pytest.approx(1 / 6)  # of 6 pairs only 1.05 > 1.0
    assert sway["normal_sds_above"] == pytest.approx(-1.25)
    assert res["groups"]["normal"]["n"] == 4
    # per person: a2 (2.0) above a's 1.0, b2 above 1.2, a3 (1.05) above 1.0, c3 (0.9) below 1.1
    assert res["per_person"]["altered"] == 4 and res["per_person"]["above_every_normal"] == 3


def test_severity_and_medication_states_are_read_from_the_labels():
    rows = []
    for i, (off, on, sev_off, sev_on) in enumerate([(3.0, 2.0, 2, 1), (2.5, 2.6, 1, 1),
                                                    (4.0, 1.0, 3, 0), (1.5, 1.4, 0, 0)]):
        rows += [_row(f"p{i}/off", "PD off", off, f"p{i}", severity=sev_off),
                 _row(f"p{i}/on", "PD on", on, f"p{i}", severity=sev_on)]
    rows += [_row(f"h{i}", "healthy", v, f"h{i}") for i, v in enumerate([1.0, 1.2, 0.8])]
    res = summarize_set(rows, "subject", "fgdi")
    assert res["states"]["people"] == 4 and res["states"]["off_above_on"] == 3
    sev = [r for r in rows if r.severity is not None]
    assert res["severity"]["spearman"] == pytest.approx(
        spearmanr([r.value("subject") for r in sev], [r.severity for r in sev])[0])
    lo, hi = res["severity"]["spearman_ci"]
    assert lo <= res["severity"]["spearman"] <= hi
    assert res["vs_normal"]["PD off"]["auc"] == 1.0
    assert auc([1, 2], [1, 0]) == pytest.approx(0.875)  # ties count half


def test_per_view_auc_and_view_effect():
    rows = []
    for v, shift in (("1", 0.0), ("2", 1.0)):
        for p in range(3):
            rows.append(_row(f"n{v}{p}", "normal", 1.0 + shift + 0.1 * p, f"p{p}", view=v))
            rows.append(_row(f"x{v}{p}", "steppage", 1.5 + shift + 0.1 * p, f"p{p}", view=v))
    res = summarize_set(rows, "subject", "kinect_v2")
    pv = res["per_view"]
    assert pv["views"]["1"]["auc"]["steppage"] == 1.0 == pv["views"]["2"]["auc"]["steppage"]
    assert pv["views"]["2"]["normal_mean"] == pytest.approx(2.1)
    assert pv["views_all_aucs_at_least_0.9"] == ["1", "2"]
    assert res["vs_normal"]["steppage"]["auc"] < 1.0  # pooled over views the shift blurs it
    assert "normal_by_view_kruskal_p" in pv


# --------------------------------------------------------------------------- layouts on disk


def _trial_labels(root, data):
    """Two people, other trial names; one listed trial has no recording."""
    d = root / "gait_lab_x"
    src = data / "opencap_mocap_modified_gait"
    links = {"alice/mocap/plain1.trc": "expert1/markers/walking1.trc",
             "alice/mocap/plain2.trc": "expert1/markers/walking2.trc",
             "alice/mocap/sway1.trc": "expert1/markers/walkingTS1.trc",
             "bob/straight_markers.trc": "session20210830/walking1_markers.trc",
             "bob/limp1.trc": "expert1/markers/walkingTO1.trc"}
    for new, old in links.items():
        (d / new).parent.mkdir(parents=True, exist_ok=True)
        (d / new).symlink_to(src / old)
    (d / "ground_truth").mkdir()
    (d / "ground_truth" / "trial_labels.csv").write_text(
        "trial,gait_pattern\nalice/plain1,normal\nalice/plain2,normal\nalice/sway1,trunk_sway\n"
        "bob/straight,normal\nbob/limp1,toe_out\nbob/missing,toe_out\n")


def _fgdi(root, data):
    """Two healthy people, one PD patient in two states, one amputee, renamed."""
    src = data / "pathological_kinematics_fgdi"
    d = root / "kinematics_y"
    d.mkdir()
    with open(src / "subjects_index.csv", newline="", encoding="utf-8-sig") as fh:
        index = {r["SubjectStudyID"]: r for r in csv.DictReader(fh)}
    by_group: dict[str, list[str]] = {}
    for sid, r in index.items():
        by_group.setdefault(r["group"], []).append(sid)
    pd_group = next(g for g in by_group if "PD" in g or "arkinson" in g)
    healthy = next(g for g in by_group if "healthy" in g.lower())
    amp = next(g for g in by_group if g not in (pd_group, healthy))
    keep = {by_group[healthy][0]: ("H1", healthy), by_group[healthy][1]: ("H2", healthy),
            by_group[pd_group][0]: ("PX", pd_group), by_group[amp][0]: ("A1", amp)}
    pd_code = index[by_group[pd_group][0]]["subject"]
    with open(src / "Parkinsons_Data.csv", newline="", encoding="utf-8-sig") as fh, \
            open(d / "curves.csv", "w", newline="") as out:
        rd, wr = csv.reader(fh), csv.writer(out)
        head = next(rd)
        wr.writerow(head)
        for r in rd:
            if r and r[0] in keep:
                r = list(r)
                r[2] = r[2].replace(pd_code, "PX")
                r[0] = str(900 + list(keep).index(r[0]))
                wr.writerow(r)
    with open(d / "people.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["SubjectStudyID", "subject", "group"])
        for i, (code, group) in enumerate(keep.values()):
            wr.writerow([900 + i, code, group])
    (d / "clinical.csv").write_text("ID,ON - UPDRS-III - walking,OFF - UPDRS-III - walking\n"
                                    "PX,1,3\n")


def _kinect_v2(root, data):
    """Four walks of two people seen by two cameras, extracted as loose files."""
    src = data / "pathological_gait_kinect_v2"
    d = root / "depth_cams_z"
    (d / "walks").mkdir(parents=True)
    with open(src / "files_index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    pick = []
    for human, gait, kinect in (("1", "normal", "1"), ("1", "steppage", "1"),
                                ("2", "normal", "2"), ("2", "steppage", "2")):
        pick.append(next(r for r in rows if (r["human"], r["gait"], r["kinect"], r["rep"])
                         == (human, gait, kinect, "1")))
    zf = zipfile.ZipFile(next(src.glob("*.zip")))
    with open(d / "index.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["file", "human", "gait", "kinect"])
        for i, r in enumerate(pick):
            (d / "walks" / f"w{i}.csv").write_bytes(zf.read(r["file"]))
            wr.writerow([f"walks/w{i}.csv", f"9{r['human']}", r["gait"], f"cam{r['kinect']}"])


def _curves(root, data):
    src = data / "opensim_walking_trc_grf" / "reference_curves"
    d = root / "curves_w"
    d.mkdir()
    (d / "control_walk.mot").symlink_to(src / "normal_gait.mot")
    (d / "crouched.mot").symlink_to(src / "crouch_gait.mot")


def test_eval_anomaly_reads_each_layout_under_other_names(tmp_path, shared_data,
                                                          tiny_model_dir):
    root = tmp_path / "data"
    root.mkdir()
    for make in (_trial_labels, _fgdi, _kinect_v2, _curves):
        make(root, shared_data)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "deploy.cli", "eval", "anomaly", str(root),
                           "--no-sim", "--k", "2", "--models-dir", str(tiny_model_dir),
                           "--json", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    sets = res["sets"]
    assert {k: v["layout"] for k, v in sets.items()} == {
        "gait_lab_x": "trial_labels", "kinematics_y": "fgdi", "depth_cams_z": "kinect_v2",
        "curves_w": "angle_curves"}
    tl = sets["gait_lab_x"]
    assert set(tl["groups"]) == {"normal", "trunk_sway", "toe_out"}
    assert tl["n_scored"] == 5 and any("bob/missing" in n for n in tl["notes"])
    assert tl["per_person"]["altered"] == 2  # each against its own person's normal walks
    assert set(tl["per_person"]["walks"]) == {"alice/sway1", "bob/limp1"}
    fg = sets["kinematics_y"]
    assert fg["groups"]["PD off"]["n"] == 1 and fg["groups"]["PD on"]["n"] == 1
    assert fg["normal"]["n"] == 2 and fg["severity"]["n"] == 2
    assert fg["states"]["people"] == 1
    kv = sets["depth_cams_z"]
    assert set(kv["per_view"]["views"]) == {"cam1", "cam2"}
    assert set(kv["groups"]) == {"normal", "steppage"}
    assert set(sets["curves_w"]["groups"]) == {"control_walk", "crouched"}
    for name in sets:
        assert (out / f"eval_anomaly_{name}.png").stat().st_size > 0
        assert (out / f"body_map_{name}.png").stat().st_size > 0


def test_eval_anomaly_refuses_a_folder_in_no_layout(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "deploy.cli", "eval", "anomaly",
                           str(tmp_path), "--no-sim"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "no folder in a labelled layout" in proc.stdout
