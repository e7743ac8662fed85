"""What pyk4a's C extension (k4a_module over libk4a) would do, simulated; NOT part of pyk4a.

The tests script a bus of cameras (``BUS.cameras``, index = device id) and a set of recordings
(``BUS.recordings``, by path). Handles travel in real PyCapsules with pyk4a.cpp's names: a capture
capsule points at a k4a_capture_t (its value is the capture handle the fake libk4abt maps to
scripted bodies), a calibration capsule at a k4a_calibration_t-sized buffer (the body tracker is
created from its address). The SDK's refusals that matter here are kept: opening an absent or
unplugged device fails, master sync without the colour camera fails, WFOV unbinned depth above
15 fps fails, synchronised images without colour fail.
"""

from __future__ import annotations

import ctypes
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .config import FPS, ColorResolution, Config, DepthMode, ImageFormat, WiredSyncMode
from .errors import K4AException, K4ATimeoutException

CAPTURE_CAPSULE = b"pyk4a capture handle"
CALIBRATION_CAPSULE = b"pyk4a calibration handle"
CALIBRATION_BYTES = 1032  # a buffer at least the size of k4a_calibration_t

UNPLUG = "unplug"  # camera script item: the cable is pulled (this and later calls fail)
BROKEN = "broken"  # recording script item: an unreadable block (K4A_STREAM_RESULT_FAILED)

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def _depth_calibration() -> dict:
    # p_target = R p_source, millimetres: the identity for every pair unless a test says otherwise
    eye = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    return {(s, t): (eye, [0.0, 0.0, 0.0]) for s in range(4) for t in range(4)}


@dataclass
class Camera:
    """One physical camera. ``script``: capture handles (int), ``None`` (nothing arrives within
    the timeout), UNPLUG, or callables run at that point; after it the camera goes silent.
    ``imu``: accelerometer samples (N, 3) m/s^2, queued as if they had arrived."""

    script: list = field(default_factory=list)
    imu: np.ndarray | None = None
    accel_to_depth: np.ndarray | None = None  # extrinsics[ACCEL][DEPTH] rotation
    plugged: bool = True
    on_failed_open: Callable[["Camera"], None] | None = None
    # what was done to it
    opens: int = 0
    failed_opens: int = 0
    started: list[Config] = field(default_factory=list)
    running: bool = False
    is_open: bool = False
    calibration_buffers: list = field(default_factory=list)
    imu_pos: int = 0

    def plug_in(self, script: list, imu: np.ndarray | None = None) -> None:
        """A replug: a fresh device session (the device clock restarts in the scripted bodies)."""
        self.plugged, self.script = True, list(script)
        if imu is not None:
            self.imu, self.imu_pos = imu, 0


@dataclass
class Recording:
    """A k4arecorder file: captures in order (int handles or BROKEN), IMU samples when the
    recording has an IMU track."""

    captures: list
    imu: np.ndarray | None = None
    accel_to_depth: np.ndarray | None = None
    depth_mode: DepthMode = DepthMode.NFOV_UNBINNED
    camera_fps: FPS = FPS.FPS_30
    pos: int = 0
    imu_pos: int = 0
    closed: bool = False
    calibration_buffers: list = field(default_factory=list)


@dataclass
class Bus:
    cameras: list[Camera] = field(default_factory=list)
    recordings: dict[str, Recording] = field(default_factory=dict)
    live_captures: int = 0  # capture capsules not yet garbage (k4a_capture_release pending)
    _cells: dict[int, object] = field(default_factory=dict)

    def add_recording(self, path: str | Path, rec: Recording) -> Recording:
        self.recordings[str(Path(path).resolve())] = rec
        return rec


BUS = Bus()


def reset() -> Bus:
    global BUS
    BUS = Bus()
    return BUS


# ---------------------------------------------------------------------------- capsules


def _capture_capsule(handle: int) -> object:
    cell = ctypes.c_void_p(handle)  # the malloc'ed k4a_capture_t of pyk4a.cpp
    capsule = _capsule_new(ctypes.addressof(cell), CAPTURE_CAPSULE, None)
    BUS._cells[id(capsule)] = cell
    return capsule


def track_capture(capture: object, capsule: object) -> None:
    """Count the capture until its PyK4ACapture is garbage (pyk4a's capsule destructor then
    releases the k4a_capture_t): ``BUS.live_captures`` says how many are still held."""
    bus = BUS
    bus.live_captures += 1

    def release(key: int = id(capsule)) -> None:
        bus._cells.pop(key, None)
        bus.live_captures -= 1

    weakref.finalize(capture, release)


def _calibration_capsule(owner: Camera | Recording, accel_to_depth: np.ndarray | None) -> object:
    buf = ctypes.create_string_buffer(CALIBRATION_BYTES)
    owner.calibration_buffers.append(buf)
    table = _depth_calibration()
    if accel_to_depth is not None:
        r = np.asarray(accel_to_depth, dtype=np.float64).reshape(3, 3)
        table[(3, 0)] = (r.tolist(), [3.7, 4.0, -50.9])  # ACCEL -> DEPTH
        table[(0, 3)] = (r.T.tolist(), [-51.0, 3.6, 1.0])  # DEPTH -> ACCEL
    _EXTRINSICS[ctypes.addressof(buf)] = table
    return _capsule_new(ctypes.addressof(buf), CALIBRATION_CAPSULE, None)


_EXTRINSICS: dict[int, dict] = {}

_capsule_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get_pointer.restype = ctypes.c_void_p
_capsule_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def extrinsics_of(capsule: object, source: int, target: int) -> tuple[list, list]:
    addr = _capsule_get_pointer(capsule, CALIBRATION_CAPSULE)
    return _EXTRINSICS[addr][(int(source), int(target))]


# ---------------------------------------------------------------------------- device


def device_open(device_id: int) -> Camera:
    cams = BUS.cameras
    cam = cams[device_id] if 0 <= device_id < len(cams) else None
    if cam is None or not cam.plugged:
        if cam is not None:
            cam.failed_opens += 1
            if cam.on_failed_open is not None:
                cam.on_failed_open(cam)
        raise K4AException()  # k4a_device_open: K4A_RESULT_FAILED
    if cam.is_open:
        raise K4AException()  # the SDK opens a device once
    cam.opens += 1
    cam.is_open = True
    return cam


def start_cameras(cam: Camera, config: Config) -> None:
    color_on = config.color_resolution != ColorResolution.OFF
    if not cam.plugged:
        raise K4AException()
    if config.wired_sync_mode == WiredSyncMode.MASTER and not color_on:
        raise K4AException()  # "master mode needs the color camera"
    if config.synchronized_images_only and not (color_on and config.depth_mode):
        raise K4AException()
    if config.depth_mode == DepthMode.WFOV_UNBINNED and config.camera_fps == FPS.FPS_30:
        raise K4AException()
    if color_on and config.color_format != ImageFormat.COLOR_MJPG and \
            config.color_resolution > ColorResolution.RES_1080P:
        raise K4AException()
    cam.started.append(config)
    cam.running = True


def start_imu(cam: Camera) -> None:
    if not cam.running:
        raise K4AException()  # the IMU runs only while a camera does


def stop(cam: Camera) -> None:
    cam.running = False  # k4a_device_stop_imu/_cameras return nothing: never fail


def device_close(cam: Camera) -> None:
    cam.running = False
    cam.is_open = False


def device_get_calibration(cam: Camera) -> object:
    if not cam.plugged:
        raise K4AException()
    return _calibration_capsule(cam, cam.accel_to_depth)


def device_get_capture(cam: Camera, timeout_ms: int) -> object:
    while True:
        if not cam.plugged:
            raise K4AException()  # K4A_WAIT_RESULT_FAILED
        if not cam.running:
            raise K4AException()
        if not cam.script:
            if timeout_ms < 0:
                raise RuntimeError("fake camera: an infinite wait on a silent camera")
            raise K4ATimeoutException()
        item = cam.script.pop(0)
        if callable(item):
            item()
            continue
        if item == UNPLUG:
            cam.plugged = False
            continue
        if item is None:
            raise K4ATimeoutException()
        return _capture_capsule(int(item))


def _imu_sample(acc: np.ndarray, t_us: int) -> dict:
    return {"temperature": 31.5, "acc_sample": tuple(float(v) for v in acc),
            "acc_timestamp": t_us, "gyro_sample": (0.0, 0.0, 0.0), "gyro_timestamp": t_us}


def device_get_imu_sample(cam: Camera, timeout_ms: int) -> dict:
    if not cam.plugged or not cam.running:
        raise K4AException()
    if cam.imu is None or cam.imu_pos >= len(cam.imu):
        raise K4ATimeoutException()  # nothing queued (the tests read with timeout 0)
    acc = cam.imu[cam.imu_pos]
    cam.imu_pos += 1
    return _imu_sample(acc, cam.imu_pos * 625)  # 1.6 kHz


# ---------------------------------------------------------------------------- playback


def playback_open(path: Path) -> Recording:
    rec = BUS.recordings.get(str(Path(path).resolve()))
    if rec is None or not Path(path).is_file():
        raise K4AException(f"Cannot open file {path}")
    rec.pos = rec.imu_pos = 0
    rec.closed = False
    return rec


def playback_close(rec: Recording) -> None:
    rec.closed = True


def playback_configuration(rec: Recording) -> dict:
    return {"color_format": ImageFormat.COLOR_MJPG, "color_resolution": ColorResolution.OFF,
            "depth_mode": rec.depth_mode, "camera_fps": rec.camera_fps,
            "color_track_enabled": False, "depth_track_enabled": True,
            "ir_track_enabled": True, "imu_track_enabled": rec.imu is not None,
            "depth_delay_off_color_usec": 0, "wired_sync_mode": WiredSyncMode.STANDALONE,
            "subordinate_delay_off_master_usec": 0, "start_timestamp_offset_usec": 0}


def playback_get_calibration(rec: Recording) -> object:
    return _calibration_capsule(rec, rec.accel_to_depth)


def playback_get_next_capture(rec: Recording) -> object:
    if rec.pos >= len(rec.captures):
        raise EOFError()  # K4A_STREAM_RESULT_EOF
    item = rec.captures[rec.pos]
    rec.pos += 1
    if item == BROKEN:
        raise K4AException()  # K4A_STREAM_RESULT_FAILED
    return _capture_capsule(int(item))


def playback_get_next_imu_sample(rec: Recording) -> dict:
    if rec.imu is None or rec.imu_pos >= len(rec.imu):
        raise EOFError()
    acc = rec.imu[rec.imu_pos]
    rec.imu_pos += 1
    return _imu_sample(acc, rec.imu_pos * 625)
