"""Kinect v1 skeleton text files as in Andersson & Araujo 2015 (github.com/Vortander/KinectGait).

One joint per line ``Name;x;y;z`` (metres, Kinect skeleton space: right-handed, x to the sensor's
left, y up, z away from the sensor, which is already the wire's convention), 20 lines per frame,
each frame starting at ``Head``. The files carry no timestamps: frames are placed on the nominal
30 Hz Kinect v1 clock and ``meta['timestamps']`` says so.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from streams.skeletons import KINECT_V1_JOINTS, to_canonical

from capture.readers import sourcefile
from capture.readers.recording import Recording, RecordingError

LAYOUT = "kinect_v1_20"
NOMINAL_RATE_HZ = 30.0

# names used in the files (Portuguese "centro" for the hip centre) -> SDK joint names
FILE_NAMES: dict[str, str] = {
    "Hip-centro": "HipCenter", "Spine": "Spine", "Shoulder-Center": "ShoulderCenter",
    "Head": "Head", "Shoulder-Left": "ShoulderLeft", "Elbow-Left": "ElbowLeft",
    "Wrist-Left": "WristLeft", "Hand-Left": "HandLeft", "Shoulder-Right": "ShoulderRight",
    "Elbow-Right": "ElbowRight", "Wrist-Right": "WristRight", "Hand-Right": "HandRight",
    "Hip-Left": "HipLeft", "Knee-Left": "KneeLeft", "Ankle-Left": "AnkleLeft",
    "Foot-Left": "FootLeft", "Hip-Right": "HipRight", "Knee-Right": "KneeRight",
    "Ankle-Right": "AnkleRight", "Foot-Right": "FootRight",
}
_INDEX = {f: KINECT_V1_JOINTS.index(s) for f, s in FILE_NAMES.items()}


def is_kinect_v1_text(path: str | Path) -> bool:
    """Told by content: a file (or ``archive.zip::member``) whose first line is a Kinect v1
    joint line."""
    first = sourcefile.read_head(path, 256).splitlines()[:1]
    return bool(first) and first[0].split(";")[0] in FILE_NAMES and first[0].count(";") == 3


def read_kinect_v1(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(joints (T,20,3) in SDK order, confidence (T,20), problems) from one text file.

    A frame that lacks a joint or repeats one keeps what it has; the missing joints get
    confidence 0 and the problem is listed (never silently dropped)."""
    text = sourcefile.read_text(path)
    path = Path(str(sourcefile.name(path)))  # for messages: the file's (or member's) name
    fast = _read_regular(text)
    if fast is not None:
        return fast, np.ones(fast.shape[:2], np.float32), []
    frames: list[np.ndarray] = []
    problems: list[str] = []
    cur: np.ndarray | None = None
    for ln, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(";")
        if len(parts) != 4 or parts[0] not in _INDEX:
            raise RecordingError(f"{path.name}: line {ln}: expected 'Joint;x;y;z' with a "
                                 f"Kinect v1 joint name, got {line[:60]!r}")
        try:
            xyz = np.array([float(p) for p in parts[1:]])
        except ValueError:
            raise RecordingError(f"{path.name}: line {ln}: bad number in {line[:60]!r}") \
                from None
        if parts[0] == "Head":
            cur = np.full((len(KINECT_V1_JOINTS), 3), np.nan)
            frames.append(cur)
        if cur is None:
            raise RecordingError(f"{path.name}: line {ln}: data before the first Head line")
        k = _INDEX[parts[0]]
        if np.isfinite(cur[k]).all():
            problems.append(f"frame {len(frames) - 1}: {parts[0]} repeated (line {ln})")
        cur[k] = xyz
    if not frames:
        raise RecordingError(f"{path.name}: no frames")
    joints = np.stack(frames)
    ok = np.isfinite(joints).all(-1) & ~(joints == 0).all(-1)
    n_missing = int((~ok).sum())
    if n_missing:
        problems.append(f"{n_missing} joint samples missing or all-zero")
    return joints, ok.astype(np.float32), problems


def _read_regular(text: str) -> np.ndarray | None:
    """Fast path for the usual file: every frame has the 20 joints in the same order, all
    non-zero numbers. None when anything is irregular (the careful reader then says what)."""
    cells = text.replace("\r", "").replace("\n", ";").split(";")
    if cells and cells[-1] == "":
        cells.pop()
    if len(cells) % 4 or len(cells) < 80:
        return None
    names = cells[0::4]
    order = names[:20]
    if (order[0] != "Head" or sorted(order) != sorted(FILE_NAMES)
            or names != order * (len(names) // 20)):
        return None
    try:
        xyz = np.array([cells[1::4], cells[2::4], cells[3::4]], dtype=np.float64).T
    except ValueError:
        return None
    xyz = xyz.reshape(-1, 20, 3)
    if not np.isfinite(xyz).all() or (xyz == 0).all(-1).any():
        return None
    perm = [_INDEX[n] for n in order]
    out = np.empty_like(xyz)
    out[:, perm] = xyz
    return out


def dataset_height(path: str | Path) -> float | None:
    """The walker's height from the dataset's person-data.csv (``<root>/walks/<Person>/k.txt``
    beside ``<root>/person-data.csv``, or a member ``<Person>/k.txt`` at any depth of a zip in
    ``<root>``), None when the file is not laid out that way."""
    disk, member = sourcefile.split(path)
    if member is None:
        path = Path(path)
        table = path.parent.parent.parent / "person-data.csv"
    else:
        path = Path(member)
        table = disk.parent / "person-data.csv"
    if not table.is_file():
        return None
    with open(table, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("Individual", "").strip() == path.parent.name:
                try:
                    return float(row["Height"])
                except (KeyError, ValueError):
                    return None
    return None


def load_kinect_v1(path: str | Path, *, rate_hz: float = NOMINAL_RATE_HZ,
                   height_m: float | None = None) -> Recording:
    """``height_m`` (metres) overrides the dataset's person-data.csv. ``path`` may be a member of
    a zip (``archive.zip::member``)."""
    if height_m is None:
        height_m = dataset_height(path)
    raw, conf, problems = read_kinect_v1(path)
    disk, member = sourcefile.split(path)
    path = Path(member) if member is not None else disk  # <Person>/<k>.txt names the walk
    # a missing joint holds its last value (confidence 0 says so) so that nothing is NaN
    filled = raw.copy()
    for k in range(filled.shape[1]):
        good = conf[:, k] > 0
        if good.all():
            continue
        if not good.any():
            filled[:, k] = 0.0
            continue
        idx = np.arange(len(filled))
        for c in range(3):
            filled[~good, k, c] = np.interp(idx[~good], idx[good], raw[good, k, c])
    filled = filled.astype(np.float32)
    joints, cconf = to_canonical(LAYOUT, filled, conf)
    n = len(filled)
    t_us = np.round(np.arange(n) * 1e6 / rate_hz).astype(np.int64)
    name = f"{path.parent.name}_{path.stem}" if path.parent.name else path.stem
    meta = {"file": str(path.name), "timestamps": f"none in file; nominal {rate_hz:g} Hz clock",
            "up_axis": "+Y (Kinect skeleton space)", "camera_frame": True,
            "problems": problems}
    if height_m is not None:
        meta["subject_height_m"] = height_m
    return Recording(name=name, t_us=t_us, joints=joints, confidence=cconf, rate_hz=rate_hz,
                     source_layout=LAYOUT, meta=meta, raw_layout=LAYOUT, raw_joints=filled,
                     raw_confidence=conf)
