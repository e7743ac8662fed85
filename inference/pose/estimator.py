"""Pose estimation for camera frames, run inside the inference worker.

``PoseEstimator(**options).process(image_bgr, t_us)`` returns the person of interest as a
:class:`streams.schema.Body` in the ``mediapipe33`` layout, in the wire convention (metres,
right-handed, y up), with per-joint visibility as confidence; the worker maps it to the canonical
skeleton (``streams.skeletons.to_canonical``) and runs the gait analysis on it.

Backends:

* ``mediapipe`` (default): MediaPipe Pose, legacy ``mp.solutions.pose``, model complexity 1,
  used top-down on regions so that several people can be told apart (see ``pose.mediapipe``).
  Its world landmarks give the 3D body; their translation, which MediaPipe drops, is rebuilt from
  the image (see ``pose.metric``).
* ``yolo-pose``: a YOLOv8-pose ONNX model the user supplies (``model_path``), through the
  project's model backends (see ``pose.yolo``). It gives 2D COCO keypoints only, so the body is
  placed flat in the image plane at the depth its leg length implies (``leg_length_m``): good for a side view,
  where gait happens in that plane, meaningless for depth.
* ``rtmpose``: an RTMPose (SimCC, 17 COCO keypoints) ONNX model the user supplies, top-down on
  the box of the person followed in the previous frame, or on the whole frame while nobody is
  followed (see ``pose.rtmpose``); 2D, placed like YOLO-pose.

Which person is reported, and why, is ``pose.people``'s job; its options pass through.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields

import numpy as np

from streams.schema import Body
from streams.options import check_keys

from inference.pose.metric import (ScaleSmoother, focal_length_px, lift_image_plane,
                          place_world_landmarks, scale_px_per_m)
from inference.pose.people import Candidate, PersonObservation, PersonSelector, SelectorConfig

log = logging.getLogger(__name__)

LAYOUT = "mediapipe33"
RESTART_BACK_US = 1_000_000  # timestamps going back further than this start a new session
BACKENDS = ("mediapipe", "yolo-pose", "rtmpose")


@dataclass
class PoseConfig:
    backend: str = "mediapipe"
    model_path: str | None = None  # yolo-pose, rtmpose: the ONNX file
    model_complexity: int = 1  # mediapipe: 0 lite, 1 full (2 heavy is not shipped offline)
    min_detection_confidence: float = 0.5
    people_per_tile: int = 2  # mediapipe: people looked for per tile when finding people
    find_period_s: float = 0.2  # how often to look for people while nobody walks
    hfov_deg: float = 60.0  # assumed horizontal field of view of the camera (depth only)
    scale_tau_s: float = 1.0  # time constant of the pixels-per-metre (depth) estimate
    leg_length_m: float = 0.85  # 2D models: hip-to-ankle length that sets the metric scale
    model_backend: str = "onnxruntime"  # yolo-pose, rtmpose: inference.models.backends kind
    model_device: str = "cpu"  # yolo-pose, rtmpose: cpu | cuda
    input_size: int = 640  # yolo-pose: the square input the model was exported with
    rtmpose_input: tuple[int, int] = (192, 256)  # rtmpose: the input's width, height
    min_keypoint_score: float = 0.25  # yolo-pose, rtmpose
    min_person_score: float = 0.4  # yolo-pose; rtmpose: mean keypoint score
    selector: SelectorConfig = field(default_factory=SelectorConfig)

    @classmethod
    def from_options(cls, options: dict) -> "PoseConfig":
        own = {f.name for f in fields(cls)} - {"selector"}
        sel = {f.name for f in fields(SelectorConfig)}
        check_keys("pose options", options, own | sel)
        sel_opts = {k: v for k, v in options.items() if k in sel}
        cfg = cls(**{k: v for k, v in options.items() if k in own},
                  selector=SelectorConfig(**sel_opts))
        if cfg.backend not in BACKENDS:
            raise ValueError(f"pose backend {cfg.backend!r} not one of {BACKENDS}")
        if cfg.backend == "yolo-pose" and not cfg.model_path:
            raise ValueError("pose backend yolo-pose needs model_path (a YOLOv8-pose ONNX file)")
        if cfg.backend == "rtmpose" and not cfg.model_path:
            raise ValueError("pose backend rtmpose needs model_path (an RTMPose ONNX file)")
        cfg.rtmpose_input = tuple(int(v) for v in cfg.rtmpose_input)  # TOML gives a list
        return cfg


@dataclass
class PersonPose:
    """The person of interest in one frame: the wire body plus what it was made from."""

    body: Body
    image_xy: np.ndarray  # (33, 2) px
    visibility: np.ndarray  # (33,)
    locked: bool  # True once the person was seen walking (see pose.people)
    px_per_m: float


class PoseEstimator:
    def __init__(self, **options):
        self.cfg = PoseConfig.from_options(options)
        self.selector = PersonSelector(self.cfg.selector)
        self._mp = self._yolo = self._rtm = None
        if self.cfg.backend == "mediapipe":
            from inference.pose.mediapipe import MediaPipePeople

            self._mp = MediaPipePeople(self.cfg.model_complexity,
                                       self.cfg.min_detection_confidence,
                                       people_per_tile=self.cfg.people_per_tile)
        elif self.cfg.backend == "yolo-pose":
            from inference.pose.yolo import YoloPose

            self._yolo = YoloPose(self.cfg.model_path, backend=self.cfg.model_backend,
                                  device=self.cfg.model_device, input_size=self.cfg.input_size,
                                  min_person_score=self.cfg.min_person_score,
                                  min_keypoint_score=self.cfg.min_keypoint_score)
        else:
            from inference.pose.rtmpose import RTMPose

            self._rtm = RTMPose(self.cfg.model_path, backend=self.cfg.model_backend,
                                device=self.cfg.model_device, input_wh=self.cfg.rtmpose_input,
                                min_person_score=self.cfg.min_person_score,
                                min_keypoint_score=self.cfg.min_keypoint_score)
        self._last_find_us: int | None = None
        self._last_t: int | None = None
        self._scales: dict[int, ScaleSmoother] = {}
        self.counters: dict[str, int] = {"frames": 0, "poses": 0, "finds": 0, "box_runs": 0,
                                         "rejected_time": 0, "restarts": 0}

    # ------------------------------------------------------------------ per frame

    def process(self, image: np.ndarray, t_us: int) -> list[Body]:
        """Bodies (0 or 1: the person of interest) in layout mediapipe33, wire convention."""
        return [p.body for p in self.estimate(image, t_us)]

    def estimate(self, image: np.ndarray, t_us: int) -> list[PersonPose]:
        if image.ndim == 3 and image.shape[2] == 1 and image.dtype == np.uint8:
            image = np.repeat(image, 3, axis=2)  # a mono camera
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"pose: expected an (H, W, 3) uint8 BGR image, got "
                             f"{image.shape} {image.dtype}")
        if self._last_t is not None and t_us <= self._last_t:
            if t_us >= self._last_t - RESTART_BACK_US:
                self.counters["rejected_time"] += 1
                log.warning("pose: frame at %d us is not after %d us: skipped", t_us,
                            self._last_t)
                return []
            # the clock went back by seconds: a new recording or a restarted source
            log.info("pose: time went back from %d to %d us: following people anew",
                     self._last_t, t_us)
            self._restart()
        self._last_t = t_us
        self.counters["frames"] += 1
        h, w = image.shape[:2]
        sel = self.selector
        sel.begin_frame(t_us, w, h)
        if self._mp is not None:
            self._follow_mediapipe(image, t_us)
        elif self._rtm is not None:
            self._follow_rtmpose(image, t_us)
        else:
            sel.match(self._yolo.detect(image), t_us)
        target = sel.choose(t_us)
        self._forget_gone()
        if target is None or target.last_us != t_us:
            return []
        pose = self._place(target, t_us, w, h)
        if pose is None:
            return []
        self.counters["poses"] += 1
        return [pose]

    def _follow_mediapipe(self, image: np.ndarray, t_us: int) -> None:
        sel = self.selector
        for c in sel.followed():
            obs = self._mp.track(image, c.cid, sel.roi(c, t_us))
            if obs is not None and sel.accepts(c, obs, t_us):
                sel.observe(c, obs, t_us)
            else:
                if obs is not None:
                    self._mp.reset(c.cid)  # it latched onto someone else: re-detect in the crop
                sel.miss(c)
        if sel.wants_people() and self._find_due(t_us):
            exclude = [c.last.box for c in sel.candidates.values()]
            for obs in self._mp.discover(image, exclude):
                sel.add(obs, t_us)

    def _follow_rtmpose(self, image: np.ndarray, t_us: int) -> None:
        """Top-down: each followed person in its previous box moved by its predicted motion;
        while nobody is followed, the whole frame (every find_period_s)."""
        sel = self.selector
        for c in sel.followed():
            dx, dy = sel.predict(c, t_us) - c.last.hip_px
            x0, y0, x1, y1 = c.last.box
            obs = self._rtm.estimate(image, (x0 + dx, y0 + dy, x1 + dx, y1 + dy))
            self.counters["box_runs"] += 1
            if obs is not None and sel.accepts(c, obs, t_us):
                sel.observe(c, obs, t_us)
            else:
                sel.miss(c)
        if not sel.candidates and self._find_due(t_us):
            h, w = image.shape[:2]
            obs = self._rtm.estimate(image, (0.0, 0.0, float(w), float(h)))
            if obs is not None:
                sel.add(obs, t_us)

    def _find_due(self, t_us: int) -> bool:
        """Whether a search for people is due (every ``find_period_s``); one that is due is
        taken now: timed and counted."""
        if self._last_find_us is not None and \
                t_us - self._last_find_us < self.cfg.find_period_s * 1e6:
            return False
        self._last_find_us = t_us
        self.counters["finds"] += 1
        return True

    def _place(self, c: Candidate, t_us: int, w: int, h: int) -> PersonPose | None:
        obs: PersonObservation = c.last
        f = focal_length_px(w, self.cfg.hfov_deg)
        cx, cy = w / 2.0, h / 2.0
        if obs.world is not None:
            s_now = scale_px_per_m(obs.image_xy, obs.world, obs.visibility)
        else:
            s_now = obs.leg_px / self.cfg.leg_length_m
        smoother = self._scales.get(c.cid)
        if smoother is None:
            smoother = self._scales[c.cid] = ScaleSmoother(self.cfg.scale_tau_s)
        s = smoother.update(t_us, s_now)
        if math.isnan(s) or s <= 0:
            return None  # legs never visible yet: no metric scale, nothing trustworthy to report
        if obs.world is not None:
            joints = place_world_landmarks(obs.world, obs.hip_px, s, f, cx, cy)
        else:
            joints = lift_image_plane(obs.image_xy, s, f, cx, cy)
        if not np.isfinite(joints).all():
            return None
        body = Body(body_id=c.cid, joints=joints.astype(np.float32),
                    confidence=np.clip(obs.visibility, 0, 1).astype(np.float32))
        return PersonPose(body, obs.image_xy, obs.visibility, c.locked, s)

    def _restart(self) -> None:
        self.counters["restarts"] += 1
        self.selector.candidates.clear()
        self._last_find_us = None
        self._forget_gone()

    def _forget_gone(self) -> None:
        """Free the state of people the selector no longer follows (lost, or someone else
        was locked)."""
        alive = self.selector.candidates
        for cid in [c for c in self._scales if c not in alive]:
            del self._scales[cid]
        if self._mp is not None:
            for cid in [c for c in self._mp.followed_ids() if c not in alive]:
                self._mp.release(cid)

    def all_counters(self) -> dict[str, int]:
        out = dict(self.counters)
        out.update(self.selector.counters)
        if self._mp is not None:
            out["model_runs"] = self._mp.model_runs
        if self._rtm is not None:
            out["model_runs"] = self._rtm.runs
        return out

    def close(self) -> None:
        if self._mp is not None:
            self._mp.close()
