"""The simulated walker against real reference curves and published normative gait data."""

from __future__ import annotations

import numpy as np
import pytest

from capture.sim.truth import angles, cycle_truth
from inference.data import groundtruth
from tests._sim import steady_strides, straight

GRID = np.linspace(0.0, 1.0, 101)


def read_mot(path) -> dict[str, np.ndarray]:
    """Columns of an OpenSim .mot file, resampled on GRID (the cycle), duplicate times dropped."""
    names, data, _ = groundtruth.read_mot(path)
    t, keep = np.unique(data[:, 0], return_index=True)
    data = data[keep]
    return {n: np.interp(GRID, t, data[:, i]) for i, n in enumerate(names)}


@pytest.fixture(scope="module")
def reference(shared_data):
    folder = shared_data / "opensim_walking_trc_grf" / "reference_curves"
    out = {}
    for name in ("normal", "crouch"):
        mot = read_mot(folder / f"{name}_gait.mot")
        # OpenSim: hip_flexion relative to the pelvis, flexion +; knee_angle NEGATIVE in flexion
        out[name] = {"hip": mot["hip_flexion_r"], "knee": -mot["knee_angle_r"]}
    return out


def mean_cycle(person, side: str) -> dict[str, np.ndarray]:
    """Mean pelvis-relative hip flexion and knee flexion over the steady strides, on GRID."""
    hip, knee = [], []
    for a, b in steady_strides(person, side):
        pts, st = person.evaluate(a + (b - a) * GRID)
        ang = angles(pts, st["heading"], person.body)
        hip.append(ang[f"hip_flexion_pelvis_{side}"])
        knee.append(ang[f"knee_flexion_{side}"])
    return {"hip": np.mean(hip, axis=0), "knee": np.mean(knee, axis=0)}


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


@pytest.mark.parametrize("side", ["left", "right"])
def test_normal_sagittal_curves_match_the_opensim_normal_cycle(reference, side):
    sim = mean_cycle(straight(), side)
    for joint in ("hip", "knee"):
        err = rms(sim[joint], reference["normal"][joint])
        assert err <= 8.0, f"{joint} RMS {err:.1f} deg against the normal reference"
        # and it is the right curve, not just close on average: crouch is far from it
        assert rms(sim[joint], reference["crouch"][joint]) > 2 * err


def test_severe_crouch_resembles_the_opensim_crouch_cycle(reference):
    sims = {sev: mean_cycle(straight("crouch", sev), "right") for sev in (1, 3)}
    for joint in ("hip", "knee"):
        to_crouch = rms(sims[3][joint], reference["crouch"][joint])
        to_normal = rms(sims[3][joint], reference["normal"][joint])
        assert to_crouch < to_normal / 2, (joint, to_crouch, to_normal)
        # milder crouch lies in between
        assert rms(sims[1][joint], reference["crouch"][joint]) > to_crouch
    # severe crouch: stance knee flexion stays high (> 45 deg over the stance phase)
    assert sims[3]["knee"][:55].min() > 45.0


def _median(person, key: str) -> float:
    vals = [c["metrics"][key] for c in cycle_truth(person)[2:-2] if c["metrics"][key] is not None]
    return float(np.median(vals))


@pytest.mark.parametrize("height", [1.55, 1.75, 1.95])
def test_default_gait_is_within_normative_ranges_for_the_height(height):
    """Preferred-speed walking of healthy adults:
    speed 1.2-1.55 m/s (Bohannon & Andrews 2011, Physiotherapy 97:182: 1.34-1.43 m/s by age group
    20-59, here widened for heights 1.55-1.95 m); cadence 100-125 steps/min and stance 58-64% of
    the cycle (Oberg, Karsznia & Oberg 1993, J Rehabil Res Dev 30:210, normal-speed tables; Perry
    & Burnfield 2010: stance ~60-62%); step length 0.38-0.47 of the height (healthy young adults
    0.43 +- 0.035, Espy et al. 2010, Gait Posture 32:378); double support 16-28% of the cycle."""
    p = straight(length=7.0, height=height)
    speed, cadence = _median(p, "speed_mps"), _median(p, "cadence_spm")
    assert 1.2 <= speed <= 1.55, speed
    assert 100 <= cadence <= 125, cadence
    assert 0.38 <= _median(p, "step_length_m") / height <= 0.47
    assert 58.0 <= _median(p, "stance_pct") <= 64.0
    assert 16.0 <= _median(p, "double_support_pct") <= 28.0


def test_walk_ratio_is_constant_over_speeds_and_stance_shortens_with_speed():
    """Step length / cadence (the walk ratio) stays within 10% over 0.9-1.6 m/s (Sekiya & Nagasaki
    1998, Gait Posture 7:225; Murakami & Otaka 2017: constancy down to ~1 m/s) and the requested
    speed is walked within 8%; stance fraction decreases with speed."""
    ratios, stances = [], []
    for v in (0.9, 1.25, 1.6):
        p = straight(length=7.0, speed=v)
        measured = _median(p, "speed_mps")
        assert abs(measured - v) / v < 0.08, (v, measured)
        ratios.append(_median(p, "step_length_m") / _median(p, "cadence_spm"))
        stances.append(_median(p, "stance_pct"))
    assert max(ratios) / min(ratios) < 1.10, ratios
    assert 0.0050 <= np.mean(ratios) <= 0.0075
    assert stances[0] > stances[1] > stances[2], stances
