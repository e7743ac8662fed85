"""Ground truth of a simulated walk: joint angles per frame, gait phases, per-stride measures.

Angles are measured on the simulated joints with the conventions of the classical analysis
(``inference/kinematics.py``; sagittal plane = walking direction x up), so a perfect analysis of
noise-free joints would read exactly these values; the walking direction here is the walker's
true heading rather than an estimate. Degrees:

* ``hip_flexion_{side}``: thigh (hip -> knee) from the vertical, forward positive (room frame);
* ``hip_flexion_pelvis_{side}``: thigh relative to the pelvis (the clinical / OpenSim
  convention; the pelvis frame is up = pelvis -> spine1, right = left hip -> right hip);
* ``knee_flexion_{side}``: thigh minus shank (knee -> ankle) sagittal angle;
* ``ankle_dorsiflexion_{side}``: shank vs foot (ankle -> ball of foot), 0 when the foot is at
  right angles to the shank (the analysis' value plus a constant: its 0 is the ankle->ball
  line at right angles);
* ``arm_angle_{side}``: shoulder -> wrist from the vertical, forward positive;
* ``pelvis_obliquity``, ``pelvis_rotation``, ``trunk_tilt``: as in the analysis.

Per-stride measures use the names of ``streams.schema.CYCLE_METRICS`` and the conventions of
``inference/cycles.py`` (step length = ankle-to-ankle distance along the walking direction at the
strike; stride = the two steps; symmetry = left / right), evaluated at the exact event times
with the stride sampled every 1% of its duration.
"""

from __future__ import annotations

import numpy as np

from streams.schema import CYCLE_METRICS

from capture.sim.body import BodyDims
from capture.sim.paths import forward
from capture.sim.person import Person
from capture.sim.walker import SIDES

OTHER = {"left": "right", "right": "left"}
UP = np.array([0.0, 1.0, 0.0])


def _sag(v: np.ndarray, fwd: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    return np.degrees(np.arctan2(np.einsum("nk,nk->n", v, fwd), -(v @ up)))


def neutral_foot_deg(body: BodyDims) -> float:
    """Sagittal angle of ankle -> ball of foot from straight down, foot flat, shank vertical."""
    return float(np.degrees(np.arctan2(body.ball_fwd, body.ankle_height - body.ball_height)))


def angles(points: dict[str, np.ndarray], heading: np.ndarray, body: BodyDims
           ) -> dict[str, np.ndarray]:
    """Per-frame angles (deg) of named points (N, 3) for walking headings (N,) in radians."""
    fwd = forward(heading)
    out: dict[str, np.ndarray] = {}
    lat_left = np.cross(UP, fwd)
    pel_up = points["spine1"] - points["pelvis"]
    pel_up /= np.linalg.norm(pel_up, axis=1, keepdims=True)
    pel_r = points["right_hip"] - points["left_hip"]
    pel_r -= np.einsum("nk,nk->n", pel_r, pel_up)[:, None] * pel_up
    pel_r /= np.linalg.norm(pel_r, axis=1, keepdims=True)
    pel_f = np.cross(pel_up, pel_r)
    foot0 = neutral_foot_deg(body)
    for side in SIDES:
        hip, knee = points[f"{side}_hip"], points[f"{side}_knee"]
        ankle, foot = points[f"{side}_ankle"], points[f"{side}_foot"]
        thigh = _sag(knee - hip, fwd)
        shank = _sag(ankle - knee, fwd)
        foot_a = _sag(foot - ankle, fwd)
        out[f"hip_flexion_{side}"] = thigh
        v = knee - hip
        out[f"hip_flexion_pelvis_{side}"] = np.degrees(np.arctan2(
            np.einsum("nk,nk->n", v, pel_f), -np.einsum("nk,nk->n", v, pel_up)))
        out[f"knee_flexion_{side}"] = thigh - shank
        out[f"ankle_dorsiflexion_{side}"] = (foot_a - shank + 180.0) % 360.0 - 180.0 - foot0
        out[f"arm_angle_{side}"] = _sag(points[f"{side}_wrist"] - points[f"{side}_shoulder"], fwd)
    hips = points["left_hip"] - points["right_hip"]
    hw = np.linalg.norm(hips, axis=-1)
    out["pelvis_obliquity"] = np.degrees(np.arcsin(np.clip((hips @ UP) / hw, -1, 1)))
    out["pelvis_rotation"] = np.degrees(np.arctan2(np.einsum("nk,nk->n", hips, fwd),
                                                   np.einsum("nk,nk->n", hips, lat_left)))
    out["trunk_tilt"] = _sag(points["neck"] - points["pelvis"], fwd, -UP)
    return out


def frame_truth(person: Person, t: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame truth at times t: gait phase per leg (0 at its foot strike, NaN when not inside
    a stride between two real strikes), foot contact, angles, walking/freezing flags."""
    points, state = person.evaluate(t)
    out: dict[str, np.ndarray] = {"t": np.asarray(t, float)}
    ev = person.events()
    for side in SIDES:
        hs = np.array([e.t for e in ev if e.side == side and e.kind == "foot_strike"])
        to = np.array([e.t for e in ev if e.side == side and e.kind == "foot_off"])
        phase = np.full(len(t), np.nan)
        if len(hs) >= 2:
            k = np.searchsorted(hs, t, side="right") - 1
            ok = (k >= 0) & (k < len(hs) - 1)
            kk = np.clip(k, 0, len(hs) - 2)
            dur = hs[kk + 1] - hs[kk]
            # a pause (standing between two bouts) is not a stride
            pause = np.array([_stands_between(person, a, b) for a, b in zip(hs[:-1], hs[1:])])
            ok &= ~pause[kk]
            phase = np.where(ok, (t - hs[kk]) / dur, np.nan)
        out[f"phase_{side}"] = phase
        # on the floor: from each strike to the next foot off, and whenever standing
        contact = np.ones(len(t), dtype=bool)
        for a in to:
            nxt = hs[hs > a]
            b = nxt[0] if len(nxt) else np.inf
            contact &= ~((t >= a) & (t < b))
        out[f"contact_{side}"] = contact
    out["walking"] = state["a"] > 0
    out["freezing"] = state["freezing"]
    out["festination"] = state["festination"]
    out["heading"] = state["heading"]
    for k, v in angles(points, state["heading"], person.body).items():
        out[k] = v
    return out


def _stands_between(person: Person, a: float, b: float) -> bool:
    return any(w.t_end > a and w.t_end < b for w in person.walks) or \
        any(f0 < b and f1 > a for f0, f1 in person.freezes)


def cycle_truth(person: Person) -> list[dict[str, object]]:
    """Per-stride ground truth (side, start/end times, CYCLE_METRICS values) of every stride
    between two real foot strikes of one side within one walking bout."""
    strides = []
    for w in person.walks:
        ev = sorted(w.events, key=lambda e: e.t)
        for side in SIDES:
            hs = [e.t for e in ev if e.side == side and e.kind == "foot_strike"]
            strides += [(ev, side, fs0, fs1) for fs0, fs1 in zip(hs[:-1], hs[1:])]
    # every instant any stride needs, evaluated in one pass (a call per stride costs ~10x)
    need = []
    for ev, side, fs0, fs1 in strides:
        fs_o = _first(ev, OTHER[side], "foot_strike", fs0, fs1)
        need += [np.array([fs1] + ([fs_o] if fs_o is not None else [])),
                 np.linspace(fs0, fs1, 101)]
    if not need:
        return []
    times = np.concatenate(need)
    order = np.argsort(times, kind="stable")
    pts, st = person.evaluate(times[order])
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    ends = np.cumsum([len(n) for n in need])
    pick = [back[e - len(n):e] for n, e in zip(need, ends)]

    def sample(k: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return ({n: v[pick[k]] for n, v in pts.items()},
                {n: v[pick[k]] for n, v in st.items()})

    out = [_stride(person, ev, side, OTHER[side], fs0, fs1, sample(2 * i), sample(2 * i + 1))
           for i, (ev, side, fs0, fs1) in enumerate(strides)]
    return sorted(out, key=lambda r: r["start_s"])


def _first(ev, side: str, kind: str, a: float, b: float) -> float | None:
    for e in ev:
        if e.side == side and e.kind == kind and a < e.t < b:
            return e.t
    return None


def _stride(person: Person, ev, side: str, opp: str, fs0: float, fs1: float,
            at_strikes: tuple[dict, dict], over_stride: tuple[dict, dict]) -> dict:
    """One stride's measures from the person sampled at its closing (and the opposite) strike
    and at 101 instants across it."""
    m: dict[str, float | None] = {k: None for k in CYCLE_METRICS}
    fo_x = _first(ev, side, "foot_off", fs0, fs1)
    fs_o = _first(ev, opp, "foot_strike", fs0, fs1)
    fo_o = _first(ev, opp, "foot_off", fs0, fs_o if fs_o is not None else fs1)
    stride = fs1 - fs0
    m["stride_time_s"] = stride
    m["cadence_spm"] = 120.0 / stride
    pts, st = at_strikes
    fwd = forward(st["heading"])
    lat = np.cross(UP, fwd)

    def rel(name: str, i: int, axis: np.ndarray) -> float:
        return float((pts[name][i] - pts["pelvis"][i]) @ axis[i])

    if fs_o is not None:
        st_x, st_o = fs1 - fs_o, fs_o - fs0
        m["step_time_s"] = st_x
        m["step_time_symmetry"] = (st_x / st_o) if side == "left" else (st_o / st_x)
        step_x = rel(f"{side}_ankle", 0, fwd) - rel(f"{opp}_ankle", 0, fwd)
        step_o = rel(f"{opp}_ankle", 1, fwd) - rel(f"{side}_ankle", 1, fwd)
        m["step_length_m"] = step_x
        m["stride_length_m"] = step_x + step_o
        m["speed_mps"] = (step_x + step_o) / stride
        m["step_length_symmetry"] = (step_x / step_o) if side == "left" else (step_o / step_x)
        m["step_width_m"] = abs(rel(f"{side}_ankle", 0, lat) - rel(f"{opp}_ankle", 0, lat))
    if fo_x is not None:
        m["stance_pct"] = 100.0 * (fo_x - fs0) / stride
        m["swing_pct"] = 100.0 - m["stance_pct"]
    if fo_o is not None and fs_o is not None:
        m["single_support_pct"] = 100.0 * (fs_o - fo_o) / stride
        if fo_x is not None and fo_x > fs_o:
            m["double_support_pct"] = 100.0 * ((fo_o - fs0) + (fo_x - fs_o)) / stride
    ts = np.linspace(fs0, fs1, 101)
    p2, s2 = over_stride
    ang = angles(p2, s2["heading"], person.body)
    knee = ang[f"knee_flexion_{side}"]
    m["knee_rom_deg"] = float(np.ptp(knee))
    m["hip_rom_deg"] = float(np.ptp(ang[f"hip_flexion_{side}"]))
    m["arm_swing_deg"] = float(np.ptp(ang[f"arm_angle_{side}"]))
    if fo_x is not None:
        m["peak_swing_knee_flexion_deg"] = float(np.max(knee[ts >= fo_x]))
    return {"side": side, "start_s": fs0, "end_s": fs1, "foot_off_s": fo_x,
            "opposite_strike_s": fs_o, "opposite_off_s": fo_o, "metrics": m}
