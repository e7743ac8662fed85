"""A video file through the pipeline as ``gaitstream run`` starts it: the configuration's capture
process (webcam source on the file, released in real time) and worker process (pose estimation +
classical analysis), each run as ``deploy.processes.run_process`` runs it, over real ZeroMQ
sockets. The walker's gait events and cycles come out on ``gait/<source>``."""

from __future__ import annotations

import threading
import time

from deploy.config import load_config
from deploy.processes import run_process
from streams.transport import Subscriber

VIDEO = "video_walking_sports2d/sports2d_demo.mp4"


def test_a_video_file_runs_through_capture_and_worker(shared_data, endpoint, tmp_path):
    cap_ep, work_ep = endpoint(), endpoint()
    cfg_path = tmp_path / "webcam.toml"
    cfg_path.write_text(f"""
[pipeline]
name = "video"
session = "walk"

[[process]]
name = "cam"
kind = "capture"
publish = "{cap_ep}"
hwm = 4
[process.options]
source = "webcam"
path = "{shared_data / VIDEO}"

[[process]]
name = "worker"
kind = "worker"
subscribe = ["{cap_ep}"]
publish = "{work_ep}"
hwm = 4
""")
    cfg = load_config(cfg_path)
    sub = Subscriber([work_ep], ["gait/cam", "status"])
    stop = threading.Event()
    worker = threading.Thread(target=run_process, args=(cfg, cfg.process("worker"), stop))
    worker.start()
    # the worker's socket must be up (and subscribed) before frames flow: PUB/SUB drops early ones
    time.sleep(1.5)
    capture = threading.Thread(target=run_process, args=(cfg, cfg.process("cam"), stop))
    capture.start()
    capture.join(60)  # 7.7 s of video in real time
    out, worker_status = [], None
    deadline = time.monotonic() + 4  # the last frames and the analyzer's look-ahead
    while time.monotonic() < deadline:
        got = sub.recv(100)
        if got is None:
            continue
        msg = got[1]
        if msg.TYPE == "status" and msg.process == "worker":
            worker_status = msg
        elif msg.TYPE in ("gait_event", "gait_cycle"):
            out.append(msg)
    stop.set()
    worker.join(10)
    sub.close()
    assert not capture.is_alive() and not worker.is_alive()
    assert worker_status is not None
    c = worker_status.counters
    assert c["images"] >= 100  # it may drop frames when it cannot keep up; they are counted
    assert c["images"] + c.get("dropped_stale_images", 0) + c.get("dropped_upstream", 0) >= 200
    assert c.get("errors", 0) == 0
    events = [m for m in out if m.TYPE == "gait_event"]
    tracks = {e.track for e in events}
    walker = max(tracks, key=lambda k: sum(e.track == k for e in events))
    mine = [e for e in events if e.track == walker]
    strikes = {s: [e for e in mine if e.kind == "foot_strike" and e.side == s]
               for s in ("left", "right")}
    assert all(len(v) >= 2 for v in strikes.values()), {k: len(v) for k, v in strikes.items()}
    assert all(1.5e6 < e.event_us < 6.8e6 for e in mine)  # during her walk
    # anyone else (the acrobat, once she has left the image) comes after her, as another track
    assert all(e.event_us > 6.6e6 for e in events if e.track != walker)
    cycles = [m for m in out if m.TYPE == "gait_cycle" and m.track == walker]
    assert len(cycles) >= 2 and all(cy.session == "walk" for cy in cycles)
