"""``gaitstream simulate``: write a simulated-walker dataset with exact ground truth.

``gaitstream simulate --out DIR [--trials N] [--seed S] [--patterns P ...] [--severities S ...]
[--sensor none|kinect|mediapipe] [--noise X] [--rate HZ] [--scenes ...]``

The layout is that of ../shared/data/c3d_gait_lab_samples, so ``gaitstream eval events DIR`` and
the model training read it like the real data:

* ``trials/<name>.c3d``: the canonical 22 joints as C3D points labelled with the joint names
  (POINT:UNITS mm, y up: POINT:Y_SCREEN +Y), NaN where the sensor lost a joint or the frame;
  Plug-in-Gait-style angle points (LHipAngles, LKneeAngles, LAnkleAngles + R, degrees, X =
  flexion, hip relative to the pelvis) and the events in the C3D EVENT group;
* ``ground_truth/events.csv``: ``trial,side,event,time_s,frame,source`` exactly as the shared
  file (time 0 = first frame, frame = round(time_s * rate));
* simulator-only truth: ``ground_truth/cycles.csv`` (per stride, the CYCLE_METRICS names),
  ``trials.csv`` (pattern, severity, sensor, walker parameters per trial) and
  ``frames/<name>.npz`` (per frame: true and reported joints, confidence, gait phase and foot
  contact per leg, joint angles, walking / freezing / festination flags, sensor swaps and drops).

Trials cycle through the patterns (severity drawn from ``--severities``) and scenes; each trial
is one person with its own random body and speed, deterministic for ``--seed``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from streams.schema import CYCLE_METRICS
from streams.skeletons import CANONICAL_JOINTS

from capture.sim.patterns import ONE_SIDED, PATTERNS, make_style
from capture.sim.person import Person, Stand
from capture.sim.scenes import SCENES, random_params, scene
from capture.sim.sensors import SENSORS, Sensor, SensorConfig
from capture.sim.skeleton import layout_joints
from capture.sim.truth import cycle_truth, frame_truth
from capture.sim.walker import SIDES

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("trial", "side", "event", "time_s", "frame", "source")
TRIAL_SCENES = ("across", "towards", "away", "start_stop", "turns", "walkway")
ANGLE_POINTS = {"HipAngles": "hip_flexion_pelvis", "KneeAngles": "knee_flexion",
                "AnkleAngles": "ankle_dorsiflexion"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="dataset folder (created)")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patterns", nargs="+", default=list(PATTERNS), choices=PATTERNS,
                   metavar="PATTERN", help=f"gait patterns to cycle through: {', '.join(PATTERNS)}")
    p.add_argument("--severities", nargs="+", type=int, default=[1, 2, 3], choices=[0, 1, 2, 3],
                   help="severities drawn for the non-normal patterns")
    p.add_argument("--sensor", default="none", choices=SENSORS)
    p.add_argument("--noise", type=float, default=1.0, help="sensor error scale")
    p.add_argument("--rate", type=float, default=None,
                   help="frame rate in Hz (default 100 without a sensor, 30 with one)")
    p.add_argument("--scenes", nargs="+", default=list(TRIAL_SCENES), choices=SCENES)


def main(args: argparse.Namespace) -> int:
    if args.trials < 1:
        raise SystemExit("--trials must be at least 1")
    rate = args.rate or (100.0 if args.sensor == "none" else 30.0)
    t0 = time.monotonic()
    summary = write_dataset(args.out, trials=args.trials, seed=args.seed, patterns=args.patterns,
                            severities=args.severities, sensor=args.sensor, noise=args.noise,
                            rate_hz=rate, scenes=args.scenes, progress=True)
    print(f"wrote {summary['trials']} trials, {summary['events']} events, {summary['cycles']} "
          f"strides, {summary['frames']} frames to {args.out} in {time.monotonic() - t0:.1f} s",
          flush=True)
    return 0


def write_dataset(out: Path, *, trials: int, seed: int = 0, patterns=PATTERNS,
                  severities=(1, 2, 3), sensor: str = "none", noise: float = 1.0,
                  rate_hz: float = 100.0, scenes=TRIAL_SCENES, progress: bool = False
                  ) -> dict[str, int]:
    out = Path(out)
    for sub in ("trials", "ground_truth", "frames"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(seed).spawn(trials)
    ev_rows, cyc_rows, trial_rows = [], [], []
    n_frames = 0
    for i in range(trials):
        pattern = patterns[i % len(patterns)]
        scene_name = scenes[i % len(scenes)]
        trial = simulate_trial(i, pattern, scene_name, severities, sensor, noise, rate_hz,
                               np.random.default_rng(seeds[i]))
        name = trial["name"]
        write_c3d(out / "trials" / f"{name}.c3d", trial)
        np.savez_compressed(out / "frames" / f"{name}.npz", **trial["frames"])
        ev_rows += trial["events"]
        cyc_rows += trial["cycles"]
        trial_rows.append(trial["row"])
        n_frames += len(trial["frames"]["t"])
        if progress:
            print(f"[{i + 1}/{trials}] {name}: {trial['row']['duration_s']:.1f} s, "
                  f"{len(trial['events'])} events, {len(trial['cycles'])} strides", flush=True)
    _csv(out / "ground_truth" / "events.csv", EVENT_COLUMNS, ev_rows)
    _csv(out / "ground_truth" / "cycles.csv",
         ("trial", "side", "start_s", "end_s", "foot_off_s", *CYCLE_METRICS), cyc_rows)
    _csv(out / "trials.csv", tuple(trial_rows[0]), trial_rows)
    return {"trials": trials, "events": len(ev_rows), "cycles": len(cyc_rows),
            "frames": n_frames}


def simulate_trial(i: int, pattern: str, scene_name: str, severities, sensor: str, noise: float,
                   rate_hz: float, rng: np.random.Generator) -> dict:
    """One person walking one scene: frames, truth rows and the trial's description."""
    severity = 0 if pattern == "normal" else int(rng.choice(list(severities)))
    side = str(rng.choice(SIDES)) if pattern in ONE_SIDED else None
    params = random_params(rng)
    style = make_style(pattern, severity, side=side, rng=rng)
    plan = scene(scene_name, 1, rng, passes=1)[0]
    person = Person.build(params, style, [Stand(0.3)] + list(plan.actions), plan.start,
                          plan.heading, 0.0, rng)
    t = np.arange(0.0, person.t_stop + 1e-9, 1.0 / rate_hz)
    truth = frame_truth(person, t)
    points, state = person.evaluate(t)
    sens = Sensor(SensorConfig(kind=sensor, noise=noise), "canonical22", [params.height_m], rng)
    joints = np.full((len(t), len(CANONICAL_JOINTS), 3), np.nan, dtype=np.float32)
    conf = np.zeros((len(t), len(CANONICAL_JOINTS)), dtype=np.float32)
    dropped = np.zeros(len(t), dtype=bool)
    swapped = np.zeros(len(t), dtype=bool)
    for k, tk in enumerate(t):
        pts = {n: v[k] for n, v in points.items()}
        facing = np.array([np.cos(state["heading"][k]), 0.0, np.sin(state["heading"][k])])
        bodies, st = sens.observe(float(tk), [pts], [facing])
        dropped[k] = st.dropped
        swapped[k] = st.swapped.get(0, False)
        if bodies:
            _, j, c = bodies[0]
            seen = c > 0
            joints[k, seen], conf[k] = j[seen], c
    name = f"SIM_{i:04d}_{pattern}_s{severity}_{scene_name}"
    events = []
    for e in person.events():
        events.append({"trial": name, "side": e.side.capitalize(), "event": e.kind,
                       "time_s": f"{e.t:.6f}", "frame": int(round(e.t * rate_hz)),
                       "source": "simulator (exact)"})
    cycles = []
    for c in cycle_truth(person):
        row = {"trial": name, "side": c["side"], "start_s": f"{c['start_s']:.6f}",
               "end_s": f"{c['end_s']:.6f}",
               "foot_off_s": "" if c["foot_off_s"] is None else f"{c['foot_off_s']:.6f}"}
        row.update({k: "" if v is None else f"{v:.6g}" for k, v in c["metrics"].items()})
        cycles.append(row)
    true_joints = layout_joints(points, "canonical22").astype(np.float32)
    frames = {"t": t, "joints": joints, "confidence": conf, "joints_true": true_joints,
              "dropped": dropped, "swapped": swapped,
              **{k: np.asarray(v) for k, v in truth.items() if k != "t"}}
    row = {"trial": name, "pattern": pattern, "severity": severity,
           "affected_side": style.affected_side, "scene": scene_name, "sensor": sensor,
           "noise": noise if sensor != "none" else 0.0, "rate_hz": rate_hz,
           "n_frames": len(t), "duration_s": round(float(t[-1]), 4),
           "frame": "floor" if sensor == "none" else "camera",
           **{f"param_{k}": v for k, v in asdict(params).items()},
           "style": json.dumps(_style_summary(style), sort_keys=True)}
    return {"name": name, "frames": frames, "events": events, "cycles": cycles, "row": row,
            "rate_hz": rate_hz, "angles": {k: truth[k] for k in truth if "flexion" in k
                                           or "dorsiflexion" in k},
            "person": person}


def _style_summary(style) -> dict:
    d = asdict(style)
    base = asdict(type(style)())
    return {k: v for k, v in d.items() if v != base[k]}


def write_c3d(path: Path, trial: dict) -> None:
    """The trial's reported canonical joints as a C3D file (mm, y up) with angles and events."""
    import ezc3d

    joints = trial["frames"]["joints"]  # (T, 22, 3) metres, NaN = lost
    ang = trial["angles"]
    labels = list(CANONICAL_JOINTS)
    data = [joints.transpose(2, 1, 0) * 1000.0]  # (3, 22, T) mm
    for suffix, key in ANGLE_POINTS.items():
        for side, s in (("left", "L"), ("right", "R")):
            a = np.zeros((3, 1, len(joints)))
            a[0, 0] = ang[f"{key}_{side}"]
            data.append(a)
            labels.append(f"{s}{suffix}")
    pts = np.concatenate(data, axis=1)
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [float(trial["rate_hz"])]
    c["parameters"]["POINT"]["LABELS"]["value"] = labels
    c["parameters"]["POINT"]["DESCRIPTIONS"]["value"] = [""] * len(labels)
    full = np.ones((4, pts.shape[1], pts.shape[2]))
    full[:3] = pts
    c["data"]["points"] = full
    c.add_parameter("POINT", "UNITS", "mm")
    c.add_parameter("POINT", "X_SCREEN", "+X")
    c.add_parameter("POINT", "Y_SCREEN", "+Y")
    c.add_parameter("POINT", "ANGLE_UNITS", "deg")
    c.add_parameter("MANUFACTURER", "SOFTWARE", "gaitstream simulator")
    for e in trial["events"]:
        label = "Foot Strike" if e["event"] == "foot_strike" else "Foot Off"
        c.add_event(time=[0.0, float(e["time_s"])], context=e["side"], label=label)
    c.write(str(path))


def _csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="raise")
        w.writeheader()
        w.writerows(rows)

