"""Fakes at the Azure Kinect vendor boundary, for tests only: neither pyk4a's camera nor the Body
Tracking SDK can exist on the development or CI machines.

* ``build_fake_k4abt`` compiles tests/fakes/fake_k4abt.c into a shared library that capture.kinect.k4abt
  binds exactly as it binds the real libk4abt (same symbols, same structures, by-value
  configuration), so the ctypes binding itself is exercised.
* ``FakeDevice`` / ``FakeBackend`` stand where pyk4a's PyK4A / PyK4APlayback are: they hand out
  capture handles (which the fake libk4abt maps to scripted body frames), IMU samples, and fail
  the way an unplugged camera does.
* ``standing_body_world`` and ``world_to_camera_mm`` make skeletons with a known geometry: a
  person standing on the floor, seen by a camera with a known height, pitch and roll.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

from capture.kinect import k4abt
from capture.kinect.source import DeviceError, DeviceSettings
from streams.skeletons import AZURE_KINECT_JOINTS

FAKE_SOURCE = Path(__file__).resolve().parent / "fakes" / "fake_k4abt.c"


def build_fake_k4abt(out_dir: Path, *, sdk_1_0: bool = False) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise FileNotFoundError("no C compiler (cc/gcc) to build the fake libk4abt")
    out = out_dir / ("libfake_k4abt_1_0.so" if sdk_1_0 else "libfake_k4abt.so")
    cmd = [cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(out), str(FAKE_SOURCE)]
    if sdk_1_0:
        cmd.insert(1, "-DFAKE_SDK_1_0")
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


class FakeK4ABT:
    """The compiled fake libk4abt, bound by capture.kinect.k4abt.bind, plus its scripting calls."""

    def __init__(self, path: Path):
        self.path = path
        self.lib = k4abt.bind(ctypes.CDLL(str(path)), str(path))
        c = self.lib
        c.fake_layout.restype = ctypes.c_long
        c.fake_layout.argtypes = [ctypes.c_char_p]
        c.fake_add_result.restype = ctypes.c_int
        c.fake_add_result.argtypes = [ctypes.c_size_t, ctypes.c_uint64, ctypes.c_uint64,
                                      ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p]
        c.fake_last_model_path.restype = ctypes.c_char_p
        c.fake_last_calibration.restype = ctypes.c_size_t
        c.fake_last_smoothing.restype = ctypes.c_float
        self.reset()

    def reset(self) -> None:
        self.lib.fake_reset()

    def layout(self, what: str) -> int:
        return int(self.lib.fake_layout(what.encode()))

    def add_result(self, capture: int, device_us: int,
                   bodies: list[tuple[int, np.ndarray, np.ndarray]], system_ns: int = 0) -> None:
        """Script what the tracker returns for ``capture``: (sdk id, positions mm (32, 3),
        confidence levels (32,)) per body."""
        n = len(bodies)
        ids = np.array([b[0] for b in bodies] or [0], dtype=np.uint32)
        skel = np.zeros((max(n, 1), 32), dtype=k4abt.JOINT_DTYPE)
        for i, (_, pos, levels) in enumerate(bodies):
            skel[i]["position"] = pos
            skel[i]["orientation"] = (1.0, 0.0, 0.0, 0.0)
            skel[i]["confidence"] = levels
        rc = self.lib.fake_add_result(capture, device_us, system_ns, n, ids.ctypes.data,
                                      skel.ctypes.data)
        assert rc == 0

    def __getattr__(self, name: str):  # fake_* helpers: live_frames(), set_queue_capacity(n), ...
        return getattr(self.lib, "fake_" + name)


@dataclass
class FakeCapture:
    handle: int


UNPLUG = "unplug"  # script marker: the camera disappears (capture fails)


@dataclass
class FakeDevice:
    """What pyk4a gives the source: a script of capture handles (int), timeouts (None), UNPLUG,
    or callables run at that point; after the script a live device times out and a recording
    ends."""

    script: list[int | None | str | Callable[[], None]]
    imu: np.ndarray | None = None  # accelerometer samples (N, 3), handed out in order
    accel_to_depth: np.ndarray | None = None
    calibration: int = 0xCA1B
    recording: bool = False
    closed: bool = False
    imu_pos: int = field(default=0, init=False)

    def get_capture(self, timeout_ms: int) -> FakeCapture | None:
        while self.script:
            item = self.script.pop(0)
            if callable(item):
                item()
                continue
            if item == UNPLUG:
                raise DeviceError("capture failed (K4AException: device unplugged)")
            return None if item is None else FakeCapture(int(item))
        if self.recording:
            raise EOFError
        return None

    def read_imu(self, max_samples: int) -> np.ndarray:
        if self.imu is None:
            return np.zeros((0, 3))
        out = self.imu[self.imu_pos:self.imu_pos + max_samples]
        self.imu_pos += len(out)
        return out

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeBackend:
    """pyk4a's place: each open takes the next item of ``sessions`` (a FakeDevice, or an
    exception to raise, as pyk4a does while the camera is unplugged)."""

    fake: FakeK4ABT
    sessions: list[FakeDevice | Exception]
    on_open: Callable[[], None] | None = None
    opened: list[DeviceSettings | Path] = field(default_factory=list)

    def _next(self, what: DeviceSettings | Path) -> FakeDevice:
        self.opened.append(what)
        if self.on_open is not None:
            self.on_open()
        if not self.sessions:
            raise DeviceError("no Azure Kinect device connected")
        item = self.sessions.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def open_device(self, settings: DeviceSettings) -> FakeDevice:
        return self._next(settings)

    def open_playback(self, path: Path) -> FakeDevice:
        dev = self._next(path)
        dev.recording = True
        return dev

    def create_tracker(self, calibration: int, config: k4abt.TrackerConfig) -> k4abt.Tracker:
        return k4abt.Tracker(calibration, config, lib=self.fake.lib)


# ---------------------------------------------------------------------------- known geometry

# A person standing upright, metres, y up, facing +z, pelvis above the origin; every joint of the
# SDK's 32 (values are plausible proportions, not a measured subject).
_STANDING = {
    "PELVIS": (0.0, 0.95, 0.0), "SPINE_NAVEL": (0.0, 1.15, 0.0), "SPINE_CHEST": (0.0, 1.33, 0.0),
    "NECK": (0.0, 1.52, 0.0), "CLAVICLE_LEFT": (0.04, 1.47, 0.0),
    "SHOULDER_LEFT": (0.19, 1.45, 0.0), "ELBOW_LEFT": (0.21, 1.17, 0.0),
    "WRIST_LEFT": (0.22, 0.92, 0.02), "HAND_LEFT": (0.22, 0.86, 0.03),
    "HANDTIP_LEFT": (0.22, 0.79, 0.04), "THUMB_LEFT": (0.20, 0.87, 0.06),
    "CLAVICLE_RIGHT": (-0.04, 1.47, 0.0), "SHOULDER_RIGHT": (-0.19, 1.45, 0.0),
    "ELBOW_RIGHT": (-0.21, 1.17, 0.0), "WRIST_RIGHT": (-0.22, 0.92, 0.02),
    "HAND_RIGHT": (-0.22, 0.86, 0.03), "HANDTIP_RIGHT": (-0.22, 0.79, 0.04),
    "THUMB_RIGHT": (-0.20, 0.87, 0.06), "HIP_LEFT": (0.09, 0.93, 0.0),
    "KNEE_LEFT": (0.10, 0.50, 0.02), "ANKLE_LEFT": (0.10, 0.08, 0.0),
    "FOOT_LEFT": (0.11, 0.02, 0.14), "HIP_RIGHT": (-0.09, 0.93, 0.0),
    "KNEE_RIGHT": (-0.10, 0.50, 0.02), "ANKLE_RIGHT": (-0.10, 0.08, 0.0),
    "FOOT_RIGHT": (-0.11, 0.02, 0.14), "HEAD": (0.0, 1.65, 0.02), "NOSE": (0.0, 1.66, 0.11),
    "EYE_LEFT": (0.03, 1.70, 0.09), "EAR_LEFT": (0.07, 1.68, 0.02),
    "EYE_RIGHT": (-0.03, 1.70, 0.09), "EAR_RIGHT": (-0.07, 1.68, 0.02),
}
STANDING_WORLD = np.array([_STANDING[j] for j in AZURE_KINECT_JOINTS])


def standing_body_world(x: float, z: float) -> np.ndarray:
    """(32, 3) metres, y up: the standing person with the pelvis over floor point (x, z)."""
    return STANDING_WORLD + np.array([x, 0.0, z])


def rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


@dataclass
class Camera:
    """A depth camera at ``height`` m above the floor origin looking along world -z, pitched
    (positive: looking down) and rolled by the given angles."""

    height: float = 1.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0

    def world_from_camera(self) -> np.ndarray:
        """Rotation taking depth camera axes (x right, y down, z forward) to world axes."""
        level = np.diag([1.0, -1.0, -1.0])  # level camera: y down = -world y, z fwd = -world z
        # tilt the camera body: pitch about its x axis (rot_x(-p) turns the optical axis
        # towards the camera's +y, which is down), roll about the optical axis
        return level @ rot_x(-self.pitch_deg) @ rot_z(self.roll_deg)

    def to_camera_mm(self, world: np.ndarray) -> np.ndarray:
        pos = np.array([0.0, self.height, 0.0])
        return (world - pos) @ self.world_from_camera() * 1000.0  # = R^T (p - pos), in mm

    def accelerometer(self, accel_to_depth: np.ndarray, n: int, moving: int = 0,
                      seed: int = 0) -> np.ndarray:
        """``n`` at-rest accelerometer samples (the reaction to gravity: +9.81 along world up)
        in the accelerometer's axes, plus ``moving`` samples of a camera being shaken."""
        up_depth = self.world_from_camera().T @ np.array([0.0, 1.0, 0.0])
        up_accel = accel_to_depth.T @ up_depth
        rng = np.random.default_rng(seed)
        still = np.tile(up_accel * 9.81, (n, 1)) + rng.normal(0, 0.01, (n, 3))
        shaken = up_accel * 9.81 + rng.normal(0, 3.0, (4 * moving + 8, 3))
        shaken = shaken[np.abs(np.linalg.norm(shaken, axis=1) - 9.81) > 1.0][:moving]
        out = np.concatenate([still, shaken])
        rng.shuffle(out)
        return out


@pytest.fixture(scope="session")
def fake_k4abt_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_fake_k4abt(tmp_path_factory.mktemp("fake_k4abt"))
    except FileNotFoundError as e:
        pytest.skip(f"{e}: the ctypes binding cannot be exercised without one")


@pytest.fixture
def fake(fake_k4abt_path: Path) -> Iterator[FakeK4ABT]:
    """The fake libk4abt, reset; the test fails if it leaves trackers or frames alive."""
    f = FakeK4ABT(fake_k4abt_path)
    yield f
    assert f.live_frames() == 0, "body frames not released"
    assert f.live_trackers() == 0, "trackers not destroyed"
