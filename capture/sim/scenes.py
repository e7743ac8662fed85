"""Who walks where in front of the camera: scene layouts for the live source and the datasets.

World frame: floor y = 0, the camera at (0, height, 0) looking along +z (its field of view covers
about +-1.5 m across at 2 m and +-3.5 m at 4.5 m). Heading -pi/2 walks towards the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from capture.sim.paths import Arc, Line
from capture.sim.person import Action, Go, Stand
from capture.sim.style import WalkerParams

TOWARDS, AWAY, ACROSS = -np.pi / 2, np.pi / 2, 0.0
SCENES = ("walkway", "towards", "away", "across", "turns", "start_stop", "stand")

NEAR_Z, FAR_Z = 1.8, 4.6  # walkway ends (m from the camera)
TURN_R = 0.8


@dataclass(frozen=True)
class Plan:
    """One person's part in a scene: where it starts, what it does."""

    start: tuple[float, float]
    heading: float
    actions: list[Action]
    delay_s: float = 0.0


def walkway_pass(passes: int, rng: np.random.Generator, pause_p: float = 0.3,
                 length: float = FAR_Z - NEAR_Z) -> list[Action]:
    """Passes up and down the walkway (towards, U-turn, away, U-turn, ...); sometimes the walker
    stops at an end and stands a while before turning. ``length``: the straight part (m); the
    default fits a depth camera's range, a hallway without one is longer (10 m walk test)."""
    acts: list[Action] = []
    segs: list = []
    for i in range(passes):
        segs += [Line(length), Arc(TURN_R, 180.0)]
        if rng.random() < pause_p and i < passes - 1:
            acts += [Go(tuple(segs[:-1])), Stand(float(rng.uniform(1.0, 3.0)))]
            segs = [segs[-1]]
    if segs:
        acts.append(Go(tuple(segs)))
    return acts


def scene(name: str, people: int, rng: np.random.Generator, passes: int = 2,
          walkway_m: float = FAR_Z - NEAR_Z) -> list[Plan]:
    """Plans for ``people`` walkers in scene ``name``; ``walkway_m``: the straight part of the
    walkway scene, from NEAR_Z away from the camera."""
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; known: {', '.join(SCENES)}")
    if people < 1 or people > 8:
        raise ValueError(f"people must be 1-8, got {people}")
    plans = []
    for k in range(people):
        lane = (k - (people - 1) / 2) * 0.9
        if name == "walkway":
            # walkers share one oval loop, spread along it
            if k % 2 == 0:
                p = Plan((lane - TURN_R, NEAR_Z + walkway_m), TOWARDS,
                         walkway_pass(passes, rng, length=walkway_m), delay_s=1.5 * k)
            else:
                p = Plan((lane + TURN_R, NEAR_Z), AWAY, walkway_pass(passes, rng, length=walkway_m),
                         delay_s=1.5 * k)
        elif name == "towards":
            p = Plan((lane, FAR_Z + 0.6), TOWARDS, [Stand(0.5), Go((Line(FAR_Z - NEAR_Z + 0.6),)),
                                                     Stand(1.0)], delay_s=1.0 * k)
        elif name == "away":
            p = Plan((lane, NEAR_Z - 0.4), AWAY, [Stand(0.5), Go((Line(FAR_Z - NEAR_Z + 0.4),)),
                                                   Stand(1.0)], delay_s=1.0 * k)
        elif name == "across":
            z = 3.2 + 0.8 * k
            p = Plan((-2.6, z), ACROSS, [Stand(0.5), Go((Line(5.2),)), Stand(1.0)],
                     delay_s=0.7 * k)
        elif name == "turns":
            p = Plan((lane - 1.2, FAR_Z), TOWARDS + 0.5,
                     [Stand(0.5), Go((Line(0.8), Arc(1.2, -60.0), Arc(1.2, 90.0), Line(0.8))),
                      Stand(1.0)], delay_s=1.0 * k)
        elif name == "start_stop":
            half = (FAR_Z - NEAR_Z) / 2
            p = Plan((lane, FAR_Z), TOWARDS, [Stand(0.5), Go((Line(half),)),
                                              Stand(float(rng.uniform(1.0, 2.5))),
                                              Go((Line(half),)), Stand(1.0)], delay_s=0.8 * k)
        else:  # stand
            p = Plan((lane, 2.5 + 0.5 * k), TOWARDS, [Stand(10.0)])
        plans.append(p)
    return plans


def random_params(rng: np.random.Generator, base: WalkerParams | None = None,
                  fixed: dict | None = None) -> WalkerParams:
    """A plausible adult: height N(1.72, 0.09) m, leg proportion +-3%, speed +-10% of the
    preferred speed for the height, arm swing and trunk lean varied; ``fixed`` wins."""
    fixed = dict(fixed or {})
    height = float(np.clip(rng.normal(1.72, 0.09), 1.50, 1.98))
    p = base or WalkerParams()
    drawn = dict(
        height_m=height,
        leg_scale=float(np.clip(rng.normal(1.0, 0.02), 0.95, 1.05)),
        width_scale=float(np.clip(rng.normal(1.0, 0.05), 0.9, 1.1)),
        speed_mps=float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.2) * 1.36
                        * np.sqrt(height / 1.75)),
        arm_swing=float(np.clip(rng.normal(1.0, 0.15), 0.6, 1.4)),
        trunk_lean_deg=float(rng.uniform(1.0, 5.0)),
        step_width_m=float(np.clip(rng.normal(0.09, 0.015), 0.05, 0.14)),
        toe_out_deg=float(rng.uniform(3.0, 10.0)),
    )
    drawn.update(fixed)
    return replace(p, **drawn)
