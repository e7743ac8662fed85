"""The ``sim`` capture source: simulated walkers published live as SkeletonFrames.

``SimSource(name, rate_hz=30, seed=0, people=1, pattern='normal', severity=0, sensor='none',
layout=None, duration_s=None, scene='walkway', noise=1.0, side=None, passes=2, walkway_m=2.8,
**params)``

* the default is one person walking up and down a walkway in front of the camera, turning at the
  ends and now and then pausing, for ever (``duration_s=None``: new passes are simulated as the
  old ones are sent; the same person keeps walking, with fresh stride-to-stride variability);
* ``params``: WalkerParams fields (height_m, speed_mps, cadence_spm, step_width_m, arm_swing,
  trunk_lean_deg, asymmetry, variability, ...) for every walker; what is not given is drawn per
  person from plausible adult ranges (``scenes.random_params``);
* ``sensor``: 'none' (exact joints, floor frame, y = 0 on the floor), 'kinect' or 'mediapipe'
  (device errors, camera frame; see ``sensors``); ``layout``: canonical22, azure_kinect32 or
  mediapipe33 (default: the sensor's own layout, canonical22 without one).

Timestamps are the simulation clock in microseconds from 0; frames are paced by the runner.
The ground truth of what was sent is kept on the source (``events``: person, body id, side,
kind, exact time; body ids are the sensor's, see ``sensor``) for tests and tools that run the source in-process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import fields
from typing import Any, Iterator

import numpy as np

from streams.schema import Body, SkeletonFrame

from .patterns import make_style
from .person import Person, Stand
from .scenes import FAR_Z, NEAR_Z, SCENES, random_params, scene, walkway_pass
from .sensors import Sensor, SensorConfig, output_layout
from .style import WalkerParams

log = logging.getLogger(__name__)

_PARAM_NAMES = {f.name for f in fields(WalkerParams)}
CHUNK_PASSES = 2  # walkway passes simulated at a time when running for ever


class SimSource:
    paced = True

    def __init__(self, name: str, rate_hz: float = 30.0, seed: int = 0, people: int = 1,
                 pattern: str = "normal", severity: int = 0, sensor: str = "none",
                 layout: str | None = None, duration_s: float | None = None,
                 scene: str = "walkway", noise: float = 1.0, side: str | None = None,
                 passes: int = CHUNK_PASSES, walkway_m: float = FAR_Z - NEAR_Z,
                 **params: Any):
        unknown = set(params) - _PARAM_NAMES
        if unknown:
            raise TypeError(f"unknown sim options {sorted(unknown)}; walker parameters are "
                            f"{sorted(_PARAM_NAMES)}")
        if not 1.0 <= rate_hz <= 1000.0:
            raise ValueError(f"rate_hz {rate_hz} is outside 1-1000")
        if scene not in SCENES:
            raise ValueError(f"unknown scene {scene!r}; known: {', '.join(SCENES)}")
        if not 1.0 <= walkway_m <= 50.0:
            raise ValueError(f"walkway_m {walkway_m} is outside 1-50 m")
        if duration_s is not None and duration_s <= 0:
            raise ValueError("duration_s must be positive (or None for ever)")
        self.name = name
        self.rate_hz = float(rate_hz)
        self.people = int(people)
        self.scene = scene
        self.duration_s = duration_s
        self.passes = int(passes)
        self.walkway_m = float(walkway_m)
        self.layout = output_layout(sensor, layout)
        self.state: dict[str, str] = {"sim": "ready", "pattern": f"{pattern}/{severity}"}
        self._stop = threading.Event()
        root = np.random.SeedSequence(seed)
        s_people, s_walk, s_sensor = root.spawn(3)
        prng = np.random.default_rng(s_people)
        self._walk_rng = np.random.default_rng(s_walk)
        self.params = [random_params(prng, fixed=params) for _ in range(self.people)]
        self.styles = [make_style(pattern, severity, side=side, rng=prng)
                       for _ in range(self.people)]
        self.sensor = Sensor(SensorConfig(kind=sensor, noise=noise), self.layout,
                             [p.height_m for p in self.params], np.random.default_rng(s_sensor))
        self.events: list[tuple[int, str, str, float]] = []  # person, side, kind, seconds
        self.persons: list[list[Person]] = [[] for _ in range(self.people)]
        self._ended: list[bool] = [False] * self.people

    # ------------------------------------------------------------------ simulation

    def _extend(self, who: int) -> None:
        """Simulate the next stretch of person ``who``: the scene once, then (walkway) more
        passes from where the person stopped."""
        chunks = self.persons[who]
        if not chunks:
            plan = scene(self.scene, self.people, self._walk_rng, self.passes,
                         self.walkway_m)[who]
            acts = ([Stand(plan.delay_s)] if plan.delay_s else []) + list(plan.actions)
            person = Person.build(self.params[who], self.styles[who], acts, plan.start,
                                  plan.heading, 0.0, self._walk_rng)
        elif self.scene == "walkway":
            last = chunks[-1]
            person = Person.build(self.params[who], self.styles[who],
                                  walkway_pass(self.passes, self._walk_rng, length=self.walkway_m),
                                  (0.0, 0.0), 0.0,
                                  last.t_stop, self._walk_rng, stand=last.final_state())
        else:
            self._ended[who] = True
            return
        chunks.append(person)
        self.events += [(who, e.side, e.kind, e.t) for e in person.events()]

    def _ensure(self, who: int, t: float) -> None:
        chunks = self.persons[who]
        while not self._ended[who] and (not chunks or chunks[-1].t_stop <= t):
            self._extend(who)

    def end_time(self) -> float | None:
        """When the scene ends (seconds), None for ever."""
        if self.duration_s is not None:
            return float(self.duration_s)
        if self.scene == "walkway":
            return None
        for who in range(self.people):
            self._ensure(who, 0.0)
        return max(p[-1].t_stop for p in self.persons)

    # ------------------------------------------------------------------ frames

    def frames(self) -> Iterator[SkeletonFrame]:
        self.state["sim"] = "running"
        end = self.end_time()
        dt = 1.0 / self.rate_hz
        block = max(1, int(round(self.rate_hz * 2.0)))  # frames evaluated together
        i = 0
        while not self._stop.is_set():
            ts = (i + np.arange(block)) * dt
            if end is not None:
                ts = ts[ts < end]
                if len(ts) == 0:
                    break
            per_person = [self._evaluate(who, ts) for who in range(self.people)]
            for k, t in enumerate(ts):
                if self._stop.is_set():
                    break
                people = [{n: v[k] for n, v in pts.items()} for pts, _ in per_person]
                facing = [np.array([np.cos(h[k]), 0.0, np.sin(h[k])]) for _, h in per_person]
                bodies, truth = self.sensor.observe(float(t), people, facing)
                if truth.dropped:
                    continue
                yield SkeletonFrame(source=self.name, seq=0, t_us=int(round(t * 1e6)), host_us=0,
                                    layout=self.layout,
                                    bodies=[Body(bid, j, c) for bid, j, c in bodies])
            i += block
        self.state["sim"] = "ended"

    def _evaluate(self, who: int, ts: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Named points (N, 3) and headings (N,) of person ``who`` at times ts."""
        self._ensure(who, float(ts[-1]))
        chunks = self.persons[who]
        starts = np.array([p.t_start for p in chunks])
        idx = np.clip(np.searchsorted(starts, ts, side="right") - 1, 0, len(chunks) - 1)
        pts_all: dict[str, np.ndarray] = {}
        heading = np.zeros(len(ts))
        for k in np.unique(idx):
            sel = idx == k
            pts, st = chunks[k].evaluate(ts[sel])
            for n, v in pts.items():
                pts_all.setdefault(n, np.zeros((len(ts), 3)))[sel] = v
            heading[sel] = st["heading"]
        return pts_all, heading

    def close(self) -> None:
        self._stop.set()

