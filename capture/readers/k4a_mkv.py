"""Azure Kinect recordings (.mkv written by k4arecorder): told apart from ordinary videos, and
read as a Recording through the Kinect source's playback (pyk4a + Body Tracking SDK).

Both are Matroska files with the same suffix, so the suffix cannot route them: a k4arecorder file
holds depth and IR (no picture a pose estimator could use), and its bodies come from the Body
Tracking SDK. ``k4a_markers`` walks the file's top-level Matroska elements (clusters are skipped
by their size, never read) and collects what k4arecorder writes into every file (Azure Kinect
Sensor SDK, "Recording file format"): ``K4A_*`` tags (K4A_DEPTH_MODE, K4A_DEVICE_SERIAL_NUMBER,
...), the ``calibration.json`` attachment, and tracks named COLOR, DEPTH, IR, IMU.
``is_k4a_recording`` is true with a K4A_ tag, or with the calibration attachment and a DEPTH
track (a file whose tags were stripped by a remuxer); an ordinary video has neither.

``load_k4a_mkv`` plays the file through :class:`capture.kinect.source.KinectSource` (frame by frame,
nothing dropped, levelled with the recording's IMU track when it has one) and keeps one body
like ``load_k4a_json`` does. Without pyk4a or the SDK it raises RecordingError carrying the
install instructions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from streams.skeletons import to_canonical

from capture.readers.recording import Recording, RecordingError

log = logging.getLogger(__name__)

EBML_HEADER = 0x1A45DFA3
DOC_TYPE = 0x4282
SEGMENT = 0x18538067
TRACKS, TRACK_ENTRY, TRACK_NAME = 0x1654AE6B, 0xAE, 0x536E
TAGS, TAG, SIMPLE_TAG, TAG_NAME = 0x1254C367, 0x7373, 0x67C8, 0x45A3
ATTACHMENTS, ATTACHED_FILE, FILE_NAME = 0x1941A469, 0x61A7, 0x466E

# masters whose children are searched, and the string leaves collected from them
_MASTERS = {TRACKS, TRACK_ENTRY, TAGS, TAG, SIMPLE_TAG, ATTACHMENTS, ATTACHED_FILE}
_LEAVES = {TRACK_NAME: "tracks", TAG_NAME: "tags", FILE_NAME: "attachments"}
_MAX_HEADER_ELEMENT = 16 << 20  # Tracks/Tags/Attachments: a calibration.json is ~10 kB
_MAX_TOP_LEVEL = 500_000  # elements walked at the top level (one cluster per capture)
_UNKNOWN = -1


@dataclass
class K4AMarkers:
    doc_type: str = ""
    tracks: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)

    @property
    def is_k4a(self) -> bool:
        return (any(t.startswith("K4A_") for t in self.tags)
                or ("calibration.json" in self.attachments and "DEPTH" in self.tracks))


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    """(value, next position) of the EBML variable-length integer at ``pos``; None if cut."""
    if pos >= len(data):
        return None
    first = data[pos]
    length = 8 - first.bit_length() + 1 if first else 9
    if length > 8 or pos + length > len(data):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    all_ones = value == (1 << (8 - length)) - 1
    for b in data[pos + 1:pos + length]:
        value = (value << 8) | b
        all_ones = all_ones and b == 0xFF
    if not keep_marker and all_ones:
        return _UNKNOWN, pos + length  # "unknown size" (a live-streamed element)
    return value, pos + length


def _head(f: BinaryIO) -> tuple[int, int, int] | None:
    """(element id, data size, data start) of the element at the file position."""
    at = f.tell()
    raw = f.read(12)
    got = _vint(raw, 0, keep_marker=True)
    if got is None:
        return None
    eid, p = got
    got = _vint(raw, p, keep_marker=False)
    if got is None:
        return None
    size, p = got
    return eid, size, at + p


def _elements(data: bytes):
    """(id, payload) of each element in a buffer; stops at the first one cut short."""
    pos = 0
    while pos < len(data):
        got = _vint(data, pos, keep_marker=True)
        size = _vint(data, got[1], keep_marker=False) if got else None
        if size is None:
            return
        end = len(data) if size[0] == _UNKNOWN else min(len(data), size[1] + size[0])
        yield got[0], data[size[1]:end]
        pos = end


def _collect(data: bytes, out: K4AMarkers, depth: int = 0) -> None:
    for eid, payload in _elements(data):
        if eid in _MASTERS and depth < 8:
            _collect(payload, out, depth + 1)
        elif eid in _LEAVES:
            text = payload.split(b"\0", 1)[0].decode("utf-8", "replace")
            getattr(out, _LEAVES[eid]).append(text)


def k4a_markers(path: str | Path) -> K4AMarkers | None:
    """What marks a k4arecorder file, read from a Matroska file; None if it is not Matroska."""
    out = K4AMarkers()
    with open(path, "rb") as f:
        head = _head(f)
        if head is None or head[0] != EBML_HEADER or head[1] == _UNKNOWN:
            return None
        _, size, start = head
        f.seek(start)
        for eid, payload in _elements(f.read(min(size, 4096))):
            if eid == DOC_TYPE:
                out.doc_type = payload.decode("ascii", "replace")
        f.seek(start + size)
        seg = _head(f)
        if seg is None or seg[0] != SEGMENT:
            return out
        _, seg_size, pos = seg
        seg_end = None if seg_size == _UNKNOWN else pos + seg_size
        for _ in range(_MAX_TOP_LEVEL):
            if seg_end is not None and pos >= seg_end:
                break
            f.seek(pos)
            el = _head(f)
            if el is None:
                break
            eid, size, start = el
            if size == _UNKNOWN:
                break  # cannot step over it (a streamed cluster): the header is behind us
            if eid in (TRACKS, TAGS, ATTACHMENTS) and size <= _MAX_HEADER_ELEMENT:
                f.seek(start)
                _collect(f.read(size), out)
            pos = start + size
    return out


def is_k4a_recording(path: str | Path) -> bool:
    """True for an Azure Kinect (k4arecorder) .mkv; False for any other file."""
    try:
        m = k4a_markers(path)
    except OSError:
        return False
    return m is not None and m.is_k4a


def load_k4a_mkv(path: str | Path, *, body_id: int | None = None,
                 processing_mode: str = "cuda", **source_options: Any) -> Recording:
    """One body of a k4arecorder file as a Recording (the body seen in most frames unless
    ``body_id``), tracked by the Body Tracking SDK through the Kinect source's playback."""
    from capture.kinect.k4abt import SDKMissingError
    from capture.kinect.source import LAYOUT, KinectSource

    from capture.readers.k4a_json import body_frames, body_track, choose_body

    path = Path(path)
    src = KinectSource(name=path.stem, recording=str(path), processing_mode=processing_mode,
                       **source_options)
    try:
        frames = list(src.frames())
    except SDKMissingError as e:
        raise RecordingError(f"{path.name} is an Azure Kinect recording; playing it needs the "
                             f"Azure Kinect SDKs: {e}") from None
    finally:
        src.close()
    counts = body_frames(frames)
    if not counts:
        raise RecordingError(f"{path.name}: no body tracked in {len(frames)} frames")
    body_id = choose_body(path.name, counts, body_id)
    t_us, raw, conf, present = body_track(frames, body_id, lambda b: (b.joints, b.confidence))
    joints, cconf = to_canonical(LAYOUT, raw, conf)
    rate_hz = 1e6 / float(np.median(np.diff(t_us))) if len(t_us) > 1 else 30.0
    meta: dict[str, Any] = {
        "file": path.name, "format": "Azure Kinect recording (k4arecorder .mkv)",
        "body_id": body_id, "bodies": {str(b): n for b, n in sorted(counts.items())},
        "timestamps": "device timestamps of the depth images (µs)",
        "up_axis": src.state.get("up_axis", "camera"),
        "source_counters": dict(src.counters),
        "problems": ([f"body {body_id} lost in {int((~present).sum())} frames inside its span: "
                      "interpolated, confidence 0"] if (~present).any() else []),
    }
    return Recording(name=path.stem, t_us=t_us, joints=joints, confidence=cconf,
                     rate_hz=rate_hz, source_layout=LAYOUT, meta=meta, raw_layout=LAYOUT,
                     raw_joints=raw, raw_confidence=conf)
