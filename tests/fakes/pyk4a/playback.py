"""pyk4a.playback: PyK4APlayback, a k4arecorder .mkv read capture by capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from . import _fake_hardware as hw
from .calibration import Calibration
from .capture import PyK4ACapture
from .errors import K4AException


class PyK4APlayback:
    def __init__(self, path: Union[str, Path], thread_safe: bool = True):
        self._path = Path(path)
        self.thread_safe = thread_safe
        self._handle: Optional[hw.Recording] = None
        self._calibration: Optional[Calibration] = None

    @property
    def path(self) -> Path:
        return self._path

    def open(self) -> None:
        if self._handle:
            raise K4AException("Playback already opened")
        self._handle = hw.playback_open(self._path)

    def close(self) -> None:
        self._validate_is_open()
        hw.playback_close(self._handle)
        self._handle = None

    @property
    def configuration(self) -> dict[str, Any]:
        """The record configuration (pyk4a's Configuration TypedDict keys)."""
        self._validate_is_open()
        return hw.playback_configuration(self._handle)

    @property
    def calibration(self) -> Calibration:
        self._validate_is_open()
        if self._calibration is None:
            conf = self.configuration
            self._calibration = Calibration(handle=hw.playback_get_calibration(self._handle),
                                            depth_mode=conf["depth_mode"],
                                            color_resolution=conf["color_resolution"],
                                            thread_safe=self.thread_safe)
        return self._calibration

    def get_next_capture(self) -> PyK4ACapture:
        """The next capture; EOFError after the last, K4AException on a broken file."""
        self._validate_is_open()
        capsule = hw.playback_get_next_capture(self._handle)
        return PyK4ACapture(calibration=self._calibration, capture_handle=capsule,
                            color_format=self.configuration["color_format"],
                            thread_safe=self.thread_safe)

    def get_next_imu_sample(self) -> Optional[dict]:
        """The next IMU sample; EOFError after the last."""
        self._validate_is_open()
        return hw.playback_get_next_imu_sample(self._handle)

    def _validate_is_open(self) -> None:
        if not self._handle:
            raise K4AException("Playback not opened.")
