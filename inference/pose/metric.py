"""Camera geometry of monocular pose: from per-frame pose output to metric skeletons in the wire frame.

MediaPipe's world landmarks are metric but *hip-centred every frame*: they carry the body's shape
and orientation, not where the body is. Step length, stride length and speed need the pelvis to
move, so the translation is rebuilt from the image:

* scale: ``s`` pixels per metre at the person's depth = image length / world length of the long,
  rigid segments (thighs, shanks, trunk) in the same frame. MediaPipe's world landmarks are sized
  by its learned body model, so ``s`` inherits that prior: a subject much taller or shorter than
  the model's average gets a proportionally wrong scale (stride lengths err by the same ratio).
  Foreshortened segments (a limb pointing at the camera) shorten in the image only, so the per-frame
  ratio is smoothed over time (:class:`ScaleSmoother`).
* position: a pinhole camera whose focal length comes from an assumed horizontal field of view.
  Depth of the hips ``Z = f / s``; lateral/vertical position ``X = (u - cx) / s``,
  ``Y = (v - cy) / s`` (these do not depend on the assumed focal length, only ``Z`` does).
  For a side view (walking across the image, the usual 2D gait set-up) the walking direction is
  ``X`` and is measured well; walking towards the camera is measured through ``Z``, i.e. through
  the change of apparent size, which is far noisier (a few % of scale noise = tens of cm of depth).

Axes: camera coordinates are x right, y down, z forward (right-handed, as MediaPipe's world
landmarks). The wire is right-handed with y up: rotate 180 degrees about x, i.e. (x, -y, -z); a
rotation keeps handedness. Wire skeletons from a webcam therefore live in a camera-centred frame,
y up when the camera is level; the floor is found downstream.
"""

from __future__ import annotations

import math

import numpy as np

# MediaPipe Pose landmark indices used for geometry.
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 11, 12, 23, 24
L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 25, 26, 27, 28

# Rigid segments whose length fixes the scale. Arms are left out: hands often point at the camera.
SCALE_SEGMENTS: tuple[tuple[int, int], ...] = (
    (L_HIP, L_KNEE), (L_KNEE, L_ANKLE), (R_HIP, R_KNEE), (R_KNEE, R_ANKLE),
)

CAMERA_TO_WIRE = np.array([1.0, -1.0, -1.0], dtype=np.float32)


def focal_length_px(width: int, hfov_deg: float) -> float:
    """Pinhole focal length in pixels for an image ``width`` px wide seen over ``hfov_deg``."""
    if not 1.0 < hfov_deg < 179.0:
        raise ValueError(f"horizontal field of view {hfov_deg} deg is not in (1, 179)")
    return (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)


def camera_to_wire(p: np.ndarray) -> np.ndarray:
    """Camera axes (x right, y down, z forward) -> wire axes (x right, y up, z towards camera)."""
    return (np.asarray(p, dtype=np.float32) * CAMERA_TO_WIRE).astype(np.float32)


def mid_hip(points: np.ndarray) -> np.ndarray:
    return (points[..., L_HIP, :] + points[..., R_HIP, :]) / 2.0


def leg_length_px(image_xy: np.ndarray, visibility: np.ndarray, min_vis: float = 0.5
                  ) -> float:
    """Hip-knee-ankle length of the longer visible leg in pixels (NaN if neither is visible).

    The longer leg is the less foreshortened one; it sizes gates and crops."""
    best = math.nan
    for hip, knee, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        if min(visibility[hip], visibility[knee], visibility[ankle]) < min_vis:
            continue
        n = float(np.linalg.norm(image_xy[hip] - image_xy[knee])
                  + np.linalg.norm(image_xy[knee] - image_xy[ankle]))
        best = n if math.isnan(best) else max(best, n)
    return best


def scale_px_per_m(image_xy: np.ndarray, world: np.ndarray, visibility: np.ndarray,
                   min_vis: float = 0.5) -> float:
    """Pixels per metre at the person's depth from one frame: image / world length of the leg
    segments both of whose ends are visible. NaN when none is."""
    img = wld = 0.0
    for a, b in SCALE_SEGMENTS:
        if min(visibility[a], visibility[b]) < min_vis:
            continue
        img += float(np.linalg.norm(image_xy[a] - image_xy[b]))
        wld += float(np.linalg.norm(world[a] - world[b]))
    if wld < 0.2:  # less than one segment's worth of body: not a usable measurement
        return math.nan
    return img / wld


def hip_position_camera(hip_px: np.ndarray, s: float, f: float, cx: float, cy: float
                        ) -> np.ndarray:
    """Camera-frame position (metres) of a point seen at ``hip_px`` with scale ``s`` px/m."""
    z = f / s
    return np.array([(hip_px[0] - cx) / s, (hip_px[1] - cy) / s, z], dtype=np.float64)


def place_world_landmarks(world_cam: np.ndarray, hip_px: np.ndarray, s: float, f: float,
                          cx: float, cy: float) -> np.ndarray:
    """Hip-centred camera-axis world landmarks (J, 3) -> wire joints (J, 3) with translation."""
    t = hip_position_camera(hip_px, s, f, cx, cy)
    return camera_to_wire(world_cam - mid_hip(world_cam) + t)


def lift_image_plane(image_xy: np.ndarray, s: float, f: float, cx: float, cy: float
                     ) -> np.ndarray:
    """2D keypoints (J, 2) px -> wire joints (J, 3): every joint at the depth ``f / s`` (a flat
    body parallel to the image; the sagittal plane of a side-view walker)."""
    z = f / s
    cam = np.empty((image_xy.shape[0], 3), dtype=np.float64)
    cam[:, 0] = (image_xy[:, 0] - cx) / s
    cam[:, 1] = (image_xy[:, 1] - cy) / s
    cam[:, 2] = z
    return camera_to_wire(cam)


class ScaleSmoother:
    """Pixels-per-metre of one person over time: an exponential average of log scale with time
    constant ``tau_s`` (timestamp driven, no frame rate assumed). Each frame's value is first
    clipped to within ``max_step`` (relative) of the running estimate, so a frame with a
    mis-detected leg cannot pull the depth by metres.

    The per-frame ratio swings by about +-4 % over a gait cycle (segments foreshorten as they
    swing); with ``tau_s`` = 1 s the depth of a side-view walker 6 m away moves by under 1 cm
    per frame instead of several cm. The price is lag for a person walking towards the camera.
    """

    def __init__(self, tau_s: float = 1.0, max_step: float = 0.15):
        self.tau_s, self.max_step = tau_s, max_step
        self._log: float | None = None
        self._t: int | None = None

    def update(self, t_us: int, s: float) -> float:
        """Feed one frame's scale (NaN = none this frame); returns the estimate (NaN if none)."""
        if math.isfinite(s) and s > 0:
            x = math.log(s)
            if self._log is None:
                self._log = x
            else:
                lim = math.log1p(self.max_step)
                x = min(max(x, self._log - lim), self._log + lim)
                dt = max(t_us - (self._t if self._t is not None else t_us), 0) / 1e6
                self._log += (1.0 - math.exp(-dt / self.tau_s)) * (x - self._log)
            self._t = t_us
        return math.exp(self._log) if self._log is not None else math.nan


def horizontal_speed(times_us: np.ndarray, x_px: np.ndarray) -> float:
    """Least-squares slope of ``x_px`` over time, px/s (0 for fewer than 2 distinct times)."""
    if len(times_us) < 2:
        return 0.0
    t = (times_us - times_us[0]) / 1e6
    if np.ptp(t) <= 0:
        return 0.0
    return float(np.polyfit(t, x_px, 1)[0])
