"""``gaitstream eval gdi DIR``: GDI and GPS per group of a folder in the FGDI layout, with 95 %
confidence intervals, and the GDI's defining property checked on its controls.

* GDI of every stride with the shipped basis (``--basis`` another, ``--refit`` one fitted on
  DIR itself); GVS/GPS against Schwartz 2008 at one speed class (``--speed-class``, default
  ``Free``: the folder's CSV carries no walking speed, and a self-selected speed is the free
  class by definition). Per group: the mean over strides (GDI, one side's GPS) and over sessions
  (overall GPS, both sides' 18 GVS), with a 95 % percentile interval from 2000 bootstrap
  resamples of the group's subjects (strides of one subject are not independent).
* Control property: fitted on DIR, the controls' GDI is 100 +- 10 by construction (printed as
  a check of the arithmetic); leave-subjects-out, k folds of control subjects held out of the
  fit (basis, control mean, ln-distance statistics), shows whether it holds for unseen controls.
* Layout check: the correlation of each variable's control mean curve with the normative one
  (a component read from the wrong column or with the wrong sign shows as r < 0.5).
* ``--plot DIR``: ``gdi_groups.png`` (GDI per stride and group: points, mean and 95 % CI, the
  normal band 90-110) and ``gdi_curves.png`` (the nine mean curves of the most deviating group
  over the normative mean +- 1 SD, left red, right green, as gait reports draw them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from inference.analysis.gait_variables import VARIABLES
from inference.data.fgdi import FgdiSet, is_control, read_folder
from inference.models.gdi.indices import (
    SPEED_CLASSES, GdiBasis, gait_vector, gps, gvs, load_basis, load_normative)

N_BOOT = 2000


def bootstrap_ci(values: np.ndarray, subjects: np.ndarray, n_boot: int = N_BOOT,
                 seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean of ``values`` resampling whole subjects."""
    ids = np.unique(subjects)
    by = [values[subjects == s] for s in ids]
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, len(ids), len(ids))
        means[b] = np.concatenate([by[i] for i in pick]).mean()
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def _summary(values: np.ndarray, subjects: np.ndarray) -> dict[str, Any]:
    lo, hi = bootstrap_ci(values, subjects)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1
            else None, "ci95": [lo, hi], "n": int(len(values)),
            "subjects": int(len(np.unique(subjects)))}


def control_property(x: np.ndarray, control: np.ndarray, subjects: np.ndarray,
                     folds: int = 6, seed: int = 0) -> dict[str, Any]:
    """In-sample GDI of the controls (fitted on all) and leave-subjects-out GDI (each fold of
    control subjects held out of the fit, patients always in it)."""
    basis = GdiBasis.fit(x, control)
    g = basis.gdi(x[control])
    ctrl_subjects = np.unique(subjects[control])
    rng = np.random.default_rng(seed)
    order = rng.permutation(ctrl_subjects)
    held = np.full(len(x), np.nan)
    for k in range(folds):
        out_subjects = set(order[k::folds])
        test = control & np.isin(subjects, list(out_subjects))
        fit = GdiBasis.fit(x[~test], control[~test])
        held[test] = fit.gdi(x[test])
    cv = held[control]
    return {"in_sample": {"mean": float(g.mean()), "sd": float(g.std(ddof=1))},
            "cross_validated": {"mean": float(cv.mean()), "sd": float(cv.std(ddof=1)),
                                "folds": folds, "ci95": list(bootstrap_ci(
                                    cv, subjects[control]))},
            "controls": int(control.sum()), "control_subjects": int(len(ctrl_subjects))}


def layout_check(data: FgdiSet, norm_mean: np.ndarray) -> dict[str, float]:
    ctrl = np.array([s.curves for s in data.strides if is_control(s.group)])
    if not len(ctrl):
        return {}
    m = ctrl.mean(axis=0)[:, ::2]
    return {v: float(np.corrcoef(m[i], norm_mean[i])[0, 1]) for i, v in enumerate(VARIABLES)}


def evaluate(folder: Path, basis: GdiBasis | None = None, refit: bool = False,
             speed_cls: str = "Free", folds: int = 6) -> dict[str, Any]:
    data = read_folder(folder)
    st = data.strides
    x = np.stack([gait_vector(s.curves) for s in st])
    control = np.array([is_control(s.group) for s in st])
    subjects = np.array([s.subject for s in st])
    groups = np.array([s.group for s in st])
    if refit:
        basis = GdiBasis.fit(x, control, variables=VARIABLES, info=f"fitted on {folder}")
    basis = basis or load_basis()
    norm = load_normative()
    mean, _ = norm.of(speed_cls)
    gdi = basis.gdi(x)
    side_gvs = np.stack([gvs(s.curves, mean) for s in st])
    side_gps = np.array([gps(v) for v in side_gvs])
    # sessions with both sides: the overall GPS over 18 GVS
    sessions: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(st):
        sessions.setdefault((s.subject, s.session), []).append(i)
    overall = {k: gps(side_gvs[v]) for k, v in sessions.items()
               if {st[i].side for i in v} == {"left", "right"}}
    out_groups = {}
    for g in sorted(set(groups), key=lambda g: (not is_control(g), g)):
        sel = groups == g
        ses = [k for k in overall if st[sessions[k][0]].group == g]
        gvs_means = {v: float(side_gvs[sel, i].mean()) for i, v in enumerate(VARIABLES)}
        out_groups[g] = {
            "control": bool(is_control(g)),
            "gdi": _summary(gdi[sel], subjects[sel]),
            "gps_side": _summary(side_gps[sel], subjects[sel]),
            "gps_overall": _summary(np.array([overall[k] for k in ses]),
                                    np.array([k[0] for k in ses])) if ses else None,
            "gvs_mean": gvs_means,
        }
    return {"folder": str(folder), "files": data.files, "strides": len(st),
            "basis": basis.info, "speed_class": speed_cls,
            "normative": norm.source, "groups": out_groups,
            "control_property": control_property(x, control, subjects, folds)
            if control.any() else None,
            "layout_check_r": layout_check(data, mean),
            "_plot": {"gdi": gdi, "groups": groups, "data": data, "norm": norm,
                      "speed_class": speed_cls}}


def print_report(rep: dict[str, Any]) -> None:
    print(f"{rep['folder']}: {rep['strides']} strides ({', '.join(rep['files'])})")
    print(f"GDI basis: {rep['basis']}")
    print(f"GVS/GPS against {rep['normative']}, speed class {rep['speed_class']}")
    print(f"\n{'group':16s} {'strides':>7s} {'subj':>4s}  {'GDI mean [95% CI]':>24s}  "
          f"{'GPS side [95% CI]':>22s}  {'GPS overall [95% CI]':>22s}")
    for g, r in rep["groups"].items():
        def f(s: dict | None) -> str:
            return "-" if s is None else f"{s['mean']:6.1f} [{s['ci95'][0]:5.1f}, {s['ci95'][1]:5.1f}]"
        print(f"{g:16s} {r['gdi']['n']:7d} {r['gdi']['subjects']:4d}  {f(r['gdi']):>24s}  "
              f"{f(r['gps_side']):>22s}  {f(r['gps_overall']):>22s}")
    print("\nmean GVS (deg) per group:")
    print(f"  {'variable':20s} " + " ".join(f"{g[:12]:>12s}" for g in rep["groups"]))
    for v in VARIABLES:
        print(f"  {v:20s} " + " ".join(f"{r['gvs_mean'][v]:12.1f}"
                                       for r in rep["groups"].values()))
    cp = rep["control_property"]
    if cp:
        ins, cv = cp["in_sample"], cp["cross_validated"]
        print(f"\ncontrols ({cp['controls']} strides, {cp['control_subjects']} subjects), basis "
              f"fitted on this folder: GDI {ins['mean']:.1f} +- {ins['sd']:.1f} (100 +- 10 by "
              f"construction)\n  leave-subjects-out ({cv['folds']} folds of control subjects "
              f"held out of the fit): {cv['mean']:.1f} +- {cv['sd']:.1f}, mean 95% CI "
              f"[{cv['ci95'][0]:.1f}, {cv['ci95'][1]:.1f}]")
    r = rep["layout_check_r"]
    if r:
        bad = [v for v, x in r.items() if not x >= 0.5]
        print("\nlayout check (control mean vs normative mean curve, r): "
              + ", ".join(f"{v} {x:.2f}" for v, x in r.items())
              + (f"\n  WARNING: {', '.join(bad)} hardly resemble the normative curve: wrong "
                 "column, sign or plane?" if bad else ""))


def plot(rep: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = rep.pop("_plot")
    out.mkdir(parents=True, exist_ok=True)
    names = list(rep["groups"])
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4))
    ax.axhspan(90, 110, color="0.9", label="controls' 100 +- 10")
    rng = np.random.default_rng(0)
    for i, g in enumerate(names):
        v = p["gdi"][p["groups"] == g]
        ax.plot(i + rng.uniform(-0.15, 0.15, len(v)), v, "o", ms=3, alpha=0.5, color="0.4")
        s = rep["groups"][g]["gdi"]
        ax.errorbar(i + 0.3, s["mean"], yerr=[[s["mean"] - s["ci95"][0]],
                                              [s["ci95"][1] - s["mean"]]],
                    fmt="s", color="k", capsize=4)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("GDI (per stride); mean, 95% CI by subject")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    paths = [out / "gdi_groups.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    worst = min((g for g in names if not rep["groups"][g]["control"]),
                key=lambda g: rep["groups"][g]["gdi"]["mean"], default=names[0])
    mean, sd = p["norm"].of(p["speed_class"])
    x51, x101 = np.arange(0, 101, 2), np.arange(101)
    fig, axes = plt.subplots(3, 3, figsize=(11, 8), sharex=True)
    for i, (v, ax) in enumerate(zip(VARIABLES, axes.ravel())):
        ax.fill_between(x51, mean[i] - sd[i], mean[i] + sd[i], color="0.85")
        for side, colour in (("left", "red"), ("right", "green")):
            c = [s.curves[i] for s in p["data"].strides if s.group == worst and s.side == side]
            if c:
                ax.plot(x101, np.mean(c, axis=0), color=colour, lw=1.5, label=side)
        ax.set_title(v.replace("_", " "), fontsize=9)
        ax.axhline(0, color="0.6", lw=0.5)
    axes[0, 0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("% gait cycle")
    fig.suptitle(f"{worst}: mean curves (deg) over the normative mean +- 1 SD "
                 f"({p['speed_class']})")
    fig.tight_layout()
    paths.append(out / "gdi_curves.png")
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a folder in the FGDI layout")
    p.add_argument("--basis", type=Path, help="a GDI basis .npz (default: the shipped one)")
    p.add_argument("--refit", action="store_true", help="fit the basis on FOLDER instead")
    p.add_argument("--speed-class", default="Free", choices=SPEED_CLASSES)
    p.add_argument("--folds", type=int, default=6, help="control-subject folds (default 6)")
    p.add_argument("--plot", type=Path, metavar="DIR", help="write the figures to DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    basis = GdiBasis.load(args.basis) if args.basis else None
    rep = evaluate(args.folder, basis, args.refit, args.speed_class, args.folds)
    print_report(rep)
    if args.plot:
        for path in plot(rep, args.plot):
            print(f"wrote {path}")
    rep.pop("_plot", None)
    if args.json:
        print(json.dumps(rep))
    return 0
