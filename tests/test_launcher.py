"""The launcher over real processes: restart with backoff, clean stop, no orphan left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.schema import Status
from streams.transport import Subscriber

from conftest import REPO, free_port


def pids_running(config: Path) -> list[int]:
    """Processes whose command line names this configuration (the launcher's children)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            state = (d / "stat").read_text().split()[2]
        except OSError:
            continue
        if state != "Z" and b"proc" in cmd and str(config).encode() in cmd:
            found.append(int(d.name))
    return found


def write_config(tmp_path: Path) -> tuple[Path, str]:
    """A pipeline with a recorder and a log sink whose database cannot be opened (its path is a
    folder, as when a disk is not mounted yet): a crash at every start that a restart may cure,
    unlike a configuration error, which stops the pipeline at once (test_preflight)."""
    launcher_ep = f"tcp://127.0.0.1:{free_port()}"
    (tmp_path / "not-mounted").mkdir()
    cfg = tmp_path / "pipe.toml"
    cfg.write_text(f"""
[pipeline]
name = "t"
data_dir = "{tmp_path}"

[launcher]
publish = "{launcher_ep}"
backoff_initial_s = 0.2
backoff_max_s = 1.0
stop_timeout_s = 5.0

[[process]]
name = "rec"
kind = "record"
subscribe = ["tcp://127.0.0.1:{free_port()}"]
[process.options]
path = "rec.gst"

[[process]]
name = "broken"
kind = "sink"
subscribe = ["tcp://127.0.0.1:{free_port()}"]
[process.options]
path = "not-mounted"
""")
    return cfg, launcher_ep


def wait_for(pred, timeout_s=20.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


def test_restarts_crashed_processes_and_stops_cleanly(tmp_path):
    cfg, launcher_ep = write_config(tmp_path)
    sub = Subscriber([launcher_ep], ["status"])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    launcher = subprocess.Popen([sys.executable, "-m", "deploy.cli", "run", str(cfg),
                                 "--logs", str(tmp_path / "logs")], cwd=REPO, env=env)
    try:
        rec = wait_for(lambda: pids_running(cfg))
        assert rec, "the record process never started"
        first = rec[0]
        assert wait_for(lambda: (tmp_path / "rec.gst").exists())
        os.kill(first, signal.SIGKILL)  # a crash: the launcher must bring it back
        assert wait_for(lambda: [p for p in pids_running(cfg) if p != first])

        def restarts():
            r = sub.recv(200)
            if r and isinstance(r[1], Status):
                c = r[1].counters
                if c.get("restarts.rec", 0) >= 1 and c.get("restarts.broken", 0) >= 2:
                    return c
            return None
        counters = wait_for(restarts)
        assert counters, "launcher status never showed the restarts"
        log = (tmp_path / "logs" / "broken.log").read_text()
        assert "unable to open database file" in log
    finally:
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(15) == 0
    assert wait_for(lambda: not pids_running(cfg), 5.0), "a child outlived the launcher"


def test_launcher_killed_hard_leaves_no_orphan(tmp_path):
    cfg, _ = write_config(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    launcher = subprocess.Popen([sys.executable, "-m", "deploy.cli", "run", str(cfg)],
                                cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: pids_running(cfg))
    launcher.kill()
    launcher.wait()
    assert wait_for(lambda: not pids_running(cfg), 10.0), "children survived SIGKILL of launcher"
