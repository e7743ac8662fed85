"""Real ZeroMQ sockets on loopback: delivery, topics, images, drops, bad peers, CURVE."""

import time

import numpy as np
import pytest
import zmq

from streams.keys import main as keys_main
from streams.schema import Body, GaitEvent, ImageFrame, SkeletonFrame
from streams.transport import CurveConfig, Publisher, Subscriber, check_bind_endpoint


def frame(seq, source="cam"):
    return SkeletonFrame(source=source, seq=seq, t_us=seq * 33_333, host_us=1,
                         bodies=[Body(0, np.ones((22, 3), np.float32),
                                      np.ones(22, np.float32))])


def connect(pub_ep, topics, **kw):
    sub = Subscriber([pub_ep], topics, **kw)
    return sub


def settle(pub, sub):
    assert pub.wait_for_subscribers(1, 5.0) == 1
    time.sleep(0.05)


def drain(sub, n, timeout_s=5.0):
    got, end = [], time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < end:
        r = sub.recv(50)
        if r:
            got.append(r)
    return got


def test_messages_arrive_in_order_on_their_topics(endpoint):
    pub = Publisher(endpoint())
    sub = connect(pub.endpoint, ["skel/"])
    settle(pub, sub)
    for i in range(1, 101):
        pub.send(frame(i))
    pub.send(GaitEvent(source="cam", seq=1, t_us=1, host_us=1))  # gait/cam: not subscribed
    got = drain(sub, 100)
    assert [m.seq for _, m in got] == list(range(1, 101))
    assert {t for t, _ in got} == {"skel/cam"}
    assert sub.recv(100) is None
    assert sub.counters.received == 100 and sub.counters.rejected == 0
    pub.close(); sub.close()


def test_image_frames_arrive_intact(endpoint):
    pub = Publisher(endpoint())
    sub = connect(pub.endpoint, ["img/"])
    settle(pub, sub)
    img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    pub.send(ImageFrame(source="cam", seq=1, t_us=1, host_us=1, width=640, height=480,
                        image=img))
    (_, m), = drain(sub, 1)
    np.testing.assert_array_equal(m.array(), img)


def test_slow_consumer_makes_publisher_drop_and_subscriber_count_gaps(endpoint):
    pub = Publisher(endpoint(), hwm=10)
    sub = connect(pub.endpoint, ["skel/"], hwm=10)
    settle(pub, sub)
    t0 = time.monotonic()
    for i in range(1, 5001):  # nobody reads meanwhile: queues fill, PUB must not block
        pub.send(frame(i))
    assert time.monotonic() - t0 < 5.0
    time.sleep(0.2)
    got = drain(sub, 5000, timeout_s=1.0)
    seqs = [m.seq for _, m in got]
    assert len(seqs) < 5000 and seqs == sorted(seqs)
    # every message the subscriber did not get, before the last one it got, is counted
    assert sub.counters.gaps == seqs[-1] - len(seqs)


def test_bad_peer_is_counted_and_never_raises(endpoint):
    ep = endpoint()
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.bind(ep)
    sub = Subscriber([ep], [""])
    time.sleep(0.3)
    bad = [[b"skel/x", b"\xc1garbage"], [b"skel/x"], [b"skel/x", b"a", b"b", b"c"],
           [b"\xff\xfe", b"\x80"], [b"skel/x", GaitEvent(source="s", seq=1, t_us=1,
                                                          host_us=1).to_dict().__repr__().encode()]]
    for m in bad:
        raw.send_multipart(m)
    from streams.schema import encode
    raw.send_multipart([b"skel/cam", encode(frame(1))])
    got = drain(sub, 1)
    assert len(got) == 1 and got[0][1].seq == 1
    assert sub.counters.rejected == len(bad)
    raw.close()


def test_binding_beyond_loopback_needs_explicit_permission():
    check_bind_endpoint("tcp://127.0.0.1:5000", False)
    check_bind_endpoint("ipc:///tmp/x", False)
    with pytest.raises(ValueError, match="not loopback"):
        check_bind_endpoint("tcp://0.0.0.0:5000", False)
    check_bind_endpoint("tcp://0.0.0.0:5000", True)


def test_curve_encrypts_and_authenticates(tmp_path, endpoint):
    import argparse
    for name in ("server", "client", "intruder"):
        keys_main(argparse.Namespace(dir=tmp_path, name=name))
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "client.key").write_bytes((tmp_path / "client.key").read_bytes())
    ep = endpoint()
    pub = Publisher(ep, curve=CurveConfig(secret_key_file=str(tmp_path / "server.key_secret"),
                                          authorized_dir=str(allowed)))
    good = Subscriber([ep], [""], curve=CurveConfig(
        secret_key_file=str(tmp_path / "client.key_secret"),
        server_key_file=str(tmp_path / "server.key")))
    bad = Subscriber([ep], [""], curve=CurveConfig(
        secret_key_file=str(tmp_path / "intruder.key_secret"),
        server_key_file=str(tmp_path / "server.key")))
    plain = Subscriber([ep], [""])
    time.sleep(0.5)
    for i in range(1, 6):
        pub.send(frame(i))
        time.sleep(0.02)
    assert len(drain(good, 1, 3.0)) == 1
    assert drain(bad, 1, 0.5) == [] and drain(plain, 1, 0.5) == []
    for s in (pub, good, bad, plain):
        s.close()
