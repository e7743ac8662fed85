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

from inference.frames import UP, cross, norm, unit
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


def _sagittal_angle(v: np.ndarray, fwd: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Angle (deg) of vectors from straight down, in the sagittal plane; forward positive."""
    return np.degrees(np.arctan2(np.einsum("...c,...c->...", v, fwd), -(v @ up)))


def sagittal_angles(joints: np.ndarray, fwd: np.ndarray, up: np.ndarray = UP
                    ) -> dict[str, np.ndarray]:
    """Joint angles (deg) per frame of (N, 22, 3) joints with (N, 3) walking directions."""
    out: dict[str, np.ndarray] = {}
    pelvis, neck = joints[:, CJ["pelvis"]], joints[:, CJ["neck"]]
    for side in SIDES:
        hip, knee = joints[:, CJ[f"{side}_hip"]], joints[:, CJ[f"{side}_knee"]]
        ankle, foot = joints[:, CJ[f"{side}_ankle"]], joints[:, CJ[f"{side}_foot"]]
        thigh = _sagittal_angle(knee - hip, fwd, up)
        shank = _sagittal_angle(ankle - knee, fwd, up)
        foot_a = _sagittal_angle(foot - ankle, fwd, up)  # ~90 for a flat foot pointing forward
        out[f"hip_flexion_{side}"] = thigh
        out[f"knee_flexion_{side}"] = thigh - shank
        out[f"ankle_dorsiflexion_{side}"] = _wrap(foot_a - shank) - 90.0
        wrist, shoulder = joints[:, CJ[f"{side}_wrist"]], joints[:, CJ[f"{side}_shoulder"]]
        out[f"arm_angle_{side}"] = _sagittal_angle(wrist - shoulder, fwd, up)
    lat = cross(up, fwd)  # the walker's left
    hips = joints[:, CJ["left_hip"]] - joints[:, CJ["right_hip"]]
    hw = norm(hips)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["pelvis_obliquity"] = np.degrees(np.arcsin(np.clip((hips @ up) / hw, -1, 1)))
    out["pelvis_rotation"] = np.degrees(np.arctan2(np.einsum("nc,nc->n", hips, fwd),
                                                   np.einsum("nc,nc->n", hips, lat)))
    out["trunk_tilt"] = _sagittal_angle(neck - pelvis, fwd, -up)  # forward lean positive
    return out


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + 180.0) % 360.0 - 180.0


def features(joints: np.ndarray, velocities: np.ndarray, fwd: np.ndarray,
             floor_y: float = 0.0, up: np.ndarray = UP) -> np.ndarray:
    """The :data:`FEATURES` of each frame: (N, len(FEATURES)).

    ``joints``/``velocities``: (N, 22, 3) smoothed positions and their time derivatives (m/s);
    ``fwd``: (N, 3) horizontal walking directions; ``floor_y``: floor height along ``up``.
    """
    n = joints.shape[0]
    out = np.full((n, len(FEATURES)), np.nan)
    for name, v in sagittal_angles(joints, fwd, up).items():
        out[:, F[name]] = v
    lat = unit(cross(up, fwd))
    pelvis = joints[:, CJ["pelvis"]]
    pv = velocities[:, CJ["pelvis"]]
    for side in SIDES:
        ankle = joints[:, CJ[f"{side}_ankle"]] - pelvis
        out[:, F[f"ankle_fwd_{side}"]] = np.einsum("nc,nc->n", ankle, fwd)
        out[:, F[f"foot_fwd_{side}"]] = np.einsum(
            "nc,nc->n", joints[:, CJ[f"{side}_foot"]] - pelvis, fwd)
        for joint in ("ankle", "foot"):
            rel_v = velocities[:, CJ[f"{side}_{joint}"]] - pv
            out[:, F[f"{joint}_fwd_vel_{side}"]] = np.einsum("nc,nc->n", rel_v, fwd)
        out[:, F[f"ankle_lat_{side}"]] = np.einsum("nc,nc->n", ankle, lat)
        out[:, F[f"ankle_height_{side}"]] = joints[:, CJ[f"{side}_ankle"]] @ up - floor_y
        av = velocities[:, CJ[f"{side}_ankle"]]
        out[:, F[f"ankle_speed_{side}"]] = norm(av - (av @ up)[:, None] * up)
    pv_h = pv - (pv @ up)[:, None] * up
    out[:, F["pelvis_speed"]] = norm(pv_h)
    out[:, F["pelvis_fwd_speed"]] = np.einsum("nc,nc->n", pv_h, fwd)
    return out
