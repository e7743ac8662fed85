"""Webcam pose on a real video: ../shared/data/video_walking_sports2d/sports2d_demo.mp4.

A woman walks right to left in side view from about frame 50 to frame 200 (1.7-6.7 s at 30 fps);
a man does acrobatics on a roof behind her, then on the grass (SOURCES.md). There is no ground
truth, so the checks are what must hold if the pipeline follows *her*: a pose on nearly every
frame she is visible, her hips moving steadily right to left near the ground, her size constant,
a right-handed y-up skeleton facing the way she walks, and gait figures inside the range of adult
free walking. MediaPipe runs once per test session (session fixture).
"""

from __future__ import annotations

import http.client
import threading
import time

import cv2
import numpy as np
import pytest

from sinks.preview import MjpegServer, PreviewComposer, run_preview
from capture.webcam import WebcamSource
from inference.analysis.analyzer import OnlineGaitAnalyzer
from inference.pose.metric import leg_length_px
from inference.video import estimate_video, recording_from_estimates
from streams.schema import Body, SkeletonFrame
from streams.transport import Publisher, Subscriber

VIDEO = "video_walking_sports2d/sports2d_demo.mp4"
W, H = 1768, 994
HER_FIRST, HER_LAST = 50, 197  # frames where she is in view (she leaves the image at ~198-200)
MID = 120  # mid-walk: she is near the image centre, the man on the roof


@pytest.fixture(scope="session")
def video_pose(shared_data):
    return estimate_video(shared_data / VIDEO)


@pytest.fixture(scope="session")
def her(video_pose):
    """Her body id: the person reported mid-walk, checked to be on the ground near the image
    centre (the man is on the roof then, with his hips in the upper third of the image)."""
    b = int(video_pose["body"][MID])
    hip = video_pose["image_xy"][MID, [23, 24]].mean(axis=0)
    assert b >= 0, "nobody reported mid-walk"
    assert 0.3 * W < hip[0] < 0.7 * W and hip[1] > 0.6 * H, f"mid-walk person at {hip}"
    return b


@pytest.fixture(scope="session")
def recording(shared_data, video_pose):
    return recording_from_estimates(shared_data / VIDEO, video_pose)


def test_the_track_stays_on_her(video_pose, her):
    body, xy = video_pose["body"], video_pose["image_xy"]
    assert len(body) == 230
    window = np.arange(HER_FIRST, HER_LAST + 1)
    mine = body[window] == her
    assert mine.mean() >= 0.95, f"pose on {mine.mean():.1%} of the frames she is visible"
    # nobody else is reported while she walks
    span = np.flatnonzero(body == her)
    others = body[span[0]:span[-1] + 1]
    assert set(others[others >= 0]) == {her}
    hip = xy[span][:, [23, 24]].mean(axis=1)
    # right to left, steadily: never back by more than a few pixels over 5 frames
    assert (np.diff(hip[::5, 0]) < 5).all()
    assert hip[0, 0] - hip[-1, 0] > 0.7 * W
    assert ((hip[:, 1] > 0.6 * H) & (hip[:, 1] < 0.85 * H)).all()  # on the grass, not the roof
    legs = np.array([leg_length_px(p, v) for p, v in zip(xy[span], video_pose["confidence"][span])])
    legs = legs[np.isfinite(legs)]
    assert len(legs) > 0.9 * len(span)
    assert np.abs(legs / np.median(legs) - 1).max() < 0.25  # one person's size throughout


def test_her_skeleton_is_metric_right_handed_and_y_up(video_pose, her):
    sel = video_pose["body"] == her
    t = video_pose["t_us"][sel] / 1e6
    j = video_pose["joints"][sel].astype(np.float64)
    assert (j[:, 0, 1] > j[:, [27, 28], 1].max(axis=1)).mean() > 0.95  # nose above the ankles
    pelvis = j[:, [23, 24]].mean(axis=1)
    # she walks towards -x (image left) at an adult walking speed (0.8 - 1.8 m/s)
    speed = -np.polyfit(t, pelvis[:, 0], 1)[0]
    assert 0.8 < speed < 1.8, speed
    # right-handed with y up: cross(left hip - right hip, up) is where a person faces; a
    # mirrored (left-handed) conversion would make her face backwards
    facing = np.cross(j[:, 23] - j[:, 24], [0.0, 1.0, 0.0])
    angle = np.degrees(np.arctan2(facing[:, 2], -facing[:, 0]))
    assert abs(np.median(angle)) < 30, np.median(angle)
    leg = (np.linalg.norm(j[:, 23] - j[:, 25], axis=1) + np.linalg.norm(j[:, 25] - j[:, 27], axis=1))
    assert 0.65 < np.median(leg) < 1.0  # metres: an adult's hip-to-ankle length
    depth = -pelvis[:, 2]
    assert np.abs(np.diff(depth)).max() < 0.1  # smoothed depth: no metre jumps between frames


def test_recording_from_the_video(recording, her):
    r = recording
    assert r.meta["person"] == her and r.meta["walked"]
    assert r.meta["pose_coverage"] >= 0.95
    assert r.source_layout == "mediapipe33" and r.joints.shape == (r.n_frames, 22, 3)
    assert r.rate_hz == pytest.approx(30.0, rel=1e-3)
    assert 1.5 < r.t_us[0] / 1e6 < 1.9 and 6.4 < r.t_us[-1] / 1e6 < 6.8
    assert np.isfinite(r.joints).all()


def test_gait_events_and_cycles_during_her_walk(recording):
    """Bounds (adult free walking, e.g. Hollman 2011, Tudor-Locke 2018): cadence 90-130
    steps/min, step length 0.4-0.9 m, speed 0.8-1.8 m/s. The cycles are the analyzer's; those it
    flags as untrustworthy (missing or implausible events, left/right swaps: MediaPipe confuses
    the legs for a few frames near 5.3 s and 6.4 s in this side view) are not used for figures."""
    a = OnlineGaitAnalyzer("video", 1)
    out = []
    for t, j, c in zip(recording.t_us, recording.joints, recording.confidence):
        out += a.push(int(t), j, c)
    out += a.flush()
    events = [m for m in out if m.TYPE == "gait_event"]
    cycles = [m for m in out if m.TYPE == "gait_cycle"]
    t0, t1 = recording.t_us[0], recording.t_us[-1]
    assert all(t0 <= e.event_us <= t1 for e in events)
    for side in ("left", "right"):
        strikes = [e for e in events if e.side == side and e.kind == "foot_strike"]
        assert len(strikes) >= 3, f"{len(strikes)} {side} foot strikes"
    untrusted = {"missing_events", "implausible_timing", "left_right_swap", "turning", "time_gap"}
    good = [c for c in cycles if not untrusted & set(c.flags)]
    assert len(good) >= 4, [(c.side, c.flags) for c in cycles]
    cadence = np.median([c.metrics["cadence_spm"] for c in good])
    step = np.median([c.metrics["step_length_m"] for c in good])
    speed = np.median([c.metrics["speed_mps"] for c in good])
    assert 90 <= cadence <= 130, cadence
    assert 0.4 <= step <= 0.9, step
    assert 0.8 <= speed <= 1.8, speed
    # the figures agree with each other: speed = step length x step rate
    assert speed == pytest.approx(step * cadence / 60, rel=0.2)


def _read_parts(resp: http.client.HTTPResponse, n: int) -> list[bytes]:
    parts = []
    while len(parts) < n:
        line = resp.readline()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            size = int(line.split(b":")[1])
            resp.readline()  # blank line
            parts.append(resp.read(size))
    return parts


def test_kiosk_preview_draws_her_skeleton_over_http(shared_data, video_pose, her, endpoint,
                                                    tmp_path):
    src = WebcamSource("cam", path=str(shared_data / VIDEO))
    frames = src.frames()
    frame = next(f for i, f in enumerate(frames) if i == MID)
    src.close()
    assert video_pose["body"][MID] == her and frame.t_us == video_pose["t_us"][MID]
    skel = SkeletonFrame(source="cam", seq=1, t_us=frame.t_us, host_us=0, layout="mediapipe33",
                         bodies=[Body(her, video_pose["joints"][MID],
                                      video_pose["confidence"][MID])])
    pub = Publisher(endpoint())
    sub = Subscriber([pub.endpoint], ["img/cam", "skel/cam"])
    assert pub.wait_for_subscribers(1, 5.0) == 1
    server = MjpegServer("127.0.0.1", 0)
    stop = threading.Event()
    th = threading.Thread(target=run_preview,
                          args=(sub, server, PreviewComposer(hfov_deg=60.0, max_fps=0), stop))
    th.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/stream.mjpg")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type").startswith("multipart/x-mixed-replace")
        deadline = time.monotonic() + 5
        while server.watchers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        frame.seq = 1
        frame.host_us = 1
        pub.send(frame)  # the raw frame is shown first ...
        time.sleep(0.2)
        pub.send(skel)  # ... then the same frame with her skeleton
        raw_jpeg, drawn_jpeg = _read_parts(resp, 2)
        page = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        page.request("GET", "/")
        assert b"stream.mjpg" in page.getresponse().read()
        page.request("GET", "/snapshot.jpg")
        snap = page.getresponse()
        assert snap.status == 200 and snap.getheader("Content-Type") == "image/jpeg"
        snap.read()
        page.close()
    finally:
        conn.close()
        stop.set()
        th.join(5)
        server.close()
        pub.close()
        sub.close()
    raw = cv2.imdecode(np.frombuffer(raw_jpeg, np.uint8), cv2.IMREAD_COLOR)
    drawn = cv2.imdecode(np.frombuffer(drawn_jpeg, np.uint8), cv2.IMREAD_COLOR)
    cv2.imwrite(str(tmp_path / "preview.png"), drawn)
    assert raw.shape == drawn.shape == (H, W, 3)
    assert np.abs(raw.astype(int) - frame.array()).mean() < 3  # the raw frame, as JPEG
    changed = np.abs(drawn.astype(int) - raw.astype(int)).max(axis=2) > 60
    assert changed.sum() > 1000
    # what was drawn lies on her: inside her image box (grown by 10 %), not on the roof
    pts = video_pose["image_xy"][MID]
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    gx, gy = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    ys, xs = np.nonzero(changed)
    inside = (xs > x0 - gx) & (xs < x1 + gx) & (ys > y0 - gy) & (ys < y1 + gy)
    assert inside.mean() > 0.9, inside.mean()
