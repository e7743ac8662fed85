"""``gaitstream bench webcam``: what the webcam path costs and whether it keeps up with 30 fps.

Cases, on frames of the real walking video (``--video``, by default the shared demo video):

* **pose ms/frame**: ``inference.pose.estimator.PoseEstimator`` on every frame, at 640x480 (a webcam: the
  video's centre cropped to 4:3 and scaled) and at the video's own 1768x994. Frames where people
  are searched for (tiles, several model runs) cost far more than frames where one person is
  followed; both show in the percentiles.
* **transport**: 640x480 BGR ImageFrames at 30 fps through ``streams.transport`` (TCP loopback,
  pixels as their own zero-copy ZeroMQ frame), receiver in another process; latency from the
  sender's stamp to the decoded message.
* **end to end**: the capture process (``WebcamSource`` on a 640x480 MJPEG file, released at
  30 fps by the capture runner) -> ZeroMQ -> the inference worker process (pose + classical gait
  analysis, stale frames dropped) for the length of the video. Frames/s the worker processed,
  frames it dropped, and its latency from frame capture to each event/cycle it published.

The machine is shared and has 2 cores, so figures vary run to run (the load average is printed
with them); they are measured, never asserted. The first frames a new MediaPipe graph sees cost
150-250 ms once (TFLite set-up), which shows in the maximum. With ``--json`` the last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from inference.data import SHARED_DATA
from streams.extras import deferred

cv2 = deferred("cv2", "the webcam benchmark")

log = logging.getLogger(__name__)

DEFAULT_VIDEO = SHARED_DATA / "video_walking_sports2d" / "sports2d_demo.mp4"
RATE_HZ = 30.0


def webcam_frames(video: Path, limit: int) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """(native frames, 640x480 frames, t_us) of the first ``limit`` frames of ``video``."""
    from capture.webcam import WebcamSource

    src = WebcamSource("bench", path=str(video))
    native, small, times = [], [], []
    for f in src.frames():
        img = f.array()
        h, w = img.shape[:2]
        cw = min(w, h * 4 // 3)
        x0 = (w - cw) // 2
        native.append(img)
        small.append(cv2.resize(img[:, x0:x0 + cw], (640, 480), interpolation=cv2.INTER_AREA))
        times.append(f.t_us)
        if len(native) >= limit:
            break
    src.close()
    if not native:
        raise SystemExit(f"bench webcam: no frames decoded from {video}")
    return native, small, times


def _stats(ms: np.ndarray) -> dict[str, float]:
    return {"mean": float(ms.mean()), "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "max": float(ms.max())}


def bench_pose(frames: list[np.ndarray], times: list[int]) -> dict:
    from inference.pose.estimator import PoseEstimator

    est = PoseEstimator()
    est.estimate(frames[0], times[0] - 1_000_000)  # model load and first-run setup, not timed
    ms, found = [], 0
    for img, t in zip(frames, times):
        t0 = time.perf_counter()
        found += bool(est.estimate(img, t))
        ms.append((time.perf_counter() - t0) * 1000)
    counters = est.all_counters()
    est.close()
    a = np.array(ms)
    return {"frames": len(a), "ms": _stats(a), "with_pose": found,
            "fps_capacity": float(1000 / a.mean()), "model_runs": counters["model_runs"]}


def _transport_receiver(ep: str, n: int, conn) -> None:
    from streams.schema import monotonic_us
    from streams.transport import Subscriber

    sub = Subscriber([ep], ["img/"])
    conn.send("ready")
    lat = []
    deadline = time.monotonic() + n / RATE_HZ + 10
    while len(lat) < n and time.monotonic() < deadline:
        got = sub.recv(200)
        if got is not None:
            msg = got[1]
            msg.array()  # the pixels are usable without a copy
            lat.append((monotonic_us() - msg.host_us) / 1000)
    conn.send((lat, sub.counters.gaps, sub.counters.rejected))
    sub.close()


def bench_transport(img: np.ndarray, n: int) -> dict:
    from streams.schema import ImageFrame, monotonic_us
    from streams.transport import Publisher

    pub = Publisher("tcp://127.0.0.1:0")
    here, there = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_transport_receiver,
                                           args=(pub.endpoint, n, there))
    proc.start()
    here.recv()
    pub.wait_for_subscribers(1, 10)
    t_next = time.monotonic()
    for i in range(n):
        t_next += 1 / RATE_HZ
        f = ImageFrame(source="bench", seq=i + 1, t_us=i, host_us=0, width=img.shape[1],
                       height=img.shape[0]).attach(img)
        f.host_us = monotonic_us()
        pub.send(f)
        time.sleep(max(0.0, t_next - time.monotonic()))
    lat, gaps, rejected = here.recv()
    proc.join(10)
    pub.close()
    a = np.array(lat) if lat else np.array([np.nan])
    return {"frames": n, "received": len(lat), "lost": gaps + (n - len(lat) - gaps),
            "rejected": rejected, "latency_ms": _stats(a),
            "mb_per_s": float(img.nbytes * RATE_HZ / 1e6)}


def _worker_process(sub_ep: str, pub_ep: str, stop_evt) -> None:
    from inference.worker import WorkerConfig, run_worker
    from streams.node import StatusReporter
    from streams.transport import Publisher, Subscriber

    stop = threading.Event()
    threading.Thread(target=lambda: (stop_evt.wait(), stop.set()), daemon=True).start()
    pub = Publisher(pub_ep)
    sub = Subscriber([sub_ep], ["img/"], hwm=4)
    run_worker(WorkerConfig(), sub, pub, stop, StatusReporter("worker", "worker", period_s=0.5))
    time.sleep(0.3)  # let the last Status leave
    pub.close()


def bench_end_to_end(frames: list[np.ndarray]) -> dict:
    from streams.schema import ImageFrame, monotonic_us
    from streams.node import StatusReporter
    from streams.transport import Publisher, Subscriber

    from capture.base import run_capture
    from capture.webcam import WebcamSource

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "webcam.avi"
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), RATE_HZ, (640, 480))
        for img in frames:
            w.write(img)
        w.release()
        cap_pub = Publisher("tcp://127.0.0.1:0", hwm=4)
        probe = Publisher("tcp://127.0.0.1:0")  # only to learn a free port for the worker
        worker_ep = probe.endpoint
        probe.close()
        ctx = mp.get_context("spawn")
        stop_evt = ctx.Event()
        proc = ctx.Process(target=_worker_process, args=(cap_pub.endpoint, worker_ep, stop_evt))
        proc.start()
        status_sub = Subscriber([worker_ep], ["status", "gait/"])
        if cap_pub.wait_for_subscribers(1, 60) != 1:
            raise SystemExit("bench webcam: the worker process did not subscribe")
        # the worker loads MediaPipe on its first frame: warm it up (a blank frame, before the
        # video's first timestamp) before the clock starts
        blank = np.zeros((480, 640, 3), np.uint8)
        cap_pub.send(ImageFrame(source="cam", seq=1, t_us=-1_000_000, host_us=monotonic_us(),
                                width=640, height=480).attach(blank))
        time.sleep(3.0)
        src = WebcamSource("cam", path=str(path))
        stop = threading.Event()
        cap_status = StatusReporter("cam", "capture")
        t0 = time.monotonic()
        run_capture(src, cap_pub, stop, cap_status, speed=1.0)
        offered_s = time.monotonic() - t0
        time.sleep(1.0)  # the worker finishes the frame in hand
        stop_evt.set()
        last, outputs = None, 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = status_sub.recv(200)
            if got is None:
                if not proc.is_alive():
                    break
                continue
            msg = got[1]
            if msg.TYPE == "status" and msg.process == "worker":
                last = msg
            elif msg.TYPE in ("gait_event", "gait_cycle") and msg.source == "cam":
                outputs += 1
        proc.join(10)
        status_sub.close()
        cap_pub.close()
    if last is None:
        raise SystemExit("bench webcam: no status from the worker")
    c = last.counters
    sent = int(cap_status.counters["published"])
    processed = int(c.get("images", 0)) - 1  # minus the warm-up frame
    dropped = int(c.get("dropped_stale_images", 0)) + int(c.get("dropped_upstream", 0))
    return {"offered": sent, "offered_fps": sent / offered_s, "processed": processed,
            "processed_fps": processed / offered_s, "dropped": sent - processed,
            "dropped_counted_by_worker": dropped, "events_and_cycles": outputs,
            "worker_latency_ms": last.latency_ms, "errors": int(c.get("errors", 0))}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="video to take frames from")
    p.add_argument("--frames", type=int, default=230, help="frames per case (at most the video)")
    p.add_argument("--skip-native", action="store_true", help="skip pose at the video's size")
    p.add_argument("--json", action="store_true", help="print one JSON object last")


def main(args: argparse.Namespace) -> int:
    if not args.video.is_file():
        raise SystemExit(f"bench webcam: video {args.video} not found (give --video)")
    native, small, times = webcam_frames(args.video, args.frames)
    out: dict = {"video": str(args.video), "frames": len(small), "cpus": os.cpu_count(),
                 "load_avg_1min_before": os.getloadavg()[0]}
    print(f"pose at 640x480 on {len(small)} frames ...", flush=True)
    out["pose_640x480"] = bench_pose(small, times)
    if not args.skip_native:
        h, w = native[0].shape[:2]
        print(f"pose at {w}x{h} ...", flush=True)
        out["pose_native"] = bench_pose(native, times) | {"size": f"{w}x{h}"}
    print("transport: 640x480 frames at 30 fps ...", flush=True)
    out["transport_640x480"] = bench_transport(small[len(small) // 2], len(small))
    print("end to end: capture -> worker at 30 fps ...", flush=True)
    out["end_to_end"] = e2e = bench_end_to_end(small)
    out["load_avg_1min_after"] = os.getloadavg()[0]
    budget = 1000 / RATE_HZ
    pose_ms = out["pose_640x480"]["ms"]["mean"]
    keeps_up = e2e["processed"] >= 0.97 * e2e["offered"]
    out["keeps_up_30fps"] = keeps_up
    out["verdict"] = (
        f"worker processed {e2e['processed_fps']:.1f} of {e2e['offered_fps']:.1f} frames/s "
        f"({100 * e2e['processed'] / max(e2e['offered'], 1):.0f} %); pose {pose_ms:.1f} ms/frame "
        f"mean vs a {budget:.1f} ms budget at 30 fps"
        + ("" if keeps_up else f": short by {e2e['offered_fps'] - e2e['processed_fps']:.1f} "
           f"frames/s, the newest frame is analysed and the rest dropped (counted)"))
    for k in ("pose_640x480", "pose_native"):
        if k in out:
            m = out[k]["ms"]
            print(f"{k}: mean {m['mean']:.1f} ms, p50 {m['p50']:.1f}, p95 {m['p95']:.1f}, "
                  f"max {m['max']:.1f} ({out[k]['fps_capacity']:.1f} frames/s capacity), "
                  f"pose on {out[k]['with_pose']}/{out[k]['frames']} frames")
    tr = out["transport_640x480"]
    print(f"transport 640x480 at 30 fps: latency p50 {tr['latency_ms']['p50']:.2f} ms, "
          f"p95 {tr['latency_ms']['p95']:.2f} ms, lost {tr['lost']}/{tr['frames']}")
    print(f"end to end: {out['verdict']}; worker latency (frame -> event) "
          f"{e2e['worker_latency_ms']}")
    print(f"({out['cpus']} CPUs, load average {out['load_avg_1min_before']:.1f} before, "
          f"{out['load_avg_1min_after']:.1f} after: other work on the machine slows every case)")
    if args.json:
        print(json.dumps(out))
    return 0
