"""The inference worker: skeletons (or camera frames) in, gait events and cycle records out.

Per track (source, body id) it keeps the analysis state and a short joint history; it maps every
layout to the canonical skeleton, runs the classical analysis (and the gait transformer when one is
configured), scores completed cycles with the anomaly scorer when one is configured, and publishes
GaitEvent / GaitCycle on ``gait/<source>``.

Every track carries a pseudonymous subject id on its events and cycles: the configured
``subject`` when there is one (a kiosk session names its patient's pseudonym), otherwise a random
id drawn when the track starts and kept for its life. A random id says nothing about the person
and cannot be derived again from the data, so the log links a person to a walk only through the
site's own records; a person who leaves and comes back starts a new track and gets a new id.

Real time first: skeletons are cheap and all are processed; camera frames are expensive (pose
estimation), so when frames queue up only the newest per source is processed and the rest are
dropped and counted.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from streams.schema import GaitCycle, GaitEvent, ImageFrame, Message, SkeletonFrame
from streams.skeletons import CANONICAL_JOINTS, CJ, LayoutError, to_canonical
from streams.node import Drain, StatusReporter, give_memory_back
from streams.options import check_keys, check_types
from streams.transport import Publisher, Subscriber

log = logging.getLogger(__name__)

ANALYSES = ("classical", "gait-transformer", "both")


@dataclass
class WorkerConfig:
    analysis: str = "classical"  # classical | gait-transformer | both
    anomaly: bool = False  # score each cycle with the diffusion scorer
    # DPG on webcam (image-source) tracks: each cycle gets the network's GDI, knee flexion at
    # maximum extension, cadence and step length of its side (metrics ``dpg_*``) from the last
    # 124 frames (4.1 s at 30 Hz) of the track's 2D keypoints, once it has them
    dpg: bool = False
    backend: str = "onnxruntime"  # model backend: onnxruntime | torch | tensorrt
    track_timeout_s: float = 3.0  # a track unseen this long is flushed and forgotten
    # A frame this far ahead of its track's last one is taken for a bad timestamp, unless the
    # frames after it confirm the new clock (then the track starts again on it).
    max_time_jump_s: float = 10.0
    # Bounds on what senders can make a worker hold: tracks (~1 MB each) per source, and image
    # sources (a pose model each, ~100 MB for MediaPipe); beyond them input is refused, counted.
    max_tracks_per_source: int = 16
    max_image_sources: int = 8
    max_sources: int = 64  # skeleton sources with live tracks
    # an image source silent this long gives its pose model (and its memory) back
    image_source_timeout_s: float = 30.0
    history_s: float = 6.0  # joint history kept per track (anomaly scoring of a cycle)
    # Where this worker notes, every checkpoint_s, the first frame of each stream that no record
    # has yet accounted for, so that a restart counts what it lost ("" = not kept).
    checkpoint: str = ""
    checkpoint_s: float = 0.5
    analyzer_options: dict[str, Any] = field(default_factory=dict)
    gait_model_options: dict[str, Any] = field(default_factory=dict)  # GaitModelOptions fields
    pose_options: dict[str, Any] = field(default_factory=dict)
    session: str = ""
    subject: str = ""
    # The cameras (source names) this worker analyses; empty: every one it hears. Workers that
    # share a site's cameras each name theirs: the process subscribes to just their topics, and
    # a frame of another source (a topic prefix also matches cam10 for cam1) is ignored, counted.
    sources: list[str] = field(default_factory=list)

    @classmethod
    def from_options(cls, options: dict[str, Any], session: str = "") -> "WorkerConfig":
        check_keys("worker options", options, cls.__dataclass_fields__)
        check_types("worker options", options, cls)
        cfg = cls(**{"session": session, **options})
        if cfg.analysis not in ANALYSES:
            raise ValueError(f"worker analysis {cfg.analysis!r} not one of {ANALYSES}")
        cfg.model_options()  # a bad key fails at start, not at the first person
        if cfg.dpg:
            from inference.models.dpg.config import CLIP_FRAMES, ONNX_PATH, RATE_HZ

            if cfg.history_s < CLIP_FRAMES / RATE_HZ:
                raise ValueError(f"worker dpg needs history_s >= {CLIP_FRAMES / RATE_HZ:.2f} s "
                                 f"(one clip of {CLIP_FRAMES} frames at {RATE_HZ:g} Hz), got "
                                 f"{cfg.history_s:g}")
            if not ONNX_PATH.is_file():
                raise ValueError(f"worker dpg: the model file {ONNX_PATH} is missing")
        return cfg

    def model_options(self) -> Any:
        from inference.models.gait_transformer.runtime import GaitModelOptions

        check_keys("worker gait_model_options", self.gait_model_options,
                   GaitModelOptions.__dataclass_fields__)
        return GaitModelOptions(**self.gait_model_options)


def new_subject_id() -> str:
    """A fresh pseudonym for one track (64 random bits: collisions are out of reach)."""
    return "anon-" + secrets.token_hex(8)


def new_run_id() -> str:
    """A name for one run of a worker: its start time (UTC) and 32 random bits. Records carry
    it, so that a re-run of the same walk (source timestamps and track numbers that repeat) is
    stored beside the first run instead of being taken for a duplicate of it."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


N_CANONICAL = len(CANONICAL_JOINTS)


class Track:
    """State of one walking person seen by one source."""

    def __init__(self, source: str, body_id: int, cfg: WorkerConfig, models: "Models"):
        self.source, self.body_id = source, body_id
        self.subject = cfg.subject or new_subject_id()
        self.analyzers: list[Any] = []
        if cfg.analysis in ("classical", "both"):
            from inference.analysis.analyzer import OnlineGaitAnalyzer

            self.analyzers.append(OnlineGaitAnalyzer(source, body_id, **cfg.analyzer_options))
        if cfg.analysis in ("gait-transformer", "both"):
            self.analyzers.append(models.gait_tracker(source, body_id))
        self.history: deque[tuple[int, np.ndarray, int]] = deque()  # (t_us, joints, seq)
        self.history_us = int(cfg.history_s * 1e6)
        self.covered_to_us: int | None = None  # the end of the last cycle emitted
        self.last_seen = time.monotonic()
        self.last_t_us: int | None = None
        self.ahead: list[int] = []  # frames refused as too far ahead, in a row

    def clock_moved(self, t_us: int, confirm: int = 3) -> bool:
        """True when ``confirm`` frames in a row, each after the one before and within a second
        of it, came too far ahead: the source's clock moved, not one frame's timestamp."""
        if self.ahead and not 0 < t_us - self.ahead[-1] <= 1_000_000:
            self.ahead.clear()
        self.ahead.append(t_us)
        return len(self.ahead) >= confirm

    def push(self, t_us: int, joints: np.ndarray, conf: np.ndarray, seq: int = 0
             ) -> list[Message]:
        """``joints``/``conf``: canonical26 (the 22 joints, then the foot points, at confidence
        0 where the source has none); an analyzer that does not take foot points
        (``takes_foot_points``) and the history get the 22 joints."""
        self.last_seen = time.monotonic()
        self.last_t_us = t_us
        j22, c22 = joints[:N_CANONICAL], conf[:N_CANONICAL]
        self.history.append((t_us, j22, seq))
        while self.history and self.history[0][0] < t_us - self.history_us:
            self.history.popleft()
        out: list[Message] = []
        for a in self.analyzers:
            feet = getattr(a, "takes_foot_points", False)
            out.extend(a.push(t_us, joints if feet else j22, conf if feet else c22))
        return out

    def poll(self) -> list[Message]:
        out: list[Message] = []
        for a in self.analyzers:
            if hasattr(a, "poll"):
                out.extend(a.poll())
        return out

    def segment(self, start_us: int, end_us: int) -> tuple[np.ndarray, np.ndarray]:
        ts = np.array([h[0] for h in self.history], dtype=np.int64)
        sel = (ts >= start_us) & (ts <= end_us)
        return ts[sel], np.stack([h[1] for h, s in zip(self.history, sel) if s])

    def held_from_seq(self) -> int | None:
        """The seq of the first frame this track holds that no emitted cycle covers (the walking
        a crash now would lose; at most ``history_s`` of it); None when it holds none."""
        for t_us, _, seq in self.history:
            if self.covered_to_us is None or t_us > self.covered_to_us:
                return seq
        return None

    def flush(self) -> list[Message]:
        out: list[Message] = []
        for a in self.analyzers:
            out.extend(a.flush())
        return out


def pixels(frame: ImageFrame) -> np.ndarray:
    """A camera frame's pixels, (H, W, C) uint8: a view of a raw frame; a JPEG (as a camera on
    the network would send to save bandwidth) decoded, checked against the size it declares."""
    if frame.encoding != "jpeg":
        return frame.array()
    import cv2

    img = cv2.imdecode(np.frombuffer(frame.image, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"image {frame.seq}: the JPEG does not decode")
    if img.shape[:2] != (frame.height, frame.width):
        raise ValueError(f"image {frame.seq}: the JPEG is {img.shape[1]}x{img.shape[0]}, the "
                         f"message says {frame.width}x{frame.height}")
    return img


class Models:
    """Lazily loaded learned models shared by all tracks of the worker."""

    def __init__(self, cfg: WorkerConfig, clock: Callable[[], float] | None = None):
        self.cfg = cfg
        self.clock = clock  # what the gait model's batching waits on; None: the host's clock
        self._dpg = None  # inference.models.dpg.runtime.DPGEstimator, loaded at first use
        self._gait = None
        self._scorer = None
        self._pose: dict[str, Any] = {}  # per source: each keeps its own person lock
        self._pose_used: dict[str, float] = {}  # per source: when its model last ran

    def gait_tracker(self, source: str, body_id: int) -> Any:
        from inference.models.gait_transformer.runtime import GaitModelTracker, load_gait_model
        from inference.analysis.analyzer import AnalyzerOptions

        if self._gait is None:
            self._gait = load_gait_model(backend=self.cfg.backend,
                                         options=self.cfg.model_options())
            if self.clock is not None:
                self._gait.clock = self.clock
        # the model's strides are measured and flagged with the classical analysis' options
        return GaitModelTracker(self._gait, source, body_id,
                                cycle_options=AnalyzerOptions.from_flat(
                                    self.cfg.analyzer_options))

    def gait_wait_left_s(self) -> float | None:
        return None if self._gait is None else self._gait.wait_left_s()

    def score(self, t_us: np.ndarray, joints: np.ndarray) -> dict[str, float]:
        if self._scorer is None:
            from inference.models.motion_diffusion.scorer import load_scorer

            self._scorer = load_scorer(backend=self.cfg.backend)
        return self._scorer.score(t_us, joints)

    def dpg_estimates(self, t_us: np.ndarray, joints: np.ndarray) -> dict[str, float] | None:
        """DPG on the last clip of a webcam track's canonical joints (camera-centred, y up: the
        wire frame of a webcam, ``inference.pose.metric``), seen again as image coordinates."""
        from inference.models.dpg.config import CLIP_FRAMES, LANDMARKS, RATE_HZ
        from inference.models.dpg.features import project
        from inference.models.gdi.indices import leg_length

        clip_us = (CLIP_FRAMES - 1) / RATE_HZ * 1e6
        if len(t_us) < 2 or t_us[-1] - t_us[0] < clip_us:
            return None
        keep = t_us >= t_us[-1] - clip_us - 1e6 / RATE_HZ  # the last clip (and a frame spare)
        j = joints[keep][:, [CJ[n] for n in LANDMARKS]].astype(np.float64)
        cam = j * np.array([1.0, -1.0, -1.0])  # wire (y up, z back) -> camera (y down, z forward)
        if not (cam[..., 2] > 0).all():
            return None  # a joint at or behind the camera: no image of it
        if self._dpg is None:
            from inference.models.dpg.runtime import DPGEstimator

            self._dpg = DPGEstimator()
        return self._dpg.estimate(t_us[keep], project(cam), leg_length(joints), hop=CLIP_FRAMES)

    def pose(self, source: str) -> Any | None:
        """The pose estimator of an image source; None when the worker holds its limit of them."""
        if source not in self._pose:
            if len(self._pose) >= self.cfg.max_image_sources:
                return None
            from inference.pose.estimator import PoseEstimator

            self._pose[source] = PoseEstimator(**self.cfg.pose_options)
        self._pose_used[source] = time.monotonic()
        return self._pose[source]

    def expire_pose(self, now: float) -> list[str]:
        """Close the pose models of image sources silent for ``image_source_timeout_s``."""
        gone = [s for s, t in self._pose_used.items()
                if now - t > self.cfg.image_source_timeout_s]
        for s in gone:
            self._pose.pop(s).close()
            del self._pose_used[s]
        return gone


class Worker:
    def __init__(self, cfg: WorkerConfig, pub: Publisher | None, status: StatusReporter,
                 clock: Callable[[], float] | None = None):
        """``clock``: seconds that the gait model's batching waits on (default the host's
        monotonic clock); an offline run gives the stream's own, so that its records come out
        as a live run at recorded speed would give them, in the same order every time."""
        self.cfg, self.pub, self.status = cfg, pub, status
        self.run = new_run_id()
        status.state["run"] = self.run
        self.models = Models(cfg, clock)
        self.tracks: dict[tuple[str, int], Track] = {}
        self.sources = frozenset(cfg.sources) or None  # None: every source
        self.seq: dict[str, int] = {}
        self.outputs: list[Message] = []  # kept only when there is no publisher (tests, analyze)

    def _emit(self, msgs: list[Message], host_us: int, track: Track | None = None) -> None:
        subject = track.subject if track is not None else self.cfg.subject
        for m in msgs:
            if isinstance(m, (GaitCycle, GaitEvent)):
                m.session = m.session or self.cfg.session
                m.subject = m.subject or subject
                m.run = m.run or self.run
            if isinstance(m, GaitCycle):
                if track is not None:
                    track.covered_to_us = max(track.covered_to_us or m.end_us, m.end_us)
                if self.cfg.anomaly and track is not None:
                    self._score(m, track)
                if self.cfg.dpg and track is not None and track.source in self.models._pose:
                    self._dpg(m, track)
                self.status.count("cycles")
            elif isinstance(m, GaitEvent):
                self.status.count("events")
            self.seq[m.source] = self.seq.get(m.source, 0) + 1
            m.seq = self.seq[m.source]
            m.host_us = host_us
            if self.pub is not None:
                self.pub.send(m)
            else:
                self.outputs.append(m)
            self.status.latency_us(host_us)

    def _score(self, cycle: GaitCycle, track: Track) -> None:
        try:
            t, j = track.segment(cycle.start_us, cycle.end_us)
            cycle.anomaly = self.models.score(t, j)
        except Exception as e:  # a scorer failure must not lose the cycle record
            log.warning("anomaly scoring failed for %s/%d: %s", cycle.source, cycle.track, e)
            cycle.flags.append("anomaly_failed")
            self.status.count("anomaly_failed")

    def _dpg(self, cycle: GaitCycle, track: Track) -> None:
        try:
            t = np.array([h[0] for h in track.history], dtype=np.int64)
            j = np.stack([h[1] for h in track.history]) if len(t) else None
            est = self.models.dpg_estimates(t, j) if j is not None else None
        except Exception as e:  # DPG failing must not lose the cycle record
            log.warning("DPG failed for %s/%d: %s", cycle.source, cycle.track, e)
            cycle.flags.append("dpg_failed")
            self.status.count("dpg_failed")
            return
        if est is None:
            return  # less than one clip (4.1 s) of keypoints yet
        for name in ("gdi", "knee_flex_max_ext_deg", "cadence_spm", "step_length_m"):
            cycle.metrics[f"dpg_{name}"] = est[f"{name}_{cycle.side}"]
        self.status.count("dpg_cycles")

    def on_skeleton(self, frame: SkeletonFrame) -> None:
        for body in frame.bodies:
            try:
                joints, conf = to_canonical(frame.layout, body.joints, body.confidence,
                                            feet=True)
            except LayoutError as e:
                self.status.count("rejected_layout")
                log.warning("%s: %s", frame.source, e)
                return
            key = (frame.source, body.body_id)
            track = self.tracks.get(key)
            if track is None:
                n_here = sum(s == frame.source for s, _ in self.tracks)
                if n_here >= self.cfg.max_tracks_per_source:
                    self.status.count("rejected_tracks")  # a flood of body ids
                    continue
                if n_here == 0 and len({s for s, _ in self.tracks}) >= self.cfg.max_sources:
                    self.status.count("rejected_sources")  # a flood of source names
                    continue
                track = self.tracks[key] = Track(frame.source, body.body_id, self.cfg,
                                                 self.models)
                self.status.count("tracks_started")
            elif track.last_t_us is not None and frame.t_us <= track.last_t_us:
                self.status.count("rejected_time")  # non-monotonic timestamps
                continue
            elif (track.last_t_us is not None
                  and frame.t_us - track.last_t_us > self.cfg.max_time_jump_s * 1e6):
                if not track.clock_moved(frame.t_us):
                    self.status.count("rejected_time_jump")  # one bad timestamp: skip it
                    continue
                # the source's clock really moved: what the track had is finished
                self._emit(track.flush(), frame.host_us, track)
                track = self.tracks[key] = Track(frame.source, body.body_id, self.cfg,
                                                 self.models)
                self.status.count("tracks_started")
            else:
                track.ahead.clear()
            self._emit(track.push(frame.t_us, joints, conf, frame.seq), frame.host_us, track)
        self.status.count("frames")

    def on_image(self, frame: ImageFrame) -> None:
        if frame.source not in self.models._pose and \
                len(self.models._pose) >= self.cfg.max_image_sources:
            # before decoding anything: a flood of source names costs nothing
            self.status.count("rejected_image_sources")
            return
        try:
            img = pixels(frame)
        except ValueError as e:  # a JPEG that does not decode: counted, said, no model made
            self.status.count("rejected_images")
            log.warning("%s: %s", frame.source, e)
            return
        est = self.models.pose(frame.source)
        if est is None:
            self.status.count("rejected_image_sources")
            return
        bodies = est.process(img, frame.t_us)
        self.status.count("images")
        for k, v in est.all_counters().items():
            self.status.counters[f"pose.{frame.source}.{k}"] = v
        skel = SkeletonFrame(source=frame.source, seq=frame.seq, t_us=frame.t_us,
                             host_us=frame.host_us, layout="mediapipe33", bodies=list(bodies))
        if self.pub is not None:  # the kiosk preview draws it on the frame it came from
            self.pub.send(skel)
        self.on_skeleton(skel)

    def poll(self) -> None:
        """Publish what batched model work gives once it is due, without waiting for another
        frame: the last windows of a person who stopped (or left) run within ``max_wait_s``."""
        host_us = int(time.monotonic() * 1e6)
        for tr in self.tracks.values():
            try:
                msgs = tr.poll()
            except Exception:  # a failed batch loses its windows, not the worker
                log.exception("model work for %s/%d failed", tr.source, tr.body_id)
                self.status.count("errors")
                continue
            self._emit(msgs, host_us, tr)

    def poll_timeout_ms(self, idle_ms: int = 100) -> int:
        """How long to wait for the next frame: until pending model work is due, at most
        ``idle_ms``."""
        left = self.models.gait_wait_left_s()
        return idle_ms if left is None else min(idle_ms, int(np.ceil(left * 1000)))

    def expire(self, force: bool = False) -> None:
        now = time.monotonic()
        freed = 0
        for source in self.models.expire_pose(now):
            self.status.count("image_sources_ended")
            for k in [k for k in self.status.counters if k.startswith(f"pose.{source}.")]:
                del self.status.counters[k]
            freed += 1
        for key, tr in list(self.tracks.items()):
            if force or now - tr.last_seen > self.cfg.track_timeout_s:
                self._emit(tr.flush(), int(now * 1e6), tr)
                del self.tracks[key]
                self.status.count("tracks_ended")
                freed += 1
        if freed:  # a track's buffers (~4 MB) sit in the heap until trimmed
            give_memory_back()

    def resume_points(self, received: dict[tuple[str, str], int]
                      ) -> list[tuple[str, str, int]]:
        """Per (topic, source) stream received: the first seq no record of this run has
        accounted for (the earliest frame a track holds uncovered, else the next one)."""
        held: dict[str, int] = {}
        for tr in self.tracks.values():
            h = tr.held_from_seq()
            if h is not None:
                held[tr.source] = min(held.get(tr.source, h), h)
        return [(topic, source, min(held.get(source, last + 1), last + 1))
                for (topic, source), last in sorted(received.items())]

    def handle(self, msg: Message) -> None:
        if self.sources is not None and msg.source not in self.sources:
            self.status.count("other_sources")  # another worker's camera
            return
        try:
            if isinstance(msg, SkeletonFrame):
                self.on_skeleton(msg)
            elif isinstance(msg, ImageFrame):
                self.on_image(msg)
        except Exception:  # one bad frame must not take the worker (and every track) down
            log.exception("failed to process %s from %s", msg.TYPE, msg.source)
            self.status.count("errors")


def run_worker(cfg: WorkerConfig, sub: Subscriber, pub: Publisher | None,
               stop: threading.Event, status: StatusReporter, drain_s: float = 0.0) -> None:
    """Analyse what ``sub`` delivers until ``stop``, then what is still arriving (``Drain``, at
    most ``drain_s``), then flush every track."""
    worker = Worker(cfg, pub, status)
    if cfg.checkpoint:
        points = read_checkpoint(cfg.checkpoint)
        if points:
            log.info("resuming %d stream(s) where the last run left them (%s): frames it lost "
                     "count as dropped_upstream", len(points), cfg.checkpoint)
        sub.resume(points)
    next_checkpoint = time.monotonic() + cfg.checkpoint_s
    go = Drain(stop, sub, drain_s)
    while go():
        got = sub.recv(worker.poll_timeout_ms())
        batch = [got] if got else []
        while len(batch) < 1000 and (more := sub.recv(0)) is not None:
            batch.append(more)
        # Camera frames behind the newest one of their source are stale: drop them, counted.
        newest_img: dict[str, int] = {}
        for i, (_, m) in enumerate(batch):
            if isinstance(m, ImageFrame):
                newest_img[m.source] = i
        for i, (_, m) in enumerate(batch):
            if isinstance(m, ImageFrame) and newest_img[m.source] != i:
                status.count("dropped_stale_images")
                continue
            worker.handle(m)
        worker.poll()
        worker.expire()
        status.absorb(sub)
        status.state["tracks"] = str(len(worker.tracks))
        status.maybe_publish(pub)
        if cfg.checkpoint and time.monotonic() >= next_checkpoint:
            next_checkpoint = time.monotonic() + cfg.checkpoint_s
            write_checkpoint(cfg.checkpoint, worker.run,
                             worker.resume_points(sub.positions()), status)
    worker.expire(force=True)
    if cfg.checkpoint:  # every track flushed: only what comes after this was not seen
        write_checkpoint(cfg.checkpoint, worker.run, worker.resume_points(sub.positions()),
                         status)
    status.maybe_publish(pub, force=True)


CHECKPOINT_VERSION = 1


def write_checkpoint(path: str, run: str, points: list[tuple[str, str, int]],
                     status: StatusReporter) -> None:
    """Replace the checkpoint file atomically (a kill mid-write leaves the previous one);
    failing to write it (a full disk) costs the count of a later restart's loss, not the run."""
    tmp = f"{path}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"version": CHECKPOINT_VERSION, "run": run,
                       "streams": [list(p) for p in points]}, f)
        os.replace(tmp, path)
    except OSError as e:
        status.count("checkpoint_errors")
        log.warning("could not write the checkpoint %s: %s", path, e)


def read_checkpoint(path: str) -> list[tuple[str, str, int]]:
    """The resume points a previous run left; none (with a warning) from a missing or bad file."""
    try:
        with open(path) as f:
            d = json.load(f)
        if not isinstance(d, dict) or d.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"not a version {CHECKPOINT_VERSION} worker checkpoint")
        points = []
        for topic, source, nxt in d["streams"]:
            if not (isinstance(topic, str) and isinstance(source, str)
                    and type(nxt) is int and 0 <= nxt < 1 << 62):
                raise ValueError(f"bad entry {[topic, source, nxt]!r}")
            points.append((topic, source, nxt))
        return points
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError, KeyError) as e:
        log.warning("ignoring the checkpoint %s: %s", path, e)
        return []
