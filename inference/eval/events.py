"""Gait-event timing and joint angles against the ground truth of recorded gait trials.

``gaitstream eval events DIR [DIR ...] [--json] [--model NAME] [--noise kinect]
[--peer intellevent]``

DIR is laid out like ../shared/data/c3d_gait_lab_samples (``trials/*.c3d`` +
``ground_truth/events.csv`` + ``forceplate_contacts.csv``) or like opensim_walking_trc_grf /
opencap_mocap_modified_gait (``*.trc`` + ``ground_truth/events_from_grf.csv``). Each trial is
replayed frame by frame through the same online analyzer the live worker runs; its events are
matched one-to-one (same side and kind, nearest first, within ``--tolerance-ms``) to the truth.

What counts:
* lab-marked events and GRF events at least ``--edge-s`` inside the recording; GRF rows marked
  ``observed_in_record=False`` are record boundaries, not events;
* precision: detections inside the span the truth covers (GRF: the whole recording minus the
  edges, both feet were on plates; lab marks: per side and kind from its first to its last
  mark), since a lab marks only some strides;
* force-plate contacts (side unknown) are a second, independent check of timing: plate onset vs
  the nearest detected foot strike of either side, plate release vs foot off; recall only;
* through a simulated sensor (``--noise``), events it saw no frame of within ``--edge-s`` (a
  walker beyond its range) are skipped, said so, like those near the recording's ends;
* a trial whose lab marks contradict themselves (a stance or swing too short to be walking:
  a side mislabelled) or disagree with its own force plates (a whole-foot contact whose onset
  has no marked foot strike within the tolerance) has its marks skipped, and said so; plate
  contacts cut by the record or only partly on the plate (peak force under half the trial's
  highest) are not used.

Angles: knee and hip flexion of the analyzer against the lab's Plug-in-Gait outputs (C3D) or
OpenSim IK (.mot): RMS difference after removing the constant offset (the models put the joint
centres and zero positions differently), plus the offset itself.

Steps and speed: each stride whose strikes matched true ones, against the heel markers at the
true strikes (heel to heel along the walking direction, as a walkway measures them): the step
length ending at the stride's strike, and the stride's speed (the heel's own travel over the
stride time); bias and median error per dataset.

``--model`` picks the analyzer: ``classical`` (default), ``gait-transformer``, or any
``package.module:factory`` taking ``(source, track)`` and returning an object with
``push(t_us, joints, conf)`` and ``flush()`` like :class:`inference.analysis.analyzer.OnlineGaitAnalyzer`.
An analyzer with ``joint_angles()`` also gets the angle comparison.

``--peer intellevent`` runs a published detector (``inference.eval.peers``; the optional extra
``gaitstream[peers]``) on the same trials, through the same noise and the same matching, and
prints its figures beside ours (``--json``: under ``peer``).

``--noise kinect`` shows each trial to the analyzer through the simulated Azure Kinect
(``inference.data.sensor_views``: depth-dependent jitter, occlusion, dropped frames, left/right
swaps), seeded from the trial's name, so every model sees the same noisy frames and a run
repeats exactly; the gait transformer's model card reports both conditions this way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from streams.schema import GaitCycle, GaitEvent

log = logging.getLogger(__name__)

KINDS = ("foot_strike", "foot_off")


# --------------------------------------------------------------------------- analyzers


def _classical(source: str, track: int) -> Any:
    from inference.analysis.analyzer import OnlineGaitAnalyzer

    return OnlineGaitAnalyzer(source, track, keep_trace=True)


def _gait_transformer(source: str, track: int) -> Any:
    from inference.models.gait_transformer.runtime import GaitModelTracker, load_gait_model

    global _GT_MODEL
    if _GT_MODEL is None:
        _GT_MODEL = load_gait_model()
    return GaitModelTracker(_GT_MODEL, source, track)


_GT_MODEL = None
MODELS: dict[str, Callable[[str, int], Any]] = {
    "classical": _classical,
    "gait-transformer": _gait_transformer,
}


def analyzer_factory(name: str) -> Callable[[str, int], Any]:
    if name in MODELS:
        return MODELS[name]
    if name.startswith("peer:"):
        from inference.eval.peers import PEERS

        if name[5:] not in PEERS:
            raise ValueError(f"unknown peer {name[5:]!r}: one of {sorted(PEERS)}")
        return PEERS[name[5:]]
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    raise ValueError(f"unknown model {name!r}: one of {sorted(MODELS)} or package.module:factory")


NOISES = ("none", "kinect")


def with_noise(factory: Callable[[str, int], Any], noise: str) -> Callable[[str, int], Any]:
    """``factory``'s analyzers, seeing each trial through the simulated sensor ``noise``."""
    if noise == "none":
        return factory
    if noise not in NOISES:
        raise ValueError(f"unknown noise {noise!r}: one of {NOISES}")
    from inference.data.sensor_views import NoisyReplay, trial_seed

    return lambda source, track: NoisyReplay(factory(source, track), noise, trial_seed(source))


def replay(analyzer: Any, t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray) -> list:
    """Feed a recording frame by frame, exactly as the worker does, then flush."""
    out: list = []
    j = joints.astype(np.float32, copy=False)
    c = conf.astype(np.float32, copy=False)
    for i in range(len(t_us)):
        out.extend(analyzer.push(int(t_us[i]), j[i], c[i]))
    out.extend(analyzer.flush())
    return out


# --------------------------------------------------------------------------- matching


@dataclass
class Match:
    side: str
    kind: str
    truth_us: int
    detected_us: int | None

    @property
    def error_ms(self) -> float | None:
        return None if self.detected_us is None else (self.detected_us - self.truth_us) / 1000


def match_events(truth: list[tuple[str, str, int]], detected: list[tuple[str, str, int]],
                 tolerance_us: int, side_aware: bool = True) -> tuple[list[Match], set[int]]:
    """One-to-one matching, closest pairs first, within the tolerance.

    ``truth``/``detected``: (side, kind, t_us). With ``side_aware`` False the side of a truth
    event is ignored. Returns a Match per truth event and the indices of matched detections."""
    pairs = []
    for i, (ts, tk, tt) in enumerate(truth):
        for j, (ds, dk, dt) in enumerate(detected):
            if dk == tk and (ds == ts or not side_aware) and abs(dt - tt) <= tolerance_us:
                pairs.append((abs(dt - tt), i, j))
    pairs.sort()
    got: dict[int, int] = {}
    used: set[int] = set()
    for _, i, j in pairs:
        if i not in got and j not in used:
            got[i] = j
            used.add(j)
    matches = [Match(s, k, t, detected[got[i]][2] if i in got else None)
               for i, (s, k, t) in enumerate(truth)]
    return matches, used


# --------------------------------------------------------------------------- one trial


@dataclass
class TrialResult:
    dataset: str
    trial: str
    rate_hz: float = 0.0
    duration_s: float = 0.0
    truth_kind: str = ""  # lab | grf | none
    matches: list[Match] = field(default_factory=list)
    false_positives: list[tuple[str, str, int]] = field(default_factory=list)
    detections_in_span: int = 0
    plate_matches: list[Match] = field(default_factory=list)
    skipped_events: list[str] = field(default_factory=list)
    angles: dict[str, dict[str, float]] = field(default_factory=dict)
    # (ours, truth) step lengths (m) and stride speeds (m/s) against the heel markers at the
    # true strikes, for the strides whose strikes matched
    steps: list[tuple[float, float]] = field(default_factory=list)
    speeds: list[tuple[float, float]] = field(default_factory=list)
    skipped: str | None = None  # the whole trial, and why

    def row(self) -> dict[str, Any]:
        def med(kind: str) -> float | None:
            e = [abs(m.error_ms) for m in self.matches if m.kind == kind and m.error_ms is not None]
            return float(np.median(e)) if e else None

        n = len(self.matches)
        hit = sum(m.detected_us is not None for m in self.matches)
        return {
            "dataset": self.dataset, "trial": self.trial, "rate_hz": self.rate_hz,
            "truth": self.truth_kind, "events": n, "matched": hit,
            "recall": hit / n if n else None,
            "precision": (self.detections_in_span - len(self.false_positives))
            / self.detections_in_span if self.detections_in_span else None,
            "false_positives": len(self.false_positives),
            "fs_median_abs_ms": med("foot_strike"), "fo_median_abs_ms": med("foot_off"),
            "errors_ms": [[m.side, m.kind, m.error_ms] for m in self.matches],
            "plate_errors_ms": [[m.kind, m.error_ms] for m in self.plate_matches],
            "angles": self.angles, "steps_m": self.steps, "speeds_mps": self.speeds,
            "skipped_events": self.skipped_events,
            "skipped": self.skipped,
        }


def lab_marks_inconsistent(events: list[Any], min_stance_ms: float = 250.0,
                           min_swing_ms: float = 200.0) -> str | None:
    """Why a trial's lab marks contradict themselves (a stance or swing too short for walking
    between consecutive marks of one side: a mislabelled side), or None."""
    for side in ("left", "right"):
        ev = sorted((e for e in events if e.side == side), key=lambda e: e.t_us)
        for a, b in zip(ev, ev[1:]):
            gap = (b.t_us - a.t_us) / 1000
            if a.kind == "foot_strike" and b.kind == "foot_off" and gap < min_stance_ms:
                return (f"{side} stance of {gap:.0f} ms between the marks at {a.t_us / 1e6:.3f} "
                        f"and {b.t_us / 1e6:.3f} s (a side label must be wrong)")
            if a.kind == "foot_off" and b.kind == "foot_strike" and gap < min_swing_ms:
                return (f"{side} swing of {gap:.0f} ms between the marks at {a.t_us / 1e6:.3f} "
                        f"and {b.t_us / 1e6:.3f} s (a side label must be wrong)")
    return None


def full_contacts(contacts: list[Any], min_share: float = 0.5) -> tuple[list[Any], list[str]]:
    """Complete plate contacts of whole feet; a contact whose peak force is under ``min_share``
    of the trial's highest is a foot partly on the plate, whose onset is not a foot strike."""
    if not contacts:
        return [], []
    top = max(c.peak_vertical_n for c in contacts)
    keep, why = [], []
    for c in contacts:
        if not c.complete:
            why.append(f"plate {c.plate}: contact cut by the record's start/end")
        elif c.peak_vertical_n < min_share * top:
            why.append(f"plate {c.plate}: partial contact (peak {c.peak_vertical_n:.0f} N vs "
                       f"{top:.0f} N on the trial's other plates)")
        else:
            keep.append(c)
    return keep, why


def lab_marks_disagree(events: list[Any], contacts: list[Any], tolerance_us: int) -> str | None:
    """Why a trial's lab marks cannot be trusted, judged by its own force plates (whole-foot
    contacts), or None."""
    strikes = [e.t_us for e in events if e.kind == "foot_strike"]
    if not strikes:
        return None
    lo, hi = min(e.t_us for e in events), max(e.t_us for e in events)
    for c in contacts:
        if not lo - tolerance_us <= c.on_us <= hi + tolerance_us:
            continue
        gap = min(abs(s - c.on_us) for s in strikes)
        if gap > tolerance_us:
            return (f"lab-marked events disagree with force plate {c.plate}: its onset at "
                    f"{c.on_us / 1e6:.3f} s is {gap / 1000:.0f} ms from any marked foot strike")
    return None


def joints_unseen(rec: Any, event: Any) -> str | None:
    """The joint an event's detection needs (pelvis; ankle for a strike, ball of the foot for a
    foot off) if the recording does not have it at the event time."""
    from streams.skeletons import CJ

    i = int(np.argmin(np.abs(rec.t_us - event.t_us)))
    part = "ankle" if event.kind == "foot_strike" else "foot"
    for name in ("pelvis", f"{event.side}_{part}"):
        if rec.confidence[i, CJ[name]] <= 0:
            return name.replace("_", " ")
    return None


def angle_errors(t_us: np.ndarray, ours: dict[str, np.ndarray], truth: Any,
                 t_range: tuple[int, int]) -> dict[str, dict[str, float]]:
    """RMS (deg) after removing the mean difference, the offset, and the frame count, per
    angle and side, over the frames where both have values inside ``t_range``."""
    out: dict[str, dict[str, float]] = {}
    for name, ref in (("knee_flexion", truth.knee_flexion), ("hip_flexion", truth.hip_flexion)):
        for side, r in ref.items():
            mine = ours.get(f"{name}_{side}")
            if mine is None:
                continue
            ok_t = (truth.t_us >= t_range[0]) & (truth.t_us <= t_range[1]) & np.isfinite(r)
            if ok_t.sum() < 10:
                continue
            tt = truth.t_us[ok_t]
            good = np.isfinite(mine)
            if good.sum() < 10:
                continue
            inside = (tt >= t_us[good][0]) & (tt <= t_us[good][-1])
            m = np.interp(tt[inside], t_us[good], mine[good])
            d = m - r[ok_t][inside]
            if len(d) < 10:
                continue
            off = float(np.mean(d))
            out[f"{name}_{side}"] = {"rms_deg": float(np.sqrt(np.mean((d - off) ** 2))),
                                     "offset_deg": off, "frames": int(len(d))}
    return out


def heel_truth(rec: Any, strikes: list[tuple[str, int]], cycles: list[GaitCycle],
               tolerance_us: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(ours, truth) step lengths and stride speeds where a clinician measures them: heel to
    heel at the true strikes (``strikes``: (side, t_us)), along the walking direction (the
    pelvis' path over the second around the strike), from the recording's heel markers. A
    cycle counts when its end (and for the speed its start too) lies within the tolerance of
    true strikes of its side; strikes whose heels are not both seen are left out."""
    if rec.feet is None:
        return [], []
    t = rec.t_us
    heel = {"left": 0, "right": 1}
    pelvis = rec.joint("pelvis")

    def at(k: int, when: int) -> np.ndarray | None:
        i = int(np.argmin(np.abs(t - when)))
        return rec.feet[i, k].astype(float) if rec.feet_confidence[i, k] > 0 else None

    def direction(when: int) -> np.ndarray | None:
        i0, i1 = (int(np.searchsorted(t, when + d)) for d in (-500_000, 500_000))
        d = (pelvis[min(i1, len(t) - 1)] - pelvis[i0]).astype(float)
        d[1] = 0.0
        n = float(np.linalg.norm(d))
        return d / n if n > 0.1 else None

    steps, speeds = [], []
    for c in cycles:
        mine = sorted(tt for sd, tt in strikes if sd == c.side)
        end = [tt for tt in mine if abs(tt - c.end_us) <= tolerance_us]
        if not end:
            continue
        te, opp = end[0], "left" if c.side == "right" else "right"
        h, ho, d = at(heel[c.side], te), at(heel[opp], te), direction(te)
        if h is None or ho is None or d is None:
            continue
        if c.metrics.get("step_length_m") is not None:
            steps.append((c.metrics["step_length_m"], float((h - ho) @ d)))
        start = [tt for tt in mine if abs(tt - c.start_us) <= tolerance_us and tt < te]
        h0 = at(heel[c.side], start[-1]) if start else None
        if h0 is not None and c.metrics.get("speed_mps") is not None:
            speeds.append((c.metrics["speed_mps"], float((h - h0) @ d) / ((te - start[-1]) / 1e6)))
    return steps, speeds


def evaluate_trial(path: Path, factory: Callable[[str, int], Any], tolerance_ms: float,
                   edge_s: float) -> TrialResult:
    from capture.readers import RecordingError, load_recording
    from inference.data.groundtruth import trial_truth

    tol = int(tolerance_ms * 1000)
    truth = trial_truth(path)
    res = TrialResult(dataset=truth.dataset or path.parent.name, trial=truth.trial)
    try:
        rec = load_recording(path)
    except RecordingError as e:
        res.skipped = f"unreadable: {e}"
        return res
    res.rate_hz, res.duration_s = rec.rate_hz, rec.duration_s
    t0, t1 = int(rec.t_us[0]), int(rec.t_us[-1])
    edge = int(edge_s * 1e6)
    lo, hi = t0 + edge, t1 - edge

    analyzer = factory(truth.trial, 0)
    # the heels and toes to an analyzer that takes them; a simulated sensor (NoisyReplay) sees
    # the 22 joints, as an Azure Kinect has no heel and its FOOT joint is the canonical foot
    if getattr(analyzer, "takes_foot_points", False):
        _, joints, conf = rec.skeleton()
    else:
        joints, conf = rec.joints, rec.confidence
    out = replay(analyzer, rec.t_us, joints, conf)
    det = [(e.side, e.kind, e.event_us) for e in out if isinstance(e, GaitEvent)]
    # A simulated sensor (NoisyReplay) keeps only the frames it saw: a walker beyond its range
    # or out of its view makes none. Events it never saw around (like those within ``edge_s``
    # of the recording's ends) are nobody's to find: they are skipped and said so.
    seen = getattr(analyzer, "seen_t_us", None)

    def in_view(t: int) -> bool:
        if seen is None:
            return True
        i = int(np.searchsorted(seen, t))
        return 0 < i < len(seen) and seen[i - 1] >= t - edge and seen[i] <= t + edge

    events = [e for e in truth.events if e.observed]
    for e in truth.events:
        if not e.observed:
            res.skipped_events.append(f"{e.side} {e.kind} {e.t_us / 1e6:.3f} s: record boundary "
                                      "(observed_in_record=False)")
    contacts, why_not = full_contacts(truth.contacts)
    res.skipped_events.extend(why_not)
    why = None
    if events and truth.dataset == "c3d_gait_lab":
        why = lab_marks_inconsistent(events) or lab_marks_disagree(events, contacts, tol)
    if why:
        res.skipped_events.append(f"all {len(events)} lab-marked events: {why}")
        events = []
    counted = []
    for e in events:
        unseen = joints_unseen(rec, e)
        if not lo <= e.t_us <= hi:
            res.skipped_events.append(f"{e.side} {e.kind} {e.t_us / 1e6:.3f} s: within "
                                      f"{edge_s} s of the recording's start or end")
        elif unseen:
            res.skipped_events.append(f"{e.side} {e.kind} {e.t_us / 1e6:.3f} s: the recording "
                                      f"has no {unseen} at that time (markers missing)")
        elif not in_view(e.t_us):
            res.skipped_events.append(f"{e.side} {e.kind} {e.t_us / 1e6:.3f} s: outside the "
                                      f"simulated sensor's view (no frame within {edge_s} s)")
        else:
            counted.append(e)
    if counted:
        res.truth_kind = "lab" if truth.dataset == "c3d_gait_lab" else "grf"
        tr = [(e.side, e.kind, e.t_us) for e in counted]
        res.matches, used = match_events(tr, det, tol)
        if res.truth_kind == "grf":
            span = {(sd, k): (lo, hi) for sd in ("left", "right") for k in KINDS}
        else:  # a lab marks some strides: each side and kind from its first to its last mark
            span = {}
            for sd in ("left", "right"):
                for k in KINDS:
                    ts = [e.t_us for e in counted if e.side == sd and e.kind == k]
                    if ts:
                        span[(sd, k)] = (max(lo, min(ts) - tol), min(hi, max(ts) + tol))
        in_span = [j for j, (sd, k, t) in enumerate(det)
                   if (sd, k) in span and span[(sd, k)][0] <= t <= span[(sd, k)][1]]
        res.detections_in_span = len(in_span)
        res.false_positives = [det[j] for j in in_span if j not in used]
    else:
        res.truth_kind = "none"
    plates = []
    for c in contacts:
        for kind, t in (("foot_strike", c.on_us), ("foot_off", c.off_us)):
            if lo <= t <= hi and in_view(t):
                plates.append(("any", kind, t))
    if plates:
        res.plate_matches, _ = match_events(plates, det, tol, side_aware=False)
    cycles = [c for c in out if isinstance(c, GaitCycle)]
    strikes = [(e.side, e.t_us) for e in counted if e.kind == "foot_strike"]
    res.steps, res.speeds = heel_truth(rec, strikes, cycles, tol)
    if truth.angles is not None and hasattr(analyzer, "joint_angles"):
        t_a, ours = analyzer.joint_angles()
        res.angles = angle_errors(t_a, ours, truth.angles, (lo, hi))
    return res


# --------------------------------------------------------------------------- datasets


def dataset_dirs(root: Path) -> list[Path]:
    """``root`` if it is a dataset folder (``trials/`` or ``ground_truth/`` inside), else the
    dataset folders directly under it, so that ../shared/data evaluates every folder with
    event truth (folders without any, such as the Kinect v1 walks, are not datasets here)."""
    def is_dataset(d: Path) -> bool:
        return (d / "trials").is_dir() or (d / "ground_truth").is_dir()

    if is_dataset(root):
        return [root]
    return sorted(d for d in root.iterdir() if d.is_dir() and is_dataset(d)) \
        if root.is_dir() else []


def trial_files(root: Path) -> list[Path]:
    """The recordings of a dataset folder (see the module docstring for the layouts)."""
    if (root / "trials").is_dir():
        return sorted(p for p in (root / "trials").iterdir() if p.suffix.lower() == ".c3d")
    return sorted(p for p in root.rglob("*.trc") if "ground_truth" not in p.parts)


def _stats(errors: list[float]) -> dict[str, float | int | None]:
    a = np.abs(np.array(errors, dtype=float))
    if len(a) == 0:
        return {"n": 0, "median_abs_ms": None, "p90_abs_ms": None, "mean_ms": None}
    return {"n": int(len(a)), "median_abs_ms": float(np.median(a)),
            "p90_abs_ms": float(np.percentile(a, 90)), "mean_ms": float(np.mean(errors))}


def summarize(results: list[TrialResult]) -> dict[str, Any]:
    """Pooled timing errors, recall and precision of the counted events; plate check; angles."""
    ms = [m for r in results for m in r.matches]
    n_det = sum(r.detections_in_span for r in results)
    n_fp = sum(len(r.false_positives) for r in results)
    out: dict[str, Any] = {
        "trials": len(results),
        "trials_evaluated": sum(1 for r in results if r.matches),
        "events": len(ms),
        "recall": sum(m.detected_us is not None for m in ms) / len(ms) if ms else None,
        "precision": (n_det - n_fp) / n_det if n_det else None,
    }
    for kind in KINDS:
        out[kind] = _stats([m.error_ms for m in ms if m.kind == kind and m.error_ms is not None])
        k_ms = [m for m in ms if m.kind == kind]
        out[kind]["recall"] = (sum(m.detected_us is not None for m in k_ms) / len(k_ms)
                               if k_ms else None)
    pm = [m for r in results for m in r.plate_matches]
    out["plates"] = {"contacts_events": len(pm),
                     "recall": sum(m.detected_us is not None for m in pm) / len(pm) if pm else None}
    for kind in KINDS:
        out["plates"][kind] = _stats([m.error_ms for m in pm
                                      if m.kind == kind and m.error_ms is not None])
    angles: dict[str, Any] = {}
    for name in ("knee_flexion", "hip_flexion"):
        rms = [v["rms_deg"] for r in results for k, v in r.angles.items() if k.startswith(name)]
        if rms:
            angles[name] = {"series": len(rms), "median_rms_deg": float(np.median(rms)),
                            "max_rms_deg": float(np.max(rms)), "mean_rms_deg": float(np.mean(rms))}
    out["angles"] = angles
    for key, pairs in (("step_length_m", [p for r in results for p in r.steps]),
                       ("speed_mps", [p for r in results for p in r.speeds])):
        d = np.array([a - b for a, b in pairs])
        out[key] = {"n": len(d), "bias": float(d.mean()) if len(d) else None,
                    "median_abs": float(np.median(np.abs(d))) if len(d) else None}
    return out


def evaluate(dirs: list[Path], model: str = "classical", tolerance_ms: float = 100.0,
             edge_s: float = 0.3, progress: Callable[[str], None] | None = None,
             noise: str = "none") -> dict[str, Any]:
    from inference.data.groundtruth import truth_trials

    factory = with_noise(analyzer_factory(model), noise)
    factory("check", 0)  # a model that cannot load fails here, once, with its own message
    per_dataset: dict[str, list[TrialResult]] = {}
    unmatched: dict[str, list[str]] = {}  # truth that no recording of its folder took
    for root in [d for given in dirs for d in (dataset_dirs(given) or [given])]:
        files = trial_files(root)
        if not files:
            raise FileNotFoundError(f"{root}: no trials/*.c3d and no *.trc recordings")
        rs = per_dataset.setdefault(root.name, [])
        for i, p in enumerate(files):
            if progress:
                progress(f"[{root.name} {i + 1}/{len(files)}] {p.name}")
            rs.append(evaluate_trial(p, factory, tolerance_ms, edge_s))
        left = sorted(truth_trials(root) - {r.trial for r in rs}
                      - {r.trial.rsplit("/", 1)[-1] for r in rs})
        if left:
            unmatched[root.name] = left
    everything = [r for rs in per_dataset.values() for r in rs]
    return {
        "model": model, "noise": noise, "tolerance_ms": tolerance_ms, "edge_s": edge_s,
        "overall": summarize(everything),
        "datasets": {k: summarize(v) for k, v in per_dataset.items()},
        "trials": [r.row() for r in everything],
        "skipped_trials": {r.trial: r.skipped for r in everything if r.skipped},
        "truth_without_recording": unmatched,
    }


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="dataset folder(s)")
    p.add_argument("--model", default="classical",
                   help="classical (default), gait-transformer, or package.module:factory")
    p.add_argument("--noise", choices=NOISES, default="none",
                   help="see each trial through a simulated sensor: kinect (the Azure Kinect "
                        "model of the simulator, seeded per trial); default none")
    p.add_argument("--peer", choices=("intellevent",), default=None,
                   help="also run this published detector on the same trials and print it "
                        "beside the model (needs the extra: pip install \"gaitstream[peers]\")")
    p.add_argument("--tolerance-ms", type=float, default=100.0, help="match window (100 ms)")
    p.add_argument("--edge-s", type=float, default=0.3,
                   help="count only events at least this far inside the recording (0.3 s)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _fmt(v: Any, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def print_report(rep: dict[str, Any]) -> None:
    noise = "" if rep["noise"] == "none" else f" through simulated {rep['noise']} noise"
    print(f"model: {rep['model']}{noise}  (match within {rep['tolerance_ms']:.0f} ms, events >= "
          f"{rep['edge_s']} s inside the recording)")
    print(f"{'trial':44s} {'Hz':>5s} {'truth':>5s} {'ev':>3s} {'hit':>3s} {'FP':>3s} "
          f"{'FS|ms|':>6s} {'FO|ms|':>6s} {'knee RMS L/R':>13s}")
    for r in rep["trials"]:
        if r["skipped"]:
            print(f"{r['trial'][:44]:44s} skipped: {r['skipped']}")
            continue
        knee = "/".join(_fmt(r["angles"].get(f"knee_flexion_{s}", {}).get("rms_deg"), ".1f")
                        for s in ("left", "right"))
        print(f"{r['trial'][:44]:44s} {r['rate_hz']:5.0f} {r['truth']:>5s} {r['events']:3d} "
              f"{r['matched']:3d} {r['false_positives']:3d} {_fmt(r['fs_median_abs_ms']):>6s} "
              f"{_fmt(r['fo_median_abs_ms']):>6s} {knee:>13s}")
    for name, s in [("ALL", rep["overall"]), *rep["datasets"].items()]:
        fs, fo = s["foot_strike"], s["foot_off"]
        print(f"\n{name}: {s['events']} events in {s['trials_evaluated']} trials  "
              f"recall {_fmt(s['recall'], '.3f')}  precision {_fmt(s['precision'], '.3f')}")
        for label, k in (("foot strike:", fs), ("foot off:   ", fo)):
            print(f"  {label} median |err| {_fmt(k['median_abs_ms'], '.1f')} ms, p90 "
                  f"{_fmt(k['p90_abs_ms'], '.1f')} ms, mean {_fmt(k['mean_ms'], '+.1f')} ms "
                  f"(n={k['n']})")
        pl = s["plates"]
        if pl["contacts_events"]:
            print(f"  force plates (side-agnostic): recall {_fmt(pl['recall'], '.3f')}, strike "
                  f"median |err| {_fmt(pl['foot_strike']['median_abs_ms'], '.1f')} ms, off "
                  f"{_fmt(pl['foot_off']['median_abs_ms'], '.1f')} ms")
        st, sp = s["step_length_m"], s["speed_mps"]
        if st["n"]:
            print(f"  step length vs heel markers: bias {100 * st['bias']:+.1f} cm, median "
                  f"|err| {100 * st['median_abs']:.1f} cm (n={st['n']}); speed bias "
                  f"{_fmt(sp['bias'], '+.3f')} m/s (n={sp['n']})")
        for a, v in s["angles"].items():
            print(f"  {a}: RMS after offset removal median {v['median_rms_deg']:.1f} deg, max "
                  f"{v['max_rms_deg']:.1f} deg over {v['series']} series")
    skipped = [(r["trial"], e) for r in rep["trials"] for e in r["skipped_events"]]
    if skipped:
        print("\nskipped events:")
        for t, e in skipped:
            print(f"  {t}: {e}")
    for ds, trials in rep["truth_without_recording"].items():
        print(f"\n{ds}: ground truth for {len(trials)} trial(s) that no recording in the folder "
              f"matched (by name, with or without a _markers-style suffix): {', '.join(trials)}")


def print_side_by_side(rep: dict[str, Any], peer: dict[str, Any]) -> None:
    """Both analyses' figures per dataset and overall, on the same trials and matching."""
    print(f"\n{rep['model']} vs {peer['model']} (same trials, noise {rep['noise']}, same matching)")
    print(f"{'':28s} {'recall':>13s} {'precision':>13s} {'FS med|p90 ms':>17s} "
          f"{'FO med|p90 ms':>17s} {'plates FS|FO ms':>17s}")
    for name in ["ALL", *rep["datasets"]]:
        pair = [(r["overall"] if name == "ALL" else r["datasets"].get(name)) for r in (rep, peer)]
        if any(x is None for x in pair):
            continue

        def cell(key: str, pair: list = pair) -> str:
            return " / ".join(_fmt(x[key], ".3f") for x in pair)

        def timing(kind: str, pair: list = pair) -> str:
            return " / ".join(f"{_fmt(x[kind]['median_abs_ms'], '.0f')}|"
                              f"{_fmt(x[kind]['p90_abs_ms'], '.0f')}" for x in pair)

        plates = " / ".join(f"{_fmt(x['plates']['foot_strike']['median_abs_ms'], '.0f')}|"
                            f"{_fmt(x['plates']['foot_off']['median_abs_ms'], '.0f')}"
                            for x in pair)
        print(f"{name[:28]:28s} {cell('recall'):>13s} {cell('precision'):>13s} "
              f"{timing('foot_strike'):>17s} {timing('foot_off'):>17s} {plates:>17s}")


def main(args: argparse.Namespace) -> int:
    try:
        if args.peer is not None:  # a missing extra is said before minutes of our own run
            from inference.eval.peers import check_available

            check_available()
        rep = evaluate(list(args.dirs), args.model, args.tolerance_ms, args.edge_s,
                       progress=lambda s: log.info("%s", s), noise=args.noise)
        peer = None if args.peer is None else evaluate(
            list(args.dirs), f"peer:{args.peer}", args.tolerance_ms, args.edge_s,
            progress=lambda s: log.info("%s (peer)", s), noise=args.noise)
    except (ValueError, FileNotFoundError, ImportError, AttributeError) as e:
        print(f"error: {e}")
        return 2
    print_report(rep)
    if peer is not None:
        print_side_by_side(rep, peer)
        rep["peer"] = peer
    if args.json:
        print(json.dumps(rep, default=float))
    return 0
