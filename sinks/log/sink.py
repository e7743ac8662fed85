"""The logging sink: every cycle, event, alert and (thinned) status into a store, in small
batches, without losing what reached it.

A message has *reached the log* when the batch holding it was committed: batches close after
``batch_max`` records or ``batch_ms`` milliseconds, whichever comes first, so a sink killed with
SIGKILL loses at most the last ``batch_ms`` ms (at most ``batch_max`` records) of messages it had
received but not committed. Those are not lost silently: the sequence bookkeeping committed with
the data makes the restarted sink count them, together with everything published while it was
down, as a gap (see :mod:`sinks.log.gaps`).

When the store cannot take a batch (locked, disk full, server down) the batch stays in memory,
the sink retries with exponential backoff and keeps receiving; past ``max_pending`` records it
stops reading, so ZeroMQ's high-water mark drops upstream instead, and those drops come back as
counted gaps once writing works again.

Statuses arrive every second from every process; the log keeps one per process every
``status_every_s`` seconds (and every one whose ``state`` changed), while the upstream-drop
counter of every status is accounted as gaps.

The sink's own Status carries ``latency_ms`` (p50 / p99 / max over the last 2048 records): from
a cycle's or event's ``host_us`` (the host's monotonic time when the frame that completed it
entered the pipeline) to the commit that stored it, batching and retries included. Records whose
host time is not this host's recent past (a replayed file, a worker on another machine) are
counted as ``latency_unknown`` instead.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, fields
from typing import Any, Callable

from streams.schema import Message, Status, monotonic_us
from streams.node import StatusReporter
from streams.options import check_keys, check_types

from sinks.log.records import Record, to_record, wall_us
from sinks.log import open_store
from sinks.log.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

STORES = ("sqlite", "postgresql", "jsonl")
WRITE_CHUNK = 5000  # records per transaction when catching up after an outage


@dataclass
class LogSinkConfig:
    store: str = "sqlite"  # sqlite | postgresql | jsonl
    path: str = "gaitstream.db"  # sqlite / jsonl file (relative: to [pipeline].data_dir)
    dsn: str = ""  # postgresql://user@host:port/db
    batch_max: int = 200
    batch_ms: float = 200.0
    busy_timeout_s: float = 1.0  # sqlite: wait this long for a lock before backing off
    synchronous: str = "FULL"  # sqlite: FULL = each commit on disk before it returns
    status_every_s: float = 10.0
    max_pending: int = 100_000
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "LogSinkConfig":
        check_keys("log sink options", options, {f.name for f in fields(cls)})
        check_types("log sink options", options, cls)
        cfg = cls(**options)
        if cfg.store not in STORES:
            raise ValueError(f"log sink store {cfg.store!r} not one of {STORES}")
        if cfg.store == "postgresql" and not cfg.dsn:
            raise ValueError("log sink store 'postgresql' needs dsn = 'postgresql://...'")
        if cfg.store == "jsonl" and not cfg.path.endswith(".jsonl"):
            raise ValueError(f"log sink store 'jsonl' needs a path ending in .jsonl, "
                             f"got {cfg.path!r}")
        if cfg.batch_max < 1 or cfg.batch_ms <= 0 or cfg.max_pending < cfg.batch_max:
            raise ValueError("log sink: need batch_max >= 1, batch_ms > 0, "
                             "max_pending >= batch_max")
        return cfg

    def open(self, resolve: Callable[[str], Any] = str) -> Store:
        if self.store == "postgresql":
            return open_store(self.dsn, "postgresql")
        if self.store == "jsonl":
            return open_store(resolve(self.path), "jsonl")
        return open_store(resolve(self.path), "sqlite", busy_timeout_s=self.busy_timeout_s,
                          synchronous=self.synchronous)


class LogSink:
    """Batches records and commits them; ``handle`` never blocks on the database."""

    def __init__(self, store: Store, cfg: LogSinkConfig, status: StatusReporter,
                 session: str = "", clock: Callable[[], float] = time.monotonic):
        self.store, self.cfg, self.status, self.session, self.clock = (store, cfg, status,
                                                                       session, clock)
        self.pending: list[Record] = []
        self.oldest = 0.0
        self.next_try = 0.0
        self.failures = 0
        self._status_kept: dict[str, tuple[float, dict]] = {}
        self._last_error_log = -1e9
        status.state["store"] = f"{store.kind}: ok"

    def handle(self, topic: str, msg: Message, keep: bool = False) -> None:
        """Queue a message's record; ``keep`` stores a Status the thinning would skip."""
        now = self.clock()
        store_status = True
        if isinstance(msg, Status) and not keep:
            proc = msg.process or msg.source
            kept = self._status_kept.get(proc)
            store_status = (kept is None or now - kept[0] >= self.cfg.status_every_s
                            or kept[1] != msg.state)
            if store_status:
                self._status_kept[proc] = (now, dict(msg.state))
        rec = to_record(msg, wall_us(), self.session, store_status=store_status)
        if rec is None or (rec.table is None and rec.drop_counter is None):
            return
        if not self.pending:
            self.oldest = now
        self.pending.append(rec)
        self.status.counters["pending"] = len(self.pending)

    @property
    def backlogged(self) -> bool:
        """True when the sink should stop reading until the store catches up."""
        return len(self.pending) >= self.cfg.max_pending

    def flush(self, force: bool = False) -> bool:
        """Commit what is due; returns True when nothing is left pending."""
        if not self.pending:
            return True
        now = self.clock()
        if now < self.next_try:
            return False
        if not force and len(self.pending) < self.cfg.batch_max and \
                now - self.oldest < self.cfg.batch_ms / 1000.0:
            return False
        chunk = self.pending[:WRITE_CHUNK]
        try:
            res = self.store.write(chunk)
        except StoreUnavailable as e:
            self.failures += 1
            delay = min(self.cfg.retry_max_s, self.cfg.retry_initial_s * 2 ** (self.failures - 1))
            self.next_try = now + delay
            self.status.count("write_errors")
            self.status.state["store"] = f"{self.store.kind}: retrying: {e}"[:200]
            if now - self._last_error_log >= 5.0 or self.failures == 1:
                self._last_error_log = now
                log.warning("store unavailable (%d pending records kept, attempt %d, retry in "
                            "%.1f s): %s", len(self.pending), self.failures, delay, e)
            return False
        del self.pending[:len(chunk)]
        committed_us = monotonic_us()
        refused = {id(r) for r, _ in res.rejected}
        for rec in chunk:
            if rec.table in ("cycles", "events") and id(rec) not in refused and \
                    not self.status.latency_since(
                    rec.row["host_us"], committed_us):
                self.status.count("latency_unknown")
        if self.failures:
            log.info("store back after %d failed attempts", self.failures)
        self.failures = 0
        self.next_try = 0.0
        self.oldest = now
        c = self.status.counters
        c["written"] += res.written
        for t, n in res.inserted.items():
            c[f"written.{t}"] += n
        c["duplicates"] += res.duplicates
        c["gaps"] += sum(g.count for g in res.gaps)
        c["pending"] = len(self.pending)
        for rec, reason in res.rejected:
            c["rejected_db"] += 1
            log.error("the database refused a %s record from %s seq %d: %s", rec.table,
                      rec.source, rec.seq, reason)
        for g in res.gaps:
            log.warning("gap: %d %s message(s) from %s never arrived (seq %d..%d)", g.count,
                        g.stream, g.source, g.first_seq, g.last_seq)
        self.status.state["store"] = f"{self.store.kind}: ok"
        return not self.pending

    def close(self, timeout_s: float = 3.0) -> int:
        """Commit what is pending (retrying up to ``timeout_s``); returns records not stored."""
        end = self.clock() + timeout_s
        while not self.flush(force=True) and self.clock() < end:
            time.sleep(min(0.05, max(0.0, self.next_try - self.clock())))
        lost = len(self.pending)
        if lost:
            log.error("stopping with %d records that could not be stored: %s", lost,
                      json.dumps(self.status.state.get("store", "")))
        self.store.close()
        return lost
