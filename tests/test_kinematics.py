"""Sagittal angles from constructed joints, and knee/hip flexion against the labs' own angles."""

from pathlib import Path

import numpy as np
import pytest

from inference.eval.events import analyzer_factory, evaluate_trial
from inference.analysis.kinematics import F, features, sagittal_angles
from streams.skeletons import CJ

UP = np.array([0.0, 1.0, 0.0])


def _dir(incl_deg: float, fwd: np.ndarray) -> np.ndarray:
    """Unit vector inclined ``incl_deg`` forward from straight down."""
    a = np.radians(incl_deg)
    return -np.cos(a) * UP + np.sin(a) * fwd


def _pose(heading_deg: float, thigh: float, knee_flex: float, dorsi: float, *,
          lateral_m: float = 0.0, pelvis_drop_m: float = 0.0, pelvis_turn_m: float = 0.0,
          trunk_lean: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One frame of canonical joints with known sagittal angles, walking along heading."""
    h = np.radians(heading_deg)
    fwd = np.array([np.sin(h), 0.0, np.cos(h)])
    left = np.cross(UP, fwd)
    j = np.zeros((22, 3))
    pelvis = np.array([1.0, 0.95, -2.0])
    j[CJ["pelvis"]] = pelvis
    for side, sign in (("left", 1), ("right", -1)):
        hip = pelvis + sign * 0.09 * left - sign * pelvis_drop_m * UP + sign * pelvis_turn_m * fwd
        knee = hip + 0.45 * _dir(thigh, fwd) + lateral_m * left
        ankle = knee + 0.43 * _dir(thigh - knee_flex, fwd) - lateral_m * left
        foot = ankle + 0.15 * _dir(thigh - knee_flex + 90 + dorsi, fwd)
        for name, p in (("hip", hip), ("knee", knee), ("ankle", ankle), ("foot", foot)):
            j[CJ[f"{side}_{name}"]] = p
        j[CJ[f"{side}_shoulder"]] = pelvis + 0.5 * UP + sign * 0.18 * left
        j[CJ[f"{side}_wrist"]] = j[CJ[f"{side}_shoulder"]] + 0.55 * _dir(-sign * 20, fwd)
    j[CJ["neck"]] = pelvis + 0.5 * _dir(180 - trunk_lean, fwd)
    return j[None], fwd[None]


@pytest.mark.parametrize("heading", [0.0, 73.0, -140.0])
def test_known_angles_from_constructed_joints(heading):
    j, fwd = _pose(heading, thigh=20.0, knee_flex=35.0, dorsi=8.0, lateral_m=0.04,
                   pelvis_drop_m=0.02, pelvis_turn_m=0.03, trunk_lean=6.0)
    a = sagittal_angles(j, fwd)
    for side in ("left", "right"):
        assert a[f"hip_flexion_{side}"][0] == pytest.approx(20.0, abs=1e-9)
        assert a[f"knee_flexion_{side}"][0] == pytest.approx(35.0, abs=1e-9)
        assert a[f"ankle_dorsiflexion_{side}"][0] == pytest.approx(8.0, abs=1e-9)
    assert a["arm_angle_left"][0] == pytest.approx(-20.0, abs=1e-9)
    assert a["arm_angle_right"][0] == pytest.approx(20.0, abs=1e-9)
    # hips 0.18 m apart, left 0.02 lower and 0.03 ahead of centre (right the opposite)
    assert a["pelvis_obliquity"][0] == pytest.approx(-np.degrees(np.arcsin(0.04 / np.sqrt(
        0.18 ** 2 + 0.04 ** 2 + 0.06 ** 2))), abs=1e-9)
    assert a["pelvis_rotation"][0] == pytest.approx(np.degrees(np.arctan2(0.06, 0.18)), abs=1e-9)
    assert a["trunk_tilt"][0] == pytest.approx(6.0, abs=1e-9)


def test_hyperextension_is_negative_and_straight_leg_is_zero():
    for flex in (0.0, -7.0):
        j, fwd = _pose(10.0, thigh=-15.0, knee_flex=flex, dorsi=0.0)
        assert sagittal_angles(j, fwd)["knee_flexion_left"][0] == pytest.approx(flex, abs=1e-9)


def test_forward_positions_and_velocities_relative_to_pelvis():
    j, fwd = _pose(35.0, thigh=25.0, knee_flex=10.0, dorsi=0.0)
    vel = np.zeros_like(j)
    vel[:, CJ["pelvis"]] = 1.3 * fwd
    vel[:, CJ["left_ankle"]] = 3.0 * fwd + 0.5 * UP
    f = features(j, vel, fwd)[0]
    expect = (j[0, CJ["left_ankle"]] - j[0, CJ["pelvis"]]) @ fwd[0]
    assert f[F["ankle_fwd_left"]] == pytest.approx(expect)
    assert f[F["ankle_fwd_vel_left"]] == pytest.approx(3.0 - 1.3)
    assert f[F["ankle_fwd_vel_right"]] == pytest.approx(-1.3)
    assert f[F["pelvis_speed"]] == pytest.approx(1.3)
    assert f[F["ankle_speed_left"]] == pytest.approx(3.0)  # horizontal speed only
    assert f[F["ankle_lat_left"]] == pytest.approx(0.09)
    assert f[F["ankle_lat_right"]] == pytest.approx(-0.09)


# Knee flexion vs the labs' angles, RMS after removing the constant offset. Measured on the
# shared data: 0.4-3.4 deg over 38 series, worst subject01_walk1 right (3.4);
# hip 0.9-5.7 deg (worst PlugInC3D, whose Plug-in-Gait hip is relative to an 18 deg tilted
# pelvis). Pinned a little looser; the project goal for the knee is 5 deg.
ANGLE_CASES = [
    ("c3d_gait_lab_samples/trials/KTK_walk.c3d", 2.5, 3.0),
    ("c3d_gait_lab_samples/trials/C3DORG_s00_Vicon_pyCGM2_CGM24_Walking01.c3d", 2.0, 2.5),
    ("c3d_gait_lab_samples/trials/C3DORG_s03_gait-pig.c3d", 2.5, 2.5),
    ("c3d_gait_lab_samples/trials/C3DORG_s04_sub_labels.c3d", 3.5, 5.0),
    ("c3d_gait_lab_samples/trials/C3DORG_s09_PlugInC3D.c3d", 2.5, 6.5),
    ("opensim_walking_trc_grf/subject01_walk1.trc", 4.0, 3.5),
    ("opencap_mocap_modified_gait/expert1/markers/walkingTO2.trc", 4.0, 2.5),
]


@pytest.mark.parametrize("rel,knee_max,hip_max", ANGLE_CASES, ids=[Path(c[0]).stem
                                                                   for c in ANGLE_CASES])
def test_knee_and_hip_flexion_against_lab_angles(shared_data, rel, knee_max, hip_max):
    res = evaluate_trial(shared_data / rel, analyzer_factory("classical"), 100.0, 0.3)
    assert res.skipped is None
    for side in ("left", "right"):
        knee = res.angles[f"knee_flexion_{side}"]
        hip = res.angles[f"hip_flexion_{side}"]
        assert knee["frames"] > 50
        assert knee["rms_deg"] <= knee_max, (side, knee)
        assert hip["rms_deg"] <= hip_max, (side, hip)
