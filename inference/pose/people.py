"""Which person a webcam pose estimator follows: candidates, gating, and the person of interest.

A pose backend reports people as :class:`PersonObservation` (33 image points in the MediaPipe
layout, visibilities, optional metric world landmarks). The :class:`PersonSelector` keeps the
people it has seen as candidates, each with a short history of where its hips were, and decides
which one is the person of interest:

* **Walking wins.** A gait system's subject is the person who walks. A candidate whose hips moved
  steadily (least-squares speed over ``walk_window_s``) at ``lock_speed_legs`` leg lengths per
  second or more, seen for the whole window, is *locked*: it is followed, and every other person
  ignored, until it has been lost for ``lost_after_s``. Speed is motion across the image: towards
  the camera it would come from the change of apparent size, which frame to frame is far too
  noisy (a person crouching or jumping changes it by 20 %), so someone walking straight at the
  camera is not locked, only followed provisionally (configure a walkway zone for such a set-up).
  Leg lengths per second
  make the rule independent of image size and distance (adults walk at about 1.2-2 leg lengths/s;
  someone standing, gesturing or bouncing in place stays well below 0.6).
* **Before anyone walks** the largest person is followed provisionally (a kiosk shows the patient
  waiting at the start of the walkway); it gives way to a candidate moving clearly faster.
* **No jumps.** An observation is accepted for a candidate only near where its hips were predicted
  (constant velocity) and at a similar size; otherwise it is another person or a failure, and is
  dropped (counted), never glued onto the track.
* **Walkway zone** (optional): people whose feet are outside a configured image region (e.g. the
  floor of the walkway, excluding a corridor behind it) are never candidates.

Each candidate has a body id that is never reused, so a different person is a different track.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from inference.pose.metric import horizontal_speed, leg_length_px

log = logging.getLogger(__name__)

# MediaPipe indices of the points that touch the floor (ankles, heels, toes).
FOOT_POINTS = (27, 28, 29, 30, 31, 32)
BOX_MIN_VIS = 0.3


@dataclass
class PersonObservation:
    """One person in one image: points in full-image pixels, MediaPipe 33 layout."""

    image_xy: np.ndarray  # (33, 2) float, px
    visibility: np.ndarray  # (33,) in [0, 1]
    world: np.ndarray | None = None  # (33, 3) hip-centred metres, camera axes (y down); 2D models: None
    score: float = 1.0  # the detector's own confidence that this is a person

    @property
    def hip_px(self) -> np.ndarray:
        return (self.image_xy[23] + self.image_xy[24]) / 2.0

    @property
    def box(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of the visible points (all points when too few are visible)."""
        vis = self.visibility >= BOX_MIN_VIS
        pts = self.image_xy[vis] if vis.sum() >= 4 else self.image_xy
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def leg_px(self) -> float:
        """Leg length in px (hip-knee-ankle); from the box height when the legs are hidden."""
        n = leg_length_px(self.image_xy, self.visibility, min_vis=BOX_MIN_VIS)
        if math.isnan(n):
            x0, y0, x1, y1 = self.box
            n = 0.45 * (y1 - y0)  # legs are about half of a standing body's height
        return max(n, 1.0)

    @property
    def feet_px(self) -> np.ndarray:
        return self.image_xy[list(FOOT_POINTS)].mean(axis=0)


@dataclass
class SelectorConfig:
    walk_window_s: float = 0.5
    lock_speed_legs: float = 0.6  # leg lengths / s of sustained motion that marks a walker
    provisional_margin_legs: float = 0.3  # how much faster another person must move to take over
    gate_legs: float = 0.8  # largest accepted miss of the predicted hip position, in leg lengths
    size_ratio: float = 1.6  # largest accepted change of leg length vs the candidate's median
    lost_after_s: float = 0.5  # a candidate unseen this long is dropped
    max_people: int = 3
    publish_provisional: bool = True  # report the person followed before anyone walks
    walkway: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 as image fractions

    def __post_init__(self) -> None:
        if self.walkway is not None:
            x0, y0, x1, y1 = (float(v) for v in self.walkway)
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise ValueError(f"walkway {self.walkway}: expected x0 < x1, y0 < y1 in [0, 1]")
            self.walkway = (x0, y0, x1, y1)
        if self.max_people < 1:
            raise ValueError("max_people must be at least 1")


@dataclass
class Candidate:
    cid: int
    first_us: int
    last_us: int
    last: PersonObservation
    # (t_us, hip x, hip y, leg px) of accepted observations
    history: deque = field(default_factory=lambda: deque(maxlen=256))
    locked: bool = False
    misses: int = 0

    def add(self, t_us: int, obs: PersonObservation) -> None:
        hx, hy = obs.hip_px
        self.history.append((t_us, float(hx), float(hy), obs.leg_px))
        self.last, self.last_us = obs, t_us

    def recent(self, t_us: int, window_s: float) -> np.ndarray:
        h = np.array(self.history, dtype=np.float64).reshape(-1, 4)
        return h[h[:, 0] > t_us - window_s * 1e6]

    def leg_median(self) -> float:
        return float(np.median([h[3] for h in list(self.history)[-15:]]))


class PersonSelector:
    def __init__(self, cfg: SelectorConfig | None = None):
        self.cfg = cfg or SelectorConfig()
        self.candidates: dict[int, Candidate] = {}
        self._next_id = 1
        self._provisional: int | None = None
        self.counters: dict[str, int] = {"people_found": 0, "rejected_jumps": 0,
                                         "lost": 0, "locked": 0, "outside_walkway": 0}
        self._size = (0, 0)

    # ------------------------------------------------------------------ state queries

    @property
    def locked(self) -> Candidate | None:
        for c in self.candidates.values():
            if c.locked:
                return c
        return None

    def wants_people(self) -> bool:
        """Whether new people should be looked for (nobody locked and room for more)."""
        return self.locked is None and len(self.candidates) < self.cfg.max_people

    def followed(self) -> list[Candidate]:
        """Candidates whose observations are still wanted this frame."""
        lk = self.locked
        return [lk] if lk is not None else list(self.candidates.values())

    def predict(self, c: Candidate, t_us: int) -> np.ndarray:
        """Hip position expected at ``t_us`` (constant velocity over the last 0.3 s)."""
        h = c.recent(c.last_us, 0.3)
        hip = np.array([h[-1, 1], h[-1, 2]])
        if len(h) >= 2 and h[-1, 0] > h[0, 0]:
            dt = (t_us - h[-1, 0]) / 1e6
            vx = horizontal_speed(h[:, 0], h[:, 1])
            vy = horizontal_speed(h[:, 0], h[:, 2])
            hip = hip + np.array([vx, vy]) * min(dt, 0.3)
        return hip

    def roi(self, c: Candidate, t_us: int, context: float = 1.5) -> tuple[float, float, float]:
        """A square region (centre x, centre y, side) where ``c`` should be at ``t_us``."""
        x0, y0, x1, y1 = c.last.box
        box_c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        centre = self.predict(c, t_us) + (box_c - c.last.hip_px)
        side = max(context * max(x1 - x0, y1 - y0), 3.0 * c.leg_median(), 64.0)
        return float(centre[0]), float(centre[1]), float(side)

    # ------------------------------------------------------------------ updates

    def begin_frame(self, t_us: int, width: int, height: int) -> list[int]:
        """Start a frame of ``width`` x ``height`` px; returns the ids of people just lost."""
        self._size = (width, height)
        return self.expire(t_us)

    def in_walkway(self, obs: PersonObservation) -> bool:
        if self.cfg.walkway is None:
            return True
        x0, y0, x1, y1 = self.cfg.walkway
        w, h = self._size
        fx, fy = obs.feet_px
        return x0 * w <= fx <= x1 * w and y0 * h <= fy <= y1 * h

    def accepts(self, c: Candidate, obs: PersonObservation, t_us: int) -> bool:
        leg = c.leg_median()
        jump = float(np.linalg.norm(obs.hip_px - self.predict(c, t_us)))
        ratio = obs.leg_px / leg
        ok = jump <= self.cfg.gate_legs * leg and 1 / self.cfg.size_ratio <= ratio <= self.cfg.size_ratio
        if not ok:
            self.counters["rejected_jumps"] += 1
            log.debug("person %d: rejected observation (hip off by %.0f px, leg ratio %.2f)",
                      c.cid, jump, ratio)
        return ok

    def observe(self, c: Candidate, obs: PersonObservation, t_us: int) -> None:
        c.add(t_us, obs)
        c.misses = 0

    def miss(self, c: Candidate) -> None:
        c.misses += 1

    def known(self, obs: PersonObservation) -> bool:
        """Whether ``obs`` is a person already followed (hips within the gate of one)."""
        for c in self.candidates.values():
            if np.linalg.norm(obs.hip_px - c.last.hip_px) <= self.cfg.gate_legs * c.leg_median():
                return True
        return False

    def add(self, obs: PersonObservation, t_us: int) -> Candidate | None:
        """A newly found person becomes a candidate (unless already known, outside the walkway,
        or there are max_people already)."""
        if len(self.candidates) >= self.cfg.max_people or self.known(obs):
            return None
        if not self.in_walkway(obs):
            self.counters["outside_walkway"] += 1
            return None
        c = Candidate(self._next_id, t_us, t_us, obs)
        c.add(t_us, obs)
        self._next_id += 1
        self.candidates[c.cid] = c
        self.counters["people_found"] += 1
        return c

    def match(self, observations: list[PersonObservation], t_us: int) -> None:
        """Associate a detector's people of one frame with the candidates (greedy by distance,
        within the gate); the rest become new candidates while people are wanted."""
        free = list(range(len(observations)))
        for c in self.followed():
            best, best_d = None, math.inf
            for i in free:
                d = float(np.linalg.norm(observations[i].hip_px - self.predict(c, t_us)))
                if d < best_d:
                    best, best_d = i, d
            if best is not None and self.accepts(c, observations[best], t_us):
                self.observe(c, observations[best], t_us)
                free.remove(best)
            else:
                self.miss(c)
        if self.wants_people():
            for i in sorted(free, key=lambda i: -observations[i].leg_px):
                self.add(observations[i], t_us)

    def expire(self, t_us: int) -> list[int]:
        """Drop candidates unseen for ``lost_after_s``; returns their ids."""
        gone = [cid for cid, c in self.candidates.items()
                if t_us - c.last_us > self.cfg.lost_after_s * 1e6]
        for cid in gone:
            c = self.candidates.pop(cid)
            self.counters["lost"] += 1
            log.info("person %d lost (%s)", cid, "locked" if c.locked else "candidate")
            if self._provisional == cid:
                self._provisional = None
        return gone

    # ------------------------------------------------------------------ choice

    def walking_speed(self, c: Candidate, t_us: int, min_span: float) -> float:
        """Speed across the image in leg lengths per second over the walk window; 0 until the
        candidate has been seen for ``min_span`` of the window."""
        w = self.cfg.walk_window_s
        h = c.recent(t_us, w)
        if len(h) < 3 or (h[-1, 0] - h[0, 0]) < min_span * w * 1e6:
            return 0.0
        return abs(horizontal_speed(h[:, 0], h[:, 1])) / float(np.median(h[:, 3]))

    def choose(self, t_us: int) -> Candidate | None:
        """The person of interest now (locks a walker); None when nobody should be reported."""
        lk = self.locked
        if lk is not None:
            return lk
        # a lock needs (nearly) the whole window of evidence; following provisionally half of it
        locking = {cid: self.walking_speed(c, t_us, 0.8) for cid, c in self.candidates.items()}
        walkers = [cid for cid, v in locking.items() if v >= self.cfg.lock_speed_legs]
        if walkers:
            cid = max(walkers, key=lambda k: locking[k])
            c = self.candidates[cid]
            c.locked = True
            self.counters["locked"] += 1
            log.info("person %d walks (%.2f leg lengths/s): locked", cid, locking[cid])
            for other in [k for k in self.candidates if k != cid]:
                del self.candidates[other]
            self._provisional = None
            return c
        if not self.cfg.publish_provisional or not self.candidates:
            return None
        speeds = {cid: self.walking_speed(c, t_us, 0.5) for cid, c in self.candidates.items()}
        cur = self._provisional
        if cur is None or cur not in self.candidates:
            cur = max(self.candidates, key=lambda k: self.candidates[k].leg_median())
        faster = max(self.candidates, key=lambda k: speeds[k])
        if speeds[faster] > speeds[cur] + self.cfg.provisional_margin_legs:
            cur = faster
        self._provisional = cur
        return self.candidates[cur]
