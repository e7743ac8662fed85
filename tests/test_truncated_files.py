"""A file cut short (a copy that stopped, a recording never finalised) is said to be so, with
how much was read (issue 19, item 14): a C3D and an MP4 written here, then truncated."""

from __future__ import annotations

import json
import subprocess
import sys

import ezc3d
import numpy as np
import pytest

from capture.readers import RecordingError, load_recording
from capture.readers.c3d import declared_frames
from conftest import REPO
from inference.data.simulated import walkway_walk
from streams.skeletons import CANONICAL_JOINTS


def _walker_c3d(path, seconds=6.0):
    """A C3D of a simulated walker whose points are named as the canonical joints (Z up, mm)."""
    _, joints, _ = walkway_walk(seconds)
    zup = np.stack([joints[..., 0], -joints[..., 2], joints[..., 1]], -1)
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [30.0]
    c["parameters"]["POINT"]["LABELS"]["value"] = tuple(CANONICAL_JOINTS)
    c.add_parameter("POINT", "UNITS", ["mm"])
    pts = np.ones((4, 22, len(joints)))
    pts[:3] = zup.transpose(2, 1, 0) * 1000.0
    c["data"]["points"] = pts
    c.write(str(path))
    return len(joints)


def test_a_truncated_c3d_says_how_much_was_read(tmp_path):
    whole = tmp_path / "walk.c3d"
    n = _walker_c3d(whole)
    assert declared_frames(whole) == n
    rec = load_recording(whole)
    assert rec.n_frames == n and "truncated" not in rec.meta
    cut = tmp_path / "cut.c3d"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    rec = load_recording(cut)
    assert rec.n_frames < n
    assert rec.meta["truncated"] == (
        f"the file ends early: {rec.n_frames} of the {n} frames its header declares were read "
        f"({rec.n_frames / 30:.2f} of {n / 30:.2f} s)")
    out = subprocess.run([sys.executable, "-m", "deploy.cli", "analyze", str(cut), "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["truncated"] == rec.meta["truncated"]
    out = subprocess.run([sys.executable, "-m", "deploy.cli", "analyze", str(cut)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert f"WARNING: {rec.meta['truncated']}" in out.stdout


def _video(path, frames, faststart):
    """An MP4 as OpenCV writes it (index at the end); with ``faststart`` the index is
    moved to the front, as cameras and phones write them, so that a cut file still opens."""
    import cv2
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (160, 120))
    for i in range(frames):
        img = np.full((120, 160, 3), (i * 2) % 255, np.uint8)
        w.write(img)
    w.release()
    if faststart:
        data = path.read_bytes()
        path.write_bytes(_moov_first(data))


def _moov_first(data: bytes) -> bytes:
    """Reorder top-level MP4 boxes to ftyp, moov, the rest, fixing the chunk offsets (stco) that
    point into mdat."""
    boxes, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        boxes.append((data[i + 4:i + 8], data[i:i + size]))
        i += size
    moov = next(b for t, b in boxes if t == b"moov")
    rest = [b for t, b in boxes if t not in (b"ftyp", b"moov")]
    ftyp = next(b for t, b in boxes if t == b"ftyp")
    moov = bytearray(moov)
    j = moov.find(b"stco")
    while j >= 0:
        count = int.from_bytes(moov[j + 8:j + 12], "big")
        for k in range(count):
            at = j + 12 + 4 * k
            off = int.from_bytes(moov[at:at + 4], "big") + len(moov)
            moov[at:at + 4] = off.to_bytes(4, "big")
        j = moov.find(b"stco", j + 4)
    return ftyp + bytes(moov) + b"".join(rest)


def test_a_truncated_mp4_says_how_much_was_decoded(tmp_path):
    from inference.video import estimate_video
    whole = tmp_path / "walk.mp4"
    _video(whole, 60, faststart=True)
    assert "truncated" not in estimate_video(whole)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    est = estimate_video(cut)
    got = len(est["t_us"])
    assert 0 < got < 60
    assert est["truncated"] == (f"the file ends early: {got} of the 60 frames its container "
                                "declares were decoded")


def test_an_mp4_cut_before_its_index_says_so(tmp_path):
    from inference.video import estimate_video
    whole = tmp_path / "walk.mp4"
    _video(whole, 30, faststart=False)  # the index at the end: a cut file has none
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:-2000])
    with pytest.raises(RecordingError, match="its index .* is missing, as in a file cut short"):
        estimate_video(cut)
