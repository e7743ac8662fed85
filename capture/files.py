"""Files played as capture sources: a recording (C3D, TRC, Kinect text, ...) as SkeletonFrames at
the file's own timestamps, and a stream file (``gaitstream record``) as the frames it recorded."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from streams.schema import Body, ImageFrame, SkeletonFrame, WireError, decode
from streams.streamfile import StreamReader

from capture.readers import Recording, load_recording

log = logging.getLogger(__name__)


class FileSource:
    """Publishes one recording (C3D, TRC, Kinect v1 text) like a live camera with one body.

    Frames carry the recording's timestamps (source clock); the runner stamps seq and host_us.
    The body is sent in the recording's own layout when streams.skeletons knows it (e.g. Kinect
    v1 files go out as kinect_v1_20), otherwise as canonical22.

    The runner paces it (``paced``: frames leave at their timestamps, times the capture
    process's ``speed``). ``loop`` starts over with timestamps that keep increasing. Other options
    go to :func:`capture.readers.load_recording`.
    """

    paced = True

    def __init__(self, name: str, path: str | Path, loop: bool = False, **opts: Any) -> None:
        self.name = name
        self.path = Path(path)
        self.loop = bool(loop)
        self.state: dict[str, str] = {"file": "opening"}
        self._stop = threading.Event()
        self.recording: Recording = load_recording(self.path, **opts)
        rec = self.recording
        self.layout, self._joints, self._conf = rec.wire_skeleton()
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
        while not self._stop.is_set():
            for i in range(len(t)):
                if self._stop.is_set():
                    break
                ts = int(t[i]) + offset
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


class StreamFileSource:
    """A stream file (``gaitstream record``): the recorded skeleton and camera frames published
    again at their recorded timestamps, as the live camera published them."""

    paced = True

    def __init__(self, name: str, path: str, source: str | None = None, loop: bool = False):
        """``source``: replay only this recorded source (default: every recorded camera); frames
        keep their recorded source name, so the records match the live run's."""
        self.name = name
        self.path = Path(path)
        self.only = source
        self.loop = loop
        self.state: dict[str, str] = {"file": self.path.name}
        self.counters = {"frames": 0, "undecodable": 0}
        StreamReader(self.path)  # fail now, with the reason, if it is no stream file

    def frames(self) -> Iterator[SkeletonFrame | ImageFrame]:
        offset = 0
        while True:
            first = last = None
            for rec in StreamReader(self.path):
                if not rec.frames[0].startswith((b"skel/", b"img/")):
                    continue
                try:
                    msg = decode(rec.frames[1], image=rec.frames[2] if len(rec.frames) > 2
                                 else None)
                except WireError as e:
                    self.counters["undecodable"] += 1
                    log.warning("%s: skipping a record: %s", self.path.name, e)
                    continue
                if self.only and msg.source != self.only:
                    continue
                if first is None:
                    first = msg.t_us
                last = msg.t_us
                msg.t_us += offset
                msg.host_us = 0  # latency starts again at this replay
                self.counters["frames"] += 1
                yield msg
            if not self.loop or last is None:
                return
            offset += last - first + 33_333  # a loop keeps time increasing

    def close(self) -> None:
        pass
