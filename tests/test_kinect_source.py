"""KinectSource above the vendor boundary: timestamps, several bodies, lost bodies, id changes,
unplug -> offline -> replug -> online with backoff, axes and IMU levelling, recordings.

Neither the Azure Kinect (pyk4a) nor the Body Tracking SDK can exist here: the camera is a fake
device standing where pyk4a's PyK4A / PyK4APlayback are (tests/kinect_fakes.py), and the body
tracker is capture.kinect.k4abt's real ctypes binding over a fake libk4abt compiled from
tests/fakes/fake_k4abt.c. Everything from the binding up is the production code.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from capture.base import run_capture
from capture.kinect.k4abt import SDKMissingError
from capture.kinect.source import DeviceError, KinectSource
from capture.sources import make_source
from kinect_fakes import (UNPLUG, Camera, FakeBackend, FakeDevice, fake,  # noqa: F401
                          fake_k4abt_path, standing_body_world)
from streams.schema import SkeletonFrame, Status, monotonic_us
from streams.skeletons import AZURE_KINECT_CONFIDENCE, AZURE_KINECT_JOINTS
from streams.node import StatusReporter
from streams.transport import Publisher, Subscriber

PELVIS = AZURE_KINECT_JOINTS.index("PELVIS")
HEAD = AZURE_KINECT_JOINTS.index("HEAD")
FOOT_L = AZURE_KINECT_JOINTS.index("FOOT_LEFT")
MEDIUM = np.full(32, 2)

# an accelerometer mounted with its own axes: a rotation that is not a permutation, so that a
# wrong extrinsic direction would show
ACCEL_TO_DEPTH = np.array([[0.0, -0.1045285, -0.9945219],
                           [-1.0, 0.0, 0.0],
                           [0.0, 0.9945219, -0.1045285]])


def body_at(x_mm: float, z_mm: float, y_mm: float = 0.0) -> np.ndarray:
    """32 joints (mm, camera axes) around a pelvis at (x, y, z)."""
    rel = (standing_body_world(0, 0) - standing_body_world(0, 0)[PELVIS]) * [1000, -1000, -1000]
    return rel + [x_mm, y_mm, z_mm]


def source(fake, sessions, **kw) -> tuple[KinectSource, FakeBackend]:
    backend = FakeBackend(fake, sessions)
    opts = dict(reconnect_initial_s=0.01, reconnect_max_s=0.04, use_imu=False)
    opts.update(kw)
    return KinectSource("k4a", backend=backend, **opts), backend


def take(src: KinectSource, n: int) -> list[SkeletonFrame]:
    frames = list(itertools.islice(src.frames(), n))
    src.close()
    return frames


def published(src: KinectSource, ep: str) -> tuple[list[SkeletonFrame], list[Status]]:
    """What the capture process (run_capture) publishes of ``src`` on ``ep``, decoded from a
    real ZeroMQ subscriber: (skeleton frames, Status messages)."""
    pub = Publisher(ep)
    sub = Subscriber([ep], ["skel/", "status"])
    try:
        pub.wait_for_subscribers(2, timeout_s=5.0)
        run_capture(src, pub, threading.Event(), StatusReporter("k4a", "capture"), speed=0)
        got, statuses = [], []
        while (m := sub.recv(500)) is not None:
            (statuses if isinstance(m[1], Status) else got).append(m[1])
    finally:
        sub.close()
        pub.close()
    return got, statuses


def test_known_joint_mm_y_down_becomes_metres_y_up(fake):
    pos = body_at(100.0, 2500.0, y_mm=-200.0)  # pelvis 0.2 m above the optical axis
    fake.add_result(1, 1_000_000, [(1, pos, MEDIUM)])
    src, _ = source(fake, [FakeDevice([1])])
    (frame,) = take(src, 1)
    assert frame.layout == "azure_kinect32"
    body = frame.bodies[0]
    assert body.joints.dtype == np.float32 and body.joints.shape == (32, 3)
    np.testing.assert_allclose(body.joints[PELVIS], [0.1, 0.2, -2.5], atol=1e-6)
    assert body.joints[HEAD, 1] > body.joints[PELVIS, 1] > body.joints[FOOT_L, 1]  # y up
    assert src.state["up_axis"] == "camera"


def test_confidence_levels_map_through_the_layout_table(fake):
    levels = np.array([0, 1, 2, 3] * 8)
    fake.add_result(1, 1_000, [(1, body_at(0, 2000), levels)])
    src, _ = source(fake, [FakeDevice([1])])
    (frame,) = take(src, 1)
    np.testing.assert_array_equal(frame.bodies[0].confidence[:4],
                                  np.float32(AZURE_KINECT_CONFIDENCE))
    assert AZURE_KINECT_CONFIDENCE == (0.0, 0.3, 0.8, 1.0)


def test_timestamps_several_bodies_lost_bodies_and_id_changes(fake):
    t = [1_000_000 + round(k * 1e6 / 30) for k in range(6)]
    scene = [  # (sdk id, x) per frame: 1 and 2 walk, 2 is lost, 3 appears (a new id)
        [(1, -500), (2, 600)],
        [(1, -450), (2, 650)],
        [(1, -400)],
        [],
        [(1, -300), (3, 700)],
        [(3, 720), (1, -250)],
    ]
    for k, bodies in enumerate(scene):
        fake.add_result(k + 1, t[k], [(i, body_at(x, 2500), MEDIUM) for i, x in bodies],
                        system_ns=(monotonic_us() - 20_000) * 1000)
    src, _ = source(fake, [FakeDevice(list(range(1, 7)))])
    frames = take(src, 6)
    assert [f.t_us for f in frames] == t
    assert [[b.body_id for b in f.bodies] for f in frames] == [[i for i, _ in s] for s in scene]
    for f, s in zip(frames, scene):
        for b, (_, x) in zip(f.bodies, s):
            assert b.joints[PELVIS, 0] == pytest.approx(x / 1000, abs=1e-6)
    assert src.counters["bodies_lost"] == 2  # 2 at frame 2, 1 at frame 3
    assert src.counters["bodies_new"] == 4  # 1 and 2; 1 again after the empty frame, and 3
    assert src.state["bodies"] == "2"
    # host_us is when the depth image reached the host (the SDK's system timestamp): ~20 ms ago
    now = monotonic_us()
    assert all(0 < now - f.host_us < 5_000_000 for f in frames)
    assert all(f.source == "k4a" for f in frames)


def test_unplug_offline_backoff_replug_online(fake):
    # session 1: frames 1-3 then the cable is pulled; four failed opens; session 2 restarts the
    # device clock near zero and the SDK's body ids at 1
    for k in range(3):
        fake.add_result(10 + k, 5_000_000 + k * 33_333, [(1, body_at(0, 2000), MEDIUM),
                                                         (2, body_at(500, 2500), MEDIUM)])
    for k in range(3):
        fake.add_result(20 + k, 200_000 + k * 33_333, [(1, body_at(0, 2000), MEDIUM)])
    s1 = FakeDevice([10, 11, 12, UNPLUG])
    s2 = FakeDevice([20, 21, 22])
    gone = [DeviceError("no Azure Kinect device connected")] * 4
    src, backend = source(fake, [s1, *gone, s2])
    seen_states = []
    backend.on_open = lambda: seen_states.append(dict(src.state))
    frames = take(src, 6)

    assert seen_states[0]["camera"] == "offline"  # before the first connection
    assert [s["camera"] for s in seen_states[1:]] == ["offline"] * 5
    assert "device unplugged" in seen_states[1]["camera_error"]
    assert src.reconnect_waits == [0.01, 0.02, 0.04, 0.04]  # doubling, capped at 0.04
    assert src.state["camera"] == "online" and "camera_error" not in src.state
    assert s1.closed and s2.closed
    assert src.counters["disconnects"] == 1
    assert src.counters["connect_failures"] == 4
    assert src.counters["connects"] == 2

    before, after = frames[:3], frames[3:]
    assert [f.t_us for f in before] == [5_000_000, 5_033_333, 5_066_666]
    # the source clock goes on: after the last frame by at least the time spent offline
    offline_s = sum(src.reconnect_waits)
    assert after[0].t_us - before[-1].t_us >= offline_s * 1e6
    assert np.diff([f.t_us for f in after]).tolist() == [33_333, 33_333]
    # the SDK's id 1 of the new session is not the old body 1 (or 2)
    assert [b.body_id for b in before[0].bodies] == [1, 2]
    assert [b.body_id for f in after for b in f.bodies] == [3, 3, 3]


def test_close_from_another_thread_ends_a_reconnection_wait(fake):
    src, backend = source(fake, [], reconnect_initial_s=60.0, reconnect_max_s=60.0)
    tried = threading.Event()
    backend.on_open = tried.set
    result = []
    consumer = threading.Thread(target=lambda: result.extend(src.frames()))
    consumer.start()
    assert tried.wait(10)
    src.close()  # while the consumer waits out a 60 s backoff
    consumer.join(10)
    assert not consumer.is_alive() and result == []
    assert src.state["camera"] == "offline"
    assert len(backend.opened) == 1


def test_capture_timeouts_take_the_camera_offline(fake):
    fake.add_result(1, 1_000, [(1, body_at(0, 2000), MEDIUM)])
    fake.add_result(2, 50_000, [(1, body_at(0, 2000), MEDIUM)])
    s1 = FakeDevice([1, None, None, None])  # then silence: the device stopped streaming
    s2 = FakeDevice([2])
    src, _ = source(fake, [s1, s2], capture_timeout_ms=100, offline_after_s=0.3)
    frames = take(src, 2)
    assert src.counters["capture_timeouts"] == 3
    assert src.counters["disconnects"] == 1
    assert s1.closed
    assert frames[1].t_us > frames[0].t_us


def test_tracker_failure_and_refused_tracker_reconnect(fake):
    fake.add_result(1, 1_000, [(1, body_at(0, 2000), MEDIUM)])
    fake.add_result(2, 2_000, [(1, body_at(0, 2000), MEDIUM)])
    fake.add_result(3, 3_000, [(1, body_at(0, 2000), MEDIUM)])
    s1 = FakeDevice([1, lambda: fake.fail_next_pops(1), 2])  # the tracker dies on frame 2
    s2 = FakeDevice([3])
    src, backend = source(fake, [s1, s2])
    created = []
    backend.on_open = lambda: created.append(fake.live_trackers())
    frames = take(src, 2)
    assert [f.bodies[0].body_id for f in frames] == [1, 2]
    assert src.counters["disconnects"] == 1
    assert created == [0, 0]  # the old tracker was destroyed before the device was reopened


def test_busy_tracker_drops_captures_never_blocks(fake):
    for h in range(1, 5):
        fake.add_result(h, h * 33_333, [(1, body_at(0, 2000), MEDIUM)])
    dev = FakeDevice([1, lambda: fake.set_queue_capacity(0), 2, 3,
                      lambda: fake.set_queue_capacity(3), 4])
    src, _ = source(fake, [dev])
    frames = take(src, 2)
    assert [f.t_us for f in frames] == [33_333, 133_332]
    assert src.counters["dropped_captures"] == 2


def test_imu_levels_a_pitched_camera(fake):
    cam = Camera(height=1.2, pitch_deg=20.0)
    world = standing_body_world(0.3, -3.0)  # 3 m in front of the camera, 0.3 m to the right
    fake.add_result(1, 1_000, [(1, cam.to_camera_mm(world), MEDIUM)])
    dev = FakeDevice([1], imu=cam.accelerometer(ACCEL_TO_DEPTH, 300, moving=50),
                     accel_to_depth=ACCEL_TO_DEPTH)
    src, _ = source(fake, [dev], use_imu=True)
    (frame,) = take(src, 1)
    assert src.state["up_axis"] == "imu"
    # pure pitch: levelling undoes it exactly; the origin stays at the camera
    expected = world - [0.0, cam.height, 0.0]
    np.testing.assert_allclose(frame.bodies[0].joints, expected, atol=2e-3)


def test_imu_levels_a_pitched_and_rolled_camera(fake):
    cam = Camera(height=2.1, pitch_deg=35.0, roll_deg=-8.0)  # a hallway wall mount
    world = standing_body_world(-0.4, -4.0)
    fake.add_result(1, 1_000, [(1, cam.to_camera_mm(world), MEDIUM)])
    dev = FakeDevice([1], imu=cam.accelerometer(ACCEL_TO_DEPTH, 300),
                     accel_to_depth=ACCEL_TO_DEPTH)
    src, _ = source(fake, [dev], use_imu=True)
    (frame,) = take(src, 1)
    j = frame.bodies[0].joints.astype(np.float64)
    # heights are the world's (relative to the camera); the feet are on one floor plane
    np.testing.assert_allclose(j[:, 1], world[:, 1] - cam.height, atol=2e-3)
    # horizontal distances are preserved (only a heading is free)
    d_world = np.linalg.norm(world[:, [0, 2]] - world[PELVIS, [0, 2]], axis=1)
    d_out = np.linalg.norm(j[:, [0, 2]] - j[PELVIS, [0, 2]], axis=1)
    np.testing.assert_allclose(d_out, d_world, atol=2e-3)
    # without the IMU the same camera leaves the body leaning by the pitch
    fake.add_result(2, 2_000, [(1, cam.to_camera_mm(world), MEDIUM)])
    src2, _ = source(fake, [FakeDevice([2])], use_imu=False)
    (tilted,) = take(src2, 1)
    trunk = tilted.bodies[0].joints[HEAD] - tilted.bodies[0].joints[PELVIS]
    lean = np.degrees(np.arccos(trunk[1] / np.linalg.norm(trunk)))
    assert lean > 20


def test_knocked_camera_is_relevelled(fake):
    level, knocked = Camera(height=1.0), Camera(height=1.0, pitch_deg=10.0)
    world = standing_body_world(0.0, -3.0)
    fake.add_result(1, 1_000, [(1, level.to_camera_mm(world), MEDIUM)])
    fake.add_result(2, 34_333, [(1, knocked.to_camera_mm(world), MEDIUM)])
    dev = FakeDevice([], imu=level.accelerometer(ACCEL_TO_DEPTH, 400),
                     accel_to_depth=ACCEL_TO_DEPTH)

    def knock() -> None:  # ten seconds of IMU samples from the knocked camera
        dev.imu = np.concatenate([dev.imu, knocked.accelerometer(ACCEL_TO_DEPTH, 16000, seed=1)])

    dev.script = [1, knock, 2]
    src, _ = source(fake, [dev], use_imu=True)
    src.IMU_MAX_PER_FRAME = 16000
    f1, f2 = take(src, 2)
    assert src.counters["relevels"] == 1
    for f in (f1, f2):
        np.testing.assert_allclose(f.bodies[0].joints, world - [0, 1.0, 0], atol=2e-3)


def test_bad_bodies_are_dropped_and_counted_not_the_frame(fake):
    nan_body = body_at(0, 2000)
    nan_body[5] = np.nan
    fake.add_result(1, 1_000, [(1, body_at(0, 2000), MEDIUM), (2, nan_body, MEDIUM),
                               (0xFFFFFFFF, body_at(0, 3000), MEDIUM)])
    fake.add_result(2, 900, [(1, body_at(0, 2000), MEDIUM)])  # device clock went back
    fake.add_result(3, 2_000, [(1, body_at(0, 2000), MEDIUM)])
    src, _ = source(fake, [FakeDevice([1, 2, 3])])
    frames = take(src, 2)
    assert [b.body_id for b in frames[0].bodies] == [1]
    assert src.counters["rejected_bodies"] == 2
    assert [f.t_us for f in frames] == [1_000, 2_000]
    assert src.counters["rejected_time"] == 1


def test_more_bodies_than_the_wire_carries_keeps_the_nearest(fake):
    bodies = [(i + 1, body_at(0, 1000 + 200 * ((i * 7) % 20)), MEDIUM) for i in range(20)]
    fake.add_result(1, 1_000, bodies)
    src, _ = source(fake, [FakeDevice([1])])
    (frame,) = take(src, 1)
    assert len(frame.bodies) == 16
    kept = sorted(-b.joints[PELVIS, 2] for b in frame.bodies)
    assert max(kept) < 1.0 + 0.2 * 16  # the four farthest were left out
    assert src.counters["bodies_over_limit"] == 4


def test_recording_plays_every_frame_in_order_through_a_small_queue(fake, tmp_path):
    mkv = tmp_path / "walk.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3")  # the fake backend does not read it
    for h in range(1, 11):
        fake.add_result(h, 100_000 + h * 33_333, [(1, body_at(h * 50, 2500), MEDIUM)])
    fake.set_queue_capacity(2)
    script = list(range(1, 6)) + [99] + list(range(6, 11))  # 99: a capture without depth
    src, backend = source(fake, [FakeDevice(script)], recording=str(mkv))
    assert src.paced
    frames = list(src.frames())
    assert [f.t_us for f in frames] == [100_000 + h * 33_333 for h in range(1, 11)]
    assert all(f.host_us == 0 for f in frames)  # the runner stamps when it sends
    assert src.counters["captures_rejected"] == 1
    assert src.state["camera"] == "ended"
    assert backend.opened == [mkv]


def test_recording_published_through_run_capture(fake, tmp_path, endpoint):
    """The whole capture process path: source -> run_capture -> real ZeroMQ -> decoded."""
    mkv = tmp_path / "walk.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3")
    for h in range(1, 6):
        fake.add_result(h, h * 33_333, [(4, body_at(0, 2000), MEDIUM),
                                        (5, body_at(800, 3000), MEDIUM)])
    src, _ = source(fake, [FakeDevice(list(range(1, 6)))], recording=str(mkv))
    got, statuses = published(src, endpoint())
    assert [f.t_us for f in got] == [h * 33_333 for h in range(1, 6)]
    assert [f.seq for f in got] == [1, 2, 3, 4, 5]
    assert all([b.body_id for b in f.bodies] == [4, 5] for f in got)
    np.testing.assert_allclose(got[0].bodies[1].joints[PELVIS], [0.8, 0.0, -3.0], atol=1e-6)
    assert statuses and statuses[-1].state["camera"] == "ended"


def test_make_source_builds_it_and_options_are_checked(tmp_path):
    src = make_source("kinect", "cam", {"depth_mode": "WFOV_2X2BINNED", "fps": 30,
                                        "processing_mode": "cpu", "temporal_smoothing": 0.3})
    assert isinstance(src, KinectSource) and not src.paced
    assert src.state == {"camera": "offline", "up_axis": "camera"}
    with pytest.raises(ValueError, match="WFOV_UNBINNED runs at 15 fps"):
        KinectSource("cam", depth_mode="WFOV_UNBINNED", fps=30)
    with pytest.raises(ValueError, match="depth_mode 'PASSIVE_IR'"):
        KinectSource("cam", depth_mode="PASSIVE_IR")
    with pytest.raises(ValueError, match="sync 'primary'"):
        KinectSource("cam", sync="primary")
    with pytest.raises(ValueError, match="no such file"):
        KinectSource("cam", recording=str(tmp_path / "missing.mkv"))
    with pytest.raises(ValueError, match="bad options"):
        make_source("kinect", "cam", {"exposure": 5})


def test_without_pyk4a_the_error_names_what_to_install():
    try:  # pyk4a is not installed on these machines: this is the real path
        import pyk4a  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyk4a is installed here; the missing-SDK message cannot be provoked")
    src = KinectSource("cam")
    with pytest.raises(SDKMissingError) as e:
        next(src.frames())
    text = str(e.value)
    assert "pyk4a" in text and "libk4a1.4" in text and "libk4abt1.1" in text


# ------------------------------------------------ an IMU extrinsic that is not a rotation (Femto)


def test_rotation_check_refuses_what_the_femto_wrapper_returns():
    from capture.kinect.geometry import NOMINAL_ACCEL_TO_DEPTH, checked_accel_to_depth, is_rotation

    # an Azure Kinect's factory extrinsics[ACCEL][DEPTH] (Azure_Kinect_ROS_Driver issue #4)
    factory = np.array([[0.00204108, -0.999998, -0.000266121],
                        [0.0972247, -6.64172e-05, 0.995262],
                        [-0.99526, -0.00205728, 0.0972243]])
    assert is_rotation(factory) and is_rotation(ACCEL_TO_DEPTH)
    # the nominal mounting is within half a degree of that unit's calibration
    angle = np.degrees(np.arccos((np.trace(NOMINAL_ACCEL_TO_DEPTH.T @ factory) - 1) / 2))
    assert angle < 0.5
    # a level camera's accelerometer reads (0, 0, -9.81) under the nominal mounting
    up_depth = np.array([0.0, -np.cos(np.radians(6)), -np.sin(np.radians(6))])
    np.testing.assert_allclose(NOMINAL_ACCEL_TO_DEPTH.T @ up_depth * 9.81, [0, 0, -9.81],
                               atol=1e-9)
    for bad in (np.zeros((3, 3)),                       # the Femto Bolt's K4A wrapper
                np.diag([1.0, 1.0, -1.0]),              # a reflection (det -1)
                2.0 * np.eye(3),                        # not orthonormal
                np.full((3, 3), np.nan),                # garbage
                np.eye(2)):                             # wrong shape
        assert not is_rotation(bad)
        r, used = checked_accel_to_depth(bad)
        assert not used and np.array_equal(r, NOMINAL_ACCEL_TO_DEPTH)
    r, used = checked_accel_to_depth(factory)
    assert used and np.array_equal(r, factory)


def test_zero_imu_extrinsic_falls_back_to_the_nominal_mounting(fake, caplog):
    """Orbbec's K4A wrapper (Femto Bolt) returns an all-zero ACCEL->DEPTH rotation; levelling then
    divided 0 by 0 and every joint became NaN. The nominal mounting levels it instead, the
    fallback is counted per session and logged once."""
    from capture.kinect.geometry import NOMINAL_ACCEL_TO_DEPTH

    cam = Camera(height=1.1, pitch_deg=15.0, roll_deg=3.0)
    world = standing_body_world(0.2, -3.0)
    for k, h in enumerate((1, 2)):
        fake.add_result(h, 1_000 + k * 33_333, [(1, cam.to_camera_mm(world), MEDIUM)])
    # the unit's real mounting is the nominal one; its calibration says zeros
    imu = cam.accelerometer(NOMINAL_ACCEL_TO_DEPTH, 300)
    s1 = FakeDevice([1, UNPLUG], imu=imu.copy(), accel_to_depth=np.zeros((3, 3)))
    s2 = FakeDevice([2], imu=imu.copy(), accel_to_depth=np.zeros((3, 3)))
    src, _ = source(fake, [s1, s2], use_imu=True)
    with caplog.at_level("WARNING", logger="capture.kinect.source"):
        frames = take(src, 2)
    for f in frames:
        j = f.bodies[0].joints
        assert np.isfinite(j).all()
        np.testing.assert_allclose(j[:, 1], world[:, 1] - cam.height, atol=2e-3)  # levelled
    assert src.state["up_axis"] == "imu" and src.state["imu_extrinsic"] == "nominal"
    assert src.counters["imu_extrinsic_fallbacks"] == 2  # both sessions
    assert sum("not a rotation" in r.getMessage() for r in caplog.records) == 1


def test_imu_extrinsic_fallback_reaches_status(fake, tmp_path, endpoint):
    """Through the capture process loop: Status carries the fallback for the alert rules."""
    from capture.kinect.geometry import NOMINAL_ACCEL_TO_DEPTH

    mkv = tmp_path / "femto.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3")
    cam = Camera(height=1.0, pitch_deg=10.0)
    fake.add_result(1, 33_333, [(1, cam.to_camera_mm(standing_body_world(0, -2.5)), MEDIUM)])
    dev = FakeDevice([1], imu=cam.accelerometer(NOMINAL_ACCEL_TO_DEPTH, 300),
                     accel_to_depth=np.zeros((3, 3)))
    src, _ = source(fake, [dev], recording=str(mkv), use_imu=True)
    got, statuses = published(src, endpoint())
    assert len(got) == 1 and np.isfinite(got[0].bodies[0].joints).all()
    assert statuses[-1].counters["source.imu_extrinsic_fallbacks"] == 1
    assert statuses[-1].state["imu_extrinsic"] == "nominal"
    assert statuses[-1].state["up_axis"] == "imu"
