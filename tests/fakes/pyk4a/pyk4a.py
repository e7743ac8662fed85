"""pyk4a.pyk4a: PyK4A, one Azure Kinect device (open, start cameras and IMU, captures, IMU)."""

from __future__ import annotations

from typing import Optional, TypedDict

from . import _fake_hardware as hw
from .calibration import Calibration
from .capture import PyK4ACapture
from .config import Config
from .errors import K4AException


class ImuSample(TypedDict):
    temperature: float
    acc_sample: tuple[float, float, float]
    acc_timestamp: int
    gyro_sample: tuple[float, float, float]
    gyro_timestamp: int


class PyK4A:
    TIMEOUT_WAIT_INFINITE = -1

    def __init__(self, config: Optional[Config] = None, device_id: int = 0,
                 thread_safe: bool = True):
        self._device_id = device_id
        self._config: Config = config if config is not None else Config()
        self.thread_safe = thread_safe
        self._device_handle: Optional[hw.Camera] = None
        self._calibration: Optional[Calibration] = None
        self.is_running = False

    def start(self) -> None:
        """Open the device if needed, then start the cameras and the IMU."""
        if not self.opened:
            self.open()
        hw.start_cameras(self._device_handle, self._config)
        hw.start_imu(self._device_handle)
        self.is_running = True

    def stop(self) -> None:
        """Stop the IMU and the cameras, close the device."""
        hw.stop(self._device_handle)
        self._device_close()
        self.is_running = False

    @property
    def opened(self) -> bool:
        return self._device_handle is not None

    def open(self) -> None:
        if self.opened:
            raise K4AException("Device already opened")
        self._device_handle = hw.device_open(self._device_id)

    def close(self) -> None:
        self._validate_is_opened()
        self._device_close()

    def _device_close(self) -> None:
        hw.device_close(self._device_handle)
        self._device_handle = None

    def get_capture(self, timeout: int = TIMEOUT_WAIT_INFINITE) -> PyK4ACapture:
        self._validate_is_opened()
        capsule = hw.device_get_capture(self._device_handle, timeout)
        return PyK4ACapture(calibration=self.calibration, capture_handle=capsule,
                            color_format=self._config.color_format,
                            thread_safe=self.thread_safe)

    def get_imu_sample(self, timeout: int = TIMEOUT_WAIT_INFINITE) -> Optional[ImuSample]:
        self._validate_is_opened()
        return hw.device_get_imu_sample(self._device_handle, timeout)

    @property
    def calibration(self) -> Calibration:
        self._validate_is_opened()
        if not self._calibration:
            self._calibration = Calibration(
                handle=hw.device_get_calibration(self._device_handle),
                depth_mode=self._config.depth_mode,
                color_resolution=self._config.color_resolution, thread_safe=self.thread_safe)
        return self._calibration

    def _validate_is_opened(self) -> None:
        if not self.opened:
            raise K4AException("Device is not opened")
