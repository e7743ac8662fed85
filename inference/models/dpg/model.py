"""DPG: the dual-pattern gait network (after Dinh et al.), top-down.

Input ``images`` (B, 2, 128, 128) float32 (``features.clip_images``): channel 0 the coordinate
matrix of all landmarks over 124 frames, channel 1 the hip/knee/ankle trajectory graph. Each
image goes through its own branch of three conv+pool blocks (5x5 convolutions, ReLU, max-pool;
the first pools by 4 so that the flattened features stay small: 32 x 8 x 8 per branch); the two
branches' features are concatenated and pass three fully connected layers, then one linear head
per target (GDI, knee flexion at maximum extension, cadence, step length) with a left and a
right output each: four fully connected layers from the concatenation to an output.

Output ``targets`` (B, 8) in the order of ``config.OUTPUTS``, scaled as (y - mean) / std with
the training set's statistics (``dpg.json``); ``runtime.py`` undoes the scaling.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from inference.models.dpg.config import (CONFIG_PATH, IMAGE_SIZE, INPUT_NAMES, ONNX_PATH,
                                         OUTPUT_NAMES, TARGETS, DPGConfig, load_config)
from inference.models.onnx_io import finish_export, load_weights


def branch(cfg: DPGConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 1
    for i, c in enumerate(cfg.channels):
        layers += [nn.Conv2d(c_in, c, 5, padding=2), nn.ReLU(),
                   nn.MaxPool2d(cfg.first_pool if i == 0 else 2)]
        c_in = c
    return nn.Sequential(*layers, nn.Flatten())


def branch_features(cfg: DPGConfig) -> int:
    side = IMAGE_SIZE // cfg.first_pool // 2 ** (len(cfg.channels) - 1)
    return cfg.channels[-1] * side * side


class DPG(nn.Module):
    def __init__(self, cfg: DPGConfig):
        super().__init__()
        self.cfg = cfg
        self.coords = branch(cfg)
        self.graph = branch(cfg)
        dims = (2 * branch_features(cfg),) + tuple(cfg.hidden)
        trunk: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            trunk += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(cfg.dropout)]
        self.trunk = nn.Sequential(*trunk)
        self.heads = nn.ModuleList([nn.Linear(dims[-1], 2) for _ in TARGETS])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.coords(images[:, 0:1]), self.graph(images[:, 1:2])], dim=1)
        h = self.trunk(h)
        return torch.cat([head(h) for head in self.heads], dim=1)


def export_onnx(model: DPG, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """The model as ONNX with a dynamic batch axis; weights keep their state-dict names."""
    model = model.eval()
    x = torch.zeros(2, 2, IMAGE_SIZE, IMAGE_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), opset_version=17, dynamo=False,
                          do_constant_folding=False, keep_initializers_as_inputs=True,
                          dynamic_axes={n: {0: "batch"} for n in INPUT_NAMES + OUTPUT_NAMES})
    finish_export(path, metadata)


def module_from_onnx(onnx_path: str | Path = ONNX_PATH,
                     config_path: str | Path = CONFIG_PATH) -> DPG:
    """The torch module with the weights stored in the ONNX file (one source of weights)."""
    cfg, _ = load_config(config_path)
    return load_weights(DPG(cfg), onnx_path)
