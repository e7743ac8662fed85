"""Azure Kinect Body Tracking ``offline_processor`` JSON: as a Recording and as a Source.

The offline_processor sample (Azure-Kinect-Samples, body-tracking-samples/offline_processor)
plays an .mkv through the Body Tracking SDK and writes, with nlohmann::json (keys sorted,
4-space indent)::

    {
        "bone_list": [["SPINE_CHEST", "SPINE_NAVEL"], ...],        # 31 pairs of joint names
        "frames": [
            {
                "bodies": [
                    {
                        "body_id": 1,
                        "joint_orientations": [[w, x, y, z], ...],  # 32, unit quaternions
                        "joint_positions": [[x, y, z], ...]         # 32, mm, depth camera axes
                    }
                ],
                "frame_id": 0,            # index of the capture in the .mkv (captures without
                "num_bodies": 1,          #   depth are skipped, so ids can jump)
                "timestamp_usec": 0       # device timestamp of the depth image
            }
        ],
        "joint_names": ["PELVIS", "SPINE_NAVEL", ...],              # k4abt_joint_id_t order
        "k4abt_sdk_version": "1.1.2",
        "source_file": "walk.mkv"
    }

The sample writes no joint confidence levels. Modified versions in circulation add a per-body
``"joint_confidence"`` (one level per joint, each a number or a one-element list) and some a
top-level ``"start_offset_usec"``; both are read when present. Without levels every joint of a
tracked body is taken at ``assumed_level`` (MEDIUM by default: the highest level SDK 1.x
reports), and ``meta["confidence"]`` says so. NaN positions, which nlohmann writes as ``null``,
drop that body from that frame.

Axes: the file has no IMU data, so the depth camera's axes are turned to the wire's by the plain
180-degree flip about x (metres, y up for a level camera); ``meta["up_axis"]`` says the camera's
tilt is not corrected. Bad content (a malformed frame, a body without 32 joints, a timestamp
that goes back) is skipped with its reason in ``meta["problems"]``; a file that is not this
format at all raises RecordingError.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from capture.kinect.geometry import CAMERA_TO_WIRE, camera_to_wire, levels_to_confidence
from capture.kinect.k4abt import JointConfidence
from streams.schema import MAX_BODIES, Body, SkeletonFrame
from streams.skeletons import AZURE_KINECT_JOINTS, to_canonical

from capture.readers.recording import Recording, RecordingError

log = logging.getLogger(__name__)

LAYOUT = "azure_kinect32"
N_JOINTS = len(AZURE_KINECT_JOINTS)
FORMAT = "k4abt offline_processor json"


@dataclass
class K4ABody:
    body_id: int
    positions_mm: np.ndarray  # (32, 3) depth camera axes, SDK joint order
    levels: np.ndarray | None  # (32,) confidence levels, None when the file has none


@dataclass
class K4AFrame:
    frame_id: int
    t_us: int
    bodies: list[K4ABody]


@dataclass
class K4AJson:
    path: Path
    frames: list[K4AFrame]
    sdk_version: str | None
    source_file: str | None
    start_offset_usec: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def body_frames(self) -> dict[int, int]:
        """body id -> number of frames it appears in."""
        return body_frames(self.frames)


def body_frames(frames: Sequence[Any]) -> dict[int, int]:
    """body id -> number of frames it appears in (frames with ``bodies`` that have a
    ``body_id``: these files' K4AFrames, or the Kinect source's SkeletonFrames)."""
    out: dict[int, int] = {}
    for f in frames:
        for b in f.bodies:
            out[b.body_id] = out.get(b.body_id, 0) + 1
    return out


def choose_body(name: str, counts: dict[int, int], body_id: int | None) -> int:
    """``body_id``, or the body seen in the most frames when it is None (``counts``: from
    ``body_frames``, not empty)."""
    if body_id is None:
        return max(sorted(counts), key=lambda b: counts[b])
    if body_id not in counts:
        raise RecordingError(f"{name}: no body {body_id}; bodies: {sorted(counts)}")
    return body_id


def body_track(frames: Sequence[Any], body_id: int,
               values: Callable[[Any], tuple[np.ndarray, np.ndarray]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One body from its first to its last frame: (t_us, joints (N, 32, 3), confidence (N, 32),
    present (N,)). ``values(body)`` gives a body's wire joints and confidence; frames inside the
    span where the body was lost are interpolated in time and carry confidence 0."""
    idx = [k for k, f in enumerate(frames) if any(b.body_id == body_id for b in f.bodies)]
    span = frames[idx[0]:idx[-1] + 1]
    t_us = np.array([f.t_us for f in span], dtype=np.int64)
    raw = np.zeros((len(span), N_JOINTS, 3), dtype=np.float32)
    conf = np.zeros((len(span), N_JOINTS), dtype=np.float32)
    present = np.zeros(len(span), dtype=bool)
    for k, f in enumerate(span):
        for b in f.bodies:
            if b.body_id == body_id:
                raw[k], conf[k] = values(b)
                present[k] = True
    return t_us, _fill_gaps(t_us, raw, present), conf, present


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _joint_order(names: Any, path: Path) -> np.ndarray | None:
    """Index into the file's joints for each SDK joint, or None when the file is in SDK order."""
    if names is None:
        return None
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(AZURE_KINECT_JOINTS):
        raise RecordingError(f"{path.name}: joint_names are not the Azure Kinect Body Tracking "
                             f"SDK's 32 joints: {str(names)[:120]}")
    if list(names) == list(AZURE_KINECT_JOINTS):
        return None
    return np.array([names.index(j) for j in AZURE_KINECT_JOINTS])


def _levels(raw: Any) -> np.ndarray | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != N_JOINTS:
        raise ValueError(f"joint_confidence has {len(raw) if isinstance(raw, list) else raw!r} "
                         f"entries, not {N_JOINTS}")
    flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in raw]
    if not all(_int(v) is not None and 0 <= v <= 3 for v in flat):
        raise ValueError("joint_confidence values are not levels 0..3")
    return np.array(flat, dtype=np.int32)


def _body(raw: Any, order: np.ndarray | None) -> K4ABody:
    if not isinstance(raw, dict):
        raise ValueError("a body is not an object")
    bid = _int(raw.get("body_id"))
    if bid is None:
        raise ValueError("body without an integer body_id")
    pos = raw.get("joint_positions")
    if not isinstance(pos, list) or len(pos) != N_JOINTS:
        n = len(pos) if isinstance(pos, list) else "no"
        raise ValueError(f"body {bid}: {n} joint positions, not {N_JOINTS}")
    try:
        arr = np.array(pos, dtype=np.float64)  # null (NaN in the SDK) becomes nan here
    except (TypeError, ValueError):
        raise ValueError(f"body {bid}: joint positions are not numbers") from None
    if arr.shape != (N_JOINTS, 3):
        raise ValueError(f"body {bid}: joint positions of shape {arr.shape}, not (32, 3)")
    if not np.isfinite(arr).all():
        raise ValueError(f"body {bid}: NaN joint positions")
    levels = _levels(raw.get("joint_confidence"))
    if order is not None:
        arr = arr[order]
        levels = None if levels is None else levels[order]
    return K4ABody(bid, arr, levels)


def read_k4a_json(path: str | Path) -> K4AJson:
    """Parse an offline_processor file; skipped content is listed in ``problems``."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordingError(f"{path.name}: not readable as JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
        raise RecordingError(f"{path.name}: no 'frames' list: not an Azure Kinect "
                             "offline_processor file")
    order = _joint_order(doc.get("joint_names"), path)
    out = K4AJson(path, [], doc.get("k4abt_sdk_version"), doc.get("source_file"),
                  _int(doc.get("start_offset_usec")))
    last_t: int | None = None
    for k, raw in enumerate(doc["frames"]):
        where = f"frames[{k}]"
        if not isinstance(raw, dict):
            out.problems.append(f"{where}: not an object; skipped")
            continue
        t = _int(raw.get("timestamp_usec"))
        bodies_raw = raw.get("bodies")
        if t is None or t < 0 or not isinstance(bodies_raw, list):
            out.problems.append(f"{where}: no timestamp_usec or bodies; skipped")
            continue
        if last_t is not None and t <= last_t:
            out.problems.append(f"{where}: timestamp {t} not after {last_t}; skipped")
            continue
        if _int(raw.get("num_bodies")) not in (None, len(bodies_raw)):
            out.problems.append(f"{where}: num_bodies {raw.get('num_bodies')} but "
                                f"{len(bodies_raw)} bodies listed; the list is used")
        bodies = []
        for raw_body in bodies_raw:
            try:
                bodies.append(_body(raw_body, order))
            except ValueError as e:
                out.problems.append(f"{where}: {e}; body skipped")
        fid = _int(raw.get("frame_id"))
        out.frames.append(K4AFrame(k if fid is None else fid, t, bodies))
        last_t = t
    if not out.frames:
        raise RecordingError(f"{path.name}: no usable frames"
                             + (f" ({out.problems[0]})" if out.problems else ""))
    for p in out.problems:
        log.warning("%s: %s", path.name, p)
    return out


def _confidence(body: K4ABody, assumed_level: str) -> np.ndarray:
    levels = body.levels if body.levels is not None else \
        np.full(N_JOINTS, JointConfidence[assumed_level], dtype=np.int32)
    return levels_to_confidence(levels)


def _check_level(assumed_level: str) -> None:
    if assumed_level not in JointConfidence.__members__:
        raise ValueError(f"assumed_level {assumed_level!r}: one of "
                         f"{list(JointConfidence.__members__)}")


def _fill_gaps(t_us: np.ndarray, values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Linear interpolation in time across the frames where ``present`` is False."""
    out = values.copy()
    if present.all():
        return out
    flat = out.reshape(len(t_us), -1)
    for c in range(flat.shape[1]):
        flat[~present, c] = np.interp(t_us[~present], t_us[present], flat[present, c])
    return out


def load_k4a_json(path: str | Path, *, body_id: int | None = None, assumed_level: str = "MEDIUM",
                  height_m: float | None = None) -> Recording:
    """One body of an offline_processor file as a Recording (the reader interface).

    ``body_id`` None takes the body seen in the most frames. The recording spans that body's
    first to last frame; frames inside where the SDK had lost it are interpolated in time and
    carry confidence 0. ``t_us`` are the file's device timestamps.
    """
    _check_level(assumed_level)
    doc = read_k4a_json(path)
    counts = doc.body_frames
    if not counts:
        raise RecordingError(f"{doc.path.name}: no body in any frame")
    body_id = choose_body(doc.path.name, counts, body_id)
    t_us, raw, conf, present = body_track(
        doc.frames, body_id,
        lambda b: (camera_to_wire(b.positions_mm, CAMERA_TO_WIRE), _confidence(b, assumed_level)))
    joints, cconf = to_canonical(LAYOUT, raw, conf)
    rate_hz = 1e6 / float(np.median(np.diff(t_us))) if len(t_us) > 1 else 30.0
    problems = list(doc.problems)
    if (~present).any():
        problems.append(f"body {body_id} lost in {int((~present).sum())} frames inside its "
                        "span: interpolated, confidence 0")
    meta: dict[str, Any] = {
        "file": doc.path.name, "format": FORMAT, "k4abt_sdk_version": doc.sdk_version,
        "source_file": doc.source_file, "body_id": body_id,
        "bodies": {str(b): n for b, n in sorted(counts.items())},
        "timestamps": "device timestamps of the depth images (µs)",
        "up_axis": "-Y of the depth camera (camera tilt not corrected: no IMU in the file)",
        "camera_frame": True,
        "confidence": ("joint_confidence levels from the file" if any(
            b.levels is not None for f in doc.frames for b in f.bodies if b.body_id == body_id)
            else f"not in the file: every joint of the tracked body taken as {assumed_level}"),
        "problems": problems,
    }
    if doc.start_offset_usec is not None:
        meta["start_offset_usec"] = doc.start_offset_usec
    if height_m is not None:
        meta["subject_height_m"] = height_m
    return Recording(name=doc.path.stem, t_us=t_us, joints=joints, confidence=cconf,
                     rate_hz=rate_hz, source_layout=LAYOUT, meta=meta, raw_layout=LAYOUT,
                     raw_joints=raw, raw_confidence=conf)


class K4AJsonSource:
    """Publishes an offline_processor file like the live camera: one SkeletonFrame per frame
    (layout azure_kinect32, every body with its SDK id, frames without bodies included), on the
    file's device timestamps, paced by the runner.

    ``loop`` replays the file again and again (a kiosk demo): each pass continues the clock one
    median frame interval after the previous and offsets the body ids past those already used,
    as the live source does after a reconnection.
    """

    paced = True

    def __init__(self, name: str, path: str, loop: bool = False, assumed_level: str = "MEDIUM"):
        _check_level(assumed_level)
        self.name = name
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"path {self.path}: no such file")
        self.loop = loop
        self.assumed_level = assumed_level
        self.state: dict[str, str] = {}
        self._closed = False

    def frames(self) -> Iterator[SkeletonFrame]:
        doc = read_k4a_json(self.path)
        times = np.array([f.t_us for f in doc.frames], dtype=np.int64)
        step = int(np.median(np.diff(times))) if len(times) > 1 else 33_333
        period = int(times[-1] - times[0]) + step
        max_id = max(doc.body_frames, default=0)
        n = 0
        while not self._closed:
            self.state["pass"] = str(n + 1)
            for f in doc.frames:
                if self._closed:
                    return
                bodies = [Body(n * max_id + b.body_id,
                               camera_to_wire(b.positions_mm, CAMERA_TO_WIRE),
                               _confidence(b, self.assumed_level))
                          for b in f.bodies[:MAX_BODIES]]
                yield SkeletonFrame(source=self.name, seq=0, t_us=f.t_us + n * period,
                                    host_us=0, layout=LAYOUT, bodies=bodies)
            if not self.loop:
                return
            n += 1

    def close(self) -> None:
        self._closed = True
