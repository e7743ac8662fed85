"""The wire: round trips, validation, and fuzzing that only WireError ever escapes decode()."""

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.schema import (
    MAX_MESSAGE_BYTES, Alert, Body, GaitCycle, GaitEvent, ImageFrame, SessionControl,
    SkeletonFrame, Status, WireError, decode, encode,
)
from streams.schema import _decode_checked, _decode_typed


def skel(n_bodies=2, joints=22, seed=0):
    rng = np.random.default_rng(seed)
    return SkeletonFrame(source="cam0", seq=7, t_us=1_000_000, host_us=5, layout="canonical22",
                         bodies=[Body(i, rng.normal(size=(joints, 3)).astype(np.float32),
                                      rng.uniform(size=joints).astype(np.float32))
                                 for i in range(n_bodies)])


def test_skeleton_round_trip_keeps_arrays_exact():
    f = skel()
    g = decode(encode(f))
    assert isinstance(g, SkeletonFrame)
    assert (g.source, g.seq, g.t_us, g.host_us, g.layout) == ("cam0", 7, 1_000_000, 5,
                                                             "canonical22")
    for a, b in zip(f.bodies, g.bodies):
        assert a.body_id == b.body_id
        np.testing.assert_array_equal(a.joints, b.joints)
        np.testing.assert_array_equal(a.confidence, b.confidence)
        assert b.joints.dtype == np.float32


def test_arrays_travel_as_raw_bytes_not_float_lists():
    d = msgpack.unpackb(encode(skel(1)), raw=False)
    j = d["bodies"][0]["j"]
    assert j["dt"] == "<f4" and j["sh"] == [22, 3] and isinstance(j["b"], bytes)
    assert len(j["b"]) == 22 * 3 * 4


def test_other_messages_round_trip():
    msgs = [
        GaitEvent(source="s", seq=1, t_us=2, host_us=3, track=4, side="right", kind="foot_off",
                  event_us=123, method="classical", confidence=0.5),
        GaitCycle(source="s", seq=1, t_us=2, host_us=3, track=1, side="left", start_us=10,
                  end_us=20, metrics={"cadence_spm": 110.0, "step_width_m": None},
                  flags=["low_confidence"], anomaly={"subject": 1.2}, session="x", subject="p1"),
        Alert(source="alerts", seq=1, t_us=2, host_us=3, alert_id="a-1", rule="slow",
              severity="critical", state="raised", text="speed 0.6 m/s", track=2, value=0.6),
        Status(source="w", seq=1, t_us=2, host_us=3, process="w", role="worker", uptime_s=1.5,
               counters={"received": 10}, latency_ms={"p50": 0.3}, state={"camera": "online"}),
        SessionControl(source="kiosk", seq=1, t_us=2, host_us=3, action="start", session="K-1",
                       subject="P-0042", camera="cam", height_m=1.72, age_y=67,
                       assistive_device="cane"),
        SessionControl(source="worker", seq=2, t_us=2, host_us=3, action="ended", session="K-1"),
    ]
    for m in msgs:
        assert decode(encode(m)) == m


def session_dict(**change):
    d = msgpack.unpackb(encode(SessionControl(source="kiosk", seq=1, t_us=2, host_us=3,
                                              session="K-1", subject="P-1", height_m=1.7)))
    d.update(change)
    return msgpack.packb(d)


@pytest.mark.parametrize("change, reason", [
    ({"action": "pause"}, "session.action: 'pause' is not one of"),
    ({"session": ""}, "empty session id"),
    ({"height_m": 17.0}, "height_m: 17.0 m outside"),  # centimetres where metres belong
    ({"age_y": -3}, "age_y: -3.0 years outside"),
    ({"subject": 5}, "session.subject: expected a string"),
])
def test_invalid_session_controls_say_what_is_wrong(change, reason):
    data = session_dict(**change)
    assert _decode_typed(data) is None  # the typed step refuses it too, never looser
    with pytest.raises(WireError, match=reason):
        decode(data)


def test_session_control_without_the_optional_values():
    m = decode(session_dict(height_m=None))
    assert (m.height_m, m.age_y, m.assistive_device) == (None, None, "")
    assert _decode_checked(session_dict(height_m=None)) == m


def test_nan_metric_becomes_none_on_the_wire():
    c = GaitCycle(source="s", seq=1, t_us=2, host_us=3, metrics={"speed_mps": math.nan})
    assert decode(encode(c)).metrics == {"speed_mps": None}


def test_image_travels_beside_its_header():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    f = ImageFrame(source="cam", seq=1, t_us=1, host_us=1, width=5, height=4, encoding="bgr8",
                   image=img)
    header = encode(f)
    assert len(header) < 200  # the pixels are not inside the msgpack
    g = decode(header, image=memoryview(img).cast("B"))
    np.testing.assert_array_equal(g.array(), img)
    with pytest.raises(WireError, match="expected 60"):
        decode(header, image=b"\0" * 59)
    with pytest.raises(WireError, match="without its pixel frame"):
        decode(header)


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: d.update(v=99), "schema version 99"),
    (lambda d: d.update(type="bogus"), "unknown message type"),
    (lambda d: d.pop("src"), "missing field 'src'"),
    (lambda d: d.update(seq="7"), "seq: expected an integer"),
    (lambda d: d["bodies"][0]["j"].update(sh=[21, 3]), "data bytes for shape"),
    (lambda d: d["bodies"][0]["j"].update(dt=">f4"), "not allowed"),
    (lambda d: d["bodies"][0]["j"].update(
        b=np.full((22, 3), np.nan, np.float32).tobytes()), "NaN"),
    (lambda d: d["bodies"][0]["c"].update(b=np.full(22, 2.0, np.float32).tobytes()),
     "outside \\[0, 1\\]"),
    (lambda d: d["bodies"][0]["j"].update(
        b=np.full((22, 3), 5000.0, np.float32).tobytes()), "beyond 1 km"),
    (lambda d: d["bodies"][0]["j"].update(
        b=np.full((22, 3), np.inf, np.float32).tobytes()), "infinite"),
    (lambda d: d.update(bodies=[d["bodies"][0]] * 17), "17 bodies"),
])
def test_invalid_skeletons_say_what_is_wrong(mutate, reason):
    d = msgpack.unpackb(encode(skel(1)), raw=False)
    mutate(d)
    with pytest.raises(WireError, match=reason):
        decode(msgpack.packb(d, use_bin_type=True))


def test_oversized_and_truncated_messages_are_rejected():
    with pytest.raises(WireError, match="exceeds"):
        decode(b"\x80" * (MAX_MESSAGE_BYTES + 1))
    data = encode(skel())
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(WireError):
            decode(data[:cut])


VALID = [encode(skel(1)), encode(GaitEvent(source="s", seq=1, t_us=1, host_us=1))]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=512),
    st.tuples(st.sampled_from(VALID), st.integers(0, 400), st.binary(max_size=8)).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + len(t[2]):]),
    st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
                 | st.binary(max_size=16),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                      max_size=6),
                 max_leaves=20).map(lambda o: msgpack.packb(o, use_bin_type=True)),
))
def test_fuzz_decode_raises_only_wire_error(data):
    try:
        decode(data)
    except WireError:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "v", "src", "seq", "t", "host", "layout",
                                        "bodies", "track", "side", "kind", "ev", "method", "conf",
                                        "metrics", "flags", "anomaly", "start", "end"]),
                       st.none() | st.integers(-3, 3) | st.text(max_size=5) | st.floats()
                       | st.lists(st.integers(-9, 2**40), max_size=3) | st.dictionaries(
                           st.text(max_size=3), st.floats() | st.none(), max_size=3)),
       st.sampled_from(["skeleton", "gait_event", "gait_cycle", "alert", "status", "image"]))
def test_fuzz_well_formed_headers_with_wrong_fields(d, mtype):
    d = {"type": mtype, "v": 1, "src": "x", "seq": 1, "t": 1, "host": 1, **d}
    try:
        decode(msgpack.packb(d, use_bin_type=True))
    except WireError:
        pass
