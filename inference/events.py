"""Foot strike and foot off from foot coordinates relative to the pelvis.

The coordinate-based method of Zeni, Richards & Higginson (2008), "Two simple methods for
determining gait events during treadmill and overground walking using kinematic data",
Gait & Posture 27(4):710-714: along the walking direction, a foot strikes when its heel is
furthest ahead of the sacrum and comes off when its toe is furthest behind it. The canonical
skeleton has no heel or toe joints, so the ankle stands in for the heel and the ball of the foot
for the toe.

Extrema are found on smoothed signals with a bounded look-ahead: a sample is an extremum when it
is the largest (smallest) over ``[t - back_ms, t + confirm_ms]``, rose (fell) by at least the
prominence over the preceding ``rise_window_ms`` and has started to come back within the
look-ahead. Its time is refined below the frame period by the vertex of the parabola through the
sample and its two neighbours (non-uniform spacing allowed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOOT_STRIKE, FOOT_OFF = "foot_strike", "foot_off"

# (event kind, signal feature prefix, extremum sign): +1 maximum, -1 minimum.
DETECTORS: tuple[tuple[str, str, int], ...] = (
    (FOOT_STRIKE, "ankle_fwd", +1),
    (FOOT_OFF, "foot_fwd", -1),
)


@dataclass(frozen=True)
class EventOptions:
    back_ms: float = 300.0
    confirm_ms: float = 100.0  # look-ahead after the extremum before it is declared
    rise_window_ms: float = 800.0
    min_prominence_m: float = 0.05
    rel_prominence: float = 0.10  # of the leg length (hip-knee-ankle), when known
    min_return_m: float = 0.003  # the signal must come back this much within the look-ahead
    strike_fraction: float = 0.5  # 0 = plain Zeni peak (see strike_time)
    strike_max_delay_ms: float = 100.0


@dataclass(frozen=True)
class Extremum:
    t_us: int  # sub-frame time of the extremum
    index: int  # the sample it was found at
    prominence: float  # rise (fall) before it, in signal units


def parabola_vertex(t: np.ndarray, y: np.ndarray) -> float:
    """Time offset (relative to t[1]) of the vertex of the parabola through three samples;
    0 when they are collinear. Clamped to the span of the samples."""
    h1, h2 = float(t[1] - t[0]), float(t[2] - t[1])
    d0, d2 = float(y[0] - y[1]), float(y[2] - y[1])
    a = (h2 * d0 + h1 * d2) / (h1 * h2 * (h1 + h2))
    if abs(a) < 1e-15:
        return 0.0
    b = (d2 - a * h2 * h2) / h2
    return float(np.clip(-b / (2 * a), -h1, h2))


def _nan_extreme(a: np.ndarray, op: np.ufunc) -> float:
    """fmax/fmin over the finite values of ``a``; NaN when it has none."""
    return float(op.reduce(a)) if len(a) else float("nan")


def find_extrema(t_us: np.ndarray, s: np.ndarray, sign: int, opts: EventOptions,
                 prominence: float, start: int = 0, stop: int | None = None) -> list[Extremum]:
    """Extrema (maxima for ``sign`` +1, minima for -1) of signal ``s`` at sample indices in
    ``[start, stop)``. Samples after ``stop`` serve as look-ahead; a candidate is judged on the
    samples it has, so at the end of a recording the look-ahead is whatever remains.
    """
    y = sign * np.asarray(s, dtype=np.float64)
    n = len(y)
    stop = n if stop is None else stop
    back_us, ahead_us = int(opts.back_ms * 1000), int(opts.confirm_ms * 1000)
    rise_us = int(opts.rise_window_ms * 1000)
    out: list[Extremum] = []
    for c in range(max(start, 1), min(stop, n - 1)):
        yc = y[c]
        # Cheap test first: a local extremum among its neighbours (plateaus count once).
        if not (yc > y[c - 1] and yc >= y[c + 1]):
            continue
        tc = t_us[c]
        lo = int(np.searchsorted(t_us, tc - back_us, "left"))
        hi = max(int(np.searchsorted(t_us, tc + ahead_us, "right")), c + 2)
        # Samples lost by the tracker (NaN) neither confirm nor refute an extremum.
        if not yc >= _nan_extreme(y[lo:hi], np.fmax):
            continue
        rlo = int(np.searchsorted(t_us, tc - rise_us, "left"))
        rise = yc - _nan_extreme(y[rlo:c + 1], np.fmin)
        if not rise >= prominence:
            continue
        if not yc - _nan_extreme(y[c + 1:hi], np.fmin) >= opts.min_return_m:
            continue
        dt = parabola_vertex(t_us[c - 1:c + 2], y[c - 1:c + 2])
        out.append(Extremum(int(round(tc + dt)), c, float(rise)))
    return out


def strike_time(t_us: np.ndarray, rel_vel: np.ndarray, peak: int, v_ref: float,
                fraction: float, max_delay_ms: float) -> int | None:
    """Time after the peak at ``index`` when the striking foot's velocity relative to the pelvis
    (along the walking direction) has fallen to ``-fraction * v_ref``; None when it does not
    within ``max_delay_ms`` (or no reference speed). Linear interpolation between samples."""
    if not (np.isfinite(v_ref) and v_ref > 0):
        return None
    thr = -fraction * v_ref
    stop = int(np.searchsorted(t_us, t_us[peak] + int(max_delay_ms * 1000), "right"))
    for i in range(peak + 1, min(stop, len(t_us))):
        if rel_vel[i] <= thr:
            v0, v1 = rel_vel[i - 1], rel_vel[i]
            a = (v0 - thr) / (v0 - v1) if v0 != v1 else 1.0
            return int(round(t_us[i - 1] + np.clip(a, 0, 1) * (t_us[i] - t_us[i - 1])))
    return None


def prominence_threshold(leg_length_m: float | None, opts: EventOptions) -> float:
    if leg_length_m is None or not np.isfinite(leg_length_m):
        return opts.min_prominence_m
    return max(opts.min_prominence_m, opts.rel_prominence * leg_length_m)
