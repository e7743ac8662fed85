"""Pseudonymous subject ids: every track's events and cycles carry one (a random id per track
when none is configured, the configured one when a kiosk session sets it), the log stores it on
cycles, events and tracks, and the README's deletion recipe removes exactly one subject's rows
(gait embeddings included) from SQLite and PostgreSQL."""

import re

import numpy as np
import pytest
from sinks_servers import pg_dsn  # noqa: F401 - fixture

from capture.readers import load_recording
from inference.worker import Worker, WorkerConfig
from sinks.log.sink import LogSink, LogSinkConfig
from sinks.log.sql import postgres_store, sqlite_store
from sinks.log.records import embedding_of
from streams.schema import Body, GaitBout, GaitCycle, GaitEvent, SessionControl, SkeletonFrame
from streams.node import StatusReporter

TRIAL = "c3d_gait_lab_samples/trials/KTK_walk.c3d"

# The README's recipe ("Privacy: what is stored where"), statement for statement.
DELETE_SUBJECT = ["DELETE FROM cycles WHERE subject = ?",
                  "DELETE FROM events WHERE subject = ?",
                  "DELETE FROM bouts WHERE subject = ?",
                  "DELETE FROM tracks WHERE subject = ?",
                  "DELETE FROM session_controls WHERE subject = ?"]


@pytest.fixture(scope="module")
def walk(shared_data):
    return load_recording(shared_data / TRIAL)


def run_worker(walk, body_ids, subject="", rounds=1, expire_between=False, embedding=False,
               kinds=(GaitEvent, GaitCycle)):
    """Feed the lab walk as ``body_ids`` (each a person walking the same way)."""
    w = Worker(WorkerConfig(subject=subject, session="S-1", embedding=embedding), None,
               StatusReporter("w", "worker"))
    t_off = 0
    for _ in range(rounds):
        for i, t in enumerate(walk.t_us):
            bodies = [Body(b, walk.joints[i], walk.confidence[i]) for b in body_ids]
            w.handle(SkeletonFrame(source="cam", seq=i + 1, t_us=int(t) + t_off, host_us=0,
                                   layout="canonical22", bodies=bodies))
        t_off += int(walk.t_us[-1]) + 10_000_000
        if expire_between:
            w.expire(force=True)  # the person left; the same body id later is someone new
    w.expire(force=True)
    return [m for m in w.outputs if isinstance(m, kinds)]


def by_track(msgs):
    out: dict[int, set[str]] = {}
    for m in msgs:
        out.setdefault(m.track, set()).add(m.subject)
    return out


def test_each_track_gets_its_own_random_pseudonym_on_events_and_cycles(walk):
    msgs = run_worker(walk, [1, 2])
    kinds = {(m.track, type(m).__name__) for m in msgs}
    assert kinds == {(1, "GaitEvent"), (1, "GaitCycle"), (2, "GaitEvent"), (2, "GaitCycle")}
    subjects = by_track(msgs)
    assert all(len(s) == 1 for s in subjects.values())  # stable for the track's life
    (s1,), (s2,) = subjects[1], subjects[2]
    assert s1 != s2 and re.fullmatch(r"anon-[0-9a-f]{16}", s1)
    assert all(m.session == "S-1" for m in msgs)
    # another run of the same walk: new ids (nothing in them is derived from the data)
    again = by_track(run_worker(walk, [1]))
    assert again[1].isdisjoint({s1, s2})


def test_a_new_track_with_the_same_body_id_is_a_new_pseudonym(walk):
    msgs = run_worker(walk, [1], rounds=2, expire_between=True)
    subjects = {m.subject for m in msgs}
    assert len(subjects) == 2 and all(s.startswith("anon-") for s in subjects)


def test_a_configured_subject_wins(walk):
    msgs = run_worker(walk, [1, 2], subject="P-kiosk-0042")
    assert msgs and {m.subject for m in msgs} == {"P-kiosk-0042"}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_readme_recipe_deletes_one_subject_from_the_log(engine, walk, tmp_path, request):
    if engine == "sqlite":
        def open_():
            return sqlite_store(tmp_path / "log.db")
    else:
        dsn = request.getfixturevalue("pg_dsn")

        def open_():
            return postgres_store(dsn)
    store = open_()
    msgs = run_worker(walk, [1, 2], embedding=True, kinds=(GaitEvent, GaitCycle, GaitBout))
    for i, m in enumerate(msgs):
        m.seq = i + 1
    sink = LogSink(store, LogSinkConfig(), StatusReporter("log", "sink"), session="S-1")
    for m in msgs:
        sink.handle("gait/cam", m)
    (s1,), (s2,) = by_track(msgs)[1], by_track(msgs)[2]
    for k, s in enumerate((s1, s2)):  # each was a kiosk session's patient too
        sink.handle("session", SessionControl(source="worker", seq=k + 1, t_us=0, host_us=0,
                                              action="started", session=f"K-{k}", subject=s))
    assert sink.close() == 0  # committed, store closed
    store = open_()

    def per_subject(table):
        _, it = store.query(f"SELECT subject, COUNT(*) FROM {table} GROUP BY subject")
        return dict(it)
    n_cycles = sum(isinstance(m, GaitCycle) and m.subject == s1 for m in msgs)
    n_events = sum(isinstance(m, GaitEvent) and m.subject == s1 for m in msgs)
    assert n_cycles >= 2 and n_events >= 6
    assert per_subject("cycles") == {s1: n_cycles, s2: n_cycles}
    assert per_subject("events") == {s1: n_events, s2: n_events}
    assert per_subject("tracks") == {s1: 1, s2: 1}
    assert per_subject("bouts") == {s1: 1, s2: 1}
    assert per_subject("session_controls") == {s1: 1, s2: 1}
    # the embedding (biometric) is stored as the vector the worker made
    emb = {m.subject: m.embedding for m in msgs if isinstance(m, GaitBout)}
    _, it = store.query("SELECT subject, embedding FROM bouts")
    for subject, stored in it:
        np.testing.assert_array_equal(embedding_of(stored), emb[subject])
    store.conn.execute(store.dialect.begin)
    for sql in DELETE_SUBJECT:
        store.conn.execute(store.dialect.sql(sql), (s1,))
    store.conn.execute("COMMIT")
    assert per_subject("cycles") == {s2: n_cycles}
    assert per_subject("events") == {s2: n_events}
    assert per_subject("tracks") == {s2: 1}
    assert per_subject("bouts") == {s2: 1}
    assert per_subject("session_controls") == {s2: 1}
    store.close()
