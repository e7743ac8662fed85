"""The inference worker: skeletons (or camera frames) in, gait events and cycle records out.

Per track (source, body id) it keeps the analysis state and a short joint history; it maps every
layout to the canonical skeleton, runs the classical analysis (and the gait transformer when one is
configured), scores completed cycles with the anomaly scorer when one is configured, and publishes
GaitEvent / GaitCycle on ``gait/<source>``; when the classical analysis ends a walking bout (a
pause of a second or more, or the track's end) it publishes a GaitBout after the bout's cycles:
their summary and clinical indices and, when configured, the bout's gait embedding (GaitMAE).

Every track carries a pseudonymous subject id on its events and cycles: the configured
``subject`` when there is one, otherwise a random id drawn when the track starts and kept for
its life. A kiosk starts and ends sessions on the wire (SessionControl on the ``session`` topic):
from a start on, every record of that camera's tracks carries the session's id and the patient's
pseudonym (a bystander's track too: the walk report keeps the longest walker as the patient and
lists the others apart); the tracks in view are closed at the start and at the end, so that a
session holds exactly the strides walked inside it, and the worker answers ``started`` /
``ended`` on its own stream after the records it concerns. A random id says nothing about the person
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from streams.schema import (GaitBout, GaitCycle, GaitEvent, ImageFrame, Message, SessionControl,
                            SkeletonFrame, monotonic_us)
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
    # DPG on webcam (image-source) tracks: each walking bout's GaitBout gets the network's GDI,
    # knee flexion at maximum extension, cadence and step length per side (estimates
    # ``dpg.<target>_<side>``), the mean over the bout's 124-frame (4.1 s) clips; a bout
    # shorter than one clip gets none
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
    # The gait embedding (GaitMAE) of each walking bout, on its GaitBout record. Off by default:
    # an embedding can re-identify a person (biometric data; README, "Privacy").
    embedding: bool = False
    # With the embedding or DPG on, the joint history kept per track: a bout longer than this
    # is read over its last bout_history_s.
    bout_history_s: float = 60.0
    # Threads that run the anomaly scorer, the embedding and DPG beside the loop, which goes on with
    # every track's frames meanwhile (onnxruntime lets go of the GIL while it runs); 0 = in the
    # loop. At most max_pending_work records wait for them: past that a record goes out without
    # (counted as model_work_skipped; a cycle says anomaly_skipped) rather than ever later.
    model_threads: int = 1
    max_pending_work: int = 32
    # Where this worker notes, every checkpoint_s, the first frame of each stream that no record
    # has yet accounted for, so that a restart counts what it lost ("" = not kept).
    checkpoint: str = ""
    checkpoint_s: float = 0.5
    analyzer_options: dict[str, Any] = field(default_factory=dict)
    gait_model_options: dict[str, Any] = field(default_factory=dict)  # GaitModelOptions fields
    pose_options: dict[str, Any] = field(default_factory=dict)
    session: str = ""
    subject: str = ""
    # A kiosk repeats a running session's start every second; a session not heard of for this
    # long is ended here (its kiosk crashed or was stopped), so that later walkers' records do
    # not join it.
    session_timeout_s: float = 15.0
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
        if cfg.model_threads < 0 or cfg.max_pending_work < 1:
            raise ValueError("worker options: model_threads must be >= 0 and max_pending_work "
                             ">= 1")
        cfg.model_options()  # a bad key fails at start, not at the first person
        if cfg.dpg:
            from inference.models.dpg.config import CLIP_FRAMES, ONNX_PATH, RATE_HZ

            if cfg.bout_history_s < CLIP_FRAMES / RATE_HZ:
                raise ValueError(f"worker dpg needs bout_history_s >= "
                                 f"{CLIP_FRAMES / RATE_HZ:.2f} s (one clip of {CLIP_FRAMES} "
                                 f"frames at {RATE_HZ:g} Hz), got {cfg.bout_history_s:g}")
            if not ONNX_PATH.is_file():
                raise ValueError(f"worker dpg: the model file {ONNX_PATH} is missing")
        return cfg

    def model_options(self) -> Any:
        from inference.models.gait_transformer.runtime import GaitModelOptions

        check_keys("worker gait_model_options", self.gait_model_options,
                   GaitModelOptions.__dataclass_fields__)
        return GaitModelOptions(**self.gait_model_options)


def _flat(d: dict[str, Any], prefix: str) -> dict[str, float | None]:
    """{"left": {"hip_flexion": 5.0}} -> {"<prefix>.left.hip_flexion": 5.0}: nested numbers as
    the flat map a GaitBout's summary is."""
    out: dict[str, float | None] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}.{k}"))
        elif v is None or isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}.{k}"] = None if v is None else float(v)
    return out


def new_subject_id() -> str:
    """A fresh pseudonym for one track (64 random bits: collisions are out of reach)."""
    return "anon-" + secrets.token_hex(8)


def new_run_id() -> str:
    """A name for one run of a worker: its start time (UTC) and 32 random bits. Records carry
    it, so that a re-run of the same walk (source timestamps and track numbers that repeat) is
    stored beside the first run instead of being taken for a duplicate of it."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


N_CANONICAL = len(CANONICAL_JOINTS)
# How long after a bout's end its last cycle is surely out: the classical analysis decides an
# event with at most ~1 s of look-ahead (AnalyzerOptions), a cycle at its closing strike.
BOUT_SETTLE_US = 3_000_000


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
        whole_bouts = cfg.embedding or cfg.dpg  # models that read a whole bout
        self.history_us = int(max(cfg.history_s, cfg.bout_history_s if whole_bouts else 0)
                              * 1e6)
        self.layout = ""  # the wire layout its frames come in (which indices it measures)
        # the walking bouts the classical analysis ended that are not yet published, and the
        # cycles emitted since the last published bout (what the next bouts summarise)
        self.bouts_seen = 0
        self.pending_bouts: list[tuple[int, int]] = []
        self.cycles: list[GaitCycle] = []
        # records waiting to be published in order: (record, the model work it waits for)
        self.outq: deque[tuple[Message, Any]] = deque()
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
        """The held frames from ``start_us`` to ``end_us``: (t_us (n,), joints (n, 22, 3))."""
        ts = np.array([h[0] for h in self.history], dtype=np.int64)
        sel = (ts >= start_us) & (ts <= end_us)
        held = [h[1] for h, s in zip(self.history, sel) if s]
        return ts[sel], (np.stack(held) if held else np.zeros((0, N_CANONICAL, 3), np.float32))

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

    def ended_bouts(self, final: bool) -> list[tuple[int, int]]:
        """The walking bouts whose cycles have all been emitted: those the classical analysis
        ended at least BOUT_SETTLE_US before the newest frame (its look-ahead emits a bout's
        last cycle after the bout's end), every one on ``final``."""
        for a in self.analyzers:
            got = getattr(a, "bouts", None)
            if got is not None and len(got) > self.bouts_seen:
                self.pending_bouts.extend(got[self.bouts_seen:])
                self.bouts_seen = len(got)
        ready = [b for b in self.pending_bouts
                 if final or (self.last_t_us or 0) - b[1] >= BOUT_SETTLE_US]
        self.pending_bouts = [b for b in self.pending_bouts if b not in ready]
        return ready


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
        self._embedder = None
        self._load = threading.Lock()  # the model threads may ask for a model at once
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
        with self._load:
            if self._scorer is None:
                from inference.models.motion_diffusion.scorer import load_scorer

                self._scorer = load_scorer(backend=self.cfg.backend)
        return self._scorer.score(t_us, joints)

    def embed(self, t_us: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray | None, str]:
        """(the bout's GaitMAE embedding or None when shorter than a clip, the model's name)."""
        with self._load:
            if self._embedder is None:
                from inference.models.gait_mae.runtime import GaitEmbedder

                self._embedder = GaitEmbedder()
        return self._embedder.embed_walk(t_us, joints)[0], self._embedder.name

    def dpg_estimates(self, t_us: np.ndarray, joints: np.ndarray) -> dict[str, float] | None:
        """DPG's mean estimates over the clips of a webcam bout's canonical joints
        (camera-centred, y up: the wire frame of a webcam, ``inference.pose.metric``), seen
        again as image coordinates; None when shorter than a clip or a joint is behind the
        camera."""
        from inference.models.dpg.config import CLIP_FRAMES, LANDMARKS, RATE_HZ
        from inference.models.dpg.features import project
        from inference.models.gdi.indices import leg_length

        if len(t_us) < 2 or t_us[-1] - t_us[0] < (CLIP_FRAMES - 1) / RATE_HZ * 1e6:
            return None
        j = joints[:, [CJ[n] for n in LANDMARKS]].astype(np.float64)
        cam = j * np.array([1.0, -1.0, -1.0])  # wire (y up, z back) -> camera (y down, z forward)
        if not (cam[..., 2] > 0).all():
            return None  # a joint at or behind the camera: no image of it
        with self._load:
            if self._dpg is None:
                from inference.models.dpg.runtime import DPGEstimator

                self._dpg = DPGEstimator()
        return self._dpg.estimate(t_us, project(cam), leg_length(joints))

    def preload(self) -> None:
        """Load the configured models now, not at the first cycle or bout: the first patient's
        records must not wait for a model to load (a second or more), and a model that cannot
        load stops the worker at its start."""
        cfg = self.cfg
        with self._load:
            if cfg.anomaly and self._scorer is None:
                from inference.models.motion_diffusion.scorer import load_scorer

                self._scorer = load_scorer(backend=cfg.backend)
            if cfg.embedding and self._embedder is None:
                from inference.models.gait_mae.runtime import GaitEmbedder

                self._embedder = GaitEmbedder()
            if cfg.dpg and self._dpg is None:
                from inference.models.dpg.runtime import DPGEstimator

                self._dpg = DPGEstimator()

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
        self.pool: ThreadPoolExecutor | None = None
        if cfg.model_threads and (cfg.anomaly or cfg.embedding or cfg.dpg):
            self.pool = ThreadPoolExecutor(cfg.model_threads, thread_name_prefix="model")
        self.pending_work = 0  # records in the tracks' queues waiting for the pool
        # the kiosk sessions running, per camera ("" = every camera of this worker)
        self.sessions: dict[str, SessionControl] = {}
        self.session_heard: dict[str, float] = {}  # per camera: when its kiosk last spoke
        self.session_seq = 0

    def session_of(self, source: str) -> SessionControl | None:
        return self.sessions.get(source) or self.sessions.get("")

    def _emit(self, msgs: list[Message], host_us: int, track: Track | None = None) -> None:
        """Stamp and publish ``msgs`` in order. With the model work off the loop
        (``model_threads`` > 0) a cycle to score and a bout to embed wait in their track's
        queue for their result, and the track's later messages behind them, so that a track's
        records keep their order while the loop goes on with every other track's frames."""
        subject = track.subject if track is not None else self.cfg.subject
        for m in msgs:
            if isinstance(m, (GaitCycle, GaitEvent, GaitBout)):
                running = self.session_of(m.source)
                if running is not None:
                    m.session, m.subject = running.session, running.subject or subject
                m.session = m.session or self.cfg.session
                m.subject = m.subject or subject
                m.run = m.run or self.run
            m.host_us = host_us
            work = None
            if isinstance(m, GaitCycle) and track is not None:
                track.cycles.append(m)
                if self.cfg.anomaly:
                    work = self._work(m, self._score, m, *track.segment(m.start_us, m.end_us))
            elif isinstance(m, GaitBout) and track is not None and (
                    self.cfg.embedding or self.cfg.dpg and track.source in self.models._pose):
                webcam = track.source in self.models._pose  # DPG reads 2-D video keypoints
                work = self._work(m, self._bout_models, m, webcam,
                                  *track.segment(m.start_us, m.end_us))
            if track is None:
                self._send(m)
            else:
                track.outq.append((m, work))
        if track is not None:
            self._drain(track)

    def _work(self, m: Message, job: Callable[..., None], *args: Any) -> Any:
        """Run ``job(*args)`` (which fills in record ``m``): in the pool (a future) or now
        (None). Past ``max_pending_work`` records waiting in the pool, the job is skipped
        (counted, and flagged on a cycle): the records must not fall further behind than that.
        The job gets its frames as arguments: the track's history moves on while it waits."""
        if self.pool is None:
            job(*args)
            return None
        if self.pending_work >= self.cfg.max_pending_work:
            self.status.count("model_work_skipped")
            if isinstance(m, GaitCycle):
                m.flags.append("anomaly_skipped")
            return None
        self.pending_work += 1
        return self.pool.submit(job, *args)

    def _drain(self, track: Track, wait: bool = False) -> None:
        """Publish the track's queued records up to the first one still being worked on (all
        of them with ``wait``)."""
        while track.outq:
            m, work = track.outq[0]
            if work is not None:
                if not (wait or work.done()):
                    return
                self.pending_work -= 1
                work.result()  # the jobs catch their own failures and say them on the record
            track.outq.popleft()
            if isinstance(m, GaitCycle):  # what a restart would not lose (checkpoint)
                track.covered_to_us = max(track.covered_to_us or m.end_us, m.end_us)
            self._send(m)

    def _send(self, m: Message) -> None:
        if isinstance(m, GaitCycle):
            self.status.count("cycles")
        elif isinstance(m, GaitEvent):
            self.status.count("events")
        elif isinstance(m, GaitBout):
            self.status.count("bouts")
        self.seq[m.source] = self.seq.get(m.source, 0) + 1
        m.seq = self.seq[m.source]
        if self.pub is not None:
            self.pub.send(m)
        else:
            self.outputs.append(m)
        self.status.latency_us(m.host_us)  # from the frame that completed it: waiting included

    def _publish_bouts(self, track: Track, host_us: int, final: bool = False) -> None:
        """A GaitBout per ended walking bout and analysis method, after the bout's cycles."""
        from inference.analysis.cycles import summarize, trusted
        from inference.models.gdi.indices import bout_indices

        out: list[GaitBout] = []
        for b0, b1 in track.ended_bouts(final):
            inside = [c for c in track.cycles if b0 <= c.start_us and c.end_us <= b1]
            track.cycles = [c for c in track.cycles if c.end_us > b1]
            for method in sorted({c.method for c in inside}) or ["classical"]:
                mine = [c for c in inside if c.method == method]
                s = summarize(mine)
                summary: dict[str, float | None] = {}
                for k, v in s["metrics"].items():
                    summary.update({f"{k}.{q}": v[q] for q in ("n", "mean", "sd", "cv_pct")})
                use = [(c.side, c.metrics) for c in mine if trusted(c)]
                ind = bout_indices(use, track.layout) if use and track.layout else None
                for k in ("gdi", "gps", "gvs"):  # per side (and GPS overall), flat
                    summary.update(_flat((ind or {}).get(k) or {}, k))
                out.append(GaitBout(
                    source=track.source, seq=0, t_us=int(b1), host_us=host_us,
                    track=track.body_id, start_us=int(b0), end_us=int(b1), method=method,
                    cycles=len(mine), trusted_cycles=int(s["trusted_cycles"]), summary=summary))
        if out:
            self._emit(out, host_us, track)

    def _bout_models(self, bout: GaitBout, webcam: bool, t: np.ndarray, j: np.ndarray) -> None:
        """The models that read a whole bout: its embedding, and DPG's estimates for a
        webcam's bout (named ``dpg.<target>``, beside the summary of its measured cycles)."""
        if self.cfg.embedding:
            try:
                emb, model = self.models.embed(t, j) if len(t) > 1 else (None, "")
                if emb is not None:
                    bout.embedding, bout.embedding_model = np.asarray(emb, np.float32), model
            except Exception as e:  # the bout's record is kept without its embedding
                log.warning("embedding failed for %s/%d: %s", bout.source, bout.track, e)
                self.status.count("embedding_failed")
        if self.cfg.dpg and webcam:
            try:
                est = self.models.dpg_estimates(t, j)
            except Exception as e:  # the bout's record is kept without DPG's estimates
                log.warning("DPG failed for %s/%d: %s", bout.source, bout.track, e)
                self.status.count("dpg_failed")
                return
            if est is not None:  # None: shorter than one clip (4.1 s) of keypoints
                bout.estimates.update({f"dpg.{k}": v for k, v in est.items()
                                       if np.isfinite(v)})
                self.status.count("dpg_bouts")

    def _score(self, cycle: GaitCycle, t: np.ndarray, j: np.ndarray) -> None:
        try:
            cycle.anomaly = self.models.score(t, j)
        except Exception as e:  # a scorer failure must not lose the cycle record
            log.warning("anomaly scoring failed for %s/%d: %s", cycle.source, cycle.track, e)
            cycle.flags.append("anomaly_failed")
            self.status.count("anomaly_failed")

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
                self._publish_bouts(track, frame.host_us, final=True)
                self._drain(track, wait=True)
                track = self.tracks[key] = Track(frame.source, body.body_id, self.cfg,
                                                 self.models)
                self.status.count("tracks_started")
            else:
                track.ahead.clear()
            track.layout = frame.layout
            self._emit(track.push(frame.t_us, joints, conf, frame.seq), frame.host_us, track)
            self._publish_bouts(track, frame.host_us)
        self.status.count("frames")

    def on_session(self, msg: SessionControl) -> None:
        """A kiosk's start or end of a session (repeated every second while it waits): tracks
        in view are closed under the tags they had, then the session runs or ends, then the
        answer goes out, after every record it concerns."""
        if msg.action not in ("start", "end"):
            return  # another worker's answer
        if msg.camera and self.sources is not None and msg.camera not in self.sources:
            return  # another worker's camera
        running = self.sessions.get(msg.camera)
        self.session_heard[msg.camera] = time.monotonic()
        if msg.action == "start" and running is not None and running.session == msg.session:
            return  # a repeat of the start already answered
        if msg.action == "end" and (running is None or running.session != msg.session):
            self._answer(msg, "ended")  # already ended here (or never started): say so again
            return
        self._close_tracks(msg.camera)
        if msg.action == "start":
            self.sessions[msg.camera] = msg
            self.status.count("sessions_started")
            self._answer(msg, "started")
        else:
            self._end_session(msg.camera)
        self.status.state["sessions"] = ",".join(s.session for s in self.sessions.values())

    def _end_session(self, camera: str) -> None:
        msg = self.sessions.pop(camera)
        self.session_heard.pop(camera, None)
        self.status.count("sessions_ended")
        self._answer(msg, "ended")

    def expire_sessions(self, now: float) -> None:
        """End the sessions whose kiosk has gone quiet (see ``session_timeout_s``)."""
        for camera in [c for c, t in self.session_heard.items()
                       if c in self.sessions and now - t > self.cfg.session_timeout_s]:
            log.warning("session %s: no word from its kiosk for %.0f s, ended here",
                        self.sessions[camera].session, now - self.session_heard[camera])
            self._close_tracks(camera)
            self._end_session(camera)
            self.status.count("sessions_expired")
        self.status.state["sessions"] = ",".join(s.session for s in self.sessions.values())

    def _close_tracks(self, camera: str) -> None:
        now = time.monotonic()
        for key, tr in list(self.tracks.items()):
            if not camera or tr.source == camera:
                self._emit(tr.flush(), int(now * 1e6), tr)
                self._publish_bouts(tr, int(now * 1e6), final=True)
                self._drain(tr, wait=True)  # the session's answer comes after its records
                del self.tracks[key]
                self.status.count("tracks_ended")

    def _answer(self, msg: SessionControl, action: str) -> None:
        self.session_seq += 1
        answer = SessionControl(
            source=self.status.process or "worker", seq=self.session_seq, t_us=msg.t_us,
            host_us=monotonic_us(), action=action, session=msg.session, subject=msg.subject,
            camera=msg.camera, height_m=msg.height_m, age_y=msg.age_y,
            assistive_device=msg.assistive_device)
        if self.pub is not None:
            self.pub.send(answer)
        else:
            self.outputs.append(answer)

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
            if tr.outq:
                self._drain(tr)  # the model work done since
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
        if self.pending_work:  # look again soon for records the model threads finished
            idle_ms = min(idle_ms, 5)
        return idle_ms if left is None else min(idle_ms, int(np.ceil(left * 1000)))

    def expire(self, force: bool = False) -> None:
        now = time.monotonic()
        self.expire_sessions(now)
        freed = 0
        for source in self.models.expire_pose(now):
            self.status.count("image_sources_ended")
            for k in [k for k in self.status.counters if k.startswith(f"pose.{source}.")]:
                del self.status.counters[k]
            freed += 1
        for key, tr in list(self.tracks.items()):
            if force or now - tr.last_seen > self.cfg.track_timeout_s:
                self._emit(tr.flush(), int(now * 1e6), tr)
                self._publish_bouts(tr, int(now * 1e6), final=True)
                self._drain(tr, wait=True)
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
        if isinstance(msg, SessionControl):  # its source is the kiosk, its camera is checked
            self.on_session(msg)
            return
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
    worker.models.preload()
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
    if worker.pool is not None:
        worker.pool.shutdown()
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
