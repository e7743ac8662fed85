"""Valid-looking input that once stopped processes: absurd sequence numbers over real sockets,
schema versions that only compare equal to 1, and drop counters no loss explains."""

import time

import msgpack
import numpy as np
import pytest

from sinks.log.gaps import SeqBook
from streams.node import StatusReporter
from streams.schema import (MAX_SEQ_GAP, Body, SkeletonFrame, WireError, decode, encode)
from streams.transport import Publisher, Subscriber

from conftest import free_port


def frame(source, seq, t_us=0):
    return SkeletonFrame(source=source, seq=seq, t_us=t_us, host_us=1, layout="canonical22",
                         bodies=[Body(0, np.zeros((22, 3), np.float32),
                                      np.ones(22, np.float32))])


def test_absurd_sequence_numbers_are_refused_or_counted_and_status_still_encodes():
    """Three sources sending -(2^62-1) then 2^62-1 pushed the worker's dropped_upstream past
    2^64: encoding its Status raised OverflowError and the worker crash-looped."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub, sub = Publisher(ep), Subscriber([ep], ["skel/"])
    try:
        assert pub.wait_for_subscribers(1, 5.0) == 1
        time.sleep(0.1)
        for src in ("a", "b", "c"):
            pub.send(frame(src, 1))
            pub.send(frame(src, (1 << 62) - 1))
        pub.send(SkeletonFrame(source="d", seq=-((1 << 62) - 1), t_us=0, host_us=1,
                               layout="canonical22", bodies=[]))
        got = [m for _ in range(20) if (m := sub.recv(300)) is not None]
    finally:
        pub.close()
        sub.close()
    assert len(got) == 6  # the negative one is refused
    c = sub.counters
    assert c.rejected == 1 and c.reasons == {"skeleton": 1}
    assert c.gaps == 0 and c.seq_jumps == 3  # jumps are no losses
    status = StatusReporter("worker", "worker")
    status.absorb(sub)
    decode(encode(status.snapshot()))  # encodes and decodes: no OverflowError


def test_a_sequence_jump_is_no_gap_in_the_log():
    book = SeqBook()
    assert book.observe_seq("gait", "cam", 5) is None
    assert book.observe_seq("gait", "cam", (1 << 62) - 1) is None  # no 2^62-message "gap"
    g = book.observe_seq("gait", "cam", (1 << 62) + 2)
    assert g is not None and g.count == 2
    assert book.observe_drop_counter("worker", 1e300) is None
    assert book.observe_drop_counter("worker", float("nan")) is None
    assert book.observe_drop_counter("worker", 3).count == 3
    assert book.observe_drop_counter("worker", 3 + MAX_SEQ_GAP + 1) is None


@pytest.mark.parametrize("version", [True, 1.0])
def test_a_schema_version_that_only_equals_one_is_refused(version):
    d = frame("cam", 1).to_dict()
    d["v"] = version
    with pytest.raises(WireError, match="schema version"):
        decode(msgpack.packb(d, use_bin_type=True))


def run_worker_on(frames):
    from inference.worker import Worker, WorkerConfig

    w = Worker(WorkerConfig(), None, StatusReporter("worker", "worker"))
    for f in frames:
        w.handle(f)
    w.expire(force=True)
    from streams.schema import GaitCycle
    return [m for m in w.outputs if isinstance(m, GaitCycle)], w.status.counters


def walk_frames(seconds=20.0, offset_us=0):
    from inference.data.simulated import walkway_walk

    t, j, c = walkway_walk(seconds, seed=4)
    return [SkeletonFrame(source="cam", seq=i + 1, t_us=int(t[i]) + offset_us, host_us=1,
                          layout="canonical22", bodies=[Body(0, j[i], c[i])])
            for i in range(len(t))]


def test_a_far_future_frame_costs_one_frame_not_the_track():
    """One frame stamped an hour ahead every 2.9 s made every real frame after it
    'non-monotonic' until the track expired: 162 cycles became 39."""
    clean = walk_frames()
    hostile = []
    for i, f in enumerate(clean):
        hostile.append(f)
        if i % 87 == 50:  # every 2.9 s at 30 Hz
            bad = frame("cam", f.seq, t_us=f.t_us + 3_600_000_000)
            bad.bodies = f.bodies
            hostile.append(bad)
    want, _ = run_worker_on(clean)
    got, counters = run_worker_on(hostile)
    assert len(want) >= 20
    assert [(c.side, c.start_us) for c in got] == [(c.side, c.start_us) for c in want]
    assert counters["rejected_time_jump"] == sum(i % 87 == 50 for i in range(len(clean)))


def test_a_clock_that_really_moves_starts_the_track_again():
    first, second = walk_frames(10.0), walk_frames(10.0, offset_us=100_000_000)
    cycles, counters = run_worker_on(first + second)
    assert counters["rejected_time_jump"] == 2  # the new clock's first two frames
    assert counters["tracks_started"] == 2
    assert any(c.start_us > 100_000_000 for c in cycles)  # cycles on the new clock too


def test_rejections_are_published_by_reason_and_their_names_are_bounded():
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub, sub = Publisher(ep), Subscriber([ep], [""])
    try:
        assert pub.wait_for_subscribers(1, 5.0) == 1
        time.sleep(0.1)
        pub.send_raw([b"skel/x", b"\xc1garbage"])
        for i in range(100):  # made-up message types: one reason, whatever the type says
            pub.send_raw([b"skel/x", msgpack.packb({"type": f"t{i}", "v": 1})])
        for i in range(64):  # a bad array at a different place each time: its own reason text
            n = i % 16 + 1
            d = SkeletonFrame(source="x", seq=i + 1, t_us=1, host_us=1, bodies=[
                Body(b, np.zeros((22, 3), np.float32), np.ones(22, np.float32))
                for b in range(n)]).to_dict()
            d["bodies"][n - 1]["j" if i < 32 else "c"] = "garbage"
            pub.send_raw([b"skel/x", msgpack.packb(d)])
        for _ in range(300):
            sub.recv(20)
    finally:
        pub.close()
        sub.close()
    status = StatusReporter("worker", "worker")
    status.absorb(sub)
    st = decode(encode(status.snapshot()))  # still a valid Status
    by_reason = {k: v for k, v in st.counters.items() if k.startswith("rejected.")}
    assert len(by_reason) == 33 and sum(by_reason.values()) == 165 == st.counters["rejected"]
    assert by_reason["rejected.malformed msgpack"] == 1
    assert by_reason["rejected.unknown message type"] == 100
    assert by_reason["rejected.other"] == 4  # the 33rd and 34th reasons, sent twice each


def test_a_frame_beyond_the_size_limit_is_refused_as_it_arrives():
    """A 500 MB frame grew the worker by 508 MB before the 4 MiB check could refuse it. Now
    ZeroMQ refuses it as it arrives and drops the link of the peer that sent it; the camera's
    link, another peer, goes on."""
    bad_ep, cam_ep = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    bad, cam = Publisher(bad_ep), Publisher(cam_ep)
    sub = Subscriber([bad_ep, cam_ep], [""], max_frame_bytes=1 << 20)
    try:
        assert bad.wait_for_subscribers(1, 5.0) == 1 and cam.wait_for_subscribers(1, 5.0) == 1
        time.sleep(0.1)
        bad.send_raw([b"skel/big", b"\0" * (32 << 20)])
        got = []
        for i in range(20):
            cam.send(frame("cam", i + 1))
            if (m := sub.recv(100)) is not None:
                got.append(m[1])
    finally:
        bad.close()
        cam.close()
        sub.close()
    assert [m.source for m in got] == ["cam"] * len(got) and len(got) >= 18
    # the big frame never reached this process's memory as a message to check
    assert sub.counters.received == len(got) and sub.counters.rejected == 0


def test_a_flood_of_body_ids_and_image_sources_is_bounded_and_counted():
    """26,000 fuzzed body ids took a worker from 50 MB to 10 GB; every new image source name
    made a ~100 MB pose model before its image was even decoded."""
    from inference.worker import Worker, WorkerConfig
    from streams.schema import ImageFrame

    w = Worker(WorkerConfig(max_tracks_per_source=4, max_image_sources=0), None,
               StatusReporter("worker", "worker"))
    for body_id in range(1000):
        f = frame("cam", body_id + 1, t_us=body_id)
        f.bodies[0].body_id = body_id
        w.handle(f)
    assert len(w.tracks) == 4
    assert w.status.counters["rejected_tracks"] == 996
    for i in range(5):
        w.handle(ImageFrame(source=f"fuzz{i}", seq=1, t_us=0, host_us=1, width=2, height=2,
                            encoding="bgr8", image=b"\0" * 12))
    assert w.status.counters["rejected_image_sources"] == 5 and w.models._pose == {}


def test_a_flood_of_source_names_is_bounded_and_pose_models_are_given_back():
    """Tracks were bounded per source, not the sources; a pose model, once made, was never freed."""
    import time

    import zmq

    from inference.worker import Worker, WorkerConfig
    from streams.schema import encode
    from streams.transport import MAX_STREAMS, Subscriber

    w = Worker(WorkerConfig(max_sources=3, image_source_timeout_s=0.2), None,
               StatusReporter("worker", "worker"))
    for i in range(50):
        w.handle(frame(f"fuzz{i}", 1, t_us=1))
    assert {s for s, _ in w.tracks} == {"fuzz0", "fuzz1", "fuzz2"}
    assert w.status.counters["rejected_sources"] == 47
    w.handle(frame("fuzz1", 2, t_us=2))  # a source already held goes on
    assert w.status.counters["frames"] == 51

    closed = []

    class Model:  # stands in for a pose model: what matters is that it is closed and dropped
        def close(self):
            closed.append(self)
    w.models._pose["cam9"], w.models._pose_used["cam9"] = Model(), time.monotonic()
    w.status.counters["pose.cam9.frames"] = 3
    w.expire()
    assert w.models._pose and not closed  # still in use
    time.sleep(0.3)
    w.expire()
    assert w.models._pose == {} and len(closed) == 1
    assert "pose.cam9.frames" not in w.status.counters
    assert w.status.counters["image_sources_ended"] == 1

    # the subscriber's per-stream memory of sequence numbers is bounded too
    sub = Subscriber([], ["skel/"])
    for i in range(MAX_STREAMS + 500):
        f = frame(f"s{i}", 1)
        sub.parse([zmq.Frame(f"skel/s{i}".encode()), zmq.Frame(encode(f))])
    assert len(sub.positions()) == MAX_STREAMS
    assert ("skel/s0", "s0") not in sub.positions()
    sub.close()


def test_a_flood_of_the_same_warning_is_counted_not_repeated():
    """A traceback per bad image and a warning per bad message buried the log."""
    import logging

    from streams.node import FloodFilter

    now = [0.0]
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    handler.addFilter(FloodFilter(interval_s=5.0, clock=lambda: now[0]))
    log = logging.getLogger("flood-test")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        for i in range(1000):
            log.warning("failed to process image from %s", "cam")
            log.warning("another kind %d", i)
        log.info("routine %d", 1)  # below warnings: never held
        now[0] = 6.0
        log.warning("failed to process image from %s", "cam")
    finally:
        log.removeHandler(handler)
    assert records == ["failed to process image from cam", "another kind 0", "routine 1",
                       "failed to process image from cam [999 more like this in the last 5 s]"]


def test_jpeg_frames_are_decoded_and_broken_ones_refused_before_a_pose_model_is_made():
    """The wire allows JPEG frames (a networked camera saves bandwidth) but the worker could not
    decode them: every one was a traceback, after a pose model had been made for its source."""
    import cv2

    from inference.worker import Worker, WorkerConfig, pixels
    from streams.schema import ImageFrame

    img = np.zeros((48, 64, 3), np.uint8)
    img[10:30, 20:40] = (0, 128, 255)
    ok, jpg = cv2.imencode(".jpg", img)
    good = ImageFrame(source="netcam", seq=1, t_us=0, host_us=1, width=64, height=48,
                      encoding="jpeg", image=jpg.tobytes())
    out = pixels(good)
    assert out.shape == (48, 64, 3) and np.abs(out.astype(int) - img).mean() < 3
    w = Worker(WorkerConfig(), None, StatusReporter("worker", "worker"))
    for i, (data, wh) in enumerate([(b"\xff\xd8 not a jpeg", (64, 48)),
                                    (jpg.tobytes(), (640, 480))]):
        w.handle(ImageFrame(source=f"bad{i}", seq=1, t_us=0, host_us=1, width=wh[0],
                            height=wh[1], encoding="jpeg", image=data))
    assert w.status.counters["rejected_images"] == 2
    assert w.models._pose == {} and "errors" not in w.status.counters


def test_the_cli_leaves_a_hosts_log_handlers_unfiltered(tmp_path, caplog):
    """An in-process run of a command (a test, a notebook) must not leave its flood filter on
    handlers it did not make: they would hold back the host's repeated warnings afterwards."""
    import logging

    from deploy.cli import main

    assert main(["eval", "dpg", str(tmp_path)]) == 2  # any command: a folder of neither layout
    assert not any(type(f).__name__ == "FloodFilter" for h in logging.getLogger().handlers
                   for f in h.filters)
    log = logging.getLogger("flood-host")
    for _ in range(3):
        log.warning("the same warning")
    assert sum(r.getMessage() == "the same warning" for r in caplog.records) == 3
