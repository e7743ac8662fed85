"""`train gait-transformer --sim-data DIR` reads a `gaitstream simulate` dataset into training
samples: the sensor's frames as input, exact joints and events as targets (no training run)."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest

from capture.sim.dataset import write_dataset
from inference.models.gait_transformer.features import N_FEATURES, N_KINEMATIC, N_OUTPUTS
from inference.train.gait_transformer import (WindowSampler, add_arguments, sim_walks,
                                              walk_sequence)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("simdata")
    write_dataset(root, trials=2, seed=3, patterns=("normal", "freezing"), severities=(3,),
                  sensor="kinect", rate_hz=30.0, scenes=("towards", "walkway"))
    return root


def test_a_simulate_dataset_becomes_training_walks(dataset):
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--sim-data", str(dataset)])
    train, val = sim_walks(args)
    names = sorted((dataset / "frames").glob("*.npz"))
    first, second = names[0].stem, names[1].stem
    # trial 0 trains as its Kinect view and as its exact joints; trial 1 is held out
    assert [w.name for w in train] == [f"{first}+kinect", first]
    assert [w.name for w in val] == [f"{second}+kinect"]

    with open(dataset / "ground_truth" / "events.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["trial"] == first]
    z = np.load(names[0])
    view, exact = train
    for w in (view, exact):
        assert sum(len(v) for v in w.events.values()) == len(rows) >= 8
        strikes = sorted(float(r["time_s"]) for r in rows
                         if r["side"] == "Left" and r["event"] == "foot_strike")
        np.testing.assert_allclose(w.events[("left", "foot_strike")], strikes)
        # targets from the exact joints; standing from the walking / freezing flags
        np.testing.assert_array_equal(w.clean if w.clean is not None else w.joints,
                                      z["joints_true"])
        np.testing.assert_array_equal(w.standing, ~z["walking"] | z["freezing"])
    # the input is what the sensor sent: no dropped frame, no NaN, lost joints at confidence 0
    sent = ~z["dropped"] & (z["confidence"] > 0).any(axis=1)
    np.testing.assert_array_equal(view.t_us, np.round(z["t"][sent] * 1e6).astype(np.int64))
    assert np.isfinite(view.joints).all()
    lost = ~np.isfinite(z["joints"][sent]).all(axis=2)
    assert (view.conf[lost] == 0).all()
    assert view.meta["pattern"] == "normal" and view.meta["sensor"] == "kinect"


def test_dataset_walks_give_masked_training_windows(dataset):
    train, val = sim_walks(argparse.Namespace(sim_data=dataset, sim_walks=0, seed=0))
    seqs = [walk_sequence(w) for w in train + val]
    for s in seqs:
        assert s["x"].shape[1] == N_FEATURES and s["y"].shape[1] == N_OUTPUTS
        phase_mask = s["mask"][:, N_KINEMATIC:]
        # gait phases are known over the strides between the exact events, not everywhere
        assert 0.2 < phase_mask.mean() < 1.0
        assert s["mask"][:, :N_KINEMATIC].mean() > 0.5
        # unit (cos, sin) phase targets wherever they count
        ph = s["y"][:, N_KINEMATIC:].reshape(len(s["y"]), -1, 2)
        on = phase_mask[:, ::2] > 0
        walking = on & (np.linalg.norm(ph, axis=2) > 0.5)
        np.testing.assert_allclose(np.linalg.norm(ph, axis=2)[walking], 1.0, atol=1e-5)
    batch = WindowSampler(seqs, 30, 0).batch(4)
    assert batch["x"].shape == (4, 30, N_FEATURES) and batch["mask"].shape == (4, 30, N_OUTPUTS)


def test_a_folder_that_is_not_a_simulate_dataset_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="not a `gaitstream simulate` dataset"):
        sim_walks(argparse.Namespace(sim_data=tmp_path, sim_walks=0, seed=0))
