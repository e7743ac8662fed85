"""``gaitstream eval gait-variables DIR``: the nine gait variables from skeletons against the
lab's own Plug-in-Gait angle outputs, stride by stride.

For every recording under DIR whose ground truth (``inference.data.groundtruth.trial_truth``)
has lab-marked foot strikes and Plug-in-Gait angles stored in the C3D (LPelvisAngles,
LHipAngles, LKneeAngles, LAnkleAngles, LFootProgressAngles and the R ones), each stride from a
lab foot strike to the next of the same side is time-normalised (101 points) twice: the
variables of ``inference.analysis.gait_variables`` from the recording's canonical joints (hip
flexion with the normative mean pelvic tilt added, as the analysis reports it) and the lab's.
Per variable: the mean offset (ours - lab), the RMS difference, the RMS after removing each
stride's own offset (shape), the RMS over stance (0-60 %), and the correlation over the pooled
curves.

``--noise kinect`` sees the same trials through the simulated Azure Kinect of
``inference.data.sensor_views`` (a camera at the end of the walkway, depth-dependent jitter,
occlusion; seeded by trial name) to show what a depth camera's skeleton leaves of each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from inference.analysis.gait_variables import VARIABLES, stride_variables
from inference.models.gdi.indices import load_normative

# the lab's component of each variable (Plug-in-Gait outputs: X sagittal, Y frontal, Z
# transverse; the foot progression angle in Z)
PIG = {"pelvis_tilt": ("PelvisAngles", 0), "pelvis_obliquity": ("PelvisAngles", 1),
       "pelvis_rotation": ("PelvisAngles", 2), "hip_flexion": ("HipAngles", 0),
       "hip_adduction": ("HipAngles", 1), "hip_rotation": ("HipAngles", 2),
       "knee_flexion": ("KneeAngles", 0), "ankle_dorsiflexion": ("AnkleAngles", 0),
       "foot_progression": ("FootProgressAngles", 2)}


def lab_curves(angles: Any, side: str, fs0: int, fs1: int) -> np.ndarray:
    """(9, 101) Plug-in-Gait curves of the stride (NaN where the lab has no value)."""
    s = "L" if side == "left" else "R"
    at = np.linspace(fs0, fs1, 101)
    out = np.full((len(VARIABLES), 101), np.nan)
    sel = (angles.t_us >= fs0 - 50_000) & (angles.t_us <= fs1 + 50_000)
    for i, v in enumerate(VARIABLES):
        name, comp = PIG[v]
        ch = angles.channels.get(f"{s}{name}")
        if ch is None:
            continue
        y, t = ch[sel, comp], angles.t_us[sel]
        ok = np.isfinite(y)
        if ok.sum() > 0.9 * len(y) and t[ok][0] <= fs0 and t[ok][-1] >= fs1:
            out[i] = np.interp(at, t[ok], y[ok])
    return out


def trial_strides(path: Path, noise: str | None = None) -> list[dict[str, Any]]:
    from capture.readers import load_recording
    from inference.data.groundtruth import trial_truth
    from inference.data.sensor_views import trial_seed, view_recording

    truth = trial_truth(path)
    if truth.angles is None or not truth.events:
        return []
    rec = load_recording(path)
    t, j, c = rec.t_us, rec.joints, rec.confidence
    if noise:
        t, j, c = view_recording(rec.t_us, rec.joints, rec.confidence, noise,
                                 trial_seed(path.stem))
    tilt = load_normative().of("Free")[0][0]
    tilt101 = np.interp(np.linspace(0, 100, 101), np.arange(0, 101, 2), tilt)
    out = []
    for side in ("left", "right"):
        fs = [e.t_us for e in truth.events if e.side == side and e.kind == "foot_strike"]
        for fs0, fs1 in zip(fs[:-1], fs[1:]):
            if not 0.5e6 <= fs1 - fs0 <= 2.5e6:
                continue  # strikes of two passes, or a missed one between
            ours = stride_variables(t, j, side, fs0, fs1, pelvis_tilt=tilt101, confidence=c)
            lab = lab_curves(truth.angles, side, fs0, fs1)
            if ours is not None and np.isfinite(lab).any():
                out.append({"trial": path.stem, "side": side, "ours": ours, "lab": lab})
    return out


def compare(strides: list[dict[str, Any]]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for i, v in enumerate(VARIABLES):
        pairs = [(s["ours"][i], s["lab"][i]) for s in strides
                 if np.isfinite(s["ours"][i]).all() and np.isfinite(s["lab"][i]).all()]
        if not pairs:
            res[v] = {"strides": 0}
            continue
        o, lab = (np.array(x) for x in zip(*pairs))
        d = o - lab
        off = d.mean(axis=1)
        shape = d - off[:, None]
        res[v] = {"strides": len(pairs), "offset_deg": float(off.mean()),
                  "offset_sd_deg": float(off.std(ddof=1)) if len(off) > 1 else None,
                  "rms_deg": float(np.sqrt((d ** 2).mean())),
                  "rms_shape_deg": float(np.sqrt((shape ** 2).mean())),
                  # 0-60 %: stance, where the foot's and knee's geometry is best defined
                  "rms_stance_deg": float(np.sqrt((d[:, :61] ** 2).mean())),
                  "r": float(np.corrcoef(o.ravel(), lab.ravel())[0, 1]),
                  "lab_range_deg": float(np.mean(lab.max(axis=1) - lab.min(axis=1)))}
    return res


def index_agreement(strides: list[dict[str, Any]]) -> dict[str, Any]:
    """GDI and GPS (Free class) of each stride from our curves (pelvis tilt not measured)
    against the same from the lab's nine Plug-in-Gait curves."""
    from inference.models.gdi.indices import gait_vector, gps, gvs, load_basis

    basis, mean = load_basis(), load_normative().of("Free")[0]
    full = [s for s in strides if np.isfinite(s["lab"]).all()]
    if not full:
        return {"strides": 0}
    out: dict[str, Any] = {"strides": len(full)}
    for name, f in (("gdi", lambda c: float(basis.gdi(gait_vector(c)[None])[0])),
                    ("gps", lambda c: gps(gvs(c, mean)))):
        ours = np.array([f(s["ours"]) for s in full])
        lab = np.array([f(s["lab"]) for s in full])
        out[name] = {"ours_mean": float(ours.mean()), "lab_mean": float(lab.mean()),
                     "bias": float((ours - lab).mean()),
                     "mae": float(np.abs(ours - lab).mean()),
                     "r": float(np.corrcoef(ours, lab)[0, 1]) if len(full) > 2 else None}
    return out


def evaluate(folder: Path, noise: str | None = None) -> dict[str, Any]:
    files = sorted(p for p in Path(folder).rglob("*.c3d"))
    strides = []
    for p in files:
        strides.extend(trial_strides(p, noise))
    return {"folder": str(folder), "noise": noise,
            "trials": sorted({s["trial"] for s in strides}), "strides": len(strides),
            "variables": compare(strides), "indices": index_agreement(strides)}


def print_report(rep: dict[str, Any]) -> None:
    print(f"{rep['folder']}{' through the simulated ' + rep['noise'] if rep['noise'] else ''}: "
          f"{rep['strides']} strides of {len(rep['trials'])} trials with Plug-in-Gait angles "
          f"({', '.join(rep['trials'])})")
    print(f"  {'variable':20s} {'n':>3s} {'offset':>7s} {'(sd)':>6s} {'RMS':>6s} "
          f"{'shape':>6s} {'stance':>6s} {'r':>5s} {'lab ROM':>7s}")
    for v, r in rep["variables"].items():
        if not r["strides"]:
            print(f"  {v:20s}   0  (no lab value or not measured from a skeleton)")
            continue
        sd = "-" if r["offset_sd_deg"] is None else f"{r['offset_sd_deg']:.1f}"
        print(f"  {v:20s} {r['strides']:3d} {r['offset_deg']:7.1f} {sd:>6s} "
              f"{r['rms_deg']:6.1f} {r['rms_shape_deg']:6.1f} {r['rms_stance_deg']:6.1f} "
              f"{r['r']:5.2f} "
              f"{r['lab_range_deg']:7.1f}")
    print("  degrees; offset = mean of ours - lab over the cycle; shape = RMS with each "
          "stride's offset removed; stance = RMS over 0-60 %; lab ROM = the lab curve's mean range")
    ix = rep["indices"]
    if ix["strides"]:
        print(f"per stride, ours (8 variables) vs the lab's 9 curves ({ix['strides']} strides with "
              "all nine):")
        for k, unit in (("gdi", ""), ("gps", " deg")):
            r = ix[k]
            print(f"  {k.upper()}: ours {r['ours_mean']:.1f}, lab {r['lab_mean']:.1f}, bias "
                  f"{r['bias']:+.1f}, MAE {r['mae']:.1f}{unit}, r {_r(r['r'])}")


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a folder of C3D trials with Plug-in-Gait angles "
                   "and lab events (c3d_gait_lab_samples)")
    p.add_argument("--noise", choices=("kinect", "webcam"),
                   help="see the trials through a simulated sensor first")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    rep = evaluate(args.folder, args.noise)
    print_report(rep)
    if args.json:
        print(json.dumps(rep))
    return 0
