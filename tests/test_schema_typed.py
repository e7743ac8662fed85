"""The typed (msgspec) decoding of the wire: the same bytes as before, and never a message the
field-by-field reading would refuse."""

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.schema import (Alert, Body, GaitCycle, GaitEvent, ImageFrame, SkeletonFrame, Status,
                            WireError, _decode_checked, _decode_typed, decode, encode)

# Bytes the msgpack-python encoder of the schema before msgspec made (commit f56d69b) for these
# messages: stream files recorded by it hold exactly these, so they replay unchanged.
BEFORE = {
    "skeleton": "88a474797065a8736b656c65746f6ea17601a3737263a463616d30a373657107a174ce000f4240a468"
                "6f737405a66c61796f7574ab63616e6f6e6963616c3232a6626f646965739183a2696403a16a83a2647"
                "4a33c6634a27368920203a162c418000000000000803e0000003f0000403f0000803f0000a03fa163"
                "83a26474a33c6634a273689102a162c4080000003f0000803f",
    "image": "89a474797065a5696d616765a17601a3737263a363616da373657101a17402a4686f737403a17705a168"
             "04a3656e63a462677238",
    "gait_event": "8fa474797065aa676169745f6576656e74a17601a3737263a173a373657101a17402a4686f737403"
                  "a5747261636b04a473696465a57269676874a46b696e64a8666f6f745f6f6666a265767ba66d657"
                  "4686f64a9636c6173736963616ca4636f6e66cb3fe0000000000000a773657373696f6ea178a773"
                  "75626a656374a27031a372756ea172",
    "gait_cycle": "de0011a474797065aa676169745f6379636c65a17601a3737263a173a373657101a17402a4686f"
                  "737403a5747261636b01a473696465a46c656674a573746172740aa3656e6414a76d65747269637"
                  "383ab636164656e63655f73706dcb405b800000000000ac737465705f77696474685f6dc0a97370"
                  "6565645f6d7073c0a5666c61677391ae6c6f775f636f6e666964656e6365a7616e6f6d616c79"
                  "81a77375626a656374cb3ff3333333333333a66d6574686f64a9636c6173736963616ca7736573"
                  "73696f6ea178a77375626a656374a27031a372756ea27231",
    "alert": "8da474797065a5616c657274a17601a3737263a6616c65727473a373657101a17402a4686f737403a2"
             "6964a3612d31a472756c65a4736c6f77a3736576a8637269746963616ca57374617465a67261697365"
             "64a474657874ad737065656420302e36206d2f73a5747261636b02a576616c7565cb3fe33333333333"
             "33",
    "alert_bare": "8da474797065a5616c657274a17601a3737263a6616c65727473a373657102a17402a4686f7374"
                  "03a26964a3612d32a472756c65a57175696574a3736576a77761726e696e67a57374617465a672"
                  "6169736564a474657874a96e6f206672616d6573a5747261636bc0a576616c7565c0",
    "status": "8ca474797065a6737461747573a17601a3737263a177a373657101a17402a4686f737403a470726f6"
              "3a177a4726f6c65a6776f726b6572a27570cb3ff8000000000000a8636f756e7465727383a87265636"
              "5697665640aa3626967cf0000010000000000a166cb4004000000000000a36c617481a3703530cb3fd"
              "3333333333333a5737461746581a663616d657261a66f6e6c696e65",
}


def messages():
    return {
        "skeleton": SkeletonFrame(
            source="cam0", seq=7, t_us=1_000_000, host_us=5, layout="canonical22",
            bodies=[Body(3, np.arange(6, dtype=np.float64).reshape(2, 3) / 4,  # float64 in
                         np.array([0.5, 1.0], np.float32))]),
        "image": ImageFrame(source="cam", seq=1, t_us=2, host_us=3, width=5, height=4,
                            encoding="bgr8"),
        "gait_event": GaitEvent(source="s", seq=1, t_us=2, host_us=3, track=4, side="right",
                                kind="foot_off", event_us=123, confidence=0.5, session="x",
                                subject="p1", run="r"),
        "gait_cycle": GaitCycle(source="s", seq=1, t_us=2, host_us=3, track=1, side="left",
                                start_us=10, end_us=20,
                                metrics={"cadence_spm": 110.0, "step_width_m": None,
                                         "speed_mps": math.nan},
                                flags=["low_confidence"], anomaly={"subject": 1.2}, session="x",
                                subject="p1", run="r1"),
        "alert": Alert(source="alerts", seq=1, t_us=2, host_us=3, alert_id="a-1", rule="slow",
                       severity="critical", state="raised", text="speed 0.6 m/s", track=2,
                       value=0.6),
        "alert_bare": Alert(source="alerts", seq=2, t_us=2, host_us=3, alert_id="a-2",
                            rule="quiet", text="no frames"),
        "status": Status(source="w", seq=1, t_us=2, host_us=3, process="w", role="worker",
                         uptime_s=1.5, counters={"received": 10, "big": 2**40,
                                                 "f": np.float64(2.5)},
                         latency_ms={"p50": 0.3}, state={"camera": "online"}),
    }


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_encoding_is_byte_for_byte_what_it_was(name):
    msg = messages()[name]
    assert encode(msg).hex() == BEFORE[name]
    assert msgpack.unpackb(encode(msg)) == msg.to_dict()  # to_dict is what travels
    old = bytes.fromhex(BEFORE[name])
    assert same(_decode_typed(old), _decode_checked(old))
    decode(old, image=b"\0" * 60)


def same(a, b) -> bool:
    """Messages equal, numpy arrays compared by value and dtype."""
    if type(a) is not type(b):
        return False
    if isinstance(a, SkeletonFrame):
        return ((a.source, a.seq, a.t_us, a.host_us, a.layout, len(a.bodies))
                == (b.source, b.seq, b.t_us, b.host_us, b.layout, len(b.bodies))
                and all(x.body_id == y.body_id and x.joints.dtype == y.joints.dtype == np.float32
                        and x.joints.shape == y.joints.shape
                        and x.joints.tobytes() == y.joints.tobytes()
                        and x.confidence.tobytes() == y.confidence.tobytes()
                        and x.confidence.dtype == np.float32
                        for x, y in zip(a.bodies, b.bodies, strict=True)))
    return a == b


def typed_never_looser(data: bytes) -> None:
    """What the typed step takes, the field-by-field reading takes too, as the same message."""
    fast = _decode_typed(data)
    if fast is None:
        return
    slow = _decode_checked(data)  # raises WireError (failing the test) if it would refuse
    assert same(fast, slow), (fast, slow)


def skeleton_bytes(joints, conf, **extra):
    d = SkeletonFrame(source="c", seq=1, t_us=1, host_us=1,
                      bodies=[Body(0, np.asarray(joints, np.float32),
                                   np.asarray(conf, np.float32))]).to_dict()
    d.update(extra)
    return msgpack.packb(d, use_bin_type=True)


def test_typical_traffic_takes_the_typed_step():
    for msg in messages().values():
        if not isinstance(msg, ImageFrame):
            assert same(_decode_typed(encode(msg)), decode(encode(msg)))
    walker = skeleton_bytes(np.random.default_rng(1).uniform(-3, 3, (32, 3)), np.ones(32))
    assert _decode_typed(walker) is not None


@pytest.mark.parametrize("joints, conf, extra, ok", [
    (np.full((22, 3), 500.0), np.ones(22), {}, True),  # far, but inside 1 km
    (np.full((22, 3), 1000.5), np.ones(22), {}, False),
    (np.zeros((22, 3)), np.full(22, -0.0), {}, True),  # -0.0 >= 0
    (np.zeros((22, 3)), np.full(22, -1e-9), {}, False),
    (np.zeros((22, 3)), np.full(22, np.nextafter(np.float32(1), np.float32(2))), {}, False),
    (np.zeros((22, 3)), np.ones(22), {"note": "from a newer sender"}, True),  # extra keys
])
def test_what_the_typed_step_leaves_is_decided_field_by_field(joints, conf, extra, ok):
    data = skeleton_bytes(joints, conf, **extra)
    assert _decode_typed(data) is None
    if ok:
        assert isinstance(decode(data), SkeletonFrame)
    else:
        with pytest.raises(WireError, match=r"beyond 1 km|outside \[0, 1\]"):
            decode(data)


def flip(data: bytes, i: int, b: bytes) -> bytes:
    return data[:i] + b + data[i + len(b):]


VALID = [bytes.fromhex(h) for k, h in BEFORE.items() if k != "image"]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.integers(0, 300), st.binary(min_size=1, max_size=4))
def test_fuzz_bytes_the_typed_step_is_never_looser(data, i, b):
    typed_never_looser(flip(data, i % len(data), b))


special = st.sampled_from([np.nan, np.inf, -np.inf, 1000.0, -1000.0, 1000.0001, 999.99994,
                            300.0, -0.0, -1e-9, 1.0000001, 2.0, 1e-45])


def poke(values, change):
    """``values`` with one replaced by a special value, when ``change`` says so."""
    if change is not None:
        i, v = change
        values = list(values)
        values[i % len(values)] = v
    return values


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
           st.lists(st.floats(-40, 40, width=32), min_size=3 * n, max_size=3 * n),
           st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n))),
       st.none() | st.tuples(st.integers(0, 200), special),
       st.none() | st.tuples(st.integers(0, 200), special),
       st.just({}) | st.dictionaries(
           st.sampled_from(["v", "src", "seq", "t", "host", "layout", "x"]),
           st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
           | st.text(max_size=300) | st.binary(max_size=4), max_size=2))
def test_fuzz_fields_the_typed_step_is_never_looser(arrays, poke_joints, poke_conf, header):
    joints, conf = poke(arrays[0], poke_joints), poke(arrays[1], poke_conf)
    d = SkeletonFrame(source="c", seq=1, t_us=1, host_us=1).to_dict()
    d["bodies"] = [{"id": 0, "j": {"dt": "<f4", "sh": [len(conf), 3],
                                   "b": np.asarray(joints, np.float32).tobytes()},
                    "c": {"dt": "<f4", "sh": [len(conf)],
                          "b": np.asarray(conf, np.float32).tobytes()}}]
    d.update(header)
    typed_never_looser(msgpack.packb(d, use_bin_type=True))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["gait_event", "gait_cycle", "alert", "status", "image"]),
       st.dictionaries(st.sampled_from(["v", "seq", "track", "side", "kind", "ev", "method",
                                        "conf", "metrics", "flags", "anomaly", "start", "end",
                                        "session", "subject", "run", "id", "rule", "sev",
                                        "state", "text", "value", "proc", "role", "up",
                                        "counters", "lat", "w", "h", "enc"]),
                       st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                       | st.floats() | st.text(max_size=5) | st.sampled_from(
                           ["left", "foot_off", "info", "cleared", "jpeg", "x" * 257, 0, 1, 5,
                            0.5, 1.5, "", "x" * 4097, {"a": 1.0}, {"a": None}, ["f"], 16385])
                       | st.lists(st.text(max_size=3) | st.integers(-(2**63), 2**64 - 1),
                                  max_size=3)
                       | st.dictionaries(st.text(max_size=3), st.floats() | st.none()
                                         | st.text(max_size=2), max_size=3),
                       max_size=2))
def test_fuzz_other_messages_the_typed_step_is_never_looser(kind, changes):
    d = msgpack.unpackb(bytes.fromhex(BEFORE[kind]))
    d.update(changes)
    typed_never_looser(msgpack.packb(d, use_bin_type=True))
