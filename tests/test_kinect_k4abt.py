"""The ctypes binding of the Azure Kinect Body Tracking SDK (capture/k4abt.py).

The SDK cannot exist on these machines, so the binding is exercised against a fake libk4abt
compiled from tests/fakes/fake_k4abt.c (the header's structures, the header's function
contracts, results scripted by the test). The pyk4a boundary is tested with real PyCapsules laid
out as pyk4a lays them out.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest

from capture.kinect import k4abt
from capture.kinect.k4abt import (JOINT_DTYPE, K4ABTError, SDKMissingError, TrackerConfig,
                                  WaitResult, k4a_float3_t, k4a_quaternion_t, k4abt_body_t,
                                  k4abt_joint_t, k4abt_skeleton_t, k4abt_tracker_configuration_t)
from capture.kinect.source import (CALIBRATION_CAPSULE, CAPTURE_CAPSULE, capsule_address,
                                   capture_handle)
from kinect_fakes import build_fake_k4abt, fake, fake_k4abt_path  # noqa: F401 (fixtures)

PTR = ctypes.sizeof(ctypes.c_void_p)


def test_struct_sizes_follow_the_header_arithmetic():
    # k4abttypes.h: float3 = 3 floats, quaternion = 4 floats, joint = float3 + quaternion + enum,
    # skeleton = 32 joints, body = uint32 id + skeleton, configuration = 2 enums + int32 + char*
    assert ctypes.sizeof(k4a_float3_t) == 12
    assert ctypes.sizeof(k4a_quaternion_t) == 16
    assert ctypes.sizeof(k4abt_joint_t) == 32
    assert k4abt_joint_t.position.offset == 0
    assert k4abt_joint_t.orientation.offset == 12
    assert k4abt_joint_t.confidence_level.offset == 28
    assert ctypes.sizeof(k4abt_skeleton_t) == 32 * 32
    assert ctypes.sizeof(k4abt_body_t) == 4 + 1024
    assert k4abt_body_t.skeleton.offset == 4
    model_path_at = -(-12 // PTR) * PTR  # after three 4-byte fields, aligned to a pointer
    assert k4abt_tracker_configuration_t.model_path.offset == model_path_at
    assert ctypes.sizeof(k4abt_tracker_configuration_t) == model_path_at + PTR
    # the numpy view used to read a skeleton in one copy is the same 32 bytes
    assert JOINT_DTYPE.itemsize == 32
    assert [JOINT_DTYPE.fields[f][1] for f in ("position", "orientation", "confidence")] == \
        [0, 12, 28]


def test_struct_layout_matches_the_c_compiler(fake):
    ctypes_layout = {
        "sizeof k4a_float3_t": ctypes.sizeof(k4a_float3_t),
        "sizeof k4a_quaternion_t": ctypes.sizeof(k4a_quaternion_t),
        "sizeof k4abt_joint_t": ctypes.sizeof(k4abt_joint_t),
        "offsetof k4abt_joint_t.position": k4abt_joint_t.position.offset,
        "offsetof k4abt_joint_t.orientation": k4abt_joint_t.orientation.offset,
        "offsetof k4abt_joint_t.confidence_level": k4abt_joint_t.confidence_level.offset,
        "sizeof k4abt_skeleton_t": ctypes.sizeof(k4abt_skeleton_t),
        "sizeof k4abt_body_t": ctypes.sizeof(k4abt_body_t),
        "offsetof k4abt_body_t.id": k4abt_body_t.id.offset,
        "offsetof k4abt_body_t.skeleton": k4abt_body_t.skeleton.offset,
        "sizeof k4abt_tracker_configuration_t": ctypes.sizeof(k4abt_tracker_configuration_t),
        "offsetof k4abt_tracker_configuration_t.sensor_orientation":
            k4abt_tracker_configuration_t.sensor_orientation.offset,
        "offsetof k4abt_tracker_configuration_t.processing_mode":
            k4abt_tracker_configuration_t.processing_mode.offset,
        "offsetof k4abt_tracker_configuration_t.gpu_device_id":
            k4abt_tracker_configuration_t.gpu_device_id.offset,
        "offsetof k4abt_tracker_configuration_t.model_path":
            k4abt_tracker_configuration_t.model_path.offset,
    }
    c_layout = {k: fake.layout(k) for k in ctypes_layout}
    assert c_layout == ctypes_layout


def test_configuration_reaches_the_library_by_value(fake, tmp_path):
    model = tmp_path / "dnn_model_2_0_lite_op11.onnx"
    model.write_bytes(b"onnx")
    cfg = TrackerConfig(processing_mode="tensorrt", sensor_orientation="flip180",
                        gpu_device_id=1, model_path=str(model), temporal_smoothing=0.25)
    tracker = k4abt.Tracker(0xC0FFEE, cfg, lib=fake.lib)
    try:
        assert fake.last_processing_mode() == 3  # K4ABT_TRACKER_PROCESSING_MODE_GPU_TENSORRT
        assert fake.last_sensor_orientation() == 3  # K4ABT_SENSOR_ORIENTATION_FLIP180
        assert fake.last_gpu_device_id() == 1
        assert fake.last_model_path() == str(model).encode()
        assert fake.last_calibration() == 0xC0FFEE
        assert fake.last_smoothing() == pytest.approx(0.25)
    finally:
        tracker.destroy()
    fake.reset()
    k4abt.Tracker(0xC0FFEE, TrackerConfig(processing_mode="cpu"), lib=fake.lib).destroy()
    assert fake.last_processing_mode() == 1
    assert fake.last_model_path() is None  # NULL: the SDK's default model
    assert fake.last_smoothing() == pytest.approx(-1.0)  # smoothing 0: left at the SDK default


def test_enqueue_pop_and_read_bodies(fake):
    rng = np.random.default_rng(3)
    pos1 = rng.uniform(-2000, 3000, (32, 3)).astype(np.float32)
    pos2 = rng.uniform(-2000, 3000, (32, 3)).astype(np.float32)
    lv1 = rng.integers(0, 3, 32)
    lv2 = np.full(32, 2)
    fake.add_result(0x100, device_us=4_000_033, system_ns=123_456_789_000,
                    bodies=[(7, pos1, lv1), (9, pos2, lv2)])
    tracker = k4abt.Tracker(0xCA1B, TrackerConfig(processing_mode="cpu"), lib=fake.lib)
    try:
        assert tracker.pop(0) == (WaitResult.TIMEOUT, None)
        assert tracker.enqueue(0x100) == WaitResult.SUCCEEDED
        rc, frame = tracker.pop(0)
        assert rc == WaitResult.SUCCEEDED
        with frame:
            assert frame.device_timestamp_usec == 4_000_033
            assert frame.system_timestamp_nsec == 123_456_789_000
            assert frame.num_bodies == 2
            bodies = frame.bodies()
            assert fake.live_frames() == 1
        assert fake.live_frames() == 0
        with pytest.raises(K4ABTError, match="after release"):
            frame.num_bodies
        assert [b.body_id for b in bodies] == [7, 9]
        np.testing.assert_array_equal(bodies[0].positions_mm, pos1)
        np.testing.assert_array_equal(bodies[1].positions_mm, pos2)
        np.testing.assert_array_equal(bodies[0].levels, lv1)
        np.testing.assert_array_equal(bodies[0].orientations, np.tile([1, 0, 0, 0], (32, 1)))
    finally:
        tracker.destroy()


def test_queue_contract_full_empty_shutdown(fake):
    for h in (1, 2, 3):
        fake.add_result(h, device_us=h * 33_333, bodies=[])
    fake.set_queue_capacity(2)
    tracker = k4abt.Tracker(0xCA1B, TrackerConfig(processing_mode="cpu"), lib=fake.lib)
    try:
        assert tracker.enqueue(1) == WaitResult.SUCCEEDED
        assert tracker.enqueue(2) == WaitResult.SUCCEEDED
        assert tracker.enqueue(3) == WaitResult.TIMEOUT  # queue full
        assert tracker.enqueue(99) == WaitResult.FAILED  # a capture the tracker cannot use
        tracker.shutdown()
        assert tracker.enqueue(3) == WaitResult.FAILED  # shut down: no more input
        stamps = []
        while True:
            rc, frame = tracker.pop(0)
            if frame is None:
                break
            with frame:
                stamps.append(frame.device_timestamp_usec)
        assert stamps == [33_333, 66_666]  # what was queued still comes out, in order
        assert rc == WaitResult.FAILED
    finally:
        tracker.destroy()
    with pytest.raises(K4ABTError, match="after destroy"):
        tracker.enqueue(1)


def test_tracker_create_failure_says_what_to_try(fake):
    fake.set_create_result(1)
    with pytest.raises(K4ABTError, match=r"processing_mode=cuda.*processing_mode='cpu'"):
        k4abt.Tracker(0xCA1B, TrackerConfig(processing_mode="cuda"), lib=fake.lib)
    assert fake.live_trackers() == 0


def test_sdk_1_0_is_refused(tmp_path):
    try:
        path = build_fake_k4abt(tmp_path, sdk_1_0=True)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with pytest.raises(SDKMissingError, match=r"SDK 1\.0.*needs 1\.1"):
        k4abt.bind(ctypes.CDLL(str(path)), str(path))


def test_missing_library_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(k4abt, "_library", None)
    missing = tmp_path / "libk4abt.so.1.1"
    monkeypatch.setenv("K4ABT_LIBRARY", str(missing))
    with pytest.raises(SDKMissingError) as e:
        k4abt.load_library()
    text = str(e.value)
    assert str(missing) in text
    for needed in ("libk4abt1.1", "libk4a1.4", "packages.microsoft.com", "OrbbecSDK-K4A-Wrapper",
                   "K4ABT_LIBRARY"):
        assert needed in text
    assert isinstance(e.value, ImportError)


def test_library_is_found_through_k4abt_library(monkeypatch, fake_k4abt_path):
    monkeypatch.setattr(k4abt, "_library", None)
    monkeypatch.setenv("K4ABT_LIBRARY", str(fake_k4abt_path))
    lib = k4abt.load_library()
    assert lib.k4abt_tracker_create.argtypes[1] is k4abt_tracker_configuration_t
    assert k4abt.load_library() is lib  # loaded once


@pytest.mark.parametrize("kwargs, message", [
    ({"processing_mode": "vulkan"}, "processing_mode 'vulkan'"),
    ({"sensor_orientation": "sideways"}, "sensor_orientation 'sideways'"),
    ({"temporal_smoothing": 1.5}, r"temporal_smoothing 1\.5"),
    ({"model_path": "/nonexistent/dnn_model.onnx"}, "no such file"),
])
def test_tracker_config_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**kwargs)


@pytest.mark.skipif(sys.platform == "win32", reason="DirectML is the Windows GPU mode")
def test_directml_is_refused_off_windows():
    with pytest.raises(ValueError, match="Windows only"):
        TrackerConfig(processing_mode="directml")


# ---------------------------------------------------------------------------- pyk4a's handles

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def test_capture_handle_is_read_out_of_a_pyk4a_capsule():
    # pyk4a.cpp: a capture capsule points at a malloc'ed k4a_capture_t (the handle itself)
    handle_cell = ctypes.c_void_p(0x7F00DEADBEE0)
    capsule = _capsule_new(ctypes.addressof(handle_cell), CAPTURE_CAPSULE, None)
    assert capture_handle(capsule) == 0x7F00DEADBEE0
    # a calibration capsule points straight at the k4a_calibration_t the tracker wants
    calibration = ctypes.create_string_buffer(1032)
    cal_capsule = _capsule_new(ctypes.addressof(calibration), CALIBRATION_CAPSULE, None)
    assert capsule_address(cal_capsule, CALIBRATION_CAPSULE) == ctypes.addressof(calibration)
    with pytest.raises(ValueError):
        capture_handle(cal_capsule)  # wrong capsule name
    empty = ctypes.c_void_p(None)
    with pytest.raises(ValueError, match="holds no capture"):
        capture_handle(_capsule_new(ctypes.addressof(empty), CAPTURE_CAPSULE, None))
