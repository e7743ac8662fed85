"""The sink processes the launcher runs: ``[[process]] kind = "sink"``.

``options.sink`` picks the sink: ``"log"`` (default; the other options are
:class:`sinks.log.sink.LogSinkConfig` fields) or ``"alert"`` (rules and outputs come from the
configuration's ``[alerts]`` table, see :mod:`sinks.alerts.sink`). Both publish Status once a second
on their ``publish`` endpoint when they have one: counters received / rejected (from the
subscriber), written, duplicates, gaps, write_errors, pending (log) or cycles, alerts_raised,
alerts_cleared, delivered.<output>, delivery_failures.<output> (alert); and latency_ms
p50 / p99 / max from a record's host time to its commit (log: cycles and events stored; alert:
alerts raised by cycles, committed to the outbox).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from streams.node import Drain, StatusReporter
from streams.transport import Publisher, Subscriber

from sinks.alerts.outbox import disk_full
from sinks.alerts.sink import DISK_FULL_SAY_EVERY_S, HELD_RETRY_MAX_S, AlertsConfig, AlertSink
from sinks.log.sink import LogSink, LogSinkConfig

log = logging.getLogger(__name__)

SINK_KINDS = ("log", "alert")
MAX_DRAIN = 1000  # messages taken per loop turn before flushing and publishing Status


def _drain(sub: Subscriber, handle: Callable[[str, Any], None], timeout_ms: int) -> None:
    got = sub.recv(timeout_ms)
    n = 0
    while got is not None:
        handle(*got)
        n += 1
        if n >= MAX_DRAIN:
            break
        got = sub.recv(0)


def run_log_sink(cfg: LogSinkConfig, sub: Subscriber, pub: Publisher | None,
                 stop: threading.Event, status: StatusReporter, session: str = "",
                 resolve: Callable[[str], Any] = str, drain_s: float = 0.0) -> int:
    """Store what the subscriber delivers until ``stop`` and what still arrives after it (at most
    ``drain_s``); returns records it could not store."""
    sink = LogSink(cfg.open(resolve), cfg, status, session)
    log.info("log sink: %s store, batches of %d / %.0f ms", sink.store.kind, cfg.batch_max,
             cfg.batch_ms)
    go = Drain(stop, sub, drain_s)
    try:
        while go():
            if sink.backlogged:
                time.sleep(0.05)  # let ZeroMQ drop upstream: those become counted gaps
            else:
                _drain(sub, sink.handle, 50)
            sink.flush()
            status.absorb(sub)
            st = status.maybe_publish(pub)
            if st is not None:
                sink.handle("status", st)  # the log keeps the sink's own health too
    finally:
        status.absorb(sub)
        # the last Status holds the final counters: the log keeps it whatever the thinning says
        sink.handle("status", status.snapshot(), keep=True)
        lost = sink.close()
        status.maybe_publish(pub, force=True)
    return lost


def run_alert_sink(name: str, cfg: AlertsConfig, sub: Subscriber, pub: Publisher | None,
                   stop: threading.Event, status: StatusReporter,
                   resolve: Callable[[str], Any] = str, drain_s: float = 0.0,
                   deliver_s: float = 1.0) -> None:
    """Evaluate the rules on what ``sub`` delivers until ``stop`` and what still arrives after
    it (at most ``drain_s``); then give the outputs ``deliver_s`` to send what is due."""
    sink = _open_alert_sink(name, cfg, status, pub, stop, resolve)
    if sink is None:
        return
    log.info("alert sink: %d rules, outputs %s", len(cfg.rules),
             [o.name for o in cfg.outputs])
    go = Drain(stop, sub, drain_s)
    try:
        while go():
            _drain(sub, sink.handle, 50)
            sink.tick()
            status.absorb(sub)
            status.maybe_publish(pub)
    finally:
        sink.close(deliver_s)
        status.maybe_publish(pub, force=True)


def _open_alert_sink(name: str, cfg: AlertsConfig, status: StatusReporter,
                     pub: Publisher | None, stop: threading.Event,
                     resolve: Callable[[str], Any]) -> AlertSink | None:
    """The alert sink, once its outbox can be opened: a disk too full for that is waited out
    (said once a minute, shown in Status) instead of a crash loop; None when stopped first."""
    delay, said = cfg.retry_initial_s, -DISK_FULL_SAY_EVERY_S
    while True:
        try:
            return AlertSink(name, cfg, resolve(cfg.outbox), status, pub, resolve)
        except Exception as e:
            if not disk_full(e):
                raise
            status.count("outbox_errors")
            status.state["outbox"] = "disk full: cannot open the outbox"
            if time.monotonic() - said >= DISK_FULL_SAY_EVERY_S:
                said = time.monotonic()
                log.error("outbox %s: disk full, cannot open it; waiting for space (alerts "
                          "are not evaluated meanwhile)", resolve(cfg.outbox))
            status.maybe_publish(pub)
            if stop.wait(delay):
                return None
            delay = min(2 * delay, HELD_RETRY_MAX_S)


def run_sink(cfg: Any, proc: Any, sub: Subscriber, pub: Publisher | None,
             stop: threading.Event, status: StatusReporter, drain_s: float = 0.0) -> None:
    """Entry point of ``deploy.processes`` for ``kind = "sink"`` (cfg: PipelineConfig,
    proc: ProcessConfig)."""
    opts = dict(proc.options)
    kind = opts.pop("sink", "log")
    if kind == "log":
        run_log_sink(LogSinkConfig.from_options(opts), sub, pub, stop, status, cfg.session,
                     cfg.resolve, drain_s)
    elif kind == "alert":
        if opts:
            raise ValueError(f"process {proc.name}: an alert sink takes its settings from "
                             f"[alerts], not options {sorted(opts)}")
        run_alert_sink(proc.name, AlertsConfig.from_toml(cfg.raw.get("alerts", {})), sub, pub,
                       stop, status, cfg.resolve, drain_s)
    else:
        raise ValueError(f"process {proc.name}: options.sink {kind!r} not one of {SINK_KINDS}")
