"""An .mkv is either an ordinary video (pose estimation) or an Azure Kinect recording (k4arecorder:
depth + IMU, bodies from the Body Tracking SDK). ``gaitstream run`` / ``analyze`` used to send
every .mkv to OpenCV/MediaPipe; the Matroska markers now route a Kinect file to the Kinect
playback. pyk4a cannot be installed here, so a Kinect file must fail with the SDK's install
message (pyk4a is hidden for these tests, so that holds on a machine that has it too); playing
one through the Kinect source is tested with the fake pyk4a in test_kinect_pyk4a.py.
"""

from __future__ import annotations

import sys

import pytest

from capture.readers import RecordingError, is_video_file, load_recording
from capture.readers.k4a_mkv import is_k4a_recording, k4a_markers
from deploy import cli
from capture.sources import source_for_file
from mkv_fixtures import k4a_like_mkv, ordinary_mkv


@pytest.fixture
def no_pyk4a(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyk4a", None)  # "import pyk4a" raises ImportError


def test_markers_of_a_kinect_file_and_of_an_ordinary_video(tmp_path):
    k4a = k4a_markers(k4a_like_mkv(tmp_path / "walk.mkv"))
    assert k4a.doc_type == "matroska"
    assert k4a.tracks == ["DEPTH", "IR", "IMU"]
    assert k4a.tags == ["K4A_DEPTH_MODE", "K4A_DEVICE_SERIAL_NUMBER", "K4A_START_OFFSET_NS"]
    assert k4a.attachments == ["calibration.json"]
    assert k4a.is_k4a
    video = k4a_markers(ordinary_mkv(tmp_path / "clip.mkv"))
    assert video.doc_type == "matroska" and not video.is_k4a
    assert not any(t.startswith("K4A_") for t in video.tags)


def test_which_markers_are_enough(tmp_path):
    # tags alone (a remux that dropped the attachment), or calibration + a depth track
    # (tags stripped) still say Kinect; a calibration.json beside ordinary tracks does not
    assert is_k4a_recording(k4a_like_mkv(tmp_path / "a.mkv", attachment=False))
    assert is_k4a_recording(k4a_like_mkv(tmp_path / "b.mkv", tags=False))
    assert not is_k4a_recording(k4a_like_mkv(tmp_path / "c.mkv", tags=False,
                                             tracks=("Video", "Audio")))


def test_not_matroska_or_cut_short_is_never_a_kinect_file(tmp_path):
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"not a video at all" * 10)
    assert k4a_markers(junk) is None and not is_k4a_recording(junk)
    whole = k4a_like_mkv(tmp_path / "whole.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[:60])  # inside the Segment's first element
    assert not is_k4a_recording(cut)
    assert not is_k4a_recording(tmp_path / "missing.mkv")
    assert is_video_file(junk)  # still a video by suffix: the video path reports what is wrong


def test_routing_by_content_not_suffix(tmp_path, no_pyk4a):
    video = ordinary_mkv(tmp_path / "clip.mkv")
    k4a = k4a_like_mkv(tmp_path / "walk.mkv")
    assert is_video_file(video) and not is_video_file(k4a)
    assert is_video_file(tmp_path / "x.mp4") and not is_video_file(tmp_path / "x.c3d")
    assert source_for_file(video) == {"source": "webcam", "path": str(video.resolve())}
    with pytest.raises(SystemExit) as e:
        source_for_file(k4a)
    msg = str(e.value.code)
    assert "walk.mkv is an Azure Kinect recording" in msg
    assert "pyk4a cannot be imported" in msg and "libk4a1.4" in msg and "libk4abt1.1" in msg
    with pytest.raises(RecordingError, match="a video, not an Azure Kinect recording"):
        load_recording(video)


def test_cli_analyze_and_run_on_a_kinect_mkv_name_the_missing_sdk(tmp_path, capsys, no_pyk4a):
    k4a = k4a_like_mkv(tmp_path / "walk.mkv")
    assert cli.main(["analyze", str(k4a)]) == 2
    out = capsys.readouterr().err  # one line on stderr, no traceback
    assert "error: walk.mkv is an Azure Kinect recording" in out
    assert "pyk4a cannot be imported" in out and "pip install 'gaitstream[kinect]'" in out
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(k4a), "--out", str(tmp_path / "out")])
    assert "pyk4a cannot be imported" in str(e.value.code)
    assert not (tmp_path / "out" / "pipeline.toml").exists()  # no pipeline was started


def test_cli_analyze_keeps_an_ordinary_mkv_on_the_video_path(tmp_path, capsys):
    clip = ordinary_mkv(tmp_path / "clip.mkv")  # five grey frames: nobody in them
    assert cli.main(["analyze", str(clip)]) == 2
    out = capsys.readouterr().err
    assert "no person found in 5 frames" in out  # MediaPipe ran on the frames
