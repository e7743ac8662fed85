"""A configuration error or a missing extra stops `gaitstream run` at start with one message per
problem, naming the key (and the right one when it is close) or the extra; a process that finds
such a problem once running exits for good instead of being restarted in a loop."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.config import load_config
from deploy.preflight import problems

from conftest import REPO, free_port
from test_base_install import base
from test_launcher import pids_running


def pipeline(tmp_path: Path, capture_options: str, *, extra: str = "",
             launcher: str | None = None) -> Path:
    cfg = tmp_path / "pipe.toml"
    launcher = launcher or f"tcp://127.0.0.1:{free_port()}"
    cfg.write_text(f"""
[pipeline]
name = "t"
data_dir = "{tmp_path}"

[launcher]
publish = "{launcher}"
backoff_initial_s = 0.2

[[process]]
name = "cam"
kind = "capture"
publish = "tcp://127.0.0.1:{free_port()}"
[process.options]
{capture_options}

[[process]]
name = "rec"
kind = "record"
subscribe = ["tcp://127.0.0.1:{free_port()}"]
[process.options]
path = "rec.gst"
{extra}""")
    return cfg


def run(cfg: Path, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.cli", "run", str(cfg), "--logs",
                           str(cfg.parent / "logs")], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_a_mistyped_option_stops_run_at_start_naming_the_right_key(tmp_path):
    cfg = pipeline(tmp_path, 'source = "sim"\nrate = 30')
    t0 = time.monotonic()
    p = run(cfg)
    assert p.returncode == 2 and time.monotonic() - t0 < 30
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("error: ") and "process 'cam' (capture)" in line
    assert "unknown key 'rate' (did you mean 'rate_hz'?)" in line
    assert not (tmp_path / "logs").exists() and not (tmp_path / "rec.gst").exists()


def test_every_problem_of_a_configuration_is_listed_at_once(tmp_path):
    cfg = pipeline(tmp_path, 'source = "fiel"\npath = "walk.c3d"', extra="""
[[process]]
name = "worker"
kind = "worker"
subscribe = ["tcp://127.0.0.1:1"]
[process.options]
analysis = "clasical"

[[process]]
name = "log"
kind = "sink"
subscribe = ["tcp://127.0.0.1:1"]
[process.options]
store = "sqlite"
bacth_ms = 5
""")
    found = problems(load_config(cfg))
    assert len(found) == 3
    assert "unknown source kind 'fiel' (did you mean 'file'?)" in found[0]
    assert "worker analysis 'clasical' not one of" in found[1]
    assert "unknown key 'bacth_ms' (did you mean 'batch_ms'?)" in found[2]


def test_a_missing_recording_is_named_and_relative_paths_use_the_data_folder(tmp_path,
                                                                            shared_data):
    cfg = pipeline(tmp_path, 'source = "file"\npath = "walk.c3d"')
    (found,) = problems(load_config(cfg))
    assert f"options.path: no such file {tmp_path / 'walk.c3d'}" in found
    shutil.copy(shared_data / "c3d_gait_lab_samples/trials/KTK_walk.c3d", tmp_path / "walk.c3d")
    assert problems(load_config(cfg)) == []


def test_the_shipped_replay_configuration_without_a_recording_says_what_to_do(tmp_path):
    # a copy of it where its data folder (../../gaitstream-demo) holds no demo recording
    where = tmp_path / "a" / "b"
    where.mkdir(parents=True)
    cfg = where / "replay.toml"
    cfg.write_text((REPO / "deploy/configs/replay.toml").read_text())
    p = run(cfg)
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert f"no such file {tmp_path / 'gaitstream-demo' / 'demo.gst'}" in line
    assert list(where.iterdir()) == [cfg]  # nothing written beside the configuration


def test_the_edge_box_configuration_on_the_base_install_names_the_extras():
    p = base("run", str(REPO / "deploy/configs/edge.toml"))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines)
    assert any("the MQTT alert output needs paho" in line
               and 'pip install "gaitstream[sinks]"' in line for line in lines)
    assert any("(capture)" in line and "Azure Kinect" in line for line in lines)


def test_a_process_failing_on_its_configuration_while_running_is_not_restarted(tmp_path):
    """What preflight cannot see (here a file that exists but is no recording) stops the
    pipeline the first time, with the reason in the process's log: no restart loop."""
    (tmp_path / "walk.c3d").write_bytes(b"not a c3d file")
    cfg = pipeline(tmp_path, 'source = "file"\npath = "walk.c3d"')
    t0 = time.monotonic()
    p = run(cfg)
    assert p.returncode == 2 and time.monotonic() - t0 < 30
    log = (tmp_path / "logs" / "cam.log").read_text()
    assert log.count("error: process 'cam' (capture): ") == 1 and "walk.c3d" in log
    assert "not restarted" in p.stderr
    assert not pids_running(cfg)


def test_a_port_already_in_use_is_named_before_anything_starts(tmp_path):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        cfg = pipeline(tmp_path, 'source = "sim"', launcher=f"tcp://127.0.0.1:{port}")
        (found,) = problems(load_config(cfg))
        assert f"[launcher].publish tcp://127.0.0.1:{port} is in use" in found
    finally:
        taken.close()
    assert problems(load_config(cfg)) == []


def test_a_paced_source_waiting_for_subscribers_stops_on_sigterm(tmp_path):
    """It waits up to 30 s for the worker to subscribe; SIGTERM used to be ignored until then."""
    import signal

    cam = f"tcp://127.0.0.1:{free_port()}"
    cfg = tmp_path / "pipe.toml"
    cfg.write_text(f"""
[pipeline]
data_dir = "{tmp_path}"

[[process]]
name = "cam"
kind = "capture"
publish = "{cam}"
[process.options]
source = "sim"

[[process]]
name = "worker"
kind = "worker"
subscribe = ["{cam}"]
""")
    p = subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config", str(cfg),
                          "--name", "cam"], cwd=REPO)  # the worker is never started
    time.sleep(3.0)  # importing and binding, then waiting for the worker
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0 and time.monotonic() - t0 < 5


def test_a_missing_curve_folder_or_key_refuses_to_start(tmp_path):
    cfg = pipeline(tmp_path, 'source = "sim"')
    text = cfg.read_text().replace('[process.options]\nsource = "sim"', f"""[process.curve]
secret_key_file = "{tmp_path / 'cam.key_secret'}"
authorized_dir = "{tmp_path / 'clients'}"
[process.options]
source = "sim\"""", 1)
    cfg.write_text(text)
    (found,) = problems(load_config(cfg))
    assert f"curve.secret_key_file: no such file {tmp_path / 'cam.key_secret'}" in found
    (tmp_path / "cam.key_secret").write_text("x")
    (found,) = problems(load_config(cfg))
    assert f"curve.authorized_dir: no such folder {tmp_path / 'clients'}" in found


@pytest.mark.parametrize("edit, message", [
    (('kind = "capture"', 'kind = "capture"\nallow_remote = "false"'),
     "allow_remote = 'false' is a str, expected bool"),
    (('kind = "record"', 'kind = "record"\ntopics = "gait/"'),
     "topics = 'gait/' is a str, expected list[str]"),
    (('backoff_initial_s = 0.2', 'backoff_initial_s = "fast"'),
     "backoff_initial_s = 'fast' is a str, expected float"),
    (('kind = "record"\n', 'kind = "record"\npublish = "tcp://127.0.0.1:99999"\n'),
     "port 99999 is outside 1-65535"),
])
def test_configuration_values_are_checked_by_type_at_start(tmp_path, edit, message):
    """allow_remote = "false" bound 0.0.0.0, topics = "gait/" became five one-letter prefixes,
    port 99999 bound 34463, backoff_initial_s = "fast" crashed the launcher later."""
    cfg = pipeline(tmp_path, 'source = "sim"')
    cfg.write_text(cfg.read_text().replace(*edit, 1))
    p = run(cfg)
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line and str(cfg) in line


def test_worker_option_types(tmp_path):
    cfg = pipeline(tmp_path, 'source = "sim"', extra="""
[[process]]
name = "worker"
kind = "worker"
subscribe = ["tcp://127.0.0.1:1"]
[process.options]
anomaly = "false"
""")
    (found,) = problems(load_config(cfg))
    assert "anomaly = 'false' is a str, expected bool" in found


def test_a_plaintext_link_beyond_the_machine_is_said_at_start(tmp_path):
    from deploy.preflight import warnings

    cfg = pipeline(tmp_path, 'source = "sim"')
    assert warnings(load_config(cfg)) == []
    cfg.write_text(cfg.read_text().replace('kind = "capture"', 'kind = "capture"\n'
                                           'allow_remote = true', 1))
    (w,) = warnings(load_config(cfg))
    assert "process 'cam' binds tcp://127.0.0.1:" in w and "without CURVE" in w
