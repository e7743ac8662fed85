"""Kinematic curves of a session's strides from its recording (the log keeps no joint
positions): the recording goes through the worker's own code path (``inference.analyze``), its
strides are matched to the logged trusted strides by side and start time, and each matched
stride's nine gait variables (``inference.analysis.gait_variables``, Plug-in-Gait conventions)
are drawn over the Schwartz 2008 band of the walker's speed class."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from deploy.report import figures
from deploy.report.data import GVS_VARIABLES, ReportData

# A recording played by a file source keeps its own timestamps, so a logged stride and the
# same stride found again in the recording start at the same microsecond; the tolerance only
# absorbs a frame's rounding at 30 Hz or faster.
MATCH_US = 20_000


def _skeletons(path: Path, d: ReportData) -> tuple[str, np.ndarray, np.ndarray, list]:
    """(layout, t_us, canonical joints (N, 22, 3), the SkeletonFrames) of the patient in the
    recording."""
    from inference.analyze import skeleton_frames, stream_skeletons
    from streams.schema import Body
    from streams.skeletons import to_canonical

    if path.suffix.lower() == ".gst":
        frames = stream_skeletons(path).frames
        if d.patient is not None and any(f.source == d.patient.source for f in frames):
            frames = [f for f in frames if f.source == d.patient.source]
        # the patient's body where its id is the logged track number, else the first body
        want = d.patient.track if d.patient is not None else None
        picked = []
        for f in frames:
            bodies = [b for b in f.bodies if b.body_id == want] or f.bodies[:1]
            if bodies:
                picked.append((f, bodies[0]))
        frames = [type(f)(source=f.source, seq=f.seq, t_us=f.t_us, host_us=f.host_us,
                          layout=f.layout, bodies=[Body(0, b.joints, b.confidence)])
                  for f, b in picked]
    else:
        from capture.readers import load_recording

        frames = skeleton_frames(load_recording(path))
    if not frames:
        raise ValueError("no skeleton in the recording")
    layout = frames[0].layout
    t_us = np.array([f.t_us for f in frames], dtype=np.int64)
    raw = np.stack([f.bodies[0].joints for f in frames]).astype(np.float64)
    conf = np.stack([f.bodies[0].confidence for f in frames]).astype(np.float64)
    joints, _ = to_canonical(layout, raw, conf)
    return layout, t_us, joints, frames


def recording_curves(path: Path, d: ReportData) -> dict[str, Any]:
    from inference.analysis.gait_variables import SOURCE_KIND, VARIABLES, stride_variables
    from inference.analyze import analyze_frames
    from inference.models.gdi.indices import leg_length, load_normative, speed_class

    layout, t_us, joints, frames = _skeletons(path, d)
    kind = SOURCE_KIND.get(layout, "depth_camera")
    strides = [c for c in analyze_frames(frames).cycles if not set(c.flags) & _untrusted()]
    logged = [(c.side, c.start_us) for c in d.trusted]
    matched = [c for c in strides
               if any(s == c.side and abs(t - c.start_us) <= MATCH_US for s, t in logged)]
    if matched:
        note = (f"{len(matched)} of the {len(logged)} trusted strides found again in "
                f"{path.name}.")
        use = matched
    else:
        note = (f"None of the logged strides was found in {path.name} (another recording, or "
                f"another clock): the curves are of its own {len(strides)} trusted strides.")
        use = strides
    leg = leg_length(joints)
    classes = Counter(speed_class(c.metrics.get("speed_mps"), leg) for c in use)
    cls = classes.most_common(1)[0][0] if classes else "Free"
    norm = load_normative()
    mean, sd = norm.of(cls)
    tilt = np.interp(np.linspace(0, 100, 101), np.arange(0, 101, 2), mean[0])
    per_side: dict[str, list[np.ndarray]] = {"left": [], "right": []}
    for c in use:
        cur = stride_variables(t_us, joints, c.side, c.start_us, c.end_us, pelvis_tilt=tilt)
        if cur is not None:
            per_side[c.side].append(cur)
    # pelvic tilt is not measured from a skeleton (its curve would be the norm it was given)
    keep = [i for i, v in enumerate(VARIABLES) if v != "pelvis_tilt"]
    labels = dict(GVS_VARIABLES)
    curves = {s: np.stack(v)[:, keep] for s, v in per_side.items() if v}
    if not curves:
        return {"note": f"{path.name}: no stride gave curves. {note}", "source_kind": kind}
    svg = figures.kinematic_curves(curves, (mean[keep], sd[keep]),
                                   [labels[VARIABLES[i]] for i in keep])
    counts = {s: len(v) for s, v in per_side.items()}
    return {"svg": svg, "note": note + f" Left {counts['left']}, right {counts['right']}.",
            "speed_class": cls, "source_kind": kind, "layout": layout, "strides": counts}


def _untrusted() -> frozenset[str]:
    from streams.schema import UNTRUSTED_FLAGS

    return UNTRUSTED_FLAGS
