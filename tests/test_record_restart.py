"""A recorder killed with SIGKILL and started again on the same path (a crash loop, a re-run)
keeps what the first one wrote (issue 19, item 6: it opened its file with "wb", so a restart
replaced hours of recording with an empty file). Real processes, sockets and files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from conftest import REPO, free_port, wait_for
from streams.schema import Body, SkeletonFrame, decode
from streams.streamfile import StreamReader
from streams.transport import Publisher


def _recorder(cfg):
    return subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config", str(cfg),
                             "--name", "rec"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stderr=subprocess.DEVNULL)


def _seqs(path):
    return [decode(bytes(r.frames[1])).seq for r in StreamReader(path)]


def test_a_restarted_recorder_keeps_the_file_of_the_killed_one(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[pipeline]
data_dir = "{tmp_path}"

[[process]]
name = "rec"
kind = "record"
subscribe = ["{ep}"]
topics = ["skel/"]
[process.options]
path = "walk.gst"
""")
    pub = Publisher(ep)
    body = [Body(0, np.zeros((22, 3), np.float32), np.ones(22, np.float32))]

    def send(seqs):
        for s in seqs:
            pub.send(SkeletonFrame(source="cam", seq=s, t_us=s, host_us=1, bodies=body))
            time.sleep(0.005)

    rec = _recorder(cfg)
    try:
        assert pub.wait_for_subscribers(1, 30) == 1
        time.sleep(0.1)
        send(range(1, 201))
        path = tmp_path / "walk.gst"
        # the writer syncs as it goes: wait until the records are in the file, then kill
        assert wait_for(lambda: path.exists() and len(_seqs(path)) == 200, 10)
        rec.kill()
        rec.wait(10)
        rec = _recorder(cfg)
        assert pub.wait_for_subscribers(1, 30) == 1
        time.sleep(0.1)
        send(range(201, 251))
        assert wait_for(lambda: path.exists() and len(_seqs(path)) == 50, 10)
    finally:
        rec.send_signal(signal.SIGTERM)
        rec.wait(30)
        pub.close()
    kept = [p for p in tmp_path.glob("walk-*.gst")]
    assert len(kept) == 1, sorted(tmp_path.iterdir())
    assert _seqs(kept[0]) == list(range(1, 201))  # the killed recorder's file, whole
    assert _seqs(tmp_path / "walk.gst") == list(range(201, 251))
