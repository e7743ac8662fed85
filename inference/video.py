"""A video file as a Recording: pose estimation on every frame, the person of interest's skeleton.

``load_video_recording(path)`` decodes the file with the webcam source (same timestamps as a live
replay of the file: the container's), runs :class:`inference.pose.estimator.PoseEstimator` on every frame
and keeps the track of the person of interest: the one locked as walking with the most frames
(or the longest track when nobody walked). Frames inside that track where the pose was missed are
filled by interpolation with confidence 0, as every Recording is (never NaN).

An Azure Kinect recording is an .mkv too, but holds depth, not a picture to estimate poses on:
``load_video_recording`` hands it to the Kinect playback (capture.readers.k4a_mkv) instead;
``capture.readers.is_video_file`` is the one place that tells the two apart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from capture.readers.recording import Recording, RecordingError, fill_missing
from streams.skeletons import MEDIAPIPE_JOINTS, to_canonical
from streams.extras import deferred

cv2 = deferred("cv2", "pose estimation on a video")

log = logging.getLogger(__name__)


def estimate_video(path: str | Path, **pose_options: Any
                   ) -> dict[str, Any]:
    """Per-frame pose of a video: ``t_us`` (N,), ``body`` (N,) body id or -1, ``joints``
    (N, 33, 3) wire metres (NaN where no pose), ``confidence`` (N, 33), ``image_xy`` (N, 33, 2),
    ``locked`` (N,) bool, plus ``size`` (w, h), the pose ``backend`` and its ``counters``."""
    from capture.webcam import WebcamSource

    from inference.pose.estimator import PoseEstimator

    try:
        src = WebcamSource(name=Path(path).stem, path=str(path))
    except ValueError as e:
        raise RecordingError(f"{path}: {e}") from None
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    est = PoseEstimator(**pose_options)
    rows: list[tuple] = []
    size = (0, 0)
    bar = tqdm(desc=f"pose on {Path(path).name}", total=total or None, unit=" frames",
               disable=None, mininterval=0.5)  # on a console only
    try:
        for frame in src.frames():
            img = frame.array()
            size = (frame.width, frame.height)
            if img.shape[2] != 3:
                raise RecordingError(f"{path}: {frame.encoding} frames; pose needs colour")
            poses = est.estimate(img, frame.t_us)
            rows.append((frame.t_us, poses[0] if poses else None))
            bar.update()
    finally:
        bar.close()
        src.close()
        est.close()
    if not rows:
        raise RecordingError(f"{path}: no frames could be decoded{_why_no_frames(path)}")
    n, j = len(rows), len(MEDIAPIPE_JOINTS)
    out = {
        "t_us": np.array([t for t, _ in rows], dtype=np.int64),
        "body": np.full(n, -1, dtype=np.int64),
        "joints": np.full((n, j, 3), np.nan, dtype=np.float32),
        "confidence": np.zeros((n, j), dtype=np.float32),
        "image_xy": np.full((n, j, 2), np.nan),
        "locked": np.zeros(n, dtype=bool),
        "size": size,
        "backend": est.cfg.backend,
        "counters": est.all_counters(),
    }
    if total and len(rows) < total:  # the container's frame count: a file cut short
        out["truncated"] = (f"the file ends early: {len(rows)} of the {total} frames its "
                            f"container declares were decoded")
        log.warning("%s: %s", Path(path).name, out["truncated"])
    for i, (_, p) in enumerate(rows):
        if p is not None:
            out["body"][i] = p.body.body_id
            out["joints"][i] = p.body.joints
            out["confidence"][i] = p.body.confidence
            out["image_xy"][i] = p.image_xy
            out["locked"][i] = p.locked
    return out


def _why_no_frames(path: str | Path) -> str:
    """What a video that gives no frame at all most likely suffers from, in words."""
    with open(path, "rb") as f:
        data = f.read()
    if data[4:8] == b"ftyp" and b"moov" not in data:
        return (": its index (the MP4 'moov' box) is missing, as in a file cut short or a "
                "recording that was never finalised")
    return ""


def person_of_interest(body: np.ndarray, locked: np.ndarray) -> int | None:
    """The body id to analyse: the walker (locked) seen most, else the person seen most."""
    ids, counts = np.unique(body[body >= 0], return_counts=True)
    if ids.size == 0:
        return None
    walked = {int(b) for b in np.unique(body[locked])}
    pool = [(int(c), int(i)) for i, c in zip(ids, counts) if int(i) in walked] or \
        [(int(c), int(i)) for i, c in zip(ids, counts)]
    return max(pool)[1]


def load_video_recording(path: str | Path, **pose_options: Any) -> Recording:
    """The person of interest of a video file as a canonical Recording (see module docstring);
    a file that is not a video (an Azure Kinect .mkv: ``is_video_file`` decides) goes to its
    reader instead."""
    from capture.readers import is_video_file, load_recording

    if not is_video_file(path):
        return load_recording(path)
    return recording_from_estimates(Path(path), estimate_video(path, **pose_options))


def recording_from_estimates(path: Path, est: dict[str, Any]) -> Recording:
    """The Recording of the person of interest in :func:`estimate_video`'s output."""
    who = person_of_interest(est["body"], est["locked"])
    if who is None:
        raise RecordingError(f"{path}: no person found in {len(est['t_us'])} frames")
    idx = np.flatnonzero(est["body"] == who)
    span = slice(idx[0], idx[-1] + 1)
    mine = est["body"][span] == who
    raw = np.where(mine[:, None, None], est["joints"][span], np.nan)
    raw_conf = np.where(mine[:, None], est["confidence"][span], 0.0).astype(np.float32)
    filled, _ = fill_missing(raw, parents=tuple([-1] * raw.shape[1]))
    joints, conf = to_canonical("mediapipe33", filled, raw_conf, feet=True)
    # MediaPipe's heels and foot indices: the foot points after the 22 joints
    joints, conf, feet, feet_conf = joints[:, :22], conf[:, :22], joints[:, 22:], conf[:, 22:]
    t = est["t_us"][span]
    rate = float(1e6 / np.median(np.diff(t))) if len(t) > 1 else 0.0
    meta = {
        "video": str(path), "width": est["size"][0], "height": est["size"][1],
        "frames_in_video": int(len(est["t_us"])), "person": who,
        "pose_frames": int(mine.sum()), "pose_coverage": float(mine.mean()),
        "walked": bool(est["locked"][span][mine].any()),
        "pose_backend": est["backend"],
        "pose_counters": est["counters"],
    }
    if "truncated" in est:
        meta["truncated"] = est["truncated"]
    log.info("%s: person %d, %d frames (%.0f %% with a pose) from %.2f to %.2f s", path.name,
             who, len(t), 100 * meta["pose_coverage"], t[0] / 1e6, t[-1] / 1e6)
    return Recording(name=path.stem, t_us=t.astype(np.int64), joints=joints.astype(np.float32),
                     confidence=conf.astype(np.float32), rate_hz=rate,
                     source_layout="mediapipe33", meta=meta, raw_layout="mediapipe33",
                     raw_joints=filled.astype(np.float32), raw_confidence=raw_conf,
                     feet=feet.astype(np.float32), feet_confidence=feet_conf.astype(np.float32))
