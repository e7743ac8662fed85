"""Sensor models: what an Azure Kinect or a MediaPipe webcam pipeline would report of the
simulated bodies.

Output frames follow the capture sources' own conventions: metres, y up, origin at the camera,
the camera looking along -z with x to its right (``capture/kinect/geometry.py``: the depth camera's
axes turned 180 deg about x and levelled by the IMU; the webcam source uses the same axes).
Positions come in the device layout (azure_kinect32, mediapipe33) or mapped to canonical22 with
``streams.skeletons.to_canonical``, exactly as the worker maps a real device's skeleton.

Azure-Kinect-like (``kinect``), after the Body Tracking SDK's behaviour and published accuracy
studies (Tolgyessy et al. 2021, Sensors 21:413, depth noise growing with distance; Albert et al.
2020, Sensors 20:5104, gait joint errors of 1-5 cm, largest at the feet):

* jitter: per joint, a temporally correlated (AR(1), ~0.1 s) plus white Gaussian error with
  standard deviation ``noise * (4 mm + 1.5 mm * d^2)`` at depth d metres, x1.8 for hands and
  feet, and a fixed per-body offset per joint (model fitting bias, ~1.5 cm at the feet);
* occlusion: a joint whose line of sight passes through a body segment (own or another
  person's) is reported with confidence LOW (0.3) and three times the error; a joint outside the
  field of view (NFOV 2x2 binned: 75 x 65 deg, 0.5-5.46 m) with confidence NONE (0) and a
  position predicted from its last visible one; a body whose pelvis is not seen is not reported;
* dropped frames (random, ``drop_rate``), body-id switches (``id_switches_per_min``, and always
  when a body comes back after being unseen for more than 0.5 s), left/right swaps
  (``swaps_per_min``, several times likelier when the person faces away from the camera).

MediaPipe-like (``mediapipe``): monocular, so the error is small across the image (~3 px at
f = 600 px) but large in depth (~3% of the distance, correlated over time) with a per-person
scale error of a few percent; confidence is the landmark visibility (occluded ~0.3, out of the
image ~0.05); occasional left/right swaps; no id switches.

Everything is drawn from the sensor's own numpy Generator, so a seed gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streams.skeletons import LAYOUTS, to_canonical

from capture.sim.skeleton import LAYOUT_POINTS

SENSORS = ("none", "kinect", "mediapipe")
LOW, NONE = 0.3, 0.0

# Joints whose errors are larger (distal, small in the depth image).
_DISTAL = ("wrist", "hand", "thumb", "pinky", "index", "ankle", "foot", "heel", "toe")


@dataclass(frozen=True)
class Camera:
    """A level camera at ``position`` (world, metres) looking horizontally along ``yaw``."""

    position: tuple[float, float, float] = (0.0, 1.0, 0.0)
    yaw: float = np.pi / 2  # world heading of the optical axis (default: along +z)
    hfov_deg: float = 75.0
    vfov_deg: float = 65.0
    tilt_deg: float = -5.0  # optical axis below the horizon (field of view only)
    min_range: float = 0.5
    max_range: float = 5.46

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        look = np.array([np.cos(self.yaw), 0.0, np.sin(self.yaw)])
        up = np.array([0.0, 1.0, 0.0])
        right = np.cross(look, up)
        return right, up, look

    def to_camera(self, p: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera wire frame (x right, y up, looking along -z)."""
        right, up, look = self.axes()
        d = p - np.asarray(self.position)
        return np.stack([d @ right, d @ up, -(d @ look)], axis=-1)

    def in_view(self, q: np.ndarray) -> np.ndarray:
        """Points in camera wire coordinates inside the field of view and the range."""
        depth = -q[..., 2]
        horiz = np.degrees(np.arctan2(q[..., 0], np.maximum(depth, 1e-6)))
        vert = np.degrees(np.arctan2(q[..., 1], np.maximum(depth, 1e-6))) - self.tilt_deg
        rng = np.linalg.norm(q, axis=-1)
        return (depth > 0) & (np.abs(horiz) <= self.hfov_deg / 2) & \
            (np.abs(vert) <= self.vfov_deg / 2) & (rng >= self.min_range) & (rng <= self.max_range)


@dataclass(frozen=True)
class SensorConfig:
    kind: str = "none"
    noise: float = 1.0  # scales every error (0 = exact positions, confidence still modelled)
    drop_rate: float = 0.005  # fraction of frames lost
    id_switches_per_min: float = 0.3
    swaps_per_min: float = 0.5
    camera: Camera = field(default_factory=Camera)

    def __post_init__(self) -> None:
        if self.kind not in SENSORS:
            raise ValueError(f"sensor {self.kind!r} is not one of {SENSORS}")
        if self.noise < 0 or not 0 <= self.drop_rate < 1:
            raise ValueError("sensor noise must be >= 0 and drop_rate in [0, 1)")


# Body segments that hide what is behind them: (from point, to point, radius as fraction of H).
_CAPSULES = (
    ("pelvis", "neck", 0.075), ("left_hip", "left_knee", 0.040), ("right_hip", "right_knee", 0.040),
    ("left_knee", "left_ankle", 0.030), ("right_knee", "right_ankle", 0.030),
    ("left_shoulder", "left_elbow", 0.025), ("right_shoulder", "right_elbow", 0.025),
    ("left_elbow", "left_wrist", 0.022), ("right_elbow", "right_wrist", 0.022),
    ("neck", "head", 0.050),
)


def _segment_distance(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Closest distance between segments a-b and c-d (broadcast over leading axes)."""
    u, v, w = b - a, d - c, a - c
    uu, uv, vv = (u * u).sum(-1), (u * v).sum(-1), (v * v).sum(-1)
    uw, vw = (u * w).sum(-1), (v * w).sum(-1)
    s = np.clip((uv * vw - vv * uw) / np.maximum(uu * vv - uv * uv, 1e-12), 0.0, 1.0)
    t = np.clip((s * uv + vw) / np.maximum(vv, 1e-12), 0.0, 1.0)
    s = np.clip((t * uv - uw) / np.maximum(uu, 1e-12), 0.0, 1.0)
    diff = (a + s[..., None] * u) - (c + t[..., None] * v)
    return np.linalg.norm(diff, axis=-1)


def occluded(people: list[np.ndarray], points: list[dict[str, np.ndarray]],
             heights: list[float], eye: np.ndarray) -> list[np.ndarray]:
    """Per person, (J,) whether the line of sight from ``eye`` to each of its reported points
    (``people[i]``: (J, 3)) passes through a body segment of anyone that the point is not
    inside of (a joint centre inside a limb is what the tracker infers from that limb)."""
    caps = [(pts[a], pts[b], r * h) for pts, h in zip(points, heights) for a, b, r in _CAPSULES]
    ca = np.stack([c[0] for c in caps])[None]  # (1, C, 3)
    cb = np.stack([c[1] for c in caps])[None]
    rad = np.array([c[2] for c in caps])[None]
    out = []
    for target in people:
        tg = target[:, None, :]  # (J, 1, 3)
        eye_b = np.broadcast_to(eye, tg.shape)
        ray = _segment_distance(eye_b, tg, ca, cb)  # (J, C)
        inside = _segment_distance(tg, tg, ca, cb) <= rad
        out.append(((ray < rad) & ~inside).any(axis=1))
    return out


def _swap_names(names: tuple[str, ...]) -> np.ndarray:
    """Index permutation exchanging left and right points."""
    idx = {n: i for i, n in enumerate(names)}
    perm = []
    for n in names:
        m = n.replace("left", "#").replace("right", "left").replace("#", "right")
        perm.append(idx.get(m, idx[n]))
    return np.asarray(perm)


@dataclass
class SensorTruth:
    """What the sensor did, per output frame (for tests and training)."""

    dropped: bool = False
    swapped: dict[int, bool] = field(default_factory=dict)  # person -> left/right swapped
    body_ids: dict[int, int] = field(default_factory=dict)  # person -> reported id


class Sensor:
    """Turns true named points of several people into reported bodies, frame by frame.

    Stateful (temporal error, ids, swaps, last positions), so frames must come in time order.
    """

    def __init__(self, config: SensorConfig, layout: str, heights: list[float],
                 rng: np.random.Generator):
        if layout not in LAYOUT_POINTS:
            raise ValueError(f"layout {layout!r}: the simulator writes {sorted(LAYOUT_POINTS)}")
        self.cfg, self.layout, self.rng = config, layout, rng
        self.heights = list(heights)
        dev = {"kinect": "azure_kinect32", "mediapipe": "mediapipe33"}.get(config.kind)
        # the device sees its own joints; canonical output is mapped from them like the worker does
        self.device_layout = dev or layout
        self.names = LAYOUT_POINTS[self.device_layout]
        self.perm = _swap_names(self.names)
        self.distal = np.array([any(d in n for d in _DISTAL) for n in self.names])
        n_p, n_j = len(heights), len(self.names)
        self.ar = np.zeros((n_p, n_j, 3))
        self.bias = rng.normal(0.0, 1.0, (n_p, n_j, 3)) * np.where(self.distal, 0.015, 0.007)[
            None, :, None] * config.noise
        self.scale = 1.0 + rng.normal(0.0, 0.03, n_p) * config.noise
        self.depth_ar = np.zeros(n_p)
        self.last_seen = np.full(n_p, -np.inf)
        self.last_pos: list[np.ndarray | None] = [None] * n_p
        self.next_id = 1
        self.ids = [0] * n_p
        self.swap_until = np.full(n_p, -np.inf)
        self.t_prev: float | None = None
        self.counters = {"frames": 0, "dropped": 0, "id_switches": 0, "swaps": 0,
                         "occluded_joints": 0, "unseen_joints": 0}

    def _new_id(self, who: int) -> int:
        self.ids[who] = self.next_id
        self.next_id += 1
        return self.ids[who]

    def observe(self, t: float, people: list[dict[str, np.ndarray]], facing: list[np.ndarray]
                ) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], SensorTruth]:
        """Bodies (id, joints (J,3) in the output layout, confidence (J,)) seen at time t from
        each person's named points (each (3,)); ``facing``: each person's forward direction."""
        cfg, cam = self.cfg, self.cfg.camera
        truth = SensorTruth()
        dt = 0.0 if self.t_prev is None else max(t - self.t_prev, 0.0)
        self.t_prev = t
        self.counters["frames"] += 1
        if cfg.kind == "none":
            out = []
            for who, pts in enumerate(people):
                if not self.ids[who]:
                    self._new_id(who)
                j = np.stack([pts[n] for n in self.names])
                out.append((self.ids[who], j.astype(np.float32), np.ones(len(j), np.float32)))
                truth.body_ids[who] = self.ids[who]
            return out, truth
        if self.rng.random() < cfg.drop_rate:
            self.counters["dropped"] += 1
            truth.dropped = True
            return [], truth
        eye = np.asarray(cam.position, dtype=float)
        world = [np.stack([p[n] for n in self.names]) for p in people]  # (J, 3) each
        hidden = occluded(world, people, self.heights, eye)
        rho = np.exp(-dt / 0.1) if dt > 0 else 1.0
        out = []
        for who, pw in enumerate(world):
            q = cam.to_camera(pw)
            seen = cam.in_view(q)
            occ = hidden[who] & seen
            pelvis_ok = seen[0] and not occ[0] if self.device_layout == "azure_kinect32" else \
                seen.mean() > 0.5
            if not pelvis_ok:
                continue
            if t - self.last_seen[who] > 0.5 or not self.ids[who]:
                if self.ids[who]:
                    self.counters["id_switches"] += 1
                self._new_id(who)
            elif cfg.kind == "kinect" and self.rng.random() < cfg.id_switches_per_min * dt / 60:
                self.counters["id_switches"] += 1
                self._new_id(who)
            self.last_seen[who] = t
            depth = np.maximum(-q[:, 2], 0.1)
            if cfg.kind == "kinect":
                sigma = (0.004 + 0.0015 * depth ** 2) * np.where(self.distal, 1.8, 1.0)
                sigma = sigma * np.where(occ, 3.0, 1.0) * cfg.noise
                self.ar[who] = rho * self.ar[who] + np.sqrt(max(1 - rho * rho, 0.0)) * \
                    self.rng.standard_normal(self.ar[who].shape)
                err = sigma[:, None] * (0.8 * self.ar[who] + 0.6 * self.rng.standard_normal(
                    (len(q), 3))) + self.bias[who]
                noisy = q + err
                conf = np.where(seen, np.where(occ, LOW, 0.8), NONE).astype(np.float32)
            else:
                # monocular: small error across the image, large along the line of sight
                ray = q / np.linalg.norm(q, axis=1, keepdims=True)
                self.depth_ar[who] = rho * self.depth_ar[who] + np.sqrt(max(1 - rho * rho, 0)) \
                    * self.rng.standard_normal()
                along = depth.mean() * 0.03 * self.depth_ar[who]
                lateral = (0.005 * depth)[:, None] * self.rng.standard_normal((len(q), 3))
                lateral *= np.where(occ, 3.0, 1.0)[:, None]
                rel_depth = 0.02 * depth[:, None] * self.rng.standard_normal((len(q), 1)) * ray
                # the scale error and the bias were drawn already scaled by the noise
                scale = depth.mean() * (self.scale[who] - 1.0)
                noisy = q + cfg.noise * (along * ray + lateral + rel_depth) + scale * ray \
                    + 0.5 * self.bias[who]
                vis = np.where(seen, np.where(occ, 0.3, 0.95), 0.05)
                conf = np.clip(vis + 0.04 * self.rng.standard_normal(len(q)), 0, 1
                               ).astype(np.float32)
            # unseen joints: the tracker's guess, drifting from the last position it had
            last = self.last_pos[who]
            if last is not None and not seen.all():
                noisy = np.where(seen[:, None], noisy, last + 0.02 * cfg.noise
                                 * self.rng.standard_normal(q.shape))
            self.last_pos[who] = noisy
            self.counters["occluded_joints"] += int(occ.sum())
            self.counters["unseen_joints"] += int((~seen).sum())
            # left/right swaps, likelier when the person faces away from the camera
            away = float(np.dot(facing[who], (pw[0] - eye) / max(np.linalg.norm(pw[0] - eye),
                                                                   1e-6)))
            rate = cfg.swaps_per_min * (4.0 if away > 0.3 else 0.5)
            if t >= self.swap_until[who] and self.rng.random() < rate * dt / 60:
                self.swap_until[who] = t + self.rng.uniform(0.3, 1.5)
                self.counters["swaps"] += 1
            swapped = t < self.swap_until[who]
            if swapped:
                noisy, conf = noisy[self.perm], conf[self.perm]
            truth.swapped[who] = bool(swapped)
            truth.body_ids[who] = self.ids[who]
            joints, conf = noisy.astype(np.float32), conf.astype(np.float32)
            if self.layout != self.device_layout:
                joints, conf = to_canonical(self.device_layout, joints, conf)
            out.append((self.ids[who], joints, conf))
        return out, truth


def output_layout(sensor: str, layout: str | None) -> str:
    """The layout a sensor publishes by default: its device layout, or canonical22."""
    if layout is None:
        return {"kinect": "azure_kinect32", "mediapipe": "mediapipe33"}.get(sensor, "canonical22")
    if layout not in LAYOUTS or layout not in LAYOUT_POINTS:
        raise ValueError(f"layout {layout!r}: one of {sorted(LAYOUT_POINTS)}")
    if sensor == "kinect" and layout == "mediapipe33" or sensor == "mediapipe" \
            and layout == "azure_kinect32":
        raise ValueError(f"a {sensor} sensor does not produce {layout}")
    return layout
