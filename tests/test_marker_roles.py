"""Any lab's marker names read by anatomical role: TRC files the tests write, in each naming
convention, from a simulated walker whose true joint centres are known; and the TRC header and
row variants writers produce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capture.readers import load_recording
from capture.readers.marker_roles import role_marker_set, side_and_base
from capture.readers.recording import RecordingError
from inference.data.simulated import walkway_walk
from streams.skeletons import CJ


def walker_markers(seconds: float = 4.0):
    """(t_s, truth joints (T,22,3) y up, anatomical markers by role and side) of a walk."""
    t_us, j, _ = walkway_walk(seconds, seed=5)
    j = j.astype(np.float64)
    up = np.array([0.0, 1.0, 0.0])
    lat = j[:, CJ["right_hip"]] - j[:, CJ["left_hip"]]
    lat /= np.linalg.norm(lat, axis=1, keepdims=True)  # towards the right
    fwd = np.cross(lat, up)
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    pel = j[:, CJ["pelvis"]]
    m = {}
    for side, sign, s in (("L", -1, "left"), ("R", 1, "right")):
        m[side, "ASIS"] = pel + sign * 0.12 * lat + 0.06 * fwd + 0.06 * up
        m[side, "PSIS"] = pel + sign * 0.05 * lat - 0.10 * fwd + 0.08 * up
        knee, ankle = j[:, CJ[f"{s}_knee"]], j[:, CJ[f"{s}_ankle"]]
        m[side, "KNEE_LAT"] = knee + sign * 0.05 * lat
        m[side, "KNEE_MED"] = knee - sign * 0.05 * lat
        m[side, "ANKLE_LAT"] = ankle + sign * 0.035 * lat
        m[side, "ANKLE_MED"] = ankle - sign * 0.035 * lat
        m[side, "HEEL"] = ankle - 0.06 * fwd - 0.04 * up
        m[side, "TOE"] = j[:, CJ[f"{s}_foot"]]
        m[side, "MT1"] = m[side, "TOE"] - sign * 0.03 * lat
        m[side, "MT5"] = m[side, "TOE"] + sign * 0.03 * lat
    return t_us / 1e6, j, m


# convention -> (role -> label pattern with {s} for the side, as the convention writes it)
CONVENTIONS = {
    "isb": {"ASIS": "IAS_{S}", "PSIS": "IPS_{S}", "KNEE_LAT": "FLE_{S}", "KNEE_MED": "FME_{S}",
            "ANKLE_LAT": "FAL_{S}", "ANKLE_MED": "TAM_{S}", "HEEL": "CAL_{S}",
            "TOE": "MH2_{S}"},
    "descriptive": {"ASIS": "{Side}_ASIS", "PSIS": "{Side}_PSIS",
                    "KNEE_LAT": "{Side}_Knee_Lateral", "KNEE_MED": "{Side}_Knee_Medial",
                    "ANKLE_LAT": "{Side} Lateral Malleolus", "ANKLE_MED": "{Side} Medial Malleolus",
                    "HEEL": "{Side} Heel", "TOE": "{Side} Toe"},
    "opencap": {"ASIS": "{s}.ASIS_study", "PSIS": "{s}.PSIS_study", "KNEE_LAT": "{s}_knee_study",
                "KNEE_MED": "{s}_mknee_study", "ANKLE_LAT": "{s}_ankle_study",
                "ANKLE_MED": "{s}_mankle_study", "HEEL": "{s}_calc_study",
                "TOE": "{s}_toe_study"},
    "suffix-and-metatarsals": {"ASIS": "ASIS.{S}", "PSIS": "PSIS.{S}", "KNEE_LAT": "LatEpi-{S}",
                               "KNEE_MED": "MedEpi-{S}", "ANKLE_LAT": "LatMall-{S}",
                               "ANKLE_MED": "MedMall-{S}", "HEEL": "Calcaneus-{S}",
                               "MT1": "MT1-{S}", "MT5": "MT5-{S}"},
    "prefixed-subject": {"ASIS": "Pat07:{S}ASI", "PSIS": "Pat07:{S}PSI",
                         "KNEE_LAT": "Pat07:{S}KNE", "KNEE_MED": "Pat07:{S}KNM",
                         "ANKLE_LAT": "Pat07:{S}ANK", "ANKLE_MED": "Pat07:{S}MMAL",
                         "HEEL": "Pat07:{S}HEE", "TOE": "Pat07:{S}TOE"},
}


def label(pattern: str, side: str) -> str:
    return pattern.format(S=side, s=side.lower(), Side="Left" if side == "L" else "Right")


def write_trc(path: Path, t_s: np.ndarray, markers: dict[str, np.ndarray], *,
              units: str = "mm", crlf: bool = False, empty_header_fields: bool = False,
              gap: slice | None = None, trailing_tabs: bool = False) -> Path:
    scale = 1000.0 if units == "mm" else 1.0
    names = list(markers)
    rate = round(1 / np.median(np.diff(t_s)))
    keys = ["DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
            "OrigDataStartFrame", "OrigNumFrames"]
    vals = [str(rate), str(rate), str(len(t_s)), str(len(names)), units, str(rate), "1",
            str(len(t_s))]
    if empty_header_fields:  # OpenSim's writer leaves empty fields in both rows
        keys = keys[:5] + ["", ""] + keys[5:] + [""]
        vals = vals[:5] + ["", ""] + vals[5:] + [""]
    lines = ["PathFileType\t4\t(X/Y/Z)\twalk.trc", "\t".join(keys), "\t".join(vals),
             "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t",
             "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, len(names) + 1))]
    for f, t in enumerate(t_s):
        cells = [str(f + 1), f"{t:.5f}"]
        for n in names:
            xyz = markers[n][f] * scale
            missing = gap is not None and gap.start <= f < gap.stop and n == names[0]
            cells += ["", "", ""] if missing else [f"{v:.3f}" for v in xyz]
        lines.append("\t".join(cells) + ("\t\t" if trailing_tabs else ""))
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode() + b"\n")
    return path


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_every_naming_convention_gives_the_joint_centres(tmp_path, convention):
    t_s, truth, m = walker_markers()
    names = CONVENTIONS[convention]
    markers = {label(pat, side): m[side, role] for role, pat in names.items()
               for side in ("L", "R")}
    rec = load_recording(write_trc(tmp_path / f"{convention}.trc", t_s, markers))
    for joint in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        err = np.linalg.norm(rec.joints[:, CJ[joint]] - truth[:, CJ[joint]], axis=1)
        assert np.median(err) < 0.005, (joint, np.median(err))  # mid lateral/medial markers
    hip = np.linalg.norm(rec.joints[:, CJ["left_hip"]] - rec.joints[:, CJ["right_hip"]], axis=1)
    assert 0.12 < np.median(hip) < 0.25  # Harrington's regression from the pelvis landmarks
    foot = rec.joints[:, CJ["left_foot"]] - truth[:, CJ["left_foot"]]
    assert np.median(np.linalg.norm(foot, axis=1)) < 0.005  # toe, or mid 1st/5th metatarsal


def test_centres_the_lab_stored_stand_in_for_missing_landmarks(tmp_path):
    t_s, truth, m = walker_markers()
    markers = {}
    for side, s in (("L", "left"), ("R", "right")):
        markers[f"{side}_ASIS"] = m[side, "ASIS"]
        markers[f"{side}_PSIS"] = m[side, "PSIS"]
        markers[f"{side}_KJC"] = truth[:, CJ[f"{s}_knee"]]
        markers[f"{side}_AJC"] = truth[:, CJ[f"{s}_ankle"]]
        markers[f"{side}_HEEL"] = m[side, "HEEL"]
        markers[f"{side}_TOE"] = m[side, "TOE"]
    rec = load_recording(write_trc(tmp_path / "centres.trc", t_s, markers))
    err = np.linalg.norm(rec.joints[:, CJ["right_knee"]] - truth[:, CJ["right_knee"]], axis=1)
    assert np.median(err) < 1e-3
    assert rec.meta["joint_methods"]["right_knee"] == "lab knee centre"


def test_a_file_without_the_roles_says_which_are_missing_and_what_it_saw(tmp_path):
    t_s, _, m = walker_markers(2.0)
    clusters = {f"{side}TH{k}": m[side, "KNEE_LAT"] + 0.01 * k for side in "LR"
                for k in range(1, 4)}
    with pytest.raises(RecordingError) as e:
        load_recording(write_trc(tmp_path / "clusters.trc", t_s, clusters))
    msg = str(e.value)
    assert "left anterior superior iliac spine" in msg and "right lateral malleolus" in msg
    assert "marker clusters alone" in msg and "LTH1" in msg


@pytest.mark.parametrize("variant", [
    dict(empty_header_fields=True), dict(crlf=True), dict(units="m"), dict(trailing_tabs=True),
    dict(gap=slice(20, 30)),
])
def test_trc_variants_writers_produce_are_read(tmp_path, variant):
    t_s, truth, m = walker_markers(3.0)
    markers = {label(p, s): m[s, r] for r, p in CONVENTIONS["descriptive"].items() for s in "LR"}
    rec = load_recording(write_trc(tmp_path / "v.trc", t_s, markers, **variant))
    assert rec.n_frames == len(t_s)
    err = np.linalg.norm(rec.joints[:, CJ["left_ankle"]] - truth[:, CJ["left_ankle"]], axis=1)
    assert np.median(err) < 0.005


def test_side_is_read_from_prefixes_and_suffixes():
    assert (("L", "ASI") in side_and_base("LASI") and ("R", "KNEELATERAL") in
            side_and_base("Right_Knee_Lateral") and ("L", "ASIS") in side_and_base("ASIS_L")
            and ("R", "KNEE") in side_and_base("r_knee_study")
            and ("L", "HEEL") in side_and_base("Left Heel"))
    ms, missing = role_marker_set({"LASI", "RASI", "LKNE", "RKNE", "LANK"})
    assert ms is None and missing == ["right lateral malleolus or ankle joint centre"]


def test_eval_events_joins_truth_across_file_suffixes_and_names_truth_without_a_file(tmp_path):
    """x_markers.trc beside truth keyed x is evaluated against it; truth that no recording of
    the folder matched is named in the report instead of vanishing."""
    from inference.data.simulated import walkway_person
    from inference.eval.events import evaluate

    person, t_s = walkway_person(8.0, seed=5)
    t_sim, _, m = walker_markers(8.0)
    ds = tmp_path / "lab"
    (ds / "ground_truth").mkdir(parents=True)
    markers = {label(p, s): m[s, r] for r, p in CONVENTIONS["descriptive"].items() for s in "LR"}
    write_trc(ds / "walk1_markers.trc", t_sim, markers)
    rows = ["trial,side,event,time_s,observed_in_record,source"]
    for trial in ("walk1", "walk2"):
        rows += [f"{trial},{e.side.title()},{e.kind},{e.t - t_s[0]:.4f},True,simulator"
                 for e in person.events() if t_s[0] <= e.t <= t_s[-1]]
    (ds / "ground_truth" / "events_from_grf.csv").write_text("\n".join(rows) + "\n")
    rep = evaluate([ds])
    (trial,) = rep["trials"]
    assert trial["trial"] == "walk1" and not trial["skipped"]
    overall = rep["overall"]
    assert overall["recall"] > 0.8  # the truth of walk1 reached the markers of walk1_markers
    assert rep["truth_without_recording"] == {"lab": ["walk2"]}


def test_a_site_names_its_own_markers_beside_its_recordings(tmp_path):
    """Names no table knows (here French, with its own side words) read once the site maps them
    to role codes in markers.toml beside the file; a code that is no role is refused by name."""
    t_s, truth, m = walker_markers()
    french = {"ASIS": "EIAS", "PSIS": "EIPS", "KNEE_LAT": "CONDYLE_EXT", "KNEE_MED": "CONDYLE_INT",
              "ANKLE_LAT": "MALLEOLE_EXT", "ANKLE_MED": "MALLEOLE_INT", "HEEL": "TALON",
              "TOE": "ORTEIL"}
    codes = {"ASIS": "ASI", "PSIS": "PSI", "KNEE_LAT": "KNE", "KNEE_MED": "KNM",
             "ANKLE_LAT": "ANK", "ANKLE_MED": "ANM", "HEEL": "HEE", "TOE": "TOE"}
    markers = {f"{name}_{'GAUCHE' if s == 'L' else 'DROIT'}": m[s, role]
               for role, name in french.items() for s in "LR"}
    path = write_trc(tmp_path / "marche.trc", t_s, markers)
    with pytest.raises(RecordingError, match="lateral knee"):
        load_recording(path)
    (tmp_path / "markers.toml").write_text("[markers]\n" + "".join(
        f'{name}_{"GAUCHE" if s == "L" else "DROIT"} = "{s}{codes[role]}"\n'
        for role, name in french.items() for s in "LR"))
    rec = load_recording(path)
    err = np.linalg.norm(rec.joints[:, CJ["left_knee"]] - truth[:, CJ["left_knee"]], axis=1)
    assert np.median(err) < 0.005
    (tmp_path / "markers.toml").write_text('[markers]\nTALON_GAUCHE = "LHEEL"\n')
    with pytest.raises(RecordingError, match="'LHEEL' is no role code .*'LHEE'"):
        load_recording(path)
