"""What the motion diffusion model is, without torch: how prompts are encoded, sizes, noise
schedule and files. The scorer runs from these and the ONNX file alone (the base install has no
torch); the network itself is in ``model.py``."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Prompts are label words. No pretrained text encoder can be downloaded here, so a prompt is the
# mean of learned embeddings of its words (a bag of words): "walk normal" -> the mean of the
# embeddings of "walk" and "normal". The vocabulary is what the training labels held; it is saved
# with the model (``vocabulary`` in the JSON) and the scorer encodes prompts with that list. The
# empty prompt is the zero vector: training replaces a window's prompt by it with a fixed
# probability (classifier-free dropout), so the empty prompt is the prior over all training motion.
SCORE_PROMPT = "walk normal"  # the prompt the scorer asks: normal walking


class PromptError(ValueError):
    """A prompt has a word the model's vocabulary does not know."""


def prompt_words(text: str) -> list[str]:
    """Lower-case words of a label: letters and digits; '-', '_', ',' and spaces separate."""
    return re.findall(r"[a-z0-9]+", text.lower())


def encode_prompts(texts: list[str] | tuple[str, ...], vocabulary: list[str] | tuple[str, ...]
                   ) -> np.ndarray:
    """(len(texts), len(vocabulary)) float32 word weights, each row the mean one-hot of its
    words (a repeated word counts more); the empty prompt is a row of zeros."""
    index = {w: i for i, w in enumerate(vocabulary)}
    out = np.zeros((len(texts), len(vocabulary)), np.float32)
    for row, text in enumerate(texts):
        words = prompt_words(text)
        unknown = [w for w in words if w not in index]
        if unknown:
            raise PromptError(f"prompt {text!r}: the model's vocabulary has no "
                              f"{', '.join(map(repr, unknown))}")
        for w in words:
            out[row, index[w]] += 1.0 / len(words)
    return out


def build_vocabulary(texts) -> list[str]:
    """The sorted words of all training prompts."""
    return sorted({w for t in texts for w in prompt_words(t)})


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
    n_words: int = 2  # vocabulary size (the JSON's vocabulary)
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


def save_config(cfg: DenoiserConfig, path: str | Path, vocabulary: list[str], **extra) -> None:
    if cfg.n_words != len(vocabulary):
        raise ValueError(f"{cfg.n_words} word embeddings for a vocabulary of {len(vocabulary)}")
    Path(path).write_text(json.dumps({"denoiser": asdict(cfg), "vocabulary": list(vocabulary),
                                      "score_prompt": SCORE_PROMPT, "n_steps": N_STEPS,
                                      "schedule": "cosine", **extra}, indent=2) + "\n")


def load_config(path: str | Path = CONFIG_PATH) -> tuple[DenoiserConfig, dict]:
    meta = json.loads(Path(path).read_text())
    if "vocabulary" not in meta:
        raise ValueError(f"{path}: no prompt vocabulary (a model of an older format: retrain "
                         "with gaitstream train diffusion)")
    cfg = DenoiserConfig(**meta["denoiser"])
    if cfg.n_words != len(meta["vocabulary"]):
        raise ValueError(f"{path}: {cfg.n_words} word embeddings for a vocabulary of "
                         f"{len(meta['vocabulary'])} words")
    encode_prompts([meta.get("score_prompt", SCORE_PROMPT)], meta["vocabulary"])
    return cfg, meta
