"""A video file through the pipeline as ``gaitstream run`` starts it: the configuration's capture
process (webcam source on the file, released at its timestamps) and worker process (pose
estimation + classical analysis), each run as ``deploy.processes.run_process`` runs it, over real
ZeroMQ sockets. The walker's gait events and cycles come out on ``gait/<source>``.

The file plays at 3/4 speed: on this shared 2-core machine the worker cannot always keep up with
30 fps (``gaitstream bench webcam`` measures by how much); what it cannot process it drops and
counts, and this test is about the path working, not about the machine's speed."""

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
speed = 0.75
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
    capture.join(60)  # 7.7 s of video at 3/4 speed
    out, worker_status = [], None

    def drain(seconds: float) -> None:
        nonlocal worker_status
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = sub.recv(100)
            if got is None:
                continue
            msg = got[1]
            if msg.TYPE == "status" and msg.process == "worker":
                worker_status = msg
            elif msg.TYPE in ("gait_event", "gait_cycle"):
                out.append(msg)

    drain(3.0)  # the last frames and the analyzer's look-ahead
    stop.set()  # the worker flushes its tracks and sends a last Status
    worker.join(10)
    drain(1.0)
    sub.close()
    assert not capture.is_alive() and not worker.is_alive()
    assert worker_status is not None
    c = worker_status.counters
    # every frame is analysed or counted as dropped (ZeroMQ's high-water mark, or stale in the
    # worker's queue); a drop among the very last frames leaves no sequence gap to count
    handled = c["images"] + c.get("dropped_stale_images", 0) + c.get("dropped_upstream", 0)
    assert 226 <= handled <= 230, c
    assert c.get("errors", 0) == 0
    events = [m for m in out if m.TYPE == "gait_event"]
    tracks = {e.track for e in events}
    walker = max(tracks, key=lambda k: sum(e.track == k for e in events))
    mine = [e for e in events if e.track == walker]
    strikes = {s: [e for e in mine if e.kind == "foot_strike" and e.side == s]
               for s in ("left", "right")}
    assert all(len(v) >= 2 for v in strikes.values()), {k: len(v) for k, v in strikes.items()}
    assert all(1.5e6 < e.event_us < 6.8e6 for e in mine)  # during her walk
    # while she walks, every event is hers (the acrobat, followed before she walks in or after
    # she has left, is another track)
    first, last = min(e.event_us for e in mine), max(e.event_us for e in mine)
    assert not [e for e in events if e.track != walker and first <= e.event_us <= last]
    cycles = [m for m in out if m.TYPE == "gait_cycle" and m.track == walker]
    assert len(cycles) >= 2 and all(cy.session == "walk" for cy in cycles)
