"""``gaitstream eval dpg DIR``: DPG against the Kidzinski 2020 1D-CNN (and, on video keypoints,
the classical event-based measures) on the same clips, MAE per target with 95 % CIs.

DIR is read by its layout:

* the FGDI layout (``inference.data.fgdi``): each subject-session's right and left stride drive
  the canonical skeleton at a drawn stride time and are seen from ``--views`` random side-view
  webcams (``inference.data.dpg.fgdi_clips``, seed 1: not the training views); truth: GDI and
  knee flexion at maximum extension of each side's stride, cadence = 120 / stride time, step
  length on the driven skeleton. The 1D-CNN gets its documented BODY_25 input from the same 2D
  keypoints (the canonical foot joint as the big toe); its single GDI is compared with each
  side's, its step length is its speed / its cadence (it has no step-length network);
* the video-keypoints layout (``inference.data.dpg.read_video_folder``): clips of the image-
  plane projection, averaged per trial as the runtime averages a walk, against the IMU's
  per-trial cadence and left/right step length; beside DPG, the classical analysis (events
  from the 3D skeleton, the worker's code path) on the same trial.
  The 1D-CNN needs toe keypoints that the 17 joints lack: not run, and said.

By default only the persons the training held out are scored (``--all``: every person, for a
folder training never saw). MAE is over (clip, side) pairs (video: (trial, side)); its 95 % interval and that of the
paired difference DPG - baseline come from 2000 bootstrap resamples of persons.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from inference.data.dpg import KIDZINSKI_MODELS, Clip
from inference.eval.gdi import bootstrap_ci
from inference.models.dpg.config import CONFIG_PATH, ONNX_PATH, SIDES

TARGET_UNITS = {"gdi": "", "knee_flex_max_ext_deg": "deg", "cadence_spm": "steps/min",
                "step_length_m": "m"}
LABELS = {"gdi": "GDI", "knee_flex_max_ext_deg": "knee flex at max ext (deg)",
          "cadence_spm": "cadence (steps/min)", "step_length_m": "step length (cm)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a folder in the FGDI or the video-keypoints layout")
    p.add_argument("--onnx", type=Path, default=ONNX_PATH)
    p.add_argument("--config", type=Path, default=CONFIG_PATH)
    p.add_argument("--kidzinski", type=Path, default=KIDZINSKI_MODELS,
                   help="folder of the Kidzinski 2020 *_best.pb files")
    p.add_argument("--views", type=int, default=4, help="camera views per FGDI subject-session")
    p.add_argument("--all", action="store_true",
                   help="score every person, not only those training held out")
    p.add_argument("--no-events", action="store_true",
                   help="video layout: skip the classical event-based measures")


def layout(folder: Path) -> str:
    from inference.data.fgdi import FgdiError, read_folder

    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    try:
        read_folder(folder)
        return "fgdi"
    except FgdiError:
        pass
    if any(folder.glob("*.zip")) and any(folder.glob("*.csv")):
        return "video"
    raise ValueError(f"{folder}: neither the FGDI layout nor the video-keypoints layout")


def _rows(clips: list[Clip], pred: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per target: truth, DPG and person of every (clip, side) with truth; step length in m."""
    from inference.models.dpg.config import OUTPUTS

    out: dict[str, dict[str, list]] = {}
    for c, p in zip(clips, pred):
        for side in SIDES:
            for t in ("gdi", "knee_flex_max_ext_deg", "cadence_spm", "step_length_legs"):
                k = OUTPUTS.index(f"{t}_{side}")
                if not np.isfinite(c.targets[k]):
                    continue
                scale = c.leg_m if t == "step_length_legs" else 1.0
                name = "step_length_m" if t == "step_length_legs" else t
                r = out.setdefault(name, {"truth": [], "dpg": [], "person": [], "clip": [],
                                          "side": []})
                r["truth"].append(c.targets[k] * scale)
                r["dpg"].append(p[k] * scale)
                r["person"].append(c.person)
                r["clip"].append(id(c))
                r["side"].append(side)
    return {n: {k: np.asarray(v) for k, v in r.items()} for n, r in out.items()}


def _mae(err: np.ndarray, persons: np.ndarray) -> dict[str, Any]:
    lo, hi = bootstrap_ci(np.abs(err), persons)
    return {"mae": float(np.mean(np.abs(err))), "ci95": [lo, hi]}


def compare(rows: dict[str, np.ndarray], other: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(other)
    e_d, e_o = rows["dpg"][ok] - rows["truth"][ok], other[ok] - rows["truth"][ok]
    diff = np.abs(e_d) - np.abs(e_o)
    lo, hi = bootstrap_ci(diff, rows["person"][ok])
    return {"n": int(ok.sum()), "persons": int(len(np.unique(rows["person"][ok]))),
            "dpg": _mae(e_d, rows["person"][ok]), "baseline": _mae(e_o, rows["person"][ok]),
            "diff_ci95": [lo, hi], "diff": float(diff.mean())}


def kidzinski_on(clips: list[Clip], models: Path) -> list[dict[str, float] | None]:
    from inference.models.dpg.kidzinski import Kidzinski

    net = Kidzinski(models)
    return [net.predict(c.keypoints) if c.keypoints else None for c in clips]


def baseline_value(k: dict[str, float] | None, target: str, side: str) -> float:
    if k is None:
        return float("nan")
    if target == "knee_flex_max_ext_deg":
        return k[f"knee_flex_max_ext_deg_{side}"]
    return k[target]


def evaluate_fgdi(folder: Path, est, args) -> dict[str, Any]:
    from inference.data.dpg import fgdi_clips, fgdi_pairs, held_out

    persons = None
    if not args.all:
        by: dict[str, list[str]] = {}
        for person, group, _, _ in fgdi_pairs(folder):
            by.setdefault(group, []).append(person)
        persons = held_out(by)
    clips = fgdi_clips(folder, views=args.views, seed=1, persons=persons)
    if not clips:
        raise ValueError(f"{folder}: no held-out subject-session with both sides (try --all)")
    pred = est.predict_images(np.stack([c.images for c in clips]))
    rows = _rows(clips, pred)
    kid = kidzinski_on(clips, args.kidzinski)
    by_id = {id(c): k for c, k in zip(clips, kid)}
    rep = {"layout": "fgdi", "clips": len(clips), "persons": len({c.person for c in clips}),
           "baseline": "Kidzinski 2020 1D-CNN (released weights, no OLS correction)",
           "targets": {}}
    for name, r in rows.items():
        other = np.array([baseline_value(by_id[c], name, s) for c, s in zip(r["clip"], r["side"])])
        rep["targets"][name] = compare(r, other)
    return rep


def events_for(trial) -> dict[str, float]:
    """Mean cadence and left/right step length of the classical analysis' strides of a trial
    (its 3D skeleton through the worker's code path); NaN where it found none."""
    from inference.analyze import analyze_frames
    from inference.data.dpg import video_skeleton_frames

    res = analyze_frames(video_skeleton_frames(trial))
    out = {}
    cad = [c.metrics.get("cadence_spm") for c in res.cycles]
    cad = [v for v in cad if v is not None]
    out["cadence_spm"] = float(np.mean(cad)) if cad else float("nan")
    for side in SIDES:
        st = [c.metrics.get("step_length_m") for c in res.cycles if c.side == side]
        st = [v for v in st if v is not None]
        out[f"step_length_m_{side}"] = float(np.mean(st)) if st else float("nan")
    return out


def evaluate_video(folder: Path, est, args) -> dict[str, Any]:
    from inference.data.dpg import held_out, read_video_folder, video_clips

    trials = read_video_folder(folder)
    if not args.all:
        by: dict[str, list[str]] = {}
        for tr in trials:
            by.setdefault(tr.group, []).append(tr.person)
        held = held_out(by)
        trials = [t for t in trials if t.person in held]
    rep: dict[str, Any] = {"layout": "video", "trials": len(trials),
                           "persons": len({t.person for t in trials}),
                           "baseline": "classical analysis (events from the 3D skeleton)",
                           "kidzinski": "not run: its input needs big-toe keypoints, which the "
                                        "17-joint layout lacks", "targets": {}}
    clips: list[Clip] = []
    trial_of: list[int] = []
    for i, tr in enumerate(trials):
        c = video_clips([tr])
        clips += c
        trial_of += [i] * len(c)
    rep["clips"] = len(clips)
    rep["trials_too_short"] = len(trials) - len(set(trial_of))
    if not clips:
        raise ValueError(f"{folder}: no trial of 4.1 s or more among those scored")
    pred = est.predict_images(np.stack([c.images for c in clips]))
    # The IMU gives one value per trial: DPG's estimate of a trial is the mean over its clips,
    # as the runtime estimates a walk (one row per trial and side)
    trial_of_arr = np.array(trial_of)
    firsts = [int(np.flatnonzero(trial_of_arr == i)[0]) for i in sorted(set(trial_of))]
    walk_pred = np.stack([pred[trial_of_arr == trial_of[k]].mean(axis=0) for k in firsts])
    rows = _rows([clips[k] for k in firsts], walk_pred)
    rep["trials_scored"] = len(firsts)
    ev = [events_for(t) for t in trials] if not args.no_events else None
    idx = {id(clips[k]): trial_of[k] for k in firsts}
    for name, r in rows.items():
        if ev is None:
            other = np.full(len(r["truth"]), np.nan)
        else:
            key = name if name == "cadence_spm" else None
            other = np.array([ev[idx[c]][key or f"{name}_{s}"] for c, s in zip(r["clip"],
                                                                               r["side"])])
        rep["targets"][name] = compare(r, other) if np.isfinite(other).any() else \
            {"n": int(len(r["truth"])), "dpg": _mae(r["dpg"] - r["truth"], r["person"])}
    return rep


def print_report(rep: dict[str, Any]) -> None:
    print(f"layout {rep['layout']}: {rep.get('clips')} clips of {rep['persons']} persons; "
          f"baseline: {rep['baseline']}")
    if rep.get("kidzinski"):
        print(f"  Kidzinski 2020 1D-CNN: {rep['kidzinski']}")
    if rep.get("trials_scored"):
        print(f"  {rep['trials_scored']} trials scored: DPG = the mean over a trial's clips, "
              "against the IMU's per-trial values (n = trials x sides)")
    if rep.get("trials_too_short"):
        print(f"  {rep['trials_too_short']} trial(s) shorter than one clip (4.1 s): not scored")
    print(f"  {'target':26s} {'n':>5s} {'DPG MAE [95% CI]':>26s} {'baseline MAE [95% CI]':>26s}"
          f" {'DPG - baseline [95% CI]':>28s}")
    for name, t in rep["targets"].items():
        unit = TARGET_UNITS.get(name, "")
        f = 100.0 if unit == "m" else 1.0  # step length in cm

        def fmt(d):
            return f"{d['mae'] * f:7.2f} [{d['ci95'][0] * f:6.2f}, {d['ci95'][1] * f:6.2f}]"
        base = fmt(t["baseline"]) if "baseline" in t else f"{'-':>22s}"
        diff = (f"{t['diff'] * f:7.2f} [{t['diff_ci95'][0] * f:6.2f}, "
                f"{t['diff_ci95'][1] * f:6.2f}]") if "diff" in t else "-"
        print(f"  {LABELS[name]:26s} {t['n']:5d} {fmt(t['dpg']):>26s} {base:>26s} {diff:>28s}")


def main(args: argparse.Namespace) -> int:
    from inference.models.dpg.runtime import DPGEstimator

    est = DPGEstimator(args.onnx, args.config)
    try:
        kind = layout(args.folder)
        rep = evaluate_fgdi(args.folder, est, args) if kind == "fgdi" else \
            evaluate_video(args.folder, est, args)
    except ValueError as e:  # a folder of neither layout, or a malformed file in it: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_report(rep)
    return 0
