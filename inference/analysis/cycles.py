"""Per-stride measures from gait events and per-frame features, and per-bout summaries.

A stride of side X runs from a foot strike of X to its next foot strike. Inside it lie the
opposite foot off (end of the first double support), the opposite foot strike (start of the
second double support) and X's foot off (end of X's stance). Conventions:

* step time / length of X: from the opposite foot strike to X's strike; step length is the
  distance between the ankles along the walking direction at X's strike (so it needs no room
  coordinates and works on a treadmill or with a turning camera); stride length = the two step
  lengths inside the stride; step width = lateral distance between the ankles at X's strike.
* stance % = X's foot off after its strike; double support = both initial and terminal double
  support; single support = the opposite foot's swing.
* symmetry ratios are left / right within the stride (1 = symmetric), whichever side it is.
* arm swing = range of X's arm angle over the stride.

A measure that cannot be computed (an event missing, a joint lost) is None, and the record's
flags say why it should or should not be trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inference.analysis.kinematics import F
from inference.analysis.motion import Q_GAP, QUALITY_NAMES, STANDING, TURNING
from streams.schema import CYCLE_METRICS, UNTRUSTED_FLAGS, GaitCycle

OTHER = {"left": "right", "right": "left"}
_QUALITY_BITS = np.array(list(QUALITY_NAMES))

@dataclass(frozen=True)
class CycleOptions:
    max_stride_s: float = 3.0  # a longer stride is published flagged implausible_timing
    min_stride_s: float = 0.5
    # Standing still (or no data) this long between two strikes of one side makes them parts of
    # two walks: no stride joins them (the bout detector's pause; see OnlineGaitAnalyzer).
    max_pause_s: float = 1.0
    # A stride whose walking direction swings through more than this is a turn: its step
    # lengths (along one direction) and sagittal angles do not describe straight walking.
    max_turn_deg: float = 20.0
    stance_pct_range: tuple[float, float] = (45.0, 85.0)
    flag_fraction: float = 0.1  # a frame-quality issue in more than this share of frames flags it


@dataclass(frozen=True)
class Event:
    side: str
    kind: str
    t_us: int


class Pauses:
    """The pauses that split strides (``inference.analysis.analyzer`` module docstring): the walker
    stood still, or no frame came, for ``max_pause_s`` or more. Fed every frame in time order
    (``note``); asked at each stride's closing strike (``splits``). Shared by the classical
    analysis and the gait transformer's cycles, so both apply one rule."""

    def __init__(self, max_pause_s: float):
        self._min_us = int(max_pause_s * 1e6)
        # (start_us, end_us); the last one grows while the walker keeps standing
        self.spans: list[list[int]] = []
        self._still_from: int | None = None  # first frame of the still run under way
        self._prev: int | None = None  # time of the last frame

    def note(self, t_us: int, still: bool) -> None:
        prev, self._prev = self._prev, t_us
        if len(self.spans) > 16:
            # Without strikes to prune them (a long stand-and-fidget): merging the two oldest
            # is exact for every stride still to close, as each ends after both.
            (a, _), (_, b) = self.spans[:2]
            self.spans[:2] = [[a, b]]
        if prev is not None and t_us - prev >= self._min_us:
            self.spans.append([prev, t_us])
        if not still:
            self._still_from = None
            return
        if self._still_from is None:
            self._still_from = t_us
        if t_us - self._still_from >= self._min_us:
            if self.spans and self.spans[-1][0] == self._still_from:
                self.spans[-1][1] = t_us
            else:
                self.spans.append([self._still_from, t_us])

    def splits(self, fs0: int, fs1: int, open_from: int) -> bool:
        """Whether a pause lies between the strikes ``fs0`` and ``fs1`` (they then belong to
        two walks). Pauses that end before ``open_from``, the earliest start of a stride still
        to close, are forgotten: none can split one later."""
        paused = any(a < fs1 and b > fs0 for a, b in self.spans)
        self.spans = [p for p in self.spans if p[1] >= open_from]
        return paused


def _interp(t_us: np.ndarray, y: np.ndarray, at_us: int) -> float:
    if not (t_us[0] <= at_us <= t_us[-1]):
        return float("nan")
    return float(np.interp(at_us, t_us, y))


def _first(events: list[Event], side: str, kind: str, after: int, before: int) -> int | None:
    for e in events:
        if e.side == side and e.kind == kind and after < e.t_us < before:
            return e.t_us
    return None


def _num(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _range(y: np.ndarray) -> float:
    return float(y.max() - y.min()) if len(y) and np.isfinite(y).all() else float("nan")


def turn_deg(t_us: np.ndarray, heading: np.ndarray, fs0: int, fs1: int,
             delay_us: int = 0) -> float | None:
    """How far (degrees, max - min) the walking direction swings during the stride: headings
    (rad, unwrapped here) of the frames in ``[fs0, fs1]`` shifted by the heading estimate's own
    delay (``motion.heading_delay_ms``), so that a turn counts for the stride it happens in
    rather than the one after. None when no frame there has a heading."""
    sel = (t_us >= fs0 + delay_us) & (t_us <= fs1 + delay_us) & np.isfinite(heading)
    if not sel.any():
        return None
    h = heading[sel]
    # np.unwrap changes nothing (but a zero's sign) unless a step reaches half a turn; it costs
    # more than the rest of a cycle's measures
    if len(h) > 1 and np.abs(h[1:] - h[:-1]).max() >= np.pi:
        h = np.unwrap(h)
    return float(np.degrees(h.max() - h.min()))


def step_length(at: Callable[[str, int], float], side: str, opp: str, when: int
                ) -> float | None:
    """Length of the step that ``side``'s strike at ``when`` ends, along the walking direction:
    heel to heel, where a clinician measures it, when both heels are seen then (the ankles
    sit 5-10 cm above and ahead of the heels, and a foot that lands toe-in or pointing up
    moves its ankle, not its heel); ankle to ankle otherwise."""
    for part in ("heel", "ankle"):
        d = _num(at(f"{part}_fwd_{side}", when) - at(f"{part}_fwd_{opp}", when))
        if d is not None:
            return d
    return None


def _heel_stride(t_us: np.ndarray, feats: np.ndarray, side: str, fs0: int, fs1: int
                 ) -> tuple[float, float] | None:
    """How far ``side``'s heel went from its strike at ``fs0`` to the next at ``fs1`` along the
    walking direction - the stride length of a walkway, footprint to footprint - or None when
    the heel is not seen at both or the trace does not cover the stride. Measured relative to
    the pelvis plus the pelvis' own travel (its forward speed integrated), so the walking
    direction may turn slowly within the stride. The sum of the two steps falls short of it:
    at the other foot's strike the rear heel has already lifted and moved."""
    col = feats[:, F[f"heel_fwd_{side}"]]
    a, b = _interp(t_us, col, fs0), _interp(t_us, col, fs1)
    if not (np.isfinite(a) and np.isfinite(b)):
        return None
    inside = (t_us > fs0) & (t_us < fs1)
    tt = np.concatenate([[fs0], t_us[inside], [fs1]]) / 1e6
    v = feats[:, F["pelvis_fwd_speed"]]
    vv = np.concatenate([[_interp(t_us, v, fs0)], v[inside], [_interp(t_us, v, fs1)]])
    if not np.isfinite(vv).all():
        return None
    travel = float(np.sum((vv[1:] + vv[:-1]) / 2 * np.diff(tt)))
    return b - a + travel, travel


def stride_cycle(source: str, track: int, side: str, fs0: int, fs1: int, events: list[Event],
                 t_us: np.ndarray, feats: np.ndarray, quality: np.ndarray, state: np.ndarray,
                 heading: np.ndarray, opts: CycleOptions, emitted_us: int, turn_delay_us: int
                 ) -> GaitCycle:
    """:func:`cycle_record` of a stride from an analysis' per-frame trace (times ascending,
    ``heading`` the walking direction's angle per frame): the frames around the stride, and
    its turn (:func:`turn_deg`) from the headings ``turn_delay_us`` (the heading estimate's
    delay) later, which the trace should reach unless it ended. Both analyses make their
    records here, so a stride through a turn is ``turning`` by one rule whichever found it."""
    t = t_us
    i0 = max(int(np.searchsorted(t, fs0, "left")) - 1, 0)
    i1 = min(int(np.searchsorted(t, fs1, "right")) + 1, len(t))
    i2 = min(int(np.searchsorted(t, fs1 + turn_delay_us, "right")) + 1, len(t))
    turned = turn_deg(t[i0:i2], heading[i0:i2], fs0, fs1, turn_delay_us)
    return cycle_record(source, track, side, fs0, fs1, events, t[i0:i1], feats[i0:i1],
                        quality[i0:i1], state[i0:i1], opts, emitted_us, turned)


def cycle_record(source: str, track: int, side: str, fs0: int, fs1: int, events: list[Event],
                 t_us: np.ndarray, feats: np.ndarray, quality: np.ndarray, state: np.ndarray,
                 opts: CycleOptions, emitted_us: int, turned_deg: float | None = None
                 ) -> GaitCycle:
    """The GaitCycle of the stride of ``side`` from strike ``fs0`` to strike ``fs1``.

    ``events``: gait events of both sides (any order) covering the stride; ``t_us``/``feats``/
    ``quality``/``state``: the per-frame trace (kinematics.FEATURES, frames quality bits and
    motion states) covering the stride. A trace that does not reach back to ``fs0`` (a stride
    longer than the analyzer keeps) gives no frame-based measures and the flag
    ``too_few_frames``: measures over part of a stride would look plausible and be wrong.
    ``turned_deg``: the stride's swing of walking direction (:func:`turn_deg`); it is
    ``turning`` above ``max_turn_deg``. Without it, any frame in the TURNING motion state
    flags the stride (that state lags the turn by the length of its window).
    """
    opp = OTHER[side]
    ev = sorted(events, key=lambda e: e.t_us)
    fo_x = _first(ev, side, "foot_off", fs0, fs1)
    fs_o = _first(ev, opp, "foot_strike", fs0, fs1)
    fo_o = _first(ev, opp, "foot_off", fs0, fs_o if fs_o is not None else fs1)
    flags: list[str] = []
    stride = (fs1 - fs0) / 1e6
    m: dict[str, float | None] = {k: None for k in CYCLE_METRICS}
    m["stride_time_s"] = stride
    m["cadence_spm"] = 120.0 / stride

    def at(name: str, when: int) -> float:
        return _interp(t_us, feats[:, F[name]], when)

    step_x = step_o = None
    if fs_o is not None:
        m["step_time_s"] = (fs1 - fs_o) / 1e6
        st_x, st_o = (fs1 - fs_o) / 1e6, (fs_o - fs0) / 1e6
        left, right = (st_x, st_o) if side == "left" else (st_o, st_x)
        m["step_time_symmetry"] = left / right if right > 0 else None
        step_x, step_o = step_length(at, side, opp, fs1), step_length(at, opp, side, fs_o)
        m["step_length_m"] = step_x
        if step_x is not None and step_o is not None:
            m["stride_length_m"] = step_x + step_o
            m["speed_mps"] = (step_x + step_o) / stride
            left, right = (step_x, step_o) if side == "left" else (step_o, step_x)
            m["step_length_symmetry"] = left / right if right > 0 else None
        heel = _heel_stride(t_us, feats, side, fs0, fs1)
        steps = m.get("stride_length_m")
        # The heel's own travel is the footprint-to-footprint stride only on ground that stays
        # still. On a treadmill the pelvis hardly progresses (the footprints ride the belt), so
        # there the stride stays the sum of the two heel-to-heel steps: the belt's travel.
        if heel is not None and (steps is None or heel[1] >= 0.5 * steps):
            m["stride_length_m"] = heel[0]
            m["speed_mps"] = heel[0] / stride
        m["step_width_m"] = _num(abs(at(f"ankle_lat_{side}", fs1) - at(f"ankle_lat_{opp}", fs1)))
    if fo_x is not None:
        m["stance_pct"] = 100.0 * (fo_x - fs0) / (fs1 - fs0)
        m["swing_pct"] = 100.0 - m["stance_pct"]
    if fo_o is not None and fs_o is not None:
        m["single_support_pct"] = 100.0 * (fs_o - fo_o) / (fs1 - fs0)
        if fo_x is not None and fo_x > fs_o:
            m["double_support_pct"] = 100.0 * ((fo_o - fs0) + (fo_x - fs_o)) / (fs1 - fs0)
    if fo_x is None or fs_o is None or fo_o is None or (fo_x is not None and fs_o is not None
                                                         and fo_x < fs_o):
        flags.append("missing_events")

    sel = (t_us >= fs0) & (t_us <= fs1)
    covered = len(t_us) > 0 and t_us[0] <= fs0 and t_us[-1] >= fs1
    if covered and sel.sum() >= 3:
        knee = feats[sel, F[f"knee_flexion_{side}"]]
        m["knee_rom_deg"] = _num(_range(knee))
        m["hip_rom_deg"] = _num(_range(feats[sel, F[f"hip_flexion_{side}"]]))
        m["arm_swing_deg"] = _num(_range(feats[sel, F[f"arm_angle_{side}"]]))
        if fo_x is not None:
            swing = (t_us >= fo_x) & (t_us <= fs1)
            if swing.any():
                m["peak_swing_knee_flexion_deg"] = _num(
                    float(np.max(feats[swing, F[f"knee_flexion_{side}"]])))
        q = quality[sel]
        counts = ((q[:, None] & _QUALITY_BITS) != 0).sum(axis=0).tolist()
        for (bit, name), count in zip(QUALITY_NAMES.items(), counts):
            # A gap in time inside a stride may hide its events: one is enough.
            share = count / len(q)
            if share > opts.flag_fraction or (bit == Q_GAP and share > 0):
                flags.append(name)
        st = state[sel]
        if (turned_deg > opts.max_turn_deg) if turned_deg is not None else (st == TURNING).any():
            flags.append("turning")
        if (st == STANDING).any():
            flags.append("standing")
    else:
        flags.append("too_few_frames")
    lo, hi = opts.stance_pct_range
    if not opts.min_stride_s <= stride <= opts.max_stride_s or (
            m["stance_pct"] is not None and not lo <= m["stance_pct"] <= hi):
        flags.append("implausible_timing")
    return GaitCycle(source=source, seq=0, t_us=emitted_us, host_us=0, track=track, side=side,
                     start_us=fs0, end_us=fs1, metrics={k: _num(v) if v is not None else None
                                                        for k, v in m.items()},
                     flags=flags, method="classical")


def why_no_cycles(duration_s: float, strikes: dict[str, int]) -> str:
    """Why a recording gave no gait cycle, in words: a cycle runs from one foot strike to the
    next of the same foot (``strikes``: foot strikes seen per side)."""
    if duration_s < 1.0:
        return (f"the recording lasts {duration_s:.2f} s, shorter than one stride (a stride of "
                "adult walking takes about 1 s)")
    if max(strikes.values(), default=0) < 2:
        return ("no foot was seen striking the ground twice (foot strikes: "
                + ", ".join(f"{s} {n}" for s, n in sorted(strikes.items())) + ")")
    return ("each stride between two foot strikes was cut by a pause, a gap in the frames or "
            "a missing foot off")


def trusted(cycle: GaitCycle) -> bool:
    return not (set(cycle.flags) & UNTRUSTED_FLAGS)


def summarize(cycles: list[GaitCycle]) -> dict[str, object]:
    """Per-metric n, mean, sd and coefficient of variation (%) over the trusted cycles."""
    use = [c for c in cycles if trusted(c)]
    out: dict[str, object] = {"cycles": len(cycles), "trusted_cycles": len(use)}
    metrics: dict[str, dict[str, float | int | None]] = {}
    for k in CYCLE_METRICS:
        v = np.array([c.metrics[k] for c in use if c.metrics.get(k) is not None], dtype=float)
        if len(v) == 0:
            metrics[k] = {"n": 0, "mean": None, "sd": None, "cv_pct": None}
            continue
        mean = float(v.mean())
        sd = float(v.std(ddof=1)) if len(v) > 1 else None
        cv = 100.0 * sd / abs(mean) if sd is not None and mean != 0 else None
        metrics[k] = {"n": int(len(v)), "mean": mean, "sd": sd, "cv_pct": cv}
    out["metrics"] = metrics
    return out
