"""Kiosk sessions below the page: the start form's checks, the worker tagging a camera's tracks
with a session and answering after the records it concerns, and the report of such a session
keeping a bystander's strides apart from the patient's (the log is a real SQLite store)."""

from __future__ import annotations

import time

import pytest

from capture.sim.source import SimSource
from deploy.kiosk.session import CameraWatch, FormError, LiveWalk, check_form
from deploy.report.data import load_report
from inference.worker import Worker, WorkerConfig
from sinks.log.records import to_record
from sinks.log.sql import sqlite_store
from streams.node import StatusReporter
from streams.schema import Body, GaitCycle, GaitEvent, SessionControl, SkeletonFrame, Status


@pytest.mark.parametrize("form, field, words", [
    ({}, "pseudonym", "is required"),
    ({"pseudonym": "  "}, "pseudonym", "is required"),
    ({"pseudonym": "Jane Doe"}, "pseudonym", "no names, no spaces"),
    ({"pseudonym": "P-1", "height_m": "172"}, "height_m", "looks like centimetres"),
    ({"pseudonym": "P-1", "height_m": "tall"}, "height_m", "must be a number in m"),
    ({"pseudonym": "P-1", "age_y": "200"}, "age_y", "between 1 and 120 years"),
    ({"pseudonym": "P-1", "assistive_device": "jetpack"}, "assistive_device", "not one of"),
])
def test_the_start_form_names_what_is_wrong(form, field, words):
    with pytest.raises(FormError) as e:
        check_form(form)
    assert words in e.value.errors[field]


def test_the_start_form_takes_a_decimal_comma_and_leaves_out_what_is_not_known():
    p = check_form({"pseudonym": " P-0042 ", "height_m": "1,68", "age_y": "",
                    "assistive_device": "walker"})
    assert (p.subject, p.height_m, p.age_y, p.assistive_device) == ("P-0042", 1.68, None,
                                                                     "walker")


def test_the_camera_state_in_words():
    cam = CameraWatch()
    assert cam.words(0.0) == (False, "No camera: nothing has come from it. Is it plugged in, "
                                     "and is the pipeline running?")
    offline = Status(source="cam", seq=1, t_us=0, host_us=0, process="cam", role="capture",
                     state={"camera": "offline", "camera_error": "device 0 not found"})
    cam.on_status(1.0, offline)
    ok, words = cam.words(1.0)
    assert not ok and "disconnected (device 0 not found)" in words
    cam.on_status(2.0, Status(source="cam", seq=2, t_us=0, host_us=0, process="cam",
                              role="capture", state={"camera": "online"}))
    cam.on_frame(2.0, picture=True)
    assert cam.words(2.5) == (True, "Camera on")
    assert cam.words(9.0) == (False, "No picture for 7 s and the camera process is not "
                                     "answering: is the pipeline running?")


def walk(seconds: float) -> list[SkeletonFrame]:
    """The patient walking a 6 m walkway for ``seconds``, a bystander (body ids from 100)
    walking beside for the first third of it."""
    patient = SimSource("cam", seed=5, walkway_m=6.0, duration_s=seconds)
    other = SimSource("cam", seed=9, walkway_m=6.0, duration_s=seconds / 3)
    extra = {f.t_us: f.bodies for f in other.frames()}
    frames = []
    for f in patient.frames():
        f.bodies += [Body(b.body_id + 100, b.joints, b.confidence)
                     for b in extra.get(f.t_us, [])]
        frames.append(f)
    return frames


def control(action: str, camera: str = "cam", seq: int = 1) -> SessionControl:
    return SessionControl(source="kiosk", seq=seq, t_us=0, host_us=0, action=action,
                          session="K-1", subject="P-7", camera=camera, height_m=1.66, age_y=70,
                          assistive_device="cane")


def test_a_session_tags_the_cameras_tracks_and_the_report_keeps_the_bystander_apart(tmp_path):
    frames = walk(36.0)
    w = Worker(WorkerConfig.from_options({"sources": ["cam"]}, session="walkway"), None,
               StatusReporter("worker", "worker"))
    begin, end = len(frames) // 6, 5 * len(frames) // 6
    for i, f in enumerate(frames):
        if i == begin:
            w.handle(control("start", camera="cam9"))  # another worker's camera: not ours
            w.handle(control("start"))
            w.handle(control("start", seq=2))  # repeated every second until answered
        if i == end:
            w.handle(control("end"))
            w.handle(control("end", seq=2))  # a repeat is answered again, changes nothing
        w.handle(f)
    w.expire(force=True)
    out = w.outputs
    answers = [(k, m.action) for k, m in enumerate(out) if isinstance(m, SessionControl)]
    assert [a for _, a in answers] == ["started", "ended", "ended"]
    (started, _), (ended, _) = answers[0], answers[1]
    records = [(k, m) for k, m in enumerate(out) if isinstance(m, (GaitCycle, GaitEvent))]
    inside = [m for k, m in records if started < k < ended]
    assert inside and all((m.session, m.subject) == ("K-1", "P-7") for m in inside)
    outside = [m for k, m in records if not started < k < ended]
    assert outside and all(m.session == "walkway" and m.subject != "P-7" for m in outside)
    # the walkers were both tagged: a kiosk cannot tell who is who, the report can
    tracks = {m.track for m in inside if isinstance(m, GaitCycle)}
    assert any(t >= 100 for t in tracks) and any(t < 100 for t in tracks)

    # the live numbers on the page: the patient's track only
    live = LiveWalk("K-1")
    for m in inside:
        live.on_record(m)
    assert live.patient()[1] < 100 and live.numbers()["others"] >= 1

    store = sqlite_store(tmp_path / "log.db")
    store.write([to_record(m, 1_000_000 + k) for k, m in enumerate(out)
                 if to_record(m, 0) is not None])
    store.close()
    d = load_report(str(tmp_path / "log.db"), "K-1")
    assert d.patient.track < 100 and d.patient.subject == "P-7"
    assert d.others and all(t.track >= 100 for t in d.others)
    assert d.cycles and all(c.track == d.patient.track for c in d.cycles)
    patient_cycles = [m for m in inside if isinstance(m, GaitCycle)
                      and m.track == d.patient.track]
    assert len(d.cycles) == len(patient_cycles)
    assert (d.info.subject, d.info.height_m, d.info.age_y, d.info.assistive_device) == (
        "P-7", 1.66, 70.0, "cane")
    assert d.info.ended_wall_us is not None


def test_a_session_whose_kiosk_went_quiet_is_ended_by_the_worker():
    frames = walk(12.0)
    w = Worker(WorkerConfig.from_options({"session_timeout_s": 0.2}, session="walkway"), None,
               StatusReporter("worker", "worker"))
    half = len(frames) // 2
    w.handle(control("start"))
    for f in frames[:half]:
        w.handle(f)
    w.expire()  # heard from just now: still running
    assert w.sessions
    time.sleep(0.3)  # the kiosk stopped repeating its start
    w.expire()
    assert not w.sessions and w.status.counters["sessions_expired"] == 1
    answers = [k for k, m in enumerate(w.outputs) if isinstance(m, SessionControl)]
    assert [w.outputs[k].action for k in answers] == ["started", "ended"]
    for f in frames[half:]:
        w.handle(f)
    w.expire(force=True)
    ended = answers[1]
    before = [m for m in w.outputs[:ended] if isinstance(m, GaitCycle)]
    after = [m for m in w.outputs[ended:] if isinstance(m, GaitCycle)]
    assert before and all(m.session == "K-1" for m in before)
    assert after and all(m.session == "walkway" and m.subject != "P-7" for m in after)


def test_the_kiosk_refuses_another_sites_post_and_a_bad_form(tmp_path):
    import json
    import urllib.error
    import urllib.request

    from deploy.kiosk.app import Kiosk
    from sinks.preview import MjpegServer

    kiosk = Kiosk(str(tmp_path / "none.db"))
    server = MjpegServer("127.0.0.1", 0)
    server.app = kiosk.app(server)

    def post(path: str, data: bytes, **headers: str) -> tuple[int, bytes]:
        req = urllib.request.Request(server.url + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
    try:
        code, _ = post("session/start", b"pseudonym=P-1", Origin="http://evil.example")
        assert code == 403 and kiosk.phase == "idle"
        code, body = post("session/start", b"pseudonym=Jane+Doe&age_y=300")
        assert code == 400 and set(json.loads(body)["errors"]) == {"pseudonym", "age_y"}
        assert kiosk.phase == "idle"
        code, body = post("session/start", b"pseudonym=P-1",
                          Origin=server.url.rstrip("/"))
        assert code == 200 and kiosk.phase == "running" and kiosk.patient.subject == "P-1"
        assert post("session/start", b"pseudonym=P-2")[0] == 409  # one session at a time
        assert kiosk.due(0.0)[0].action == "start" and kiosk.due(0.5) == []  # once a second
        assert post("session/end", b"")[0] == 200 and kiosk.due(5.0)[0].action == "end"
    finally:
        server.close()
        kiosk.close()


def test_an_end_that_gets_no_report_says_why_and_lets_staff_go_on(tmp_path):
    from deploy.kiosk.app import Kiosk

    kiosk = Kiosk(str(tmp_path / "no-log-yet.db"), end_timeout_s=0.1)
    try:
        assert kiosk.start({"pseudonym": "P-1"})[0] == 200
        assert kiosk.end()[0] == 200
        assert kiosk.new()[0] == 409  # still waiting for the worker and the log
        kiosk.poll_end(time.monotonic())
        assert kiosk.message == ""
        kiosk.poll_end(time.monotonic() + 1.0)
        assert kiosk.message.startswith("No report after 0 s: the log cannot be read (no log "
                                        "database at ")
        assert f"gaitstream report {kiosk.session} makes it later" in kiosk.message
        assert kiosk.new() == (200, {"ok": True}) and kiosk.phase == "idle"
    finally:
        kiosk.close()
