"""Ground truth of the shared gait data, on the same clock as the Recording of the same trial.

Times are integer microseconds from the first stored frame of the trial's recording (the C3D
readers and events.csv share that origin; the TRC/MOT files of OpenSim and OpenCap start at
t = 0 on the same clock as their markers).

- lab events: ``c3d_gait_lab_samples/ground_truth/events.csv`` (C3D EVENT group, lab-marked)
- force-plate stance intervals: ``.../forceplate_contacts.csv``
- GRF events: ``events_from_grf.csv`` of the OpenSim and OpenCap folders; a row with
  ``observed_in_record=False`` is a record boundary, not an event (``GaitEventTruth.observed``)
- Plug-in-Gait angle outputs stored as C3D points (LKneeAngles ...), degrees, X = flexion
- OpenSim IK ``.mot`` angles; knee flexion sign differs between models (gait10dof18musc:
  negative = flexion; the OpenCap full-body model: positive = flexion) and is normalised here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SIDES = {"left": "left", "right": "right", "l": "left", "r": "right"}
KINDS = {"foot_strike": "foot_strike", "foot_off": "foot_off",
         "foot strike": "foot_strike", "foot off": "foot_off"}


class GroundTruthError(ValueError):
    """A ground-truth file is missing or malformed; the message names the file and row."""


def _us(seconds: float) -> int:
    return int(round(float(seconds) * 1e6))


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise GroundTruthError(f"{path}: no such file")
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _bool(text: str, path: Path, line: int) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes"):
        return True
    if t in ("false", "0", "no"):
        return False
    raise GroundTruthError(f"{path.name}: line {line}: not a boolean: {text!r}")


# --------------------------------------------------------------------------- gait events


@dataclass(frozen=True)
class GaitEventTruth:
    trial: str
    side: str  # 'left' | 'right'
    kind: str  # 'foot_strike' | 'foot_off'
    t_us: int
    source: str
    frame: int | None = None
    observed: bool = True  # False: the time is a record boundary, not a real event


def _event(row: dict[str, str], path: Path, line: int, observed: bool) -> GaitEventTruth:
    try:
        side = SIDES[row["side"].strip().lower()]
        kind = KINDS[row["event"].strip().lower()]
        t = _us(float(row["time_s"]))
        frame = int(row["frame"]) if row.get("frame", "").strip() else None
    except (KeyError, ValueError) as e:
        raise GroundTruthError(f"{path.name}: line {line}: bad event row {row} ({e})") from None
    return GaitEventTruth(trial=row["trial"].strip(), side=side, kind=kind, t_us=t,
                          source=row.get("source", "").strip(), frame=frame, observed=observed)


def load_lab_events(path: str | Path) -> list[GaitEventTruth]:
    """Lab-marked events (events.csv of c3d_gait_lab_samples)."""
    path = Path(path)
    return [_event(r, path, i + 2, True) for i, r in enumerate(_rows(path))]


def load_grf_events(path: str | Path) -> list[GaitEventTruth]:
    """Events from per-foot GRF (events_from_grf.csv), with ``observed_in_record`` kept."""
    path = Path(path)
    out = []
    for i, r in enumerate(_rows(path)):
        observed = _bool(r.get("observed_in_record", "True"), path, i + 2)
        out.append(_event(r, path, i + 2, observed))
    return out


def events_by_trial(events: list[GaitEventTruth]) -> dict[str, list[GaitEventTruth]]:
    out: dict[str, list[GaitEventTruth]] = {}
    for e in events:
        out.setdefault(e.trial, []).append(e)
    for v in out.values():
        v.sort(key=lambda e: e.t_us)
    return out


# --------------------------------------------------------------------------- force plates


@dataclass(frozen=True)
class PlateContact:
    """One foot on one plate: on ~ foot strike, off ~ foot off of that foot (side unknown)."""

    trial: str
    plate: int
    on_us: int
    off_us: int
    complete: bool  # False: cut by the start or end of the record
    peak_vertical_n: float
    side_hint: str  # unvalidated nearest-foot guess; 'Unknown' for most files


def load_plate_contacts(path: str | Path) -> list[PlateContact]:
    path = Path(path)
    out = []
    for i, r in enumerate(_rows(path)):
        try:
            out.append(PlateContact(
                trial=r["trial"].strip(), plate=int(r["plate"]), on_us=_us(float(r["t_on_s"])),
                off_us=_us(float(r["t_off_s"])),
                complete=_bool(r["complete_contact"], path, i + 2),
                peak_vertical_n=float(r["peak_vertical_N"]),
                side_hint=r.get("side_hint_unvalidated", "Unknown").strip()))
        except (KeyError, ValueError) as e:
            raise GroundTruthError(f"{path.name}: line {i + 2}: bad contact row ({e})") from None
    return out


# --------------------------------------------------------------------------- joint angles


@dataclass
class AngleTruth:
    """Reference joint angles in degrees on the recording's clock.

    ``knee_flexion``/``hip_flexion``: side -> (T,) degrees, positive = flexion, NaN where the
    lab had no value. ``channels`` keeps every column/point as the source had it."""

    source: str
    t_us: np.ndarray
    knee_flexion: dict[str, np.ndarray] = field(default_factory=dict)
    hip_flexion: dict[str, np.ndarray] = field(default_factory=dict)
    channels: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_pig_angles(c3d_path: str | Path) -> AngleTruth | None:
    """Plug-in-Gait angle outputs stored as C3D points (LKneeAngles, LHipAngles ... degrees,
    component X = flexion/extension, knee and hip flexion positive). None if the file has none."""
    import ezc3d

    path = Path(c3d_path)
    c = ezc3d.c3d(str(path))
    p = c["parameters"]["POINT"]
    labels = [str(x).rsplit(":", 1)[-1].strip() for x in p["LABELS"]["value"]]
    pts = np.asarray(c["data"]["points"], dtype=np.float64)[:3].transpose(2, 1, 0)  # (T, N, 3)
    residual = np.asarray(c["data"]["meta_points"]["residuals"])[0].T
    labels = (labels + [""] * pts.shape[1])[: pts.shape[1]]
    rate = float(np.asarray(p["RATE"]["value"]).ravel()[0])
    channels: dict[str, np.ndarray] = {}
    for i, lab in enumerate(labels):
        if lab.endswith("Angles") or lab.endswith("Angle"):
            v = pts[:, i].copy()
            v[(residual[:, i] < 0) | (v == 0).all(1)] = np.nan
            channels.setdefault(lab, v)
    if not any(k in channels for k in ("LKneeAngles", "RKneeAngles")):
        return None
    t_us = np.round(np.arange(pts.shape[0]) * 1e6 / rate).astype(np.int64)
    out = AngleTruth(source=f"Plug-in-Gait outputs in {path.name}", t_us=t_us, channels=channels)
    for side, s in (("left", "L"), ("right", "R")):
        if f"{s}KneeAngles" in channels:
            out.knee_flexion[side] = channels[f"{s}KneeAngles"][:, 0]
        if f"{s}HipAngles" in channels:
            out.hip_flexion[side] = channels[f"{s}HipAngles"][:, 0]
    return out


def read_mot(path: str | Path) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """(column names, data (T, C), header key=values) of an OpenSim .mot/.sto file."""
    path = Path(path)
    if not path.is_file():
        raise GroundTruthError(f"{path}: no such file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        end = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "endheader")
    except StopIteration:
        raise GroundTruthError(f"{path.name}: no 'endheader' line") from None
    header = {}
    for ln in lines[:end]:
        if "=" in ln:
            k, v = ln.split("=", 1)
            header[k.strip()] = v.strip()
    cols = lines[end + 1].split()
    rows = []
    for i, ln in enumerate(lines[end + 2:], start=end + 3):
        if not ln.strip():
            continue
        try:
            rows.append([float(x) for x in ln.split()])
        except ValueError:
            raise GroundTruthError(f"{path.name}: line {i}: not numbers") from None
        if len(rows[-1]) != len(cols):
            raise GroundTruthError(f"{path.name}: line {i}: {len(rows[-1])} values for "
                                   f"{len(cols)} columns")
    return cols, np.array(rows, dtype=np.float64), header


def mot_columns(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of an OpenSim .mot/.sto file by name."""
    cols, data, _ = read_mot(path)
    return {n: data[:, i] for i, n in enumerate(cols)}


def knee_flexion_sign(knee_deg: np.ndarray) -> float:
    """+1 if the column is positive in flexion, -1 if negative. In walking the knee flexes to
    ~60 deg in swing and extends to only ~0-5 deg, so the largest excursion is flexion."""
    v = knee_deg[np.isfinite(knee_deg)]
    if len(v) == 0:
        raise GroundTruthError("knee angle column is empty")
    return 1.0 if v.max() >= -v.min() else -1.0


def load_ik_angles(path: str | Path, *, knee_sign: float | None = None) -> AngleTruth:
    """OpenSim inverse-kinematics angles (.mot, degrees). ``knee_sign`` (+1 / -1: the sign of
    flexion in the file) is found from the data unless given; it is reported in ``notes``."""
    path = Path(path)
    cols, data, header = read_mot(path)
    if "time" not in cols:
        raise GroundTruthError(f"{path.name}: no time column")
    if header.get("inDegrees", "yes").lower() != "yes":
        data = data.copy()
        data[:, 1:] = np.degrees(data[:, 1:])  # every coordinate we use is rotational
    t_us = np.round(data[:, cols.index("time")] * 1e6).astype(np.int64)
    channels = {c: data[:, i] for i, c in enumerate(cols) if c != "time"}
    out = AngleTruth(source=f"OpenSim IK {path.name}", t_us=t_us, channels=channels)
    for side, s in (("left", "l"), ("right", "r")):
        kcol, hcol = f"knee_angle_{s}", f"hip_flexion_{s}"
        if kcol in channels:
            sign = knee_sign if knee_sign is not None else knee_flexion_sign(channels[kcol])
            out.knee_flexion[side] = sign * channels[kcol]
            out.notes.append(f"{kcol}: flexion is {'positive' if sign > 0 else 'negative'} "
                             f"in the file{'' if knee_sign is not None else ' (from the data)'}")
        if hcol in channels:
            out.hip_flexion[side] = channels[hcol]
    return out


# --------------------------------------------------------------------------- subjects


@dataclass(frozen=True)
class Person:
    person: str
    height_m: float
    weight_kg: float | None
    gender: str
    backpack: bool
    high_heels: bool


def load_kinect_persons(path: str | Path) -> dict[str, Person]:
    """person-data.csv of kinect_v1_walking_andersson2015 ("S" = yes in the flag columns)."""
    path = Path(path)
    out = {}
    for i, r in enumerate(_rows(path)):
        try:
            w = r.get("Weight (Kg)", "").strip()
            out[r["Individual"].strip()] = Person(
                person=r["Individual"].strip(), height_m=float(r["Height"]),
                weight_kg=float(w) if w else None, gender=r.get("Gender", "").strip(),
                backpack=r.get("BackPack", "").strip().upper() == "S",
                high_heels=r.get("HighHeels", "").strip().upper() == "S")
        except (KeyError, ValueError) as e:
            raise GroundTruthError(f"{path.name}: line {i + 2}: bad person row ({e})") from None
    return out


# --------------------------------------------------------------------------- per trial


@dataclass
class TrialTruth:
    """What is known about one recording file."""

    trial: str
    events: list[GaitEventTruth] = field(default_factory=list)
    contacts: list[PlateContact] = field(default_factory=list)
    angles: AngleTruth | None = None
    dataset: str = ""


# What labs and tools append to a trial's name on its marker file (x_markers.trc beside
# x_grf.mot, truth keyed x)
_FILE_SUFFIXES = ("_markers", "_marker", "-markers", ".markers", "_mocap", "_trc", "_c3d",
                  "_filtered", "_processed", "_labelled", "_labeled")


def trial_keys(stem: str) -> list[str]:
    """The names a recording's truth may be keyed by: its stem, then without a suffix."""
    keys = [stem]
    for suffix in _FILE_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            keys.append(stem[: -len(suffix)])
    return keys


def _of_trial(rows: list, stem: str) -> tuple[str, list]:
    """(the key that matched, the rows of the first of the stem's keys that has any)."""
    for key in trial_keys(stem):
        mine = [r for r in rows if r.trial == key]
        if mine:
            return key, mine
    return stem, []


def truth_trials(root: str | Path) -> set[str]:
    """Every trial a dataset folder's ground truth names (to tell which truth no recording
    matched)."""
    gt = Path(root) / "ground_truth"
    out: set[str] = set()
    if (gt / "events.csv").is_file():
        out |= {e.trial for e in load_lab_events(gt / "events.csv")}
    if (gt / "forceplate_contacts.csv").is_file():
        out |= {c.trial for c in load_plate_contacts(gt / "forceplate_contacts.csv")}
    if (gt / "events_from_grf.csv").is_file():
        out |= {e.trial for e in load_grf_events(gt / "events_from_grf.csv")}
    return out


def trial_truth(recording_path: str | Path) -> TrialTruth:
    """The ground truth for a recording file of one of the shared datasets, found from where
    the file lies (c3d trials/, OpenSim folder, OpenCap expert1/ or session folder)."""
    path = Path(recording_path).resolve()
    stem = path.stem
    if path.parent.name == "trials" and (path.parent.parent / "ground_truth").is_dir():
        gt = path.parent.parent / "ground_truth"
        key, ev = _of_trial(load_lab_events(gt / "events.csv"), stem) \
            if (gt / "events.csv").is_file() else (stem, [])
        _, pc = _of_trial(load_plate_contacts(gt / "forceplate_contacts.csv"), stem) \
            if (gt / "forceplate_contacts.csv").is_file() else (stem, [])
        ang = load_pig_angles(path) if path.suffix.lower() == ".c3d" else None
        return TrialTruth(key, sorted(ev, key=lambda e: e.t_us), pc, ang, "c3d_gait_lab")
    # OpenSim example folder: <root>/subject01_walk1.trc + ground_truth/ + *_ik_*.mot
    if (path.parent / "ground_truth" / "events_from_grf.csv").is_file():
        root = path.parent
        key, ev = _of_trial(load_grf_events(root / "ground_truth" / "events_from_grf.csv"),
                            stem)
        iks = sorted(root.glob(f"{key}_ik*.mot"))
        ang = load_ik_angles(iks[0]) if iks else None
        return TrialTruth(key, sorted(ev, key=lambda e: e.t_us), [], ang, "opensim")
    # OpenCap: <root>/expert1/markers/<t>.trc (+ expert1/ik/<t>_ik.mot) or
    # <root>/session20210830/<t>_markers.trc, truth in <root>/ground_truth/events_from_grf.csv
    for root in (path.parent.parent, path.parent.parent.parent):
        grf = root / "ground_truth" / "events_from_grf.csv"
        if not grf.is_file():
            continue
        if path.parent.name == "markers":
            key = f"{path.parent.parent.name}/{stem}"
            ik = path.parent.parent / "ik" / f"{stem}_ik.mot"
        else:
            key = f"{path.parent.name}/{stem.removesuffix('_markers')}"
            ik = path.parent / f"{stem.removesuffix('_markers')}_ik.mot"
        ev = [e for e in load_grf_events(grf) if e.trial == key]
        ang = load_ik_angles(ik) if ik.is_file() else None
        return TrialTruth(key, sorted(ev, key=lambda e: e.t_us), [], ang, "opencap")
    return TrialTruth(stem)
