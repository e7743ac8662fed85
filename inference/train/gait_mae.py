"""``gaitstream train gait-mae``: train GaitMAE on the shared Kinect walks (and simulated ones).

Person-level split: a fixed fifth of each corpus's persons is held out
(``inference.data.gait_mae.person_split``, seed 0); training sees clips of the others only, and
the reconstruction error reported (``gait_mae.json``, card ``gait_mae.md``) is measured on the
held-out persons' clips with a fixed mask. Writes ``gait_mae.onnx`` and ``gait_mae.json`` into
``--models-dir`` (the model folder by default).

Loss: mean squared error of the masked joints only (model units, 0.25 m), as an MAE. Masks
(``model.random_keep``): 30 % of (time-step, joint) tokens and 20 % of whole time steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from inference.data.gait_mae import (DATA, load_walks, person_split, simulated_walks,
                                     walk_frames)
from inference.models.gait_mae.config import (CLIP_FRAMES, MODELS_DIR, N_JOINTS, POSITION_UNIT_M,
                                              MAEConfig, save_config)
from inference.models.gait_mae.features import clips_from_frames

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=DATA, help="../shared/data")
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR,
                   help="where gait_mae.onnx and gait_mae.json go")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--sim", type=int, default=60, help="simulated walks added to training")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, default=None,
                   help="start from the weights of this gait_mae.onnx (its gait_mae.json beside "
                        "it) instead of at random: a second budget continues a first")


def clip_sets(walks, held: set[str]) -> tuple[np.ndarray, np.ndarray]:
    train, test = [], []
    for w in walks:
        c = clips_from_frames(walk_frames(w))
        if len(c):
            (test if w.person in held else train).append(c)
    empty = np.zeros((0, CLIP_FRAMES, N_JOINTS, 3), np.float32)
    return (np.concatenate(train) if train else empty), (np.concatenate(test) if test else empty)


def masked_error_mm(model, clips: np.ndarray, seed: int = 1, batch: int = 256) -> dict:
    """Euclidean error (mm) of masked joints on ``clips``, with the same fixed masks every call,
    split into masked joint tokens and masked whole frames; and the same for a baseline that
    fills each masked joint by linear interpolation in time from its shown frames."""
    import torch

    from inference.models.gait_mae.model import random_keep

    gen = torch.Generator().manual_seed(seed)
    errs, base = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(clips), batch):
            x = torch.from_numpy(clips[i:i + batch])
            keep = random_keep(len(x), model.cfg, gen)
            recon, _ = model(x, keep)
            e = (recon - x).norm(dim=-1).numpy() * POSITION_UNIT_M * 1e3
            m = keep.numpy() == 0
            errs.append(e[m])
            base.append(interp_baseline(x.numpy(), keep.numpy())[m])
    e, b = np.concatenate(errs), np.concatenate(base)
    return {"masked_joint_error_mm_mean": float(e.mean()),
            "masked_joint_error_mm_median": float(np.median(e)),
            "interp_baseline_mm_mean": float(b.mean()), "n_masked": int(e.size)}


def interp_baseline(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Per masked (clip, frame, joint): error (mm) of filling it by linear interpolation in time
    between the joint's nearest shown frames (held flat beyond the ends)."""
    out = np.zeros(keep.shape)
    t = np.arange(x.shape[1])
    for b in range(x.shape[0]):
        for j in range(x.shape[2]):
            shown = keep[b, :, j] > 0
            if shown.all():
                continue
            if not shown.any():
                fill = np.zeros((x.shape[1], 3))
            else:
                fill = np.stack([np.interp(t, t[shown], x[b, shown, j, c]) for c in range(3)], -1)
            out[b, :, j] = np.linalg.norm(fill - x[b, :, j], axis=-1)
    return out * POSITION_UNIT_M * 1e3


def main(args: argparse.Namespace) -> int:
    import torch

    from inference.models.gait_mae.model import GaitMAE, export_onnx, random_keep

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    walks = load_walks(args.data)
    held = person_split([w.person for w in walks], seed=args.seed)
    train, test = clip_sets(walks, held)
    if args.sim:
        sim, _ = clip_sets(simulated_walks(args.sim, args.seed), set())
        train = np.concatenate([train, sim])
    log.info("clips: %d train (%d sim), %d held out (%d persons)", len(train),
             0 if not args.sim else len(sim), len(test), len(held))
    cfg = MAEConfig()
    model = GaitMAE(cfg)
    prior: dict = {}
    if args.init:
        from inference.models.gait_mae.config import load_config
        from inference.models.gait_mae.model import module_from_onnx

        json_path = args.init.with_suffix(".json")
        model = module_from_onnx(args.init, json_path)
        cfg, meta = load_config(json_path)
        prior = meta.get("training", {})
        if sorted(held) != prior.get("held_out_persons"):
            raise SystemExit(f"{args.init} was trained with other held-out persons")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    # a continued run draws other batches and masks than the run it continues
    rng = np.random.default_rng(args.seed + prior.get("steps", 0))
    gen = torch.Generator().manual_seed(args.seed + prior.get("steps", 0))
    budget = args.minutes * 60.0
    t0, step, history = time.monotonic(), 0, []
    while (elapsed := time.monotonic() - t0) < budget:
        # cosine decay over the wall-clock budget (the number of steps is not known beforehand)
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        model.train()
        x = torch.from_numpy(train[rng.integers(0, len(train), args.batch)])
        keep = random_keep(args.batch, cfg, gen)
        recon, _ = model(x, keep)
        masked = (1 - keep)[..., None]
        loss = ((recon - x) ** 2 * masked).sum() / masked.sum().clamp(min=1) / 3
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            rmse_mm = math.sqrt(loss.item() * 3) * POSITION_UNIT_M * 1e3
            history.append({"step": step, "s": round(elapsed), "train_rms_mm": round(rmse_mm, 1)})
            log.info("step %d  %.0f s  train masked RMS %.1f mm", step, elapsed, rmse_mm)
    minutes = (time.monotonic() - t0) / 60
    held_err = masked_error_mm(model, test)
    train_err = masked_error_mm(model, train[rng.integers(0, len(train), 300)])
    log.info("held-out: %s", held_err)
    args.models_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.models_dir / "gait_mae.onnx"
    export_onnx(model, onnx_path)
    save_config(cfg, args.models_dir / "gait_mae.json", training={
        "steps": step + prior.get("steps", 0),
        "minutes": round(minutes + prior.get("minutes", 0.0), 1),
        "budgets": prior.get("budgets", [{"steps": prior.get("steps"),
                                          "minutes": prior.get("minutes")}] if prior else [])
        + [{"steps": step, "minutes": round(minutes, 1), "lr": args.lr}], "batch": args.batch, "lr": args.lr,
        "train_clips": int(len(train)), "held_out_clips": int(len(test)),
        "sim_walks": args.sim, "held_out_persons": sorted(held),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "held_out": held_err, "train_sample": train_err,
        "history": prior.get("history", []) + history})
    print(json.dumps({"held_out": held_err, "train_sample": train_err, "steps": step}, indent=2))
    return 0
