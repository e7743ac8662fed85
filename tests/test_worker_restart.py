"""A worker killed with SIGKILL mid-walk (issue 19, item 8): what the restart lost — the frames
its tracks held that no cycle had covered yet, and the frames sent while no worker listened —
is counted, and the log keeps it as an upstream gap. Real processes (``gaitstream proc``), real
sockets, a real SQLite log."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np

from conftest import REPO, free_port, wait_for
from inference.data.simulated import walkway_walk
from streams.schema import Body, SkeletonFrame, Status, monotonic_us
from streams.transport import Publisher, Subscriber

RATE_HZ = 30.0


def _proc(cfg, name):
    return subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config", str(cfg),
                             "--name", name], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stderr=subprocess.PIPE, text=True)


def test_a_killed_worker_counts_what_its_restart_lost_and_the_log_keeps_it(tmp_path):
    src_ep, out_ep = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[pipeline]
name = "t"
data_dir = "{tmp_path}"

[[process]]
name = "worker"
kind = "worker"
subscribe = ["{src_ep}"]
publish = "{out_ep}"

[[process]]
name = "log"
kind = "sink"
subscribe = ["{out_ep}"]
topics = ["gait/", "status"]
[process.options]
path = "log.db"
""")
    t_us, joints, conf = walkway_walk(30.0)
    pub = Publisher(src_ep)
    status = Subscriber([out_ep], ["status"])
    sink = _proc(cfg, "log")
    worker = _proc(cfg, "worker")
    seq = 0

    def send_until(pred, limit_s):
        """Send the walk at 30 Hz until ``pred()`` or ``limit_s``; True when pred held."""
        nonlocal seq
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            i = seq % len(t_us)
            seq += 1
            pub.send(SkeletonFrame(source="cam", seq=seq, t_us=int(t_us[0] + seq * 1e6 / RATE_HZ),
                                   host_us=monotonic_us(), layout="canonical22",
                                   bodies=[Body(1, joints[i], conf[i])]))
            if pred():
                return True
            time.sleep(1 / RATE_HZ)
        return False

    try:
        assert pub.wait_for_subscribers(1, 30), "the worker did not subscribe"
        send_until(lambda: False, 6.0)  # 6 s of walking: cycles come out, a stride is held
        seq_at_kill = seq
        worker.kill()  # SIGKILL: no flush, no last checkpoint
        worker.wait(10)
        ckpt = json.loads((tmp_path / "worker.checkpoint.json").read_text())
        (topic, source, next_seq), = ckpt["streams"]
        assert (topic, source) == ("skel/cam", "cam")
        # the checkpoint (written every 0.5 s) points at or before the last frame sent, back by
        # at most the held history (6 s) and the checkpoint period
        assert seq_at_kill - (6.0 + 0.5 + 0.5) * RATE_HZ <= next_seq <= seq_at_kill + 1
        held = seq_at_kill + 1 - next_seq
        send_until(lambda: False, 1.0)  # the walk goes on while no worker listens
        worker = _proc(cfg, "worker")
        send_until(lambda: False, 6.0)  # it starts, subscribes and analyses
        seq_end = seq

        def counters():
            got = None
            while (r := status.recv(50)) is not None:
                st = r[1]
                if (isinstance(st, Status) and st.process == "worker"
                        and st.state.get("run") not in (None, ckpt["run"])):  # the new run's
                    got = st.counters
            return got
        time.sleep(1.5)  # every frame sent has arrived; the next Status counts them all
        last = wait_for(counters, 10)
        assert last is not None, "no Status from the restarted worker"
        dropped, received = last.get("dropped_upstream"), last["received"]
        assert received > 0, "the restarted worker got no frame"
        # every frame from the checkpoint on is either received by the new run or counted lost
        assert dropped + received == seq_end - next_seq + 1, (dropped, received, held)
        assert dropped >= held + RATE_HZ * 1.0, "the second of walking without a worker is missing"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        time.sleep(1.5)  # the sink stores the worker's last Status
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)
        pub.close()
        status.close()
    db = sqlite3.connect(tmp_path / "log.db")
    rows = db.execute("SELECT SUM(count) FROM gaps WHERE stream = 'upstream' AND "
                      "source = 'worker'").fetchone()
    assert rows[0] == dropped, (rows, dropped)
    cycles = np.array(db.execute("SELECT COUNT(*), COUNT(DISTINCT run) FROM cycles").fetchone())
    assert cycles[0] > 4 and cycles[1] == 2  # records of both runs of the worker


def test_a_damaged_checkpoint_is_ignored_with_a_warning(tmp_path, caplog):
    from inference.worker import read_checkpoint
    p = tmp_path / "c.json"
    for text in ("{", '{"version": 1, "streams": [["skel/cam", "cam", -5]]}',
                 '{"version": 1, "streams": [["skel/cam", "cam", true]]}', '[1, 2]',
                 '{"version": 2, "streams": []}'):
        p.write_text(text)
        assert read_checkpoint(str(p)) == []
    # each said (the CLI's flood filter stays on its own handler, not on the test runner's)
    assert sum("ignoring the checkpoint" in r.message for r in caplog.records) == 5
    assert read_checkpoint(str(tmp_path / "absent.json")) == []
    p.write_text('{"version": 1, "run": "r", "streams": [["skel/cam", "cam", 17]]}')
    assert read_checkpoint(str(p)) == [("skel/cam", "cam", 17)]
