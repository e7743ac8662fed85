"""Tiny Matroska files for the .mkv routing tests: an Azure Kinect (k4arecorder) file with the
markers k4arecorder writes (K4A_ tags, a calibration.json attachment, DEPTH/IMU tracks), built
element by element here, and an ordinary video written by OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _size(n: int) -> bytes:
    return bytes([0x01]) + n.to_bytes(7, "big")  # 8-byte size vint, as libebml writes


def el(eid: int, payload: bytes | str | list[bytes]) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    elif isinstance(payload, list):
        payload = b"".join(payload)
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + _size(len(payload)) + payload


def k4a_like_mkv(path: Path, *, tags: bool = True, attachment: bool = True,
                 tracks: tuple[str, ...] = ("DEPTH", "IR", "IMU")) -> Path:
    """A Matroska file with k4arecorder's markers (no real frames: the detection reads only the
    header elements; a cluster of filler before the tags shows clusters are stepped over)."""
    header = el(0x1A45DFA3, [el(0x4286, b"\x01"), el(0x4282, "matroska"),
                             el(0x4287, b"\x04"), el(0x4285, b"\x02")])
    track_els = [el(0xAE, [el(0xD7, bytes([i + 1])), el(0x536E, name),
                           el(0x86, "V_MS/VFW/FOURCC")]) for i, name in enumerate(tracks)]
    body = [el(0x1549A966, [el(0x2AD7B1, b"\x0f\x42\x40"), el(0x4D80, "K4A")]),
            el(0x1654AE6B, track_els),
            el(0x1F43B675, [el(0xE7, b"\x00"), el(0xA3, bytes(2000))])]  # a cluster
    if attachment:
        body.append(el(0x1941A469, [el(0x61A7, [
            el(0x466E, "calibration.json"), el(0x4660, "application/octet-stream"),
            el(0x465C, b'{"CalibrationInformation": {"Cameras": []}}'),
            el(0x46AE, b"\x00\x00\x00\x01")])]))
    if tags:
        simple = [el(0x67C8, [el(0x45A3, name), el(0x4487, value)]) for name, value in (
            ("K4A_DEPTH_MODE", "NFOV_UNBINNED"), ("K4A_DEVICE_SERIAL_NUMBER", "000123456789"),
            ("K4A_START_OFFSET_NS", "200000000"))]
        body.append(el(0x1254C367, [el(0x7373, [el(0x63C0, [el(0x68CA, b"\x32")]), *simple])]))
    path.write_bytes(header + el(0x18538067, body))
    return path


def ordinary_mkv(path: Path, frames: int = 5, size: tuple[int, int] = (64, 48)) -> Path:
    """A plain MJPEG-in-Matroska video written by OpenCV (FFmpeg's muxer)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert w.isOpened(), "OpenCV cannot write Matroska here"
    for i in range(frames):
        w.write(np.full((size[1], size[0], 3), 30 * i, np.uint8))
    w.release()
    return path
