"""Per-process counters and latency percentiles, published as Status once a second."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from .schema import Status, monotonic_us
from .transport import Publisher, Subscriber


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
