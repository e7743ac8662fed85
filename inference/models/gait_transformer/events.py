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

from inference.models.gait_transformer.features import EVENTS

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
        # The state is the previous finite row; a non-finite row resets it. Whole-block array
        # maths finds the candidate crossings; only those few are walked in order (arming).
        # The previous theta is NaN where there is none, so comparisons with it are False.
        p = np.empty_like(theta)
        p[0] = self.prev_theta
        p[1:] = theta[:-1]
        all_finite = bool(np.isfinite(theta).all())
        # (comparisons and differences with NaN are False / NaN, without a warning)
        up = (p < 0) & (theta >= 0) & (theta - p < np.pi)
        arm = np.abs(theta) > np.pi / 2
        if not all_finite:  # a partly non-finite row also breaks continuity for every event
            finite = np.isfinite(theta).all(axis=1)
            up &= (np.concatenate([[True], finite[:-1]]) & finite)[:, None]
            arm &= finite[:, None]
        out: list[PhaseEvent] = []
        # Only the rows with an upward crossing are walked: a detector is armed at such a row
        # if it was armed before, or an arming row lies between the last firing (inclusive:
        # arming is judged after the crossing in the same row) and this row.
        cols = up.any(axis=0) | ~self.armed
        if cols.any():
            r = np.hypot(cs[..., 0], cs[..., 1])
        for e in np.flatnonzero(cols).tolist():
            armed = bool(self.armed[e])
            since = 0
            for i in np.flatnonzero(up[:, e]).tolist():
                if not armed and arm[since:i, e].any():
                    armed = True
                if armed:
                    pr = r[i - 1, e] if i > 0 else self.prev_r[e]
                    conf = float(min(pr, r[i, e], 1.0))
                    if conf >= self.min_confidence:
                        frac = -p[i, e] / (theta[i, e] - p[i, e])
                        side, kind = EVENTS[e]
                        pt = t[i - 1] if i > 0 else self.prev_t
                        out.append(PhaseEvent(side, kind, float(pt + frac * (t[i] - pt)), conf))
                        armed = False
                        since = i
            if not armed and arm[since:, e].any():
                armed = True
            self.armed[e] = armed
        if all_finite or np.isfinite(theta[-1]).all():
            self.prev_t, self.prev_theta = float(t[-1]), theta[-1]
            self.prev_r = np.hypot(cs[-1, :, 0], cs[-1, :, 1])
        else:
            self.prev_t = None
            self.prev_theta = np.full(len(EVENTS), np.nan)
        out.sort(key=lambda ev: ev.t_us)
        return out


def detect_events(t_us: np.ndarray, phases: np.ndarray,
                  min_confidence: float = MIN_CONFIDENCE) -> list[PhaseEvent]:
    """All events of a whole series (the offline form of ``PhaseEventDetector``)."""
    return PhaseEventDetector(min_confidence).push(t_us, phases)
