"""Speed of the gait transformer: windows/s and latency per backend and batch size, and the live
path against the naive reference, measured in the same run.

``gaitstream bench gait-transformer [--json] [--model PATH] [--seconds S] [--tracks N]
[--batches 1,4,16,64]``

1. Per backend (onnxruntime CPU, torch CPU; onnxruntime CUDA, torch CUDA and TensorRT where
   present, otherwise reported as unavailable with the reason) and batch size, one CPU thread:
   the latency of one call (median of repeats: what a window waits for its batch to run),
   windows/s, and the cost per output frame on the live path (one window serves ``keep``
   frames).
2. A simulated walk of ``--seconds`` at 30 Hz through
   - the naive reference: features once, then torch eager, one window per frame (stride 1,
     batch 1), keeping each window's middle frame;
   - the live path: ``GaitModelTracker`` frame by frame (resampling, features, windows of
     ``keep`` central frames batched across tracks, onnxruntime, event detection), for one
     track and for ``--tracks`` tracks at once (starting at random offsets, as people do).
     Frames go in as fast as the CPU takes them, but the batch deadline (``max_wait_s``) runs
     on the stream's clock, so windows batch as they would live: a lone track's windows,
     ``keep`` frames apart, run one by one.
   CPU time of the process per frame for both, their ratio, the share of one core a 30 Hz
   track costs (process CPU time / stream duration), push latency, and how far the live events
   are from the reference's (matched one to one, median and max |dt|). The ratio compares the
   same work (events); one track is also run as the worker runs it, with a GaitCycle record of
   every stride (``models.gait_transformer.cycles``), for what a track costs there.

The paths alternate over ``--rounds`` and medians are compared: on this shared machine the
neighbours move a single figure by half.
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

from inference.models.gait_transformer.features import N_FEATURES, PHASE_SLICE, stream_features
from inference.models.gait_transformer.runtime import (
    DEFAULT_ONNX, GaitModel, GaitModelOptions, GaitModelTracker, load_gait_model,
    windowed_outputs,
)
from inference.data.simulated import walkway_walk
from inference.models.gait_transformer.events import detect_events
from streams.schema import GaitCycle

log = logging.getLogger(__name__)

BATCHES = (1, 4, 16, 64)
RATE_HZ = 30.0


def _batches(text: str) -> tuple[int, ...]:
    try:
        b = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes: comma-separated integers, got {text!r}")
    if not b or min(b) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return b


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=DEFAULT_ONNX, help="ONNX file")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the simulated walk")
    p.add_argument("--tracks", type=int, default=4,
                   help="tracks at once in the second live run (the first has one)")
    p.add_argument("--keep", type=int, default=GaitModelOptions.keep,
                   help="central frames kept per window on the live path")
    p.add_argument("--batches", type=_batches, default=BATCHES,
                   help="batch sizes of the backend table (default 1,4,16,64)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating runs of the naive and the live paths (medians compared)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _one_thread() -> None:
    # Figures are per core: the analysis shares the machine with capture and sinks.
    import torch

    torch.set_num_threads(1)


def bench_backend(model: GaitModel, batches: tuple[int, ...], repeats: int, keep: int
                  ) -> list[dict[str, float]]:
    rng = np.random.default_rng(0)
    T = model.window
    rows = []
    for b in batches:
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
        rows.append({"batch": b, "latency_ms": ms, "windows_per_s": b / ms * 1000,
                     "ms_per_window": ms / b, "ms_per_frame": ms / b / keep})
    return rows


def backends(path: Path, batches: tuple[int, ...], repeats: int, keep: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tries = [("onnxruntime-cpu", dict(backend="onnxruntime", device="cpu", threads=1)),
             ("torch-cpu", dict(backend="torch", device="cpu")),
             ("onnxruntime-cuda", dict(backend="onnxruntime", device="cuda")),
             ("torch-cuda", dict(backend="torch", device="cuda")),
             ("tensorrt-fp16", dict(backend="tensorrt"))]
    for name, kw in tries:
        try:
            m = load_gait_model(path=path, options=GaitModelOptions(max_batch=max(batches)),
                                **kw)
        except Exception as e:  # a backend missing here is a reported result, not a failure
            out[name] = {"available": False, "reason": str(e).splitlines()[0][:200]}
            log.info("%s: unavailable (%s)", name, out[name]["reason"])
            continue
        rows = bench_backend(m, batches, repeats, keep)
        out[name] = {"available": True, "backend": m.backend.name, "batches": rows}
        log.info("%s: %s", name, ", ".join(f"b{r['batch']} {r['windows_per_s']:.0f} win/s"
                                          for r in rows))
    return out


def run_live(path: Path, t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray, tracks: int,
             keep: int, seed: int = 0, cycles: bool = False) -> dict[str, Any]:
    """``tracks`` trackers fed the walk frame by frame, in time order, each starting at a
    random offset within one window stride (track 0 at none); CPU time of the process.
    ``cycles``: the trackers also make cycle records (the worker's configuration)."""
    from inference.analysis.analyzer import AnalyzerOptions

    live = load_gait_model("onnxruntime", path, threads=1,
                           options=GaitModelOptions(keep=keep, max_batch=64, max_wait_s=0.05))
    now = [0.0]
    live.clock = lambda: now[0]
    n = len(t_us)
    offsets = np.random.default_rng(seed).uniform(0, keep / RATE_HZ * 1e6, tracks).astype(
        np.int64)
    offsets[0] = 0
    times = t_us[None, :] + offsets[:, None]
    order = np.argsort(times.ravel(), kind="stable")
    cycle_options = AnalyzerOptions.from_flat({}) if cycles else None
    trackers = [GaitModelTracker(live, "bench", i, cycle_options=cycle_options)
                for i in range(tracks)]
    events: list[list] = [[] for _ in range(tracks)]
    # The feed (who, when, which frame) is laid out before the clock starts: the figure is
    # the live path's cost, not numpy indexing in the harness.
    feed = [(int(f) // n, int(times.flat[f]), joints[int(f) % n], conf[int(f) % n])
            for f in order]
    lat = [0.0] * len(feed)
    perf = time.perf_counter
    c0 = time.process_time()
    for m, (i, t, j, c) in enumerate(feed):
        now[0] = t / 1e6
        w0 = perf()
        got = trackers[i].push(t, j, c)
        lat[m] = perf() - w0
        if got:
            events[i].extend(got)
    for i, tr in enumerate(trackers):
        events[i].extend(tr.flush())
    cpu = time.process_time() - c0
    return {"cpu_s": cpu, "events": events, "latency_s": np.array(lat),
            "batches": live.counters["batches"], "windows": live.counters["windows"]}


def live_vs_naive(path: Path, seconds: float, tracks: int, keep: int, rounds: int = 3
                  ) -> dict[str, Any]:
    from inference.eval.events import match_events

    _one_thread()
    t_us, joints, conf = walkway_walk(seconds)
    n_in = len(t_us)
    stream_s = n_in / RATE_HZ  # each frame stands for one frame period of the stream

    naive = load_gait_model("torch", path, options=GaitModelOptions(keep=1, max_batch=1))

    def run_naive() -> tuple[float, list]:
        """Torch eager, one window per model frame, batch 1, middle frame."""
        c0 = time.process_time()
        feats = stream_features(t_us, joints, conf, rate_hz=naive.rate_hz)
        y_ref = windowed_outputs(naive, feats["x"], feats["valid"], feats["height"], keep=1,
                                 batch=1)
        return time.process_time() - c0, detect_events(feats["t_us"], y_ref[:, PHASE_SLICE])

    counts = sorted({1, max(1, tracks)})
    naive_runs: list[tuple[float, list]] = []
    live_runs: dict[int, list[dict[str, Any]]] = {k: [] for k in counts}
    worker_runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        naive_runs.append(run_naive())
        for k in counts:
            live_runs[k].append(run_live(path, t_us, joints, conf, k, keep))
        worker_runs.append(run_live(path, t_us, joints, conf, 1, keep, cycles=True))
    naive_cpu = float(np.median([r[0] for r in naive_runs]))
    per_frame_naive = naive_cpu / n_in

    rows = []
    for k in counts:
        runs = live_runs[k]
        cpu = float(np.median([r["cpu_s"] for r in runs]))
        lat = runs[-1]["latency_s"]
        per_frame = cpu / (n_in * k)
        rows.append({
            "tracks": k, "ms_per_frame": 1000 * per_frame,
            "speedup_vs_naive": per_frame_naive / per_frame,
            "speedup_rounds": [nv[0] / (r["cpu_s"] / k) for nv, r in zip(naive_runs, runs)],
            "core_pct_per_track": 100 * cpu / k / stream_s,
            "core_pct_all_tracks": 100 * cpu / stream_s,
            "push_latency_ms_p50": 1000 * float(np.median(lat)),
            "push_latency_ms_p99": 1000 * float(np.percentile(lat, 99)),
            "batches": runs[-1]["batches"], "windows": runs[-1]["windows"],
            "windows_per_batch": runs[-1]["windows"] / max(1, runs[-1]["batches"]),
        })

    ref_events = naive_runs[-1][1]
    live_events = live_runs[1][-1]["events"][0]
    m, used = match_events([(e.side, e.kind, e.t_us) for e in ref_events],
                           [(e.side, e.kind, e.event_us) for e in live_events], 100_000)
    d = [abs(x.error_ms) for x in m if x.error_ms is not None]
    one = rows[0]
    worker_cpu = float(np.median([r["cpu_s"] for r in worker_runs]))
    worker_msgs = worker_runs[-1]["events"][0]
    return {
        "with_cycles": {"ms_per_frame": 1000 * worker_cpu / n_in,
                        "core_pct_per_track": 100 * worker_cpu / stream_s,
                        "cycles": sum(isinstance(m, GaitCycle) for m in worker_msgs)},
        "walk_s": stream_s, "input_frames": n_in, "keep": keep, "rounds": rounds,
        "naive_ms_per_frame": 1000 * per_frame_naive,
        "naive_rounds_s": [r[0] for r in naive_runs],
        "live": rows,
        "speedup_live_vs_naive": one["speedup_vs_naive"],
        "one_30hz_track_core_pct": one["core_pct_per_track"],
        "reference_events": len(ref_events), "live_events": len(live_events),
        "matched_events": len(d),
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
    res["backends"] = backends(args.model, args.batches, args.repeats, args.keep)
    print(f"{'backend':18s} {'batch':>5s} {'ms/call':>9s} {'windows/s':>10s} {'ms/window':>10s} "
          f"{'ms/frame':>9s}   (ms/frame: one window serves {args.keep} live frames)")
    for name, r in res["backends"].items():
        if not r["available"]:
            print(f"{name:18s} unavailable: {r['reason']}")
            continue
        for row in r["batches"]:
            print(f"{name:18s} {row['batch']:5d} {row['latency_ms']:9.2f} "
                  f"{row['windows_per_s']:10.0f} {row['ms_per_window']:10.3f} "
                  f"{row['ms_per_frame']:9.4f}")
    lv = live_vs_naive(args.model, args.seconds, args.tracks, args.keep, args.rounds)
    res["live_vs_naive"] = lv
    print(f"\nsimulated walk {lv['walk_s']:.1f} s at 30 Hz, keep {lv['keep']} central frames per "
          f"window, {lv['rounds']} alternating rounds, one CPU thread")
    print(f"naive reference (torch eager, stride 1, batch 1): "
          f"{lv['naive_ms_per_frame']:.3f} ms CPU per frame")
    for row in lv["live"]:
        print(f"live path, {row['tracks']} track(s) (features + batched onnxruntime + events): "
              f"{row['ms_per_frame']:.3f} ms CPU per frame, {row['speedup_vs_naive']:.1f}x the "
              f"naive (rounds {', '.join(f'{r:.1f}x' for r in row['speedup_rounds'])}); "
              f"{row['core_pct_per_track']:.2f}% of one core per 30 Hz track "
              f"({row['core_pct_all_tracks']:.2f}% all); {row['windows_per_batch']:.1f} windows "
              f"per batch; push latency p50 {row['push_latency_ms_p50']:.3f} ms, p99 "
              f"{row['push_latency_ms_p99']:.3f} ms")
    wc = lv["with_cycles"]
    print(f"live path, 1 track as the worker runs it (+ a cycle record of each of its "
          f"{wc['cycles']} strides): {wc['ms_per_frame']:.3f} ms CPU per frame, "
          f"{wc['core_pct_per_track']:.2f}% of one core")
    print(f"one 30 Hz track alone: {lv['one_30hz_track_core_pct']:.2f}% of one core "
          f"(goal < 10%), {wc['core_pct_per_track']:.2f}% with its cycle records; live vs "
          f"naive {lv['speedup_live_vs_naive']:.1f}x (goal >= 20x)")
    med, top = lv["event_diff_ms_median"], lv["event_diff_ms_max"]
    print(f"events: reference {lv['reference_events']}, live {lv['live_events']}, matched "
          f"{lv['matched_events']}; live vs reference |dt| median "
          f"{'-' if med is None else format(med, '.2f')} ms, max "
          f"{'-' if top is None else format(top, '.2f')} ms")
    if args.json:
        print(json.dumps(res))
    return 0
