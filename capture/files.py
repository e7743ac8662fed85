"""A recording file played as a capture source: SkeletonFrames at the file's own timestamps."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from streams.schema import Body, SkeletonFrame
from streams.skeletons import CANONICAL, LAYOUTS

from .readers import Recording, load_recording

log = logging.getLogger(__name__)


class FileSource:
    """Publishes one recording (C3D, TRC, Kinect v1 text) like a live camera with one body.

    Frames carry the recording's timestamps (source clock); the runner stamps seq and host_us.
    The body is sent in the recording's own layout when streams.skeletons knows it (e.g. Kinect
    v1 files go out as kinect_v1_20), otherwise as canonical22.

    ``speed``: 1.0 leaves pacing to the runner (``paced`` True, frames leave at their
    timestamps); another positive value makes the source pace itself at that multiple of real
    time, and 0 sends as fast as possible (``paced`` False in both cases, so the runner does not
    pace twice). ``loop`` starts over with timestamps that keep increasing. Other options go to
    :func:`capture.readers.load_recording`.
    """

    def __init__(self, name: str, path: str | Path, loop: bool = False, speed: float = 1.0,
                 **opts: Any) -> None:
        if speed < 0:
            raise ValueError(f"file source {name!r}: speed must be >= 0, got {speed}")
        self.name = name
        self.path = Path(path)
        self.loop = bool(loop)
        self.speed = float(speed)
        self.paced = self.speed == 1.0
        self.state: dict[str, str] = {"file": "opening"}
        self._stop = threading.Event()
        self.recording: Recording = load_recording(self.path, **opts)
        rec = self.recording
        if rec.raw_layout and rec.raw_layout in LAYOUTS and rec.raw_joints is not None:
            self.layout = rec.raw_layout
            self._joints, self._conf = rec.raw_joints, rec.raw_confidence
        else:
            self.layout = CANONICAL
            self._joints, self._conf = rec.joints, rec.confidence
        self._joints = np.ascontiguousarray(self._joints, dtype=np.float32)
        self._conf = np.ascontiguousarray(self._conf, dtype=np.float32)
        self.state = {"file": "ready"}
        log.info("file source %s: %s, %d frames, %.1f s, layout %s", name, self.path.name,
                 rec.n_frames, rec.duration_s, self.layout)

    def frames(self) -> Iterator[SkeletonFrame]:
        rec = self.recording
        t = rec.t_us
        # one loop lasts the recording plus one median frame interval, so timestamps never repeat
        step = int(np.median(np.diff(t))) if len(t) > 1 else 33_333
        period = int(t[-1] - t[0]) + step
        offset = 0
        self.state["file"] = "playing"
        t0_host: float | None = None
        t0_src = 0
        while not self._stop.is_set():
            for i in range(len(t)):
                if self._stop.is_set():
                    break
                ts = int(t[i]) + offset
                if not self.paced and self.speed > 0:
                    if t0_host is None:
                        t0_host, t0_src = time.monotonic(), ts
                    delay = t0_host + (ts - t0_src) / 1e6 / self.speed - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                yield SkeletonFrame(source=self.name, seq=0, t_us=ts, host_us=0,
                                    layout=self.layout,
                                    bodies=[Body(0, self._joints[i].copy(), self._conf[i].copy())])
            if not self.loop:
                break
            offset += period
        self.state["file"] = "ended"

    def close(self) -> None:
        self._stop.set()
        if self.state.get("file") != "ended":
            self.state["file"] = "closed"
