"""Gait events from predicted phases: an event is the zero crossing of its phase.

Each event kind (left/right foot strike/off) has a phase θ = atan2(sin, cos) that rises from
0 at one occurrence to 2π (≡ 0) at the next. An event is an upward crossing of θ = 0, timed to a
fraction of a frame by linear interpolation of θ between the two frames around it; the wrap at
±π is not a crossing. After an event the detector re-arms only once |θ| has passed π/2, so
jitter around zero cannot fire twice. The confidence is the length of the (cos, sin) vector,
which the model shrinks where it is unsure of the phase.

Pure and incremental: ``PhaseEventDetector.push`` takes frames in time order (any number at a
time) and keeps what it needs between calls, so online and offline detection agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.gait_features import EVENTS

MIN_CONFIDENCE = 0.3


@dataclass(frozen=True)
class PhaseEvent:
    side: str
    kind: str
    t_us: float  # sub-frame time on the source clock
    confidence: float


class PhaseEventDetector:
    def __init__(self, min_confidence: float = MIN_CONFIDENCE):
        self.min_confidence = min_confidence
        self.prev_t: float | None = None
        self.prev_theta = np.full(len(EVENTS), np.nan)
        self.prev_r = np.zeros(len(EVENTS))
        self.armed = np.ones(len(EVENTS), bool)

    def push(self, t_us: np.ndarray, phases: np.ndarray) -> list[PhaseEvent]:
        """``t_us`` (n,) frame times, ``phases`` (n, 8) (cos, sin) per event in ``EVENTS``
        order; a row with NaN (no prediction for that frame) breaks continuity."""
        t = np.asarray(t_us, np.float64)
        n = len(t)
        if n == 0:
            return []
        cs = np.asarray(phases, np.float64).reshape(n, len(EVENTS), 2)
        theta = np.arctan2(cs[..., 1], cs[..., 0])
        r = np.hypot(cs[..., 0], cs[..., 1])
        finite = np.isfinite(theta).all(axis=1)
        # The state is the previous finite row; a non-finite row resets it. Whole-block array
        # maths finds the candidate crossings; only those few are walked in order (arming).
        has_prev = self.prev_t is not None
        prev_ok = np.concatenate([[has_prev], finite[:-1]])
        p = np.vstack([self.prev_theta[None], theta[:-1]])
        pr = np.vstack([self.prev_r[None], r[:-1]])
        pt = np.concatenate([[self.prev_t if has_prev else np.nan], t[:-1]])
        with np.errstate(invalid="ignore"):
            up = (p < 0) & (theta >= 0) & (theta - p < np.pi) & (prev_ok & finite)[:, None]
            arm = (np.abs(theta) > np.pi / 2) & finite[:, None]
        out: list[PhaseEvent] = []
        for e in range(len(EVENTS)):
            rows = np.flatnonzero(up[:, e] | arm[:, e])
            armed = bool(self.armed[e])
            for i in rows:
                if up[i, e] and armed:
                    conf = float(min(pr[i, e], r[i, e], 1.0))
                    if conf >= self.min_confidence:
                        frac = -p[i, e] / (theta[i, e] - p[i, e])
                        side, kind = EVENTS[e]
                        out.append(PhaseEvent(side, kind,
                                              float(pt[i] + frac * (t[i] - pt[i])), conf))
                        armed = False
                if arm[i, e]:
                    armed = True
            self.armed[e] = armed
        if finite[-1]:
            self.prev_t, self.prev_theta, self.prev_r = float(t[-1]), theta[-1], r[-1]
        else:
            self.prev_t = None
            self.prev_theta = np.full(len(EVENTS), np.nan)
        out.sort(key=lambda ev: ev.t_us)
        return out


def detect_events(t_us: np.ndarray, phases: np.ndarray,
                  min_confidence: float = MIN_CONFIDENCE) -> list[PhaseEvent]:
    """All events of a whole series (the offline form of ``PhaseEventDetector``)."""
    return PhaseEventDetector(min_confidence).push(t_us, phases)
