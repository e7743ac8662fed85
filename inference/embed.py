"""``gaitstream embed FILE``: the GaitMAE embedding (128 floats) of each walking bout of a
recording.

Bouts are the classical analysis' walking bouts (the worker's code path, as ``gaitstream
analyze``); a bout's embedding is the mean over its 2 s clips (``inference.models.gait_mae``).
A recording in which the analysis finds no bout is embedded whole, reported as bout ``null``.
An embedding can re-identify a person: treat the output as biometric data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a recording gaitstream reads (as `gaitstream "
                   "analyze`; ARCHIVE.zip::MEMBER reads a member of a zip)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def embed_recording(rec: Any, embedder: Any = None, bouts: list[tuple[int, int]] | None = None
                    ) -> list[dict[str, Any]]:
    """One entry per bout: bout number (None = the whole recording), start/end s, clips,
    embedding (list of floats, or None when the bout is shorter than a clip)."""
    from inference.analyze import analyze_recording
    from inference.models.gait_mae.runtime import GaitEmbedder

    embedder = embedder or GaitEmbedder()
    if bouts is None:
        bouts = analyze_recording(rec).bouts
    t = np.asarray(rec.t_us)
    spans = [(i + 1, b0, b1) for i, (b0, b1) in enumerate(bouts)] or [(None, t[0], t[-1])]
    out = []
    for n, b0, b1 in spans:
        sel = (t >= b0) & (t <= b1)
        emb, clips = embedder.embed_walk(t[sel], rec.joints[sel]) if sel.sum() > 1 else (None, 0)
        out.append({"bout": n, "start_s": float(b0) / 1e6, "end_s": float(b1) / 1e6,
                    "clips": clips,
                    "embedding": None if emb is None else [round(float(v), 6) for v in emb]})
    return out


def main(args: argparse.Namespace) -> int:
    from capture.readers import load_recording
    from inference.models.gait_mae.runtime import GaitEmbedder

    rec = load_recording(args.file)
    embedder = GaitEmbedder()
    bouts = embed_recording(rec, embedder)
    rep = {"file": str(args.file), "model": "gait_mae", "dim": embedder.dim, "bouts": bouts}
    if args.json:
        print(json.dumps(rep))
    else:
        for b in bouts:
            state = f"{b['clips']} clips" if b["embedding"] else "too short for a clip"
            print(f"bout {b['bout']}: {b['start_s']:.2f}-{b['end_s']:.2f} s, {state}")
    return 0
