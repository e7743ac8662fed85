"""The kiosk preview as the kiosk sees it: the preview process (``gaitstream preview``, its own
process), frames and skeletons over real ZeroMQ sockets, and the page loaded in a real headless
Chromium, whose screenshot must show the skeleton drawn where its joints project.

Chromium is Debian's ``chromium`` (.ci/run installs it). The screenshot is the browser's own
rendering of the page (<img> of the MJPEG stream), so the HTTP server, the multipart stream and
the page are what is checked, not a decoded snapshot. The last test runs capture -> worker ->
preview as three real processes on a piece of the walking video.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from sinks.preview import (BONE_COLOUR, CANVAS_COLOUR, JOINT_COLOUR, orthographic_views,
                           project_to_image)
from conftest import REPO, free_port, stop_process
from kinect_fakes import standing_body_world
from streams.schema import Body, ImageFrame, SkeletonFrame, Status, monotonic_us
from streams.skeletons import CANONICAL_PARENTS, to_canonical
from streams.transport import Publisher, Subscriber

BACKGROUND = (90, 60, 30)  # BGR of the test camera's picture
VIDEO = "video_walking_sports2d/sports2d_demo.mp4"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is needed for the preview's browser test: apt-get install "
                    "chromium (.ci/run does)")
    return path


def screenshot(chromium: str, url: str, size: tuple[int, int], tmp: Path) -> np.ndarray:
    """What headless Chromium renders at ``url`` in a ``size`` (w, h) window, as BGR."""
    out = tmp / f"shot-{time.monotonic_ns()}.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}", "--hide-scrollbars",
           f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=3000",
           f"--screenshot={out}", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    img = cv2.imread(str(out))
    assert r.returncode == 0 and img is not None, f"chromium failed: {r.stderr[-2000:]}"
    return img


def start_preview(tmp: Path, subscribe: str, source: str, hfov: float, publish: str
                  ) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "deploy.cli", "preview", "--subscribe", subscribe,
           "--source", source, "--port", str(port), "--hfov-deg", str(hfov),
           "--max-fps", "30", "--publish", publish]
    log = open(tmp / f"preview-{source}.log", "wb")
    return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT), port


def standing_skeleton(source: str, t_us: int) -> SkeletonFrame:
    """A standing person 3 m in front of a camera 0.9 m above the floor, as an Azure Kinect
    source publishes it (32 joints, wire frame: y up, -z forward), confidence MEDIUM."""
    world = standing_body_world(0.2, -3.0) - [0.0, 0.9, 0.0]
    return SkeletonFrame(source=source, seq=1, t_us=t_us, host_us=monotonic_us(),
                         layout="azure_kinect32",
                         bodies=[Body(3, world.astype(np.float32), np.full(32, 0.8, np.float32))])


def expected_points(skel: SkeletonFrame, size: tuple[int, int], hfov: float,
                    blank: bool = False) -> np.ndarray:
    """Where the first body's joints are drawn: projected through the camera onto its picture,
    or, on the blank canvas of a source without pictures, in its front view."""
    joints, conf = to_canonical(skel.layout, skel.bodies[0].joints, skel.bodies[0].confidence)
    if blank:
        return orthographic_views([(joints, conf)], size[0], size[1])[0][:len(joints)]
    return project_to_image(joints, size[0], size[1], hfov)


def near(img: np.ndarray, xy: np.ndarray, colour: tuple[int, int, int], tol: int = 60) -> bool:
    x, y = int(round(xy[0])), int(round(xy[1]))
    return bool(np.abs(img[y, x].astype(int) - colour).max() <= tol)


def statuses_until(sub: Subscriber, done, timeout_s: float,
                   procs: tuple[subprocess.Popen, ...] = ()) -> list[Status]:
    """The preview's Status messages until ``done(status)``, the timeout, or a process exits."""
    got: list[Status] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        m = sub.recv(200)
        if m is not None and isinstance(m[1], Status) and m[1].process == "preview":
            got.append(m[1])
            if done(m[1]):
                break
    return got


def feed(pub: Publisher, stop: threading.Event, source: str, with_pictures: bool,
         size: tuple[int, int]) -> None:
    """Frames (when ``with_pictures``) and their skeletons at 10 Hz until ``stop``."""
    k = 0
    while not stop.is_set():
        t_us = 1_000_000 + k * 100_000
        if with_pictures:
            img = np.empty((size[1], size[0], 3), np.uint8)
            img[:] = BACKGROUND
            pub.send(ImageFrame(source=source, seq=k + 1, t_us=t_us, host_us=monotonic_us(),
                                width=size[0], height=size[1]).attach(img))
        pub.send(standing_skeleton(source, t_us))
        k += 1
        stop.wait(0.1)


def check_drawn(shot: np.ndarray, skel: SkeletonFrame, size: tuple[int, int], hfov: float,
                background: tuple[int, int, int]) -> None:
    pts = expected_points(skel, size, hfov, blank=background == CANVAS_COLOUR)
    assert np.isfinite(pts).all()
    # every joint is a red dot where it projects
    joints_ok = [near(shot, p, JOINT_COLOUR) for p in pts]
    assert sum(joints_ok) >= 0.9 * len(pts), joints_ok
    # the long bones are green half way along (away from the joints' dots)
    long_bones = [(j, p) for j, p in enumerate(CANONICAL_PARENTS)
                  if p >= 0 and np.linalg.norm(pts[j] - pts[p]) > 30]
    assert len(long_bones) >= 8
    bones_ok = [near(shot, (pts[j] + pts[p]) / 2, BONE_COLOUR) for j, p in long_bones]
    assert sum(bones_ok) >= 0.9 * len(bones_ok), bones_ok
    # and nothing else: the picture's corners are the background
    for x, y in ((10, 10), (size[0] - 10, 10), (10, size[1] - 10), (size[0] - 10, size[1] - 10)):
        assert near(shot, np.array([x, y]), background, tol=25)
    # the figure stands upright: head above the feet
    head, foot = pts[15], pts[10]  # canonical head, left foot
    assert head[1] < foot[1] - 200


@pytest.mark.parametrize("kind", ["webcam", "kinect"])
def test_browser_shows_the_skeleton_drawn(kind, chromium, endpoint, tmp_path):
    """webcam: frames + skeletons, drawn on the frames; kinect: skeletons only (a depth camera
    publishes no pictures), drawn on a blank canvas of the depth image's proportions, seen from
    the front and from the side."""
    webcam = kind == "webcam"
    source = "cam" if webcam else "k4a"
    size = (640, 480) if webcam else (640, 576)
    hfov = 60.0 if webcam else 75.0  # the Kinect's NFOV depth camera
    data_ep, status_ep = endpoint(), endpoint()
    pub = Publisher(data_ep)
    status_sub = Subscriber([status_ep], ["status"])
    preview, port = start_preview(tmp_path, data_ep, source, hfov, status_ep)
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(pub, stop, source, webcam, size), daemon=True)
    try:
        assert pub.wait_for_subscribers(2, timeout_s=30) == 2, "the preview never subscribed"
        feeder.start()
        key = "drawn" if webcam else "drawn_blank"
        st = statuses_until(status_sub, lambda s: s.counters.get(key, 0) >= 3, 30, (preview,))
        assert st and st[-1].counters[key] >= 3, [s.counters for s in st]
        shot = screenshot(chromium, f"http://127.0.0.1:{port}/", size, tmp_path)
        later = statuses_until(status_sub, lambda s: False, 2.5)
    finally:
        stop.set()
        feeder.join(5)
        stop_process(preview)
        status_sub.close()
        pub.close()
    assert shot.shape[:2] == (size[1], size[0])
    check_drawn(shot, standing_skeleton(source, 0), size, hfov,
                BACKGROUND if webcam else CANVAS_COLOUR)
    # Status every second, like every process: counts of what it drew and for whom
    assert len(later) >= 2
    gaps = np.diff([s.t_us for s in later]) / 1e6
    assert all(0.8 < g < 1.6 for g in gaps), gaps
    last = later[-1].counters
    assert last["received"] > 0 and last["skeletons"] > 0 and last["bad_skeletons"] == 0
    assert last["http_clients"] >= 1 and last["http_served"] >= 1  # Chromium's stream
    if webcam:
        assert last["images"] > 0 and last["drawn_blank"] == 0
    else:
        assert last["images"] == 0 and last["drawn"] == 0


def trimmed_video(src: Path, out: Path, start_s: float, end_s: float, scale: float) -> Path:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.set(cv2.CAP_PROP_POS_FRAMES, round(start_s * fps))
    w = None
    for _ in range(round((end_s - start_s) * fps)):
        ok, img = cap.read()
        if not ok:
            break
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if w is None:
            w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                (img.shape[1], img.shape[0]))
        w.write(img)
    cap.release()
    w.release()
    return out


def test_capture_worker_preview_as_processes_on_the_walking_video(shared_data, endpoint,
                                                                   tmp_path):
    """Three `gaitstream proc` processes: the webcam source on 2 s of the walking video (she is
    in view), the worker estimating poses and publishing skel/walk, the preview drawing them on
    the frames they came from. The preview's Status says how many it drew."""
    clip = trimmed_video(shared_data / VIDEO, tmp_path / "walk.mp4", 2.0, 4.0, 0.5)
    cap_ep, work_ep, prev_ep = endpoint(), endpoint(), endpoint()
    port = free_port()
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(f"""
[pipeline]
name = "preview-test"
data_dir = "{tmp_path}"
session = "walk"

[[process]]
name = "walk"
kind = "capture"
publish = "{cap_ep}"
hwm = 4
[process.options]
source = "webcam"
path = "{clip}"
speed = 0.25

[[process]]
name = "worker"
kind = "worker"
subscribe = ["{cap_ep}"]
publish = "{work_ep}"
hwm = 4

[[process]]
name = "preview"
kind = "preview"
subscribe = ["{cap_ep}", "{work_ep}"]
publish = "{prev_ep}"
hwm = 8
[process.options]
port = {port}
max_fps = 30.0
keep_s = 10.0
""")
    status_sub = Subscriber([prev_ep], ["status"])
    procs = []
    try:
        for name in ("preview", "worker", "walk"):  # readers first: the file waits for them
            log = open(tmp_path / f"{name}.log", "wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config",
                                           str(cfg), "--name", name], cwd=REPO, stdout=log,
                                          stderr=subprocess.STDOUT))
        st = statuses_until(status_sub, lambda s: s.counters.get("drawn", 0) >= 5, 120,
                            tuple(procs[:2]))  # the capture process ends with the clip
    finally:
        for p in reversed(procs):
            stop_process(p)
        status_sub.close()
    logs = {p.name: p.read_text(errors="replace")[-1500:] for p in tmp_path.glob("*.log")}
    assert st and st[-1].counters.get("drawn", 0) >= 5, (
        [s.counters for s in st[-3:]], logs)
    last = st[-1].counters
    assert last["images"] >= last["skeletons"] > 0
    assert last["bad_skeletons"] == 0 and last["drawn_blank"] == 0


def dom(chromium: str, url: str, tmp: Path) -> str:
    """The page's DOM after its scripts ran for a few (virtual) seconds."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}",
           "--virtual-time-budget=4000", "--dump-dom", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_the_page_says_so_when_no_picture_comes(chromium, tmp_path):
    """No camera (or a silent one): the page said nothing and stayed black."""
    from sinks.preview import MjpegServer

    server = MjpegServer("127.0.0.1", free_port())
    try:
        page = dom(chromium, server.url, tmp_path)
        assert "No picture from the camera yet." in page
        assert 'style="display: block;"' in page
        stop = threading.Event()

        def camera():  # pictures keep coming, as from a live camera
            while not stop.wait(0.1):
                server.publish(np.full((120, 160, 3), 200, np.uint8))
        cam = threading.Thread(target=camera, daemon=True)
        cam.start()
        page = dom(chromium, server.url, tmp_path)
        stop.set()
        cam.join()
        assert 'style="display: none;"' in page  # pictures come: no message
        assert 'src="stream.mjpg"' in page
    finally:
        server.close()
