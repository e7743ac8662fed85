"""Acclaim ASF/AMC (the CMU motion capture database's format) -> canonical joints.

The ASF is the skeleton: ``:units`` (``length`` divides every length and root translation,
``angle`` deg or rad), ``:root`` (``order`` of its AMC channels, ``axis`` order of its
orientation, ``position``, ``orientation``), ``:bonedata`` (per bone: direction in the world at
rest, length, ``axis`` = the orientation of the bone's own frame with its rotation order, ``dof``
= its AMC channels in order) and ``:hierarchy``. The AMC has, per frame, its number and one
line per bone with its dof values.

Forward kinematics (the Acclaim definition): a bone's world rotation is
``L = L_parent @ C @ M @ C^-1`` with C its axis rotation and M its dof rotation, rotations
applied in the order written (``axis 0 0 20 XYZ`` and ``dof rx ry rz`` are Rz Ry Rx); the bone
starts where its parent ends and ends ``length * L @ direction`` further. A bone stands for its
start (lfemur starts at the hip). A bone's translation or length dofs (tx, ty, tz, l), which
CMU's skeletons do not use, are read and not applied. Names are retargeted by
streams.skeletons.RIG_CONVENTIONS.

Units: ``length`` 0.45 makes a CMU value / 0.45 an inch; the unit after that division is not
in the file, so it is chosen as for BVH (the one that gives the legs an adult's length, which
for CMU is the inch); ``unit`` overrides. The frame rate is not in the AMC either: CMU
recorded at 120 Hz (``rate_hz`` overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streams.skeletons import CJ

from capture.readers import sourcefile
from capture.readers.axes import AxisError, level_rotation
from capture.readers.recording import Recording, RecordingError, fill_missing
from capture.readers.rigs import UNITS_M, compose, guess_unit, leg_length, retarget

CMU_RATE_HZ = 120.0


@dataclass
class Bone:
    name: str
    direction: np.ndarray = field(default_factory=lambda: np.zeros(3))
    length: float = 0.0
    axis: np.ndarray = field(default_factory=lambda: np.zeros(3))
    axis_order: str = "xyz"
    dof: list[str] = field(default_factory=list)
    parent: str | None = None


@dataclass
class Asf:
    length_scale: float
    degrees: bool
    root_order: list[str]
    root_axis_order: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: dict[str, Bone]  # hierarchy order: parents before children, "root" first


def _rot(order: str, angles: np.ndarray) -> np.ndarray:
    """Rotations applied in ``order`` (first letter first): for "xyz", Rz Ry Rx."""
    return compose(order[::-1], angles[..., ::-1])


def parse_asf(text: str, what: str = "ASF") -> Asf:
    section = ""
    units = {"length": 1.0, "angle": "deg"}
    root = {"order": ["tx", "ty", "tz", "rx", "ry", "rz"], "axis": "xyz",
            "position": np.zeros(3), "orientation": np.zeros(3)}
    bones: dict[str, Bone] = {}
    children: dict[str, list[str]] = {}
    cur: Bone | None = None
    try:
        for raw in text.splitlines():
            parts = raw.split()
            if not parts or parts[0].startswith("#"):
                continue
            key = parts[0].lower()
            if key.startswith(":"):
                section = key
                if len(parts) > 1 and section == ":units":
                    parts = parts[1:]  # rare: values on the section line
                else:
                    continue
                key = parts[0].lower()
            if section == ":units" and len(parts) >= 2:
                units[key] = float(parts[1]) if key in ("length", "mass") else parts[1].lower()
            elif section == ":root":
                if key == "order":
                    root["order"] = [p.lower() for p in parts[1:]]
                elif key == "axis":
                    root["axis"] = parts[1].lower()
                elif key in ("position", "orientation"):
                    root[key] = np.array([float(v) for v in parts[1:4]])
            elif section == ":bonedata":
                if key == "begin":
                    cur = Bone("")
                elif key == "end" and cur is not None:
                    bones[cur.name] = cur
                    cur = None
                elif cur is None:
                    continue
                elif key == "name":
                    cur.name = parts[1]
                elif key == "direction":
                    cur.direction = np.array([float(v) for v in parts[1:4]])
                elif key == "length":
                    cur.length = float(parts[1])
                elif key == "axis":
                    cur.axis = np.array([float(v) for v in parts[1:4]])
                    cur.axis_order = parts[4].lower() if len(parts) > 4 else "xyz"
                elif key == "dof":
                    cur.dof = [p.lower() for p in parts[1:]]
            elif section == ":hierarchy" and key not in ("begin", "end"):
                children.setdefault(parts[0], []).extend(parts[1:])
    except (ValueError, IndexError) as e:
        raise RecordingError(f"{what}: not a readable ASF ({e})") from None
    if not bones or "root" not in children:
        raise RecordingError(f"{what}: no bones or no hierarchy from the root")
    ordered: dict[str, Bone] = {"root": Bone("root")}
    todo = ["root"]
    while todo:
        parent = todo.pop(0)
        for c in children.get(parent, []):
            if c not in bones:
                raise RecordingError(f"{what}: the hierarchy names {c!r}, which has no bonedata")
            bones[c].parent = parent
            ordered[c] = bones[c]
            todo.append(c)
    length = float(units["length"]) or 1.0
    return Asf(length, str(units["angle"]).startswith("deg"), root["order"], root["axis"],
               root["position"], root["orientation"], ordered)


def parse_amc(text: str, asf: Asf, what: str = "AMC") -> dict[str, np.ndarray]:
    """bone name (and "root") -> (T, its channels) in the AMC's numbers; a bone missing from a
    frame holds 0 there (its rest pose)."""
    width = {n: len(b.dof) for n, b in asf.bones.items()}
    width["root"] = len(asf.root_order)
    frames: list[dict[str, list[float]]] = []
    try:
        for raw in text.splitlines():
            parts = raw.split()
            if not parts or parts[0].startswith(("#", ":")):
                continue
            if len(parts) == 1 and parts[0].isdigit():
                frames.append({})
            elif frames:
                frames[-1][parts[0]] = [float(v) for v in parts[1:]]
    except ValueError as e:
        raise RecordingError(f"{what}: a value is not a number ({e})") from None
    if not frames:
        raise RecordingError(f"{what}: no frames")
    out = {n: np.zeros((len(frames), w)) for n, w in width.items() if w}
    for i, fr in enumerate(frames):
        for n, vals in fr.items():
            if n in out and len(vals) == out[n].shape[1]:
                out[n][i] = vals
    return out


def bone_starts(asf: Asf, motion: dict[str, np.ndarray]) -> tuple[list[str], list[int],
                                                                    np.ndarray]:
    """(bone names, parent index, (T, bones, 3) start of each bone in the file's axes), the root's
    start being its position; lengths divided by the ASF's ``length``."""
    n = len(next(iter(motion.values())))
    to_rad = np.radians if asf.degrees else np.asarray
    names = list(asf.bones)
    idx = {b: i for i, b in enumerate(names)}
    start = np.empty((n, len(names), 3))
    end = np.empty_like(start)
    rot = np.empty((n, len(names), 3, 3))
    root = motion.get("root", np.zeros((n, len(asf.root_order))))
    pos = np.repeat(asf.root_position[None], n, axis=0).astype(np.float64)
    axes, angles = "", []
    for k, ch in enumerate(asf.root_order):
        if ch.startswith("t"):
            pos[:, "xyz".index(ch[1])] = root[:, k]
        elif ch.startswith("r"):
            axes += ch[1]
            angles.append(to_rad(root[:, k]))
    c = _rot(asf.root_axis_order, to_rad(asf.root_orientation))
    m = _rot(axes, np.stack(angles, -1)) if axes else np.eye(3)
    rot[:, 0] = c @ m @ c.T
    start[:, 0] = end[:, 0] = pos / asf.length_scale
    for name in names[1:]:
        b = asf.bones[name]
        i, p = idx[name], idx[b.parent]
        c = _rot(b.axis_order, to_rad(b.axis))
        rots = [d for d in b.dof if d.startswith("r")]
        if rots:
            vals = motion[name][:, [b.dof.index(d) for d in rots]]
            m = _rot("".join(d[1] for d in rots), to_rad(vals))
        else:
            m = np.eye(3)
        rot[:, i] = rot[:, p] @ (c @ m @ c.T)
        start[:, i] = end[:, p]
        end[:, i] = start[:, i] + (b.length / asf.length_scale) * (rot[:, i] @ b.direction)
    parents = [-1] + [idx[asf.bones[b].parent] for b in names[1:]]
    return names, parents, start


def find_skeleton(amc: str | Path) -> str:
    """The .asf of an AMC: the only one beside it, or, among several, the one whose name begins
    the AMC's (CMU's 02.asf for 02_01.amc)."""
    asfs = sourcefile.siblings(amc, ".asf")
    if len(asfs) == 1:
        return asfs[0]
    stem = sourcefile.name(amc).stem.lower()
    prefixed = [a for a in asfs if stem.startswith(sourcefile.name(a).stem.lower())]
    if len(prefixed) == 1:
        return prefixed[0]
    raise RecordingError(f"{sourcefile.name(amc)}: "
                         + ("no .asf skeleton beside it" if not asfs else
                            f"{len(asfs)} .asf skeletons beside it")
                         + "; name one (analyze --skeleton, or load_amc(skeleton=...))")


def load_amc(path: str | Path, *, skeleton: str | Path | None = None,
             rate_hz: float = CMU_RATE_HZ, unit: str | None = None) -> Recording:
    what = str(sourcefile.name(path))
    asf_path = str(skeleton) if skeleton is not None else find_skeleton(path)
    if not sourcefile.exists(asf_path):
        raise RecordingError(f"{what}: skeleton {asf_path}: no such file")
    asf = parse_asf(sourcefile.read_text(asf_path), str(sourcefile.name(asf_path)))
    motion = parse_amc(sourcefile.read_text(path), asf, what)
    names, parents, pos = bone_starts(asf, motion)
    rt = retarget(names, parents, pos[0], what=what)
    canon = rt.apply(pos)
    leg = leg_length(canon)
    unit_how = "given" if unit else "guessed from the leg length"
    unit = unit or guess_unit(leg)
    if unit not in UNITS_M:
        raise RecordingError(f"{what}: unknown unit {unit!r}; known: {sorted(UNITS_M)}")
    canon = canon * UNITS_M[unit]
    ankles = canon[:, [CJ["left_ankle"], CJ["right_ankle"]]].mean(1)
    try:
        rot, info = level_rotation(canon[:, CJ["pelvis"]], ankles)
    except AxisError as e:
        raise RecordingError(f"{what}: {e}") from None
    joints, conf = fill_missing(canon @ rot.T)
    t_us = np.round(np.arange(len(joints)) * 1e6 / rate_hz).astype(np.int64)
    meta = {"file": what, "skeleton": str(sourcefile.name(asf_path)),
            "asf_length_scale": asf.length_scale, "unit": unit, "unit_from": unit_how,
            "leg_length_m": round(leg * UNITS_M[unit], 3), "convention": rt.convention,
            "retarget": rt.sources,
            "timestamps": f"none in file; {rate_hz:g} Hz (CMU's capture rate unless given)",
            "lab_axes_to_y_up": rot.tolist(), **info}
    return Recording(name=sourcefile.name(path).stem, t_us=t_us, joints=joints,
                     confidence=conf, rate_hz=rate_hz, source_layout=f"asf:{rt.convention}",
                     meta=meta)
