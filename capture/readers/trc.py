"""OpenSim TRC marker files (tab-separated text; OpenSim Gait2392 and OpenCap lab sets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capture.readers.labelled import markers_to_recording
from capture.readers.marker_roles import site_names
from capture.readers.markers import strip_prefix
from capture.readers.recording import Recording, RecordingError

_UNIT_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}


def _cells(line: str) -> list[str]:
    """A row's cells: tab-separated as the format says; some writers use runs of spaces."""
    line = line.rstrip("\r\n")
    return line.split("\t") if "\t" in line else line.split()


def _header(keys_line: str, values_line: str) -> dict[str, str]:
    """The DataRate/NumMarkers/Units row pairs with the row under it. Writers leave empty
    fields (tabs with nothing between), trailing or not, in either row: pair names with values
    by position when both rows have the same cells, else the non-empty ones in order."""
    keys, vals = _cells(keys_line), _cells(values_line)
    pairs = zip(keys, vals)
    if len(keys) != len(vals):
        pairs = zip([k for k in keys if k.strip()], [v for v in vals if v.strip()])
    return {k.strip(): v.strip() for k, v in pairs if k.strip()}


def read_trc(path: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """(markers upper-case label -> (T,3) metres in the file's axes, time_s (T,), header facts)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise RecordingError(f"{path.name}: cannot read ({e})") from None
    if len(lines) < 6 or not lines[0].lstrip("\ufeff").startswith("PathFileType"):
        raise RecordingError(f"{path.name}: not a TRC file (no PathFileType header)")
    head = _header(lines[1], lines[2])
    try:
        rate = float(head["DataRate"])
        n_markers = int(head["NumMarkers"])
        units = head.get("Units", "mm").lower()
    except (KeyError, ValueError) as e:
        raise RecordingError(f"{path.name}: bad TRC header line 3 ({e})") from None
    if units not in _UNIT_SCALE:
        raise RecordingError(f"{path.name}: unknown units {units!r}")
    names = [x.strip() for x in _cells(lines[3])[2:] if x.strip()]
    if len(names) != n_markers:
        raise RecordingError(f"{path.name}: header says {n_markers} markers, "
                             f"the name row has {len(names)}")
    rows = []
    for ln, line in enumerate(lines[5:], start=6):
        if not line.strip():
            continue
        cells = _cells(line)
        row = np.full(2 + 3 * n_markers, np.nan)
        for i, cell in enumerate(cells[: len(row)]):
            cell = cell.strip()
            if cell:
                try:
                    row[i] = float(cell)
                except ValueError:
                    raise RecordingError(f"{path.name}: line {ln}: not a number: {cell!r}") \
                        from None
        rows.append(row)
    if not rows:
        raise RecordingError(f"{path.name}: no data rows")
    data = np.array(rows)
    time_s = data[:, 1]
    xyz = data[:, 2:].reshape(len(data), n_markers, 3) * _UNIT_SCALE[units]
    markers = {}
    for i, name in enumerate(names):
        m = xyz[:, i].copy()
        m[(m == 0).all(1)] = np.nan
        markers.setdefault(strip_prefix(name).upper(), m)  # "Matt:LHEE" is LHEE
    facts = {"file": path.name, "rate_hz": rate, "units": units, "n_frames": len(data),
             "header_num_frames": int(float(head.get("NumFrames", len(data))))}
    return markers, time_s, facts


def trc_times_us(time_s: np.ndarray, rate_hz: float) -> tuple[np.ndarray, str]:
    """Frame times: the file's Time column is often rounded to 1 ms (e.g. 0.017 at 60 Hz); when it
    agrees with start + i/rate within 1 ms the exact rate grid is used, else the column itself."""
    grid = time_s[0] + np.arange(len(time_s)) / rate_hz
    if np.all(np.isfinite(time_s)) and np.max(np.abs(grid - time_s)) <= 1e-3:
        return np.round(grid * 1e6).astype(np.int64), "Time column start + frame/DataRate"
    if not np.all(np.diff(time_s) > 0):
        raise RecordingError("TRC Time column is not strictly increasing")
    return np.round(time_s * 1e6).astype(np.int64), "Time column"


def load_trc(path: str | Path, *, lab_centres: bool = False,
             marker_names: dict[str, str] | None = None) -> Recording:
    """``marker_names``: a site's labels -> role codes (see marker_roles.site_names), added to
    a ``markers.toml`` beside the file."""
    path = Path(path)
    try:
        names = site_names(path, marker_names)
    except ValueError as e:
        raise RecordingError(str(e)) from None
    markers, time_s, facts = read_trc(path)
    try:
        t_us, how = trc_times_us(time_s, facts["rate_hz"])
    except RecordingError as e:
        raise RecordingError(f"{path.name}: {e}") from None
    meta = {"file": path.name, "units": facts["units"], "time_origin": how,
            "first_frame": 0}
    return markers_to_recording(path.stem, markers, t_us, facts["rate_hz"], meta,
                                lab_centres=lab_centres, site_names=names)
