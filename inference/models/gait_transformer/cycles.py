"""GaitCycle records of the gait transformer's strides, measured like the classical analysis'.

The model gives events; a stride of side X runs from a foot strike of X to its next one, with
the other events inside it, exactly as in the classical analysis, and its record comes from the
same code (``cycles.cycle_record``): same fields, units, quality flags and trust rules. Only the
events and the hip and knee angles are the model's; everything else is measured on the skeleton
frames the tracker already holds, through the functions the classical analysis uses:

* the frames are the model's grid frames (the input resampled to ``MODEL_RATE_HZ``), smoothed by
  the classical analysis' local polynomial (``filters.local_poly``, its window; positions and
  velocities) once its look-ahead has arrived, which the model's own look-ahead (half a window)
  always covers;
* the walking direction is the model's heading (``FeatureStream``: an average of the hip and
  shoulder lines), so step length is ankle-to-ankle along the direction the model measures its
  forward positions in, step width across it (``kinematics.features``);
* hip and knee flexion (so the cycle's hip and knee range and peak swing knee flexion) are the
  model's predictions (trained on the classical definition, ``features.kinematics``); the
  arm swing is the skeleton's;
* quality bits per frame as in the classical analysis (``motion.quality_flags`` against the
  track's median bone lengths, ``motion.legs_crossed``) plus ``time_gap`` where the source
  stopped for longer than ``max_gap_ms``; ``direction_from_body`` is never set: the model's
  heading always comes from the body;
* the motion state (standing / walking / turning: ``motion.motion_state``) from the pelvis
  speed, the feet's forward excursion and the heading's turn over the last second
  (``analyzer.motion_inputs``, the classical analysis' code); a pause
  (standing or no data for ``max_pause_s``) between two strikes makes them parts of two walks:
  no record, counted as ``unpaired_strikes`` (``cycles.Pauses``, the classical analysis' code);
* a stride is ``turning`` when the model's heading swings more than ``max_turn_deg`` through
  it, read that heading's own delay later (``cycles.stride_cycle``, the classical rule): the
  record waits until the measured frames reach that far past the stride's end (all of them at
  the end of the track).
"""

from __future__ import annotations

import numpy as np

from inference.analysis import motion
from inference.analysis.cycles import Event, Pauses, stride_cycle
from inference.analysis.filters import Window, local_poly
from inference.models.gait_transformer.features import HEADING_TAU_S
from inference.analysis.kinematics import F, FEATURES, features
from inference.analysis.analyzer import Ring, motion_inputs
from streams.schema import GaitCycle

# Per-frame columns the model predicts and the cycle measures read, with its output names.
MODEL_ANGLES = ("hip_flexion_left", "hip_flexion_right", "knee_flexion_left",
                "knee_flexion_right")


def heading_delay_us(dt_us: float, tau_s: float = HEADING_TAU_S) -> int:
    """How long the model's heading (``FeatureStream``: an exponential average, weight
    a = 1 - exp(-dt / tau) per frame) lags a steady turn: (1 - a) / a frames, just under tau
    (383 ms at 30 Hz; a simulated U-turn measures 370-380 ms)."""
    return int(dt_us / np.expm1(dt_us / (tau_s * 1e6)))


class ModelCycles:
    """Cycle records of one track from the model's events; fed the track's grid frames
    (``add_frames``), the model's angle outputs (``add_outputs``) and events (``add_event``),
    in time order."""

    def __init__(self, source: str, track: int, method: str, options, t0_us: float,
                 dt_us: float, keep_s: float):
        """``options``: ``inference.analysis.analyzer.AnalyzerOptions`` (the classical
        analysis' smoothing, frame and cycle options); ``t0_us``/``dt_us``: the grid's origin and spacing;
        ``keep_s``: how long a stride's frames must stay after they were measured (the longest
        stride plus the model's look-ahead)."""
        self.source, self.track, self.method = source, int(track), method
        o = options
        self.opts = o
        self._win = Window(o.smoothing_back_ms, o.smoothing_ahead_ms, o.smoothing_degree,
                           o.smoothing_max_samples)
        self.t0, self.dt = float(t0_us), float(dt_us)
        self._ahead = int(np.ceil(o.smoothing_ahead_ms * 1000 / dt_us))
        self._back = int(np.ceil(o.smoothing_back_ms * 1000 / dt_us))
        # frames the motion state looks back over (``analyzer.motion_inputs``: the last second)
        self._second = int(np.ceil(1e6 / dt_us)) + 1
        # Both rings hold every grid frame from the first, so a row's global index is its
        # grid index. Grid frames not yet measured, and the smoothing's look-back before them:
        self._raw = Ring(2 * (self._back + self._ahead) + 32, {
            "j": ((22, 3), np.float64), "w": ((22,), np.float64), "v": ((), bool),
            "d": ((3,), np.float64), "gap": ((), bool)})
        self._done = 0  # grid index of the next frame to measure
        # measured frames: time, features, quality bits, motion state, heading angle
        self._keep = int(keep_s * 1e6 / dt_us) + self._second + 2
        self._hist = int(o.history_s * 1e6 / dt_us) + 2  # a stride's frames, at most
        self._out_end = 0  # grid index after the last frame with model outputs
        self._tr = Ring(self._keep, {
            "t": ((), np.int64), "f": ((len(FEATURES),), np.float64), "q": ((), np.int32),
            "s": ((), np.int8), "a": ((), np.float64)})
        # bone lengths (and grid indices) of the frames with every required joint seen
        self._bone_k = np.zeros(0, np.int64)
        self._bone_len = np.zeros((0, len(motion.BONES)))
        self._ref_bones: np.ndarray | None = None
        self._ref_at = 0
        self._events: list[Event] = []
        self._last_strike: dict[str, int | None] = {"left": None, "right": None}
        self._pauses = Pauses(o.cycles.max_pause_s)
        # Strides paired, waiting for the measured headings to cover their turn: (side, fs0, fs1)
        self._strides: list[tuple[str, int, int]] = []
        self._turn_delay_us = heading_delay_us(dt_us)
        self._finished = False
        self.counters = {"cycles": 0, "unpaired_strikes": 0}

    def time_us(self, k: np.ndarray | int) -> np.ndarray:
        return self.t0 + np.asarray(k, np.float64) * self.dt

    # -- frames in ------------------------------------------------------------------------
    def add_frames(self, k0: int, joints: np.ndarray, conf: np.ndarray, valid: np.ndarray,
                   fwd: np.ndarray, gap: np.ndarray) -> list[GaitCycle]:
        """Grid frames k0.. (joints (m, 22, 3), conf (m, 22), valid (m,), walking direction
        (m, 3), NaN where the model has no heading; gap (m,): the source stopped for longer
        than ``max_gap_ms`` before it); measures those whose smoothing look-ahead is in.
        Returns the records of waiting strides whose turn the headings now cover."""
        if k0 != self._raw.end:
            raise ValueError(f"grid frame {k0} after {self._raw.end - 1}: frames must follow on")
        self._raw.extend(self._done - self._back, j=joints,
                         w=np.where(valid[:, None], conf, 0.0), v=valid, d=fwd, gap=gap)
        self._measure(self._raw.end - self._ahead)
        return self._emit(int(self._tr["t"][-1])) if self._tr.n else []

    def finish(self) -> list[GaitCycle]:
        """End of the track: measure every frame left; the records of the waiting strides
        (and of those still to come, at once: no heading will arrive after them)."""
        self._measure(self._raw.end)
        self._finished = True
        return self._emit(int(self._tr["t"][-1])) if self._tr.n else []

    def _measure(self, upto: int) -> None:
        if upto <= self._done:
            return
        raw, o = self._raw, self.opts
        k = np.arange(self._done, upto)
        t = self.time_us(np.arange(raw.dropped, raw.end)).astype(np.int64)
        q = k - raw.dropped
        val, vel = local_poly(t, raw["j"], self._win, raw["w"], q)
        d = raw["d"][q]
        valid = raw["v"][q] & np.isfinite(d).all(axis=1)
        d = np.where(valid[:, None], d, 0.0)
        feats = features(val, vel, d)
        feats[~valid] = np.nan
        # quality bits against each frame's predecessor (the very first is its own)
        pq = np.concatenate([[max(q[0] - 1, 0)], q])
        tq = t[pq]
        if q[0] == 0:
            tq[0] -= 1
        quality, bones, low = motion.quality_details(tq, raw["j"][pq], raw["w"][pq],
                                                     self._ref_bones, o.frames)
        quality |= np.where(motion.legs_crossed(val, d) & valid, motion.Q_LR_SWAP, 0)
        quality |= np.where(raw["gap"][q] | ~raw["v"][q], motion.Q_GAP, 0)
        self._update_bones(k, bones, valid & (low >= o.frames.min_confidence))
        angle = np.where(valid, motion.heading_angle(d), np.nan)
        # Rows a stride may still need stay: the model's outputs (and events) can lag the
        # frames by a whole batch of windows. Not without bound: outputs that never come (a
        # failed batch) must not grow the trace for the rest of the track. The second before
        # the new rows stays too: their motion state looks back over it.
        tr = self._tr
        end = tr.end + len(k)
        keep_from = max(min(end - self._keep, self._out_end - self._hist), end - 8 * self._keep)
        tr.extend(min(keep_from, int(k[0]) - self._second), t=t[q], f=feats, q=quality,
                  a=angle)
        new = tr.n - len(k)
        # the classical analysis' motion state; the pelvis speed stands in for its path speed
        foot_range, turn = motion_inputs(tr["t"], tr["f"], tr["a"], new)
        state = motion.motion_state(np.nan_to_num(feats[:, F["pelvis_speed"]]), foot_range, turn,
                                o.frames)
        tr.cols["s"][new:tr.n] = state
        # a frame without data is still: no data for max_pause_s is a pause too
        for ti, still in zip(t[q].tolist(), ((state == motion.STANDING) | ~valid).tolist()):
            self._pauses.note(ti, still)
        self._done = upto

    def _update_bones(self, k: np.ndarray, bones: np.ndarray, good: np.ndarray) -> None:
        """The track's median bone lengths over ``bone_reference_s``, refreshed every half
        second (the classical analysis' reference for the bone_length flag), from the frames'
        bone lengths (as ``motion.quality_details`` measured them) where every required joint
        was seen (``good``)."""
        o = self.opts
        if good.any():
            self._bone_k = np.concatenate([self._bone_k, k[good]])
            self._bone_len = np.concatenate([self._bone_len, bones[good]])
        now = int(k[-1])
        if now < self._ref_at:
            return
        self._ref_at = now + int(0.5e6 / self.dt)
        recent = self._bone_k >= now - int(o.bone_reference_s * 1e6 / self.dt)
        self._bone_k, self._bone_len = self._bone_k[recent], self._bone_len[recent]
        if len(self._bone_k) >= 10:
            self._ref_bones = np.median(self._bone_len, axis=0)

    # -- model outputs and events -----------------------------------------------------------
    def add_outputs(self, k0: int, y: np.ndarray, columns: dict[str, int]) -> None:
        """The model's hip and knee flexion of grid frames k0.. (``y`` rows, ``columns`` the
        output index of each of ``MODEL_ANGLES``) replace the skeleton's in the trace."""
        self._out_end = max(self._out_end, k0 + len(y))
        rows = self._tr.rows(k0, k0 + len(y))
        src = slice(rows.start - (k0 - self._tr.dropped), rows.stop - (k0 - self._tr.dropped))
        for name in MODEL_ANGLES:
            self._tr.cols["f"][rows, F[name]] = y[src, columns[name]]

    def add_event(self, side: str, kind: str, t_us: int, now_us: int) -> list[GaitCycle]:
        """An event of the model, in time order; a foot strike closes the stride since the
        previous strike of its side (none for the first strike of a walk). Returns the records
        of the strides whose turn the headings cover (usually this one: the model's events lag
        its frames by half a window)."""
        self._events.append(Event(side, kind, int(t_us)))
        if kind != "foot_strike":
            return []
        fs0, self._last_strike[side] = self._last_strike[side], int(t_us)
        if fs0 is not None:
            fs1 = int(t_us)
            known = [s for s in self._last_strike.values() if s is not None]
            if self._pauses.splits(fs0, fs1, min(known)):
                self.counters["unpaired_strikes"] += 1
            else:
                self._strides.append((side, fs0, fs1))
        out = self._emit(int(now_us))
        # trimmed after the records: a stride that waited may begin before this one's history
        keep_from = int(t_us) - int(self.opts.history_s * 1e6)
        self._events = [e for e in self._events if e.t_us >= keep_from]
        return out

    def _emit(self, now_us: int) -> list[GaitCycle]:
        """Records of the waiting strides whose turn the measured headings can judge: they reach
        the heading's delay past the stride's end (all of them once the track has finished)."""
        tr = self._tr
        t = tr["t"]
        out = []
        while self._strides and (self._finished or (
                tr.n and t[-1] >= self._strides[0][2] + self._turn_delay_us)):
            side, fs0, fs1 = self._strides.pop(0)
            cyc = stride_cycle(self.source, self.track, side, fs0, fs1, self._events, t,
                               tr["f"], tr["q"], tr["s"], tr["a"], self.opts.cycles, now_us,
                               self._turn_delay_us)
            cyc.method = self.method
            self.counters["cycles"] += 1
            out.append(cyc)
        return out
