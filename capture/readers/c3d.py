"""C3D files (ezc3d): gait-lab marker trials and canonical-joint datasets -> Recording."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from streams.skeletons import CANONICAL, CANONICAL_JOINTS

from capture.readers.axes import AxisError, level_rotation
from capture.readers.labelled import markers_to_recording
from capture.readers.marker_roles import site_names
from capture.readers.markers import strip_prefix
from capture.readers.recording import Recording, RecordingError, fill_missing

log = logging.getLogger(__name__)

_UNIT_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0, "dm": 0.1}


def _param(params: dict, group: str, name: str, default: Any = None) -> Any:
    try:
        return params[group][name]["value"]
    except KeyError:
        return default


def declared_frames(path: Path) -> int | None:
    """The number of frames a C3D file's own header declares (first to last frame), read from
    the raw bytes: ezc3d rewrites its header to what it could read, so a file cut short would
    otherwise pass for a short trial. None when the header cannot tell (more than 65535
    frames) or is not a C3D header."""
    with open(path, "rb") as f:
        head = f.read(512)
        if len(head) < 512 or head[1] != 0x50 or head[0] < 2:
            return None
        f.seek((head[0] - 1) * 512 + 3)  # the parameter section names the processor
        proc = f.read(1)
    order = ">" if proc == bytes([86]) else "<"  # MIPS is big-endian; Intel and DEC little
    first, last = np.frombuffer(head[6:10], dtype=f"{order}u2")
    if last == 0xFFFF or last < first:
        return None
    return int(last) - int(first) + 1


def read_c3d_points(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Labelled point trajectories (upper-case label -> (T,3) metres in lab axes, NaN where the
    marker is missing: negative residual or an exact 0,0,0) and the file's facts for meta."""
    import ezc3d

    path = Path(path)
    try:
        c = ezc3d.c3d(str(path))
    except Exception as e:  # ezc3d raises plain RuntimeError/ValueError with its own text
        raise RecordingError(f"{path.name}: not a readable C3D file ({e})") from None
    params = c["parameters"]
    pts = np.asarray(c["data"]["points"], dtype=np.float64)  # (4, N, T)
    n_points, n_frames = pts.shape[1], pts.shape[2]
    if n_points == 0 or n_frames == 0:
        raise RecordingError(f"{path.name}: no point data")
    labels = list(_param(params, "POINT", "LABELS", []))
    for extra in ("LABELS2", "LABELS3"):
        labels += list(_param(params, "POINT", extra, []))
    descs = list(_param(params, "POINT", "DESCRIPTIONS", []))
    labels = (labels + [""] * n_points)[:n_points]
    descs = (descs + [""] * n_points)[:n_points]
    units = (_param(params, "POINT", "UNITS", ["mm"]) or ["mm"])[0].strip().lower()
    if units not in _UNIT_SCALE:
        raise RecordingError(f"{path.name}: unknown POINT:UNITS {units!r}")
    rate = float(np.asarray(_param(params, "POINT", "RATE", [0.0])).ravel()[0])
    if not rate > 0:
        raise RecordingError(f"{path.name}: POINT:RATE missing or not positive ({rate})")
    xyz = pts[:3].transpose(2, 1, 0) * _UNIT_SCALE[units]  # (T, N, 3)
    residual = np.asarray(c["data"]["meta_points"]["residuals"])[0].T  # (T, N)
    zero = (pts[:3].transpose(2, 1, 0) == 0).all(-1)
    missing = (residual < 0) | zero | ~np.isfinite(xyz).all(-1)
    xyz[missing] = np.nan

    markers: dict[str, np.ndarray] = {}
    seen_desc: dict[str, str] = {}
    for i, (lab, desc) in enumerate(zip(labels, descs)):
        name = strip_prefix(str(lab)).upper()
        if not name or set(name) <= {"0", "*"} or name.startswith("*"):
            continue  # unlabelled trajectories
        if name in markers and desc.strip() and desc.strip() != seen_desc.get(name, ""):
            # Motion Analysis reuses a label for the medial marker; descriptions tell them apart
            name = desc.strip().upper()
        if name in markers:
            # the same marker split into several trajectories: take whichever is present
            cur = markers[name]
            take = np.isnan(cur).any(1) & np.isfinite(xyz[:, i]).all(1)
            cur[take] = xyz[take, i]
            continue
        markers[name] = xyz[:, i].copy()
        seen_desc[name] = desc.strip()
    hdr = c["header"]["points"]
    proc = params.get("PROCESSING", {})
    subject = {k: float(np.asarray(v["value"]).ravel()[0]) for k, v in proc.items()
               if k != "__METADATA__" and np.asarray(v.get("value", [])).size
               and np.issubdtype(np.asarray(v["value"]).dtype, np.number)}
    facts = {
        "file": path.name, "rate_hz": rate, "units": units, "n_frames": n_frames,
        "first_frame": int(hdr["first_frame"]), "n_points": n_points,
        "x_screen": (_param(params, "POINT", "X_SCREEN", [""]) or [""])[0],
        "y_screen": (_param(params, "POINT", "Y_SCREEN", [""]) or [""])[0],
        "processing": subject,
    }
    declared = declared_frames(path)
    if declared is not None and n_frames < declared:
        facts["truncated"] = (f"the file ends early: {n_frames} of the {declared} frames its "
                              f"header declares were read ({n_frames / rate:.2f} of "
                              f"{declared / rate:.2f} s)")
        log.warning("%s: %s", path.name, facts["truncated"])
    return markers, facts


def load_c3d(path: str | Path, *, lab_centres: bool = False,
             marker_names: dict[str, str] | None = None) -> Recording:
    """A C3D walking trial: gait-lab markers mapped to canonical joints, or points already named
    as the canonical joints (layout canonical22, as the synthetic walker writes them).
    ``marker_names``: a site's labels -> role codes, added to a ``markers.toml`` beside it."""
    path = Path(path)
    try:
        names = site_names(path, marker_names)
    except ValueError as e:
        raise RecordingError(str(e)) from None
    markers, facts = read_c3d_points(path)
    n = facts["n_frames"]
    t_us = np.round(np.arange(n) * 1e6 / facts["rate_hz"]).astype(np.int64)
    meta = {k: facts[k] for k in ("file", "units", "first_frame", "x_screen", "y_screen",
                                  "truncated") if k in facts}
    meta["time_origin"] = "first stored frame (C3D header first_frame) is t=0"
    proc = facts["processing"]
    if "Height" in proc and proc["Height"] > 0:
        meta["subject_height_m"] = proc["Height"] / 1000.0
    if all(j.upper() in markers for j in CANONICAL_JOINTS):
        return _canonical_recording(path, markers, t_us, facts["rate_hz"], meta)
    return markers_to_recording(path.stem, markers, t_us, facts["rate_hz"], meta,
                                processing=proc, lab_centres=lab_centres, site_names=names)


def _canonical_recording(path: Path, markers: dict[str, np.ndarray], t_us: np.ndarray,
                         rate: float, meta: dict[str, Any]) -> Recording:
    joints = np.stack([markers[j.upper()] for j in CANONICAL_JOINTS], axis=1)
    upper = joints[:, CANONICAL_JOINTS.index("pelvis")]
    ankles = [CANONICAL_JOINTS.index(j) for j in ("left_ankle", "right_ankle")]
    lower = joints[:, ankles].mean(1)
    try:
        rot, info = level_rotation(upper, lower)
    except AxisError as e:
        raise RecordingError(f"{path.name}: {e}") from None
    joints = joints @ rot.T
    meta.update(info)
    meta["marker_set"] = CANONICAL
    filled, conf = fill_missing(joints)
    return Recording(name=path.stem, t_us=t_us, joints=filled, confidence=conf, rate_hz=rate,
                     source_layout=CANONICAL, meta=meta, raw_layout=CANONICAL,
                     raw_joints=filled, raw_confidence=conf)
