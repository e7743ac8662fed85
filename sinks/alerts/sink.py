"""The alerting sink: rules over cycle records and process health → Alert messages, delivered
through an on-disk outbox to the log, a webhook, MQTT and stdout.

Configuration (in the pipeline TOML, beside ``[[process]]``; the rule semantics are in
:mod:`sinks.alerts.rules`, the delivery guarantees in :mod:`sinks.alerts.outbox`)::

    [alerts]
    outbox = "alerts-outbox.db"     # SQLite file; relative to [pipeline].data_dir
    retry_initial_s = 0.5           # first retry delay of a failed delivery ...
    retry_max_s = 60.0              # ... doubling up to this (with +-20 % jitter)
    keep_delivered_days = 30        # delivered outbox rows are deleted after this
    reserve_mb = 8                  # disk space kept beside the outbox for a full disk (0 = none)

    [[alerts.output]]               # any number; each gets every alert once
    type = "webhook"                # log | webhook | mqtt | stdout
    name = "ward-pager"             # optional, default = type; unique
    min_severity = "warning"        # optional: info | warning | critical (default info)
    url = "http://127.0.0.1:8080/alerts"
    timeout_s = 5.0
    # headers = { Authorization = "Bearer ..." }

    [[alerts.output]]
    type = "mqtt"
    host = "127.0.0.1"
    port = 1883
    topic = "gaitstream/alerts"     # QoS 1; payload = the JSON document below

    [[alerts.output]]
    type = "log"
    path = "gaitstream.db"          # or dsn = "postgresql://..."; or a .jsonl path

    [[alerts.output]]
    type = "stdout"

    [[alerts.rule]]
    name = "slow_gait"              # unique; part of every alert id
    kind = "metric"                 # metric | silence | camera | restarts
    metric = "speed_mps"            # a CYCLE_METRICS key or "anomaly.<score>"
    op = "below"                    # below | above
    raise = 0.8                     # raise when the window's aggregate crosses this
    clear = 0.9                     # clear when it is back past this (hysteresis)
    window = 5                      # cycles per track in the rolling window
    aggregate = "mean"              # mean | median | min | max
    min_cycles = 5                  # optional, default = window
    per = "track"                   # track | source
    exclude_flags = []              # cycles with any of these quality flags are ignored
    severity = "warning"            # info | warning | critical
    reraise_after_s = 60            # optional cool-down after a clear
    expire_s = 300                  # forget a scope (clearing its alert) after this silence
    # text = "{scope}: {metric} {value:.2f} below {threshold}"   # optional template

    [[alerts.rule]]
    name = "anomalous_gait"
    kind = "metric"
    metric = "anomaly.subject"
    op = "above"
    raise = 3.0
    clear = 2.5
    severity = "critical"

    [[alerts.rule]]
    name = "camera_silent"
    kind = "silence"
    sources = ["cam"]               # empty = every capture process seen
    after_s = 10
    counter = "published"           # the capture Status counter that shows progress
    severity = "critical"

    [[alerts.rule]]
    name = "camera_offline"
    kind = "camera"
    sources = ["cam"]               # empty = every capture process seen
    after_s = 10                    # its Status has said camera offline this long
    states = ["offline"]            # the camera states that count as down
    severity = "critical"

    [[alerts.rule]]
    name = "crash_loop"
    kind = "restarts"
    processes = ["worker"]          # empty = every process
    count = 3
    within_s = 300
    clear_after_s = 600
    severity = "critical"

The sink process (``[[process]] kind = "sink"`` with ``options.sink = "alert"``) subscribes to
``gait/`` (cycles) and ``status`` (health), and to ``skel/`` too if silence should also be
judged from skeleton traffic. Its ``subscribe`` list must name the endpoints those come from:
the workers (cycles), the capture processes (their Status, for silences and camera states) and
the launcher's ``[launcher].publish`` (restart counts, for crash loops). Every raised / cleared
alert is also published on ``alert`` when the process has a ``publish`` endpoint.

The payload every output receives (JSON)::

    {"alert_id": "slow_gait:3f2c...", "state": "raised", "rule": "slow_gait",
     "severity": "warning", "text": "...", "source": "<alert sink name>", "seq": 12,
     "track": 1, "value": 0.61, "t_us": ..., "host_us": ..., "wall_us": ...}
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from streams.schema import Alert, GaitCycle, Message, SkeletonFrame, Status, monotonic_us
from streams.node import StatusReporter
from streams.transport import Publisher
from streams.options import check_keys, check_types

from sinks.alerts.outbox import Outbox, Reserve, disk_full
from sinks.alerts.outputs import (Output, OutputSpec, PermanentDeliveryError, make_output,
                                  parse_output, payload_of)
from sinks.alerts.rules import AlertEngine, Rule, RuleError, Transition, parse_rules

log = logging.getLogger(__name__)

_ALERTS_KEYS = {"outbox", "retry_initial_s", "retry_max_s", "keep_delivered_days", "output",
                "rule", "reserve_mb"}
PRUNE_EVERY_S = 3600.0
# A full disk: how long alerts may wait in memory between attempts, how often it is said again,
# and how often a missing reserve is written again once there is room.
HELD_RETRY_MAX_S = 30.0
DISK_FULL_SAY_EVERY_S = 60.0
RESERVE_CHECK_EVERY_S = 60.0


@dataclass
class AlertsConfig:
    outbox: str
    rules: list[Rule]
    outputs: list[OutputSpec]
    retry_initial_s: float = 0.5
    retry_max_s: float = 60.0
    keep_delivered_days: float = 30.0
    reserve_mb: float = 8.0

    @classmethod
    def from_toml(cls, d: dict[str, Any]) -> "AlertsConfig":
        """Parse the ``[alerts]`` table; raises ValueError naming the bad key."""
        if not isinstance(d, dict):
            raise ValueError("[alerts] must be a table")
        check_keys("[alerts]", d, _ALERTS_KEYS)
        check_types("[alerts]", {k: v for k, v in d.items() if k not in ("output", "rule")}, cls)
        rules = parse_rules(d.get("rule", []))
        outputs = [parse_output(o, i) for i, o in enumerate(d.get("output", []))]
        names = [o.name for o in outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"alerts.output: names must be unique (set 'name'): {names}")
        if not outputs:
            raise ValueError("[alerts]: no [[alerts.output]]: alerts would go nowhere")
        if not rules:
            raise RuleError("[alerts]: no [[alerts.rule]]")
        cfg = cls(outbox=str(d.get("outbox", "alerts-outbox.db")), rules=rules,
                  outputs=outputs, retry_initial_s=float(d.get("retry_initial_s", 0.5)),
                  retry_max_s=float(d.get("retry_max_s", 60.0)),
                  keep_delivered_days=float(d.get("keep_delivered_days", 30.0)),
                  reserve_mb=float(d.get("reserve_mb", 8.0)))
        if not 0 < cfg.retry_initial_s <= cfg.retry_max_s:
            raise ValueError("[alerts]: need 0 < retry_initial_s <= retry_max_s")
        if cfg.keep_delivered_days <= 0:
            raise ValueError("[alerts]: keep_delivered_days must be > 0")
        if not 0 <= cfg.reserve_mb <= 1024:
            raise ValueError("[alerts]: reserve_mb must be between 0 and 1024")
        return cfg


def backoff_s(attempts: int, initial_s: float, max_s: float) -> float:
    """Delay before the next attempt after ``attempts`` failed ones (jittered +-20 %)."""
    base = min(max_s, initial_s * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.8, 1.2)


class Deliverer(threading.Thread):
    """Sends one output's outbox rows strictly in order, until stopped.

    Backoff belongs to the endpoint, not to a row: after a failure nothing is sent to this
    output until the backoff has passed, and then the oldest row goes first, so a clear never
    overtakes its raise."""

    def __init__(self, outbox_path: str | os.PathLike, output: Output, stop: threading.Event,
                 retry_initial_s: float, retry_max_s: float):
        super().__init__(name=f"deliver-{output.name}", daemon=True)
        self.outbox_path = outbox_path
        self.output = output
        self.stop = stop
        self.wake = threading.Event()
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.delivered = 0
        self.failures = 0
        self.dead = 0
        self.last_error = ""
        self._failed_in_a_row = 0
        self._next_try = 0.0  # monotonic
        self._said_full_at = -DISK_FULL_SAY_EVERY_S

    def run(self) -> None:
        ob = Outbox(self.outbox_path)
        try:
            while not self.stop.is_set():
                wait = self._next_try - time.monotonic()
                if wait > 0:
                    self.stop.wait(wait)
                    continue
                try:
                    more = self._round(ob)
                except Exception as e:  # the outbox itself failed (disk full...): wait, retry
                    if disk_full(e):  # a delivered row may go out again (at-least-once)
                        now = time.monotonic()
                        if now - self._said_full_at >= DISK_FULL_SAY_EVERY_S:
                            self._said_full_at = now
                            log.warning("%s: outbox %s: disk full: deliveries cannot be "
                                        "recorded", self.output.name, self.outbox_path)
                    else:
                        log.exception("%s: outbox round failed", self.output.name)
                    self._backoff()
                    continue
                if not more:
                    self.wake.wait(0.5)
                    self.wake.clear()
        finally:
            self.output.close()
            ob.close()

    def _backoff(self) -> float:
        self._failed_in_a_row += 1
        delay = backoff_s(self._failed_in_a_row, self.retry_initial_s, self.retry_max_s)
        self._next_try = time.monotonic() + delay
        return delay

    def _round(self, ob: Outbox) -> bool:
        """Send the oldest undelivered rows; True when there may be more right away."""
        rows = ob.due(self.output.name)
        for p in rows:
            if self.stop.is_set():
                return False
            try:
                self.output.send(p.payload)
            except PermanentDeliveryError as e:
                self.dead += 1
                self.last_error = str(e)
                log.error("%s: alert %s (%s) refused for good: %s", self.output.name,
                          p.alert_id, p.state, e)
                ob.failed(p, str(e), None)
                continue
            except Exception as e:  # DeliveryError, or anything unforeseen: retried later
                self.failures += 1
                self.last_error = str(e)
                delay = self._backoff()
                log.warning("%s: delivering %s failed (attempt %d): %s; retry in %.2f s",
                            self.output.name, p.alert_id, p.attempts + 1, e, delay)
                ob.failed(p, str(e), delay)
                return False
            ob.delivered(p)
            self.delivered += 1
            self._failed_in_a_row = 0
        return bool(rows)


class AlertSink:
    """Feeds messages to the rule engine and turns its transitions into delivered alerts."""

    def __init__(self, name: str, cfg: AlertsConfig, outbox_path: str | os.PathLike,
                 status: StatusReporter, pub: Publisher | None = None,
                 resolve: Callable[[str], Any] = str, clock: Callable[[], float] = time.monotonic,
                 outputs: list[Output] | None = None):
        self.name, self.cfg, self.status, self.pub, self.clock = name, cfg, status, pub, clock
        self.outbox_path = outbox_path
        self.reserve = Reserve(f"{outbox_path}.reserve", int(cfg.reserve_mb * (1 << 20)))
        self.outbox = self._open_outbox()
        self.seq = self.outbox.next_seq() - 1
        active = self.outbox.active()
        if active:
            log.info("restored %d raised alert(s) from %s", len(active), outbox_path)
        self.engine = AlertEngine(cfg.rules, clock(), active)
        self.stop_delivery = threading.Event()
        outs = outputs if outputs is not None else [make_output(s, resolve) for s in cfg.outputs]
        self.deliverers = [Deliverer(outbox_path, o, self.stop_delivery, cfg.retry_initial_s,
                                     cfg.retry_max_s) for o in outs]
        self.unsaved: list[Transition] = []  # transitions the outbox could not take yet
        self._held_failures = 0
        self._retry_at = 0.0
        self._said_full_at: float | None = None
        self._next_prune = clock()
        self._next_reserve_check = clock() + RESERVE_CHECK_EVERY_S
        for d in self.deliverers:
            d.start()

    def _open_outbox(self) -> Outbox:
        """Open the outbox, giving up the reserve if the disk is too full to open it; with room,
        (re)write the reserve first."""
        self.reserve.ensure()
        try:
            return Outbox(self.outbox_path)
        except Exception as e:
            if not (disk_full(e) and self._release_reserve()):
                raise
        return Outbox(self.outbox_path)

    def _release_reserve(self) -> bool:
        freed = self.reserve.release()
        if freed:
            self.status.count("reserve_released")
            log.error("outbox %s: disk full: gave up the %.1f MiB reserve so that alerts stay "
                      "on disk; free space on that disk", self.outbox_path, freed / (1 << 20))
        return freed > 0

    def handle(self, topic: str, msg: Message) -> None:
        now = self.clock()
        if isinstance(msg, GaitCycle):
            self.status.count("cycles")
            self._emit(self.engine.on_cycle(msg, now))
        elif isinstance(msg, Status):
            self._emit(self.engine.on_status(msg, now))
        elif isinstance(msg, SkeletonFrame):
            self._emit(self.engine.on_skeleton(msg.source, now))

    def tick(self) -> None:
        now = self.clock()
        self._emit(self.engine.tick(now))
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            try:
                n = self.outbox.prune(self.cfg.keep_delivered_days * 86400.0)
            except Exception as e:  # a locked or full outbox: try again at the next prune
                log.warning("outbox prune failed: %s", e)
            else:
                if n:
                    log.info("outbox: deleted %d delivered rows older than %g days", n,
                             self.cfg.keep_delivered_days)
        if not self.unsaved and now >= self._next_reserve_check:
            self._next_reserve_check = now + RESERVE_CHECK_EVERY_S
            if self.reserve.size and not self.reserve.present and self.reserve.ensure():
                log.info("outbox %s: the disk has room again; reserve written",
                         self.outbox_path)
        self.status.counters["held_alerts"] = len(self.unsaved)
        self.status.counters["suppressed"] = self.engine.suppressed
        self.status.counters["active"] = len(self.engine.active)
        for d in self.deliverers:
            self.status.counters[f"delivered.{d.output.name}"] = d.delivered
            self.status.counters[f"delivery_failures.{d.output.name}"] = d.failures
            self.status.counters[f"dead.{d.output.name}"] = d.dead

    def _emit(self, transitions: list[Transition]) -> None:
        if not transitions and not self.unsaved:
            return
        batch = self.unsaved + transitions
        if self.unsaved and self.clock() < self._retry_at:  # the outbox failed: wait, keep all
            self.unsaved = batch
            return
        alerts = []
        seq = self.seq
        for t in batch:
            seq += 1
            now = monotonic_us()
            alerts.append(Alert(source=self.name, seq=seq, t_us=now,
                                host_us=t.host_us if t.host_us is not None else now,
                                alert_id=t.alert_id, rule=t.rule, severity=t.severity,
                                state=t.state, text=t.text[:4096], track=t.track, value=t.value))
        payloads = [(payload_of(a), [d.output.name for d in self.deliverers
                                     if d.output.accepts(a.severity)]) for a in alerts]
        active = [(t.rule, t.scope, self.engine.active.get((t.rule, t.scope))
                   if t.state == "raised" else None) for t in batch]
        try:
            try:
                self.outbox.enqueue(payloads, active, seq + 1)
            except Exception as e:
                if not (disk_full(e) and self._release_reserve()):
                    raise
                self.outbox.enqueue(payloads, active, seq + 1)
        except Exception as e:  # disk full or locked: keep them, try again after a backoff
            self._hold(batch, e)
            return
        if self.unsaved:
            log.warning("outbox %s: writable again; stored %d alert(s) held in memory",
                        self.outbox_path, len(self.unsaved))
            self._said_full_at = None
        self.unsaved = []
        self._held_failures = 0
        self.seq = seq
        self.status.state["outbox"] = "ok"
        committed_us = monotonic_us()
        for t in batch:  # data-driven alerts: from the cycle entering the pipeline to the outbox
            if t.host_us is not None:
                self.status.latency_since(t.host_us, committed_us)
        for a in alerts:
            self.status.count(f"alerts_{a.state}")
            log.info("alert %s %s [%s] %s", a.state, a.alert_id, a.severity, a.text)
            if self.pub is not None:
                self.pub.send(a)
        for d in self.deliverers:
            d.wake.set()

    def _hold(self, batch: list[Transition], e: Exception) -> None:
        """Keep alerts the outbox could not take; retried with backoff, said once a while."""
        self.unsaved = batch
        self._held_failures += 1
        self._retry_at = self.clock() + backoff_s(self._held_failures, self.cfg.retry_initial_s,
                                                  HELD_RETRY_MAX_S)
        self.status.count("outbox_errors")
        what = "disk full" if disk_full(e) else f"{type(e).__name__}: {e}"
        self.status.state["outbox"] = f"{what}; {len(batch)} alert(s) held"[:200]
        now = self.clock()
        if self._said_full_at is None or now - self._said_full_at >= DISK_FULL_SAY_EVERY_S:
            self._said_full_at = now
            log.error("outbox %s: %s: %d alert(s) held in memory, retried until it can be "
                      "written (a kill now would lose them)", self.outbox_path, what, len(batch))

    def close(self, drain_s: float = 0.0) -> None:
        """Stop the delivery threads (after up to ``drain_s`` s of delivering what is due)."""
        end = time.monotonic() + drain_s
        while time.monotonic() < end and any(
                self.outbox.due(d.output.name, 1) for d in self.deliverers):
            time.sleep(0.05)
        self.stop_delivery.set()
        for d in self.deliverers:
            d.wake.set()
            d.join(10)
        self.outbox.close()
