"""A motion diffusion model over HumanML3D features (after MDM, Tevet et al., ICLR 2023).

The denoiser is a transformer encoder that reads a noised clip x_t (frames x 263 normalised
features), the diffusion step t and a prompt, and predicts the clean clip x0 (as MDM, not the
noise). Step and prompt are embedded and summed; the sum is put in front of the frames as one
extra token (as MDM) and added to every frame.
Inside, x0 = sqrt(abar_t) x_t + sqrt(1 - abar_t) F(x_t, t, prompt) (the v-parameterisation), so
that low-noise steps do not have to be learnt as an identity map; the output is still x0 and the
training loss is still the x0 error. The noise schedule is MDM's: 1000 steps, cosine (Nichol &
Dhariwal 2021).

Prompts. MDM encodes free text with CLIP; no pretrained text encoder can be downloaded here, so a
prompt is a bag of label words (:func:`config.encode_prompts`: each word's weight, the mean of
one-hot vectors over the vocabulary saved with the model) and its embedding is that weighted sum
of learned word embeddings (one linear map without bias). The empty prompt is all zeros, so its
embedding is zero: training replaces every prompt by it with a fixed probability
(classifier-free dropout), so the empty prompt is the unconditional model of all the training
motion.

ONNX graph ``motion_diffusion.onnx``: inputs ``x`` (B, T, 263) float32, ``t`` (B,) float32
diffusion step, ``prompt`` (B, V) float32 word weights over the
vocabulary of V words; output ``x0`` (B, T, 263). B and T are dynamic.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn

from inference.models.onnx_io import finish_export, load_weights
from inference.models.motion_diffusion.config import (ALPHAS_CUMPROD, CONFIG_PATH, INPUT_NAMES,
                                                      ONNX_PATH, OUTPUT_NAMES, DenoiserConfig,
                                                      load_config)

def sinusoid(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal embedding of positions (..., ) -> (..., dim)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    ang = pos.float()[..., None] * freq
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward, written out so that it exports to plain ONNX ops."""

    def __init__(self, d: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(d // heads)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(d_ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        qkv = self.qkv(self.norm1(h)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) * self.scale, dim=-1)
        h = h + self.drop(self.proj((att @ qkv[2]).transpose(1, 2).reshape(b, n, d)))
        return h + self.drop(self.ff(self.norm2(h)))


class MotionDenoiser(nn.Module):
    """x_t (B, T, F), step t (B,), prompt word weights (B, V) -> predicted clean clip x0 (B, T, F)."""

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.input = nn.Linear(cfg.n_features, d)
        self.step_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.prompt = nn.Linear(cfg.n_words, d, bias=False)  # word embeddings
        self.register_buffer("positions", sinusoid(torch.arange(cfg.max_frames + 1), d),
                             persistent=False)
        self.register_buffer("alphas_cumprod",
                             torch.tensor(ALPHAS_CUMPROD, dtype=torch.float32), persistent=False)
        self.layers = nn.ModuleList(EncoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout)
                                    for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.output = nn.Linear(d, cfg.n_features)

    def forward(self, x: torch.Tensor, t: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        cond = self.step_mlp(sinusoid(t, self.cfg.d_model)) + self.prompt(prompt)
        # the condition is its own token (as MDM) and is also added to every frame, so that each
        # frame sees the step and the prompt without having to attend to them first
        h = torch.cat([cond[:, None, :], self.input(x) + cond[:, None, :]], dim=1)
        h = h + self.positions[: h.shape[1]]
        for layer in self.layers:
            h = layer(h)
        # x0 = sqrt(abar) x_t + sqrt(1 - abar) F: for unit-variance features sqrt(abar) x_t is
        # already the best linear guess of x0, so the network only learns what it misses (the
        # v-parameterisation; at low noise x0 is x_t, which a plain x0 head learns slowly).
        ab = self.alphas_cumprod[t.long()][:, None, None]
        return ab.sqrt() * x + (1 - ab).sqrt() * self.output(self.norm(h[:, 1:]))


def export_onnx(model: MotionDenoiser, path: str | Path, frames: int = 24) -> None:
    """Write the denoiser as ONNX with dynamic batch and frame axes.

    Every weight keeps its state-dict name (no constant folding, no merging of equal tensors),
    so that the torch backend is rebuilt from the same file: one source of weights."""

    model = model.eval()
    x = torch.zeros(2, frames, model.cfg.n_features)
    t = torch.tensor([10.0, 500.0])
    p = torch.zeros(2, model.cfg.n_words)
    p[0, 0] = 1.0
    # keep_initializers_as_inputs is what turns off the exporter's merging of equal weights;
    # the weights are then taken out of the graph inputs again below. The TorchScript exporter
    # is used because the newer one needs onnxscript, which is not a dependency.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x, t, p), str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), opset_version=17, dynamo=False,
                          do_constant_folding=False, keep_initializers_as_inputs=True,
                          dynamic_axes={"x": {0: "batch", 1: "frames"}, "t": {0: "batch"},
                                        "prompt": {0: "batch"},
                                        "x0": {0: "batch", 1: "frames"}})
    finish_export(path)


def module_from_onnx(onnx_path: str | Path = ONNX_PATH,
                     config_path: str | Path = CONFIG_PATH) -> MotionDenoiser:
    """The torch module with the weights stored in the ONNX file (one source of weights)."""
    cfg, _ = load_config(config_path)
    return load_weights(MotionDenoiser(cfg), onnx_path)
