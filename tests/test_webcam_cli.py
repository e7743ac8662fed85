"""The webcam commands as a user runs them (``python -m deploy.cli``, a separate process):
``gaitstream bench webcam --json`` on a handful of frames (the JSON it promises, consistent
counts; the speed figures are measured, never asserted), and ``gaitstream analyze VIDEO --json``
on the real walking video, which must find her gait cycles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import REPO
from test_preview_browser import trimmed_video

VIDEO = "video_walking_sports2d/sports2d_demo.mp4"


def run_cli(*args: str, timeout: float = 300) -> tuple[int, str, dict]:
    p = subprocess.run([sys.executable, "-m", "deploy.cli", *args], cwd=REPO,
                       capture_output=True, text=True, timeout=timeout)
    lines = p.stdout.strip().splitlines()
    assert lines, p.stderr[-3000:]
    return p.returncode, p.stdout, json.loads(lines[-1])


def test_bench_webcam_json_smoke(shared_data):
    n = 8
    rc, out, res = run_cli("bench", "webcam", "--json", "--frames", str(n), "--skip-native",
                           "--video", str(shared_data / VIDEO))
    assert rc == 0, out
    assert {"video", "frames", "cpus", "load_avg_1min_before", "load_avg_1min_after",
            "pose_640x480", "transport_640x480", "end_to_end", "keeps_up_30fps",
            "verdict"} <= set(res)
    assert "pose_native" not in res  # --skip-native
    assert res["frames"] == n and res["cpus"] >= 1
    pose = res["pose_640x480"]
    assert pose["frames"] == n and 0 <= pose["with_pose"] <= n and pose["model_runs"] >= n
    assert set(pose["ms"]) == {"mean", "p50", "p95", "max"}
    assert 0 < pose["ms"]["p50"] <= pose["ms"]["p95"] <= pose["ms"]["max"]
    assert np.isclose(pose["fps_capacity"], 1000 / pose["ms"]["mean"])
    tr = res["transport_640x480"]
    assert tr["frames"] == n and tr["received"] + tr["lost"] == n and tr["rejected"] == 0
    assert np.isclose(tr["mb_per_s"], 640 * 480 * 3 * 30 / 1e6)
    e2e = res["end_to_end"]
    assert e2e["offered"] == n and 0 <= e2e["processed"] <= n
    assert e2e["dropped"] == n - e2e["processed"] and e2e["errors"] == 0
    assert isinstance(res["keeps_up_30fps"], bool)
    assert res["keeps_up_30fps"] == (e2e["processed"] >= 0.97 * n)
    assert "frames/s" in res["verdict"] and "ms/frame" in res["verdict"]
    assert "pose_640x480: mean" in out and "transport 640x480" in out  # the printed figures


def test_analyze_video_json_finds_her_cycles(shared_data, tmp_path):
    """1.4-6.9 s of the video, half size (she walks through the whole piece; a shorter file
    keeps the test fast). Bounds: she walks about five strides in side view at a relaxed pace;
    adult free walking has a cadence of roughly 90-125 steps/min and a step length of
    0.55-0.8 m (slower walkers lower): 75-130 and 0.45-0.9 leave room for a monocular
    estimate without admitting a wrong scale or a missed step (which would halve the cadence or
    double the step)."""
    clip = trimmed_video(shared_data / VIDEO, tmp_path / "walk.mp4", 1.4, 6.9, 0.5)
    rc, out, rep = run_cli("analyze", str(clip), "--json")
    assert rc == 0, out
    assert rep["layout"] == "mediapipe33" and rep["frames"] >= 150
    assert abs(rep["rate_hz"] - 30) < 0.1
    strikes = {s: [e for e in rep["events"] if e["side"] == s and e["kind"] == "foot_strike"]
               for s in ("left", "right")}
    assert all(len(v) >= 2 for v in strikes.values()), rep["events"]
    assert len(rep["cycles"]) >= 4
    good = [c for c in rep["cycles"] if c["trusted"]]
    assert len(good) >= 2 and {c["side"] for c in good} == {"left", "right"}
    bout = max(rep["bouts"], key=lambda b: b["trusted_cycles"])
    cadence = bout["metrics"]["cadence_spm"]["mean"]
    step = bout["metrics"]["step_length_m"]["mean"]
    assert 75 < cadence < 130, cadence
    assert 0.45 < step < 0.9, step
    assert Path(rep["file"]) == clip
