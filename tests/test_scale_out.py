"""Two workers share a site's cameras: each names its sources in the configuration, and their
records reach one log exactly once.

The links are CURVE ones, keyed per role as a site does it (`gaitstream keys`): the cameras bind
with the "cameras" key and let only the workers in, the workers bind with the "workers" key and
let only the log in. Both workers subscribe to both cameras, so nothing but their ``sources``
keeps them from analysing the same person twice. The processes run on this host's loopback
(separate network namespaces per worker would need privileges the test machines do not give).
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter

from conftest import REPO, free_port, gaitstream


def test_two_workers_split_the_cameras_and_every_record_arrives_once(tmp_path):
    keys = tmp_path / "keys"
    for name in ("cameras", "workers", "log"):
        assert gaitstream("keys", str(keys), name, stdout=subprocess.DEVNULL).wait(30) == 0
    for role, client in (("cameras", "workers"), ("workers", "log")):
        (tmp_path / f"allow-{role}").mkdir()
        shutil.copy(keys / f"{client}.key", tmp_path / f"allow-{role}")
    ep = {k: f"tcp://127.0.0.1:{free_port()}"
          for k in ("cam1", "cam2", "wa", "wb", "launcher")}

    def camera(name, seed):
        return f"""
[[process]]
name = "{name}"
kind = "capture"
restart = "on-failure"
publish = "{ep[name]}"
[process.curve]
secret_key_file = "{keys / 'cameras.key_secret'}"
authorized_dir = "{tmp_path / 'allow-cameras'}"
[process.options]
source = "sim"
seed = {seed}
duration_s = 14.0
"""

    def worker(name, source):
        return f"""
[[process]]
name = "{name}"
kind = "worker"
subscribe = ["{ep['cam1']}", "{ep['cam2']}"]
publish = "{ep[name]}"
[process.subscribe_curve]
secret_key_file = "{keys / 'workers.key_secret'}"
server_key_file = "{keys / 'cameras.key'}"
[process.curve]
secret_key_file = "{keys / 'workers.key_secret'}"
authorized_dir = "{tmp_path / 'allow-workers'}"
[process.options]
sources = ["{source}"]
"""

    cfg = tmp_path / "site.toml"
    cfg.write_text(f"""
[pipeline]
name = "site"
data_dir = "{tmp_path}"
session = "scale-out"

[launcher]
publish = "{ep['launcher']}"
stop_when_done = ["cam1", "cam2"]

""" + camera("cam1", 1) + camera("cam2", 2) + worker("wa", "cam1") + worker("wb", "cam2") + f"""
[[process]]
name = "log"
kind = "sink"
subscribe = ["{ep['wa']}", "{ep['wb']}"]
topics = ["gait/", "status"]
[process.subscribe_curve]
secret_key_file = "{keys / 'log.key_secret'}"
server_key_file = "{keys / 'workers.key'}"
[process.options]
path = "site.db"
status_every_s = 0.0  # every Status kept: the workers' last ones say what they published
""")
    run = subprocess.run([sys.executable, "-m", "deploy.cli", "run", str(cfg), "--logs",
                          str(tmp_path / "logs")], cwd=REPO, timeout=180,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode == 0

    db = sqlite3.connect(tmp_path / "site.db")
    cycles = db.execute("SELECT source, track, side, start_us, run FROM cycles").fetchall()
    events = db.execute("SELECT source, track, side, kind, event_us, run FROM events").fetchall()
    # every stride and event once: not once per worker
    assert cycles and max(Counter(c[:4] for c in cycles).values()) == 1
    assert max(Counter(e[:5] for e in events).values()) == 1
    runs = {cam: {c[4] for c in cycles if c[0] == cam} for cam in ("cam1", "cam2")}
    assert all(len(r) == 1 for r in runs.values()) and runs["cam1"] != runs["cam2"], runs
    # and none lost: what each worker says it published (its last Status) is what the log holds
    for proc, cam in (("wa", "cam1"), ("wb", "cam2")):
        counters, state = db.execute(
            "SELECT counters, state FROM status WHERE process = ? ORDER BY id DESC LIMIT 1",
            (proc,)).fetchone()
        counters, state = json.loads(counters), json.loads(state)
        assert {state["run"]} == runs[cam]
        assert counters["cycles"] == sum(c[0] == cam for c in cycles) >= 4
        assert counters["events"] == sum(e[0] == cam for e in events)
        assert counters["dropped_upstream"] == 0 and counters["rejected"] == 0
        assert "other_sources" not in counters  # the subscription already kept the other out


def test_a_worker_takes_only_its_sources_though_a_prefix_lets_more_through():
    """``sources = ["cam1"]`` subscribes to skel/cam1, which ZeroMQ matches as a prefix: cam10's
    frames arrive too, and the worker ignores them, counted; cam2's never cross the link."""
    import time

    import numpy as np

    from deploy.config import ProcessConfig
    from deploy.processes import make_subscriber
    from inference.worker import Worker, WorkerConfig
    from streams.node import StatusReporter
    from streams.schema import Body, SkeletonFrame
    from streams.transport import Publisher

    ep = f"tcp://127.0.0.1:{free_port()}"
    proc = ProcessConfig(name="w", kind="worker", subscribe=[ep], options={"sources": ["cam1"]})
    pub, sub = Publisher(ep), make_subscriber(proc)
    worker = Worker(WorkerConfig.from_options(proc.options), None,
                    StatusReporter("w", "worker"))
    try:
        assert pub.wait_for_subscribers(2, 5.0) == 2  # skel/cam1 and img/cam1
        time.sleep(0.1)
        for i in range(1, 6):
            for cam in ("cam1", "cam10", "cam2"):
                pub.send(SkeletonFrame(source=cam, seq=i, t_us=i * 33_333, host_us=1, bodies=[
                    Body(0, np.zeros((22, 3), np.float32), np.ones(22, np.float32))]))
        got = []
        while (r := sub.recv(500)) is not None:
            got.append(r[1].source)
            worker.handle(r[1])
    finally:
        pub.close()
        sub.close()
    assert sorted(set(got)) == ["cam1", "cam10"] and len(got) == 10
    assert set(worker.tracks) == {("cam1", 0)}
    assert worker.status.counters["other_sources"] == 5
    assert worker.status.counters["frames"] == 5
