"""``gaitstream bench dpg``: milliseconds per clip of DPG and of the Kidzinski 2020 1D-CNN, in
the same process, on the same clips.

A clip is 124 frames (4.1 s at 30 Hz) of 2D keypoints of a simulated walker seen by a webcam
(``inference.data.dpg``). Timed per clip, one clip per call as the worker runs it: DPG = its two
pattern images (``features.clip_images``) + the ONNX network through onnxruntime; the 1D-CNN =
its documented input (BODY_25 rows, smoothing, normalisation, added columns) + the four networks
DPG's targets need (GDI, knee flexion left and right, cadence, speed), exported from the torch
rebuild to ONNX and run through onnxruntime likewise. Median and 90th percentile; the ratio of
the medians. The goal: DPG <= 5 ms per clip on this CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from inference.data.dpg import KIDZINSKI_MODELS, landmarks
from inference.models.dpg.config import CLIP_FRAMES, CONFIG_PATH, ONNX_PATH

GOAL_MS = 5.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=int, default=200, help="clips timed per method")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--onnx", type=Path, default=ONNX_PATH)
    p.add_argument("--config", type=Path, default=CONFIG_PATH)
    p.add_argument("--kidzinski", type=Path, default=KIDZINSKI_MODELS)
    p.add_argument("--json", action="store_true", help="print one JSON object last")


def kidzinski_onnx(models: Path, out_dir: Path, threads: int) -> dict:
    """The four 1D-CNNs as onnxruntime sessions (exported from the torch rebuild)."""
    import torch

    from inference.models.backends import OnnxRuntimeBackend
    from inference.models.dpg.kidzinski import Kidzinski, build_torch

    out = {}
    for name in Kidzinski.NETS:
        net = build_torch(models / f"{name}_best.pb")
        c = next(m for m in net.convs if isinstance(m, torch.nn.Conv1d)).in_channels
        path = out_dir / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.zeros(1, CLIP_FRAMES, c),), str(path),
                              input_names=["x"], output_names=["y"], opset_version=17,
                              dynamo=False, dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
        out[name] = OnnxRuntimeBackend(path, threads=threads)
    return out


def _stats(ms: list[float]) -> dict:
    a = np.array(ms)
    # p10 beside the median: on a shared machine the fast tenth shows the uncontended cost
    return {"median_ms": round(float(np.median(a)), 3),
            "p10_ms": round(float(np.percentile(a, 10)), 3),
            "p90_ms": round(float(np.percentile(a, 90)), 3)}


def bench(args) -> dict:
    from inference.data.dpg import sim_clips
    from inference.models.dpg.features import clip_images
    from inference.models.dpg.kidzinski import Kidzinski
    from inference.models.dpg.runtime import DPGEstimator

    clips = []
    seed = 100
    while len(clips) < args.clips:
        clips += [c for c in sim_clips(4, seed=seed, hop=31) if c.keypoints]
        seed += 1
    clips = clips[:args.clips]
    est = DPGEstimator(args.onnx, args.config, threads=args.threads)
    kid = Kidzinski.__new__(Kidzinski)  # only its input construction; the nets run in ORT
    with tempfile.TemporaryDirectory() as tmp:
        nets = kidzinski_onnx(args.kidzinski, Path(tmp), args.threads)

        def dpg(c):
            img = clip_images(landmarks({n: v[:CLIP_FRAMES] for n, v in c.keypoints.items()}))
            return est.predict_images(img[None])

        def cnn(c):
            x = kid.window_inputs(c.keypoints)
            return [nets[n].run({"x": x[key].astype(np.float32)})["y"] for n, key in
                    (("GDI", "both"), ("KneeFlex_maxExtension", "left"),
                     ("KneeFlex_maxExtension", "right"), ("cadence", "both"), ("speed", "both"))]

        times: dict[str, list[float]] = {"dpg": [], "kidzinski_1dcnn": []}
        for c in clips[:5]:  # warm-up
            dpg(c)
            cnn(c)
        for c in clips:  # interleaved, so that load on the machine hits both alike
            for name, f in (("dpg", dpg), ("kidzinski_1dcnn", cnn)):
                t0 = time.perf_counter()
                f(c)
                times[name].append((time.perf_counter() - t0) * 1e3)
    rows = {k: _stats(v) for k, v in times.items()}
    return {"clips": len(clips), "threads": args.threads, "cpu_count": os.cpu_count(),
            "rows": rows, "goal_ms": GOAL_MS,
            "ratio_dpg_to_1dcnn": round(rows["dpg"]["median_ms"]
                                        / rows["kidzinski_1dcnn"]["median_ms"], 3),
            "goal_met": rows["dpg"]["median_ms"] <= GOAL_MS}


def main(args: argparse.Namespace) -> int:
    res = bench(args)
    print(f"ms per clip of 124 frames ({res['clips']} clips, {res['threads']} thread(s), "
          f"{res['cpu_count']} CPUs, load average {os.getloadavg()[0]:.1f}; input construction "
          "+ network, one clip per call)")
    for name, r in res["rows"].items():
        print(f"  {name:<18} median {r['median_ms']:7.3f} ms   p10 {r['p10_ms']:7.3f} ms   "
              f"p90 {r['p90_ms']:7.3f} ms")
    print(f"  DPG / 1D-CNN (medians): {res['ratio_dpg_to_1dcnn']:.2f}; goal DPG <= "
          f"{res['goal_ms']:.0f} ms: {'met' if res['goal_met'] else 'NOT met'}")
    if args.json:
        print(json.dumps(res))
    return 0
