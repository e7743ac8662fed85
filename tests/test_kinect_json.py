"""The offline_processor JSON reader (capture/readers/k4a_json.py) on files in the sample's exact
format: tests/data/k4a/ (written by tests/k4a_json_fixtures.py, checked below to be exactly what
it writes) and variants of it made in the test. The scenes are geometric, so the expected metres
are known: world position minus the 1 m camera height.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from capture.base import run_capture
from capture.readers.k4a_json import K4AJsonSource, load_k4a_json, read_k4a_json
from capture.readers.recording import RecordingError
from capture.sources import make_source
from k4a_json_fixtures import (CAMERA, DATA, FIXTURES, crosser, device_time,
                               offline_processor_json, two_walkers, walker)
from streams.schema import SkeletonFrame
from streams.skeletons import AZURE_KINECT_CONFIDENCE, AZURE_KINECT_JOINTS, CJ
from streams.node import StatusReporter
from streams.transport import Publisher, Subscriber

FILE = DATA / "offline_processor_two_walkers.json"
PELVIS = AZURE_KINECT_JOINTS.index("PELVIS")
MEDIUM = AZURE_KINECT_CONFIDENCE[2]
FRAME_IDS = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
WHO = [[], [1], [1, 2], [1, 2], [2], [2], [1, 3], [1, 3], [1, 3], [1]]


def wire(world: np.ndarray) -> np.ndarray:
    return world - [0.0, CAMERA.height, 0.0]


def test_committed_fixtures_are_what_the_documented_generator_writes():
    for name, scene in FIXTURES.items():
        assert (DATA / name).read_text(encoding="utf-8") == offline_processor_json(scene())


def test_fixture_has_the_sample_structure():
    doc = json.loads(FILE.read_text())
    assert list(doc) == ["bone_list", "frames", "joint_names", "k4abt_sdk_version",
                         "source_file"]
    assert len(doc["bone_list"]) == 31 and len(doc["joint_names"]) == 32
    frame = doc["frames"][2]
    assert list(frame) == ["bodies", "frame_id", "num_bodies", "timestamp_usec"]
    assert list(frame["bodies"][0]) == ["body_id", "joint_orientations", "joint_positions"]
    assert "confidence" not in FILE.read_text()  # the sample writes no confidence levels


def test_read_frames_bodies_and_timestamps():
    doc = read_k4a_json(FILE)
    assert doc.sdk_version == "1.1.2" and doc.source_file == "walk.mkv"
    assert [f.frame_id for f in doc.frames] == FRAME_IDS
    assert [f.t_us for f in doc.frames] == [device_time(k) for k in FRAME_IDS]
    assert [[b.body_id for b in f.bodies] for f in doc.frames] == WHO
    assert doc.body_frames == {1: 7, 2: 4, 3: 3}
    assert doc.problems == []
    b = doc.frames[1].bodies[0]
    np.testing.assert_allclose(b.positions_mm, CAMERA.to_camera_mm(walker(1)), atol=1e-3)
    assert b.levels is None


def test_load_recording_of_the_longest_tracked_body():
    rec = load_k4a_json(FILE)
    assert rec.meta["body_id"] == 1
    span = FRAME_IDS[1:]  # body 1 from frame 1 to frame 10, lost in 5 and 6
    np.testing.assert_array_equal(rec.t_us, [device_time(k) for k in span])
    assert rec.rate_hz == pytest.approx(30.0, rel=1e-4)
    assert rec.source_layout == rec.raw_layout == "azure_kinect32"
    expected = np.stack([wire(walker(k)) for k in span])
    # frames 5 and 6 are interpolated in time; the walk is straight and steady, so exactly
    np.testing.assert_allclose(rec.raw_joints, expected, atol=1e-5)
    lost = np.isin(span, [5, 6])
    assert (rec.raw_confidence[lost] == 0).all()
    assert (rec.raw_confidence[~lost] == np.float32(MEDIUM)).all()
    np.testing.assert_allclose(rec.joint("pelvis"), expected[:, PELVIS], atol=1e-5)
    assert (rec.confidence[lost] == 0).all()
    assert rec.joints[:, CJ["head"], 1].min() > rec.joints[:, CJ["left_foot"], 1].max()
    meta = rec.meta
    assert meta["bodies"] == {"1": 7, "2": 4, "3": 3}
    assert meta["k4abt_sdk_version"] == "1.1.2" and meta["camera_frame"] is True
    assert "MEDIUM" in meta["confidence"]
    assert any("lost in 2 frames" in p for p in meta["problems"])


def test_load_a_chosen_body_and_refuse_an_absent_one():
    rec = load_k4a_json(FILE, body_id=3)
    np.testing.assert_array_equal(rec.t_us, [device_time(k) for k in (7, 8, 9)])
    np.testing.assert_allclose(rec.raw_joints[:, PELVIS],
                               [wire(crosser(k))[PELVIS] for k in (7, 8, 9)], atol=1e-5)
    with pytest.raises(RecordingError, match=r"no body 42; bodies: \[1, 2, 3\]"):
        load_k4a_json(FILE, body_id=42)


def test_source_publishes_every_frame_like_the_live_camera():
    src = make_source("k4a_json", "hall", {"path": str(FILE)})
    assert isinstance(src, K4AJsonSource) and src.paced
    frames = list(src.frames())
    assert [f.t_us for f in frames] == [device_time(k) for k in FRAME_IDS]
    assert [[b.body_id for b in f.bodies] for f in frames] == WHO
    assert all(f.layout == "azure_kinect32" and f.source == "hall" for f in frames)
    for f, k in zip(frames, FRAME_IDS):
        for b in f.bodies:
            world = walker(k) if b.body_id == 1 else crosser(k)
            np.testing.assert_allclose(b.joints, wire(world), atol=1e-5)
            assert b.joints.dtype == np.float32
            assert (b.confidence == np.float32(MEDIUM)).all()


def test_looping_source_continues_the_clock_and_renumbers_bodies():
    src = K4AJsonSource("hall", str(FILE), loop=True)
    gen = src.frames()
    frames = [next(gen) for _ in range(20)]
    src.close()
    assert list(gen) == []  # closing ends it
    t = [f.t_us for f in frames]
    assert all(b > a for a, b in zip(t, t[1:]))
    period = device_time(10) - device_time(0) + 33_333
    assert t[10:] == [x + period for x in t[:10]]
    assert [[b.body_id for b in f.bodies] for f in frames[10:]] == \
        [[i + 3 for i in ids] for ids in WHO]
    assert src.state["pass"] == "2"


def test_source_through_run_capture_and_zeromq(endpoint):
    ep = endpoint()
    pub = Publisher(ep)
    sub = Subscriber([ep], ["skel/"])
    try:
        pub.wait_for_subscribers(1, timeout_s=5.0)
        run_capture(K4AJsonSource("hall", str(FILE)), pub, threading.Event(),
                    StatusReporter("hall", "capture"), speed=0)
        got = []
        while (m := sub.recv(500)) is not None:
            got.append(m[1])
    finally:
        sub.close()
        pub.close()
    assert all(isinstance(m, SkeletonFrame) for m in got)
    assert [m.t_us for m in got] == [device_time(k) for k in FRAME_IDS]
    assert [[b.body_id for b in m.bodies] for m in got] == WHO


def test_confidence_levels_and_start_offset_when_a_variant_writes_them(tmp_path):
    doc = json.loads(offline_processor_json(two_walkers()))
    doc["start_offset_usec"] = 166_000
    levels = [(j % 3) for j in range(32)]
    for f in doc["frames"]:
        for b in f["bodies"]:
            b["joint_confidence"] = [[v] for v in levels]  # one-element lists, as some write
    path = tmp_path / "with_confidence.json"
    path.write_text(json.dumps(doc, indent=4, sort_keys=True))
    rec = load_k4a_json(path)
    assert rec.meta["start_offset_usec"] == 166_000
    assert rec.meta["confidence"] == "joint_confidence levels from the file"
    np.testing.assert_array_equal(rec.raw_confidence[0],
                                  np.float32([AZURE_KINECT_CONFIDENCE[v] for v in levels]))
    (first,) = [f for f in K4AJsonSource("x", str(path)).frames() if f.bodies][:1]
    np.testing.assert_array_equal(first.bodies[0].confidence, rec.raw_confidence[0])


def test_joint_names_in_another_order_are_followed(tmp_path):
    doc = json.loads(offline_processor_json(two_walkers()))
    perm = np.random.default_rng(0).permutation(32)
    doc["joint_names"] = [doc["joint_names"][i] for i in perm]
    for f in doc["frames"]:
        for b in f["bodies"]:
            b["joint_positions"] = [b["joint_positions"][i] for i in perm]
            b["joint_orientations"] = [b["joint_orientations"][i] for i in perm]
    path = tmp_path / "permuted.json"
    path.write_text(json.dumps(doc))
    np.testing.assert_array_equal(load_k4a_json(path).raw_joints, load_k4a_json(FILE).raw_joints)


def test_bad_content_is_skipped_with_reasons_and_good_data_kept(tmp_path):
    doc = json.loads(offline_processor_json(two_walkers()))
    frames = doc["frames"]
    frames[3]["timestamp_usec"] = frames[2]["timestamp_usec"]  # clock went back
    frames[4]["bodies"][0]["joint_positions"].pop()  # 31 joints
    frames[6]["bodies"][1]["joint_positions"][4] = [None, None, None]  # NaN, as nlohmann writes
    frames[7]["num_bodies"] = 5
    frames.insert(8, "garbage")
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(doc))
    doc_read = read_k4a_json(path)
    problems = "\n".join(doc_read.problems)
    assert "frames[3]: timestamp" in problems
    assert "frames[4]: body 2: 31 joint positions" in problems
    assert "frames[6]: body 3: NaN joint positions" in problems
    assert "frames[7]: num_bodies 5 but 2 bodies listed" in problems
    assert "frames[8]: not an object" in problems
    assert len(doc_read.frames) == 9  # only the frame with the bad clock is gone
    assert [[b.body_id for b in f.bodies] for f in doc_read.frames] == \
        [[], [1], [1, 2], [], [2], [1], [1, 3], [1, 3], [1]]
    rec = load_k4a_json(path)
    assert len(rec.meta["problems"]) == 6  # the five above and body 1's gap
    assert rec.t_us[0] == device_time(1)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not readable as JSON"),
    ('{"frames": 3}', "no 'frames' list"),
    ('{"joint_names": ["A"], "frames": []}', "joint_names are not"),
    ('{"frames": [{"frame_id": 0}]}', "no usable frames"),
    ('{"frames": [{"timestamp_usec": 5, "bodies": []}]}', "no body in any frame"),
])
def test_files_that_are_not_this_format_say_why(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(RecordingError, match=message):
        load_k4a_json(path)


def test_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="assumed_level 'SURE'"):
        load_k4a_json(FILE, assumed_level="SURE")
    with pytest.raises(ValueError, match="no such file"):
        K4AJsonSource("x", str(tmp_path / "missing.json"))
