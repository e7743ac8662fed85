"""Export logged records to CSV or Parquet, by session, track or time range.

``gaitstream export DB --format csv|parquet --out PATH [--table cycles] [--session S]
[--track [SOURCE/]N] [--since ISO] [--until ISO]``

DB is a SQLite file or a ``postgresql://`` URL; it is opened read-only and never created or
migrated. Times select on ``wall_us``, the UTC time the sink received the record; ISO times
without a zone are the machine's local time. Every exported table gets a ``wall_time`` column
(ISO 8601 UTC in CSV, a UTC timestamp in Parquet). JSON columns (flags, anomaly, counters...)
stay JSON text. Exports carry the pseudonymous session and subject ids of the log, nothing more.
Cycles also get ``trusted`` (no flag of ``streams.schema.UNTRUSTED_FLAGS``: the cycles summaries,
alert windows and the walk report use) and ``not_trusted_because`` (those flags in plain words,
empty for a trusted cycle), so that a reader of the file need not know the flag names.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sinks.log.migrations import table_columns
from sinks.log.sql import connect_log_readonly
from streams.schema import UNTRUSTED_FLAGS, flag_words

log = logging.getLogger(__name__)

EXPORT_TABLES = ("cycles", "events", "alerts", "status", "gaps", "tracks", "sessions",
                 "session_controls")
FILTERS = {  # which filters each table can honour: (session, track, time column)
    "cycles": (True, True, "wall_us"),
    "events": (True, True, "wall_us"),
    "alerts": (False, True, "wall_us"),
    "status": (False, False, "wall_us"),
    "gaps": (False, False, "wall_us"),
    "tracks": (True, True, "last_wall_us"),
    "sessions": (True, False, "last_wall_us"),
    "session_controls": (True, False, "wall_us"),
}
CHUNK = 50_000
# columns an export of cycles adds after the table's own (and before wall_time)
TRUST_COLUMNS = ("trusted", "not_trusted_because")


class ExportError(ValueError):
    """The export cannot be done as asked; the message says why."""


def parse_time(s: str) -> int:
    """ISO 8601 → UTC microseconds; a time without a zone is local time."""
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"not an ISO 8601 time: {s!r} (e.g. 2024-05-02T14:30:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # the machine's local zone
    return int(dt.timestamp() * 1_000_000)


def parse_track(s: str) -> tuple[str | None, int]:
    source, _, n = s.rpartition("/")
    try:
        return (source or None), int(n)
    except ValueError:
        raise ExportError(f"--track wants N or SOURCE/N, got {s!r}") from None


def build_query(table: str, session: str | None = None, track: str | None = None,
                since: str | None = None, until: str | None = None
                ) -> tuple[str, list[Any], list[str]]:
    """SQL (``?`` placeholders), its parameters and the exported columns."""
    if table not in EXPORT_TABLES:
        raise ExportError(f"table {table!r} not one of {EXPORT_TABLES}")
    has_session, has_track, time_col = FILTERS[table]
    cols = [c for c, _ in table_columns()[table] if c != "id"]
    where, params = [], []
    if session is not None:
        if not has_session:
            raise ExportError(f"{table} records have no session; drop --session")
        where.append("session = ?")
        params.append(session)
    if track is not None:
        if not has_track:
            raise ExportError(f"{table} records have no track; drop --track")
        source, n = parse_track(track)
        where.append("track = ?")
        params.append(n)
        if source is not None:
            where.append("source = ?")
            params.append(source)
    if since is not None:
        where.append(f"{time_col} >= ?")
        params.append(parse_time(since))
    if until is not None:
        where.append(f"{time_col} < ?")
        params.append(parse_time(until))
    sql = f"SELECT {', '.join(cols)} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = "id" if any(c == "id" for c, _ in table_columns()[table]) else time_col
    return sql + f" ORDER BY {order}", params, cols


def _rows(db: str, sql: str, params: list[Any]) -> Iterator[tuple]:
    """Run the query now (errors before any output file exists), stream its rows later."""
    conn, adapt = connect_log_readonly(db, ExportError)
    try:
        cur = conn.execute(adapt(sql), params)
    except BaseException:
        conn.close()
        raise

    def stream() -> Iterator[tuple]:
        try:
            while batch := cur.fetchmany(CHUNK):
                yield from batch
        finally:
            conn.close()
    return stream()


def trust_of(flags_json: str | None) -> tuple[bool, str]:
    """(trusted, why not in words) of a cycle's stored flags (a JSON list)."""
    flags = json.loads(flags_json) if flags_json else []
    bad = [f for f in flags if f in UNTRUSTED_FLAGS]
    return not bad, flag_words(bad)


def _with_trust(rows: Iterator[tuple], cols: list[str]) -> Iterator[tuple]:
    fi = cols.index("flags")
    for r in rows:
        yield (*r, *trust_of(r[fi]))


def _iso(us: int | None) -> str:
    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat(timespec="microseconds")


def write_csv(rows: Iterator[tuple], cols: list[str], time_col: str, out: Path | None) -> int:
    ti = cols.index(time_col)
    f = open(out, "w", newline="") if out is not None else sys.stdout
    n = 0
    try:
        w = csv.writer(f)
        w.writerow([*cols, "wall_time"])
        for r in rows:
            w.writerow([*("" if v is None else v for v in r), _iso(r[ti])])
            n += 1
    finally:
        if out is not None:
            f.close()
    return n


def write_parquet(rows: Iterator[tuple], table: str, cols: list[str], time_col: str,
                  out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = {"BIGINT": pa.int64(), "DOUBLE PRECISION": pa.float64(), "TEXT": pa.string()}
    types = dict(table_columns()[table])
    types.update(trusted="BOOLEAN", not_trusted_because="TEXT")
    arrow["BOOLEAN"] = pa.bool_()
    schema = pa.schema([(c, arrow[types[c]]) for c in cols] +
                       [("wall_time", pa.timestamp("us", tz="UTC"))])
    ti = cols.index(time_col)
    n = 0
    with pq.ParquetWriter(out, schema) as w:
        batch: list[tuple] = []

        def flush() -> None:
            data = {c: [r[i] for r in batch] for i, c in enumerate(cols)}
            data["wall_time"] = [r[ti] for r in batch]
            w.write_table(pa.Table.from_pydict(data, schema=schema))

        for r in rows:
            batch.append(r)
            if len(batch) >= CHUNK:
                flush()
                n += len(batch)
                batch = []
        if batch or n == 0:
            flush()
            n += len(batch)
    return n


def export(db: str, fmt: str, out: Path | None, table: str = "cycles", **filters: Any) -> int:
    """Write the selected records; returns how many rows were written."""
    sql, params, cols = build_query(table, **filters)
    time_col = FILTERS[table][2]
    rows = _rows(db, sql, params)
    if table == "cycles":
        rows, cols = _with_trust(rows, cols), [*cols, *TRUST_COLUMNS]
    if fmt == "csv":
        return write_csv(rows, cols, time_col, out)
    if fmt == "parquet":
        if out is None:
            raise ExportError("Parquet needs --out FILE")
        return write_parquet(rows, table, cols, time_col, out)
    raise ExportError(f"format {fmt!r} not csv or parquet")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("db", help="log database: a SQLite file or a postgresql:// URL")
    p.add_argument("--format", choices=("csv", "parquet"), required=True)
    p.add_argument("--out", required=True, help="output file ('-' = stdout, CSV only)")
    p.add_argument("--table", choices=EXPORT_TABLES, default="cycles")
    p.add_argument("--session", help="only this (pseudonymous) session id")
    p.add_argument("--track", help="only this track: N, or SOURCE/N")
    p.add_argument("--since", help="records received at or after this ISO 8601 time")
    p.add_argument("--until", help="records received before this ISO 8601 time")


def main(args: argparse.Namespace) -> int:
    out = None if args.out == "-" else Path(args.out)
    try:
        n = export(args.db, args.format, out, args.table, session=args.session,
                   track=args.track, since=args.since, until=args.until)
    except (ExportError, FileNotFoundError) as e:
        print(f"export: {e}", file=sys.stderr)
        return 2
    if out is not None:
        print(f"{n} {args.table} rows written to {out}")
    return 0
