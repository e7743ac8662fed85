"""A tiny kinematic walker for feature tests: known speed, heading and turn rate."""

from __future__ import annotations

import numpy as np

from inference.models.motion_diffusion.features import (TARGET_BONE_LENGTHS, forward_kinematics,
                                                        rotate_y)
from streams.skeletons import CJ


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1),
                     np.stack([z, s, c], -1)], -2)


def walker(t_s: np.ndarray, *, speed: float = 1.2, heading0: float = 0.3, turn_rate: float = 0.0,
           cadence_hz: float = 0.9, scale: float = 1.0, knee_offset: float = 0.0,
           origin=(0.5, 0.02, -1.0)) -> np.ndarray:
    """(T, 22, 3) joints of a body walking at ``speed`` m/s along its heading (radians about +y
    from +z), turning at ``turn_rate`` rad/s, legs swinging at ``cadence_hz`` strides/s."""
    n = len(t_s)
    ph = 2 * np.pi * cadence_hz * t_s
    local = np.broadcast_to(np.eye(3), (n, 22, 3, 3)).copy()
    for hip, knee, sign in ((CJ["left_hip"], CJ["left_knee"], 1), (CJ["right_hip"], CJ["right_knee"], -1)):
        # rotation of the thigh (bone hip->knee, index knee) about the lateral axis
        local[:, knee] = _rot_x(-0.45 * sign * np.sin(ph) - knee_offset)
        ankle = CJ["left_ankle"] if sign > 0 else CJ["right_ankle"]
        local[:, ankle] = _rot_x(0.6 * np.clip(np.sin(ph * sign + 1.0), 0, None) + 2 * knee_offset)
        arm = CJ["left_elbow"] if sign > 0 else CJ["right_elbow"]
        local[:, arm] = _rot_x(0.3 * sign * np.sin(ph))
    body = forward_kinematics(local, TARGET_BONE_LENGTHS * scale)
    heading = heading0 + turn_rate * t_s
    world = rotate_y(body, heading[:, None])
    # root path: integrate speed along the heading
    dt = np.diff(t_s, prepend=t_s[0])
    step = speed * dt[:, None] * np.stack([np.sin(heading), np.zeros(n), np.cos(heading)], -1)
    root = np.cumsum(step, axis=0) + np.asarray(origin)
    root[:, 1] += scale * (0.9 + 0.02 * np.cos(2 * ph))
    return world + root[:, None, :]
