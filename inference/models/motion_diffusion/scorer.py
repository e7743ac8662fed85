"""Zero-shot gait deviation of one gait cycle from the motion diffusion model (after Guan et al.,
"Zero-shot gait classification with diffusion models").

A cycle's canonical joints become normalised HumanML3D features x0 (T frames at 20 fps). For each
diffusion step t of a fixed set, x0 is noised to x_t with fixed noise, and the denoiser predicts
x0 twice: under the prompt "walk normal" and under the empty prompt (the unconditional model, a
prior over all the motion the model was trained on). The error of the prompted prediction, divided by the error of the unconditional one, says how much
knowing "this is normal walking" fails to explain the cycle; it is averaged over the steps.

- subject level: squared error over all features;
- feature level: the same ratio over the columns of each canonical joint (``joint.<name>``)
  and of each feature group (``group.positions``, ``group.rotations``, ``group.velocities``,
  ``group.root``, ``group.contacts``), so a clinician sees where the walk deviates.

The method averages over every step in [0, 900); here K steps spread evenly over that range are
used instead (see ``gaitstream eval anomaly`` for the rank correlation of the K-step score with
the 900-step one, which chose :data:`DEFAULT_K`). All 2K predictions run as one batch. The noise
of step t is drawn from a generator seeded with (seed, t), so a step's noise is the same whatever
K is and a cycle always gets the same score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from inference.models.motion_diffusion import features as hml3d
from inference.models.motion_diffusion.config import (CONFIG_PATH, INPUT_NAMES, ONNX_PATH,
                                                      OUTPUT_NAMES, SCORE_PROMPT, STATS_PATH,
                                                      encode_prompts, load_config, q_sample)
from streams.skeletons import CANONICAL_JOINTS

log = logging.getLogger(__name__)

T_MAX = 900  # steps in [0, T_MAX) are averaged, as the method
DEFAULT_K = 48  # smallest K from which the rank correlation with 900 steps stays >= 0.95
# (eval anomaly --k-curve; motion_diffusion.md)
MAX_FRAMES = 200  # longest clip scored: 10 s at 20 fps (a gait cycle is about 1 s)
MIN_CONFIDENCE = 0.5  # joints below this mean confidence over the cycle are left out

Denoise = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (x_t, t, prompt) -> x0


def timesteps(k: int, t_max: int = T_MAX) -> np.ndarray:
    """K steps spread evenly over [0, t_max): the middle of K equal strata (K = t_max: all)."""
    if not 1 <= k <= t_max:
        raise ValueError(f"K must be in [1, {t_max}], got {k}")
    return np.floor((np.arange(k) + 0.5) * t_max / k).astype(np.int64)


def step_noise(steps: np.ndarray, frames: int, seed: int = 0) -> np.ndarray:
    """(K, frames, 263) float32 noise; step t's noise depends only on (seed, t)."""
    return np.stack([np.random.default_rng([seed, int(t)]).standard_normal(
        (frames, hml3d.FEATURE_DIM), dtype=np.float32) for t in steps])


def column_errors(denoise: Denoise, x0: np.ndarray, steps: np.ndarray, noise: np.ndarray,
                  prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared x0 errors per step and feature column, averaged over frames: (prompt, empty),
    each (K, 263). ``prompt``: the prompt's word weights (V,). One batch of 2K clips: K steps
    under ``prompt`` then under the empty prompt (zero weights)."""
    x0 = np.asarray(x0, dtype=np.float32)
    noise = noise[:, : len(x0)]
    xt = q_sample(np.broadcast_to(x0, noise.shape), steps, noise)
    k = len(steps)
    words = np.zeros((2 * k, len(prompt)), np.float32)
    words[:k] = prompt
    pred = denoise(np.concatenate([xt, xt]), np.concatenate([steps, steps]).astype(np.float32),
                   words)
    err = ((pred - x0) ** 2).mean(axis=1)
    return err[:k], err[k:]


# Feature-level keys: canonical joints, then groups.
LEVELS: dict[str, np.ndarray] = {
    **{f"joint.{name}": cols for name, cols in hml3d.JOINT_COLUMNS.items()},
    **{f"group.{g}": np.arange(hml3d.FEATURE_DIM)[sl] for g, sl in hml3d.GROUPS.items()},
}


def ratio_scores(err_prompt: np.ndarray, err_empty: np.ndarray,
                 columns: np.ndarray | None = None) -> dict[str, float]:
    """The GaitCycle.anomaly dict from per-step, per-column errors (K, 263).

    ``columns``: boolean (263,) of the columns that count (joints tracked well enough); levels
    with no counted column are left out rather than reported as a number that means nothing.
    """
    use = np.ones(hml3d.FEATURE_DIM, bool) if columns is None else np.asarray(columns, bool)
    eps = 1e-12

    def ratio(cols: np.ndarray) -> float | None:
        cols = cols[use[cols]]
        if len(cols) == 0:
            return None
        return float(np.mean(err_prompt[:, cols].mean(1) / (err_empty[:, cols].mean(1) + eps)))

    out: dict[str, float] = {"subject": ratio(np.arange(hml3d.FEATURE_DIM))}
    out["prompt_error"] = float(err_prompt[:, use].mean())
    out["empty_error"] = float(err_empty[:, use].mean())
    for key, cols in LEVELS.items():
        r = ratio(cols)
        if r is not None:
            out[key] = r
    return out


def columns_from_confidence(confidence: np.ndarray) -> np.ndarray:
    """Columns (263,) of the joints whose mean confidence over the clip reaches MIN_CONFIDENCE
    (root motion always counts)."""
    use = np.ones(hml3d.FEATURE_DIM, bool)
    low = np.asarray(confidence).mean(axis=0) < MIN_CONFIDENCE
    for j in np.flatnonzero(low):
        if j != 0:
            use[hml3d.JOINT_COLUMNS[CANONICAL_JOINTS[j]]] = False
    return use


@dataclass
class AnomalyScorer:
    """Scores one cycle (canonical joints + timestamps) with a denoiser and the training stats."""

    denoise: Denoise
    normalizer: hml3d.Normalizer
    prompt: np.ndarray  # word weights (V,) of the scoring prompt
    k: int = DEFAULT_K
    seed: int = 0
    backend_name: str = ""

    def __post_init__(self) -> None:
        self.steps = timesteps(self.k)
        self.noise = step_noise(self.steps, MAX_FRAMES, self.seed)

    def clip(self, t_us: np.ndarray, joints: np.ndarray,
             confidence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Normalised features (T, 263) and the columns that count, from a cycle's joints."""
        t_new, j = hml3d.resample(t_us, joints)
        if len(j) < 3:
            raise hml3d.FeatureError(f"cycle of {len(j)} frames at {hml3d.FPS:g} fps: too short")
        if len(j) - 1 > MAX_FRAMES:
            raise hml3d.FeatureError(f"cycle of {(t_us[-1] - t_us[0]) / 1e6:.1f} s: longer than "
                                 f"{MAX_FRAMES / hml3d.FPS:.0f} s is not one gait cycle")
        x0 = self.normalizer.normalize(hml3d.motion_features(j).data)
        cols = None
        if confidence is not None:
            conf = np.stack([np.interp(t_new, t_us, c) for c in np.asarray(confidence).T], 1)
            cols = columns_from_confidence(conf[:-1])
        return x0, cols

    def score(self, t_us: np.ndarray, joints: np.ndarray,
              confidence: np.ndarray | None = None) -> dict[str, float]:
        """The GaitCycle.anomaly dict of one cycle: ``subject`` and the feature levels."""
        x0, cols = self.clip(t_us, joints, confidence)
        ep, ee = column_errors(self.denoise, x0, self.steps, self.noise, self.prompt)
        return ratio_scores(ep, ee, cols)


def backend_denoiser(backend) -> Denoise:
    def run(x: np.ndarray, t: np.ndarray, prompt: np.ndarray) -> np.ndarray:
        return backend.run({"x": x, "t": t, "prompt": prompt})["x0"]
    return run


def load_scorer(backend: str = "onnxruntime", *, k: int = DEFAULT_K, seed: int = 0,
                device: str = "cpu", threads: int | None = 1,
                model_dir: str | Path | None = None) -> AnomalyScorer:
    """The shipped scorer (inference/models) on one backend: onnxruntime | torch | tensorrt.

    One intra-op thread by default: the worker scores one cycle at a time next to other tracks,
    and a small batch gains little from more threads."""
    from inference.models.backends import make_backend

    def torch_module():  # only the torch backend needs torch
        from inference.models.motion_diffusion.model import module_from_onnx

        return module_from_onnx(onnx_path, config_path)

    d = Path(model_dir) if model_dir is not None else None
    onnx_path = d / ONNX_PATH.name if d else ONNX_PATH
    config_path = d / CONFIG_PATH.name if d else CONFIG_PATH
    stats_path = d / STATS_PATH.name if d else STATS_PATH
    for p in (onnx_path, config_path, stats_path):
        if not p.is_file():
            raise FileNotFoundError(f"diffusion scorer file missing: {p} (gaitstream train "
                                    "diffusion writes it)")
    _, meta = load_config(config_path)  # fails early on a vocabulary mismatch
    prompt = encode_prompts([meta.get("score_prompt", SCORE_PROMPT)], meta["vocabulary"])[0]
    v = len(prompt)
    b = make_backend(backend, onnx_path=onnx_path,
                     torch_module=torch_module,
                     input_names=INPUT_NAMES, output_names=OUTPUT_NAMES, device=device,
                     threads=threads,
                     trt_profile={"x": ((2, 3, 263), (2 * k, 24, 263), (2 * k, MAX_FRAMES, 263)),
                                  "t": ((2,), (2 * k,), (2 * k,)),
                                  "prompt": ((2, v), (2 * k, v), (2 * k, v))})
    if backend == "torch" and threads is not None:
        import torch
        torch.set_num_threads(threads)
    log.info("diffusion scorer: %s, K=%d", b.name, k)
    return AnomalyScorer(backend_denoiser(b), hml3d.Normalizer.load(stats_path), prompt, k=k,
                         seed=seed,
                         backend_name=b.name)
