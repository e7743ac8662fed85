"""Evaluate the diffusion anomaly scorer against labels: the simulator's severity grades and the
altered gaits of the real recordings.

- simulator: Spearman correlation of the per-cycle score with the severity grade (0-3) of each
  gait pattern, on walks of seeds the model was not trained on (goal >= 0.7), overall and per
  pattern;
- opencap: the instructed toe-in, toe-out and trunk-sway walks must score above the same
  person's normal walks;
- Kinect v1: the high-heels and the backpack walker must score above the normal-shoe walkers on
  average (walkers held out of training are reported apart from those trained on);
- crouch: a skeleton driven by the crouch joint-angle curve must score above one driven by the
  normal curve (opensim reference_curves).

A recording is cut into gait cycles by the classical analysis (the cycles the worker would
score); recordings about one cycle long (opencap, the curves) are scored whole, and recordings
where the analysis finds no plausible cycle are cut into stride-long windows (reported).
``--k-curve`` also measures the rank correlation of the K-step score with the 900-step score
as K grows, on cycles of all the sets above, and plots it.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from inference.models.motion_diffusion import features as hml3d
from inference.models.motion_diffusion.scorer import (T_MAX, AnomalyScorer, column_errors,
                                                      load_scorer, ratio_scores, step_noise,
                                                      timesteps)
from inference.data.diffusion import (DEFAULT_DATA_DIR, EVAL_SEED0, KINECT, KINECT_ALTERED,
                                      KINECT_HELD_OUT_NORMAL, KINECT_TRAIN_PERSONS, OPENCAP,
                                      OPENCAP_ALTERED, OPENCAP_HELD_OUT_NORMAL,
                                      OPENCAP_TRAIN_NORMAL, Walk, load_walk)
from inference.models.motion_diffusion.config import CONFIG_PATH, load_config

log = logging.getLogger(__name__)

CYCLE_S = (0.7, 1.8)  # plausible stride durations
BAD_FLAGS = {"implausible_timing", "missing_events"}
WINDOW_S = 1.1


@dataclass
class Scored:
    name: str
    label: str
    cycles: list[dict[str, float]] = field(default_factory=list)
    segmentation: str = ""
    clips: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (x0, columns)

    @property
    def score(self) -> float:
        return self.value("subject")

    def value(self, key: str) -> float:
        return float(np.mean([c[key] for c in self.cycles]))


def frame_times(w: Walk) -> np.ndarray:
    """Timestamps (us) of a walk's frames (20 fps from 0)."""
    return np.round(np.arange(w.n_frames) * 1e6 / hml3d.FPS).astype(np.int64)


def walk_segments(w: Walk) -> tuple[list[tuple[int, int]], str]:
    """Frame ranges [a, b] (20 fps) of the cycles to score, and how they were found."""
    dur = (w.n_frames - 1) / hml3d.FPS
    if dur <= CYCLE_S[1]:
        return [(0, w.n_frames - 1)], "whole"
    from inference.analysis.analyzer import OnlineGaitAnalyzer
    from streams.schema import GaitCycle

    t_us = frame_times(w)
    a = OnlineGaitAnalyzer("eval", 0)
    msgs = []
    for i in range(w.n_frames):
        msgs += a.push(int(t_us[i]), w.joints[i], w.confidence[i])
    msgs += a.flush()
    segs = []
    for m in msgs:
        if isinstance(m, GaitCycle) and not BAD_FLAGS & set(m.flags):
            if CYCLE_S[0] <= (m.end_us - m.start_us) / 1e6 <= CYCLE_S[1]:
                segs.append((int(np.searchsorted(t_us, m.start_us)),
                             int(np.searchsorted(t_us, m.end_us, side="right")) - 1))
    if segs:
        return segs, "cycles"
    n, hop = int(round(WINDOW_S * hml3d.FPS)), int(round(WINDOW_S * hml3d.FPS / 2))
    return [(a, a + n) for a in range(0, w.n_frames - n, hop)], "windows"


def score_walk(scorer: AnomalyScorer, w: Walk, keep_clips: bool = False) -> Scored:
    segs, how = (w.cycles, "given strides") if w.cycles is not None else walk_segments(w)
    out = Scored(w.name, w.label, segmentation=how)
    t_us = frame_times(w)
    for a, b in segs:
        x0, cols = scorer.clip(t_us[a:b + 1], w.joints[a:b + 1], w.confidence[a:b + 1])
        ep, ee = column_errors(scorer.denoise, x0, scorer.steps, scorer.noise, scorer.prompt)
        out.cycles.append(ratio_scores(ep, ee, cols))
        if keep_clips:
            out.clips.append((x0, cols))
    return out


# --------------------------------------------------------------------------- real data


def eval_opencap(scorer: AnomalyScorer, data_dir: Path, keep: bool) -> tuple[dict, list]:
    d = data_dir / OPENCAP
    rows = []
    for rel, label in ([(r, "normal (trained on)") for r in OPENCAP_TRAIN_NORMAL if "expert1" in r]
                       + [(r, "normal (held out)") for r in OPENCAP_HELD_OUT_NORMAL]
                       + sorted(OPENCAP_ALTERED.items())):
        rows.append(score_walk(scorer, load_walk(d / rel, "opencap", label, Path(rel).stem),
                               keep))
    return summarize_opencap(rows, "subject"), rows


def summarize_opencap(rows: list[Scored], key: str) -> dict:
    normal = [r for r in rows if r.label.startswith("normal")]
    altered = [r for r in rows if not r.label.startswith("normal")]
    held = [r for r in normal if "held out" in r.label]
    return {
        "trials": {r.name: {"label": r.label, "score": r.value(key),
                            "segmentation": r.segmentation} for r in rows},
        "altered_above_every_normal": sum(a.value(key) > max(n.value(key) for n in normal)
                                          for a in altered),
        "altered_above_held_out_normal": sum(a.value(key) > max(n.value(key) for n in held)
                                             for a in altered),
        "n_altered": len(altered),
    }


def eval_kinect(scorer: AnomalyScorer, data_dir: Path, keep: bool) -> tuple[dict, list]:
    d = data_dir / KINECT / "walks"
    groups = {p: "normal (trained on)" for p in KINECT_TRAIN_PERSONS}
    groups.update({p: "normal (held out)" for p in KINECT_HELD_OUT_NORMAL})
    groups.update(KINECT_ALTERED)
    rows = []
    for person, label in groups.items():
        rows += [score_walk(scorer, load_walk(p, "kinect", label, f"{person}/{p.name}"), keep)
                 for p in sorted((d / person).glob("*.txt"))]
    return summarize_kinect(rows, "subject"), rows


def summarize_kinect(rows: list[Scored], key: str) -> dict:
    per_person = {}
    for person in dict.fromkeys(r.name.split("/")[0] for r in rows):
        walks = [r for r in rows if r.name.split("/")[0] == person]
        per_person[person] = {"label": walks[0].label,
                              "score": float(np.mean([c[key] for w in walks
                                                      for c in w.cycles])),
                              "cycles": sum(len(w.cycles) for w in walks),
                              "segmentation": sorted({w.segmentation for w in walks})}
    normal_all = [v["score"] for v in per_person.values() if v["label"].startswith("normal")]
    normal_held = [v["score"] for v in per_person.values() if "held out" in v["label"]]
    res = {"persons": per_person, "normal_mean": float(np.mean(normal_all)),
           "normal_held_out_mean": float(np.mean(normal_held))}
    for person, label in KINECT_ALTERED.items():
        s = per_person[person]["score"]
        res[label] = {"score": s, "above_normal_mean": bool(s > res["normal_mean"]),
                      "above_held_out_normal_mean": bool(s > res["normal_held_out_mean"])}
    return res


# --------------------------------------------------------------------------- K curve

K_VALUES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 100, 150, 300, 900)


def per_step_errors(scorer: AnomalyScorer, x0: np.ndarray, steps: np.ndarray,
                    chunk: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Errors (len(steps), 263) under both prompts, with the scorer's noise for each step."""
    noise = step_noise(steps, len(x0), scorer.seed)
    parts = [column_errors(scorer.denoise, x0, steps[i:i + chunk], noise[i:i + chunk],
                           scorer.prompt)
             for i in range(0, len(steps), chunk)]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def k_curve(scorer: AnomalyScorer, clips: list[tuple[np.ndarray, np.ndarray | None]],
            ks: tuple[int, ...] = K_VALUES, threshold: float = 0.95) -> dict:
    """Spearman correlation over clips of the K-step subject score with the 900-step one.

    The K steps are a subset of the 900 (see anomaly.timesteps) and use the same noise, so
    each K-step score here is exactly what the scorer with that K returns."""
    all_steps = timesteps(T_MAX)
    scores = {k: [] for k in ks}
    t0 = time.monotonic()
    for i, (x0, cols) in enumerate(clips):
        ep, ee = per_step_errors(scorer, x0, all_steps)
        for k in ks:
            idx = timesteps(k)
            scores[k].append(ratio_scores(ep[idx], ee[idx], cols)["subject"])
        if (i + 1) % 10 == 0:
            log.info("K curve: %d/%d clips (%.0f s)", i + 1, len(clips), time.monotonic() - t0)
    ref = np.array(scores[T_MAX])
    rho = {k: float(spearmanr(np.array(scores[k]), ref)[0]) for k in ks}
    return {"k": list(ks), "spearman_vs_900": [rho[k] for k in ks], "threshold": threshold,
            "smallest_k_reaching_threshold": smallest_k_staying_above(rho, threshold),
            "n_clips": len(clips)}


def smallest_k_staying_above(rho: dict[int, float], threshold: float) -> int:
    """The smallest K from which every larger K measured reaches the threshold: the curve is
    not monotonic over 120 cycles (a K of 24 can reach it and 32 fall back below), and a K
    that reached it by chance is not a choice."""
    ks = sorted(rho)
    for i, k in enumerate(ks):
        if all(rho[j] >= threshold for j in ks[i:]):
            return k
    return ks[-1]


def plot_k_curve(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.semilogx(curve["k"], curve["spearman_vs_900"], "o-")
    ax.axhline(curve["threshold"], color="grey", ls="--", lw=1,
               label=f"threshold {curve['threshold']}")
    ax.axvline(curve["smallest_k_reaching_threshold"], color="C3", ls=":", lw=1,
               label=f"smallest K from which it stays above: "
                     f"{curve['smallest_k_reaching_threshold']}")
    ax.set_xlabel("K (diffusion steps averaged, evenly spread over [0, 900))")
    ax.set_ylabel("Spearman rho with the 900-step score")
    ax.set_title(f"K-step vs 900-step anomaly score ({curve['n_clips']} cycles)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- simulator


def inner_cycles(w: Walk, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` true strides away from the start and the end of the walk, spread over it."""
    cyc = w.cycles or []
    inner = cyc[2:-2] if len(cyc) > 4 else cyc
    if not inner:
        return []
    return [inner[i] for i in np.unique(np.linspace(0, len(inner) - 1, n).round().astype(int))]


@dataclass
class DeviationReference:
    """A plain distance of a cycle from normal walking, as a yardstick for the diffusion score:
    the cycle's normalised features averaged over its frames, as z-scores against the same
    averages over normal cycles of the simulator's training seeds, squared and averaged over
    the 263 features. It has no model and knows no pattern; what it reaches on the severity
    grades says how far any per-cycle deviation score can go on this evaluation."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, scorer: AnomalyScorer, walkers: int = 8, cycles_per_walk: int = 6
            ) -> "DeviationReference":
        from inference.data.diffusion import sim_walks

        avgs = []
        for w in sim_walks(walkers, 0):  # training seeds: never the evaluation's
            t_us = frame_times(w)
            for a, b in inner_cycles(w, cycles_per_walk):
                avgs.append(scorer.clip(t_us[a:b + 1], w.joints[a:b + 1])[0].mean(axis=0))
        avgs = np.array(avgs)
        return cls(avgs.mean(axis=0), avgs.std(axis=0) + 1e-3)

    def score(self, x0: np.ndarray) -> float:
        return float(np.mean(((np.asarray(x0).mean(axis=0) - self.mean) / self.std) ** 2))


def eval_simulator(scorer: AnomalyScorer, walkers: int, cycles_per_walk: int, keep: bool,
                   keys: tuple[str, ...] = ("subject",), seen: tuple[str, ...] = ()
                   ) -> tuple[dict[str, dict], list]:
    """Spearman of the per-cycle score with the severity grade, on seeds never trained on,
    beside that of a model-free deviation yardstick (:class:`DeviationReference`); one result
    per score key of the cycles' anomaly dicts. ``seen``: the patterns the unconditional model
    was trained on (as unlabelled other motion), reported apart from those never seen."""
    from capture.sim.patterns import PATTERNS

    from inference.data.diffusion import sim_walks

    reference = DeviationReference.fit(scorer)
    ref_scores: list[float] = []
    rows: list[Scored] = []
    seed = EVAL_SEED0
    plan = [("normal", 0)] + [(p, s) for p in PATTERNS if p != "normal" for s in (1, 2, 3)]
    t0 = time.monotonic()
    for pattern, severity in plan:
        for w in sim_walks(walkers, seed, pattern, severity):
            pick = inner_cycles(w, cycles_per_walk)
            r = score_walk(scorer, Walk(w.name, w.group, w.joints, w.confidence, w.label, pick),
                           keep_clips=True)
            ref_scores += [reference.score(x0) for x0, _ in r.clips]
            if not keep:
                r.clips = []
            rows.append(r)
        seed += walkers
        log.info("simulator: %s severity %d done (%.0f s)", pattern, severity,
                 time.monotonic() - t0)
    return {key: summarize_simulator(rows, np.array(ref_scores), key, seen)
            for key in keys}, rows


def _grade(label: str) -> tuple[str, int]:
    """(pattern, severity) of a simulated walk's label ("normal" or "pattern/severity")."""
    if label == "normal":
        return "normal", 0
    pattern, severity = label.split("/")
    return pattern, int(severity)


def summarize_simulator(rows: list[Scored], ref: np.ndarray, key: str,
                        seen: tuple[str, ...] = ()) -> dict:
    """Pooled and per-pattern Spearman of one score with the grades, per cycle and per walker
    (the mean over the walker's cycles), and the yardstick's on the same cycles; pooled again
    over the patterns the model never saw (with the normal walks) when it saw some."""
    scores = np.array([c[key] for r in rows for c in r.cycles])
    grades_a = np.array([_grade(r.label)[1] for r in rows for _ in r.cycles])
    patterns_a = np.array([_grade(r.label)[0] for r in rows for _ in r.cycles])
    walker_scores = np.array([r.value(key) for r in rows if r.cycles])
    walker_grades = np.array([_grade(r.label)[1] for r in rows if r.cycles])
    res: dict = {"n_cycles": int(len(scores)), "walkers_per_grade": len(
                     [r for r in rows if r.label == "normal"]),
                 "first_seed": EVAL_SEED0, "spearman": float(spearmanr(scores, grades_a)[0]),
                 "spearman_per_walker": float(spearmanr(walker_scores, walker_grades)[0])}
    per = {}
    for p in dict.fromkeys(patterns_a):
        if p == "normal":
            continue
        sel = (patterns_a == p) | (grades_a == 0)
        per[p] = {"spearman": float(spearmanr(scores[sel], grades_a[sel])[0]),
                  "mean_by_grade": [float(scores[(grades_a == g) & sel].mean())
                                    for g in range(4)]}
    res["per_pattern"] = per
    res["patterns_reaching_goal"] = sum(v["spearman"] >= 0.7 for v in per.values())
    res["reference"] = {
        "what": "model-free deviation from normal cycles (DeviationReference)",
        "spearman": float(spearmanr(ref, grades_a)[0]),
        "per_pattern": {p: float(spearmanr(ref[(patterns_a == p) | (grades_a == 0)],
                                           grades_a[(patterns_a == p) | (grades_a == 0)])[0])
                        for p in per},
    }
    if seen:
        for p in per:
            per[p]["unconditional_trained_on"] = p in seen
        unseen = ~np.isin(patterns_a, list(seen))
        res["unseen_patterns"] = [p for p in per if p not in seen]
        res["spearman_unseen_patterns"] = float(spearmanr(scores[unseen], grades_a[unseen])[0])
        res["reference"]["spearman_unseen_patterns"] = float(spearmanr(ref[unseen],
                                                                       grades_a[unseen])[0])
    res["mean_by_grade"] = [float(scores[grades_a == g].mean()) for g in range(4)]
    res["goal"] = 0.7
    res["goal_met"] = bool(res["spearman"] >= 0.7)
    res["_points"] = (scores.tolist(), grades_a.tolist(), patterns_a.tolist())
    return res


# --------------------------------------------------------------------------- crouch curve


def eval_crouch(scorer: AnomalyScorer, data_dir: Path, keep: bool) -> tuple[dict, list]:
    """The normal and the crouch joint-angle cycles driving the same skeleton: the middle of
    three repeated cycles is scored."""
    from inference.data.angle_curves import curve_walk
    from inference.data.groundtruth import mot_columns

    d = data_dir / "opensim_walking_trc_grf" / "reference_curves"
    rows = []
    for name, label in (("normal_gait", "normal"), ("crouch_gait", "crouch")):
        t_us, joints, period = curve_walk(mot_columns(d / f"{name}.mot"))
        w = walk_from_arrays_cycle(name, t_us, joints, period, label)
        rows.append(score_walk(scorer, w, keep))
    return summarize_crouch(rows, "subject"), rows


def summarize_crouch(rows: list[Scored], key: str) -> dict:
    res = {r.label: r.value(key) for r in rows}
    res["crouch_above_normal"] = bool(res["crouch"] > res["normal"])
    return res


def walk_from_arrays_cycle(name: str, t_us: np.ndarray, joints: np.ndarray, period: float,
                           label: str) -> Walk:
    from inference.data.diffusion import walk_from_arrays

    w = walk_from_arrays(name, "curves", t_us, joints, np.ones(joints.shape[:2]), label)
    a = int(round(period * hml3d.FPS))
    w.cycles = [(a, min(2 * a, w.n_frames - 1))]
    return w


# --------------------------------------------------------------------------- report


def plot_results(res: dict, path: Path, what: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    sim = res.get("simulator", {})
    if "_points" in sim:
        scores, grades, patterns = (np.array(v) for v in sim["_points"])
        names = sorted(set(patterns) - {"normal"})
        for i, p in enumerate(names):
            sel = (patterns == p) | (grades == 0)
            means = [scores[sel & (grades == g)].mean() for g in range(4)]
            ax.plot(range(4), means, "o-", color=plt.cm.tab10(i % 10), label=p, lw=1)
        ax.set_xticks(range(4))
        ax.set_xlabel("simulator severity grade")
        ax.set_ylabel("score (mean per grade)")
        ax.set_title(f"simulator: Spearman {sim['spearman']:.2f} ({sim['n_cycles']} cycles)")
        ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    ax = axes[1]
    trials = res.get("opencap", {}).get("trials", {})
    names = list(trials)
    colors = ["C0" if trials[n]["label"].startswith("normal") else "C3" for n in names]
    ax.bar(range(len(names)), [trials[n]["score"] for n in names], color=colors)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_title("opencap subject: normal (blue) vs instructed")
    lo = min([trials[n]["score"] for n in names], default=1.0)
    ax.set_ylim(lo * 0.98, None)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[2]
    persons = res.get("kinect", {}).get("persons", {})
    names = list(persons)
    cmap = {"high_heels": "C3", "backpack": "C1"}
    ax.bar(range(len(names)), [persons[n]["score"] for n in names],
           color=[cmap.get(persons[n]["label"], "C0" if "trained" in persons[n]["label"]
                           else "C2") for n in names])
    crouch = res.get("crouch", {})
    if "crouch" in crouch:
        ax.bar([len(names) + 0.5, len(names) + 1.5], [crouch["normal"], crouch["crouch"]],
               color=["C0", "C3"])
        names = names + ["curve:normal", "curve:crouch"]
        ax.set_xticks(list(range(len(persons))) + [len(persons) + 0.5, len(persons) + 1.5])
    else:
        ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    lo = min([persons[n]["score"] for n in persons], default=1.0)
    ax.set_ylim(lo * 0.98, None)
    ax.set_title("Kinect walkers (blue trained, green held out) and curves")
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(what)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# The scores every check is reported for: the method's (subject) and, beside it, the error under
# the "walking" prompt alone, the numerator of the method's ratio. Without a general motion
# corpus behind the unconditional model, the two errors rise together on an altered walk and
# the ratio cancels what the numerator sees; reporting both shows where the signal is.
SCORES = {"subject": "the method's score: 'walking' x0 error / empty-prompt x0 error",
          "prompt_error": "the 'walking' prompt's x0 error alone (not normalised)"}
SUMMARIES = (("opencap", eval_opencap, summarize_opencap),
             ("kinect", eval_kinect, summarize_kinect),
             ("crouch", eval_crouch, summarize_crouch))


def evaluate(scorer: AnomalyScorer, data_dir: Path, *, sim: bool = True, walkers: int = 3,
             cycles_per_walk: int = 4, with_k_curve: bool = False, k_clips: int = 120,
             out: Path | None = None, seen_patterns: tuple[str, ...] = ()) -> dict:
    """Every check for the method's score at the top level, and again for the other scores of
    :data:`SCORES` under their key (``res["prompt_error"]["opencap"]``...); cycles are scored
    once."""
    res: dict = {"k": scorer.k, "backend": scorer.backend_name}
    others = [k for k in SCORES if k != "subject"]
    for key in others:
        res[key] = {"what": SCORES[key]}
    all_rows: list[Scored] = []
    t0 = time.monotonic()
    if sim:
        try:
            by_key, rows = eval_simulator(scorer, walkers, cycles_per_walk, with_k_curve,
                                          keys=tuple(SCORES), seen=seen_patterns)
            res["simulator"] = by_key["subject"]
            for key in others:
                res[key]["simulator"] = by_key[key]
            all_rows += rows
        except (ImportError, NotImplementedError) as e:
            res["simulator"] = {"error": f"synthetic walker patterns unavailable: {e!r}"}
            log.warning("%s", res["simulator"]["error"])
    for name, fn, summarize in SUMMARIES:
        res[name], rows = fn(scorer, data_dir, with_k_curve)
        for key in others:
            res[key][name] = summarize(rows, key)
        all_rows += rows
        log.info("%s done (%.0f s)", name, time.monotonic() - t0)
    if with_k_curve:
        clips = [c for r in all_rows for c in r.clips]
        rng = np.random.default_rng(0)
        if len(clips) > k_clips:
            clips = [clips[i] for i in sorted(rng.choice(len(clips), k_clips, replace=False))]
        res["k_curve"] = k_curve(scorer, clips)
        if out is not None:
            plot_k_curve(res["k_curve"], out / "k_curve.png")
    res["seconds"] = round(time.monotonic() - t0, 1)
    if out is not None:
        plot_results(res, out / "eval_anomaly.png", SCORES["subject"])
        for key in others:
            plot_results(res[key], out / f"eval_anomaly_{key}.png", SCORES[key])
    for part in [res] + [res[key] for key in others]:
        part.get("simulator", {}).pop("_points", None)
    return res


def print_report(res: dict) -> None:
    print(f"diffusion anomaly scorer, K={res['k']} ({res['backend']})")
    sim = res.get("simulator", {})
    if "error" in sim:
        print(f"  simulator: {sim['error']}")
    elif sim:
        print(f"  simulator severity (seeds from {sim['first_seed']}, {sim['n_cycles']} cycles): "
              f"Spearman {sim['spearman']:.3f} (goal >= 0.7: "
              f"{'met' if sim['goal_met'] else 'NOT met'}; per walker "
              f"{sim['spearman_per_walker']:.3f}); mean by grade "
              + " ".join(f"{v:.3f}" for v in sim["mean_by_grade"]))
        ref = sim["reference"]
        if "unseen_patterns" in sim:
            print(f"  patterns the model never saw ({', '.join(sim['unseen_patterns'])}) and "
                  f"normal: Spearman {sim['spearman_unseen_patterns']:.3f} (yardstick "
                  f"{ref['spearman_unseen_patterns']:.3f})")
        print(f"  yardstick, {ref['what']}: Spearman {ref['spearman']:.3f} pooled; per pattern "
              "beside the scorer's (* = its altered walks were other motion for the "
              "unconditional model in training):")
        for p, v in sim["per_pattern"].items():
            mark = "*" if v.get("unconditional_trained_on") else " "
            print(f"   {mark}{p:<18} rho {v['spearman']:+.2f} (yardstick "
                  f"{ref['per_pattern'][p]:+.2f})  by grade "
                  + " ".join(f"{m:.3f}" for m in v["mean_by_grade"]))
    oc = res["opencap"]
    print(f"  opencap: altered above every normal walk: {oc['altered_above_every_normal']}/"
          f"{oc['n_altered']}; above the held-out normal walk: "
          f"{oc['altered_above_held_out_normal']}/{oc['n_altered']}")
    for n, v in oc["trials"].items():
        print(f"    {n:<12} {v['label']:<20} {v['score']:.4f}  ({v['segmentation']})")
    kn = res["kinect"]
    print(f"  kinect: normal-shoe mean {kn['normal_mean']:.4f} (held-out walkers "
          f"{kn['normal_held_out_mean']:.4f})")
    for label in ("high_heels", "backpack"):
        v = kn[label]
        print(f"    {label:<11} {v['score']:.4f}  above normal mean: {v['above_normal_mean']}, "
              f"above held-out normal mean: {v['above_held_out_normal_mean']}")
    for p, v in kn["persons"].items():
        print(f"    {p} {v['label']:<20} {v['score']:.4f}  {v['cycles']} cycles "
              f"({', '.join(v['segmentation'])})")
    cr = res["crouch"]
    print(f"  crouch curve {cr['crouch']:.4f} vs normal curve {cr['normal']:.4f}: crouch above "
          f"normal: {cr['crouch_above_normal']}")
    for key in SCORES:
        if key != "subject" and key in res:
            print_brief(res[key])
    if "k_curve" in res:
        kc = res["k_curve"]
        print(f"  K curve ({kc['n_clips']} cycles): Spearman with the 900-step score "
              + ", ".join(f"K={k}: {r:.3f}" for k, r in zip(kc["k"], kc["spearman_vs_900"]))
              + f"; smallest K from which it stays >= {kc['threshold']}: "
              f"{kc['smallest_k_reaching_threshold']}")


def print_brief(part: dict) -> None:
    """The checks for a score other than the method's, one line each."""
    print(f"  {part['what']}:")
    sim = part.get("simulator")
    if sim:
        unseen = (f"; unseen patterns {sim['spearman_unseen_patterns']:.3f}"
                  if "unseen_patterns" in sim else "")
        print(f"    simulator: Spearman {sim['spearman']:.3f} pooled (per walker "
              f"{sim['spearman_per_walker']:.3f}{unseen}); >= 0.7 in "
              f"{sim['patterns_reaching_goal']} "
              f"of {len(sim['per_pattern'])} patterns: "
              + ", ".join(f"{p} {v['spearman']:+.2f}" for p, v in sim["per_pattern"].items()))
    oc, kn, cr = part["opencap"], part["kinect"], part["crouch"]
    print(f"    opencap: altered above every normal walk {oc['altered_above_every_normal']}/"
          f"{oc['n_altered']}; kinect: high heels above the normal mean "
          f"{kn['high_heels']['above_normal_mean']}, backpack "
          f"{kn['backpack']['above_normal_mean']}; crouch above normal "
          f"{cr['crouch_above_normal']}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DATA_DIR,
                   help="the shared data folder (default ../shared/data)")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--k", type=int, default=None, help="diffusion steps per score "
                   "(default: the chosen K)")
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--models-dir", type=Path, default=None, help="model files to evaluate "
                   "(default: the shipped ones)")
    p.add_argument("--walkers", type=int, default=3, help="simulated walkers per pattern/grade")
    p.add_argument("--cycles", type=int, default=4, help="cycles scored per simulated walker")
    p.add_argument("--no-sim", action="store_true", help="skip the simulator severity check")
    p.add_argument("--k-curve", action="store_true",
                   help="also measure the K-step vs 900-step rank correlation (slow)")
    p.add_argument("--out", type=Path, default=Path("out/eval_anomaly"), help="plots")


def main(args: argparse.Namespace) -> int:
    from inference.models.motion_diffusion.scorer import DEFAULT_K

    if not args.dir.is_dir():
        print(f"eval anomaly: {args.dir} is not a folder")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(args.backend, k=args.k or DEFAULT_K, model_dir=args.models_dir)
    _, meta = load_config((args.models_dir or CONFIG_PATH.parent) / CONFIG_PATH.name)
    seen = tuple(meta.get("training", {}).get("broad_patterns", []))
    res = evaluate(scorer, args.dir, sim=not args.no_sim, walkers=args.walkers,
                   cycles_per_walk=args.cycles, with_k_curve=args.k_curve, out=args.out,
                   seen_patterns=seen)
    print_report(res)
    print(f"  plots: {args.out}")
    if args.json:
        print(json.dumps(res))
    return 0
