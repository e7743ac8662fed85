"""Local polynomial filter on irregular timestamps: exactness, zero phase, gaps, look-ahead."""

import numpy as np
import pytest

from inference.analysis.filters import Window, local_poly


def _irregular_times(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.integers(15_000, 45_000, n)).astype(np.int64)  # 22-67 Hz, jittered


def _reference_fit(t, x, w, qi, back_s, ahead_s, deg):
    """Weighted least squares written the slow, obvious way."""
    tq = t[qi]
    sel = (t >= tq - back_s * 1e6) & (t <= tq + ahead_s * 1e6)
    dt = (t[sel] - tq) * 1e-6
    u = np.where(dt < 0, -dt / back_s, dt / ahead_s)
    k = (1 - np.clip(u, 0, 1) ** 3) ** 3 * w[sel]
    v = np.vander(dt, deg + 1, increasing=True)
    return np.linalg.solve(v.T @ (k[:, None] * v), v.T @ (k[:, None] * x[sel]))


@pytest.mark.parametrize("deg", [0, 1, 2])
def test_matches_weighted_least_squares_on_variable_rate(deg):
    t = _irregular_times(150)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 3, 3))
    w = rng.uniform(0.2, 1.0, (150, 3))
    val, rate, mean = local_poly(t, x, Window(90, 60, deg), w, mean=True)
    for qi in (3, 70, 148):
        for g in range(3):
            c = _reference_fit(t, x[:, g], w[:, g], qi, 0.09, 0.06, deg)
            np.testing.assert_allclose(val[qi, g], c[0], rtol=1e-5, atol=1e-6)
            if deg:
                np.testing.assert_allclose(rate[qi, g], c[1], rtol=1e-4, atol=1e-4)
            m = _reference_fit(t, x[:, g], w[:, g], qi, 0.09, 0.06, 0)
            np.testing.assert_allclose(mean[qi, g], m[0], rtol=1e-6, atol=1e-9)


def test_quadratic_is_reproduced_exactly_with_its_derivative():
    t = _irregular_times(80)
    s = t * 1e-6
    x = (0.5 + 2.0 * s - 3.0 * s ** 2)[:, None, None]
    val, rate = local_poly(t, x, Window(100, 100, 2))
    np.testing.assert_allclose(val[:, 0, 0], x[:, 0, 0], atol=1e-7)
    np.testing.assert_allclose(rate[:, 0, 0], 2.0 - 6.0 * s, atol=1e-5)


def test_symmetric_window_is_zero_phase():
    # a sinusoid's peak stays where it is (a causal low-pass would delay it)
    t = np.arange(0, 3_000_000, 8_333, dtype=np.int64)  # 120 Hz
    s = t * 1e-6
    x = np.sin(2 * np.pi * 1.0 * s)
    y = local_poly(t, x[:, None, None], Window(100, 100, 2))[0][:, 0, 0]
    peak = s[np.argmax(np.where(s < 1.0, y, -np.inf))]
    assert abs(peak - 0.25) <= 0.0085  # within one sample of the true peak


def test_missing_samples_are_bridged_and_one_sided_extrapolation_is_not():
    t = np.arange(0, 1_000_000, 20_000, dtype=np.int64)
    x = (t * 1e-6)[:, None, None] * np.ones((1, 1, 3))
    w = np.ones((len(t), 1))
    w[20:23] = 0  # a 60 ms gap inside the window: bridged from both sides
    w[40:] = 0  # the joint is lost for good: no value after the last observation
    val, _ = local_poly(t, x, Window(80, 80, 2), w)
    np.testing.assert_allclose(val[21, 0, 0], t[21] * 1e-6, atol=1e-9)
    assert np.isnan(val[42]).all() and np.isfinite(val[39]).all()


def test_value_is_final_once_the_look_ahead_has_arrived():
    # evaluating on a stream cut right after t + ahead gives the same as on the whole stream
    t = _irregular_times(120, seed=3)
    x = np.random.default_rng(4).normal(size=(120, 2, 3))
    win = Window(80, 50, 2)
    full, _ = local_poly(t, x, win)
    qi = 60
    cut = int(np.searchsorted(t, t[qi] + 50_000, "right"))
    part, _ = local_poly(t[:cut], x[:cut], win, query=[qi])
    np.testing.assert_allclose(part[0], full[qi])


def test_thinning_keeps_the_query_sample_and_still_fits_a_line():
    t = np.arange(0, 2_000_000, 2_000, dtype=np.int64)  # 500 Hz
    x = (3.0 * t * 1e-6)[:, None, None]
    val, rate = local_poly(t, x, Window(500, 100, 1, max_samples=20), query=[700, 701])
    np.testing.assert_allclose(val[:, 0, 0], 3.0 * t[[700, 701]] * 1e-6, atol=1e-9)
    np.testing.assert_allclose(rate[:, 0, 0], 3.0, atol=1e-6)


def test_window_validation():
    with pytest.raises(ValueError):
        Window(0, 0)
    with pytest.raises(ValueError):
        Window(50, 50, degree=3)
    with pytest.raises(ValueError):
        local_poly(np.arange(5, dtype=np.int64), np.zeros((4, 1, 3)), Window())
