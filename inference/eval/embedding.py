"""``gaitstream eval embedding DIR``: what the GaitMAE embedding knows, against engineered gait
features, on the same walks and the same folds.

DIR is either a folder holding (in itself or its subfolders) walks in the Kinect v1 person-data
or the Kinect v2 index layout (``inference.data.gait_mae``; ../shared/data has one of each), or
any folder with a
``walks.csv`` (columns ``file``, ``person`` and any of ``height_m``, ``bmi``, ``age``, ``sex``
(0 F / 1 M), ``gait``; files read by ``capture.readers.load_recording``, relative to DIR).

Per walk: the embedding (mean over the walk's 2 s clips, hop 1 s) and the engineered features
(the classical analysis' per-cycle measures through the worker's code path, each as the mean and
the coefficient of variation over the walk's trusted cycles: 17 measures -> 34 features).

- Probes: linear ridge models (standardised inputs, ridge strength chosen by an inner grouped
  CV on the training folds), cross-validated with folds grouped by person (5 folds, or one per
  person when fewer), the same folds for both feature sets. Regression targets: Pearson r and
  MAE; sex: AUC of the ridge score; gait type: accuracy of a one-vs-rest ridge classifier
  (argmax). Every figure has a 95 % bootstrap CI by person (persons resampled with replacement,
  2,000 draws), and the embedding-minus-engineered difference has one from the same draws.
- Re-identification: each walk's nearest other walk (cosine on standardised vectors) is of the
  same person? top-1 against chance (the share of same-person walks among the candidates);
  Kinect v2 views of the same walk are not candidates (they would be the same walk).
- Reconstruction: masked-joint error (mm) on the persons held out of training
  (``gait_mae.json``), against the frame-to-frame jitter of the trunk joints of the same walks
  and against filling each masked joint by linear interpolation in time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from inference.analysis.cycles import CYCLE_METRICS, summarize
from inference.data.gait_mae import Walk, corpus_folders, default_cache, load_walks
from inference.models.gait_mae.config import ONNX_PATH, POSITION_UNIT_M
from inference.models.gait_mae.features import clips_from_frames, resample

log = logging.getLogger(__name__)

REGRESSION = ("height_m", "bmi", "age")
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
TRUNK = (3, 6, 9, 12)  # spine1, spine2, spine3, neck: joints that move smoothly while walking


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="../shared/data, or a folder with walks.csv")
    p.add_argument("--out", type=Path, default=None, help="write report.json and figures here")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap draws")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="recompute features")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


# ----------------------------------------------------------------------------- walks


def folder_walks(d: Path) -> list[Walk]:
    from capture.readers import load_recording

    out = []
    with open(d / "walks.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rec = load_recording(d / row["file"])
            labels: dict[str, Any] = {}
            for k in (*REGRESSION, "sex"):
                if row.get(k, "").strip():
                    labels[k] = float(row[k])
            if row.get("gait", "").strip():
                labels["gait"] = row["gait"].strip()
                labels["walk_id"] = row["file"]
            out.append(Walk("folder", row["person"], row["file"], rec.t_us, rec.joints, labels))
    return out


def gather(d: Path, refresh: bool) -> list[Walk]:
    if (d / "walks.csv").is_file():
        return folder_walks(d)
    if any(corpus_folders(d).values()):
        return load_walks(d, refresh=refresh)
    raise FileNotFoundError(f"{d}: neither walks.csv nor a folder in the Kinect v1 person-data "
                            "or Kinect v2 index layout")


def engineered(w: Walk) -> np.ndarray:
    """Mean and CV (%) of each per-cycle measure over the walk's trusted cycles (NaN if none)."""
    from capture.readers.recording import Recording
    from inference.analyze import analyze_recording

    rec = Recording(name=w.walk, t_us=w.t_us, joints=w.joints,
                    confidence=np.ones(w.joints.shape[:2], np.float32), rate_hz=30.0,
                    source_layout="canonical22")
    m = summarize(analyze_recording(rec).cycles)["metrics"]
    return np.array([np.nan if m[k][s] is None else m[k][s]
                     for k in CYCLE_METRICS for s in ("mean", "cv_pct")], dtype=float)


def jitter_mm(w: Walk) -> float:
    """Frame-to-frame noise of the trunk joints (mm, 3-D RMS): the robust SD of the second
    difference at the source's own frames, / sqrt(6) (white noise of SD s gives second differences
    of SD s*sqrt(6)); walking's own trunk acceleration adds under 2 mm at 30 Hz."""
    d2 = np.diff(w.joints[:, TRUNK].astype(np.float64), n=2, axis=0)
    mad = np.median(np.abs(d2 - np.median(d2, axis=0)), axis=0) * 1.4826 / np.sqrt(6)
    return float(np.sqrt((mad ** 2).sum(-1)).mean() * 1e3)


def _cached(path: Path | None, make):
    if path is not None and path.is_file():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    out = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(out, fh)
    return out


def engineered_features(walks: list[Walk]) -> dict[str, np.ndarray]:
    """Engineered features and trunk jitter of every walk (the model plays no part)."""
    eng, jit = [], []
    for i, w in enumerate(walks):
        eng.append(engineered(w))
        jit.append(jitter_mm(w))
        if (i + 1) % 200 == 0:
            log.info("engineered features of %d/%d walks", i + 1, len(walks))
    return {"eng": np.array(eng), "jitter_mm": np.array(jit)}


def embeddings(walks: list[Walk], embedder: Any) -> dict[str, np.ndarray]:
    emb, n_clips = [], []
    for w in walks:
        e = embedder.embed_clips(clips_from_frames(resample(w.t_us, w.joints)))
        emb.append(e.mean(0) if len(e) else np.full(embedder.dim, np.nan))
        n_clips.append(len(e))
    return {"emb": np.array(emb), "clips": np.array(n_clips)}


def features(walks: list[Walk], embedder: Any, d: Path, cache: bool) -> dict[str, Any]:
    """Embeddings (cached per model file) and engineered features (cached per folder)."""
    onnx_path = Path(getattr(embedder, "onnx_path", ONNX_PATH))
    model_hash = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:12] \
        if onnx_path.is_file() else "none"
    key = hashlib.sha256(f"{d.resolve()}|{len(walks)}".encode()).hexdigest()[:12]
    root = default_cache()
    out = dict(_cached(root / f"gait_mae_eng_{key}.pkl" if cache else None,
                       lambda: engineered_features(walks)))
    out.update(_cached(root / f"gait_mae_emb_{key}_{model_hash}.pkl" if cache else None,
                       lambda: embeddings(walks, embedder)))
    return out


# ----------------------------------------------------------------------------- probes


def grouped_folds(groups: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Test indices of ``k`` folds with no person in two folds (persons shuffled, then dealt)."""
    persons = np.unique(groups)
    rng = np.random.default_rng(seed)
    rng.shuffle(persons)
    k = min(k, len(persons))
    return [np.flatnonzero(np.isin(groups, persons[i::k])) for i in range(k)]


def _prep(x_tr: np.ndarray, x_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Impute by the training median, standardise by the training mean/SD (nothing from the test
    fold is used)."""
    med = np.nanmedian(x_tr, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    x_tr = np.where(np.isfinite(x_tr), x_tr, med)
    x_te = np.where(np.isfinite(x_te), x_te, med)
    mu, sd = x_tr.mean(0), x_tr.std(0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    return (x_tr - mu) / sd, (x_te - mu) / sd


def _ridge(x_tr, y_tr, x_te, alpha):
    ym = y_tr.mean(0)
    a = x_tr.T @ x_tr + alpha * np.eye(x_tr.shape[1])
    w = np.linalg.solve(a, x_tr.T @ (y_tr - ym))
    return x_te @ w + ym


def ridge_oof(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: list[np.ndarray],
              seed: int) -> np.ndarray:
    """Out-of-fold ridge predictions; alpha per outer fold by an inner grouped 4-fold CV."""
    pred = np.zeros(y.shape)
    for te in folds:
        tr = np.setdiff1d(np.arange(len(y)), te)
        inner = grouped_folds(groups[tr], 4, seed + 1)
        best, best_err = ALPHAS[0], np.inf
        for alpha in ALPHAS:
            err = 0.0
            for ite in inner:
                itr = np.setdiff1d(np.arange(len(tr)), ite)
                a, b = _prep(x[tr][itr], x[tr][ite])
                err += float(((_ridge(a, y[tr][itr], b, alpha) - y[tr][ite]) ** 2).sum())
            if err < best_err:
                best, best_err = alpha, err
        a, b = _prep(x[tr], x[te])
        pred[te] = _ridge(a, y[tr], b, best)
    return pred


def auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum())
                 / (len(pos) * len(neg)))


def _metric(kind: str, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    if kind == "regression":
        r = float(np.corrcoef(y, p)[0, 1]) if y.std() > 0 and p.std() > 0 else float("nan")
        return {"r": r, "mae": float(np.abs(y - p).mean())}
    if kind == "binary":
        return {"auc": auc(y, p)}
    return {"accuracy": float((p.argmax(1) == y).mean())}


def boot_ci(kind: str, y, pe, pg, groups, n_boot: int, seed: int) -> dict[str, Any]:
    """Point figures of embedding (e) and engineered (g) probes, 95 % CIs by person bootstrap,
    and the CI of their difference from the same draws."""
    persons = np.unique(groups)
    idx = {p: np.flatnonzero(groups == p) for p in persons}
    rng = np.random.default_rng(seed)
    me, mg = _metric(kind, y, pe), _metric(kind, y, pg)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        take = np.concatenate([idx[p] for p in rng.choice(persons, len(persons))])
        a, b = _metric(kind, y[take], pe[take]), _metric(kind, y[take], pg[take])
        for k in a:
            draws.setdefault(f"embedding_{k}", []).append(a[k])
            draws.setdefault(f"engineered_{k}", []).append(b[k])
            draws.setdefault(f"difference_{k}", []).append(a[k] - b[k])
    out: dict[str, Any] = {}
    for k in me:
        out[f"embedding_{k}"], out[f"engineered_{k}"] = me[k], mg[k]
        out[f"difference_{k}"] = me[k] - mg[k]
    for k, v in draws.items():
        v = np.array(v)
        v = v[np.isfinite(v)]
        out[f"{k}_ci95"] = [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] \
            if len(v) else None
    return out


def probe(target: str, walks, feats, sel: np.ndarray, n_boot: int, seed: int
          ) -> dict[str, Any] | None:
    labels = [w.labels.get(target) for w in walks]
    ok = sel & np.array([v is not None for v in labels]) & np.isfinite(feats["emb"]).all(1)
    if ok.sum() < 10:
        return None
    idx = np.flatnonzero(ok)
    groups = np.array([walks[i].person for i in idx])
    if len(np.unique(groups)) < 3:
        return None
    folds = grouped_folds(groups, 5, seed)
    raw = [labels[i] for i in idx]
    if target == "gait":
        classes = sorted(set(raw))
        y = np.array([classes.index(v) for v in raw])
        yfit = np.eye(len(classes))[y]
        kind = "multiclass"
    else:
        y = np.array(raw, dtype=float)
        kind = "binary" if target == "sex" else "regression"
        yfit = y
    pe = ridge_oof(feats["emb"][idx], yfit, groups, folds, seed)
    pg = ridge_oof(feats["eng"][idx], yfit, groups, folds, seed)
    out = {"target": target, "probe": "ridge" if kind == "regression" else "ridge classifier",
           "walks": int(len(idx)), "persons": int(len(np.unique(groups))),
           "folds": len(folds), **boot_ci(kind, y, pe, pg, groups, n_boot, seed)}
    if kind == "multiclass":
        out["classes"] = classes
        out["chance"] = float(np.bincount(y).max() / len(y))
    out["_pred"] = (y, pe, pg)
    return out


# ----------------------------------------------------------------------------- re-id


def reid(x: np.ndarray, persons: np.ndarray, walk_ids: np.ndarray, n_boot: int, seed: int
         ) -> dict[str, Any] | None:
    """Missing features are imputed (column median), so both feature sets query the same walks
    (the caller keeps the walks that have an embedding)."""
    if len(x) < 3 or len(np.unique(persons)) < 2:
        return None  # with one person every guess is right: no figure
    z, _ = _prep(x, x)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)
    sim = z @ z.T
    same_walk = walk_ids[:, None] == walk_ids[None]
    sim[same_walk] = -np.inf  # itself, and other views of the same walk
    same = persons[:, None] == persons[None]
    cand = ~same_walk
    has = (same & cand).any(1)  # a query needs another walk of its person
    if has.sum() < 2:
        return None
    hit = same[np.arange(len(x)), sim.argmax(1)][has].astype(float)
    chance = ((same & cand).sum(1) / cand.sum(1))[has]
    q_persons = persons[has]
    up = np.unique(q_persons)
    idx = {p: np.flatnonzero(q_persons == p) for p in up}
    rng = np.random.default_rng(seed)
    draws = [hit[np.concatenate([idx[p] for p in rng.choice(up, len(up))])].mean()
             for _ in range(n_boot)]
    return {"queries": int(has.sum()), "persons": int(len(up)), "gallery": int(len(x)),
            "top1": float(hit.mean()), "top1_ci95": [float(np.percentile(draws, 2.5)),
                                                      float(np.percentile(draws, 97.5))],
            "chance": float(chance.mean())}


# ----------------------------------------------------------------------------- reconstruction


def numpy_keep(b: int, frames: int, joints: int, patch: int, rng, joint_ratio=0.3,
               frame_ratio=0.2) -> np.ndarray:
    """The training masks of ``model.random_keep`` (same ratios and token structure), drawn with
    numpy so that the evaluation needs only onnxruntime."""
    n = frames // patch
    masked = (rng.random((b, n, joints)) < joint_ratio) | (rng.random((b, n, 1)) < frame_ratio)
    return (~np.repeat(masked, patch, axis=1)).astype(np.float32)


def reconstruction(walks, feats, embedder, held: set[str], n_boot: int, seed: int
                   ) -> dict[str, Any] | None:
    from inference.train.gait_mae import interp_baseline

    rng = np.random.default_rng(seed)
    per_person: dict[str, list[tuple[float, float, int]]] = {}
    jit: dict[str, list[float]] = {}
    for i, w in enumerate(walks):
        if w.person not in held:
            continue
        clips = clips_from_frames(resample(w.t_us, w.joints))
        if not len(clips):
            continue
        cfg = embedder.cfg
        keep = numpy_keep(len(clips), cfg.frames, cfg.n_joints, cfg.patch, rng)
        outs = [embedder.backend.run({"clip": clips[j:j + 64], "keep": keep[j:j + 64]})["recon"]
                for j in range(0, len(clips), 64)]
        recon = np.concatenate(outs)
        m = keep == 0
        e = np.linalg.norm(recon - clips, axis=-1)[m] * POSITION_UNIT_M * 1e3
        b = interp_baseline(clips, keep)[m]
        per_person.setdefault(w.person, []).append((float(e.sum()), float(b.sum()), int(m.sum())))
        jit.setdefault(w.person, []).append(float(feats["jitter_mm"][i]))
    if not per_person:
        return None
    persons = sorted(per_person)
    tot = {p: np.array(v).sum(0) for p, v in per_person.items()}

    def figures(ps):
        s = np.sum([tot[p] for p in ps], axis=0)
        return s[0] / s[2], s[1] / s[2], float(np.mean([np.mean(jit[p]) for p in ps]))

    rng = np.random.default_rng(seed)
    draws = np.array([figures(rng.choice(persons, len(persons))) for _ in range(n_boot)])
    err, base, j = figures(persons)
    ci = lambda c: [float(np.percentile(draws[:, c], 2.5)), float(np.percentile(draws[:, c], 97.5))]  # noqa: E731
    return {"held_out_persons": len(persons), "masked_joints": int(sum(t[2] for t in tot.values())),
            "masked_joint_error_mm": float(err), "masked_joint_error_mm_ci95": ci(0),
            "interp_baseline_mm": float(base), "interp_baseline_mm_ci95": ci(1),
            "trunk_jitter_mm": j, "trunk_jitter_mm_ci95": ci(2)}


# ----------------------------------------------------------------------------- report


def evaluate(d: Path, *, n_boot: int = 2000, seed: int = 0, cache: bool = True,
             embedder: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    from inference.models.gait_mae.runtime import GaitEmbedder

    embedder = embedder or GaitEmbedder()
    walks = gather(d, refresh=not cache)
    feats = features(walks, embedder, d, cache)
    corpus = np.array([w.corpus for w in walks])
    persons = np.array([w.person for w in walks])
    rep: dict[str, Any] = {"dir": str(d), "walks": len(walks),
                           "persons": int(len(np.unique(persons))), "embedding_dim": embedder.dim,
                           "engineered_features": 2 * len(CYCLE_METRICS), "probes": [],
                           "reid": {}}
    preds: dict[str, Any] = {}
    for target in (*REGRESSION, "sex", "gait"):
        for c in np.unique(corpus):
            r = probe(target, walks, feats, corpus == c, n_boot, seed)
            if r:
                preds[f"{c}_{target}"] = r.pop("_pred")
                rep["probes"].append({"corpus": str(c), **r})
    held = set(embedder.meta.get("training", {}).get("held_out_persons", []))
    for c in np.unique(corpus):
        sel = corpus == c
        sel = sel & np.isfinite(feats["emb"]).all(1)  # walks of at least one clip
        wid = np.array([w.labels.get("walk_id", w.walk) for w in walks])[sel]
        for name, x in (("embedding", feats["emb"]), ("engineered", feats["eng"])):
            for subset, s2 in (("all", np.ones(sel.sum(), bool)),
                               ("held_out", np.isin(persons[sel], list(held)))):
                r = reid(x[sel][s2], persons[sel][s2], wid[s2], n_boot, seed)
                if r:
                    rep["reid"][f"{c}/{subset}/{name}"] = r
    rep["reconstruction"] = reconstruction(walks, feats, embedder, held, n_boot, seed)
    for c in np.unique(corpus):
        rep.setdefault("jitter_mm_median", {})[str(c)] = float(
            np.median(feats["jitter_mm"][corpus == c]))
    return rep, preds


def figures(preds: dict[str, Any], out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for name, (y, pe, pg) in preds.items():
        fig, ax = plt.subplots(figsize=(5, 4))
        if pe.ndim == 1:
            ax.scatter(y, pg, s=8, alpha=0.6, label="engineered")
            ax.scatter(y, pe, s=8, alpha=0.6, label="embedding")
            ax.set_xlabel(f"true {name}")
            ax.set_ylabel("out-of-fold prediction")
        else:
            acc = [[(pe.argmax(1) == y)[y == k].mean(), (pg.argmax(1) == y)[y == k].mean()]
                   for k in range(pe.shape[1])]
            acc = np.array(acc)
            xs = np.arange(len(acc))
            ax.bar(xs - 0.2, acc[:, 0], 0.4, label="embedding")
            ax.bar(xs + 0.2, acc[:, 1], 0.4, label="engineered")
            ax.set_xlabel("class")
            ax.set_ylabel("held-out-person accuracy")
        ax.legend()
        ax.set_title(name)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(str(path))
    return files


def main(args: argparse.Namespace) -> int:
    rep, preds = evaluate(args.dir, n_boot=args.boot, seed=args.seed, cache=not args.no_cache)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        rep["figures"] = figures(preds, args.out)
        (args.out / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    for p in rep["probes"]:
        keys = [k for k in p if k.startswith("embedding_") and not k.endswith("ci95")]
        for k in keys:
            m = k.split("_", 1)[1]
            ce, cg = p[f"embedding_{m}_ci95"], p[f"engineered_{m}_ci95"]
            print(f"{p['corpus']:10s} {p['target']:9s} {m:8s} embedding {p[k]:.3f} "
                  f"[{ce[0]:.3f}, {ce[1]:.3f}]  engineered {p[f'engineered_{m}']:.3f} "
                  f"[{cg[0]:.3f}, {cg[1]:.3f}]  ({p['walks']} walks, {p['persons']} persons)")
    for k, r in rep["reid"].items():
        print(f"re-id {k:36s} top-1 {r['top1']:.3f} [{r['top1_ci95'][0]:.3f}, "
              f"{r['top1_ci95'][1]:.3f}] chance {r['chance']:.3f} ({r['queries']} queries)")
    if rep["reconstruction"]:
        r = rep["reconstruction"]
        print(f"masked-joint error {r['masked_joint_error_mm']:.1f} mm "
              f"{r['masked_joint_error_mm_ci95']}; interpolation {r['interp_baseline_mm']:.1f} mm; "
              f"trunk jitter {r['trunk_jitter_mm']:.1f} mm ({r['held_out_persons']} persons)")
    if args.json:
        print(json.dumps(rep))
    return 0
