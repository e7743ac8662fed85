"""Stream files: append-only, self-describing, crash-safe recordings of ZeroMQ traffic.

Layout::

    MAGIC (8 bytes)  record*      record = u32 length | u32 crc32(payload) | payload (msgpack)

The first record is a header map (``format``, ``version``, ``created``, ``topics`` = the topic
prefixes recorded, ``""`` meaning every topic, and ``meta``). Every
other record is ``[host_receive_us, [frame, frame, ...]]``: the exact ZeroMQ frames (topic, body,
image) so that a replay is byte-identical to what was published. A file cut mid-write (power loss,
kill -9) reads back up to its last whole record; a corrupt record ends the readable part and is
reported, never silently skipped over.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import msgpack

log = logging.getLogger(__name__)

MAGIC = b"GSTRM\x00\x01\n"
FORMAT = "gaitstream-stream"
VERSION = 1
_HEAD = struct.Struct("<II")
MAX_RECORD = 80 * 1024 * 1024


class StreamFileError(ValueError):
    """The file is not a stream file, or its header is unreadable."""


@dataclass
class StreamRecord:
    host_us: int
    frames: list[bytes]

    @property
    def topic(self) -> str:
        return self.frames[0].decode("utf-8", "replace")


class StreamWriter:
    """Appends records; flushes to the OS every record and fsyncs every ``fsync_every_s``."""

    def __init__(self, path: str | os.PathLike, topics: list[str] | None = None,
                 meta: dict[str, Any] | None = None, fsync_every_s: float = 1.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: BinaryIO = open(self.path, "wb")
        self._f.write(MAGIC)
        header = {"format": FORMAT, "version": VERSION,
                  "created": dt.datetime.now(dt.timezone.utc).isoformat(),
                  "topics": list(topics or []), "meta": dict(meta or {})}
        self._write_payload(msgpack.packb(header, use_bin_type=True))
        self._fsync_every_us = int(fsync_every_s * 1e6)
        self._last_sync = 0
        self.records = 0
        self.bytes = 0
        self.sync()

    def _write_payload(self, payload: bytes) -> None:
        self._f.write(_HEAD.pack(len(payload), zlib.crc32(payload)))
        self._f.write(payload)

    def write(self, host_us: int, frames: list[Any]) -> None:
        payload = msgpack.packb([int(host_us), [bytes(f) for f in frames]], use_bin_type=True)
        self._write_payload(payload)
        self.records += 1
        self.bytes += len(payload) + _HEAD.size
        self._f.flush()
        if host_us - self._last_sync >= self._fsync_every_us:
            self.sync()
            self._last_sync = host_us

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> "StreamWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class StreamReader:
    """Reads a stream file; ``header`` is the first record, iteration yields StreamRecords."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.truncated = False  # set when the tail was cut or corrupt
        self.tail_error = ""
        with open(self.path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise StreamFileError(f"{self.path}: not a gaitstream stream file (bad magic)")
            payload = self._read_payload(f)
        if payload is None:
            raise StreamFileError(f"{self.path}: header record missing or cut")
        try:
            header = msgpack.unpackb(payload, raw=False)
        except Exception as e:
            raise StreamFileError(f"{self.path}: unreadable header: {e}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise StreamFileError(f"{self.path}: header does not describe a {FORMAT} file")
        if header.get("version") != VERSION:
            raise StreamFileError(f"{self.path}: format version {header.get('version')} "
                                  f"(this build reads {VERSION})")
        self.header: dict[str, Any] = header

    def _read_payload(self, f: BinaryIO) -> bytes | None:
        head = f.read(_HEAD.size)
        if not head:
            return None
        if len(head) < _HEAD.size:
            self._cut("record header cut short")
            return None
        n, crc = _HEAD.unpack(head)
        if n > MAX_RECORD:
            self._cut(f"record length {n} is absurd")
            return None
        payload = f.read(n)
        if len(payload) < n:
            self._cut(f"record cut after {len(payload)} of {n} bytes")
            return None
        if zlib.crc32(payload) != crc:
            self._cut("record checksum mismatch")
            return None
        return payload

    def _cut(self, why: str) -> None:
        self.truncated = True
        self.tail_error = why
        log.warning("%s: readable part ends here: %s", self.path, why)

    def __iter__(self) -> Iterator[StreamRecord]:
        with open(self.path, "rb") as f:
            f.read(len(MAGIC))
            self._read_payload(f)  # header
            while (payload := self._read_payload(f)) is not None:
                try:
                    host_us, frames = msgpack.unpackb(payload, raw=False)
                    rec = StreamRecord(int(host_us), [bytes(x) for x in frames])
                except Exception as e:
                    self._cut(f"undecodable record: {e}")
                    return
                yield rec
