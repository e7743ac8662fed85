"""The worker's analysis modes as processes: ``gaitstream proc`` workers configured with
``analysis = "classical" | "gait-transformer" | "both"``, fed a simulated walk over real ZeroMQ
sockets on loopback, publishing GaitEvent / GaitCycle records labelled with the method that
made them (the shipped gait transformer, onnxruntime on CPU); the model's cycles against the
simulator's truth, stored by a real SQLite log sink process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from capture.sim.truth import cycle_truth
from inference.data.simulated import walkway_person, walkway_walk
from inference.analysis.cycles import trusted
from inference.eval.events import replay
from inference.models.gait_transformer.runtime import (GaitModelTracker, predict_recording,
                                                       load_gait_model)
from inference.analysis.analyzer import AnalyzerOptions, OnlineGaitAnalyzer
from streams.schema import Body, GaitCycle, GaitEvent, SkeletonFrame, Status
from streams.transport import Publisher, Subscriber

from conftest import REPO, free_port

SOURCE = "sim"


@pytest.fixture(scope="module")
def walk() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5.6 s of one simulated person walking a walkway at 30 Hz (canonical joints)."""
    t, j, c = walkway_walk(10.0)
    return t, j.astype(np.float32), c.astype(np.float32)


def start_worker(tmp_path: Path, name: str, src_ep: str, out_ep: str,
                 options: str, kind: str = "worker", topics: str = "") -> subprocess.Popen:
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(f"""
[[process]]
name = "{name}"
kind = "{kind}"
subscribe = ["{src_ep}"]
publish = "{out_ep}"
{topics}
[process.options]
{options}
""")
    return subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config", str(cfg),
                             "--name", name], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))


def send_walk(pub: Publisher, walk) -> None:
    t, j, c = walk
    for i in range(len(t)):
        ok = pub.send(SkeletonFrame(source=SOURCE, seq=i + 1, t_us=int(t[i]),
                                    host_us=int(time.monotonic() * 1e6), layout="canonical22",
                                    bodies=[Body(0, j[i], c[i])]))
        assert ok, "the frame did not fit the publisher's queue"


def collect(subs: dict[str, Subscriber], done, timeout_s: float
            ) -> tuple[dict[str, list], dict[str, Status]]:
    """Gait records and the latest Status of each worker until ``done(name, status)`` holds
    for every worker (a Status goes out after the records it counts, on the same socket)."""
    out: dict[str, list] = {n: [] for n in subs}
    last: dict[str, Status] = {}
    finished: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while len(finished) < len(subs) and time.monotonic() < deadline:
        for name, sub in subs.items():
            while (got := sub.recv(20)) is not None:
                msg = got[1]
                if isinstance(msg, Status):
                    last[name] = msg
                    if done(name, msg):
                        finished.add(name)
                elif isinstance(msg, (GaitEvent, GaitCycle)):
                    out[name].append(msg)
    missing = set(subs) - finished
    assert not missing, f"workers {sorted(missing)} did not finish; last status: " \
        f"{ {n: last[n].counters for n in missing if n in last} }"
    return out, last


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for name, p in procs.items():
        assert p.wait(15) == 0, f"worker {name} exited with {p.returncode}"


def model_reference(t: np.ndarray, j: np.ndarray, c: np.ndarray) -> list:
    """What the worker's gait-transformer tracker gives for one track, run here."""
    tr = GaitModelTracker(load_gait_model(), SOURCE, 0,
                          cycle_options=AnalyzerOptions.from_flat({}))
    return [m for i in range(len(t)) for m in tr.push(int(t[i]), j[i], c[i])] + tr.flush()


def cycles_of(msgs: list, method: str) -> list[GaitCycle]:
    return sorted((m for m in msgs if isinstance(m, GaitCycle) and m.method == method),
                  key=lambda m: (m.start_us, m.side))


def assert_same_cycles(got: list[GaitCycle], want: list[GaitCycle], tol_us: float) -> None:
    """Same strides (ends within ``tol_us``: model event times are rounded to the
    microsecond, and a batch of several windows may round them the other way) with the same
    measures and flags."""
    assert [(g.side, g.flags) for g in got] == [(w.side, w.flags) for w in want]
    np.testing.assert_allclose([(g.start_us, g.end_us) for g in got],
                               [(w.start_us, w.end_us) for w in want], atol=tol_us)
    for g, w in zip(got, want):
        assert g.metrics.keys() == w.metrics.keys()
        for k, v in w.metrics.items():
            assert (g.metrics[k] is None) == (v is None), k
            if v is not None:
                assert g.metrics[k] == pytest.approx(v, rel=1e-4, abs=1e-4), k


def events_of(msgs: list, method: str) -> list[tuple[str, str, int]]:
    return sorted((m.side, m.kind, m.event_us) for m in msgs
                  if isinstance(m, GaitEvent) and m.method == method)


def assert_same_events(got: list[tuple[str, str, int]], want: list[tuple[str, str, float]],
                       tol_us: float) -> None:
    assert [g[:2] for g in got] == [w[:2] for w in sorted(want)]
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in sorted(want)], atol=tol_us)


def test_worker_modes_publish_each_methods_records_side_by_side(tmp_path, walk):
    """The same walk through three worker processes, one per mode. Each method's events are
    the ones its analysis gives offline on the same frames; in "both" the two sets come out
    side by side, each labelled with its method, unchanged by the other's presence."""
    t, j, c = walk
    classical_ref = replay(OnlineGaitAnalyzer(SOURCE, 0), t, j, c)
    ref_cls = [(e.side, e.kind, e.event_us) for e in classical_ref if isinstance(e, GaitEvent)]
    ref_cycles = [(m.side, m.start_us, m.end_us) for m in classical_ref
                  if isinstance(m, GaitCycle)]
    model = predict_recording(load_gait_model(), t, j, c)
    ref_gt = [(e.side, e.kind, e.t_us) for e in model["events"]]
    ref_gt_cycles = cycles_of(model_reference(t, j, c), "gait-transformer")
    assert len(ref_cls) >= 20 and len(ref_cycles) >= 8 and len(ref_gt) >= 12
    assert len(ref_gt_cycles) >= 4

    src_ep = f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(src_ep)
    modes = ("classical", "gait-transformer", "both")
    eps = {m: f"tcp://127.0.0.1:{free_port()}" for m in modes}
    subs = {m: Subscriber([eps[m]], [f"gait/{SOURCE}", "status"]) for m in modes}
    procs = {m: start_worker(tmp_path, m.replace("-", "_"), src_ep, eps[m],
                             f'analysis = "{m}"\ntrack_timeout_s = 1.0') for m in modes}
    try:
        assert pub.wait_for_subscribers(len(modes), 30.0, topic=f"skel/{SOURCE}") == len(modes)
        # and ours to theirs: a Status from each worker says its records will reach us
        collect(subs, lambda n, s: True, 30.0)
        send_walk(pub, walk)
        # the track expires 1 s after its last frame: every event and cycle is out by then
        out, status = collect(subs, lambda n, s: s.counters.get("tracks_ended", 0) >= 1, 60.0)
    finally:
        stop_all(procs)
        pub.close()
        for s in subs.values():
            s.close()
    for m in modes:
        assert status[m].counters["frames"] == len(t)
        assert status[m].counters.get("errors", 0) == 0
        assert {type(x).__name__ for x in out[m]} <= {"GaitEvent", "GaitCycle"}
        assert all(x.method in ("classical", "gait-transformer") for x in out[m])

    # classical only: its events and cycles, nothing from the model
    assert_same_events(events_of(out["classical"], "classical"), ref_cls, 0)
    assert not events_of(out["classical"], "gait-transformer")
    cyc = [(x.side, x.start_us, x.end_us) for x in out["classical"] if isinstance(x, GaitCycle)]
    assert sorted(cyc) == sorted(ref_cycles)
    assert all(x.method == "classical" for x in out["classical"] if isinstance(x, GaitCycle))

    # gait transformer only: the model's events (sub-frame times rounded to the microsecond)
    # and a cycle record of each stride between them
    assert_same_events(events_of(out["gait-transformer"], "gait-transformer"), ref_gt, 1.0)
    assert not events_of(out["gait-transformer"], "classical")
    assert all(0.0 <= x.confidence <= 1.0 for x in out["gait-transformer"]
               if isinstance(x, GaitEvent))
    assert_same_cycles(cycles_of(out["gait-transformer"], "gait-transformer"), ref_gt_cycles,
                       1.0)
    assert not cycles_of(out["gait-transformer"], "classical")

    # both: each method's records as when it runs alone, side by side on the same topic
    both = out["both"]
    assert events_of(both, "classical") == events_of(out["classical"], "classical")
    assert_same_events(events_of(both, "gait-transformer"), ref_gt, 1.0)
    assert sorted((x.side, x.start_us, x.end_us) for x in cycles_of(both, "classical")) \
        == sorted(ref_cycles)
    assert_same_cycles(cycles_of(both, "gait-transformer"), ref_gt_cycles, 1.0)
    assert status["both"].counters["events"] == len(ref_cls) + len(ref_gt)
    assert status["both"].counters["cycles"] == len(ref_cycles) + len(ref_gt_cycles)
    # one sequence per source over both methods' records: none lost, none repeated
    assert sorted(x.seq for x in both) == list(range(1, len(both) + 1))


def test_a_lone_tracks_last_windows_run_when_frames_stop(tmp_path, walk):
    """One person walks, then no frame comes from anyone. The windows already complete wait in
    the worker's batch; they must run once they have waited ``max_wait_s`` (0.5 s here, longer
    than the worker takes for the whole walk), from the worker's idle poll: no new frame and no
    track expiry (600 s) is there to trigger them."""
    from inference.models.gait_transformer.runtime import GaitModelOptions, GaitModelTracker

    t, j, c = walk
    opts = GaitModelOptions(max_wait_s=0.5)
    tracker = GaitModelTracker(load_gait_model(options=opts), SOURCE, 0)
    want = [e for i in range(len(t)) for e in tracker.push(int(t[i]), j[i], c[i])]
    tracker.model.run_pending()  # what is due without a flush: complete windows only
    want += tracker.poll()
    assert len(want) >= 8
    want_t = [(e.side, e.kind, e.event_us) for e in want]

    src_ep, out_ep = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    pub = Publisher(src_ep)
    subs = {"w": Subscriber([out_ep], [f"gait/{SOURCE}", "status"])}
    procs = {"w": start_worker(tmp_path, "w", src_ep, out_ep,
                               'analysis = "gait-transformer"\ntrack_timeout_s = 600.0\n'
                               "gait_model_options = { max_wait_s = 0.5 }")}
    try:
        assert pub.wait_for_subscribers(1, 30.0, topic=f"skel/{SOURCE}") == 1
        collect(subs, lambda n, s: True, 30.0)
        send_walk(pub, walk)
        out, status = collect(subs, lambda n, s: s.counters.get("events", 0) >= len(want), 30.0)
    finally:
        stop_all(procs)
        pub.close()
        subs["w"].close()
    st = status["w"]
    assert st.counters["frames"] == len(t)
    assert st.counters.get("tracks_ended", 0) == 0 and st.state["tracks"] == "1"
    assert_same_events(events_of(out["w"], "gait-transformer"), want_t, 1.0)


def test_worker_refuses_unknown_gait_model_options_at_start():
    from inference.worker import WorkerConfig

    cfg = WorkerConfig.from_options({"analysis": "both", "gait_model_options": {"keep": 5}})
    assert cfg.model_options().keep == 5
    with pytest.raises(ValueError, match=r"gait_model_options: unknown key 'max_wait' \(did you mean 'max_wait_s'\?\)"):
        WorkerConfig.from_options({"gait_model_options": {"max_wait": 0.5}})


def test_model_cycles_match_the_simulated_truth_and_reach_the_sqlite_log(tmp_path):
    """A 20 s simulated walk (turns and a stand included) through a gait-transformer worker
    process into a log sink process writing SQLite. The strides of the simulator's truth come
    out as model cycles (at least 90%: the model misses the last strike before the stand) with
    their timing: stride time within 15 ms (median; 100 ms at worst, three frames at 30 Hz) and
    cadence within 1.5 steps/min (median); the trusted ones (no turn, no stand, no swap) measure
    stride length and speed within 5 cm and 5 cm/s. The log holds exactly the cycles the worker
    published, labelled with the method."""
    person, ts = walkway_person(20.0, seed=3)
    walk = walkway_walk(20.0, seed=3)
    truth = [s for s in cycle_truth(person) if s["end_s"] <= ts[-1]]
    assert len(truth) >= 15

    src_ep, w_ep, log_ep = (f"tcp://127.0.0.1:{free_port()}" for _ in range(3))
    db = tmp_path / "log.db"
    pub = Publisher(src_ep)
    subs = {"worker": Subscriber([w_ep], [f"gait/{SOURCE}", "status"]),
            "log": Subscriber([log_ep], ["status"])}
    procs = {"worker": start_worker(tmp_path, "worker", src_ep, w_ep,
                                    'analysis = "gait-transformer"\ntrack_timeout_s = 1.0'),
             "log": start_worker(tmp_path, "log", w_ep, log_ep, f'path = "{db}"',
                                 kind="sink", topics='topics = ["gait/", "status"]')}
    try:
        assert pub.wait_for_subscribers(1, 30.0, topic=f"skel/{SOURCE}") == 1
        collect(subs, lambda n, s: True, 30.0)  # both processes are up and heard
        send_walk(pub, walk)
        out, status = collect(
            {"worker": subs["worker"]}, lambda n, s: s.counters.get("tracks_ended", 0) >= 1,
            60.0)
        published = out["worker"]
        # the sink has stored every record the worker published
        collect({"log": subs["log"]},
                lambda n, s: s.counters.get("written", 0) >= len(published), 30.0)
    finally:
        stop_all(procs)
        pub.close()
        for s in subs.values():
            s.close()
    cycles = cycles_of(published, "gait-transformer")
    assert status["worker"].counters["cycles"] == len(cycles) >= 0.9 * len(truth)
    assert {c.method for c in published} == {"gait-transformer"}

    rows = sqlite3.connect(db).execute(
        "select side, start_us, end_us, method, stride_time_s, cadence_spm, flags "
        "from cycles order by start_us, side").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == \
        [(c.side, c.start_us, c.end_us, c.method) for c in cycles]
    assert [r[4] for r in rows] == pytest.approx([c.metrics["stride_time_s"] for c in cycles])
    assert [r[5] for r in rows] == pytest.approx([c.metrics["cadence_spm"] for c in cycles])

    # each true stride: the model's cycle with both strikes within 100 ms
    pairs = []
    for s in truth:
        got = [c for c in cycles if c.side == s["side"]
               and abs(c.start_us / 1e6 - s["start_s"]) < 0.1
               and abs(c.end_us / 1e6 - s["end_s"]) < 0.1]
        pairs += [(got[0], s)] if got else []
    assert len(pairs) >= 0.9 * len(truth)
    d_stride = np.abs([c.metrics["stride_time_s"] - s["metrics"]["stride_time_s"]
                       for c, s in pairs])
    d_cadence = np.abs([c.metrics["cadence_spm"] - s["metrics"]["cadence_spm"]
                        for c, s in pairs])
    assert np.median(d_stride) <= 0.015 and d_stride.max() <= 0.100
    assert np.median(d_cadence) <= 1.5
    good = [(c, s) for c, s in pairs if trusted(c)]
    assert len(good) >= 3
    for c, s in good:
        assert c.metrics["stride_length_m"] == pytest.approx(s["metrics"]["stride_length_m"],
                                                             abs=0.05)
        assert c.metrics["speed_mps"] == pytest.approx(s["metrics"]["speed_mps"], abs=0.05)
