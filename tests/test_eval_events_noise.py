"""``gaitstream eval events --noise kinect``: a trial seen through the simulated Azure Kinect,
the same noisy frames the gait transformer's model card was evaluated on (one short trial)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inference.eval.events import evaluate, evaluate_trial, trial_files
from inference.models.gait_transformer.runtime import GaitModelTracker, load_gait_model
from inference.analysis.analyzer import OnlineGaitAnalyzer
from inference.data.sensor_views import NoisyReplay, trial_seed

from conftest import REPO

DATASET = "opensim_walking_trc_grf"  # one trial, subject01_walk1, six GRF events


def card_factory(make):
    """How the training run's evaluation (the model card's ``+kinect`` rows) builds its
    analyzers: the clean analyzer inside NoisyReplay, seeded from the trial's name."""
    return lambda source, track: NoisyReplay(make(source, track), "kinect", trial_seed(source))


def test_cli_noise_kinect_reproduces_the_cards_noisy_condition(shared_data):
    d = shared_data / DATASET
    (trial,) = trial_files(d)
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "eval", "events", str(d),
                        "--noise", "kinect", "--json"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    rep = json.loads(lines[-1])
    assert rep["model"] == "classical" and rep["noise"] == "kinect"
    assert lines[0].startswith("model: classical through simulated kinect noise")
    want = evaluate_trial(trial, card_factory(
        lambda s, k: OnlineGaitAnalyzer(s, k, keep_trace=True)), 100.0, 0.3).row()
    (got,) = rep["trials"]
    assert got["errors_ms"] == want["errors_ms"] and got["events"] == 6
    assert got["angles"] == want["angles"]

    # the noise is there: the same trial clean gives other timings, and better angles
    clean = evaluate([d])
    assert clean["noise"] == "none"
    (c,) = clean["trials"]
    assert c["errors_ms"] != got["errors_ms"]
    knee = lambda row: max(v["rms_deg"] for k, v in row["angles"].items()  # noqa: E731
                           if k.startswith("knee"))
    assert knee(got) > knee(c)


def test_noise_applies_to_the_gait_transformer_too(shared_data):
    d = shared_data / DATASET
    (trial,) = trial_files(d)
    rep = evaluate([d], "gait-transformer", noise="kinect")
    model = load_gait_model()
    want = evaluate_trial(trial, card_factory(lambda s, k: GaitModelTracker(model, s, k)),
                          100.0, 0.3).row()
    (got,) = rep["trials"]
    assert rep["noise"] == "kinect" and got["errors_ms"] == want["errors_ms"]
    assert sum(e[2] is not None for e in got["errors_ms"]) >= 4


def test_unknown_noise_is_refused(shared_data):
    with pytest.raises(ValueError, match="unknown noise 'fog'"):
        evaluate([shared_data / DATASET], noise="fog")
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "eval", "events",
                        str(shared_data / DATASET), "--noise", "fog"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "invalid choice: 'fog'" in p.stderr


def test_events_the_simulated_sensor_never_saw_are_skipped_with_their_reason(shared_data):
    """The simulated Kinect stands at the end of the walkway: the first 2 s of the 7 m Vicon
    walk are beyond its range and it reports no frame. Those events are nobody's to find, as
    events within 0.3 s of a recording's ends are not: skipped and said so, for every model."""
    trial = (shared_data / "c3d_gait_lab_samples" / "trials"
             / "C3DORG_s00_Vicon_pyCGM2_CGM24_Walking01.c3d")
    clean = evaluate_trial(trial, lambda s, k: OnlineGaitAnalyzer(s, k, keep_trace=True),
                           100.0, 0.3)
    noisy = evaluate_trial(trial, card_factory(
        lambda s, k: OnlineGaitAnalyzer(s, k, keep_trace=True)), 100.0, 0.3)
    unseen = [e for e in noisy.skipped_events if "outside the simulated sensor's view" in e]
    assert len(unseen) == 6 and len(noisy.matches) == len(clean.matches) - 6
    assert all(m.truth_us > 1_900_000 for m in noisy.matches)  # the sensor's first frame


def test_an_analyzer_without_angles_is_evaluated_through_the_noise(shared_data):
    """A peer detector has events but no joint angles: through NoisyReplay it is evaluated
    for its events (it failed with AttributeError before)."""
    class EventsOnly:
        def __init__(self, source, track):
            self.inner = OnlineGaitAnalyzer(source, track)

        def push(self, t_us, joints, conf):
            return self.inner.push(t_us, joints, conf)

        def flush(self):
            return self.inner.flush()

    (trial,) = trial_files(shared_data / DATASET)
    r = evaluate_trial(trial, card_factory(EventsOnly), 100.0, 0.3)
    assert r.angles == {} and sum(m.detected_us is not None for m in r.matches) >= 4
