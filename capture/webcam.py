"""A webcam, a network camera or a video file as a source of ImageFrames (OpenCV VideoCapture).

What it opens (``device``, or the more readable ``path`` / ``url`` in a configuration):

* an integer (or digits): a local camera. ``paced=False``: the camera paces itself. Timestamps
  are the host's monotonic clock (µs) when the frame was grabbed: OpenCV does not expose a
  device clock portably, and the host clock is what every other process compares against.
* a URL (``rtsp://``, ``http://`` MJPEG, ...): a network camera, paced and stamped like a device
  (stream timestamps are often absent or garbage through OpenCV).
* a file path: a recorded video. ``paced=True``: the runner releases frames at the file's own
  timestamps (``CAP_PROP_POS_MSEC``), or as fast as possible with the runner's ``speed = 0``.
  Frame timestamps come from the file, so a replay gives the same timestamps every time.

``width`` / ``height`` / ``fps`` are asked of a camera (the driver may refuse: the frames' real
size is what is published, and a refusal is logged); for files and streams, frames are resized
and decimated instead. ``fourcc`` (e.g. ``"MJPG"``) picks the camera's compression, which many
USB cameras need for 1080p at 30 fps.

When a camera or stream goes away (unplugged, network down, read failure), ``state["camera"]``
becomes ``"offline"`` and it is reopened with exponential backoff (``backoff_initial_s`` doubling
up to ``backoff_max_s``, reset once frames flow again); ``close()`` interrupts the wait. With
``reconnect=False`` the source ends instead.

Frames leave as ``ImageFrame`` (bgr8, or gray8 for a mono camera) with OpenCV's buffer attached as
is: the transport sends it as its own ZeroMQ frame without copying. OpenCV gives a new buffer for
every ``retrieve``, so a frame still queued in ZeroMQ is never overwritten.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Iterator

import numpy as np

from streams.extras import require
from streams.schema import ImageFrame, monotonic_us

cv2 = require("cv2", "the webcam source")

log = logging.getLogger(__name__)

OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000


def _parse_target(device: int | str | None, path: str | None, url: str | None
                  ) -> tuple[str, int | str]:
    given = [(k, v) for k, v in (("device", device), ("path", path), ("url", url))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"webcam: give exactly one of device, path, url (got "
                         f"{[k for k, _ in given] or 'none'})")
    kind, value = given[0]
    if kind == "device":
        if isinstance(value, bool):
            raise ValueError(f"webcam device {value!r}: expected an index, a path or a URL")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return "device", int(value)
        kind = "url" if "://" in str(value) else "path"
    if kind == "url":
        if "://" not in str(value):
            raise ValueError(f"webcam url {value!r}: expected scheme://...")
        return "url", str(value)
    if not os.path.isfile(str(value)):
        raise ValueError(f"webcam path {value!r}: no such video file")
    return "path", str(value)


class WebcamSource:
    """See the module docstring. ``opener`` replaces ``cv2.VideoCapture`` (tests of device
    failures that cannot be produced with real hardware here)."""

    def __init__(self, name: str, device: int | str | None = None, *, path: str | None = None,
                 url: str | None = None, width: int | None = None, height: int | None = None,
                 fps: float | None = None, fourcc: str | None = None, reconnect: bool = True,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 10.0,
                 opener: Callable[..., Any] | None = None):
        if device is None and path is None and url is None:
            device = 0
        self.name = name
        self.kind, self.target = _parse_target(device, path, url)
        self.paced = self.kind == "path"
        self.state: dict[str, str] = {"camera": "offline"}
        if (width is None) != (height is None):
            raise ValueError("webcam: give both width and height, or neither")
        if width is not None and not (0 < width <= 16384 and 0 < height <= 16384):
            raise ValueError(f"webcam: size {width}x{height} out of range")
        if fps is not None and not 0 < fps <= 1000:
            raise ValueError(f"webcam: fps {fps} out of range")
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"webcam: fourcc {fourcc!r} must be 4 characters")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("webcam: need 0 < backoff_initial_s <= backoff_max_s")
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.reconnect = reconnect
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self._opener = opener or cv2.VideoCapture
        self._cap: Any = None
        self._closed = threading.Event()
        self._reader: int | None = None  # thread running frames(), which owns the capture
        self.counters = {"frames": 0, "opens": 0, "open_failures": 0, "read_failures": 0,
                         "decimated": 0, "timestamp_repairs": 0}

    # ------------------------------------------------------------------ opening

    def _open(self) -> bool:
        self.counters["opens"] += 1
        if self.kind == "device":
            cap = self._opener(self.target)
        else:
            cap = self._opener(self.target, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS,
                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS])
        if not cap.isOpened():
            cap.release()
            self.counters["open_failures"] += 1
            return False
        if self.kind == "device":
            self._configure_device(cap)
        self._cap = cap
        return True

    def _configure_device(self, cap: Any) -> None:
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        if self.width is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
               cap.get(cv2.CAP_PROP_FPS))
        if (self.width is not None and got[:2] != (self.width, self.height)) or (
                self.fps is not None and abs(got[2] - self.fps) > 0.5):
            log.warning("%s: camera gives %dx%d at %.1f fps (asked %sx%s at %s)", self.name,
                        got[0], got[1], got[2], self.width, self.height, self.fps)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _go_offline(self, why: str, backoff: float) -> bool:
        """Mark offline and wait ``backoff``; False when the source should end instead."""
        self._release()
        if self.state.get("camera") != "offline":
            log.warning("%s: camera offline (%s)", self.name, why)
        self.state["camera"] = "offline"
        if not self.reconnect or self.kind == "path":
            return False
        log.info("%s: retrying in %.1f s", self.name, backoff)
        return not self._closed.wait(backoff)

    # ------------------------------------------------------------------ frames

    def frames(self) -> Iterator[ImageFrame]:
        self._reader = threading.get_ident()
        try:
            yield from self._frames()
        finally:
            self._release()
            self._reader = None

    def _frames(self) -> Iterator[ImageFrame]:
        backoff = self.backoff_initial_s
        last_t: int | None = None
        next_due: int | None = None
        while not self._closed.is_set():
            if self._cap is None:
                if not self._open():
                    if not self._go_offline(f"cannot open {self.target!r}", backoff):
                        return
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
            if not self._cap.grab():
                if self.kind == "path":
                    log.info("%s: end of %s", self.name, self.target)
                    return
                self.counters["read_failures"] += 1
                if not self._go_offline("read failed", backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            grabbed_us = monotonic_us()
            ok, img = self._cap.retrieve()
            if not ok or img is None:
                self.counters["read_failures"] += 1
                continue
            if self.state.get("camera") != "online":
                log.info("%s: camera online", self.name)
                self.state["camera"] = "online"
            backoff = self.backoff_initial_s
            t_us = grabbed_us if self.kind != "path" else self._file_time(last_t)
            if last_t is not None and t_us <= last_t:
                t_us = last_t + 1  # a clock that stood still: keep timestamps increasing
                self.counters["timestamp_repairs"] += 1
            last_t = t_us
            if self.fps is not None and self.kind != "device":
                if next_due is not None and t_us < next_due:
                    self.counters["decimated"] += 1
                    continue
                next_due = t_us + int(round(1e6 / self.fps)) - 1000  # 1 ms slack for jitter
            yield self._image_frame(img, t_us, grabbed_us)

    def _file_time(self, last_t: int | None) -> int:
        ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if np.isfinite(ms) and ms >= 0 and (last_t is None or ms * 1000 > last_t):
            return int(round(ms * 1000))
        rate = self._cap.get(cv2.CAP_PROP_FPS)
        step = int(round(1e6 / rate)) if np.isfinite(rate) and rate > 0 else 33_333
        self.counters["timestamp_repairs"] += 1
        return (last_t + step) if last_t is not None else 0

    def _image_frame(self, img: np.ndarray, t_us: int, grabbed_us: int) -> ImageFrame:
        if self.width is not None and self.kind != "device" and (
                img.shape[1], img.shape[0]) != (self.width, self.height):
            img = cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img)
        enc = "gray8" if img.ndim == 2 or img.shape[2] == 1 else "bgr8"
        self.counters["frames"] += 1
        # a file's frames get their host time when the runner releases them
        host = grabbed_us if self.kind != "path" else 0
        return ImageFrame(source=self.name, seq=0, t_us=t_us, host_us=host, width=img.shape[1],
                          height=img.shape[0], encoding=enc).attach(img)

    def close(self) -> None:
        """Stop: ends ``frames()`` (also while it waits to reconnect) and frees the camera.
        From another thread than the reader's, the reader frees it when its current read
        returns (bounded by the read timeout), never under its feet."""
        self._closed.set()
        if self._reader is None or self._reader == threading.get_ident():
            self._release()
