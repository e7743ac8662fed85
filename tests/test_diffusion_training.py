"""Training the diffusion scorer: which windows go under which prompt, a few real training steps
that export a loadable scorer, and how the evaluation summarises scores per pattern."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from inference.models.motion_diffusion import scorer as anomaly_scorer
from inference.data.diffusion import Walk, sim_walks
from inference.eval.anomaly import Scored, summarize_simulator
from inference.models.motion_diffusion.config import (SCORE_PROMPT, build_vocabulary,
                                                      encode_prompts, load_config)
from inference.train.diffusion import (BROAD_PATTERNS, PERTURBED_PROMPT, TrainConfig,
                                       WindowSampler, make_batch)


def _group(w: Walk, group: str) -> Walk:
    w.group = group
    return w


def test_windows_go_under_their_label_words_perturbed_walks_apart_and_dropout_empties_some():
    normal = sim_walks(1, 0)[0]
    broad = _group(sim_walks(1, 50_000, "stiff_knee", 3)[0], "broad")
    corpus = _group(sim_walks(1, 7)[0], "corpus")
    corpus.prompt = "run-fast tired"
    vocab = build_vocabulary([w.prompt for w in (normal, broad, corpus)] + [PERTURBED_PROMPT])
    assert broad.prompt == "walk stiff_knee" and normal.prompt == SCORE_PROMPT
    weights = {"sim": 1 / 3, "broad": 1 / 3, "corpus": 1 / 3}

    def batch(cfg, seed=1):
        sampler = WindowSampler([normal, broad, corpus], weights, np.random.default_rng(seed))
        x0, words, _ = make_batch(sampler, 96, 21, cfg, None, np.random.default_rng(2), vocab)
        sampler.rng = np.random.default_rng(seed)
        _, _, groups, _ = sampler.sample(96, 21)  # the same draws: each window's group
        return x0, words, groups

    # every normal walk perturbed, no dropout: the words say exactly where a window came from
    x0, words, groups = batch(TrainConfig(perturbed=1.0, uncond=0.0))
    assert x0.shape == (96, 20, 263) and words.shape == (96, len(vocab))
    expect = {"sim": PERTURBED_PROMPT, "broad": "walk stiff_knee", "corpus": "run-fast tired"}
    for g, text in expect.items():
        assert (groups == g).sum() > 10
        assert np.all(words[groups == g] == encode_prompts([text], vocab)[0]), g
    # no perturbation: normal walks are "walk normal"; other motion is never perturbed
    _, words, groups = batch(TrainConfig(perturbed=0.0, uncond=0.0))
    assert np.all(words[groups == "sim"] == encode_prompts([SCORE_PROMPT], vocab)[0])
    # classifier-free dropout: about uncond of the windows, of every group, get the empty prompt
    _, words, groups = batch(TrainConfig(perturbed=0.0, uncond=0.5))
    empty = words.sum(1) == 0
    assert 30 <= empty.sum() <= 66
    assert all(empty[groups == g].any() and not empty[groups == g].all() for g in weights)


def _corpus(tmp_path, shared_data):
    """A two-clip corpus folder in the corpus layout: an index CSV naming members of a zip."""
    import csv
    import zipfile

    src = shared_data / "motion_corpus_bandai_namco" / "bandai_dataset1.zip"
    d = tmp_path / "corpus"
    d.mkdir()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(d / "clips.zip", "w") as zout:
        members = sorted(n for n in zin.namelist() if n.endswith(".bvh"))[:2]
        for i, m in enumerate(members):
            zout.writestr(f"mocap/clip{i}.bvh", zin.read(m))
    with open(d / "index.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "action", "style"])
        w.writerow(["mocap/clip0.bvh", "wave-hands", "happy"])
        w.writerow(["mocap/clip1.bvh", "jump", "tired"])
    return d


def test_a_few_steps_on_a_site_corpus_export_a_scorer_that_says_what_it_saw(tmp_path,
                                                                            shared_data):
    """`train diffusion --corpus DIR`: the corpus's labels become the vocabulary, the model
    scores a cycle with the saved vocabulary."""
    import subprocess
    import sys

    corpus = _corpus(tmp_path, shared_data)
    empty = tmp_path / "no_walks"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "deploy.cli", "train", "diffusion",
                           "--corpus", str(corpus), "--data", str(empty), "--max-steps", "3",
                           "--batch", "8", "--threads", "1", "--out", str(tmp_path / "out"),
                           "--models-dir", str(tmp_path / "models")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, meta = load_config(tmp_path / "models" / "motion_diffusion.json")
    assert {"wave", "hands", "happy", "jump", "tired", "walk", "normal", "perturbed",
            "stiff", "knee"} <= set(meta["vocabulary"])
    assert meta["training"]["steps"] == 3
    assert meta["training"]["data"]["corpus"]["walks"] == 2
    assert meta["training"]["corpora"] == [str(corpus)]
    assert meta["training"]["broad_patterns"] == list(BROAD_PATTERNS)
    assert not {"crouch", "trunk_sway"} & set(BROAD_PATTERNS)  # the real checks stay unseen
    scorer = anomaly_scorer.load_scorer("onnxruntime", k=4, model_dir=tmp_path / "models")
    w = sim_walks(1, 100_000)[0]
    t_us = np.round(np.arange(w.n_frames) * 5e4).astype(np.int64)
    a, b = w.cycles[2]
    rec = scorer.score(t_us[a:b + 1], w.joints[a:b + 1])
    assert np.isfinite(rec["subject"]) and rec["prompt_error"] > 0
    # a folder that is not a corpus is refused with one message
    bad = subprocess.run([sys.executable, "-m", "deploy.cli", "train", "diffusion", "--corpus",
                          str(empty)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a folder with an index CSV" in bad.stdout


def _rows(values: dict[str, list[list[float]]], key: str = "subject") -> list[Scored]:
    """Scored walkers from {label: [[cycle values of walker 1], [walker 2]...]}."""
    return [Scored(f"{label}/{i}", label, [{key: v, "other": -v} for v in cycles])
            for label, walkers in values.items() for i, cycles in enumerate(walkers)]


def test_simulator_summary_pools_per_cycle_per_walker_and_over_unseen_patterns():
    rows = _rows({"normal": [[1.0, 1.1], [0.9, 1.0]],
                  "crouch/1": [[2.0, 2.1]], "crouch/2": [[3.0, 3.1]], "crouch/3": [[4.0, 4.2]],
                  # a pattern the score gets backwards
                  "ataxic/1": [[0.8]], "ataxic/2": [[0.6]], "ataxic/3": [[0.4]]})
    ref = np.arange(sum(len(r.cycles) for r in rows), dtype=float)
    res = summarize_simulator(rows, ref, "subject", seen=("ataxic",))
    assert res["n_cycles"] == 13
    # per walker: the means 1.05, 0.95 (normal), 2.05, 3.05, 4.1 (crouch), 0.8, 0.6, 0.4
    walker_means = [1.05, 0.95, 2.05, 3.05, 4.1, 0.8, 0.6, 0.4]
    assert res["spearman_per_walker"] == pytest.approx(
        spearmanr(walker_means, [0, 0, 1, 2, 3, 1, 2, 3])[0])
    # crouch and normal: ordered by grade, so only the ties among the grades keep it below 1
    crouch_cycles, crouch_grades = [1.0, 1.1, 0.9, 1.0, 2.0, 2.1, 3.0, 3.1, 4.0, 4.2], \
        [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    rho = spearmanr(crouch_cycles, crouch_grades)[0]
    assert 0.95 < rho < 1.0
    assert res["per_pattern"]["crouch"]["spearman"] == pytest.approx(rho)
    assert res["per_pattern"]["ataxic"]["spearman"] < 0
    assert res["per_pattern"]["crouch"]["mean_by_grade"] == pytest.approx([1.0, 2.05, 3.05, 4.1])
    assert res["patterns_reaching_goal"] == 1
    assert res["unseen_patterns"] == ["crouch"]
    assert res["spearman_unseen_patterns"] == pytest.approx(rho)
    assert res["per_pattern"]["ataxic"]["unconditional_trained_on"]
    assert not res["per_pattern"]["crouch"]["unconditional_trained_on"]
    assert res["spearman"] < res["spearman_unseen_patterns"]
    # another key of the same cycles is summarised on its own values
    other = summarize_simulator(rows, ref, "other")
    assert other["per_pattern"]["crouch"]["spearman"] == pytest.approx(-rho)
    assert "unseen_patterns" not in other


def test_k_is_chosen_where_the_curve_stays_above_the_threshold_not_where_it_first_touches():
    from inference.eval.anomaly import smallest_k_staying_above

    # a measured curve (the broad-share model of the card): 24 reaches 0.95, 32 falls back to 0.87
    rho = {8: 0.923, 16: 0.899, 24: 0.953, 32: 0.873, 48: 0.986, 64: 0.991, 900: 1.0}
    assert smallest_k_staying_above(rho, 0.95) == 48
    assert smallest_k_staying_above({4: 0.96, 8: 0.97, 900: 1.0}, 0.95) == 4
    assert smallest_k_staying_above({4: 0.5, 900: 1.0}, 0.95) == 900


def test_the_split_rule_holds_out_about_a_third_of_any_ids_the_same_way_every_time():
    from inference.data.diffusion import HELD_OUT_BUCKETS, held_out

    ids = [f"subject-{i:04d}" for i in range(3000)]
    share = np.mean([held_out(i) for i in ids])
    assert abs(share - 1 / HELD_OUT_BUCKETS) < 0.03
    assert [held_out(i) for i in ids[:50]] == [held_out(i) for i in ids[:50]]
    assert held_out(" subject-0001 ") == held_out("subject-0001")  # padding is not identity
