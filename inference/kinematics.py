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


def sagittal_angles(joints: np.ndarray, fwd: np.ndarray, up: np.ndarray = UP
                    ) -> dict[str, np.ndarray]:
    """Joint angles (deg) per frame of (N, 22, 3) joints with (N, 3) walking directions."""
    seg = joints[:, _SEG_TO] - joints[:, _SEG_FROM]  # (N, S, 3)
    # inclination from straight down, forward positive (the trunk points down: pelvis - neck)
    inc = np.degrees(np.arctan2(np.einsum("nsc,nc->ns", seg, fwd), -(seg @ up)))
    out: dict[str, np.ndarray] = {}
    for side in SIDES:
        thigh, shank = inc[:, _S[f"thigh_{side}"]], inc[:, _S[f"shank_{side}"]]
        out[f"hip_flexion_{side}"] = thigh
        out[f"knee_flexion_{side}"] = thigh - shank
        # a flat foot pointing forward is inclined 90 deg from straight down
        out[f"ankle_dorsiflexion_{side}"] = _wrap(inc[:, _S[f"foot_{side}"]] - shank) - 90.0
        out[f"arm_angle_{side}"] = inc[:, _S[f"arm_{side}"]]
    out["trunk_tilt"] = -inc[:, _S["trunk"]]  # forward lean positive
    lat = cross(up, fwd)  # the walker's left
    hips = joints[:, CJ["left_hip"]] - joints[:, CJ["right_hip"]]
    hw = norm(hips)
    rise = np.divide(hips @ up, hw, out=np.full_like(hw, np.nan), where=hw > 0)
    out["pelvis_obliquity"] = np.degrees(np.arcsin(np.clip(rise, -1, 1)))
    out["pelvis_rotation"] = np.degrees(np.arctan2(dot(hips, fwd), dot(hips, lat)))
    return out


def features(joints: np.ndarray, velocities: np.ndarray, fwd: np.ndarray,
             floor_y: float = 0.0, up: np.ndarray = UP) -> np.ndarray:
    """The :data:`FEATURES` of each frame: (N, len(FEATURES)).

    ``joints``/``velocities``: (N, 22, 3) smoothed positions and their time derivatives (m/s);
    ``fwd``: (N, 3) horizontal walking directions; ``floor_y``: the level ankle heights are
    measured from, along ``up`` (the resting ankles' level: heights are then foot lift).
    """
    n = joints.shape[0]
    out = np.full((n, len(FEATURES)), np.nan)
    for name, v in sagittal_angles(joints, fwd, up).items():
        out[:, F[name]] = v
    lat = unit(cross(up, fwd))
    pelvis = joints[:, CJ["pelvis"]]
    pv = velocities[:, CJ["pelvis"]]
    rel = joints[:, _REL] - pelvis[:, None]  # (N, 4, 3): L/R ankle, L/R foot
    rel_fwd = np.einsum("njc,nc->nj", rel, fwd)
    rel_vel = np.einsum("njc,nc->nj", velocities[:, _REL] - pv[:, None], fwd)
    ank_v = velocities[:, _REL[:2]]
    ank_v_h = ank_v - (ank_v @ up)[..., None] * up
    for k, side in enumerate(SIDES):
        out[:, F[f"ankle_fwd_{side}"]] = rel_fwd[:, k]
        out[:, F[f"foot_fwd_{side}"]] = rel_fwd[:, 2 + k]
        out[:, F[f"ankle_fwd_vel_{side}"]] = rel_vel[:, k]
        out[:, F[f"foot_fwd_vel_{side}"]] = rel_vel[:, 2 + k]
        out[:, F[f"ankle_lat_{side}"]] = dot(rel[:, k], lat)
        out[:, F[f"ankle_height_{side}"]] = joints[:, _REL[k]] @ up - floor_y
        out[:, F[f"ankle_speed_{side}"]] = norm(ank_v_h[:, k])
    pv_h = pv - (pv @ up)[:, None] * up
    out[:, F["pelvis_speed"]] = norm(pv_h)
    out[:, F["pelvis_fwd_speed"]] = dot(pv_h, fwd)
    return out
