"""ctypes binding of the Azure Kinect Body Tracking SDK 1.1 (libk4abt.so / k4abt.dll).

pyk4a drives the camera but has no body tracking, so this module binds the part of ``k4abt.h``
the capture source needs. The structures are written out from ``k4abttypes.h`` of SDK 1.1.x:

    k4a_float3_t        union { struct { float x, y, z; } xyz; float v[3]; }        12 bytes
    k4a_quaternion_t    union { struct { float w, x, y, z; } wxyz; float v[4]; }    16 bytes
    k4abt_joint_t       { k4a_float3_t position /* mm */; k4a_quaternion_t orientation;
                          k4abt_joint_confidence_level_t confidence_level; }         32 bytes
    k4abt_skeleton_t    { k4abt_joint_t joints[K4ABT_JOINT_COUNT = 32]; }           1024 bytes
    k4abt_body_t        { uint32_t id; k4abt_skeleton_t skeleton; }                 1028 bytes
    k4abt_tracker_configuration_t { k4abt_sensor_orientation_t sensor_orientation;
                          k4abt_tracker_processing_mode_t processing_mode;
                          int32_t gpu_device_id; const char *model_path; }   24 bytes (LP64)

SDK 1.0 had no ``model_path`` and only the GPU/CPU processing modes; passing the 1.1 struct by
value to a 1.0 library would corrupt the call, so a 1.0 library is refused with a clear error
(1.1 is told apart by ``k4abt_frame_get_system_timestamp_nsec``, which 1.0 lacks).

The library is loaded lazily, on the first tracker, so that importing gaitstream never needs the
SDK. ``K4ABT_LIBRARY`` may name the library file when it is not on the loader's search path.
When it cannot be loaded, :class:`SDKMissingError` says what is missing and how to install it:

Installing on a kiosk / edge box (x86-64 only: Microsoft ships no arm64 body tracking, so it
does not run on a Jetson):

* Ubuntu 18.04 / 20.04: add Microsoft's package repository for Ubuntu 18.04 (the Azure Kinect
  packages are published there; 20.04 boxes use the same repository)::

      curl -sSL https://packages.microsoft.com/keys/microsoft.asc | sudo apt-key add -
      sudo apt-add-repository https://packages.microsoft.com/ubuntu/18.04/prod
      sudo apt-get update
      sudo apt-get install libk4a1.4 libk4a1.4-dev k4a-tools libk4abt1.1 libk4abt1.1-dev

  (the packages ask to accept an EULA; preseed it with debconf for unattended installs), copy
  ``scripts/99-k4a.rules`` of Azure-Kinect-Sensor-SDK to ``/etc/udev/rules.d/`` so that the
  capture process need not run as root, then ``pip install "gaitstream[kinect]"`` (pyk4a builds
  against libk4a1.4-dev). ``k4aviewer`` (k4a-tools) checks the camera; ``k4abt_simple_3d_viewer``
  checks body tracking and the GPU set-up before gaitstream is involved.
* Windows: the Azure Kinect SDK 1.4.1 and Body Tracking SDK 1.1.2 installers; ``k4abt.dll`` is
  found in their default install folder, or set ``K4ABT_LIBRARY``.
* Orbbec Femto Bolt / Mega: Orbbec's OrbbecSDK-K4A-Wrapper is a libk4a with the Azure Kinect
  Sensor SDK 1.4.1 API on top of the Orbbec SDK. Install its release package (with Orbbec's udev
  rules) so that its ``libk4a.so.1.4`` is the one pyk4a and libk4abt load (build pyk4a against
  its headers, or put its library folder first on ``LD_LIBRARY_PATH``), and keep Microsoft's
  libk4abt1.1 for body tracking. Nothing else changes here: same depth modes, same calibration,
  same IMU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

K4ABT_JOINT_COUNT = 32
K4ABT_INVALID_BODY_ID = 0xFFFFFFFF
K4A_WAIT_INFINITE = -1

INSTALL_HELP = (
    "Install the Azure Kinect Body Tracking SDK 1.1 on this machine (x86-64): on Ubuntu 18.04/20.04 "
    "add https://packages.microsoft.com/ubuntu/18.04/prod and `apt-get install libk4a1.4 "
    "libk4a1.4-dev k4a-tools libk4abt1.1 libk4abt1.1-dev`; on Windows the Body Tracking SDK 1.1.2 "
    "installer. For an Orbbec Femto Bolt/Mega, install OrbbecSDK-K4A-Wrapper as the libk4a and "
    "keep libk4abt1.1. If the library lives elsewhere, set K4ABT_LIBRARY to its path. "
    "See capture/k4abt.py."
)


class SDKMissingError(ImportError):
    """A vendor library (libk4abt, libk4a, pyk4a) is not installed or cannot be loaded."""


class K4ABTError(RuntimeError):
    """The body tracking SDK reported a failure."""


# ------------------------------------------------------------------------------- enumerations


class SensorOrientation(enum.IntEnum):
    DEFAULT = 0
    CLOCKWISE90 = 1
    COUNTERCLOCKWISE90 = 2
    FLIP180 = 3


class ProcessingMode(enum.IntEnum):
    GPU = 0  # the SDK's choice: CUDA on Linux, DirectML on Windows
    CPU = 1
    GPU_CUDA = 2
    GPU_TENSORRT = 3
    GPU_DIRECTML = 4  # Windows only


PROCESSING_MODES: dict[str, ProcessingMode] = {
    "gpu": ProcessingMode.GPU,
    "cpu": ProcessingMode.CPU,
    "cuda": ProcessingMode.GPU_CUDA,
    "tensorrt": ProcessingMode.GPU_TENSORRT,
    "directml": ProcessingMode.GPU_DIRECTML,
}
SENSOR_ORIENTATIONS: dict[str, SensorOrientation] = {
    m.name.lower(): m for m in SensorOrientation
}


class JointConfidence(enum.IntEnum):
    NONE = 0  # out of range (too far from the depth camera)
    LOW = 1  # not observed (occluded), predicted
    MEDIUM = 2  # the highest level SDK 1.x reports
    HIGH = 3  # reserved for a future SDK


class WaitResult(enum.IntEnum):
    """k4a_wait_result_t"""

    SUCCEEDED = 0
    FAILED = 1
    TIMEOUT = 2


K4A_RESULT_SUCCEEDED = 0

# ------------------------------------------------------------------------------- structures


class _XYZ(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float), ("z", ctypes.c_float)]


class k4a_float3_t(ctypes.Union):
    _fields_ = [("xyz", _XYZ), ("v", ctypes.c_float * 3)]


class _WXYZ(ctypes.Structure):
    _fields_ = [("w", ctypes.c_float), ("x", ctypes.c_float), ("y", ctypes.c_float),
                ("z", ctypes.c_float)]


class k4a_quaternion_t(ctypes.Union):
    _fields_ = [("wxyz", _WXYZ), ("v", ctypes.c_float * 4)]


class k4abt_joint_t(ctypes.Structure):
    _fields_ = [
        ("position", k4a_float3_t),
        ("orientation", k4a_quaternion_t),
        ("confidence_level", ctypes.c_int),  # C enum: int-sized on every supported compiler
    ]


class k4abt_skeleton_t(ctypes.Structure):
    _fields_ = [("joints", k4abt_joint_t * K4ABT_JOINT_COUNT)]


class k4abt_body_t(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("skeleton", k4abt_skeleton_t)]


class k4abt_tracker_configuration_t(ctypes.Structure):
    _fields_ = [
        ("sensor_orientation", ctypes.c_int),
        ("processing_mode", ctypes.c_int),
        ("gpu_device_id", ctypes.c_int32),
        ("model_path", ctypes.c_char_p),
    ]


# One joint viewed from numpy: the same 32 bytes as k4abt_joint_t, so a skeleton is read in one
# copy instead of 32 x 8 attribute lookups.
JOINT_DTYPE = np.dtype([("position", "<f4", (3,)), ("orientation", "<f4", (4,)),
                        ("confidence", "<i4")])
assert JOINT_DTYPE.itemsize == ctypes.sizeof(k4abt_joint_t)

# Opaque handles (K4A_DECLARE_HANDLE): pointers the SDK hands out.
k4abt_tracker_t = ctypes.c_void_p
k4abt_frame_t = ctypes.c_void_p
k4a_capture_t = ctypes.c_void_p

# name: (restype, argtypes), as declared in k4abt.h
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "k4abt_tracker_create": (ctypes.c_int, [ctypes.c_void_p, k4abt_tracker_configuration_t,
                                            ctypes.POINTER(k4abt_tracker_t)]),
    "k4abt_tracker_destroy": (None, [k4abt_tracker_t]),
    "k4abt_tracker_set_temporal_smoothing": (None, [k4abt_tracker_t, ctypes.c_float]),
    "k4abt_tracker_enqueue_capture": (ctypes.c_int, [k4abt_tracker_t, k4a_capture_t,
                                                     ctypes.c_int32]),
    "k4abt_tracker_pop_result": (ctypes.c_int, [k4abt_tracker_t, ctypes.POINTER(k4abt_frame_t),
                                                ctypes.c_int32]),
    "k4abt_tracker_shutdown": (None, [k4abt_tracker_t]),
    "k4abt_frame_release": (None, [k4abt_frame_t]),
    "k4abt_frame_get_num_bodies": (ctypes.c_uint32, [k4abt_frame_t]),
    "k4abt_frame_get_body_skeleton": (ctypes.c_int, [k4abt_frame_t, ctypes.c_uint32,
                                                     ctypes.POINTER(k4abt_skeleton_t)]),
    "k4abt_frame_get_body_id": (ctypes.c_uint32, [k4abt_frame_t, ctypes.c_uint32]),
    "k4abt_frame_get_device_timestamp_usec": (ctypes.c_uint64, [k4abt_frame_t]),
    "k4abt_frame_get_system_timestamp_nsec": (ctypes.c_uint64, [k4abt_frame_t]),
}

# ------------------------------------------------------------------------------- loading

_WINDOWS_DIRS = (
    r"C:\Program Files\Azure Kinect Body Tracking SDK\sdk\windows-desktop\amd64\release\bin",
    r"C:\Program Files\Azure Kinect Body Tracking SDK\tools",
)

_lock = threading.Lock()
_library: ctypes.CDLL | None = None


def _candidates() -> list[str]:
    env = os.environ.get("K4ABT_LIBRARY")
    if env:
        return [env]
    found = ctypes.util.find_library("k4abt")
    names = [found] if found else []
    if sys.platform == "win32":
        names += [str(Path(d) / "k4abt.dll") for d in _WINDOWS_DIRS] + ["k4abt.dll"]
    else:
        names += ["libk4abt.so.1.1", "libk4abt.so"]
    return names


def bind(lib: ctypes.CDLL, path: str = "") -> ctypes.CDLL:
    """Declare the prototypes on a loaded library; refuse one that is not SDK 1.1."""
    missing = [n for n in _PROTOTYPES if not hasattr(lib, n)]
    if "k4abt_frame_get_system_timestamp_nsec" in missing and len(missing) == 1:
        raise SDKMissingError(
            f"{path or 'libk4abt'} is Body Tracking SDK 1.0; gaitstream needs 1.1 (its tracker "
            f"configuration has model_path and the CUDA/TensorRT/DirectML modes). {INSTALL_HELP}")
    if missing:
        raise SDKMissingError(f"{path or 'libk4abt'} lacks {', '.join(missing)}: not the Azure "
                              f"Kinect Body Tracking SDK 1.1. {INSTALL_HELP}")
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def load_library() -> ctypes.CDLL:
    """The bound libk4abt, loaded on first use (thread-safe)."""
    global _library
    with _lock:
        if _library is not None:
            return _library
        errors = []
        for name in _candidates():
            try:
                if sys.platform == "win32" and os.path.dirname(name):
                    # k4abt.dll loads onnxruntime and the CUDA/DirectML DLLs from its own folder
                    os.add_dll_directory(os.path.dirname(name))  # type: ignore[attr-defined]
                lib = ctypes.CDLL(name)
            except OSError as e:  # not there, or a dependency (libk4a, onnxruntime) missing
                errors.append(f"{name}: {e}")
                continue
            _library = bind(lib, name)
            log.info("loaded body tracking SDK from %s", name)
            return _library
        tried = "; ".join(errors) or "no candidate library names"
        raise SDKMissingError(f"Azure Kinect Body Tracking SDK (libk4abt) not found (tried: "
                              f"{tried}). {INSTALL_HELP}")


# ------------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class TrackerConfig:
    """What the configuration file says about the tracker (see k4abt_tracker_configuration_t)."""

    processing_mode: str = "cuda"
    sensor_orientation: str = "default"
    gpu_device_id: int = 0
    model_path: str | None = None
    temporal_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.processing_mode not in PROCESSING_MODES:
            raise ValueError(f"processing_mode {self.processing_mode!r}: one of "
                             f"{sorted(PROCESSING_MODES)}")
        if self.processing_mode == "directml" and sys.platform != "win32":
            raise ValueError("processing_mode 'directml' exists on Windows only; use 'cuda', "
                             "'tensorrt' or 'cpu'")
        if self.sensor_orientation not in SENSOR_ORIENTATIONS:
            raise ValueError(f"sensor_orientation {self.sensor_orientation!r}: one of "
                             f"{sorted(SENSOR_ORIENTATIONS)}")
        if not 0.0 <= self.temporal_smoothing <= 1.0:
            raise ValueError(f"temporal_smoothing {self.temporal_smoothing}: must be in [0, 1]")
        if self.model_path is not None and not Path(self.model_path).is_file():
            raise ValueError(f"model_path {self.model_path!r}: no such file (the SDK ships "
                             "dnn_model_2_0_op11.onnx and dnn_model_2_0_lite_op11.onnx)")

    def to_c(self) -> k4abt_tracker_configuration_t:
        return k4abt_tracker_configuration_t(
            sensor_orientation=SENSOR_ORIENTATIONS[self.sensor_orientation],
            processing_mode=PROCESSING_MODES[self.processing_mode],
            gpu_device_id=self.gpu_device_id,
            model_path=None if self.model_path is None else os.fsencode(self.model_path),
        )


@dataclass
class BodySkeleton:
    """One tracked body as the SDK gives it: positions in mm in the depth camera's axes
    (x right, y down, z forward), orientations (w, x, y, z), confidence levels 0..3."""

    body_id: int
    positions_mm: np.ndarray  # (32, 3) float32
    orientations: np.ndarray  # (32, 4) float32
    levels: np.ndarray  # (32,) int32, JointConfidence values


class BodyFrame:
    """A popped body tracking result. Release it (or use ``with``) to give it back to the SDK."""

    def __init__(self, lib: ctypes.CDLL, handle: ctypes.c_void_p):
        self._lib = lib
        self._handle: ctypes.c_void_p | None = handle

    def __enter__(self) -> "BodyFrame":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._handle is not None:
            self._lib.k4abt_frame_release(self._handle)
            self._handle = None

    def _h(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise K4ABTError("body frame used after release")
        return self._handle

    @property
    def device_timestamp_usec(self) -> int:
        return int(self._lib.k4abt_frame_get_device_timestamp_usec(self._h()))

    @property
    def system_timestamp_nsec(self) -> int:
        """When the host finished receiving the depth image: CLOCK_MONOTONIC on Linux,
        QueryPerformanceCounter on Windows (the clocks behind Python's time.monotonic)."""
        return int(self._lib.k4abt_frame_get_system_timestamp_nsec(self._h()))

    @property
    def num_bodies(self) -> int:
        return int(self._lib.k4abt_frame_get_num_bodies(self._h()))

    def body_id(self, index: int) -> int:
        return int(self._lib.k4abt_frame_get_body_id(self._h(), index))

    def skeleton(self, index: int) -> np.ndarray:
        """The body's 32 joints as a JOINT_DTYPE record array (one copy out of the SDK)."""
        skel = k4abt_skeleton_t()
        if self._lib.k4abt_frame_get_body_skeleton(self._h(), index,
                                                   ctypes.byref(skel)) != K4A_RESULT_SUCCEEDED:
            raise K4ABTError(f"k4abt_frame_get_body_skeleton failed for body index {index}")
        return np.frombuffer(bytes(skel), dtype=JOINT_DTYPE)

    def bodies(self) -> list[BodySkeleton]:
        out = []
        for i in range(self.num_bodies):
            joints = self.skeleton(i)
            out.append(BodySkeleton(self.body_id(i), joints["position"].copy(),
                                    joints["orientation"].copy(),
                                    joints["confidence"].copy()))
        return out


class Tracker:
    """A k4abt tracker: enqueue captures, pop body frames (the SDK works asynchronously)."""

    def __init__(self, calibration: int, config: TrackerConfig, lib: ctypes.CDLL | None = None):
        """``calibration`` is the address of a k4a_calibration_t (pyk4a keeps one per device)."""
        if not calibration:
            raise ValueError("Tracker needs the address of a k4a_calibration_t")
        self._lib = lib if lib is not None else load_library()
        self.config = config
        self._c_config = config.to_c()  # keeps model_path's bytes alive as long as the tracker
        handle = k4abt_tracker_t()
        rc = self._lib.k4abt_tracker_create(ctypes.c_void_p(calibration), self._c_config,
                                            ctypes.byref(handle))
        if rc != K4A_RESULT_SUCCEEDED or not handle.value:
            hint = ("; try processing_mode='cpu' to tell a GPU/CUDA set-up problem from a camera "
                    "one" if config.processing_mode != "cpu" else "")
            raise K4ABTError(f"k4abt_tracker_create failed (processing_mode="
                             f"{config.processing_mode}, model_path={config.model_path}){hint}; "
                             "the SDK's own log (K4ABT_ENABLE_LOG_TO_A_FILE) says why")
        self._handle: ctypes.c_void_p | None = handle
        if config.temporal_smoothing:
            self.set_temporal_smoothing(config.temporal_smoothing)

    def _h(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise K4ABTError("tracker used after destroy")
        return self._handle

    def set_temporal_smoothing(self, factor: float) -> None:
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"temporal smoothing {factor}: must be in [0, 1]")
        self._lib.k4abt_tracker_set_temporal_smoothing(self._h(), factor)

    def enqueue(self, capture: int, timeout_ms: int = 0) -> WaitResult:
        """Add a k4a_capture_t (its handle value) to the input queue. The SDK takes its own
        reference, so the caller may release the capture afterwards."""
        return WaitResult(self._lib.k4abt_tracker_enqueue_capture(
            self._h(), ctypes.c_void_p(capture), timeout_ms))

    def pop(self, timeout_ms: int = 0) -> tuple[WaitResult, BodyFrame | None]:
        frame = k4abt_frame_t()
        rc = WaitResult(self._lib.k4abt_tracker_pop_result(self._h(), ctypes.byref(frame),
                                                           timeout_ms))
        if rc != WaitResult.SUCCEEDED:
            return rc, None
        return rc, BodyFrame(self._lib, frame)

    def shutdown(self) -> None:
        """No more captures are accepted; results already queued can still be popped."""
        if self._handle is not None:
            self._lib.k4abt_tracker_shutdown(self._handle)

    def destroy(self) -> None:
        if self._handle is not None:
            self._lib.k4abt_tracker_shutdown(self._handle)
            self._lib.k4abt_tracker_destroy(self._handle)
            self._handle = None

    close = destroy
