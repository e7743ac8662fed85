"""Kiosk preview: pairing frames with skeletons, drawing, and the MJPEG HTTP server (real sockets).
The end-to-end check on the real video (her skeleton drawn on her, fetched over HTTP) is in
test_pose_video.py, where the video's poses are cached."""

from __future__ import annotations

import http.client
import threading
import time

import cv2
import numpy as np
import pytest

from sinks.preview import (BONE_COLOUR, CANVAS_COLOUR, JOINT_COLOUR, MjpegServer,
                             PreviewComposer, draw_skeleton, project_to_image)
from streams.schema import Body, ImageFrame, SkeletonFrame
from streams.skeletons import CANONICAL_PARENTS


def image_frame(t_us: int, value: int = 50) -> ImageFrame:
    img = np.full((240, 320, 3), value, np.uint8)
    return ImageFrame(source="cam", seq=1, t_us=t_us, host_us=1, width=320,
                      height=240).attach(img)


def skeleton(t_us: int, layout: str = "canonical22", n: int = 22) -> SkeletonFrame:
    """A canonical figure 3 m in front of the camera (wire frame: -z is forward)."""
    j = np.zeros((n, 3), np.float32)
    j[:, 2] = -3.0
    j[:, 1] = np.linspace(-0.8, 0.8, n)
    return SkeletonFrame(source="cam", seq=1, t_us=t_us, host_us=1, layout=layout,
                         bodies=[Body(1, j, np.ones(n, np.float32))])


def test_projection_of_the_optical_axis_and_behind_the_camera():
    pts = project_to_image(np.array([[0, 0, -2.0], [1.0, 0.5, -2.0], [0, 0, 1.0]]), 640, 480,
                           90.0)
    assert np.allclose(pts[0], (320, 240))
    assert np.allclose(pts[1], (320 + 320 * 0.5, 240 - 320 * 0.25))  # f = 320 px at 90 deg
    assert np.isnan(pts[2]).all()


def test_draw_skeleton_skips_unsure_and_off_image_joints():
    img = np.zeros((200, 200, 3), np.uint8)
    pts = np.full((22, 2), 100.0)
    pts[[0, 1, 4]] = [[100, 20], [100, 100], [100, 180]]  # pelvis, left hip, left knee
    conf = np.zeros(22)
    conf[[0, 1, 4]] = 1.0
    assert draw_skeleton(img, pts, conf, CANONICAL_PARENTS) == 2
    assert (img[60, 100] == BONE_COLOUR).all()  # on the pelvis-hip bone
    conf[4] = 0.1
    pts[1] = (1e9, np.nan)
    img[:] = 0
    assert draw_skeleton(img, pts, conf, CANONICAL_PARENTS) == 0


def test_composer_pairs_each_skeleton_with_its_own_frame():
    comp = PreviewComposer(hfov_deg=60, hold_s=0.3, max_fps=0)
    raw = comp.on_image(image_frame(0))  # nobody seen yet: the frame is shown as it is
    assert raw is not None and (raw == 50).all()
    assert comp.on_image(image_frame(33_333, value=60)) is not None
    drawn = comp.on_skeleton(skeleton(0))  # drawn on frame t=0, not on the newer one
    assert drawn is not None and (drawn != 50).any()
    assert ((drawn == 50).all(axis=2) | (drawn == BONE_COLOUR).all(axis=2)).mean() > 0.9
    # skeletons are coming: frames wait for theirs instead of being shown bare
    assert comp.on_image(image_frame(66_666)) is None
    assert comp.on_skeleton(skeleton(50_000)) is None  # no frame with that time
    assert comp.counters["unmatched"] == 1
    # the worker went quiet for longer than hold_s: bare frames again
    assert comp.on_image(image_frame(66_666 + 400_000)) is not None
    assert comp.on_skeleton(skeleton(66_666, layout="mediapipe33", n=22)) is None
    assert comp.counters["bad_skeletons"] == 1  # 22 joints is not MediaPipe's 33: named, counted


def test_skeletons_without_pictures_are_drawn_on_a_blank_canvas():
    """A Kinect publishes skeletons and no pictures: they used to be 'unmatched' and the screen
    stayed empty."""
    comp = PreviewComposer(hfov_deg=75, keep_s=1.0, max_fps=0, canvas_width=320,
                           canvas_height=288)
    img = comp.on_skeleton(skeleton(0))
    assert img is not None and img.shape == (288, 320, 3)
    bg = (img == CANVAS_COLOUR).all(axis=2)
    assert 0.5 < bg.mean() < 1.0  # mostly canvas, and something drawn on it
    assert (np.abs(img.astype(int) - JOINT_COLOUR).max(axis=2) < 40).sum() > 20  # joint dots
    assert comp.counters["drawn_blank"] == 1 and comp.counters["unmatched"] == 0
    # a webcam source whose pictures stopped (camera gone) for longer than keep_s: canvas too
    comp.on_image(image_frame(5_000_000))
    assert comp.on_skeleton(skeleton(5_000_000)) is not None  # its own frame
    assert comp.counters["drawn"] == 1
    late = comp.on_skeleton(skeleton(7_000_000))
    assert late is not None and (late == CANVAS_COLOUR).all(axis=2).mean() > 0.5
    assert comp.counters["drawn_blank"] == 2


def test_composer_limits_the_picture_rate():
    comp = PreviewComposer(max_fps=2)
    shown = sum(comp.on_image(image_frame(k * 33_333)) is not None for k in range(10))
    assert shown == 1  # ten frames within well under half a second


def test_server_page_snapshot_stream_and_close():
    server = MjpegServer("127.0.0.1", 0)
    try:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        c.request("GET", "/snapshot.jpg")
        r = c.getresponse()
        assert r.status == 503 and r.read() == b"no picture yet\n"
        c.request("GET", "/nope")
        r = c.getresponse()
        assert r.status == 404
        r.read()
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, 32:] = (0, 0, 255)
        server.publish(img)
        c.request("GET", "/snapshot.jpg")
        r = c.getresponse()
        got = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert got.shape == img.shape and got[10, 50, 2] > 200 and got[10, 10].max() < 30
        c.close()
        stream = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        stream.request("GET", "/stream.mjpg")
        resp = stream.getresponse()
        deadline = time.monotonic() + 5
        while server.watchers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.watchers == 1
        server.publish(img)
        assert resp.readline().strip() == b"--gaitstreamframe"
    finally:
        t0 = time.monotonic()
        server.close()  # drops the connected browser instead of waiting for it
        assert time.monotonic() - t0 < 3
    resp.read()  # returns once the server dropped the stream (a hang would raise a timeout)
    assert server.watchers == 0


def test_server_refuses_a_remote_bind_unless_allowed():
    with pytest.raises(ValueError, match="not loopback"):
        MjpegServer("0.0.0.0", 0)


def test_close_while_a_stream_thread_waits():
    server = MjpegServer("127.0.0.1", 0)
    s = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    s.request("GET", "/stream.mjpg")
    s.getresponse()
    done = threading.Event()
    threading.Thread(target=lambda: (server.close(), done.set()), daemon=True).start()
    assert done.wait(5)


def test_the_simulated_walker_is_drawn_whatever_its_frame(tmp_path):
    """The simulator's skeletons are in a floor frame (the camera looks along +z at them): a
    camera projection put them behind the camera and the page stayed blank. The blank canvas
    shows every body from the front and from the side instead, in any frame."""
    from capture.sim.source import SimSource

    src = SimSource("sim", seed=1)
    frames = src.frames()
    skel = next(f for f in frames if f.bodies)
    src.close()
    comp = PreviewComposer(max_fps=0, canvas_width=640, canvas_height=360)
    img = comp.on_skeleton(skel)
    assert img is not None and comp.counters["drawn_blank"] == 1
    joints = (np.abs(img.astype(int) - JOINT_COLOUR).max(axis=2) < 40)
    left, right = joints[:, :320], joints[:, 320:]
    assert left.sum() > 50 and right.sum() > 50  # the front and the side view
    rows = np.flatnonzero(left.any(axis=1))
    assert rows.max() - rows.min() > 0.5 * 360  # a standing adult fills most of the height
    cv2.imwrite(str(tmp_path / "sim_canvas.png"), img)
