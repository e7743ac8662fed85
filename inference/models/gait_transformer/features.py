"""What the gait transformer sees and predicts, as pure numpy (shared by training and runtime).

A skeleton stream (timestamps in µs, canonical 22 joints, y up, metres, any frame rate) becomes
a stream of per-frame feature vectors at the model rate:

1. ``Resampler``: linear interpolation onto a fixed-rate grid (``MODEL_RATE_HZ``) anchored at the
   first timestamp; grid frames inside an input gap longer than ``MAX_GAP_S`` are invalid.
2. ``FeatureStream``: per grid frame, joints relative to the pelvis, rotated into the heading
   frame (x = subject's left, y = up, z = forward; heading = causal exponential average of the
   hip and shoulder lines) and divided by the subject's height; the pelvis velocity in that
   frame (heights/s) and the joint confidences.

Both are causal and incremental, so the live path computes each frame's features exactly once
and the offline reference gets bit-identical features from the same code.

Targets (training) are made with the same heading frame from clean joints (``kinematics``) and
from event times (``phase_targets``): the phase of an event runs linearly from 0 at one
occurrence to 2π at the next, and is encoded as (cos, sin).
"""

from __future__ import annotations

import math

import numpy as np

from streams.skeletons import CJ, CANONICAL_JOINTS

MODEL_RATE_HZ = 30.0
MAX_GAP_S = 0.25  # longer input gaps are not bridged by interpolation
HEADING_TAU_S = 0.4  # time constant of the heading average
HEIGHT_FRAMES = 30  # valid grid frames used to estimate the subject's height
MAX_PHASE_INTERVAL_S = 2.5  # longer gaps between two same events: phase unknown (standing, gaps)

J = len(CANONICAL_JOINTS)
FEATURE_JOINTS = tuple(i for i in range(J) if i != CJ["pelvis"])
_FEATURE_IDX = np.array(FEATURE_JOINTS)
# pelvis is joint 0: the others are a slice (cheaper than gathering them)
assert FEATURE_JOINTS == tuple(range(1, J))
_FEATURE_SLICE = slice(1, J)
# Bounds of each feature: joints +-1.5 heights, pelvis velocity +-5 heights/s, confidence 0..1
_FEATURE_LO = np.array([-1.5] * (3 * len(FEATURE_JOINTS)) + [-5.0] * 3 + [0.0] * J)
_FEATURE_HI = np.array([1.5] * (3 * len(FEATURE_JOINTS)) + [5.0] * 3 + [1.0] * J)
_PELVIS = CJ["pelvis"]
N_FEATURES = 3 * len(FEATURE_JOINTS) + 3 + J  # joints, pelvis velocity, confidences

EVENTS: tuple[tuple[str, str], ...] = (
    ("left", "foot_strike"), ("left", "foot_off"), ("right", "foot_strike"), ("right", "foot_off"),
)

OUTPUT_NAMES: tuple[str, ...] = (
    "hip_flexion_left", "hip_flexion_right", "knee_flexion_left", "knee_flexion_right",
    "foot_forward_left", "foot_forward_right",
    "pelvis_vel_lateral", "pelvis_vel_up", "pelvis_vel_forward",
    "foot_vel_lateral_left", "foot_vel_up_left", "foot_vel_forward_left",
    "foot_vel_lateral_right", "foot_vel_up_right", "foot_vel_forward_right",
) + tuple(f"phase_{c}_{side}_{kind}" for side, kind in EVENTS for c in ("cos", "sin"))
OUT = {name: i for i, name in enumerate(OUTPUT_NAMES)}
N_OUTPUTS = len(OUTPUT_NAMES)
N_KINEMATIC = OUT["phase_cos_left_foot_strike"]
PHASE_SLICE = slice(N_KINEMATIC, N_OUTPUTS)

# Typical magnitude of each channel, so the training loss weighs them alike: degrees for angles,
# body heights for positions, body heights per second for velocities, 1 for phase components.
OUTPUT_SCALE: tuple[float, ...] = (30.0,) * 4 + (0.2,) * 2 + (0.5,) * 9 + (1.0,) * 8
# Channels the model predicts in body heights and returns in metres.
OUTPUT_TIMES_HEIGHT: tuple[float, ...] = (0.0,) * 4 + (1.0,) * 11 + (0.0,) * 8


_LR_PAIRS = ((CJ["left_hip"], CJ["right_hip"]), (CJ["left_shoulder"], CJ["right_shoulder"]))
_LR_A = np.array([a for a, _ in _LR_PAIRS])
_LR_B = np.array([b for _, b in _LR_PAIRS])
_LR_JOINTS = np.array([_LR_PAIRS[0][0], _LR_PAIRS[0][1], _LR_PAIRS[1][0], _LR_PAIRS[1][1]])


def _horizontal_left(joints: np.ndarray, conf: np.ndarray) -> np.ndarray | None:
    """Subject's left direction in the horizontal plane from the hip and shoulder lines."""
    # scalar arithmetic: this runs per frame per track, and numpy on 3-vectors is slower
    ax = az = 0.0
    for a, b in _LR_PAIRS:
        w = min(float(conf[a]), float(conf[b]))
        dx = float(joints[a, 0] - joints[b, 0])
        dz = float(joints[a, 2] - joints[b, 2])
        n = math.hypot(dx, dz)
        if w > 0 and n > 1e-6:
            ax += w * dx / n
            az += w * dz / n
    n = math.hypot(ax, az)
    return np.array([ax / n, 0.0, az / n]) if n > 1e-6 else None


def heading_axes(left: np.ndarray) -> np.ndarray:
    """Rows: left, up, forward (forward = left × up = (-left_z, 0, left_x), right-handed)."""
    return np.array([[left[0], left[1], left[2]], [0.0, 1.0, 0.0], [-left[2], 0.0, left[0]]])


# Fractions of stature (SMPL-like proportions; calibrated on the synthetic walker, see the
# model card): leg = hip-knee-ankle length, chain = leg + pelvis-spine-neck-head length.
LEG_OVER_HEIGHT = 0.49
CHAIN_OVER_HEIGHT = 0.82


def estimate_height(joints: np.ndarray, conf: np.ndarray) -> float:
    """Stature (m) from segment lengths, median over frames (N, 22, 3).

    Uses the leg plus trunk-to-head chain where the trunk is tracked, the legs alone otherwise
    (lower-body marker sets). Only a normaliser: training uses the same estimate, so its bias
    cancels.
    """
    def seg(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        d = np.linalg.norm(joints[:, CJ[a]] - joints[:, CJ[b]], axis=1)
        return d, np.minimum(conf[:, CJ[a]], conf[:, CJ[b]]) > 0

    legs = []
    for side in ("left", "right"):
        (d1, c1), (d2, c2) = seg(f"{side}_hip", f"{side}_knee"), seg(f"{side}_knee",
                                                                       f"{side}_ankle")
        legs.append(np.where(c1 & c2, d1 + d2, np.nan))
    with np.errstate(all="ignore"):
        leg = np.nanmean(np.stack(legs), axis=0)
    trunk = np.zeros(len(joints))
    ok = np.ones(len(joints), bool)
    for a, b in (("pelvis", "spine1"), ("spine1", "spine2"), ("spine2", "spine3"),
                 ("spine3", "neck"), ("neck", "head")):
        d, c = seg(a, b)
        trunk += d
        ok &= c
    chain = (leg + trunk)[ok & np.isfinite(leg)]
    if len(chain) >= max(1, len(joints) // 3):
        return float(np.median(chain) / CHAIN_OVER_HEIGHT)
    leg = leg[np.isfinite(leg)]
    if len(leg) == 0:
        raise ValueError("cannot estimate height: no frame has hip, knee and ankle tracked")
    return float(np.median(leg) / LEG_OVER_HEIGHT)


def height_usable(conf: np.ndarray) -> bool:
    """Whether a frame can serve the height estimate: one leg fully tracked."""
    return any(min(conf[CJ[f"{s}_hip"]], conf[CJ[f"{s}_knee"]], conf[CJ[f"{s}_ankle"]]) > 0
               for s in ("left", "right"))


class Resampler:
    """Incremental linear resampling of (t_us, joints, conf) onto the model-rate grid.

    ``push`` returns the grid frames that became known: (grid_index, joints, conf, valid).
    Joints that are NaN keep their last finite position with confidence 0; a frame without a
    finite pelvis is treated as missing (it opens a gap).
    """

    def __init__(self, rate_hz: float = MODEL_RATE_HZ, max_gap_s: float = MAX_GAP_S):
        self.dt_us = 1e6 / rate_hz
        self.max_gap_us = max_gap_s * 1e6
        self.t0: int | None = None
        self.next_k = 0
        self.prev: tuple[int, np.ndarray, np.ndarray] | None = None
        self.last_finite = np.zeros((J, 3), np.float64)

    def grid_time_us(self, k: float | np.ndarray) -> float | np.ndarray:
        assert self.t0 is not None
        if isinstance(k, int):  # the per-frame case: plain float arithmetic, same value
            return self.t0 + k * self.dt_us
        return self.t0 + np.asarray(k, dtype=np.float64) * self.dt_us

    def push(self, t_us: int, joints: np.ndarray, conf: np.ndarray
             ) -> list[tuple[int, np.ndarray, np.ndarray, bool]]:
        joints = np.array(joints, np.float64)  # a copy: kept as the previous frame
        conf = np.array(conf, np.float64)
        if not np.all(np.isfinite(joints[CJ["pelvis"]])):
            return []
        bad = ~np.isfinite(joints).all(axis=1)
        if bad.any():
            conf[bad] = 0.0
            joints = np.where(bad[:, None], self.last_finite, joints)
        self.last_finite = joints
        if self.t0 is None:
            self.t0 = int(t_us)
        if self.prev is None:
            self.prev = (int(t_us), joints, conf)
            self.next_k = 1
            return [(0, joints, conf, True)]
        tp, jp, cp = self.prev
        if t_us <= tp:
            raise ValueError(f"timestamps must increase: {t_us} after {tp}")
        gap = t_us - tp > self.max_gap_us
        out = []
        while self.grid_time_us(self.next_k) <= t_us:
            tk = float(self.grid_time_us(self.next_k))
            if gap:  # not bridged: invalid grid frames, except one landing on this sample
                out.append((self.next_k, joints, conf, True) if tk == t_us
                           else (self.next_k, jp, np.zeros(J), False))
            else:
                w = (tk - tp) / (t_us - tp)
                out.append((self.next_k, jp + w * (joints - jp), cp + w * (conf - cp), True))
            self.next_k += 1
        self.prev = (int(t_us), joints, conf)
        return out


    def grid_count(self, t_us: int) -> int:
        """How many grid frames exist up to ``t_us`` (grid k is known once a sample reaches
        it), with the same float arithmetic as ``push``. Sets the origin on the first call."""
        if self.t0 is None:
            self.t0 = int(t_us)
        k = int((t_us - self.t0) // self.dt_us)
        while self.grid_time_us(k + 1) <= t_us:
            k += 1
        while k >= 0 and self.grid_time_us(k) > t_us:
            k -= 1
        return k + 1

    def push_block(self, t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``push`` over n samples at once: (grid indices (m,), joints (m, J, 3), conf (m, J),
        valid (m,)) of the grid frames that became known, equal to what n calls of ``push``
        return. The timestamps are checked first, so a bad block changes nothing."""
        t_us = np.asarray(t_us, np.int64)
        joints = np.asarray(joints, np.float64)
        conf = np.asarray(conf, np.float64)
        none = (np.zeros(0, np.int64), np.zeros((0, J, 3)), np.zeros((0, J)), np.zeros(0, bool))
        # The live block is almost always all finite: one check then, and no masking.
        all_finite = bool(np.isfinite(joints).all())
        if all_finite:
            t, jk, ck = t_us, joints, conf
        else:
            kept = np.isfinite(joints[:, _PELVIS]).all(axis=1)
            if not kept.any():
                return none
            t, jk, ck = t_us[kept], joints[kept], conf[kept].copy()
        if self.prev is not None and t[0] <= self.prev[0]:
            raise ValueError(f"timestamps must increase: {t[0]} after {self.prev[0]}")
        if len(t) > 1 and (t[1:] <= t[:-1]).any():
            i = int(np.flatnonzero(t[1:] <= t[:-1])[0])
            raise ValueError(f"timestamps must increase: {t[i + 1]} after {t[i]}")
        # a joint that is not finite keeps its last finite position, with confidence 0
        finite = None if all_finite else np.isfinite(jk).all(axis=2)
        if finite is not None and not finite.all():
            m = len(jk)
            last = np.maximum.accumulate(np.where(finite, np.arange(m)[:, None], -1), axis=0)
            filled = jk[np.maximum(last, 0), np.arange(J)[None, :]]
            jk = np.where((last >= 0)[..., None], filled, self.last_finite[None])
            ck[~finite] = 0.0
        self.last_finite = jk[-1].copy()  # jk may be the caller's array
        if self.t0 is None:
            self.t0 = int(t[0])
        ks, js, cs, vs = [], [], [], []
        if self.prev is None:  # the first sample is grid frame 0
            ks.append(np.zeros(1, np.int64))
            js.append(jk[:1])
            cs.append(ck[:1])
            vs.append(np.ones(1, bool))
            self.next_k = 1
            self.prev = (int(t[0]), jk[0].copy(), ck[0].copy())
            t, jk, ck = t[1:], jk[1:], ck[1:]
        if len(t):
            # the grid frames up to the last sample, each between the first sample at or after
            # it (b) and the one before (a; the previous block's last sample is index 0)
            k = np.arange(self.next_k, self.grid_count(int(t[-1])))
            if len(k):
                T = np.concatenate([[self.prev[0]], t])
                tk = self.t0 + k * self.dt_us
                b = np.searchsorted(T, tk)
                a = b - 1
                ta, tb = T[a], T[b]
                span = tb - ta
                w = (tk - ta) / span
                JJ = np.concatenate([self.prev[1][None], jk])
                CC = np.concatenate([self.prev[2][None], ck])
                ja, jb, ca, cb = JJ[a], JJ[b], CC[a], CC[b]
                jg = ja + w[:, None, None] * (jb - ja)
                cg = ca + w[:, None] * (cb - ca)
                gap = span > self.max_gap_us
                if gap.any():  # not bridged: invalid grid frames, except one landing on a sample
                    on = gap & (tk == tb)
                    off = gap & ~on
                    jg[on], cg[on] = jb[on], cb[on]
                    jg[off], cg[off] = ja[off], 0.0
                    vg = ~off
                else:
                    vg = np.ones(len(k), bool)
                ks.append(k)
                js.append(jg)
                cs.append(cg)
                vs.append(vg)
                self.next_k += len(k)
            self.prev = (int(t[-1]), jk[-1].copy(), ck[-1].copy())
        if len(ks) == 1:
            return ks[0], js[0], cs[0], vs[0]
        if not ks:
            return none
        return (np.concatenate(ks), np.concatenate(js), np.concatenate(cs), np.concatenate(vs))


class FeatureStream:
    """Causal per-frame features at the model rate for one subject of known height."""

    def __init__(self, height_m: float, rate_hz: float = MODEL_RATE_HZ,
                 heading_tau_s: float = HEADING_TAU_S):
        self.height = float(height_m)
        self.dt = 1.0 / rate_hz
        self.alpha = 1.0 - np.exp(-self.dt / heading_tau_s)
        self.left: np.ndarray | None = None
        self.prev_pelvis: np.ndarray | None = None
        # heading_axes.T of the frames of the last push_block that got a heading (m, 3, 3)
        self.last_axes = np.zeros((0, 3, 3))

    def push(self, joints: np.ndarray, conf: np.ndarray, valid: bool
             ) -> tuple[np.ndarray, np.ndarray | None]:
        """Feature vector (N_FEATURES,) float32 and the heading axes used (None if invalid)."""
        f = np.zeros(N_FEATURES, np.float32)
        if not valid:
            self.prev_pelvis = None
            return f, None
        left = _horizontal_left(joints, conf)
        if left is not None:
            if self.left is None:
                self.left = left
            else:  # horizontal unit vectors (y = 0): the average in scalars
                a = self.alpha
                hx = (1.0 - a) * self.left[0] + a * left[0]
                hz = (1.0 - a) * self.left[2] + a * left[2]
                n = math.hypot(hx, hz)
                self.left = np.array([hx / n, 0.0, hz / n]) if n > 1e-6 else left
        if self.left is None:  # no heading yet: nothing to express the frame in
            return f, None
        R = heading_axes(self.left)
        pelvis = joints[_PELVIS]
        # minimum/maximum rather than np.clip: the same values, a fraction of the call cost
        rel = (joints[_FEATURE_IDX] - pelvis) @ (R.T / self.height)
        rel[conf[_FEATURE_IDX] <= 0] = 0.0
        n = 3 * len(FEATURE_JOINTS)
        f[:n] = np.minimum(np.maximum(rel, -1.5), 1.5).ravel()
        if self.prev_pelvis is not None:
            v = R @ (pelvis - self.prev_pelvis) / self.dt / self.height
            f[n:n + 3] = np.minimum(np.maximum(v, -5.0), 5.0)
        self.prev_pelvis = pelvis
        f[n + 3:] = np.minimum(np.maximum(conf, 0.0), 1.0)
        return f, R


    def push_block(self, joints: np.ndarray, conf: np.ndarray, valid: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """``push`` over n frames at once (the live tracker's path): features (n, N_FEATURES)
        float32 and whether each frame got a heading (n,). Equal to n calls of ``push`` up to
        float rounding (a test holds it to that).

        Only what is recursive runs frame by frame, in Python scalars (numpy calls on 2- and
        3-vectors would cost more): the heading average, and which earlier frame's pelvis each
        frame's velocity differences against. The rest is whole-block array maths."""
        joints = np.asarray(joints, np.float64)
        conf = np.asarray(conf, np.float64)
        n = len(joints)
        if n == 0:
            return np.zeros((0, N_FEATURES), np.float32), np.zeros(0, bool)
        lines = joints[:, _LR_JOINTS][..., ::2].tolist()  # (n, 4, [x, z])
        wts = np.minimum(conf[:, _LR_A], conf[:, _LR_B]).tolist()  # (n, 2)
        ok_l = [False] * n
        # Per frame with a heading: heading_axes transposed (x @ it gives left, up, forward),
        # and the frame whose pelvis its velocity differences against: an earlier one of this
        # block, -1 the one kept from the previous block, itself when there is none.
        rot: list[tuple[float, ...]] = []
        prev_of: list[int] = []
        a, b = self.alpha, 1.0 - self.alpha
        hypot = math.hypot
        have = self.left is not None
        hx, hz = (float(self.left[0]), float(self.left[2])) if have else (0.0, 0.0)
        prev = -1 if self.prev_pelvis is not None else None
        for i, good in enumerate(np.asarray(valid, bool).tolist()):
            if not good:
                prev = None
                continue
            # the left direction of the hip and shoulder lines (``_horizontal_left``)
            (xa, za), (xb, zb), (xc, zc), (xd, zd) = lines[i]
            wh, ws = wts[i]
            ax = az = 0.0
            dx, dz = xa - xb, za - zb
            nrm = hypot(dx, dz)
            if wh > 0 and nrm > 1e-6:
                ax += wh * dx / nrm
                az += wh * dz / nrm
            dx, dz = xc - xd, zc - zd
            nrm = hypot(dx, dz)
            if ws > 0 and nrm > 1e-6:
                ax += ws * dx / nrm
                az += ws * dz / nrm
            nrm = hypot(ax, az)
            if nrm > 1e-6:  # this frame shows a left direction: into the average
                lx, lz = ax / nrm, az / nrm
                if not have:
                    hx, hz, have = lx, lz, True
                else:
                    mx, mz = b * hx + a * lx, b * hz + a * lz
                    h = hypot(mx, mz)
                    hx, hz = (mx / h, mz / h) if h > 1e-6 else (lx, lz)
            if not have:
                continue
            ok_l[i] = True
            rot.append((hx, 0.0, -hz, 0.0, 1.0, 0.0, hz, 0.0, hx))
            prev_of.append(i if prev is None else prev)
            prev = i
        if have:
            self.left = np.array([hx, 0.0, hz])
        kept = self.prev_pelvis
        if prev is None:
            self.prev_pelvis = None
        elif prev >= 0:
            self.prev_pelvis = joints[prev, _PELVIS].copy()
        ok = np.array(ok_l)
        if not rot:
            self.last_axes = np.zeros((0, 3, 3))
            return np.zeros((n, N_FEATURES), np.float32), ok
        every = len(rot) == n  # the usual block: no selection
        j, c = (joints, conf) if every else (joints[ok], conf[ok])
        m = len(j)
        # One batched matmul rotates the joints relative to the pelvis (rows 1..21) and the
        # pelvis displacement since the previous frame (row 0, where the pelvis itself would
        # be 0) into the heading frame, in heights.
        rel = j - j[:, :1]
        pel = np.concatenate([joints[:, _PELVIS], [kept if kept is not None else np.zeros(3)]])
        rel[:, 0] = j[:, _PELVIS] - pel[prev_of]
        axes = np.array(rot).reshape(m, 3, 3)
        # kept for the cycle measures (column 0: the subject's left, 2: forward)
        self.last_axes = axes
        out = rel @ (axes / self.height)
        out[:, 1:] *= c[:, _FEATURE_SLICE, None] > 0  # untracked joints are 0
        k = 3 * len(FEATURE_JOINTS)
        full = np.empty((m, N_FEATURES))
        full[:, :k] = out[:, 1:].reshape(m, k)
        full[:, k:k + 3] = out[:, 0] / self.dt
        full[:, k + 3:] = c
        block = np.empty((m, N_FEATURES), np.float32)
        np.minimum(np.maximum(full, _FEATURE_LO), _FEATURE_HI, out=block)
        if every:
            return block, ok
        F = np.zeros((n, N_FEATURES), np.float32)
        F[ok] = block
        return F, ok


def stream_features(t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray,
                    height_m: float | None = None, rate_hz: float = MODEL_RATE_HZ
                    ) -> dict[str, np.ndarray | float]:
    """A whole recording through ``Resampler`` + ``FeatureStream`` (the same code the live
    tracker runs frame by frame). Returns grid times (µs), features (N, F), valid (N,), heading
    axes (N, 3, 3; NaN where unknown), the resampled joints/conf and the height used."""
    rs = Resampler(rate_hz)
    grid: list[tuple[int, np.ndarray, np.ndarray, bool]] = []
    for t, j, c in zip(t_us, joints, conf):
        grid.extend(rs.push(int(t), j, c))
    if not grid:
        raise ValueError("no usable frame (every pelvis is missing)")
    gj = np.stack([g[1] for g in grid])
    gc = np.stack([g[2] for g in grid])
    gv = np.array([g[3] for g in grid])
    if height_m is None:
        usable = [i for i in range(len(grid)) if gv[i] and height_usable(gc[i])][:HEIGHT_FRAMES]
        if not usable:
            raise ValueError("cannot estimate height: no frame has hip, knee and ankle tracked")
        height_m = estimate_height(gj[usable], gc[usable])
    fs = FeatureStream(height_m, rate_hz)
    feats = np.zeros((len(grid), N_FEATURES), np.float32)
    axes = np.full((len(grid), 3, 3), np.nan)
    for i in range(len(grid)):
        feats[i], R = fs.push(gj[i], gc[i], bool(gv[i]))
        if R is not None:
            axes[i] = R
    valid = gv & np.isfinite(axes[:, 0, 0])
    return {"t_us": rs.grid_time_us(np.arange(len(grid))), "x": feats,
            "valid": valid.astype(np.float32), "axes": axes, "joints": gj, "conf": gc,
            "height": float(height_m)}


def kinematics(t_s: np.ndarray, joints: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Kinematic output channels (N, N_KINEMATIC) from joints (N, 22, 3) in metres, in the
    heading frame ``axes`` (N, 3, 3).

    Hip and knee flexion follow the classical analysis (``inference.analysis.kinematics``: hip =
    thigh inclination from the vertical, knee = thigh minus shank), so both analyses report the same
    quantity. Velocities are central differences over the timestamps.
    """
    from inference.analysis.kinematics import sagittal_angles

    out = np.zeros((len(joints), N_KINEMATIC))
    angles = sagittal_angles(joints, axes[:, 2])
    P = joints[:, CJ["pelvis"]]
    for side in ("left", "right"):
        out[:, OUT[f"hip_flexion_{side}"]] = angles[f"hip_flexion_{side}"]
        out[:, OUT[f"knee_flexion_{side}"]] = angles[f"knee_flexion_{side}"]
        foot = joints[:, CJ[f"{side}_foot"]]
        out[:, OUT[f"foot_forward_{side}"]] = np.einsum("nj,nj->n", foot - P, axes[:, 2])
        if len(t_s) > 1:
            v = np.gradient(foot, t_s, axis=0)
            out[:, OUT[f"foot_vel_lateral_{side}"]:OUT[f"foot_vel_forward_{side}"] + 1] = \
                np.einsum("nij,nj->ni", axes, v)
    if len(t_s) > 1:
        v = np.gradient(P, t_s, axis=0)
        out[:, OUT["pelvis_vel_lateral"]:OUT["pelvis_vel_forward"] + 1] = \
            np.einsum("nij,nj->ni", axes, v)
    return out


def phase_targets(t_s: np.ndarray, events: dict[tuple[str, str], np.ndarray],
                  max_interval_s: float = MAX_PHASE_INTERVAL_S
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of each event's phase at times ``t_s`` → (N, 8) and a mask (N, 4) that is 1
    where the phase is known (between two occurrences no more than ``max_interval_s`` apart)."""
    y = np.zeros((len(t_s), 2 * len(EVENTS)))
    mask = np.zeros((len(t_s), len(EVENTS)))
    for e, key in enumerate(EVENTS):
        ev = np.sort(np.asarray(events.get(key, ()), dtype=np.float64))
        for a, b in zip(ev[:-1], ev[1:]):
            if b - a > max_interval_s:
                continue
            sel = (t_s >= a) & (t_s < b)
            phi = 2 * np.pi * (t_s[sel] - a) / (b - a)
            y[sel, 2 * e], y[sel, 2 * e + 1] = np.cos(phi), np.sin(phi)
            mask[sel, e] = 1.0
    return y, mask
