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


def _first_two_coefficients(a: list[np.ndarray], b: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Rows 0 and 1 of solve(A, b) for a symmetric P x P matrix A given by its upper triangle
    ``a`` (P = 2: a00, a01, a11; P = 3: a00, a01, a02, a11, a12, a22; each (...,)), and ``b``
    (..., P, C), written out (cofactors): LAPACK's per-call overhead would dominate for these
    tiny systems."""
    if len(a) == 3:
        a00, a01, a11 = (x[..., None] for x in a)
        det = a00 * a11 - a01 * a01
        b0, b1 = b[..., 0, :], b[..., 1, :]
        return (a11 * b0 - a01 * b1) / det, (a00 * b1 - a01 * b0) / det
    a00, a01, a02, a11, a12, a22 = a
    c00 = a11 * a22 - a12 * a12
    c01 = a02 * a12 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    c11 = a00 * a22 - a02 * a02
    c12 = a01 * a02 - a00 * a12
    det = a00 * c00 + a01 * c01 + a02 * c02
    b0, b1, b2 = b[..., 0, :], b[..., 1, :], b[..., 2, :]
    inv = 1.0 / det[..., None]
    c00, c01, c02, c11, c12 = (x[..., None] for x in (c00, c01, c02, c11, c12))
    return ((c00 * b0 + c01 * b1 + c02 * b2) * inv, (c01 * b0 + c11 * b1 + c12 * b2) * inv)


# Upper triangle of the P x P normal matrix, as (row, column) pairs, for P = 2 and 3.
_UPPER = {p: np.triu_indices(p) for p in (2, 3)}
_POWERS = {p: np.arange(p) for p in (2, 3)}


def local_poly(t_us: np.ndarray, x: np.ndarray, window: Window,
               weights: np.ndarray | None = None,
               query: np.ndarray | slice | None = None, mean: bool = False
               ) -> tuple[np.ndarray, ...]:
    """Smoothed value and time derivative (per second) of ``x`` at the samples ``query``.

    ``t_us``: (N,) strictly increasing int64 microseconds. ``x``: (N, G, C) values, G groups of C
    coordinates that share one weight (e.g. 22 joints x 3). ``weights``: (N, G) in [0, 1] or None.
    ``query``: indices (or a slice) of the samples to evaluate, default all.

    Returns (Q, G, C) values and (Q, G, C) derivatives, and with ``mean`` the kernel-weighted
    means (Q, G, C) too (the degree-0 fit, from the same sums). A group is NaN where it was
    neither observed at the query sample nor on both sides of it, or has fewer samples than
    coefficients.
    """
    # The online analyzer calls this twice per group of frames on a few samples each, so the
    # number of numpy calls, not the arithmetic, sets the cost: each step below is one call on
    # the whole (Q, K, ...) block.
    t_us = np.asarray(t_us, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != t_us.shape[0]:
        raise ValueError(f"x must be (N, G, C) with N = {t_us.shape[0]}, got {x.shape}")
    n, g, _ = x.shape
    w = np.ones((n, g)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n, g):
        raise ValueError(f"weights must be {(n, g)}, got {w.shape}")
    if isinstance(query, np.ndarray) and query.ndim == 1 and query.dtype.kind == "i":
        q = query
    else:
        q = np.atleast_1d(np.arange(n)[query] if query is not None else np.arange(n))
    back_us = int(round(window.back_ms * 1000))
    ahead_us = int(round(window.ahead_ms * 1000))
    tq = t_us[q]
    lo = np.searchsorted(t_us, tq - back_us, "left")
    hi = np.searchsorted(t_us, tq + ahead_us, "right")
    span = int((hi - lo).max(initial=1))
    step = 1
    if window.max_samples is not None and span > window.max_samples:
        step = -(-span // window.max_samples)
    # Offsets from the query in steps of ``step``: the query sample is always one of them.
    before = -(-(q - lo).max(initial=0) // step)
    after = (hi - 1 - q).max(initial=0) // step
    offs = np.arange(-before, after + 1) * step
    idx = q[:, None] + offs[None, :]  # (Q, K)
    inside = (idx >= lo[:, None]) & (idx < hi[:, None])
    np.minimum(np.maximum(idx, 0, out=idx), n - 1, out=idx)
    # Time in units of the wider half-window keeps the normal equations well conditioned.
    scale = max(back_us, ahead_us) * 1e-6
    dt = (t_us[idx] - tq[:, None]) * 1e-6  # (Q, K) seconds
    # Inside the window a sample before the query (offset < 0) is earlier in time: the kernel
    # coordinate is |dt| over the half-window on its side. Beyond 1 the tricube is 0.
    half = np.where(offs < 0, -max(back_us * 1e-6, 1e-12), max(ahead_us * 1e-6, 1e-12))
    kern = np.where(inside, (1.0 - np.minimum(dt / half, 1.0) ** 3) ** 3, 0.0)
    ww = kern[:, :, None] * w[idx]  # (Q, K, G)
    p = window.degree + 1
    nq, nk = idx.shape
    c = x.shape[2]
    wx = (ww[..., None] * x[idx]).reshape(nq, nk, g * c).transpose(0, 2, 1)  # (Q, G*C, K)
    avg = None
    if p == 1 or mean:
        sw = ww.sum(axis=1)[:, :, None]  # (Q, G, 1)
        avg = np.divide(wx.sum(axis=2).reshape(nq, g, c), sw, out=np.full((nq, g, c), np.nan),
                        where=sw > 0)
    if p == 1:
        value, rate = avg.copy(), np.zeros((nq, g, c))
    else:
        v = (dt / scale)[:, :, None] ** _POWERS[p]  # (Q, K, P)
        rows, cols = _UPPER[p]
        a = np.matmul(ww.transpose(0, 2, 1), v[:, :, rows] * v[:, :, cols])  # (Q, G, U)
        b = np.matmul(wx, v).reshape(nq, g, c, p).transpose(0, 1, 3, 2)  # (Q, G, P, C)
        upper = [a[..., u] + _RIDGE if r == cc else a[..., u]
                 for u, (r, cc) in enumerate(zip(rows, cols))]
        c0, c1 = _first_two_coefficients(upper, b)
        value, rate = c0, c1 / scale
    # A group is estimated where it was observed at the query sample, or bridged by observations
    # on both sides; extrapolating a polynomial from one side is left undone (NaN).
    has = ww > 0
    ok = (has[:, before] | (has[:, :before].any(axis=1) & has[:, before + 1:].any(axis=1))) \
        & (has.sum(axis=1) >= p)
    bad = ~ok
    value[bad] = np.nan
    rate[bad] = np.nan
    if mean:
        avg[bad] = np.nan
        return value, rate, avg
    return value, rate


def smooth(t_us: np.ndarray, x: np.ndarray, half_window_ms: float = 60.0, degree: int = 2,
           weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Offline zero-phase smoothing of a whole trajectory: value and derivative per sample.

    ``x`` may be (N,), (N, C) or (N, G, C); the outputs have the same shape.
    """
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    x3 = x.reshape(shape[0], 1, 1) if x.ndim == 1 else (x[:, None, :] if x.ndim == 2 else x)
    if weights is not None and x.ndim < 3:
        weights = np.asarray(weights, dtype=np.float64).reshape(shape[0], 1)
    val, der = local_poly(t_us, x3, Window(half_window_ms, half_window_ms, degree), weights)
    return val.reshape(shape), der.reshape(shape)
