"""Simulated walkers (``capture.sim``) as data for training, evaluation and benchmarks: a random
subject in a random scene, or a steady walkway walker, and the canonical skeleton a perfect sensor
would report of either."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

# how often each scene of capture.sim.scenes is drawn for a random walker
SCENE_WEIGHTS = {"walkway": 3, "towards": 2, "away": 2, "across": 2, "turns": 2, "start_stop": 2,
                 "stand": 0.3}


def walk_frames(person: Any, t_s: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(t_us, canonical joints (T, 22, 3), the simulator's named points, its state) of a
    simulated person at the times ``t_s`` (seconds)."""
    from capture.sim.skeleton import layout_joints

    points, state = person.evaluate(t_s)
    return (np.round(t_s * 1e6).astype(np.int64), layout_joints(points, "canonical22"), points,
            state)


def random_person(rng: np.random.Generator) -> tuple[Any, dict[str, Any]]:
    """A random subject and gait pattern (severity 1-3, or normal) in a random scene of the
    simulator (walking towards, away from or across the camera, turns, stops)."""
    from capture.sim.patterns import PATTERNS, make_style
    from capture.sim.person import Person
    from capture.sim.scenes import random_params, scene

    names = list(SCENE_WEIGHTS)
    p = np.array([SCENE_WEIGHTS[n] for n in names], float)
    where = str(rng.choice(names, p=p / p.sum()))
    plan = scene(where, 1, rng, passes=int(rng.integers(1, 3)))[0]
    pattern = str(rng.choice(PATTERNS))
    severity = 0 if pattern == "normal" else int(rng.integers(1, 4))
    params = random_params(rng)
    params = replace(params, speed_mps=float(np.clip(params.speed_mps * rng.uniform(0.75, 1.2),
                                                     0.3, 2.2)),
                     variability=float(rng.uniform(0.5, 2.0)),
                     asymmetry=float(rng.uniform(-0.12, 0.12)))
    style = make_style(pattern, severity, rng=rng)
    person = Person.build(params, style, plan.actions, plan.start, plan.heading, 0.0, rng)
    return person, {"pattern": pattern, "severity": severity, "scene": where,
                    "height": params.height_m}


def walkway_person(seconds: float, seed: int = 7, rate_hz: float = 30.0
                   ) -> tuple[Any, np.ndarray]:
    """A simulated person walking up and down the walkway and the frame times (s) of
    ``seconds`` of it at ``rate_hz`` (``capture.sim``: its events and strides are the truth)."""
    from capture.sim.patterns import make_style
    from capture.sim.person import Person
    from capture.sim.scenes import random_params, scene

    rng = np.random.default_rng(seed)
    plan = scene("walkway", 1, rng, passes=max(1, int(np.ceil(seconds / 4.0))))[0]
    person = Person.build(random_params(rng), make_style("normal", 0), plan.actions,
                          plan.start, plan.heading, 0.0, rng)
    return person, np.arange(0.0, min(seconds, person.t_stop), 1.0 / rate_hz)


def walkway_walk(seconds: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`walkway_person`'s frames: (t_us, canonical joints, confidences), float32."""
    t_us, joints, _, _ = walk_frames(*walkway_person(seconds, seed))
    joints = joints.astype(np.float32)
    return t_us, joints, np.ones(joints.shape[:2], np.float32)
