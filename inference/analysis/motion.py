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

import math
from dataclasses import dataclass

import numpy as np

from inference.analysis.filters import Window, local_poly
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


_NEXT, _AFTER = np.array([1, 2, 0]), np.array([2, 0, 1])
_UP_NEXT, _UP_AFTER = UP[_NEXT], UP[_AFTER]


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product along the last axis (np.cross's axis juggling costs more than the maths on
    the per-frame arrays of the online path): (a1 b2 - a2 b1, a2 b0 - a0 b2, a0 b1 - a1 b0)."""
    if a is UP:  # the online path's cases: the constant's components gathered once
        return _UP_NEXT * b[..., _AFTER] - _UP_AFTER * b[..., _NEXT]
    if b is UP:
        return a[..., _NEXT] * _UP_AFTER - a[..., _AFTER] * _UP_NEXT
    return a[..., _NEXT] * b[..., _AFTER] - a[..., _AFTER] * b[..., _NEXT]


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
_UP_BASIS = np.stack(horizontal_basis(UP), axis=1)  # (3, 2): e1, e2


# heading_inputs' difference vectors: the hip line (left - right hip), the toe directions
# (ankle -> ball of the foot, left and right) and the left-minus-right ankle vector.
_HEAD_TO = np.array([L_HIP, L_FOOT, R_FOOT, L_ANKLE])
_HEAD_FROM = np.array([R_HIP, L_ANKLE, R_ANKLE, R_ANKLE])
_MOMENT_A, _MOMENT_B = np.array([0, 0, 1]), np.array([0, 1, 1])
# heading_weights: each input is seen when both of these joints are.
_SEEN_A = np.array([PELVIS, L_HIP, L_FOOT, R_FOOT, L_ANKLE, L_ANKLE])
_SEEN_B = np.array([PELVIS, R_HIP, L_ANKLE, R_ANKLE, R_ANKLE, R_ANKLE])


def heading_inputs(joints: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Per-frame vectors whose local averages give the heading, (N, 6, 3): pelvis position,
    hip-line normal (for a right-handed y-up skeleton the walker faces cross(left_hip -
    right_hip, up)), left and right toe directions (ankle -> ball of the foot), the left-minus-
    right ankle vector, and that vector's second moments (a*a, a*b, b*b) in the horizontal basis.
    All horizontal."""
    out = np.empty((len(joints), 6, 3))
    np.subtract(joints[:, _HEAD_TO], joints[:, _HEAD_FROM], out=out[:, 1:5])
    out[:, 0] = joints[:, PELVIS]
    facing = cross(out[:, 1], up)
    d = out[:, 4]
    if up is UP:  # horizontal(), in place
        facing[:, 1] = 0.0
        out[:, :5, 1] = 0.0
        # d's components along e1 and e2 in one product: the two others are +-0 (y is +0),
        # which leave the one that counts as it is, in any order
        ab = d @ _UP_BASIS
    else:
        facing = horizontal(facing, up)
        out[:, :5] = horizontal(out[:, :5], up)
        e1, e2 = horizontal_basis(up)
        ab = np.empty((len(d), 2))
        ab[:, 0], ab[:, 1] = d @ e1, d @ e2
    out[:, 1] = unit(facing)
    np.multiply(ab[:, _MOMENT_A], ab[:, _MOMENT_B], out=out[:, 5])  # a*a, a*b, b*b
    return out


def heading_weights(conf: np.ndarray, min_conf: float) -> np.ndarray:
    ok = conf >= min_conf
    return (ok[:, _SEEN_A] & ok[:, _SEEN_B]).astype(np.float64)


def _stride_axis(mean_d: np.ndarray, moments: np.ndarray, up: np.ndarray, min_std_m: float,
                 min_elongation: float) -> tuple[list[list[float]], list[bool]]:
    """Principal horizontal axis of the left-minus-right ankle vector, not yet of unit length
    (Q lists of 3), and per row whether the feet clearly alternate along one line (where not,
    there is no axis): in walking they swing past each other along the walking direction,
    whatever the hip line (poorly tracked from the side) says.

    A 2 x 2 eigenproblem per frame: as Python floats, since numpy's per-call cost on a few rows
    is many times the arithmetic (each operation is the IEEE one numpy would do)."""
    e1, e2 = horizontal_basis(up)
    x1, y1, z1 = e1.tolist()
    x2, y2, z2 = e2.tolist()
    min_var = min_std_m ** 2
    axes, oks = [], []
    for ma, mb, (m0, m1, m2) in zip((mean_d @ e1).tolist(), (mean_d @ e2).tolist(),
                                    moments.tolist()):
        caa = m0 - ma * ma
        cab = m1 - ma * mb
        cbb = m2 - mb * mb
        half_tr, det = (caa + cbb) / 2, caa * cbb - cab * cab
        r = half_tr * half_tr - det
        disc = math.sqrt(r) if r >= 0.0 else (r if r != r else 0.0)  # NaN stays NaN
        l1, l2 = half_tr + disc, half_tr - disc
        if not (l2 >= 1e-12 or l2 != l2):
            l2 = 1e-12
        # eigenvector of l1: (cab, l1 - caa) or (l1 - cbb, cab), whichever is better conditioned
        wide = caa >= cbb
        if abs(cab) > 1e-12:
            va, vb = cab, l1 - caa
        else:
            va, vb = (1.0, 0.0) if wide else (0.0, 1.0)
        axes.append([va * x1 + vb * x2, va * y1 + vb * y2, va * z1 + vb * z2])
        oks.append(l1 >= min_var and l1 >= min_elongation * l2)
    return axes, oks


_WINDOWS: dict[tuple[float, float, int], Window] = {}
_PELVIS_PATH = slice(0, 1)  # of heading_inputs: the one group whose slope is used
_COS_LIMITS: dict[float, float] = {}


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
                              mean=True, fit=_PELVIS_PATH)
    nq = len(avg)
    # The vectors, in one array so that their lengths and mutual dot products each take one
    # call: stride axis, hip-line normal, pelvis velocity, toes (ankle -> ball of the foot,
    # both feet's summed where seen).
    vec = np.empty((nq, 4, 3))
    axes, axis_ok = _stride_axis(avg[:, 4], avg[:, 5], up, opts.min_stride_axis_std_m,
                                 opts.min_stride_axis_elongation)
    vec[:, 0] = axes
    vec[:, 1] = avg[:, 1]
    vec[:, 2] = rate[:, 0]
    toes = avg[:, 2:4]
    toes = np.where(toes == toes, toes, 0.0)
    np.add(toes[:, 0], toes[:, 1], out=vec[:, 3])  # np.nansum, without its overhead
    length = norm(vec)  # (Q, 4)
    inv = np.empty((nq, 4))  # 1 / length for the three directions (NaN when ~0); toes as they are
    inv.fill(np.nan)
    np.divide(1.0, length, out=inv, where=length > 1e-9)
    inv[:, 3] = 1.0
    vec *= inv[:, :, None]
    if not all(axis_ok):
        vec[[i for i, ok in enumerate(axis_ok) if not ok], 0] = np.nan
    dots = np.einsum("nic,njc->nij", vec, vec).tolist()
    cos_lim = _COS_LIMITS.get(opts.max_path_body_angle_deg)
    if cos_lim is None:
        cos_lim = _COS_LIMITS[opts.max_path_body_angle_deg] = \
            float(np.cos(np.radians(opts.max_path_body_angle_deg)))
    # The choice per frame, on Python floats (numpy's per-call cost on a few rows is many times
    # the arithmetic): which vector (0 axis, 1 hip-line normal, 2 path) and whether reversed.
    pick, reverse, from_body, speed = [], [], [], []
    for dot_i, (_, _, v, toes_len), (axis, hip) in zip(dots, length.tolist(),
                                                       vec[:, :2].tolist()):
        axis_seen = _finite3(axis)
        # The sign: where the toes point, or where the hip-line normal points when the feet
        # give no direction. (Comparisons with NaN are False: a missing reference flips
        # nothing.)
        toes_ok = toes_len > 0.03
        if axis_seen:
            flip = (dot_i[0][3] if toes_ok else dot_i[0][1]) < 0
            along = dot_i[2][0]  # path . body
        else:
            flip = toes_ok and dot_i[1][3] < 0
            along = dot_i[2][1]
        if flip:
            along = -along
        # Without the toes the body axis's sign is the hip line's, which a left/right label swap
        # reverses: then a path along the axis either way agrees with it.
        agree = (along if toes_ok else abs(along)) >= cos_lim
        no_body = not (axis_seen or _finite3(hip))
        use_path = v >= opts.min_path_speed_mps and (agree or no_body)
        pick.append(2 if use_path else (0 if axis_seen else 1))
        reverse.append(flip and not use_path)
        from_body.append(not use_path)
        speed.append(v if v == v else 0.0)
    d = vec[np.arange(nq), np.array(pick, dtype=np.intp)]
    if any(reverse):
        np.negative(d, out=d, where=np.array(reverse)[:, None])
    return d, np.array(speed, dtype=np.float64), np.array(from_body, dtype=bool)


def _finite3(v: list[float]) -> bool:
    x, y, z = v
    return x - x == 0.0 and y - y == 0.0 and z - z == 0.0  # False for NaN and infinities


@dataclass
class HeadingSign:
    """Running state of :func:`hold_heading_sign`."""

    last: tuple[float, float, float] | None = None  # the previous frame's direction
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
    flipped = []
    for i, (t, (x, y, z), body) in enumerate(zip(t_us.tolist(), d.tolist(),
                                                  np.asarray(from_body).tolist())):
        if not (x == x and z == z):  # NaN: nothing to keep continuous with
            continue
        last = state.last
        if body and last is not None and t - state.last_us <= hold_us \
                and x * last[0] + y * last[1] + z * last[2] < 0:
            if state.flipped_from_us is None:
                state.flipped_from_us = t
            if t - state.flipped_from_us < hold_us:
                x, y, z = -x, -y, -z
                flipped.append(i)
            else:
                state.flipped_from_us = None
        else:
            state.flipped_from_us = None
        state.last, state.last_us = (x, y, z), t
    if flipped:
        out[flipped] = -d[flipped]
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
    return quality_details(t_us, joints, conf, ref_bones, opts)[0]


# quality_details: the legs' joints and, side by side, where each one was a frame before
# (moved) and where the other side's one was (crossed).
_LEGS_NOW = np.concatenate([_LEGS, _LEGS])
_LEGS_BEFORE = np.concatenate([_LEGS, _LEGS_SWAPPED])
_BITS = np.array([Q_MISSING, Q_LOW_CONF, Q_BONE_LENGTH, Q_GAP, Q_LR_SWAP])
_LEFT_KNEE_ANKLE, _RIGHT_KNEE_ANKLE = np.array([L_KNEE, L_ANKLE]), np.array([R_KNEE, R_ANKLE])


_QUALITY_PAIRS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _quality_pairs(n: int, nj: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``joints.reshape(-1, 3)`` (N = n + 1 frames of nj joints) whose differences
    quality_details measures: per frame 1..n its bones (child - parent), then its legs'
    joints against the previous frame's (_LEGS_NOW - _LEGS_BEFORE)."""
    pairs = _QUALITY_PAIRS.get((n, nj))
    if pairs is None:
        now = np.arange(1, n + 1)[:, None] * nj
        pairs = (np.concatenate([now + _BONE_TO, now + _LEGS_NOW], axis=1),
                 np.concatenate([now + _BONE_FROM, now - nj + _LEGS_BEFORE], axis=1))
        if n <= 64:  # the online path's groups of frames; a whole recording is not kept
            _QUALITY_PAIRS[(n, nj)] = pairs
    return pairs


def quality_details(t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray,
                    ref_bones: np.ndarray | None, opts: FrameOptions
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`quality_flags`, with what it measured on the way: the frames' bone lengths
    (N-1, B) and their lowest confidence of a required joint (N-1,)."""
    n, nj = len(joints) - 1, joints.shape[1]
    low = np.fmin.reduce(conf[1:, REQUIRED_INDEX], axis=1)
    # The bones of each frame and its legs' joints against the frame before (where they were,
    # and where the other side's were), as one gather over all frames' joints: lengths
    # (N-1, B + 12).
    ends = _quality_pairs(n, nj)
    flat = joints.reshape(-1, 3)
    dist = norm(flat[ends[0]] - flat[ends[1]])
    bones = dist[:, :len(BONES)]
    bits = np.empty((n, len(_BITS)), dtype=bool)  # one column per bit of _BITS
    np.less_equal(low, 0, out=bits[:, 0])
    np.less(low, opts.min_confidence, out=bits[:, 1])
    if ref_bones is not None:
        tol = np.maximum(opts.bone_tolerance * ref_bones, opts.bone_tolerance_m)
        (np.abs(bones - ref_bones) > tol).any(axis=1, out=bits[:, 2])
    else:
        bits[:, 2] = False
    np.greater(t_us[1:] - t_us[:-1], opts.max_gap_ms * 1000, out=bits[:, 3])
    # Swap: the left and right joints jumped onto each other's previous places. Distances
    # (frame, moved | crossed, left | right leg, knee | ankle | foot).
    legs = dist[:, len(BONES):].reshape(-1, 2, 2, 3)
    jump = (legs[:, :, 0] + legs[:, :, 1]).sum(axis=2)  # both legs: moved, crossed
    same = jump[:, 0]
    np.logical_and(jump[:, 1] < 0.5 * same, same > 0.3, out=bits[:, 4])
    return (bits @ _BITS).astype(np.int32), bones, low


def legs_crossed(joints: np.ndarray, fwd: np.ndarray, up: np.ndarray = UP,
                 tolerance_m: float = 0.03) -> np.ndarray:
    """(N,) True where the left knee and ankle sit right of the right ones (beyond the
    tolerance) across the walking direction: labels swapped. The walker's left is
    cross(up, fwd); the hip line is not used because trackers get it wrong from the side."""
    sep = np.einsum("njc,nc->nj", joints[:, _LEFT_KNEE_ANKLE] - joints[:, _RIGHT_KNEE_ANKLE],
                    cross(up, fwd))
    return (sep < -tolerance_m).all(axis=1)

