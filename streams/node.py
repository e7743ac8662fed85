"""What every pipeline process needs around its loop: a stop event set by SIGINT/SIGTERM, and
per-process counters and latency percentiles published as Status once a second.

Every stage is ``run_X(..., sub, pub, stop, status)`` with ``stop`` from
:func:`install_stop_handlers` and ``status`` a :class:`StatusReporter`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from typing import Callable

import numpy as np

from streams.schema import Status, monotonic_us
from streams.transport import Publisher, Subscriber

log = logging.getLogger(__name__)


def install_stop_handlers() -> threading.Event:
    """An event that SIGINT and SIGTERM set: the process finishes its in-flight item and stops."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


class FloodFilter(logging.Filter):
    """Lets one record of each kind (logger and message template) through per ``interval_s``,
    and says on the next one let through how many like it were held back: a flood of bad input
    (a traceback per bad image, a warning per bad message) must not bury the log or fill a
    disk, and nothing is hidden without a count."""

    def __init__(self, interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._next: dict[tuple[str, object], float] = {}
        self._held: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        now = self.clock()
        if now < self._next.get(key, 0.0):
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._next[key] = now + self.interval_s
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.interval_s:.0f} s]"
        if len(self._next) > 10_000:  # made-up message texts must not grow the filter
            self._next.clear()
        return True


_native_stderr_silenced = False


def silence_native_stderr() -> None:
    """Keep native libraries' own log lines (MediaPipe's absl, TensorFlow Lite) off the console:
    they write to file descriptor 2 directly. Python's stderr (logging, tracebacks) moves to a
    copy of it first, so only theirs goes. Only in a ``gaitstream`` process without ``-v`` (the
    command line sets GAITSTREAM_QUIET_NATIVE for itself and the processes it starts), while
    Python's stderr is that descriptor, and once per process."""
    global _native_stderr_silenced
    if _native_stderr_silenced or os.environ.get("GAITSTREAM_QUIET_NATIVE") != "1":
        return
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):  # captured (tests) or replaced: leave it
        return
    _native_stderr_silenced = True
    sys.stderr.flush()
    ours = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding,
                     errors="backslashreplace")
    for h in logging.getLogger().handlers:  # handlers bound to the old stderr follow it
        if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr:
            h.setStream(ours)
    sys.stderr = ours
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


class Drain:
    """Whether a stage goes on: until ``stop``, then for as long as its input keeps coming.

    The launcher stops the stages in flow order, each once the one before it has exited, so what
    a stage is still to get is already queued or on the wire: it keeps taking input until none
    has come for ``quiet_s`` (at most ``limit_s`` after the stop). A file replayed flat out thus
    loses no record to shutdown, however far behind the worker is."""

    def __init__(self, stop: threading.Event, sub: Subscriber, limit_s: float = 0.0,
                 quiet_s: float = 0.5):
        self.stop, self.sub, self.limit_s, self.quiet_s = stop, sub, limit_s, quiet_s
        self._stopped_at: float | None = None
        self._last_input = 0.0
        self._received = 0

    def __call__(self) -> bool:
        if not self.stop.is_set():
            return True
        now = time.monotonic()
        received = self.sub.counters.received
        if self._stopped_at is None:
            self._stopped_at = self._last_input = now
            self._received = received
        elif received != self._received:
            self._last_input, self._received = now, received
        return (now - self._last_input < self.quiet_s
                and now - self._stopped_at < self.limit_s)


class Pacer:
    """Holds timestamped items to their time: an item stamped ``t_us`` is due when
    ``(t_us - origin_us) / speed`` has passed since the host's anchor time. ``speed`` 1 is real
    time, 2 twice as fast, 0 as fast as possible. The origin is the first item's time unless set
    (a replay from a start offset sets it); the anchor is when the origin was taken."""

    def __init__(self, speed: float = 1.0, origin_us: int | None = None):
        self.speed = speed
        self.origin_us = origin_us
        self.anchor = time.monotonic()

    def wait(self, t_us: int, stop: threading.Event) -> bool:
        """Wait until the item at ``t_us`` is due; False if ``stop`` was set meanwhile."""
        if self.speed <= 0:
            return True
        if self.origin_us is None:
            self.origin_us, self.anchor = t_us, time.monotonic()
        delay = self.anchor + (t_us - self.origin_us) / 1e6 / self.speed - time.monotonic()
        return not (delay > 0 and stop.wait(delay))


class StatusReporter:
    """Counts what a process does and publishes it; cheap enough for the per-frame path."""

    def __init__(self, process: str, role: str, period_s: float = 1.0, window: int = 2048):
        self.process = process
        self.role = role
        self.period_s = period_s
        self.counters: dict[str, float] = defaultdict(float)
        self.state: dict[str, str] = {}
        self._lat = np.zeros(window, dtype=np.float64)
        self._nlat = 0
        self._start = time.monotonic()
        self._next = self._start
        self._seq = 0

    def count(self, name: str, n: float = 1) -> None:
        self.counters[name] += n

    def latency_us(self, host_us: int) -> None:
        """Record input-to-output latency of one item that entered the pipeline at ``host_us``."""
        self._lat[self._nlat % len(self._lat)] = (monotonic_us() - host_us) / 1000.0
        self._nlat += 1

    def latency_since(self, host_us: int, now_us: int, max_s: float = 3600.0) -> bool:
        """Record ``now_us - host_us`` as a latency when it is one of this pipeline's: a host
        time in the future or more than ``max_s`` back comes from another clock (a replayed
        recording, another machine) and is left out (False)."""
        ms = (now_us - host_us) / 1000.0
        if not 0.0 <= ms <= max_s * 1000.0:
            return False
        self._lat[self._nlat % len(self._lat)] = ms
        self._nlat += 1
        return True

    def absorb(self, sub: Subscriber) -> None:
        """Copy a subscriber's counters (received, rejected, upstream gaps) into this status."""
        c = sub.counters
        self.counters["received"] = c.received
        self.counters["rejected"] = c.rejected
        self.counters["dropped_upstream"] = c.gaps
        if c.seq_jumps:
            self.counters["seq_jumps"] = c.seq_jumps
        for reason, n in c.reasons.items():  # what was refused, by reason (bounded: MAX_REASONS)
            self.counters[f"rejected.{reason}"] = n

    def snapshot(self) -> Status:
        n = min(self._nlat, len(self._lat))
        lat = {}
        if n:
            p50, p99 = np.percentile(self._lat[:n], [50, 99])
            lat = {"p50": float(p50), "p99": float(p99), "max": float(self._lat[:n].max())}
        now_us = monotonic_us()
        self._seq += 1
        return Status(source=self.process, seq=self._seq, t_us=now_us, host_us=now_us,
                      process=self.process, role=self.role,
                      uptime_s=time.monotonic() - self._start, counters=dict(self.counters),
                      latency_ms=lat, state=dict(self.state))

    def maybe_publish(self, pub: Publisher | None, force: bool = False) -> Status | None:
        now = time.monotonic()
        if not force and now < self._next:
            return None
        self._next = now + self.period_s
        st = self.snapshot()
        if pub is not None:
            pub.send(st)
        return st


_libc_trim: Callable[[int], int] | None | bool = False  # False: not looked up yet


def give_memory_back() -> bool:
    """Hand freed heap memory back to the operating system (glibc's ``malloc_trim``).

    Freed blocks under glibc's mmap threshold (128 KiB: a track's buffers, decoded messages) stay
    in the process's heap after Python and numpy free them, so a worker that held a thousand
    tracks for a moment keeps their memory for good. Call it after freeing much at once; it costs
    about a millisecond. False where the C library has no such call (musl, macOS)."""
    global _libc_trim
    if _libc_trim is False:
        try:
            import ctypes

            _libc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _libc_trim = None
    if _libc_trim is None:
        return False
    _libc_trim(0)
    return True
