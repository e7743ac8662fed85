"""Where the walker is going and whether a frame can be trusted.

* floor and up axis: a plane fitted to the feet while they rest on the ground;
* walking direction: from the pelvis path when the pelvis progresses, otherwise from the body
  (the normal of the hip line, its sign checked by where the toes point) - treadmill walking and
  cameras that turn to follow the walker give no usable path;
* motion state per frame (standing / walking / turning) and walking bouts;
* per-frame quality flags: missing or low-confidence joints, bone lengths that disagree with the
  track's own median, left/right label swaps, gaps in time.

Everything takes canonical joints (streams.skeletons order, metres, y up) and integer-microsecond
timestamps; nothing assumes a frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.filters import Window, local_poly
from streams.skeletons import CJ

UP = np.array([0.0, 1.0, 0.0])  # the wire convention: y up

PELVIS, L_HIP, R_HIP = CJ["pelvis"], CJ["left_hip"], CJ["right_hip"]
L_KNEE, R_KNEE = CJ["left_knee"], CJ["right_knee"]
L_ANKLE, R_ANKLE = CJ["left_ankle"], CJ["right_ankle"]
L_FOOT, R_FOOT = CJ["left_foot"], CJ["right_foot"]

# Joints the gait analysis cannot do without.
REQUIRED = (PELVIS, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE, L_FOOT, R_FOOT)

# Bones whose length is checked against the track's median (parent, child).
BONES: tuple[tuple[int, int], ...] = (
    (L_HIP, L_KNEE), (R_HIP, R_KNEE), (L_KNEE, L_ANKLE), (R_KNEE, R_ANKLE),
    (L_ANKLE, L_FOOT), (R_ANKLE, R_FOOT), (L_HIP, R_HIP),
)

# Per-frame quality bits.
Q_MISSING = 1  # a required joint has confidence 0 (not tracked)
Q_LOW_CONF = 2  # a required joint is below the confidence threshold
Q_BONE_LENGTH = 4  # a bone differs from the track's median by more than the tolerance
Q_LR_SWAP = 8  # left/right labels look swapped (legs crossed or jumped across)
Q_GAP = 16  # the frame follows a gap in time
Q_DIRECTION_FROM_BODY = 32  # no pelvis progression: direction taken from the body
QUALITY_NAMES = {
    Q_MISSING: "missing_joints", Q_LOW_CONF: "low_confidence", Q_BONE_LENGTH: "bone_length",
    Q_LR_SWAP: "left_right_swap", Q_GAP: "time_gap", Q_DIRECTION_FROM_BODY: "direction_from_body",
}

# Motion states.
STANDING, WALKING, TURNING = 1, 2, 3


@dataclass(frozen=True)
class FrameOptions:
    min_confidence: float = 0.5
    bone_tolerance: float = 0.25  # relative deviation from the track's median bone length
    max_gap_ms: float = 150.0
    heading_back_ms: float = 600.0  # the pelvis path over this long gives the direction
    min_path_speed_mps: float = 0.25  # slower than this, the direction comes from the body
    max_path_body_angle_deg: float = 60.0  # a path this far off the body's facing is not walking
    standing_speed_mps: float = 0.15
    standing_foot_range_m: float = 0.12  # feet moving less than this (vs pelvis) over 1 s: standing
    turn_rate_dps: float = 30.0


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1e-9, v / n, np.nan)


def horizontal(v: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    return v - (v @ up)[..., None] * up


# --------------------------------------------------------------------------- floor / up axis


def estimate_floor(points: np.ndarray, up_hint: np.ndarray = UP) -> tuple[np.ndarray, float, float]:
    """Plane through foot positions recorded while the feet rested on the ground.

    Returns (unit normal oriented like ``up_hint``, height of the floor along that normal,
    tilt in degrees between the normal and ``up_hint``). Needs points spread in two directions
    (several steps with both feet); raises ValueError otherwise.
    """
    p = np.asarray(points, dtype=np.float64)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) < 6:
        raise ValueError(f"floor: {len(p)} stance points, need at least 6")
    c = p.mean(axis=0)
    _, s, vt = np.linalg.svd(p - c, full_matrices=False)
    if s[1] < 0.02 * np.sqrt(len(p)):  # all points on one line: the plane is undetermined
        raise ValueError("floor: stance points are collinear (walk of a single foot line?)")
    n = vt[2]
    if n @ up_hint < 0:
        n = -n
    tilt = float(np.degrees(np.arccos(np.clip(n @ up_hint, -1, 1))))
    return n, float(c @ n), tilt


def stance_points(t_us: np.ndarray, feet: np.ndarray, max_speed_mps: float = 0.15) -> np.ndarray:
    """Foot positions (N, F, 3) at the samples where that foot is nearly still: (M, 3)."""
    dt = np.diff(t_us) * 1e-6
    speed = np.linalg.norm(np.diff(feet, axis=0), axis=-1) / dt[:, None]
    still = speed < max_speed_mps
    return feet[1:][still]


# --------------------------------------------------------------------------- walking direction


def body_forward(joints: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Horizontal unit normal of the hip line per frame (N, 3): for a right-handed y-up skeleton
    the walker faces cross(left_hip - right_hip, up)."""
    return unit(horizontal(np.cross(joints[..., L_HIP, :] - joints[..., R_HIP, :], up), up))


def heading_inputs(joints: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """The per-frame vectors whose local average gives the heading: (N, 4, 3) =
    [pelvis position, body forward, left toe direction, right toe direction], horizontal."""
    return np.stack([
        horizontal(joints[:, PELVIS], up),
        body_forward(joints, up),
        horizontal(joints[:, L_FOOT] - joints[:, L_ANKLE], up),
        horizontal(joints[:, R_FOOT] - joints[:, R_ANKLE], up),
    ], axis=1)


def heading_weights(conf: np.ndarray, min_conf: float) -> np.ndarray:
    ok = conf >= min_conf
    return np.stack([ok[:, PELVIS], ok[:, L_HIP] & ok[:, R_HIP], ok[:, L_FOOT] & ok[:, L_ANKLE],
                     ok[:, R_FOOT] & ok[:, R_ANKLE]], axis=1).astype(np.float64)


def headings(t_us: np.ndarray, inputs: np.ndarray, weights: np.ndarray, opts: FrameOptions,
             ahead_ms: float, query: np.ndarray | slice | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walking direction at the query samples.

    A local linear fit over ``[t - heading_back_ms, t + ahead_ms]`` of the ``heading_inputs``
    gives the pelvis velocity (the path) and the averaged body facing. The body facing's sign is
    corrected when the toes point the other way (a mirrored or left/right-swapped source).
    The path is used when the pelvis moves faster than ``min_path_speed_mps`` roughly the way the
    body faces; otherwise the body facing.

    Returns (Q, 3) unit directions, (Q,) pelvis path speed (m/s), (Q,) bool "from the body".
    """
    val, rate = local_poly(t_us, inputs, Window(opts.heading_back_ms, ahead_ms, 1), weights, query)
    vel = rate[:, 0]
    body = unit(val[:, 1])
    toes = np.nansum(val[:, 2:4], axis=1)
    flip = np.einsum("qc,qc->q", np.nan_to_num(toes), np.nan_to_num(body)) < 0
    body[flip] *= -1
    speed = np.linalg.norm(vel, axis=-1)
    path = unit(vel)
    cos_lim = np.cos(np.radians(opts.max_path_body_angle_deg))
    agree = np.einsum("qc,qc->q", np.nan_to_num(path), np.nan_to_num(body)) >= cos_lim
    no_body = ~np.isfinite(body).all(axis=-1)
    use_path = (speed >= opts.min_path_speed_mps) & (agree | no_body)
    d = np.where(use_path[:, None], path, body)
    return d, np.nan_to_num(speed), ~use_path


def heading_angle(d: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Angle (rad) of horizontal directions about the up axis, for turn detection."""
    ref = np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    ref = unit(horizontal(ref, up))
    side = np.cross(up, ref)
    return np.arctan2(d @ side, d @ ref)


# --------------------------------------------------------------------------- motion state, bouts


def motion_state(path_speed: np.ndarray, foot_range_m: np.ndarray, turn_rate_dps: np.ndarray,
                 opts: FrameOptions) -> np.ndarray:
    """Per-frame state: STANDING when neither the pelvis nor the feet (relative to the pelvis)
    move, TURNING when the heading turns faster than ``turn_rate_dps``, otherwise WALKING.
    Walking in place (treadmill) is WALKING: the feet move although the pelvis does not."""
    standing = (path_speed < opts.standing_speed_mps) & (foot_range_m < opts.standing_foot_range_m)
    turning = np.abs(turn_rate_dps) > opts.turn_rate_dps
    return np.where(standing, STANDING, np.where(turning, TURNING, WALKING)).astype(np.int8)


@dataclass
class BoutState:
    """Running state of bout detection (see :func:`bout_step`)."""

    start_us: int | None = None  # start of the bout under way
    last_walk_us: int | None = None  # last walking frame of it


def bout_step(state: BoutState, t_us: int, walking: bool, min_pause_ms: float = 1000.0,
              min_bout_ms: float = 1500.0) -> tuple[int, int] | None:
    """Advance bout detection by one frame; returns a finished bout (start_us, end_us) or None.

    A bout is walking that pauses (standing, turning, no data) for less than ``min_pause_ms``
    at a time; shorter than ``min_bout_ms`` it is not a bout."""
    done = None
    if walking:
        if state.start_us is None:
            state.start_us = t_us
        state.last_walk_us = t_us
    elif state.start_us is not None and state.last_walk_us is not None \
            and t_us - state.last_walk_us > min_pause_ms * 1000:
        if state.last_walk_us - state.start_us >= min_bout_ms * 1000:
            done = (state.start_us, state.last_walk_us)
        state.start_us = state.last_walk_us = None
    return done


def bout_end(state: BoutState, min_bout_ms: float = 1500.0) -> tuple[int, int] | None:
    """The bout under way at the end of a stream, if long enough."""
    if state.start_us is not None and state.last_walk_us is not None \
            and state.last_walk_us - state.start_us >= min_bout_ms * 1000:
        return state.start_us, state.last_walk_us
    return None


def bouts(t_us: np.ndarray, walking: np.ndarray, min_pause_ms: float = 1000.0,
          min_bout_ms: float = 1500.0) -> list[tuple[int, int]]:
    """Walking bouts (start_us, end_us) of a whole recording."""
    st, out = BoutState(), []
    for t, w in zip(t_us.tolist(), walking.tolist()):
        b = bout_step(st, t, bool(w), min_pause_ms, min_bout_ms)
        if b:
            out.append(b)
    b = bout_end(st, min_bout_ms)
    if b:
        out.append(b)
    return out


# --------------------------------------------------------------------------- quality


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., B) lengths of :data:`BONES`."""
    a = np.array([p for p, _ in BONES])
    b = np.array([c for _, c in BONES])
    return np.linalg.norm(joints[..., b, :] - joints[..., a, :], axis=-1)


def quality_flags(t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray,
                  ref_bones: np.ndarray | None, opts: FrameOptions) -> np.ndarray:
    """Quality bits for frames 1..N-1 of (N, 22, 3) joints (frame 0 is only the predecessor).

    ``ref_bones``: the track's median bone lengths (B,), or None while unknown.
    """
    j, c = joints[1:], conf[1:]
    req = c[:, REQUIRED]
    flags = np.where((req <= 0).any(axis=1), Q_MISSING, 0)
    flags |= np.where((req < opts.min_confidence).any(axis=1), Q_LOW_CONF, 0)
    if ref_bones is not None:
        dev = np.abs(bone_lengths(j) / ref_bones - 1.0)
        flags |= np.where((dev > opts.bone_tolerance).any(axis=1), Q_BONE_LENGTH, 0)
    flags |= np.where(np.diff(t_us) > opts.max_gap_ms * 1000, Q_GAP, 0)
    # Swap: the knees sit on the wrong sides of the hip line, or the left and right joints
    # jumped onto each other's previous places.
    hip_axis = j[:, L_HIP] - j[:, R_HIP]
    crossed = np.einsum("nc,nc->n", j[:, L_KNEE] - j[:, R_KNEE], hip_axis) < 0
    p = joints[:-1]
    same = crossed_jump = 0.0
    for lj, rj in ((L_KNEE, R_KNEE), (L_ANKLE, R_ANKLE), (L_FOOT, R_FOOT)):
        same = same + np.linalg.norm(j[:, lj] - p[:, lj], axis=-1) \
            + np.linalg.norm(j[:, rj] - p[:, rj], axis=-1)
        crossed_jump = crossed_jump + np.linalg.norm(j[:, lj] - p[:, rj], axis=-1) \
            + np.linalg.norm(j[:, rj] - p[:, lj], axis=-1)
    jumped = (crossed_jump < 0.5 * same) & (same > 0.3)
    flags |= np.where(crossed | jumped, Q_LR_SWAP, 0)
    return flags.astype(np.int32)


def flag_names(bits: int) -> list[str]:
    return [name for b, name in QUALITY_NAMES.items() if bits & b]
