"""Gait transformer training pieces: targets from simulated truth, sensor views of recordings,
window sampling, and a few optimiser steps end to end (tiny model, small data)."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: F401  the training extra is part of dev: missing, these tests must fail

from inference.models.gait_transformer.features import EVENTS, N_KINEMATIC, OUT, PHASE_SLICE
from inference.train.gait_transformer import (
    WindowSampler, drop_upper_body, sensor_walk, simulate, walk_sequence,
)
from inference.data.sensor_views import view_recording
from streams.skeletons import CJ

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def sim_walk():
    return simulate(np.random.default_rng(3), "t")


def test_targets_follow_the_simulated_truth(sim_walk):
    w = sim_walk.clean
    seq = walk_sequence(w)
    t = seq["t_us"] / 1e6
    # phase targets: cos = 1, sin = 0 at each true event (to within a model frame)
    for e, key in enumerate(EVENTS):
        for te in w.events.get(key, ())[1:-1]:
            k = int(np.argmin(np.abs(t - te)))
            if seq["mask"][k, N_KINEMATIC + 2 * e] and abs(t[k] - te) < 0.02:
                ang = np.arctan2(seq["y"][k, N_KINEMATIC + 2 * e + 1],
                                 seq["y"][k, N_KINEMATIC + 2 * e])
                assert abs(ang) < 2 * np.pi * 0.035  # 20 ms of a >= 0.6 s stride
    # standing (start of every scene): the phases are a zero vector, and trained on
    still = np.interp(seq["t_us"], w.t_us, w.standing.astype(float)) > 0.5
    assert still.any()
    assert np.all(seq["y"][still][:, PHASE_SLICE] == 0.0)
    assert np.all(seq["mask"][still][:, PHASE_SLICE] == 1.0)
    # knee flexion in the walker's normal range (0..75 deg) where known
    knee = seq["y"][:, OUT["knee_flexion_left"]][seq["mask"][:, OUT["knee_flexion_left"]] > 0]
    assert -10 < knee.min() and knee.max() < 80 and knee.max() - knee.min() > 20


def test_sensor_view_is_noisy_but_close_and_keeps_its_clock(sim_walk):
    v = sensor_walk(sim_walk, "kinect", np.random.default_rng(0))
    assert v is not None
    assert np.all(np.isin(v.t_us, sim_walk.clean.t_us))
    assert len(v.t_us) <= len(sim_walk.clean.t_us)
    seq = walk_sequence(v)  # targets from the clean walk, inputs from the sensor view
    assert seq["valid"].mean() > 0.5
    assert (v.conf < 1).any()


def test_view_recording_is_seeded_and_keeps_untracked_joints_untracked():
    from capture.readers import load_recording

    rec = load_recording(DATA / "c3d_gait_lab_samples" / "trials" / "KTK_walk.c3d")
    a = view_recording(rec.t_us, rec.joints, rec.confidence, seed=5)
    b = view_recording(rec.t_us, rec.joints, rec.confidence, seed=5)
    c = view_recording(rec.t_us, rec.joints, rec.confidence, seed=6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1][: len(c[1])], c[1][: len(a[1])])
    t, j, conf = a
    idx = np.searchsorted(rec.t_us, t)
    assert np.array_equal(rec.t_us[idx], t)
    untracked = rec.confidence[idx] == 0
    assert untracked.any() and np.all(conf[untracked] == 0)
    # in the recording's own frame: the pelvis stays within ~10 cm of the truth
    err = np.linalg.norm(j[:, CJ["pelvis"]] - rec.joints[idx, CJ["pelvis"]], axis=1)
    assert np.median(err) < 0.1


def test_drop_upper_body_puts_untracked_joints_on_their_parents(sim_walk):
    j, c = drop_upper_body(sim_walk.clean.joints, sim_walk.clean.conf)
    assert c[:, CJ["head"]].max() == 0 and c[:, CJ["left_knee"]].min() == 1
    # up the chain to the nearest tracked joint, as the readers place never-seen joints
    np.testing.assert_array_equal(j[:, CJ["left_wrist"]], j[:, CJ["spine1"]])


def test_window_sampler_windows_stay_inside_one_walk(sim_walk):
    seqs = [walk_sequence(sim_walk.clean), walk_sequence(sim_walk.clean)]
    s = WindowSampler(seqs, 30, seed=0)
    b = s.batch(64)
    assert b["x"].shape == (64, 30, seqs[0]["x"].shape[1])
    # every window holds real frames of exactly one walk (the pad between walks is a window)
    n0 = len(seqs[0]["x"])
    for c in b["x"]:
        assert 0 < np.count_nonzero(np.abs(c).sum(axis=1)) <= 30
    assert np.all(b["valid"].sum(axis=1) >= 1)
    assert b["height"].shape == (64, 1) and np.all(b["height"] > 1.0)
    assert n0 > 30


def test_a_few_training_steps_export_a_loadable_model(tmp_path):
    from inference.models.gait_transformer.runtime import load_gait_model
    from inference.train.gait_transformer import export, sim_walks, train

    args = Namespace(out=tmp_path, steps=8, minutes=5.0, device="cpu", batch=8, lr=2e-3,
                     threads=1, sim_walks=2, seed=0, tiny=True)
    tr, val = sim_walks(args)
    res = train(args, tr, val[:1])
    rows = [l for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(rows) >= 2 and (tmp_path / "training_curve.png").stat().st_size > 1000
    export(res, tmp_path / "m.onnx")
    gm = load_gait_model("onnxruntime", tmp_path / "m.onnx")
    x = np.zeros((1, gm.window, 88), np.float32)
    y = gm.run(x, np.ones((1, gm.window), np.float32), np.array([[1.7]], np.float32))
    assert y.shape == (1, gm.window, 23) and np.isfinite(y).all()
