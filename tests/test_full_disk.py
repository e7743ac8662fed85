"""The alert sink on a disk that fills up (issue 19, item 7), on a real full filesystem: a small
tmpfs mounted in a mount namespace of the test's own (``unshare -rm``, so no mount is left
behind), filled to ENOSPC. Alerts raised then must reach the outbox file (so that a kill -9 does
not lose them), the sink must say "disk full" once a while instead of an error per loop turn, a
sink restarted on the full disk must wait instead of crash-looping, and it must recover when
space is freed.

The scenario runs as two processes inside the namespace (``python test_full_disk.py PHASE``); the
first ends with SIGKILL, as the fault campaign did."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLOW = {"name": "slow", "kind": "metric", "metric": "speed_mps", "op": "below", "raise": 0.8,
        "clear": 0.9, "window": 1, "severity": "warning"}


# -- inside the namespace -----------------------------------------------------------------------

class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def _config():
    from sinks.alerts.sink import AlertsConfig
    # deliveries go to a port nothing listens on: every alert stays pending in the outbox
    return AlertsConfig.from_toml({
        "outbox": "outbox.db", "retry_initial_s": 0.05, "retry_max_s": 0.2, "reserve_mb": 1,
        "output": [{"type": "webhook", "url": "http://127.0.0.1:9/alerts", "timeout_s": 0.2}],
        "rule": [SLOW]})


def _cycle(track, speed, i):
    from streams.schema import GaitCycle
    return GaitCycle(source="cam", seq=i, t_us=i, host_us=time.monotonic_ns() // 1000,
                     track=track, side="left", start_us=i * 1_000_000 + track,
                     end_us=i * 1_000_000 + track + 900_000, metrics={"speed_mps": speed})


def _fill(path: Path) -> int:
    """Write to ``path`` until the filesystem says ENOSPC; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                n += f.write(b"\xa5" * 65536)
        except OSError as e:
            assert e.errno == 28, e  # ENOSPC
    while True:  # the last partial chunk: fill the remainder byte-exact
        try:
            with open(path, "ab", buffering=0) as f:
                n += f.write(b"\xa5" * 512)
        except OSError:
            return n


def _stored(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(DISTINCT alert_id || state) FROM outbox").fetchone()[0]
    finally:
        conn.close()


def phase_fill(d: Path, out: Path) -> None:
    from sinks.alerts.sink import AlertSink
    from streams.node import StatusReporter
    lines = Lines()
    logging.getLogger().addHandler(lines)
    logging.getLogger().setLevel(logging.INFO)
    status = StatusReporter("alerts", "sink")
    sink = AlertSink("alerts", _config(), d / "outbox.db", status)
    r: dict = {"reserve_at_start": sink.reserve.present}
    _fill(d / "filler1")
    for i, tr in enumerate(range(1, 11)):  # ten raised, five of them cleared: 15 alerts
        sink.handle("gait", _cycle(tr, 0.5, i))
    for i, tr in enumerate(range(1, 6)):
        sink.handle("gait", _cycle(tr, 1.2, 100 + i))
    r["stored_after_15"] = _stored(d / "outbox.db")
    r["held_after_15"] = len(sink.unsaved)
    r["reserve_after_15"] = sink.reserve.present
    _fill(d / "filler2")  # the reserve's room is used up as well
    for i, tr in enumerate(range(11, 14)):
        sink.handle("gait", _cycle(tr, 0.5, 200 + i))
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:  # the sink's loop turns, 50 ms apart, for 1.5 s
        sink.tick()
        time.sleep(0.05)
    r["stored_after_18"] = _stored(d / "outbox.db")
    r["held_after_18"] = len(sink.unsaved)
    r["status"] = {"outbox": status.state.get("outbox"),
                   "held_alerts": status.counters.get("held_alerts"),
                   "reserve_released": status.counters.get("reserve_released")}
    r["lines"] = lines.lines
    out.write_text(json.dumps(r))
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no shutdown code runs


def phase_restart(d: Path, out: Path) -> None:
    from sinks.process import _open_alert_sink
    from streams.node import StatusReporter
    lines = Lines()
    logging.getLogger().addHandler(lines)
    logging.getLogger().setLevel(logging.INFO)
    status = StatusReporter("alerts", "sink")
    stop = threading.Event()
    freed = threading.Event()

    def free_space():
        for f in ("filler1", "filler2"):
            (d / f).unlink()
        freed.set()
    timer = threading.Timer(1.0, free_space)
    timer.start()
    t0 = time.monotonic()
    sink = _open_alert_sink("alerts", _config(), status, None, stop, lambda p: d / p)
    r: dict = {"opened_after_s": time.monotonic() - t0, "opened_before_space": not freed.is_set(),
               "restored": sorted(tr for (_, _), a in sink.engine.active.items()
                                  for tr in [a.track])}
    timer.join()
    sink.handle("gait", _cycle(30, 0.5, 300))  # the disk has room: stored at once
    r["stored_after_restart"] = _stored(d / "outbox.db")
    sink._next_reserve_check = 0.0
    sink.tick()
    r["reserve_rewritten"] = sink.reserve.present
    r["lines"] = lines.lines
    sink.close()
    out.write_text(json.dumps(r))


# -- the test --------------------------------------------------------------------------------

def test_alerts_raised_on_a_full_disk_are_stored_and_a_restart_waits_for_space(tmp_path):
    unshare = shutil.which("unshare")
    assert unshare, "util-linux unshare is needed to mount a small filesystem for this test"
    mnt, res = tmp_path / "mnt", tmp_path / "res"
    mnt.mkdir()
    res.mkdir()
    py, me = sys.executable, Path(__file__).resolve()
    script = (f"mount -t tmpfs -o size=4m,mode=0700 tmpfs {mnt} || exit 90; "
              f"{py} {me} fill {mnt} {res / 'fill.json'}; "
              f"{py} {me} restart {mnt} {res / 'restart.json'}")
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    p = subprocess.run([unshare, "-rm", "sh", "-c", script], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode != 90, f"could not mount a tmpfs in a new namespace: {p.stderr}"
    assert (res / "fill.json").exists(), p.stderr[-3000:]
    fill = json.loads((res / "fill.json").read_text())
    assert fill["reserve_at_start"]
    # the 15 alerts raised once the disk was full are in the outbox file, none only in memory
    assert fill["stored_after_15"] == 15 and fill["held_after_15"] == 0, fill
    assert not fill["reserve_after_15"]
    # with the reserve used up too, 3 more are held, retried with backoff, said as "disk full"
    assert fill["stored_after_18"] == 15 and fill["held_after_18"] == 3, fill
    assert fill["status"]["held_alerts"] == 3 and fill["status"]["reserve_released"] == 1
    assert fill["status"]["outbox"].startswith("disk full")
    errors = [ln for ln in fill["lines"] if ln.startswith("ERROR")]
    assert not any("no transaction is active" in ln for ln in fill["lines"]), errors
    said = [ln for ln in errors if "disk full" in ln]
    # one for the reserve, one for the held alerts: not one per 50 ms turn of the loop
    assert 2 <= len(said) <= 3, errors

    assert (res / "restart.json").exists(), p.stderr[-3000:]
    rs = json.loads((res / "restart.json").read_text())
    # the alerts raised before the kill are restored (tracks 6-10 still raised, 1-5 cleared)
    assert rs["restored"] == [6, 7, 8, 9, 10], rs
    assert rs["stored_after_restart"] == 16
    assert rs["reserve_rewritten"]
    if rs["opened_before_space"]:  # SQLite could open the current file on the full disk
        assert rs["opened_after_s"] < 1.0
    else:  # it waited for space, saying so, instead of dying
        assert any("disk full" in ln for ln in rs["lines"]), rs["lines"]
    assert p.returncode == 0, p.stderr[-3000:]



def test_alerts_settings_are_checked_by_type_naming_the_key():
    from sinks.alerts.sink import AlertsConfig
    base = {"output": [{"type": "stdout"}], "rule": [SLOW]}
    with pytest.raises(ValueError, match=r"\[alerts\]: reserve_mb = '8' is a str, expected float"):
        AlertsConfig.from_toml({**base, "reserve_mb": "8"})
    with pytest.raises(ValueError, match="reserve_mb must be between 0 and 1024"):
        AlertsConfig.from_toml({**base, "reserve_mb": -1})
    assert AlertsConfig.from_toml({**base, "reserve_mb": 0}).reserve_mb == 0


if __name__ == "__main__":
    {"fill": phase_fill, "restart": phase_restart}[sys.argv[1]](Path(sys.argv[2]),
                                                              Path(sys.argv[3]))
