"""Camera geometry of the webcam pose: axes, scale, placement, and the preview's projection of it."""

from __future__ import annotations

import math

import numpy as np

from sinks.preview import project_to_image
from inference.pose.metric import (CAMERA_TO_WIRE, ScaleSmoother, camera_to_wire,
                                   focal_length_px, horizontal_speed, lift_image_plane,
                                   place_world_landmarks, scale_px_per_m)


def standing_world() -> np.ndarray:
    """MediaPipe-like world landmarks (camera axes, y down), hip-centred, side view facing -x."""
    w = np.zeros((33, 3))
    for side, dz in ((0, -0.1), (1, 0.1)):  # left hip nearer the camera (z smaller)
        w[23 + side] = (0.0, 0.0, dz)
        w[25 + side] = (-0.05, 0.42, dz)
        w[27 + side] = (0.0, 0.84, dz)
        w[11 + side] = (0.0, -0.5, dz)
    w[0] = (-0.1, -0.7, 0.0)
    return w


def test_camera_to_wire_is_a_rotation_to_y_up():
    assert math.isclose(np.linalg.det(np.diag(CAMERA_TO_WIRE)), 1.0)  # keeps handedness
    below_in_front = camera_to_wire(np.array([0.0, 1.0, 2.0]))
    assert below_in_front[1] < 0  # image-down is wire-down
    assert below_in_front[2] < 0  # in front of the camera is -z (z points at the viewer)
    # a right-handed triad stays right-handed
    ex, ey, ez = (camera_to_wire(v) for v in np.eye(3))
    assert np.allclose(np.cross(ex, ey), ez)


def test_scale_from_leg_segments():
    w = standing_world()
    s = 250.0
    image = w[:, :2] * s + (700, 400)  # segments parallel to the image: exact
    vis = np.ones(33)
    assert math.isclose(scale_px_per_m(image, w, vis), s, rel_tol=1e-9)
    vis[[25, 27]] = 0.1  # left leg hidden: the right one still gives it
    assert math.isclose(scale_px_per_m(image, w, vis), s, rel_tol=1e-9)
    vis[[26, 28]] = 0.1
    assert math.isnan(scale_px_per_m(image, w, vis))


def test_placement_projects_back_onto_the_image_hips():
    """The pose puts the hips where the camera saw them; the preview's projection of the wire
    skeleton (same field of view) lands them back on the image hips, and the rest of the body
    within the weak-perspective error of a 0.2 m deep body 6 m away."""
    width, height, hfov = 1768, 994, 60.0
    f = focal_length_px(width, hfov)
    w = standing_world()
    s = 230.0
    hip_px = np.array([1400.0, 730.0])
    image = (w[:, :2] - w[[23, 24], :2].mean(0)) * s + hip_px
    joints = place_world_landmarks(w, hip_px, s, f, width / 2, height / 2)
    back = project_to_image(joints, width, height, hfov)
    assert np.allclose(back[[23, 24]].mean(0), hip_px, atol=0.5)
    assert np.abs(back - image).max() < 0.05 * s  # < 5 cm at the person
    assert math.isclose(-joints[[23, 24], 2].mean(), f / s, rel_tol=1e-6)  # depth f/s
    assert joints[27, 1] < joints[23, 1] < joints[0, 1]  # ankles below hips below the nose


def test_flat_lift_for_2d_keypoints_projects_exactly():
    width, height, hfov = 640, 480, 70.0
    f = focal_length_px(width, hfov)
    pts = np.array([[100.0, 50.0], [320.0, 240.0], [600.0, 470.0]])
    joints = lift_image_plane(pts, 200.0, f, width / 2, height / 2)
    assert np.allclose(joints[:, 2], -f / 200.0)
    assert np.allclose(project_to_image(joints, width, height, hfov), pts, atol=1e-3)


def test_scale_smoother_follows_time_not_frames():
    """A step from 200 to 220 px/m: after one time constant the log-scale has moved 1 - 1/e of
    the way, whatever the frame rate."""
    expected = 200 * (220 / 200) ** (1 - math.exp(-1))
    for fps in (15, 30, 90):
        sm = ScaleSmoother(tau_s=1.0)
        sm.update(0, 200.0)
        est = math.nan
        for k in range(1, fps + 1):
            est = sm.update(int(k * 1e6 / fps), 220.0)
        assert math.isclose(est, expected, rel_tol=2e-3), fps


def test_scale_smoother_limits_one_bad_frame_and_skips_missing():
    sm = ScaleSmoother(tau_s=1.0, max_step=0.15)
    sm.update(0, 200.0)
    after = sm.update(33_333, 2000.0)  # a mis-detected leg: clipped to +15 % before averaging
    assert 200.0 < after < 200.0 * 1.15 ** (1 - math.exp(-1 / 30)) + 1e-9
    assert sm.update(66_666, math.nan) == after


def test_horizontal_speed_with_irregular_timestamps():
    t = np.array([0, 30_000, 71_000, 100_000, 162_000], dtype=np.int64)
    x = 500 - 120.0 * t / 1e6
    assert math.isclose(horizontal_speed(t, x), -120.0, rel_tol=1e-9)
    assert horizontal_speed(t[:1], x[:1]) == 0.0
