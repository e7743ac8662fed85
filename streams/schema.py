"""The wire: every message type, its msgpack encoding, its version and its validation.

Nothing outside ``streams/`` builds or parses message bytes. A message is a msgpack map with the
common header keys ``type, v, src, seq, t, host`` followed by type-specific keys. Arrays travel
as ``{"dt": "<f4", "sh": [..], "b": raw little-endian bytes}`` and never as lists of floats.
Images travel as a separate ZeroMQ frame next to their header (see ``transport``).

Decoding validates everything it reads and raises only :class:`WireError`, whose message names
what was wrong; a process counts the rejection and keeps running. It runs in two steps: msgspec
decodes the bytes straight into typed structs that carry every bound (``_Wire*`` below), which
is what nearly every message takes; only a message that fails there is read again field by field
(``_decode_checked``), to accept what the typed step is stricter about (extra keys, a body whose
coordinates' squares sum past 1e5 m², about 40 m out for 22 joints, a confidence of -0.0) or to
name the reason it is refused.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import msgpack
import msgspec
import numpy as np
from msgspec import Meta, Struct

SCHEMA_VERSION = 1

# Upper bounds that keep a hostile or broken sender from making a process allocate absurd memory.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a header or skeleton message; images travel separately
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_BODIES = 16
MAX_JOINTS = 128
MAX_STRING = 256
MAX_DICT_ITEMS = 256
# A sequence number jumping further than this is a restarted or misbehaving sender, not that
# many lost messages: counted as a jump, never added to a loss count (which would overflow).
MAX_SEQ_GAP = 1_000_000

_ALLOWED_DTYPES = {"<f4", "<f8", "<i4", "<i8", "<u2", "|u1"}


class WireError(ValueError):
    """A message could not be decoded or failed validation; the text says what was wrong."""


def monotonic_us() -> int:
    """The host's monotonic clock in integer microseconds (shared by all processes on one host)."""
    return time.monotonic_ns() // 1000


# --------------------------------------------------------------------------- array helpers


def unpack_array(
    obj: Any, name: str, dtype: str, ndim: int, *, finite: bool = True
) -> np.ndarray:
    if not isinstance(obj, dict) or set(obj) != {"dt", "sh", "b"}:
        raise WireError(f"{name}: expected an array map with keys dt, sh, b")
    dt, sh, b = obj["dt"], obj["sh"], obj["b"]
    if not isinstance(dt, str) or dt not in _ALLOWED_DTYPES:
        raise WireError(f"{name}: dtype {dt!r} not allowed")
    if dt != dtype:
        raise WireError(f"{name}: dtype {dt} where {dtype} is required")
    if not isinstance(sh, list) or len(sh) != ndim:
        raise WireError(f"{name}: shape must have {ndim} dimensions, got {sh!r}")
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 1 << 20 for n in sh):
        raise WireError(f"{name}: invalid shape {sh!r}")
    if not isinstance(b, bytes):
        raise WireError(f"{name}: data must be bytes")
    want = math.prod(sh) * np.dtype(dt).itemsize
    if len(b) != want:
        raise WireError(f"{name}: {len(b)} data bytes for shape {sh} {dt} (expected {want})")
    a = np.frombuffer(b, dtype=np.dtype(dt)).reshape(sh)
    if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
        raise WireError(f"{name}: contains NaN or infinite values")
    return a


# --------------------------------------------------------------------------- field checks


def _req(d: dict, key: str, typ: type | tuple, msg_type: str) -> Any:
    if key not in d:
        raise WireError(f"{msg_type}: missing field {key!r}")
    v = d[key]
    if typ is int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise WireError(f"{msg_type}.{key}: expected an integer, got {type(v).__name__}")
        if not -(1 << 62) < v < 1 << 62:
            raise WireError(f"{msg_type}.{key}: integer out of range")
    elif typ is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise WireError(f"{msg_type}.{key}: expected a number, got {type(v).__name__}")
        v = float(v)
        if not math.isfinite(v):
            raise WireError(f"{msg_type}.{key}: not a finite number")
    elif typ is str:
        if not isinstance(v, str):
            raise WireError(f"{msg_type}.{key}: expected a string, got {type(v).__name__}")
        if len(v) > MAX_STRING:
            raise WireError(f"{msg_type}.{key}: string longer than {MAX_STRING}")
    elif not isinstance(v, typ):
        raise WireError(f"{msg_type}.{key}: expected {typ}, got {type(v).__name__}")
    return v


def _opt(d: dict, key: str, typ: type, msg_type: str, default: Any = None) -> Any:
    if d.get(key) is None:
        return default
    return _req(d, key, typ, msg_type)


def _str_list(v: Any, name: str) -> list[str]:
    if not isinstance(v, list) or len(v) > MAX_DICT_ITEMS:
        raise WireError(f"{name}: expected a list of at most {MAX_DICT_ITEMS} strings")
    for s in v:
        if not isinstance(s, str) or len(s) > MAX_STRING:
            raise WireError(f"{name}: items must be strings of at most {MAX_STRING} characters")
    return list(v)


def _num_dict(v: Any, name: str, *, allow_none: bool = False) -> dict[str, float | None]:
    if not isinstance(v, dict) or len(v) > MAX_DICT_ITEMS:
        raise WireError(f"{name}: expected a map of at most {MAX_DICT_ITEMS} numbers")
    out: dict[str, float | None] = {}
    for k, x in v.items():
        if not isinstance(k, str) or len(k) > MAX_STRING:
            raise WireError(f"{name}: keys must be short strings")
        if x is None and allow_none:
            out[k] = None
            continue
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise WireError(f"{name}[{k!r}]: expected a finite number, got {x!r}")
        out[k] = float(x)
    return out


# --------------------------------------------------------------------------- messages


@dataclass
class Header:
    """Fields every message carries. ``t_us`` is the source clock (device time when there is one);
    ``host_us`` the host's monotonic time when the data entered the pipeline, for latency."""

    source: str
    seq: int
    t_us: int
    host_us: int


@dataclass
class Message:
    TYPE: ClassVar[str] = ""
    source: str
    seq: int
    t_us: int
    host_us: int

    def _wire(self) -> Any:
        """The message as its typed wire struct (``_Wire*`` below), which is what is encoded."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The map the wire carries for this message, as a reader unpacks it."""
        return msgspec.msgpack.decode(encode(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "Message":
        raise NotImplementedError


@dataclass
class Body:
    body_id: int
    joints: np.ndarray  # (J, 3) float32, metres
    confidence: np.ndarray  # (J,) float32 in [0, 1]


@dataclass
class SkeletonFrame(Message):
    """All bodies one source saw at one instant, in the source's own joint layout."""

    TYPE: ClassVar[str] = "skeleton"
    layout: str = "canonical22"
    bodies: list[Body] = field(default_factory=list)

    def _wire(self) -> _WireSkeleton:
        bodies = []
        for b in self.bodies:
            j = np.ascontiguousarray(b.joints, dtype=_F4)  # no copy when it already is one
            c = np.ascontiguousarray(b.confidence, dtype=_F4)
            bodies.append(_WireBody(int(b.body_id), _WireJoints("<f4", j.shape, j.tobytes()),
                                    _WireConfidence("<f4", c.shape, c.tobytes())))
        return _WireSkeleton(SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us),
                             int(self.host_us), self.layout, bodies)

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "SkeletonFrame":
        layout = _req(d, "layout", str, cls.TYPE)
        bodies_raw = _req(d, "bodies", list, cls.TYPE)
        if len(bodies_raw) > MAX_BODIES:
            raise WireError(f"skeleton: {len(bodies_raw)} bodies (at most {MAX_BODIES})")
        bodies = []
        for i, b in enumerate(bodies_raw):
            if not isinstance(b, dict):
                raise WireError(f"skeleton.bodies[{i}]: expected a map")
            bid = _req(b, "id", int, f"skeleton.bodies[{i}]")
            # finiteness is folded into the range checks below (NaN fails every comparison),
            # which keeps validation cheap on the per-frame path
            joints = unpack_array(b.get("j"), f"skeleton.bodies[{i}].joints", "<f4", 2,
                                  finite=False)
            conf = unpack_array(b.get("c"), f"skeleton.bodies[{i}].confidence", "<f4", 1,
                                finite=False)
            if joints.shape[1] != 3 or not 0 < joints.shape[0] <= MAX_JOINTS:
                raise WireError(f"skeleton.bodies[{i}].joints: shape {joints.shape} is not (J, 3)")
            if conf.shape[0] != joints.shape[0]:
                raise WireError(f"skeleton.bodies[{i}].confidence: {conf.shape[0]} values for "
                                f"{joints.shape[0]} joints")
            if not (conf.min() >= 0.0 and conf.max() <= 1.0):
                raise WireError(f"skeleton.bodies[{i}].confidence: NaN or values outside "
                                "[0, 1]")
            lo, hi = joints.min(), joints.max()
            if not (lo == lo and hi == hi):
                raise WireError(f"skeleton.bodies[{i}].joints: contains NaN values")
            if not (-1000.0 <= lo and hi <= 1000.0):
                raise WireError(f"skeleton.bodies[{i}].joints: infinite values or coordinates "
                                "beyond 1 km (units must be metres)")
            bodies.append(Body(bid, joints, conf))
        return cls(**vars(head), layout=layout, bodies=bodies)


@dataclass
class ImageFrame(Message):
    """A camera frame. ``image`` is sent as its own ZeroMQ frame (zero-copy), not inside msgpack."""

    TYPE: ClassVar[str] = "image"
    width: int = 0
    height: int = 0
    encoding: str = "bgr8"  # bgr8 | rgb8 | gray8 | jpeg
    image: Any = b""  # bytes-like / buffer / numpy array (H, W, C) uint8

    CHANNELS: ClassVar[dict[str, int]] = {"bgr8": 3, "rgb8": 3, "gray8": 1}

    def _wire(self) -> _WireImage:
        return _WireImage(SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us),
                          int(self.host_us), int(self.width), int(self.height), self.encoding)

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "ImageFrame":
        w = _req(d, "w", int, cls.TYPE)
        h = _req(d, "h", int, cls.TYPE)
        enc = _req(d, "enc", str, cls.TYPE)
        if not (0 < w <= 16384 and 0 < h <= 16384):
            raise WireError(f"image: size {w}x{h} out of range")
        if enc not in (*cls.CHANNELS, "jpeg"):
            raise WireError(f"image: unknown encoding {enc!r}")
        return cls(**vars(head), width=w, height=h, encoding=enc)

    def attach(self, buf: Any) -> "ImageFrame":
        n = memoryview(buf).nbytes
        if n > MAX_IMAGE_BYTES:
            raise WireError(f"image: {n} bytes exceeds {MAX_IMAGE_BYTES}")
        if self.encoding in self.CHANNELS:
            want = self.width * self.height * self.CHANNELS[self.encoding]
            if n != want:
                raise WireError(f"image: {n} bytes for {self.width}x{self.height} "
                                f"{self.encoding} (expected {want})")
        elif n == 0:
            raise WireError("image: empty jpeg payload")
        self.image = buf
        return self

    def array(self) -> np.ndarray:
        """The raw image as an (H, W, C) uint8 view (no copy); raw encodings only."""
        if self.encoding not in self.CHANNELS:
            raise WireError(f"image: {self.encoding} needs decoding, not a raw view")
        c = self.CHANNELS[self.encoding]
        return np.frombuffer(self.image, dtype=np.uint8).reshape(self.height, self.width, c)


EVENT_KINDS = ("foot_strike", "foot_off")
SIDES = ("left", "right")


@dataclass
class GaitEvent(Message):
    """A gait event of one track. ``event_us`` is the sub-frame event time on the source clock.

    ``session`` and ``subject`` are the pseudonymous ids the worker puts on the track's cycles
    too, so that one subject's events can be found (and deleted) like its cycles; ``run`` names
    the worker run that made it (a re-run of the same walk is another run, not a duplicate).
    Messages recorded before they existed decode with them empty."""

    TYPE: ClassVar[str] = "gait_event"
    track: int = 0
    side: str = "left"
    kind: str = "foot_strike"
    event_us: int = 0
    method: str = "classical"
    confidence: float = 1.0
    session: str = ""
    subject: str = ""
    run: str = ""

    def _wire(self) -> _WireEvent:
        return _WireEvent(SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us),
                          int(self.host_us), int(self.track), self.side, self.kind,
                          int(self.event_us), self.method, float(self.confidence), self.session,
                          self.subject, self.run)

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "GaitEvent":
        side = _req(d, "side", str, cls.TYPE)
        kind = _req(d, "kind", str, cls.TYPE)
        if side not in SIDES:
            raise WireError(f"gait_event.side: {side!r} is not one of {SIDES}")
        if kind not in EVENT_KINDS:
            raise WireError(f"gait_event.kind: {kind!r} is not one of {EVENT_KINDS}")
        conf = _req(d, "conf", float, cls.TYPE)
        if not 0.0 <= conf <= 1.0:
            raise WireError("gait_event.conf: outside [0, 1]")
        return cls(**vars(head), track=_req(d, "track", int, cls.TYPE), side=side, kind=kind,
                   event_us=_req(d, "ev", int, cls.TYPE), method=_req(d, "method", str, cls.TYPE),
                   confidence=conf, session=_opt(d, "session", str, cls.TYPE, ""),
                   subject=_opt(d, "subject", str, cls.TYPE, ""),
                   run=_opt(d, "run", str, cls.TYPE, ""))


# Quality flags a cycle record may carry, and what each means to a person reading it.
CYCLE_FLAGS: dict[str, str] = {
    "missing_events": "a foot event was not seen",
    "implausible_timing": "implausible timing",
    "left_right_swap": "left and right legs swapped",
    "missing_joints": "joints not tracked",
    "turning": "turning",
    "standing": "standing",
    "time_gap": "frames missing",
    "too_few_frames": "too few frames",
    "low_confidence": "low tracking confidence",
    "bone_length": "bone lengths inconsistent",
    "direction_from_body": "walking direction taken from the body",
    "anomaly_failed": "no anomaly score",
    "anomaly_skipped": "not scored: the worker was behind",
}
# Flags that make a cycle unfit for summaries and alert windows (the record is still published).
UNTRUSTED_FLAGS = frozenset({"missing_events", "implausible_timing", "left_right_swap",
                             "missing_joints", "turning", "standing", "time_gap",
                             "too_few_frames"})


def flag_words(flags: list[str]) -> str:
    """A cycle's flags in words."""
    return ", ".join(CYCLE_FLAGS.get(f, f) for f in flags)


# Per-cycle measures, with units. A measure that could not be computed is None (not NaN, not
# missing), so that a record always says what it does not know.
CYCLE_METRICS: dict[str, str] = {
    "stride_time_s": "s",
    "step_time_s": "s",
    "cadence_spm": "steps/min",
    "stride_length_m": "m",
    "step_length_m": "m",
    "step_width_m": "m",
    "speed_mps": "m/s",
    "stance_pct": "% cycle",
    "swing_pct": "% cycle",
    "single_support_pct": "% cycle",
    "double_support_pct": "% cycle",
    "knee_rom_deg": "deg",
    "hip_rom_deg": "deg",
    "peak_swing_knee_flexion_deg": "deg",
    "arm_swing_deg": "deg",
    "step_time_symmetry": "ratio",
    "step_length_symmetry": "ratio",
}


@dataclass
class GaitCycle(Message):
    """One completed stride of one track: foot strike to the next foot strike of ``side``.

    ``metrics`` uses the keys of :data:`CYCLE_METRICS` (None = not computable); ``flags`` are
    quality flags (a cycle that should not be trusted says so); ``anomaly`` holds the diffusion
    scorer's subject-level ``"subject"`` score and feature-level scores when a scorer ran.
    ``run`` names the worker run that made it (empty in messages recorded before it existed).
    """

    TYPE: ClassVar[str] = "gait_cycle"
    track: int = 0
    side: str = "left"
    start_us: int = 0
    end_us: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    anomaly: dict[str, float] = field(default_factory=dict)
    method: str = "classical"
    session: str = ""
    subject: str = ""
    run: str = ""

    def _wire(self) -> _WireCycle:
        return _WireCycle(
            SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us), int(self.host_us),
            int(self.track), self.side, int(self.start_us), int(self.end_us),
            {k: (None if v is None or not math.isfinite(v) else float(v))
             for k, v in self.metrics.items()},
            list(self.flags), {k: float(v) for k, v in self.anomaly.items()}, self.method,
            self.session, self.subject, self.run)

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "GaitCycle":
        side = _req(d, "side", str, cls.TYPE)
        if side not in SIDES:
            raise WireError(f"gait_cycle.side: {side!r} is not one of {SIDES}")
        start, end = _req(d, "start", int, cls.TYPE), _req(d, "end", int, cls.TYPE)
        if end < start:
            raise WireError("gait_cycle: end before start")
        return cls(**vars(head), track=_req(d, "track", int, cls.TYPE), side=side,
                   start_us=start, end_us=end,
                   metrics=_num_dict(_req(d, "metrics", dict, cls.TYPE), "gait_cycle.metrics",
                                     allow_none=True),
                   flags=_str_list(_req(d, "flags", list, cls.TYPE), "gait_cycle.flags"),
                   anomaly=_num_dict(_req(d, "anomaly", dict, cls.TYPE), "gait_cycle.anomaly"),
                   method=_req(d, "method", str, cls.TYPE),
                   session=_req(d, "session", str, cls.TYPE),
                   subject=_req(d, "subject", str, cls.TYPE),
                   run=_opt(d, "run", str, cls.TYPE, ""))


MAX_EMBEDDING = 4096  # floats in a bout's embedding (GaitMAE: 128)


@dataclass
class GaitBout(Message):
    """One walking bout of one track (walking from a start to a pause of a second or more),
    published after the cycles that lie in it.

    ``summary``: per-bout figures of the trusted cycles in it, flat (``<measure>.mean``, ``.sd``,
    ``.cv_pct``, ``.n``, and the clinical indices ``gdi``, ``gps_deg``, ... where the source
    gives them; None = not computable). ``estimates``: what a learned model estimates from the
    whole bout, its key prefixed with the model's name (``dpg.gdi``). ``embedding``: the gait
    foundation model's vector of the bout (float32, empty when none was made), named by
    ``embedding_model``; it can re-identify a person, so it is biometric data wherever it goes.
    """

    TYPE: ClassVar[str] = "gait_bout"
    track: int = 0
    start_us: int = 0
    end_us: int = 0
    method: str = "classical"
    cycles: int = 0
    trusted_cycles: int = 0
    summary: dict[str, float | None] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    embedding_model: str = ""
    session: str = ""
    subject: str = ""
    run: str = ""

    def _wire(self) -> _WireBout:
        e = np.ascontiguousarray(self.embedding, dtype=_F4).reshape(-1)
        return _WireBout(
            SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us), int(self.host_us),
            int(self.track), int(self.start_us), int(self.end_us), self.method, int(self.cycles),
            int(self.trusted_cycles),
            {k: (None if v is None or not math.isfinite(v) else float(v))
             for k, v in self.summary.items()},
            {k: float(v) for k, v in self.estimates.items() if math.isfinite(v)},
            _WireVector("<f4", (len(e),), e.tobytes()), self.embedding_model, self.session,
            self.subject, self.run)

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "GaitBout":
        start, end = _req(d, "start", int, cls.TYPE), _req(d, "end", int, cls.TYPE)
        if end < start:
            raise WireError("gait_bout: end before start")
        cycles, trusted = _req(d, "cycles", int, cls.TYPE), _req(d, "trusted", int, cls.TYPE)
        if not 0 <= trusted <= cycles:
            raise WireError("gait_bout: trusted cycles not between 0 and the cycles")
        emb = unpack_array(d.get("emb"), "gait_bout.embedding", "<f4", 1)
        if len(emb) > MAX_EMBEDDING:
            raise WireError(f"gait_bout.embedding: {len(emb)} values (at most {MAX_EMBEDDING})")
        return cls(**vars(head), track=_req(d, "track", int, cls.TYPE), start_us=start,
                   end_us=end, method=_req(d, "method", str, cls.TYPE), cycles=cycles,
                   trusted_cycles=trusted,
                   summary=_num_dict(_req(d, "summary", dict, cls.TYPE), "gait_bout.summary",
                                     allow_none=True),
                   estimates=_num_dict(_req(d, "estimates", dict, cls.TYPE),
                                       "gait_bout.estimates"),
                   embedding=emb, embedding_model=_req(d, "emb_model", str, cls.TYPE),
                   session=_req(d, "session", str, cls.TYPE),
                   subject=_req(d, "subject", str, cls.TYPE),
                   run=_req(d, "run", str, cls.TYPE))


SEVERITIES = ("info", "warning", "critical")
ALERT_STATES = ("raised", "cleared")


@dataclass
class Alert(Message):
    """A rule crossed (``raised``) or returned (``cleared``). ``alert_id`` is unique per raising,
    so that a delivery outbox can send each alert exactly once."""

    TYPE: ClassVar[str] = "alert"
    alert_id: str = ""
    rule: str = ""
    severity: str = "warning"
    state: str = "raised"
    text: str = ""
    track: int | None = None
    value: float | None = None

    def _wire(self) -> _WireAlert:
        return _WireAlert(SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us),
                          int(self.host_us), self.alert_id, self.rule, self.severity,
                          self.state, self.text, self.track,
                          None if self.value is None else float(self.value))

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "Alert":
        sev = _req(d, "sev", str, cls.TYPE)
        state = _req(d, "state", str, cls.TYPE)
        if sev not in SEVERITIES:
            raise WireError(f"alert.sev: {sev!r} is not one of {SEVERITIES}")
        if state not in ALERT_STATES:
            raise WireError(f"alert.state: {state!r} is not one of {ALERT_STATES}")
        text = d.get("text")
        if not isinstance(text, str) or len(text) > 4096:
            raise WireError("alert.text: expected a string of at most 4096 characters")
        return cls(**vars(head), alert_id=_req(d, "id", str, cls.TYPE),
                   rule=_req(d, "rule", str, cls.TYPE), severity=sev, state=state, text=text,
                   track=_opt(d, "track", int, cls.TYPE), value=_opt(d, "value", float, cls.TYPE))


@dataclass
class Status(Message):
    """Per-process health, published every second on the ``status`` topic.

    ``counters``: received, published, dropped, rejected, ... (monotonic since start);
    ``latency_ms``: p50 / p99 / max of the process's own input-to-output latency;
    ``state``: short strings such as ``camera: offline``.
    """

    TYPE: ClassVar[str] = "status"
    process: str = ""
    role: str = ""
    uptime_s: float = 0.0
    counters: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)

    def _wire(self) -> _WireStatus:
        return _WireStatus(SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us),
                           int(self.host_us), self.process, self.role, float(self.uptime_s),
                           dict(self.counters), dict(self.latency_ms), dict(self.state))

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "Status":
        state = _req(d, "state", dict, cls.TYPE)
        if len(state) > MAX_DICT_ITEMS or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= MAX_STRING
            and len(v) <= MAX_STRING for k, v in state.items()
        ):
            raise WireError("status.state: expected a map of short strings")
        return cls(**vars(head), process=_req(d, "proc", str, cls.TYPE),
                   role=_req(d, "role", str, cls.TYPE), uptime_s=_req(d, "up", float, cls.TYPE),
                   counters=_num_dict(_req(d, "counters", dict, cls.TYPE), "status.counters"),
                   latency_ms=_num_dict(_req(d, "lat", dict, cls.TYPE), "status.lat"),
                   state=dict(state))


SESSION_ACTIONS = ("start", "end", "started", "ended")
# What a session may say about its patient, and the bounds a value must lie in (the kiosk's
# form checks the same bounds before it sends anything).
HEIGHT_M_RANGE = (0.5, 2.5)
AGE_Y_RANGE = (1.0, 120.0)


@dataclass
class SessionControl(Message):
    """A kiosk session starting or ending on one camera.

    The kiosk sends ``start`` / ``end`` (again every second until the worker answers, since a
    subscriber that connects late misses what was sent before); the worker answers ``started``
    / ``ended`` once it tags that camera's tracks with ``session`` and ``subject`` (the
    patient's pseudonym from the hospital's own system) or, at the end, has published every
    record of the session's tracks: the log keeps the answers, which therefore come after the
    session's records on the worker's stream. ``camera`` is the camera's source name ("" for
    every camera the worker reads). Height, age and walking aid are optional (None, "")."""

    TYPE: ClassVar[str] = "session"
    action: str = "start"
    session: str = ""
    subject: str = ""
    camera: str = ""
    height_m: float | None = None
    age_y: float | None = None
    assistive_device: str = ""

    def _wire(self) -> _WireSession:
        return _WireSession(SCHEMA_VERSION, self.source, int(self.seq), int(self.t_us),
                            int(self.host_us), self.action, self.session, self.subject,
                            self.camera, None if self.height_m is None else float(self.height_m),
                            None if self.age_y is None else float(self.age_y),
                            self.assistive_device)

    @classmethod
    def from_dict(cls, d: dict[str, Any], head: Header) -> "SessionControl":
        action = _req(d, "action", str, cls.TYPE)
        if action not in SESSION_ACTIONS:
            raise WireError(f"session.action: {action!r} is not one of {SESSION_ACTIONS}")
        session = _req(d, "session", str, cls.TYPE)
        if not session:
            raise WireError("session.session: empty session id")
        height = _opt(d, "height_m", float, cls.TYPE)
        if height is not None and not HEIGHT_M_RANGE[0] <= height <= HEIGHT_M_RANGE[1]:
            raise WireError(f"session.height_m: {height} m outside {HEIGHT_M_RANGE}")
        age = _opt(d, "age_y", float, cls.TYPE)
        if age is not None and not AGE_Y_RANGE[0] <= age <= AGE_Y_RANGE[1]:
            raise WireError(f"session.age_y: {age} years outside {AGE_Y_RANGE}")
        return cls(**vars(head), action=action, session=session,
                   subject=_req(d, "subject", str, cls.TYPE),
                   camera=_req(d, "camera", str, cls.TYPE), height_m=height, age_y=age,
                   assistive_device=_req(d, "device", str, cls.TYPE))


MESSAGE_TYPES: dict[str, type[Message]] = {
    c.TYPE: c for c in (SkeletonFrame, ImageFrame, GaitEvent, GaitCycle, GaitBout, Alert,
                        Status, SessionControl)
}


# --------------------------------------------------------------------------- typed wire
#
# The same messages as msgspec structs, so that decoding and validating are one pass in C. Every
# bound of the field-by-field reading below is here too, as a type or a Meta constraint, or in the
# ``_from_*`` functions; where this step is stricter it answers None and the message is read
# again by ``_decode_checked``, which then accepts it or says why not. It must never accept what
# that reading refuses (tests/test_schema_typed.py checks both on the same inputs), with one known
# exception: a map that repeats a key until it has more than 256 entries, which msgpack-python's
# max_map_len refuses and msgspec reads as the same map without the repeats (the last value
# wins in both). That bound is against allocation, and repeats allocate nothing here.

_I62 = Annotated[int, Meta(gt=-(1 << 62), lt=1 << 62)]
_Str = Annotated[str, Meta(max_length=MAX_STRING)]
# NaN fails both bounds and infinity one of them: finite numbers only, integers accepted
_Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
_NumMap = Annotated[dict[_Str, _Finite], Meta(max_length=MAX_DICT_ITEMS)]
_Joints = Annotated[int, Meta(ge=1, le=MAX_JOINTS)]


class _WireHead(Struct, tag_field="type", forbid_unknown_fields=True):
    v: Literal[SCHEMA_VERSION]  # strict: True and 1.0 are refused, as a version must be exactly 1
    src: Annotated[str, Meta(min_length=1, max_length=MAX_STRING)]
    seq: Annotated[int, Meta(ge=0, lt=1 << 62)]
    t: _I62
    host: _I62


class _WireJoints(Struct, forbid_unknown_fields=True):
    dt: Literal["<f4"]
    sh: tuple[_Joints, Literal[3]]
    b: bytes


class _WireConfidence(Struct, forbid_unknown_fields=True):
    dt: Literal["<f4"]
    sh: tuple[_Joints]
    b: bytes


class _WireBody(Struct, forbid_unknown_fields=True):
    id: _I62
    j: _WireJoints
    c: _WireConfidence


class _WireSkeleton(_WireHead, tag="skeleton"):
    layout: _Str
    bodies: Annotated[list[_WireBody], Meta(max_length=MAX_BODIES)]


class _WireImage(_WireHead, tag="image"):
    w: Annotated[int, Meta(gt=0, le=16384)]
    h: Annotated[int, Meta(gt=0, le=16384)]
    enc: Literal["bgr8", "rgb8", "gray8", "jpeg"]


class _WireEvent(_WireHead, tag="gait_event"):
    track: _I62
    side: Literal["left", "right"]
    kind: Literal["foot_strike", "foot_off"]
    ev: _I62
    method: _Str
    conf: Annotated[float, Meta(ge=0.0, le=1.0)]
    session: _Str | None = None
    subject: _Str | None = None
    run: _Str | None = None


class _WireCycle(_WireHead, tag="gait_cycle"):
    track: _I62
    side: Literal["left", "right"]
    start: _I62
    end: _I62
    metrics: Annotated[dict[_Str, _Finite | None], Meta(max_length=MAX_DICT_ITEMS)]
    flags: Annotated[list[_Str], Meta(max_length=MAX_DICT_ITEMS)]
    anomaly: _NumMap
    method: _Str
    session: _Str
    subject: _Str
    run: _Str | None = None


class _WireVector(Struct, forbid_unknown_fields=True):
    dt: Literal["<f4"]
    sh: tuple[Annotated[int, Meta(ge=0, le=MAX_EMBEDDING)]]
    b: bytes


class _WireBout(_WireHead, tag="gait_bout"):
    track: _I62
    start: _I62
    end: _I62
    method: _Str
    cycles: Annotated[int, Meta(ge=0, lt=1 << 62)]
    trusted: Annotated[int, Meta(ge=0, lt=1 << 62)]
    summary: Annotated[dict[_Str, _Finite | None], Meta(max_length=MAX_DICT_ITEMS)]
    estimates: _NumMap
    emb: _WireVector
    emb_model: _Str
    session: _Str
    subject: _Str
    run: _Str


class _WireAlert(_WireHead, tag="alert"):
    id: _Str
    rule: _Str
    sev: Literal["info", "warning", "critical"]
    state: Literal["raised", "cleared"]
    text: Annotated[str, Meta(max_length=4096)]
    track: _I62 | None = None
    value: _Finite | None = None


class _WireStatus(_WireHead, tag="status"):
    proc: _Str
    role: _Str
    up: _Finite
    counters: _NumMap
    lat: _NumMap
    state: Annotated[dict[_Str, _Str], Meta(max_length=MAX_DICT_ITEMS)]


class _WireSession(_WireHead, tag="session"):
    action: Literal["start", "end", "started", "ended"]
    session: Annotated[str, Meta(min_length=1, max_length=MAX_STRING)]
    subject: _Str
    camera: _Str
    height_m: Annotated[float, Meta(ge=HEIGHT_M_RANGE[0], le=HEIGHT_M_RANGE[1])] | None
    age_y: Annotated[float, Meta(ge=AGE_Y_RANGE[0], le=AGE_Y_RANGE[1])] | None
    device: _Str


_DECODER = msgspec.msgpack.Decoder(
    _WireSkeleton | _WireImage | _WireEvent | _WireCycle | _WireBout | _WireAlert
    | _WireStatus | _WireSession)
_F4 = np.dtype("<f4")
_U4 = np.dtype("<u4")
_ONE_F4_BITS = 0x3F800000  # 1.0f: a float32 in [+0, 1] has at most these bits as an unsigned int
# A sum of squares at most this bounds every coordinate to 316 m, well inside the 1 km limit
# (rounding cannot matter at that margin); NaN and infinity make the sum fail it too.
_SUM_SQ_BOUND = 1e5


def _from_skeleton(w: _WireSkeleton) -> SkeletonFrame | None:
    bodies = []
    for b in w.bodies:
        n = b.j.sh[0]
        jb, cb = b.j.b, b.c.b
        if b.c.sh[0] != n or len(jb) != 12 * n or len(cb) != 4 * n:
            return None
        # a dot product and an argmax are direct array methods, a fraction of the cost of the
        # ufunc reductions (min, max) the field-by-field reading uses
        flat = np.frombuffer(jb, _F4)
        if not float(flat.dot(flat)) <= _SUM_SQ_BOUND:  # float(): numpy scalars compare slowly
            return None
        bits = np.frombuffer(cb, _U4)
        if bits.item(bits.argmax()) > _ONE_F4_BITS:  # negative, NaN and > 1 all exceed it
            return None
        bodies.append(Body(b.id, flat.reshape(n, 3), bits.view(_F4)))
    return SkeletonFrame(w.src, w.seq, w.t, w.host, w.layout, bodies)


def _from_image(w: _WireImage) -> ImageFrame:
    return ImageFrame(w.src, w.seq, w.t, w.host, w.w, w.h, w.enc)


def _from_event(w: _WireEvent) -> GaitEvent:
    return GaitEvent(w.src, w.seq, w.t, w.host, w.track, w.side, w.kind, w.ev, w.method, w.conf,
                     w.session or "", w.subject or "", w.run or "")


def _from_cycle(w: _WireCycle) -> GaitCycle | None:
    if w.end < w.start:
        return None
    return GaitCycle(w.src, w.seq, w.t, w.host, w.track, w.side, w.start, w.end, w.metrics,
                     w.flags, w.anomaly, w.method, w.session, w.subject, w.run or "")


def _from_bout(w: _WireBout) -> GaitBout | None:
    if w.end < w.start or w.trusted > w.cycles or len(w.emb.b) != 4 * w.emb.sh[0]:
        return None
    emb = np.frombuffer(w.emb.b, _F4)
    if not np.isfinite(emb).all():
        return None
    return GaitBout(w.src, w.seq, w.t, w.host, w.track, w.start, w.end, w.method, w.cycles,
                    w.trusted, w.summary, w.estimates, emb, w.emb_model, w.session, w.subject,
                    w.run)


def _from_alert(w: _WireAlert) -> Alert:
    return Alert(w.src, w.seq, w.t, w.host, w.id, w.rule, w.sev, w.state, w.text, w.track,
                 w.value)


def _from_status(w: _WireStatus) -> Status:
    return Status(w.src, w.seq, w.t, w.host, w.proc, w.role, w.up, w.counters, w.lat, w.state)


def _from_session(w: _WireSession) -> SessionControl:
    return SessionControl(w.src, w.seq, w.t, w.host, w.action, w.session, w.subject, w.camera,
                          w.height_m, w.age_y, w.device)


_FROM_WIRE: dict[type, Any] = {
    _WireSkeleton: _from_skeleton, _WireImage: _from_image, _WireEvent: _from_event,
    _WireCycle: _from_cycle, _WireBout: _from_bout, _WireAlert: _from_alert,
    _WireStatus: _from_status, _WireSession: _from_session,
}


def _decode_typed(data: Any) -> Message | None:
    """The message when the typed step takes it whole, else None (read it field by field)."""
    try:
        w = _DECODER.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return _FROM_WIRE[type(w)](w)


def _encode_hook(obj: Any) -> Any:
    # msgpack-python packed subclasses of float and int (numpy's float64 among them) as plain
    # numbers; msgspec refuses them, so hand it the plain value
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, int):
        return int(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} on the wire")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_encode_hook)


# --------------------------------------------------------------------------- encode / decode


def encode(msg: Message) -> bytes:
    """The msgpack bytes of a message (for ImageFrame: its header; the pixels go separately)."""
    return _ENCODER.encode(msg._wire())


def decode(data: bytes | memoryview, image: Any = None) -> Message:
    """Parse and validate one message. Raises :class:`WireError` and nothing else."""
    try:
        n = len(data) if type(data) is bytes else memoryview(data).nbytes
    except TypeError as e:
        raise WireError(f"message is not bytes-like ({type(data).__name__})") from e
    if n > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {n} bytes exceeds {MAX_MESSAGE_BYTES}")
    if n == 0:
        raise WireError("empty message")
    msg = _decode_typed(data)
    if msg is None:
        msg = _decode_checked(data)
    if isinstance(msg, ImageFrame):
        if image is None:
            raise WireError("image: header arrived without its pixel frame")
        msg.attach(image)
    return msg


def _decode_checked(data: bytes | memoryview) -> Message:
    """Field by field, naming what is wrong: the reading for what the typed step did not take."""
    try:
        d = msgpack.unpackb(
            data, raw=False, strict_map_key=True,
            max_array_len=MAX_DICT_ITEMS * 4, max_map_len=MAX_DICT_ITEMS,
        )
    except Exception as e:  # msgpack raises many types (ExtraData, FormatError, ValueError, ...)
        raise WireError(f"malformed msgpack: {type(e).__name__}: {e}") from None
    if not isinstance(d, dict):
        raise WireError(f"message is a {type(d).__name__}, not a map")
    mtype = d.get("type")
    if not isinstance(mtype, str) or mtype not in MESSAGE_TYPES:
        raise WireError(f"unknown message type {mtype!r}")
    v = d.get("v")
    if type(v) is not int or v != SCHEMA_VERSION:  # True and 1.0 equal 1 in Python
        raise WireError(f"{mtype}: schema version {v!r}, this build reads {SCHEMA_VERSION}")
    head = Header(
        source=_req(d, "src", str, mtype),
        seq=_req(d, "seq", int, mtype),
        t_us=_req(d, "t", int, mtype),
        host_us=_req(d, "host", int, mtype),
    )
    if not head.source:
        raise WireError(f"{mtype}: empty source")
    if head.seq < 0:
        raise WireError(f"{mtype}: negative sequence number {head.seq}")
    try:
        msg = MESSAGE_TYPES[mtype].from_dict(d, head)
    except WireError:
        raise
    except Exception as e:  # a validation path we did not foresee must still be a WireError
        raise WireError(f"{mtype}: invalid content ({type(e).__name__}: {e})") from None
    return msg
