"""The kiosk as staff use it, in a real headless Chromium: the pipeline runs as real processes
(`gaitstream run`: the simulated walker as the camera, the worker, the kiosk, the log sink on
SQLite), the session is started by typing into the page's form and clicking, the walker's live
numbers appear, the session is ended by a click, and the report that appears holds the numbers
of the log; its PDF (printed by Chromium) holds the same table. A kiosk with no camera says so
in words. Screenshots at 1280x800 (the kiosk's screen) and 768x1024 (an upright tablet) are
saved under /tmp/kiosk-shots/ and measured: no scrollbar, no text over other text, no text
cut off or off the screen.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from _cdp import Browser, chromium_path
from conftest import REPO, free_port, stop_process, wait_for
from deploy.report.data import PARAMETERS
from streams.schema import UNTRUSTED_FLAGS

SHOTS = Path("/tmp/kiosk-shots")
SIZES = ((1280, 800), (768, 1024))


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.fail("Chromium is needed for the kiosk's browser tests: apt-get install chromium "
                    "(.ci/run does)")
    return path


def config(tmp: Path, *, camera: bool = True) -> tuple[Path, int]:
    """A kiosk pipeline on free ports: the simulated walker (walking a 6 m walkway up and down
    at twice real time) as its camera unless ``camera`` is False."""
    p = {k: free_port() for k in ("cam", "worker", "kiosk", "http")}
    cam = f"tcp://127.0.0.1:{p['cam']}"
    worker = f"tcp://127.0.0.1:{p['worker']}"
    kiosk = f"tcp://127.0.0.1:{p['kiosk']}"
    capture = f"""
[[process]]
name = "cam"
kind = "capture"
publish = "{cam}"
[process.options]
source = "sim"
speed = 2.0
walkway_m = 6.0
seed = 3
""" if camera else ""
    text = f"""
[pipeline]
name = "kiosk-test"
data_dir = "{tmp / 'data'}"
session = "walkway"
{capture}
[[process]]
name = "worker"
kind = "worker"
subscribe = ["{cam}", "{kiosk}"]
publish = "{worker}"
[process.options]
analysis = "classical"

[[process]]
name = "kiosk"
kind = "kiosk"
subscribe = ["{cam}", "{worker}"]
publish = "{kiosk}"
[process.options]
port = {p['http']}
source_kind = "depth_camera"

[[process]]
name = "log"
kind = "sink"
subscribe = ["{worker}"]
topics = ["gait/", "session"]
[process.options]
sink = "log"
path = "kiosk.db"
"""
    path = tmp / "kiosk.toml"
    path.write_text(text)
    return path, p["http"]


def run_pipeline(cfg: Path, tmp: Path) -> subprocess.Popen:
    log = open(tmp / "pipeline.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "deploy.cli", "run", str(cfg)], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)


def answering(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "state.json", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def check_layout(b: Browser, name: str) -> None:
    """Screenshots at both sizes, saved to look at, and measured in the page."""
    for w, h in SIZES:
        b.size(w, h)
        b.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        b.screenshot(SHOTS / f"{name}-{w}x{h}.png")
        lay = b.layout()
        assert not lay["scrollbars"], (name, w, h, lay)
        assert lay["texts"] > 3, lay
        assert not lay["overlaps"], (name, w, h, lay["overlaps"])
        assert not lay["clipped"], (name, w, h, lay["clipped"])
        assert not lay["offscreen"], (name, w, h, lay["offscreen"])
    b.size(*SIZES[0])


def patient_stats(db: Path, session: str) -> tuple[str, list[sqlite3.Row], list[sqlite3.Row]]:
    """From the log itself: the patient's strides (the track with the most strides) and the
    trusted ones."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM cycles WHERE session = ? ORDER BY start_us",
                        [session]).fetchall()
    conn.close()
    by: dict[tuple, list] = {}
    for r in rows:
        by.setdefault((r["source"], r["track"], r["run"]), []).append(r)
    mine = max(by.values(), key=lambda cs: (len(cs), cs[-1]["end_us"] - cs[0]["start_us"]))
    trusted = [r for r in mine if not set(json.loads(r["flags"])) & UNTRUSTED_FLAGS]
    return mine[0]["subject"], mine, trusted


def report_cells(b: Browser, metric: str) -> list[str]:
    return b.eval("[...document.getElementById('report-frame').contentDocument"
                  f".querySelectorAll('#p-{metric} td')].map(td => td.textContent.trim())")


def test_a_session_started_and_ended_through_the_page(chromium, tmp_path):
    cfg, port = config(tmp_path)
    url = f"http://127.0.0.1:{port}/"
    pipeline = run_pipeline(cfg, tmp_path)
    b = None
    try:
        assert wait_for(lambda: answering(url), 60), (tmp_path / "pipeline.log").read_text()
        b = Browser(chromium, tmp_path / "profile")
        b.size(*SIZES[0])
        b.goto(url)
        assert b.wait("document.getElementById('camera').className === 'ok'", 30), \
            b.text("#camera")
        assert "Camera on" in b.text("#camera")
        check_layout(b, "kiosk-idle")

        # the form refuses what is not right, field by field, and starts nothing
        b.click("#start")
        assert "required" in b.wait("document.getElementById('err-pseudonym').innerText")
        b.type("#pseudonym", "Jane Doe")
        b.type("#height_m", "172")
        b.click("#start")
        assert "not a pseudonym" in b.wait(
            "document.getElementById('err-pseudonym').innerText.includes('not a pseudonym')"
            " && document.getElementById('err-pseudonym').innerText")
        assert "centimetres" in b.text("#err-height_m")
        check_layout(b, "kiosk-form-errors")
        assert b.eval("document.body.dataset.phase") == "idle"

        # started as staff would: pseudonym, height, age, walking aid, a click
        b.type("#pseudonym", "P-0042")
        b.type("#height_m", "1.72")
        b.type("#age_y", "67")
        b.choose("#assistive_device", "cane")
        b.click("#start")
        assert b.wait("document.body.dataset.phase === 'running'", 10)
        session = b.wait("(document.getElementById('session-shown').innerText.match("
                         "/session (\\S+)/) || [])[1]", 10)
        assert session and "P-0042" not in session
        assert b.text("#patient-shown") == "P-0042"
        # the walker's live numbers appear on the page
        # (until 8 strides are usable: at least 2 a side for an SD in the report)
        assert b.wait("Number((document.getElementById('trusted-line').innerText"
                      ".match(/\\d+/) || [0])[0]) >= 8 && "
                      "document.getElementById('cadence').innerText !== '–'", 90), \
            b.text("#live")
        steps = int(b.text("#steps"))
        cadence = float(b.text("#cadence"))
        speed = float(b.text("#speed"))
        assert steps >= 8 and 80 <= cadence <= 150 and 0.5 <= speed <= 2.0, (steps, cadence,
                                                                              speed)
        check_layout(b, "kiosk-walking")

        b.click("#end")
        assert b.wait("document.body.dataset.phase === 'report'", 40), b.text("#panel")
        assert b.wait("(() => { const d = document.getElementById('report-frame')"
                      ".contentDocument; return !!(d && d.getElementById('p-cadence_spm')); })()",
                      20)
        check_layout(b, "kiosk-report")

        # the report's numbers are those of the log: the patient's trusted strides per side
        db = tmp_path / "data" / "kiosk.db"
        subject, mine, trusted = patient_stats(db, session)
        assert subject == "P-0042"
        assert len(trusted) >= 8
        frame = "document.getElementById('report-frame').contentDocument"
        assert b.eval(f"{frame}.getElementById('subject').textContent") == "P-0042"
        assert b.eval(f"{frame}.getElementById('height').textContent") == "1.72 m"
        assert b.eval(f"{frame}.getElementById('device').textContent") == "cane"
        compared = 0
        for metric, _, _, spec in PARAMETERS:
            cells = report_cells(b, metric)
            for k, side in enumerate(("left", "right")):
                v = np.array([r[metric] for r in trusted
                              if r["side"] == side and r[metric] is not None])
                if len(v) < 2:
                    continue
                assert cells[3 * k] == format(v.mean(), spec), (metric, side, cells)
                assert cells[3 * k + 1] == format(v.std(ddof=1), spec), (metric, side, cells)
                compared += 1
        assert compared >= 12
        # the session as the worker confirmed it, with what staff entered
        conn = sqlite3.connect(db)
        ctl = {r[0]: r[1:] for r in conn.execute(
            "SELECT action, subject, height_m, age_y, assistive_device FROM session_controls "
            "WHERE session = ?", [session])}
        outside = conn.execute("SELECT COUNT(*) FROM cycles WHERE session != ? AND subject = ?",
                               [session, "P-0042"]).fetchone()[0]
        conn.close()
        assert ctl == {"started": ("P-0042", 1.72, 67.0, "cane"),
                       "ended": ("P-0042", 1.72, 67.0, "cane")}
        assert outside == 0  # the pseudonym is on the session's strides only
        # the live numbers the page ended on are the log's too: the same track, every stride
        key = (mine[0]["source"], mine[0]["track"], mine[0]["run"])
        conn = sqlite3.connect(db)
        strikes = conn.execute(
            "SELECT COUNT(*) FROM events WHERE session = ? AND source = ? AND track = ? AND "
            "run = ? AND kind = 'foot_strike' AND method = 'classical'",
            [session, *key]).fetchone()[0]
        conn.close()
        with urllib.request.urlopen(url + "state.json", timeout=5) as r:
            live = json.load(r)["live"]
        pooled = lambda m: np.mean([r[m] for r in trusted if r[m] is not None])  # noqa: E731
        assert (live["strides"], live["trusted"], live["steps"]) == (len(mine), len(trusted),
                                                                     strikes)
        assert live["cadence_spm"] == pytest.approx(pooled("cadence_spm"), rel=1e-9)
        assert live["speed_mps"] == pytest.approx(pooled("speed_mps"), rel=1e-9)

        # the PDF: printed, rendered to pixels, and holding the same table
        with urllib.request.urlopen(url + "report.pdf", timeout=120) as r:
            pdf = r.read()
        (tmp_path / "report.pdf").write_bytes(pdf)
        from pypdf import PdfReader
        import pypdfium2 as pdfium

        text = " ".join(p.extract_text() for p in PdfReader(tmp_path / "report.pdf").pages)
        for metric in ("cadence_spm", "speed_mps", "stride_length_m", "stance_pct"):
            cells = report_cells(b, metric)
            assert re.search(r"\s+".join(map(re.escape, cells[:4])), text), (metric, cells)
        assert "P-0042" in text
        img = pdfium.PdfDocument(tmp_path / "report.pdf")[0].render(scale=1.2).to_pil()
        img.save(SHOTS / "kiosk-report-pdf-page1.png")
        assert (np.asarray(img.convert("L")) < 128).mean() > 0.01  # text on the page

        # back to the form for the next patient
        b.click("#new")
        assert b.wait("document.body.dataset.phase === 'idle'", 10)
    finally:
        if b is not None:
            b.close()
        stop_process(pipeline, 20)


def test_a_missing_camera_is_said_in_words(chromium, tmp_path):
    cfg, port = config(tmp_path, camera=False)
    url = f"http://127.0.0.1:{port}/"
    kiosk = subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config", str(cfg),
                              "--name", "kiosk"], cwd=REPO,
                             stdout=open(tmp_path / "kiosk.log", "wb"), stderr=subprocess.STDOUT)
    b = None
    try:
        assert wait_for(lambda: answering(url), 60), (tmp_path / "kiosk.log").read_text()
        b = Browser(chromium, tmp_path / "profile")
        b.size(*SIZES[0])
        b.goto(url)
        said = b.wait("document.getElementById('view-msg').innerText", 10)
        assert said.startswith("No camera: nothing has come from it"), said
        assert b.text("#camera") == said
        assert b.eval("document.getElementById('camera').className") == "bad"
        check_layout(b, "kiosk-no-camera")
    finally:
        if b is not None:
            b.close()
        stop_process(kiosk, 20)
