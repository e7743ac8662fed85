"""Joint angles, forward foot positions and velocities from canonical joint positions.

Angles are sagittal: segments are projected onto the plane spanned by the walking direction and
the up axis, which is how clinical gait reports read flexion/extension. Conventions (degrees):

* hip flexion: thigh (hip -> knee) inclination from the vertical, flexion positive (knee ahead).
  A skeleton has no pelvis segment that could carry a Plug-in-Gait pelvis frame, so this is the
  thigh's angle in the room; Plug-in-Gait's (thigh vs pelvis) differs by the pelvic tilt, a
  near-constant offset in walking.
* knee flexion: thigh relative to shank (knee -> ankle), 0 when straight, flexion positive.
* ankle dorsiflexion: 90 deg minus the angle between the shank (pointing up) and the foot
  (ankle -> ball of the foot); dorsiflexion positive.
* pelvis obliquity: the hip line's rise towards the left; pelvis rotation: the hip line's turn
  about the up axis away from perpendicular to the walking direction (left hip forward positive);
  trunk tilt: forward lean of pelvis -> neck (forward positive).
* arm angle: shoulder -> wrist relative to vertical, forward positive (its range is the arm swing).

Forward positions are along the walking direction relative to the pelvis (Zeni et al. 2008).
"""

from __future__ import annotations

import numpy as np

from inference.frames import UP, cross, dot, norm, unit
from streams.skeletons import CJ

SIDES = ("left", "right")

# Per-frame features the online analyzer keeps, in this order.
FEATURES: tuple[str, ...] = (
    "hip_flexion_left", "hip_flexion_right", "knee_flexion_left", "knee_flexion_right",
    "ankle_dorsiflexion_left", "ankle_dorsiflexion_right",
    "pelvis_obliquity", "pelvis_rotation", "trunk_tilt",
    "arm_angle_left", "arm_angle_right",
    "ankle_fwd_left", "ankle_fwd_right", "foot_fwd_left", "foot_fwd_right",
    "ankle_fwd_vel_left", "ankle_fwd_vel_right", "foot_fwd_vel_left", "foot_fwd_vel_right",
    "ankle_lat_left", "ankle_lat_right", "ankle_height_left", "ankle_height_right",
    "pelvis_speed", "pelvis_fwd_speed", "ankle_speed_left", "ankle_speed_right",
)
F = {name: i for i, name in enumerate(FEATURES)}


# Segments (from joint, to joint) whose sagittal inclination the angles are made of.
_SEG_NAMES = ("thigh_left", "thigh_right", "shank_left", "shank_right", "foot_left",
              "foot_right", "arm_left", "arm_right", "trunk")
_SEG_FROM = np.array([CJ["left_hip"], CJ["right_hip"], CJ["left_knee"], CJ["right_knee"],
                      CJ["left_ankle"], CJ["right_ankle"], CJ["left_shoulder"],
                      CJ["right_shoulder"], CJ["neck"]])
_SEG_TO = np.array([CJ["left_knee"], CJ["right_knee"], CJ["left_ankle"], CJ["right_ankle"],
                    CJ["left_foot"], CJ["right_foot"], CJ["left_wrist"], CJ["right_wrist"],
                    CJ["pelvis"]])
_S = {name: i for i, name in enumerate(_SEG_NAMES)}
# Joints whose position / velocity relative to the pelvis the features use: L/R ankle, L/R foot.
_REL = np.array([CJ["left_ankle"], CJ["right_ankle"], CJ["left_foot"], CJ["right_foot"]])


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + 180.0) % 360.0 - 180.0


def _angles(joints: np.ndarray, fwd: np.ndarray, lat: np.ndarray, up: np.ndarray
            ) -> tuple[np.ndarray, ...]:
    """The sagittal angles (deg) of :func:`sagittal_angles`, left and right side by side:
    hip, knee, ankle dorsiflexion, arm (each (N, 2)), trunk tilt, pelvis obliquity and
    rotation (each (N,)). ``lat``: the walker's left, cross(up, fwd)."""
    seg = joints[:, _SEG_TO] - joints[:, _SEG_FROM]  # (N, S, 3)
    # inclination from straight down, forward positive (the trunk points down: pelvis - neck)
    inc = np.degrees(np.arctan2(np.einsum("nsc,nc->ns", seg, fwd), -(seg @ up)))
    thigh, shank = inc[:, 0:2], inc[:, 2:4]  # _SEG_NAMES order
    # a flat foot pointing forward is inclined 90 deg from straight down
    dorsi = _wrap(inc[:, 4:6] - shank) - 90.0
    hips = joints[:, CJ["left_hip"]] - joints[:, CJ["right_hip"]]
    hw = norm(hips)
    rise = np.empty(hw.shape)
    rise.fill(np.nan)
    np.divide(hips @ up, hw, out=rise, where=hw > 0)
    obliquity = np.degrees(np.arcsin(np.minimum(np.maximum(rise, -1.0), 1.0)))
    rotation = np.degrees(np.arctan2(dot(hips, fwd), dot(hips, lat)))
    return thigh, thigh - shank, dorsi, inc[:, 6:8], -inc[:, 8], obliquity, rotation


def sagittal_angles(joints: np.ndarray, fwd: np.ndarray, up: np.ndarray = UP
                    ) -> dict[str, np.ndarray]:
    """Joint angles (deg) per frame of (N, 22, 3) joints with (N, 3) walking directions."""
    hip, knee, dorsi, arm, trunk, obliquity, rotation = _angles(joints, fwd, cross(up, fwd), up)
    out: dict[str, np.ndarray] = {}
    for k, side in enumerate(SIDES):
        out[f"hip_flexion_{side}"] = hip[:, k]
        out[f"knee_flexion_{side}"] = knee[:, k]
        out[f"ankle_dorsiflexion_{side}"] = dorsi[:, k]
        out[f"arm_angle_{side}"] = arm[:, k]
    out["trunk_tilt"] = trunk  # forward lean positive
    out["pelvis_obliquity"] = obliquity
    out["pelvis_rotation"] = rotation
    return out


def _pairs(*names: str) -> list[int]:
    return [F[f"{n}_{side}"] for n in names for side in SIDES]


# Feature columns written in blocks by features() (left, right next to each other).
_C_ANGLES = _pairs("hip_flexion", "knee_flexion", "ankle_dorsiflexion", "arm_angle")
_C_FWD = _pairs("ankle_fwd", "foot_fwd")
_C_FWD_VEL = _pairs("ankle_fwd_vel", "foot_fwd_vel")
_C_LAT, _C_HEIGHT, _C_SPEED = _pairs("ankle_lat"), _pairs("ankle_height"), _pairs("ankle_speed")


def features(joints: np.ndarray, velocities: np.ndarray, fwd: np.ndarray,
             floor_y: float = 0.0, up: np.ndarray = UP) -> np.ndarray:
    """The :data:`FEATURES` of each frame: (N, len(FEATURES)).

    ``joints``/``velocities``: (N, 22, 3) smoothed positions and their time derivatives (m/s);
    ``fwd``: (N, 3) horizontal walking directions; ``floor_y``: the level ankle heights are
    measured from, along ``up`` (the resting ankles' level: heights are then foot lift).
    """
    # Called once per group of a few frames on the online path: left and right are computed
    # together and written in blocks, as numpy's per-call cost outweighs the arithmetic.
    n = joints.shape[0]
    out = np.empty((n, len(FEATURES)))
    left = cross(up, fwd)  # the walker's left
    hip, knee, dorsi, arm, trunk, obliquity, rotation = _angles(joints, fwd, left, up)
    out[:, _C_ANGLES] = np.concatenate([hip, knee, dorsi, arm], axis=1)
    out[:, F["trunk_tilt"]] = trunk
    out[:, F["pelvis_obliquity"]] = obliquity
    out[:, F["pelvis_rotation"]] = rotation
    lat = unit(left)
    pelvis = joints[:, CJ["pelvis"]]
    pv = velocities[:, CJ["pelvis"]]
    rel = joints[:, _REL] - pelvis[:, None]  # (N, 4, 3): L/R ankle, L/R foot
    out[:, _C_FWD] = np.einsum("njc,nc->nj", rel, fwd)
    out[:, _C_FWD_VEL] = np.einsum("njc,nc->nj", velocities[:, _REL] - pv[:, None], fwd)
    out[:, _C_LAT] = np.einsum("njc,nc->nj", rel[:, :2], lat)
    out[:, _C_HEIGHT] = joints[:, _REL[:2]] @ up - floor_y
    ank_v = velocities[:, _REL[:2]]
    out[:, _C_SPEED] = norm(ank_v - (ank_v @ up)[..., None] * up)
    pv_h = pv - (pv @ up)[:, None] * up
    out[:, F["pelvis_speed"]] = norm(pv_h)
    out[:, F["pelvis_fwd_speed"]] = dot(pv_h, fwd)
    return out
