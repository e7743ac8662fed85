"""``gaitstream train dpg``: train DPG on simulated, FGDI and clinic-video clips.

Persons are held out whole (``inference.data.dpg.held_out``: every third FGDI subject of each
group and every third video participant); training sees clips of the others and of simulated
walkers only. Writes ``dpg.onnx`` and ``dpg.json`` (the target scaling and the held-out MAE per
output) into ``--models-dir``. The simulated clips can be cached (``--cache``, an .npz) so that a
second budget does not simulate again.

Loss: mean squared error of the scaled outputs that have truth (GDI and knee come from the
simulator and the FGDI strides only, cadence and step length from all three).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from inference.data.dpg import FGDI, VIDEO, Clip
from inference.models.dpg.config import MODELS_DIR, OUTPUTS, DPGConfig, save_config

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fgdi", type=Path, default=FGDI, help="a folder in the FGDI layout")
    p.add_argument("--video", type=Path, default=VIDEO,
                   help="a folder in the video-keypoints layout")
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR,
                   help="where dpg.onnx and dpg.json go")
    p.add_argument("--sim", type=int, default=300, help="simulated walkers")
    p.add_argument("--views", type=int, default=24, help="camera views per FGDI subject-session")
    p.add_argument("--video-hop", type=int, default=31,
                   help="frames between the starts of training clips of a video trial (30 Hz)")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, default=None,
                   help="start from the weights and target scaling of this dpg.onnx (its dpg.json "
                        "beside it): a second budget continues a first")
    p.add_argument("--cache", type=Path, default=None,
                   help="an .npz of the simulated clips: read when there, written otherwise")


def split_persons(fgdi: Path, video: Path) -> set[str]:
    from inference.data.dpg import fgdi_pairs, held_out, read_video_folder

    by: dict[str, list[str]] = {}
    for person, group, _, _ in fgdi_pairs(fgdi):
        by.setdefault(group, []).append(person)
    held = held_out(by)
    by = {}
    for tr in read_video_folder(video):
        by.setdefault(tr.group, []).append(tr.person)
    return held | held_out(by)


def stack(clips: list[Clip]) -> dict[str, np.ndarray]:
    return {"images": np.stack([c.images for c in clips]).astype(np.float32),
            "targets": np.stack([c.targets for c in clips]),
            "source": np.array([c.source for c in clips]),
            "person": np.array([c.person for c in clips])}


def build_sets(args) -> tuple[dict, dict]:
    from inference.data.dpg import fgdi_clips, read_video_folder, sim_clips, video_clips

    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache) as z:
            sim = {k: z[k] for k in z.files}
    else:
        t0 = time.monotonic()
        sim = stack(sim_clips(args.sim, seed=args.seed))
        log.info("%d simulated clips in %.0f s", len(sim["images"]), time.monotonic() - t0)
        if args.cache is not None:
            np.savez(args.cache, **sim)
    held = split_persons(args.fgdi, args.video)
    real = fgdi_clips(args.fgdi, views=args.views, seed=args.seed) + \
        video_clips(read_video_folder(args.video), hop=args.video_hop)
    train = stack([c for c in real if c.person not in held])
    train = {k: np.concatenate([sim[k], v]) for k, v in train.items()}
    return train, stack([c for c in real if c.person in held])


def mae_by_output(pred: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    out = {}
    for k, name in enumerate(OUTPUTS):
        ok = np.isfinite(y[:, k])
        out[name] = float(np.mean(np.abs(pred[ok, k] - y[ok, k]))) if ok.any() else None
    return out


def main(args: argparse.Namespace) -> int:
    import torch

    from inference.models.dpg.model import DPG, export_onnx

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    tr, te = build_sets(args)
    y = tr["targets"]
    mean = np.nanmean(y, axis=0)
    std = np.nanstd(y, axis=0) + 1e-6
    if args.init is not None:
        from inference.models.dpg.config import load_config
        from inference.models.dpg.model import module_from_onnx

        _, meta = load_config(args.init.with_suffix(".json"))
        mean, std = np.asarray(meta["target_mean"]), np.asarray(meta["target_std"])
    ys = np.nan_to_num((y - mean) / std).astype(np.float32)
    mask = np.isfinite(y).astype(np.float32)
    x = torch.from_numpy(tr["images"])
    cfg = DPGConfig()
    model = DPG(cfg) if args.init is None else \
        module_from_onnx(args.init, args.init.with_suffix(".json"))
    epochs_before = 0 if args.init is None else int(meta.get("epochs", 0))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    log.info("training on %d clips (%s), %d held-out clips", len(x),
             ", ".join(f"{s}: {(tr['source'] == s).sum()}" for s in np.unique(tr["source"])),
             len(te["images"]))
    end = time.monotonic() + 60 * args.minutes
    epoch = 0
    while time.monotonic() < end:
        model.train()
        order = rng.permutation(len(x))
        tot = 0.0
        for i in range(0, len(order), args.batch):
            b = order[i:i + args.batch]
            left = max(0.0, (end - time.monotonic()) / (60 * args.minutes))
            for g in opt.param_groups:  # cosine decay over the wall-clock budget
                g["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 - np.cos(np.pi * left)))
            out = model(x[b])
            m = torch.from_numpy(mask[b])
            loss = (((out - torch.from_numpy(ys[b])) ** 2) * m).sum() / m.sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(b)
            if time.monotonic() > end:
                break
        epoch += 1
        log.info("epoch %d: loss %.4f", epoch, tot / len(x))
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(te["images"])).numpy() * std + mean
    held = {src: mae_by_output(pred[te["source"] == src], te["targets"][te["source"] == src])
            for src in np.unique(te["source"])}
    args.models_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, args.models_dir / "dpg.onnx",
                {"trained_on": "simulator, FGDI strides (driven, side views), clinic-video "
                               "keypoints; see dpg.md"})
    save_config(cfg, args.models_dir / "dpg.json", mean.tolist(), std.tolist(),
                epochs=epochs_before + epoch, train_clips=int(len(x)),
                train_sources={s: int((tr["source"] == s).sum())
                               for s in np.unique(tr["source"])},
                held_out_mae_in_training_units=held)
    for src, m in held.items():
        print(src, {k: (round(v, 3) if v is not None else None) for k, v in m.items()})
    return 0
