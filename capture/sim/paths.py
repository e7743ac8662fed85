"""Walking paths on the floor: straight lines and arcs, sampled densely by arc length.

Floor coordinates are the wire's horizontal plane (x, z) with y up. A heading ``psi`` points
along (cos psi, 0, sin psi); increasing psi turns the walker to its right, whose direction is
(-sin psi, 0, cos psi).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DS = 0.01  # m between path samples


def forward(psi: np.ndarray | float) -> np.ndarray:
    psi = np.asarray(psi, dtype=float)
    return np.stack([np.cos(psi), np.zeros_like(psi), np.sin(psi)], axis=-1)


def rightward(psi: np.ndarray | float) -> np.ndarray:
    psi = np.asarray(psi, dtype=float)
    return np.stack([-np.sin(psi), np.zeros_like(psi), np.cos(psi)], axis=-1)


@dataclass(frozen=True)
class Line:
    length: float


@dataclass(frozen=True)
class Arc:
    radius: float
    turn_deg: float  # + turns to the walker's right


Segment = Line | Arc


class Path:
    """A planar path from ``start`` (x, z) with initial heading ``psi0`` through segments."""

    def __init__(self, start: tuple[float, float], psi0: float, segments: list[Segment]):
        if not segments:
            raise ValueError("a path needs at least one segment")
        pts = [np.array([start[0], 0.0, start[1]], dtype=float)]
        psis = [float(psi0)]
        for seg in segments:
            if isinstance(seg, Line):
                if seg.length <= 0:
                    raise ValueError(f"line length {seg.length} must be positive")
                n = max(1, int(np.ceil(seg.length / DS)))
                step = seg.length / n
                for _ in range(n):
                    pts.append(pts[-1] + step * forward(psis[-1]))
                    psis.append(psis[-1])
            elif isinstance(seg, Arc):
                if seg.radius <= 0.05:
                    raise ValueError(f"arc radius {seg.radius} m is too small to walk")
                ang = np.radians(seg.turn_deg)
                n = max(1, int(np.ceil(abs(ang) * seg.radius / DS)))
                dpsi = ang / n
                chord_len = 2 * seg.radius * np.sin(abs(dpsi) / 2)
                for _ in range(n):
                    mid = psis[-1] + dpsi / 2
                    pts.append(pts[-1] + chord_len * forward(mid))
                    psis.append(psis[-1] + dpsi)
            else:
                raise TypeError(f"unknown path segment {seg!r}")
        self.points = np.asarray(pts)  # (M, 3), y = 0
        self.psi = np.asarray(psis)
        seglen = np.linalg.norm(np.diff(self.points, axis=0), axis=1)
        self.s = np.concatenate([[0.0], np.cumsum(seglen)])
        self.segments = list(segments)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    @property
    def end_heading(self) -> float:
        return float(self.psi[-1])

    def _index(self, s: np.ndarray | float) -> np.ndarray:
        return np.clip(np.searchsorted(self.s, s), 0, len(self.s) - 1)

    def heading(self, s: np.ndarray | float) -> np.ndarray:
        return np.interp(s, self.s, np.unwrap(self.psi))

    def point(self, s: np.ndarray | float) -> np.ndarray:
        s = np.asarray(s, dtype=float)
        out = np.stack([np.interp(s, self.s, self.points[:, k]) for k in range(3)], axis=-1)
        # beyond the ends the path continues straight
        for end, idx in ((s < 0, 0), (s > self.length, -1)):
            if np.any(end):
                ds = np.where(end, s - self.s[idx], 0.0)
                out = out + ds[..., None] * forward(self.psi[idx]) * end[..., None]
        return out

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(arc length, signed lateral offset to the walker's right) of floor points (N, 3)."""
        p = np.atleast_2d(p)
        d = p[:, None, [0, 2]] - self.points[None, :, [0, 2]]
        i = np.argmin(np.einsum("nmk,nmk->nm", d, d), axis=1)
        f, r = forward(self.psi[i]), rightward(self.psi[i])
        rel = p - self.points[i]
        along = np.einsum("nk,nk->n", rel, f)
        return self.s[i] + along, np.einsum("nk,nk->n", rel, r)
