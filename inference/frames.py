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

# Bones whose length is checked against the track's median (parent, child): the leg bones the
# analysis measures with. (Depth cameras shrink the hip width whenever the walker is seen from
# the side, so it is no evidence of a tracking error.)
BONES: tuple[tuple[int, int], ...] = (
    (L_HIP, L_KNEE), (R_HIP, R_KNEE), (L_KNEE, L_ANKLE), (R_KNEE, R_ANKLE),
    (L_ANKLE, L_FOOT), (R_ANKLE, R_FOOT),
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
    bone_tolerance: float = 0.25  # relative deviation from the track's median bone length ...
    bone_tolerance_m: float = 0.03  # ... and at least this much (short bones jitter)
    max_gap_ms: float = 150.0
    heading_back_ms: float = 1000.0  # the pelvis path and the body's facing over this long
    heading_max_samples: int = 40  # thinned to at most this many samples (see filters.Window)
    min_stride_axis_std_m: float = 0.08  # feet alternating less than this: no stride axis
    min_stride_axis_elongation: float = 3.0  # variance along vs across the stride axis
    min_path_speed_mps: float = 0.25  # slower than this, the direction comes from the body
    max_path_body_angle_deg: float = 60.0  # a path this far off the body's facing is not walking
    standing_speed_mps: float = 0.15
    standing_foot_range_m: float = 0.12  # feet moving less than this (vs pelvis) over 1 s: standing
    moving_foot_speed_mps: float = 0.2  # a foot this fast relative to the pelvis is moving
    turn_rate_dps: float = 40.0  # heading change over the last second faster than this: turning
    # A direction from the body that reverses from one frame to the next is taken back for up
    # to this long (see hold_heading_sign).
    heading_flip_hold_ms: float = 1000.0


def norm(v: np.ndarray) -> np.ndarray:
    """Euclidean length along the last axis (cheaper than np.linalg.norm on tiny arrays)."""
    return np.sqrt(np.einsum("...c,...c->...", v, v))


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...c,...c->...", a, b)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product along the last axis (np.cross's axis juggling, and np.stack's, cost more
    than the maths on the per-frame arrays of the online path)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    x = a1 * b2 - a2 * b1
    out = np.empty(x.shape + (3,), dtype=x.dtype)
    out[..., 0] = x
    out[..., 1] = a2 * b0 - a0 * b2
    out[..., 2] = a0 * b1 - a1 * b0
    return out


def unit(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis; NaN where the length is ~0 (or NaN)."""
    n = norm(v)[..., None]
    inv = np.empty(n.shape, dtype=n.dtype)  # np.full_like's wrapper costs more than this
    inv.fill(np.nan)
    np.divide(1.0, n, out=inv, where=n > 1e-9)
    return v * inv


def horizontal(v: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """The component of ``v`` perpendicular to ``up``."""
    if up is UP:  # the wire's y-up: drop y (the general form costs three array passes more)
        h = np.array(v, dtype=np.float64, copy=True)
        h[..., 1] = 0.0
        return h
    return v - (v @ up)[..., None] * up


# --------------------------------------------------------------------------- floor / up axis


def estimate_floor(points: np.ndarray, up_hint: np.ndarray = UP) -> tuple[np.ndarray, float, float]:
    """Plane through joint positions recorded while the feet rested on the ground (the ankles:
    a plane parallel to the floor, an ankle height above it).

    Returns (unit normal oriented like ``up_hint``, the points' mean height along ``up_hint``,
    tilt in degrees between the normal and ``up_hint`` - a camera pitched against the floor).
    Needs points spread in two directions (several steps with both feet); raises ValueError
    otherwise.
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
    return n, float(c @ up_hint), tilt


# --------------------------------------------------------------------------- walking direction


def body_forward(joints: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Horizontal unit normal of the hip line per frame (N, 3): for a right-handed y-up skeleton
    the walker faces cross(left_hip - right_hip, up)."""
    return unit(horizontal(cross(joints[..., L_HIP, :] - joints[..., R_HIP, :], up), up))


_BASES: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}


def horizontal_basis(up: np.ndarray = UP) -> tuple[np.ndarray, np.ndarray]:
    """Two orthonormal horizontal axes (e1, e2) with e1 x e2 = up."""
    if up is UP and _UP_KEY in _BASES:  # the online path's case, without building the key
        return _BASES[_UP_KEY]
    key = tuple(float(x) for x in up)
    if key not in _BASES:
        ref = np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        e1 = unit(horizontal(ref, up))
        _BASES[key] = (e1, cross(up, e1))
    return _BASES[key]


_UP_KEY = (0.0, 1.0, 0.0)
horizontal_basis(UP)


def heading_inputs(joints: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Per-frame vectors whose local averages give the heading, (N, 6, 3): pelvis position,
    hip-line normal, left and right toe directions (ankle -> ball of the foot), the left-minus-
    right ankle vector, and that vector's second moments (a*a, a*b, b*b) in the horizontal basis.
    All horizontal."""
    d = horizontal(joints[:, L_ANKLE] - joints[:, R_ANKLE], up)
    e1, e2 = horizontal_basis(up)
    a, b = d @ e1, d @ e2
    out = np.empty((len(joints), 6, 3))
    out[:, 0] = horizontal(joints[:, PELVIS], up)
    out[:, 1] = body_forward(joints, up)
    out[:, 2] = horizontal(joints[:, L_FOOT] - joints[:, L_ANKLE], up)
    out[:, 3] = horizontal(joints[:, R_FOOT] - joints[:, R_ANKLE], up)
    out[:, 4] = d
    out[:, 5, 0], out[:, 5, 1], out[:, 5, 2] = a * a, a * b, b * b
    return out


def heading_weights(conf: np.ndarray, min_conf: float) -> np.ndarray:
    ok = conf >= min_conf
    out = np.empty((len(conf), 6))
    out[:, 0] = ok[:, PELVIS]
    out[:, 1] = ok[:, L_HIP] & ok[:, R_HIP]
    out[:, 2] = ok[:, L_FOOT] & ok[:, L_ANKLE]
    out[:, 3] = ok[:, R_FOOT] & ok[:, R_ANKLE]
    out[:, 4] = out[:, 5] = ok[:, L_ANKLE] & ok[:, R_ANKLE]
    return out


def _stride_axis(mean_d: np.ndarray, moments: np.ndarray, up: np.ndarray, min_std_m: float,
                 min_elongation: float) -> np.ndarray:
    """Principal horizontal axis of the left-minus-right ankle vector (Q, 3), NaN where the feet
    do not clearly alternate along one line: in walking they swing past each other along the
    walking direction, whatever the hip line (poorly tracked from the side) says."""
    e1, e2 = horizontal_basis(up)
    ma, mb = mean_d @ e1, mean_d @ e2
    caa = moments[:, 0] - ma * ma
    cab = moments[:, 1] - ma * mb
    cbb = moments[:, 2] - mb * mb
    half_tr, det = (caa + cbb) / 2, caa * cbb - cab * cab
    disc = np.sqrt(np.maximum(half_tr ** 2 - det, 0.0))
    l1, l2 = half_tr + disc, np.maximum(half_tr - disc, 1e-12)
    # eigenvector of l1: (cab, l1 - caa) or (l1 - cbb, cab), whichever is better conditioned
    tilted, wide = np.abs(cab) > 1e-12, caa >= cbb
    va = np.where(tilted, cab, wide)
    vb = np.where(tilted, l1 - caa, ~wide)
    axis = unit(va[:, None] * e1 + vb[:, None] * e2)
    ok = (l1 >= min_std_m ** 2) & (l1 >= min_elongation * l2)
    axis[~ok] = np.nan
    return axis


_WINDOWS: dict[tuple[float, float, int], Window] = {}


def _heading_window(opts: FrameOptions, ahead_ms: float) -> Window:
    key = (opts.heading_back_ms, ahead_ms, opts.heading_max_samples)
    if key not in _WINDOWS:
        _WINDOWS[key] = Window(opts.heading_back_ms, ahead_ms, 1, opts.heading_max_samples)
    return _WINDOWS[key]


def headings(t_us: np.ndarray, inputs: np.ndarray, weights: np.ndarray, opts: FrameOptions,
             ahead_ms: float, query: np.ndarray | slice | None = None, up: np.ndarray = UP
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walking direction at the query samples, from ``heading_inputs``.

    Over ``[t - heading_back_ms, t + ahead_ms]``:
    * path: the pelvis velocity (local linear fit);
    * body (local means): the axis along which the feet swing past each other, or the hip-line
      normal when they do not; its sign from where the toes point (robust to a mirrored or
      left/right-swapped source), else from the hip-line normal of a right-handed skeleton.

    The path is used when the pelvis moves faster than ``min_path_speed_mps`` roughly the way
    the body faces, otherwise the body (treadmill, a camera that turns to follow the walker).
    Returns (Q, 3) unit directions, (Q,) pelvis path speed (m/s), (Q,) bool "from the body".
    """
    # The path needs a slope (degree 1); the body's facing is a weighted mean (degree 0), which
    # unlike a line's end point does not swing with the noise at the window's edge.
    _, rate, avg = local_poly(t_us, inputs, _heading_window(opts, ahead_ms), weights, query,
                              mean=True)
    avg = avg[:, 1:]
    vel = rate[:, 0]
    hip_normal = unit(avg[:, 0])
    toes = avg[:, 1:3]
    toes = np.where(toes == toes, toes, 0.0).sum(axis=1)  # np.nansum, without its overhead
    axis = _stride_axis(avg[:, 3], avg[:, 4], up, opts.min_stride_axis_std_m,
                        opts.min_stride_axis_elongation)
    # The sign: where the toes point (ankle -> ball of the foot, averaged), or where the
    # hip-line normal points when the feet give no direction. (Comparisons with NaN are False:
    # a missing reference flips nothing.)
    toes_ok = (norm(toes) > 0.03)[:, None]
    sign_ref = np.where(toes_ok, toes, hip_normal)
    np.negative(axis, out=axis, where=(dot(axis, sign_ref) < 0)[:, None])
    flip = toes_ok[:, 0] & (dot(hip_normal, toes) < 0)
    np.negative(hip_normal, out=hip_normal, where=flip[:, None])
    body = np.where(np.isfinite(axis).all(axis=-1)[:, None], axis, hip_normal)
    speed = norm(vel)
    path = unit(vel)
    cos_lim = np.cos(np.radians(opts.max_path_body_angle_deg))
    # Without the toes the body axis's sign is the hip line's, which a left/right label swap
    # reverses: then a path along the axis either way agrees with it.
    along = dot(path, body)
    agree = np.where(toes_ok[:, 0], along, np.abs(along)) >= cos_lim
    no_body = ~np.isfinite(body).all(axis=-1)
    use_path = (speed >= opts.min_path_speed_mps) & (agree | no_body)
    d = np.where(use_path[:, None], path, body)
    return d, np.where(speed == speed, speed, 0.0), ~use_path


@dataclass
class HeadingSign:
    """Running state of :func:`hold_heading_sign`."""

    last: np.ndarray | None = None  # the previous frame's direction
    last_us: int = 0
    flipped_from_us: int | None = None  # start of a run of reversed body directions


def hold_heading_sign(state: HeadingSign, t_us: np.ndarray, d: np.ndarray,
                      from_body: np.ndarray, hold_ms: float) -> np.ndarray:
    """Directions ``d`` (Q, 3) with the body's sign kept continuous: a body direction (from the
    stride axis, whose sign only the toes or the hip line tell) more than 90 deg from the
    previous frame's is reversed back, since nobody turns round between two frames; a reversal
    that lasts ``hold_ms`` is accepted (the earlier sign was the wrong one). A left/right label
    swap flips the hip line, and noisy or unseen feet leave the toes no say, so without this the
    direction, and with it every forward foot position, flipped for a few frames at a time.
    Directions from the pelvis path are taken as they are."""
    out = d.copy()
    hold_us = hold_ms * 1000
    for i, t in enumerate(t_us.tolist()):
        di = out[i]
        if not (di[0] == di[0] and di[2] == di[2]):  # NaN: nothing to keep continuous with
            continue
        last = state.last
        if from_body[i] and last is not None and t - state.last_us <= hold_us \
                and di[0] * last[0] + di[1] * last[1] + di[2] * last[2] < 0:
            if state.flipped_from_us is None:
                state.flipped_from_us = t
            if t - state.flipped_from_us < hold_us:
                out[i] = di = -di
            else:
                state.flipped_from_us = None
        else:
            state.flipped_from_us = None
        state.last, state.last_us = di, t
    return out


def _tricube_moment(n: int) -> float:
    """Integral of u^n (1 - u^3)^3 over [0, 1]."""
    return 1 / (n + 1) - 3 / (n + 4) + 3 / (n + 7) - 1 / (n + 10)


def heading_delay_ms(opts: FrameOptions, ahead_ms: float) -> float:
    """How long before its frame the direction of :func:`headings` is centred, so that a turn
    shows up in the headings this much later than the pelvis makes it.

    The direction is the slope of a weighted line fit over ``[t - heading_back_ms,
    t + ahead_ms]`` (tricube, stretched to each side). On a path whose velocity changes
    steadily the fitted slope is the velocity at (M3 - m M2) / (2 (M2 - m M1)) relative to t,
    with M_n the kernel's moments and m = M1 / M0 its mean time: about a third of the back
    window for the defaults (337 ms), which a walk simulated through a U-turn confirms."""
    b, a = opts.heading_back_ms, ahead_ms
    mom = [((-1) ** n * b ** (n + 1) + a ** (n + 1)) * _tricube_moment(n) for n in range(4)]
    m = mom[1] / mom[0]
    return -(mom[3] - m * mom[2]) / (2 * (mom[2] - m * mom[1]))


def heading_angle(d: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Angle (rad) of horizontal directions about the up axis, for turn detection."""
    e1, e2 = horizontal_basis(up)
    return np.arctan2(d @ e2, d @ e1)


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
    last_move_us: int | None = None  # last frame of it in which the walker moved


def bout_step(state: BoutState, t_us: int, walking: bool, moving: bool | None = None,
              min_pause_ms: float = 1000.0, min_bout_ms: float = 1500.0
              ) -> tuple[int, int] | None:
    """Advance bout detection by one frame; returns a finished bout (start_us, end_us) or None.

    A bout is walking that pauses (standing, turning, no data) for less than ``min_pause_ms``
    at a time; shorter than ``min_bout_ms`` it is not a bout. ``moving`` (default: walking)
    says whether the walker moved in this very frame: the walking state is judged over a
    trailing window and outlasts the last step, so the bout ends at the last movement."""
    moving = walking if moving is None else moving
    done = None
    if walking and state.last_walk_us is not None \
            and t_us - state.last_walk_us > min_pause_ms * 1000:
        # walking again after a stretch without frames: that stretch was a pause too
        done = bout_end(state, min_bout_ms)
        state.start_us = state.last_walk_us = state.last_move_us = None
    if walking:
        if state.start_us is None:
            state.start_us = t_us
            state.last_move_us = t_us
        state.last_walk_us = t_us
        if moving:
            state.last_move_us = t_us
    elif state.start_us is not None and state.last_walk_us is not None \
            and t_us - state.last_walk_us > min_pause_ms * 1000:
        done = bout_end(state, min_bout_ms)
        state.start_us = state.last_walk_us = state.last_move_us = None
    return done


def bout_end(state: BoutState, min_bout_ms: float = 1500.0) -> tuple[int, int] | None:
    """The bout under way (at the end of a stream), if long enough."""
    if state.start_us is not None and state.last_move_us is not None \
            and state.last_move_us - state.start_us >= min_bout_ms * 1000:
        return state.start_us, state.last_move_us
    return None


def bouts(t_us: np.ndarray, walking: np.ndarray, min_pause_ms: float = 1000.0,
          min_bout_ms: float = 1500.0) -> list[tuple[int, int]]:
    """Walking bouts (start_us, end_us) of a whole recording."""
    st, out = BoutState(), []
    for t, w in zip(t_us.tolist(), walking.tolist()):
        b = bout_step(st, t, bool(w), None, min_pause_ms, min_bout_ms)
        if b:
            out.append(b)
    b = bout_end(st, min_bout_ms)
    if b:
        out.append(b)
    return out


# --------------------------------------------------------------------------- quality


_BONE_FROM = np.array([p for p, _ in BONES])
_BONE_TO = np.array([c for _, c in BONES])
REQUIRED_INDEX = np.array(REQUIRED)
# Knee, ankle, foot of the left then the right leg, and the same with the sides exchanged.
_LEGS = np.array([L_KNEE, L_ANKLE, L_FOOT, R_KNEE, R_ANKLE, R_FOOT])
_LEGS_SWAPPED = np.array([R_KNEE, R_ANKLE, R_FOOT, L_KNEE, L_ANKLE, L_FOOT])


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., B) lengths of :data:`BONES`."""
    return norm(joints[..., _BONE_TO, :] - joints[..., _BONE_FROM, :])


def quality_flags(t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray,
                  ref_bones: np.ndarray | None, opts: FrameOptions) -> np.ndarray:
    """Quality bits for frames 1..N-1 of (N, 22, 3) joints (frame 0 is only the predecessor).

    ``ref_bones``: the track's median bone lengths (B,), or None while unknown.
    """
    j, c = joints[1:], conf[1:]
    req = c[:, REQUIRED_INDEX]
    flags = np.where((req <= 0).any(axis=1), Q_MISSING, 0)
    flags |= np.where((req < opts.min_confidence).any(axis=1), Q_LOW_CONF, 0)
    if ref_bones is not None:
        dev = np.abs(bone_lengths(j) - ref_bones)
        tol = np.maximum(opts.bone_tolerance * ref_bones, opts.bone_tolerance_m)
        flags |= np.where((dev > tol).any(axis=1), Q_BONE_LENGTH, 0)
    flags |= np.where(np.diff(t_us) > opts.max_gap_ms * 1000, Q_GAP, 0)
    # Swap: the left and right joints jumped onto each other's previous places.
    p = joints[:-1]
    legs = j[:, _LEGS]
    moved = norm(legs - p[:, _LEGS])  # (N, 6): left leg's joints, then the right's
    crossed = norm(legs - p[:, _LEGS_SWAPPED])  # each to the other side's previous place
    same = (moved[:, :3] + moved[:, 3:]).sum(axis=1)
    crossed_jump = (crossed[:, :3] + crossed[:, 3:]).sum(axis=1)
    jumped = (crossed_jump < 0.5 * same) & (same > 0.3)
    flags |= np.where(jumped, Q_LR_SWAP, 0)
    return flags.astype(np.int32)


def legs_crossed(joints: np.ndarray, fwd: np.ndarray, up: np.ndarray = UP,
                 tolerance_m: float = 0.03) -> np.ndarray:
    """(N,) True where the left knee and ankle sit right of the right ones (beyond the
    tolerance) across the walking direction: labels swapped. The walker's left is
    cross(up, fwd); the hip line is not used because trackers get it wrong from the side."""
    left = cross(up, fwd)
    crossed = np.ones(joints.shape[0], dtype=bool)
    for lj, rj in ((L_KNEE, R_KNEE), (L_ANKLE, R_ANKLE)):
        sep = np.einsum("nc,nc->n", joints[:, lj] - joints[:, rj], left)
        crossed &= sep < -tolerance_m
    return crossed


def flag_names(bits: int) -> list[str]:
    return [name for b, name in QUALITY_NAMES.items() if bits & b]
