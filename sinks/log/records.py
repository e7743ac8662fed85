"""Wire messages → database rows: one place decides what a stored record holds and what makes
two deliveries of it the same record.

Identity (the key an insert is idempotent on) is the record's *content identity*, not the
transport's sequence number: the worker restarts its per-source ``seq`` at 1 after a crash, so
``(source, seq)`` would call two different cycles the same. A cycle is the stride of
(source, track, side) that starts at ``start_us`` under one ``method``; an event is
(source, track, side, kind, event_us, method); an alert is (alert_id, state); a status is
(source, seq, t_us). A message delivered twice — a replay after a crash, a redelivery from an
outbox — therefore lands once. A kiosk session's confirmation (``started`` / ``ended``, from the
worker) is (session, action); the kiosk's own requests are not stored.

What is stored: pseudonymous session and subject ids exactly as the worker put them on the
cycle or event, per-cycle measures, quality flags and anomaly scores; per walking bout its
summary, model estimates and, when the worker makes one, the gait embedding (biometric: it can
re-identify a person). No images and no joint positions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from streams.schema import (CYCLE_METRICS, Alert, GaitBout, GaitCycle, GaitEvent, Message,
                            SessionControl, Status)

# The stream a message's ``seq`` counts in, per message type. Events and cycles of one source
# share the worker's counter on ``gait/<source>``, so they are one stream.
STREAM_OF_TYPE = {"gait_event": "gait", "gait_cycle": "gait", "gait_bout": "gait",
                  "alert": "alert"}

# A status carries the sender's count of messages it lost upstream; its increase is a gap.
UPSTREAM_DROP_COUNTER = "dropped_upstream"
UPSTREAM_STREAM = "upstream"

# in the tables' order (exports follow it): columns that migrations added come last
CYCLE_COLUMNS = ["source", "seq", "session", "subject", "track", "side", "start_us", "end_us",
                 "method", *CYCLE_METRICS, "extra_metrics", "flags", "anomaly_subject", "anomaly",
                 "t_us", "host_us", "wall_us", "run"]
EVENT_COLUMNS = ["source", "seq", "session", "track", "side", "kind", "event_us", "method",
                 "confidence", "t_us", "host_us", "wall_us", "subject", "run"]
BOUT_COLUMNS = ["source", "seq", "session", "subject", "track", "start_us", "end_us", "method",
                "cycles", "trusted_cycles", "summary", "estimates", "embedding_model",
                "embedding", "t_us", "host_us", "wall_us", "run"]
ALERT_COLUMNS = ["alert_id", "state", "source", "seq", "rule", "severity", "text", "track",
                 "value", "t_us", "host_us", "wall_us"]
STATUS_COLUMNS = ["source", "seq", "process", "role", "uptime_s", "counters", "latency_ms",
                  "state", "t_us", "host_us", "wall_us"]
SESSION_COLUMNS = ["session", "action", "subject", "camera", "height_m", "age_y",
                   "assistive_device", "source", "seq", "t_us", "host_us", "wall_us"]

TABLE_COLUMNS = {"cycles": CYCLE_COLUMNS, "events": EVENT_COLUMNS, "bouts": BOUT_COLUMNS,
                 "alerts": ALERT_COLUMNS, "status": STATUS_COLUMNS,
                 "session_controls": SESSION_COLUMNS}
TABLE_KEYS = {
    "cycles": ("run", "source", "track", "side", "start_us", "method"),
    "events": ("run", "source", "track", "side", "kind", "event_us", "method"),
    "bouts": ("run", "source", "track", "start_us", "method"),
    "alerts": ("alert_id", "state"),
    "status": ("source", "seq", "t_us"),
    "session_controls": ("session", "action"),
}


def wall_us() -> int:
    """UTC wall-clock time in microseconds: when the sink received a record."""
    return time.time_ns() // 1000


@dataclass
class Record:
    """One row to store plus what the store needs for gap accounting.

    ``stream`` is None for rows that must not move the sequence bookkeeping (an alert written
    by the alert sink's own log output arrives outside the ZeroMQ order). ``drop_counter`` is
    the upstream-drop counter a Status reported (None when it reported none).
    """

    table: str | None  # None: bookkeeping only (a status that is not stored)
    row: dict
    source: str
    seq: int
    stream: str | None
    drop_counter: float | None = None

    @property
    def key(self) -> tuple:
        return (self.table, *(self.row[k] for k in TABLE_KEYS[self.table]))


def _json(v: object) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def cycle_row(m: GaitCycle, received_us: int) -> dict:
    row = {"source": m.source, "seq": m.seq, "session": m.session, "subject": m.subject,
           "track": m.track, "side": m.side, "start_us": m.start_us, "end_us": m.end_us,
           "method": m.method}
    for k in CYCLE_METRICS:
        row[k] = m.metrics.get(k)
    extra = {k: v for k, v in m.metrics.items() if k not in CYCLE_METRICS}
    row["extra_metrics"] = _json(extra) if extra else None
    row["flags"] = _json(list(m.flags))
    row["anomaly_subject"] = m.anomaly.get("subject")
    row["anomaly"] = _json(m.anomaly) if m.anomaly else None
    row.update(t_us=m.t_us, host_us=m.host_us, wall_us=received_us, run=m.run)
    return row


def event_row(m: GaitEvent, received_us: int, session: str) -> dict:
    return {"source": m.source, "seq": m.seq, "session": m.session or session,
            "subject": m.subject, "track": m.track,
            "side": m.side, "kind": m.kind, "event_us": m.event_us, "method": m.method,
            "confidence": m.confidence, "t_us": m.t_us, "host_us": m.host_us,
            "wall_us": received_us, "run": m.run}


def bout_row(m: GaitBout, received_us: int) -> dict:
    emb = np.ascontiguousarray(m.embedding, dtype="<f4").reshape(-1)
    return {"source": m.source, "seq": m.seq, "session": m.session, "subject": m.subject,
            "track": m.track, "start_us": m.start_us, "end_us": m.end_us, "method": m.method,
            "cycles": m.cycles, "trusted_cycles": m.trusted_cycles, "summary": _json(m.summary),
            "estimates": _json(m.estimates) if m.estimates else None,
            "embedding_model": m.embedding_model,
            "embedding": emb.tobytes() if len(emb) else None,
            "t_us": m.t_us, "host_us": m.host_us, "wall_us": received_us, "run": m.run}


def embedding_of(stored: bytes | memoryview | None) -> np.ndarray | None:
    """A bout's embedding as the log stores it (float32 little-endian bytes), or None."""
    return None if stored is None else np.frombuffer(bytes(stored), "<f4")


def alert_row(m: Alert, received_us: int) -> dict:
    return {"alert_id": m.alert_id, "state": m.state, "source": m.source, "seq": m.seq,
            "rule": m.rule, "severity": m.severity, "text": m.text, "track": m.track,
            "value": m.value, "t_us": m.t_us, "host_us": m.host_us, "wall_us": received_us}


def status_row(m: Status, received_us: int) -> dict:
    return {"source": m.source, "seq": m.seq, "process": m.process, "role": m.role,
            "uptime_s": m.uptime_s, "counters": _json(m.counters),
            "latency_ms": _json(m.latency_ms), "state": _json(m.state), "t_us": m.t_us,
            "host_us": m.host_us, "wall_us": received_us}


def session_row(m: SessionControl, received_us: int) -> dict:
    return {"session": m.session, "action": m.action, "subject": m.subject, "camera": m.camera,
            "height_m": m.height_m, "age_y": m.age_y, "assistive_device": m.assistive_device,
            "source": m.source, "seq": m.seq, "t_us": m.t_us, "host_us": m.host_us,
            "wall_us": received_us}


def to_record(msg: Message, received_us: int, session: str = "", *,
              store_status: bool = True, track_seq: bool = True) -> Record | None:
    """The record a message becomes; None for message types the log does not keep.

    ``session`` is put on events that carry none (recorded before events carried it).
    ``store_status`` False keeps only the drop bookkeeping of a Status (the log thins statuses).
    """
    stream = STREAM_OF_TYPE.get(msg.TYPE) if track_seq else None
    if isinstance(msg, GaitCycle):
        return Record("cycles", cycle_row(msg, received_us), msg.source, msg.seq, stream)
    if isinstance(msg, GaitBout):
        return Record("bouts", bout_row(msg, received_us), msg.source, msg.seq, stream)
    if isinstance(msg, GaitEvent):
        return Record("events", event_row(msg, received_us, session), msg.source, msg.seq,
                      stream)
    if isinstance(msg, Alert):
        return Record("alerts", alert_row(msg, received_us), msg.source, msg.seq, stream)
    if isinstance(msg, SessionControl):
        if msg.action not in ("started", "ended"):
            return None  # a kiosk's request: only the worker's confirmation is a fact
        return Record("session_controls", session_row(msg, received_us), msg.source, msg.seq,
                      None)
    if isinstance(msg, Status):
        drops = msg.counters.get(UPSTREAM_DROP_COUNTER)
        return Record("status" if store_status else None,
                      status_row(msg, received_us) if store_status else {},
                      msg.process or msg.source, msg.seq, None, drops)
    return None
