"""``gaitstream eval angles DIR``: our joint angles against the lab's own, per angle.

For every trial under DIR that carries the lab's angles beside its markers:

- a C3D with Plug-in-Gait outputs stored as points (LHipAngles, LKneeAngles ... and the R ones);
- a TRC with an OpenSim inverse-kinematics ``.mot`` of the same trial, where the OpenSim and
  OpenCap folders keep it (their SOURCES.md): beside it as ``<trial>_ik*.mot``, or in an
  ``ik/`` folder beside the markers' folder as ``ik/<trial>_ik*.mot``;

the recording goes through the worker's own code path (``inference.analyze``): our foot strikes
cut it into strides, and each stride's nine gait variables
(``inference.analysis.gait_variables.stride_variables``, the curves GDI/GPS, the report and
``gaitstream plot`` use; hip flexion with the normative mean pelvic tilt added, as the analysis
reports it) are compared over 0-100 % of the stride with the lab's curves on the same clock.

Per angle and reference kind: the mean offset (ours - lab; each trial side's own mean over its
strides, then the mean and SD over those series), the RMS after removing each series' offset,
the correlation of the offset-removed curves, and the numbers of trials and strides.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.analysis.gait_variables import VARIABLES
from inference.eval.gait_variables import PIG

log = logging.getLogger(__name__)

# The lab's column for each variable in an OpenSim IK file (gait2392 / gait10dof18musc and
# the OpenCap full-body model share these names), with the sign that turns it into the
# Plug-in-Gait-like convention of gait_variables, per side (left, right). OpenSim's pelvis
# coordinates are the pelvis' rotations in the room (Z tilt: posterior +; X list: left side
# up +; Y rotation: about up, the left hip back +), the joint coordinates are per side
# already (flexion, adduction, internal rotation, dorsiflexion +). The knee's sign differs
# between models and is read from the data (groundtruth.knee_flexion_sign).
IK = {"pelvis_tilt": ("pelvis_tilt", -1.0, -1.0),
      "pelvis_obliquity": ("pelvis_list", 1.0, -1.0),
      "pelvis_rotation": ("pelvis_rotation", -1.0, 1.0),
      "hip_flexion": ("hip_flexion_{s}", 1.0, 1.0),
      "hip_adduction": ("hip_adduction_{s}", 1.0, 1.0),
      "hip_rotation": ("hip_rotation_{s}", 1.0, 1.0),
      "knee_flexion": ("knee_angle_{s}", None, None),
      "ankle_dorsiflexion": ("ankle_angle_{s}", 1.0, 1.0)}
# the strides a comparison keeps: a lab value over most of it (edges of a record, gaps)
MIN_COVERED = 0.9
N_POINTS = 101
# a record with no stride of ours is compared whole but for this much at each end (the
# analysis' smoothing window is +-80 ms)
WHOLE_RECORD_EDGE_S = 0.1


@dataclass
class Pair:
    """A marker recording and where the lab's angles of the same trial are."""

    recording: Path
    reference: Path  # the C3D itself, or the IK .mot
    kind: str  # "Plug-in-Gait" | "OpenSim IK"


def ik_beside(trc: Path) -> Path | None:
    """The OpenSim IK .mot of a TRC trial, where the shared folders keep it (module doc)."""
    from inference.data.groundtruth import trial_keys

    for key in trial_keys(trc.stem):
        for folder in (trc.parent, trc.parent.parent / "ik"):
            found = sorted(folder.glob(f"{key}_ik*.mot")) if folder.is_dir() else []
            if found:
                return found[0]
    return None


def find_pairs(folder: Path) -> list[Pair]:
    """Every trial under ``folder`` with markers and the lab's own angles (symlinks are
    followed as files: the pairs are found where they lie in ``folder``)."""
    from inference.data.groundtruth import load_pig_angles

    out = []
    for p in sorted(Path(folder).rglob("*")):
        suffix = p.suffix.lower()
        if suffix == ".c3d" and p.is_file():
            try:
                has = load_pig_angles(p) is not None
            except Exception as e:  # an unreadable C3D is one trial fewer, said so
                log.warning("%s: not read (%s)", p, e)
                continue
            if has:
                out.append(Pair(p, p, "Plug-in-Gait"))
        elif suffix == ".trc" and p.is_file() and (ik := ik_beside(p)) is not None:
            out.append(Pair(p, ik, "OpenSim IK"))
    return out


def load_reference(pair: Pair) -> Any:
    from inference.data.groundtruth import load_ik_angles, load_pig_angles

    return load_pig_angles(pair.reference) if pair.kind == "Plug-in-Gait" \
        else load_ik_angles(pair.reference)


def lab_series(angles: Any, kind: str, side: str) -> dict[str, np.ndarray]:
    """variable -> (T,) the lab's angle on ``angles.t_us`` in our conventions (only those the
    lab has)."""
    out = {}
    k = 0 if side == "left" else 1
    for v in VARIABLES:
        if kind == "Plug-in-Gait":
            name, comp = PIG[v]
            ch = angles.channels.get(f"{'LR'[k]}{name}")
            if ch is not None:
                out[v] = ch[:, comp]
        elif v in IK:
            col, *signs = IK[v]
            col = col.format(s="lr"[k])
            if v == "knee_flexion":
                if side in angles.knee_flexion:
                    out[v] = angles.knee_flexion[side]
            elif col in angles.channels:
                y = signs[k] * angles.channels[col]
                if v == "pelvis_rotation":  # a room angle: the heading is in it
                    y = (y - np.nanmedian(y) + 180.0) % 360.0 - 180.0 + np.nanmedian(y)
                out[v] = y
    return out


def lab_curves(t_us: np.ndarray, series: dict[str, np.ndarray], fs0: int, fs1: int,
               n_points: int = N_POINTS) -> np.ndarray:
    """(9, n_points) the lab's curves over the stride (NaN where it has no value over most of
    it)."""
    at = np.linspace(fs0, fs1, n_points)
    out = np.full((len(VARIABLES), n_points), np.nan)
    sel = (t_us >= fs0) & (t_us <= fs1)
    for i, v in enumerate(VARIABLES):
        y = series.get(v)
        if y is None or not sel.any():
            continue
        ok = np.isfinite(y)
        if ok[sel].mean() >= MIN_COVERED and t_us[ok][0] <= fs0 and t_us[ok][-1] >= fs1:
            out[i] = np.interp(at, t_us[ok], y[ok])
    return out


def our_strides(rec: Any) -> tuple[list[tuple[str, int, int]], np.ndarray, np.ndarray,
                                   np.ndarray]:
    """((side, start, end) of the strides the worker found, t_us, joints (canonical26 where
    the recording has foot points), confidences)."""
    from inference.analyze import analyze_recording

    cycles = analyze_recording(rec).cycles
    _, joints, conf = rec.skeleton()
    return ([(c.side, c.start_us, c.end_us) for c in cycles], rec.t_us,
            joints.astype(np.float64), conf.astype(np.float64))


def stride_curves(rec: Any, ref: Any = None, kind: str | None = None,
                  need_lab: bool = True) -> list[dict[str, Any]]:
    """Our (9, 101) curves of each stride the worker finds in the recording, with the lab's
    over it (``ref``: its AngleTruth of ``kind``; None: no lab curves); with ``need_lab``, only
    the strides the lab covers."""
    from inference.analysis.gait_variables import stride_variables
    from inference.models.gdi.indices import load_normative

    strides, t, j, c = our_strides(rec)
    tilt = np.interp(np.linspace(0, 100, N_POINTS), np.arange(0, 101, 2),
                     load_normative().of("Free")[0][0])
    out = []
    for side, fs0, fs1 in strides:
        lab = np.full((len(VARIABLES), N_POINTS), np.nan) if ref is None else \
            lab_curves(ref.t_us, lab_series(ref, kind, side), fs0, fs1)
        if need_lab and not np.isfinite(lab).any():
            continue
        ours = stride_variables(t, j, side, fs0, fs1, pelvis_tilt=tilt, confidence=c)
        if ours is not None:
            out.append({"trial": rec.name, "kind": kind, "side": side, "start_us": fs0,
                        "cycle": True, "ours": ours, "lab": lab})
    return out


def trial_strides(pair: Pair) -> list[dict[str, Any]]:
    """Our and the lab's curves of each stride the worker found in the trial (or of the whole
    record, frame by frame, when it is shorter than a stride of ours)."""
    from capture.readers import load_recording
    from inference.analysis.gait_variables import stride_variables
    from inference.models.gdi.indices import load_normative

    rec = load_recording(pair.recording)
    ref = load_reference(pair)
    out = stride_curves(rec, ref, pair.kind)
    for s in out:
        s["trial"] = str(pair.recording)
    if out:
        return out
    _, j, c = rec.skeleton()
    t, j, c = rec.t_us, j.astype(np.float64), c.astype(np.float64)
    tilt = load_normative().of("Free")[0][0]
    # A record shorter than a stride (OpenCap's trials are one cycle, begun at a strike) has
    # no stride of ours: the same variables over the whole record, frame by frame, with the
    # frames the smoothing window leaves whole (hip flexion with the normative tilt's mean
    # over the cycle: no cycle to place its curve on).
    edge = int(WHOLE_RECORD_EDGE_S * 1e6)
    lo, hi = int(t[0]) + edge, int(t[-1]) - edge
    n = int(((ref.t_us >= lo) & (ref.t_us <= hi)).sum())
    if n < 10:
        return out
    for side in ("left", "right"):
        lab = lab_curves(ref.t_us, lab_series(ref, pair.kind, side), lo, hi, n)
        ours = stride_variables(t, j, side, lo, hi, n_points=n, confidence=c,
                                pelvis_tilt=np.full(n, tilt.mean()))
        if ours is not None and np.isfinite(lab).any():
            out.append({"trial": str(pair.recording), "kind": pair.kind, "side": side,
                        "start_us": lo, "cycle": False, "ours": ours, "lab": lab})
    return out


# The per-frame angles the worker records (inference.analysis.kinematics; their per-cycle
# ranges go into its records) that have a lab counterpart: ours -> the gait variable's lab
# series. Hip flexion per frame is the thigh in the room (no pelvis), so its offset is the
# lab's pelvic tilt.
FRAME_ANGLES = {"hip_flexion": "hip_flexion", "knee_flexion": "knee_flexion",
                "ankle_dorsiflexion": "ankle_dorsiflexion"}


def frame_series(pair: Pair) -> list[dict[str, Any]]:
    """The worker's per-frame angles of the trial (the analyzer fed its canonical26 frames)
    beside the lab's on the lab's clock, per side and angle."""
    from capture.readers import load_recording
    from inference.analysis.analyzer import OnlineGaitAnalyzer
    from inference.analysis.kinematics import F
    from inference.eval.events import replay

    rec = load_recording(pair.recording)
    ref = load_reference(pair)
    _, joints, conf = rec.skeleton()
    an = OnlineGaitAnalyzer(rec.name, 0, keep_trace=True)
    replay(an, rec.t_us, joints, conf)
    tr = an.trace_arrays()
    out = []
    for side in ("left", "right"):
        lab = lab_series(ref, pair.kind, side)
        for ours_name, var in FRAME_ANGLES.items():
            if var not in lab or len(tr["t"]) < 2:
                continue
            mine = np.interp(ref.t_us, tr["t"], tr["f"][:, F[f"{ours_name}_{side}"]],
                             left=np.nan, right=np.nan)
            ok = np.isfinite(mine) & np.isfinite(lab[var])
            if ok.sum() >= 10:
                out.append({"trial": str(pair.recording), "kind": pair.kind, "side": side,
                            "angle": ours_name, "ours": mine[ok], "lab": lab[var][ok]})
    return out


def compare_frames(series: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per angle: offset (mean, SD over trial sides), RMS after each one's offset, r."""
    res = {}
    for name in FRAME_ANGLES:
        mine = [s for s in series if s["angle"] == name]
        if not mine:
            continue
        offs = [float(np.mean(s["ours"] - s["lab"])) for s in mine]
        resid = np.concatenate([s["ours"] - o - s["lab"] for s, o in zip(mine, offs)])
        o_a = np.concatenate([s["ours"] - o for s, o in zip(mine, offs)])
        l_a = np.concatenate([s["lab"] for s in mine])
        res[name] = {"trials": len({s["trial"] for s in mine}), "series": len(mine),
                     "frames": int(len(resid)), "offset_deg": float(np.mean(offs)),
                     "offset_sd_deg": float(np.std(offs, ddof=1)) if len(offs) > 1 else None,
                     "rms_deg": float(np.sqrt(np.mean(resid ** 2))),
                     "r": float(np.corrcoef(o_a, l_a)[0, 1])}
    return res


def compare(strides: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variable: offset (mean, SD over trial sides), RMS and r after each trial side's
    offset is removed, trials and strides."""
    res: dict[str, dict[str, Any]] = {}
    for i, v in enumerate(VARIABLES):
        series: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
        for s in strides:
            if np.isfinite(s["ours"][i]).all() and np.isfinite(s["lab"][i]).all():
                series.setdefault((s["trial"], s["side"]), []).append((s["ours"][i],
                                                                       s["lab"][i]))
        if not series:
            res[v] = {"strides": 0, "trials": 0, "whole_records": 0}
            continue
        offs, resid, ours_c, labs = [], [], [], []
        for pairs in series.values():
            o, lab = (np.array(x) for x in zip(*pairs))
            off = float((o - lab).mean())
            offs.append(off)
            resid.append((o - off - lab).ravel())
            ours_c.append((o - off).ravel())
            labs.append(lab.ravel())
        resid_a, o_a, l_a = (np.concatenate(x) for x in (resid, ours_c, labs))
        r = float(np.corrcoef(o_a, l_a)[0, 1]) if o_a.std() > 0 and l_a.std() > 0 else None
        whole = {(s["trial"], s["side"]) for s in strides if not s["cycle"]}
        res[v] = {"trials": len({k[0] for k in series}), "series": len(series),
                  "strides": sum(len(p) for k, p in series.items() if k not in whole),
                  "whole_records": len({k[0] for k in series if k in whole}),
                  "offset_deg": float(np.mean(offs)),
                  "offset_sd_deg": float(np.std(offs, ddof=1)) if len(offs) > 1 else None,
                  "rms_deg": float(np.sqrt(np.mean(resid_a ** 2))), "r": r,
                  "lab_range_deg": float(np.mean([np.ptp(x) for x in labs]))}
    return res


def evaluate(folder: Path) -> dict[str, Any]:
    pairs = find_pairs(folder)
    if not pairs:
        raise FileNotFoundError(
            f"{folder}: no trial with the lab's own angles (a C3D with Plug-in-Gait outputs, "
            "or a TRC with its OpenSim IK .mot beside it or in ../ik/)")
    strides: list[dict[str, Any]] = []
    frames: list[dict[str, Any]] = []
    skipped = {}
    for pair in pairs:
        try:
            got = trial_strides(pair)
            frames.extend(frame_series(pair))
        except Exception as e:  # one unreadable trial is reported, the rest go on
            skipped[str(pair.recording)] = f"{type(e).__name__}: {e}"
            continue
        if not got:
            skipped[str(pair.recording)] = "none of our strides or frames has the lab's angles"
        strides.extend(got)
    kinds = sorted({p.kind for p in pairs})
    return {"folder": str(folder), "pairs": [(str(p.recording), str(p.reference), p.kind)
                                             for p in pairs],
            "skipped": skipped, "strides": strides,
            "by_kind": {k: compare([s for s in strides if s["kind"] == k]) for k in kinds},
            "frames_by_kind": {k: compare_frames([s for s in frames if s["kind"] == k])
                               for k in kinds}}


def print_report(rep: dict[str, Any]) -> None:
    root = Path(rep["folder"])
    n_cycles = sum(s["cycle"] for s in rep["strides"])
    whole = {s["trial"] for s in rep["strides"] if not s["cycle"]}
    print(f"{rep['folder']}: {len(rep['pairs'])} trials with the lab's angles; {n_cycles} "
          f"strides of ours cover them, {len(whole)} trials shorter than a stride compared "
          "whole")
    for trial, why in rep["skipped"].items():
        print(f"  skipped {_rel(trial, root)}: {why}")
    for kind, res in rep["by_kind"].items():
        print(f"against {kind}:")
        print(f"  {'angle':20s} {'trials':>6s} {'strides':>7s} {'whole':>5s} {'offset':>7s} "
              f"{'(sd)':>6s} {'RMS':>6s} {'r':>5s} {'lab ROM':>7s}")
        for v, r in res.items():
            if not r["trials"]:
                why = "not measured from a skeleton" if v == "pelvis_tilt" else "no lab value"
                print(f"  {v:20s} {0:6d} {0:7d} {0:5d}  ({why})")
                continue
            sd = "-" if r["offset_sd_deg"] is None else f"{r['offset_sd_deg']:.1f}"
            rr = "-" if r["r"] is None else f"{r['r']:.2f}"
            print(f"  {v:20s} {r['trials']:6d} {r['strides']:7d} {r['whole_records']:5d} "
                  f"{r['offset_deg']:7.1f} "
                  f"{sd:>6s} {r['rms_deg']:6.1f} {rr:>5s} {r['lab_range_deg']:7.1f}")
    for kind, res in rep["frames_by_kind"].items():
        print(f"per frame, as the worker records them (kinematics), against {kind}:")
        for name, r in res.items():
            sd = "-" if r["offset_sd_deg"] is None else f"{r['offset_sd_deg']:.1f}"
            print(f"  {name:20s} {r['trials']:6d} {r['frames']:7d}f {r['offset_deg']:6.1f} "
                  f"{sd:>6s} {r['rms_deg']:6.1f} {r['r']:5.2f}")
    print("  degrees; offset = ours - lab, the mean over trial sides of each one's mean over "
          "its strides (sd across them); RMS and r with each trial side's offset removed; "
          "lab ROM = the lab curve's mean range over a stride; whole = trials shorter than "
          "a stride of ours, compared frame by frame over the record")


def _rel(p: str, root: Path) -> str:
    try:
        return str(Path(p).relative_to(root))
    except ValueError:
        return p


COLOURS = {"left": "tab:red", "right": "tab:green"}  # the field's convention


def figure(rep: dict[str, Any], out: Path) -> None:
    """Our curve (solid) against the lab's (dashed) of each trial side (mean over its strides)
    per angle, over % of the gait cycle; left red, right green."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(14, 11), sharex=True)
    x = np.linspace(0, 100, N_POINTS)
    for i, (v, ax) in enumerate(zip(VARIABLES, axes.ravel())):
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for s in rep["strides"]:
            if s["cycle"] and np.isfinite(s["lab"][i]).all():
                groups.setdefault((s["trial"], s["side"]), []).append(s)
        for (trial, side), ss in groups.items():
            lab = np.mean([s["lab"][i] for s in ss], axis=0)
            ax.plot(x, lab, color=COLOURS[side], ls="--", lw=1, alpha=0.8)
            ours = [s["ours"][i] for s in ss if np.isfinite(s["ours"][i]).all()]
            if ours:
                ax.plot(x, np.mean(ours, axis=0), color=COLOURS[side], lw=1, alpha=0.8)
        ax.set_title(v.replace("_", " "), fontsize=10)
        ax.grid(alpha=0.3)
        if i >= 6:
            ax.set_xlabel("% gait cycle")
        if i % 3 == 0:
            ax.set_ylabel("deg")
    from matplotlib.lines import Line2D

    fig.legend([Line2D([], [], color=COLOURS["left"]), Line2D([], [], color=COLOURS["right"]),
                Line2D([], [], color="k"), Line2D([], [], color="k", ls="--")],
               ["left", "right", "ours (from the markers)", "lab (Plug-in-Gait / OpenSim IK)"],
               loc="lower center", ncol=4)
    fig.suptitle(f"{rep['folder']}: our angles vs the lab's, mean over each trial side's strides")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a folder of trials with the lab's angles: C3Ds "
                   "with Plug-in-Gait outputs, TRCs with their OpenSim IK .mot")
    p.add_argument("--plot", type=Path, default=None, help="PNG of our curves vs the lab's")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        print(f"error: {args.folder}: not a folder")
        return 2
    try:
        rep = evaluate(args.folder)
    except FileNotFoundError as e:
        print(f"error: {e}")
        return 2
    print_report(rep)
    if args.plot:
        figure(rep, args.plot)
        print(f"wrote {args.plot}")
    if args.json:
        print(json.dumps({k: v for k, v in rep.items() if k not in ("strides", "frames")}))
    return 0
