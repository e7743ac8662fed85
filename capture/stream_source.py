"""A stream file (``gaitstream record``) as a capture source: the recorded skeleton and camera
frames are published again at their recorded timestamps, as the live camera published them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from streams.recording import StreamReader
from streams.schema import ImageFrame, SkeletonFrame, WireError, decode

log = logging.getLogger(__name__)


class StreamFileSource:
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
