"""GaitMAE: a dual-stream spatio-temporal transformer masked autoencoder (after the gait
foundation model of the Human Phenotype Project, and MotionBERT's DSTformer for the two streams).

Input: a normalised clip (B, 60 frames, 22 joints, 3) (``features.py``) and ``keep`` (B, 60, 22),
1 where a joint is shown to the network and 0 where it is masked. Tokens are one joint over
``patch`` (2) frames: (B, 30, 22) tokens of width ``d_model``. A token is masked when any of its
frames is masked; a masked token's content is replaced by a learned mask vector (BERT style: both
streams need the whole grid of tokens, so tokens are not dropped as in image MAE).

Each block runs two branches on the same tokens and averages them (DSTformer):
spatial-then-temporal and temporal-then-spatial. The spatial stream attends over the 22 joints
within a time step; the temporal stream attends over the 30 time steps of one joint.
A linear head reconstructs every frame of every joint (``recon``, (B, 60, 22, 3), model units);
training scores it only where ``keep`` is 0. The embedding is the mean and standard deviation of
the last block's tokens over joints and time (``embedding``, (B, 2 * d_model) = 128); at
embedding time nothing is masked (``keep`` all ones).

ONNX graph ``gait_mae.onnx``: inputs ``clip`` (B, 60, 22, 3), ``keep`` (B, 60, 22) float32;
outputs ``recon``, ``embedding``. B is dynamic.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn

from inference.models.onnx_io import finish_export, load_weights
from inference.models.gait_mae.config import (CONFIG_PATH, INPUT_NAMES, ONNX_PATH, OUTPUT_NAMES,
                                              MAEConfig, load_config)


class Attention(nn.Module):
    """Pre-norm self-attention + feed-forward over the second axis of (B', N, d), written out so
    that it exports to plain ONNX ops."""

    def __init__(self, d: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(d // heads)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(d_ff, d))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        qkv = self.qkv(self.norm1(h)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) * self.scale, dim=-1)
        h = h + self.proj((att @ qkv[2]).transpose(1, 2).reshape(b, n, d))
        return h + self.ff(self.norm2(h))


def _spatial(layer: Attention, h: torch.Tensor) -> torch.Tensor:
    b, t, j, d = h.shape  # attend over joints within each time step
    return layer(h.reshape(b * t, j, d)).reshape(b, t, j, d)


def _temporal(layer: Attention, h: torch.Tensor) -> torch.Tensor:
    b, t, j, d = h.shape  # attend over time steps of each joint
    x = h.permute(0, 2, 1, 3).reshape(b * j, t, d)
    return layer(x).reshape(b, j, t, d).permute(0, 2, 1, 3)


class DualBlock(nn.Module):
    """S->T and T->S branches over the same tokens, averaged (no learnt fusion weights: the
    simplest fusion, enough for a first model)."""

    def __init__(self, cfg: MAEConfig):
        super().__init__()
        args = (cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout)
        self.s1, self.t1 = Attention(*args), Attention(*args)
        self.t2, self.s2 = Attention(*args), Attention(*args)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        st = _temporal(self.t1, _spatial(self.s1, h))
        ts = _spatial(self.s2, _temporal(self.t2, h))
        return 0.5 * (st + ts)


class GaitMAE(nn.Module):
    """clip (B, T, J, 3), keep (B, T, J) -> recon (B, T, J, 3), embedding (B, 2 d_model)."""

    def __init__(self, cfg: MAEConfig):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.d_model, cfg.patch
        self.embed = nn.Linear(3 * p, d)
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.joint_pos = nn.Parameter(torch.randn(cfg.n_joints, d) * 0.02)
        self.time_pos = nn.Parameter(torch.randn(cfg.tokens_t, d) * 0.02)
        self.blocks = nn.ModuleList(DualBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 3 * p)

    def encode(self, clip: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, t, j, _ = clip.shape
        p, n = self.cfg.patch, t // self.cfg.patch
        # (B, T, J, 3) -> tokens (B, n, J, 3p): a joint over p consecutive frames
        x = clip.reshape(b, n, p, j, 3).permute(0, 1, 3, 2, 4).reshape(b, n, j, 3 * p)
        shown = keep.reshape(b, n, p, j).min(dim=2).values[..., None]  # token shown if all are
        h = shown * self.embed(x * shown) + (1.0 - shown) * self.mask_token
        h = h + self.joint_pos[None, None] + self.time_pos[None, :n, None]
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def forward(self, clip: torch.Tensor, keep: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encode(clip, keep)
        b, n, j, _ = h.shape
        p = self.cfg.patch
        recon = self.head(h).reshape(b, n, j, p, 3).permute(0, 1, 3, 2, 4).reshape(b, n * p, j, 3)
        flat = h.reshape(b, n * j, -1)
        mean = flat.mean(dim=1)
        std = (flat - mean[:, None]).pow(2).mean(dim=1).add(1e-6).sqrt()
        return recon, torch.cat([mean, std], dim=-1)


def random_keep(b: int, cfg: MAEConfig, gen: torch.Generator, joint_ratio: float = 0.3,
                frame_ratio: float = 0.2) -> torch.Tensor:
    """Training mask (B, T, J), 1 = shown: whole tokens of single joints (``joint_ratio`` of the
    (time-step, joint) tokens: masked joints) and whole time steps (``frame_ratio`` of them, every
    joint: masked frames). Masks are drawn per token so that a masked joint covers its ``patch``
    frames, which the network can then not copy from an unmasked neighbour frame."""
    n = cfg.tokens_t
    joint = torch.rand(b, n, cfg.n_joints, generator=gen) < joint_ratio
    frame = torch.rand(b, n, 1, generator=gen) < frame_ratio
    masked = (joint | frame).repeat_interleave(cfg.patch, dim=1)
    return (~masked).float()


def export_onnx(model: GaitMAE, path: str | Path) -> None:
    """Write the model as ONNX with a dynamic batch axis; every weight keeps its state-dict name
    (no constant folding) so that the torch module is rebuilt from the same file."""

    model = model.eval()
    cfg = model.cfg
    clip = torch.zeros(2, cfg.frames, cfg.n_joints, 3)
    keep = torch.ones(2, cfg.frames, cfg.n_joints)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (clip, keep), str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), opset_version=17, dynamo=False,
                          do_constant_folding=False, keep_initializers_as_inputs=True,
                          dynamic_axes={n: {0: "batch"} for n in INPUT_NAMES + OUTPUT_NAMES})
    finish_export(path)


def module_from_onnx(onnx_path: str | Path = ONNX_PATH,
                     config_path: str | Path = CONFIG_PATH) -> GaitMAE:
    """The torch module with the weights stored in the ONNX file (one source of weights)."""
    cfg, _ = load_config(config_path)
    return load_weights(GaitMAE(cfg), onnx_path)
