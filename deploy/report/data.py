"""What a walk report says, read from the log: one session, the patient's track, its strides'
measures per side, which were trusted and why the others were not, the clinical indices, and
the same subject's earlier sessions.

Numbers come from the log's cycle rows as the worker wrote them; the report computes only
summaries of them (mean, SD, CV over the trusted strides of one side), so that a number on the
page can be traced to rows a clinician could export (``gaitstream export``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from sinks.log.sql import connect_log_readonly
from streams.schema import CYCLE_FLAGS, CYCLE_METRICS, UNTRUSTED_FLAGS, flag_words

SIDES = ("left", "right")
# the spatiotemporal table, in the order a gait lab prints it: (metric, label, unit, format)
PARAMETERS: tuple[tuple[str, str, str, str], ...] = (
    ("cadence_spm", "Cadence", "steps/min", ".1f"),
    ("speed_mps", "Speed", "m/s", ".2f"),
    ("stride_time_s", "Stride time", "s", ".2f"),
    ("step_time_s", "Step time", "s", ".2f"),
    ("stride_length_m", "Stride length", "m", ".2f"),
    ("step_length_m", "Step length", "m", ".2f"),
    ("step_width_m", "Step width", "m", ".2f"),
    ("stance_pct", "Stance", "% cycle", ".1f"),
    ("swing_pct", "Swing", "% cycle", ".1f"),
    ("single_support_pct", "Single support", "% cycle", ".1f"),
    ("double_support_pct", "Double support", "% cycle", ".1f"),
)
GVS_VARIABLES: tuple[tuple[str, str], ...] = (
    ("pelvis_tilt", "Pelvic tilt"), ("pelvis_obliquity", "Pelvic obliquity"),
    ("pelvis_rotation", "Pelvic rotation"), ("hip_flexion", "Hip flexion"),
    ("hip_adduction", "Hip adduction"), ("hip_rotation", "Hip rotation"),
    ("knee_flexion", "Knee flexion"), ("ankle_dorsiflexion", "Ankle dorsiflexion"),
    ("foot_progression", "Foot progression"),
)


class ReportError(ValueError):
    """The report cannot be made as asked; the message says why."""


@dataclass
class Cycle:
    source: str
    track: int
    run: str
    subject: str
    side: str
    start_us: int
    end_us: int
    method: str
    wall_us: int
    metrics: dict[str, float | None]
    flags: list[str]

    @property
    def trusted(self) -> bool:
        return not (set(self.flags) & UNTRUSTED_FLAGS)

    @property
    def why_not(self) -> str:
        return flag_words([f for f in self.flags if f in UNTRUSTED_FLAGS])

    @property
    def notes(self) -> str:
        return flag_words([f for f in self.flags if f not in UNTRUSTED_FLAGS])


@dataclass
class Stat:
    n: int
    mean: float | None
    sd: float | None
    cv_pct: float | None


def stat(values: list[float | None]) -> Stat:
    """Mean, sample SD and CV (SD / mean, %) of the values that exist."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return Stat(0, None, None, None)
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if len(v) > 1 else None
    cv = 100.0 * sd / abs(mean) if sd is not None and mean != 0 else None
    return Stat(len(v), mean, sd, cv)


@dataclass
class TrackSummary:
    source: str
    track: int
    run: str
    subject: str
    cycles: int
    trusted: int
    start_us: int
    end_us: int

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.source, self.track, self.run)


@dataclass
class Trend:
    session: str
    first_wall_us: int
    trusted: int
    speed_mps: float | None
    cadence_spm: float | None
    gdi: dict[str, float | None]
    gps: dict[str, float | None]


@dataclass
class SessionInfo:
    """What staff entered when they started the session at the kiosk (the log's
    ``session_controls``), and when the worker confirmed its start and end."""

    subject: str
    camera: str
    height_m: float | None
    age_y: float | None
    assistive_device: str
    started_wall_us: int
    ended_wall_us: int | None


@dataclass
class ReportData:
    session: str
    db: str
    first_wall_us: int
    last_wall_us: int
    patient: TrackSummary | None
    others: list[TrackSummary]
    method: str
    cycles: list[Cycle]  # the patient's, of ``method``, in time order
    stats: dict[str, dict[str, Stat]]  # metric → side → Stat over trusted cycles
    reasons: list[tuple[str, int]]  # untrusted flag words → cycles carrying them
    gdi: dict[str, Stat]
    gps: dict[str, Stat]
    gvs: dict[str, dict[str, Stat]]  # variable → side → Stat
    trends: list[Trend]
    subject_given: str | None = None
    methods_left_out: dict[str, int] = field(default_factory=dict)
    info: SessionInfo | None = None  # None: not a kiosk session (or a log from before them)

    @property
    def trusted(self) -> list[Cycle]:
        return [c for c in self.cycles if c.trusted]

    def trusted_by_side(self) -> dict[str, int]:
        return {s: sum(c.trusted for c in self.cycles if c.side == s) for s in SIDES}

    @property
    def no_trusted_why(self) -> str | None:
        """Why there is nothing to summarise, in words; None when there is."""
        if self.patient is None:
            return (f"session {self.session} has no gait cycle in the log: nobody walked far "
                    "enough in view for a full stride to be measured")
        if self.trusted:
            return None
        parts = [f"{w} ({n} of {len(self.cycles)})" for w, n in self.reasons]
        return (f"None of the {len(self.cycles)} strides measured could be trusted, so no "
                f"parameter is summarised. Why: {'; '.join(parts)}. A straight walk of a few "
                "metres at the walker's own pace, fully in the camera's view, gives strides "
                "that can be used.")


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


CYCLE_SELECT = ("source, track, run, subject, side, start_us, end_us, method, wall_us, "
                + ", ".join(CYCLE_METRICS) + ", extra_metrics, flags")


def _cycle(row: tuple) -> Cycle:
    source, track, run, subject, side, start, end, method, wall = row[:9]
    n = len(CYCLE_METRICS)
    metrics: dict[str, float | None] = dict(zip(CYCLE_METRICS, row[9:9 + n]))
    metrics.update(json.loads(row[9 + n]) if row[9 + n] else {})
    return Cycle(source, int(track), run, subject, side, int(start), int(end), method,
                 int(wall), metrics, json.loads(row[10 + n]) if row[10 + n] else [])


def _read(db: str, sql: str, params: list[Any]) -> list[tuple]:
    conn, adapt = connect_log_readonly(db, ReportError)
    try:
        return list(conn.execute(adapt(sql), params).fetchall())
    finally:
        conn.close()


def _tracks(cycles: list[Cycle]) -> list[TrackSummary]:
    out: dict[tuple[str, int, str], TrackSummary] = {}
    for c in cycles:
        k = (c.source, c.track, c.run)
        t = out.get(k)
        if t is None:
            t = out[k] = TrackSummary(c.source, c.track, c.run, c.subject, 0, 0, c.start_us,
                                      c.end_us)
        t.cycles += 1
        t.trusted += c.trusted
        t.start_us, t.end_us = min(t.start_us, c.start_us), max(t.end_us, c.end_us)
    return list(out.values())


def _index_stats(cycles: list[Cycle]) -> tuple[dict, dict, dict]:
    gdi = {s: stat([c.metrics.get("gdi") for c in cycles if c.side == s]) for s in SIDES}
    gps = {s: stat([c.metrics.get("gps") for c in cycles if c.side == s]) for s in SIDES}
    gvs = {v: {s: stat([c.metrics.get(f"gvs_{v}") for c in cycles if c.side == s])
               for s in SIDES} for v, _ in GVS_VARIABLES}
    return gdi, gps, gvs


def session_info(db: str, session: str) -> SessionInfo | None:
    """The kiosk's record of ``session``; None when it was not started at a kiosk."""
    conn, adapt = connect_log_readonly(db, ReportError)
    try:
        version = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        if version < 5:  # a log from before kiosk sessions were kept
            return None
        rows = conn.execute(adapt(
            "SELECT action, subject, camera, height_m, age_y, assistive_device, wall_us FROM "
            "session_controls WHERE session = ?"), [session]).fetchall()
    finally:
        conn.close()
    by = {r[0]: r for r in rows}
    start = by.get("started")
    if start is None:
        return None
    end = by.get("ended")
    return SessionInfo(start[1], start[2], start[3], start[4], start[5], int(start[6]),
                       None if end is None else int(end[6]))


def load_report(db: str, session: str, subject: str | None = None) -> ReportData:
    """The report of ``session`` in the log ``db``: the track of ``subject`` (any subject when
    None) with the most strides is the patient's; every other track is listed as kept apart."""
    rows = _read(db, f"SELECT {CYCLE_SELECT} FROM cycles WHERE session = ? ORDER BY start_us, id",
                 [session])
    sess = _read(db, "SELECT first_wall_us, last_wall_us FROM sessions WHERE session = ?",
                 [session])
    info = session_info(db, session)
    if info is not None:  # the session's own bounds, also when nobody walked in it
        sess = [(info.started_wall_us, info.ended_wall_us or (sess[0][1] if sess
                                                               else info.started_wall_us))]
    if not rows and not sess:
        known = [r[0] for r in _read(db, "SELECT session FROM sessions ORDER BY first_wall_us",
                                     [])]
        raise ReportError(f"no session {session!r} in {db}; sessions there: "
                          f"{', '.join(known[-20:]) or 'none'}")
    cycles = [_cycle(r) for r in rows]
    first, last = sess[0] if sess else (min(c.wall_us for c in cycles),
                                        max(c.wall_us for c in cycles))
    tracks = _tracks(cycles)
    mine = [t for t in tracks if subject is None or t.subject == subject]
    if subject is not None and not mine and tracks:
        raise ReportError(f"subject {subject!r} has no cycle in session {session}; subjects "
                          f"there: {', '.join(sorted({t.subject for t in tracks}))}")
    # The longest walker is the patient: at a kiosk the patient walks the whole session, a
    # bystander crosses the view. Strides, then time in view, decide.
    patient = max(mine, key=lambda t: (t.cycles, t.end_us - t.start_us), default=None)
    others = [t for t in tracks if patient is None or t.key != patient.key]
    pc = [c for c in cycles if patient is not None and (c.source, c.track, c.run) == patient.key]
    # A worker running both analyses writes each stride twice (one per method): summarise one,
    # the classical one when there, so that no stride counts twice.
    methods = Counter(c.method for c in pc)
    method = "classical" if "classical" in methods else (methods.most_common(1)[0][0]
                                                        if methods else "classical")
    left_out = {m: n for m, n in methods.items() if m != method}
    pc = [c for c in pc if c.method == method]
    trusted = [c for c in pc if c.trusted]
    stats = {m: {s: stat([c.metrics.get(m) for c in trusted if c.side == s]) for s in SIDES}
             for m, *_ in PARAMETERS}
    reasons = Counter(CYCLE_FLAGS.get(f, f) for c in pc if not c.trusted
                      for f in dict.fromkeys(c.flags) if f in UNTRUSTED_FLAGS)
    gdi, gps, gvs = _index_stats(trusted)
    trends = (_trends(db, patient.subject, session, method)
              if patient is not None and patient.subject else [])
    return ReportData(session, db, int(first), int(last), patient, others, method, pc, stats,
                      reasons.most_common(), gdi, gps, gvs, trends, subject, left_out, info)


def _trends(db: str, subject: str, session: str, method: str) -> list[Trend]:
    """Every session of ``subject`` in the log (this one included, to draw it in its place),
    summarised over the trusted strides of ``method`` of the subject's longest track there (the
    rule that picks this session's patient: a second person who got the same configured
    subject id is kept out of the trend as out of the report)."""
    rows = _read(db, f"SELECT session, {CYCLE_SELECT} FROM cycles WHERE subject = ? AND "
                 "method = ? ORDER BY wall_us, id", [subject, method])
    by: dict[str, list[Cycle]] = {}
    for r in rows:
        by.setdefault(r[0], []).append(_cycle(r[1:]))
    if set(by) <= {session}:
        return []  # no earlier session: no trend to draw
    out = []
    for s, cs in by.items():
        longest = max(_tracks(cs), key=lambda t: (t.cycles, t.end_us - t.start_us))
        cs = [c for c in cs if (c.source, c.track, c.run) == longest.key]
        tr = [c for c in cs if c.trusted]
        gdi, gps, _ = _index_stats(tr)
        out.append(Trend(s, min(c.wall_us for c in cs), len(tr),
                         stat([c.metrics.get("speed_mps") for c in tr]).mean,
                         stat([c.metrics.get("cadence_spm") for c in tr]).mean,
                         {k: v.mean for k, v in gdi.items()}, {k: v.mean for k, v in gps.items()}))
    return sorted(out, key=lambda t: t.first_wall_us)
