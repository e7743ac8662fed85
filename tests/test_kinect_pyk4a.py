"""The real pyk4a calls of capture/kinect.py (_Pyk4aCamera, _Pyk4aRecording, Pyk4aBackend),
run against a vendor-boundary fake of pyk4a.

Neither pyk4a (it needs the Azure Kinect Sensor SDK) nor a camera exists on these machines.
tests/fakes/pyk4a is a fake pyk4a package with pyk4a's own names and signatures (PyK4A, Config
and its enums, Calibration.get_extrinsic_parameters, PyK4ACapture._capture_handle as a real
PyCapsule, get_imu_sample dicts, PyK4APlayback raising EOFError, K4AException /
K4ATimeoutException); what libk4a would do underneath is simulated by pyk4a._fake_hardware,
which these tests script. The fixture puts tests/fakes first on sys.path for these tests only
and takes it away after. Bodies come from the real ctypes binding over the fake libk4abt
(tests/fakes/fake_k4abt.c), loaded the production way (K4ABT_LIBRARY). Everything from
KinectSource down to the pyk4a calls is the production code: nothing of it is replaced.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from capture.kinect import k4abt
from capture.kinect.geometry import NOMINAL_ACCEL_TO_DEPTH
from capture.kinect.k4abt import SDKMissingError
from capture.kinect.source import DeviceError, KinectSource
from kinect_fakes import Camera, fake, fake_k4abt_path, standing_body_world  # noqa: F401
from streams.skeletons import AZURE_KINECT_JOINTS

FAKES = Path(__file__).resolve().parent / "fakes"
PELVIS = AZURE_KINECT_JOINTS.index("PELVIS")
MEDIUM = np.full(32, 2)
# an Azure Kinect's factory extrinsics[ACCEL][DEPTH] (Azure_Kinect_ROS_Driver issue #4)
FACTORY = np.array([[0.00204108, -0.999998, -0.000266121],
                    [0.0972247, -6.64172e-05, 0.995262],
                    [-0.99526, -0.00205728, 0.0972243]])


def _drop_pyk4a_modules() -> None:
    for name in [m for m in sys.modules if m == "pyk4a" or m.startswith("pyk4a.")]:
        del sys.modules[name]


@pytest.fixture
def hw(monkeypatch, fake, fake_k4abt_path):
    """The fake pyk4a importable as ``pyk4a`` and the fake libk4abt as the SDK; yields the
    simulated hardware (pyk4a._fake_hardware) with an empty bus."""
    _drop_pyk4a_modules()
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.setenv("K4ABT_LIBRARY", str(fake_k4abt_path))
    monkeypatch.setattr(k4abt, "_library", None)  # load_library() binds the fake afresh
    pyk4a = importlib.import_module("pyk4a")
    assert Path(pyk4a.__file__).parent == FAKES / "pyk4a"
    hardware = importlib.import_module("pyk4a._fake_hardware")
    hardware.reset()
    yield hardware
    _drop_pyk4a_modules()  # later tests see no pyk4a, as on a machine without the SDK


def source(**kw) -> KinectSource:
    opts = dict(reconnect_initial_s=0.01, reconnect_max_s=0.04, use_imu=False)
    opts.update(kw)
    return KinectSource("k4a", **opts)  # no backend given: the real Pyk4aBackend


def take(src: KinectSource, n: int) -> list:
    frames = list(itertools.islice(src.frames(), n))
    src.close()
    return frames


def body_mm(x_mm: float, z_mm: float) -> np.ndarray:
    rel = (standing_body_world(0, 0) - standing_body_world(0, 0)[PELVIS]) * [1000, -1000, -1000]
    return rel + [x_mm, 0.0, z_mm]


def test_live_camera_config_calibration_imu_and_captures(hw, fake):
    import pyk4a

    cam = Camera(height=1.3, pitch_deg=25.0)
    world = standing_body_world(0.1, -3.2)
    for k in range(3):
        fake.add_result(k + 1, 2_000_000 + k * 66_667, [(7, cam.to_camera_mm(world), MEDIUM)])
    other = hw.Camera()
    dev = hw.Camera(script=[1, 2, 3], imu=cam.accelerometer(FACTORY, 300),
                    accel_to_depth=FACTORY)
    hw.BUS.cameras = [other, dev]
    src = source(device_id=1, depth_mode="WFOV_2X2BINNED", fps=15, use_imu=True,
                 processing_mode="cpu")
    frames = take(src, 3)

    (cfg,) = dev.started
    assert cfg.depth_mode == pyk4a.DepthMode.WFOV_2X2BINNED
    assert cfg.camera_fps == pyk4a.FPS.FPS_15
    assert cfg.color_resolution == pyk4a.ColorResolution.OFF  # depth only: no USB bandwidth
    assert cfg.wired_sync_mode == pyk4a.WiredSyncMode.STANDALONE
    assert cfg.synchronized_images_only is False
    assert other.opens == 0 and dev.opens == 1
    # the tracker was created from the k4a_calibration_t inside pyk4a's calibration capsule
    assert fake.last_calibration() == ctypes.addressof(dev.calibration_buffers[0])
    assert [f.t_us for f in frames] == [2_000_000, 2_066_667, 2_133_334]
    assert all([b.body_id for b in f.bodies] == [7] for f in frames)
    # IMU samples (get_imu_sample dicts) turned by get_extrinsic_parameters level the body
    assert src.state["up_axis"] == "imu" and src.state["imu_extrinsic"] == "factory"
    np.testing.assert_allclose(frames[0].bodies[0].joints, world - [0, cam.height, 0], atol=3e-3)
    # closed: cameras stopped, device closed, every capture released
    assert not dev.running and not dev.is_open
    gc.collect()
    assert hw.BUS.live_captures == 0


def test_sync_modes_reach_the_device_and_master_turns_colour_on(hw, fake):
    import pyk4a

    fake.add_result(1, 1_000, [(1, body_mm(0, 2000), MEDIUM)])
    fake.add_result(2, 1_000, [(1, body_mm(0, 2000), MEDIUM)])
    master, sub = hw.Camera(script=[1]), hw.Camera(script=[2])
    hw.BUS.cameras = [master, sub]
    take(source(sync="master"), 1)
    take(source(device_id=1, sync="subordinate", subordinate_delay_usec=160), 1)
    # the SDK (and the fake) refuse master mode without the colour camera
    assert master.started[0].wired_sync_mode == pyk4a.WiredSyncMode.MASTER
    assert master.started[0].color_resolution == pyk4a.ColorResolution.RES_720P
    assert master.started[0].color_format == pyk4a.ImageFormat.COLOR_MJPG
    assert sub.started[0].wired_sync_mode == pyk4a.WiredSyncMode.SUBORDINATE
    assert sub.started[0].subordinate_delay_off_master_usec == 160
    assert sub.started[0].color_resolution == pyk4a.ColorResolution.OFF


def test_unplug_is_a_k4a_exception_then_reopen_with_backoff(hw, fake):
    for k in range(3):
        fake.add_result(10 + k, 5_000_000 + k * 33_333, [(1, body_mm(0, 2000), MEDIUM),
                                                         (2, body_mm(500, 2500), MEDIUM)])
        fake.add_result(20 + k, 100_000 + k * 33_333, [(1, body_mm(0, 2000), MEDIUM)])
    dev = hw.Camera(script=[10, 11, 12, hw.UNPLUG])
    seen = []

    def replug_on_third_try(c):
        seen.append(dict(src.state))
        if c.failed_opens == 3:
            c.plug_in([20, 21, 22])

    dev.on_failed_open = replug_on_third_try
    hw.BUS.cameras = [dev]
    src = source()
    frames = take(src, 6)
    assert dev.opens == 2 and dev.failed_opens == 3
    assert [s["camera"] for s in seen] == ["offline"] * 3
    assert "capture failed (K4AException" in seen[0]["camera_error"]
    assert "cannot open Azure Kinect device 0" in seen[1]["camera_error"]
    assert src.reconnect_waits == [0.01, 0.02, 0.04]  # doubling, capped
    assert src.counters["disconnects"] == 1 and src.counters["connects"] == 2
    assert src.counters["connect_failures"] == 3
    before, after = frames[:3], frames[3:]
    assert after[0].t_us > before[-1].t_us  # the device clock restarted; t_us goes on
    assert [b.body_id for b in before[0].bodies] == [1, 2]
    assert [b.body_id for f in after for b in f.bodies] == [3, 3, 3]
    assert src.state["camera"] == "online"
    assert not dev.is_open
    gc.collect()
    assert hw.BUS.live_captures == 0


def test_timeouts_are_k4a_timeout_exceptions_and_take_the_camera_offline(hw, fake):
    fake.add_result(1, 1_000, [(1, body_mm(0, 2000), MEDIUM)])
    fake.add_result(2, 90_000, [(1, body_mm(0, 2000), MEDIUM)])
    dev = hw.Camera(script=[1, None, None, None, 2])  # silent for 3 x 100 ms, then a capture
    hw.BUS.cameras = [dev]
    src = source(capture_timeout_ms=100, offline_after_s=0.3)
    frames = take(src, 2)
    assert src.counters["capture_timeouts"] == 3
    assert src.counters["disconnects"] == 1
    assert dev.opens == 2  # reopened after going offline
    assert frames[1].t_us > frames[0].t_us


def test_recording_plays_through_pyk4a_playback_to_eof(hw, fake, tmp_path):
    mkv = tmp_path / "walk.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3")
    for h in range(1, 9):
        fake.add_result(h, 300_000 + h * 33_333, [(2, body_mm(h * 40, 2600), MEDIUM)])
    fake.set_queue_capacity(2)
    rec = hw.BUS.add_recording(mkv, hw.Recording(captures=[1, 2, 3, 99, 4, 5, 6, 7, 8]))
    src = source(recording=str(mkv), use_imu=True)
    frames = list(src.frames())
    assert [f.t_us for f in frames] == [300_000 + h * 33_333 for h in range(1, 9)]
    np.testing.assert_allclose([f.bodies[0].joints[PELVIS, 0] for f in frames],
                               [h * 0.04 for h in range(1, 9)], atol=1e-6)
    assert src.counters["captures_rejected"] == 1  # 99: a capture without a depth image
    assert src.state["camera"] == "ended"
    assert src.state["up_axis"] == "camera"  # the recording has no IMU track
    assert rec.closed
    gc.collect()
    assert hw.BUS.live_captures == 0


def test_femto_recording_with_a_zero_imu_extrinsic_is_levelled(hw, fake, tmp_path):
    mkv = tmp_path / "femto.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3")
    cam = Camera(height=1.2, pitch_deg=18.0)
    world = standing_body_world(0.0, -2.8)
    fake.add_result(1, 33_333, [(1, cam.to_camera_mm(world), MEDIUM)])
    hw.BUS.add_recording(mkv, hw.Recording(captures=[1],
                                           imu=cam.accelerometer(NOMINAL_ACCEL_TO_DEPTH, 300),
                                           accel_to_depth=np.zeros((3, 3))))
    src = source(recording=str(mkv), use_imu=True)
    (frame,) = list(src.frames())
    assert src.state["imu_extrinsic"] == "nominal" and src.state["up_axis"] == "imu"
    assert src.counters["imu_extrinsic_fallbacks"] == 1
    np.testing.assert_allclose(frame.bodies[0].joints, world - [0, cam.height, 0], atol=3e-3)


def test_broken_and_unknown_recordings_are_device_errors(hw, fake, tmp_path):
    good, unknown = tmp_path / "broken.mkv", tmp_path / "other.mkv"
    for p in (good, unknown):
        p.write_bytes(b"\x1a\x45\xdf\xa3")
    fake.add_result(1, 1_000, [(1, body_mm(0, 2000), MEDIUM)])
    rec = hw.BUS.add_recording(good, hw.Recording(captures=[1, hw.BROKEN]))
    with pytest.raises(DeviceError, match=r"recording unreadable \(\)"):
        list(source(recording=str(good)).frames())
    assert rec.closed  # the tracker and the playback were released (the fake checks trackers)
    with pytest.raises(DeviceError, match="cannot open recording .*Cannot open file"):
        list(source(recording=str(unknown)).frames())


def test_pyk4a_present_but_no_body_tracking_sdk(hw, monkeypatch, tmp_path):
    monkeypatch.setenv("K4ABT_LIBRARY", str(tmp_path / "libk4abt.so.1.1"))
    hw.BUS.cameras = [hw.Camera(script=[1])]
    with pytest.raises(SDKMissingError, match="libk4abt"):
        next(source().frames())


def test_analyze_reads_a_kinect_mkv_through_the_playback(hw, fake, tmp_path):
    """load_recording (what ``gaitstream analyze walk.mkv`` calls) on a file with k4arecorder's
    markers: the Kinect playback, the body seen most, canonical joints; body 5 is lost for one
    frame inside its span and is interpolated there with confidence 0."""
    from capture.readers import load_recording
    from mkv_fixtures import k4a_like_mkv

    mkv = k4a_like_mkv(tmp_path / "walk.mkv")
    t = [1_000_000 + k * 33_333 for k in range(6)]
    for k in range(6):
        bodies = [(9, body_mm(-800, 3500), MEDIUM)] if k == 0 else []
        if k != 3:
            bodies.append((5, body_mm(100 * k, 2500), MEDIUM))
        fake.add_result(k + 1, t[k], bodies)
    hw.BUS.add_recording(mkv, hw.Recording(captures=list(range(1, 7))))
    rec = load_recording(mkv, processing_mode="cpu")
    assert rec.meta["body_id"] == 5 and rec.meta["bodies"] == {"5": 5, "9": 1}
    assert rec.t_us.tolist() == t
    assert rec.source_layout == "azure_kinect32" and rec.joints.shape == (6, 22, 3)
    np.testing.assert_allclose(rec.raw_joints[:, PELVIS, 0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
                               atol=1e-6)  # frame 3 interpolated
    assert rec.raw_confidence[3].max() == 0.0 and rec.raw_confidence[2].min() > 0
