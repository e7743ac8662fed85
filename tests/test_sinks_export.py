"""``gaitstream export`` from real SQLite and PostgreSQL logs to CSV and Parquet, with the
filters checked against the records that were written."""

import csv
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest
from sinks_servers import pg_dsn  # noqa: F401 - fixture

from deploy.cli import main as cli
from sinks.log.migrations import table_columns
from sinks.log.records import TABLE_COLUMNS, to_record
from sinks.log.sql import postgres_store, sqlite_store
from streams.schema import CYCLE_METRICS, Alert, GaitCycle

T0 = int(datetime(2024, 5, 2, 14, 0, tzinfo=timezone.utc).timestamp() * 1e6)


def dataset():
    """40 cycles: 2 sessions x 2 sources x 2 tracks, one received every 10 s from T0."""
    out = []
    for i in range(40):
        session = "S-A" if i < 20 else "S-B"
        source = "cam" if i % 2 else "cam2"
        track = 1 + (i // 2) % 2
        m = {k: None for k in CYCLE_METRICS}
        m.update(speed_mps=0.5 + i / 40, knee_rom_deg=50.0 + i)
        c = GaitCycle(source=source, seq=i + 1, t_us=i, host_us=i, track=track, side="left",
                      start_us=i * 1_000_000, end_us=i * 1_000_000 + 1_050_000, metrics=m,
                      flags=["turning"] if i % 5 == 0 else [], anomaly={"subject": i / 10},
                      session=session, subject=f"P-{session}-{source}-{track}")
        out.append((c, T0 + i * 10_000_000))
    return out


def fill(store):
    data = dataset()
    store.write([to_record(c, wall, "") for c, wall in data])
    a = Alert(source="alerts", seq=1, t_us=1, host_us=1, alert_id="slow:1", rule="slow",
              severity="warning", state="raised", text="slow", track=2, value=0.6)
    store.write([to_record(a, T0 + 5_000_000)])
    store.close()
    return data


@pytest.fixture
def sqlite_log(tmp_path):
    db = tmp_path / "log.db"
    return str(db), fill(sqlite_store(db))


def iso(us):
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_export_columns_are_the_schema_columns():
    for table, cols in TABLE_COLUMNS.items():
        assert [c for c, _ in table_columns()[table] if c != "id"] == cols


def test_csv_by_session_track_and_time_range(sqlite_log, tmp_path, capsys):
    db, data = sqlite_log
    out = tmp_path / "x.csv"
    since, until = iso(T0 + 50_000_000), iso(T0 + 300_000_000)
    assert cli(["export", db, "--format", "csv", "--out", str(out), "--session", "S-A",
                "--track", "cam/2", "--since", since, "--until", until]) == 0
    want = [(c, w) for c, w in data if c.session == "S-A" and c.source == "cam" and
            c.track == 2 and T0 + 50_000_000 <= w < T0 + 300_000_000]
    got = read_csv(out)
    assert len(want) >= 2 and [int(r["seq"]) for r in got] == [c.seq for c, _ in want]
    for r, (c, w) in zip(got, want):
        assert float(r["speed_mps"]) == c.metrics["speed_mps"]
        assert r["stride_time_s"] == ""  # None stays empty, not 0 or NaN
        assert r["wall_time"] == datetime.fromtimestamp(w / 1e6, tz=timezone.utc).isoformat(
            timespec="microseconds")
    assert f"{len(want)} cycles rows written" in capsys.readouterr().out


def test_parquet_types_and_values(sqlite_log, tmp_path):
    db, data = sqlite_log
    out = tmp_path / "x.parquet"
    assert cli(["export", db, "--format", "parquet", "--out", str(out), "--track", "1"]) == 0
    t = pq.read_table(out)
    want = [c for c, _ in data if c.track == 1]
    assert t.num_rows == len(want) == 20
    assert str(t.schema.field("seq").type) == "int64"
    assert str(t.schema.field("stride_time_s").type) == "double"  # all None, still typed
    assert str(t.schema.field("wall_time").type) == "timestamp[us, tz=UTC]"
    assert t.column("knee_rom_deg").to_pylist() == [c.metrics["knee_rom_deg"] for c in want]
    assert t.column("stride_time_s").null_count == 20
    assert t.column("subject").to_pylist() == [c.subject for c in want]


def test_other_tables_and_empty_selections(sqlite_log, tmp_path):
    db, _ = sqlite_log
    out = tmp_path / "a.csv"
    assert cli(["export", db, "--format", "csv", "--out", str(out), "--table", "alerts"]) == 0
    (a,) = read_csv(out)
    assert (a["alert_id"], a["state"], a["track"]) == ("slow:1", "raised", "2")
    out = tmp_path / "t.parquet"
    assert cli(["export", db, "--format", "parquet", "--out", str(out), "--table", "tracks",
                "--session", "S-B"]) == 0
    tracks = pq.read_table(out).to_pylist()
    assert sorted((t["source"], t["track"], t["cycles"]) for t in tracks) == \
        [("cam", 1, 5), ("cam", 2, 5), ("cam2", 1, 5), ("cam2", 2, 5)]
    out = tmp_path / "none.parquet"
    assert cli(["export", db, "--format", "parquet", "--out", str(out), "--session",
                "nobody"]) == 0
    assert pq.read_table(out).num_rows == 0


@pytest.mark.parametrize("args, message", [
    (["--table", "alerts", "--session", "S-A"], "alerts records have no session"),
    (["--since", "yesterday"], "not an ISO 8601 time"),
    (["--track", "cam/x"], "--track wants N or SOURCE/N"),
])
def test_bad_requests_fail_with_a_reason_and_write_nothing(sqlite_log, tmp_path, capsys, args,
                                                           message):
    db, _ = sqlite_log
    out = tmp_path / "bad.csv"
    assert cli(["export", db, "--format", "csv", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_a_missing_database_is_not_created(tmp_path, capsys):
    missing = tmp_path / "nope.db"
    assert cli(["export", str(missing), "--format", "csv", "--out", str(tmp_path / "o.csv")]) \
        == 2
    assert "no log database" in capsys.readouterr().err and not missing.exists()


def test_postgresql_export_matches_sqlite_export(sqlite_log, pg_dsn, tmp_path):  # noqa: F811
    db, _ = sqlite_log
    fill(postgres_store(pg_dsn))
    a, b = tmp_path / "sqlite.parquet", tmp_path / "pg.parquet"
    for src, out in ((db, a), (pg_dsn, b)):
        assert cli(["export", src, "--format", "parquet", "--out", str(out), "--session",
                    "S-B", "--since", iso(T0 + 250_000_000)]) == 0
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.num_rows == 15 and ta.equals(tb)


def test_cycles_carry_trusted_and_the_reasons_in_words(sqlite_log, tmp_path):
    db, data = sqlite_log
    out = tmp_path / "c.csv"
    assert cli(["export", db, "--format", "csv", "--out", str(out)]) == 0
    got = read_csv(out)
    assert len(got) == len(data)
    for r, (c, _) in zip(got, data):
        turning = "turning" in c.flags
        assert r["trusted"] == str(not turning)
        assert r["not_trusted_because"] == ("turning" if turning else "")
    assert sum(r["trusted"] == "False" for r in got) == 8  # every 5th of 40
    pq_out = tmp_path / "c.parquet"
    assert cli(["export", db, "--format", "parquet", "--out", str(pq_out)]) == 0
    t = pq.read_table(pq_out)
    assert str(t.schema.field("trusted").type) == "bool"
    assert t.column("trusted").to_pylist() == [not ("turning" in c.flags) for c, _ in data]
    assert t.column_names[-3:] == ["trusted", "not_trusted_because", "wall_time"]
