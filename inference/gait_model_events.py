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
        out: list[PhaseEvent] = []
        cs = np.asarray(phases, np.float64).reshape(len(t_us), len(EVENTS), 2)
        theta = np.arctan2(cs[..., 1], cs[..., 0])
        r = np.hypot(cs[..., 0], cs[..., 1])
        for i, t in enumerate(np.asarray(t_us, np.float64)):
            th, ri = theta[i], r[i]
            if not np.all(np.isfinite(th)):
                self.prev_t = None
                self.prev_theta[:] = np.nan
                continue
            if self.prev_t is not None:
                p = self.prev_theta
                up = (p < 0) & (th >= 0) & (th - p < np.pi)
                for e in np.flatnonzero(up & self.armed):
                    conf = float(min(self.prev_r[e], ri[e], 1.0))
                    if conf < self.min_confidence:
                        continue
                    frac = -p[e] / (th[e] - p[e])
                    side, kind = EVENTS[e]
                    out.append(PhaseEvent(side, kind, self.prev_t + frac * (t - self.prev_t),
                                          conf))
                    self.armed[e] = False
            self.armed |= np.abs(th) > np.pi / 2
            self.prev_t, self.prev_theta, self.prev_r = float(t), th, ri
        out.sort(key=lambda ev: ev.t_us)
        return out


def detect_events(t_us: np.ndarray, phases: np.ndarray,
                  min_confidence: float = MIN_CONFIDENCE) -> list[PhaseEvent]:
    """All events of a whole series (the offline form of ``PhaseEventDetector``)."""
    return PhaseEventDetector(min_confidence).push(t_us, phases)
