"""A recording loaded from a file: canonical joints on the source's clock and the file's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.skeletons import (
    CANONICAL,
    CANONICAL_FEET,
    CANONICAL_JOINTS,
    CANONICAL_PARENTS,
    FOOT_POINTS,
    LAYOUTS,
)


class RecordingError(ValueError):
    """A recording could not be read or mapped; the message names the file and what was wrong."""


@dataclass
class Recording:
    """One walk as the rest of the pipeline sees it.

    ``joints`` are canonical (streams.skeletons.CANONICAL_JOINTS order), metres, right-handed,
    y up, never NaN: a joint that could not be computed in a frame is filled (interpolated across
    a gap, or placed at its parent joint) and has confidence 0 there. ``t_us`` is the source clock
    with the first stored frame at 0 unless the file carries its own times.

    ``raw_layout``/``raw_joints``/``raw_confidence`` keep the source's own joints when the source
    has a layout in streams.skeletons (e.g. kinect_v1_20) so that it can be published as is.
    ``markers`` keeps the labelled marker trajectories (metres, same axes as ``joints``, NaN where
    missing) for ground-truth work such as stride length from heel markers.
    ``feet``/``feet_confidence`` are the optional foot points (streams.skeletons.FOOT_POINTS:
    heels, toes; (T, 4, 3) and (T, 4)) where the source has them, filled like ``joints`` with
    confidence 0 where a point is missing; None when it has none.
    """

    name: str
    t_us: np.ndarray
    joints: np.ndarray
    confidence: np.ndarray
    rate_hz: float
    source_layout: str
    meta: dict[str, Any] = field(default_factory=dict)
    raw_layout: str | None = None
    raw_joints: np.ndarray | None = None
    raw_confidence: np.ndarray | None = None
    markers: dict[str, np.ndarray] = field(default_factory=dict)
    feet: np.ndarray | None = None
    feet_confidence: np.ndarray | None = None

    def skeleton(self) -> tuple[str, np.ndarray, np.ndarray]:
        """(layout, joints, confidence) in the canonical frame: canonical26 (the 22 joints, then
        the foot points) when the recording has foot points, else canonical22."""
        if self.feet is None or self.feet_confidence is None:
            return CANONICAL, self.joints, self.confidence
        return (CANONICAL_FEET, np.concatenate([self.joints, self.feet], axis=1),
                np.concatenate([self.confidence, self.feet_confidence], axis=1))

    def wire_skeleton(self) -> tuple[str, np.ndarray, np.ndarray]:
        """(layout, joints, confidence) as a live source would publish this recording: the
        source's own layout when streams.skeletons knows it (e.g. kinect_v1_20), canonical joints
        (with the foot points when it has them: :meth:`skeleton`) otherwise; float32,
        contiguous."""
        if self.raw_layout in LAYOUTS and self.raw_joints is not None:
            layout, joints, conf = self.raw_layout, self.raw_joints, self.raw_confidence
        else:
            layout, joints, conf = self.skeleton()
        return (layout, np.ascontiguousarray(joints, dtype=np.float32),
                np.ascontiguousarray(conf, dtype=np.float32))

    def __post_init__(self) -> None:
        t = len(self.t_us)
        n = len(CANONICAL_JOINTS)
        if self.t_us.dtype != np.int64 or self.t_us.ndim != 1:
            raise RecordingError(f"{self.name}: t_us must be 1-D int64, got {self.t_us.dtype} "
                                 f"{self.t_us.shape}")
        if self.joints.shape != (t, n, 3) or self.confidence.shape != (t, n):
            raise RecordingError(f"{self.name}: joints {self.joints.shape} / confidence "
                                 f"{self.confidence.shape} do not match {t} frames x {n} joints")
        if not np.isfinite(self.joints).all():
            raise RecordingError(f"{self.name}: joints contain NaN or infinite values")
        if t > 1 and np.any(np.diff(self.t_us) <= 0):
            raise RecordingError(f"{self.name}: timestamps are not strictly increasing")
        if self.raw_joints is not None and (self.raw_confidence is None
                                            or self.raw_joints.shape[0] != t):
            raise RecordingError(f"{self.name}: raw joints need a confidence and {t} frames")
        if self.feet is not None and (
                self.feet.shape != (t, len(FOOT_POINTS), 3) or self.feet_confidence is None
                or self.feet_confidence.shape != (t, len(FOOT_POINTS))
                or not np.isfinite(self.feet).all()):
            raise RecordingError(f"{self.name}: foot points must be finite ({t}, "
                                 f"{len(FOOT_POINTS)}, 3) with a confidence per point")

    @property
    def n_frames(self) -> int:
        return len(self.t_us)

    @property
    def duration_s(self) -> float:
        return float(self.t_us[-1] - self.t_us[0]) / 1e6 if len(self.t_us) else 0.0

    def joint(self, name: str) -> np.ndarray:
        """(T, 3) trajectory of one canonical joint."""
        return self.joints[:, CANONICAL_JOINTS.index(name)]


def fill_foot_points(points: np.ndarray, joints: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """(foot points without NaN, confidence) from (T, 4, 3) heel/toe trajectories with NaN where
    missing, like :func:`fill_missing`; a point never seen sits on its canonical neighbour
    (heel on the ankle, toe on the foot) at confidence 0. (None, None) when no point is seen."""
    p = np.array(points, dtype=np.float64, copy=True)
    ok = np.isfinite(p).all(-1)
    if not ok.any():
        return None, None
    idx = np.arange(p.shape[0])
    for k, name in enumerate(FOOT_POINTS):
        good = ok[:, k]
        if not good.any():
            side, part = name.split("_")
            p[:, k] = joints[:, CANONICAL_JOINTS.index(
                f"{side}_{'ankle' if part == 'heel' else 'foot'}")]
            continue
        for c in range(3):
            p[~good, k, c] = np.interp(idx[~good], idx[good], p[good, k, c])
    return p.astype(np.float32), ok.astype(np.float32)


def fill_missing(joints: np.ndarray, parents: tuple[int, ...] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(joints without NaN, confidence): confidence is 1 where a joint was computed and 0 where
    it was not; a gap is filled by linear interpolation in time (held at the ends) and a joint
    never computed sits on its parent (canonical tree), so nothing downstream sees NaN."""
    parents = CANONICAL_PARENTS if parents is None else parents
    j = np.array(joints, dtype=np.float64, copy=True)
    ok = np.isfinite(j).all(-1)
    conf = ok.astype(np.float32)
    idx = np.arange(j.shape[0])
    never: list[int] = []
    for k in range(j.shape[1]):
        good = ok[:, k]
        if good.all():
            continue
        if not good.any():
            never.append(k)
            continue
        for c in range(3):
            j[~good, k, c] = np.interp(idx[~good], idx[good], j[good, k, c])
    for k in sorted(never):  # parents come before children in the canonical order
        p = parents[k]
        j[:, k] = j[:, p] if p >= 0 else 0.0
    return j.astype(np.float32), conf
