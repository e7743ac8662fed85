"""Joint angles, forward foot positions and velocities from canonical joint positions.

Angles are sagittal: segments are projected onto the plane spanned by the walking direction and
the up axis, which is how clinical gait reports read flexion/extension. Conventions (degrees):

* hip flexion: thigh (hip -> knee) inclination from the vertical, flexion positive (knee ahead).
  A skeleton has no pelvis segment that could carry a Plug-in-Gait pelvis frame, so this is the
  thigh's angle in the room; Plug-in-Gait's (thigh vs pelvis) differs by the pelvic tilt, a
  near-constant offset in walking.
* knee flexion: thigh relative to shank (knee -> ankle), 0 when straight, flexion positive.
* ankle dorsiflexion: the angle between the shank (knee -> ankle) and the foot's long axis,
  minus 90 deg: 0 with the foot square to the shank, dorsiflexion positive. The foot's axis is
  the labs' one, heel -> toe (:func:`foot_axis`), wherever the heel is seen; a source without a
  heel (22 joints, Kinect, a heel unseen in a frame) leaves only ankle -> ball of the foot,
  which points down towards the floor when the sole is level and so reads plantarflexed: by
  6-29 deg per trial side on lab markers (README "Joint angles"; that was the "equinus" of the
  plot of an OpenSim trial). The per-stride variables (``gait_variables``) zero it on foot flat.
* pelvis obliquity: the hip line's rise towards the left; pelvis rotation: the hip line's turn
  about the up axis away from perpendicular to the walking direction (left hip forward positive);
  trunk tilt: forward lean of pelvis -> neck (forward positive).
* arm angle: shoulder -> wrist relative to vertical, forward positive (its range is the arm swing).

Forward positions are along the walking direction relative to the pelvis (Zeni et al. 2008).
"""

from __future__ import annotations

import numpy as np

from inference.analysis.motion import UP, cross, dot, norm, unit
from streams.skeletons import CANONICAL_FEET_JOINTS, CJ

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
    # the heels (optional foot points, streams.skeletons.FOOT_POINTS): forward of the pelvis,
    # and vertical velocity (m/s, up positive); NaN where the source has no heel
    "heel_fwd_left", "heel_fwd_right", "heel_vy_left", "heel_vy_right",
)
F = {name: i for i, name in enumerate(FEATURES)}


# Segments (from joint, to joint) whose sagittal inclination the angles are made of: thighs,
# shanks, feet, arms (left, right each) and the trunk (neck -> pelvis, pointing down).
_SEG_FROM = [CJ["left_hip"], CJ["right_hip"], CJ["left_knee"], CJ["right_knee"],
             CJ["left_ankle"], CJ["right_ankle"], CJ["left_shoulder"], CJ["right_shoulder"],
             CJ["neck"]]
_SEG_TO = [CJ["left_knee"], CJ["right_knee"], CJ["left_ankle"], CJ["right_ankle"],
           CJ["left_foot"], CJ["right_foot"], CJ["left_wrist"], CJ["right_wrist"], CJ["pelvis"]]
# Joints whose position / velocity relative to the pelvis the features use: L/R ankle, L/R foot.
_REL = np.array([CJ["left_ankle"], CJ["right_ankle"], CJ["left_foot"], CJ["right_foot"]])
# Every vector features() projects, gathered at once, in the order of the angle columns 0-10
# of FEATURES so that one arctan2 fills them: thighs, shanks (later knee flexion), feet (later
# ankle dorsiflexion), the hip line (right -> left hip; twice: obliquity, which replaces its
# column, and rotation), the trunk, arms; then pelvis -> _REL (11-14).
_VEC_FROM = np.array(_SEG_FROM[:6] + [CJ["right_hip"]] * 2 + _SEG_FROM[8:] + _SEG_FROM[6:8]
                     + [CJ["pelvis"]] * 4)
_VEC_TO = np.array(_SEG_TO[:6] + [CJ["left_hip"]] * 2 + _SEG_TO[8:] + _SEG_TO[6:8]
                   + _REL.tolist())
_N_ANGLES, _HIPS, _OBLIQUITY = 11, 7, 6
# Velocities used: _REL and the pelvis.
_VEL = np.array(_REL.tolist() + [CJ["pelvis"]])


# The foot points (canonical26) the foot axis is made of: heel -> toe, per side.
HEEL_TOE = {side: (CANONICAL_FEET_JOINTS.index(f"{side}_heel"),
                   CANONICAL_FEET_JOINTS.index(f"{side}_toe")) for side in SIDES}


def foot_axis(joints: np.ndarray, side: str, heel_seen: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(vector (N, 3) along the foot's long axis, (N,) whether it is heel -> toe) of (N, 22|26,
    3) joints. Heel -> toe, as the labs define the foot (Plug-in-Gait's static calibration
    levels it with the sole; OpenSim's calcaneus frame): its angle to the shank does not depend
    on how high above the floor the ankle centre sits. Where the heel is not seen
    (``heel_seen`` (N,) False, the joints have no foot points, or a point is not finite):
    ankle -> ball of the foot (the canonical foot joint)."""
    ankle_to_ball = joints[:, CJ[f"{side}_foot"]] - joints[:, CJ[f"{side}_ankle"]]
    if joints.shape[1] <= max(HEEL_TOE[side]):
        return ankle_to_ball, np.zeros(len(joints), dtype=bool)
    heel, toe = HEEL_TOE[side]
    v = joints[:, toe] - joints[:, heel]
    ok = np.isfinite(v).all(axis=1) & (np.einsum("nk,nk->n", v, v) > 0)
    if heel_seen is not None:
        ok &= np.asarray(heel_seen, dtype=bool)
    return np.where(ok[:, None], v, ankle_to_ball), ok


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + 180.0) % 360.0 - 180.0


def sagittal_angles(joints: np.ndarray, fwd: np.ndarray, up: np.ndarray = UP
                    ) -> dict[str, np.ndarray]:
    """Joint angles (deg) per frame of (N, 22 or 26, 3) joints with (N, 3) walking
    directions (with the foot points of canonical26 the foot axis is heel -> toe)."""
    f = features(joints, np.zeros_like(joints, dtype=np.float64), fwd, 0.0, up)
    names = [f"{a}_{side}" for a in ("hip_flexion", "knee_flexion", "ankle_dorsiflexion",
                                      "arm_angle") for side in SIDES]
    return {n: f[:, F[n]] for n in names + ["trunk_tilt", "pelvis_obliquity",
                                             "pelvis_rotation"]}


def _pairs(*names: str) -> slice:
    cols = [F[f"{n}_{side}"] for n in names for side in SIDES]
    assert cols == list(range(cols[0], cols[-1] + 1)), "features() writes these as one block"
    return slice(cols[0], cols[-1] + 1)


# Feature columns written in blocks by features() (left, right next to each other); the angles
# are columns 0-10, in the order of _VEC_FROM / _VEC_TO.
assert [F[f"{a}_{side}"] for a in ("hip_flexion", "knee_flexion", "ankle_dorsiflexion")
        for side in SIDES] + [F["pelvis_obliquity"], F["pelvis_rotation"], F["trunk_tilt"],
                              F["arm_angle_left"], F["arm_angle_right"]] == list(range(11))
_C_FWD = _pairs("ankle_fwd", "foot_fwd")
_C_FWD_VEL = _pairs("ankle_fwd_vel", "foot_fwd_vel")
_C_LAT, _C_HEIGHT, _C_SPEED = _pairs("ankle_lat"), _pairs("ankle_height"), _pairs("ankle_speed")
_C_HEEL_FWD, _C_HEEL_VY = _pairs("heel_fwd"), _pairs("heel_vy")
_HEELS = np.array([CANONICAL_FEET_JOINTS.index("left_heel"),
                   CANONICAL_FEET_JOINTS.index("right_heel")])


def features(joints: np.ndarray, velocities: np.ndarray, fwd: np.ndarray,
             floor_y: float = 0.0, up: np.ndarray = UP,
             heel_seen: np.ndarray | None = None) -> np.ndarray:
    """The :data:`FEATURES` of each frame: (N, len(FEATURES)).

    ``joints``/``velocities``: (N, 22, 3) smoothed positions and their time derivatives (m/s),
    or (N, 26, 3) with the foot points of canonical26 (the heel features NaN without them);
    ``fwd``: (N, 3) horizontal walking directions; ``floor_y``: the level ankle heights are
    measured from, along ``up`` (the resting ankles' level: heights are then foot lift);
    ``heel_seen``: (N, 2) left/right heels seen well enough to carry the foot axis
    (:func:`foot_axis`; default: wherever the foot points are finite).
    """
    # Called once per group of a few frames on the online path, where numpy's per-call cost
    # outweighs the arithmetic: every vector is projected onto the walking direction, the
    # walker's left and its unit vector in one call, every angle is one arctan2, and columns
    # are written in blocks. (Each number is the same product, sum or function of the same
    # operands as computed one feature at a time.)
    n = joints.shape[0]
    out = np.empty((n, len(FEATURES)))
    left = cross(up, fwd)  # the walker's left
    lat = unit(left)
    vec = joints[:, _VEC_TO] - joints[:, _VEC_FROM]  # (N, 15, 3)
    proj = np.einsum("nsc,nkc->nsk", vec, np.concatenate([fwd, left, lat], axis=1)
                     .reshape(n, 3, 3))  # (N, 15, 3): . fwd, . left, . lat
    rise = vec[:, :_N_ANGLES] @ up
    # Inclinations from straight down, forward positive (the trunk points down: pelvis - neck),
    # and the hip line's turn away from perpendicular to the walking direction.
    x = np.negative(rise)
    x[:, _HIPS] = proj[:, _HIPS, 1]
    ang = out[:, :_N_ANGLES]
    np.degrees(np.arctan2(proj[:, :_N_ANGLES, 0], x), out=ang)
    thigh, shank = ang[:, 0:2], ang[:, 2:4]
    if joints.shape[1] > _HEELS.max():  # heel -> toe where the heel is seen (foot_axis)
        for k, side in enumerate(SIDES):
            v, ok = foot_axis(joints, side, None if heel_seen is None else heel_seen[:, k])
            if ok.any():
                ang[ok, 4 + k] = np.degrees(np.arctan2(np.einsum("nk,nk->n", v[ok], fwd[ok]),
                                                       -(v[ok] @ up)))
    # a foot square to the shank is inclined 90 deg from it
    ang[:, 4:6] = _wrap(ang[:, 4:6] - shank) - 90.0
    np.subtract(thigh, shank, out=ang[:, 2:4])  # knee flexion
    np.negative(ang[:, 8], out=ang[:, 8])  # trunk tilt: forward lean positive
    hw = norm(vec[:, _HIPS])
    sin_ob = np.empty(n)
    sin_ob.fill(np.nan)
    np.divide(rise[:, _HIPS], hw, out=sin_ob, where=hw > 0)
    np.degrees(np.arcsin(np.minimum(np.maximum(sin_ob, -1.0), 1.0)), out=ang[:, _OBLIQUITY])
    out[:, _C_FWD] = proj[:, _N_ANGLES:, 0]
    out[:, _C_LAT] = proj[:, _N_ANGLES:_N_ANGLES + 2, 2]
    v = velocities[:, _VEL]  # _REL, pelvis
    out[:, _C_FWD_VEL] = np.einsum("njc,nc->nj", v[:, :4] - v[:, 4:], fwd)
    out[:, _C_HEIGHT] = joints[:, _REL[:2]] @ up - floor_y
    v_h = v - (v @ up)[..., None] * up
    speed = norm(v_h)
    out[:, _C_SPEED] = speed[:, :2]
    out[:, F["pelvis_speed"]] = speed[:, 4]
    out[:, F["pelvis_fwd_speed"]] = dot(v_h[:, 4], fwd)
    if joints.shape[1] > _HEELS.max():
        out[:, _C_HEEL_FWD] = np.einsum("njc,nc->nj",
                                        joints[:, _HEELS] - joints[:, CJ["pelvis"], None], fwd)
        out[:, _C_HEEL_VY] = velocities[:, _HEELS] @ up
    else:
        out[:, _C_HEEL_FWD.start:_C_HEEL_VY.stop] = np.nan
    return out
