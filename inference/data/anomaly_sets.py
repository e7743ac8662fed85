"""Labelled folders for ``gaitstream eval anomaly``: each documented layout read into walks with
the labels, persons, severities and camera views its own files give. No file or person name of
../shared/data is known here; a folder of the same layout with other names reads the same way.

Layouts (a folder is tried against each; ``find_sets`` walks a tree and stops at a match):

- ``trial_labels``: ``ground_truth/trial_labels.csv`` (or ``trial_labels.csv``) with a ``trial``
  column (a path without suffix under the folder, e.g. ``person3/walk2``) and a label column
  (:data:`LABEL_COLUMNS`). The recording of a trial is the file under the trial's folder whose
  stem is the trial's name or starts with it and ``_`` (``walk2_markers.trc``), at any depth;
  the person is the trial's first path component;
- ``fgdi``: the FGDI curve CSVs (``inference.data.fgdi``): each subject-session's right and left
  strides drive the canonical skeleton (``angle_curves.pig_walk``); group from the subjects'
  index, medication state from the session; severity = the clinical CSV's ``<STATE> -
  UPDRS-III - walking`` column of that subject and state (when the folder has one);
- ``kinect_v2``: an index CSV with ``file``, ``human``, ``gait`` and ``kinect`` columns (the
  file in the folder or a member of a zip in it): person, label and camera view of each file;
- ``kinect_v1``: the person-data layout (``inference.data.diffusion.kinect_v1_walks``): the
  condition flags are the labels, people without one are normal;
- ``angle_curves``: OpenSim .mot joint-angle cycles (with ``hip_flexion_r`` and
  ``knee_angle_r`` columns) driving the skeleton; the label is the file's stem less ``_gait``,
  normal when the stem says normal.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.data.diffusion import (KINECT_V2_COLUMNS, Walk, _dict_rows, _header,
                                      kinect_v1_trained_on, kinect_v1_walks, kinect_v2_rows,
                                      load_walk, walk_from_arrays)
from inference.data.fgdi import FgdiError, is_control, read_folder
from inference.models.motion_diffusion import features as hml3d

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("gait_pattern", "label", "group", "condition", "gait")
RECORDING_SUFFIXES = (".trc", ".c3d", ".bvh", ".amc", ".txt", ".csv", ".json")
UPDRS_WALKING = re.compile(r"^\s*(\w+)\s*-\s*UPDRS-III\s*-\s*walking\s*$", re.I)


class LayoutError(ValueError):
    """A folder is not in any layout eval anomaly reads."""


@dataclass
class Item:
    """One labelled thing to score: a recording, or a skeleton driven by angle curves."""

    name: str
    person: str
    group: str  # the label read from the data
    load: object  # () -> Walk (loaded when scored)
    severity: float | None = None
    view: str = ""  # camera (Kinect v2 sensor)
    trained_on: bool = False  # the diffusion model saw this walk in training

    @property
    def normal(self) -> bool:
        return is_control(self.group)


@dataclass
class LabelledSet:
    layout: str
    folder: Path
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        gs = sorted({i.group for i in self.items})
        return sorted(gs, key=lambda g: not is_control(g))  # normal first


# --------------------------------------------------------------------------- trial labels


def _trial_labels_csv(folder: Path) -> Path | None:
    for p in (folder / "ground_truth" / "trial_labels.csv", folder / "trial_labels.csv"):
        if p.is_file() and "trial" in _header(p):
            return p
    return None


def _trial_recording(folder: Path, trial: str) -> Path | None:
    rel = Path(trial)
    base = folder / rel.parent
    if not base.is_dir():
        return None
    found = [p for p in base.rglob(f"{rel.name}*") if p.suffix.lower() in RECORDING_SUFFIXES
             and (p.stem == rel.name or p.stem.startswith(rel.name + "_"))]
    return min(found, key=lambda p: (len(p.parts), len(p.name))) if found else None


def read_trial_labels(folder: Path) -> LabelledSet:
    path = _trial_labels_csv(folder)
    if path is None:
        raise LayoutError(f"{folder}: no trial_labels.csv with a 'trial' column")
    head = _header(path)
    label = next((c for c in LABEL_COLUMNS if c in head), None)
    if label is None:
        raise LayoutError(f"{path}: no label column (one of {', '.join(LABEL_COLUMNS)})")
    out = LabelledSet("trial_labels", folder)
    for row in _dict_rows(path):
        trial = row["trial"].strip()
        rec = _trial_recording(folder, trial)
        if rec is None:
            out.notes.append(f"{trial}: no recording found under {folder}")
            continue
        person = Path(trial).parts[0] if len(Path(trial).parts) > 1 else "?"
        out.items.append(Item(trial, person, row[label].strip(),
                              lambda rec=rec, trial=trial: load_walk(rec, "trial",
                                                                     name=trial)))
    return out


# --------------------------------------------------------------------------- FGDI


def _updrs_walking(folder: Path) -> dict[tuple[str, str], float]:
    """(subject code, state) -> the UPDRS-III walking item, from any CSV of the folder with an
    ``ID`` column and ``<STATE> - UPDRS-III - walking`` columns ('-' or empty = missing)."""
    out = {}
    for p in sorted(folder.glob("*.csv")):
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            continue
        head = [h.strip() for h in rows[0]]
        cols = {m.group(1).lower(): i for i, h in enumerate(head) if (m := UPDRS_WALKING.match(h))}
        if "ID" not in head or not cols:
            continue
        idc = head.index("ID")
        for r in rows[1:]:
            for state, i in cols.items():
                if len(r) > i and r[i].strip() not in ("", "-"):
                    try:
                        out[(r[idc].strip(), state)] = float(r[i])
                    except ValueError:
                        raise LayoutError(f"{p.name}: {head[i]} of {r[idc]}: {r[i]!r} is not "
                                          "a number") from None
    return out


def read_fgdi(folder: Path) -> LabelledSet:
    from inference.data.angle_curves import pig_walk

    try:
        data = read_folder(folder)
    except FgdiError as e:
        raise LayoutError(str(e)) from None
    updrs = _updrs_walking(folder)
    sessions: dict[tuple[str, str], dict[str, object]] = {}
    for s in data.strides:
        sessions.setdefault((s.subject, s.session), {"group": s.group})[s.side] = s
    out = LabelledSet("fgdi", folder)
    for (subject, session), v in sorted(sessions.items()):
        if "left" not in v or "right" not in v:
            out.notes.append(f"{subject} {session}: no stride of both sides")
            continue
        state = session[len(subject):].strip("_- ").lower() if session.startswith(subject) \
            else ""
        right, left = v["right"].curves, v["left"].curves

        def load(right=right, left=left, name=f"{subject}/{session}", group=v["group"]):
            t_us, joints, period = pig_walk(right, left)
            return cycle_walk(name, t_us, joints, period, group)

        out.items.append(Item(f"{subject}/{session}", subject, v["group"], load,
                              severity=updrs.get((subject, state))))
    return out


def cycle_walk(name: str, t_us: np.ndarray, joints: np.ndarray, period: float,
               label: str) -> Walk:
    """A walk of repeated cycles at 20 fps whose second cycle is the one scored."""
    w = walk_from_arrays(name, "curves", t_us, joints, np.ones(joints.shape[:2]), label)
    a = int(round(period * hml3d.FPS))
    w.cycles = [(a, min(2 * a, w.n_frames - 1))]
    return w


# --------------------------------------------------------------------------- Kinect v2 / v1

def read_kinect_v2(folder: Path) -> LabelledSet:
    rows, notes = kinect_v2_rows(folder)
    if not rows and not notes:
        raise LayoutError(f"{folder}: no index CSV with the columns {', '.join(KINECT_V2_COLUMNS)}")
    out = LabelledSet("kinect_v2", folder)
    out.notes.extend(notes)
    for row, path in rows:
        person = f"human{row['human'].strip()}"
        name = f"{person}/{Path(row['file'].strip()).stem}"
        out.items.append(Item(name, person, row["gait"].strip(),
                              lambda path=path, name=name: load_walk(path, "kinect_v2",
                                                                     name=name),
                              view=row["kinect"].strip()))
    return out


def read_kinect_v1(folder: Path) -> LabelledSet:
    walks = kinect_v1_walks(folder)
    if not walks:
        raise LayoutError(f"{folder}: no person-data CSV with walk indexes")
    out = LabelledSet("kinect_v1", folder)
    for person, path, label in walks:
        name = f"{person}/{Path(str(path)).name}"
        trained = kinect_v1_trained_on(person, path, label)
        out.items.append(Item(name, person, label,
                              lambda path=path, name=name: load_walk(path, "kinect", name=name),
                              trained_on=trained))
    return out


# --------------------------------------------------------------------------- angle curves


def _curve_files(folder: Path) -> list[Path]:
    from inference.data.groundtruth import read_mot

    out = []
    for p in sorted(folder.glob("*.mot")):
        try:
            cols = read_mot(p)[0]
        except (OSError, ValueError):
            continue
        if {"hip_flexion_r", "knee_angle_r", "time"} <= set(cols):
            out.append(p)
    return out


def read_angle_curves(folder: Path) -> LabelledSet:
    from inference.data.angle_curves import curve_walk
    from inference.data.groundtruth import mot_columns

    files = _curve_files(folder)
    if not files:
        raise LayoutError(f"{folder}: no OpenSim .mot joint-angle cycles")
    out = LabelledSet("angle_curves", folder)
    for p in files:
        label = re.sub(r"[_-]?gait$", "", p.stem) or p.stem

        def load(p=p, label=label):
            t_us, joints, period = curve_walk(mot_columns(p))
            return cycle_walk(p.stem, t_us, joints, period, label)

        out.items.append(Item(p.stem, "curves", label, load))
    return out


# --------------------------------------------------------------------------- finding sets

READERS = (("trial_labels", read_trial_labels), ("fgdi", read_fgdi),
           ("kinect_v2", read_kinect_v2), ("kinect_v1", read_kinect_v1),
           ("angle_curves", read_angle_curves))


def read_set(folder: Path) -> LabelledSet | None:
    """The folder as the first layout it is in (with at least one normal and one other group),
    or None."""
    for _, reader in READERS:
        try:
            s = reader(folder)
        except LayoutError:
            continue
        groups = {i.normal for i in s.items}
        if groups == {True, False}:
            return s
    return None


def find_sets(root: Path, depth: int = 2) -> list[LabelledSet]:
    """Every labelled set at or below ``root`` (not below a folder that is one)."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder")
    s = read_set(root)
    if s is not None:
        return [s]
    if depth == 0:
        return []
    out = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out += find_sets(child, depth - 1)
    return out
