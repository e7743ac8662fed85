"""Speed of the gait transformer: windows/s per backend and batch size, and the live path
against the naive reference, measured in the same run.

``gaitstream bench gait-transformer [--json] [--model PATH] [--seconds S] [--tracks N]``

1. Per backend (onnxruntime CPU, torch CPU; onnxruntime CUDA, torch CUDA and TensorRT where
   present, otherwise reported as unavailable with the reason) and batch size: windows/s and
   milliseconds per call (median of repeats), one CPU thread.
2. A simulated walk of ``--seconds`` at 30 Hz through
   - the naive reference: features once, then torch eager, one window per frame (stride 1,
     batch 1), keeping each window's middle frame;
   - the live path: ``GaitModelTracker`` frame by frame (resampling, features, windows of
     ``keep`` central frames batched across ``--tracks`` interleaved tracks, onnxruntime, event
     detection), CPU time per frame;
   and the ratio of the two per-frame costs, the share of one core one 30 Hz track costs, and
   how far the live events are from the reference's (median and max |Δt|).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference.gait_features import N_FEATURES, PHASE_SLICE, stream_features
from inference.gait_model import (
    DEFAULT_ONNX, GaitModel, GaitModelOptions, GaitModelTracker, load_gait_model,
    windowed_outputs,
)
from inference.gait_model_events import detect_events

log = logging.getLogger(__name__)

BATCHES = (1, 8, 32, 64)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=DEFAULT_ONNX, help="ONNX file")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the simulated walk")
    p.add_argument("--tracks", type=int, default=4, help="tracks interleaved in the live path")
    p.add_argument("--keep", type=int, default=GaitModelOptions.keep,
                   help="central frames kept per window on the live path")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating runs of the naive and the live path (medians compared)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _one_thread() -> None:
    # Figures are per core: the analysis shares the machine with capture and sinks.
    import torch

    torch.set_num_threads(1)


def bench_backend(model: GaitModel, repeats: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(0)
    T = model.window
    rows = []
    for b in BATCHES:
        x = rng.normal(0, 0.3, (b, T, N_FEATURES)).astype(np.float32)
        v = np.ones((b, T), np.float32)
        h = np.full((b, 1), 1.7, np.float32)
        model.backend.run({"x": x, "valid": v, "height": h})  # warm-up (allocations, kernels)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.backend.run({"x": x, "valid": v, "height": h})
            times.append(time.perf_counter() - t0)
        ms = 1000 * float(np.median(times))
        rows.append({"batch": b, "ms_per_call": ms, "windows_per_s": b / ms * 1000,
                     "ms_per_window": ms / b})
    return rows


def backends(path: Path, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tries = [("onnxruntime-cpu", dict(backend="onnxruntime", device="cpu", threads=1)),
             ("torch-cpu", dict(backend="torch", device="cpu")),
             ("onnxruntime-cuda", dict(backend="onnxruntime", device="cuda")),
             ("torch-cuda", dict(backend="torch", device="cuda")),
             ("tensorrt-fp16", dict(backend="tensorrt"))]
    for name, kw in tries:
        try:
            m = load_gait_model(path=path, options=GaitModelOptions(max_batch=max(BATCHES)),
                                **kw)
        except Exception as e:  # a backend missing here is a reported result, not a failure
            out[name] = {"available": False, "reason": str(e).splitlines()[0][:200]}
            log.info("%s: unavailable (%s)", name, out[name]["reason"])
            continue
        rows = bench_backend(m, repeats)
        out[name] = {"available": True, "backend": m.backend.name, "batches": rows}
        log.info("%s: %s", name, ", ".join(f"b{r['batch']} {r['windows_per_s']:.0f} win/s"
                                          for r in rows))
    return out


def simulated_walk(seconds: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A simulated person walking up and down the walkway, at 30 Hz (canonical joints)."""
    from capture.sim.patterns import make_style
    from capture.sim.person import Person
    from capture.sim.scenes import random_params, scene
    from capture.sim.skeleton import layout_joints

    rng = np.random.default_rng(seed)
    plan = scene("walkway", 1, rng, passes=max(1, int(np.ceil(seconds / 4.0))))[0]
    person = Person.build(random_params(rng), make_style("normal", 0), plan.actions,
                          plan.start, plan.heading, 0.0, rng)
    t = np.arange(0.0, min(seconds, person.t_stop), 1.0 / 30.0)
    pts, _ = person.evaluate(t)
    joints = layout_joints(pts, "canonical22").astype(np.float32)
    return np.round(t * 1e6).astype(np.int64), joints, np.ones(joints.shape[:2], np.float32)


def live_vs_naive(path: Path, seconds: float, tracks: int, keep: int, rounds: int = 3
                  ) -> dict[str, Any]:
    _one_thread()
    t_us, joints, conf = simulated_walk(seconds)
    n_in = len(t_us)
    stream_s = (t_us[-1] - t_us[0]) / 1e6

    naive = load_gait_model("torch", path, options=GaitModelOptions(keep=1, max_batch=1))

    def run_naive() -> tuple[float, list]:
        """Torch eager, one window per model frame, batch 1, middle frame."""
        c0 = time.process_time()
        feats = stream_features(t_us, joints, conf, rate_hz=naive.rate_hz)
        y_ref = windowed_outputs(naive, feats["x"], feats["valid"], feats["height"], keep=1,
                                 batch=1)
        return time.process_time() - c0, detect_events(feats["t_us"], y_ref[:, PHASE_SLICE])

    def run_live() -> tuple[float, list[list], list[float], Any]:
        """Trackers fed frame by frame, ``tracks`` of them interleaved and batched."""
        live = load_gait_model("onnxruntime", path, threads=1,
                               options=GaitModelOptions(keep=keep, max_batch=64, max_wait_s=0.05))
        trackers = [GaitModelTracker(live, "bench", i) for i in range(tracks)]
        events: list[list] = [[] for _ in range(tracks)]
        lat = []
        c0 = time.process_time()
        for k in range(n_in):
            for i, tr in enumerate(trackers):
                w0 = time.perf_counter()
                events[i].extend(tr.push(int(t_us[k]), joints[k], conf[k]))
                lat.append(time.perf_counter() - w0)
        for i, tr in enumerate(trackers):
            events[i].extend(tr.flush())
        return time.process_time() - c0, events, lat, live

    # This machine's neighbours move single figures by half; the two paths alternate over
    # ``rounds`` and the medians are compared.
    naive_runs, live_runs = [], []
    for _ in range(rounds):
        naive_runs.append(run_naive())
        live_runs.append(run_live())
    naive_cpu = float(np.median([r[0] for r in naive_runs]))
    live_cpu = float(np.median([r[0] for r in live_runs]))
    ref_events = naive_runs[-1][1]
    _, events, lat, live = live_runs[-1]

    d = []
    for e in ref_events:
        same = [abs(f.event_us - e.t_us) for f in events[0] if (f.side, f.kind) == (e.side,
                                                                                     e.kind)]
        d.append(min(same) / 1000 if same else float("inf"))
    per_frame_naive = naive_cpu / n_in
    per_frame_live = live_cpu / (n_in * tracks)
    return {
        "walk_s": stream_s, "input_frames": n_in, "tracks": tracks, "keep": keep,
        "rounds": rounds,
        "speedup_rounds": [n[0] / (lv[0] / tracks) for n, lv in zip(naive_runs, live_runs)],
        "naive_ms_per_frame": 1000 * per_frame_naive,
        "live_ms_per_frame": 1000 * per_frame_live,
        "speedup_live_vs_naive": per_frame_naive / per_frame_live,
        "one_30hz_track_core_pct": 100 * live_cpu / tracks / stream_s,
        "push_latency_ms_p50": 1000 * float(np.median(lat)),
        "push_latency_ms_p99": 1000 * float(np.percentile(lat, 99)),
        "live_batches": live.counters["batches"], "live_windows": live.counters["windows"],
        "reference_events": len(ref_events), "live_events": len(events[0]),
        "event_diff_ms_median": float(np.median(d)) if d else None,
        "event_diff_ms_max": float(np.max(d)) if d else None,
    }


def main(args: argparse.Namespace) -> int:
    _one_thread()
    if not args.model.exists():
        print(f"no model at {args.model}; train one with `gaitstream train gait-transformer`")
        return 2
    res: dict[str, Any] = {"model": str(args.model), "cpu_count": os.cpu_count(),
                           "threads": 1}
    res["backends"] = backends(args.model, args.repeats)
    print(f"{'backend':18s} {'batch':>5s} {'ms/call':>9s} {'windows/s':>10s} {'ms/window':>10s}")
    for name, r in res["backends"].items():
        if not r["available"]:
            print(f"{name:18s} unavailable: {r['reason']}")
            continue
        for row in r["batches"]:
            print(f"{name:18s} {row['batch']:5d} {row['ms_per_call']:9.2f} "
                  f"{row['windows_per_s']:10.0f} {row['ms_per_window']:10.3f}")
    lv = live_vs_naive(args.model, args.seconds, args.tracks, args.keep, args.rounds)
    res["live_vs_naive"] = lv
    print(f"\nsimulated walk {lv['walk_s']:.1f} s at 30 Hz, {lv['tracks']} tracks interleaved, "
          f"keep {lv['keep']} central frames per window")
    print(f"naive reference (torch eager, stride 1, batch 1): "
          f"{lv['naive_ms_per_frame']:.3f} ms CPU per frame")
    print(f"live path (features + batched onnxruntime + events): "
          f"{lv['live_ms_per_frame']:.3f} ms CPU per frame")
    print(f"speed-up per round: {', '.join(f'{r:.1f}x' for r in lv['speedup_rounds'])}")
    print(f"speed-up {lv['speedup_live_vs_naive']:.1f}x (medians); one 30 Hz track costs "
          f"{lv['one_30hz_track_core_pct']:.2f}% of one core; push latency p50 "
          f"{lv['push_latency_ms_p50']:.3f} ms, p99 {lv['push_latency_ms_p99']:.3f} ms")
    print(f"events: reference {lv['reference_events']}, live {lv['live_events']}; live vs "
          f"reference |dt| median {lv['event_diff_ms_median']} ms, max "
          f"{lv['event_diff_ms_max']} ms")
    if args.json:
        print(json.dumps(res))
    return 0
