"""`gaitstream demo`, the README's first command, end to end: real processes and sockets, the
simulated walker's known speed and cadence recovered, records in the SQLite log."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np

from capture.sim.source import SimSource
from deploy.config import load_config
from deploy.demo import alert_line, write_config
from streams.schema import Alert


def test_demo_runs_the_pipeline_and_recovers_the_walkers_gait(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "deploy.cli", "demo", "--duration", "16",
                           "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])

    # the walker the demo configured (same source options, same seed) and its true gait
    opts = dict(next(p for p in load_config(write_config(out)).processes
                     if p.kind == "capture").options)
    opts.pop("source")
    walker = SimSource("camera", **opts)
    params = walker.params[0]
    walker.close()

    assert summary["trusted_cycles"] >= 4, summary
    med = summary["median"]
    assert abs(med["speed_mps"] - params.speed_mps) < 0.1 * params.speed_mps
    # cadence and stride follow from speed (walk ratio); both plausible for an adult
    assert 95 < med["cadence_spm"] < 135
    assert np.isclose(med["stride_length_m"] * med["cadence_spm"] / 120, med["speed_mps"],
                      rtol=0.1)
    counters = summary["processes"]
    assert counters["worker"]["rejected"] == 0
    assert counters["worker"]["cycles"] == summary["cycles"]

    with sqlite3.connect(out / "demo.db") as db:
        n_cycles = db.execute("SELECT count(*) FROM cycles").fetchone()[0]
        n_events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert n_cycles == summary["cycles"]
    assert n_events == counters["worker"]["events"]
    assert (out / "demo.gst").stat().st_size > 0
    # clinical data: readable by its owner only
    for f in ("demo.db", "demo.gst", "alerts-outbox.db", "logs/worker.log"):
        assert (out / f).stat().st_mode & 0o777 == 0o600, f
    assert (out / "logs").stat().st_mode & 0o777 == 0o700

    # the console: measures only for trusted cycles, the others say in words why they are not
    # used; no launcher chatter; the files written and what to run next are named
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("    1 ")]
    assert len(rows) == summary["cycles"]
    untrusted = [r for r in rows if "not used: " in r]
    assert len(untrusted) == summary["cycles"] - summary["trusted_cycles"]
    assert not any("_" in r for r in rows)  # no internal flag names
    for r in rows:
        if r not in untrusted:
            cadence = float(r.split()[3])
            assert 60 < cadence < 160
    assert "started camera" not in proc.stdout + proc.stderr
    assert f"  demo.db        the log (SQLite)" in proc.stdout
    assert f"gaitstream export {out / 'demo.db'} --format csv" in proc.stdout


def test_an_alert_reads_as_a_line_on_the_console():
    a = Alert(source="alerts", seq=1, t_us=0, host_us=0, alert_id="slow_gait:1", state="raised",
              rule="slow_gait", severity="warning", text="speed_mps mean 0.79 below 0.8")
    assert alert_line(a) == "ALERT raised [warning] slow_gait: speed_mps mean 0.79 below 0.8"
