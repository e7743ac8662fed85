"""A figure of one trial: foot positions, joint angles, detected and true events.

``gaitstream plot FILE [--out PNG]``

The trial is replayed through the online analyzer (as ``analyze`` and ``eval events`` do). Where
the shared datasets hold ground truth for the file (lab-marked or GRF events, force-plate
contacts, Plug-in-Gait or IK angles), it is drawn too: true events as vertical lines, reference
angles dashed after removing their mean offset to ours (the models zero the joints differently).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from inference.analysis.kinematics import F, SIDES
from streams.schema import GaitEvent

log = logging.getLogger(__name__)

COLOURS = {"left": "tab:blue", "right": "tab:red"}


def plot_trial(path: Path, out: Path) -> dict[str, Any]:
    """Draw the figure of ``path`` into ``out``; returns counts for the caller's message."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from capture.readers import load_recording
    from inference.eval.events import replay
    from inference.analysis.motion import Q_DIRECTION_FROM_BODY, STANDING, TURNING
    from inference.data.groundtruth import trial_truth
    from inference.analysis.analyzer import OnlineGaitAnalyzer

    rec = load_recording(path)
    truth = trial_truth(path)
    analyzer = OnlineGaitAnalyzer(rec.name, 0, keep_trace=True)
    out_msgs = replay(analyzer, rec.t_us, rec.joints, rec.confidence)
    events = [m for m in out_msgs if isinstance(m, GaitEvent)]
    tr = analyzer.trace_arrays()
    t, f = tr["t"] / 1e6, tr["f"]

    fig, ax = plt.subplots(5, 1, figsize=(15, 14), sharex=True)
    fig.suptitle(f"{path.name}: {rec.n_frames} frames, {rec.rate_hz:.0f} Hz, "
                 f"{rec.source_layout}  (classical analysis, look-ahead "
                 f"{analyzer.lookahead_ms:.0f} ms)")
    for side in SIDES:
        c = COLOURS[side]
        ax[0].plot(t, f[:, F[f"ankle_fwd_{side}"]], color=c, label=f"{side} ankle")
        ax[0].plot(t, f[:, F[f"foot_fwd_{side}"]], color=c, ls="--", label=f"{side} foot")
        ax[1].plot(t, f[:, F[f"knee_flexion_{side}"]], color=c, label=f"{side}")
        ax[2].plot(t, f[:, F[f"hip_flexion_{side}"]], color=c, label=f"{side}")
        ax[3].plot(t, f[:, F[f"ankle_dorsiflexion_{side}"]], color=c, label=f"{side}")
    ax[4].plot(t, f[:, F["pelvis_speed"]], color="k", label="pelvis speed (m/s)")
    ax[4].plot(t, f[:, F["trunk_tilt"]] / 10, color="tab:green", label="trunk tilt / 10 (deg)")
    for name, mask, colour in (("turning", tr["s"] == TURNING, "orange"),
                               ("standing", tr["s"] == STANDING, "grey"),
                               ("direction from body", (tr["q"] & Q_DIRECTION_FROM_BODY) > 0,
                                "violet")):
        if mask.any():
            ax[4].fill_between(t, 0, 1, where=mask, color=colour, alpha=0.2, label=name,
                               transform=ax[4].get_xaxis_transform())

    if truth.angles is not None:
        ta = truth.angles.t_us / 1e6
        for i, ref in ((1, truth.angles.knee_flexion), (2, truth.angles.hip_flexion)):
            name = "knee_flexion" if i == 1 else "hip_flexion"
            for side, r in ref.items():
                mine = np.interp(ta, t, f[:, F[f"{name}_{side}"]], left=np.nan, right=np.nan)
                ok = np.isfinite(mine) & np.isfinite(r)
                off = float(np.mean(mine[ok] - r[ok])) if ok.any() else 0.0
                ax[i].plot(ta, r + off, color=COLOURS[side], ls=":", lw=2,
                           label=f"{side} {truth.angles.source.split(' ')[0]} ref (+{off:.0f} deg)")

    y_ev = {"foot_strike": 0.95, "foot_off": 0.05}
    for e in events:
        ax[0].plot(e.event_us / 1e6, y_ev[e.kind], marker="v" if e.kind == "foot_strike" else "^",
                   color=COLOURS[e.side], ls="none", transform=ax[0].get_xaxis_transform())
    for e in truth.events:
        if not e.observed:
            continue
        for a in ax[:2]:
            a.axvline(e.t_us / 1e6, color=COLOURS[e.side], alpha=0.5,
                      ls="-" if e.kind == "foot_strike" else "--")
    for c in truth.contacts:
        ax[0].axvspan(c.on_us / 1e6, c.off_us / 1e6, color="k", alpha=0.07)

    ax[0].set_ylabel("forward of pelvis (m)")
    ax[0].set_title("feet along the walking direction; detected events (v strike, ^ off); "
                    "true events: lines (solid strike, dashed off); grey: force-plate contact",
                    fontsize=9)
    ax[1].set_ylabel("knee flexion (deg)")
    ax[2].set_ylabel("hip flexion (deg)")
    ax[3].set_ylabel("ankle dorsiflexion (deg)")
    ax[4].set_xlabel("time (s)")
    for a in ax:
        a.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
        a.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return {"events": len(events), "true_events": sum(e.observed for e in truth.events)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="recording (C3D, TRC, Kinect v1 text)")
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default FILE-stem.png)")


def main(args: argparse.Namespace) -> int:
    from capture.readers import RecordingError

    out = args.out or Path(f"{args.file.stem}.png")
    try:
        info = plot_trial(args.file, out)
    except RecordingError as e:
        print(f"error: {e}")
        return 2
    print(f"wrote {out} ({info['events']} detected events, {info['true_events']} true events)")
    return 0
