"""A running pipeline process fed malformed messages keeps running and counts them."""

import os
import signal
import subprocess
import sys
import time

import msgpack
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.schema import Status
from streams.transport import Subscriber

from conftest import REPO, free_port

garbage = st.lists(st.binary(max_size=64), min_size=1, max_size=4)


def test_worker_survives_and_counts_malformed_input(tmp_path):
    src_ep, out_ep = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    cfg = tmp_path / "w.toml"
    cfg.write_text(f"""
[[process]]
name = "worker"
kind = "worker"
subscribe = ["{src_ep}"]
topics = [""]
publish = "{out_ep}"
""")
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.bind(src_ep)
    status = Subscriber([out_ep], ["status"])
    proc = subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config", str(cfg),
                             "--name", "worker"], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        time.sleep(1.5)  # the worker connects; PUB/SUB drops whatever is sent before that
        sent = []

        @settings(max_examples=300, deadline=None, database=None)
        @given(garbage)
        def send(frames):
            raw.send_multipart(frames)
            sent.append(frames)

        send()
        bad = [[b"skel/x", msgpack.packb({"type": "skeleton", "v": 1, "src": "x", "seq": 1,
                                          "t": 1, "host": 1, "layout": "canonical22",
                                          "bodies": [{"id": 0, "j": {"dt": "<f4", "sh": [22, 3],
                                                                     "b": b"\xff" * 264},
                                                      "c": {"dt": "<f4", "sh": [22],
                                                            "b": b"\0" * 88}}]})]]
        for f in bad:  # NaN joints
            raw.send_multipart(f)
        total = len(sent) + len(bad)
        end = time.monotonic() + 15
        counters = {}
        while time.monotonic() < end:
            r = status.recv(200)
            if r and isinstance(r[1], Status):
                counters = r[1].counters
                if counters.get("received", 0) >= total:
                    break
        assert proc.poll() is None, "the worker died"
        assert counters.get("received") == total
        assert counters.get("rejected") == total
        assert counters.get("frames", 0) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        raw.close()
