"""WebcamSource against real files, a real network camera (MJPEG over HTTP on loopback, stopped
and restarted to make the camera go away) and a camera index that does not exist here.

There is no USB camera on this machine: device capture itself (resolution/fps/fourcc requests to a
driver) is not exercised; a missing device is, and its backoff is observed through a recording
wrapper around the real ``cv2.VideoCapture``.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from capture.base import run_capture
from sinks.preview import MjpegServer
from capture.sources import make_source
from capture.webcam import WebcamSource
from streams.node import StatusReporter
from streams.transport import Publisher, Subscriber

VIDEO = "video_walking_sports2d/sports2d_demo.mp4"


@pytest.fixture
def small_video(tmp_path):
    """12 frames, 320x240, 20 fps, frame k uniformly grey level 10 k (MJPEG in AVI)."""
    path = tmp_path / "grey.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (320, 240))
    assert w.isOpened()
    for k in range(12):
        w.write(np.full((240, 320, 3), 10 * k, np.uint8))
    w.release()
    return path


def test_file_frames_carry_file_timestamps_and_the_decoded_buffer(small_video):
    src = WebcamSource("cam", path=str(small_video))
    assert src.paced and src.kind == "path"
    frames = list(src.frames())
    assert len(frames) == 12
    assert [f.t_us for f in frames] == [50_000 * k for k in range(12)]
    for k, f in enumerate(frames):
        assert (f.width, f.height, f.encoding) == (320, 240, "bgr8")
        assert f.host_us == 0  # the runner stamps files when it releases them
        # zero-copy: the ImageFrame holds OpenCV's own array, and array() is a view of it
        assert isinstance(f.image, np.ndarray)
        assert np.shares_memory(f.array(), f.image)
        assert abs(float(f.array().mean()) - 10 * k) < 2.0
    assert src.state["camera"] == "online"


def test_real_video_timestamps(shared_data):
    src = WebcamSource("cam", path=str(shared_data / VIDEO))
    it = src.frames()
    got = [next(it) for _ in range(5)]
    src.close()
    assert [f.t_us for f in got] == [round(k * 1e6 / 30) for k in range(5)]
    assert (got[0].width, got[0].height) == (1768, 994)


def test_files_are_resized_and_decimated(small_video):
    src = WebcamSource("cam", path=str(small_video), width=160, height=120, fps=10)
    frames = list(src.frames())
    assert [f.t_us for f in frames] == [100_000 * k for k in range(6)]
    assert all((f.width, f.height) == (160, 120) for f in frames)
    assert abs(float(frames[3].array().mean()) - 60) < 2.0
    assert src.counters["decimated"] == 6


def test_frames_cross_the_transport_unchanged(small_video, endpoint):
    pub = Publisher(endpoint())
    sub = Subscriber([pub.endpoint], ["img/cam"])
    assert pub.wait_for_subscribers(1, 5.0) == 1
    src = make_source("webcam", "cam", {"path": str(small_video)})
    stop = threading.Event()
    status = StatusReporter("cam", "capture")
    t = threading.Thread(target=run_capture, args=(src, pub, stop, status), kwargs={"speed": 0})
    t.start()
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 12 and time.monotonic() < deadline:
        m = sub.recv(200)
        if m is not None:
            got.append(m[1])
    t.join(5)
    pub.close()
    sub.close()
    assert [m.seq for m in got] == list(range(1, 13))
    assert [m.t_us for m in got] == [50_000 * k for k in range(12)]
    for k, m in enumerate(got):
        assert m.array().shape == (240, 320, 3)
        assert abs(float(m.array().mean()) - 10 * k) < 2.0
        assert m.host_us > 0
    assert status.counters["published"] == 12


class _Feeder:
    """Publishes numbered pictures into an MJPEG server, like a network camera."""

    def __init__(self, server: MjpegServer):
        self.server, self.stop, self.n = server, threading.Event(), 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.server.publish(np.full((120, 160, 3), 40 + (self.n % 5) * 40, np.uint8))
            self.n += 1
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_network_camera_goes_offline_and_comes_back():
    server = MjpegServer("127.0.0.1", 0)
    port = server.port
    feeder = _Feeder(server)
    src = WebcamSource("ipcam", url=f"http://127.0.0.1:{port}/stream.mjpg",
                       backoff_initial_s=0.1, backoff_max_s=0.4)
    assert not src.paced
    got: list[tuple[int, str]] = []

    def read() -> None:
        for f in src.frames():
            got.append((f.t_us, src.state["camera"]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert _wait(lambda: len(got) >= 10, 10), "no frames from the network camera"
        assert src.state["camera"] == "online"
        feeder.close()
        server.close()  # the camera goes away
        assert _wait(lambda: src.state["camera"] == "offline", 10)
        n_down = len(got)
        assert _wait(lambda: src.counters["open_failures"] >= 2, 5)  # retried, refused
        server = MjpegServer("127.0.0.1", port)  # the camera comes back on the same address
        feeder = _Feeder(server)
        assert _wait(lambda: len(got) >= n_down + 10, 10), "no frames after the camera returned"
        assert src.state["camera"] == "online"
    finally:
        src.close()
        reader.join(8)
        feeder.close()
        server.close()
    assert not reader.is_alive()
    t = [t for t, _ in got]
    assert all(b > a for a, b in zip(t, t[1:]))  # host-clock timestamps keep increasing
    assert src.counters["opens"] >= 3
    assert src.counters["read_failures"] >= 1


def test_missing_camera_backs_off_exponentially_and_close_interrupts():
    attempts: list[float] = []

    def opener(*args):
        attempts.append(time.monotonic())
        return cv2.VideoCapture(*args)  # the real thing: /dev/video99 does not exist here

    src = WebcamSource("usb", device=99, backoff_initial_s=0.05, backoff_max_s=0.2,
                       opener=opener)
    assert not src.paced and src.kind == "device"
    done = threading.Event()
    threading.Thread(target=lambda: (list(src.frames()), done.set()), daemon=True).start()
    assert _wait(lambda: len(attempts) >= 5, 5)
    assert src.state["camera"] == "offline"
    gaps = np.diff(attempts[:5])
    # 0.05, 0.1, 0.2, 0.2 s (capped), each within scheduling slack
    assert np.allclose(gaps, [0.05, 0.1, 0.2, 0.2], atol=0.04), gaps
    t0 = time.monotonic()
    src.close()
    assert done.wait(2)
    assert time.monotonic() - t0 < 0.5  # close() cut the backoff wait short


def test_no_reconnect_ends_the_source():
    src = WebcamSource("ipcam", url="http://127.0.0.1:9/none.mjpg", reconnect=False)
    assert list(src.frames()) == []
    assert src.state["camera"] == "offline"
    assert src.counters["open_failures"] == 1


@pytest.mark.parametrize("options, message", [
    ({"path": "/nonexistent/walk.mp4"}, "no such video file"),
    ({"path": "a.mp4", "url": "rtsp://x"}, "exactly one of"),
    ({"device": 0, "width": 640}, "both width and height"),
    ({"device": 0, "fps": 0}, "fps"),
    ({"device": 0, "fourcc": "MJPEG"}, "fourcc"),
    ({"url": "camera.local"}, "scheme"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        WebcamSource("cam", **options)


def test_unknown_option_through_the_source_table():
    with pytest.raises(ValueError, match="bad options"):
        make_source("webcam", "cam", {"device": 0, "resolution": "hd"})
