"""``gaitstream bench gait-transformer --json`` at very small sizes: the figures the issue asks
for are all there and consistent with each other (the speed itself is the bench's to print)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


def test_bench_gait_transformer_json_has_every_figure():
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "bench", "gait-transformer",
                        "--json", "--seconds", "4", "--tracks", "2", "--repeats", "1",
                        "--rounds", "1", "--batches", "1,4"], cwd=REPO, capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["threads"] == 1

    # windows/s and latency per backend and batch size; both CPU backends run here
    for name in ("onnxruntime-cpu", "torch-cpu"):
        b = res["backends"][name]
        assert b["available"], b
        assert [r["batch"] for r in b["batches"]] == [1, 4]
        for r in b["batches"]:
            assert r["latency_ms"] > 0
            assert r["windows_per_s"] == pytest.approx(r["batch"] * 1000 / r["latency_ms"])
            assert r["ms_per_frame"] == pytest.approx(r["ms_per_window"] / 15)
    for name in ("onnxruntime-cuda", "torch-cuda", "tensorrt-fp16"):  # reported either way
        b = res["backends"][name]
        assert b["available"] or b["reason"]

    lv = res["live_vs_naive"]
    assert lv["input_frames"] == 120 and lv["walk_s"] == pytest.approx(4.0)
    assert [r["tracks"] for r in lv["live"]] == [1, 2]
    one, two = lv["live"]
    # the headline figures are those of one track alone
    assert lv["speedup_live_vs_naive"] == one["speedup_vs_naive"]
    assert lv["one_30hz_track_core_pct"] == one["core_pct_per_track"]
    for r in lv["live"]:
        assert r["speedup_vs_naive"] == pytest.approx(lv["naive_ms_per_frame"]
                                                      / r["ms_per_frame"])
        assert r["core_pct_all_tracks"] == pytest.approx(r["tracks"] * r["core_pct_per_track"])
        assert r["push_latency_ms_p99"] >= r["push_latency_ms_p50"] > 0
        assert r["windows"] >= r["batches"] >= 1
    assert two["windows"] == 2 * one["windows"]
    # one track as the worker runs it: its cycle records cost on top of the events
    wc = lv["with_cycles"]
    assert wc["cycles"] >= 1
    assert wc["core_pct_per_track"] == pytest.approx(wc["ms_per_frame"] * 3.0)  # 30 Hz
    assert lv["reference_events"] >= 8
    assert lv["matched_events"] >= 0.9 * lv["reference_events"]
    assert 0 <= lv["event_diff_ms_median"] <= lv["event_diff_ms_max"]
    # the human-readable report carries the same headline
    assert "one 30 Hz track alone" in p.stdout and "goal >= 20x" in p.stdout
