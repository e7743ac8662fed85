"""Train the gait transformer on synthetic walks (with sensor noise) and labelled real trials.

Data:
- synthetic walker (``capture.sim``), generated in-process or read from a ``gaitstream simulate``
  dataset (``--sim-data DIR``): every gait pattern and severity, random viewpoints, random
  subjects; each walk is seen clean and through the Azure-Kinect-like sensor model; a share of
  the walks lose the upper body (lower-body marker sets exist in the gait labs). Targets:
  kinematics from the clean joints, phases from the exact event times.
- real recordings in ../shared/data with event labels (lab-marked or force-plate events), in a
  fixed training split (``REAL_TRAIN``): the rest stays held out for ``gaitstream eval events``.
  Each is seen clean and with simulated Kinect noise.

Windows of ``window`` frames are drawn at random positions (also past either end of a walk, so
the model learns the padded windows of the start and end of a stream). Loss: masked MSE on
normalised kinematics and on (cos, sin) of the phases.

Writes to ``--out``: ``log.jsonl`` (progress), ``ckpt.pt`` (latest weights + optimiser; not for
git), ``training_curve.png``, and exports the ONNX file (``--export``, default the shipped
``inference/models/gait_transformer/gait_transformer.onnx``) with its model card next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from inference.models.gait_transformer.features import (
    EVENTS, N_FEATURES, N_KINEMATIC, N_OUTPUTS, OUT, OUTPUT_SCALE,
    OUTPUT_NAMES, OUTPUT_TIMES_HEIGHT, FeatureStream, kinematics, phase_targets, stream_features,
)
from inference.data import SHARED_DATA
from inference.data.sensor_views import SensorView, view_recording
from inference.data.simulated import random_person, walk_frames
from streams.skeletons import CANONICAL_PARENTS, CJ

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]

# Real trials with event labels used for training; every other labelled trial is held out.
# Left out: FlatFoot-Full (its marked events look shifted, SOURCES.md) and FunctionalWalk (a
# side label is wrong: a 125 ms stance between its marks).
REAL_TRAIN = (
    "c3d_gait_lab_samples/trials/BTK__PiG_Motion-FlatFoot-Hole.c3d",
    "c3d_gait_lab_samples/trials/BTK__PiG_Motion-FlatFoot-One.c3d",
    "c3d_gait_lab_samples/trials/C3DORG_s03_gait-pig.c3d",
    "c3d_gait_lab_samples/trials/C3DORG_s03_gait-pig-nz.c3d",
    "opensim_walking_trc_grf/subject01_walk1.trc",
)
UPPER_BODY = tuple(CJ[n] for n in (
    "spine2", "spine3", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"))


@dataclass
class Walk:
    """One walk as training data: the model's input stream and what it should predict."""

    name: str
    t_us: np.ndarray  # input timestamps
    joints: np.ndarray  # input joints (possibly noisy)
    conf: np.ndarray
    events: dict[tuple[str, str], np.ndarray]  # seconds, same clock as t_us / 1e6
    clean_t_us: np.ndarray | None = None  # clean joints for the kinematic targets
    clean: np.ndarray | None = None
    clean_conf: np.ndarray | None = None
    standing: np.ndarray | None = None  # (simulator) on the clean clock: walker stands still
    meta: dict[str, Any] = field(default_factory=dict)


def drop_upper_body(joints: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As a lower-body marker set gives it: upper joints untracked, placed on their parent."""
    j, c = joints.copy(), conf.copy()
    for k in sorted(UPPER_BODY):
        j[:, k] = j[:, CANONICAL_PARENTS[k]]
        c[:, k] = 0.0
    return j, c


def _interp_joints(t_src: np.ndarray, j: np.ndarray, t_q: np.ndarray) -> np.ndarray:
    flat = j.reshape(len(j), -1)
    out = np.empty((len(t_q), flat.shape[1]))
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(t_q, t_src, flat[:, k])
    return out.reshape(len(t_q), *j.shape[1:])


def walk_sequence(w: Walk) -> dict[str, np.ndarray | float]:
    """Features of the input stream and targets on the same model-rate grid."""
    feats = stream_features(w.t_us, w.joints, w.conf)
    t = feats["t_us"]
    ct = w.clean_t_us if w.clean_t_us is not None else w.t_us
    cj = w.clean if w.clean is not None else w.joints
    cc = w.clean_conf if w.clean_conf is not None else w.conf
    inside = (t >= ct[0]) & (t <= ct[-1])
    gj = _interp_joints(ct.astype(np.float64), cj, t)
    gc = _interp_joints(ct.astype(np.float64), cc[..., None], t)[..., 0]
    # The targets' heading frame: the same causal heading, from the clean joints.
    fs = FeatureStream(feats["height"])
    axes = np.full((len(t), 3, 3), np.nan)
    for i in range(len(t)):
        _, R = fs.push(gj[i], gc[i], bool(inside[i]))
        if R is not None:
            axes[i] = R
    ok = inside & np.isfinite(axes[:, 0, 0])
    axes[~ok] = np.eye(3)
    y = np.zeros((len(t), N_OUTPUTS), np.float32)
    mask = np.zeros((len(t), N_OUTPUTS), np.float32)
    y[:, :N_KINEMATIC] = kinematics(t / 1e6, gj, axes)
    need = {  # joints each kinematic channel is made of
        "hip_flexion": ("hip", "knee"), "knee_flexion": ("hip", "knee", "ankle"),
        "foot_forward": ("foot", "pelvis"), "foot_vel": ("foot",), "pelvis_vel": ("pelvis",)}
    for name, i in OUT.items():
        if i >= N_KINEMATIC:
            continue
        side = "left" if name.endswith("_left") else "right" if name.endswith("_right") else ""
        base = next(k for k in need if name.startswith(k))
        js = [CJ[n] if n == "pelvis" else CJ[f"{side}_{n}"] for n in need[base]]
        mask[:, i] = ok & (gc[:, js].min(axis=1) > 0)
    ph, pm = phase_targets(t / 1e6, w.events)
    if w.standing is not None:
        # Standing still has no gait phase: a zero vector there, and a stride interval that
        # contains a stop is not a stride (unknown phase in its walking part).
        still = np.interp(t, ct.astype(np.float64), w.standing.astype(np.float64)) > 0.5
        for e, key in enumerate(EVENTS):
            ev = np.sort(np.asarray(w.events.get(key, ()), np.float64))
            for a, b in zip(ev[:-1], ev[1:]):
                sel = (t / 1e6 >= a) & (t / 1e6 < b)
                if still[sel].any():
                    pm[sel, e] = 0.0
        ph[still] = 0.0
        pm[still] = 1.0
    y[:, N_KINEMATIC:] = ph
    mask[:, N_KINEMATIC:] = np.repeat(pm, 2, axis=1) * feats["valid"][:, None]
    mask[:, :N_KINEMATIC] *= feats["valid"][:, None]
    return {"x": feats["x"], "valid": feats["valid"], "height": feats["height"], "y": y,
            "mask": mask, "t_us": t}


class WindowSampler:
    """All sequences back to back with a window of padding between them; a batch is a set of
    random centres, each window a slice (padding is invalid input and masked target)."""

    def __init__(self, seqs: list[dict], window: int, seed: int = 0):
        self.T = window
        pad = window
        n = sum(len(s["x"]) + pad for s in seqs) + pad
        self.x = np.zeros((n, N_FEATURES), np.float32)
        self.valid = np.zeros(n, np.float32)
        self.y = np.zeros((n, N_OUTPUTS), np.float32)
        self.mask = np.zeros((n, N_OUTPUTS), np.float32)
        self.height = np.zeros(n, np.float32)
        centres = []
        pos = pad
        for s in seqs:
            m = len(s["x"])
            sl = slice(pos, pos + m)
            self.x[sl], self.valid[sl], self.y[sl], self.mask[sl] = (s["x"], s["valid"], s["y"],
                                                                     s["mask"])
            self.height[pos - pad // 2:pos + m + pad // 2] = s["height"]
            # centres from half a window before the start to half a window after the end
            centres.append(np.arange(pos - window // 2 + 1, pos + m + window // 2 - 1))
            pos += m + pad
        self.centres = np.concatenate(centres)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.centres)

    def batch(self, size: int, centres: np.ndarray | None = None) -> dict[str, np.ndarray]:
        c = self.rng.choice(self.centres, size) if centres is None else centres
        idx = c[:, None] - self.T // 2 + np.arange(self.T)[None, :]
        return {"x": self.x[idx], "valid": self.valid[idx], "y": self.y[idx],
                "mask": self.mask[idx], "height": self.height[c][:, None]}


def normalised_targets(y: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Targets in the units of ``GaitTransformer.normalised`` (before scaling)."""
    th = np.asarray(OUTPUT_TIMES_HEIGHT, np.float32)
    return y / np.asarray(OUTPUT_SCALE, np.float32) / (1.0 + th * (height[..., None] - 1.0))


PHASE_WEIGHT = 2.0


def loss_fn(torch: Any, pred: Any, target: Any, mask: Any) -> tuple[Any, dict[str, float]]:
    err = (pred - target) ** 2 * mask
    k, p = slice(0, N_KINEMATIC), slice(N_KINEMATIC, N_OUTPUTS)
    lk = err[..., k].sum() / mask[..., k].sum().clamp(min=1.0)
    lp = err[..., p].sum() / mask[..., p].sum().clamp(min=1.0)
    return lk + PHASE_WEIGHT * lp, {"kin": lk.item(), "phase": lp.item()}


# --------------------------------------------------------------------------- data sources


def real_walks(root: Path, names: Iterable[str], noise: Any, seed: int) -> list[Walk]:
    """Labelled real trials, clean and through the sensor noise model (``noise`` callable or
    None)."""
    from capture.readers import load_recording
    from inference.data.groundtruth import trial_truth

    out = []
    rng = np.random.default_rng(seed)
    for rel in names:
        path = root / rel
        rec = load_recording(path)
        ev = event_times(trial_truth(path).events)
        out.append(Walk(rec.name, rec.t_us, rec.joints, rec.confidence, ev))
        if noise is not None:
            t, j, c = noise(rec.t_us, rec.joints, rec.confidence, rng)
            out.append(Walk(rec.name + "+noise", t, j, c, ev, rec.t_us, rec.joints,
                            rec.confidence))
    return out


def event_times(events: Iterable[Any]) -> dict[tuple[str, str], np.ndarray]:
    """Times (s) of ground-truth events (``groundtruth.GaitEventTruth``) per (side, kind), in
    the given order; a record boundary (not observed) is no event."""
    out: dict[tuple[str, str], list[float]] = {}
    for e in events:
        if e.observed:
            out.setdefault((e.side, e.kind), []).append(e.t_us / 1e6)
    return {k: np.array(v) for k, v in out.items()}


def event_errors(pred: list, truth: dict[tuple[str, str], np.ndarray], t_lo: float,
                 t_hi: float, tol_s: float = 0.1) -> dict[str, Any]:
    """Match predicted events (objects with side, kind, t_us) to true event times (s) of the
    same side and kind inside [t_lo, t_hi]: absolute errors (ms) of matches within ``tol_s``,
    recall and precision."""
    errs: dict[str, list[float]] = {"foot_strike": [], "foot_off": []}
    n_true = n_pred = 0
    for key in EVENTS:
        tt = np.asarray(truth.get(key, ()), np.float64)
        tt = tt[(tt >= t_lo) & (tt <= t_hi)]
        pp = np.array([e.t_us / 1e6 for e in pred if (e.side, e.kind) == key])
        pp = pp[(pp >= t_lo) & (pp <= t_hi)]
        n_true += len(tt)
        n_pred += len(pp)
        for x in tt:
            if len(pp) and np.min(np.abs(pp - x)) <= tol_s:
                errs[key[1]].append(1000 * float(np.min(np.abs(pp - x))))
    matched = len(errs["foot_strike"]) + len(errs["foot_off"])
    return {"errors_ms": errs, "n_true": n_true, "n_pred": n_pred, "matched": matched}


def summarise_errors(parts: list[dict[str, Any]]) -> dict[str, float | None]:
    fs = [x for p in parts for x in p["errors_ms"]["foot_strike"]]
    fo = [x for p in parts for x in p["errors_ms"]["foot_off"]]
    n_true = sum(p["n_true"] for p in parts)
    n_pred = sum(p["n_pred"] for p in parts)
    matched = sum(p["matched"] for p in parts)

    def med(v: list[float]) -> float | None:
        return float(np.median(v)) if v else None

    return {"foot_strike_median_ms": med(fs), "foot_off_median_ms": med(fo),
            "foot_strike_p90_ms": float(np.percentile(fs, 90)) if fs else None,
            "foot_off_p90_ms": float(np.percentile(fo, 90)) if fo else None,
            "recall": matched / n_true if n_true else None,
            "precision": matched / n_pred if n_pred else None, "n_true": n_true}


# --------------------------------------------------------------------------- training


def add_arguments(p: argparse.ArgumentParser) -> None:
    from inference.models.gait_transformer.runtime import DEFAULT_ONNX

    p.add_argument("--out", type=Path, default=REPO / "out" / "gait_transformer",
                   help="log, checkpoint and plots (default: out/gait_transformer)")
    p.add_argument("--steps", type=int, default=6000, help="optimiser steps (at most)")
    p.add_argument("--minutes", type=float, default=18.0,
                   help="wall-clock budget; the schedule ends at whichever comes first")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--sim-walks", type=int, default=160, help="synthetic walks to generate")
    p.add_argument("--sim-data", type=Path, default=None,
                   help="read a `gaitstream simulate` dataset instead of generating walks")
    p.add_argument("--real-data", type=Path, default=SHARED_DATA,
                   help="the shared data folder (labelled real trials)")
    p.add_argument("--no-real", action="store_true", help="synthetic data only")
    p.add_argument("--export", type=Path, default=DEFAULT_ONNX, help="ONNX file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="a tiny model (smoke runs and tests)")
    p.add_argument("--no-eval", action="store_true",
                   help="skip the evaluation on the shared real data for the model card")


def lr_at(progress: float, peak: float, warmup: float = 0.03) -> float:
    if progress < warmup:
        return peak * max(progress, 1e-3) / warmup
    p = min(1.0, (progress - warmup) / (1.0 - warmup))
    return peak * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * p)))


def evaluate_walks(model: Any, walks: list[Walk]) -> dict[str, Any]:
    """Event timing (vs the true events at least half a second inside each walk) and knee /
    hip flexion RMS error (deg) of a GaitModel on walks."""
    from inference.models.gait_transformer.runtime import predict_recording

    parts, sq = [], {"knee": [], "hip": []}
    for w in walks:
        r = predict_recording(model, w.t_us, w.joints, w.conf)
        lo, hi = w.t_us[0] / 1e6 + 0.5, w.t_us[-1] / 1e6 - 0.5
        parts.append(event_errors(r["events"], w.events, lo, hi))
        seq = walk_sequence(w)
        ok = np.isfinite(r["y"]).all(axis=1)
        for j in ("knee", "hip"):
            for side in ("left", "right"):
                i = OUT[f"{j}_flexion_{side}"]
                m = ok & (seq["mask"][:, i] > 0)
                sq[j].extend(((r["y"][m, i] - seq["y"][m, i]) ** 2).tolist())
    out = summarise_errors(parts)
    for j, v in sq.items():
        out[f"{j}_rmse_deg"] = float(np.sqrt(np.mean(v))) if v else None
    return out


def plot_curve(log_rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = [r for r in log_rows if r["kind"] == "train"]
    va = [r for r in log_rows if r["kind"] == "val"]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("loss", "-"), ("kin", ":"), ("phase", "--")):
        ax[0].plot([r["step"] for r in tr], [r[key] for r in tr], style, label=f"train {key}")
    if va:
        ax[0].plot([r["step"] for r in va], [r["loss"] for r in va], "o-", label="val loss")
        for key in ("foot_strike_median_ms", "foot_off_median_ms"):
            pts = [(r["step"], r[key]) for r in va if r.get(key) is not None]
            if pts:
                ax[1].plot(*zip(*pts), "o-", label=f"val {key.replace('_', ' ')}")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("step")
    ax[0].legend(fontsize=8)
    ax[0].set_title("gait transformer: loss")
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("ms")
    ax[1].set_title("validation event error (noisy synthetic walks)")
    if ax[1].lines:
        ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(args: argparse.Namespace, train_walks: list[Walk], val_walks: list[Walk]
          ) -> dict[str, Any]:
    import torch

    from inference.models.backends import TorchBackend
    from inference.models.gait_transformer.runtime import GaitModel, GaitModelOptions
    from inference.models.gait_transformer.model import GaitTransformer, GaitTransformerConfig

    torch.manual_seed(args.seed)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    elif not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    dev = torch.device(args.device)
    cfg = (GaitTransformerConfig(d_model=32, n_layer=1, n_head=2, d_ff=64) if args.tiny
           else GaitTransformerConfig())
    model = GaitTransformer(cfg).to(dev)
    t0 = time.monotonic()
    log.info("features and targets of %d training and %d validation walks ...",
             len(train_walks), len(val_walks))
    seqs = []
    for i, w in enumerate(train_walks):
        try:
            seqs.append(walk_sequence(w))
        except ValueError as e:  # e.g. a sensor view that never shows a whole leg
            log.warning("walk %s left out: %s", w.name, e)
        if (i + 1) % 50 == 0:
            log.info("  %d/%d walks", i + 1, len(train_walks))
    sampler = WindowSampler(seqs, cfg.window, args.seed)
    val_sampler = WindowSampler([walk_sequence(w) for w in val_walks], cfg.window, args.seed + 1)
    val_centres = val_sampler.rng.choice(val_sampler.centres, min(512, len(val_sampler)))
    n_frames = sum(len(s["x"]) for s in seqs)
    log.info("%d training frames (%.1f min at 30 Hz), %d window positions; prepared in %.0f s",
             n_frames, n_frames / 1800, len(sampler), time.monotonic() - t0)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "log.jsonl"
    rows: list[dict] = []
    fh = open(log_path, "w")
    budget = args.minutes * 60.0
    start = time.monotonic()
    step, progress = 0, 0.0
    run_model = GaitModel(TorchBackend(model, ("x", "valid", "height"), ("y",), device=args.device),
                          cfg.window, options=GaitModelOptions())
    eval_every = max(50, args.steps // 12)

    def tensors(b: dict[str, np.ndarray]) -> tuple:
        yt = normalised_targets(b["y"], b["height"])
        return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(dev)
                     for a in (b["x"], b["valid"], b["height"], yt, b["mask"]))

    def validate() -> dict[str, Any]:
        model.eval()
        with torch.no_grad():
            x, v, h, y, m = tensors(val_sampler.batch(len(val_centres), val_centres))
            vl, parts = loss_fn(torch, model.normalised(x, v, h), y, m)
        ev = evaluate_walks(run_model, val_walks[:8])
        model.train()
        return {"loss": float(vl), **parts, **ev}

    def emit(row: dict) -> None:
        rows.append(row)
        fh.write(json.dumps(row) + "\n")
        fh.flush()

    model.train()
    while step < args.steps and progress < 1.0:
        progress = max(step / args.steps, (time.monotonic() - start) / budget)
        lr = lr_at(progress, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        x, v, h, y, m = tensors(sampler.batch(args.batch))
        loss, parts = loss_fn(torch, model.normalised(x, v, h), y, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0 or step == 1:
            emit({"kind": "train", "step": step, "t_s": round(time.monotonic() - start, 1),
                  "lr": lr, "loss": loss.item(), **parts})
        if step % 100 == 0:
            log.info("step %d  %.0f%%  loss %.4f (kin %.4f, phase %.4f)  lr %.2e  %.0f s",
                     step, 100 * progress, float(loss), parts["kin"], parts["phase"], lr,
                     time.monotonic() - start)
        if step % eval_every == 0:
            val = validate()
            emit({"kind": "val", "step": step, "t_s": round(time.monotonic() - start, 1), **val})
            log.info("validation at step %d: loss %.4f, foot strike %s ms, foot off %s ms, "
                     "recall %s, knee RMSE %s deg", step, val["loss"],
                     _fmt(val["foot_strike_median_ms"]), _fmt(val["foot_off_median_ms"]),
                     _fmt(val["recall"], 2), _fmt(val["knee_rmse_deg"]))
            torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(),
                        "optimizer": opt.state_dict(), "step": step}, args.out / "ckpt.pt")
            plot_curve(rows, args.out / "training_curve.png")
    val = validate()
    emit({"kind": "val", "step": step, "t_s": round(time.monotonic() - start, 1), **val})
    fh.close()
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "step": step},
               args.out / "ckpt.pt")
    plot_curve(rows, args.out / "training_curve.png")
    model.cpu().eval()
    return {"model": model, "steps": step, "train_s": time.monotonic() - start,
            "prep_s": start - t0, "final_val": val, "train_frames": n_frames,
            "device": args.device, "config": cfg.to_dict()}


def _fmt(x: float | None, nd: int = 1) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def export(result: dict[str, Any], path: Path) -> None:
    from inference.models.gait_transformer.runtime import FEATURE_VERSION
    from inference.models.gait_transformer.features import MODEL_RATE_HZ
    from inference.models.gait_transformer.model import export_onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    export_onnx(result["model"], tmp, {
        "rate_hz": str(MODEL_RATE_HZ), "feature_version": FEATURE_VERSION,
        "outputs": json.dumps(list(OUTPUT_NAMES)),
        "trained_steps": str(result["steps"])})
    os.replace(tmp, path)
    log.info("exported %s (%.0f kB)", path, path.stat().st_size / 1024)


EVAL_DIRS = ("c3d_gait_lab_samples", "opensim_walking_trc_grf", "opencap_mocap_modified_gait")


def real_data_eval(onnx_path: Path, root: Path) -> dict[str, Any]:
    """``eval events`` on the shared data: classical vs this model, clean and through the
    simulated Kinect (same noisy frames for both), all trials and the held-out ones."""
    from inference.eval import events as eval_events
    from inference.models.gait_transformer.runtime import GaitModelTracker, load_gait_model
    from inference.analysis.analyzer import OnlineGaitAnalyzer

    model = load_gait_model(path=onnx_path)
    clean = {
        "classical": lambda s, k: OnlineGaitAnalyzer(s, k, keep_trace=True),
        "gait-transformer": lambda s, k: GaitModelTracker(model, s, k),
    }
    # the same noisy frames as `eval events --noise kinect`
    factories = dict(clean)
    factories.update({f"{name}+kinect": eval_events.with_noise(f, "kinect")
                      for name, f in clean.items()})
    trained = {Path(r).stem for r in REAL_TRAIN}
    out: dict[str, Any] = {}
    for name, factory in factories.items():
        results = []
        for d in EVAL_DIRS:
            for p in eval_events.trial_files(root / d):
                results.append(eval_events.evaluate_trial(p, factory, 100.0, 0.3))
        held = [r for r in results if Path(r.trial).name not in trained]
        out[name] = {"all": eval_events.summarize(results), "held_out": eval_events.summarize(held),
                     "trials": [r.row() for r in results]}
        s = out[name]["all"]
        log.info("eval %-24s FS median %s ms, FO median %s ms, recall %s, precision %s", name,
                 _fmt(s["foot_strike"]["median_abs_ms"]), _fmt(s["foot_off"]["median_abs_ms"]),
                 _fmt(s["recall"], 3), _fmt(s["precision"], 3))
    return out


def write_model_card(path: Path, result: dict[str, Any], evals: dict[str, Any] | None) -> None:
    from inference.models.gait_transformer.features import MODEL_RATE_HZ

    cfg = result["config"]
    v = result["final_val"]
    lines = [
        "# Gait transformer — model card",
        "",
        "Written by `gaitstream train gait-transformer`; numbers are from that run.",
        "",
        "## What it is",
        f"A transformer encoder (after Cotton et al., *Transforming Gait*, 2022): {cfg['n_layer']}"
        f" layers, width {cfg['d_model']}, {cfg['n_head']} heads, {result['n_params']:,} "
        f"parameters ({path.with_suffix('.onnx').stat().st_size / 1024:.0f} kB ONNX). Input: a "
        f"window of {cfg['window']} frames at {MODEL_RATE_HZ:.0f} Hz "
        f"({cfg['window'] / MODEL_RATE_HZ:.1f} s) of canonical joints (pelvis-relative, in a "
        "heading frame, divided by the estimated height) with pelvis velocity and joint "
        "confidences, plus a height token. Output per frame: hip and knee flexion (deg, thigh "
        "from vertical / thigh minus shank, as the classical analysis), forward foot positions "
        "(m), pelvis and foot velocities (m/s), and (cos, sin) of the phase of left/right foot "
        "strike and foot off; events are the phase zero crossings (sub-frame).",
        "",
        "Runtime: `inference/models/gait_transformer/runtime.py` (any input rate: resampled to "
        "the model rate; the live path keeps the central frames of each window and batches "
        "windows across tracks; events come about 1.5-2 s after they happen, half a window plus "
        "the batch).",
        "",
        "## Training data",
        f"- {result['data']['sim_train_walks']} simulated walks (`capture.sim`: every gait "
        "pattern at severity 1-3 and normal, random subjects, scenes towards / away / across "
        "the camera, turns, stops), each seen by the simulated Azure Kinect (a fifth by the "
        "MediaPipe-like webcam model) and clean (30% with the upper body untracked, as lower-"
        "body lab marker sets); random input rates 15-60 Hz with timestamp jitter.",
        f"- {len(REAL_TRAIN)} labelled real trials (clean and Kinect-noised): "
        + ", ".join(f"`{Path(r).stem}`" for r in REAL_TRAIN) + ". Every other labelled trial "
        "of ../shared/data is held out.",
        f"- {result['train_frames']:,} training frames at {MODEL_RATE_HZ:.0f} Hz; "
        f"{result['steps']} steps of batch {result['batch']} in {result['train_s'] / 60:.1f} "
        f"min on {result['device']} (+{result['prep_s'] / 60:.1f} min data preparation).",
        "",
        "## Accuracy",
        f"Held-out simulated walks through the Kinect model ({result['data']['sim_val']} walks,"
        " events at least 0.5 s inside): "
        f"foot strike median {_fmt(v['foot_strike_median_ms'])} ms (p90 "
        f"{_fmt(v['foot_strike_p90_ms'])}), foot off median {_fmt(v['foot_off_median_ms'])} ms "
        f"(p90 {_fmt(v['foot_off_p90_ms'])}), recall {_fmt(v['recall'], 3)}, precision "
        f"{_fmt(v['precision'], 3)}; knee flexion RMSE {_fmt(v['knee_rmse_deg'])} deg, hip "
        f"{_fmt(v['hip_rmse_deg'])} deg.",
        "",
    ]
    if evals:
        lines += [
            "Real gait-lab data (`gaitstream eval events` on c3d_gait_lab_samples, "
            "opensim_walking_trc_grf, opencap_mocap_modified_gait; match within 100 ms, events "
            ">= 0.3 s inside; `+kinect`: the same trials through the simulated Azure Kinect, "
            "identical noisy frames for both methods, `--noise kinect`):",
            "",
            "| method | trials | events | FS median / p90 ms | FO median / p90 ms | recall |"
            " precision | knee RMS deg |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in evals.items():
            for part in ("all", "held_out"):
                s = r[part]
                knee = s["angles"].get("knee_flexion", {}).get("median_rms_deg")
                lines.append(
                    f"| {name} | {part.replace('_', '-')} ({s['trials_evaluated']}) | "
                    f"{s['events']} | {_fmt(s['foot_strike']['median_abs_ms'])} / "
                    f"{_fmt(s['foot_strike']['p90_abs_ms'])} | "
                    f"{_fmt(s['foot_off']['median_abs_ms'])} / "
                    f"{_fmt(s['foot_off']['p90_abs_ms'])} | {_fmt(s['recall'], 3)} | "
                    f"{_fmt(s['precision'], 3)} | {_fmt(knee)} |")
        lines.append("")
    lines += [
        "## Limits",
        "- Trained mostly on synthetic walks: the real labelled set is eleven short trials "
        "(five trained on) of healthy adults (no patient data with events exists here); "
        "accuracy on real pathological gait is not measured.",
        "- The Kinect noise is the simulator's model (depth-dependent jitter, occlusion, drops, "
        "swaps), not recorded Azure Kinect data; none with a compatible licence was found.",
        "- Knee RMS above is after removing a constant offset (lab models place joint centres "
        "differently); absolute angles can be biased by the skeleton's joint placement.",
        "- Height is estimated from segment lengths (biased upwards by sensor noise); positions "
        "and velocities scale with it.",
        "- Latency: an event is reported about half a window (1.5 s) plus up to one kept block "
        "after it happened.",
        "- Standing still and freezing are trained to give no phase (no events); a person "
        "turning on the spot is rarely seen in training.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(args: argparse.Namespace) -> int:
    sim_train, sim_val = sim_walks(args)
    real = [] if args.no_real else real_walks(args.real_data, REAL_TRAIN, kinect_noise,
                                              args.seed)
    val = sim_val or real
    result = train(args, sim_train + real, val)
    export(result, args.export)
    result["data"] = {"sim_train_walks": args.sim_walks if args.sim_data is None
                      else str(args.sim_data), "sim_train": len(sim_train),
                      "sim_val": len(sim_val), "real_train": [w.name for w in real]}
    result["batch"] = args.batch
    result["n_params"] = sum(p.numel() for p in result["model"].parameters())
    evals = None if args.no_eval else real_data_eval(args.export, args.real_data)
    write_model_card(args.export.with_suffix(".md"), result, evals)
    summary = {k: v for k, v in result.items() if k != "model"}
    summary["real_data_eval"] = {k: {p: v[p] for p in ("all", "held_out")}
                                 for k, v in (evals or {}).items()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    if evals:
        (args.out / "real_data_eval.json").write_text(json.dumps(evals, default=float))
    print(json.dumps(summary, default=float))
    return 0


@dataclass
class SimWalk:
    clean: Walk
    points: dict[str, np.ndarray]  # the simulator's named points (world frame)
    heading: np.ndarray  # walking heading (rad) per frame


def simulate(rng: np.random.Generator, name: str) -> SimWalk:
    """A clean simulated walk at a random frame rate with jittered timestamps."""
    person, meta = random_person(rng)
    rate = float(rng.choice([15.0, 25.0, 30.0, 30.0, 30.0, 60.0]))
    t = np.arange(0.0, person.t_stop + rng.uniform(0.3, 1.0), 1.0 / rate)
    t = np.sort(t + rng.uniform(-0.15, 0.15, len(t)) / rate)
    t_us, joints, pts, state = walk_frames(person, t)
    events: dict[tuple[str, str], list[float]] = {}
    for e in person.events():
        events.setdefault((e.side, e.kind), []).append(float(e.t))
    clean = Walk(name, t_us, joints, np.ones(joints.shape[:2]),
                 {k: np.array(v) for k, v in events.items()},
                 standing=(state["a"] <= 0) | state["freezing"],
                 meta={**meta, "rate_hz": rate})
    return SimWalk(clean, pts, state["heading"])


def sensor_walk(sw: SimWalk, kind: str, rng: np.random.Generator) -> Walk | None:
    """The walk as a simulated sensor at the scene's camera reports it (None if never seen)."""
    from capture.sim.paths import forward
    from capture.sim.sensors import Camera

    w = sw.clean
    cam = Camera(position=(0.0, float(rng.uniform(0.7, 1.7)), 0.0),
                 tilt_deg=float(rng.uniform(-15.0, 0.0)))
    view = SensorView(kind, w.meta["height"], int(rng.integers(2**31)),
                      float(rng.uniform(0.6, 1.4)), cam)
    t_out, j_out, c_out = [], [], []
    for i, t in enumerate(w.t_us):
        got = view.observe(t / 1e6, {k: v[i] for k, v in sw.points.items()},
                           forward(sw.heading[i]))
        if got is not None:
            t_out.append(t)
            j_out.append(got[0])
            c_out.append(got[1])
    if len(t_out) < 30:
        return None
    return Walk(f"{w.name}+{kind}", np.array(t_out, np.int64), np.stack(j_out),
                np.stack(c_out), w.events, w.t_us, w.joints, w.conf, w.standing, w.meta)


def variants(sw: SimWalk, rng: np.random.Generator) -> list[Walk]:
    """What the model trains on from one simulated walk: the Kinect-like view (a share of
    walks as a MediaPipe-like webcam instead), and either the clean walk or its lower body only
    (lab marker sets)."""
    out = []
    view = sensor_walk(sw, "mediapipe" if rng.random() < 0.2 else "kinect", rng)
    if view is not None:
        out.append(view)
    w = sw.clean
    if rng.random() < 0.3:
        j, c = drop_upper_body(w.joints, w.conf)
        out.append(Walk(w.name + "+lower", w.t_us, j, c, w.events, w.t_us, w.joints, w.conf,
                        w.standing, w.meta))
    else:
        out.append(w)
    return out


def sim_walks(args: argparse.Namespace) -> tuple[list[Walk], list[Walk]]:
    """Training walks (several views each) and validation walks (Kinect-like views),
    generated in-process from seeds, or read from ``--sim-data``."""
    if getattr(args, "sim_data", None) is not None:
        return dataset_walks(args.sim_data)
    if args.sim_walks == 0:
        return [], []
    rng = np.random.default_rng(args.seed)
    n_val = max(4, args.sim_walks // 10)
    t0 = time.monotonic()
    train_w: list[Walk] = []
    val: list[Walk] = []
    for i in range(args.sim_walks + n_val):
        sw = simulate(rng, f"sim{i:04d}")
        if i < args.sim_walks:
            train_w.extend(variants(sw, rng))
        elif (v := sensor_walk(sw, "kinect", rng)) is not None:
            val.append(v)
        if (i + 1) % 20 == 0:
            log.info("simulated %d/%d walks (%.0f s)", i + 1, args.sim_walks + n_val,
                     time.monotonic() - t0)
    return train_w, val


def dataset_walks(root: Path, val_every: int = 10) -> tuple[list[Walk], list[Walk]]:
    """Training and validation walks from a ``gaitstream simulate`` dataset: per trial the
    frames its sensor reported (``frames/<trial>.npz``: joints, confidence; dropped frames and
    frames without the person left out, as a live source would not send them) with the
    kinematic targets from the exact joints of the same file, the phases from
    ``ground_truth/events.csv`` and standing from its walking / freezing flags. A trial seen
    through a sensor also trains as its exact joints (like the in-process clean view). Every
    ``val_every``-th trial (the last of a smaller set) is kept for validation, its sensor view
    only."""
    import csv

    from inference.data.groundtruth import events_by_trial, load_lab_events

    root = Path(root)
    need = [root / "trials.csv", root / "ground_truth" / "events.csv", root / "frames"]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise SystemExit(f"--sim-data {root}: not a `gaitstream simulate` dataset "
                         f"(missing {', '.join(missing)})")
    with open(root / "trials.csv", newline="", encoding="utf-8") as fh:
        trials = list(csv.DictReader(fh))
    events = events_by_trial(load_lab_events(root / "ground_truth" / "events.csv"))
    held = trials[val_every - 1::val_every] if len(trials) >= val_every else trials[1:][-1:]
    val_names = {r["trial"] for r in held}
    train_w: list[Walk] = []
    val: list[Walk] = []
    for row in trials:
        name = row["trial"]
        with np.load(root / "frames" / f"{name}.npz") as z:
            f = {k: z[k] for k in ("t", "joints", "confidence", "joints_true", "dropped",
                                   "walking", "freezing")}
        t_us = np.round(f["t"] * 1e6).astype(np.int64)
        ev = event_times(events.get(name, []))
        standing = ~f["walking"].astype(bool) | f["freezing"].astype(bool)
        meta = {"pattern": row["pattern"], "severity": int(row["severity"]),
                "scene": row["scene"], "height": float(row["param_height_m"]),
                "rate_hz": float(row["rate_hz"]), "sensor": row["sensor"]}
        clean_conf = np.ones(f["joints_true"].shape[:2])
        seen = ~f["dropped"].astype(bool) & (f["confidence"] > 0).any(axis=1)
        if seen.sum() < 30:
            log.warning("trial %s left out: its sensor reported %d frames", name, seen.sum())
            continue
        conf = np.where(np.isfinite(f["joints"]).all(axis=2), f["confidence"], 0.0)[seen]
        joints = np.nan_to_num(f["joints"][seen])  # lost joints: confidence 0 says so
        view = Walk(f"{name}+{row['sensor']}" if row["sensor"] != "none" else name,
                    t_us[seen], joints, conf, ev, t_us, f["joints_true"], clean_conf, standing,
                    meta)
        if name in val_names:
            val.append(view)
            continue
        train_w.append(view)
        if row["sensor"] != "none":
            train_w.append(Walk(name, t_us, f["joints_true"], clean_conf, ev, standing=standing,
                                meta=meta))
    log.info("%s: %d training walks, %d validation walks from %d trials", root, len(train_w),
             len(val), len(trials))
    return train_w, val


def kinect_noise(t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return view_recording(t_us, joints, conf, "kinect", int(rng.integers(2**31)),
                          float(rng.uniform(0.6, 1.4)))
