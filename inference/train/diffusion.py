"""Train the motion diffusion model of the anomaly scorer: a text-conditioned prior over all the
human motion it is given.

Data (resampled to 20 fps; see inference/data/diffusion.py for the split rule):

- motion corpora (``--corpus DIR``, repeatable; by default every folder of ``--data`` with a
  corpus index, i.e. the Bandai Namco and CMU corpora of ../shared/data), each clip under the
  words of its labels (action + style, or the free-text description);
- the project's normal walks (gait-lab trials, the Kinect v1 normal walkers the split rule keeps
  for training) and the synthetic walker's normal gait, under "walk normal";
- the synthetic walker's altered gaits of :data:`BROAD_PATTERNS` only, under "walk <pattern>";
  the other patterns (crouch, trunk sway, hemiparetic, ...) are never trained on, so that
  ``gaitstream eval anomaly`` reports patterns the model has never seen apart;
- a share of the normal-walk windows with randomly perturbed joint angles, under
  "walk perturbed".

Every batch is B windows of one random length (12-40 feature frames), drawn from the groups with
fixed weights, turned into HumanML3D features on the fly and normalised with statistics fitted on
windows drawn the same way. A prompt is the mean of learned embeddings of its words
(``config.encode_prompts``); every prompt is replaced by the empty one with probability
``--uncond`` (classifier-free dropout), so the empty prompt is the prior over everything above
and the scorer's ratio ("walk normal" error / empty-prompt error) asks how much better knowing
"normal walking" explains a cycle than knowing only "human motion".

Loss: mean squared error of the predicted clean features (x0, as MDM), leaving out the columns of
joints the recording did not track (lower-body marker sets). Adam, warm-up then cosine decay,
gradient clipping, exponential moving average of the weights (the EMA weights are exported).

Writes the ONNX model, the normalisation statistics and a JSON description (vocabulary, what the
model saw) into inference/models (``--models-dir``), and checkpoints, a training log and plots
into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from inference.models.motion_diffusion import features as hml3d
from inference.models.motion_diffusion.scorer import columns_from_confidence
from inference.data.diffusion import (DEFAULT_DATA_DIR, EVAL_SEED0, NORMAL_PROMPT, Walk,
                                      corpus_walks, is_corpus, real_training_walks, sim_walks)

log = logging.getLogger(__name__)

# Altered gaits of the simulator the model sees, under their names; crouch and trunk sway stay out
# because the real checks (the crouch curve, the opencap trunk-sway walks) test them.
BROAD_PATTERNS = ("shuffling", "stiff_knee", "antalgic", "festination", "ataxic")
BROAD_SEED0 = 50_000  # training seeds of the broad walkers (normal ones start at 0)

PAIRS = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21}
PAIRS.update({b: a for a, b in PAIRS.items()})


@dataclass
class TrainConfig:
    minutes: float = 30.0  # wall-clock budget (training stops at whichever comes first)
    max_steps: int = 20000
    batch: int = 64
    min_frames: int = 12
    max_frames: int = 40
    lr: float = 4e-4
    warmup: int = 300
    weight_decay: float = 0.0
    uncond: float = 0.15  # classifier-free dropout: probability of the empty prompt
    perturbed: float = 0.2  # share of normal-walk windows with perturbed joint angles
    ema: float = 0.998
    seed: int = 0
    corpus_share: float = 0.45  # share of windows from the motion corpora
    sim_share: float = 0.25  # share of windows from the simulator's normal walkers
    sim_walks: int = 60
    broad_share: float = 0.1  # share of windows of the simulator's BROAD_PATTERNS
    broad_walks: int = 4  # walkers per broad pattern and severity
    threads: int = 2
    d_model: int = 128
    n_layers: int = 4


# --------------------------------------------------------------------------- perturbations


def _rotvec_matrix(rotvec: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(rotvec.shape[:-1]
                                                                         + (3, 3))


def _random_axis(rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=3)
    return a / np.linalg.norm(a)


def perturb_clip(local: np.ndarray, t_s: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Randomly perturbed bone rotations (T, 22, 3, 3) of one clip, and a lateral pelvis offset
    (T,) in metres. One to three perturbations, each on a random bone (and, half of the time,
    the same on its left/right partner)."""
    local = local.copy()
    sway = np.zeros(len(t_s))
    for _ in range(rng.integers(1, 4)):
        kind = rng.choice(["offset", "range", "oscillation", "sway"], p=[0.35, 0.3, 0.25, 0.1])
        if kind == "sway":
            amp, f = rng.uniform(0.02, 0.08), rng.uniform(0.4, 1.2)
            sway += amp * np.sin(2 * np.pi * f * t_s + rng.uniform(0, 2 * np.pi))
            continue
        bone = int(rng.integers(1, hml3d.N_JOINTS))
        bones = [bone, PAIRS[bone]] if bone in PAIRS and rng.random() < 0.5 else [bone]
        if kind == "offset":  # a different posture: the bone held at another angle
            r = _rotvec_matrix(_random_axis(rng) * np.radians(rng.uniform(10, 35)))
            for b in bones:
                local[:, b] = local[:, b] @ r
        elif kind == "range":  # more or less motion of the bone around its mean
            s = rng.uniform(0.1, 0.5) if rng.random() < 0.6 else rng.uniform(1.6, 2.5)
            for b in bones:
                rot = Rotation.from_matrix(local[:, b])
                mean = rot.mean()
                dev = (mean.inv() * rot).as_rotvec()
                local[:, b] = (mean * Rotation.from_rotvec(s * dev)).as_matrix()
        else:  # an extra oscillation of the bone
            amp, f = np.radians(rng.uniform(6, 18)), rng.uniform(0.4, 3.0)
            ang = amp * np.sin(2 * np.pi * f * t_s + rng.uniform(0, 2 * np.pi))
            r = _rotvec_matrix(_random_axis(rng)[None] * ang[:, None])
            for b in bones:
                local[:, b] = local[:, b] @ r
    return local, sway


def perturb(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clips (B, T, 22, 3) at 20 fps with randomly perturbed joint angles (bone lengths, heading
    and pelvis path kept, except for an occasional lateral sway)."""
    heading = hml3d.facing_angle(joints)
    root = joints[..., 0, :]
    body = hml3d.rotate_y(joints - root[..., None, :], -heading[..., None])
    lengths = np.median(np.linalg.norm(hml3d.bone_vectors(body), axis=-1), axis=1)  # (B, 22)
    local = hml3d.local_rotations(body)
    t_s = np.arange(joints.shape[1]) / hml3d.FPS
    sway = np.zeros(joints.shape[:2])
    for b in range(len(joints)):
        local[b], sway[b] = perturb_clip(local[b], t_s, rng)
    new = hml3d.forward_kinematics(local, lengths[:, None, :])
    new[..., 0] += sway[..., None]  # +x of the body frame is the body's left
    return hml3d.rotate_y(new, heading[..., None]) + root[..., None, :]


# --------------------------------------------------------------------------- sampling


class WindowSampler:
    """Random windows of equal length from walks, each group drawn with its weight and each
    walk within a group in proportion to its length."""

    def __init__(self, walks: list[Walk], group_weights: dict[str, float],
                 rng: np.random.Generator):
        self.rng = rng
        self.groups = {g: [w for w in walks if w.group == g] for g in group_weights}
        self.groups = {g: ws for g, ws in self.groups.items() if ws}
        total = sum(group_weights[g] for g in self.groups)
        self.weights = {g: group_weights[g] / total for g in self.groups}

    def sample(self, n: int, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   list[str]]:
        """(joints (n, frames, 22, 3), confidence (n, frames, 22), each window's group (n,),
        each window's prompt)."""
        names = list(self.weights)
        gs = self.rng.choice(len(names), size=n, p=[self.weights[g] for g in names])
        js, cs, groups, prompts = [], [], [], []
        for gi in gs:
            walks = [w for w in self.groups[names[gi]] if w.n_frames >= frames]
            if not walks:  # this group has nothing that long: any group that has
                walks = [w for ws in self.groups.values() for w in ws if w.n_frames >= frames]
            p = np.array([w.n_frames - frames + 1 for w in walks], float)
            w = walks[self.rng.choice(len(walks), p=p / p.sum())]
            s = int(self.rng.integers(0, w.n_frames - frames + 1))
            js.append(w.joints[s:s + frames])
            cs.append(w.confidence[s:s + frames])
            groups.append(w.group)
            prompts.append(w.prompt)
        return np.stack(js).astype(np.float64), np.stack(cs), np.array(groups), prompts

    def longest(self) -> int:
        return max(w.n_frames for ws in self.groups.values() for w in ws)


PERTURBED_PROMPT = "walk perturbed"


def make_batch(sampler: WindowSampler, n: int, frames: int, cfg: TrainConfig,
               norm: hml3d.Normalizer | None, rng: np.random.Generator,
               vocabulary: list[str]):
    """Normalised features (n, frames-1, 263), prompt word weights (n, V), column masks
    (n, 263). Windows of normal walking may be perturbed (then "walk perturbed"); then every
    prompt is dropped to the empty one with probability ``cfg.uncond``."""
    from inference.models.motion_diffusion.config import encode_prompts

    joints, conf, groups, prompts = sampler.sample(n, frames)
    prompts = np.array(prompts, dtype=object)
    pert = (rng.random(n) < cfg.perturbed) & (prompts == NORMAL_PROMPT)
    if pert.any():
        joints[pert] = perturb(joints[pert], rng)
        prompts[pert] = PERTURBED_PROMPT
    prompts[rng.random(n) < cfg.uncond] = ""
    data = hml3d.motion_features(joints).data
    x0 = norm.normalize(data) if norm is not None else data.astype(np.float32)
    cols = np.stack([columns_from_confidence(c[:-1]) for c in conf])
    return x0, encode_prompts(list(prompts), vocabulary), cols


def broad_walks(cfg: TrainConfig) -> list[Walk]:
    """``cfg.broad_walks`` walkers per broad pattern and severity 1-3 (prompt "walk <pattern>"),
    on training seeds of their own (below EVAL_SEED0), grouped as "broad"."""
    walks = []
    seed = BROAD_SEED0 + cfg.seed * 1000
    for pattern in BROAD_PATTERNS:
        for severity in (1, 2, 3):
            for w in sim_walks(cfg.broad_walks, seed, pattern, severity):
                w.group = "broad"
                walks.append(w)
            seed += cfg.broad_walks
    if seed > EVAL_SEED0:
        raise ValueError(f"simulator seeds from {EVAL_SEED0} are kept for evaluation")
    return walks


# --------------------------------------------------------------------------- training


def train(cfg: TrainConfig, out: Path, models_dir: Path, data_dir: Path,
          use_sim: bool = True, corpora: list[Path] | None = None) -> dict:
    """``corpora``: motion corpus folders (None: every corpus folder of ``data_dir``)."""
    import torch

    from inference.models.motion_diffusion.config import (CONFIG_PATH, ONNX_PATH, SCORE_PROMPT,
                                                          STATS_PATH, DenoiserConfig,
                                                          build_vocabulary, q_sample,
                                                          save_config)
    from inference.models.motion_diffusion.model import MotionDenoiser, export_onnx

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    models_dir.mkdir(parents=True, exist_ok=True)

    t_start = time.monotonic()
    if corpora is None:
        corpora = [p for p in sorted(Path(data_dir).iterdir()) if p.is_dir() and is_corpus(p)]
    walks: list[Walk] = []
    for c in corpora:
        walks += corpus_walks(c)
    walks += real_training_walks(data_dir) if Path(data_dir).is_dir() else []
    weights = {"lab": 0.35, "kinect": 0.5, "opencap": 0.15}
    weights = {g: w * (1 - cfg.corpus_share) for g, w in weights.items()}
    if any(w.group == "corpus" for w in walks):
        weights["corpus"] = cfg.corpus_share
    if use_sim:
        try:
            first = cfg.seed * cfg.sim_walks
            if first + cfg.sim_walks > EVAL_SEED0:
                raise ValueError(f"simulator seeds from {EVAL_SEED0} are kept for evaluation")
            sim = sim_walks(cfg.sim_walks, first_seed=first)
        except ImportError as e:
            log.warning("synthetic walker not available (%s): training on real walks only", e)
            sim = []
        walks += sim
        if sim:
            weights = {g: w * (1 - cfg.sim_share) for g, w in weights.items()}
            weights["sim"] = cfg.sim_share
        if sim and cfg.broad_share > 0:
            broad = broad_walks(cfg)
            walks += broad
            weights = {g: w * (1 - cfg.broad_share) for g, w in weights.items()}
            weights["broad"] = cfg.broad_share
    if not walks:
        raise ValueError(f"no training motion: no corpus in {corpora or data_dir} and no walks")
    summary_data = {g: {"walks": sum(w.group == g for w in walks),
                        "minutes": round(sum(w.n_frames for w in walks if w.group == g)
                                         / hml3d.FPS / 60, 2)} for g in weights}
    summary_data = {g: v for g, v in summary_data.items() if v["walks"]}
    log.info("training data: %s", summary_data)
    vocabulary = build_vocabulary([w.prompt for w in walks] + [PERTURBED_PROMPT, SCORE_PROMPT])
    log.info("prompt vocabulary: %d words", len(vocabulary))
    sampler = WindowSampler(walks, weights, rng)
    max_frames = min(cfg.max_frames, sampler.longest() - 1)

    # normalisation statistics from windows drawn as in training, so that no kind of motion
    # has features tens of standard deviations out
    stat_batches = [sampler.sample(64, int(rng.integers(cfg.min_frames, max_frames + 1)) + 1)[0]
                    for _ in range(40)]
    norm = hml3d.Normalizer.fit(np.concatenate(
        [hml3d.motion_features(j).data.reshape(-1, hml3d.FEATURE_DIM) for j in stat_batches]))
    norm.save(out / STATS_PATH.name)

    # fixed validation batches: normal and perturbed windows at fixed steps and noise
    vrng = np.random.default_rng(cfg.seed + 1)
    val_cfg = copy.copy(cfg)
    val_cfg.uncond = 0.0
    val = [make_batch(sampler, 64, 25, val_cfg, norm, vrng, vocabulary) for _ in range(2)]
    val_t = [vrng.integers(0, 1000, 64) for _ in val]
    val_noise = [vrng.standard_normal(v[0].shape).astype(np.float32) for v in val]

    mcfg = DenoiserConfig(d_model=cfg.d_model, n_layers=cfg.n_layers, d_ff=2 * cfg.d_model,
                          n_words=len(vocabulary))
    model = MotionDenoiser(mcfg)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("denoiser: %d parameters, %s", n_params, asdict(mcfg))

    def lr_at(step: int, frac: float) -> float:
        """Warm-up, then cosine decay to a tenth over the budget; the budget is time as much
        as steps (the CPU is shared, so steps/s is not known in advance)."""
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def masked_mse(pred, target, cols) -> "torch.Tensor":
        w = cols[:, None, :].expand_as(target)
        return ((pred - target) ** 2 * w).sum() / w.sum()

    def validate() -> dict[str, float]:
        res = {}
        with torch.no_grad():
            for name, (x0, prompt, cols), t, noise in zip(("val", "val2"), val, val_t, val_noise):
                x0t = torch.from_numpy(x0)
                tt = torch.from_numpy(t)
                xt = q_sample(x0t, tt, torch.from_numpy(noise))
                pred = ema(xt, tt.float(), torch.from_numpy(prompt))
                res[name] = float(masked_mse(pred, x0t, torch.from_numpy(cols).float()))
        return res

    budget_s = cfg.minutes * 60 - (time.monotonic() - t_start) - 45  # keep time for export
    t_train = time.monotonic()
    history: list[dict] = []
    step, loss_avg = 0, None
    log.info("training for at most %d steps or %.1f min", cfg.max_steps, budget_s / 60)
    while step < cfg.max_steps and time.monotonic() - t_train < budget_s:
        frames = int(rng.integers(cfg.min_frames, max_frames + 1)) + 1
        x0, prompt, cols = make_batch(sampler, cfg.batch, frames, cfg, norm, rng, vocabulary)
        x0 = torch.from_numpy(x0)
        t = torch.randint(0, 1000, (cfg.batch,))
        xt = q_sample(x0, t, torch.randn_like(x0))
        frac = max(step / cfg.max_steps, (time.monotonic() - t_train) / budget_s)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, frac)
        model.train()
        loss = masked_mse(model(xt, t.float(), torch.from_numpy(prompt)), x0,
                          torch.from_numpy(cols).float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(cfg.ema).add_(pm.detach(), alpha=1 - cfg.ema)
        step += 1
        loss_v = float(loss.detach())
        loss_avg = loss_v if loss_avg is None else 0.98 * loss_avg + 0.02 * loss_v
        if step % 250 == 0 or step == 1:
            v = validate() if step % 500 == 0 else {}
            el = time.monotonic() - t_train
            history.append({"step": step, "loss": loss_avg, "elapsed_s": el, **v})
            log.info("step %d  loss %.4f%s  lr %.2e  %.1f steps/s  %.1f of %.1f min", step,
                     loss_avg, f"  val {v['val']:.4f}/{v['val2']:.4f}" if v else "",
                     opt.param_groups[0]["lr"], step / el, el / 60, budget_s / 60)
        if step % 2000 == 0:
            torch.save({"config": asdict(mcfg), "state_dict": ema.state_dict(), "step": step},
                       out / "checkpoint.pt")
    train_s = time.monotonic() - t_train
    final = validate()
    history.append({"step": step, "loss": loss_avg, "elapsed_s": train_s, **final})
    torch.save({"config": asdict(mcfg), "state_dict": ema.state_dict(), "step": step},
               out / "checkpoint.pt")

    onnx_tmp = out / ONNX_PATH.name
    export_onnx(ema, onnx_tmp)
    summary = {
        "steps": step, "train_minutes": round(train_s / 60, 2),
        "total_minutes": round((time.monotonic() - t_start) / 60, 2),
        "final_loss_ema_avg": loss_avg, "final_val": final, "parameters": n_params,
        "data": summary_data, "corpora": [str(c) for c in corpora],
        "train_config": asdict(cfg),
        "broad_patterns": list(BROAD_PATTERNS) if "broad" in summary_data else [],
        "torch_threads": cfg.threads, "cpu_count": os.cpu_count(),
    }
    save_config(mcfg, out / CONFIG_PATH.name, vocabulary, training=summary)
    for p in (onnx_tmp, out / STATS_PATH.name, out / CONFIG_PATH.name):
        os.replace(p, models_dir / p.name)
    (out / "history.json").write_text(json.dumps(history, indent=1))
    plot_history(history, out / "training.png")
    log.info("trained %d steps in %.1f min; model in %s, plots in %s", step, train_s / 60,
             models_dir, out)
    return summary


def plot_history(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], label="train (smoothed)")
    v = [h for h in history if "val" in h]
    ax.plot([h["step"] for h in v], [h["val"] for h in v], "o-", label="validation (EMA weights)")
    ax.plot([h["step"] for h in v], [h["val2"] for h in v], "s-", label="validation 2")
    ax.set_xlabel("step")
    ax.set_ylabel("x0 MSE (normalised features)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("motion diffusion training")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from inference.models.motion_diffusion.config import MODELS_DIR

    d = TrainConfig()
    p.add_argument("--out", type=Path, default=Path("out/train_diffusion"),
                   help="checkpoints, training log and plots")
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR,
                   help="where the ONNX model, statistics and description go")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="../shared/data: the "
                   "project's normal walks (and its corpora when no --corpus is given)")
    p.add_argument("--corpus", type=Path, action="append", default=None, metavar="DIR",
                   help="a motion corpus folder (an index CSV with a 'file' column and label "
                        "columns: action, style, description or label); repeat for more. "
                        "Default: every such folder of --data")
    p.add_argument("--minutes", type=float, default=d.minutes, help="wall-clock budget")
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-sim", action="store_true", help="real walks only")
    p.add_argument("--broad-share", type=float, default=d.broad_share,
                   help="share of windows of the simulator's BROAD_PATTERNS under the empty "
                        "prompt (the unconditional model's other motion)")
    p.add_argument("--perturbed", type=float, default=d.perturbed,
                   help="share of normal windows with perturbed joint angles")


def main(args: argparse.Namespace) -> int:
    cfg = TrainConfig(minutes=args.minutes, max_steps=args.max_steps, batch=args.batch,
                      threads=args.threads, seed=args.seed, broad_share=args.broad_share,
                      perturbed=args.perturbed)
    for c in args.corpus or []:
        if not c.is_dir() or not is_corpus(c):
            print(f"train diffusion: --corpus {c}: not a folder with an index CSV that has a "
                  "'file' column and one of action, style, description, label")
            return 2
    summary = train(cfg, args.out, args.models_dir, args.data, use_sim=not args.no_sim,
                    corpora=args.corpus)
    print(json.dumps(summary, indent=1))
    return 0
