"""HumanML3D motion features (Guo et al., CVPR 2022) from canonical joints.

The 263 numbers per frame, in the reference layout (EricGuo5513/HumanML3D, ``process_file``):

====================  ==========  ===========================================================
slice                 size        meaning (per frame t, from frame t to t+1 where it is a rate)
====================  ==========  ===========================================================
``ROOT_ROT_VEL``      1           yaw rate of the facing direction: half the yaw change per
                                  frame, radians, the sign as the reference's
                                  ``arcsin(q_y)`` of r_rot[t+1] * r_rot[t]^-1
``ROOT_LIN_VEL``      2           root x/z displacement per frame in the body-facing frame
``ROOT_Y``            1           root height above the clip's floor (metres)
``RIC``               21*3        joints 1..21 relative to the root's x/z, in the facing frame
``ROT6D``             21*6        joints 1..21: rotation of the bone parent->joint relative to
                                  its parent bone (first two rotation-matrix columns)
``LOCAL_VEL``         22*3        displacement of every joint per frame, in the facing frame
``FOOT_CONTACT``      4           left ankle, left foot, right ankle, right foot: 1 when the
                                  joint moves less than sqrt(0.002) m per frame
====================  ==========  ===========================================================

As the reference, motion is resampled to 20 frames/s, retargeted to one body (every bone set
to a fixed length, the root path scaled by the ratio of leg lengths) so that body size does not
look like a different motion, put on the clip's floor, and rotated so that the first frame faces
+z with the root at x = z = 0. The facing direction is perpendicular to the hip and shoulder
lines and smoothed over time (Gaussian, sigma 1 s) so the pelvis's own swing stays in the pose.
A clip of T frames gives T-1 feature rows.

Where this differs from the reference on purpose (the 263 layout is unchanged):
- the facing direction uses right-minus-left for both hips and shoulders (the reference's
  ``inverse_kinematics_np`` swaps the hips, HumanML3D issues #107/#112/#119);
- bone rotations are computed in the body-facing frame and each arm chain is relative to its
  real parent (spine3), so the rotation features do not change with the walker's heading;
- the first frame is aligned with the smoothed facing direction, so the root rotation starts at
  exactly zero and the root path integrates back to the aligned positions without an offset.

Units are per frame at ``FPS`` as in the reference; velocities in m/s are these times 20.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from streams.skeletons import CANONICAL_JOINTS, CANONICAL_PARENTS, CJ

FPS = 20.0
N_JOINTS = 22
FEATURE_DIM = 263

ROOT_ROT_VEL = slice(0, 1)
ROOT_LIN_VEL = slice(1, 3)
ROOT_Y = slice(3, 4)
RIC = slice(4, 4 + 21 * 3)
ROT6D = slice(RIC.stop, RIC.stop + 21 * 6)
LOCAL_VEL = slice(ROT6D.stop, ROT6D.stop + 22 * 3)
FOOT_CONTACT = slice(LOCAL_VEL.stop, LOCAL_VEL.stop + 4)
assert FOOT_CONTACT.stop == FEATURE_DIM

# Feature groups as the scorer reports them (root motion, positions, rotations, velocities, feet).
GROUPS: dict[str, slice] = {
    "root": slice(0, 4),
    "positions": RIC,
    "rotations": ROT6D,
    "velocities": LOCAL_VEL,
    "contacts": FOOT_CONTACT,
}

# Rest direction of each bone parent->joint (HumanML3D t2m_raw_offsets: +x is the body's left,
# +y up, +z forward; arms hang down).
REST_DIRECTIONS = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0],
    [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0],
    [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    [0, -1, 0],
], dtype=np.float64)

# Bone lengths (m) of the body every clip is retargeted to: an adult of about 1.70 m with the
# SMPL neutral proportions, rounded to the centimetre.
TARGET_BONE_LENGTHS = np.array([
    0.0, 0.11, 0.11, 0.11, 0.38, 0.38, 0.13, 0.40, 0.40, 0.06, 0.14, 0.14, 0.21, 0.13, 0.13,
    0.10, 0.12, 0.12, 0.26, 0.26, 0.25, 0.25,
], dtype=np.float64)

# Parents come before children in the canonical order, so one pass over joints is a tree walk.
assert all(p < j for j, p in enumerate(CANONICAL_PARENTS) if p >= 0)

FOOT_JOINTS_LEFT = (CJ["left_ankle"], CJ["left_foot"])
FOOT_JOINTS_RIGHT = (CJ["right_ankle"], CJ["right_foot"])
CONTACT_THRESHOLD = 0.002  # squared metres per frame (reference feet_thre)
FORWARD_SMOOTHING_FRAMES = 20.0  # Gaussian sigma of the facing direction (reference: 20)


class FeatureError(ValueError):
    """The joints or timestamps given cannot make HumanML3D features; the text says why."""


# --------------------------------------------------------------------------- rotations


def rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vectors ``u`` to ``v`` (..., 3) as matrices (..., 3, 3).

    Antiparallel pairs get a half turn about an axis perpendicular to ``u``.
    """
    u, v = np.broadcast_arrays(u, v)
    w = np.cross(u, v)
    c = np.sum(u * v, axis=-1)
    opposite = c < -1.0 + 1e-8
    scale = 1.0 / np.where(opposite, 1.0, 1.0 + c)
    # Rodrigues for unit vectors: R = c I + [w]x + w w^T / (1 + c)
    r = w[..., :, None] * w[..., None, :] * scale[..., None, None]
    r += c[..., None, None] * np.eye(3)
    r[..., 0, 1] -= w[..., 2]
    r[..., 0, 2] += w[..., 1]
    r[..., 1, 0] += w[..., 2]
    r[..., 1, 2] -= w[..., 0]
    r[..., 2, 0] -= w[..., 1]
    r[..., 2, 1] += w[..., 0]
    if np.any(opposite):
        uo = u[opposite]
        axis = np.cross(uo, np.where(np.abs(uo[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        r[opposite] = 2.0 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    return r


def rotate_y(vec: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Vectors (..., 3) rotated about +y by ``angle`` radians (broadcast against ``vec[..., 0]``):
    +z turns towards +x."""
    c, s = np.cos(angle), np.sin(angle)
    x, z = vec[..., 0], vec[..., 2]
    return np.stack([c * x + s * z, np.broadcast_to(vec[..., 1], (c * x).shape), c * z - s * x],
                    axis=-1)


def matrix_to_6d(r: np.ndarray) -> np.ndarray:
    """First two columns of rotation matrices (..., 3, 3) -> (..., 6), as the reference."""
    return np.concatenate([r[..., :, 0], r[..., :, 1]], axis=-1)


def matrix_from_6d(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt of the two stored columns (..., 6) -> rotation matrices (..., 3, 3)."""
    a, b = d6[..., :3], d6[..., 3:]
    x = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b - np.sum(x * b, axis=-1, keepdims=True) * x
    y = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


# --------------------------------------------------------------------------- resampling


def resample(t_us: np.ndarray, joints: np.ndarray, fps: float = FPS
             ) -> tuple[np.ndarray, np.ndarray]:
    """Joints (T, 22, 3) at any timestamps -> frames every 1/fps s from the first timestamp,
    linearly interpolated; returns (t_us, joints) of the new frames."""
    t_us = np.asarray(t_us, dtype=np.int64)
    joints = np.asarray(joints, dtype=np.float64)
    if t_us.ndim != 1 or joints.shape != (len(t_us), N_JOINTS, 3):
        raise FeatureError(f"expected t_us (T,) and joints (T, {N_JOINTS}, 3), got "
                           f"{t_us.shape} and {joints.shape}")
    if len(t_us) < 2:
        raise FeatureError(f"need at least 2 frames, got {len(t_us)}")
    if np.any(np.diff(t_us) <= 0):
        raise FeatureError("timestamps are not strictly increasing")
    if not np.isfinite(joints).all():
        raise FeatureError("joints contain NaN or infinite values")
    step = 1e6 / fps
    n = int(np.floor((t_us[-1] - t_us[0]) / step + 1e-6)) + 1
    t_new = t_us[0] + np.round(np.arange(n) * step).astype(np.int64)
    t_rel, t_src = (t_new - t_us[0]).astype(np.float64), (t_us - t_us[0]).astype(np.float64)
    flat = joints.reshape(len(t_us), -1)
    out = np.empty((n, flat.shape[1]))
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(t_rel, t_src, flat[:, k])
    return t_new, out.reshape(n, N_JOINTS, 3)


# --------------------------------------------------------------------------- skeleton


def bone_vectors(joints: np.ndarray) -> np.ndarray:
    """(..., 22, 3) joints -> (..., 22, 3) vectors parent->joint (zero for the root)."""
    parents = np.array([max(p, 0) for p in CANONICAL_PARENTS])
    return joints - joints[..., parents, :]


def _unit_or_rest(vec: np.ndarray) -> np.ndarray:
    """Unit bone directions; a bone of zero length (a joint a reader placed at its parent because
    it was missing) takes its rest direction."""
    n = np.linalg.norm(vec, axis=-1, keepdims=True)
    rest = np.broadcast_to(REST_DIRECTIONS, vec.shape)
    return np.where(n > 1e-6, vec / np.maximum(n, 1e-12), rest)


def facing_angle(joints: np.ndarray) -> np.ndarray:
    """Yaw (radians, about +y from +z) of the direction the body faces, (..., T, 22, 3) -> (..., T).

    Perpendicular to the right-to-left hip and shoulder lines, smoothed over time, unwrapped.
    """
    across = (joints[..., CJ["right_hip"], :] - joints[..., CJ["left_hip"], :]
              + joints[..., CJ["right_shoulder"], :] - joints[..., CJ["left_shoulder"], :])
    # forward = y x across, kept horizontal
    forward = np.stack([across[..., 2], np.zeros_like(across[..., 0]), -across[..., 0]], -1)
    forward /= np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)
    forward = gaussian_filter1d(forward, FORWARD_SMOOTHING_FRAMES, axis=-2, mode="nearest")
    return np.unwrap(np.arctan2(forward[..., 0], forward[..., 2]), axis=-1)


def retarget(joints: np.ndarray, heading: np.ndarray,
             lengths: np.ndarray = TARGET_BONE_LENGTHS) -> np.ndarray:
    """Same bone directions, bones set to ``lengths``, root path scaled by the leg-length ratio.

    Directions of missing (zero-length) bones are their rest directions in the body-facing frame.
    """
    h = heading[..., None]
    dirs = rotate_y(_unit_or_rest(rotate_y(bone_vectors(joints), -h)), h)
    b = np.linalg.norm(bone_vectors(joints), axis=-1)
    legs = [CJ["left_knee"], CJ["left_ankle"], CJ["right_knee"], CJ["right_ankle"]]
    src_leg = np.median(b[..., legs].sum(axis=-1), axis=-1) / 2.0  # per clip, robust to jitter
    tgt_leg = lengths[legs].sum() / 2.0
    if np.any(src_leg < 0.2):
        raise FeatureError(f"legs are {np.min(src_leg):.3f} m long: not a standing body in metres")
    out = np.empty_like(joints)
    out[..., 0, :] = joints[..., 0, :] * (tgt_leg / src_leg)[..., None, None]
    for j in range(1, N_JOINTS):
        out[..., j, :] = out[..., CANONICAL_PARENTS[j], :] + dirs[..., j, :] * lengths[j]
    return out


def local_rotations(positions_body: np.ndarray) -> np.ndarray:
    """Bone rotations relative to the parent bone, (..., 22, 3, 3), from joints already in the
    body-facing frame; index 0 is the identity (the root's rotation is the heading)."""
    dirs = _unit_or_rest(bone_vectors(positions_body))
    glob = rotation_between(REST_DIRECTIONS[1:], dirs[..., 1:, :])
    glob = np.concatenate([np.broadcast_to(np.eye(3), glob.shape[:-3] + (1, 3, 3)), glob], -3)
    parents = [0] + list(CANONICAL_PARENTS[1:])
    # parent^T @ child, written out: numpy's matmul is slow on many 3x3 matrices
    return (glob[..., parents, :, :, None] * glob[..., :, :, None, :]).sum(axis=-3)


def forward_kinematics(local: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Joints in the body-facing frame relative to the root, (..., 22, 3), from local rotations
    (..., 22, 3, 3) and bone lengths (22,) or per clip (..., 1, 22)."""
    glob = np.empty_like(local)
    pos = np.zeros(local.shape[:-2] + (3,))
    glob[..., 0, :, :] = np.eye(3)
    for j in range(1, N_JOINTS):
        p = CANONICAL_PARENTS[j]
        glob[..., j, :, :] = glob[..., p, :, :] @ local[..., j, :, :]
        offset = REST_DIRECTIONS[j] * np.asarray(lengths)[..., j, None]
        pos[..., j, :] = pos[..., p, :] + (glob[..., j, :, :] @ offset[..., None])[..., 0]
    return pos


# --------------------------------------------------------------------------- features


@dataclass
class Motion:
    """Features of a clip plus what they were made from."""

    data: np.ndarray  # (..., T-1, 263)
    positions: np.ndarray  # (..., T, 22, 3) aligned (retargeted, on the floor, facing +z at t=0)
    heading: np.ndarray  # (..., T) facing yaw of ``positions``, 0 at the first frame
    bone_lengths: np.ndarray  # (22,) or (..., 22) of ``positions``


def motion_features(joints: np.ndarray, *, retarget_body: bool = True,
                    contact_threshold: float = CONTACT_THRESHOLD) -> Motion:
    """HumanML3D features of joints (..., T, 22, 3) sampled at ``FPS`` (see :func:`resample`).

    A leading batch dimension is allowed (clips of equal length)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 3 or joints.shape[-2:] != (N_JOINTS, 3) or joints.shape[-3] < 2:
        raise FeatureError(f"expected joints (..., T>=2, {N_JOINTS}, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise FeatureError("joints contain NaN or infinite values")
    if retarget_body:
        pos = retarget(joints, facing_angle(joints))
        lengths = TARGET_BONE_LENGTHS
    else:
        pos = joints.copy()
        lengths = np.median(np.linalg.norm(bone_vectors(joints), axis=-1), axis=-2)
    pos[..., 1] -= pos[..., 1].min(axis=(-1, -2))[..., None, None]
    # first frame: root at x = z = 0, facing +z
    heading = facing_angle(pos)
    pos[..., [0, 2]] -= pos[..., :1, :1, [0, 2]]
    pos = rotate_y(pos, -heading[..., :1, None])
    heading = heading - heading[..., :1]

    root = pos[..., 0, :]
    d_root = root[..., 1:, :] - root[..., :-1, :]
    lin_vel = rotate_y(d_root, -heading[..., 1:])[..., [0, 2]]
    dyaw = np.diff(heading, axis=-1)
    rot_vel = -np.arctan2(np.sin(dyaw), np.cos(dyaw)) / 2.0
    root_y = root[..., :-1, 1:2]

    rel = pos.copy()
    rel[..., [0, 2]] -= pos[..., :1, [0, 2]]
    body = rotate_y(rel, -heading[..., None])
    ric = body[..., :-1, 1:, :]
    ric = ric.reshape(ric.shape[:-2] + (63,))

    rot = matrix_to_6d(local_rotations(body[..., :-1, :, :])[..., 1:, :, :])
    rot = rot.reshape(rot.shape[:-2] + (126,))

    d_pos = pos[..., 1:, :, :] - pos[..., :-1, :, :]
    vel = rotate_y(d_pos, -heading[..., :-1, None])
    vel = vel.reshape(vel.shape[:-2] + (66,))

    step2 = np.sum(d_pos ** 2, axis=-1)
    feet = (step2[..., list(FOOT_JOINTS_LEFT + FOOT_JOINTS_RIGHT)] < contact_threshold)

    data = np.concatenate([rot_vel[..., None], lin_vel, root_y, ric, rot, vel,
                           feet.astype(np.float64)], axis=-1)
    return Motion(data=data, positions=pos, heading=heading, bone_lengths=lengths)


def features_from_timestamps(t_us: np.ndarray, joints: np.ndarray) -> Motion:
    """Resample joints (T, 22, 3) at their timestamps to ``FPS`` and make the features."""
    _, j = resample(t_us, joints)
    if len(j) < 3:
        raise FeatureError(f"clip of {len(j)} frames at {FPS:g} fps: need at least 3 "
                           f"({2 / FPS:.2f} s)")
    return motion_features(j)


# --------------------------------------------------------------------------- inverse


def recover_root(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(heading (..., T-1), root position (..., T-1, 3)) integrated from the root features.

    The inverse of what is invertible: yaw and x/z start at 0 (the clip's alignment)."""
    rot_vel = data[..., ROOT_ROT_VEL][..., 0]
    heading = np.zeros_like(rot_vel)
    heading[..., 1:] = np.cumsum(-2.0 * rot_vel[..., :-1], axis=-1)
    # the velocity stored at row t-1 is expressed in the facing frame of frame t
    step = np.zeros(data.shape[:-1] + (3,))
    step[..., 1:, 0] = data[..., :-1, ROOT_LIN_VEL.start]
    step[..., 1:, 2] = data[..., :-1, ROOT_LIN_VEL.start + 1]
    world_step = rotate_y(step, heading)
    root = np.cumsum(world_step, axis=-2)
    root[..., 1] = data[..., ROOT_Y.start]
    return heading, root


def recover_from_ric(data: np.ndarray) -> np.ndarray:
    """Joint positions (..., T-1, 22, 3) from root motion + root-relative positions."""
    heading, root = recover_root(data)
    ric = data[..., RIC].reshape(data.shape[:-1] + (21, 3))
    world = rotate_y(ric, heading[..., None])
    world[..., [0, 2]] += root[..., None, [0, 2]]
    return np.concatenate([root[..., None, :], world], axis=-2)


def recover_from_rot(data: np.ndarray, bone_lengths: np.ndarray = TARGET_BONE_LENGTHS
                     ) -> np.ndarray:
    """Joint positions (..., T-1, 22, 3) from root motion + bone rotations + bone lengths."""
    heading, root = recover_root(data)
    local = matrix_from_6d(data[..., ROT6D].reshape(data.shape[:-1] + (21, 6)))
    local = np.concatenate([np.broadcast_to(np.eye(3), local.shape[:-3] + (1, 3, 3)), local], -3)
    body = forward_kinematics(local, bone_lengths)
    world = rotate_y(body, heading[..., None])
    return world + root[..., None, :]


# --------------------------------------------------------------------------- per joint / group


def joint_columns(joint: int) -> np.ndarray:
    """Feature columns that describe one canonical joint: its root-relative position, its
    bone rotation and its velocity (the root: its root motion and velocity; ankles and feet:
    also their contact)."""
    cols = [np.arange(LOCAL_VEL.start + 3 * joint, LOCAL_VEL.start + 3 * joint + 3)]
    if joint == 0:
        cols.append(np.arange(0, 4))
    else:
        cols.append(np.arange(RIC.start + 3 * (joint - 1), RIC.start + 3 * joint))
        cols.append(np.arange(ROT6D.start + 6 * (joint - 1), ROT6D.start + 6 * joint))
    feet = FOOT_JOINTS_LEFT + FOOT_JOINTS_RIGHT
    if joint in feet:
        cols.append(np.array([FOOT_CONTACT.start + feet.index(joint)]))
    return np.concatenate(cols)


JOINT_COLUMNS: dict[str, np.ndarray] = {name: joint_columns(i)
                                        for i, name in enumerate(CANONICAL_JOINTS)}


# --------------------------------------------------------------------------- normalisation


@dataclass
class Normalizer:
    """Per-feature mean and standard deviation of the training data.

    As the reference (``cal_mean_variance``) the deviation is averaged within each group (root
    rotation rate, root velocity, root height, positions, rotations, velocities, contacts), so
    that a joint that barely moves in the training data is not blown up by a tiny deviation.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, data: np.ndarray) -> "Normalizer":
        flat = np.asarray(data, dtype=np.float64).reshape(-1, FEATURE_DIM)
        mean, std = flat.mean(axis=0), flat.std(axis=0)
        for sl in (ROOT_ROT_VEL, ROOT_LIN_VEL, ROOT_Y, RIC, ROT6D, LOCAL_VEL, FOOT_CONTACT):
            std[sl] = max(std[sl].mean(), 1e-6)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def normalize(self, data: np.ndarray) -> np.ndarray:
        return ((data - self.mean) / self.std).astype(np.float32)

    def denormalize(self, data: np.ndarray) -> np.ndarray:
        return data * self.std + self.mean

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str | Path) -> "Normalizer":
        with np.load(path) as z:
            mean, std = z["mean"].astype(np.float32), z["std"].astype(np.float32)
        if mean.shape != (FEATURE_DIM,) or std.shape != (FEATURE_DIM,) or np.any(std <= 0):
            raise FeatureError(f"{path}: not {FEATURE_DIM}-dim statistics with positive std")
        return cls(mean, std)
