"""Frames per second of the classical gait analysis on one CPU core.

``gaitstream bench analysis [--json] [--repeats N] [FILE ...]``

Each recording (default: a Kinect v1 walk at 30 Hz and gait-lab trials at 100 and 240 Hz from
../shared/data) is pushed frame by frame through ``OnlineGaitAnalyzer`` as the worker does, with
the process pinned to one core. Reported per recording: frames per second of the process's own
CPU time (what one core delivers; on a shared machine wall time also counts the time other
processes held the core, so it is reported beside it), the multiple of real time at the
recording's own rate and at 30 Hz, and the per-push wall-time percentiles (frames are
finalised in groups, so a few pushes carry the group's work).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference.data import SHARED_DATA as DATA

log = logging.getLogger(__name__)

GOAL_X_30HZ = 100.0  # the goal: >= 100x real time for a 30 Hz stream on one core
DEFAULT_FILES = (
    DATA / "kinect_v1_walking_andersson2015" / "walks" / "Person003" / "1.txt",
    DATA / "c3d_gait_lab_samples" / "trials" / "C3DORG_s00_Vicon_pyCGM2_CGM24_Walking01.c3d",
    DATA / "c3d_gait_lab_samples" / "trials" / "C3DORG_s26_Walking_Hybrid_1_1.c3d",
)


def pin_one_core() -> int | None:
    """Restrict this process to one CPU (the first it may use); returns it, or None where the
    platform cannot."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def bench_recording(rec: Any, repeats: int) -> dict[str, Any]:
    from inference.analysis.analyzer import OnlineGaitAnalyzer

    joints = rec.joints.astype(np.float32)
    conf = rec.confidence.astype(np.float32)
    t_us = [int(t) for t in rec.t_us]
    n = len(t_us)
    best_cpu = best_wall = float("inf")
    costs = np.zeros(n)
    outputs = 0
    for _ in range(repeats):
        a = OnlineGaitAnalyzer("bench", 0)
        got = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            got += len(a.push(t_us[i], joints[i], conf[i]))
            costs[i] = time.perf_counter() - t0
        got += len(a.flush())
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        best_wall = min(best_wall, wall)
        if cpu < best_cpu:
            best_cpu, outputs = cpu, got
            push_us = costs * 1e6
    fps = n / best_cpu
    return {
        "file": rec.name, "frames": n, "rate_hz": rec.rate_hz, "frames_per_s": fps,
        "frames_per_wall_s": n / best_wall,
        "x_realtime": fps / rec.rate_hz, "x_realtime_at_30hz": fps / 30.0,
        "push_us_p50": float(np.percentile(push_us, 50)),
        "push_us_p99": float(np.percentile(push_us, 99)),
        "push_us_max": float(push_us.max()), "outputs": outputs,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", type=Path, help="recordings (default: shared samples)")
    p.add_argument("--repeats", type=int, default=3, help="runs per recording, best kept")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    from capture.readers import load_recording

    cpu = pin_one_core()
    files = args.files or [f for f in DEFAULT_FILES if f.is_file()]
    if not files:
        print(f"no recordings given and none of the defaults under {DATA}")
        return 2
    results = []
    for f in files:
        rec = load_recording(f)
        log.info("benchmarking %s (%d frames)", f.name, rec.n_frames)
        r = bench_recording(rec, args.repeats)
        results.append(r)
        print(f"{r['file'][:40]:40s} {r['frames']:5d} frames @ {r['rate_hz']:5.0f} Hz: "
              f"{r['frames_per_s']:7.0f} frames/CPU-s ({r['frames_per_wall_s']:.0f}/wall-s) = "
              f"{r['x_realtime']:6.1f}x its real time, {r['x_realtime_at_30hz']:6.1f}x a 30 Hz "
              f"stream; push p50 {r['push_us_p50']:.0f} us, p99 {r['push_us_p99']:.0f} us, "
              f"max {r['push_us_max']:.0f} us")
    worst = min(r["x_realtime_at_30hz"] for r in results)
    print(f"slowest: {worst:.1f}x real time for a 30 Hz stream (goal >= {GOAL_X_30HZ:g}x) "
          f"on CPU {cpu}")
    if args.json:
        print(json.dumps({"bench": "analysis", "cpu": cpu, "machine": platform.processor()
                          or platform.machine(), "results": results,
                          "min_x_realtime_at_30hz": worst, "goal_x_realtime_at_30hz": GOAL_X_30HZ,
                          "meets_goal": worst >= GOAL_X_30HZ}))
    return 0
