"""The gait transformer (after Cotton et al., "Transforming Gait: Video-Based Spatiotemporal Gait
Analysis", EMBC 2022): a small transformer encoder over a window of normalised canonical joints
plus one height token, predicting per frame

- sagittal hip and knee flexion, both sides (degrees),
- forward foot positions relative to the pelvis along the heading (metres),
- pelvis and foot velocities in the heading frame (m/s),
- (cos, sin) of the phase of each gait event (left/right foot strike/off); an event is the
  phase's zero crossing.

Inputs (see ``features.py`` beside this file for how they are made from a skeleton stream):
``x`` (B, T, N_FEATURES) per-frame features, ``valid`` (B, T) 1 for real frames and 0 for
padding, ``height`` (B, 1) the subject's height in metres. Padding frames are masked out of the
attention, so a window may extend past the start or end of a recording.

Outputs are in physical units (the per-channel scales and the height multiplication are part of
the graph), so the ONNX file is self-contained. Training lives in
``inference/train/gait_transformer.py``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from inference.models.onnx_io import finish_export, load_weights
from inference.models.gait_transformer.features import (N_FEATURES, N_OUTPUTS, OUTPUT_SCALE,
                                                        OUTPUT_TIMES_HEIGHT)


@dataclass
class GaitTransformerConfig:
    window: int = 90  # frames at the model rate (``features.MODEL_RATE_HZ``)
    d_model: int = 64
    n_layer: int = 3
    n_head: int = 4
    d_ff: int = 128
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    """Pre-norm transformer encoder block: self-attention and MLP, each with a residual."""

    def __init__(self, cfg: GaitTransformerConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(),
                                 nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        self.p_attn = cfg.dropout

    def forward(self, h: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        B, T, C = h.shape
        q, k, v = self.qkv(self.ln1(h)).chunk(3, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias,
                                           dropout_p=self.p_attn if self.training else 0.0)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, C)))
        return h + self.drop(self.mlp(self.ln2(h)))


class GaitTransformer(nn.Module):
    def __init__(self, cfg: GaitTransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Linear(N_FEATURES + 1, cfg.d_model)  # + the valid flag
        self.height_token = nn.Linear(1, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(1, cfg.window + 1, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, N_OUTPUTS)
        self.register_buffer("out_scale", torch.tensor(OUTPUT_SCALE, dtype=torch.float32))
        self.register_buffer("times_height",
                             torch.tensor(OUTPUT_TIMES_HEIGHT, dtype=torch.float32))
        nn.init.normal_(self.pos, std=0.02)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def normalised(self, x: torch.Tensor, valid: torch.Tensor,
                   height: torch.Tensor) -> torch.Tensor:
        """Outputs before scaling to physical units (what the training loss compares)."""
        B, T, _ = x.shape
        tok = self.inp(torch.cat([x * valid.unsqueeze(-1), valid.unsqueeze(-1)], dim=-1))
        # Height enters centred on a typical adult so the token starts near zero.
        h_tok = self.height_token((height - 1.7) * 10.0).unsqueeze(1)
        h = torch.cat([h_tok, tok], dim=1) + self.pos[:, : T + 1]
        keep = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)
        # Additive bias (not a bool mask) so the ONNX graph is plain arithmetic for every runtime.
        attn_bias = ((1.0 - keep) * -1e4)[:, None, None, :]
        for block in self.blocks:
            h = block(h, attn_bias)
        return self.head(self.ln_f(h[:, 1:]))

    def forward(self, x: torch.Tensor, valid: torch.Tensor,
                height: torch.Tensor) -> torch.Tensor:
        y = self.normalised(x, valid, height) * self.out_scale
        # Positions and velocities are predicted in body heights and returned in metres.
        return y * (1.0 + self.times_height * (height.unsqueeze(-1) - 1.0))


def build(config: dict) -> GaitTransformer:
    return GaitTransformer(GaitTransformerConfig(**config))


INPUT_NAMES = ("x", "valid", "height")
OUTPUT_NAMES = ("y",)


def export_onnx(model: GaitTransformer, path: str | Path, metadata: dict[str, str],
                opset: int = 17) -> None:
    """Export with a dynamic batch (the window length is fixed by the position embedding).

    Initializers keep their state-dict names (no constant folding, no deduplication), so the
    torch backend can rebuild the module from this one file (``module_from_onnx``): every
    backend runs the same weights. ``metadata`` (config, model rate, feature version) goes into
    the file's metadata_props.
    """

    model = model.eval()
    T = model.cfg.window
    dummy = (torch.zeros(2, T, N_FEATURES), torch.ones(2, T), torch.full((2, 1), 1.7))
    with warnings.catch_warnings():
        # torch >= 2.9 warns that the TorchScript exporter is legacy; it needs no onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        # keep_initializers_as_inputs=True is what turns deduplication of equal tensors off.
        torch.onnx.export(model, dummy, str(path), dynamo=False, opset_version=opset,
                          do_constant_folding=False, keep_initializers_as_inputs=True,
                          input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                          dynamic_axes={"x": {0: "batch"}, "valid": {0: "batch"},
                                        "height": {0: "batch"}, "y": {0: "batch"}})
    finish_export(path, {"config": json.dumps(model.cfg.to_dict()), **metadata})


def module_from_onnx(path: str | Path) -> GaitTransformer:
    """The torch module with the weights stored in an ONNX file written by ``export_onnx``."""
    import onnx

    m = onnx.load(str(path))
    meta = {p.key: p.value for p in m.metadata_props}
    if "config" not in meta:
        raise ValueError(f"{path}: no gait-transformer config in the ONNX metadata")
    return load_weights(build(json.loads(meta["config"])), path, m)
