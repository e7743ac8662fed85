"""pyk4a.capture: a PyK4ACapture holds the capsule of a k4a_capture_t (``_capture_handle``)."""

from __future__ import annotations

from . import _fake_hardware as hw
from .calibration import Calibration
from .config import ImageFormat


class PyK4ACapture:
    def __init__(self, calibration: Calibration | None, capture_handle: object,
                 color_format: ImageFormat, thread_safe: bool = True):
        self._calibration = calibration
        self._capture_handle: object = capture_handle  # PyCapsule "pyk4a capture handle"
        self.thread_safe = thread_safe
        self._color_format = color_format
        hw.track_capture(self, capture_handle)
