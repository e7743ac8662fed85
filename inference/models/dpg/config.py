"""What DPG is, without torch: clip geometry, landmarks, targets and files. The runtime
(``runtime.py``) estimates from these and the ONNX file alone; the network is in ``model.py``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

# 124 frames as in Kidzinski et al. 2020 (and Dinh et al., who reuse their windows); their videos
# are 30 frames/s, so every source is resampled to 30 Hz by its timestamps: 4.1 s per clip.
RATE_HZ = 30.0
CLIP_FRAMES = 124
IMAGE_SIZE = 128

# The landmarks every 2D source we have gives (the canonical skeleton of a webcam or the
# simulator, the 17 joints of the clinic-video keypoints): rows of the coordinate image, in
# this order. Canonical joint names; the readers map their own layouts onto them.
LANDMARKS: tuple[str, ...] = (
    "head", "neck", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "pelvis", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle")
LM = {name: i for i, name in enumerate(LANDMARKS)}
# the joints drawn on the trajectory graph, each with its own grey level (k / 6)
GRAPH_JOINTS: tuple[str, ...] = ("left_hip", "left_knee", "left_ankle", "right_hip",
                                 "right_knee", "right_ankle")

# One head per target, each with a left and a right output. Step length leaves the network in
# leg lengths (the images are scale-free: thigh-length units) and is turned into metres with the
# walker's leg length (hip-knee-ankle chain of the skeleton) by the runtime.
TARGETS: tuple[str, ...] = ("gdi", "knee_flex_max_ext_deg", "cadence_spm", "step_length_legs")
SIDES: tuple[str, ...] = ("left", "right")
OUTPUTS: tuple[str, ...] = tuple(f"{t}_{s}" for t in TARGETS for s in SIDES)

INPUT_NAMES = ("images",)
OUTPUT_NAMES = ("targets",)


@dataclass
class DPGConfig:
    channels: tuple[int, int, int] = (8, 16, 32)  # the three conv+pool blocks of each branch
    first_pool: int = 4  # 128 -> 32 in the first block, then 16, 8
    hidden: tuple[int, int, int] = (128, 64, 32)  # with the heads: four fully connected layers
    dropout: float = 0.2


MODELS_DIR = Path(__file__).resolve().parent
ONNX_PATH = MODELS_DIR / "dpg.onnx"
CONFIG_PATH = MODELS_DIR / "dpg.json"


def save_config(cfg: DPGConfig, path: str | Path, mean: list[float], std: list[float],
                **extra) -> None:
    """The network's sizes, the clip geometry and the target scaling (outputs are trained as
    (y - mean) / std per output) beside the weights."""
    Path(path).write_text(json.dumps({
        "model": asdict(cfg), "rate_hz": RATE_HZ, "clip_frames": CLIP_FRAMES,
        "image_size": IMAGE_SIZE, "landmarks": list(LANDMARKS), "outputs": list(OUTPUTS),
        "target_mean": mean, "target_std": std, **extra}, indent=2) + "\n")


def load_config(path: str | Path = CONFIG_PATH) -> tuple[DPGConfig, dict]:
    meta = json.loads(Path(path).read_text())
    if (meta.get("rate_hz") != RATE_HZ or meta.get("clip_frames") != CLIP_FRAMES
            or meta.get("image_size") != IMAGE_SIZE or meta.get("landmarks") != list(LANDMARKS)
            or meta.get("outputs") != list(OUTPUTS)):
        raise ValueError(f"{path}: clip geometry, landmarks or outputs differ from this code's")
    m = meta["model"]
    return DPGConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in m.items()}), meta
