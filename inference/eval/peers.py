"""Published gait-event detectors run on the same trials as ours, for ``eval events --peer``.

IntellEvent (Dumphart et al. 2023, "Robust deep learning-based gait event detection across
various pathologies", PLOS ONE 18(8):e0288555): two bidirectional LSTMs on the velocities of
the heel, toe and ankle markers, as packaged by ``gaitkit`` (PyPI, MIT, with its ONNX
weights; ``pip install "gaitstream[peers]"``). It looks at a whole trial at once (offline), so
the adapter collects the frames and runs it at ``flush``; the events then go through the same
matching as ours. It gets what our analysis gets: the heels and toes where the recording has
them (canonical26), else gaitkit's own fallback to the ankle; under ``--noise kinect`` the
simulated camera's 22 joints (the toe is the Kinect's FOOT joint, the heel falls back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streams.schema import GaitEvent
from streams.skeletons import CANONICAL_FEET_JOINTS

MISSING_EXTRA = ('the IntellEvent peer needs gaitkit and onnxruntime: pip install '
                 '"gaitstream[peers]"')

# gaitkit's landmark names, each with the canonical26 point that fills it
_POINTS = {f"{side}_{part}": CANONICAL_FEET_JOINTS.index(f"{side}_{part}")
           for side in ("left", "right") for part in ("heel", "toe", "ankle")}
_KINDS = {"heel_strike": "foot_strike", "toe_off": "foot_off"}


@dataclass
class _Frame:
    landmark_positions: dict[str, tuple[float, float, float]]


def check_available() -> None:
    """Raise the one-line ImportError naming the extra now, not after our own evaluation ran."""
    _detector(100.0)


def _detector(rate_hz: float) -> Any:
    try:
        from gaitkit.detectors.intellevent_detector import IntellEventDetector
    except ImportError as e:
        raise ImportError(f"{MISSING_EXTRA} ({e})") from None
    return IntellEventDetector(fps=rate_hz)


class IntellEventPeer:
    """IntellEvent on one trial, with the analyzer interface ``eval events`` replays through."""

    method = "intellevent"
    takes_foot_points = True

    def __init__(self, source: str, track: int):
        _detector(100.0)  # a missing extra fails here, once, with the install line
        self.source, self.track = source, track
        self.frames: list[tuple[int, np.ndarray, np.ndarray]] = []

    def push(self, t_us: int, joints: np.ndarray, conf: np.ndarray) -> list:
        self.frames.append((int(t_us), np.array(joints, np.float64), np.array(conf)))
        return []

    def flush(self) -> list:
        if len(self.frames) < 30:
            return []
        t = np.array([f[0] for f in self.frames], np.int64)
        rate = 1e6 / float(np.median(np.diff(t)))
        # IntellEvent expects a lab's frame: z up, millimetres, the walk along the x or y axis.
        # The walk's overall direction (the pelvis' path, or the feet's when it stands still)
        # becomes +x.
        ank = np.stack([f[1][_POINTS["left_ankle"]] + f[1][_POINTS["right_ankle"]]
                        for f in self.frames]) / 2
        d = ank[-1] - ank[0]
        a = float(np.arctan2(d[2], d[0]))
        ca, sa = np.cos(a), np.sin(a)
        frames = []
        for _, j, c in self.frames:
            pts = {}
            for name, k in _POINTS.items():
                if k < len(j) and c[k] > 0:
                    x, y, z = (1000.0 * j[k]).tolist()
                    pts[name] = (ca * x + sa * z, sa * x - ca * z, y)
            frames.append(_Frame(pts))
        strikes, offs, _ = _detector(rate).detect_gait_events(frames)
        return [GaitEvent(source=self.source, seq=0, t_us=int(t[-1]), host_us=0,
                          track=self.track, side=e.side, kind=_KINDS[e.event_type],
                          event_us=int(t[min(e.frame_index, len(t) - 1)]),
                          method=self.method, confidence=float(e.probability))
                for e in strikes + offs]


PEERS: dict[str, Callable[[str, int], Any]] = {"intellevent": IntellEventPeer}
