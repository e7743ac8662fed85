"""Walking bouts in the worker: a GaitBout per bout the classical analysis ends, published
after the bout's cycles and summarising exactly them, with the bout's gait embedding when
configured (the same vector `gaitstream embed` computes from the same frames)."""

import numpy as np
import pytest

from capture.sim.paths import Line
from capture.sim.patterns import make_style
from capture.sim.person import Go, Person, Stand
from capture.sim.skeleton import layout_joints
from capture.sim.style import WalkerParams
from inference.models.gait_mae.runtime import GaitEmbedder
from inference.worker import Worker, WorkerConfig
from streams.node import StatusReporter
from streams.schema import (UNTRUSTED_FLAGS, Body, GaitBout, GaitCycle, SkeletonFrame, WireError,
                            decode, encode)


@pytest.fixture(scope="module")
def two_bouts():
    """Walk 6 m, stand 3 s, walk 6 m, stand 4 s: canonical joints at 30 Hz."""
    person = Person.build(WalkerParams(), make_style(),
                          [Stand(0.5), Go((Line(6.0),)), Stand(3.0), Go((Line(6.0),)),
                           Stand(4.0)], (0.0, 0.0), 0.0, 0.0, np.random.default_rng(3))
    t = np.arange(0.0, person.t_stop, 1 / 30)
    pts, _ = person.evaluate(t)
    return (t * 1e6).round().astype(np.int64), layout_joints(pts, "canonical22")


def feed(t_us, joints, **options):
    w = Worker(WorkerConfig(session="S-1", **options), None, StatusReporter("w", "worker"))
    conf = np.ones(joints.shape[1], np.float32)
    for i, t in enumerate(t_us):
        w.handle(SkeletonFrame(source="cam", seq=i + 1, t_us=int(t), host_us=0,
                               layout="canonical22", bodies=[Body(1, joints[i], conf)]))
    live = len(w.outputs)
    w.expire(force=True)
    return w, live


def test_each_bout_follows_its_cycles_and_summarises_them(two_bouts):
    t_us, joints = two_bouts
    w, live = feed(t_us, joints, embedding=True, model_threads=0)  # in the loop: no waiting
    out = w.outputs
    bouts = [i for i, m in enumerate(out) if isinstance(m, GaitBout)]
    assert len(bouts) == 2
    assert bouts[0] < live  # the first bout is published while the track goes on
    cycles = [(i, m) for i, m in enumerate(out) if isinstance(m, GaitCycle)]
    for i in bouts:
        b = out[i]
        inside = [(k, c) for k, c in cycles if b.start_us <= c.start_us and c.end_us <= b.end_us]
        assert b.cycles == len(inside) >= 4
        assert all(k < i for k, _ in inside)  # after its cycles
        use = [c for _, c in inside if not set(c.flags) & UNTRUSTED_FLAGS]
        assert b.trusted_cycles == len(use) >= 2
        speeds = [c.metrics["speed_mps"] for c in use if c.metrics.get("speed_mps")]
        assert b.summary["speed_mps.mean"] == pytest.approx(np.mean(speeds))
        assert b.summary["speed_mps.n"] == len(speeds)
        assert b.session == "S-1" and b.subject.startswith("anon-") and b.run == w.run
        # the embedding is GaitMAE's over the bout's own frames
        sel = (t_us >= b.start_us) & (t_us <= b.end_us)
        expect, clips = GaitEmbedder().embed_walk(t_us[sel], joints[sel])
        assert clips >= 2 and b.embedding.shape == (128,)
        np.testing.assert_allclose(b.embedding, expect, rtol=1e-5, atol=1e-6)
        assert b.embedding_model.startswith("gait_mae:")
        # on the wire and back, vector included
        again = decode(encode(b))
        np.testing.assert_array_equal(again.embedding, b.embedding)
        assert again.summary == b.summary
    assert w.status.counters["bouts"] == 2


def test_model_work_off_the_loop_gives_the_same_records_in_the_same_order(two_bouts):
    """Embedding (and scoring) in a model thread: a track's records wait for it in order, and
    every record is the one the work in the loop gives."""
    t_us, joints = two_bouts
    inline, _ = feed(t_us, joints, embedding=True, model_threads=0)
    pooled, _ = feed(t_us, joints, embedding=True, model_threads=1)
    a, b = inline.outputs, pooled.outputs
    assert [type(m).__name__ for m in a] == [type(m).__name__ for m in b]
    assert [m.seq for m in a] == [m.seq for m in b]
    for x, y in zip(a, b):
        if isinstance(x, GaitBout):
            np.testing.assert_array_equal(x.embedding, y.embedding)
            assert x.summary == y.summary
    assert pooled.pending_work == 0 and pooled.status.counters["bouts"] == 2


def test_a_worker_behind_sends_records_without_their_model_work():
    """Past max_pending_work records waiting for the model threads, a cycle goes out unscored
    (flagged, counted) instead of later and later."""
    import threading

    gate = threading.Event()
    w = Worker(WorkerConfig(anomaly=True, max_pending_work=2), None,
               StatusReporter("w", "worker"))
    w.models.score = lambda t, j: (gate.wait(10), {"subject": 1.0})[1]  # a scorer that hangs
    from inference.worker import Track

    tr = Track("cam", 1, w.cfg, w.models)
    conf = np.ones(22, np.float32)
    for i in range(60):
        tr.push(i * 33_333, np.zeros((22, 3), np.float32) + i * 0.01, conf)
    cycles = [GaitCycle("cam", 0, 0, 0, track=1, side="left", start_us=k * 100_000,
                        end_us=k * 100_000 + 500_000) for k in range(4)]
    w._emit(cycles, 0, tr)
    assert w.pending_work == 2 and w.outputs == []  # two wait; the rest wait behind them
    assert w.status.counters["model_work_skipped"] == 2
    assert [c.flags for c in cycles[2:]] == [["anomaly_skipped"], ["anomaly_skipped"]]
    gate.set()
    w._drain(tr, wait=True)
    assert [m.anomaly for m in w.outputs] == [{"subject": 1.0}, {"subject": 1.0}, {}, {}]
    assert [m.seq for m in w.outputs] == [1, 2, 3, 4]  # in order
    w.pool.shutdown()


def test_no_embedding_unless_configured(two_bouts):
    t_us, joints = two_bouts
    w, _ = feed(t_us, joints)
    bouts = [m for m in w.outputs if isinstance(m, GaitBout)]
    assert len(bouts) == 2
    assert all(b.embedding.size == 0 and b.embedding_model == "" for b in bouts)


def test_a_malformed_bout_is_refused_with_its_reason():
    b = GaitBout("cam", 1, 0, 0, track=1, start_us=5, end_us=9, cycles=2, trusted_cycles=3,
                 session="", subject="", run="")
    with pytest.raises(WireError, match="trusted cycles"):
        decode(encode(b))
    b = GaitBout("cam", 1, 0, 0, start_us=5, end_us=9,
                 embedding=np.array([1.0, np.nan], np.float32))
    with pytest.raises(WireError, match="embedding: contains NaN"):
        decode(encode(b))
