"""End to end over real sockets and separate processes: file -> capture -> worker -> log sink and
recorder; counters add up; a replay of the recorded skeletons gives the same records; shutdown
leaves no process behind."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from streams.streamfile import StreamReader
from streams.schema import GaitCycle, GaitEvent, SkeletonFrame, Status, decode

from conftest import REPO, free_port
from test_launcher import pids_running, wait_for

TRIAL = "c3d_gait_lab_samples/trials/KTK_walk.c3d"


def run_pipeline(tmp: Path, source_opts: str, name: str) -> Path:
    eps = {k: f"tcp://127.0.0.1:{free_port()}" for k in ("cam", "worker", "log", "launcher")}
    cfg = tmp / f"{name}.toml"
    cfg.write_text(f"""
[pipeline]
name = "{name}"
data_dir = "{tmp}"
session = "e2e"

[launcher]
publish = "{eps['launcher']}"
stop_when_done = ["cam"]

[[process]]
name = "cam"
kind = "capture"
restart = "on-failure"
publish = "{eps['cam']}"
[process.options]
{source_opts}

[[process]]
name = "worker"
kind = "worker"
subscribe = ["{eps['cam']}"]
publish = "{eps['worker']}"

[[process]]
name = "log"
kind = "sink"
subscribe = ["{eps['worker']}", "{eps['cam']}"]
topics = ["gait/", "status"]
publish = "{eps['log']}"
[process.options]
path = "{name}.db"

[[process]]
name = "recorder"
kind = "record"
subscribe = ["{eps['cam']}", "{eps['worker']}"]
topics = ["skel/", "gait/", "status"]
[process.options]
path = "{name}.gst"
""")
    proc = subprocess.run([sys.executable, "-m", "deploy.cli", "run", str(cfg), "--logs",
                           str(tmp / f"logs-{name}")], cwd=REPO, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0
    assert wait_for(lambda: not pids_running(cfg), 5.0), "a process outlived the pipeline"
    return tmp / f"{name}.gst"


def messages(path: Path):
    return [decode(r.frames[1], image=r.frames[2] if len(r.frames) > 2 else None)
            for r in StreamReader(path)]


def gait_key(m):
    if isinstance(m, GaitEvent):
        return ("event", m.track, m.side, m.kind, m.event_us)
    return ("cycle", m.track, m.side, m.start_us, m.end_us,
            tuple(sorted((k, None if v is None else round(v, 9)) for k, v in m.metrics.items())),
            tuple(m.flags))


def last_status(msgs, process):
    st = [m for m in msgs if isinstance(m, Status) and m.process == process]
    return st[-1] if st else None


def test_file_through_the_pipeline_and_replay_gives_the_same_records(tmp_path, shared_data):
    live = messages(run_pipeline(tmp_path, f'source = "file"\npath = "{shared_data / TRIAL}"',
                                 "live"))
    assert StreamReader(tmp_path / "live.gst").header["topics"] == ["skel/", "gait/", "status"]
    skel = [m for m in live if isinstance(m, SkeletonFrame)]
    gait = [m for m in live if isinstance(m, (GaitEvent, GaitCycle))]
    assert len(skel) == 221  # every frame of the trial (KTK_walk: 221 frames)
    assert [m.seq for m in skel] == list(range(1, 222))
    cycles = [m for m in gait if isinstance(m, GaitCycle)]
    events = [m for m in gait if isinstance(m, GaitEvent)]
    assert len(cycles) >= 2 and len(events) >= 6
    for c in cycles:  # a healthy adult's lab walk: values in adult ranges
        assert 90 < c.metrics["cadence_spm"] < 130 and 0.6 < c.metrics["speed_mps"] < 1.6
        assert c.session == "e2e"

    # counters add up across the processes (each process's last Status, sent as it stopped)
    cam, worker = last_status(live, "cam"), last_status(live, "worker")
    assert cam.counters["published"] == 221
    assert worker.counters["received"] == 221 and worker.counters["frames"] == 221
    assert worker.counters["rejected"] == 0 and worker.counters["dropped_upstream"] == 0
    assert worker.counters["events"] == len(events)
    assert worker.counters["cycles"] == len(cycles)

    # the log sink stored every record the worker published
    db = sqlite3.connect(tmp_path / "live.db")
    assert db.execute("select count(*) from cycles").fetchone()[0] == len(cycles)
    assert db.execute("select count(*) from events").fetchone()[0] == len(events)

    # the log sink's own Status (it stores it too): host time to commit of what it wrote
    (lat,) = db.execute("select latency_ms from status where process = 'log' "
                        "order by id desc limit 1").fetchone()
    lat = json.loads(lat)
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 60_000

    # every record carries the track's pseudonym (none configured: a random one), and the
    # README's recipe removes that subject's rows from the log
    (subject,) = {m.subject for m in gait}
    assert subject.startswith("anon-")
    for table in ("cycles", "events", "tracks"):
        assert db.execute(f"select distinct subject from {table}").fetchall() == [(subject,)]
    from test_subjects import DELETE_SUBJECT
    for sql in DELETE_SUBJECT:
        db.execute(sql, (subject,))
    db.commit()
    for table in ("cycles", "events", "tracks"):
        assert db.execute(f"select count(*) from {table}").fetchone()[0] == 0
    db.close()

    # replaying the recorded skeletons through a fresh pipeline gives the same records
    replay_cfg = f'source = "stream"\npath = "{tmp_path / "live.gst"}"\nspeed = 4.0'
    again = messages(run_pipeline(tmp_path, replay_cfg, "replay"))
    gait2 = [m for m in again if isinstance(m, (GaitEvent, GaitCycle))]
    assert sorted(map(gait_key, gait2)) == sorted(map(gait_key, gait))
    # the same records under a new pseudonym: an id is drawn, never derived from the data
    assert {m.subject for m in gait2}.isdisjoint({subject})


def test_a_flat_out_replay_stores_every_record_of_the_stream(tmp_path):
    """A stream file played as fast as possible leaves the worker far behind when the player
    ends; each stage takes what is still arriving before it stops, so the log holds every cycle
    that a worker gives for the same frames (it once kept about half of them)."""
    from inference.data.simulated import walkway_walk
    from inference.worker import Worker, WorkerConfig
    from streams.node import StatusReporter
    from streams.schema import Body, encode
    from streams.streamfile import StreamWriter

    t, j, c = walkway_walk(90.0, seed=2)
    frames = [SkeletonFrame(source="sim", seq=i + 1, t_us=int(t[i]), host_us=0,
                            layout="canonical22", bodies=[Body(0, j[i], c[i])])
              for i in range(len(t))]
    with StreamWriter(tmp_path / "walk.gst", topics=["skel/"]) as w:
        for f in frames:
            w.write(f.t_us, [b"skel/sim", encode(f)])
    worker = Worker(WorkerConfig(), None, StatusReporter("worker", "worker"))
    for f in frames:
        worker.handle(f)
    worker.expire(force=True)
    want = sorted((m.side, m.start_us, m.end_us) for m in worker.outputs
                  if isinstance(m, GaitCycle))
    assert len(want) > 50

    run_pipeline(tmp_path, f'source = "stream"\npath = "{tmp_path / "walk.gst"}"\nspeed = 0',
                 "fast")
    db = sqlite3.connect(tmp_path / "fast.db")
    assert sorted(db.execute("select side, start_us, end_us from cycles")) == want
    db.close()


def test_running_the_same_file_twice_keeps_both_runs(tmp_path, shared_data):
    """`gaitstream run FILE` twice into one folder: the second run's records are stored beside
    the first's (not dropped as duplicates of them) and its stream file does not overwrite the
    first one's."""
    out = tmp_path / "out"
    for _ in range(2):
        p = subprocess.run([sys.executable, "-m", "deploy.cli", "run", str(shared_data / TRIAL),
                            "--out", str(out), "--json"], cwd=REPO, timeout=120,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-2000:]
    per_run = json.loads(p.stdout.strip().splitlines()[-1])["cycles"]
    assert per_run >= 2
    db = sqlite3.connect(out / "demo.db")
    runs = db.execute("select run, count(*) from cycles group by run").fetchall()
    assert len(runs) == 2 and all(n == per_run for _, n in runs)
    assert db.execute("select sum(count) from gaps").fetchone()[0] in (None, 0)
    db.close()
    streams = sorted(out.glob("demo*.gst"))
    assert len(streams) == 2
    assert all(sum(isinstance(m, GaitCycle) for m in messages(s)) == per_run for s in streams)
