"""The log stores on real SQLite files, a real PostgreSQL server and real JSONL files:
migrations, idempotent inserts, exact round trips of the cycle record, gap accounting."""

import json
import sqlite3
import threading

import pytest
from sinks_servers import pg_dsn  # noqa: F401 - fixture

from sinks.log.gaps import SeqBook
from sinks.log.jsonl import JsonlCorrupt, JsonlStore
from sinks.log.migrations import LATEST_VERSION, MIGRATIONS, SchemaError
from sinks.log.records import to_record, wall_us
from sinks.log.sql import postgres_store, sqlite_store
from streams.schema import CYCLE_METRICS, Alert, GaitCycle, GaitEvent, Status


def cycle(seq, source="cam", track=1, start_us=None, session="S-7f3a", subject="P-0042",
          run="", **metrics):
    m = {k: None for k in CYCLE_METRICS}
    m.update(speed_mps=1.0 + seq / 100, cadence_spm=110.0 + seq, stride_length_m=1.25)
    m.update(metrics)
    start = start_us if start_us is not None else seq * 1_100_000
    return GaitCycle(source=source, seq=seq, t_us=start + 1_100_000, host_us=seq, track=track,
                     side="left" if seq % 2 else "right", start_us=start,
                     end_us=start + 1_100_000, metrics=m, flags=["low_confidence"] * (seq % 3 == 0),
                     anomaly={"subject": 0.1 * seq, "left_knee": 0.5}, session=session,
                     subject=subject, run=run)


def records(msgs, session="S-7f3a"):
    now = wall_us()
    return [to_record(m, now, session) for m in msgs]


def _opener(kind, request, tmp_path):
    if kind == "postgresql":
        dsn = request.getfixturevalue("pg_dsn")
        opened = []

        def open_pg():
            s = postgres_store(dsn)
            opened.append(s)
            return s
        yield open_pg
        for s in opened:
            s.close()
    elif kind == "sqlite":
        yield lambda: sqlite_store(tmp_path / "log.db")
    else:
        yield lambda: JsonlStore(tmp_path / "log.jsonl")


@pytest.fixture(params=["sqlite", "postgresql", "jsonl"])
def reopen(request, tmp_path):
    """A function that opens (again) one store of the parametrised kind."""
    yield from _opener(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def reopen_db(request, tmp_path):
    """The same for the two database stores only."""
    yield from _opener(request.param, request, tmp_path)


def rows(store, table, order="seq"):
    """All rows of a table as dicts (JSONL: parsed from the file)."""
    if isinstance(store, JsonlStore):
        lines = [json.loads(s) for s in store.path.read_text().splitlines()]
        got = [ln for ln in lines if ln["table"] == table]
        return sorted(got, key=lambda r: r.get(order, 0))
    tiebreak = ", id" if table not in ("sessions", "tracks", "sources") else ""
    cols, it = store.query(f"SELECT * FROM {table} ORDER BY {order}{tiebreak}")
    out = [dict(zip(cols, r)) for r in it]
    nested = {"cycles": ("flags", "anomaly", "extra_metrics"),
              "status": ("counters", "state", "latency_ms")}.get(table, ())
    for r in out:
        for k in nested:
            if isinstance(r.get(k), str):
                r[k] = json.loads(r[k])
    return out


def test_cycle_record_round_trips_exactly_and_redelivery_stores_once(reopen):
    s = reopen()
    msgs = [cycle(i, knee_rom_deg=55.5 + i, hip_rom_deg=None, swing_pct=38.25)
            for i in range(1, 7)]
    msgs[2].metrics["toe_clearance_m"] = 0.021  # a measure this build does not know of
    ev = GaitEvent(source="cam", seq=7, t_us=9, host_us=9, track=1, side="left",
                   kind="foot_off", event_us=8_250_000, method="classical", confidence=0.75)
    first = s.write(records(msgs + [ev]))
    assert first.inserted == {"cycles": 6, "events": 1} and first.duplicates == 0
    again = s.write(records(msgs + [ev]))  # e.g. a replay after a crash
    assert again.written == 0 and again.duplicates == 7 and again.gaps == []
    got = rows(s, "cycles")
    assert len(got) == 6
    for m, r in zip(msgs, got):
        for k in CYCLE_METRICS:
            assert r[k] == m.metrics[k], k
        assert (r["session"], r["subject"], r["track"], r["side"], r["start_us"], r["end_us"]) \
            == (m.session, m.subject, m.track, m.side, m.start_us, m.end_us)
        assert r["flags"] == m.flags
        assert r["anomaly_subject"] == pytest.approx(m.anomaly["subject"])
        assert r["anomaly"] == pytest.approx(m.anomaly)
    assert got[2]["extra_metrics"] == {"toe_clearance_m": 0.021}
    assert got[0]["extra_metrics"] is None
    (e,) = rows(s, "events")
    assert (e["kind"], e["event_us"], e["confidence"], e["session"]) == \
        ("foot_off", 8_250_000, 0.75, "S-7f3a")
    s.close()


def test_sessions_and_tracks_summarise_new_cycles_only(reopen_db):
    s = reopen_db()  # JSONL keeps records only; sessions and tracks are database tables
    msgs = [cycle(i, track=1 + (i > 3)) for i in range(1, 7)]
    s.write(records(msgs))
    s.write(records(msgs[:4]))  # duplicates must not count again
    (sess,) = rows(s, "sessions", "session")
    assert sess["session"] == "S-7f3a" and sess["cycles"] == 6
    tr = rows(s, "tracks", "track")
    assert [(t["track"], t["cycles"], t["subject"]) for t in tr] == \
        [(1, 3, "P-0042"), (2, 3, "P-0042")]
    assert tr[0]["first_start_us"] == msgs[0].start_us and tr[0]["last_end_us"] == msgs[2].end_us
    s.close()


def test_sequence_gaps_are_counted_and_survive_a_restart(reopen):
    s = reopen()
    res = s.write(records([cycle(i) for i in (1, 2, 3, 7, 8)]))
    assert [(g.first_seq, g.last_seq, g.count) for g in res.gaps] == [(4, 6, 3)]
    s.close()
    s = reopen()  # the bookkeeping was committed with the data
    res = s.write(records([cycle(11), cycle(12)]))
    assert [(g.first_seq, g.last_seq) for g in res.gaps] == [(9, 10)]
    # the worker restarted: seq begins again at 1; a reset, not a gap
    res = s.write(records([cycle(1, start_us=50_000_000), cycle(2, start_us=51_000_000)]))
    assert res.gaps == [] and res.written == 2
    gaps = rows(s, "gaps", "first_seq")
    assert sum(g["count"] for g in gaps) == 5
    assert {(g["stream"], g["source"]) for g in gaps} == {("gait", "cam")}
    if not isinstance(s, JsonlStore):
        (src,) = [r for r in rows(s, "sources", "source") if r["stream"] == "gait"]
        assert (src["last_seq"], src["resets"]) == (2, 1)
    s.close()


def test_upstream_drop_counters_from_status_become_gaps(reopen):
    s = reopen()
    counts = [0, 3, 3, 10, 2, 2]  # the worker restarted before reporting 2
    sts = [Status(source="worker", seq=i + 1, t_us=i, host_us=i, process="worker",
                  role="worker", uptime_s=float(i), counters={"dropped_upstream": float(c)})
           for i, c in enumerate(counts)]
    res = s.write(records(sts))
    assert [g.count for g in res.gaps] == [3, 7, 2]
    s.close()
    s = reopen()
    res = s.write(records([Status(source="worker", seq=9, t_us=9, host_us=9, process="worker",
                                  role="worker", counters={"dropped_upstream": 6.0})]))
    assert [(g.stream, g.count) for g in res.gaps] == [("upstream", 4)]
    assert sum(g["count"] for g in rows(s, "gaps", "first_seq")) == 16
    s.close()


def test_alert_rows_key_on_id_and_state(reopen):
    s = reopen()
    a = dict(source="alerts", t_us=1, host_us=1, alert_id="slow:1", rule="slow",
             severity="warning", text="slow", track=3, value=0.6)
    res = s.write(records([Alert(seq=1, state="raised", **a), Alert(seq=2, state="cleared", **a),
                           Alert(seq=1, state="raised", **a)]))
    assert res.inserted == {"alerts": 2} and res.duplicates == 1
    assert [(r["alert_id"], r["state"], r["value"]) for r in rows(s, "alerts")] == \
        [("slow:1", "raised", 0.6), ("slow:1", "cleared", 0.6)]
    s.close()


def test_postgres_refuses_only_the_bad_record(pg_dsn):  # noqa: F811
    s = postgres_store(pg_dsn)
    bad = cycle(2, source="c\x00m")  # PostgreSQL TEXT cannot hold NUL; SQLite can
    res = s.write(records([cycle(1), bad, cycle(3)]))
    assert res.inserted == {"cycles": 2}
    assert len(res.rejected) == 1 and "NUL" in res.rejected[0][1]
    assert [r["seq"] for r in rows(s, "cycles")] == [1, 3]
    assert [(g.first_seq, g.last_seq) for g in res.gaps] == [(2, 2)]  # never stored = lost
    s.close()


def schema_objects(store):
    if store.kind == "sqlite":
        _, it = store.query("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                            "name NOT LIKE 'sqlite_%'")
    else:
        _, it = store.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND "
                            "indexname NOT LIKE '%pkey' AND indexname NOT LIKE '%key'")
    return {r[0] for r in it}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_migrations_upgrade_an_old_database_in_order_and_keep_its_data(engine, tmp_path,
                                                                        request):
    if engine == "sqlite":
        def open_(**kw):
            return sqlite_store(tmp_path / "old.db", **kw)
    else:
        dsn = request.getfixturevalue("pg_dsn")

        def open_(**kw):
            return postgres_store(dsn, **kw)
    old = open_(schema_upto=1)
    assert old.schema_version() == 1 and schema_objects(old) == set()
    old.close()
    # rows as a build at schema 2 wrote them (raw SQL: this build's inserts need schema 3)
    old = open_(schema_upto=2)
    for sql in ("INSERT INTO tracks (session, source, track, subject, first_start_us, "
                "last_end_us, first_wall_us, last_wall_us, cycles) VALUES "
                "('S-7f3a', 'cam', 1, 'P-0042', 1100000, 3300000, 5, 6, 2)",
                "INSERT INTO events (source, seq, session, track, side, kind, event_us, method, "
                "confidence, t_us, host_us, wall_us) VALUES ('cam', 1, 'S-7f3a', 1, 'left', "
                "'foot_off', 5, 'classical', 1.0, 5, 5, 5)"):
        old.conn.execute(sql)
    old.close()
    # a cycle as a build at schema 3 wrote it (no run)
    old = open_(schema_upto=3)
    old.conn.execute("INSERT INTO cycles (source, seq, session, subject, track, side, start_us, "
                     "end_us, method, flags, t_us, host_us, wall_us) VALUES ('cam', 9, 'S-7f3a', "
                     "'P-0042', 1, 'left', 9900000, 11000000, 'classical', '[]', 7, 7, 7)")
    old.close()
    new = open_()
    assert new.schema_version() == LATEST_VERSION == 6
    _, it = new.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [tuple(r) for r in it] == [(v, n) for v, n, _ in MIGRATIONS]
    assert {"cycles_session_wall", "cycles_subject", "cycles_track", "cycles_wall",
            "events_wall", "events_subject", "tracks_subject", "bouts_subject",
            "bouts_session_wall", "session_controls_subject"} <= schema_objects(new)
    (ev,) = rows(new, "events")
    assert (ev["seq"], ev["subject"], ev["run"]) == (1, "", "")  # old rows keep their data
    (old_cycle,) = rows(new, "cycles")
    assert (old_cycle["seq"], old_cycle["start_us"], old_cycle["run"]) == (9, 9900000, "")
    # body id 1 again in the same session, another person: a track row of its own
    new.write(records([cycle(1, subject="anon-1"), cycle(3, subject="anon-1")]))
    tr = rows(new, "tracks", "subject")
    assert [(t["track"], t["subject"], t["cycles"]) for t in tr] == \
        [(1, "P-0042", 2), (1, "anon-1", 2)]
    assert [r["seq"] for r in rows(new, "cycles")] == [1, 3, 9]
    assert new.migrate() == []  # nothing left to apply
    new.close()


def test_a_rerun_of_the_same_walk_is_stored_beside_the_first(reopen):
    """Source, track and start times repeat when the same walk is analysed again (the demo run
    twice, a camera clock that restarted): the worker's run keeps both runs' records; within
    one run a record delivered twice is still stored once."""
    s = reopen()
    first = [cycle(1, run="run-a"), cycle(2, run="run-a")]
    again = [cycle(1, run="run-b"), cycle(2, run="run-b")]
    assert s.write(records(first)).written == 2
    res = s.write(records(first + again))
    assert res.written == 2 and res.duplicates == 2
    s.close()
    s = reopen()
    got = rows(s, "cycles")
    assert sorted((r["run"], r["seq"]) for r in got) == [("run-a", 1), ("run-a", 2),
                                                         ("run-b", 1), ("run-b", 2)]
    s.close()


def test_a_database_from_a_newer_build_is_refused(tmp_path):
    s = sqlite_store(tmp_path / "x.db")
    s.close()
    c = sqlite3.connect(tmp_path / "x.db")
    c.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    c.commit()
    c.close()
    with pytest.raises(SchemaError, match="newer than this build"):
        sqlite_store(tmp_path / "x.db")


def test_two_sinks_opening_a_fresh_sqlite_database_migrate_it_once(tmp_path):
    errors, stores = [], []
    barrier = threading.Barrier(4)

    def go():
        barrier.wait()
        try:
            stores.append(sqlite_store(tmp_path / "race.db", busy_timeout_s=10))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)
    ts = [threading.Thread(target=go) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert errors == [] and len(stores) == 4
    _, it = stores[0].query("SELECT COUNT(*) FROM schema_migrations")
    assert next(it)[0] == LATEST_VERSION
    for s in stores:
        s.close()


def test_sqlite_runs_in_wal_with_full_sync(tmp_path):
    s = sqlite_store(tmp_path / "w.db")
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()


def test_jsonl_cuts_a_torn_batch_and_refuses_a_corrupt_committed_one(tmp_path):
    p = tmp_path / "log.jsonl"
    s = JsonlStore(p)
    s.write(records([cycle(1), cycle(2)]))
    s.close()
    good = p.read_bytes()
    # a crash in the middle of the next batch: a whole record line, then half of one
    with open(p, "ab") as f:
        f.write(JsonlStore._line("cycles", records([cycle(3)])[0].row))
        f.write(b'{"table": "cycles", "source": "ca')
    s = JsonlStore(p)
    assert p.read_bytes() == good
    res = s.write(records([cycle(3), cycle(1)]))  # 3 is new again; 1 is still known
    assert res.inserted == {"cycles": 1} and res.duplicates == 1 and res.gaps == []
    s.close()
    p.write_bytes(good.replace(b'"table":"cycles"', b'"table":cycles"', 1))
    with pytest.raises(JsonlCorrupt):
        JsonlStore(p)


def test_seqbook_restores_after_a_failed_transaction():
    b = SeqBook()
    b.observe_seq("gait", "cam", 1)
    snap = b.snapshot()
    assert b.observe_seq("gait", "cam", 5).count == 3
    b.restore(snap)
    assert b.observe_seq("gait", "cam", 5).count == 3  # counted once the write succeeds
