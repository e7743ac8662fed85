"""Gait transformer at run time: sliding windows, batching across tracks, events per track.

Reference semantics (DESIGN.md): one window per model frame (stride 1), keeping the output of
its middle frame. The live path computes the same outputs much more cheaply:

- each frame's features are computed once, incrementally (``features``), and every window
  is a slice of that per-track buffer;
- one window serves ``keep`` consecutive central frames (stride ``keep``), so a 30 Hz track
  needs 30/keep windows per second instead of 30;
- windows of all tracks are batched into one backend call (``GaitModel.submit`` /
  ``run_pending``): a batch runs when it is full or when its oldest window has waited
  ``max_wait_s``; a tracker hands out its results on its next ``push``, or on ``poll``, which
  the worker calls whenever no frame came (so a lone track that stops still gets its events
  within ``max_wait_s``, not at the next frame or at its expiry).

``windowed_outputs`` computes both schemes offline (stride 1 = the reference); the tests and
``gaitstream bench gait-transformer`` show that the live path's events stay within a few ms of
the reference's.

``GaitModelTracker`` is the per-track online interface the worker uses (like
``inference.analysis.analyzer.OnlineGaitAnalyzer``): ``push(t_us, joints, conf) -> [GaitEvent]`` and
``flush()``; its events carry ``method='gait-transformer'``. Given the classical analysis'
options (``cycle_options``, as the worker does) it also gives a ``GaitCycle`` for every stride
of its events, measured like the classical analysis' (``cycles``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from inference.models.backends import Backend, BackendError, OnnxRuntimeBackend, make_backend
from inference.models.gait_transformer.features import (
    HEIGHT_FRAMES, MODEL_RATE_HZ, N_FEATURES, N_OUTPUTS, OUT, PHASE_SLICE, FeatureStream, J,
    Resampler, estimate_height, height_usable, stream_features,
)
from inference.models.gait_transformer.events import MIN_CONFIDENCE, PhaseEvent, PhaseEventDetector
from streams.schema import GaitCycle, GaitEvent
from streams.skeletons import CJ

_PELVIS = CJ["pelvis"]

log = logging.getLogger(__name__)

METHOD = "gait-transformer"
MODELS_DIR = Path(__file__).resolve().parent  # weights and card beside the code
DEFAULT_ONNX = MODELS_DIR / "gait_transformer.onnx"
FEATURE_VERSION = "1"  # bump when features.py changes what a model was trained on


@dataclass
class GaitModelOptions:
    keep: int = 15  # central frames kept per window (odd; 1 = reference stride 1)
    max_batch: int = 64  # windows per backend call
    max_wait_s: float = 0.05  # longest a submitted window waits for its batch to fill
    min_confidence: float = MIN_CONFIDENCE


class GaitModel:
    """A backend that runs gait-transformer windows, shared by every track of a worker."""

    def __init__(self, backend: Backend, window: int, rate_hz: float = MODEL_RATE_HZ,
                 options: GaitModelOptions | None = None, single: Backend | None = None):
        self.backend = backend
        # The same model for batches of one window (a lone track's usual batch), where a
        # backend can run cheaper with the batch size fixed; None: ``backend`` runs them.
        self.single = single
        self.window = int(window)
        self.rate_hz = float(rate_hz)
        self.options = options or GaitModelOptions()
        if self.options.keep < 1 or self.options.keep % 2 == 0 or self.options.keep > window:
            raise ValueError(f"keep must be odd and in [1, {window}], got {self.options.keep}")
        self._pending: list[tuple[Any, int, np.ndarray, np.ndarray, float]] = []
        self._oldest = 0.0
        # What max_wait_s is measured on; a benchmark replaying a stream faster than real time
        # sets the stream's clock, so that windows batch as they would live.
        self.clock: Callable[[], float] = time.monotonic
        self.counters = {"batches": 0, "windows": 0}

    def run(self, x: np.ndarray, valid: np.ndarray, height: np.ndarray) -> np.ndarray:
        """Outputs (B, T, N_OUTPUTS) for windows (B, T, F), chunked into ``max_batch``."""
        if len(x) == 1 and self.single is not None:
            self.counters["batches"] += 1
            self.counters["windows"] += 1
            return self.single.run({"x": x, "valid": valid, "height": height})["y"]
        outs = []
        for s in range(0, len(x), self.options.max_batch):
            e = s + self.options.max_batch
            outs.append(self.backend.run({
                "x": np.ascontiguousarray(x[s:e], np.float32),
                "valid": np.ascontiguousarray(valid[s:e], np.float32),
                "height": np.asarray(height[s:e], np.float32).reshape(-1, 1)})["y"])
            self.counters["batches"] += 1
            self.counters["windows"] += len(outs[-1])
        return np.concatenate(outs) if outs else np.zeros((0, self.window, N_OUTPUTS),
                                                          np.float32)

    # -- batching across tracks -------------------------------------------------------------
    def submit(self, owner: "GaitModelTracker", centre: int, x: np.ndarray, valid: np.ndarray,
               height: float) -> None:
        if not self._pending:
            self._oldest = self.clock()
        self._pending.append((owner, centre, x, valid, height))

    def maybe_run(self) -> None:
        if self._pending and (len(self._pending) >= self.options.max_batch
                              or self.clock() - self._oldest >= self.options.max_wait_s):
            self.run_pending()

    def wait_left_s(self) -> float | None:
        """Seconds until the oldest pending window is due (0 when overdue), None when none is
        pending: how long a caller may block waiting for frames before ``maybe_run``."""
        if not self._pending:
            return None
        return max(0.0, self._oldest + self.options.max_wait_s - self.clock())

    def run_pending(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        if len(pending) == 1:  # a lone track's usual batch
            _, _, x, valid, height = pending[0]
            y = self.run(x[None], valid[None], np.full((1, 1), height, np.float32))
        else:
            y = self.run(np.stack([p[2] for p in pending]), np.stack([p[3] for p in pending]),
                         np.array([[p[4]] for p in pending], np.float32))
        for (owner, centre, _, valid, _), yw in zip(pending, y):
            owner._receive(centre, yw, valid)


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return dict(sess.get_modelmeta().custom_metadata_map)


TRT_OPT_BATCH = 4


def tensorrt_profile(window: int, max_batch: int) -> dict[str, tuple[tuple[int, ...], ...]]:
    """TensorRT optimisation profile: any batch from 1 to ``max_batch``, kernels tuned for a
    small one. Live batches are small (``bench gait-transformer``: 1.3 windows per batch with
    four people at once; a lone person's windows run one by one; a track's end flushes a few),
    and only a backlog fills ``max_batch``."""
    opt = min(TRT_OPT_BATCH, max_batch)
    return {"x": ((1, window, N_FEATURES), (opt, window, N_FEATURES),
                  (max_batch, window, N_FEATURES)),
            "valid": ((1, window), (opt, window), (max_batch, window)),
            "height": ((1, 1), (opt, 1), (max_batch, 1))}


def load_gait_model(backend: str = "onnxruntime", path: str | Path | None = None, *,
                    device: str = "cpu", threads: int | None = None,
                    options: GaitModelOptions | None = None,
                    trt_cache_dir: str | None = None) -> GaitModel:
    """The shipped (or given) gait transformer behind the chosen backend."""
    path = Path(path) if path is not None else DEFAULT_ONNX
    if not path.exists():
        raise FileNotFoundError(f"gait transformer weights not found at {path}; train them with "
                                "`gaitstream train gait-transformer`")
    meta = read_metadata(path)
    if meta.get("feature_version") != FEATURE_VERSION:
        raise BackendError(f"{path} was trained on feature version "
                           f"{meta.get('feature_version')!r}, this code makes {FEATURE_VERSION!r}")
    cfg = json.loads(meta["config"])
    window = int(cfg["window"])
    opts = options or GaitModelOptions()

    def torch_module() -> Any:
        from inference.models.gait_transformer.model import module_from_onnx

        return module_from_onnx(path)

    profile = tensorrt_profile(window, opts.max_batch) if backend == "tensorrt" else None
    be = make_backend(backend, onnx_path=path, torch_module=torch_module,
                      input_names=("x", "valid", "height"), output_names=("y",), device=device,
                      threads=threads, trt_profile=profile, trt_cache_dir=trt_cache_dir)
    # onnxruntime with the batch fixed to 1 runs a lone window ~10% cheaper, the same numbers
    single = OnnxRuntimeBackend(path, device=device, threads=threads,
                                fixed_dims={"batch": 1}) if backend == "onnxruntime" else None
    return GaitModel(be, window, float(meta.get("rate_hz", MODEL_RATE_HZ)), opts, single)


def window_centres(n: int, keep: int) -> np.ndarray:
    """Centres of the windows that cover frames 0..n-1, ``keep`` central frames each."""
    return np.arange(keep // 2, n + keep // 2, keep)


def gather_windows(x: np.ndarray, valid: np.ndarray, centres: np.ndarray, window: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Windows [c - window//2, c - window//2 + window) of per-frame arrays, zero/invalid
    padded outside the recording."""
    half = window // 2
    pad = window
    xp = np.zeros((len(x) + 2 * pad, x.shape[1]), np.float32)
    vp = np.zeros(len(x) + 2 * pad, np.float32)
    xp[pad:pad + len(x)] = x
    vp[pad:pad + len(x)] = valid
    starts = np.asarray(centres) - half + pad
    idx = starts[:, None] + np.arange(window)[None, :]
    return xp[idx], vp[idx]


def windowed_outputs(model: GaitModel, x: np.ndarray, valid: np.ndarray, height: float,
                     keep: int, batch: int | None = None) -> np.ndarray:
    """Per-frame outputs (N, N_OUTPUTS) of a whole feature series: windows centred every
    ``keep`` frames, each contributing its ``keep`` central frames. ``keep=1, batch=1`` is the
    reference (one window per frame, its middle frame). Invalid frames get NaN."""
    n, T = len(x), model.window
    out = np.full((n, N_OUTPUTS), np.nan, np.float32)
    centres = window_centres(n, keep)
    batch = batch or len(centres)
    half = T // 2
    for s in range(0, len(centres), batch):
        c = centres[s:s + batch]
        xw, vw = gather_windows(x, valid, c, T)
        y = model.run(xw, vw, np.full((len(c), 1), height, np.float32))
        for ci, yw in zip(c, y):
            lo, hi = ci - keep // 2, min(ci + keep // 2 + 1, n)
            out[lo:hi] = yw[half - keep // 2: half - keep // 2 + (hi - lo)]
    out[valid <= 0] = np.nan
    return out


def predict_recording(model: GaitModel, t_us: np.ndarray, joints: np.ndarray,
                      conf: np.ndarray, *, keep: int | None = None, batch: int | None = None,
                      height_m: float | None = None) -> dict[str, Any]:
    """The model over a whole recording offline: features, per-frame outputs and events (the
    worker's whole analysis of a file is :func:`inference.analyze.analyze_recording`). ``keep``
    defaults to the live setting; ``keep=1, batch=1`` gives the reference."""
    feats = stream_features(t_us, joints, conf, height_m, model.rate_hz)
    keep = model.options.keep if keep is None else keep
    y = windowed_outputs(model, feats["x"], feats["valid"], feats["height"], keep, batch)
    events = PhaseEventDetector(model.options.min_confidence).push(feats["t_us"],
                                                                   y[:, PHASE_SLICE])
    return {**feats, "y": y, "events": events}


class GaitModelTracker:
    """Online gait-transformer events (and cycles, with ``cycle_options``) for one track
    (source, body id)."""

    method = METHOD

    def __init__(self, model: GaitModel, source: str, track: int,
                 height_m: float | None = None, cycle_options: Any = None):
        """``cycle_options``: ``inference.analysis.analyzer.AnalyzerOptions`` to make a
        GaitCycle of every stride (None: events only)."""
        self.model, self.source, self.track = model, source, int(track)
        self.cycle_options = cycle_options
        self.cycles: Any = None  # cycles.ModelCycles once the grid exists
        # source gaps longer than the cycle options' max_gap_ms: (before, after) sample times
        self._gaps: list[tuple[int, int]] = []
        self._gap_us = (cycle_options.frames.max_gap_ms * 1000
                        if cycle_options is not None else float("inf"))
        self.keep, self.T = model.options.keep, model.window
        self.resampler = Resampler(model.rate_hz)
        self.detector = PhaseEventDetector(model.options.min_confidence)
        self.height = height_m
        self.features: FeatureStream | None = None
        self._early: list[tuple[int, np.ndarray, np.ndarray, bool]] = []  # before the height
        # grid frames without features yet, in blocks: (joints, conf, valid)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # samples not yet resampled (time, joints, conf), and the last accepted time
        self._raw_t: list[int] = []
        self._raw_j: list[np.ndarray] = []
        self._raw_c: list[np.ndarray] = []
        self._last_t: int | None = None
        self._n_usable = 0
        # Per-frame features of this track; frames before ``_base`` were dropped once no
        # window needs them.
        self._x = np.zeros((4 * self.T, N_FEATURES), np.float32)
        self._v = np.zeros(4 * self.T, np.float32)
        self._base = 0
        self._n = 0  # grid frames with features
        self._next_centre = self.keep // 2
        self._in_flight = 0
        self._next_out = 0  # first frame whose outputs the event detector has not seen
        self._results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._outbox: list[GaitEvent | GaitCycle] = []
        # (t_us (m,), outputs (m, N_OUTPUTS)) blocks of the recent frames: cycle measures,
        # plots, evaluation (``output_arrays``)
        self.outputs: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self.outputs_kept_s = 30.0

    # -- frames in ------------------------------------------------------------------------
    def push(self, t_us: int, joints: np.ndarray, conf: np.ndarray
             ) -> list[GaitEvent | GaitCycle]:
        if self.features is None:  # until the height is known: frame by frame
            for k, j, c, v in self.resampler.push(t_us, joints, conf):
                self._grid_frame(k, j, c, v)
            if self.resampler.prev is not None:
                if self._last_t is not None and self.resampler.prev[0] - self._last_t \
                        > self._gap_us:
                    self._gaps.append((self._last_t, self.resampler.prev[0]))
                self._last_t = self.resampler.prev[0]
            ready = self.features is not None and self.resampler.next_k >= self._window_end()
        else:
            ready = self._buffer(t_us, joints, conf)
        # Resampling and features run a block at a time, when the next window needs them: the
        # same values as frame by frame, without the per-frame cost of numpy on small arrays.
        # Only new features can complete a window.
        if ready:
            self._compute_pending()
            self._submit_ready(final=False)
        if self.model._pending:
            self.model.maybe_run()
        return self._take() if self._outbox else []

    def _window_end(self) -> int:
        """Grid frames the next window needs (its last frame + 1)."""
        return self._next_centre - self.T // 2 + self.T

    def _buffer(self, t_us: int, joints: np.ndarray, conf: np.ndarray) -> bool:
        """Check a sample now (a bad one raises here, as ``Resampler.push`` would) and keep it
        for the next block; whether the next window's last grid frame is known with it."""
        t_us = int(t_us)
        joints, conf = np.asarray(joints), np.asarray(conf)
        if joints.shape != (J, 3) or conf.shape != (J,):
            raise ValueError(f"joints {joints.shape} / confidences {conf.shape}: expected "
                             f"({J}, 3) / ({J},)")
        if not math.isfinite(sum(joints[_PELVIS].tolist())):
            return False  # skipped, as the resampler does; nothing new is known
        if self._last_t is not None:
            if t_us <= self._last_t:
                raise ValueError(f"timestamps must increase: {t_us} after {self._last_t}")
            if t_us - self._last_t > self._gap_us:
                self._gaps.append((self._last_t, t_us))
        self._last_t = t_us
        self._raw_t.append(t_us)
        self._raw_j.append(joints)
        self._raw_c.append(conf)
        # grid frame k is known once a sample reaches its time (``Resampler.grid_time_us``)
        rs = self.resampler
        return t_us >= rs.t0 + (self._window_end() - 1) * rs.dt_us

    def poll(self) -> list[GaitEvent | GaitCycle]:
        """Events of windows that ran since the last call, running the shared batch if it is
        due; for a caller that has no frame to push."""
        self.model.maybe_run()
        return self._take()

    def flush(self) -> list[GaitEvent | GaitCycle]:
        if self.features is None and self._early:
            self._start_features()
        self._compute_pending()
        if self.cycles is not None:
            self._outbox += self.cycles.finish()
        self._submit_ready(final=True)
        self.model.run_pending()
        return self._take()

    def _grid_frame(self, k: int, j: np.ndarray, c: np.ndarray, v: bool) -> None:
        if self.features is None:
            self._early.append((k, j, c, v))
            self._n_usable += bool(v and height_usable(c))
            if self._n_usable >= HEIGHT_FRAMES or self.height is not None:
                self._start_features()
            return
        self._pending.append((j[None], c[None], np.array([v])))

    def _compute_pending(self) -> None:
        if self.features is None:
            return
        if self._raw_t:
            t, j, c = self._raw_t, self._raw_j, self._raw_c
            self._raw_t, self._raw_j, self._raw_c = [], [], []
            _, gj, gc, gv = self.resampler.push_block(np.array(t, np.int64),
                                                      np.array(j, np.float64),
                                                      np.array(c, np.float64))
            if len(gj):
                self._pending.append((gj, gc, gv))
        if not self._pending:
            return
        blocks, self._pending = self._pending, []
        if len(blocks) == 1:
            gj, gc, gv = blocks[0]
        else:
            gj, gc, gv = (np.concatenate([b[i] for b in blocks]) for i in range(3))
        F, ok = self.features.push_block(gj, gc, gv)
        if self.cycle_options is not None:
            self._cycle_frames(gj, gc, gv, ok)
        self._append(F, ok)

    def _cycle_frames(self, joints: np.ndarray, conf: np.ndarray, valid: np.ndarray,
                      ok: np.ndarray) -> None:
        """Hand a block of grid frames (the next after ``_n``) to the cycle measures, with the
        model's walking direction where it has one."""
        from inference.models.gait_transformer.cycles import ModelCycles

        if self.cycles is None:
            self.cycles = ModelCycles(
                self.source, self.track, METHOD, self.cycle_options,
                self.resampler.t0, self.resampler.dt_us,
                self.cycle_options.history_s + self.T / self.model.rate_hz)
        fwd = np.full((len(joints), 3), np.nan)
        fwd[ok] = self.features.last_axes[:, :, 2]
        gap = np.zeros(len(joints), bool)
        if self._gaps:
            tk = self.resampler.grid_time_us(np.arange(self._n, self._n + len(joints)))
            for a, b in self._gaps:
                gap |= (tk > a) & (tk <= b)
            self._gaps = [g for g in self._gaps if g[1] > tk[-1]]
        self._outbox += self.cycles.add_frames(self._n, joints, conf, valid, fwd, gap)

    def _start_features(self) -> None:
        if self.height is None:
            usable = [e for e in self._early if e[3] and height_usable(e[2])][:HEIGHT_FRAMES]
            if not usable:
                return
            self.height = estimate_height(np.stack([e[1] for e in usable]),
                                          np.stack([e[2] for e in usable]))
        self.features = FeatureStream(self.height, self.model.rate_hz)
        early, self._early = self._early, []
        self._pending = [(np.stack([e[1] for e in early]), np.stack([e[2] for e in early]),
                          np.array([e[3] for e in early], bool))]
        self._compute_pending()

    def _append(self, f: np.ndarray, valid: np.ndarray) -> None:
        m = len(f)
        used = self._n - self._base
        if used + m > len(self._x):
            # Keep what the next window still needs (it starts at centre - T//2).
            drop = max(0, min(self._next_centre - self.T // 2, self._n) - self._base)
            used -= drop
            if used + m > len(self._x):  # a long block: grow rather than lose
                size = max(2 * len(self._x), used + m)
                x, v = np.zeros((size, N_FEATURES), np.float32), np.zeros(size, np.float32)
            else:
                x, v = self._x, self._v
            x[:used] = self._x[drop:drop + used]
            v[:used] = self._v[drop:drop + used]
            self._x, self._v = x, v
            self._base += drop
        self._x[used:used + m] = f
        self._v[used:used + m] = valid
        self._n += m

    def _submit_ready(self, final: bool) -> None:
        half = self.T // 2
        while self.features is not None and self._next_centre - self.keep // 2 < self._n:
            c = self._next_centre
            if not final and c - half + self.T > self._n:
                break  # the window's last frame has not arrived yet
            lo, hi = c - half - self._base, c - half + self.T - self._base
            if lo >= 0 and hi <= self._n - self._base:  # the usual case: a plain slice
                xw, vw = self._x[lo:hi].copy(), self._v[lo:hi].copy()
            else:  # before the first frame or past the last (final): zero, invalid
                xw = np.zeros((self.T, N_FEATURES), np.float32)
                vw = np.zeros(self.T, np.float32)
                a, b = max(lo, 0), min(hi, self._n - self._base)
                xw[a - lo:b - lo] = self._x[a:b]
                vw[a - lo:b - lo] = self._v[a:b]
            self.model.submit(self, c, xw, vw, float(self.height))
            self._in_flight += 1
            self._next_centre += self.keep

    # -- results back -----------------------------------------------------------------------
    def _receive(self, centre: int, y: np.ndarray, valid: np.ndarray) -> None:
        self._in_flight -= 1
        self._results[centre] = (y, valid)
        half, h = self.T // 2, self.keep // 2
        while (c := self._next_out + h) in self._results:
            yw, vw = self._results.pop(c)
            lo, hi = c - h, min(c + h + 1, self._n)
            ys = yw[half - h: half - h + (hi - lo)].copy()
            ys[vw[half - h: half - h + (hi - lo)] <= 0] = np.nan
            t = self.resampler.grid_time_us(np.arange(lo, hi))
            if self.cycles is not None:
                self.cycles.add_outputs(lo, ys, OUT)
            for e in self.detector.push(t, ys[:, PHASE_SLICE]):
                ev = self._event(e)
                self._outbox.append(ev)
                if self.cycles is not None:
                    self._outbox += self.cycles.add_event(ev.side, ev.kind, ev.event_us,
                                                          int(t[-1]))
            self.outputs.append((t, ys))
            self._next_out = hi
        cut = self.outputs[-1][0][-1] - self.outputs_kept_s * 1e6 if self.outputs else 0.0
        while self.outputs and self.outputs[0][0][-1] < cut:
            self.outputs.popleft()

    def output_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(t_us (N,), outputs (N, N_OUTPUTS)) of the kept frames, in time order."""
        if not self.outputs:
            return np.zeros(0), np.zeros((0, N_OUTPUTS), np.float32)
        return (np.concatenate([o[0] for o in self.outputs]),
                np.concatenate([o[1] for o in self.outputs]))

    def joint_angles(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Predicted hip and knee flexion (deg) of the kept frames, as ``eval events`` reads
        them: (t_us, {"knee_flexion_left": ..., ...})."""
        t, y = self.output_arrays()
        return t, {name: y[:, OUT[name]] for name in (
            "hip_flexion_left", "hip_flexion_right", "knee_flexion_left", "knee_flexion_right")}

    def _event(self, e: PhaseEvent) -> GaitEvent:
        return GaitEvent(source=self.source, seq=0, t_us=int(round(e.t_us)), host_us=0,
                         track=self.track, side=e.side, kind=e.kind,
                         event_us=int(round(e.t_us)), method=METHOD,
                         confidence=float(np.clip(e.confidence, 0.0, 1.0)))

    def _take(self) -> list[GaitEvent | GaitCycle]:
        out, self._outbox = self._outbox, []
        return out

