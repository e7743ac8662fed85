"""DPG's two pattern images of a clip of 2D keypoints, as pure numpy (shared by training, the
evaluation, the benchmark and the worker).

Keypoints are image coordinates (x right, y DOWN, any unit: pixels, or the x/z, y/z of a
camera-frame pose) of :data:`~inference.models.dpg.config.LANDMARKS`, at any timestamps:

1. resampled to 30 Hz by the timestamps and cut into clips of 124 frames;
2. normalised as Kidzinski et al. 2020 normalise OpenPose keypoints: every landmark minus the
   frame's mid-hip (mean of the hips), divided by the thigh length (mean of the two hip-knee
   image distances; here the clip's median, so that a leg swinging towards the camera does not
   blow the frame up), and mirrored so that the walker goes right to left (x of the mid-hip
   decreasing over the clip). The pelvis row keeps the mid-hip's path relative to its clip
   mean (in thigh lengths), so that progression stays visible;
3. image 1, the coordinate matrix: one row per landmark coordinate (x then y of each landmark),
   one column per frame, values mapped from [-COORD_RANGE, COORD_RANGE] thigh lengths to [0, 1]
   (clipped), resized bilinearly to 128 x 128;
4. image 2, the trajectory graph: the paths of the hips, knees and ankles over the clip drawn on
   one 128 x 128 graph of the normalised image plane (x in GRAPH_X, y in GRAPH_Y thigh lengths,
   y down as in the image), each joint in its own grey level k / 6 (GRAPH_JOINTS order), 0
   elsewhere.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from inference.models.dpg.config import (CLIP_FRAMES, GRAPH_JOINTS, IMAGE_SIZE, LANDMARKS, LM,
                                         RATE_HZ)

COORD_RANGE = 3.0  # thigh lengths either side of the mid-hip: a wrist or a head fits inside
GRAPH_X = (-2.5, 2.5)  # thigh lengths: an ankle a full step ahead of the hip still fits
GRAPH_Y = (-1.0, 4.0)  # hip at 0, knee ~1, ankle ~2 (a shank is about a thigh long)
HOP_FRAMES = 31  # Kidzinski et al.'s window hop (a quarter window)
_LH, _RH, _LK, _RK = LM["left_hip"], LM["right_hip"], LM["left_knee"], LM["right_knee"]


def resample(t_us: np.ndarray, keypoints: np.ndarray, rate_hz: float = RATE_HZ) -> np.ndarray:
    """(T, L, 2) keypoints at increasing timestamps (us) -> frames every 1/rate s from the
    first (linear interpolation)."""
    t = (np.asarray(t_us, np.int64) - int(t_us[0])).astype(np.float64) / 1e6
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (len(LANDMARKS), 2) or len(kp) != len(t):
        raise ValueError(f"keypoints: expected ({len(t)}, {len(LANDMARKS)}, 2), got {kp.shape}")
    keep = np.concatenate([[True], np.diff(t) > 0])
    t, kp = t[keep], kp[keep]
    n = int(np.floor(t[-1] * rate_hz + 1e-6)) + 1 if len(t) > 1 else len(t)
    grid = np.arange(n) / rate_hz
    flat = kp.reshape(len(t), -1)
    out = np.stack([np.interp(grid, t, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(n, len(LANDMARKS), 2)


def thigh_length(keypoints: np.ndarray) -> float:
    """Median over frames of the mean hip-knee distance (the keypoints' unit)."""
    kp = np.asarray(keypoints, np.float64)
    th = 0.5 * (np.linalg.norm(kp[:, _LH] - kp[:, _LK], axis=-1)
                + np.linalg.norm(kp[:, _RH] - kp[:, _RK], axis=-1))
    return float(np.median(th))


def normalise(clip: np.ndarray) -> np.ndarray:
    """(T, L, 2) image keypoints (y down) -> mid-hip-relative, thigh-length units, walking right
    to left; the pelvis row is the mid-hip path about its mean. ValueError for a clip whose
    thighs have no length (a broken or empty pose)."""
    clip = np.asarray(clip, np.float64)
    if not np.isfinite(clip).all():
        raise ValueError("keypoints: NaN or infinite coordinates")
    mid = 0.5 * (clip[:, _LH] + clip[:, _RH])
    scale = thigh_length(clip)
    if not scale > 0:
        raise ValueError("keypoints: the thighs have no length in the image")
    out = (clip - mid[:, None]) / scale
    out[:, LM["pelvis"]] = (mid - mid.mean(0)) / scale
    if mid[-1, 0] > mid[0, 0]:  # walking left to right: mirror (labels keep their sides)
        out[..., 0] = -out[..., 0]
    return out


@lru_cache(maxsize=8)
def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation weights, sample centres aligned at both ends: a
    bilinear resize is two matrix products (fast enough for the worker)."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    w = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] = 1.0 - w
    m[np.arange(n_out), lo + 1] += w
    return m


def coordinate_image(norm: np.ndarray) -> np.ndarray:
    """Image 1: (128, 128) in [0, 1], rows x0, y0, x1, y1, ... of the landmarks, columns frames."""
    m = np.asarray(norm, np.float64).reshape(len(norm), -1).T  # (2L, T)
    m = np.clip((m + COORD_RANGE) / (2 * COORD_RANGE), 0.0, 1.0)
    out = _interp_matrix(IMAGE_SIZE, m.shape[0]) @ m @ _interp_matrix(IMAGE_SIZE, m.shape[1]).T
    return out.astype(np.float32)


def graph_pixel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, inside) of normalised image-plane points on the trajectory graph."""
    col = np.floor((x - GRAPH_X[0]) / (GRAPH_X[1] - GRAPH_X[0]) * IMAGE_SIZE).astype(int)
    row = np.floor((y - GRAPH_Y[0]) / (GRAPH_Y[1] - GRAPH_Y[0]) * IMAGE_SIZE).astype(int)
    inside = (col >= 0) & (col < IMAGE_SIZE) & (row >= 0) & (row < IMAGE_SIZE)
    return row, col, inside


def graph_image(norm: np.ndarray, substeps: int = 4) -> np.ndarray:
    """Image 2: (128, 128), the hip, knee and ankle paths, joint k of GRAPH_JOINTS at (k+1)/6;
    consecutive frames joined by ``substeps`` points so that a fast ankle draws a line."""
    norm = np.asarray(norm, np.float64)
    img = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    t = np.arange(len(norm))
    tt = np.linspace(0, len(norm) - 1, (len(norm) - 1) * substeps + 1)
    for k, name in enumerate(GRAPH_JOINTS):
        p = norm[:, LM[name]]
        row, col, ok = graph_pixel(np.interp(tt, t, p[:, 0]), np.interp(tt, t, p[:, 1]))
        img[row[ok], col[ok]] = (k + 1) / len(GRAPH_JOINTS)
    return img


def clip_images(clip: np.ndarray) -> np.ndarray:
    """(124, L, 2) image keypoints at 30 Hz -> the network's input (2, 128, 128) float32."""
    if len(clip) != CLIP_FRAMES:
        raise ValueError(f"a clip is {CLIP_FRAMES} frames at {RATE_HZ:g} Hz, got {len(clip)}")
    norm = normalise(clip)
    return np.stack([coordinate_image(norm), graph_image(norm)])


def clip_starts(n_frames: int, hop: int = HOP_FRAMES) -> list[int]:
    return list(range(0, n_frames - CLIP_FRAMES + 1, hop))


def walk_images(t_us: np.ndarray, keypoints: np.ndarray, hop: int = HOP_FRAMES
                ) -> np.ndarray:
    """A walk's timestamps and (T, L, 2) keypoints -> (N, 2, 128, 128), N = 0 when the walk is
    shorter than one clip (4.1 s)."""
    if len(t_us) < 2:
        return np.zeros((0, 2, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    frames = resample(t_us, keypoints)
    out = [clip_images(frames[s:s + CLIP_FRAMES]) for s in clip_starts(len(frames), hop)]
    return np.stack(out) if out else np.zeros((0, 2, IMAGE_SIZE, IMAGE_SIZE), np.float32)


def project(points: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3), x right, y DOWN, z forward (depth) -> image-plane (..., 2)
    coordinates x/z, y/z: what a 2D pose model sees of a 3D pose, in focal-length units."""
    p = np.asarray(points, np.float64)
    return p[..., :2] / p[..., 2:3]
