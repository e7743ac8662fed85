"""The diffusion anomaly scorer: step selection, fixed noise, the error ratios, the record it
produces, backends agreeing, and the shipped model (loaded once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.models.motion_diffusion import scorer as anomaly_scorer
from inference.models.motion_diffusion import features as hml3d
from inference.models.motion_diffusion.config import (ALPHAS_CUMPROD, DenoiserConfig, PromptError,
                                                      build_vocabulary, encode_prompts,
                                                      load_config, save_config)
from inference.models.motion_diffusion.model import MotionDenoiser, module_from_onnx
from streams.schema import GaitCycle, decode, encode
from streams.skeletons import CANONICAL_JOINTS, CJ
from tests._walker import walker


def _cycle(seconds: float = 1.1, rate: float = 60.0, **kw):
    t_s = np.arange(0, seconds, 1 / rate)
    return np.round(t_s * 1e6).astype(np.int64), walker(t_s, **kw)


def test_k_steps_are_spread_over_0_to_900_and_900_is_every_step():
    np.testing.assert_array_equal(anomaly_scorer.timesteps(900), np.arange(900))
    for k in (1, 4, 16, 100):
        s = anomaly_scorer.timesteps(k)
        assert len(np.unique(s)) == k and s.min() >= 0 and s.max() < 900
        assert np.all(np.diff(s) > 0)
        # one step per stratum of 900/k steps
        assert np.array_equal(s // (900 / k), np.arange(k))
    with pytest.raises(ValueError):
        anomaly_scorer.timesteps(0)


def test_noise_of_a_step_is_fixed_whatever_k_and_clip_length():
    a = anomaly_scorer.step_noise(anomaly_scorer.timesteps(4), 30)
    b = anomaly_scorer.step_noise(anomaly_scorer.timesteps(900), 12)
    np.testing.assert_array_equal(a[:, :12], b[anomaly_scorer.timesteps(4)])
    assert not np.allclose(a[0], a[1])


def test_ratios_per_joint_and_group_from_known_errors():
    k = 3
    ee = np.ones((k, 263))
    ep = np.ones((k, 263))
    knee = hml3d.JOINT_COLUMNS["left_knee"]
    ep[:, knee] = 3.0  # the walking prompt explains the left knee three times worse
    out = anomaly_scorer.ratio_scores(ep, ee)
    assert out["joint.left_knee"] == pytest.approx(3.0)
    assert out["joint.right_knee"] == pytest.approx(1.0)
    assert out["subject"] == pytest.approx((263 - 12 + 3 * 12) / 263)
    rot = np.arange(263)[hml3d.ROT6D]
    assert out["group.rotations"] == pytest.approx((126 - 6 + 3 * 6) / 126)
    assert out["group.contacts"] == pytest.approx(1.0)
    # a joint whose columns do not count is left out instead of reported
    cols = anomaly_scorer.columns_from_confidence(np.where(np.arange(22) == CJ["left_knee"], 0.1, 0.9)[None])
    out = anomaly_scorer.ratio_scores(ep, ee, cols)
    assert "joint.left_knee" not in out and out["subject"] == pytest.approx(1.0)
    assert len(rot) == 126


def test_prompts_are_bags_of_label_words_over_the_saved_vocabulary(tmp_path):
    vocab = build_vocabulary(["walk-turn-left tired", "walk normal", "playground - climb"])
    assert vocab == ["climb", "left", "normal", "playground", "tired", "turn", "walk"]
    w = encode_prompts(["walk normal", "", "Walk_Turn-left  TIRED", "walk walk normal"], vocab)
    assert w.shape == (4, 7) and w.dtype == np.float32
    np.testing.assert_allclose(w[0], [0, 0, 0.5, 0, 0, 0, 0.5])
    np.testing.assert_array_equal(w[1], 0.0)  # the empty prompt: no word, a zero embedding
    np.testing.assert_allclose(w[2], [0, 0.25, 0, 0, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(w[3][[2, 6]], [1 / 3, 2 / 3])  # a repeated word counts more
    with pytest.raises(PromptError, match="'run'"):
        encode_prompts(["run normal"], vocab)
    # the vocabulary travels with the model and must fit its embedding table
    cfg = DenoiserConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, n_words=len(vocab))
    save_config(cfg, tmp_path / "m.json", vocab)
    assert load_config(tmp_path / "m.json")[1]["vocabulary"] == vocab
    with pytest.raises(ValueError, match="word embeddings"):
        save_config(cfg, tmp_path / "m.json", vocab[:-1])


def test_column_errors_runs_both_prompts_in_one_batch():
    x0 = np.random.default_rng(0).standard_normal((10, 263)).astype(np.float32)
    steps = anomaly_scorer.timesteps(5)
    prompt = np.array([0.5, 0.0, 0.5], np.float32)
    calls = []

    def oracle(x, t, words):  # knows x0 under the prompt, is off by 1 under the empty prompt
        calls.append((x.shape, t.copy(), words.copy()))
        return np.where((words.sum(1) > 0)[:, None, None], x0, x0 + 1.0)

    ep, ee = anomaly_scorer.column_errors(oracle, x0, steps, anomaly_scorer.step_noise(steps, 10),
                                          prompt)
    assert len(calls) == 1 and calls[0][0] == (10, 10, 263)
    np.testing.assert_array_equal(calls[0][1], np.concatenate([steps, steps]))
    np.testing.assert_array_equal(calls[0][2], [prompt] * 5 + [[0, 0, 0]] * 5)
    np.testing.assert_allclose(ep, 0.0)
    np.testing.assert_allclose(ee, 1.0)


def test_denoiser_output_is_x0_and_equals_the_noised_input_rescaled_when_the_net_says_nothing():
    torch.manual_seed(0)
    m = MotionDenoiser(DenoiserConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32,
                                      n_words=3)).eval()
    torch.nn.init.zeros_(m.output.weight)
    torch.nn.init.zeros_(m.output.bias)
    x = torch.randn(2, 7, 263)
    t = torch.tensor([0.0, 500.0])
    out = m(x, t, torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]))
    ab = torch.tensor(ALPHAS_CUMPROD[[0, 500]], dtype=torch.float32)
    torch.testing.assert_close(out, ab.sqrt()[:, None, None] * x)
    assert ALPHAS_CUMPROD[0] > 0.999 and ALPHAS_CUMPROD[899] < 0.05  # cosine: 1 -> ~0


def test_scorer_record_is_deterministic_complete_and_fits_a_gait_cycle(tiny_model_dir):
    scorer = anomaly_scorer.load_scorer("onnxruntime", k=8, model_dir=tiny_model_dir)
    t, j = _cycle()
    a, b = scorer.score(t, j), scorer.score(t, j)
    assert a == b
    assert set(a) == ({"subject", "prompt_error", "empty_error"}
                      | {f"joint.{n}" for n in CANONICAL_JOINTS}
                      | {f"group.{g}" for g in hml3d.GROUPS})
    assert all(np.isfinite(v) and v > 0 for v in a.values())
    # the record travels on the wire as it is
    msg = GaitCycle(source="sim", seq=1, t_us=int(t[-1]), host_us=0, track=0, side="left",
                    start_us=int(t[0]), end_us=int(t[-1]), anomaly=a)
    assert decode(encode(msg)).anomaly == pytest.approx(a)
    # untracked joints (confidence 0) drop out of the record instead of being scored
    conf = np.ones((len(t), 22))
    conf[:, [CJ["left_wrist"], CJ["right_wrist"]]] = 0.0
    c = scorer.score(t, j, conf)
    assert "joint.left_wrist" not in c and "joint.right_wrist" not in c and "joint.head" in c


def test_scorer_uses_timestamps_not_frame_rates(tiny_model_dir):
    scorer = anomaly_scorer.load_scorer("onnxruntime", k=4, model_dir=tiny_model_dir)
    t30, j30 = _cycle(rate=30.0)
    t100, j100 = _cycle(rate=100.0)
    s30, s100 = scorer.score(t30, j30)["subject"], scorer.score(t100, j100)["subject"]
    assert s30 == pytest.approx(s100, rel=0.02)


def test_k_step_score_is_the_900_step_computation_restricted_to_k_steps(tiny_model_dir):
    from inference.eval.anomaly import per_step_errors

    scorer = anomaly_scorer.load_scorer("onnxruntime", k=6, model_dir=tiny_model_dir)
    t, j = _cycle(seconds=0.6)
    x0, cols = scorer.clip(t, j)
    ep, ee = per_step_errors(scorer, x0, anomaly_scorer.timesteps(900))
    idx = anomaly_scorer.timesteps(6)
    assert anomaly_scorer.ratio_scores(ep[idx], ee[idx])["subject"] == pytest.approx(
        scorer.score(t, j)["subject"], rel=1e-5)


def test_onnxruntime_and_torch_backends_agree(tiny_model_dir):
    t, j = _cycle()
    ort = anomaly_scorer.load_scorer("onnxruntime", k=8, model_dir=tiny_model_dir).score(t, j)
    tor = anomaly_scorer.load_scorer("torch", k=8, model_dir=tiny_model_dir).score(t, j)
    for key in ort:
        assert tor[key] == pytest.approx(ort[key], rel=1e-4), key


def test_torch_weights_come_from_the_onnx_file(tiny_model_dir):
    m = module_from_onnx(tiny_model_dir / "motion_diffusion.onnx",
                              tiny_model_dir / "motion_diffusion.json")
    assert sum(p.numel() for p in m.parameters()) > 0


def test_bad_cycles_are_refused_with_a_reason(tiny_model_dir):
    scorer = anomaly_scorer.load_scorer("onnxruntime", k=4, model_dir=tiny_model_dir)
    t, j = _cycle()
    with pytest.raises(hml3d.FeatureError, match="too short"):
        scorer.score(t[:4], j[:4])
    with pytest.raises(hml3d.FeatureError, match="strictly increasing"):
        scorer.score(t[::-1], j)
    long_t, long_j = _cycle(seconds=12.0, rate=20.0)
    with pytest.raises(hml3d.FeatureError, match="not one gait cycle"):
        scorer.score(long_t, long_j)
    with pytest.raises(FileNotFoundError):
        anomaly_scorer.load_scorer("onnxruntime", model_dir=tiny_model_dir / "nowhere")


def test_angle_curves_drive_the_skeleton_through_the_given_knee_angles(shared_data):
    from inference.data.angle_curves import curve_walk
    from inference.data.groundtruth import mot_columns

    curves = mot_columns(shared_data / "opensim_walking_trc_grf" / "reference_curves"
                         / "crouch_gait.mot")
    t_us, j, period = curve_walk(curves, cycles=2, rate_hz=100.0)
    assert period == pytest.approx(1.0085, abs=1e-3)
    thigh = j[:, CJ["right_knee"]] - j[:, CJ["right_hip"]]
    shank = j[:, CJ["right_ankle"]] - j[:, CJ["right_knee"]]
    cos = np.sum(thigh * shank, 1) / np.linalg.norm(thigh, axis=1) / np.linalg.norm(shank, axis=1)
    flexion = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    phase_t = (t_us / 1e6) % period
    expect = -np.interp(phase_t, curves["time"] - curves["time"][0], curves["knee_angle_r"])
    assert np.max(np.abs(flexion - expect)) < 1.0  # between samples the curve is interpolated
    # the lowest foot joint is on the floor and the walker moves forward
    feet = [CJ["left_ankle"], CJ["left_foot"], CJ["right_ankle"], CJ["right_foot"]]
    np.testing.assert_allclose(j[:, feet, 1].min(axis=1), 0.0, atol=1e-9)
    assert j[-1, 0, 2] - j[0, 0, 2] > 0.5


def test_shipped_scorer_scores_cycles_deterministically_and_pins_its_evaluation():
    """The shipped weights (inference/models) at the chosen K: the same score twice, the
    scoring prompt in the saved vocabulary, and what its model card reports as met stays met:
    simulated walkers of evaluation seeds with severe hemiparetic and crouch gait score above
    normal ones (per pattern Spearman 0.95 and 0.94 in the card)."""
    from inference.data.diffusion import EVAL_SEED0, Walk, sim_walks
    from inference.eval.anomaly import inner_cycles, score_walk

    scorer = anomaly_scorer.load_scorer("onnxruntime")
    assert scorer.k == anomaly_scorer.DEFAULT_K == 48
    _, meta = load_config()
    assert {"walk", "normal"} <= set(meta["vocabulary"])
    assert np.count_nonzero(scorer.prompt) == 2

    def scores(pattern: str, severity: int) -> list[float]:
        out = []
        for w in sim_walks(2, EVAL_SEED0 + 500, pattern, severity):
            w = Walk(w.name, w.group, w.joints, w.confidence, w.label, inner_cycles(w, 2))
            out += [c["subject"] for c in score_walk(scorer, w).cycles]
        return out

    normal = scores("normal", 0)
    assert normal == scores("normal", 0)
    assert min(scores("hemiparetic", 3)) > max(normal)
    assert min(scores("crouch", 3)) > max(normal)


def test_deviation_yardstick_is_zero_at_normal_and_grows_with_the_deviation():
    """The model-free yardstick beside the simulator Spearman: fitted on training seeds only,
    zero for a clip at the normal mean, quadratic in an offset of one feature."""
    from inference.eval.anomaly import DeviationReference, frame_times, inner_cycles
    from inference.data.diffusion import sim_walks

    scorer = anomaly_scorer.load_scorer("onnxruntime", k=2)
    ref = DeviationReference.fit(scorer, walkers=2, cycles_per_walk=3)
    assert ref.mean.shape == ref.std.shape == (hml3d.FEATURE_DIM,) and np.all(ref.std > 0)
    clip = np.tile(ref.mean, (20, 1))
    assert ref.score(clip) == pytest.approx(0.0, abs=1e-9)
    bumped = clip.copy()
    bumped[:, 5] += 2 * ref.std[5]
    assert ref.score(bumped) == pytest.approx(4.0 / hml3d.FEATURE_DIM, rel=1e-6)
    bumped[:, 5] += 2 * ref.std[5]
    assert ref.score(bumped) == pytest.approx(16.0 / hml3d.FEATURE_DIM, rel=1e-6)
    # a crouched walker of the evaluation seeds is further from normal than a normal one
    w_normal = sim_walks(1, 100_000)[0]
    w_crouch = sim_walks(1, 100_000, "crouch", 3)[0]
    far = []
    for w in (w_normal, w_crouch):
        t_us = frame_times(w)
        a, b = inner_cycles(w, 1)[0]
        far.append(ref.score(scorer.clip(t_us[a:b + 1], w.joints[a:b + 1])[0]))
    assert far[1] > 3 * far[0]
