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

A full disk: beside the outbox lies a reserve file (``<outbox>.reserve``, a few MiB of real
blocks, written while there is room). When the outbox cannot be written because the disk is full,
the sink deletes the reserve and writes again, so the alerts of a disk that filled up are still
on disk (a kill -9 does not lose them) while people free space; the reserve is written again once
there is room. Only when the reserve is used up as well are alerts held in memory, retried with
backoff and reported as "disk full" (those a kill would lose).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sinks.log.records import wall_us
from sinks.alerts.rules import Active
from sinks.log.sql import sqlite_connect

log = logging.getLogger(__name__)

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


def disk_full(e: BaseException) -> bool:
    """Whether ``e`` says that the filesystem (or the user's quota) has no room left."""
    if isinstance(e, sqlite3.Error):
        return getattr(e, "sqlite_errorcode", None) == 13 or "disk is full" in str(e)  # FULL
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls a transaction back by itself when a write fails for lack of room; a ROLLBACK
    # then raises "no transaction is active" and would hide the real error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class Reserve:
    """Space set aside beside the outbox, given up when the disk is full (see the module doc).

    The file holds random bytes, not zeros or a sparse hole, so that compressing or
    deduplicating filesystems really reserve its blocks."""

    CHUNK = 1 << 20

    def __init__(self, path: str | os.PathLike, size_bytes: int):
        self.path = Path(path)
        self.size = int(size_bytes)

    @property
    def present(self) -> bool:
        return self.size > 0 and self.path.exists() and self.path.stat().st_size >= self.size

    def ensure(self) -> bool:
        """Write the reserve if it is missing and the disk has room for it twice over (a reserve
        that takes the last free bytes would fill the disk itself); True when it is there."""
        if self.size <= 0 or self.present:
            return self.size > 0
        try:
            if shutil.disk_usage(self.path.parent).free < 2 * self.size:
                return False
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                left = self.size
                while left > 0:
                    left -= os.write(fd, os.urandom(min(self.CHUNK, left)))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("could not write the disk-full reserve %s: %s", self.path, e)
            self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)
            return False
        return True

    def release(self) -> int:
        """Delete the reserve; returns the bytes given back (0 when there was none)."""
        try:
            n = self.path.stat().st_size
            self.path.unlink()
        except FileNotFoundError:
            return 0
        return n


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
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > OUTBOX_VERSION:
                raise OutboxError(f"{self.path}: outbox version {version} is newer than this "
                                  f"build ({OUTBOX_VERSION})")
            if version < OUTBOX_VERSION:  # a current file is not written to: a full disk opens
                self._create()
        except BaseException:
            self.conn.close()
            raise

    def _create(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for s in _SCHEMA:
                self.conn.execute(s)
            self.conn.execute(f"PRAGMA user_version={OUTBOX_VERSION}")
            self.conn.execute("COMMIT")
        except BaseException:
            _rollback(self.conn)
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
            _rollback(c)
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
