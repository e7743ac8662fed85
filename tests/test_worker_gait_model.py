"""The worker's analysis modes as processes: ``gaitstream proc`` workers configured with
``analysis = "classical" | "gait-transformer" | "both"``, fed a simulated walk over real ZeroMQ
sockets on loopback, publishing GaitEvent / GaitCycle records labelled with the method that
made them (the shipped gait transformer, onnxruntime on CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inference.bench_gait_transformer import simulated_walk
from inference.eval_events import replay
from inference.gait_model import analyse_recording, load_gait_model
from inference.online import OnlineGaitAnalyzer
from streams.schema import Body, GaitCycle, GaitEvent, SkeletonFrame, Status
from streams.transport import Publisher, Subscriber

from conftest import REPO, free_port

SOURCE = "sim"


@pytest.fixture(scope="module")
def walk() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5.6 s of one simulated person walking a walkway at 30 Hz (canonical joints)."""
    t, j, c = simulated_walk(10.0)
    return t, j.astype(np.float32), c.astype(np.float32)


def start_worker(tmp_path: Path, name: str, src_ep: str, out_ep: str,
                 options: str) -> subprocess.Popen:
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(f"""
[[process]]
name = "{name}"
kind = "worker"
subscribe = ["{src_ep}"]
publish = "{out_ep}"
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
    model = analyse_recording(load_gait_model(), t, j, c)
    ref_gt = [(e.side, e.kind, e.t_us) for e in model["events"]]
    assert len(ref_cls) >= 20 and len(ref_cycles) >= 8 and len(ref_gt) >= 12

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
    assert_same_events(events_of(out["gait-transformer"], "gait-transformer"), ref_gt, 1.0)
    assert not events_of(out["gait-transformer"], "classical")
    assert all(0.0 <= x.confidence <= 1.0 for x in out["gait-transformer"]
               if isinstance(x, GaitEvent))

    # both: each method's records as when it runs alone, side by side on the same topic
    both = out["both"]
    assert events_of(both, "classical") == events_of(out["classical"], "classical")
    assert_same_events(events_of(both, "gait-transformer"), ref_gt, 1.0)
    assert sorted((x.side, x.start_us, x.end_us, x.method) for x in both
                  if isinstance(x, GaitCycle)) == sorted((*r, "classical") for r in ref_cycles)
    assert status["both"].counters["events"] == len(ref_cls) + len(ref_gt)
    # one sequence per source over both methods' records: none lost, none repeated
    assert sorted(x.seq for x in both) == list(range(1, len(both) + 1))


def test_a_lone_tracks_last_windows_run_when_frames_stop(tmp_path, walk):
    """One person walks, then no frame comes from anyone. The windows already complete wait in
    the worker's batch; they must run once they have waited ``max_wait_s`` (0.5 s here, longer
    than the worker takes for the whole walk), from the worker's idle poll: no new frame and no
    track expiry (600 s) is there to trigger them."""
    from inference.gait_model import GaitModelOptions, GaitModelTracker

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
    with pytest.raises(ValueError, match=r"gait_model_options: unknown keys \['max_wait'\]"):
        WorkerConfig.from_options({"gait_model_options": {"max_wait": 0.5}})
