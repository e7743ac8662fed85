"""Smoothing and differentiation of trajectories sampled at arbitrary (variable) times.

One filter serves both the online and the offline path: a local polynomial regression
(a Savitzky-Golay filter generalised to irregular timestamps, tricube kernel). Each output sample
is the value and slope, at that sample's time, of a weighted polynomial fitted to the samples in
``[t - back, t + ahead]``.

* Offline, ``back == ahead`` makes it zero-phase (the window is symmetric in time).
* Online, the value at ``t`` is final once a sample at or after ``t + ahead`` has arrived: the
  look-ahead (latency) of the filter is exactly ``ahead``. With ``ahead < back`` the fit is
  one-sided but a local polynomial stays unbiased for trends up to its degree, unlike a causal
  IIR filter that lags.

Because the online analyzer evaluates the same function on a buffer that holds the whole window,
an online run and an offline run over a recording give the same numbers.

Per-sample weights (e.g. 0 for a joint the tracker lost) are part of the fit, so a missing joint
is bridged by its neighbours instead of pulling the estimate to a fill value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """The time support of the local fit, in milliseconds, and the polynomial degree.

    ``max_samples`` caps the samples one fit uses: a denser window is thinned to every s-th
    sample counted from the query sample itself (so the result does not depend on how a stream
    was cut into calls). Long windows on fast sources cost less, and lose little: the fit only
    needs enough samples across the window, not all of them."""

    back_ms: float = 60.0
    ahead_ms: float = 60.0
    degree: int = 2
    max_samples: int | None = None

    def __post_init__(self) -> None:
        if self.back_ms < 0 or self.ahead_ms < 0 or self.back_ms + self.ahead_ms <= 0:
            raise ValueError(f"window back={self.back_ms} ms / ahead={self.ahead_ms} ms: both "
                             "must be >= 0 and not both 0")
        if self.degree not in (0, 1, 2):
            raise ValueError(f"window degree {self.degree}: must be 0, 1 or 2")
        if self.max_samples is not None and self.max_samples < self.degree + 2:
            raise ValueError(f"window max_samples {self.max_samples}: too few for degree "
                             f"{self.degree}")


_RIDGE = 1e-9  # keeps a fit with too few samples solvable; it then degrades to a lower degree

# Upper triangle of the P x P normal matrix, as (row, column) pairs, for P = 2 and 3.
_UPPER = {p: np.triu_indices(p) for p in (2, 3)}
# The ridge to add to the upper triangle (U, 1): on the diagonal, and +0.0 elsewhere, which
# changes nothing (no entry is -0.0: each sum has the query sample's +0.0 term).
_RIDGES = {2: np.array([[_RIDGE], [0.0], [_RIDGE]]),
           3: np.array([[_RIDGE], [0.0], [0.0], [_RIDGE], [0.0], [_RIDGE]])}
_POWERS = {p: np.arange(p) for p in (2, 3)}
# P = 3: the cofactors c00, c01, c02, c11, c12 of the upper triangle (a00, a01, a02, a11, a12,
# a22 at 0..5) as a[i] * a[j] - a[k] * a[l], one row of (i, j, k, l) each column; and which of
# them make rows 0 and 1 of the inverse (times the determinant).
_COFACTORS = np.array([[3, 2, 1, 0, 1], [5, 4, 4, 5, 2], [4, 1, 2, 2, 0], [4, 5, 3, 2, 4]])
_INVERSE_ROWS = np.array([[0, 1, 2], [1, 3, 4]])


def _first_two_coefficients(a: np.ndarray, b: np.ndarray, value: bool
                            ) -> tuple[np.ndarray | None, np.ndarray]:
    """Rows 0 and 1 of solve(A, b) for symmetric P x P matrices A given by their upper
    triangles ``a`` (Q, U, G) (U = 3 for P = 2: a00, a01, a11; U = 6 for P = 3: a00, a01, a02,
    a11, a12, a22; the ridge already on the diagonal), and ``b`` (Q, P, G, C), written out
    (cofactors): LAPACK's per-call overhead would dominate for these tiny systems. Returns
    (Q, G, C) each; row 0 (the value) only when ``value``. Each product and sum is the one of
    the textbook formula, in its order, so that the numbers do not depend on how the work is
    grouped into numpy calls."""
    if a.shape[1] == 3:
        a00, a01, a11 = a[:, 0, :, None], a[:, 1, :, None], a[:, 2, :, None]
        det = a00 * a11 - a01 * a01
        b0, b1 = b[:, 0], b[:, 1]
        return ((a11 * b0 - a01 * b1) / det if value else None), (a00 * b1 - a01 * b0) / det
    f = a[:, _COFACTORS]  # (Q, 4, 5, G)
    cof = f[:, 0] * f[:, 1] - f[:, 2] * f[:, 3]  # c00 c01 c02 c11 c12
    terms = a[:, :3] * cof[:, :3]
    inv = 1.0 / (terms[:, 0] + terms[:, 1] + terms[:, 2])  # 1 / det
    # c00 b0 + c01 b1 + c02 b2 and c01 b0 + c11 b1 + c12 b2: (Q, 2, 3, G, C) products
    prod = cof[:, _INVERSE_ROWS][..., None] * b[:, None]
    rows = (prod[:, :, 0] + prod[:, :, 1] + prod[:, :, 2]) * inv[:, None, :, None]
    return (rows[:, 0] if value else None), rows[:, 1]


# Kernel weights and polynomial terms of recent query blocks (the blocks of a steady stream
# repeat a few patterns of sample times), keyed by the window and the sample times relative to
# the queries.
_KERNELS: dict[tuple, tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]] = {}
_KERNELS_MAX = 512
_OFFSETS: dict[tuple[int, int, int], np.ndarray] = {}  # per (before, after, step)


def _terms(dt_us: np.ndarray, offs: np.ndarray, back_us: int, ahead_us: int, p: int
           ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Tricube weights (Q, K) of samples ``dt_us`` from their queries at offsets ``offs`` (0
    beyond the window), the powers of the scaled times (Q, K, P) and their pairwise products
    (Q, K, U) (P > 1)."""
    # Time in units of the wider half-window keeps the normal equations well conditioned.
    scale = max(back_us, ahead_us) * 1e-6
    dt = dt_us * 1e-6  # (Q, K) seconds
    # A sample before the query (offset < 0) is earlier in time: the kernel coordinate is |dt|
    # over the half-window on its side. Beyond 1 the tricube is 0.
    half = np.where(offs < 0, -max(back_us * 1e-6, 1e-12), max(ahead_us * 1e-6, 1e-12))
    kern = (1.0 - np.minimum(dt / half, 1.0) ** 3) ** 3
    v = vv = None
    if p > 1:
        v = (dt / scale)[:, :, None] ** _POWERS[p]  # (Q, K, P)
        rows, cols = _UPPER[p]
        vv = v[:, :, rows] * v[:, :, cols]
    return kern, v, vv


def _kernel(dt_us: np.ndarray, offs: np.ndarray, back_us: int, ahead_us: int, p: int,
            before: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """:func:`_terms`, cached, and whether every query has its own sample and at least P
    samples in the window."""
    key = (back_us, ahead_us, p, before, dt_us.shape, dt_us.tobytes())
    hit = _KERNELS.get(key)
    if hit is not None:
        return hit
    kern, v, vv = _terms(dt_us, offs, back_us, ahead_us, p)
    seen = kern > 0
    full = bool(seen[:, before].all() and (seen.sum(axis=1) >= p).all())
    for arr in (kern, v, vv):
        if arr is not None:
            arr.setflags(write=False)
    if len(_KERNELS) >= _KERNELS_MAX:
        _KERNELS.clear()
    _KERNELS[key] = hit = (kern, v, vv, full)
    return hit


def _window_bounds(q: np.ndarray, lo: np.ndarray, hi: np.ndarray
                   ) -> tuple[int, int, int, int, int]:
    """Largest window span, samples before / after the query, smallest and largest query."""
    if len(q) == 0:
        return 1, 0, 0, 0, -1
    if len(q) <= 16:  # the online case: a few queries, cheaper as Python integers
        ql, lol, hil = q.tolist(), lo.tolist(), hi.tolist()
        return (max([1] + [h - lw for lw, h in zip(lol, hil)]),
                max([0] + [qi - lw for qi, lw in zip(ql, lol)]),
                max([0] + [h - 1 - qi for qi, h in zip(ql, hil)]), min(ql), max(ql))
    return (int((hi - lo).max(initial=1)), int((q - lo).max(initial=0)),
            int((hi - 1 - q).max(initial=0)), int(q.min()), int(q.max()))


def local_poly(t_us: np.ndarray, x: np.ndarray, window: Window,
               weights: np.ndarray | None = None,
               query: np.ndarray | slice | None = None, mean: bool = False,
               fit: slice | None = None) -> tuple[np.ndarray, ...]:
    """Smoothed value and time derivative (per second) of ``x`` at the samples ``query``.

    ``t_us``: (N,) strictly increasing int64 microseconds. ``x``: (N, G, C) values, G groups of C
    coordinates that share one weight (e.g. 22 joints x 3). ``weights``: (N, G) in [0, 1] or None.
    ``query``: indices (or a slice) of the samples to evaluate, default all.

    Returns (Q, G, C) values and (Q, G, C) derivatives, and with ``mean`` the kernel-weighted
    means (Q, G, C) too (the degree-0 fit, from the same sums). A group is NaN where it was
    neither observed at the query sample nor on both sides of it, or has fewer samples than
    coefficients. With ``mean`` and ``fit`` (degree > 0), only the groups ``x[:, fit]`` are
    fitted and only their derivatives are returned (value None): for a caller that needs the
    means of most groups and the slope of a few.
    """
    # The online analyzer calls this twice per group of frames on a few samples each, so the
    # number of numpy calls, not the arithmetic, sets the cost: each step below is one call on
    # the whole (Q, K, ...) block, and the kernel of a block's time pattern is computed once.
    t_us = np.asarray(t_us, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != t_us.shape[0]:
        raise ValueError(f"x must be (N, G, C) with N = {t_us.shape[0]}, got {x.shape}")
    n, g, c = x.shape
    w = np.ones((n, g)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n, g):
        raise ValueError(f"weights must be {(n, g)}, got {w.shape}")
    if fit is not None and not (mean and window.degree > 0):
        raise ValueError("fit selects the fitted groups of a mean=True call of degree > 0")
    if isinstance(query, np.ndarray) and query.ndim == 1 and query.dtype.kind == "i":
        q = query
    else:
        q = np.atleast_1d(np.arange(n)[query] if query is not None else np.arange(n))
    back_us = int(round(window.back_ms * 1000))
    ahead_us = int(round(window.ahead_ms * 1000))
    tq = t_us[q]
    lo = t_us.searchsorted(tq - back_us, "left")
    hi = t_us.searchsorted(tq + ahead_us, "right")
    span, before, after, q_min, q_max = _window_bounds(q, lo, hi)
    step = 1
    if window.max_samples is not None and span > window.max_samples:
        step = -(-span // window.max_samples)
    # Offsets from the query in steps of ``step``: the query sample is always one of them.
    before, after = -(-before // step), after // step
    offs = _OFFSETS.get((before, after, step))
    if offs is None:
        offs = _OFFSETS[(before, after, step)] = np.arange(-before, after + 1) * step
        offs.setflags(write=False)
    idx = q[:, None] + offs  # (Q, K)
    p = window.degree + 1
    scale = max(back_us, ahead_us) * 1e-6
    if q_min - before * step >= 0 and q_max + after * step < n:
        # Every offset is a sample: those outside a query's window get a zero kernel weight.
        kern, v, vv, full = _kernel(t_us[idx] - tq[:, None], offs, back_us, ahead_us, p, before)
    else:
        # Near the ends of the buffer some offsets fall outside it: they are clipped to the
        # first or last sample, which must then not count.
        inside = (idx >= lo[:, None]) & (idx < hi[:, None])
        np.minimum(np.maximum(idx, 0, out=idx), n - 1, out=idx)
        kern, v, vv = _terms(t_us[idx] - tq[:, None], offs, back_us, ahead_us, p)
        kern = np.where(inside, kern, 0.0)
        full = False
    wq = w[idx]  # (Q, K, G)
    ww = kern[:, :, None] * wq
    nq, nk = idx.shape
    wxk = (ww[..., None] * x[idx]).reshape(nq, nk, g * c)  # (Q, K, G*C)
    avg = None
    if p == 1 or mean:
        sw = ww.sum(axis=1)[:, :, None]  # (Q, G, 1)
        avg = np.divide(wxk.transpose(0, 2, 1).sum(axis=2).reshape(nq, g, c), sw,
                        out=np.full((nq, g, c), np.nan), where=sw > 0)
    if p == 1:
        value, rate = avg.copy(), np.zeros((nq, g, c))
    else:
        # The normal equations, laid out (Q, U, G) and (Q, P, G, C) for the solve.
        a = np.matmul(vv.transpose(0, 2, 1), ww)
        b = np.matmul(v.transpose(0, 2, 1), wxk).reshape(nq, p, g, c)
        if fit is not None:
            a, b = a[:, :, fit], b[:, :, fit]
        a += _RIDGES[p]
        value, rate = _first_two_coefficients(a, b, fit is None)
        rate /= scale
    # A group is estimated where it was observed at the query sample, or bridged by observations
    # on both sides; extrapolating a polynomial from one side is left undone (NaN). ``full``: the
    # kernel alone gives every query its own sample and enough of them, so only a weight of 0
    # can take one away.
    if not (full and wq.size and wq.min() > 0):
        has = ww > 0
        ok = (has[:, before] | (has[:, :before].any(axis=1) & has[:, before + 1:].any(axis=1))) \
            & (has.sum(axis=1) >= p)
        bad = ~ok
        if fit is None:
            value[bad] = np.nan
            rate[bad] = np.nan
        else:
            rate[bad[:, fit]] = np.nan
        if mean:
            avg[bad] = np.nan
    if mean:
        return value, rate, avg
    return value, rate
