"""ZeroMQ PUB/SUB transport for the wire messages.

A ZeroMQ message is ``[topic, msgpack body]``, or ``[topic, header, pixels]`` for an ImageFrame:
pixels leave as their own frame without a copy. Publishers bind (127.0.0.1 unless configured
otherwise) and never block: past the high-water mark ZeroMQ drops, and subscribers count the drop
from the gap in the per-source sequence numbers. Links that leave the machine use CURVE.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from streams.schema import (MAX_IMAGE_BYTES, MAX_SEQ_GAP, ImageFrame, Message, WireError, decode,
                            encode)
from streams.options import check_keys

log = logging.getLogger(__name__)

MAX_TOPIC = 128
MAX_REASONS = 32  # distinct rejection reasons counted by name; the rest as "other"
_MORE = zmq.NOBLOCK | zmq.SNDMORE


def skeleton_topic(source: str) -> str:
    return f"skel/{source}"


def image_topic(source: str) -> str:
    return f"img/{source}"


def gait_topic(source: str) -> str:
    return f"gait/{source}"


ALERT_TOPIC = "alert"
STATUS_TOPIC = "status"
SESSION_TOPIC = "session"  # kiosk sessions starting and ending (SessionControl)


def topic_for(msg: Message) -> str:
    """The topic a message is published on, decided by its type and source."""
    kind = msg.TYPE
    if kind == "skeleton":
        return skeleton_topic(msg.source)
    if kind == "image":
        return image_topic(msg.source)
    if kind in ("gait_event", "gait_cycle"):
        return gait_topic(msg.source)
    if kind == "alert":
        return ALERT_TOPIC
    if kind == "session":
        return SESSION_TOPIC
    return STATUS_TOPIC


@dataclass
class CurveConfig:
    """CURVE keys for one socket, as paths to certificate files made by ``gaitstream keys``.

    Server side (the binding publisher): ``secret_key_file`` = its own ``.key_secret``;
    ``authorized_dir`` = a folder of client ``.key`` files allowed to connect (None = any client
    that knows the server key). Client side (the connecting subscriber): ``secret_key_file`` = its
    own ``.key_secret``; ``server_key_file`` = the server's public ``.key``.
    """

    secret_key_file: str
    server_key_file: str | None = None
    authorized_dir: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "CurveConfig | None":
        if not d:
            return None
        check_keys("curve", d, {"secret_key_file", "server_key_file", "authorized_dir"})
        return cls(**d)


_auth_lock = threading.Lock()
_authenticators: dict[int, ThreadAuthenticator] = {}


def _apply_curve(sock: zmq.Socket, curve: CurveConfig, server: bool) -> None:
    public, secret = zmq.auth.load_certificate(curve.secret_key_file)
    if secret is None:
        raise ValueError(f"{curve.secret_key_file} holds no secret key")
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    if server:
        ctx = sock.context
        with _auth_lock:  # one authenticator per context; ZAP serves every CURVE server on it
            auth = _authenticators.get(id(ctx))
            if auth is None:
                auth = ThreadAuthenticator(ctx)
                auth.start()
                _authenticators[id(ctx)] = auth
        if curve.authorized_dir:
            if not Path(curve.authorized_dir).is_dir():  # ZAP would quietly refuse everyone
                raise ValueError(f"curve: authorized_dir {curve.authorized_dir} is no folder "
                                 "(of the clients' public .key files)")
            auth.configure_curve(domain="*", location=str(Path(curve.authorized_dir)))
        else:
            auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
        sock.curve_server = True
    else:
        if not curve.server_key_file:
            raise ValueError("curve: a client needs server_key_file")
        server_public, _ = zmq.auth.load_certificate(curve.server_key_file)
        sock.curve_serverkey = server_public


def check_bind_endpoint(endpoint: str, allow_remote: bool) -> None:
    """Refuse to bind beyond loopback unless the configuration says so explicitly."""
    if not endpoint.startswith("tcp://"):
        return  # ipc:// and inproc:// never leave the machine
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
        return
    if not allow_remote:
        raise ValueError(f"refusing to bind {endpoint}: not loopback; set allow_remote = true "
                         "(and configure curve) to expose it")


class Publisher:
    """Binds (or connects) a PUB socket; ``send`` never blocks and never raises on a full queue."""

    def __init__(self, endpoint: str, *, bind: bool = True, hwm: int = 1000,
                 curve: CurveConfig | None = None, allow_remote: bool = False,
                 context: zmq.Context | None = None):
        self.ctx = context or zmq.Context.instance()
        # XPUB publishes exactly like PUB and also lets a replay see when subscribers arrived.
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscriber's subscriptions, not first
        self.sock.setsockopt(zmq.LINGER, 200)
        if curve:
            _apply_curve(self.sock, curve, server=bind)
        if bind:
            check_bind_endpoint(endpoint, allow_remote or curve is not None)
            self.sock.bind(endpoint)
        else:
            self.sock.connect(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT) if bind else endpoint
        self.sent = 0
        self.send_errors = 0

    def close(self, linger_s: float = 0.2) -> None:
        """Close, giving messages still queued for connected subscribers ``linger_s`` to leave
        (a stage that stops sends its last records before the next stage stops)."""
        self.sock.setsockopt(zmq.LINGER, int(linger_s * 1000))
        self.sock.close()

    def send(self, msg: Message, topic: str | None = None) -> bool:
        """Publish one message; returns False when ZeroMQ could not take it (counted)."""
        t = (topic or topic_for(msg)).encode()
        body = encode(msg)
        # frame by frame rather than send_multipart: its Python loop cost more than encoding a
        # skeleton. ZeroMQ delivers a multipart message whole or not at all.
        sock = self.sock
        try:
            if isinstance(msg, ImageFrame):
                sock.send(t, _MORE)
                sock.send(body, _MORE)
                sock.send(msg.image, zmq.NOBLOCK, copy=False)
            else:
                sock.send(t, _MORE)
                sock.send(body, zmq.NOBLOCK)
        except zmq.Again:
            self.send_errors += 1
            return False
        self.sent += 1
        return True

    def send_raw(self, frames: list[bytes]) -> None:
        """Publish already-encoded frames (replay of a recorded stream)."""
        try:
            self.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
            self.sent += 1
        except zmq.Again:
            self.send_errors += 1

    def wait_for_subscribers(self, n: int = 1, timeout_s: float = 5.0,
                             topic: str | None = None, stop: Any = None) -> int:
        """Block until ``n`` subscriptions (that would receive ``topic``, when given) arrived,
        ``timeout_s`` passed or ``stop`` (an Event) was set: PUB/SUB drops what is sent before a
        subscriber joins. Returns how many arrived."""
        import time

        seen = 0
        want = topic.encode() if topic is not None else None
        deadline = time.monotonic() + timeout_s
        while seen < n and (left := deadline - time.monotonic()) > 0:
            if stop is not None and stop.is_set():
                break
            if self.sock.poll(min(int(left * 1000) + 1, 100), zmq.POLLIN):
                frame = self.sock.recv()
                if frame[:1] == b"\x01" and (want is None or want.startswith(frame[1:])):
                    seen += 1
        return seen


# (topic, source) streams whose last seq a subscriber remembers (for counting gaps)
MAX_STREAMS = 4096


def _buffer(frame: Any) -> Any:
    """The bytes of a frame as received: a zmq Frame's buffer, or the bytes-like itself."""
    return frame.buffer if isinstance(frame, zmq.Frame) else frame


@dataclass
class SubscriberCounters:
    received: int = 0
    rejected: int = 0
    gaps: int = 0  # messages lost upstream, from sequence-number gaps per (topic, source)
    seq_jumps: int = 0  # jumps beyond MAX_SEQ_GAP: a sender restarted or misbehaving
    reasons: dict[str, int] = field(default_factory=dict)


class Subscriber:
    """Connects a SUB socket to publishers and yields validated messages.

    Bad input never escapes ``recv``: it is logged with its reason and counted in ``counters``.
    """

    def __init__(self, endpoints: Iterable[str], topics: Iterable[str], *, hwm: int = 1000,
                 curve: CurveConfig | None = None, context: zmq.Context | None = None,
                 conflate_log_s: float = 5.0,
                 max_frame_bytes: int = MAX_IMAGE_BYTES + (1 << 20)):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        # ZeroMQ refuses a larger frame as it arrives (and drops that peer's connection, which
        # it makes again): the size checks of decode come only after a frame is whole in memory
        self.sock.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:
            _apply_curve(self.sock, curve, server=False)
        self.topics = list(topics)
        for t in self.topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        self.endpoints = list(endpoints)
        for ep in self.endpoints:
            self.sock.connect(ep)
        self.poller = zmq.Poller()
        self.poller.register(self.sock, zmq.POLLIN)
        self.counters = SubscriberCounters()
        self._last_seq: dict[tuple[str, str], int] = {}
        self._resume: dict[tuple[str, str], int] = {}
        self._log_every = conflate_log_s
        self._last_log: dict[str, float] = {}

    def _reject(self, reason: str) -> None:
        import time

        c = self.counters
        c.rejected += 1
        key = reason.split(":")[0][:60]
        if key.startswith("unknown message type"):  # the type named is the sender's: not a key
            key = "unknown message type"
        if key not in c.reasons and len(c.reasons) >= MAX_REASONS:
            key = "other"  # a flood of made-up message types must not grow the counters
        c.reasons[key] = c.reasons.get(key, 0) + 1
        now = time.monotonic()
        if now - self._last_log.get(key, 0.0) >= self._log_every:  # no log flood from a bad peer
            self._last_log[key] = now
            log.warning("rejected message (%d so far): %s", c.rejected, reason)

    def recv_frames(self, timeout_ms: int) -> list[zmq.Frame] | None:
        """The next multipart message as zmq Frames (for a recorder that keeps them whole)."""
        if not self.poller.poll(timeout_ms):
            return None
        return self.sock.recv_multipart(copy=False)

    def _recv_parts(self, timeout_ms: int) -> list[Any] | None:
        """The next multipart message, topic and body as bytes and any later frame (an image's
        pixels) as a zero-copy Frame. Polls only when nothing is waiting: under load the poll
        and recv_multipart's Python loop cost more than decoding a skeleton."""
        sock = self.sock
        try:
            topic = sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            if not self.poller.poll(timeout_ms):
                return None
            try:
                topic = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return None
        parts = [topic]
        while sock.getsockopt(zmq.RCVMORE):  # the rest of a multipart message is already here
            parts.append(sock.recv() if len(parts) == 1 else sock.recv(copy=False))
        return parts

    def parse(self, frames: list[Any]) -> tuple[str, Message] | None:
        """Validate one multipart message; None (counted) when it is bad."""
        self.counters.received += 1
        n = len(frames)
        if n != 2 and n != 3:
            self._reject(f"{n} frames (expected 2, or 3 for an image)")
            return None
        try:
            topic = bytes(_buffer(frames[0]))
            if len(topic) > MAX_TOPIC:
                raise WireError("topic too long")
            topic_s = topic.decode("utf-8")
        except (UnicodeDecodeError, WireError) as e:
            self._reject(f"bad topic: {e}")
            return None
        image = _buffer(frames[2]) if n == 3 else None
        try:
            msg = decode(_buffer(frames[1]), image=image)
        except WireError as e:
            self._reject(str(e))
            return None
        if (len(frames) == 3) != isinstance(msg, ImageFrame):
            self._reject(f"{msg.TYPE}: unexpected extra frame")
            return None
        if msg.TYPE in ("skeleton", "image"):  # per-source streams whose seq must not skip
            key = (topic_s, msg.source)
            last = self._last_seq.get(key)
            if last is None and key in self._resume:
                nxt = self._resume.pop(key)
                if msg.seq >= nxt:  # else the sender restarted too: nothing to say
                    last = nxt - 1
            if last is not None and msg.seq > last + 1:
                if msg.seq - last - 1 > MAX_SEQ_GAP:
                    self.counters.seq_jumps += 1
                else:
                    self.counters.gaps += msg.seq - last - 1
            if last is None or msg.seq > last:
                if last is None and len(self._last_seq) >= MAX_STREAMS:
                    # a flood of made-up source names: forget the stream heard of first
                    del self._last_seq[next(iter(self._last_seq))]
                self._last_seq[key] = msg.seq
        return topic_s, msg

    def resume(self, points: Iterable[tuple[str, str, int]]) -> None:
        """Where a previous run of this process left each (topic, source) stream: the first
        message after it (``next_seq``) that the previous run did not account for. Messages of
        such a stream that now arrive after ``next_seq`` count the ones in between as a gap (the
        restart lost them); an earlier one means the sender restarted as well."""
        for topic, source, next_seq in points:
            if (topic, source) not in self._last_seq:
                self._resume[(topic, source)] = int(next_seq)

    def positions(self) -> dict[tuple[str, str], int]:
        """The last seq received per (topic, source) stream."""
        return dict(self._last_seq)

    def recv(self, timeout_ms: int = 100) -> tuple[str, Message] | None:
        """The next valid message, or None when none arrived in time (or it was rejected)."""
        frames = self._recv_parts(timeout_ms)
        if frames is None:
            return None
        return self.parse(frames)

    def close(self) -> None:
        self.sock.close()
