"""pyk4a.calibration: a Calibration wraps the capsule of a k4a_calibration_t."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from . import _fake_hardware as hw
from .config import ColorResolution, DepthMode


class CalibrationType(IntEnum):  # k4a_calibration_type_t
    UNKNOWN = -1
    DEPTH = 0
    COLOR = 1
    GYRO = 2
    ACCEL = 3
    NUM = 4


class Calibration:
    def __init__(self, handle: object, depth_mode: DepthMode, color_resolution: ColorResolution,
                 thread_safe: bool = True):
        self._calibration_handle = handle  # PyCapsule "pyk4a calibration handle"
        self.thread_safe = thread_safe
        self._depth_mode = depth_mode
        self._color_resolution = color_resolution

    @property
    def depth_mode(self) -> DepthMode:
        return self._depth_mode

    @property
    def color_resolution(self) -> ColorResolution:
        return self._color_resolution

    def get_extrinsic_parameters(self, source_camera: CalibrationType,
                                 target_camera: CalibrationType) -> tuple[np.ndarray, np.ndarray]:
        """(rotation (3, 3), translation (1, 3) in metres: pyk4a divides the SDK's millimetres
        by 1000, pyk4a issue #226) of ``extrinsics[source][target]``."""
        rotation, translation_mm = hw.extrinsics_of(self._calibration_handle, source_camera,
                                                    target_camera)
        return (np.reshape(np.array(rotation, dtype=np.float64), [3, 3]),
                np.reshape(np.array(translation_mm, dtype=np.float64), [1, 3]) / 1000)
