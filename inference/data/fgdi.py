"""Strides of a folder in the FGDI layout (../shared/data/pathological_kinematics_fgdi).

The layout is read by its columns, not its file names: every CSV in the folder whose header has
``SubjectStudyID, Side, VariableName, Dim, StrideID`` and ``GCpc_0 .. GCpc_100`` holds curves
(one row = one angle component of one stride of one side); a CSV whose header has
``SubjectStudyID`` and ``group`` says each subject's group (and ``subject``, its code). A
subject with more than one session (SessionID) is in a group per session: the group and what
the SessionID adds to the subject's code (``SUB03_off`` -> ``PD off``).

Angle components (Plug-in-Gait names; Dim 1 = frontal, 2 = sagittal, 3 = transverse, as the
folder's SOURCES.md infers from the value ranges; ``gaitstream eval gdi`` checks it against the
normative curves and prints the correlations) -> the nine variables of
``inference.analysis.gait_variables``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.analysis.gait_variables import VARIABLES

COMPONENTS: dict[tuple[str, int], str] = {
    ("PelvisAngles", 2): "pelvis_tilt", ("PelvisAngles", 1): "pelvis_obliquity",
    ("PelvisAngles", 3): "pelvis_rotation", ("HipAngles", 2): "hip_flexion",
    ("HipAngles", 1): "hip_adduction", ("HipAngles", 3): "hip_rotation",
    ("KneeAngles", 2): "knee_flexion", ("AnkleAngles", 2): "ankle_dorsiflexion",
    ("FootProgressAngles", 3): "foot_progression",
}
CURVE_COLUMNS = ("SubjectStudyID", "Side", "VariableName", "Dim", "StrideID")
CONTROL_WORDS = ("healthy", "control", "typically developing", "normal")


class FgdiError(ValueError):
    """A folder has no curves in the FGDI layout, or a row is malformed."""


@dataclass
class Stride:
    subject: str  # subject code (or SubjectStudyID when no index names it)
    session: str
    group: str
    side: str  # 'left' | 'right'
    trial: str
    curves: np.ndarray  # (9, 101) degrees, VARIABLES order


@dataclass
class FgdiSet:
    strides: list[Stride]
    files: list[str]

    @property
    def groups(self) -> list[str]:
        return sorted({s.group for s in self.strides})


def is_control(group: str) -> bool:
    return any(w in group.lower() for w in CONTROL_WORDS)


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    return ([h.strip() for h in rows[0]], rows[1:]) if rows else ([], [])


def read_folder(folder: str | Path) -> FgdiSet:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    index: dict[str, tuple[str, str]] = {}  # SubjectStudyID -> (code, group)
    curve_files = []
    for path in sorted(folder.glob("*.csv")):
        head, rows = _read(path)
        if all(c in head for c in CURVE_COLUMNS) and "GCpc_0" in head:
            curve_files.append((path, head, rows))
        elif "SubjectStudyID" in head and "group" in head:
            i, g = head.index("SubjectStudyID"), head.index("group")
            s = head.index("subject") if "subject" in head else i
            for r in rows:
                if len(r) > max(i, g, s):
                    index[r[i].strip()] = (r[s].strip(), r[g].strip())
    if not curve_files:
        raise FgdiError(f"{folder}: no CSV with the columns {', '.join(CURVE_COLUMNS)}, "
                        "GCpc_0..GCpc_100")
    # (subject id, session, side, stride) -> {variable: curve}
    acc: dict[tuple[str, str, str, str], dict[str, np.ndarray]] = {}
    trials: dict[tuple[str, str, str, str], str] = {}
    for path, head, rows in curve_files:
        col = {h: i for i, h in enumerate(head)}
        pts = [col[f"GCpc_{k}"] for k in range(101) if f"GCpc_{k}" in col]
        if len(pts) != 101:
            raise FgdiError(f"{path.name}: GCpc_0..GCpc_100 incomplete ({len(pts)} columns)")
        sess = col.get("SessionID", col.get("GLID"))
        for n, r in enumerate(rows, start=2):
            if not r or not any(x.strip() for x in r):
                continue
            try:
                var = COMPONENTS.get((r[col["VariableName"]].strip(), int(r[col["Dim"]])))
                if var is None:
                    continue
                side = {"l": "left", "r": "right"}[r[col["Side"]].strip().lower()[:1]]
                key = (r[col["SubjectStudyID"]].strip(),
                       r[sess].strip() if sess is not None else "", side,
                       r[col["StrideID"]].strip())
                acc.setdefault(key, {})[var] = np.array([float(r[k]) for k in pts])
                if "TrialName" in col:
                    trials[key] = r[col["TrialName"]].strip()
            except (KeyError, ValueError, IndexError) as e:
                raise FgdiError(f"{path.name}: line {n}: {e!r}") from None
    sessions: dict[str, set[str]] = {}
    for sid, sess, _, _ in acc:
        sessions.setdefault(sid, set()).add(sess)
    out = []
    for key, v in sorted(acc.items()):
        if len(v) != len(VARIABLES):
            continue  # a stride without all nine curves is no GDI vector
        sid, sess, side, _ = key
        code, group = index.get(sid, (sid, "unknown"))
        if len(sessions[sid]) > 1:
            extra = sess[len(code):] if sess.startswith(code) else sess
            group = f"{group} {extra.strip('_- ')}".strip()
        out.append(Stride(code, sess, group, side, trials.get(key, ""),
                          np.stack([v[name] for name in VARIABLES])))
    if not out:
        raise FgdiError(f"{folder}: no stride with all nine curves")
    return FgdiSet(out, [p.name for p, _, _ in curve_files])
