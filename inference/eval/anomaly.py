"""Evaluate the diffusion anomaly scorer against the labels of any labelled folder, and the
simulator's severity grades.

``gaitstream eval anomaly DIR``: DIR, or each folder below it, in a documented layout
(``inference.data.anomaly_sets``: trial_labels.csv, FGDI curves, Kinect v2 and v1 indexes,
OpenSim angle-curve cycles) is scored walk by walk with labels, persons, severities and camera
views read from its own files. For each set:

- the score of each group (as the data name it) against the normal walks: AUC (with a 95 %
  bootstrap interval over persons) and how many standard deviations of the normal walks the
  group's mean sits above theirs; normal walks the model was trained on are left out of the
  comparison;
- the Spearman correlation with the severity the data give (FGDI: the UPDRS-III walking item
  of the subject and medication state), with a bootstrap interval over persons;
- per person, the altered walks above that person's normal walks (trial_labels); off above on
  medication (FGDI); per camera view, the AUC of each group (Kinect v2) and the view's effect;
- a figure of the scores per group and a body map of the feature-level ratios (which joints
  deviate, by position, rotation and velocity; after Guan et al. Figure 2).

simulator: Spearman of the per-cycle score with the severity grade (0-3) of each gait pattern, on
walks of seeds the model was not trained on (goal >= 0.7 in every pattern).

A recording is cut into gait cycles by the classical analysis (the cycles the worker would
score); recordings about one cycle long are scored whole, skeletons driven by curves on their
second cycle, and recordings where the analysis finds no plausible cycle are cut into
stride-long windows (reported). ``--k-curve`` also measures the rank correlation of the K-step
score with the 900-step score as K grows, and plots it.
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
from inference.data.anomaly_sets import Item, LabelledSet, LayoutError, find_sets
from inference.data.diffusion import DEFAULT_DATA_DIR, EVAL_SEED0, Walk
from inference.models.motion_diffusion.config import CONFIG_PATH, load_config
from streams.skeletons import CANONICAL_JOINTS

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
    person: str = ""
    severity: float | None = None
    view: str = ""
    trained_on: bool = False
    normal: bool = False

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
        out.cycles.append({**ratio_scores(ep, ee, cols), **body_map_scores(ep, ee, cols)})
        if keep_clips:
            out.clips.append((x0, cols))
    return out


# Body map: the ratio over the columns of one joint and one feature kind, after Guan et al.
# Figure 2 (which joints deviate, by position, rotation, velocity).
BODY_KINDS = ("positions", "rotations", "velocities")


def body_map_scores(ep: np.ndarray, ee: np.ndarray, cols: np.ndarray | None) -> dict[str, float]:
    use = np.ones(hml3d.FEATURE_DIM, bool) if cols is None else np.asarray(cols, bool)
    out = {}
    for kind in BODY_KINDS:
        kind_cols = np.zeros(hml3d.FEATURE_DIM, bool)
        kind_cols[hml3d.GROUPS[kind]] = True
        for joint, jc in hml3d.JOINT_COLUMNS.items():
            c = jc[kind_cols[jc] & use[jc]]
            if len(c):
                out[f"body.{kind}.{joint}"] = float(np.mean(ep[:, c].mean(1)
                                                            / (ee[:, c].mean(1) + 1e-12)))
    return out


def score_item(scorer: AnomalyScorer, item: Item, notes: list[str], keep: bool = False
               ) -> Scored | None:
    """An item's walk scored, or None (with the reason in ``notes``) when it cannot be read or
    has nothing to score."""
    from capture.readers import RecordingError

    try:
        w = item.load()
        r = score_walk(scorer, w, keep)
    except (RecordingError, hml3d.FeatureError, OSError, ValueError) as e:
        notes.append(f"{item.name}: not scored: {e}")
        return None
    if not r.cycles:
        notes.append(f"{item.name}: no cycle to score")
        return None
    r.name, r.label, r.person, r.severity = item.name, item.group, item.person, item.severity
    r.view, r.trained_on, r.normal = item.view, item.trained_on, item.normal
    return r


def pick_items(items: list[Item], limit: int | None) -> list[Item]:
    """At most ``limit`` items per (group, view), spread evenly over each's list (all: None)."""
    if not limit:
        return items
    out = []
    for key in dict.fromkeys((i.group, i.view) for i in items):
        these = [i for i in items if (i.group, i.view) == key]
        idx = np.unique(np.linspace(0, len(these) - 1, min(limit, len(these))).round())
        out += [these[int(k)] for k in idx]
    return out


def eval_set(scorer: AnomalyScorer, ls: LabelledSet, limit: int | None = None,
             keep: bool = False) -> tuple[dict, list[Scored]]:
    notes = list(ls.notes)
    rows = []
    t0 = time.monotonic()
    items = pick_items(ls.items, limit)
    for n, item in enumerate(items, 1):
        r = score_item(scorer, item, notes, keep)
        if r is not None:
            rows.append(r)
        if n % 100 == 0:
            log.info("%s: %d/%d walks (%.0f s)", ls.layout, n, len(items), time.monotonic() - t0)
    res = summarize_set(rows, "subject", ls.layout)
    res.update(folder=str(ls.folder), layout=ls.layout, notes=notes,
               n_items=len(items), n_scored=len(rows))
    return res, rows


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(gt / (len(pos) * len(neg)))


def person_bootstrap(rows: list[Scored], stat, n: int = 500, seed: int = 0
                     ) -> tuple[float, float]:
    """95 % interval of ``stat(rows)`` over resamplings of the persons (with replacement):
    walks of one person are not independent."""
    persons = sorted({r.person for r in rows})
    by = {p: [r for r in rows if r.person == p] for p in persons}
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        pick = rng.choice(len(persons), len(persons))
        v = stat([r for i in pick for r in by[persons[i]]])
        if np.isfinite(v):
            vals.append(v)
    if len(vals) < n // 2:
        return float("nan"), float("nan")
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def _auc_rows(rows: list[Scored], group: str, key: str) -> float:
    return auc([r.value(key) for r in rows if r.label == group],
               [r.value(key) for r in rows if r.normal])


def _spearman(rows: list[Scored], key: str) -> float:
    pts = [(r.value(key), r.severity) for r in rows if r.severity is not None]
    if len(pts) < 3 or len({s for _, s in pts}) < 2:
        return float("nan")
    return float(spearmanr(*zip(*pts))[0])


def summarize_set(rows: list[Scored], key: str, layout: str = "") -> dict:
    """Per group: count, mean, SD; each other group against the normal walks held out of
    training: AUC (95 % CI over persons) and its mean's distance in normal SDs; Spearman with
    the severities; the layout's own checks."""
    normal_all = [r for r in rows if r.normal]
    comp = [r for r in rows if not r.trained_on]  # the trained-on normals are not a yardstick
    normal = [r for r in comp if r.normal]
    res: dict = {"key": key, "groups": {}, "vs_normal": {}}
    for g in dict.fromkeys(sorted((r.label for r in rows), key=lambda g: g)):
        v = np.array([r.value(key) for r in rows if r.label == g])
        res["groups"][g] = {"n": int(len(v)), "persons": len({r.person for r in rows
                                                              if r.label == g}),
                            "mean": float(v.mean()), "sd": float(v.std(ddof=1))
                            if len(v) > 1 else 0.0}
    res["normal_trained_on"] = sum(r.trained_on for r in normal_all)
    if not normal:
        res["error"] = "no normal walk held out of training to compare with"
        return res
    nv = np.array([r.value(key) for r in normal])
    n_mean, n_sd = float(nv.mean()), float(nv.std(ddof=1)) if len(nv) > 1 else float("nan")
    res["normal"] = {"n": int(len(nv)), "mean": n_mean, "sd": n_sd}
    for g in res["groups"]:
        if any(r.normal for r in rows if r.label == g):
            continue
        sub = [r for r in comp if r.label == g or r.normal]
        gv = np.array([r.value(key) for r in rows if r.label == g])
        res["vs_normal"][g] = {
            "auc": _auc_rows(sub, g, key),
            "auc_ci": person_bootstrap(sub, lambda rr, g=g: _auc_rows(rr, g, key)),
            "normal_sds_above": float((gv.mean() - n_mean) / n_sd) if n_sd > 0 else float("nan"),
        }
    sev = [r for r in rows if r.severity is not None]
    if sev:
        res["severity"] = {"n": len(sev), "persons": len({r.person for r in sev}),
                           "spearman": _spearman(sev, key),
                           "spearman_ci": person_bootstrap(sev, lambda rr: _spearman(rr, key))}
    if layout == "trial_labels":
        res["per_person"] = _per_person_above_normal(rows, key)
    if layout == "fgdi":
        res["states"] = _state_pairs(rows, key)
    if layout == "kinect_v2":
        res["per_view"] = _per_view(comp, key)
    return res


def _per_person_above_normal(rows: list[Scored], key: str) -> dict:
    """Each altered walk against the same person's normal walks: above all of them or not."""
    out = {"altered": 0, "above_every_normal": 0, "walks": {}}
    for r in rows:
        if r.normal:
            continue
        mine = [n.value(key) for n in rows if n.normal and n.person == r.person]
        if not mine:
            continue
        above = bool(r.value(key) > max(mine))
        out["altered"] += 1
        out["above_every_normal"] += above
        out["walks"][r.name] = {"label": r.label, "score": r.value(key),
                                "person_normal_max": max(mine), "above": above}
    return out


def _state_pairs(rows: list[Scored], key: str) -> dict:
    """People seen in two states of one group ("PD off" / "PD on", as the data name the
    sessions): in how many is the 'off' session above the 'on' one."""
    by: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        base, _, state = r.label.rpartition(" ")
        if base and state.lower() in ("off", "on"):
            by.setdefault((base, r.person), {})[state.lower()] = r.value(key)
    pairs = {p: v for (_, p), v in by.items() if len(v) == 2}
    if not pairs:
        return {}
    above = sum(v["off"] > v["on"] for v in pairs.values())
    return {"people": len(pairs), "off_above_on": int(above),
            "share": above / len(pairs),
            "scores": {p: v for p, v in sorted(pairs.items())}}


def _per_view(rows: list[Scored], key: str) -> dict:
    """Per camera view: the normal walks' mean and each group's AUC against that view's normal
    walks; the view's effect: the range of the per-view AUCs and a Kruskal-Wallis test of the
    normal walks' scores across views."""
    from scipy.stats import kruskal

    views = sorted({r.view for r in rows}, key=lambda v: (len(v), v))
    out: dict = {"views": {}}
    for v in views:
        sub = [r for r in rows if r.view == v]
        groups = sorted({r.label for r in sub if not r.normal})
        out["views"][v] = {"normal_mean": float(np.mean([r.value(key) for r in sub if r.normal]
                                                        or [np.nan])),
                           "auc": {g: _auc_rows(sub, g, key) for g in groups}}
    groups = sorted({g for v in out["views"].values() for g in v["auc"]})
    out["auc_range"] = {g: [float(np.nanmin([out["views"][v]["auc"].get(g, np.nan)
                                              for v in views])),
                            float(np.nanmax([out["views"][v]["auc"].get(g, np.nan)
                                             for v in views]))] for g in groups}
    normals = [[r.value(key) for r in rows if r.view == v and r.normal] for v in views]
    normals = [n for n in normals if len(n) > 1]
    if len(normals) > 1:
        out["normal_by_view_kruskal_p"] = float(kruskal(*normals).pvalue)
    out["views_all_aucs_at_least_0.9"] = [v for v in views
                                          if all(a >= 0.9 for a in out["views"][v]["auc"].values())]
    return out


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


# --------------------------------------------------------------------------- figures


def plot_set(res: dict, rows: list[Scored], path: Path, key: str = "subject") -> None:
    """Scores per group (normal first; the held-out normal mean +- 1 SD as a band) and, beside
    it, the score against the data's severity (FGDI) or the AUC per camera view (Kinect v2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted(res["groups"], key=lambda g: (not any(r.normal for r in rows
                                                          if r.label == g), g))
    extra = "severity" in res or "per_view" in res
    fig, axes = plt.subplots(1, 2 if extra else 1, figsize=(13 if extra else 7, 4.5),
                             squeeze=False)
    ax = axes[0, 0]
    if "normal" in res:
        m, sd = res["normal"]["mean"], res["normal"]["sd"]
        ax.axhspan(m - sd, m + sd, color="0.85", label="normal (held out) mean +- 1 SD")
    rng = np.random.default_rng(0)
    for i, g in enumerate(groups):
        these = [r for r in rows if r.label == g]
        v = [r.value(key) for r in these]
        ax.boxplot([v], positions=[i], widths=0.5, showfliers=False)
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=10,
                   c=["0.5" if r.trained_on else ("C0" if r.normal else "C3") for r in these],
                   zorder=3)
    ax.set_xticks(range(len(groups)))
    labels = [f"{g}\nAUC {res['vs_normal'][g]['auc']:.2f}" if g in res["vs_normal"] else g
              for g in groups]
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("anomaly score ('walk normal' / empty-prompt x0 error)")
    ax.set_title(f"{res['layout']}: {Path(res['folder']).name} (grey: trained on)")
    ax.grid(alpha=0.3, axis="y")
    if "normal" in res:
        ax.legend(fontsize=7, loc="upper left")
    if extra:
        ax = axes[0, 1]
        if "severity" in res:
            sev = [r for r in rows if r.severity is not None]
            for r in sev:
                state = r.label.rpartition(" ")[2].lower()
                ax.scatter(r.severity + rng.uniform(-0.08, 0.08), r.value(key),
                           marker="o" if state == "off" else "s",
                           c="C3" if state == "off" else "C0", s=25)
            s = res["severity"]
            ax.set_xlabel("severity in the data (UPDRS-III walking item)")
            ax.set_ylabel("anomaly score")
            ax.set_title(f"Spearman {s['spearman']:.2f} (95 % CI {s['spearman_ci'][0]:.2f} to "
                         f"{s['spearman_ci'][1]:.2f}); circles off, squares on medication",
                         fontsize=9)
            ax.grid(alpha=0.3)
        else:
            pv = res["per_view"]["views"]
            views = list(pv)
            gs = sorted({g for v in pv.values() for g in v["auc"]})
            mat = np.array([[pv[v]["auc"].get(g, np.nan) for v in views] for g in gs])
            im = ax.imshow(mat, vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
            for (a, b), val in np.ndenumerate(mat):
                ax.text(b, a, f"{val:.2f}", ha="center", va="center", fontsize=7,
                        color="w" if val < 0.8 else "k")
            ax.set_xticks(range(len(views)))
            ax.set_xticklabels([f"view {v}" for v in views])
            ax.set_yticks(range(len(gs)))
            ax.set_yticklabels(gs)
            fig.colorbar(im, ax=ax, label="AUC against the view's normal walks")
            ax.set_title("per camera view")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def body_map(rows: list[Scored]) -> dict[str, dict[str, dict[str, float]]]:
    """group -> kind -> joint -> mean ratio over the group's walks, divided by the same for the
    normal walks held out of training (1 = as normal)."""
    def mean(sel: list[Scored], k: str) -> float:
        v = [c[k] for r in sel for c in r.cycles if k in c]
        return float(np.mean(v)) if v else float("nan")

    normal = [r for r in rows if r.normal and not r.trained_on]
    out = {}
    for g in sorted({r.label for r in rows if not r.normal}):
        sel = [r for r in rows if r.label == g]
        out[g] = {kind: {j: mean(sel, f"body.{kind}.{j}") / mean(normal, f"body.{kind}.{j}")
                         for j in CANONICAL_JOINTS} for kind in BODY_KINDS}
    return out


def plot_body_map(bm: dict, path: Path, title: str) -> None:
    """One row per group, one column per feature kind: the canonical skeleton from the front,
    each joint coloured by its ratio against the normal walks (log scale, red = deviates)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from streams.skeletons import CANONICAL_PARENTS

    # the figure's pose: the rest skeleton seen from the front (the body's left on the
    # viewer's right), arms and feet turned outwards so that no joint hides another
    dirs = hml3d.REST_DIRECTIONS[:, :2].copy()
    for name, d in (("shoulder", (0.45, -0.9)), ("elbow", (0.45, -0.9)),
                    ("wrist", (0.45, -0.9)), ("foot", (0.6, -0.6))):
        dirs[CANONICAL_JOINTS.index(f"left_{name}")] = d
        dirs[CANONICAL_JOINTS.index(f"right_{name}")] = (-d[0], d[1])
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-9)
    pos = np.zeros((len(CANONICAL_JOINTS), 2))
    for j, p in enumerate(CANONICAL_PARENTS):
        if p >= 0:
            pos[j] = pos[p] + hml3d.TARGET_BONE_LENGTHS[j] * dirs[j]
    x, y = pos[:, 0], pos[:, 1]
    groups = list(bm)
    fig, axes = plt.subplots(len(groups), len(BODY_KINDS), figsize=(2.6 * len(BODY_KINDS) + 1.2,
                                                                    3.0 * len(groups) + 0.6),
                             squeeze=False)
    # a colour range symmetric on the log scale, as wide as the largest deviation shown
    vals = np.array([v for g in bm.values() for k in g.values() for v in k.values()], float)
    vals = vals[np.isfinite(vals) & (vals > 0)]
    m = max(1.02, float(np.max(np.maximum(vals, 1 / vals)))) if len(vals) else 2.0
    norm = LogNorm(vmin=1 / m, vmax=m)
    for gi, g in enumerate(groups):
        for ki, kind in enumerate(BODY_KINDS):
            ax = axes[gi, ki]
            for j, p in enumerate(CANONICAL_PARENTS):
                if p >= 0:
                    ax.plot([x[p], x[j]], [y[p], y[j]], color="0.6", lw=2, zorder=1)
            v = np.array([bm[g][kind].get(j, np.nan) for j in CANONICAL_JOINTS])
            ok = np.isfinite(v)
            sc = ax.scatter(x[ok], y[ok], c=v[ok], cmap="coolwarm",
                            norm=norm, s=90, edgecolors="k", zorder=2)
            ax.set_aspect("equal")
            ax.set_xlim(x.min() - 0.1, x.max() + 0.1)
            ax.axis("off")
            ax.set_title(f"{g}: {kind}", fontsize=9)
    fig.subplots_adjust(right=0.84, top=1 - 0.6 / fig.get_figheight())
    cax = fig.add_axes([0.88, 0.25, 0.025, 0.5])
    fig.colorbar(sc, cax=cax, label="feature-level ratio / the normal walks' (log)")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- run


# The scores every check is reported for: the method's (subject) and, beside it, the error under
# the prompt alone, the numerator of the method's ratio.
SCORES = {"subject": "the method's score: 'walk normal' x0 error / empty-prompt x0 error",
          "prompt_error": "the 'walk normal' prompt's x0 error alone (not normalised)"}


def evaluate(scorer: AnomalyScorer, sets: list[LabelledSet], *, sim: bool = True,
             walkers: int = 3, cycles_per_walk: int = 4, with_k_curve: bool = False,
             k_clips: int = 120, out: Path | None = None, seen_patterns: tuple[str, ...] = (),
             limit: int | None = None) -> dict:
    """Every check for the method's score; the prompt error's per-group summary beside it under
    ``res["sets"][name]["prompt_error"]``. Cycles are scored once."""
    res: dict = {"k": scorer.k, "backend": scorer.backend_name, "sets": {}}
    all_rows: list[Scored] = []
    t0 = time.monotonic()
    if sim:
        try:
            by_key, rows = eval_simulator(scorer, walkers, cycles_per_walk, with_k_curve,
                                          keys=tuple(SCORES), seen=seen_patterns)
            res["simulator"] = by_key["subject"]
            res["simulator_prompt_error"] = by_key["prompt_error"]
            all_rows += rows
        except (ImportError, NotImplementedError) as e:
            res["simulator"] = {"error": f"synthetic walker patterns unavailable: {e!r}"}
            log.warning("%s", res["simulator"]["error"])
    names: dict[str, int] = {}
    for ls in sets:
        name = ls.folder.name
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name}#{names[name]}"
        part, rows = eval_set(scorer, ls, limit, keep=with_k_curve)
        part["prompt_error"] = summarize_set(rows, "prompt_error", ls.layout)
        res["sets"][name] = part
        all_rows += rows
        if out is not None and rows:
            plot_set(part, rows, out / f"eval_anomaly_{name}.png")
            bm = body_map(rows)
            if bm:
                part["body_map_file"] = str(out / f"body_map_{name}.png")
                plot_body_map(bm, out / f"body_map_{name}.png",
                              f"{name}: where the walks deviate\n(feature-level ratio against "
                              "the normal walks'; front view, the body's left on the right)")
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
    for part in (res.get("simulator", {}), res.get("simulator_prompt_error", {})):
        part.pop("_points", None)
    return res


def _ci(v) -> str:
    return f"[{v[0]:.2f}, {v[1]:.2f}]"


def print_report(res: dict) -> None:
    print(f"diffusion anomaly scorer, K={res['k']} ({res['backend']})")
    sim = res.get("simulator", {})
    if "error" in sim:
        print(f"  simulator: {sim['error']}")
    elif sim:
        print(f"  simulator severity (seeds from {sim['first_seed']}, {sim['n_cycles']} cycles): "
              f"Spearman {sim['spearman']:.3f} pooled (per walker "
              f"{sim['spearman_per_walker']:.3f}); >= 0.7 in {sim['patterns_reaching_goal']} of "
              f"{len(sim['per_pattern'])} patterns (goal: every one); mean by grade "
              + " ".join(f"{v:.3f}" for v in sim["mean_by_grade"]))
        ref = sim["reference"]
        for p, v in sim["per_pattern"].items():
            mark = "*" if v.get("unconditional_trained_on") else " "
            print(f"   {mark}{p:<18} rho {v['spearman']:+.2f} (model-free yardstick "
                  f"{ref['per_pattern'][p]:+.2f})  by grade "
                  + " ".join(f"{m:.3f}" for m in v["mean_by_grade"]))
        print("    (* = the model was trained on this pattern's simulated walks)")
    for name, part in res["sets"].items():
        print(f"  {name} ({part['layout']}): {part['n_scored']} of {part['n_items']} walks "
              f"scored")
        if "error" in part:
            print(f"    {part['error']}")
            continue
        n = part["normal"]
        print(f"    normal walks held out of training: n={n['n']}, mean {n['mean']:.4f}, "
              f"SD {n['sd']:.4f}" + (f" ({part['normal_trained_on']} trained-on normal walks "
                                     "left out)" if part["normal_trained_on"] else ""))
        pe = part["prompt_error"]["vs_normal"]
        for g, v in part["vs_normal"].items():
            gm = part["groups"][g]
            print(f"    {g:<16} n={gm['n']:<4} mean {gm['mean']:.4f}  AUC {v['auc']:.3f} "
                  f"{_ci(v['auc_ci'])}  {v['normal_sds_above']:+.1f} normal SDs"
                  f"  (prompt error alone: AUC {pe[g]['auc']:.3f})")
        if "severity" in part:
            s = part["severity"]
            print(f"    Spearman with the data's severity ({s['n']} walks, {s['persons']} "
                  f"persons): {s['spearman']:.3f} {_ci(s['spearman_ci'])}")
        if part.get("states"):
            st = part["states"]
            print(f"    off above on: {st['off_above_on']}/{st['people']} people "
                  f"({100 * st['share']:.0f} %)")
        if "per_person" in part:
            pp = part["per_person"]
            print(f"    altered walks above every normal walk of the same person: "
                  f"{pp['above_every_normal']}/{pp['altered']}")
        if "per_view" in part:
            pv = part["per_view"]
            for v, d in pv["views"].items():
                print(f"    view {v}: normal mean {d['normal_mean']:.4f}; AUC "
                      + ", ".join(f"{g} {a:.2f}" for g, a in d["auc"].items()))
            if "normal_by_view_kruskal_p" in pv:
                print(f"    view effect on normal walks: Kruskal-Wallis p = "
                      f"{pv['normal_by_view_kruskal_p']:.3g}; views where every AUC >= 0.9: "
                      f"{pv['views_all_aucs_at_least_0.9'] or 'none'}")
        for note in part["notes"][:5]:
            print(f"    note: {note}")
        if len(part["notes"]) > 5:
            print(f"    ... {len(part['notes']) - 5} more notes")
    if "k_curve" in res:
        kc = res["k_curve"]
        print(f"  K curve ({kc['n_clips']} cycles): Spearman with the 900-step score "
              + ", ".join(f"K={k}: {r:.3f}" for k, r in zip(kc["k"], kc["spearman_vs_900"]))
              + f"; smallest K from which it stays >= {kc['threshold']}: "
              f"{kc['smallest_k_reaching_threshold']}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DATA_DIR,
                   help="a labelled folder, or a folder of them (default ../shared/data)")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--k", type=int, default=None, help="diffusion steps per score "
                   "(default: the chosen K)")
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--models-dir", type=Path, default=None, help="model files to evaluate "
                   "(default: the shipped ones)")
    p.add_argument("--walkers", type=int, default=3, help="simulated walkers per pattern/grade")
    p.add_argument("--cycles", type=int, default=4, help="cycles scored per simulated walker")
    p.add_argument("--no-sim", action="store_true", help="skip the simulator severity check")
    p.add_argument("--limit", type=int, default=None, help="at most this many walks per group "
                   "and camera view of each set (spread over its index); default all")
    p.add_argument("--k-curve", action="store_true",
                   help="also measure the K-step vs 900-step rank correlation (slow)")
    p.add_argument("--out", type=Path, default=Path("out/eval_anomaly"), help="plots")


def main(args: argparse.Namespace) -> int:
    from inference.models.motion_diffusion.scorer import DEFAULT_K

    try:
        sets = find_sets(args.dir)
    except LayoutError as e:
        print(f"eval anomaly: {e}")
        return 2
    if not sets:
        print(f"eval anomaly: {args.dir}: no folder in a labelled layout (trial_labels.csv, "
              "FGDI curves, Kinect v2 or v1 index, OpenSim angle curves) with normal and other "
              "walks")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(args.backend, k=args.k or DEFAULT_K, model_dir=args.models_dir)
    _, meta = load_config((args.models_dir or CONFIG_PATH.parent) / CONFIG_PATH.name)
    seen = tuple(meta.get("training", {}).get("broad_patterns", []))
    res = evaluate(scorer, sets, sim=not args.no_sim, walkers=args.walkers,
                   cycles_per_walk=args.cycles, with_k_curve=args.k_curve, out=args.out,
                   seen_patterns=seen, limit=args.limit)
    print_report(res)
    print(f"  plots: {args.out}")
    if args.json:
        print(json.dumps(res))
    return 0
