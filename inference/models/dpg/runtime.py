"""DPG at run time, from the ONNX file alone (no torch): estimates of a stretch of 2D keypoints.

A walk's estimate is the mean over its clips (124 frames at 30 Hz, hop 31 frames); a walk
shorter than one clip (4.1 s) has none. Step length leaves the network in leg lengths and is
given in metres with the walker's leg length (``leg_m``; from the 3D skeleton where there is
one, ``inference.models.gdi.indices.leg_length``); without it, only in leg lengths.
"""

from __future__ import annotations


import numpy as np

from inference.models.backends import OnnxRuntimeBackend
from inference.models.dpg.config import CONFIG_PATH, ONNX_PATH, OUTPUTS, SIDES, load_config
from inference.models.dpg.features import HOP_FRAMES, walk_images

METHOD = "dpg"


class DPGEstimator:
    def __init__(self, onnx_path=ONNX_PATH, config_path=CONFIG_PATH, *, backend=None,
                 threads: int | None = 1, batch: int = 64):
        self.cfg, self.meta = load_config(config_path)
        self.mean = np.asarray(self.meta["target_mean"], np.float64)
        self.std = np.asarray(self.meta["target_std"], np.float64)
        self.backend = backend or OnnxRuntimeBackend(onnx_path, threads=threads)
        self.batch = batch

    def predict_images(self, images: np.ndarray) -> np.ndarray:
        """(N, 2, 128, 128) -> (N, 8) targets in their units (OUTPUTS order)."""
        images = np.asarray(images, np.float32)
        if not len(images):
            return np.zeros((0, len(OUTPUTS)))
        outs = [self.backend.run({"images": images[i:i + self.batch]})["targets"]
                for i in range(0, len(images), self.batch)]
        return np.concatenate(outs).astype(np.float64) * self.std + self.mean

    def estimate(self, t_us: np.ndarray, keypoints: np.ndarray, leg_m: float | None = None,
                 hop: int = HOP_FRAMES) -> dict[str, float] | None:
        """Mean estimates over a walk's clips: ``gdi_left``, ..., ``cadence_spm_right``,
        ``step_length_m_left/right`` (with ``leg_m``) and ``clips``; None when the walk is
        shorter than one clip. ``keypoints``: (T, 15, 2) image coordinates of the LANDMARKS."""
        pred = self.predict_images(walk_images(t_us, keypoints, hop))
        if not len(pred):
            return None
        mean = pred.mean(axis=0)
        out = {name: float(v) for name, v in zip(OUTPUTS, mean)}
        for side in SIDES:
            legs = out.pop(f"step_length_legs_{side}")
            out[f"step_length_m_{side}"] = legs * leg_m if leg_m else float("nan")
        out["clips"] = float(len(pred))
        return out
