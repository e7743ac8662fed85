"""The classical gait analysis of one track, frame by frame, with a bounded look-ahead.

``OnlineGaitAnalyzer.push(t_us, joints, conf)`` takes one canonical skeleton and returns the gait
events and completed cycles it could decide on. A frame is *finalised* (smoothed, oriented,
turned into kinematic features) once the smoothing look-ahead has arrived; an extremum of a foot
signal becomes an event once the event look-ahead after it has been finalised. Hence every event
is published at most ``lookahead_ms`` (smoothing ahead + event confirmation) after it happened.
A stride's cycle record waits, in addition, until the walking direction has caught up with its
end (``motion.heading_delay_ms``, ~340 ms by default), so that a turn inside it is judged on
the stride's own headings.

The offline path (``gaitstream analyze``, ``eval events``) feeds recordings through this same
class, so a replay gives exactly the records the live run gave.

Pipeline per finalised frame (each step a pure function of its own module):
``filters.local_poly`` (joints and velocities) -> ``motion.headings`` (walking direction) ->
``kinematics.features`` -> ``motion.quality_flags`` / ``motion.motion_state`` ->
``events.find_extrema`` -> ``cycles.stride_cycle``.

Which strikes make a stride: every foot strike closes the stride that began at the previous
strike of the same side, and that stride is published whatever its quality (a stride that
should not be trusted says so in its flags: ``implausible_timing`` when longer than
``max_stride_s``, ``standing`` when the walker stood still inside it, ``turning``, ...). The one
exception is a *pause*: the walker stood still (motion state STANDING) for ``max_pause_s`` or
more, or no frame arrived for that long, between the two strikes. They then belong to two
walks, like the bouts the bout detector splits; the interval is a pause rather than a stride
(its "cadence" would measure the pause), so it gets no record and is counted as
``unpaired_strikes``. A pause shorter than that, a slow or long stride, or a turn is published
flagged rather than joined into nothing or dropped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from inference.analysis import motion
from inference.analysis.cycles import CycleOptions, Event, Pauses, stride_cycle
from inference.analysis.events import (DETECTORS, EventOptions, find_extrema, heel_strike_time,
                                       prominence_threshold, strike_time)
from inference.analysis.filters import Window, local_poly
from inference.analysis.kinematics import F, FEATURES, SIDES, features
from inference.models.gdi.indices import stride_indices
from streams.schema import GaitCycle, GaitEvent
from streams.skeletons import CANONICAL_FEET_JOINTS, CJ

log = logging.getLogger(__name__)

N_JOINTS = 22
# A frame may carry the foot points after the 22 joints (canonical26: heels, toes); they time
# foot strikes and measure steps heel to heel where the source has them.
N_POINTS = len(CANONICAL_FEET_JOINTS)
_HEEL_POINTS = np.array([CANONICAL_FEET_JOINTS.index("left_heel"),
                         CANONICAL_FEET_JOINTS.index("right_heel")])
_HEEL_COLS = np.array([F["heel_fwd_left"], F["heel_fwd_right"], F["heel_vy_left"],
                       F["heel_vy_right"]])
_ANKLES = np.array([CJ["left_ankle"], CJ["right_ankle"]])
_FEET = np.array([CJ["left_ankle"], CJ["right_ankle"], CJ["left_foot"], CJ["right_foot"]])
# the joints the nine gait variables use (inference.analysis.gait_variables)
_LOWER = np.array([CJ[j] for j in ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee",
                                   "left_ankle", "right_ankle", "left_foot", "right_foot")])
# Feature columns: whether the walker moves in a frame (pelvis speed, ankles' forward velocity
# relative to the pelvis), and the ankles' forward positions (foot range).
_MOVING = np.array([F["pelvis_speed"], F["ankle_fwd_vel_left"], F["ankle_fwd_vel_right"]])
_ANKLE_FWD = np.array([F["ankle_fwd_left"], F["ankle_fwd_right"]])
# The joint whose signal times each event (events.DETECTORS): its column in _FEET.
_FOOT_COLUMN = {("foot_strike", "left"): 0, ("foot_strike", "right"): 1,
                ("foot_off", "left"): 2, ("foot_off", "right"): 3}


@dataclass(frozen=True)
class AnalyzerOptions:
    smoothing_back_ms: float = 80.0
    smoothing_ahead_ms: float = 80.0
    smoothing_degree: int = 2
    smoothing_max_samples: int = 24  # a fast source's window is thinned (see filters.Window)
    # Frames are finalised in groups spanning this long: the per-call cost of the vector maths
    # is shared by the group, at the price of this much more delay.
    batch_ms: float = 100.0
    history_s: float = 4.5  # per-frame trace kept for cycle measures (> max_stride_s)
    bone_reference_s: float = 10.0  # bone lengths over this long give the track's reference
    frames: motion.FrameOptions = field(default_factory=motion.FrameOptions)
    events: EventOptions = field(default_factory=EventOptions)
    cycles: CycleOptions = field(default_factory=CycleOptions)
    floor_window_s: float = 10.0
    keep_trace: bool = False  # keep every frame's features (plots, evaluation)
    # GDI, GPS and GVS of each stride in its record's metrics (inference.models.gdi)
    clinical_indices: bool = True

    @classmethod
    def from_flat(cls, options: dict[str, Any]) -> "AnalyzerOptions":
        """Options from one flat mapping (a worker configuration): the names of this class and
        of FrameOptions / EventOptions / CycleOptions. Unknown names are an error."""
        groups = {"frames": motion.FrameOptions, "events": EventOptions, "cycles": CycleOptions}
        own = {f.name for f in fields(cls)} - set(groups)
        top: dict[str, Any] = {}
        sub: dict[str, dict[str, Any]] = {g: {} for g in groups}
        for k, v in options.items():
            if k in own:
                top[k] = v
                continue
            for g, c in groups.items():
                if k in {f.name for f in fields(c)}:
                    sub[g][k] = tuple(v) if isinstance(v, list) else v
                    break
            else:
                raise ValueError(f"analyzer option {k!r} is unknown")
        return cls(**top, **{g: groups[g](**kw) for g, kw in sub.items()})

    @property
    def lookahead_ms(self) -> float:
        """Longest delay between an event and its publication, in source time (plus one frame
        interval, the wait for the frame that completes the batch). A heel strike is timed
        within ``strike_max_delay_ms`` after the ankle's peak, no later than the confirmation
        (asserted in OnlineGaitAnalyzer), so it adds nothing."""
        return self.smoothing_ahead_ms + self.batch_ms + self.events.confirm_ms


def _median(b: np.ndarray) -> np.ndarray:
    """np.median(b, axis=0) of finite values (the same order statistics and mean), without its
    wrappers' overhead."""
    m = len(b)
    half = m // 2
    if m % 2:
        return np.partition(b, half, axis=0)[half]
    part = np.partition(b, (half - 1, half), axis=0)
    return (part[half - 1] + part[half]) / 2


def motion_inputs(t_us: np.ndarray, feats: np.ndarray, heading: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of ``motion.motion_state`` besides the path speed, for the rows from ``k`` on
    of a per-frame trace (times ascending, ``kinematics.FEATURES``, walking direction's angle):
    foot excursion relative to the pelvis (largest of the two ankles' ranges along the walking
    direction) and turn rate (deg/s), both over the last second. Shared by the classical
    analysis and the gait transformer's cycles, so both decide standing and turning alike."""
    t, a = t_us, heading
    tq = t[k:]
    pos = np.arange(k, len(t))
    start = t.searchsorted(tq - 1_000_000, "left")
    # every new row's window [start, pos] at once, padded with the row itself (which
    # changes no maximum or minimum)
    win = np.minimum(start[:, None] + np.arange(int((pos - start).max()) + 1),
                     pos[:, None])
    seg = feats[win[:, :, None], _ANKLE_FWD]  # (m, W, 2)
    span = np.fmax.reduce(seg, axis=1) - np.fmin.reduce(seg, axis=1)  # NaN: ankle unseen
    rng = np.fmax(span[:, 0], span[:, 1])
    rng[rng != rng] = 0.0  # neither ankle seen in the window
    dt = (tq - t[start]) / 1e6
    da = np.angle(np.exp(1j * (a[k:] - a[start])))
    long = dt > 0.25  # a shorter stretch gives no rate (and the first frame none at all)
    turn = np.where(long & np.isfinite(da), np.degrees(da) / np.where(long, dt, 1.0), 0.0)
    rng[pos == start] = np.inf  # a first frame: nothing to compare with yet
    return rng, turn


class Ring:
    """Columns of a growing time series kept in preallocated arrays; old rows are dropped in
    blocks so that appending stays O(1) amortised and slices stay contiguous views. Rows have
    a global index (``dropped`` is row 0's). Without ``keep_from`` the last ``capacity`` rows
    are kept; with it (a global index) none from there on is dropped, and the arrays grow
    when that leaves too little room (the gait transformer's cycles, whose events can lag
    their frames by a whole batch of windows)."""

    def __init__(self, capacity: int, columns: dict[str, tuple[tuple[int, ...], Any]]):
        self.cap = capacity
        self.n = 0
        self.dropped = 0  # rows removed from the front so far (global index of row 0)
        self.cols = {k: np.zeros((capacity * 2, *shape), dtype=dt)
                     for k, (shape, dt) in columns.items()}

    @property
    def end(self) -> int:
        """Global index after the last row."""
        return self.dropped + self.n

    def room(self, m: int, keep_from: int | None = None) -> None:
        """Make space for ``m`` more rows after the last one."""
        size = len(next(iter(self.cols.values())))
        if self.n + m > size:
            keep = min(self.cap, self.n) if keep_from is None \
                else self.n - min(max(keep_from - self.dropped, 0), self.n)
            grown = max(size, 2 * (keep + m))
            for k, a in self.cols.items():
                b = a if grown == size else np.zeros((grown, *a.shape[1:]), a.dtype)
                b[:keep] = a[self.n - keep:self.n]
                self.cols[k] = b
            self.dropped += self.n - keep
            self.n = keep

    def extend(self, keep_from: int | None = None, **values: np.ndarray) -> None:
        """Append rows; columns not given are left for the caller to fill."""
        m = len(next(iter(values.values())))
        if keep_from is None and m > self.cap:
            raise ValueError(f"block of {m} rows exceeds the ring's capacity {self.cap}")
        self.room(m, keep_from)
        for k, v in values.items():
            self.cols[k][self.n:self.n + m] = v
        self.n += m

    def rows(self, k0: int, k1: int) -> slice:
        """Rows of global indices k0..k1-1 (clipped to what is held)."""
        return slice(min(max(k0 - self.dropped, 0), self.n),
                     max(min(k1 - self.dropped, self.n), 0))

    def __getitem__(self, k: str) -> np.ndarray:
        return self.cols[k][:self.n]


class OnlineGaitAnalyzer:
    """Classical gait analysis of one track (source, body id); see the module docstring."""

    method = "classical"
    takes_foot_points = True  # push() takes canonical26 frames (heels and toes)

    def __init__(self, source: str, track: int = 0, **options: Any):
        self.source, self.track = source, int(track)
        self.opts = AnalyzerOptions.from_flat(options)
        o = self.opts
        self._smooth = Window(o.smoothing_back_ms, o.smoothing_ahead_ms, o.smoothing_degree,
                              o.smoothing_max_samples)
        self._ahead_us = int(o.smoothing_ahead_ms * 1000)
        if o.events.heel_smoothing_ms > o.smoothing_ahead_ms:
            raise ValueError("heel_smoothing_ms must not exceed smoothing_ahead_ms: the heels "
                             "are smoothed on the frames the joints wait for")
        self._heel_smooth = Window(o.events.heel_smoothing_ms, o.events.heel_smoothing_ms,
                                   o.smoothing_degree, o.smoothing_max_samples)
        self._batch_us = int(o.batch_ms * 1000)
        self._confirm_us = int(o.events.confirm_ms * 1000)
        back_s = max(o.smoothing_back_ms, o.frames.heading_back_ms) / 1000 + 0.5
        # Capacities in frames assume up to 500 Hz; a faster source only shortens the history.
        if o.events.strike_max_delay_ms > o.events.confirm_ms:
            raise ValueError("strike_max_delay_ms must not exceed confirm_ms: a strike is timed "
                             "on the samples the confirmation waits for")
        self._raw = Ring(int(500 * (back_s + o.smoothing_ahead_ms / 1000 + 0.5)), {
            "t": ((), np.int64), "j": ((N_POINTS, 3), np.float64), "w": ((N_POINTS,), np.float64),
            "h": ((6, 3), np.float64), "hw": ((6,), np.float64), "q": ((), np.int32),
        })
        self._tr = Ring(int(500 * o.history_s), {
            "t": ((), np.int64), "f": ((len(FEATURES),), np.float64), "q": ((), np.int32),
            "s": ((), np.int8), "a": ((), np.float64), "p": ((2, 3), np.float64),
            "v": ((), np.float64), "c": ((4,), np.float64),
            # smoothed lower-body joints, for the stride's clinical indices (float32: a
            # micrometre is far below what the angles resolve)
            "lj": ((len(_LOWER), 3), np.float32),
            # and the foot points (heels, toes; NaN where not seen), so that a stride whose heel
            # is seen throughout takes the heel -> toe foot axis as eval angles measures it
            "lf": ((N_POINTS - N_JOINTS, 3), np.float32),
        })
        self._final = 0  # global raw index of the next frame to finalise
        self._prepared = 0  # global raw index of the next frame without heading inputs/quality
        self._checked = {(k, s): 0 for k, _, _ in DETECTORS for s in SIDES}  # global trace idx
        self._signal_col = {(k, s): F[f"{p}_{s}"] for k, p, _ in DETECTORS for s in SIDES}
        # Sample time of each signal's last extremum (events.find_extrema's hysteresis).
        self._last_extremum: dict[tuple[str, str], int | None] = {
            (k, s): None for k, _, _ in DETECTORS for s in SIDES}
        self._bones = Ring(int(500 * o.bone_reference_s), {
            "t": ((), np.int64), "b": ((len(motion.BONES),), np.float64)})
        self._ref_bones: np.ndarray | None = None
        self._ref_update_us = 0
        self._events: list[Event] = []
        self._last_strike: dict[str, int | None] = {s: None for s in SIDES}
        self._pauses = Pauses(o.cycles.max_pause_s)  # that split strides (module docstring)
        # Strides paired, waiting for the headings to cover their turn: (side, fs0, fs1).
        self._strides: list[tuple[str, int, int]] = []
        self._turn_delay_us = int(motion.heading_delay_ms(o.frames, o.smoothing_ahead_ms) * 1000)
        self._bout = motion.BoutState()
        self._sign = motion.HeadingSign()
        self.bouts: list[tuple[int, int]] = []
        # Floor: a plane through the ankles while they rest (frames.estimate_floor), refitted
        # every second from the last ``floor_window_s``: its tilt against y, and the resting
        # ankles' level, from which ankle heights (foot lift) are measured; until a fit
        # exists, heights are from the wire's y = 0.
        self._still = Ring(int(500 * o.floor_window_s) * 2, {
            "t": ((), np.int64), "p": ((3,), np.float64)})
        self._floor_refit_us = 0
        self.floor: dict[str, float] | None = None  # ankle_level_m (along y), tilt_deg
        self.counters = {"frames": 0, "rejected": 0, "events": 0, "cycles": 0,
                         "unpaired_strikes": 0}
        self.trace: dict[str, list[np.ndarray]] = {"t": [], "f": [], "q": [], "s": [], "d": []}
        self._last_t: int | None = None

    # ------------------------------------------------------------------ public

    @property
    def lookahead_ms(self) -> float:
        return self.opts.lookahead_ms

    def push(self, t_us: int, joints: np.ndarray, conf: np.ndarray) -> list[GaitEvent | GaitCycle]:
        """Add one frame; returns the events and cycles decided by it (possibly none).

        ``joints``/``conf``: the 22 canonical joints, or canonical26 (with the foot points).
        A frame with a non-increasing timestamp or wrong shapes is rejected (counted, logged);
        non-finite joints are treated as not tracked."""
        t_us = int(t_us)
        j, c = np.asarray(joints), np.asarray(conf)
        nj = len(j)
        if nj not in (N_JOINTS, N_POINTS) or j.shape != (nj, 3) or c.shape != (nj,):
            return self._reject(f"shapes {j.shape}/{c.shape}, expected (22, 3)/(22,) or "
                                "(26, 3)/(26,)")
        if self._last_t is not None and t_us <= self._last_t:
            return self._reject(f"timestamp {t_us} not after {self._last_t}")
        # Written straight into the next row of the buffer (as float64), then sanitised there.
        raw = self._raw
        raw.room(1)
        row = raw.n
        jr, cr = raw.cols["j"][row], raw.cols["w"][row]
        jr[:nj] = j
        cr[:nj] = c
        if nj < N_POINTS:
            jr[nj:] = 0.0
            cr[nj:] = 0.0
        # A sum is finite only when every term is (a huge finite one only takes the long way).
        if not math.isfinite(np.add.reduce(jr, None) + np.add.reduce(cr)):  # rare: per joint then
            bad = ~np.isfinite(jr).all(axis=1) | ~np.isfinite(cr)
            jr[bad] = 0.0
            cr[bad] = 0.0
        np.minimum(np.maximum(cr, 0.0, out=cr), 1.0, out=cr)
        raw.cols["t"][row] = t_us
        raw.n += 1
        self._last_t = t_us
        self.counters["frames"] += 1
        return self._advance(final=False)

    def flush(self) -> list[GaitEvent | GaitCycle]:
        """End of stream: decide on the frames and extrema still waiting for look-ahead."""
        out = self._advance(final=True)
        b = motion.bout_end(self._bout)
        if b:
            self.bouts.append(b)
        self._bout = motion.BoutState()
        return out

    def trace_arrays(self) -> dict[str, np.ndarray]:
        """Every finalised frame (needs ``keep_trace=True``): t (N,), f (N, F) features,
        q quality bits, s motion state, d (N, 3) walking direction."""
        width = {"f": (len(FEATURES),), "d": (3,)}
        return {k: np.concatenate(v) if v else np.zeros((0, *width.get(k, ())))
                for k, v in self.trace.items()}

    def joint_angles(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(t_us, {hip/knee flexion and ankle dorsiflexion per side: degrees}) of every
        finalised frame; needs ``keep_trace=True``."""
        if not self.opts.keep_trace:
            raise RuntimeError("joint_angles() needs the analyzer built with keep_trace=True")
        tr = self.trace_arrays()
        f = tr["f"].reshape(-1, len(FEATURES))
        names = [f"{a}_{s}" for a in ("hip_flexion", "knee_flexion", "ankle_dorsiflexion")
                 for s in SIDES]
        return tr["t"].astype(np.int64), {n: f[:, F[n]] for n in names}

    # ------------------------------------------------------------------ internals

    def _reject(self, why: str) -> list:
        self.counters["rejected"] += 1
        log.warning("%s/%d: frame rejected: %s", self.source, self.track, why)
        return []

    def _prepare(self) -> None:
        """Heading inputs, quality bits and bone lengths of the raw frames not yet done, in one
        vectorised step (quality looks at each frame's predecessor)."""
        raw, o = self._raw, self.opts.frames
        a = max(self._prepared - raw.dropped, 0)
        n = raw.n
        if a >= n:
            return
        j, w, t = raw["j"], raw["w"], raw["t"]
        j, w = j[:, :N_JOINTS], w[:, :N_JOINTS]
        raw.cols["h"][a:n] = motion.heading_inputs(j[a:n])
        raw.cols["hw"][a:n] = motion.heading_weights(w[a:n], o.min_confidence)
        p = a - 1 if a > 0 else 0
        tt = t[p:n] if a > 0 else np.concatenate([[t[0] - 1], t[:n]])
        jj = j[p:n] if a > 0 else np.concatenate([j[:1], j[:n]])
        ww = w[p:n] if a > 0 else np.concatenate([w[:1], w[:n]])
        raw.cols["q"][a:n], bones, low = motion.quality_details(tt, jj, ww, self._ref_bones, o)
        good = low >= o.min_confidence  # every required joint (confidences are finite here)
        if good.any():
            self._bones.extend(t=t[a:n][good], b=bones[good])
        self._prepared = raw.dropped + n
        now = int(t[n - 1])
        if now >= self._ref_update_us and self._bones.n >= 10:
            keep = self._bones["t"] >= now - int(self.opts.bone_reference_s * 1e6)
            if keep.sum() >= 10:
                self._ref_bones = _median(self._bones["b"][keep])
                self._ref_update_us = now + 500_000

    def _leg_length(self) -> float | None:
        if self._ref_bones is None:
            return None
        b = self._ref_bones  # thigh and shank of both sides (frames.BONES order)
        return float((b[0] + b[1] + b[2] + b[3]) / 2)

    def _advance(self, final: bool) -> list[GaitEvent | GaitCycle]:
        raw = self._raw
        if raw.n == 0:
            return []
        t = raw["t"]
        lo = self._final - raw.dropped
        if final:
            hi = raw.n
        else:
            hi = int(t.searchsorted(t[-1] - self._ahead_us, "right"))
            if hi > lo and t[hi - 1] - t[lo] < self._batch_us:
                return []  # the group is not complete yet
        if hi > lo:
            self._finalise(lo, hi)
            self._final = raw.dropped + hi
        return self._detect(final)

    def _finalise(self, lo: int, hi: int) -> None:
        self._prepare()
        raw, tr, o = self._raw, self._tr, self.opts
        t = raw["t"]
        q = np.arange(lo, hi)
        tq = t[lo:hi]
        val, vel = local_poly(t, raw["j"], self._smooth, raw["w"], q)
        d, speed, from_body = motion.headings(t, raw["h"], raw["hw"], o.frames,
                                          o.smoothing_ahead_ms, q)
        d = motion.hold_heading_sign(self._sign, tq, d, from_body, o.frames.heading_flip_hold_ms)
        # the foot axis is heel -> toe where the heel is seen (kinematics.foot_axis)
        feats = features(val, vel, d, self.floor["ankle_level_m"] if self.floor else 0.0,
                         heel_seen=raw.cols["w"][lo:hi, _HEEL_POINTS] >= o.frames.min_confidence)
        if (raw.cols["w"][lo:hi, _HEEL_POINTS] > 0).any():  # the heels' own, shorter window
            _, heel_vel = local_poly(t, raw["j"][:, _HEEL_POINTS], self._heel_smooth,
                                     raw["w"][:, _HEEL_POINTS], q)
            feats[:, _HEEL_COLS[2:]] = heel_vel[..., 1]
        # A heel seen at low confidence (a tracker's guess) times no strike and measures no step.
        unseen = raw.cols["w"][lo:hi, _HEEL_POINTS] < o.frames.min_confidence  # (Q, 2)
        feats[:, _HEEL_COLS] = np.where(np.tile(unseen, 2), np.nan, feats[:, _HEEL_COLS])
        self._update_floor(tq, val, vel)
        quality = raw.cols["q"][lo:hi] | np.where(from_body, motion.Q_DIRECTION_FROM_BODY, 0) \
            | np.where(motion.legs_crossed(val[:, :N_JOINTS], d), motion.Q_LR_SWAP, 0)
        angle = motion.heading_angle(d)
        # The new rows go into the trace first: the foot range, turn rate and foot travel look
        # back over the trace including them; the columns made from those are filled after.
        seen = raw.cols["w"][lo:hi, N_JOINTS:] >= o.frames.min_confidence
        tr.extend(t=tq, f=feats, q=quality, a=angle, p=val[:, _ANKLES],
                  c=raw.cols["w"][lo:hi, _FEET], lj=val[:, _LOWER],
                  lf=np.where(seen[..., None], val[:, N_JOINTS:], np.nan))
        k = tr.n - (hi - lo)
        foot_range, turn = motion_inputs(tr["t"], tr["f"], tr["a"], k)
        state = motion.motion_state(speed, foot_range, turn, o.frames)
        tr.cols["s"][k:tr.n] = state
        tr.cols["v"][k:tr.n] = self._travel(k)
        stand_v, foot_v = o.frames.standing_speed_mps, o.frames.moving_foot_speed_mps
        for ti, st, (pelvis_v, left_v, right_v) in zip(tq.tolist(), state.tolist(),
                                                       feats[:, _MOVING].tolist()):
            moving = pelvis_v >= stand_v or abs(left_v) >= foot_v or abs(right_v) >= foot_v
            done = motion.bout_step(self._bout, ti, st == motion.WALKING, moving)
            if done:
                self.bouts.append(done)
            self._pauses.note(ti, st == motion.STANDING)
        if o.keep_trace:
            for key, v in (("t", tq), ("f", feats), ("q", quality), ("s", state), ("d", d)):
                self.trace[key].append(np.array(v, copy=True))

    def _travel(self, k: int) -> np.ndarray:
        """Per new trace row from ``k`` on: how far the farther-moving ankle went horizontally
        (smoothed positions) over the ``foot_travel_ms`` before it (or since the track began);
        NaN where an ankle is unknown then or now, or the track is younger than half that."""
        tr = self._tr
        back = int(self.opts.events.foot_travel_ms * 1000)
        t, p = tr["t"], tr["p"]
        tq = t[k:]
        i0 = np.minimum(t.searchsorted(tq - back, "left"), np.arange(k, tr.n))
        dd = p[k:] - p[i0]
        dist = np.sqrt(dd[..., 0] ** 2 + dd[..., 2] ** 2).max(axis=1)
        dist[t[i0] > tq - back // 2] = np.nan
        return dist

    def _update_floor(self, tq: np.ndarray, val: np.ndarray, vel: np.ndarray) -> None:
        still = motion.norm(vel[:, _ANKLES]) < self.opts.frames.standing_speed_mps  # (Q, 2)
        rows, sides = np.nonzero(still)
        if len(rows):
            self._still.extend(t=tq[rows], p=val[rows, _ANKLES[sides]])
        now = int(tq[-1])
        if now < self._floor_refit_us or self._still.n < 30:
            return
        self._floor_refit_us = now + 1_000_000
        recent = self._still["t"] >= now - int(self.opts.floor_window_s * 1e6)
        try:
            _, level, tilt = motion.estimate_floor(self._still["p"][recent])
        except ValueError:
            return  # not yet spread in two directions (one foot line): keep what we had
        self.floor = {"ankle_level_m": level, "tilt_deg": tilt}

    def _detect(self, final: bool) -> list[GaitEvent | GaitCycle]:
        tr, o = self._tr, self.opts
        if tr.n < 3:
            return []
        t = tr["t"]
        ready = tr.n if final else int(t.searchsorted(t[-1] - self._confirm_us, "right"))
        prom = prominence_threshold(self._leg_length(), o.events)
        span = int(max(o.events.back_ms, o.events.rise_window_ms, o.events.range_window_ms)
                   * 1000)
        found: list[tuple[int, str, str, float]] = []
        los: dict[int, int] = {}  # first row each detector looks at, per first new row
        for kind, prefix, sign in DETECTORS:
            for side in SIDES:
                start = max(self._checked[(kind, side)] - tr.dropped, 0)
                if ready <= start:
                    continue
                lo = los.get(start)
                if lo is None:
                    lo = los[start] = int(t.searchsorted(t[start] - span, "left"))
                s = tr["f"][:, self._signal_col[(kind, side)]]
                for ex in find_extrema(t[lo:], s[lo:], sign, o.events, prom,
                                       start - lo, ready - lo, self._last_extremum[(kind, side)]):
                    k = lo + ex.index
                    self._last_extremum[(kind, side)] = int(t[k])
                    if not self._plausible(kind, side, k, ex.prominence, prom):
                        continue
                    t_ev = ex.t_us
                    heel = None
                    if kind == "foot_strike":
                        heel = heel_strike_time(t[lo:], tr["f"][lo:, F[f"heel_vy_{side}"]],
                                                ex.index, o.events)
                    if heel is not None:
                        t_ev = heel
                    elif kind == "foot_strike" and o.events.strike_fraction > 0:
                        f = tr["f"][lo:]
                        opp = "right" if side == "left" else "left"
                        v_ref = -f[ex.index, F[f"foot_fwd_vel_{opp}"]]
                        ts = strike_time(t[lo:], f[:, F[f"ankle_fwd_vel_{side}"]], ex.index,
                                         v_ref, o.events.strike_fraction,
                                         o.events.strike_max_delay_ms)
                        t_ev = ts if ts is not None else t_ev
                    found.append((t_ev, side, kind, min(1.0, ex.prominence / (3 * prom))))
                self._checked[(kind, side)] = tr.dropped + ready
        out: list[GaitEvent | GaitCycle] = []
        for t_ev, side, kind, conf in sorted(found):
            out.append(GaitEvent(source=self.source, seq=0, t_us=int(t[-1]), host_us=0,
                                 track=self.track, side=side, kind=kind, event_us=t_ev,
                                 method=self.method, confidence=conf))
            self.counters["events"] += 1
            self._events.append(Event(side, kind, t_ev))
            if kind == "foot_strike":
                self._pair(side, t_ev)
                self._last_strike[side] = t_ev
        out += self._emit_cycles(final)
        keep_from = int(t[-1]) - int(self.opts.history_s * 1e6)
        self._events = [e for e in self._events if e.t_us >= keep_from]
        return out

    def _plausible(self, kind: str, side: str, k: int, rise: float, prom: float) -> bool:
        """Whether the extremum at trace row ``k`` can be a step (events module docstring):

        * an ankle moved at least ``min_foot_travel_m`` within ``foot_travel_ms`` in the frames
          up to it, looking back ``foot_travel_ms`` more (a strike ends its foot's swing, a foot
          off follows the other foot's); unknown counts as moved, since a foot the tracker lost
          is no evidence of standing;
        * a foot the tracker reported below ``min_confidence`` for most of the 150 ms up to it
          (occluded: its position is the tracker's guess, several times noisier) rose by at
          least ``low_confidence_prominence`` times the prominence.
        """
        tr, o = self._tr, self.opts
        t = tr["t"]
        k0 = int(t.searchsorted(t[k] - int(o.events.foot_travel_ms * 1000), "left"))
        travel = np.fmax.reduce(tr["v"][k0:k + 1])  # NaN: unknown throughout
        if not (travel != travel or travel >= o.events.min_foot_travel_m):
            return False
        k0 = int(t.searchsorted(t[k] - 150_000, "left"))
        conf = tr["c"][k0:k + 1, _FOOT_COLUMN[(kind, side)]]
        return np.count_nonzero(conf < o.frames.min_confidence) / len(conf) < 0.5 \
            or rise >= o.events.low_confidence_prominence * prom

    def _pair(self, side: str, fs1: int) -> None:
        """Queue the stride that ``side``'s strike at ``fs1`` closes; none for the first strike
        of a walk (none before it, or a pause between: module docstring)."""
        fs0 = self._last_strike[side]
        if fs0 is None:
            return
        known = [s for s in self._last_strike.values() if s is not None] + [fs1]
        if self._pauses.splits(fs0, fs1, min(known)):
            self.counters["unpaired_strikes"] += 1
            return
        self._strides.append((side, fs0, fs1))

    def _indices(self, side: str, fs0: int, fs1: int, speed: float | None) -> dict[str, float]:
        """The stride's GDI, GPS and GVS from the trace's smoothed joints (none when the
        trace does not cover it)."""
        tr = self._tr
        j = np.full((tr.n, N_POINTS, 3), np.nan)
        j[:, _LOWER] = tr["lj"]
        j[:, N_JOINTS:] = tr["lf"]
        # up: the floor's normal (a pitched camera's y is not vertical, and the sagittal
        # angles would carry its pitch), from the resting ankles of the floor window before
        # the stride's end: the same whenever the stride is emitted (batching changes latency,
        # not results), unlike self.floor, refitted on the batches' clock
        still = self._still
        recent = (still["t"] <= fs1) & (still["t"] >= fs1 - int(self.opts.floor_window_s * 1e6))
        try:
            up = motion.estimate_floor(still["p"][recent])[0] if recent.sum() >= 30 else None
        except ValueError:
            up = None  # the ankles rested on one line only so far: the wire's y
        return stride_indices(tr["t"], j, side, fs0, fs1, speed, smooth=False, up=up)

    def _emit_cycles(self, final: bool) -> list[GaitCycle]:
        """Records of the queued strides whose turn the headings can judge: those reach
        ``heading_delay`` past the stride's end (all of them at the end of the stream)."""
        tr = self._tr
        t = tr["t"]
        out = []
        while self._strides and (final or t[-1] >= self._strides[0][2] + self._turn_delay_us):
            side, fs0, fs1 = self._strides.pop(0)
            cycle = stride_cycle(self.source, self.track, side, fs0, fs1, self._events, t,
                                 tr["f"], tr["q"], tr["s"], tr["a"], self.opts.cycles,
                                 int(t[-1]), self._turn_delay_us)
            if self.opts.clinical_indices:
                cycle.metrics.update(self._indices(side, fs0, fs1, cycle.metrics["speed_mps"]))
            out.append(cycle)
            self.counters["cycles"] += 1
        return out

