"""Live preview for the kiosk: camera frames with the skeleton drawn on them, as MJPEG over HTTP.

A kiosk shows it in its browser (``http://127.0.0.1:8090/``: a page holding the stream;
``/stream.mjpg`` is the bare ``multipart/x-mixed-replace`` stream every browser plays, and
``/snapshot.jpg`` the latest picture). MJPEG over HTTP rather than a window: it works the same
with or without a display (the OpenCV build here is headless), the kiosk's browser is the window,
and staff can open it from another screen when the configuration allows a remote bind.

The preview subscribes to the camera's frames (``img/<source>``) and to the skeletons of the same
source (``skel/<source>``: published by the capture for depth cameras, by the inference worker for
webcams). A skeleton is drawn on the very frame it was computed from (same source and timestamp);
when no skeleton came for ``hold_s`` (nobody there, or the worker is busy) frames are shown as
they are, so the screen never freezes. A depth camera publishes skeletons and no pictures: when a
source has sent no picture for ``keep_s``, its skeletons are drawn on a blank canvas instead. Skeletons are metres in the camera-centred wire frame; they
are drawn by a pinhole projection with the same assumed field of view as the pose estimator
(the depth camera's own field of view for a Kinect).

Encoding JPEGs costs CPU, so at most ``max_fps`` pictures per second are made, and only while a
browser is watching. With a publish endpoint the preview reports Status every second like every
other process (received, drawn, unmatched, browsers watching, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import socket
import threading
import time
from collections import deque
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from streams.schema import ImageFrame, SkeletonFrame
from streams.skeletons import CANONICAL_PARENTS, LayoutError, to_canonical
from streams.node import StatusReporter
from streams.transport import (Publisher, Subscriber, check_bind_endpoint, image_topic,
                               skeleton_topic)
from streams.extras import deferred

cv2 = deferred("cv2", "the preview")

log = logging.getLogger(__name__)

BOUNDARY = b"gaitstreamframe"
NO_PICTURE_S = 3.0  # the page says the camera is silent after this long without a picture
PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>gaitstream preview</title>
<style>html,body{margin:0;height:100%;background:#000;font-family:sans-serif}
img{width:100vw;height:100vh;object-fit:contain}
img:not([src]){display:none}
#msg{position:fixed;top:40%;left:0;right:0;text-align:center;color:#ddd;font-size:3vh;
padding:1em;display:none}</style></head>
<body><img id="picture" alt="camera preview">
<div id="msg" role="status"></div>
<script>
// The picture stream alone is a black page when nothing comes: say why, and keep asking.
async function poll() {
  const msg = document.getElementById("msg");
  const picture = document.getElementById("picture");
  try {
    const s = await (await fetch("state.json", {cache: "no-store"})).json();
    if (s.pictures > 0 && !picture.src) picture.src = "stream.mjpg";
    if (s.age_s === null || s.age_s > s.no_picture_s) {
      msg.textContent = s.age_s === null
        ? "No picture from the camera yet. Is it plugged in, and is the pipeline running?"
        : "No picture from the camera for " + Math.round(s.age_s) +
          " s. Is it still plugged in?";
      msg.style.display = "block";
    } else {
      msg.style.display = "none";
    }
  } catch (e) {
    msg.textContent = "The preview is not answering: is the pipeline running?";
    msg.style.display = "block";
  }
  setTimeout(poll, 1000);
}
poll();
</script></body></html>"""

BONE_COLOUR = (80, 255, 80)  # BGR
JOINT_COLOUR = (40, 40, 255)
CANVAS_COLOUR = (32, 32, 32)  # behind the skeletons of a source without pictures (a Kinect)
DIVIDER_COLOUR = (90, 90, 90)


# --------------------------------------------------------------------------- drawing


def project_to_image(joints: np.ndarray, width: int, height: int, hfov_deg: float
                     ) -> np.ndarray:
    """Wire joints (J, 3) in a camera-centred frame (x right, y up, z towards the camera) to
    pixel positions (J, 2) by a pinhole camera with horizontal field of view ``hfov_deg``;
    NaN for joints behind the camera."""
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    x, y, z = (np.asarray(joints, dtype=np.float64)[:, k] for k in range(3))
    depth = -z  # the camera looks along -z of the wire frame
    out = np.full((len(depth), 2), np.nan)
    ok = depth > 1e-3
    out[ok, 0] = width / 2.0 + f * x[ok] / depth[ok]
    out[ok, 1] = height / 2.0 - f * y[ok] / depth[ok]
    return out


def draw_skeleton(image: np.ndarray, points: np.ndarray, conf: np.ndarray,
                  parents: tuple[int, ...] = CANONICAL_PARENTS, min_conf: float = 0.3) -> int:
    """Draw bones and joints of one skeleton (points (J, 2) px) in place; returns how many bones
    were drawn (joints below ``min_conf`` or off the image are left out)."""
    h, w = image.shape[:2]
    thick = max(2, round(min(h, w) / 160))
    ok = (conf >= min_conf) & np.isfinite(points).all(axis=1)
    ok &= (np.abs(points) < 4 * max(h, w)).all(axis=1)  # cv2 needs sane integer coordinates
    pts = np.where(ok[:, None], points, 0).round().astype(np.int32)
    n = 0
    for j, p in enumerate(parents):
        if p >= 0 and ok[j] and ok[p]:
            cv2.line(image, tuple(map(int, pts[p])), tuple(map(int, pts[j])), BONE_COLOUR, thick,
                     cv2.LINE_AA)
            n += 1
    for j in np.flatnonzero(ok):
        cv2.circle(image, tuple(map(int, pts[j])), thick + 1, JOINT_COLOUR, -1, cv2.LINE_AA)
    return n


def draw_bodies(img: np.ndarray, skeleton: SkeletonFrame, hfov_deg: float) -> None:
    """Every body of ``skeleton`` drawn on ``img`` in place (LayoutError for a bad layout)."""
    for body in skeleton.bodies:
        joints, conf = to_canonical(skeleton.layout, body.joints, body.confidence)
        draw_skeleton(img, project_to_image(joints, img.shape[1], img.shape[0], hfov_deg), conf)


def annotate(frame: ImageFrame, skeleton: SkeletonFrame | None, hfov_deg: float) -> np.ndarray:
    """A BGR copy of the frame's picture with the skeleton's bodies drawn on it."""
    if frame.encoding == "jpeg":
        img = cv2.imdecode(np.frombuffer(frame.image, np.uint8), cv2.IMREAD_COLOR)
    else:
        img = frame.array()
        if frame.encoding == "gray8":
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif frame.encoding == "rgb8":
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        else:
            img = img.copy()
    if skeleton is not None:
        draw_bodies(img, skeleton, hfov_deg)
    return img


VIEW_HEIGHT_M = 2.4  # metres of the scene a view's height shows: a standing adult and margin


def orthographic_views(bodies: list[tuple[np.ndarray, np.ndarray]], width: int, height: int
                       ) -> list[np.ndarray]:
    """Pixel positions (J, 2) of each body (canonical joints, y up) in two views side by side,
    the front (x across) in the left half and the side (z across) in the right half, at one
    scale, centred on the bodies with the lowest foot on a floor line near the bottom. Unlike a
    camera projection this needs no camera frame: a skeleton in a floor frame (the simulator,
    a gait lab) shows as well as one in a depth camera's frame."""
    confident = [j[c >= 0.3] for j, c in bodies if (c >= 0.3).any()]
    if not confident:
        return [np.full((len(j), 2), np.nan) for j, _ in bodies]
    pts = np.concatenate(confident)
    scale = 0.9 * height / VIEW_HEIGHT_M
    floor_px = height - 0.06 * height
    half = width / 2.0
    out = []
    for joints, _ in bodies:
        px = np.empty((2 * len(joints), 2))
        for view, axis in enumerate((0, 2)):  # front: x across; side: z across
            centre = 0.5 * (pts[:, axis].min() + pts[:, axis].max())
            sign = -1.0 if axis == 2 else 1.0  # side view: the camera's side on the right
            px[view * len(joints):(view + 1) * len(joints), 0] = (
                view * half + half / 2.0 + sign * scale * (joints[:, axis] - centre))
            px[view * len(joints):(view + 1) * len(joints), 1] = (
                floor_px - scale * (joints[:, 1] - pts[:, 1].min()))
        out.append(px)
    return out


def canvas(skeleton: SkeletonFrame, size: tuple[int, int]) -> np.ndarray:
    """The skeleton's bodies on a blank picture of ``size`` (width, height): seen from the
    front on the left and from the side on the right (``orthographic_views``)."""
    width, height = size
    img = np.empty((height, width, 3), np.uint8)
    img[:] = CANVAS_COLOUR
    cv2.line(img, (width // 2, 0), (width // 2, height), DIVIDER_COLOUR, 1)
    floor = int(height - 0.06 * height)
    cv2.line(img, (0, floor), (width, floor), DIVIDER_COLOUR, 1)
    for label, x in (("front", 24), ("side", width // 2 + 24)):
        cv2.putText(img, label, (x, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.5, DIVIDER_COLOUR, 1,
                    cv2.LINE_AA)
    bodies = [to_canonical(skeleton.layout, b.joints, b.confidence) for b in skeleton.bodies]
    for (joints, conf), px in zip(bodies, orthographic_views(bodies, width, height)):
        n = len(joints)
        for view in (0, 1):
            draw_skeleton(img, px[view * n:(view + 1) * n], conf)
    return img


# --------------------------------------------------------------------------- composing


class PreviewComposer:
    """Pairs frames with their skeletons and decides what is shown (pure logic, no I/O).

    ``on_image`` / ``on_skeleton`` return the picture to show now, or None.
    """

    def __init__(self, hfov_deg: float = 60.0, hold_s: float = 0.3, keep_s: float = 1.0,
                 max_fps: float = 15.0, canvas_width: int = 640, canvas_height: int = 576):
        self.hfov_deg, self.hold_us, self.keep_us = hfov_deg, int(hold_s * 1e6), int(keep_s * 1e6)
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        # a Kinect's NFOV depth image is 640 x 576: its skeletons keep their proportions
        self.canvas_size = (int(canvas_width), int(canvas_height))
        self.frames: dict[str, deque[ImageFrame]] = {}
        self._last_skel_us: dict[str, int] = {}
        self._last_shown = -math.inf
        self.counters = {"images": 0, "skeletons": 0, "drawn": 0, "drawn_blank": 0,
                         "unmatched": 0, "shown": 0, "bad_skeletons": 0}

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last_shown < self.min_interval:
            return False
        self._last_shown = now
        self.counters["shown"] += 1
        return True

    def on_image(self, frame: ImageFrame) -> np.ndarray | None:
        self.counters["images"] += 1
        q = self.frames.setdefault(frame.source, deque())
        q.append(frame)
        while q and q[0].t_us < frame.t_us - self.keep_us:
            q.popleft()
        last = self._last_skel_us.get(frame.source)
        if last is not None and frame.t_us - last <= self.hold_us:
            return None  # skeletons are coming: wait for this frame's own
        return annotate(frame, None, self.hfov_deg) if self._due() else None

    def on_skeleton(self, skel: SkeletonFrame) -> np.ndarray | None:
        self.counters["skeletons"] += 1
        self._last_skel_us[skel.source] = skel.t_us
        q = self.frames.get(skel.source, deque())
        pictures = bool(q) and q[-1].t_us >= skel.t_us - self.keep_us
        match = next((f for f in q if f.t_us == skel.t_us), None) if pictures else None
        if pictures and match is None:
            self.counters["unmatched"] += 1
            return None
        if not self._due():
            return None
        try:
            if match is None:  # no pictures from this source (a depth camera)
                img = canvas(skel, self.canvas_size)
            else:
                img = annotate(match, skel, self.hfov_deg)
        except LayoutError as e:
            self.counters["bad_skeletons"] += 1
            log.warning("preview: %s", e)
            return None
        self.counters["drawn" if match is not None else "drawn_blank"] += 1
        return img


# --------------------------------------------------------------------------- HTTP


# An application served beside the pictures (the kiosk's pages): (method, path, body) → (status,
# content type, body), or None for the paths it leaves to the preview.
App = Callable[[str, str, bytes], "tuple[int, str, bytes] | None"]
MAX_POST_BYTES = 16 * 1024  # a form of a few short fields


class MjpegServer:
    """Serves the latest picture as an MJPEG stream, a snapshot and a page that shows it;
    ``app`` answers first, for the paths and POSTs of an application built on the preview."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8090, *, allow_remote: bool = False,
                 jpeg_quality: int = 80, app: App | None = None):
        check_bind_endpoint(f"tcp://{host}:{port}", allow_remote)
        self.jpeg_quality = jpeg_quality
        self.app = app  # may be set after the server starts (an app that reads its counters)
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._last: float | None = None  # monotonic time of the last picture
        self._seq = 0
        self._closing = False
        self._clients: set[socket.socket] = set()
        self.counters = {"published": 0, "served": 0, "clients": 0}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("preview http: " + fmt, *args)

            def _app(self, method: str, body: bytes) -> bool:
                got = (server.app(method, self.path.split("?", 1)[0], body) if server.app
                       else None)
                if got is not None:
                    self._send(*got)
                return got is not None

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                origin = self.headers.get("Origin")
                if origin is not None and origin != f"http://{self.headers.get('Host')}":
                    # another site's page in the kiosk's browser must not start sessions
                    self._send(403, "text/plain", b"cross-origin request refused\n")
                    return
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    n = -1
                if not 0 <= n <= MAX_POST_BYTES:
                    self._send(413 if n > 0 else 400, "text/plain",
                               b"a form of at most 16 KiB with its Content-Length\n")
                    return
                if not self._app("POST", self.rfile.read(n)):
                    self._send(404, "text/plain", b"not found\n")

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                path = self.path.split("?", 1)[0]
                if self._app("GET", b""):
                    return
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", PAGE)
                elif path == "/snapshot.jpg":
                    jpeg = server.latest()
                    if jpeg is None:
                        self._send(503, "text/plain", b"no picture yet\n")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                elif path == "/stream.mjpg":
                    server._stream(self)
                elif path == "/state.json":
                    self._send(200, "application/json", json.dumps(server.state()).encode())
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="mjpeg-http",
                                        daemon=True)
        self._thread.start()

    @property
    def watchers(self) -> int:
        with self._cond:
            return len(self._clients)

    def latest(self) -> bytes | None:
        with self._cond:
            return self._jpeg

    def state(self) -> dict:
        """What the page shows besides the picture: how long ago the last one came."""
        with self._cond:
            age = None if self._last is None else time.monotonic() - self._last
        return {"pictures": self.counters["published"], "age_s": age,
                "no_picture_s": NO_PICTURE_S}

    def publish_jpeg(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg = jpeg
            self._last = time.monotonic()
            self._seq += 1
            self.counters["published"] += 1
            self._cond.notify_all()

    def publish(self, image_bgr: np.ndarray) -> None:
        ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise ValueError(f"could not encode a {image_bgr.shape} picture as JPEG")
        self.publish_jpeg(buf.tobytes())

    def _stream(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "multipart/x-mixed-replace; boundary=" + BOUNDARY.decode())
        h.send_header("Cache-Control", "no-store")
        h.end_headers()
        with self._cond:
            self._clients.add(h.connection)
            self.counters["clients"] += 1
            seen = 0
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._closing or self._seq != seen, timeout=1.0)
                    if self._closing:
                        return
                    if self._seq == seen:
                        continue
                    jpeg, seen = self._jpeg, self._seq
                h.wfile.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                              + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                h.wfile.flush()
                with self._cond:
                    self.counters["served"] += 1
        except OSError:  # the browser went away
            pass
        finally:
            with self._cond:
                self._clients.discard(h.connection)

    def close(self) -> None:
        """Stop serving and drop every connected browser."""
        with self._cond:
            self._closing = True
            clients = list(self._clients)
            self._cond.notify_all()
        for c in clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- process


def run_preview(sub: Subscriber, server: MjpegServer, composer: PreviewComposer,
                stop: threading.Event, snapshot_period_s: float = 1.0,
                pub: Publisher | None = None, status: StatusReporter | None = None) -> None:
    """Show frames and skeletons from ``sub`` on ``server`` until ``stop`` is set. While no
    browser watches, a JPEG is still made every ``snapshot_period_s`` for ``/snapshot.jpg``.
    Status goes to ``pub`` every second (when given)."""
    last_pub = -math.inf

    def report(force: bool = False) -> None:
        if status is None:
            return
        status.absorb(sub)
        status.counters.update(composer.counters)
        status.counters.update({f"http_{k}": v for k, v in server.counters.items()})
        status.state["watchers"] = str(server.watchers)
        status.maybe_publish(pub, force=force)

    try:
        while not stop.is_set():
            report()
            got = sub.recv(100)
            if got is None:
                continue
            msg = got[1]
            if isinstance(msg, ImageFrame):
                img = composer.on_image(msg)
            elif isinstance(msg, SkeletonFrame):
                img = composer.on_skeleton(msg)
            else:
                continue
            now = time.monotonic()
            if img is not None and (server.watchers or now - last_pub >= snapshot_period_s):
                server.publish(img)
                last_pub = now
    finally:
        report(force=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subscribe", action="append", required=True,
                   help="endpoint publishing frames / skeletons (repeat for several)")
    p.add_argument("--source", default="", help="camera source name (default: every source)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--allow-remote", action="store_true", help="bind beyond loopback")
    p.add_argument("--hfov-deg", type=float, default=60.0,
                   help="camera field of view used to draw skeletons (as the pose estimator's)")
    p.add_argument("--max-fps", type=float, default=15.0)
    p.add_argument("--publish", default=None,
                   help="endpoint to publish this process's Status on (every second)")


def main(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    topics = [image_topic(args.source), skeleton_topic(args.source)]
    sub = Subscriber(args.subscribe, topics)
    server = MjpegServer(args.host, args.port, allow_remote=args.allow_remote)
    pub = Publisher(args.publish) if args.publish else None
    log.info("preview on %s", server.url)
    try:
        run_preview(sub, server, PreviewComposer(args.hfov_deg, max_fps=args.max_fps), stop,
                    pub=pub, status=StatusReporter("preview", "preview"))
    finally:
        server.close()
        sub.close()
        if pub is not None:
            pub.close()
    return 0
