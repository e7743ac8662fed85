"""Recording readers, marker sets and ground-truth loaders, checked on the shared real data."""

import csv
import threading
from pathlib import Path

import ezc3d
import numpy as np
import pytest

from capture.files import FileSource
from capture.readers import Recording, RecordingError, load_recording
from capture.readers.kinect_v1 import read_kinect_v1
from capture.readers.markers import PLUG_IN_GAIT, identify
from capture.readers.recording import fill_missing
from inference.data.groundtruth import (load_grf_events, load_ik_angles, load_kinect_persons,
                                   load_lab_events, load_pig_angles, load_plate_contacts,
                                   trial_truth)
from streams.schema import decode, encode
from streams.skeletons import CANONICAL_JOINTS, CJ, KINECT_V1_JOINTS
from streams.node import StatusReporter
from streams.transport import Publisher, Subscriber

# cluster-only trials: technical marker clusters with no anatomical landmark, so joint centres
# would need the lab's static calibration trial, which is not in the file
UNMAPPABLE = {"C3DORG_s01_Eb015pr", "C3DORG_s02_pc_real"}
# trials whose right thigh/shank markers give a right leg ~7 cm longer than the left in the
# lab's own Plug-in-Gait model too (FEO-TIO 524 vs 452 mm): a property of the file
LEG_LENGTH_TOLERANCE_M = (0.30, 0.55)


def c3d_dir(shared_data):
    return shared_data / "c3d_gait_lab_samples"


@pytest.fixture(scope="module")
def trials(shared_data):
    with open(c3d_dir(shared_data) / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def lab(shared_data, trials):
    """Every C3D trial loaded once: name -> Recording or the RecordingError it raised."""
    out = {}
    for row in trials:
        path = c3d_dir(shared_data) / "trials" / row["file"]
        try:
            out[path.stem] = load_recording(path)
        except RecordingError as e:
            out[path.stem] = e
    return out


@pytest.fixture(scope="module")
def marker_trcs(shared_data):
    cap = shared_data / "opencap_mocap_modified_gait"
    paths = [shared_data / "opensim_walking_trc_grf" / "subject01_walk1.trc",
             cap / "session20210830" / "walking1_markers.trc",
             *sorted((cap / "expert1" / "markers").glob("*.trc"))]
    return {p: load_recording(p) for p in paths}


def mapped(lab, trc=None):
    recs = [r for r in lab.values() if isinstance(r, Recording)]
    return recs + (list(trc.values()) if trc else [])


def seg_len(rec, a, b):
    ok = (rec.confidence[:, CJ[a]] > 0) & (rec.confidence[:, CJ[b]] > 0)
    assert ok.sum() > 10, f"{rec.name}: {a}/{b} computed in only {ok.sum()} frames"
    return float(np.median(np.linalg.norm(rec.joints[ok, CJ[a]] - rec.joints[ok, CJ[b]], axis=1)))


# --------------------------------------------------------------------------- C3D


def test_c3d_trials_load_with_the_frame_counts_and_rates_of_trials_csv(lab, trials):
    for row in trials:
        name = row["file"][:-4]
        rec = lab[name]
        if name in UNMAPPABLE:
            # cluster-only sets: the error names the missing roles and the labels it saw
            assert isinstance(rec, RecordingError) and "marker clusters alone" in str(rec)
            assert "left anterior superior iliac spine" in str(rec) and "LTH1" in str(rec)
            continue
        assert isinstance(rec, Recording), f"{name}: {rec}"
        n, rate = int(row["n_frames"]), float(row["point_rate_hz"])
        assert rec.n_frames == n and rec.rate_hz == rate
        assert rec.t_us[0] == 0
        assert abs(rec.t_us[-1] - (n - 1) / rate * 1e6) <= 1
        assert rec.joints.dtype == np.float32 and np.isfinite(rec.joints).all()
    assert sum(isinstance(r, Recording) for r in lab.values()) == 21


def test_marker_sets_found_per_lab(lab):
    sets = {name: r.meta["marker_set"] for name, r in lab.items() if isinstance(r, Recording)}
    assert sets["KTK_walk"] == sets["C3DORG_s04_sub_labels"] == "plug-in-gait"
    assert sets["C3DORG_s03_gait-pig"] == "plug-in-gait"  # SACR variant
    assert sets["BTK__MAC_Gait"] == sets["C3DORG_s00_MAC_Walk1"] == "helen-hayes"
    assert sets["C3DORG_s00_Codamotion_gaitwands_20150204"] == "codamotion-gait-wands"
    assert sets["C3DORG_s26_Walking_Hybrid_1_1"] == "qualisys-clusters"
    assert sets["C3DORG_s26_Capture0002"] == "qualisys-anatomical"
    # the medial markers that Motion Analysis stores under the lateral label are told apart
    mac = lab["BTK__MAC_Gait"]
    assert "R.KNEE.MEDIAL" in mac.markers
    assert mac.meta["joint_methods"]["right_knee"] == "mid lateral/medial knee markers"


def test_subject_prefixed_labels_are_read(lab):
    rec = lab["C3DORG_s04_sub_labels"]  # labels like Matt:LHEE
    assert {"LASI", "RKNE", "SACR"} <= set(rec.markers)
    assert identify(["Matt:LASI", "Matt:RASI", "Matt:LKNE", "Matt:RKNE", "Matt:LANK",
                     "Matt:RANK"]) is PLUG_IN_GAIT


def test_lab_trials_are_y_up_with_feet_on_the_floor(lab, marker_trcs):
    for rec in mapped(lab, marker_trcs):
        assert rec.meta["up_axis"] in ("+Z", "+Y"), rec.name
        c, j = rec.confidence, rec.joints
        pel = j[c[:, CJ["pelvis"]] > 0, CJ["pelvis"], 1]
        ank = np.concatenate([j[c[:, CJ[a]] > 0, CJ[a], 1] for a in ("left_ankle", "right_ankle")])
        # lab floors are at height 0: ankle centres 4-15 cm above it, pelvis 0.6-1.1 m
        assert -0.05 < np.percentile(ank, 2) < 0.15, rec.name
        assert 0.6 < np.median(pel) < 1.1, rec.name
        head = c[:, CJ["head"]] > 0
        if head.any():
            assert np.median(j[head, CJ["head"], 1]) > np.median(pel) + 0.4, rec.name


def test_thigh_and_shank_lengths_are_plausible(lab, marker_trcs):
    lo, hi = LEG_LENGTH_TOLERANCE_M
    for rec in mapped(lab, marker_trcs):
        for s in ("left", "right"):
            assert lo < seg_len(rec, f"{s}_hip", f"{s}_knee") < hi, (rec.name, s)
            assert lo < seg_len(rec, f"{s}_knee", f"{s}_ankle") < hi, (rec.name, s)


def test_segment_lengths_stay_constant_for_anatomical_marker_sets(lab):
    # a joint centre built from markers on the same bones keeps its distance: a few mm of skin
    # motion, not centimetres (which a mislabelled or swapped marker would give)
    for rec in mapped(lab):
        if rec.meta["marker_set"] not in ("plug-in-gait", "helen-hayes"):
            continue
        ok = (rec.confidence[:, CJ["left_hip"]] > 0) & (rec.confidence[:, CJ["left_knee"]] > 0)
        d = np.linalg.norm(rec.joints[ok, CJ["left_hip"]] - rec.joints[ok, CJ["left_knee"]], 1)
        assert np.std(d) < 0.015, rec.name


def test_hip_centres_lie_inside_the_pelvis(lab, marker_trcs):
    for rec in mapped(lab, marker_trcs):
        m = rec.markers
        names = {"plug-in-gait": ("LASI", "RASI"), "helen-hayes": ("LASI", "RASI"),
                 "codamotion-gait-wands": ("L.ASIS", "R.ASIS"), "gait2392": ("L.ASIS", "R.ASIS"),
                 "opencap": ("L.ASIS", "R.ASIS"), "qualisys-clusters": ("L_ASIS", "R_ASIS"),
                 "qualisys-anatomical": ("L_ASIS", "R_ASIS")}[rec.meta["marker_set"]]
        lasi, rasi = m[names[0]], m[names[1]]
        ok = np.isfinite(lasi).all(1) & np.isfinite(rasi).all(1) & (rec.confidence[:, 1] > 0)
        mid = 0.5 * (lasi[ok] + rasi[ok])
        across = (rasi[ok] - lasi[ok]) / np.linalg.norm(rasi[ok] - lasi[ok], axis=1)[:, None]
        half = 0.5 * np.linalg.norm(rasi[ok] - lasi[ok], axis=1)
        for s, sign in (("left", -1), ("right", 1)):
            h = rec.joints[ok, CJ[f"{s}_hip"]]
            lateral = np.sum((h - mid) * across, 1) * sign
            assert np.all((lateral > 0.2 * half) & (lateral < half)), (rec.name, s)
            below = mid[:, 1] - h[:, 1]
            assert 0.03 < np.median(below) < 0.15, (rec.name, s)


def test_left_joints_are_on_the_subjects_left(lab, marker_trcs):
    for rec in mapped(lab, marker_trcs):
        c, j = rec.confidence, rec.joints
        ok = c[:, CJ["pelvis"]] > 0
        path = j[ok, CJ["pelvis"]][-1] - j[ok, CJ["pelvis"]][0]
        path[1] = 0
        if np.linalg.norm(path) > 0.5:
            fwd = path / np.linalg.norm(path)
        else:  # the OpenSim example walks on the spot: take forward from the pelvis (ASIS ahead)
            asis = 0.5 * (rec.markers["L.ASIS"] + rec.markers["R.ASIS"])
            fwd = np.nanmean(asis - rec.markers["V.SACRAL"], 0)
            fwd[1] = 0
            fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 1.0, 0.0])
        for a, b in (("right_hip", "left_hip"), ("right_knee", "left_knee"),
                     ("right_ankle", "left_ankle"), ("right_foot", "left_foot")):
            both = (c[:, CJ[a]] > 0) & (c[:, CJ[b]] > 0)
            side = np.sum((j[both, CJ[a]] - j[both, CJ[b]]) * right, 1)
            assert np.mean(side > 0) > 0.9, (rec.name, a)


def test_missing_markers_give_zero_confidence_and_no_nan(lab):
    # the labs gap-filled inside their trials; markers are lost near the ends (Matt walks off)
    rec = lab["C3DORG_s04_sub_labels"]
    lkne = rec.markers["LKNE"]
    gap = ~np.isfinite(lkne).all(1)
    assert 50 < gap.sum() < rec.n_frames - 50
    assert np.all(rec.confidence[gap, CJ["left_knee"]] == 0)
    assert np.all(rec.confidence[~gap & np.isfinite(rec.markers["LASI"]).all(1)
                                 & np.isfinite(rec.markers["RASI"]).all(1)
                                 & np.isfinite(rec.markers["SACR"]).all(1), CJ["left_knee"]] == 1)
    assert np.isfinite(rec.joints).all()
    # the filled knee holds the nearest real sample, not 0 or the parent joint
    k = rec.joints[:, CJ["left_knee"]]
    assert np.all(k[gap, 1] > 0.2) and np.all(k[gap, 1] < 0.7)


def test_fill_missing_interpolates_and_parks_absent_joints_on_their_parent():
    j = np.full((5, 22, 3), np.nan)
    j[:, CJ["pelvis"]] = [[0, 1, float(i)] for i in range(5)]
    j[[0, 4], CJ["left_hip"]] = [[0, 0, 0], [0, 0, 4]]
    out, conf = fill_missing(j)
    assert np.allclose(out[:, CJ["left_hip"], 2], [0, 1, 2, 3, 4])
    assert conf[:, CJ["left_hip"]].tolist() == [1, 0, 0, 0, 1]
    assert np.allclose(out[:, CJ["left_knee"]], out[:, CJ["left_hip"]])  # never computed
    assert np.all(conf[:, CJ["left_knee"]] == 0) and np.all(conf[:, CJ["pelvis"]] == 1)


def test_subject_height_comes_from_the_c3d_processing_group(lab):
    assert lab["KTK_walk"].meta["subject_height_m"] == pytest.approx(1.639)
    assert lab["BTK__FunctionalWalk"].meta["subject_height_m"] == pytest.approx(1.68)


def test_canonical_joint_c3d_round_trips(tmp_path, lab):
    """A C3D whose labels are the canonical joints (synthetic walker datasets), Z up, in mm."""
    src = lab["KTK_walk"]
    zup = np.stack([src.joints[..., 0], -src.joints[..., 2], src.joints[..., 1]], -1)  # y-up->z-up
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [100.0]
    c["parameters"]["POINT"]["LABELS"]["value"] = tuple(CANONICAL_JOINTS)
    c.add_parameter("POINT", "UNITS", ["mm"])
    pts = np.ones((4, 22, src.n_frames))
    pts[:3] = zup.transpose(2, 1, 0) * 1000.0
    pts[:3, CJ["head"], 5:8] = np.nan  # three lost frames
    c["data"]["points"] = pts
    path = tmp_path / "walker.c3d"
    c.write(str(path))
    rec = load_recording(path)
    assert rec.source_layout == "canonical22" and rec.meta["up_axis"] == "+Z"
    ok = src.confidence > 0
    ok[5:8, CJ["head"]] = False
    assert np.allclose(rec.joints[ok], src.joints[ok], atol=1e-4)
    assert np.all(rec.confidence[5:8, CJ["head"]] == 0)


def knee_flexion_3d(rec, side):
    th = rec.joints[:, CJ[f"{side}_hip"]] - rec.joints[:, CJ[f"{side}_knee"]]
    sh = rec.joints[:, CJ[f"{side}_ankle"]] - rec.joints[:, CJ[f"{side}_knee"]]
    cos = np.sum(th * sh, 1) / np.linalg.norm(th, axis=1) / np.linalg.norm(sh, axis=1)
    ok = (rec.confidence[:, [CJ[f"{side}_{j}"] for j in ("hip", "knee", "ankle")]] > 0).all(1)
    return 180.0 - np.degrees(np.arccos(np.clip(cos, -1, 1))), ok


def test_joint_centres_reproduce_the_labs_knee_angles(shared_data, lab, marker_trcs):
    """The hip-knee-ankle angle of our joint centres follows the lab's own knee flexion
    (Plug-in-Gait outputs, OpenSim/OpenCap IK) within 5 deg RMS after a constant offset
    (measured: 0.6-4.0 deg)."""
    checked = 0
    trials = [c3d_dir(shared_data) / "trials" / f"{n}.c3d" for n in lab]
    for path in [*trials, *marker_trcs]:
        truth = trial_truth(path)
        if truth.angles is None:
            continue
        rec = lab.get(path.stem) or marker_trcs[path]
        for side in ("left", "right"):
            ours, ok = knee_flexion_3d(rec, side)
            ref = np.interp(rec.t_us, truth.angles.t_us, truth.angles.knee_flexion[side])
            ok &= np.isfinite(ref)
            d = ours[ok] - ref[ok]
            assert ok.sum() > 50, (rec.name, side)
            assert np.sqrt(np.mean((d - d.mean()) ** 2)) < 5.0, (rec.name, side)
            assert abs(d.mean()) < 10.0, (rec.name, side)
            checked += 1
    assert checked == 2 * (10 + 1 + 8)  # PiG-angle C3Ds, OpenSim IK, OpenCap IK


def test_lab_joint_centres_on_request(shared_data):
    rec = load_recording(c3d_dir(shared_data) / "trials" / "KTK_walk.c3d", lab_centres=True)
    assert rec.meta["joint_methods"]["left_knee"] == "lab knee centre"
    ok = rec.confidence[:, CJ["left_knee"]] > 0
    assert np.allclose(rec.joints[ok, CJ["left_knee"]], rec.markers["LKJC"][ok], atol=1e-6)


@pytest.mark.parametrize("axis,sign", [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)])
def test_any_lab_up_axis_becomes_y_up_keeping_the_floor_plane(lab, axis, sign):
    from capture.readers.axes import level_rotation, y_up_rotation

    rec = lab["KTK_walk"]
    to_lab = y_up_rotation(axis, sign).T  # y-up -> a lab whose vertical is sign * axis
    assert np.isclose(np.linalg.det(to_lab), 1.0)
    lab_joints = rec.joints @ to_lab.T
    rot, info = level_rotation(lab_joints[:, CJ["pelvis"]],
                               0.5 * (lab_joints[:, CJ["left_ankle"]]
                                      + lab_joints[:, CJ["right_ankle"]]))
    assert info["up_axis"] == ("+" if sign > 0 else "-") + "XYZ"[axis]
    back = lab_joints @ rot.T
    assert np.allclose(back[..., 1], rec.joints[..., 1], atol=1e-5)  # heights kept exactly


# --------------------------------------------------------------------------- TRC


def test_trc_files_load_with_their_rates_and_times(marker_trcs, shared_data):
    osim = marker_trcs[shared_data / "opensim_walking_trc_grf" / "subject01_walk1.trc"]
    assert osim.n_frames == 151 and osim.rate_hz == 60.0
    assert osim.meta["marker_set"] == "gait2392" and osim.meta["up_axis"] == "+Y"
    # the file's Time column is rounded to 1 ms (0.017); frames sit on the exact 60 Hz grid
    assert osim.t_us[1] == 16667 and osim.t_us[-1] == 2_500_000
    assert osim.meta["joint_methods"]["left_knee"].startswith("functional (SCoRE)")
    for path, rec in marker_trcs.items():
        if "opencap" in str(path):
            assert rec.meta["marker_set"] == "opencap" and rec.rate_hz == 100.0
            header = path.read_text().splitlines()[2].split("\t")
            assert rec.n_frames == int(header[2])


# --------------------------------------------------------------------------- Kinect v1


@pytest.fixture(scope="module")
def kinect(shared_data):
    root = shared_data / "kinect_v1_walking_andersson2015"
    with open(root / "walks_index.csv", newline="") as fh:
        index = list(csv.DictReader(fh))
    persons = load_kinect_persons(root / "person-data.csv")
    return root, index, persons


def test_kinect_frame_counts_match_walks_index(kinect):
    root, index, _ = kinect
    assert len(index) == 41
    for row in index:
        joints, conf, problems = read_kinect_v1(root / "walks" / row["person"] / row["file"])
        assert joints.shape == (int(row["n_frames"]), 20, 3) and conf.all() and not problems


def test_kinect_walks_read_from_a_zip_member_as_from_the_file(kinect, tmp_path):
    """A lab's walks shipped zipped (as the dataset's walks_more.zip) are read in place, member
    by member, with the walker's height from person-data.csv beside the zip."""
    import shutil
    import zipfile

    root, index, persons = kinect
    row = index[0]
    loose = root / "walks" / row["person"] / row["file"]
    shutil.copy(root / "person-data.csv", tmp_path)
    member = f"Data/{row['person']}/{row['file']}"
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as z:
        z.write(loose, member)
    a = load_recording(loose)
    b = load_recording(f"{tmp_path / 'more.zip'}::{member}")
    assert b.name == a.name == f"{row['person']}_{Path(row['file']).stem}"
    np.testing.assert_array_equal(a.joints, b.joints)
    assert b.meta["subject_height_m"] == a.meta["subject_height_m"] \
        == persons[row["person"]].height_m
    # and every member of the dataset's own zip is read
    more = root / "walks_more.zip"
    with zipfile.ZipFile(more) as z:
        names = z.namelist()
    rec = load_recording(f"{more}::{names[-1]}")
    assert rec.n_frames > 30 and rec.source_layout == "kinect_v1_20"


def test_kinect_walks_map_to_canonical_and_keep_their_own_layout(kinect):
    root, index, persons = kinect
    first = {}
    for row in index:
        first.setdefault(row["person"], row)
    ratios, lr_ok = [], []
    for person, row in first.items():
        rec = load_recording(root / "walks" / person / row["file"])
        assert rec.meta["subject_height_m"] == persons[person].height_m  # from person-data.csv
        assert rec.source_layout == rec.raw_layout == "kinect_v1_20"
        assert rec.raw_joints.shape == (rec.n_frames, 20, 3)
        assert np.allclose(rec.joint("head"), rec.raw_joints[:, KINECT_V1_JOINTS.index("Head")])
        assert rec.t_us[1] == 33333 and "nominal 30 Hz" in rec.meta["timestamps"]
        j = rec.joints
        # head-joint-to-lower-foot height vs the person's stature: the Kinect head joint is the
        # head's centre (~7 cm below the top) and tracking scale varies; measured 0.84-1.08
        h = np.median(j[:, CJ["head"], 1] - np.minimum(j[:, CJ["left_foot"], 1],
                                                       j[:, CJ["right_foot"], 1]))
        ratios.append(h / persons[person].height_m)
        # left/right: forward from the feet (foot joints ahead of the ankles)
        fwd = (j[:, CJ["left_foot"]] + j[:, CJ["right_foot"]] - j[:, CJ["left_ankle"]]
               - j[:, CJ["right_ankle"]])
        fwd[:, 1] = 0
        right = np.cross(fwd, [0.0, 1.0, 0.0])
        lr_ok.append(np.mean(np.sum((j[:, CJ["right_hip"]] - j[:, CJ["left_hip"]]) * right, 1)
                             > 0))
    assert len(ratios) == 8
    assert all(0.80 < r < 1.10 for r in ratios), ratios
    assert 0.90 < np.median(ratios) < 0.97, ratios
    assert sum(ok > 0.85 for ok in lr_ok) >= 7 and min(lr_ok) > 0.5, lr_ok


def test_kinect_bad_line_is_named(tmp_path):
    p = tmp_path / "k.txt"
    p.write_text("Head;0;1;2\nShoulder-Center;0;x;2\n")
    with pytest.raises(RecordingError, match=r"line 2: bad number"):
        load_recording(p)


def test_bad_files_are_refused_with_a_reason(tmp_path, shared_data):
    trc = tmp_path / "bad.trc"
    text = (shared_data / "opensim_walking_trc_grf" / "subject01_walk1.trc").read_text()
    lines = text.splitlines()
    lines[7] = lines[7].replace("\t", "\tNaNx", 1)
    trc.write_text("\n".join(lines))
    with pytest.raises(RecordingError, match=r"bad.trc: line 8"):
        load_recording(trc)
    not_k4a = tmp_path / "x.json"
    not_k4a.write_text("{}")
    with pytest.raises(RecordingError, match="not an Azure Kinect offline_processor file"):
        load_recording(not_k4a)
    other = tmp_path / "x.xyz"
    other.write_text("{}")
    with pytest.raises(RecordingError, match="unsupported"):
        load_recording(other)
    with pytest.raises(RecordingError, match="not a readable C3D"):
        (tmp_path / "y.c3d").write_bytes(b"\x00" * 600)
        load_recording(tmp_path / "y.c3d")


# --------------------------------------------------------------------------- ground truth


def test_lab_events_and_plate_contacts(shared_data, lab):
    gt = c3d_dir(shared_data) / "ground_truth"
    events = load_lab_events(gt / "events.csv")
    assert len(events) == 94 and len({e.trial for e in events}) == 11
    assert sum(e.kind == "foot_strike" for e in events) == 51
    for e in events:  # the event frame indexes the recording (within one frame)
        rec = lab[e.trial]
        assert abs(rec.t_us[e.frame] - e.t_us) <= 1e6 / rec.rate_hz
    contacts = load_plate_contacts(gt / "forceplate_contacts.csv")
    assert len(contacts) == 48 and len({c.trial for c in contacts}) == 23
    assert all(c.off_us > c.on_us for c in contacts)
    assert sum(not c.complete for c in contacts) == 1  # KTK_walk's plate cut by the record end


def test_plate_onsets_agree_with_marked_strikes_where_both_exist(shared_data):
    # SOURCES.md: onsets agree within 0-15 ms for e.g. KTK_walk and MAC Walk1
    t = trial_truth(c3d_dir(shared_data) / "trials" / "KTK_walk.c3d")
    strikes = [e.t_us for e in t.events if e.kind == "foot_strike"]
    for c in (c for c in t.contacts if c.complete):
        assert min(abs(c.on_us - s) for s in strikes) <= 15_000


def test_grf_events_keep_record_boundaries_apart(shared_data):
    osim = load_grf_events(shared_data / "opensim_walking_trc_grf" / "ground_truth"
                           / "events_from_grf.csv")
    assert len(osim) == 10 and sum(e.observed for e in osim) == 7
    assert all(e.t_us in (0, 2_500_000) for e in osim if not e.observed)
    cap = trial_truth(shared_data / "opencap_mocap_modified_gait" / "session20210830"
                      / "walking1_markers.trc")
    assert cap.trial == "session20210830/walking1"
    strikes = [(e.side, e.t_us) for e in cap.events if e.kind == "foot_strike"]
    assert strikes == [("right", 31_000), ("left", 584_000), ("right", 1_107_500)]


def test_pig_knee_angles_from_c3d_points(shared_data):
    ang = load_pig_angles(c3d_dir(shared_data) / "trials" / "KTK_walk.c3d")
    assert ang.t_us.shape == (221,)
    for s in ("left", "right"):
        k = ang.knee_flexion[s]
        assert 50 < np.nanmax(k) < 70 and -10 < np.nanmin(k) < 20  # swing peak, stance
    assert load_pig_angles(c3d_dir(shared_data) / "trials" / "BTK__MAC_Gait.c3d") is None


def test_ik_knee_flexion_sign_is_normalised(shared_data, marker_trcs):
    osim = load_ik_angles(shared_data / "opensim_walking_trc_grf"
                          / "subject01_walk1_ik_gait10dof18musc.mot")
    cap = load_ik_angles(shared_data / "opencap_mocap_modified_gait" / "expert1" / "ik"
                         / "walking1_ik.mot")
    assert osim.channels["knee_angle_r"].min() < -60  # flexion negative in this model's file
    assert cap.channels["knee_angle_r"].max() > 60  # flexion positive in OpenCap's
    for ang in (osim, cap):
        for s in ("left", "right"):
            assert 60 < ang.knee_flexion[s].max() < 80 and ang.knee_flexion[s].min() > -10
    trc = marker_trcs[shared_data / "opensim_walking_trc_grf" / "subject01_walk1.trc"]
    assert np.array_equal(osim.t_us, trc.t_us)  # same clock as the markers


# --------------------------------------------------------------------------- FileSource


def test_file_source_replays_a_recording_in_its_own_layout(shared_data):
    path = shared_data / "kinect_v1_walking_andersson2015" / "walks" / "Person003" / "4.txt"
    src = FileSource("k1", path, loop=True)
    assert src.paced and src.layout == "kinect_v1_20"  # the runner paces it
    frames = []
    for f in src.frames():
        frames.append(f)
        if len(frames) == 2 * 343 + 1:
            src.close()
    t = np.array([f.t_us for f in frames])
    assert np.all(np.diff(t) > 0)  # the second pass continues the clock
    assert frames[343].t_us == frames[342].t_us + 33333
    assert frames[0].bodies[0].joints.shape == (20, 3)
    back = decode(encode(frames[10]))
    assert np.array_equal(back.bodies[0].joints, frames[10].bodies[0].joints)
    c3d = FileSource("lab", c3d_dir(shared_data) / "trials" / "C3DORG_s00_MAC_Walk1.c3d")
    # a lab's heel and toe markers travel as the foot points after the 22 canonical joints
    assert c3d.paced and c3d.layout == "canonical26"
    lab = list(c3d.frames())
    assert len(lab) == 151 and lab[0].bodies[0].joints.shape == (26, 3)


def test_file_source_publishes_through_the_capture_runner(shared_data, endpoint):
    from capture.base import run_capture

    ep = endpoint()
    pub = Publisher(ep)
    sub = Subscriber([ep], ["skel/lab"])
    try:
        assert pub.wait_for_subscribers(1, 5.0) == 1
        src = FileSource("lab", c3d_dir(shared_data) / "trials" / "C3DORG_s03_gait-pig.c3d")
        stop = threading.Event()
        run_capture(src, pub, stop, StatusReporter("cap", "capture"), speed=0)
        got = []
        while (r := sub.recv(500)) is not None:
            got.append(r[1])
        assert len(got) == 142 and [m.seq for m in got] == list(range(1, 143))
        assert got[-1].t_us == 2_820_000 and got[0].layout == "canonical26"
        assert src.state["file"] == "ended"
    finally:
        sub.close()
        pub.close()


def test_foot_points_come_from_the_sources_that_have_them(shared_data):
    """canonical26 = the 22 joints, then left/right heel and toe: from MediaPipe's heel and
    foot index, the Azure Kinect's FOOT (its toe; no heel: confidence 0), a lab's HEE/TOE
    markers; without feet=True every layout still gives the 22 joints."""
    from streams.skeletons import (AZURE_KINECT_JOINTS, CANONICAL_FEET, FOOT_POINTS,
                                   MEDIAPIPE_JOINTS, to_canonical)

    rng = np.random.default_rng(3)
    mp = rng.normal(size=(33, 3)).astype(np.float32)
    j, c = to_canonical("mediapipe33", mp, np.full(33, 0.9, np.float32), feet=True)
    assert j.shape == (26, 3) and np.allclose(c, 0.9)
    assert np.allclose(j[22], mp[MEDIAPIPE_JOINTS.index("left_heel")])
    assert np.allclose(j[25], mp[MEDIAPIPE_JOINTS.index("right_foot_index")])
    k4a = rng.normal(size=(32, 3)).astype(np.float32)
    j, c = to_canonical("azure_kinect32", k4a, np.ones(32, np.float32), feet=True)
    assert c[22] == c[23] == 0.0 and c[24] == c[25] == 1.0  # no heels; FOOT is the toe
    assert np.allclose(j[24], k4a[AZURE_KINECT_JOINTS.index("FOOT_LEFT")])
    assert to_canonical("azure_kinect32", k4a, np.ones(32, np.float32))[0].shape == (22, 3)
    j26 = rng.normal(size=(5, 26, 3)).astype(np.float32)
    j22, c22 = to_canonical(CANONICAL_FEET, j26, np.ones((5, 26), np.float32))
    assert np.array_equal(j22, j26[:, :22]) and c22.shape == (5, 22)
    assert np.array_equal(to_canonical("canonical22", j26[:, :22], np.ones((5, 22), np.float32),
                                       feet=True)[1][:, 22:], np.zeros((5, 4)))
    # a Plug-in-Gait lab: its LHEE / RTOE markers, in the recording's (levelled) frame
    rec = load_recording(c3d_dir(shared_data) / "trials" / "C3DORG_s00_MAC_Walk1.c3d")
    assert rec.feet.shape == (rec.n_frames, len(FOOT_POINTS), 3)
    lhee = next(v for k, v in rec.markers.items() if k.endswith("LHEE"))
    ok = np.isfinite(lhee).all(1)
    assert ok.any() and np.allclose(rec.feet[ok, 0], lhee[ok], atol=1e-5)
    assert (rec.feet_confidence[ok, 0] == 1).all()
    # heels sit behind and below the ankles
    assert np.median(rec.feet[:, 0, 1] - rec.joint("left_ankle")[:, 1]) < -0.02
