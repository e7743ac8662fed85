"""What every capture source is, and the loop that publishes its frames."""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterator, Protocol

from streams.schema import ImageFrame, SkeletonFrame, monotonic_us
from streams.status import StatusReporter
from streams.transport import Publisher

log = logging.getLogger(__name__)


class Source(Protocol):
    """A camera, a simulator or a file. ``paced`` sources (files, sim) are released at their
    timestamps by the runner; live devices pace themselves. ``state`` goes into Status
    (e.g. ``{"camera": "offline"}``) so that alert rules can act on it."""

    name: str
    paced: bool
    state: dict[str, str]

    def frames(self) -> Iterator[SkeletonFrame | ImageFrame]: ...

    def close(self) -> None: ...


def run_capture(source: Source, pub: Publisher, stop: threading.Event,
                status: StatusReporter, speed: float = 1.0) -> None:
    """Publish a source's frames until it ends or ``stop`` is set.

    The runner owns ``seq`` (consecutive per source, so a subscriber can count transport drops)
    and stamps ``host_us`` when the source left it at 0. ``speed`` scales paced sources
    (2.0 = twice real time, 0 = as fast as possible).
    """
    seq = 0
    t0_src: int | None = None
    t0_host = 0.0
    frames = source.frames()
    try:
        while not stop.is_set():
            try:
                frame = next(frames)
            except StopIteration:
                log.info("source %s ended", source.name)
                break
            if source.paced and speed > 0:
                if t0_src is None:
                    t0_src, t0_host = frame.t_us, time.monotonic()
                due = t0_host + (frame.t_us - t0_src) / 1e6 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                    if stop.is_set():
                        break
            seq += 1
            frame.seq = seq
            if not frame.host_us:
                frame.host_us = monotonic_us()
            if pub.send(frame):
                status.count("published")
            else:
                status.count("send_failed")
            status.latency_us(frame.host_us)
            status.state.update(source.state)
            status.maybe_publish(pub)
    finally:
        status.state.update(source.state)
        status.maybe_publish(pub, force=True)
        source.close()
