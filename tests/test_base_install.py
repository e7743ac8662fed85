"""The base install (no extras) runs every command it can and names the extra for the rest.

Each command runs in a fresh interpreter in which the optional packages cannot be found (an
import hook answers ModuleNotFoundError for them, as an interpreter without them does)."""

import json
import subprocess
import sys

import pytest

from conftest import REPO
from deploy.cli import COMMANDS

OPTIONAL = ("cv2", "mediapipe", "torch", "onnx", "pyk4a", "paho", "psycopg", "pyarrow",
            "tensorrt", "gaitkit")
WITHOUT_EXTRAS = f"""
import sys


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


sys.meta_path.insert(0, NotInstalled())
"""


def base(*args, timeout=120):
    code = WITHOUT_EXTRAS + "from deploy.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("command", [name for name, _, _ in COMMANDS if name != "proc"])
def test_every_command_shows_its_help_without_the_extras(command):
    p = base(*command.split(), "--help")
    assert p.returncode == 0, p.stderr[-1500:]
    assert "usage: gaitstream " + command in p.stdout


@pytest.mark.parametrize("trial", ["c3d_gait_lab_samples/trials/KTK_walk.c3d",
                                   "opensim_walking_trc_grf/subject01_walk1.trc"])
def test_analyze_a_lab_recording_without_the_extras(shared_data, trial):
    p = base("analyze", str(shared_data / trial), "--json")
    assert p.returncode == 0, p.stderr[-1500:]
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(rep["cycles"]) >= 2


def test_a_video_asks_for_the_webcam_extra_by_name(shared_data):
    p = base("analyze", str(shared_data / "video_walking_sports2d" / "sports2d_demo.mp4"))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        'error: the webcam source needs cv2: pip install "gaitstream[webcam]"']


def test_the_anomaly_scorer_runs_on_onnxruntime_without_torch(shared_data):
    code = (WITHOUT_EXTRAS +
            "from capture.readers import load_recording\n"
            "from inference.analyze import skeleton_frames\n"
            "from inference.worker import Worker, WorkerConfig\n"
            "from streams.node import StatusReporter\n"
            "from streams.schema import GaitCycle\n"
            f"rec = load_recording({str(shared_data / 'c3d_gait_lab_samples/trials/KTK_walk.c3d')!r})\n"
            "w = Worker(WorkerConfig(anomaly=True), None, StatusReporter('w', 'worker'))\n"
            "for f in skeleton_frames(rec):\n"
            "    w.handle(f)\n"
            "w.expire(force=True)\n"
            "print([c.anomaly.get('subject') for c in w.outputs if isinstance(c, GaitCycle)])\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-1500:]
    scores = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(scores) >= 2 and all(0.9 < s < 1.1 for s in scores)


@pytest.mark.parametrize("args, message", [
    (["replay", "/nonexistent/walk.gst"], "error: no stream file at /nonexistent/walk.gst"),
    (["run", "/nonexistent/edge.toml"], "error: /nonexistent/edge.toml: "),
    (["analyze", "/nonexistent/walk.c3d"], "error: /nonexistent/walk.c3d: no such file"),
])
def test_a_missing_file_is_one_line_not_a_traceback(args, message):
    p = base(*args)
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith(message)


def test_a_file_that_is_no_stream_file_is_named(tmp_path):
    bad = tmp_path / "notes.gst"
    bad.write_text("not a recording")
    p = base("replay", str(bad))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"error: {bad}: not a gaitstream stream file (bad magic)"]


def test_the_event_peer_asks_for_its_extra_by_name(shared_data):
    p = base("eval", "events", str(shared_data / "opensim_walking_trc_grf"), "--peer",
             "intellevent")
    assert p.returncode == 2
    assert 'pip install "gaitstream[peers]"' in p.stdout and "Traceback" not in p.stderr
