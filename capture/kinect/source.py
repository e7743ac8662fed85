"""Azure Kinect (and Orbbec Femto through its K4A wrapper) as a capture source: pyk4a opens the
camera or an .mkv recording, the Body Tracking SDK (capture.kinect.k4abt) turns captures into bodies.

What a frame on the wire is made of
-----------------------------------
* ``layout="azure_kinect32"``, one Body per tracked person: the SDK's 32 joints, its confidence
  levels NONE/LOW/MEDIUM/HIGH mapped through streams.skeletons.AZURE_KINECT_CONFIDENCE.
* ``t_us`` is the device timestamp of the depth image (µs). A camera that restarts (unplug,
  USB reset) restarts its clock near 0, so after a reconnection the source shifts the new
  session's timestamps to continue from the last one published plus the wall-clock time that
  passed: ``t_us`` never goes back, and within a session its differences are the device's own.
* Body ids are the SDK's within the first session. The SDK numbers bodies from 1 again after a
  reconnection; those sessions' ids are offset past every id already published, so that a
  downstream track (source, body id) is never handed to a different person.
* ``host_us`` is when the depth image reached the host (the SDK's system timestamp, the same
  monotonic clock as streams.schema.monotonic_us), so latency counts body tracking time.
* Axes: the SDK gives millimetres in the depth camera's frame (x right, y down, z forward). The
  wire wants metres, right-handed, y up. Turning 180 degrees about x (x, -y, -z) is that for a
  level camera. A camera on a kiosk or a hallway wall is tilted, so when the IMU is there its
  accelerometer gives the real up direction: at rest it measures +9.81 m/s^2 pointing up; the
  at-rest samples are averaged, turned from the accelerometer's frame into the depth camera's
  with the factory extrinsics, and the smallest rotation that takes that direction to +y is
  applied on top of the flip. The rotation is *applied* to the joints (a SkeletonFrame has no
  metadata to carry it, and every consumer wants y up); the heading is kept (the camera looks
  along -z) and the origin stays at the camera: the floor height is estimated downstream.
  ``state["up_axis"]`` says "imu" or "camera" (no usable IMU: camera axes). An extrinsic that is
  not a rotation (the Femto Bolt's K4A wrapper returns zeros) is replaced by the nominal mounting
  (capture.kinect.geometry.NOMINAL_ACCEL_TO_DEPTH): ``state["imu_extrinsic"]`` = "nominal", counted
  as ``imu_extrinsic_fallbacks``, logged once. The live camera's
  IMU keeps being read; if the camera is knocked and up moves by more than ``relevel_deg`` the
  rotation is renewed (counted as ``relevels``).

Unplug and replug
-----------------
A failed capture, a failed tracker or ``offline_after_s`` without a capture close the session;
``state["camera"]`` turns "offline" (with ``state["camera_error"]``), and the device is reopened
with exponential backoff (``reconnect_initial_s`` doubling up to ``reconnect_max_s``) until it
answers; then "online" again. A missing SDK (pyk4a, libk4a, libk4abt) is not retried: it raises
capture.kinect.k4abt.SDKMissingError naming what to install.

Real time
---------
The live camera is never blocked: captures go to the tracker without waiting, and a capture the
tracker has no room for is dropped and counted (``dropped_captures``). A recording is played
through the tracker frame by frame, nothing dropped, and is paced by its device timestamps.

Not exercised here (no camera, no SDK on the development machines): the real pyk4a and libk4a,
the real libk4abt, the capsule layout of a live pyk4a build, GPU processing modes, the Femto Bolt.
tests/test_kinect_pyk4a.py runs the pyk4a calls below (_Pyk4aCamera, _Pyk4aRecording,
Pyk4aBackend) against a fake pyk4a package with pyk4a's names and signatures
(tests/fakes/pyk4a); tests/test_kinect_source.py drives the source with a fake device in place
of those classes; both use a fake libk4abt (C, compiled from the header's structures).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from streams.schema import MAX_BODIES, Body, SkeletonFrame, monotonic_us

from capture.kinect import k4abt
from capture.kinect.geometry import (CAMERA_TO_WIRE, UpEstimator, angle_deg, camera_to_wire,
                           checked_accel_to_depth, level_rotation, levels_to_confidence)
from capture.kinect.k4abt import (INSTALL_HELP, K4A_WAIT_INFINITE, K4ABT_INVALID_BODY_ID,
                                  K4ABTError, SDKMissingError, TrackerConfig, WaitResult)

log = logging.getLogger(__name__)

LAYOUT = "azure_kinect32"
DEPTH_MODES = ("NFOV_2X2BINNED", "NFOV_UNBINNED", "WFOV_2X2BINNED", "WFOV_UNBINNED")
FPS_VALUES = (5, 15, 30)
SYNC_MODES = ("standalone", "master", "subordinate")


class DeviceError(RuntimeError):
    """The camera (or recording) stopped answering; the source reconnects."""


@dataclass
class Backoff:
    """Reconnection delays: initial, doubling, capped; reset after a success."""

    initial_s: float = 0.5
    max_s: float = 30.0
    _next: float = field(default=0.0, init=False)

    def next(self) -> float:
        d = self._next or self.initial_s
        self._next = min(d * 2.0, self.max_s)
        return d

    def reset(self) -> None:
        self._next = 0.0


# ------------------------------------------------------------------------------- the vendor boundary


class Capture(Protocol):
    handle: int  # the k4a_capture_t to give the tracker; the object keeps the capture alive


class KinectDevice(Protocol):
    """An open camera or recording, as the source needs it."""

    calibration: int  # address of the k4a_calibration_t the tracker is created from
    accel_to_depth: np.ndarray | None  # extrinsic rotation; None when there is no IMU

    def get_capture(self, timeout_ms: int) -> Capture | None:
        """The next capture; None on timeout. DeviceError when the camera is gone, EOFError at
        the end of a recording."""

    def read_imu(self, max_samples: int) -> np.ndarray:
        """Accelerometer samples (N, 3) m/s^2 available now (live: queued; recording: next)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class DeviceSettings:
    device_id: int = 0
    depth_mode: str = "NFOV_UNBINNED"
    fps: int = 30
    sync: str = "standalone"
    subordinate_delay_usec: int = 0


class KinectBackend(Protocol):
    def open_device(self, settings: DeviceSettings) -> KinectDevice: ...

    def open_playback(self, path: Path) -> KinectDevice: ...

    def create_tracker(self, calibration: int, config: TrackerConfig) -> k4abt.Tracker: ...


# pyk4a keeps its handles in PyCapsules with these names (pyk4a.cpp); the capsule of a capture
# points at a k4a_capture_t (itself a handle), the calibration's at the k4a_calibration_t.
CAPTURE_CAPSULE = b"pyk4a capture handle"
CALIBRATION_CAPSULE = b"pyk4a calibration handle"

_capsule_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get_pointer.restype = ctypes.c_void_p
_capsule_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def capsule_address(capsule: object, name: bytes) -> int:
    """The pointer inside a PyCapsule (ValueError if it is not a capsule of that name)."""
    addr = _capsule_get_pointer(capsule, name)
    if not addr:
        raise ValueError(f"not a {name.decode()!r} capsule")
    return addr


def capture_handle(capsule: object) -> int:
    """The k4a_capture_t inside a pyk4a capture capsule."""
    handle = ctypes.c_void_p.from_address(capsule_address(capsule, CAPTURE_CAPSULE)).value
    if not handle:
        raise ValueError("pyk4a capture capsule holds no capture")
    return handle


def _import_pyk4a() -> Any:
    try:
        import pyk4a
    except ImportError as e:
        raise SDKMissingError(
            f"pyk4a cannot be imported ({e}); it needs the Azure Kinect Sensor SDK (libk4a1.4) "
            f"or Orbbec's K4A wrapper: pip install 'gaitstream[kinect]' after installing it. "
            f"{INSTALL_HELP}") from e
    return pyk4a


class _Pyk4aCapture:
    def __init__(self, capture: Any):
        self._capture = capture  # owns the k4a_capture_t until the tracker has its reference
        self.handle = capture_handle(capture._capture_handle)


class _Pyk4aCamera:
    def __init__(self, pyk4a: Any, settings: DeviceSettings):
        self._pyk4a = pyk4a
        sync = settings.sync.upper()
        # The SDK refuses master mode without the colour camera; it runs at its cheapest there.
        color = pyk4a.ColorResolution.RES_720P if sync == "MASTER" else pyk4a.ColorResolution.OFF
        config = pyk4a.Config(
            color_resolution=color,
            color_format=pyk4a.ImageFormat.COLOR_MJPG,
            depth_mode=pyk4a.DepthMode[settings.depth_mode],
            camera_fps=pyk4a.FPS[f"FPS_{settings.fps}"],
            synchronized_images_only=False,  # body tracking needs depth only
            wired_sync_mode=pyk4a.WiredSyncMode[sync],
            subordinate_delay_off_master_usec=settings.subordinate_delay_usec,
        )
        self._dev = pyk4a.PyK4A(config=config, device_id=settings.device_id)
        try:
            self._dev.start()  # opens the device, starts depth and the IMU
            cal = self._dev.calibration
            self.calibration = capsule_address(cal._calibration_handle, CALIBRATION_CAPSULE)
            self.accel_to_depth = np.asarray(cal.get_extrinsic_parameters(
                pyk4a.CalibrationType.ACCEL, pyk4a.CalibrationType.DEPTH)[0], dtype=np.float64)
        except pyk4a.K4AException as e:
            self.close()
            raise DeviceError(f"cannot open Azure Kinect device {settings.device_id} "
                              f"({type(e).__name__}: {e})") from e

    def get_capture(self, timeout_ms: int) -> _Pyk4aCapture | None:
        try:
            return _Pyk4aCapture(self._dev.get_capture(timeout=timeout_ms))
        except self._pyk4a.K4ATimeoutException:
            return None
        except self._pyk4a.K4AException as e:
            raise DeviceError(f"capture failed ({type(e).__name__}: {e})") from e

    def read_imu(self, max_samples: int) -> np.ndarray:
        out = []
        try:
            while len(out) < max_samples:
                out.append(self._dev.get_imu_sample(timeout=0)["acc_sample"])
        except self._pyk4a.K4ATimeoutException:
            pass  # nothing more queued
        except self._pyk4a.K4AException as e:
            raise DeviceError(f"IMU read failed ({e})") from e
        return np.asarray(out, dtype=np.float64).reshape(-1, 3)

    def close(self) -> None:
        try:
            if self._dev.is_running:
                self._dev.stop()
            elif self._dev.opened:
                self._dev.close()
        except self._pyk4a.K4AException as e:  # already gone (unplugged)
            log.debug("closing the device: %s", e)


class _Pyk4aRecording:
    def __init__(self, pyk4a: Any, path: Path):
        self._pyk4a = pyk4a
        self._pb = pyk4a.PyK4APlayback(path)
        try:
            self._pb.open()
            cal = self._pb.calibration
            self.calibration = capsule_address(cal._calibration_handle, CALIBRATION_CAPSULE)
            self.accel_to_depth = None
            if self._pb.configuration["imu_track_enabled"]:
                self.accel_to_depth = np.asarray(cal.get_extrinsic_parameters(
                    pyk4a.CalibrationType.ACCEL, pyk4a.CalibrationType.DEPTH)[0])
        except pyk4a.K4AException as e:
            raise DeviceError(f"cannot open recording {path} ({e})") from e

    def get_capture(self, timeout_ms: int) -> _Pyk4aCapture | None:
        try:
            return _Pyk4aCapture(self._pb.get_next_capture())
        except self._pyk4a.K4AException as e:
            raise DeviceError(f"recording unreadable ({e})") from e

    def read_imu(self, max_samples: int) -> np.ndarray:
        out = []
        try:
            while len(out) < max_samples:
                out.append(self._pb.get_next_imu_sample()["acc_sample"])
        except (EOFError, self._pyk4a.K4AException):
            pass
        return np.asarray(out, dtype=np.float64).reshape(-1, 3)

    def close(self) -> None:
        self._pb.close()


class Pyk4aBackend:
    """The real thing: pyk4a for the camera and recordings, capture.kinect.k4abt for bodies."""

    def __init__(self) -> None:
        self._pyk4a = _import_pyk4a()
        k4abt.load_library()  # fail now, with the install text, rather than at the first body

    def open_device(self, settings: DeviceSettings) -> KinectDevice:
        return _Pyk4aCamera(self._pyk4a, settings)

    def open_playback(self, path: Path) -> KinectDevice:
        return _Pyk4aRecording(self._pyk4a, path)

    def create_tracker(self, calibration: int, config: TrackerConfig) -> k4abt.Tracker:
        return k4abt.Tracker(calibration, config)


# ------------------------------------------------------------------------------- the source


@dataclass
class _Session:
    """One open device (or recording) with its tracker, from connect to disconnect."""

    device: KinectDevice
    tracker: k4abt.Tracker
    id_base: int
    offset_us: int | None = None
    last_device_us: int | None = None
    timeouts_ms: int = 0
    rejected_in_row: int = 0
    tracker_failed: bool = False


class KinectSource:
    """Azure Kinect / Femto Bolt body tracking as a capture source (see the module text).

    Options (a capture process's ``[process.options]``):
      device_id, depth_mode (NFOV_UNBINNED, NFOV_2X2BINNED, WFOV_2X2BINNED, WFOV_UNBINNED),
      fps (5, 15, 30), sync (standalone, master, subordinate), subordinate_delay_usec,
      processing_mode (cuda, tensorrt, cpu, gpu, directml), sensor_orientation (default,
      clockwise90, counterclockwise90, flip180), gpu_device_id, model_path,
      temporal_smoothing [0, 1], recording (an .mkv: played back instead of the camera),
      use_imu, relevel_deg, capture_timeout_ms, offline_after_s, reconnect_initial_s,
      reconnect_max_s.
    """

    IMU_STARTUP_SAMPLES = 400  # ~0.25 s at the IMU's 1.6 kHz
    IMU_MAX_PER_FRAME = 400
    ENQUEUE_REJECTS_BEFORE_RESET = 30

    def __init__(self, name: str, device_id: int = 0, depth_mode: str = "NFOV_UNBINNED",
                 fps: int = 30, sync: str = "standalone", subordinate_delay_usec: int = 0,
                 processing_mode: str = "cuda", sensor_orientation: str = "default",
                 gpu_device_id: int = 0, model_path: str | None = None,
                 temporal_smoothing: float = 0.0, recording: str | None = None,
                 use_imu: bool = True, relevel_deg: float = 2.0, capture_timeout_ms: int = 1000,
                 offline_after_s: float = 2.0, reconnect_initial_s: float = 0.5,
                 reconnect_max_s: float = 30.0, backend: KinectBackend | None = None):
        depth_mode = depth_mode.upper()
        if depth_mode not in DEPTH_MODES:
            raise ValueError(f"depth_mode {depth_mode!r}: body tracking needs one of {DEPTH_MODES}")
        if fps not in FPS_VALUES:
            raise ValueError(f"fps {fps}: one of {FPS_VALUES}")
        if depth_mode == "WFOV_UNBINNED" and fps > 15:
            raise ValueError("depth_mode WFOV_UNBINNED runs at 15 fps at most")
        if sync not in SYNC_MODES:
            raise ValueError(f"sync {sync!r}: one of {SYNC_MODES}")
        if capture_timeout_ms <= 0 or offline_after_s <= 0:
            raise ValueError("capture_timeout_ms and offline_after_s must be positive")
        if not 0 < reconnect_initial_s <= reconnect_max_s:
            raise ValueError("need 0 < reconnect_initial_s <= reconnect_max_s")
        self.name = name
        self.settings = DeviceSettings(device_id, depth_mode, fps, sync, subordinate_delay_usec)
        self.tracker_config = TrackerConfig(processing_mode, sensor_orientation, gpu_device_id,
                                            model_path, temporal_smoothing)
        self.recording = Path(recording) if recording else None
        if self.recording is not None and not self.recording.is_file():
            raise ValueError(f"recording {self.recording}: no such file")
        self.paced = self.recording is not None
        self.use_imu = use_imu
        self.relevel_deg = relevel_deg
        self.capture_timeout_ms = capture_timeout_ms
        self.offline_after_ms = int(offline_after_s * 1000)
        self.backoff = Backoff(reconnect_initial_s, reconnect_max_s)
        self._backend = backend
        self.state: dict[str, str] = {"camera": "offline", "up_axis": "camera"}
        self.counters: dict[str, float] = {}
        self.reconnect_waits: list[float] = []  # the backoff delays used, newest last (bounded)
        self.rotation = CAMERA_TO_WIRE.copy()
        self._up: UpEstimator | None = None
        self._up_used: np.ndarray | None = None
        self._warned_extrinsic = False
        self._session: _Session | None = None
        self._last_t_us: int | None = None
        self._last_emit_mono_us = 0
        self._max_body_id = 0
        self._ids_prev: set[int] = set()
        self._closed = threading.Event()
        self._lock = threading.Lock()

    # ---- public

    def frames(self) -> Iterator[SkeletonFrame]:
        try:
            if self.recording is not None:
                yield from self._play()
            else:
                yield from self._live()
        finally:
            with self._lock:
                self._teardown()

    def close(self) -> None:
        """Stop: safe from any thread (a reconnection wait ends at once; an SDK call in flight
        finishes first, then the tracker and the device are released)."""
        self._closed.set()
        with self._lock:
            self._teardown()

    # ---- sessions

    def _count(self, name: str, n: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _get_backend(self) -> KinectBackend:
        if self._backend is None:
            self._backend = Pyk4aBackend()
        return self._backend

    def _connect(self) -> _Session:
        backend = self._get_backend()
        if self.recording is not None:
            device = backend.open_playback(self.recording)
        else:
            device = backend.open_device(self.settings)
        try:
            tracker = backend.create_tracker(device.calibration, self.tracker_config)
        except BaseException:
            device.close()
            raise
        try:
            self._level_at_start(device)
        except BaseException:
            tracker.destroy()
            device.close()
            raise
        return _Session(device, tracker, id_base=self._max_body_id)

    def _level_at_start(self, device: KinectDevice) -> None:
        self._up = None
        if self.use_imu and device.accel_to_depth is not None:
            self._up = UpEstimator(self._accel_to_depth(device.accel_to_depth))
            for _ in range(20):  # the IMU streams at 1.6 kHz; a live camera fills this quickly
                self._up.add(device.read_imu(self.IMU_STARTUP_SAMPLES))
                if self._up.up() is not None or self._closed.wait(0.01):
                    break
        up = self._up.up() if self._up is not None else None
        self._set_level(up)

    def _accel_to_depth(self, given: np.ndarray) -> np.ndarray:
        """The device's extrinsic rotation, or the nominal mounting when it is not a rotation
        (the Femto Bolt's K4A wrapper returns zeros): counted every session, logged once."""
        rotation, factory = checked_accel_to_depth(given)
        self.state["imu_extrinsic"] = "factory" if factory else "nominal"
        if not factory:
            self._count("imu_extrinsic_fallbacks")
            if not self._warned_extrinsic:
                self._warned_extrinsic = True
                log.warning("%s: the device's accelerometer-to-depth extrinsic is not a rotation "
                            "(%s); levelling with the nominal Azure Kinect / Femto mounting "
                            "instead", self.name,
                            np.array2string(np.asarray(given, dtype=float).ravel(), precision=3))
        return rotation

    def _set_level(self, up: np.ndarray | None) -> None:
        self._up_used = up
        self.rotation = level_rotation(up)
        self.state["up_axis"] = "imu" if up is not None else "camera"
        if up is not None:  # a level camera's up is its -y
            log.info("%s: up from the IMU, camera tilted %.1f deg from level", self.name,
                     angle_deg(up, np.array([0.0, -1.0, 0.0])))
        else:
            log.info("%s: no usable IMU; y up is the camera's own -y", self.name)

    def _relevel(self, device: KinectDevice) -> None:
        if self._up is None:
            return
        self._up.add(device.read_imu(self.IMU_MAX_PER_FRAME))
        up = self._up.up()
        if up is None:
            return
        if self._up_used is None:  # the camera was moving at start-up; now it is still
            self._set_level(up)
        elif (moved := angle_deg(up, self._up_used)) > self.relevel_deg:
            log.warning("%s: the camera moved (up changed by %.1f deg): re-levelled", self.name,
                        moved)
            self._count("relevels")
            self._set_level(up)

    def _teardown(self) -> None:
        s, self._session = self._session, None
        if s is None:
            return
        try:
            s.tracker.destroy()
        except Exception as e:  # a dead tracker must not keep the device open
            log.warning("%s: destroying the tracker: %s", self.name, e)
        try:
            s.device.close()
        except Exception as e:
            log.warning("%s: closing the device: %s", self.name, e)

    def _offline(self, why: str) -> None:
        if self.state.get("camera") != "offline":
            log.warning("%s: camera offline: %s", self.name, why)
        self.state["camera"] = "offline"
        self.state["camera_error"] = why[:200]
        self.state["bodies"] = "0"
        self._ids_prev = set()

    # ---- live camera

    def _live(self) -> Iterator[SkeletonFrame]:
        while not self._closed.is_set():
            if self._session is None and (delay := self._open_live()):
                self._closed.wait(delay)
                continue
            with self._lock:  # close() from another thread waits for the SDK call in flight
                if self._closed.is_set() or self._session is None:
                    return
                try:
                    out = self._live_step(self._session)
                except DeviceError as e:
                    self._count("disconnects")
                    self._teardown()
                    self._offline(str(e))
                    continue
            yield from out

    def _open_live(self) -> float:
        """Open the camera and its tracker; 0 when done (or closed), else the backoff delay."""
        with self._lock:
            if self._closed.is_set():
                return 0.0
            try:
                self._session = self._connect()
            except (DeviceError, K4ABTError) as e:  # SDKMissingError is not retried
                self._offline(str(e))
                self._count("connect_failures")
                delay = self.backoff.next()
                self.reconnect_waits = (self.reconnect_waits + [delay])[-100:]
                return delay
        self.backoff.reset()
        self.state["camera"] = "online"
        self.state.pop("camera_error", None)
        self._count("connects")
        log.info("%s: camera online", self.name)
        return 0.0

    def _live_step(self, s: _Session) -> list[SkeletonFrame]:
        """One capture into the tracker, every ready result out (a frame behind: the tracker
        works while the next capture is awaited)."""
        cap = s.device.get_capture(self.capture_timeout_ms)
        if cap is None:
            self._count("capture_timeouts")
            s.timeouts_ms += self.capture_timeout_ms
            if s.timeouts_ms >= self.offline_after_ms:
                raise DeviceError(f"no capture for {s.timeouts_ms / 1000:.1f} s")
            return []
        s.timeouts_ms = 0
        rc = s.tracker.enqueue(cap.handle, 0)
        del cap  # the tracker holds its own reference now
        if rc == WaitResult.TIMEOUT:
            self._count("dropped_captures")  # tracker busy: drop, never stall the camera
        elif rc == WaitResult.FAILED:
            self._count("captures_rejected")
            s.rejected_in_row += 1
            if s.rejected_in_row >= self.ENQUEUE_REJECTS_BEFORE_RESET:
                raise DeviceError(f"the tracker rejected {s.rejected_in_row} captures in a row")
        else:
            s.rejected_in_row = 0
        self._relevel(s.device)
        out = self._pop(s, 0, live=True)
        if s.tracker_failed:
            raise DeviceError("the body tracker failed")
        return out

    # ---- recording

    def _play(self) -> Iterator[SkeletonFrame]:
        with self._lock:
            self._session = self._connect()
        self.state["camera"] = "playback"
        while True:
            with self._lock:
                s = self._session
                if self._closed.is_set() or s is None:
                    return
                out, ended = self._play_step(s)
            yield from out
            if ended:
                break
        self.state["camera"] = "ended"

    def _play_step(self, s: _Session) -> tuple[list[SkeletonFrame], bool]:
        """Next capture into the tracker; at the end, the tracker flushed. (frames, ended)"""
        try:
            cap = s.device.get_capture(K4A_WAIT_INFINITE)
        except EOFError:
            s.tracker.shutdown()  # queued results still come out, then FAILED
            return self._pop(s, K4A_WAIT_INFINITE, live=False), True
        out: list[SkeletonFrame] = []
        if cap is None:
            return out, False
        # Keep the tracker's input queue full (throughput); when it is full, take a result out
        # instead of blocking in enqueue, which could deadlock against a full output queue.
        while (rc := s.tracker.enqueue(cap.handle, 0)) == WaitResult.TIMEOUT:
            out += self._pop(s, K4A_WAIT_INFINITE, live=False, limit=1)
        if rc == WaitResult.FAILED:
            self._count("captures_rejected")  # e.g. a capture without a depth image
        return out, False

    def _pop(self, s: _Session, timeout_ms: int, live: bool, limit: int | None = None
             ) -> list[SkeletonFrame]:
        out: list[SkeletonFrame] = []
        n = 0
        while limit is None or n < limit:
            rc, bf = s.tracker.pop(timeout_ms)
            if bf is None:
                s.tracker_failed = rc == WaitResult.FAILED
                break
            n += 1
            frame = self._frame(bf, s, live=live)
            if frame is not None:
                out.append(frame)
        return out

    # ---- body frame -> SkeletonFrame

    def _frame(self, bf: k4abt.BodyFrame, s: _Session, live: bool) -> SkeletonFrame | None:
        with bf:
            device_us = bf.device_timestamp_usec
            host_us = self._host_us(bf.system_timestamp_nsec) if live else 0
            if s.last_device_us is not None and device_us <= s.last_device_us:
                self._count("rejected_time")
                log.warning("%s: device timestamp %d after %d: frame dropped", self.name,
                            device_us, s.last_device_us)
                return None
            s.last_device_us = device_us
            raw = []
            for i in range(bf.num_bodies):
                sdk_id = bf.body_id(i)
                try:
                    joints = bf.skeleton(i)
                except K4ABTError as e:
                    self._count("rejected_bodies")
                    log.warning("%s: %s", self.name, e)
                    continue
                if sdk_id == K4ABT_INVALID_BODY_ID or not np.isfinite(joints["position"]).all():
                    self._count("rejected_bodies")
                    continue
                raw.append((sdk_id, joints))
        if len(raw) > MAX_BODIES:  # the wire carries MAX_BODIES: keep the nearest
            raw.sort(key=lambda b: float(b[1]["position"][0, 2]))
            self._count("bodies_over_limit", len(raw) - MAX_BODIES)
            raw = raw[:MAX_BODIES]
        bodies = [Body(s.id_base + sdk_id, camera_to_wire(j["position"], self.rotation),
                       levels_to_confidence(j["confidence"])) for sdk_id, j in raw]
        ids = {b.body_id for b in bodies}
        self._count("bodies_new", len(ids - self._ids_prev))
        self._count("bodies_lost", len(self._ids_prev - ids))
        self._ids_prev = ids
        self._max_body_id = max([self._max_body_id, *ids])
        self.state["bodies"] = str(len(bodies))
        return SkeletonFrame(source=self.name, seq=0, t_us=self._t_us(s, device_us),
                             host_us=host_us, layout=LAYOUT, bodies=bodies)

    def _t_us(self, s: _Session, device_us: int) -> int:
        now = monotonic_us()
        if s.offset_us is None:
            if self._last_t_us is None:
                s.offset_us = 0
            else:  # a new session: continue the source clock by the wall-clock time that passed
                s.offset_us = self._last_t_us + max(1, now - self._last_emit_mono_us) - device_us
        t = device_us + s.offset_us
        self._last_t_us, self._last_emit_mono_us = t, now
        return t

    @staticmethod
    def _host_us(system_ns: int) -> int:
        """The SDK's host receive time when it is on our monotonic clock and plausible."""
        now = monotonic_us()
        t = system_ns // 1000
        return t if 0 <= now - t < 10_000_000 else now

