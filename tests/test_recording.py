"""Stream files: round trip, a file cut mid-write, corruption, and replay over real sockets."""

import threading
import time

import numpy as np
import pytest

from streams.streamfile import StreamFileError, StreamReader, StreamWriter
from streams.replay import replay
from streams.schema import Body, SkeletonFrame, decode, encode
from streams.transport import Publisher, Subscriber


def frames(n):
    for i in range(1, n + 1):
        f = SkeletonFrame(source="cam", seq=i, t_us=i * 33_333, host_us=0,
                          bodies=[Body(0, np.full((22, 3), i, np.float32),
                                       np.ones(22, np.float32))])
        yield i * 33_333, [b"skel/cam", encode(f)]


def write(path, n):
    with StreamWriter(path, topics=["skel/"]) as w:
        for t, fr in frames(n):
            w.write(t, fr)


def test_round_trip(tmp_path):
    p = tmp_path / "a.gst"
    write(p, 50)
    r = StreamReader(p)
    assert r.header["topics"] == ["skel/"]
    recs = list(r)
    assert len(recs) == 50 and not r.truncated
    assert [decode(x.frames[1]).seq for x in recs] == list(range(1, 51))
    assert recs[3].topic == "skel/cam" and recs[3].host_us == 4 * 33_333


@pytest.mark.parametrize("cut", [1, 7, 100, 333])
def test_file_cut_mid_write_replays_up_to_last_whole_record(tmp_path, cut):
    p = tmp_path / "a.gst"
    write(p, 20)
    data = p.read_bytes()
    p.write_bytes(data[:-cut])
    r = StreamReader(p)
    recs = list(r)
    assert r.truncated
    assert 0 < len(recs) < 20
    assert [decode(x.frames[1]).seq for x in recs] == list(range(1, len(recs) + 1))


def test_corrupt_record_ends_the_readable_part_loudly(tmp_path):
    p = tmp_path / "a.gst"
    write(p, 20)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    r = StreamReader(p)
    n = len(list(r))
    assert r.truncated and "checksum" in r.tail_error and 0 < n < 20


def test_not_a_stream_file(tmp_path):
    p = tmp_path / "x.gst"
    p.write_bytes(b"hello world")
    with pytest.raises(StreamFileError, match="bad magic"):
        StreamReader(p)


def test_replay_publishes_the_same_bytes_at_speed(tmp_path, endpoint):
    p = tmp_path / "a.gst"
    write(p, 30)  # 1 s of recording at 30 Hz
    pub = Publisher(endpoint(), hwm=10000)
    sub = Subscriber([pub.endpoint], ["skel/"], hwm=10000)
    assert pub.wait_for_subscribers(1, 5)
    time.sleep(0.05)
    stop = threading.Event()
    t0 = time.monotonic()
    n = replay(p, pub, stop, speed=4.0)
    elapsed = time.monotonic() - t0
    got = []
    while (m := sub.recv(300)) is not None:
        got.append(m[1])
    assert n == 30 and [m.seq for m in got] == list(range(1, 31))
    # 0.97 s recorded at 4x is about 0.24 s: paced, not flat out (loose, the host is shared)
    assert elapsed > 0.2
    original = [decode(fr[1]) for _, fr in frames(30)]
    for a, b in zip(original, got):
        np.testing.assert_array_equal(a.bodies[0].joints, b.bodies[0].joints)
        assert a.t_us == b.t_us


def test_replay_window_and_topics(tmp_path, endpoint):
    p = tmp_path / "a.gst"
    write(p, 60)  # 2 s
    pub = Publisher(endpoint(), hwm=10000)
    sub = Subscriber([pub.endpoint], [""], hwm=10000)
    assert pub.wait_for_subscribers(1, 5)
    time.sleep(0.05)
    n = replay(p, pub, threading.Event(), speed=0, start_s=0.49, end_s=1.01)
    got = []
    while (m := sub.recv(300)) is not None:
        got.append(m[1].seq)
    assert n == len(got) and got == list(range(16, 32))
    assert replay(p, pub, threading.Event(), speed=0, topics=["gait/"]) == 0
