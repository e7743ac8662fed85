"""What the motion diffusion model is, without torch: its prompt vocabulary, sizes, noise
schedule and files. The scorer runs from these and the ONNX file alone (the base install has no
torch); the network itself is in ``model.py``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The prompt vocabulary. "walking" = normal walking; "perturbed walking" = walking whose joint
# angles were randomly altered in training (see inference/train/diffusion.py), so that the
# unconditional model covers more than normal gait and the "walking" prompt carries information.
PROMPTS: tuple[str, ...] = ("", "walking", "perturbed walking")
EMPTY, WALKING, PERTURBED = 0, 1, 2

N_STEPS = 1000
INPUT_NAMES = ("x", "t", "prompt")
OUTPUT_NAMES = ("x0",)


@dataclass
class DenoiserConfig:
    n_features: int = 263
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.1
    n_prompts: int = len(PROMPTS)
    max_frames: int = 200  # longest clip (frames at 20 fps) the positional table covers


# --------------------------------------------------------------------------- noise schedule


def cosine_alphas_cumprod(n_steps: int = N_STEPS, s: float = 0.008) -> np.ndarray:
    """alpha-bar_t of the cosine schedule, betas clipped at 0.999 (improved DDPM, as MDM)."""
    f = lambda u: math.cos((u / n_steps + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(n_steps)])
    return np.cumprod(1.0 - betas)


ALPHAS_CUMPROD = cosine_alphas_cumprod()


def q_sample(x0: Any, t: Any, noise: Any) -> Any:
    """Noise clean clips to step t: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise (numpy arrays, or
    torch tensors in training)."""
    if isinstance(x0, np.ndarray):
        ab = ALPHAS_CUMPROD[np.asarray(t, dtype=np.int64)].reshape(-1, *([1] * (x0.ndim - 1)))
        return (np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise).astype(np.float32)
    import torch

    ab = torch.as_tensor(ALPHAS_CUMPROD, dtype=x0.dtype, device=x0.device)[t.long()]
    ab = ab.reshape(-1, *([1] * (x0.dim() - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


# --------------------------------------------------------------------------- files


MODELS_DIR = Path(__file__).resolve().parent  # weights and card beside the code
ONNX_PATH = MODELS_DIR / "motion_diffusion.onnx"
STATS_PATH = MODELS_DIR / "motion_diffusion_stats.npz"
CONFIG_PATH = MODELS_DIR / "motion_diffusion.json"


def save_config(cfg: DenoiserConfig, path: str | Path, **extra) -> None:
    Path(path).write_text(json.dumps({"denoiser": asdict(cfg), "prompts": list(PROMPTS),
                                      "n_steps": N_STEPS, "schedule": "cosine", **extra},
                                     indent=2) + "\n")


def load_config(path: str | Path = CONFIG_PATH) -> tuple[DenoiserConfig, dict]:
    meta = json.loads(Path(path).read_text())
    if tuple(meta["prompts"]) != PROMPTS:
        raise ValueError(f"{path}: prompts {meta['prompts']} differ from this code's {PROMPTS}")
    return DenoiserConfig(**meta["denoiser"]), meta
