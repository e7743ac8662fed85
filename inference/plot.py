"""A figure of one trial: its gait events over time, and its joint angles over the gait cycle.

``gaitstream plot FILE [--out PNG] [--reference IK.mot]``

The trial is replayed through the online analyzer (as ``analyze`` and ``eval events`` do). The
top panel: the feet along the walking direction over time, detected events, and the true
events where the shared datasets hold them. Below: the nine gait variables of
``inference.analysis.gait_variables`` (the curves GDI/GPS and the report use, Plug-in-Gait
conventions, README "Joint angles") over % of the gait cycle, cut at our own foot strikes: the
mean +- SD over the trial's strides, left red, right green, over the Schwartz 2008 normal band
(grey, mean +- 1 SD) of the walker's speed class. The lab's own angles of the same strides
(dashed: Plug-in-Gait outputs in a C3D, or an OpenSim IK .mot: ``--reference``, or where the
OpenSim/OpenCap folders keep it beside the TRC) are drawn as they are, offsets included.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from inference.analysis.kinematics import F, SIDES
from streams.schema import GaitEvent

log = logging.getLogger(__name__)

COLOURS = {"left": "tab:red", "right": "tab:green"}  # the field's convention


def _reference(path: Path, reference: Path | None) -> tuple[Any, str | None]:
    """(the lab's angles of the trial, their kind) or (None, None)."""
    from inference.data.groundtruth import load_ik_angles, load_pig_angles
    from inference.eval.angles import ik_beside

    if reference is not None:
        return load_ik_angles(reference), "OpenSim IK"
    if path.suffix.lower() == ".c3d":
        ang = load_pig_angles(path)
        return (ang, "Plug-in-Gait") if ang is not None else (None, None)
    if path.suffix.lower() == ".trc" and (ik := ik_beside(path)) is not None:
        return load_ik_angles(ik), "OpenSim IK"
    return None, None


def _speed_class(rec: Any, strides: list[dict[str, Any]]) -> str:
    from inference.analyze import analyze_recording
    from inference.models.gdi.indices import leg_length, speed_class

    starts = {(s["side"], s["start_us"]) for s in strides}
    leg = leg_length(rec.joints)
    classes = Counter(speed_class(c.metrics.get("speed_mps"), leg)
                      for c in analyze_recording(rec).cycles if (c.side, c.start_us) in starts)
    return classes.most_common(1)[0][0] if classes else "Free"


def plot_trial(path: Path, out: Path, reference: Path | None = None) -> dict[str, Any]:
    """Draw the figure of ``path`` into ``out``; returns counts for the caller's message."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from capture.readers import load_recording
    from inference.analysis.analyzer import OnlineGaitAnalyzer
    from inference.analysis.gait_variables import VARIABLES
    from inference.data.groundtruth import trial_truth
    from inference.eval.angles import stride_curves
    from inference.eval.events import replay
    from inference.models.gdi.indices import load_normative

    rec = load_recording(path)
    truth = trial_truth(path)
    analyzer = OnlineGaitAnalyzer(rec.name, 0, keep_trace=True)
    _, joints, conf = rec.skeleton()  # heels and toes too, as a live source sends them
    out_msgs = replay(analyzer, rec.t_us, joints, conf)
    events = [m for m in out_msgs if isinstance(m, GaitEvent)]
    tr = analyzer.trace_arrays()
    t, f = tr["t"] / 1e6, tr["f"]
    ref, kind = _reference(path, reference)
    strides = stride_curves(rec, ref, kind, need_lab=False)
    cls = _speed_class(rec, strides)
    norm_mean, norm_sd = load_normative().of(cls)

    fig = plt.figure(figsize=(15, 16))
    grid = fig.add_gridspec(4, 3, height_ratios=[0.8, 1, 1, 1])
    ax0 = fig.add_subplot(grid[0, :])
    fig.suptitle(f"{path.name}: {rec.n_frames} frames, {rec.rate_hz:.0f} Hz, "
                 f"{rec.source_layout}  (classical analysis, look-ahead "
                 f"{analyzer.lookahead_ms:.0f} ms)")
    for side in SIDES:
        c = COLOURS[side]
        ax0.plot(t, f[:, F[f"ankle_fwd_{side}"]], color=c, label=f"{side} ankle")
        ax0.plot(t, f[:, F[f"foot_fwd_{side}"]], color=c, ls="--", label=f"{side} foot")
    y_ev = {"foot_strike": 0.95, "foot_off": 0.05}
    for e in events:
        ax0.plot(e.event_us / 1e6, y_ev[e.kind], marker="v" if e.kind == "foot_strike" else "^",
                 color=COLOURS[e.side], ls="none", transform=ax0.get_xaxis_transform())
    for e in truth.events:
        if e.observed:
            ax0.axvline(e.t_us / 1e6, color=COLOURS[e.side], alpha=0.5,
                        ls="-" if e.kind == "foot_strike" else "--")
    for c in truth.contacts:
        ax0.axvspan(c.on_us / 1e6, c.off_us / 1e6, color="k", alpha=0.07)
    ax0.set_ylabel("forward of pelvis (m)")
    ax0.set_xlabel("time (s)")
    ax0.set_title("feet along the walking direction; detected events (v strike, ^ off); "
                  "true events: lines (solid strike, dashed off); grey: force-plate contact",
                  fontsize=9)
    ax0.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    ax0.grid(alpha=0.3)

    x = np.linspace(0, 100, 101)
    x_norm = np.arange(0, 101, 2)
    n_strides = {side: sum(s["side"] == side for s in strides) for side in SIDES}
    for i, v in enumerate(VARIABLES):
        ax = fig.add_subplot(grid[1 + i // 3, i % 3])
        m, sd = norm_mean[i], norm_sd[i]
        ax.fill_between(x_norm, m - sd, m + sd, color="0.85", lw=0)
        for side in SIDES:
            ours = np.array([s["ours"][i] for s in strides if s["side"] == side
                             and np.isfinite(s["ours"][i]).all()])
            if len(ours):
                mu = ours.mean(axis=0)
                ax.plot(x, mu, color=COLOURS[side], lw=1.5)
                if len(ours) > 1:
                    sdv = ours.std(axis=0, ddof=1)
                    ax.fill_between(x, mu - sdv, mu + sdv, color=COLOURS[side], alpha=0.2, lw=0)
            lab = np.array([s["lab"][i] for s in strides if s["side"] == side
                            and np.isfinite(s["lab"][i]).all()])
            if len(lab):
                ax.plot(x, lab.mean(axis=0), color=COLOURS[side], ls="--", lw=1.2)
        ax.set_title(v.replace("_", " ") + (" (not measured)" if v == "pelvis_tilt" else ""),
                     fontsize=10)
        ax.set_xlim(0, 100)
        ax.grid(alpha=0.3)
        if i >= 6:
            ax.set_xlabel("% gait cycle (foot strike to foot strike)")
        if i % 3 == 0:
            ax.set_ylabel("deg")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=COLOURS["left"]), Line2D([], [], color=COLOURS["right"]),
               Patch(color="0.85")]
    labels = [f"left, mean +- SD of {n_strides['left']} strides",
              f"right, mean +- SD of {n_strides['right']} strides",
              f"Schwartz 2008 normal band, {cls} speed (mean +- 1 SD)"]
    if kind is not None:
        handles.append(Line2D([], [], color="k", ls="--"))
        labels.append(f"lab: {kind}")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.tight_layout(rect=(0, 0.03, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return {"events": len(events), "true_events": sum(e.observed for e in truth.events),
            "strides": n_strides, "reference": kind}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="recording (C3D, TRC, Kinect v1 text)")
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default FILE-stem.png)")
    p.add_argument("--reference", type=Path, default=None,
                   help="the lab's OpenSim IK .mot of the same trial, drawn dashed (a C3D's "
                   "Plug-in-Gait outputs, and an IK file where the OpenSim and OpenCap folders "
                   "keep it, are found without it)")


def main(args: argparse.Namespace) -> int:
    from capture.readers import RecordingError
    from inference.data.groundtruth import GroundTruthError

    out = args.out or Path(f"{args.file.stem}.png")
    try:
        info = plot_trial(args.file, out, args.reference)
    except (RecordingError, GroundTruthError) as e:
        print(f"error: {e}")
        return 2
    ref = f", the lab's angles: {info['reference']}" if info["reference"] else ""
    print(f"wrote {out} ({info['events']} detected events, {info['true_events']} true events; "
          f"{info['strides']['left']} left and {info['strides']['right']} right strides"
          f"{ref})")
    return 0
