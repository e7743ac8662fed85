"""A parametric kinematic walker: joint-angle curves drive the legs, the stance foot anchors the body.

How a pose is made (all vectorised over time, exact at any timestamp, no frame rate assumed):

1. **Timing.** Each leg has strides (foot strike ``hs``, foot off ``to``, next strike). A leg's
   curve phase maps its stance onto [0, 0.61) and its swing onto [0.61, 1) of the normative
   curves (``curves.warp_phase``), so curve features stay with the stride's own events. The
   event times are decided step by step (cadence, stance fraction, asymmetry, variability) and
   are the ground truth: exact, sub-frame.
2. **Angles.** Hip (relative to the pelvis), knee and ankle come from the normative curves,
   modified by the :class:`~capture.sim.style.Style` (pattern) and scaled by a step-length gain
   (hip excursion) and by a start/stop envelope ``a(t)`` (0 = standing posture).
3. **Anchoring.** The leg whose foot struck last carries the body: its foot is fixed on the floor
   (rolling on the heel while the sole is toe-up, flat in mid-stance, on the ball of the foot once
   the heel rises), and the pelvis is placed at the end of that leg's chain. The stance foot
   therefore never slides. Sideways, the stance leg's frontal lean is solved so that the pelvis
   follows a sway profile towards the stance foot.
4. **The other leg.** In double support the trailing foot stays on its ball (or heel) and the leg
   is solved by inverse kinematics with the knee from the curve (the sole pitch gives). In swing
   it follows the curves from the pelvis; the hip angle of late swing is corrected so that the
   foot touches the floor exactly at the scheduled strike, and the leg's frontal lean so that the
   foot lands at the planned step width. After foot off the leg blends from its inverse-kinematic
   posture to the curves.
5. **Upper body.** Spine, head and arms from trunk lean, sway, counter-rotation and arm swing.

Conventions: metres, y up, floor y = 0; a heading psi points along (cos psi, 0, sin psi); a leg's
lateral sign is +1 right, -1 left. Angles are radians inside, degrees in parameters and output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from capture.sim import curves as cv
from capture.sim.body import BodyDims
from capture.sim.paths import Path, forward, rightward
from capture.sim.style import SideStyle, Style, WalkerParams

log = logging.getLogger(__name__)

SIDES = ("left", "right")
OTHER = {"left": "right", "right": "left"}
LAT = {"left": -1.0, "right": 1.0}
UP = np.array([0.0, 1.0, 0.0])
D2R = np.pi / 180.0

# Mid-stance flat-foot window on the curve phase (foot flat ~8-12%, heel rise ~30-38%).
FLAT_ON, FLAT_FULL, FLAT_OFF, FLAT_END = 0.06, 0.12, 0.30, 0.38
# After the last foot strike of a walk the posture eases to standing over this long.
SETTLE_S = 0.6
# Sole pitch beyond which the foot rolls over the toe tip instead of the ball (toes extended).
TOE_BREAK = 40.0 * np.pi / 180.0


# --------------------------------------------------------------------------- small maths


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...k,...k->...", a, b)


def _knots(times: list[float], values: list[float], t: np.ndarray) -> np.ndarray:
    """Smooth (C1) interpolation through knots, flat beyond them."""
    tk, vk = np.asarray(times, float), np.asarray(values, float)
    if len(tk) == 1:
        return np.full_like(t, vk[0], dtype=float)
    i = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, len(tk) - 2)
    w = cv.smoothstep((t - tk[i]) / np.maximum(tk[i + 1] - tk[i], 1e-9))
    return vk[i] + (vk[i + 1] - vk[i]) * w


def _lift_bump(s: np.ndarray) -> np.ndarray:
    """Profile of the clearance compensation over the swing (0 at foot off and strike)."""
    return np.sin(np.pi * s) * np.exp(-(((s - 0.5) / 0.2) ** 2))


def _bump(c: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = (np.mod(c - centre + 0.5, 1.0) - 0.5) / width
    return np.exp(-d * d)


def basis(psi: np.ndarray) -> np.ndarray:
    """(N, 3, 3) columns: forward, up, right for headings psi."""
    return np.stack([forward(psi), np.broadcast_to(UP, psi.shape + (3,)), rightward(psi)], axis=-1)


def rot_x(g: np.ndarray) -> np.ndarray:
    c, s = np.cos(g), np.sin(g)
    o, z = np.ones_like(g), np.zeros_like(g)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_z(g: np.ndarray) -> np.ndarray:
    c, s = np.cos(g), np.sin(g)
    o, z = np.ones_like(g), np.zeros_like(g)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def segment_frame(psi: np.ndarray, lean_right: np.ndarray, lean_fwd: np.ndarray) -> np.ndarray:
    """Rotation of a body segment: heading, then lateral lean (top to the right +), then
    forward lean (top forward +). Local axes: x forward, y up, z right."""
    return basis(psi) @ rot_x(lean_right) @ rot_z(-lean_fwd)


# --------------------------------------------------------------------------- leg geometry


def leg_dirs(yaw: np.ndarray, beta: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Forward and 'down' unit vectors of a leg plane with heading ``yaw`` leaned outwards by
    ``beta`` (the distal end moves away from the midline for beta > 0)."""
    f = forward(yaw)
    o = LAT[side] * rightward(yaw)
    d = -np.cos(beta)[..., None] * UP + np.sin(beta)[..., None] * o
    return f, d


def chain(theta_t: np.ndarray, kappa: np.ndarray, beta: np.ndarray, yaw: np.ndarray, side: str,
          body: BodyDims) -> tuple[np.ndarray, np.ndarray]:
    """(knee, ankle) relative to the hip for thigh angle theta_t (from the down axis, forward +)
    and knee flexion kappa in the leg plane."""
    f, d = leg_dirs(yaw, beta, side)
    th_s = theta_t - kappa
    knee = body.thigh * (np.cos(theta_t)[..., None] * d + np.sin(theta_t)[..., None] * f)
    ankle = knee + body.shank * (np.cos(th_s)[..., None] * d + np.sin(th_s)[..., None] * f)
    return knee, ankle


def foot_axes(yaw: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foot forward (e1) and foot up (e2) for heading ``yaw`` and sole pitch ``phi`` (toe up +)."""
    f = forward(yaw)
    c, s = np.cos(phi)[..., None], np.sin(phi)[..., None]
    return c * f + s * UP, -s * f + c * UP


def ankle_on_pivot(heel: np.ndarray, yaw: np.ndarray, phi: np.ndarray, body: BodyDims
                   ) -> np.ndarray:
    """Ankle of a foot resting on the floor, rolling over the three rockers: on the back of the
    heel while the sole is toe-up (phi >= 0), on the ball of the foot with the toes flat once the
    heel is up, and on the toe tip (toes extended by TOE_BREAK) beyond that. ``heel``: the heel
    point on the floor when the foot is flat."""
    e1, e2 = foot_axes(yaw, phi)
    f = forward(yaw)
    on_heel = heel + body.heel_back * e1 + body.ankle_height * e2
    ball = heel + (body.heel_back + body.ball_fwd) * f + body.ball_height * UP
    psi = np.minimum(phi + TOE_BREAK, 0.0)[..., None]
    toe = body.toe_fwd - body.ball_fwd
    tip = heel + (body.heel_back + body.toe_fwd) * f
    ball_tip = tip - (toe * np.cos(psi) + body.ball_height * np.sin(psi)) * f \
        - (toe * np.sin(psi) - body.ball_height * np.cos(psi)) * UP
    ball = np.where((phi < -TOE_BREAK)[..., None], ball_tip, ball)
    on_ball = ball - body.ball_fwd * e1 - (body.ball_height - body.ankle_height) * e2
    return np.where((phi >= 0)[..., None], on_heel, on_ball)


def _ankle_on_pivot_dphi(yaw: np.ndarray, phi: np.ndarray, body: BodyDims) -> np.ndarray:
    e1, e2 = foot_axes(yaw, phi)
    f = forward(yaw)
    d_heel = body.heel_back * e2 - body.ankle_height * e1
    d_ball = -body.ball_fwd * e2 + (body.ball_height - body.ankle_height) * e1
    psi = np.minimum(phi + TOE_BREAK, 0.0)[..., None]
    toe = body.toe_fwd - body.ball_fwd
    d_tip = -(-toe * np.sin(psi) + body.ball_height * np.cos(psi)) * f \
        - (toe * np.cos(psi) + body.ball_height * np.sin(psi)) * UP
    d_ball = d_ball + np.where((phi < -TOE_BREAK)[..., None], d_tip, 0.0)
    return np.where((phi >= 0)[..., None], d_heel, d_ball)


def toe_extension(phi: np.ndarray) -> np.ndarray:
    """Toe extension relative to the foot of a stance foot with sole pitch phi."""
    return np.clip(-phi, 0.0, TOE_BREAK)


def contact_height(ankle: np.ndarray, yaw: np.ndarray, phi: np.ndarray, body: BodyDims
                   ) -> np.ndarray:
    """Height above the floor of the point that touches first: the heel when toe-up, else the
    ball-of-foot joint less its height above the sole."""
    e1, e2 = foot_axes(yaw, phi)
    heel = ankle - body.heel_back * e1 - body.ankle_height * e2
    ball = ankle + body.ball_fwd * e1 + (body.ball_height - body.ankle_height) * e2
    return np.where(phi >= 0, heel[..., 1], ball[..., 1] - body.ball_height)


def toe_clearance(ankle: np.ndarray, yaw: np.ndarray, phi: np.ndarray, toe: np.ndarray,
                  body: BodyDims) -> np.ndarray:
    """Height of the lowest point of the forefoot sole (ball, toe tip) above the floor."""
    e1, e2 = foot_axes(yaw, phi)
    ball = ankle + body.ball_fwd * e1 - body.ankle_height * e2
    t1, t2 = foot_axes(yaw, phi + toe)
    tip = ball + body.ball_height * e2 + (body.toe_fwd - body.ball_fwd) * t1 \
        - body.ball_height * t2
    return np.minimum(ball[..., 1], tip[..., 1])


def _floor_dorsiflexion(ankle_y: np.ndarray, phi: np.ndarray, toe: np.ndarray, body: BodyDims,
                        margin: np.ndarray | float = 0.0) -> np.ndarray:
    """Least extra dorsiflexion (rad, >= 0) that keeps the ball and the toe tip of a swinging
    foot ``margin`` above the floor: a foot about to scuff is lifted at the ankle."""
    b = body
    toe_len = b.toe_fwd - b.ball_fwd
    pts = [(np.full_like(phi, b.ball_fwd), np.full_like(phi, -b.ankle_height)),
           (b.ball_fwd + toe_len * np.cos(toe) + b.ball_height * np.sin(toe),
            b.ball_height - b.ankle_height + toe_len * np.sin(toe) - b.ball_height * np.cos(toe))]
    need = np.zeros_like(phi)
    for u, v in pts:
        r = np.hypot(u, v)
        # height = ankle_y + r sin(phi + theta0): keep phi + theta0 >= -asin(ankle_y / r)
        h = (ankle_y - margin) / r
        floor = -np.arcsin(np.clip(h, -1.0, 1.0)) - np.arctan2(v, u)
        # a point further from the ankle than the ankle is high can reach the floor
        need = np.maximum(need, np.where(h < 1.0, floor - phi, 0.0))
    return np.clip(need, 0.0, 0.8)


def heel_from_contact(ankle: np.ndarray, yaw: np.ndarray, phi: np.ndarray, body: BodyDims
                      ) -> np.ndarray:
    """The flat-foot heel point on the floor of a foot touching down at this pose."""
    e1, e2 = foot_axes(yaw, phi)
    if phi >= 0:
        heel = ankle - body.heel_back * e1 - body.ankle_height * e2
    else:
        ball = ankle + body.ball_fwd * e1 + (body.ball_height - body.ankle_height) * e2
        heel = ball - (body.heel_back + body.ball_fwd) * forward(yaw) - body.ball_height * UP
    heel = np.array(heel, dtype=float)
    heel[..., 1] = 0.0
    return heel


def solve_leg(hip: np.ndarray, ankle: np.ndarray, yaw: np.ndarray, side: str, body: BodyDims
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse kinematics: (theta_t, kappa, beta) putting the ankle at ``ankle`` with the knee
    bending forward in the plane through hip and ankle that contains the foot's heading."""
    f = forward(yaw)
    o = LAT[side] * rightward(yaw)
    v = ankle - hip
    a_f = _dot(v, f)
    p = v - a_f[..., None] * f
    beta = np.arctan2(_dot(p, o), -p[..., 1])
    ell = np.linalg.norm(p, axis=-1)
    dist = np.clip(np.hypot(a_f, ell), abs(body.thigh - body.shank) + 1e-6,
                   body.thigh + body.shank - 1e-9)
    kappa = np.arccos(np.clip((dist ** 2 - body.thigh ** 2 - body.shank ** 2)
                              / (2 * body.thigh * body.shank), -1.0, 1.0))
    gamma = np.arccos(np.clip((body.thigh ** 2 + dist ** 2 - body.shank ** 2)
                              / (2 * body.thigh * dist), -1.0, 1.0))
    theta_t = np.arctan2(a_f, ell) + gamma
    return theta_t, kappa, beta


# --------------------------------------------------------------------------- records


@dataclass
class Stance:
    """One stance of one leg: where the foot is and how the pelvis sways over it."""

    side: str
    hs: float
    to: float
    heel: np.ndarray  # flat-foot heel point on the floor
    yaw: float  # foot heading (path heading + toe-out)
    normal: np.ndarray  # unit lateral (walker's right) of the path at this step
    lat0: float = 0.0  # pelvis offset along ``normal`` from the heel at the strike
    drift: float = 0.0  # change of that offset by the other foot's next strike
    sway: float = 0.0  # pelvis excursion towards this foot (m)
    t_ref_end: float = 0.0  # the other foot's next strike
    c_corr: float = 0.0  # hip correction carried over from the swing (rad), fades out
    d_phi: float = 0.0  # sole pitch carried over from the swing (its toe lift), fades out
    real: bool = True  # False: the walk's initial posture, not a foot strike


@dataclass
class Swing:
    side: str
    to: float
    hs: float
    d_theta: float  # inverse-kinematics minus curve at foot off (rad), blended out
    d_delta: float
    d_kappa: float
    beta0: float
    yaw0: float
    yaw1: float
    beta1: float = 0.0
    c_corr: float = 0.0
    circumduction: float = 0.0  # rad
    toe0: float = 0.0  # toe extension at foot off (rad)
    lift: float = 0.0  # extra knee flexion at mid-swing for toe clearance (rad)


@dataclass
class Event:
    t: float
    side: str
    kind: str  # foot_strike | foot_off


@dataclass
class StandState:
    """Where a walk starts: both feet flat (heel points) and which leg carries the body."""

    heel: dict[str, np.ndarray]
    yaw: dict[str, float]
    anchor: str
    heading: float


# --------------------------------------------------------------------------- the walk


@dataclass
class WalkPlan:
    """What one walk (standing start to standing stop) should do."""

    path: Path
    s_stop: float  # arc length at which to be stopped
    stop: bool = True  # False: the walk ends in motion (truncated by the caller)
    festinate_steps: int = 0  # festination over the last steps before the stop
    max_steps: int = 400


class Walk:
    """One walking bout from standing to standing; poses at any time inside it.

    The step-by-step pass runs in the constructor (cheap: a few pose evaluations per event);
    :meth:`evaluate` then gives joints at any times, vectorised.
    """

    def __init__(self, body: BodyDims, params: WalkerParams, style: Style, plan: WalkPlan,
                 start: StandState, t0: float, rng: np.random.Generator):
        self.body, self.params, self.style, self.plan = body, params, style, plan
        self.rng = rng
        self.t0 = float(t0)
        self.t_end = np.inf  # standing again
        self.t_clock_end = np.inf  # last foot strike: the gait clock stops
        self.events: list[Event] = []
        self.stances: dict[str, list[Stance]] = {s: [] for s in SIDES}
        self.swings: dict[str, list[Swing]] = {s: [] for s in SIDES}
        # per leg: stride starts (foot strikes, first one virtual) and their foot offs
        self.hs: dict[str, list[float]] = {s: [] for s in SIDES}
        self.to: dict[str, list[float]] = {s: [] for s in SIDES}
        self.anchor_t: list[float] = []  # times at which the carrying leg changes
        self.anchor_side: list[str] = []
        self.a_knots: tuple[list[float], list[float]] = ([], [])
        self.s_knots: tuple[list[float], list[float]] = ([], [])
        self.h_knots: tuple[list[float], list[float]] = ([], [])  # path heading
        self.fest_knots: tuple[list[float], list[float]] = ([], [])
        self._setup_gait()
        self._run(start)

    # ------------------------------------------------------------------ gait parameters

    def _setup_gait(self) -> None:
        p, st = self.params, self.style
        v = (p.speed_mps or p.preferred_speed()) * st.speed_gain
        if p.cadence_spm:
            cad = p.cadence_spm * st.cadence_gain
        else:
            cad = np.sqrt(60.0 * v / p.walk_ratio()) * st.cadence_gain
        self.speed = v
        self.cadence = float(cad)
        self.stride_time = 120.0 / self.cadence
        self.step_length = v * 60.0 / self.cadence
        # stance fraction shortens with speed (61% at 1.36 m/s)
        self.stance_frac = {s: float(np.clip(0.67 - 0.045 * v + st.side(s).stance_add, 0.52, 0.85))
                            for s in SIDES}
        self.step_width = (p.step_width_m if p.step_width_m is not None else 0.09) \
            + st.step_width_add
        self.hip_scale = self._hip_scale_for(self.step_length)
        # learnt from the steps walked: achieved vs planned length (the geometric estimate of
        # the hip gain ignores the pelvis motion and the landing corrections), per side: with
        # asymmetric step times the pelvis travels further during one side's steps, which a
        # shared correction would leave to compound with the planned length asymmetry
        self._len_corr = {s: 1.0 for s in SIDES}
        self.arm_amp = 16.0 * p.arm_swing * st.arm_gain * np.clip(v / 1.36, 0.3, 1.6)

    def _hip_scale_for(self, step_length: float) -> float:
        """Hip-excursion gain giving ``step_length`` (m): the step is the forward distance between
        the ankles at a strike, which for the curves at 1.0 is measured once per body."""
        base = self._geometric_step(1.0)
        return float(np.clip(step_length / max(base, 1e-3), 0.15, 1.9))

    def _geometric_step(self, gain: float) -> float:
        """Ankle-to-ankle distance along the heading at a foot strike for hip gain ``gain``:
        leading leg at phase 0, trailing at the stance fraction's heel-off, symmetric."""
        b = self.body
        t0 = np.array([0.0])
        out = []
        for c in (0.0, 0.5):
            h, k, _ = self._style_angles("right", np.array([c]), np.array([1.0]),
                                         np.array([gain]))
            th = h - self._tilt_mean()
            _, ankle = chain(th, k, np.zeros(1), t0, "right", b)
            out.append(ankle[0, 0])
        return float(out[0] - out[1])

    def _tilt_mean(self) -> float:
        st = self.style
        crouch = 0.5 * (st.left.crouch + st.right.crouch)
        return (2.0 + st.pelvis_tilt_add + 8.0 * crouch) * D2R

    # ------------------------------------------------------------------ angles from curves

    def _style_angles(self, side: str, c: np.ndarray, a: np.ndarray, gain: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hip rel. pelvis, knee, ankle) in radians at curve phase c, envelope a, hip gain."""
        ss: SideStyle = self.style.side(side)
        hip = cv.normal_curve("hip", c)
        knee = cv.normal_curve("knee", c)
        ankle = cv.normal_curve("ankle", c)
        swing_w = cv.smoothstep((c - 0.45) / 0.10) * (1.0 - cv.smoothstep((c - 0.92) / 0.06))
        contact_w = _bump(c, 0.0, 0.07)
        knee = knee + (ss.knee_loading_gain - 1.0) * 13.0 * _bump(c, 0.13, 0.07)
        knee = knee - (1.0 - ss.knee_swing_gain) * np.maximum(knee - 8.0, 0.0) * swing_w
        knee = (1.0 - ss.crouch) * knee + ss.crouch * cv.crouch_knee(knee)
        ankle = ankle + ss.ankle_swing_add * swing_w + ss.ankle_contact_add * contact_w \
            + ss.crouch * cv.CROUCH_ANKLE_ADD
        hip_mean = cv.MEANS["hip"] + ss.hip_add + ss.crouch * cv.CROUCH_HIP_ADD
        hip_dev = ss.hip_gain * (hip - cv.MEANS["hip"])
        h_stand = 15.0 * ss.crouch
        k_stand = self.style.stand_knee_deg + 40.0 * ss.crouch
        tilt = self._tilt_mean() / D2R
        d_stand = k_stand - (h_stand - tilt)  # keeps the foot flat when standing
        a_k = np.minimum(1.0, 2.5 * a)
        h = h_stand + a * (hip_mean - h_stand + gain * hip_dev)
        k = k_stand + a_k * (knee - k_stand)
        d = d_stand + a_k * (ankle - d_stand)
        return h * D2R, k * D2R, d * D2R

    def _phase(self, side: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(curve phase, in stance, stride index) of ``side`` at times t (clock already held)."""
        hs = np.asarray(self.hs[side])
        to = np.asarray(self.to[side])
        k = np.clip(np.searchsorted(hs, t, side="right") - 1, 0, len(hs) - 1)
        hs_next = np.append(hs[1:], np.inf)[k]
        hs_next = np.where(np.isfinite(hs_next), hs_next, to[k] + 0.4)
        c = cv.warp_phase(t, hs[k], to[k], hs_next)
        return c, t < to[k], k

    def _clock(self, t: np.ndarray) -> np.ndarray:
        return np.clip(t, self.t0, self.t_clock_end)

    def _envelopes(self, t: np.ndarray, tc: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start/stop envelope (real time: it keeps easing after the clock stops), hip gain and
        festination (gait clock)."""
        a = np.clip(_knots(*self.a_knots, np.clip(t, self.t0, self.t_end)), 0.0, 1.0)
        gain = _knots(*self.s_knots, tc)
        fest = _knots(*self.fest_knots, tc)
        return a, gain, fest

    # ------------------------------------------------------------------ whole-body state

    def _state(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """Everything that does not depend on which foot is on the floor."""
        tc = self._clock(t)
        a, gain, fest = self._envelopes(t, tc)
        st = self.style
        out: dict[str, np.ndarray] = {"tc": tc, "a": a, "festination": fest < 0.999}
        for side in SIDES:
            c, stance, k = self._phase(side, tc)
            h, kn, d = self._style_angles(side, c, a, gain)
            out[f"c_{side}"], out[f"stance_{side}"], out[f"k_{side}"] = c, stance, k
            out[f"hip_{side}"], out[f"knee_{side}"], out[f"ankle_{side}"] = h, kn, d
        cR, cL = out["c_right"], out["c_left"]
        tilt = self._tilt_mean() + a * 1.0 * D2R * np.cos(4 * np.pi * (cR - 0.38))
        hike = {s: st.side(s).hip_hike_deg * D2R * cv.smoothstep(
            (out[f"c_{s}"] - cv.REF_FOOT_OFF + 0.02) / 0.08) * (1 - cv.smoothstep(
                (out[f"c_{s}"] - 0.9) / 0.08)) for s in SIDES}
        obliq = a * 4.0 * D2R * (_bump(cR, 0.15, 0.10) - _bump(cL, 0.15, 0.10)) \
            + hike["right"] - hike["left"]
        rot = a * 4.0 * D2R * 0.5 * (np.cos(2 * np.pi * cR) - np.cos(2 * np.pi * cL))
        heading = _knots(*self.h_knots, tc)
        out["tilt"], out["obliquity"], out["rotation"], out["heading"] = tilt, obliq, rot, heading
        out["R_pelvis"] = segment_frame(heading - rot, -obliq, tilt)
        # quiet-standing sway (ankle strategy): the legs lean together, the feet stay flat
        quiet = 1.0 - np.minimum(1.0, 4.0 * a)
        out["sway"] = quiet * D2R * (0.6 * np.sin(2 * np.pi * 0.21 * t + 0.3)
                                     + 0.35 * np.sin(2 * np.pi * 0.47 * t + 1.1))
        return out

    def _hip(self, S: dict[str, np.ndarray], side: str) -> np.ndarray:
        b = self.body
        local = np.array([0.0, -b.hip_drop, LAT[side] * b.hip_half_width])
        return S["R_pelvis"] @ local

    def _thigh(self, S: dict[str, np.ndarray], side: str) -> np.ndarray:
        return S[f"hip_{side}"] - S["tilt"] + S["sway"]

    def _stance_phi(self, S: dict[str, np.ndarray], side: str) -> np.ndarray:
        """Sole pitch of a stance foot from the curves, flat in mid-stance. (A hip correction
        carried over from the swing is taken up by the ankle, so it does not tilt the foot.)"""
        c = S[f"c_{side}"]
        th_s = self._thigh(S, side) - S[f"knee_{side}"]
        phi_c = S[f"ankle_{side}"] - S["sway"] + th_s
        w = cv.smoothstep((c - FLAT_ON) / (FLAT_FULL - FLAT_ON)) * \
            (1.0 - cv.smoothstep((c - FLAT_OFF) / (FLAT_END - FLAT_OFF)))
        w = np.where(c < cv.REF_FOOT_OFF, w, 0.0)
        return phi_c * (1.0 - w)

    def _stance_fade(self, rec: Stance, tc: np.ndarray) -> np.ndarray:
        """1 at the strike, 0 after the first quarter of the stance."""
        tau = (tc - rec.hs) / max(rec.to - rec.hs, 1e-6)
        return 1.0 - cv.smoothstep(tau / 0.25)

    def _stance_corr(self, rec: Stance, tc: np.ndarray) -> np.ndarray:
        return rec.c_corr * self._stance_fade(rec, tc)

    def _anchored(self, S: dict[str, np.ndarray], rec: Stance, sel: np.ndarray
                  ) -> dict[str, np.ndarray]:
        """Pelvis and the carrying leg for the frames ``sel`` of state S."""
        b, side = self.body, rec.side
        tc = S["tc"][sel]
        n = len(tc)
        corr = self._stance_corr(rec, tc)
        th_t = self._thigh(S, side)[sel] + corr
        kap = S[f"knee_{side}"][sel]
        phi = self._stance_phi({k: v[sel] for k, v in S.items()}, side) \
            + rec.d_phi * self._stance_fade(rec, tc)
        yaw = np.full(n, rec.yaw)
        ankle = ankle_on_pivot(rec.heel, yaw, phi, b)
        f = forward(yaw)
        o = LAT[side] * rightward(yaw)
        th_s = th_t - kap
        a_f = b.thigh * np.sin(th_t) + b.shank * np.sin(th_s)
        ell = b.thigh * np.cos(th_t) + b.shank * np.cos(th_s)
        hip_off = self._hip({"R_pelvis": S["R_pelvis"][sel]}, side)
        q = ankle - a_f[:, None] * f - hip_off
        tau = np.clip((tc - rec.hs) / max(rec.t_ref_end - rec.hs, 1e-6), 0.0, 1.0)
        target = rec.lat0 + rec.drift * cv.smoothstep(tau) \
            + LAT[side] * rec.sway * S["a"][sel] * np.sin(np.pi * tau)
        on = _dot(o, rec.normal)
        m = (_dot(q - rec.heel, rec.normal) - target) / np.where(np.abs(on) < 0.2, 0.2, on)
        beta = np.arcsin(np.clip(m / ell, -0.6, 0.6))
        pelvis = q + (ell * np.cos(beta))[:, None] * UP - (ell * np.sin(beta))[:, None] * o
        knee, ank = chain(th_t, kap, beta, yaw, side, b)
        hip = pelvis + hip_off
        return {"pelvis": pelvis, "hip": hip, "knee": hip + knee, "ankle": hip + ank,
                "phi": phi, "yaw": yaw, "toe": toe_extension(phi)}

    def _trailing(self, S: dict[str, np.ndarray], rec: Stance, sel: np.ndarray,
                  pelvis: np.ndarray) -> dict[str, np.ndarray]:
        """A stance leg that does not carry the pelvis: foot pivots, leg by inverse kinematics."""
        b, side = self.body, rec.side
        sub = {k: v[sel] for k, v in S.items()}
        hip = pelvis + self._hip(sub, side)
        yaw = np.full(len(hip), rec.yaw)
        phi = self._stance_phi(sub, side) + rec.d_phi * self._stance_fade(rec, sub["tc"])
        kap = sub[f"knee_{side}"]
        d2 = b.thigh ** 2 + b.shank ** 2 + 2 * b.thigh * b.shank * np.cos(kap)
        for _ in range(12):
            ankle = ankle_on_pivot(rec.heel, yaw, phi, b)
            v = ankle - hip
            g = _dot(v, v) - d2
            dg = 2 * _dot(v, _ankle_on_pivot_dphi(yaw, phi, b))
            step = np.where(np.abs(dg) > 1e-6, g / np.where(np.abs(dg) > 1e-6, dg, 1.0), 0.0)
            phi = np.clip(phi - np.clip(step, -0.3, 0.3), -85 * D2R, 35 * D2R)
        ankle = ankle_on_pivot(rec.heel, yaw, phi, b)
        th_t, kap2, beta = solve_leg(hip, ankle, yaw, side, b)
        knee, ank = chain(th_t, kap2, beta, yaw, side, b)
        return {"hip": hip, "knee": hip + knee, "ankle": hip + ank, "phi": phi, "yaw": yaw,
                "theta": th_t, "kappa": kap2, "beta": beta, "toe": toe_extension(phi)}

    def _swinging(self, S: dict[str, np.ndarray], rec: Swing, sel: np.ndarray,
                  pelvis: np.ndarray) -> dict[str, np.ndarray]:
        b, side = self.body, rec.side
        sub = {k: v[sel] for k, v in S.items()}
        hip = pelvis + self._hip(sub, side)
        s = np.clip((sub["tc"] - rec.to) / max(rec.hs - rec.to, 1e-6), 0.0, 1.0)
        fade = 1.0 - cv.smoothstep(s / 0.35)
        corr = rec.c_corr * cv.smoothstep((s - 0.3) / 0.7)
        th_t = self._thigh(sub, side) + rec.d_theta * fade + corr
        bump = _lift_bump(s)
        by_knee = self.style.side(side).clearance == "knee"
        knee_lift = rec.lift * bump if by_knee else 0.0
        kap = sub[f"knee_{side}"] + rec.d_kappa * fade + knee_lift
        # the landing correction turns the thigh and the clearance lift bends the knee; the
        # ankle keeps the foot's pitch (and dorsiflexes a little more for the toes)
        delta = sub[f"ankle_{side}"] - sub["sway"] + rec.d_delta * fade - corr + 1.3 * knee_lift
        beta = rec.beta0 + (rec.beta1 - rec.beta0) * cv.smoothstep(s) \
            + (rec.circumduction + (0.0 if by_knee else rec.lift)) * bump
        yaw = rec.yaw0 + (rec.yaw1 - rec.yaw0) * cv.smoothstep(s)
        knee, ank = chain(th_t, kap, beta, yaw, side, b)
        phi = delta + th_t - kap
        # late swing: a heel that would dip below the floor before its strike (short start and
        # stop steps) is lifted by flexing the hip; the foot keeps its pitch
        e1, e2 = foot_axes(yaw, phi)
        heel_y = (hip + ank - b.heel_back * e1 - b.ankle_height * e2)[:, 1]
        lift_to = 0.005 * np.clip((1.0 - s) / 0.1, 0.0, 1.0) * cv.smoothstep((s - 0.4) / 0.2)
        short = np.maximum(lift_to - heel_y, 0.0)
        if np.any(short > 0):
            th_s = th_t - kap
            gain = np.maximum(b.thigh * np.sin(th_t) + b.shank * np.sin(th_s), 0.1)
            th_t = th_t + short / gain
            knee, ank = chain(th_t, kap, beta, yaw, side, b)
        toe = rec.toe0 * (1.0 - cv.smoothstep(s / 0.25))
        # the toes leave the floor at foot off and come back only at the strike
        margin = 0.01 * cv.smoothstep(s / 0.15) * (1.0 - cv.smoothstep((s - 0.85) / 0.15))
        phi = phi + _floor_dorsiflexion((hip + ank)[:, 1], phi, toe, b, margin)
        return {"hip": hip, "knee": hip + knee, "ankle": hip + ank, "phi": phi, "yaw": yaw,
                "theta": th_t, "kappa": kap, "beta": beta, "toe": toe}

    # ------------------------------------------------------------------ records at a time

    def _records(self, side: str, tc: np.ndarray) -> tuple[np.ndarray, list[Stance | Swing]]:
        """Index into the returned list of the stance or swing of ``side`` holding at each
        clock time: the latest stance begun, unless a swing begun after it is still going."""
        st, sw = self.stances[side], self.swings[side]
        hs = np.array([r.hs for r in st])
        i = np.clip(np.searchsorted(hs, tc, side="right") - 1, 0, None)
        if not sw:
            return i, list(st)
        to = np.array([w.to for w in sw])
        sw_end = np.array([w.hs for w in sw])
        j = np.searchsorted(to, tc, side="right") - 1
        jj = np.clip(j, 0, None)
        swinging = (j >= 0) & (tc < sw_end[jj]) & (to[jj] >= hs[i])
        return np.where(swinging, len(st) + jj, i), list(st) + list(sw)

    def _anchor_at(self, tc: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(np.asarray(self.anchor_t), tc, side="right") - 1, 0, None)
        return np.asarray(self.anchor_side)[i]

    def legs(self, t: np.ndarray, overrides: dict[str, np.ndarray] | None = None
             ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
        """State and per-leg geometry (hip, knee, ankle, sole pitch, yaw, toe) at times t.
        ``overrides``: a state from an earlier call with some angles changed."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        S = dict(overrides) if overrides is not None else self._state(t)
        n = len(t)
        tc = S["tc"]
        anchor = self._anchor_at(tc)
        pelvis = np.zeros((n, 3))
        legs = {s: {k: np.zeros((n, 3)) for k in ("hip", "knee", "ankle")} for s in SIDES}
        for s in SIDES:
            legs[s].update({k: np.zeros(n) for k in ("phi", "yaw", "toe")})
        # group frames by (anchor record, other record) so each group is one vectorised call
        groups: dict[tuple[str, int, int], np.ndarray] = {}
        recs: dict[str, list[Stance | Swing]] = {}
        idx: dict[str, np.ndarray] = {}
        for s_ in SIDES:
            idx[s_], recs[s_] = self._records(s_, tc)
        for a_side in SIDES:
            m = anchor == a_side
            if not m.any():
                continue
            key = idx[a_side][m] * 100000 + idx[OTHER[a_side]][m]
            where = np.nonzero(m)[0]
            for k in np.unique(key):
                groups[(a_side, int(k // 100000), int(k % 100000))] = where[key == k]
        for (a_side, ia, io), sel in groups.items():
            ra, ro = recs[a_side][ia], recs[OTHER[a_side]][io]
            if not isinstance(ra, Stance):
                raise RuntimeError(f"{ra.side} carries the body at t={tc[sel[0]]:.3f} but swings")
            A = self._anchored(S, ra, sel)
            pelvis[sel] = A["pelvis"]
            O = self._trailing(S, ro, sel, A["pelvis"]) if isinstance(ro, Stance) \
                else self._swinging(S, ro, sel, A["pelvis"])
            for side, geo in ((ra.side, A), (ro.side, O)):
                for k in ("hip", "knee", "ankle", "phi", "yaw", "toe"):
                    legs[side][k][sel] = geo[k]
        S["pelvis"] = pelvis
        return S, legs

    # ------------------------------------------------------------------ the step-by-step pass

    def _plan_step(self, side: str, from_heel: np.ndarray, step_idx: int) -> dict[str, float]:
        """Target of the next step of ``side`` (ending at its next strike)."""
        st, p = self.style, self.params
        path = self.plan.path
        ss = st.side(side)
        asym = 1.0 + LAT[side] * p.asymmetry
        length = self.step_length * ss.step_gain * asym
        length *= 1.0 + st.step_length_cv * p.variability * self.rng.standard_normal()
        s_now = float(path.project(from_heel[None])[0][0])
        s_pred = s_now + max(length, 0.02)
        h = float(path.heading(s_pred))
        width = self.step_width + st.step_width_sd * p.variability * self.rng.standard_normal()
        lat = LAT[side] * max(width, 0.0) / 2.0
        return {"side": side, "length": length, "s_pred": s_pred, "heading": h, "lat": lat}

    def _first_state(self, start: StandState) -> None:
        X = start.anchor
        Y = OTHER[X]
        t0 = self.t0
        T = self.stride_time
        d_to = 0.45 * T / 1.07
        y_to = t0 + d_to
        y_hs = y_to + (1.0 - self.stance_frac[Y]) * T * 1.05
        x_to = y_hs + max((self.stance_frac[X] - 0.5) * T, 0.03 * T)
        # X starts at its strike (phase 0), Y at phase 0.5 (heel rise), both feet flat (a = 0)
        y_hs0 = t0 - 0.5 * d_to / (cv.REF_FOOT_OFF - 0.5)
        self.hs[X], self.to[X] = [t0], [x_to]
        self.hs[Y], self.to[Y] = [y_hs0], [y_to]
        normal = rightward(start.heading)
        for s, hs, to in ((X, t0, x_to), (Y, y_hs0, y_to)):
            self.stances[s].append(Stance(s, hs, to, np.array(start.heel[s], float),
                                          float(start.yaw[s]), normal, real=False))
        self.anchor_t, self.anchor_side = [t0], [X]
        self.a_knots = ([t0], [0.0])
        self.s_knots = ([t0], [self.hip_scale])
        self.h_knots = ([t0], [start.heading])
        self.fest_knots = ([t0], [1.0])
        self._pending = [(y_to, "foot_off", Y), (y_hs, "foot_strike", Y)]
        self._queued_x_to = (x_to, "foot_off", X)
        plan = self._plan_step(Y, start.heel[X], 0)
        self._targets = {Y: plan}
        self._add_knots(y_hs, a=0.5, step=plan, fest=1.0)
        # anchored stance of X: sway set up towards the coming strike of Y
        rec = self.stances[X][0]
        rec.t_ref_end = y_hs
        rec.sway = self.params.pelvis_sway_m * self.style.pelvis_sway_gain
        # the pelvis starts midway between the feet and stays there until Y strikes
        rec.lat0 = -0.5 * float(_dot(rec.heel - start.heel[Y], rec.normal))

    def _add_knots(self, t: float, a: float, step: dict[str, float], fest: float) -> None:
        gain = self._hip_scale_for(step["length"] * self._len_corr[step["side"]])
        for knots, v in ((self.a_knots, a), (self.s_knots, gain), (self.h_knots, step["heading"]),
                         (self.fest_knots, fest)):
            if t > knots[0][-1]:
                knots[0].append(t)
                knots[1].append(v)
            else:
                knots[1][-1] = v

    def _run(self, start: StandState) -> None:
        self._first_state(start)
        if self.plan.max_steps == 0:
            self.t_end = self.t_clock_end = self.t0
            return
        queue = list(self._pending) + [self._queued_x_to]
        step_idx = 0
        stopping = 0  # steps left until the stop (0: not stopping)
        fest_left = 0  # steps left in a festination bout
        a_next = 0.85
        while queue:
            queue.sort()
            t, kind, side = queue.pop(0)
            if kind == "foot_off":
                self._foot_off(side, t)
                continue
            final = stopping == 1
            self._foot_strike(side, t)
            step_idx += 1
            if final or step_idx >= self.plan.max_steps:
                # the gait clock stops at the last strike; the posture then eases to standing
                self.t_clock_end = t
                self.t_end = t + SETTLE_S
                self.a_knots[0].append(self.t_end)
                self.a_knots[1].append(0.0)
                break
            # plan: this leg's foot off and the other leg's next strike
            other = OTHER[side]
            # each step draws its own duration (T / 2): a stride is two independent steps, so
            # the draw's CV is sqrt(2) x stride_cv for the strides to vary by stride_cv
            T = self.stride_time * (1.0 + np.sqrt(2.0) * self.style.stride_cv
                                    * self.params.variability * self.rng.standard_normal())
            fest = 1.0
            remaining = self.plan.s_stop - float(self.plan.path.project(
                self.stances[side][-1].heel[None])[0][0])
            if self.plan.stop and stopping == 0 and remaining < 1.6 * self.step_length:
                stopping = 2
            elif stopping:
                stopping -= 1
            if self.plan.festinate_steps and stopping == 0:
                # steps shorten and quicken into the stop (a freeze)
                n_f = self.plan.festinate_steps
                left = remaining / max(self.step_length, 1e-3)
                if left < n_f + 2:
                    fest = float(np.clip((left - 1.5) / n_f, 0.3, 1.0))
            elif self.style.festination > 0 and stopping == 0 and step_idx > 3:
                # a festination bout: six steps, each shorter and quicker, then recovery
                if fest_left == 0 and self.rng.random() < 0.08 * self.style.festination / 0.3:
                    fest_left = 6
                if fest_left > 0:
                    fest = 1.0 - 0.6 * (self.style.festination / 0.9) * (7 - fest_left) / 6
                    fest_left -= 1
            T *= 0.55 + 0.45 * fest
            ss_o = self.style.side(other)
            asym = 1.0 + LAT[other] * self.params.asymmetry
            w_o = ss_o.step_time_gain * asym
            w_x = self.style.side(side).step_time_gain * (1.0 - LAT[other] * self.params.asymmetry)
            step_o = T * w_o / (w_o + w_x)
            hs_o = t + step_o
            prev_to_o = self.to[other][-1]
            hs_o = max(hs_o, prev_to_o + 0.25 * (1 - self.stance_frac[other]) * T)
            to_x = t + self.stance_frac[side] * T
            to_x = max(to_x, hs_o + 0.03 * T)
            self.to[side][-1] = to_x
            self.stances[side][-1].to = to_x
            queue.append((to_x, "foot_off", side))
            queue.append((hs_o, "foot_strike", other))
            plan = self._plan_step(other, self.stances[side][-1].heel, step_idx)
            if stopping == 1:
                plan["length"] *= 0.35
                a_next = 0.3
            elif stopping == 2:
                plan["length"] *= 0.6
                a_next = 0.55
            else:
                a_next = min(1.0, a_next + 0.35) if step_idx < 3 else 1.0
            plan["length"] *= fest
            plan["steady"] = a_next >= 1.0 and fest >= 1.0 and stopping == 0 and step_idx >= 3
            self._targets[other] = plan
            self._add_knots(hs_o, a=a_next, step=plan, fest=fest)
            rec = self.stances[side][-1]
            rec.t_ref_end = hs_o
        if not np.isfinite(self.t_end):
            self.t_end = self.t_clock_end = self.events[-1].t if self.events else self.t0

    def _foot_off(self, side: str, t: float) -> None:
        """The trailing foot leaves: freeze its inverse-kinematic posture for the swing blend."""
        tt = np.array([t])
        S, _ = self.legs(tt)
        rec = self.stances[side][-1]
        geo = self._trailing(S, rec, np.array([0]), S["pelvis"])
        th_c = self._thigh(S, side)[0]
        d_c = S[f"ankle_{side}"][0] - S["sway"][0]
        kap_c = S[f"knee_{side}"][0]
        phi = geo["phi"][0]
        delta_ik = phi - (geo["theta"][0] - geo["kappa"][0])
        target = self._targets.get(side)
        yaw1 = (target["heading"] if target else rec.yaw) + LAT[side] * self.params.toe_out_deg * D2R
        ss = self.style.side(side)
        self.swings[side].append(Swing(
            side=side, to=t, hs=self.hs[side][-1] + 1e9, d_theta=geo["theta"][0] - th_c,
            d_delta=delta_ik - d_c, d_kappa=geo["kappa"][0] - kap_c, beta0=geo["beta"][0],
            yaw0=rec.yaw, yaw1=yaw1, beta1=geo["beta"][0],
            circumduction=ss.circumduction_deg * D2R, toe0=float(toe_extension(phi))))
        self.events.append(Event(t, side, "foot_off"))

    def _foot_strike(self, side: str, t: float) -> None:
        """Land the swinging foot exactly on the floor at t, on the planned step width."""
        b = self.body
        sw = self.swings[side][-1]
        sw.hs = t
        self.hs[side].append(t)
        self.to[side].append(t + 10.0)  # replaced when planned
        target = self._targets[side]
        path = self.plan.path
        centre = path.point(target["s_pred"])
        normal = rightward(target["heading"])
        tt = np.array([t])
        # anchor (the other leg) sets the pelvis; solve hip correction and lean of the swing leg
        self._clear_toes(sw)
        S, L = self.legs(tt)  # the pelvis comes from the other leg: it does not move here
        one = np.array([0])

        def touch() -> tuple[np.ndarray, float, float, np.ndarray]:
            g = self._swinging(S, sw, one, S["pelvis"])
            return g["ankle"][0], float(g["phi"][0]), float(g["yaw"][0]), g["hip"][0]

        for _ in range(10):
            # lateral: lean so that the touching point is on the planned line
            ank, phi, yaw, hip_h = touch()
            heel = heel_from_contact(ank, np.array(yaw), phi, b)
            lat_err = float(_dot(heel - centre, normal)) - target["lat"]
            o_n = float(_dot(LAT[side] * rightward(yaw), normal))
            o_n = o_n if abs(o_n) > 0.3 else np.copysign(0.3, o_n)
            v = ank - hip_h
            ell = float(np.linalg.norm(v - _dot(v, forward(yaw)) * forward(yaw)))
            sw.beta1 -= lat_err / (max(ell, 0.2) * o_n)
            # vertical: hip correction so that the contact point is at the floor
            ank, phi, yaw, _ = touch()
            h0 = float(contact_height(ank, np.array(yaw), phi, b))
            eps = 1e-3
            sw.c_corr += eps
            ank1, phi1, yaw1, _ = touch()
            sw.c_corr -= eps
            dh = (float(contact_height(ank1, np.array(yaw1), phi1, b)) - h0) / eps
            if abs(dh) > 1e-3:
                sw.c_corr -= float(np.clip(h0 / dh, -0.1, 0.1))
        self._clear_toes(sw)
        geo = self._swinging(S, sw, one, S["pelvis"])
        ank, phi, yaw = geo["ankle"][0], geo["phi"][0], float(geo["yaw"][0])
        resid = float(contact_height(ank, np.array(yaw), phi, b))
        if abs(resid) > 2e-3:
            log.debug("foot strike %s at %.3f s: contact %.1f mm off the floor", side, t,
                      1e3 * resid)
        heel = heel_from_contact(ank, np.array(yaw), phi, b)
        if target.get("steady"):
            walked = float(_dot(ank - L[OTHER[side]]["ankle"][0], forward(target["heading"])))
            if walked > 0.05:
                self._len_corr[side] = float(np.clip(
                    self._len_corr[side] * (target["length"] / walked), 0.5, 2.0))
        stance_phi = float(self._stance_phi({k: v[:1] for k, v in S.items()}, side)[0])
        new = Stance(side=side, hs=t, to=self.to[side][-1], heel=heel, yaw=yaw, normal=normal,
                     c_corr=sw.c_corr, d_phi=float(phi) - stance_phi,
                     sway=self.params.pelvis_sway_m * self.style.pelvis_sway_gain)
        # pelvis offset at the strike, and where it should be when the other foot strikes:
        # over the path centre line
        pel = S["pelvis"][0]
        new.lat0 = float(_dot(pel - heel, normal))
        foot_lat = float(_dot(heel - centre, normal))
        new.drift = -foot_lat - new.lat0
        new.t_ref_end = t + 0.5 * self.stride_time
        self.stances[side].append(new)
        self.anchor_t.append(t)
        self.anchor_side.append(side)
        self.events.append(Event(t, side, "foot_strike"))

    def _clear_toes(self, sw: Swing) -> None:
        """Compensate in mid-swing just enough for the foot to clear the floor by the style's
        minimum toe clearance (normal ~1.3 cm, Winter 1992): by bending the knee (and lifting the
        toes), or for a stiff leg by swinging it out (circumduction). Near foot off and foot
        strike the foot is close to the floor anyway (and kept above it by
        :func:`_floor_dorsiflexion`)."""
        s = np.linspace(0.35, 0.65, 7)
        ts = sw.to + (sw.hs - sw.to) * s
        S, _ = self.legs(ts)
        sel = np.arange(len(ts))
        top = 40.0 if self.style.side(sw.side).clearance == "knee" else 25.0

        def deficit(lift_deg: float) -> float:
            sw.lift = lift_deg * D2R
            g = self._swinging(S, sw, sel, S["pelvis"])
            clear = toe_clearance(g["ankle"], g["yaw"], g["phi"], g["toe"], self.body)
            return float(np.max(self.style.toe_clearance_m - clear))

        # the coarse scan in one vectorised call: every sample time for every lift on the grid
        grid = np.arange(0.0, top + 0.1, 3.0)
        n_s, n_l = len(ts), len(grid)
        tiled = {k: np.concatenate([v] * n_l) for k, v in S.items()}
        sw.lift = np.repeat(grid * D2R, n_s)
        g = self._swinging(tiled, sw, np.arange(n_s * n_l), tiled["pelvis"])
        clear = toe_clearance(g["ankle"], g["yaw"], g["phi"], g["toe"], self.body)
        d = np.max(self.style.toe_clearance_m - clear.reshape(n_l, n_s), axis=1)
        ok = np.nonzero(d <= 0)[0]
        if len(ok) == 0:  # cannot clear: the smallest compensation that does about the best
            sw.lift = float(grid[np.nonzero(d <= d.min() + 1e-3)[0][0]]) * D2R
            return
        if ok[0] == 0:
            sw.lift = 0.0
            return
        lo, hi = grid[ok[0] - 1], grid[ok[0]]
        for _ in range(5):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if deficit(mid) > 0 else (lo, mid)
        sw.lift = hi * D2R

    # ------------------------------------------------------------------ final state

    def final_state(self) -> StandState:
        last = self.anchor_side[-1]
        heel = {s: self.stances[s][-1].heel.copy() for s in SIDES}
        yaw = {s: self.stances[s][-1].yaw for s in SIDES}
        return StandState(heel=heel, yaw=yaw, anchor=last, heading=float(self.h_knots[1][-1]))


def initial_state(body: BodyDims, params: WalkerParams, path: Path, s: float = 0.0,
                  anchor: str = "right") -> StandState:
    """Feet side by side at arc length ``s`` of ``path``, heels level, toes out."""
    psi = float(path.heading(s))
    centre = path.point(s)
    width = params.step_width_m if params.step_width_m is not None else 0.09
    heel, yaw = {}, {}
    for side in SIDES:
        y = psi + LAT[side] * params.toe_out_deg * D2R
        ankle_at = centre + LAT[side] * width / 2 * rightward(psi)
        heel[side] = ankle_at - body.heel_back * forward(y)
        heel[side][1] = 0.0
        yaw[side] = y
    return StandState(heel=heel, yaw=yaw, anchor=anchor, heading=psi)
