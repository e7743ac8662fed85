"""Kinect v2 skeleton text as in the pathological-gait data set of Jun et al. 2020
(github.com/kooksung/pathological_gait_datasets): one frame per line, whitespace (tab)
separated, ``time, 0, x0, y0, z0, 1, x1, y1, z1, ..., 24, x24, y24, z24``: the joint index
written as a number, then its position in metres, joints in Kinect v2 SDK JointType order
(streams.skeletons.KINECT_V2_JOINTS). The format is told by that content (101 numbers, the
joint indices 0-24 in place), whatever the file's suffix.

``time`` is the seconds within the wall clock's minute: it wraps from ~59.99 to 0, and a wrap is
a step back of more than half a minute (frames are ~33 ms apart; a smaller step back is a clock
glitch, and the frame is dropped and counted). The times are kept as they are (unwrapped), since
the six Kinects of a walk share that clock. Gaps between frames stay gaps (the analysis takes
timestamps). The SDK's coordinates are float32: a number no float32 can hold (non-zero below
float32's smallest normal, ~1e-38, like the 6.9e-310 of the rows some files end on; or not
finite) means the row was written from uninitialised memory, and the whole row is dropped (its
other numbers are no better: 56.6 m, 1e-75). A joint at exactly (0, 0, 0) was not measured: it
has confidence 0 and is filled from its neighbours. The axes are the calibration's (z up in this data set); the
vertical is found from the body and made y, as for lab files.

Which of a walk's Kinects it is (``..._SkeletonData{K}``) is kept as ``meta['kinect']`` only.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from streams.skeletons import KINECT_V2_JOINTS, to_canonical

from capture.readers import sourcefile
from capture.readers.axes import AxisError, level_rotation
from capture.readers.recording import Recording, RecordingError

LAYOUT = "kinect_v2_25"
N_JOINTS = len(KINECT_V2_JOINTS)
N_COLUMNS = 1 + 4 * N_JOINTS
WRAP_S = 60.0
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
_VIEW = re.compile(r"SkeletonData(\d+)$")


def _is_frame_row(cells: list[str]) -> bool:
    if len(cells) != N_COLUMNS:
        return False
    try:
        idx = [float(c) for c in cells[1::4]]
        float(cells[0])
    except ValueError:
        return False
    return idx == [float(k) for k in range(N_JOINTS)]


def is_kinect_v2_text(path: str | Path) -> bool:
    head = sourcefile.read_head(path).splitlines()
    first = next((ln for ln in head if ln.strip()), "")
    return _is_frame_row(first.split())


def read_kinect_v2(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(time_s (T,) unwrapped, joints (T,25,3) with NaN where not measured, confidence (T,25),
    problems)."""
    what = str(sourcefile.name(path))
    rows = [ln.split() for ln in sourcefile.read_text(path).splitlines() if ln.strip()]
    bad = [i + 1 for i, r in enumerate(rows) if not _is_frame_row(r)]
    if bad:
        raise RecordingError(f"{what}: line {bad[0]} is not a Kinect v2 frame ({N_COLUMNS} "
                             f"numbers: time, then index x y z for joints 0-{N_JOINTS - 1})"
                             + (f"; {len(bad)} such lines" if len(bad) > 1 else ""))
    if not rows:
        raise RecordingError(f"{what}: no frames")
    data = np.array(rows, dtype=np.float64)
    time_s = data[:, 0]
    xyz = data[:, 1:].reshape(len(data), N_JOINTS, 4)[:, :, 1:].copy()
    with np.errstate(invalid="ignore"):
        uninit = ~np.isfinite(xyz) | ((xyz != 0) & (np.abs(xyz) < FLOAT32_TINY))
    garbage = uninit.any(axis=(1, 2))
    measured = ~(xyz == 0).all(-1) & ~garbage[:, None]
    xyz[~measured] = np.nan
    problems: list[str] = []
    step = np.diff(time_s)
    wraps = step < -WRAP_S / 2
    time_s = time_s + WRAP_S * np.concatenate([[0], np.cumsum(wraps)])
    keep = measured.any(1)
    if garbage.any():
        problems.append(f"{int(garbage.sum())} rows of uninitialised numbers dropped")
    if (~keep & ~garbage).any():
        problems.append(f"{int((~keep & ~garbage).sum())} rows with no joint measured dropped")
    n_part = int((measured.any(1) & ~measured.all(1)).sum())
    if n_part:
        problems.append(f"{n_part} rows with some joints not measured")
    # strictly increasing times: a row at or before the last kept one is dropped
    last = -np.inf
    for i in range(len(time_s)):
        if keep[i] and time_s[i] <= last:
            keep[i] = False
            problems.append(f"row {i + 1}: time {data[i, 0]:.3f} s does not advance; dropped")
        elif keep[i]:
            last = time_s[i]
    if not keep.any():
        raise RecordingError(f"{what}: no row with a measured joint")
    if wraps.any():
        problems.append(f"time wrapped at {WRAP_S:g} s {int(wraps.sum())} time(s)")
    return time_s[keep], xyz[keep], measured[keep].astype(np.float32), problems


def load_kinect_v2(path: str | Path) -> Recording:
    what = str(sourcefile.name(path))
    time_s, raw, conf, problems = read_kinect_v2(path)
    filled = raw.copy()
    idx = np.arange(len(raw))
    for k in range(N_JOINTS):
        good = conf[:, k] > 0
        if good.all():
            continue
        if not good.any():
            raise RecordingError(f"{what}: joint {KINECT_V2_JOINTS[k]} is never measured")
        for c in range(3):
            filled[~good, k, c] = np.interp(idx[~good], idx[good], raw[good, k, c])
    j = {n: i for i, n in enumerate(KINECT_V2_JOINTS)}
    try:
        rot, info = level_rotation(filled[:, j["SpineBase"]],
                                   filled[:, [j["AnkleLeft"], j["AnkleRight"]]].mean(1))
    except AxisError as e:
        raise RecordingError(f"{what}: {e}") from None
    filled = (filled @ rot.T).astype(np.float32)
    joints, cconf = to_canonical(LAYOUT, filled, conf)
    t_us = np.round(time_s * 1e6).astype(np.int64)
    dt = np.diff(time_s)
    rate = float(1.0 / np.median(dt)) if len(dt) else 30.0
    gaps = int((dt > 1.5 * np.median(dt)).sum()) if len(dt) else 0
    stem = sourcefile.name(path).stem
    view = _VIEW.search(stem)
    meta = {"file": what, "time_origin": "the file's time column (seconds in the minute), "
            "unwrapped", "frame_gaps": gaps, "problems": problems,
            "lab_axes_to_y_up": rot.tolist(), **info}
    if view:
        meta["kinect"] = int(view.group(1))
    return Recording(name=stem, t_us=t_us, joints=joints, confidence=cconf, rate_hz=rate,
                     source_layout=LAYOUT, meta=meta, raw_layout=LAYOUT, raw_joints=filled,
                     raw_confidence=conf)
