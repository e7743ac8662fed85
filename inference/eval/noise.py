"""``gaitstream eval noise``: gait-event timing against sensor noise, on the simulated walker.

The same walkers (same seed: same people, same paths, same exact event times) are rendered
through the sensor model at increasing error scales and evaluated like any dataset
(``inference.eval.events``), so that only the noise differs between the rows:

* ``exact``: the simulator's joints as they are (floor frame, no sensor);
* ``<sensor> xN``: the Azure-Kinect-like (or MediaPipe-like) sensor of ``capture.sim.sensors``
  with every positional error scaled by N (x0 keeps its occlusion, confidence, dropped frames,
  id switches and left/right swaps, which do not scale).

Scenes are those of a depth camera at the end of a walkway (walking towards it, away from it,
up and down it), at the camera's 30 Hz. Writes ``noise_study.json`` and ``noise_study.png``
(median and p90 timing error and recall against the noise scale) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LEVELS = (0.0, 0.5, 1.0, 2.0, 3.0)
SCENES = ("towards", "away", "walkway")


def run_study(out: Path, *, levels=LEVELS, trials: int = 12, seed: int = 0,
              sensor: str = "kinect", model: str = "classical", rate_hz: float = 30.0,
              patterns=("normal",)) -> dict[str, Any]:
    from capture.sim.dataset import write_dataset
    from inference.eval.events import evaluate

    out = Path(out)
    rows = []
    settings = [("exact", "none", 0.0)] + [(f"{sensor} x{lv:g}", sensor, lv) for lv in levels]
    for i, (label, kind, level) in enumerate(settings):
        t0 = time.monotonic()
        ds = out / "datasets" / label.replace(" ", "_")
        write_dataset(ds, trials=trials, seed=seed, patterns=tuple(patterns), severities=(1, 2, 3),
                      sensor=kind, noise=level, rate_hz=rate_hz, scenes=SCENES)
        rep = evaluate([ds], model=model)["overall"]
        row = {"setting": label, "sensor": kind, "noise": level,
               "recall": rep["recall"], "precision": rep["precision"], "events": rep["events"],
               "foot_strike": rep["foot_strike"], "foot_off": rep["foot_off"],
               "knee_rms_median_deg": rep["angles"].get("knee_flexion", {}).get("median_rms_deg")}
        rows.append(row)
        log.info("[%d/%d] %s: strike median %s ms, off median %s ms, recall %.3f (%.0f s)",
                 i + 1, len(settings), label, _f(row["foot_strike"]["median_abs_ms"]),
                 _f(row["foot_off"]["median_abs_ms"]), row["recall"] or 0.0, time.monotonic() - t0)
    study = {"model": model, "sensor": sensor, "trials": trials, "seed": seed,
             "rate_hz": rate_hz, "patterns": list(patterns), "scenes": list(SCENES),
             "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "noise_study.json").write_text(json.dumps(study, indent=2))
    plot_study(study, out / "noise_study.png")
    return study


def plot_study(study: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in study["rows"] if r["sensor"] != "none"]
    exact = next((r for r in study["rows"] if r["sensor"] == "none"), None)
    x = [r["noise"] for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for kind, colour in (("foot_strike", "tab:blue"), ("foot_off", "tab:orange")):
        med = [r[kind]["median_abs_ms"] for r in rows]
        p90 = [r[kind]["p90_abs_ms"] for r in rows]
        ax.plot(x, med, "o-", color=colour, label=f"{kind.replace('_', ' ')} median")
        ax.plot(x, p90, "s--", color=colour, alpha=0.6, label=f"{kind.replace('_', ' ')} p90")
        if exact:
            ax.axhline(exact[kind]["median_abs_ms"], color=colour, lw=0.8, ls=":")
    ax.axhline(1000.0 / study["rate_hz"], color="grey", lw=0.8, label="one frame")
    ax.set_xlabel(f"{study['sensor']} sensor error scale (x published error)")
    ax.set_ylabel("|event time error| (ms)")
    ax.set_title(f"{study['model']} events vs sensor noise\n(dotted: exact joints)")
    ax.legend(fontsize=7)
    ax2.plot(x, [r["recall"] for r in rows], "o-", label="recall")
    ax2.plot(x, [r["precision"] for r in rows], "s-", label="precision")
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("sensor error scale")
    ax2.set_title(f"{study['trials']} simulated walks at {study['rate_hz']:g} Hz")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("out") / "noise_study",
                   help="datasets, noise_study.json and noise_study.png")
    p.add_argument("--trials", type=int, default=12, help="simulated walks per noise level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sensor", default="kinect", choices=("kinect", "mediapipe"))
    p.add_argument("--levels", type=float, nargs="+", default=list(LEVELS),
                   help="error scales (1 = the published error of the sensor)")
    p.add_argument("--model", default="classical",
                   help="classical (default), gait-transformer, or package.module:factory")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    if args.trials < 1 or any(lv < 0 for lv in args.levels):
        raise SystemExit("--trials must be >= 1 and every --levels value >= 0")
    study = run_study(args.out, levels=args.levels, trials=args.trials, seed=args.seed,
                      sensor=args.sensor, model=args.model)
    print(f"{'setting':<14} {'events':>6} {'recall':>6} {'prec':>6} {'FS med':>7} {'FS p90':>7} "
          f"{'FO med':>7} {'FO p90':>7}  (ms)")
    for r in study["rows"]:
        fs, fo = r["foot_strike"], r["foot_off"]
        print(f"{r['setting']:<14} {r['events']:>6} {r['recall']:>6.3f} {r['precision']:>6.3f} "
              f"{_f(fs['median_abs_ms']):>7} {_f(fs['p90_abs_ms']):>7} {_f(fo['median_abs_ms']):>7} "
              f"{_f(fo['p90_abs_ms']):>7}")
    print(f"plot: {args.out / 'noise_study.png'}")
    if args.json:
        print(json.dumps(study))
    return 0
