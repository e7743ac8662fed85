"""Milliseconds per scored gait cycle of the diffusion anomaly scorer, per backend and K.

A cycle is scored as the worker does it: its canonical joints at the source's timestamps are
resampled to 20 fps, turned into normalised HumanML3D features, noised at K steps and denoised
under both prompts in one batch of 2K clips. The cycles are stride-long pieces (1.0-1.3 s) of
a synthetic normal walk of an evaluation seed (no file of ../shared/data is needed). Reported per backend and K: median and 90th percentile of
the whole call, and the part spent outside the model (features). The goal on this CPU is a
cycle in <= 50 ms at the chosen K.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import numpy as np

from inference.models.motion_diffusion.scorer import DEFAULT_K, load_scorer
from inference.models.backends import BACKENDS, BackendError

log = logging.getLogger(__name__)


def bench_cycles(n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """n stride-long pieces (t_us, joints) of a synthetic normal walk."""
    from inference.data.diffusion import EVAL_SEED0, sim_walks
    from inference.models.motion_diffusion.features import FPS

    w = sim_walks(1, EVAL_SEED0)[0]
    t_us = np.round(np.arange(w.n_frames) * 1e6 / FPS).astype(np.int64)
    duration_s = t_us[-1] / 1e6
    out = []
    for _ in range(n):
        dur = rng.uniform(1.0, 1.3)
        a = rng.uniform(0, duration_s - dur)
        sel = (t_us >= a * 1e6) & (t_us <= (a + dur) * 1e6)
        out.append((t_us[sel], w.joints[sel]))
    return out


def bench(backends: list[str], ks: list[int], n: int, threads: int) -> dict:
    rng = np.random.default_rng(0)
    cycles = bench_cycles(n, rng)
    rows = []
    for backend in backends:
        for k in ks:
            try:
                scorer = load_scorer(backend, k=k, threads=threads)
            except (BackendError, ImportError) as e:
                rows.append({"backend": backend, "k": k, "error": str(e)})
                log.warning("%s: %s", backend, e)
                break
            model_ms: list[float] = []
            run = scorer.denoise

            def timed(*a, _run=run):
                t0 = time.perf_counter()
                out = _run(*a)
                model_ms.append((time.perf_counter() - t0) * 1e3)
                return out

            scorer.denoise = timed
            for t, j in cycles[:3]:  # warm-up
                scorer.score(t, j)
            model_ms.clear()
            total = []
            for t, j in cycles:
                t0 = time.perf_counter()
                scorer.score(t, j)
                total.append((time.perf_counter() - t0) * 1e3)
            total_a, model_a = np.array(total), np.array(model_ms)
            row = {"backend": scorer.backend_name, "k": k, "batch": 2 * k,
                   "ms_per_cycle_median": round(float(np.median(total_a)), 2),
                   "ms_per_cycle_p90": round(float(np.percentile(total_a, 90)), 2),
                   "ms_model_median": round(float(np.median(model_a)), 2),
                   "ms_features_median": round(float(np.median(total_a - model_a)), 2),
                   "cycles_per_s": round(1e3 / float(np.median(total_a)), 1)}
            rows.append(row)
            log.info("%s K=%d: %.1f ms/cycle (p90 %.1f; model %.1f)", row["backend"], k,
                     row["ms_per_cycle_median"], row["ms_per_cycle_p90"], row["ms_model_median"])
    chosen = [r for r in rows if r.get("k") == DEFAULT_K and "error" not in r
              and r["backend"].startswith("onnxruntime")]
    return {"chosen_k": DEFAULT_K, "threads": threads, "cycles": n, "cpu_count": os.cpu_count(),
            "goal_ms": 50.0,
            "goal_met": bool(chosen and chosen[0]["ms_per_cycle_median"] <= 50.0),
            "rows": rows}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backends", default="onnxruntime,torch,tensorrt",
                   help=f"comma-separated, of {', '.join(BACKENDS)}")
    p.add_argument("--k", default=",".join(str(k) for k in sorted({4, 8, 16, 32, 64, DEFAULT_K})),
                   help="comma-separated K values")
    p.add_argument("--cycles", type=int, default=40, help="cycles timed per backend and K")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of the backend")
    p.add_argument("--json", action="store_true", help="print one JSON object last")


def main(args: argparse.Namespace) -> int:
    ks = sorted({int(k) for k in args.k.split(",")})
    res = bench([b.strip() for b in args.backends.split(",") if b.strip()], ks, args.cycles,
                args.threads)
    print(f"diffusion scorer: ms per scored cycle ({res['cycles']} cycles, {res['threads']} "
          f"thread(s), chosen K={res['chosen_k']}, goal <= {res['goal_ms']:.0f} ms)")
    for r in res["rows"]:
        if "error" in r:
            print(f"  {r['backend']:<40} unavailable: {r['error']}")
        else:
            print(f"  {r['backend']:<40} K={r['k']:<4} {r['ms_per_cycle_median']:7.1f} ms "
                  f"(p90 {r['ms_per_cycle_p90']:.1f}; model {r['ms_model_median']:.1f}, "
                  f"features {r['ms_features_median']:.1f})")
    print(f"goal met at K={res['chosen_k']} on onnxruntime: {res['goal_met']}")
    if args.json:
        print(json.dumps(res))
    return 0
