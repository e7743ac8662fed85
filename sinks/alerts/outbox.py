"""The alert outbox: an SQLite file that holds every alert until each output has taken it.

An alert is written to the outbox — one row per (alert_id, state, output), in the same
transaction as the alert sink's rule state — before any delivery is tried; a delivery thread
per output sends due rows in order and marks each one delivered after the endpoint
acknowledged it (HTTP 2xx, MQTT PUBACK, a database commit). When the endpoint is down or slow
the row stays, its next attempt moves out with exponential backoff, and it goes out once the
endpoint is back — also after the sink itself was killed and restarted, since the outbox is on
disk (WAL, ``synchronous=FULL``).

Delivery semantics, honestly: the outbox gives *at-least-once* delivery per alert id and output.
A crash (or a timeout) after the endpoint took an alert but before the outbox recorded that can
make it send the same alert again; every payload therefore carries its ``alert_id`` and
``state`` (HTTP also as the ``Idempotency-Key`` header), and a receiver that keeps the ids it
has seen — as the log does (unique on alert_id, state) — sees each alert exactly once. A
rejection that retrying cannot fix (HTTP 4xx other than 408/425/429) marks the row dead; dead
rows stay in the file with their error and are counted, never silently dropped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sinks.log.records import wall_us
from sinks.alerts.rules import Active
from sinks.log.sql import sqlite_connect

OUTBOX_VERSION = 1

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS outbox (
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL,
    output TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_wall_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_wall_us INTEGER NOT NULL,
    delivered_wall_us INTEGER,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (alert_id, state, output)
)""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (output, delivered_wall_us, dead)",
    """CREATE TABLE IF NOT EXISTS active_alerts (
    rule TEXT NOT NULL,
    scope TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    track INTEGER,
    value REAL,
    PRIMARY KEY (rule, scope)
)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
]


class OutboxError(RuntimeError):
    pass


@dataclass
class Pending:
    alert_id: str
    state: str
    output: str
    payload: dict
    attempts: int


class Outbox:
    """One connection to the outbox file (each delivery thread opens its own)."""

    def __init__(self, path: str | os.PathLike, busy_timeout_s: float = 5.0):
        self.path = Path(path)
        self.conn = sqlite_connect(self.path, busy_timeout_s, "FULL")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > OUTBOX_VERSION:
                raise OutboxError(f"{self.path}: outbox version {version} is newer than this "
                                  f"build ({OUTBOX_VERSION})")
            for s in _SCHEMA:
                self.conn.execute(s)
            self.conn.execute(f"PRAGMA user_version={OUTBOX_VERSION}")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def enqueue(self, payloads: list[tuple[dict, list[str]]],
                active: list[tuple[str, str, Active | None]], next_seq: int) -> None:
        """In one transaction: each payload for its outputs, the rule state, the alert seq.

        ``active`` holds (rule, scope, Active) for a raised alert and (rule, scope, None) for a
        cleared one. Enqueueing the same (alert_id, state, output) twice keeps the first."""
        now = wall_us()
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for payload, outputs in payloads:
                body = json.dumps(payload, sort_keys=True)
                for out in outputs:
                    c.execute("INSERT INTO outbox (alert_id, state, output, payload, "
                              "created_wall_us, next_attempt_wall_us) VALUES (?, ?, ?, ?, ?, ?) "
                              "ON CONFLICT DO NOTHING",
                              (payload["alert_id"], payload["state"], out, body, now, now))
            for rule, scope, a in active:
                if a is None:
                    c.execute("DELETE FROM active_alerts WHERE rule = ? AND scope = ?",
                              (rule, scope))
                else:
                    c.execute("INSERT OR REPLACE INTO active_alerts VALUES (?, ?, ?, ?, ?, ?)",
                              (rule, scope, a.alert_id, a.severity, a.track, a.value))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('next_seq', ?)", (next_seq,))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def active(self) -> dict[tuple[str, str], Active]:
        rows = self.conn.execute("SELECT rule, scope, alert_id, severity, track, value "
                                 "FROM active_alerts").fetchall()
        return {(r[0], r[1]): Active(r[2], r[3], r[4], r[5]) for r in rows}

    def next_seq(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return int(row[0]) if row else 1

    def due(self, output: str, limit: int = 50) -> list[Pending]:
        """The oldest undelivered rows of an output, in the order they were enqueued."""
        rows = self.conn.execute(
            "SELECT alert_id, state, payload, attempts FROM outbox WHERE output = ? AND "
            "delivered_wall_us IS NULL AND dead = 0 ORDER BY rowid LIMIT ?",
            (output, limit)).fetchall()
        return [Pending(r[0], r[1], output, json.loads(r[2]), int(r[3])) for r in rows]

    def delivered(self, p: Pending) -> None:
        self.conn.execute("UPDATE outbox SET delivered_wall_us = ?, attempts = attempts + 1, "
                          "last_error = NULL WHERE alert_id = ? AND state = ? AND output = ?",
                          (wall_us(), p.alert_id, p.state, p.output))

    def failed(self, p: Pending, error: str, retry_in_s: float | None) -> None:
        """Record a failed attempt (and when the next is planned, for people reading the
        file); ``retry_in_s`` None = dead (retrying cannot help)."""
        if retry_in_s is None:
            self.conn.execute("UPDATE outbox SET dead = 1, attempts = attempts + 1, "
                              "last_error = ? WHERE alert_id = ? AND state = ? AND output = ?",
                              (error[:1000], p.alert_id, p.state, p.output))
        else:
            self.conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                              "next_attempt_wall_us = ? WHERE alert_id = ? AND state = ? AND "
                              "output = ?", (error[:1000], wall_us() + int(retry_in_s * 1e6),
                                             p.alert_id, p.state, p.output))

    def prune(self, older_than_s: float) -> int:
        """Delete rows delivered more than ``older_than_s`` ago (the log keeps the alerts);
        undelivered and dead rows stay. Returns how many were deleted."""
        cur = self.conn.execute("DELETE FROM outbox WHERE delivered_wall_us IS NOT NULL AND "
                                "delivered_wall_us < ?",
                                (wall_us() - int(older_than_s * 1e6),))
        return cur.rowcount

    def counts(self) -> dict[str, dict[str, int]]:
        """Per output: pending, delivered, dead."""
        out: dict[str, dict[str, int]] = {}
        for output, pend, done, dead in self.conn.execute(
                "SELECT output, SUM(delivered_wall_us IS NULL AND dead = 0), "
                "SUM(delivered_wall_us IS NOT NULL), SUM(dead) FROM outbox GROUP BY output"):
            out[output] = {"pending": int(pend), "delivered": int(done), "dead": int(dead)}
        return out

    def close(self) -> None:
        self.conn.close()
