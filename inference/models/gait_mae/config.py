"""What GaitMAE is, without torch: sizes, clip geometry and files. The runtime (``runtime.py``)
embeds from these and the ONNX file alone (the base install has no torch); the network itself is
in ``model.py``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

RATE_HZ = 30.0  # clips are resampled to this rate from the timestamps, whatever the source's
CLIP_FRAMES = 60  # 2 s at 30 Hz: about two strides of ordinary walking
N_JOINTS = 22  # canonical skeleton (streams.skeletons.CANONICAL_JOINTS)
# Positions enter the network in units of 0.25 m, so that joints relative to the pelvis are of
# order 1 (a fixed constant, not fitted to data; the loss and every reported error are in metres).
POSITION_UNIT_M = 0.25

INPUT_NAMES = ("clip", "keep")
OUTPUT_NAMES = ("recon", "embedding")


@dataclass
class MAEConfig:
    n_joints: int = N_JOINTS
    frames: int = CLIP_FRAMES
    patch: int = 2  # frames per temporal token: 60 frames -> 30 tokens per joint
    d_model: int = 64
    n_layers: int = 2  # dual-stream blocks (each: S->T and T->S branches, averaged)
    n_heads: int = 4
    d_ff: int = 128
    dropout: float = 0.0

    @property
    def tokens_t(self) -> int:
        return self.frames // self.patch

    @property
    def embedding_dim(self) -> int:
        # mean and standard deviation of the last layer's tokens over joints and time
        return 2 * self.d_model


MODELS_DIR = Path(__file__).resolve().parent  # weights and card beside the code
ONNX_PATH = MODELS_DIR / "gait_mae.onnx"
CONFIG_PATH = MODELS_DIR / "gait_mae.json"


def save_config(cfg: MAEConfig, path: str | Path, **extra) -> None:
    Path(path).write_text(json.dumps({"model": asdict(cfg), "rate_hz": RATE_HZ,
                                      "position_unit_m": POSITION_UNIT_M, **extra},
                                     indent=2) + "\n")


def load_config(path: str | Path = CONFIG_PATH) -> tuple[MAEConfig, dict]:
    meta = json.loads(Path(path).read_text())
    if meta.get("rate_hz") != RATE_HZ or meta.get("position_unit_m") != POSITION_UNIT_M:
        raise ValueError(f"{path}: clip geometry differs from this code's")
    return MAEConfig(**meta["model"]), meta
