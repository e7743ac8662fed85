"""The kiosk process: the live view of the preview, plus the session that staff start and end
from the page, the live numbers, the camera's state in words, and the walk report at the end.

HTTP (on the preview's server, 127.0.0.1 unless the configuration allows a remote bind):
``/`` the page (Jinja2; its CSS and JS are static files of this package: no CDN, no build step),
``/state.json`` what the page shows (polled every second), ``POST /session/start`` (the form:
pseudonym, optional height, age, walking aid; the pseudonym travels in the body, never in a URL
that servers log), ``POST /session/end``, ``POST /session/new`` (back to the form),
``/report.html`` and ``/report.pdf`` (the report of the session just ended, as
``gaitstream report`` makes it), and the preview's ``/stream.mjpg``.

On the wire: the kiosk publishes SessionControl ``start`` / ``end`` on its publish endpoint, again
every second until the worker has answered (a worker that starts or restarts late still hears
it). The worker's ``ended`` answer follows the session's last records on the worker's stream,
and the log stores it after them: the report is made once the log holds it.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2

from deploy.kiosk.session import (ASSISTIVE_DEVICES, PSEUDONYM_PATTERN, CameraWatch, FormError,
                                  LiveWalk, Patient, check_form, new_session_id)
from deploy.report.data import ReportError, load_report, session_info
from deploy.report.render import context, print_pdf, render_html
from sinks.preview import MjpegServer, PreviewComposer
from streams.node import StatusReporter
from streams.schema import (GaitCycle, GaitEvent, ImageFrame, SessionControl, SkeletonFrame,
                            Status, monotonic_us)
from streams.transport import Publisher, Subscriber

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = {"/static/kiosk.css": ("text/css; charset=utf-8", HERE / "static" / "kiosk.css"),
          "/static/kiosk.js": ("text/javascript; charset=utf-8", HERE / "static" / "kiosk.js")}
RESEND_S = 1.0  # a request not yet answered by the worker goes out again this often
PHASES = ("idle", "running", "ending", "report")


class Kiosk:
    """The session state machine (idle → running → ending → report → idle) and the HTTP
    application; thread-safe (the HTTP threads and the process loop share it)."""

    def __init__(self, db: str, *, name: str = "kiosk", camera: str = "",
                 source_kind: str | None = None, pseudonym_pattern: str = PSEUDONYM_PATTERN,
                 end_timeout_s: float = 30.0, normals: str | None = None):
        self.db, self.name, self.camera = db, name, camera
        self.source_kind, self.pattern = source_kind, pseudonym_pattern
        self.end_timeout_s, self.normals = end_timeout_s, normals
        self.lock = threading.Lock()
        self.phase = "idle"
        self.session = ""
        self.patient: Patient | None = None
        self.live: LiveWalk | None = None
        self.cam = CameraWatch()
        self.message = ""  # what went wrong at the end, in words
        self.started_answered = False
        self.ended_answered = False
        self.ending_since = 0.0
        self.report_html: bytes | None = None
        self.report_pdf: bytes | None = None
        self.reports = 0  # the page reloads its report frame when this changes
        self.outbox: list[SessionControl] = []
        self._seq = 0
        self._last_sent = -math.inf
        self._tmp = tempfile.TemporaryDirectory(prefix="gaitstream-kiosk-")
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        self.page = env.get_template("kiosk.html.j2").render(
            devices=ASSISTIVE_DEVICES).encode()

    # ------------------------------------------------------------------ the wire

    def _control(self, action: str) -> SessionControl:
        self._seq += 1
        p = self.patient or Patient("")
        return SessionControl(source=self.name, seq=self._seq, t_us=monotonic_us(),
                              host_us=monotonic_us(), action=action, session=self.session,
                              subject=p.subject, camera=self.camera, height_m=p.height_m,
                              age_y=p.age_y, assistive_device=p.assistive_device)

    def due(self, now: float) -> list[SessionControl]:
        """The requests to publish now, once a second: the start for as long as the session
        runs (a worker that restarts must hear it again, and a worker ends a session whose
        kiosk has gone quiet), the end until the worker has answered it."""
        with self.lock:
            if now - self._last_sent < RESEND_S:
                return []
            if self.phase == "running":
                out = [self._control("start")]
            elif self.phase == "ending" and not self.ended_answered:
                out = [self._control("end")]
            else:
                return []
            self._last_sent = now
            return out

    def on_message(self, msg: Any, now: float) -> None:
        with self.lock:
            if isinstance(msg, (ImageFrame, SkeletonFrame)):
                self.cam.on_frame(now, isinstance(msg, ImageFrame))
            elif isinstance(msg, Status):
                self.cam.on_status(now, msg)
            elif isinstance(msg, (GaitCycle, GaitEvent)) and self.live is not None:
                self.live.on_record(msg)
            elif isinstance(msg, SessionControl) and msg.session == self.session:
                if msg.action == "started":
                    self.started_answered = True
                elif msg.action == "ended":
                    self.ended_answered = True

    # ------------------------------------------------------------------ the session

    def start(self, form: dict[str, str]) -> tuple[int, dict]:
        patient = check_form(form, self.pattern)  # FormError: the caller answers 400
        with self.lock:
            if self.phase in ("running", "ending"):
                return 409, {"ok": False, "errors": {"": "A session is already running: end it "
                                                         "first"}}
            self.session, self.patient = new_session_id(), patient
            self.live = LiveWalk(self.session)
            self.phase, self.message = "running", ""
            self.started_answered = self.ended_answered = False
            self.report_html = self.report_pdf = None
            self._last_sent = -math.inf
            log.info("session %s started", self.session)  # the pseudonym is not logged
            return 200, {"ok": True, "session": self.session}

    def end(self) -> tuple[int, dict]:
        with self.lock:
            if self.phase != "running":
                return 409, {"ok": False, "errors": {"": "No session is running"}}
            self.phase, self.ending_since = "ending", time.monotonic()
            self._last_sent = -math.inf
            log.info("session %s ending", self.session)
            return 200, {"ok": True, "session": self.session}

    def new(self) -> tuple[int, dict]:
        """Back to the form: after a report, or after an end that got no report in time (the
        records stay in the log; staff must not be stuck on a page that waits)."""
        with self.lock:
            if self.phase == "running" or (self.phase == "ending" and not self.message):
                return 409, {"ok": False, "errors": {"": "End the running session first"}}
            self.phase, self.session, self.patient, self.live = "idle", "", None, None
            self.message = ""
            return 200, {"ok": True}

    def poll_end(self, now: float) -> None:
        """While ending: once the log holds the worker's ``ended`` (after the session's last
        records), make the report; say so when it does not come."""
        with self.lock:
            if self.phase != "ending":
                return
            session, since = self.session, self.ending_since
        try:
            info = session_info(self.db, session)
        except Exception as e:  # noqa: BLE001 - any engine's error: said on the page, retried
            info = None
            why = f"the log cannot be read ({e})"
        else:
            why = "the log has not recorded the session's end"
        if info is None or info.ended_wall_us is None:
            if now - since > self.end_timeout_s:
                with self.lock:
                    self.message = (f"No report after {self.end_timeout_s:.0f} s: {why}. Are "
                                    "the worker and the log running? The session's records stay "
                                    f"in the log: gaitstream report {session} makes it later.")
            return
        try:
            d = load_report(self.db, session)
            html = render_html(context(d, source_kind=self.source_kind,
                                       normals_path=self.normals)).encode()
        except Exception as e:  # noqa: BLE001 - said on the page; the kiosk keeps running
            log.exception("session %s: the report could not be made", session)
            with self.lock:
                self.message = f"The report could not be made: {e}"
            return
        with self.lock:
            if self.session == session:
                self.report_html, self.report_pdf = html, None
                self.phase, self.message = "report", ""
                self.reports += 1
                log.info("session %s: report ready", session)

    def pdf(self) -> bytes:
        """The report printed by headless Chromium, made once per report."""
        with self.lock:
            html, pdf, session = self.report_html, self.report_pdf, self.session
        if html is None:
            raise ReportError("no report yet: end a session first")
        if pdf is None:
            page = Path(self._tmp.name) / f"report-{session}.html"
            out = page.with_suffix(".pdf")
            page.write_bytes(html)
            print_pdf(page, out)
            pdf = out.read_bytes()
            with self.lock:
                if self.report_html is html:
                    self.report_pdf = pdf
        return pdf

    def state(self, now: float, pictures: int) -> dict:
        with self.lock:
            ok, words = self.cam.words(now)
            p = self.patient
            return {
                "phase": self.phase, "session": self.session,
                "patient": asdict(p) if p is not None else None,
                "worker_answered": self.started_answered,
                "camera": {"ok": ok, "words": words, "pictures": self.cam.pictures},
                "pictures": pictures,
                "live": self.live.numbers() if self.live is not None else None,
                "message": self.message, "reports": self.reports,
            }

    # ------------------------------------------------------------------ HTTP

    def app(self, server: MjpegServer) -> Any:
        def handle(method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
            if method == "GET":
                if path in ("/", "/index.html"):
                    return 200, "text/html; charset=utf-8", self.page
                if path in STATIC:
                    ctype, f = STATIC[path]
                    return 200, ctype, f.read_bytes()
                if path == "/state.json":
                    return _json(200, self.state(time.monotonic(), server.counters["published"]))
                if path == "/report.html":
                    html = self.report_html
                    return ((200, "text/html; charset=utf-8", html) if html is not None
                            else (404, "text/plain", b"no report yet\n"))
                if path == "/report.pdf":
                    try:
                        return 200, "application/pdf", self.pdf()
                    except ReportError as e:
                        return 404, "text/plain", f"{e}\n".encode()
                return None
            if path == "/session/start":
                form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                                      keep_blank_values=True).items()}
                try:
                    return _json(*self.start(form))
                except FormError as e:
                    return _json(400, {"ok": False, "errors": e.errors})
            if path == "/session/end":
                return _json(*self.end())
            if path == "/session/new":
                return _json(*self.new())
            return None

        return handle

    def close(self) -> None:
        self._tmp.cleanup()


def _json(code: int, obj: dict) -> tuple[int, str, bytes]:
    return code, "application/json", json.dumps(obj).encode()


def run_kiosk(kiosk: Kiosk, sub: Subscriber, server: MjpegServer, composer: PreviewComposer,
              stop: threading.Event, pub: Publisher | None,
              status: StatusReporter | None = None) -> None:
    """Until ``stop``: frames to the live view, records to the live numbers, requests out to
    the worker, and the report made once the log has the session's end."""
    last_pub = -math.inf
    next_check = 0.0
    while not stop.is_set():
        now = time.monotonic()
        for msg in kiosk.due(now):
            if pub is not None:
                pub.send(msg)
        if now >= next_check:
            kiosk.poll_end(now)
            next_check = now + 0.5
        if status is not None:
            status.absorb(sub)
            status.counters.update(composer.counters)
            status.state["phase"] = kiosk.phase
            status.state["watchers"] = str(server.watchers)
            status.maybe_publish(pub)
        got = sub.recv(100)
        if got is None:
            continue
        msg = got[1]
        kiosk.on_message(msg, time.monotonic())
        img = None
        if isinstance(msg, ImageFrame):
            img = composer.on_image(msg)
        elif isinstance(msg, SkeletonFrame):
            img = composer.on_skeleton(msg)
        if img is not None and (server.watchers or now - last_pub >= 1.0):
            server.publish(img)
            last_pub = now


# the kiosk's own options; the rest are the live view's (PreviewComposer's)
KIOSK_OPTIONS = {"host", "port", "log", "camera", "source_kind", "pseudonym_pattern",
                 "end_timeout_s", "normals"}


def log_path(cfg: Any, options: dict[str, Any]) -> str:
    """The log the report reads: ``log`` (a SQLite file or a postgresql:// URL), else the
    configuration's log sink's own."""
    if options.get("log"):
        target = str(options["log"])
        return target if "://" in target else str(cfg.resolve(target))
    for p in cfg.processes:
        if p.kind == "sink" and p.options.get("sink") == "log":
            if p.options.get("store") == "postgresql":
                return str(p.options["dsn"])
            if p.options.get("store", "sqlite") == "sqlite":
                return str(cfg.resolve(p.options.get("path", "gaitstream.db")))
    raise ValueError("a kiosk needs a log to make its reports from: give options.log, or a "
                     "log sink (sqlite or postgresql) in the configuration")


def make_kiosk(cfg: Any, proc: Any) -> tuple[Kiosk, dict[str, Any], dict[str, Any]]:
    """The Kiosk of a [[process]] of kind kiosk, the live view's options, and host/port."""
    o = dict(proc.options)
    where = {"host": o.pop("host", "127.0.0.1"), "port": int(o.pop("port", 8090))}
    db = log_path(cfg, o)
    o.pop("log", None)
    mine = {k: o.pop(k) for k in list(o) if k in KIOSK_OPTIONS}
    return Kiosk(db, name=proc.name, **mine), o, where
