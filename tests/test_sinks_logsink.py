"""The log sink's batching window, status thinning and options, on a real SQLite file with an
explicit clock."""

import sqlite3

import pytest

from sinks.log.sink import LogSink, LogSinkConfig
from sinks.log.sql import sqlite_store
from streams.schema import GaitCycle, GaitEvent, Status, monotonic_us
from streams.node import StatusReporter


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def cyc(seq):
    return GaitCycle(source="cam", seq=seq, t_us=seq, host_us=seq, track=2, side="right",
                     start_us=seq * 1_000_000, end_us=seq * 1_000_000 + 1_000_000,
                     metrics={"cadence_spm": 100.0 + seq}, session="S", subject="P")


def count(db, table="cycles"):
    c = sqlite3.connect(db)
    try:
        return c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        c.close()


@pytest.fixture
def sink(tmp_path):
    clock = Clock()
    cfg = LogSinkConfig(batch_max=10, batch_ms=200, status_every_s=10)
    s = LogSink(sqlite_store(tmp_path / "l.db"), cfg, StatusReporter("log", "sink"),
                session="S", clock=clock)
    s.clock_ = clock
    s.db = tmp_path / "l.db"
    yield s
    s.close()


def test_a_batch_commits_at_batch_max_or_after_batch_ms(sink):
    for i in range(1, 10):
        sink.handle("gait/cam", cyc(i))
    assert sink.flush() is False and count(sink.db) == 0  # 9 records, 0 ms old
    sink.clock_.t += 0.199
    assert sink.flush() is False and count(sink.db) == 0
    sink.clock_.t += 0.002  # the oldest record is now 201 ms old
    assert sink.flush() is True and count(sink.db) == 9
    for i in range(10, 20):
        sink.handle("gait/cam", cyc(i))
    assert sink.flush() is True and count(sink.db) == 19  # 10 = batch_max: at once
    assert sink.status.counters["written.cycles"] == 19


def test_status_latency_runs_from_host_time_to_commit(sink):
    now = monotonic_us()
    for i in range(1, 6):
        c = cyc(i)
        c.host_us = now - 50_000  # the frame that closed it entered the pipeline 50 ms ago
        sink.handle("gait/cam", c)
    future = cyc(6)
    future.host_us = now + 10_000_000  # another clock (another host, a replayed file)
    sink.handle("gait/cam", future)
    assert sink.status.snapshot().latency_ms == {}  # nothing committed yet
    sink.flush(force=True)
    lat = sink.status.snapshot().latency_ms
    assert 50.0 <= lat["p50"] <= lat["p99"] <= lat["max"] < 50.0 + 10_000
    assert sink.status.counters["latency_unknown"] == 1
    assert sink.status.counters["written.cycles"] == 6


def test_events_carry_the_pipeline_session(sink):
    sink.handle("gait/cam", GaitEvent(source="cam", seq=1, t_us=1, host_us=1, track=2,
                                      side="left", kind="foot_strike", event_us=5))
    sink.flush(force=True)
    c = sqlite3.connect(sink.db)
    assert c.execute("SELECT session, kind, event_us FROM events").fetchall() == \
        [("S", "foot_strike", 5)]
    c.close()


def test_statuses_are_thinned_but_every_drop_is_counted(sink):
    def st(t, drops, state="ok"):
        return Status(source="worker", seq=t, t_us=t, host_us=t, process="worker",
                      role="worker", uptime_s=float(t), counters={"dropped_upstream": drops},
                      state={"camera": state})
    for t in range(25):  # one per second for 25 s; the camera blips offline at t=13
        sink.clock_.t = 1000.0 + t
        sink.handle("status", st(t, float(t // 5), "offline" if t == 13 else "ok"))
    sink.flush(force=True)
    c = sqlite3.connect(sink.db)
    kept = [r[0] for r in c.execute("SELECT seq FROM status ORDER BY seq")]
    gaps = c.execute("SELECT SUM(count) FROM gaps WHERE stream = 'upstream'").fetchone()[0]
    c.close()
    assert kept == [0, 10, 13, 14, 24]  # every 10 s, plus each change of state
    assert gaps == 24 // 5  # drops reported in statuses that were not kept still count


@pytest.mark.parametrize("options, message", [
    ({"store": "mysql"}, "not one of"),
    ({"store": "postgresql"}, "needs dsn"),
    ({"store": "jsonl", "path": "x.db"}, "ending in .jsonl"),
    ({"batch_max": 0}, "batch_max >= 1"),
    ({"bacth_ms": 5}, "unknown key 'bacth_ms' \\(did you mean 'batch_ms'\\?\\)"),
])
def test_bad_options_are_refused_with_a_reason(options, message):
    with pytest.raises(ValueError, match=message):
        LogSinkConfig.from_options(options)
