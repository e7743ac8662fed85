"""Azure Kinect geometry: depth camera axes to the wire's, the IMU's up direction, confidence.

The Body Tracking SDK gives millimetres in the depth camera's frame (x right, y down, z forward);
the wire wants metres, right-handed, y up. Turning 180 degrees about x, (x, y, z) -> (x, -y, -z),
is that for a level camera (which then looks along -z). A tilted camera is levelled with the
accelerometer: at rest it measures +9.81 m/s^2 pointing *up* (the reaction to gravity), so the
mean of the at-rest samples, turned into the depth camera's frame by the factory extrinsic
rotation (accelerometer -> depth), is the up direction; the smallest rotation taking it to +y
is applied after the flip, which keeps the camera's heading.

That extrinsic rotation is checked before use: Orbbec's K4A wrapper for the Femto Bolt returns an
all-zero accelerometer/gyroscope extrinsic (OrbbecSDK-K4A-Wrapper issues #108/#109), which would
make every up direction 0/0. Anything that is not a rotation is replaced by the nominal mounting
(``NOMINAL_ACCEL_TO_DEPTH``, see there).
"""

from __future__ import annotations

import math

import numpy as np

from streams.skeletons import AZURE_KINECT_CONFIDENCE

GRAVITY = 9.81

# 180 degrees about x: depth camera axes (y down, z forward) -> y up, camera looking along -z.
CAMERA_TO_WIRE = np.diag([1.0, -1.0, -1.0])

# Nominal accelerometer -> depth camera rotation (p_depth = R @ p_accel) of the Azure Kinect, whose
# layout the Femto Bolt copies. The accelerometer's axes are fixed to the housing: x backwards,
# y left, z down as the depth camera sees them when the camera is level (at rest it reads about
# (0, 0, -9.81)); the depth camera is tilted 6 degrees down from the housing (Azure Kinect DK
# hardware specification: "the depth camera is tilted 6 degrees downwards"), which is the rotation
# about x here. Checked against factory calibrations: an Azure Kinect's extrinsics[ACCEL][DEPTH]
# printed in microsoft/Azure_Kinect_ROS_Driver issue #4 is this matrix within 0.5 degree (a 5.6
# degree tilt); for the Femto Bolt, its IMU -> colour camera rotation (SpectacularAI/sdk issue #50)
# is the same axes permutation within 0.1 degree and its depth -> colour extrinsic (Orbbec
# OrbbecSDK-K4A-Wrapper issue #109) the same 6 degree tilt. A unit's own calibration differs by
# a fraction of a degree: the up estimate is then off by that much, which levelling tolerates.
_TILT = math.radians(6.0)
NOMINAL_ACCEL_TO_DEPTH = np.array([
    [0.0, -1.0, 0.0],
    [math.sin(_TILT), 0.0, math.cos(_TILT)],
    [-math.cos(_TILT), 0.0, math.sin(_TILT)],
])

_CONFIDENCE_TABLE = np.asarray(AZURE_KINECT_CONFIDENCE, dtype=np.float32)


def levels_to_confidence(levels: np.ndarray) -> np.ndarray:
    """SDK confidence levels (0..3) -> [0, 1]; a value outside the enum counts as NONE."""
    lv = np.asarray(levels)
    valid = (lv >= 0) & (lv < len(_CONFIDENCE_TABLE))
    return np.where(valid, _CONFIDENCE_TABLE[np.where(valid, lv, 0)], 0.0).astype(np.float32)


def at_rest_mean(acc: np.ndarray, tolerance: float = 0.2) -> tuple[np.ndarray, int]:
    """Mean of the accelerometer samples (N, 3) m/s^2 whose magnitude is gravity's within
    ``tolerance`` (the camera is still), and how many there were."""
    acc = np.asarray(acc, dtype=np.float64).reshape(-1, 3)
    still = np.abs(np.linalg.norm(acc, axis=1) - GRAVITY) < tolerance
    n = int(still.sum())
    return (acc[still].mean(axis=0) if n else np.zeros(3)), n


def level_rotation(up_camera: np.ndarray | None) -> np.ndarray:
    """Rotation R (3x3) with p_wire = R @ p_camera: y along ``up_camera`` (a direction in depth
    camera axes), heading kept. ``None`` -> the plain flip of a level camera."""
    if up_camera is None:
        return CAMERA_TO_WIRE.copy()
    u = CAMERA_TO_WIRE @ (np.asarray(up_camera, dtype=np.float64)
                          / np.linalg.norm(up_camera))
    y = np.array([0.0, 1.0, 0.0])
    v = np.cross(u, y)
    c = float(u @ y)
    s2 = float(v @ v)
    if s2 < 1e-18:
        # already up (identity) or upside down (half turn about x, heading kept)
        align = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
        align = np.eye(3) + vx + vx @ vx * ((1.0 - c) / s2)  # Rodrigues, u -> y
    return align @ CAMERA_TO_WIRE


def camera_to_wire(positions_mm: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(..., 3) millimetres in depth camera axes -> metres in wire axes (float32)."""
    return (np.asarray(positions_mm, dtype=np.float64) @ (rotation.T / 1000.0)).astype(np.float32)


def is_rotation(r: object, tol: float = 1e-2) -> bool:
    """True when ``r`` is a finite 3x3 proper rotation: orthonormal (R R^T = I within ``tol``,
    generous for a float32 factory calibration) and det +1 (not a reflection)."""
    try:
        m = np.asarray(r, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if m.shape not in ((3, 3), (9,)) or not np.isfinite(m).all():
        return False
    m = m.reshape(3, 3)
    return bool(np.abs(m @ m.T - np.eye(3)).max() < tol and abs(np.linalg.det(m) - 1.0) < tol)


def checked_accel_to_depth(r: object) -> tuple[np.ndarray, bool]:
    """The device's accelerometer -> depth rotation when it is one, else the nominal mounting:
    (rotation, True when the device's was used)."""
    if is_rotation(r):
        return np.asarray(r, dtype=np.float64).reshape(3, 3), True
    return NOMINAL_ACCEL_TO_DEPTH.copy(), False


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


class UpEstimator:
    """Up direction in depth camera axes from accelerometer samples taken while the camera is
    still: an exponential average (``time_constant`` samples) of the at-rest samples, turned into
    the depth camera's frame with the accelerometer-to-depth extrinsic rotation."""

    def __init__(self, accel_to_depth: np.ndarray, min_samples: int = 100,
                 time_constant: float = 1600.0):
        if not is_rotation(accel_to_depth):
            raise ValueError("accel_to_depth is not a rotation (see checked_accel_to_depth)")
        self.accel_to_depth = np.asarray(accel_to_depth, dtype=np.float64).reshape(3, 3)
        self.min_samples = min_samples
        self.k = 1.0 / time_constant
        self.mean = np.zeros(3)
        self.n = 0

    def add(self, acc: np.ndarray) -> None:
        m, n = at_rest_mean(acc)
        if not n:
            return
        w = 1.0 if self.n == 0 else 1.0 - (1.0 - self.k) ** n
        self.mean = (1.0 - w) * self.mean + w * m
        self.n += n

    def up(self) -> np.ndarray | None:
        if self.n < self.min_samples:
            return None
        v = self.accel_to_depth @ self.mean
        n = float(np.linalg.norm(v))
        return v / n if n > 1e-6 else None

