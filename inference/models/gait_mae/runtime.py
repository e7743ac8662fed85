"""GaitMAE at run time: the embedding of a walk or a walking bout, from the ONNX file alone.

A bout's embedding is the mean of its clips' embeddings (2 s clips, hop 1 s, nothing masked);
a bout shorter than one clip (2 s) has none. The embedding can re-identify a person (card
``gait_mae.md``): it is biometric data wherever it is stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inference.models.backends import OnnxRuntimeBackend
from inference.models.gait_mae.config import CONFIG_PATH, ONNX_PATH, load_config
from inference.models.gait_mae.features import HOP_FRAMES, walk_clips


class GaitEmbedder:
    """Clips or walks -> embeddings (``embedding_dim`` = 128 floats)."""

    def __init__(self, onnx_path=ONNX_PATH, config_path=CONFIG_PATH, *, backend=None,
                 threads: int | None = 1, batch: int = 64):
        self.onnx_path = Path(onnx_path)
        self.cfg, self.meta = load_config(config_path)
        self.backend = backend or OnnxRuntimeBackend(onnx_path, threads=threads)
        self.batch = batch

    @property
    def name(self) -> str:
        """What a stored embedding names as its model: vectors of different weights are not
        comparable (the ONNX file's own content hash tells the weights apart)."""
        import hashlib

        return "gait_mae:" + hashlib.sha256(self.onnx_path.read_bytes()).hexdigest()[:12]

    @property
    def dim(self) -> int:
        return self.cfg.embedding_dim

    def run(self, clips: np.ndarray) -> dict[str, np.ndarray]:
        """Normalised clips (N, 60, 22, 3), nothing masked -> {"recon", "embedding"}."""
        keep = np.ones(clips.shape[:3], np.float32)
        outs = [self.backend.run({"clip": clips[i:i + self.batch], "keep": keep[i:i + self.batch]})
                for i in range(0, len(clips), self.batch)]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]} if outs else {}

    def embed_clips(self, clips: np.ndarray) -> np.ndarray:
        if not len(clips):
            return np.zeros((0, self.dim), np.float32)
        return self.run(np.asarray(clips, np.float32))["embedding"]

    def embed_walk(self, t_us: np.ndarray, joints: np.ndarray, hop: int = HOP_FRAMES
                   ) -> tuple[np.ndarray | None, int]:
        """(mean embedding or None, number of clips) of a stretch of canonical joints."""
        emb = self.embed_clips(walk_clips(t_us, joints, hop))
        return (emb.mean(0) if len(emb) else None), len(emb)
