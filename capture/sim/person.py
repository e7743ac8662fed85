"""One simulated person over time: walking bouts along paths, standing, freezing episodes.

A :class:`Person` is built from a list of actions (:class:`Go` along path segments from wherever
the person stands, :class:`Stand` for a while) and gives joints and ground truth at any times.
Freezing-of-gait episodes (Style.freezes_per_min) split a Go into walks that stop, stand with
trembling knees and start again; festination shortens and quickens the steps before a freeze.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capture.sim.body import BodyDims, body_dims
from capture.sim.paths import Line, Path, Segment
from capture.sim.skeleton import assemble
from capture.sim.style import Style, WalkerParams
from capture.sim.walker import D2R, SIDES, Event, StandState, Walk, WalkPlan, initial_state


@dataclass(frozen=True)
class Go:
    """Walk along these segments, starting where and how the person stands."""

    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Stand:
    seconds: float


Action = Go | Stand


@dataclass
class Person:
    params: WalkerParams
    style: Style
    body: BodyDims
    walks: list[Walk] = field(default_factory=list)
    freezes: list[tuple[float, float]] = field(default_factory=list)  # (start, end) seconds
    t_start: float = 0.0
    t_stop: float = 0.0  # end of the last action

    @classmethod
    def build(cls, params: WalkerParams, style: Style, actions: list[Action],
              start: tuple[float, float], heading: float, t0: float,
              rng: np.random.Generator, stand: StandState | None = None) -> "Person":
        """Run the actions from standing at floor point ``start`` (x, z) facing ``heading``, or
        from the feet of ``stand`` (where an earlier Person stopped)."""
        body = body_dims(params.height_m, params.leg_scale, params.width_scale)
        me = cls(params, style, body, t_start=t0)
        t = t0
        state: StandState | None = stand
        pos, psi = np.array([start[0], 0.0, start[1]]), float(heading)
        if stand is not None:
            pos = me._stance_point(stand)
            psi = stand.heading
        for act in actions:
            if isinstance(act, Stand):
                t += act.seconds
                continue
            path = Path((float(pos[0]), float(pos[2])), psi, list(act.segments))
            if state is None:
                state = initial_state(body, params, path)
            s0 = 0.0
            for s_stop, freeze_s in me._freeze_plan(path, rng) + [(path.length, 0.0)]:
                if s_stop - s0 < 0.5:
                    continue
                plan = WalkPlan(path, s_stop,
                                festinate_steps=int(round(6 * style.festination))
                                if freeze_s > 0 else 0)
                walk = Walk(body, params, style, plan, state, t, rng)
                me.walks.append(walk)
                t = walk.t_end
                state = walk.final_state()
                if freeze_s > 0:
                    me.freezes.append((t, t + freeze_s))
                    t += freeze_s
                s0 = s_stop
            pos = me._stance_point(state)
            psi = state.heading
        if not me.walks:  # standing only: a zero-length walk gives the posture
            path = Path((float(pos[0]), float(pos[2])), psi, [Line(1.0)])
            state = state or initial_state(body, params, path)
            me.walks.append(Walk(body, params, style, WalkPlan(path, 0.0, max_steps=0), state,
                                 t0, rng))
        me.t_stop = t
        return me

    def _stance_point(self, state: StandState) -> np.ndarray:
        """The floor point between the ankles of a standing person."""
        mid = 0.5 * (state.heel["left"] + state.heel["right"])
        return mid + self.body.heel_back * np.array([np.cos(state.heading), 0.0,
                                                     np.sin(state.heading)])

    def final_state(self) -> StandState:
        return self.walks[-1].final_state()

    def _freeze_plan(self, path: Path, rng: np.random.Generator) -> list[tuple[float, float]]:
        """Arc lengths at which a freeze starts, and how long each lasts."""
        rate = self.style.freezes_per_min
        if rate <= 0:
            return []
        speed = (self.params.speed_mps or self.params.preferred_speed()) * self.style.speed_gain
        out, s = [], 0.0
        while True:
            s += rng.exponential(60.0 / rate) * speed
            if s > path.length - 1.5:
                return out
            if s > 1.5:
                lo, hi = self.style.freeze_s
                out.append((s, float(rng.uniform(lo, hi))))

    # ------------------------------------------------------------------ evaluation

    def _walk_index(self, t: np.ndarray) -> np.ndarray:
        starts = np.array([w.t0 for w in self.walks])
        return np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.walks) - 1)

    def evaluate(self, t: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(named points, walker state) at times t (seconds): points (N, 3) per name."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        idx = self._walk_index(t)
        points: dict[str, np.ndarray] = {}
        state: dict[str, np.ndarray] = {}
        for k in np.unique(idx):
            sel = np.nonzero(idx == k)[0]
            w = self.walks[k]
            S, legs = w.legs(t[sel])
            tremble = self._tremble(t[sel])
            if np.any(tremble):
                # trembling knees in a freeze; the ankle keeps the feet flat
                for side in SIDES:
                    S[f"knee_{side}"] = S[f"knee_{side}"] + tremble
                    S[f"ankle_{side}"] = S[f"ankle_{side}"] + tremble
                S, legs = w.legs(t[sel], overrides=S)
            pts = assemble(S, legs, self.body, self.style, self.params, w.arm_amp)
            for name, v in pts.items():
                points.setdefault(name, np.zeros((len(t), 3)))[sel] = v
            for name in ("a", "heading", "tilt", "c_left", "c_right", "stance_left",
                         "stance_right", "festination"):
                v = S[name]
                state.setdefault(name, np.zeros(len(t), dtype=v.dtype))[sel] = v
            for side in SIDES:
                for key in ("phi", "yaw", "toe"):
                    state.setdefault(f"{key}_{side}", np.zeros(len(t)))[sel] = legs[side][key]
            state.setdefault("walk", np.zeros(len(t), dtype=int))[sel] = k
        state["freezing"] = self._in_freeze(t)
        return points, state

    def _in_freeze(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros(len(t), dtype=bool)
        for a, b in self.freezes:
            out |= (t >= a) & (t < b)
        return out

    def _tremble(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros(len(t))
        for a, b in self.freezes:
            inside = (t >= a) & (t < b)
            if inside.any():
                env = np.clip(np.minimum(t - a, b - t) / 0.3, 0, 1)
                out += inside * env * 5.0 * D2R * np.sin(2 * np.pi * self.style.tremble_hz
                                                         * (t - a))
        return out

    def events(self) -> list[Event]:
        """Every foot strike and foot off (exact times), in time order."""
        return sorted((e for w in self.walks for e in w.events), key=lambda e: e.t)
