"""The log as a JSON Lines file, with the guarantees of the database stores.

One line per record: ``{"table": "cycles", ...the row...}`` (tables as in the SQL schema; JSON
columns such as ``flags`` are nested objects here, not strings). Each batch ends with the
bookkeeping lines ``{"table": "sources", ...}`` and a ``{"table": "commit", ...}`` line, and is
written with one ``write`` + ``fsync``. On opening, anything after the last ``commit`` line (a
batch torn by a crash or a full disk) is cut off, so a batch is all there or not there, like a
database transaction. Readers should skip the ``sources`` and ``commit`` lines.

Duplicates are recognised by the same content keys as in the databases; the keys of every
stored record are held in memory (a few hundred bytes per record), which is what makes JSONL the
choice for small or short-lived logs, not for an edge box that runs for months.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from sinks.log.gaps import SeqBook, SourceState
from sinks.log.records import TABLE_COLUMNS, TABLE_KEYS, Record, embedding_of, wall_us
from sinks.log.store import StoreUnavailable, WriteResult

log = logging.getLogger(__name__)

_JSON_COLUMNS = {"cycles": {"extra_metrics", "flags", "anomaly"},
                 "bouts": {"summary", "estimates"},
                 "status": {"counters", "latency_ms", "state"}}


class JsonlCorrupt(RuntimeError):
    """A committed part of the file does not parse: it was changed by something else."""


class JsonlStore:
    kind = "jsonl"

    def __init__(self, path: str | os.PathLike, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.keys: set[tuple] = set()
        self.book = SeqBook()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self.f = open(self.path, "ab")

    def _recover(self) -> None:
        if not self.path.exists():
            return
        good_end = 0
        pending: list[dict] = []
        bad_at: int | None = None
        pos = 0
        with open(self.path, "rb") as f:
            for raw in f:
                start, pos = pos, pos + len(raw)
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("torn line")
                    obj = json.loads(raw)
                    if not isinstance(obj, dict):
                        raise ValueError("not an object")
                except ValueError:
                    if bad_at is None:
                        bad_at = start
                    continue
                if obj.get("table") == "commit":
                    if bad_at is not None:
                        raise JsonlCorrupt(f"{self.path}: unreadable line at byte {bad_at} "
                                           "inside a committed batch")
                    self._absorb(pending)
                    pending = []
                    good_end = pos
                else:
                    pending.append(obj)
        if good_end < pos:
            log.warning("%s: cutting %d bytes of an uncommitted batch (a crash or a full disk "
                        "interrupted it)", self.path, pos - good_end)
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())

    def _absorb(self, lines: list[dict]) -> None:
        for obj in lines:
            t = obj.get("table")
            if t in TABLE_KEYS:
                self.keys.add((t, *(obj.get(k) for k in TABLE_KEYS[t])))
            elif t == "sources":
                self.book.state[(obj["stream"], obj["source"])] = SourceState(
                    int(obj["last_seq"]), int(obj["resets"]))

    @staticmethod
    def _line(table: str, row: dict) -> bytes:
        out: dict = {"table": table}
        nested = _JSON_COLUMNS.get(table, ())
        for c in TABLE_COLUMNS.get(table, row):
            v = row[c]
            if isinstance(v, bytes):  # a bout's embedding: float32 bytes -> its numbers
                v = embedding_of(v).tolist()
            out[c] = json.loads(v) if c in nested and isinstance(v, str) else v
        return json.dumps(out, separators=(",", ":")).encode() + b"\n"

    def write(self, records: list[Record]) -> WriteResult:
        snap = self.book.snapshot()
        res = WriteResult()
        lines: list[bytes] = []
        new_keys: set[tuple] = set()
        now = wall_us()
        for r in records:
            inserted = True
            if r.table is not None:
                k = r.key
                inserted = k not in self.keys and k not in new_keys
                if inserted:
                    new_keys.add(k)
                    lines.append(self._line(r.table, r.row))
                    res.inserted[r.table] = res.inserted.get(r.table, 0) + 1
                else:
                    res.duplicates += 1
            for g in self.book.observe(r, inserted):
                res.gaps.append(g)
                lines.append(self._line("gaps", {
                    "stream": g.stream, "source": g.source, "first_seq": g.first_seq,
                    "last_seq": g.last_seq, "count": g.count, "wall_us": now}))
        dirty = self.book.clean()
        for stream, source, st in dirty:
            lines.append(self._line("sources", {"stream": stream, "source": source,
                                                "last_seq": st.last_seq, "resets": st.resets}))
        lines.append(self._line("commit", {"records": res.written, "wall_us": now}))
        start = self.f.tell()
        try:
            self.f.write(b"".join(lines))
            self.f.flush()
            if self.fsync:
                os.fsync(self.f.fileno())
        except OSError as e:
            self.book.restore(snap)
            self.book.dirty.update((s, src) for s, src, _ in dirty)
            self._cut(start)
            raise StoreUnavailable(f"jsonl {self.path}: {e}") from e
        self.keys |= new_keys
        return res

    def _cut(self, offset: int) -> None:
        """Remove a half-written batch (the next open would cut it anyway)."""
        try:
            self.f.close()
        except OSError:  # the buffered rest could not be flushed: it is being cut anyway
            pass
        with open(self.path, "r+b") as f:
            f.truncate(offset)
        self.f = open(self.path, "ab")

    def close(self) -> None:
        self.f.close()
