"""What every capture source is, and the loop that publishes its frames."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Iterator, Protocol

from streams.schema import ImageFrame, SkeletonFrame, monotonic_us
from streams.node import Pacer, StatusReporter
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


def _pump(source: Source, q: "queue.Queue", stop: threading.Event) -> None:
    """Read the source on its own thread: a device waiting to reconnect must not silence
    Status. The queue is small; a paced source simply waits here for the runner."""
    try:
        for frame in source.frames():
            while not stop.is_set():
                try:
                    q.put(frame, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    except Exception as e:  # the runner re-raises it, so the launcher restarts the process
        q.put(e)
        return
    q.put(_END)


_END = object()


def run_capture(source: Source, pub: Publisher, stop: threading.Event,
                status: StatusReporter, speed: float = 1.0) -> None:
    """Publish a source's frames until it ends or ``stop`` is set.

    The runner owns ``seq`` (consecutive per source, so a subscriber can count transport drops)
    and stamps ``host_us`` when the source left it at 0. ``speed`` scales paced sources
    (2.0 = twice real time, 0 = as fast as possible). Status goes out every second, also while
    the source yields nothing (an unplugged camera shows ``camera: offline``).
    """
    seq = 0
    pacer = Pacer(speed if source.paced else 0.0)
    q: queue.Queue = queue.Queue(maxsize=8)
    done = threading.Event()
    reader = threading.Thread(target=_pump, args=(source, q, done), daemon=True,
                              name=f"source-{source.name}")
    reader.start()

    def report(force: bool = False) -> None:
        status.state.update(source.state)
        for k, v in getattr(source, "counters", {}).items():
            status.counters[f"source.{k}"] = v
        status.maybe_publish(pub, force=force)

    try:
        while not stop.is_set():
            try:
                frame = q.get(timeout=0.5)
            except queue.Empty:
                report()
                continue
            if frame is _END:
                log.info("source %s ended", source.name)
                break
            if isinstance(frame, Exception):
                raise frame
            if not pacer.wait(frame.t_us, stop):
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
            report()
    finally:
        done.set()  # ends the reader thread's wait
        source.close()  # safe from any thread; ends a device's reconnection wait at once
        report(force=True)
        reader.join(2.0)
