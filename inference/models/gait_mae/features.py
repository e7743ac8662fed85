"""What GaitMAE sees, as pure numpy (shared by training, the runtime and the evaluation).

A walk (timestamps in µs, canonical 22 joints, y up, metres, any rate) becomes clips:

1. resampled to ``RATE_HZ`` by its timestamps (linear interpolation; a Kinect v1 file has no
   times and its reader's nominal clock is used);
2. cut into windows of ``CLIP_FRAMES`` frames (2 s) with a hop of half a window;
3. each clip made pelvis-relative (every joint minus the pelvis of its own frame; the pelvis slot
   keeps the pelvis path relative to the clip's mean pelvis, so speed and bounce stay visible) and
   heading-normalised: turned about the vertical so that the clip's mean facing direction (normal
   to the hip and shoulder lines) is +z. One rotation per clip, so turning within it is kept.

The Kinect v1 data were filmed from a camera that turns to follow the walker, so only pelvis-
relative, per-clip-rotated positions are comparable across sources; absolute paths are not.
"""

from __future__ import annotations

import numpy as np

from inference.models.gait_mae.config import CLIP_FRAMES, N_JOINTS, POSITION_UNIT_M, RATE_HZ
from streams.skeletons import CJ

HOP_FRAMES = CLIP_FRAMES // 2
_PELVIS = CJ["pelvis"]


def resample(t_us: np.ndarray, joints: np.ndarray, rate_hz: float = RATE_HZ) -> np.ndarray:
    """(T, 22, 3) joints at any increasing timestamps -> frames every 1/rate s from the first."""
    t = (np.asarray(t_us, dtype=np.int64) - int(t_us[0])).astype(np.float64) / 1e6
    keep = np.concatenate([[True], np.diff(t) > 0])  # a repeated stamp would stall np.interp
    t, joints = t[keep], np.asarray(joints, dtype=np.float64)[keep]
    n = int(np.floor(t[-1] * rate_hz + 1e-6)) + 1 if len(t) > 1 else len(t)
    grid = np.arange(n) / rate_hz
    flat = joints.reshape(len(t), -1)
    out = np.empty((n, flat.shape[1]))
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(grid, t, flat[:, k])
    return out.reshape(n, N_JOINTS, 3)


def facing_yaw(clip: np.ndarray) -> float:
    """Yaw (about +y, from +z) of the mean facing direction of a clip (T, 22, 3)."""
    across = (clip[:, CJ["right_hip"]] - clip[:, CJ["left_hip"]]
              + clip[:, CJ["right_shoulder"]] - clip[:, CJ["left_shoulder"]]).mean(0)
    # forward = up x across (right-handed, y up): facing +z when right is -x
    fwd = np.array([across[2], 0.0, -across[0]])
    return float(np.arctan2(fwd[0], fwd[2]))


def normalise_clip(clip: np.ndarray) -> np.ndarray:
    """One raw clip (T, 22, 3) metres -> pelvis-relative, heading-normalised, in model units."""
    clip = np.asarray(clip, dtype=np.float64)
    pelvis = clip[:, _PELVIS:_PELVIS + 1]
    out = clip - pelvis
    out[:, _PELVIS] = pelvis[:, 0] - pelvis[:, 0].mean(0)
    yaw = facing_yaw(clip)
    c, s = np.cos(-yaw), np.sin(-yaw)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # rotation about y by -yaw
    return (out @ rot.T / POSITION_UNIT_M).astype(np.float32)


def clips_from_frames(frames: np.ndarray, hop: int = HOP_FRAMES) -> np.ndarray:
    """Frames at RATE_HZ (T, 22, 3) -> normalised clips (N, CLIP_FRAMES, 22, 3); none when the
    walk is shorter than one clip."""
    starts = range(0, len(frames) - CLIP_FRAMES + 1, hop)
    out = [normalise_clip(frames[s:s + CLIP_FRAMES]) for s in starts]
    if not out:
        return np.zeros((0, CLIP_FRAMES, N_JOINTS, 3), np.float32)
    return np.stack(out)


def walk_clips(t_us: np.ndarray, joints: np.ndarray, hop: int = HOP_FRAMES) -> np.ndarray:
    """A walk's timestamps and joints -> its normalised clips (N, CLIP_FRAMES, 22, 3)."""
    if len(t_us) < 2:
        return np.zeros((0, CLIP_FRAMES, N_JOINTS, 3), np.float32)
    return clips_from_frames(resample(t_us, joints), hop)
