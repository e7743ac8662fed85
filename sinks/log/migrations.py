"""The log's schema as ordered migration steps, shared by SQLite and PostgreSQL.

``schema_migrations`` records which steps a database has; opening a store applies the missing
ones in order, inside one transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL an advisory lock),
so two sinks opening a fresh database at once do not both migrate it. A database written by a
newer build (a version this code does not know) is refused rather than guessed at.

Append new steps at the end; never edit a step that has shipped. The DDL is written once for
both engines: ``{pk}`` is the only dialect difference (an auto-numbered row id); BIGINT and
DOUBLE PRECISION mean the same to both, and JSON documents are TEXT in both so that exports
read them the same way. ``{blob}`` is a byte string (SQLite BLOB, PostgreSQL BYTEA): a bout's
embedding, float32 little-endian.
"""

from __future__ import annotations

from streams.schema import CYCLE_METRICS

_METRIC_COLUMNS = "".join(f"    {k} DOUBLE PRECISION,\n" for k in CYCLE_METRICS)
_CYCLE_V3_COLUMNS = ", ".join(["source", "seq", "session", "subject", "track", "side", "start_us",
                               "end_us", "method", *CYCLE_METRICS, "extra_metrics", "flags",
                               "anomaly_subject", "anomaly", "t_us", "host_us", "wall_us"])
_EVENT_V3_COLUMNS = ("source, seq, session, track, side, kind, event_us, method, confidence, "
                     "t_us, host_us, wall_us, subject")

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "records, bookkeeping and gaps", [
        """CREATE TABLE sessions (
    session TEXT PRIMARY KEY,
    first_wall_us BIGINT NOT NULL,
    last_wall_us BIGINT NOT NULL,
    cycles BIGINT NOT NULL
)""",
        """CREATE TABLE tracks (
    session TEXT NOT NULL,
    source TEXT NOT NULL,
    track BIGINT NOT NULL,
    subject TEXT NOT NULL,
    first_start_us BIGINT NOT NULL,
    last_end_us BIGINT NOT NULL,
    first_wall_us BIGINT NOT NULL,
    last_wall_us BIGINT NOT NULL,
    cycles BIGINT NOT NULL,
    PRIMARY KEY (session, source, track)
)""",
        """CREATE TABLE cycles (
    id {pk},
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    session TEXT NOT NULL,
    subject TEXT NOT NULL,
    track BIGINT NOT NULL,
    side TEXT NOT NULL,
    start_us BIGINT NOT NULL,
    end_us BIGINT NOT NULL,
    method TEXT NOT NULL,
""" + _METRIC_COLUMNS + """    extra_metrics TEXT,
    flags TEXT NOT NULL,
    anomaly_subject DOUBLE PRECISION,
    anomaly TEXT,
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    UNIQUE (source, track, side, start_us, method)
)""",
        """CREATE TABLE events (
    id {pk},
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    session TEXT NOT NULL,
    track BIGINT NOT NULL,
    side TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_us BIGINT NOT NULL,
    method TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    UNIQUE (source, track, side, kind, event_us, method)
)""",
        """CREATE TABLE alerts (
    id {pk},
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    text TEXT NOT NULL,
    track BIGINT,
    value DOUBLE PRECISION,
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    UNIQUE (alert_id, state)
)""",
        """CREATE TABLE status (
    id {pk},
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    process TEXT NOT NULL,
    role TEXT NOT NULL,
    uptime_s DOUBLE PRECISION NOT NULL,
    counters TEXT NOT NULL,
    latency_ms TEXT NOT NULL,
    state TEXT NOT NULL,
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    UNIQUE (source, seq, t_us)
)""",
        """CREATE TABLE gaps (
    id {pk},
    stream TEXT NOT NULL,
    source TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    count BIGINT NOT NULL,
    wall_us BIGINT NOT NULL
)""",
        """CREATE TABLE sources (
    stream TEXT NOT NULL,
    source TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    resets BIGINT NOT NULL,
    PRIMARY KEY (stream, source)
)""",
    ]),
    (2, "indexes for export by session, track and time", [
        "CREATE INDEX cycles_session_wall ON cycles (session, wall_us)",
        "CREATE INDEX cycles_track ON cycles (source, track)",
        "CREATE INDEX cycles_wall ON cycles (wall_us)",
        "CREATE INDEX events_wall ON events (wall_us)",
        "CREATE INDEX alerts_wall ON alerts (wall_us)",
        "CREATE INDEX status_wall ON status (wall_us)",
        "CREATE INDEX gaps_wall ON gaps (wall_us)",
    ]),
    # One subject's rows must be removable exactly (README, "Privacy"): events get the subject
    # the worker now puts on them (rows from before keep ''), and a track row is per subject, so
    # two people who got the same body id in one session (a restarted worker or camera) no
    # longer share, and overwrite, one summary row.
    (3, "subject on events, tracks per subject, indexes for deletion by subject", [
        "ALTER TABLE events ADD COLUMN subject TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE tracks_v3 (
    session TEXT NOT NULL,
    source TEXT NOT NULL,
    track BIGINT NOT NULL,
    subject TEXT NOT NULL,
    first_start_us BIGINT NOT NULL,
    last_end_us BIGINT NOT NULL,
    first_wall_us BIGINT NOT NULL,
    last_wall_us BIGINT NOT NULL,
    cycles BIGINT NOT NULL,
    PRIMARY KEY (session, source, track, subject)
)""",
        """INSERT INTO tracks_v3 (session, source, track, subject, first_start_us, last_end_us,
    first_wall_us, last_wall_us, cycles)
SELECT session, source, track, subject, first_start_us, last_end_us, first_wall_us,
    last_wall_us, cycles FROM tracks""",
        "DROP TABLE tracks",
        "ALTER TABLE tracks_v3 RENAME TO tracks",
        "CREATE INDEX cycles_subject ON cycles (subject)",
        "CREATE INDEX events_subject ON events (subject)",
        "CREATE INDEX tracks_subject ON tracks (subject)",
    ]),
    # A re-run of the same walk (the demo run twice, a camera whose clock restarted, a file
    # analysed again) repeats source, track and start times: without the worker's run in the
    # key its records were dropped as duplicates of the first run's. Rows from before get ''.
    (4, "the worker run in the content key of cycles and events", [
        """CREATE TABLE cycles_v4 (
    id {pk},
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    session TEXT NOT NULL,
    subject TEXT NOT NULL,
    track BIGINT NOT NULL,
    side TEXT NOT NULL,
    start_us BIGINT NOT NULL,
    end_us BIGINT NOT NULL,
    method TEXT NOT NULL,
""" + _METRIC_COLUMNS + """    extra_metrics TEXT,
    flags TEXT NOT NULL,
    anomaly_subject DOUBLE PRECISION,
    anomaly TEXT,
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    run TEXT NOT NULL DEFAULT '',
    UNIQUE (run, source, track, side, start_us, method)
)""",
        f"INSERT INTO cycles_v4 ({_CYCLE_V3_COLUMNS}) SELECT {_CYCLE_V3_COLUMNS} FROM cycles "
        "ORDER BY id",
        "DROP TABLE cycles",
        "ALTER TABLE cycles_v4 RENAME TO cycles",
        """CREATE TABLE events_v4 (
    id {pk},
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    session TEXT NOT NULL,
    track BIGINT NOT NULL,
    side TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_us BIGINT NOT NULL,
    method TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    run TEXT NOT NULL DEFAULT '',
    UNIQUE (run, source, track, side, kind, event_us, method)
)""",
        f"INSERT INTO events_v4 ({_EVENT_V3_COLUMNS}) SELECT {_EVENT_V3_COLUMNS} FROM events "
        "ORDER BY id",
        "DROP TABLE events",
        "ALTER TABLE events_v4 RENAME TO events",
        "CREATE INDEX cycles_session_wall ON cycles (session, wall_us)",
        "CREATE INDEX cycles_track ON cycles (source, track)",
        "CREATE INDEX cycles_wall ON cycles (wall_us)",
        "CREATE INDEX cycles_subject ON cycles (subject)",
        "CREATE INDEX events_wall ON events (wall_us)",
        "CREATE INDEX events_subject ON events (subject)",
    ]),
    # A walking bout's summary, model estimates and gait embedding (GaitBout). The embedding is
    # the one column of the log that can re-identify a person on its own (README, "Privacy"):
    # it is deleted with the subject's other rows.
    (5, "walking bouts with summary, estimates and embedding", [
        """CREATE TABLE bouts (
    id {pk},
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    session TEXT NOT NULL,
    subject TEXT NOT NULL,
    track BIGINT NOT NULL,
    start_us BIGINT NOT NULL,
    end_us BIGINT NOT NULL,
    method TEXT NOT NULL,
    cycles BIGINT NOT NULL,
    trusted_cycles BIGINT NOT NULL,
    summary TEXT NOT NULL,
    estimates TEXT,
    embedding_model TEXT NOT NULL,
    embedding {blob},
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    run TEXT NOT NULL,
    UNIQUE (run, source, track, start_us, method)
)""",
        "CREATE INDEX bouts_session_wall ON bouts (session, wall_us)",
        "CREATE INDEX bouts_subject ON bouts (subject)",
    ]),
    # A kiosk session is started and ended by staff (SessionControl): its patient's pseudonym,
    # the optional height, age and walking aid the report's normal ranges and header use, and
    # when it started and ended, as the worker confirmed them after the records they concern.
    # One row per (session, action): a repeated confirmation is the same row.
    (6, "kiosk sessions: who, what was entered, when they started and ended", [
        """CREATE TABLE session_controls (
    session TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    camera TEXT NOT NULL,
    height_m DOUBLE PRECISION,
    age_y DOUBLE PRECISION,
    assistive_device TEXT NOT NULL,
    source TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t_us BIGINT NOT NULL,
    host_us BIGINT NOT NULL,
    wall_us BIGINT NOT NULL,
    PRIMARY KEY (session, action)
)""",
        "CREATE INDEX session_controls_subject ON session_controls (subject)",
    ]),
]

LATEST_VERSION = MIGRATIONS[-1][0]

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_wall_us BIGINT NOT NULL
)"""


class SchemaError(RuntimeError):
    """The database's schema cannot be used by this build."""


def render(sql: str, pk: str, blob: str) -> str:
    return sql.replace("{pk}", pk).replace("{blob}", blob)


def pending(applied: set[int], upto: int = LATEST_VERSION) -> list[tuple[int, str, list[str]]]:
    """The steps a database with ``applied`` versions still needs, in order."""
    unknown = {v for v in applied if v > LATEST_VERSION}
    if unknown:
        raise SchemaError(f"database has schema version(s) {sorted(unknown)} newer than this "
                          f"build knows ({LATEST_VERSION}); upgrade gaitstream")
    return [m for m in MIGRATIONS if m[0] not in applied and m[0] <= upto]


def table_columns() -> dict[str, list[tuple[str, str]]]:
    """(column, SQL type) per table, read from the CREATE / ALTER / DROP TABLE steps above
    (exports type their columns from this, so a new column needs no second list)."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for _, _, statements in MIGRATIONS:
        for s in statements:
            head, _, body = s.partition("(")
            words = head.split()
            if words[:2] == ["DROP", "TABLE"]:
                tables.pop(words[2])
                continue
            if words[:2] == ["ALTER", "TABLE"]:
                if words[3:5] == ["RENAME", "TO"]:
                    tables[words[5]] = tables.pop(words[2])
                elif words[3:5] == ["ADD", "COLUMN"]:
                    tables[words[2]].append((words[5], words[6]))
                continue
            if words[:2] != ["CREATE", "TABLE"]:
                continue
            cols = tables.setdefault(words[2], [])
            for line in body.splitlines():
                parts = line.strip().rstrip(",").split()
                if len(parts) < 2 or parts[0] in ("PRIMARY", "UNIQUE", ")"):
                    continue
                sqltype = {"{pk}": "BIGINT", "{blob}": "BLOB"}.get(parts[1], parts[1])
                cols.append((parts[0], "DOUBLE PRECISION" if sqltype == "DOUBLE" else sqltype))
    return tables
