"""Recorded or simulated walks as a simulated depth camera or webcam would report them.

The simulator's sensor models (``capture.sim.sensors``: depth-dependent jitter, occlusion with
LOW/NONE confidence, dropped frames, left/right swaps) applied to

- a recording's canonical joints (``view_recording``): the camera stands at the end of the
  walkway facing the walker, who approaches it (the usual depth-camera gait set-up), or in front
  of the body when the pelvis does not progress (treadmill); joints the recording does not have
  stay untracked;
- the named points of a simulated person (``SensorView``), for training.

``eval events --noise kinect`` wraps each analyzer in ``NoisyReplay``, so the classical
analysis and the gait transformer see exactly the same noisy frames of each trial:

    gaitstream eval events DIR --model classical --noise kinect
    gaitstream eval events DIR --model gait-transformer --noise kinect

A trial's noise is seeded from its name. ``NoisyReplay`` collects the frames and replays the
noisy recording through the wrapped analyzer at ``flush`` (the camera placement needs the
whole path); events carry their own times, so the evaluation is unaffected.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from streams.skeletons import CANONICAL_JOINTS, CJ

# Device points the canonical skeleton lacks, taken from the nearest canonical joint.
_EXTRA_POINTS = {"k4a_head": "head", "nose": "head", "left_eye": "head", "right_eye": "head",
                 "left_ear": "head", "right_ear": "head", "left_hand": "left_wrist",
                 "right_hand": "right_wrist", "left_handtip": "left_wrist",
                 "right_handtip": "right_wrist", "left_thumb": "left_wrist",
                 "right_thumb": "right_wrist"}


def points_from_canonical(joints: np.ndarray) -> dict[str, np.ndarray]:
    pts = {name: joints[i] for i, name in enumerate(CANONICAL_JOINTS)}
    for extra, src in _EXTRA_POINTS.items():
        pts[extra] = pts[src]
    return pts


def facing(joints: np.ndarray) -> np.ndarray:
    """Horizontal forward direction of a canonical skeleton (left hip line x up)."""
    left = joints[CJ["left_hip"]] - joints[CJ["right_hip"]]
    f = np.array([-left[2], 0.0, left[0]])
    n = np.linalg.norm(f)
    return f / n if n > 1e-9 else np.array([0.0, 0.0, 1.0])


class SensorView:
    """One person seen by a simulated sensor, frame by frame (canonical output)."""

    def __init__(self, kind: str, height_m: float, seed: int, noise: float = 1.0,
                 camera: Any = None):
        from capture.sim.sensors import Camera, Sensor, SensorConfig

        cfg = SensorConfig(kind=kind, noise=noise, camera=camera or Camera())
        self.sensor = Sensor(cfg, "canonical22", [height_m], np.random.default_rng(seed))

    def observe(self, t_s: float, points: dict[str, np.ndarray], forward: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray] | None:
        bodies, _ = self.sensor.observe(t_s, [points], [forward])
        if not bodies:
            return None
        _, j, c = bodies[0]
        return j, c


def walkway_camera(joints: np.ndarray, conf: np.ndarray, rng: np.random.Generator) -> Any:
    """A level camera 1.2 m past the end of the walked path, looking back along it, at a random
    height of 0.8-1.6 m (or 3 m in front of the body when the pelvis does not progress)."""
    from capture.sim.sensors import Camera

    pelvis = joints[:, CJ["pelvis"]]
    d = pelvis[-1] - pelvis[0]
    d[1] = 0.0
    if np.linalg.norm(d) > 0.5:
        d /= np.linalg.norm(d)
        pos = pelvis[-1] + 1.2 * d
    else:
        d = facing(joints[len(joints) // 2])
        pos = pelvis[len(pelvis) // 2] + 3.0 * d
    look = -d + 0.1 * rng.uniform(-1, 1) * np.array([-d[2], 0.0, d[0]])
    return Camera(position=(float(pos[0]), float(rng.uniform(0.8, 1.6)), float(pos[2])),
                  yaw=float(np.arctan2(look[2], look[0])))


def view_recording(t_us: np.ndarray, joints: np.ndarray, conf: np.ndarray, kind: str = "kinect",
                   seed: int = 0, noise: float = 1.0, height_m: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A recording as the sensor reports it: (t_us, joints, conf) of the frames it kept
    (dropped frames and frames without the pelvis in view are missing), in the recording's own
    world frame (the sensor's camera frame is rigidly mapped back), joints the recording does
    not track (confidence 0) staying at confidence 0."""
    from inference.models.gait_transformer.features import estimate_height

    rng = np.random.default_rng(seed)
    cam = walkway_camera(joints, conf, rng)
    h = height_m
    if h is None:
        # the first two seconds are enough and cheap; a trial whose legs are untracked there
        # (markers not yet in the volume) is estimated over all of it
        try:
            h = estimate_height(joints[:60], conf[:60])
        except ValueError:
            h = estimate_height(joints, conf)
    view = SensorView(kind, h, int(rng.integers(2**31)), noise, cam)
    right, up, look = cam.axes()
    R = np.stack([right, up, -look])  # world -> camera wire axes (rows)
    origin = np.asarray(cam.position)
    out_t, out_j, out_c = [], [], []
    for t, j, c in zip(t_us, joints, conf):
        got = view.observe(t / 1e6, points_from_canonical(np.asarray(j, np.float64)), facing(j))
        if got is None:
            continue
        jj, cc = got
        out_t.append(int(t))
        out_j.append(jj.astype(np.float64) @ R + origin)
        out_c.append(np.where(c > 0, cc, 0.0))
    if not out_t:
        raise ValueError("the simulated sensor saw no frame of this recording")
    return (np.array(out_t, np.int64), np.stack(out_j).astype(np.float32),
            np.stack(out_c).astype(np.float32))


class NoisyReplay:
    """An analyzer that sees a trial through a simulated sensor (for ``eval events``)."""

    def __init__(self, inner: Any, kind: str, seed: int):
        self.inner, self.kind, self.seed = inner, kind, seed
        self.frames: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.seen_t_us: np.ndarray | None = None

    def push(self, t_us: int, joints: np.ndarray, conf: np.ndarray) -> list:
        self.frames.append((int(t_us), np.array(joints), np.array(conf)))
        return []

    def flush(self) -> list:
        if not self.frames:
            return self.inner.flush()
        t, j, c = view_recording(np.array([f[0] for f in self.frames]),
                                 np.stack([f[1] for f in self.frames]),
                                 np.stack([f[2] for f in self.frames]), self.kind, self.seed)
        self.seen_t_us = t  # the frames the sensor saw (eval events skips events beyond them)
        out: list = []
        for ti, ji, ci in zip(t, j, c):
            out.extend(self.inner.push(int(ti), ji, ci))
        return out + self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        # joint_angles only when the wrapped analyzer has it: eval events asks hasattr(), and
        # an analyzer without angles (a peer detector) must not fail the evaluation
        if name == "joint_angles":
            return getattr(self.inner, name)
        raise AttributeError(name)


def trial_seed(source: str) -> int:
    return zlib.crc32(source.encode())
