"""BVH (Biovision hierarchy) motion files -> canonical joints.

Any hierarchy, joint names and channels: each joint lists its own channels in its own order,
position channels may sit on any joint (they replace that axis of the joint's OFFSET, which is
what every writer that puts them beyond the root means), and rotations compose in the order
written (``Zrotation Xrotation Yrotation`` is Rz Rx Ry, column vectors). Forward kinematics is
vectorised over frames. Joints are retargeted by name (streams.skeletons.RIG_CONVENTIONS, via
capture.readers.rigs); the unit, which BVH does not state, is the one that gives the rig an
adult's leg length (rigs.guess_unit; ``unit`` overrides); the vertical comes from the body
(pelvis over ankles), so Z-up rigs level like Y-up ones.

The parser is our own (about 80 lines). Of the PyPI parsers, ``upc-pymotion`` accepts only 3 or
6 channels per joint with positions first, ``bvhio`` builds a Python object per joint and frame
(its FK runs joint by joint, frame by frame) and pins PyGLM 2.8.2, and ``bvh`` (0.3, 2017) only
splits the text; none reads from a zip member.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streams.skeletons import CJ

from capture.readers import sourcefile
from capture.readers.axes import AxisError, level_rotation
from capture.readers.recording import Recording, RecordingError, fill_missing
from capture.readers.rigs import UNITS_M, compose, guess_unit, leg_length, retarget


@dataclass
class BvhRig:
    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J, 3)
    channels: list[list[str]]  # per joint, e.g. ["Xposition", ..., "Zrotation", ...]
    frame_time_s: float
    motion: np.ndarray  # (T, total channels)
    problems: list[str]


_CHANNELS = {f"{a}{k}" for a in "xyz" for k in ("position", "rotation")}


def parse_bvh(text: str, what: str = "BVH") -> BvhRig:
    lines = text.splitlines()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []  # open joints; -2 marks an End Site block
    pending: int | None = None  # joint declared, its "{" not seen yet
    i = 0
    try:
        while i < len(lines):
            parts = lines[i].split()
            i += 1
            if not parts:
                continue
            key = parts[0].upper()
            if key in ("ROOT", "JOINT"):
                names.append(" ".join(parts[1:]) or f"joint{len(names)}")
                parents.append(next((j for j in reversed(stack) if j >= 0), -1))
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                pending = len(names) - 1
            elif key == "END":
                pending = -2
            elif key == "{":
                if pending is None:
                    raise ValueError("'{' without a joint")
                stack.append(pending)
                pending = None
            elif key == "}":
                stack.pop()
            elif key == "OFFSET" and stack:
                if stack[-1] >= 0:
                    offsets[stack[-1]] = [float(v) for v in parts[1:4]]
            elif key == "CHANNELS" and stack and stack[-1] >= 0:
                n = int(parts[1])
                chans = parts[2:2 + n]
                if len(chans) != n or any(c.lower() not in _CHANNELS for c in chans):
                    raise ValueError(f"bad CHANNELS line {' '.join(parts)!r}")
                channels[stack[-1]] = chans
            elif key == "MOTION":
                break
        frames_line = lines[i].split(":", 1)
        time_line = lines[i + 1].split(":", 1)
        if frames_line[0].strip().lower() != "frames" or \
                time_line[0].strip().lower() != "frame time":
            raise ValueError("MOTION is not followed by 'Frames:' and 'Frame Time:'")
        n_frames = int(frames_line[1])
        frame_time = float(time_line[1])
    except (ValueError, IndexError) as e:
        raise RecordingError(f"{what}: not a readable BVH hierarchy ({e})") from None
    if not names:
        raise RecordingError(f"{what}: no ROOT joint")
    if not frame_time > 0:
        raise RecordingError(f"{what}: Frame Time {frame_time} is not positive")
    n_ch = sum(len(c) for c in channels)
    try:
        values = np.array(" ".join(lines[i + 2:]).split(), dtype=np.float64)
    except ValueError as e:
        raise RecordingError(f"{what}: a motion value is not a number ({e})") from None
    problems = []
    whole = len(values) // n_ch if n_ch else 0
    if whole != n_frames or len(values) % max(n_ch, 1):
        problems.append(f"header says {n_frames} frames, the motion has {len(values) / n_ch:.2f}"
                        f" x {n_ch} channels; {min(whole, n_frames)} read")
    n = min(whole, n_frames)
    if n < 1:
        raise RecordingError(f"{what}: no complete frame of {n_ch} channels")
    motion = values[: n * n_ch].reshape(n, n_ch)
    return BvhRig(names, parents, np.array(offsets, dtype=np.float64), channels, frame_time,
                  motion, problems)


def world_positions(rig: BvhRig) -> np.ndarray:
    """(T, J, 3) joint origins in the file's axes and unit."""
    t = len(rig.motion)
    pos = np.empty((t, len(rig.names), 3))
    rot = np.empty((t, len(rig.names), 3, 3))
    col = 0
    for j, chans in enumerate(rig.channels):
        local = np.repeat(rig.offsets[j][None], t, axis=0)
        axes, angles = "", []
        for c in chans:
            if c.lower().endswith("position"):
                local[:, "xyz".index(c[0].lower())] = rig.motion[:, col]
            else:
                axes += c[0].lower()
                angles.append(rig.motion[:, col])
            col += 1
        r = (compose(axes, np.radians(np.stack(angles, axis=-1))) if axes
             else np.broadcast_to(np.eye(3), (t, 3, 3)))
        p = rig.parents[j]
        if p < 0:
            pos[:, j], rot[:, j] = local, r
        else:
            pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], local)
            rot[:, j] = rot[:, p] @ r
    return pos


def load_bvh(path: str | Path, *, unit: str | None = None) -> Recording:
    """``unit``: the file's length unit (m, cm, mm, inch) when the leg-length guess should not
    decide."""
    what = str(sourcefile.name(path))
    rig = parse_bvh(sourcefile.read_text(path), what)
    pos = world_positions(rig)
    rt = retarget(rig.names, rig.parents, pos[0], what=what)
    canon = rt.apply(pos)
    leg = leg_length(canon)
    if unit is None:
        unit, unit_how = guess_unit(leg), "guessed from the leg length"
    elif unit not in UNITS_M:
        raise RecordingError(f"{what}: unknown unit {unit!r}; known: {sorted(UNITS_M)}")
    else:
        unit_how = "given"
    canon = canon * UNITS_M[unit]
    pelvis = canon[:, CJ["pelvis"]]
    ankles = canon[:, [CJ["left_ankle"], CJ["right_ankle"]]].mean(1)
    try:
        rot, info = level_rotation(pelvis, ankles)
    except AxisError as e:
        raise RecordingError(f"{what}: {e}") from None
    joints, conf = fill_missing(canon @ rot.T)
    t_us = np.round(np.arange(len(joints)) * rig.frame_time_s * 1e6).astype(np.int64)
    meta = {"file": what, "unit": unit, "unit_from": unit_how,
            "leg_length_m": round(leg * UNITS_M[unit], 3), "rig_joints": len(rig.names),
            "convention": rt.convention, "retarget": rt.sources,
            "time_origin": "first frame is t=0, Frame Time apart", "problems": rig.problems,
            "lab_axes_to_y_up": rot.tolist(), **info}
    if rig.problems:
        meta["truncated"] = rig.problems[0]
    return Recording(name=sourcefile.name(path).stem, t_us=t_us, joints=joints,
                     confidence=conf, rate_hz=1.0 / rig.frame_time_s,
                     source_layout=f"bvh:{rt.convention}", meta=meta)
