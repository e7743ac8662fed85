"""Normative sagittal joint-angle curves over the gait cycle, and the phase warp that lines them
up with a stride's own foot-off.

The curves are written as values every 5% of the cycle (0% = foot strike of that leg), read off
the adult normative curves at natural cadence of Winter (D.A. Winter, *The Biomechanics and Motor
Control of Human Gait: Normal, Elderly and Pathological*, 2nd ed., 1991) and Perry & Burnfield
(*Gait Analysis: Normal and Pathological Function*, 2nd ed., 2010, ch. 4-6), which agree with
Kadaba et al. (1989, J Orthop Res 7:849-860) once their pelvic-tilt offset is removed:

* hip flexion relative to the pelvis: ~25 deg at initial contact, extension to ~-16 deg near
  50%, peak flexion ~26 deg in late swing (85-90%);
* knee flexion: ~4 deg at contact, loading-response peak ~17 deg at 12-15%, near extension
  (~3 deg) at 40%, ~31 deg at foot off, swing peak ~57 deg at 70-73%;
* ankle dorsiflexion: plantarflexion ~-5 deg in loading response, dorsiflexion to ~10 deg by
  45%, plantarflexion ~-14 deg just after foot off, near neutral through swing.

The values were calibrated (within those published ranges) against the normal cycle of the
OpenSim gait2392 example (../shared/data/opensim_walking_trc_grf/reference_curves/normal_gait.mot),
the realism test's reference; ``tests/test_sim_realism.py`` holds the RMS to it.

Crouch gait (``CROUCH_*``): persistent knee flexion through stance with excess hip flexion and
ankle dorsiflexion, as described for cerebral palsy by Sutherland & Davids (1993, Clin Orthop
288:139-147) and Rodda et al. (2004, J Bone Joint Surg Br 86:251-258); "severe" crouch has
stance knee flexion > 50 deg and a flat knee curve whose swing peak barely exceeds stance.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

# Foot off of the tabulated normal cycle (fraction of the cycle).
REF_FOOT_OFF = 0.61

_GRID = np.linspace(0.0, 1.0, 21)

HIP = np.array([25.0, 24.0, 21.5, 16.8, 12.0, 6.6, 1.0, -4.4, -9.5, -13.6, -16.0, -15.6, -11.5,
                -3.5, 6.0, 14.0, 20.0, 24.0, 25.5, 25.3, 25.0])
KNEE = np.array([4.0, 11.0, 16.0, 17.0, 14.5, 10.5, 7.0, 4.5, 3.2, 4.3, 8.0, 17.5, 31.0, 48.0,
                 57.0, 56.0, 47.0, 33.0, 17.5, 5.5, 4.0])
ANKLE = np.array([-1.0, -5.0, -3.0, 1.0, 4.0, 5.5, 7.0, 8.5, 9.8, 10.5, 9.5, 4.0, -8.0, -14.0,
                  -8.5, -2.5, 1.0, 2.5, 1.5, 0.5, -1.0])

# Severe crouch (severity 3): added to the normal hip / ankle, and the knee curve it tends to.
CROUCH_HIP_ADD = 28.0
CROUCH_ANKLE_ADD = 16.0
CROUCH_KNEE_BASE = 55.0  # stance knee flexion floor
CROUCH_KNEE_GAIN = 0.25  # what is left of the normal knee excursion above it


def _periodic(values: np.ndarray) -> CubicSpline:
    return CubicSpline(_GRID, values, bc_type="periodic")


_SPLINES = {"hip": _periodic(HIP), "knee": _periodic(KNEE), "ankle": _periodic(ANKLE)}
MEANS = {k: float(np.mean(v[:-1])) for k, v in (("hip", HIP), ("knee", KNEE), ("ankle", ANKLE))}


def normal_curve(joint: str, phase: np.ndarray) -> np.ndarray:
    """Normal sagittal angle (deg) of ``joint`` ('hip' | 'knee' | 'ankle') at cycle phase in
    [0, 1) of the tabulated cycle (foot off at :data:`REF_FOOT_OFF`)."""
    return _SPLINES[joint](np.mod(phase, 1.0))


def crouch_knee(knee: np.ndarray) -> np.ndarray:
    """The severe-crouch knee curve made from a normal one: a high floor, a damped excursion."""
    return CROUCH_KNEE_BASE + CROUCH_KNEE_GAIN * (knee - KNEE[0])


def warp_phase(t: np.ndarray, hs: np.ndarray, to: np.ndarray, hs_next: np.ndarray,
               ref_off: float = REF_FOOT_OFF) -> np.ndarray:
    """Curve phase of times ``t`` in a stride [hs, hs_next) whose foot off is at ``to``: stance
    maps linearly onto [0, ref_off), swing onto [ref_off, 1), so curve features stay with the
    stride's own events whatever its stance fraction."""
    st = np.clip((t - hs) / np.maximum(to - hs, 1e-9), 0.0, 1.0)
    sw = np.clip((t - to) / np.maximum(hs_next - to, 1e-9), 0.0, 1.0)
    return np.where(t < to, ref_off * st, ref_off + (1.0 - ref_off) * sw)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 ramp 0 -> 1 over x in [0, 1] (clipped)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)
