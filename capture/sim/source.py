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

* ``drop_rate``, ``id_switches_per_min``, ``swaps_per_min``: the sensor's faults (default: the
  ``sensors.SensorConfig`` values).

Timestamps are the simulation clock in microseconds from 0; frames are paced by the runner.
The ground truth of what was sent is kept on the source for tests and tools that run it
in-process, as far as frames have been sent:

* ``events``: :class:`TrueEvent` (person, body_id, side, kind, t seconds), the body id being the
  one the sensor reported for that person in the first frame sent at or after the event (None
  when it did not report the person there), so detected events can be matched per track;
* ``truth``: :class:`SimTruth`, what the sensor did: dropped frames, left/right swap intervals
  and body-id changes per person (compact: it grows with faults, not with frames).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, NamedTuple

import numpy as np

from streams.schema import Body, SkeletonFrame

from capture.sim.patterns import make_style
from capture.sim.person import Person, Stand
from capture.sim.scenes import FAR_Z, NEAR_Z, SCENES, random_params, scene, walkway_pass
from capture.sim.sensors import Sensor, SensorConfig, SensorTruth, output_layout
from capture.sim.style import WalkerParams

log = logging.getLogger(__name__)

_PARAM_NAMES = {f.name for f in fields(WalkerParams)}
CHUNK_PASSES = 2  # walkway passes simulated at a time when running for ever


class TrueEvent(NamedTuple):
    person: int
    body_id: int | None  # the sensor's id for the person when the event happened
    side: str
    kind: str
    t: float  # seconds, exact


@dataclass
class SimTruth:
    """What the sensor did to the frames sent so far (times in microseconds)."""

    dropped_us: list[int] = field(default_factory=list)
    # (person, first swapped frame, last swapped frame) of every left/right swap
    swaps: list[tuple[int, int, int]] = field(default_factory=list)
    # (time, person, id) whenever the id the sensor reports for a person changes
    body_ids: list[tuple[int, int, int]] = field(default_factory=list)
    _open: dict[int, int] = field(default_factory=dict, repr=False)  # person -> swaps index
    _ids: dict[int, int] = field(default_factory=dict, repr=False)  # person -> current id

    def add(self, t_us: int, truth: SensorTruth) -> None:
        if truth.dropped:
            self.dropped_us.append(t_us)
            return
        for who, bid in truth.body_ids.items():
            if self._ids.get(who) != bid:
                self._ids[who] = bid
                self.body_ids.append((t_us, who, bid))
        for who, swapped in truth.swapped.items():
            i = self._open.get(who)
            if swapped and i is None:
                self._open[who] = len(self.swaps)
                self.swaps.append((who, t_us, t_us))
            elif swapped:
                self.swaps[i] = (who, self.swaps[i][1], t_us)
            elif i is not None:
                del self._open[who]


class SimSource:
    paced = True
    EXTRA_OPTIONS = _PARAM_NAMES  # what **params takes: the walker's parameters

    def __init__(self, name: str, rate_hz: float = 30.0, seed: int = 0, people: int = 1,
                 pattern: str = "normal", severity: int = 0, sensor: str = "none",
                 layout: str | None = None, duration_s: float | None = None,
                 scene: str = "walkway", noise: float = 1.0, side: str | None = None,
                 passes: int = CHUNK_PASSES, walkway_m: float = FAR_Z - NEAR_Z,
                 drop_rate: float | None = None, id_switches_per_min: float | None = None,
                 swaps_per_min: float | None = None, **params: Any):
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
        faults = {k: float(v) for k, v in (("drop_rate", drop_rate),
                                           ("id_switches_per_min", id_switches_per_min),
                                           ("swaps_per_min", swaps_per_min)) if v is not None}
        self.sensor = Sensor(SensorConfig(kind=sensor, noise=noise, **faults), self.layout,
                             [p.height_m for p in self.params], np.random.default_rng(s_sensor))
        self.events: list[TrueEvent] = []
        self.truth = SimTruth()
        # simulated events not yet reached by a frame sent: (side, kind, seconds) per person
        self._pending: list[deque[tuple[str, str, float]]] = [deque() for _ in range(self.people)]
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
        self._pending[who].extend((e.side, e.kind, e.t) for e in person.events())

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
                t_us = int(round(t * 1e6))
                self.truth.add(t_us, truth)
                if truth.dropped:
                    continue
                self._settle(float(t), truth)
                yield SkeletonFrame(source=self.name, seq=0, t_us=t_us, host_us=0,
                                    layout=self.layout,
                                    bodies=[Body(bid, j, c) for bid, j, c in bodies])
            i += block
        self.state["sim"] = "ended"

    def _settle(self, t: float, truth: SensorTruth) -> None:
        """The events up to a frame being sent become true events with the id the sensor gave
        their person in it."""
        for who, pending in enumerate(self._pending):
            while pending and pending[0][2] <= t:
                side, kind, te = pending.popleft()
                self.events.append(TrueEvent(who, truth.body_ids.get(who), side, kind, te))

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

