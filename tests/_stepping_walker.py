"""A constructed walker whose gait events are known exactly (tests of the classical analysis).

Each foot stands still on the floor during stance and, during swing, travels one stride length
with a raised-cosine velocity profile u(tau) = V (1 - cos 2 pi tau) / 2, tau in [0, 1] over the
swing time Ts, V = 2 L / Ts. The pelvis moves at v = L / T (overground) or stays put while the
stance foot slides back at v (treadmill). Knees come from two-link inverse kinematics.

Because the profile is analytic, so are the times the coordinate method must find:
* the ankle is furthest ahead of the pelvis when u = v, and the strike refinement fires when
  u - v = -fraction * v;
* the ball of the foot is furthest behind when u = v after foot off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.skeletons import CJ

THIGH, SHANK = 0.45, 0.43


@dataclass(frozen=True)
class Gait:
    stride_s: float = 1.1
    stance: float = 0.6  # fraction of the stride
    stride_m: float = 1.3
    heading_deg: float = 30.0  # walking direction, degrees about +y from +z
    treadmill: bool = False
    half_width_m: float = 0.08  # ankles this far left/right of the line of progression
    start_s: float = 0.05  # right foot strike at this time (left half a stride later)

    @property
    def swing_s(self) -> float:
        return (1 - self.stance) * self.stride_s

    @property
    def speed(self) -> float:
        return self.stride_m / self.stride_s

    def direction(self) -> np.ndarray:
        a = np.radians(self.heading_deg)
        return np.array([np.sin(a), 0.0, np.cos(a)])

    def strikes(self, side: str, t_end: float) -> np.ndarray:
        first = self.start_s + (0.0 if side == "right" else self.stride_s / 2)
        return np.arange(first - 3 * self.stride_s, t_end + self.stride_s, self.stride_s)

    def zeni_strike_offset(self, fraction: float) -> float:
        """Where the refined strike falls relative to the true strike (s, negative = early)."""
        ratio = self.stride_m / self.stride_s / (2 * self.stride_m / self.swing_s)  # v / V
        tau = 1 - np.arccos(1 - 2 * fraction * ratio) / (2 * np.pi)
        return (tau - 1) * self.swing_s

    def zeni_off_offset(self) -> float:
        ratio = self.swing_s / (2 * self.stride_s)
        return np.arccos(1 - 2 * ratio) / (2 * np.pi) * self.swing_s


def _foot_progress(g: Gait, side: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance travelled along the walking direction by the foot (overground) and its
    height above the floor, per time."""
    strikes = g.strikes(side, float(t.max()))
    k = np.searchsorted(strikes, t, "right") - 1  # index of the last strike
    since = t - strikes[k]
    base = k * g.stride_m
    off = g.stance * g.stride_s
    tau = np.clip((since - off) / g.swing_s, 0, 1)
    swing = since > off
    # integral of the raised cosine: L * (tau - sin(2 pi tau) / (2 pi))
    moved = g.stride_m * (tau - np.sin(2 * np.pi * tau) / (2 * np.pi))
    dist = base + np.where(swing, moved, 0.0)
    height = np.where(swing, 0.05 * np.sin(np.pi * tau), 0.0)
    return dist, height


def _knee(hip: np.ndarray, ankle: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    d = ankle - hip
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / dist
    a = (THIGH ** 2 - SHANK ** 2 + dist ** 2) / (2 * dist)
    h = np.sqrt(np.clip(THIGH ** 2 - a ** 2, 0, None))
    # the knee bends forward: the perpendicular to u in the sagittal plane on the fwd side
    n = fwd - np.einsum("nc,nc->n", u, fwd)[:, None] * u
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return hip + a * u + h * n


def walk(g: Gait, t_s: np.ndarray) -> np.ndarray:
    """(T, 22, 3) canonical joints (y up, metres) of the walker at times ``t_s``."""
    n = len(t_s)
    fwd = g.direction()
    up = np.array([0.0, 1.0, 0.0])
    left = np.cross(up, fwd)
    j = np.zeros((n, 22, 3))
    pelvis_s = np.zeros(n) if g.treadmill else g.speed * t_s
    pelvis = np.array([0.3, 0.0, -0.2]) + pelvis_s[:, None] * fwd + np.array([0, 0.93, 0])
    pelvis = pelvis + np.outer(0.01 * np.cos(4 * np.pi * t_s / g.stride_s), up)
    j[:, CJ["pelvis"]] = pelvis
    fw = np.broadcast_to(fwd, (n, 3))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        dist, height = _foot_progress(g, side, t_s)
        # a foot lands 0.3 stride lengths ahead of the pelvis
        t_k = g.strikes(side, 0.0)[3]
        d_k, _ = _foot_progress(g, side, np.array([t_k]))
        along = dist - d_k[0] + 0.3 * g.stride_m + g.speed * (t_k - (t_s if g.treadmill else 0))
        ankle = np.array([0.3, 0.08, -0.2]) + along[:, None] * fwd \
            + sign * g.half_width_m * left + height[:, None] * up
        hip = pelvis + sign * 0.09 * left - 0.06 * up
        j[:, CJ[f"{side}_hip"]] = hip
        j[:, CJ[f"{side}_ankle"]] = ankle
        j[:, CJ[f"{side}_foot"]] = ankle + 0.14 * fwd - 0.05 * up
        j[:, CJ[f"{side}_knee"]] = _knee(hip, ankle, fw)
        shoulder = pelvis + 0.5 * up + sign * 0.18 * left
        swing = -sign * 0.25 * np.sin(2 * np.pi * (t_s - g.start_s) / g.stride_s)
        arm = (-np.cos(swing))[:, None] * up + np.sin(swing)[:, None] * fwd
        j[:, CJ[f"{side}_shoulder"]] = shoulder
        j[:, CJ[f"{side}_elbow"]] = shoulder + 0.3 * arm
        j[:, CJ[f"{side}_wrist"]] = shoulder + 0.55 * arm
        j[:, CJ[f"{side}_collar"]] = pelvis + 0.48 * up + sign * 0.07 * left
    for name, h in (("spine1", 0.1), ("spine2", 0.22), ("spine3", 0.35), ("neck", 0.52),
                    ("head", 0.65)):
        j[:, CJ[name]] = pelvis + h * up
    return j


def true_events(g: Gait, t0: float, t1: float) -> list[tuple[str, str, float]]:
    """(side, kind, time) of the walker's strikes and offs within [t0, t1]."""
    out = []
    for side in ("left", "right"):
        for s in g.strikes(side, t1):
            for kind, t in (("foot_strike", s), ("foot_off", s + g.stance * g.stride_s)):
                if t0 <= t <= t1:
                    out.append((side, kind, float(t)))
    return sorted(out, key=lambda e: e[2])
