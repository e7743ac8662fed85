"""analyze / plot / bench analysis commands, and stride times against lab-marked strides."""

import json
import subprocess
import sys

import pytest

from capture.readers import load_recording
from inference.analyze import analyze_recording
from inference.analysis.cycles import trusted
from inference.data.groundtruth import trial_truth

TRIALS = "c3d_gait_lab_samples/trials"


@pytest.mark.parametrize("name", ["C3DORG_s00_Vicon_pyCGM2_CGM24_Walking01", "KTK_walk",
                                  "BTK__PiG_Motion-FlatFoot-Hole"])
def test_stride_times_match_the_lab_marked_strides(shared_data, name):
    path = shared_data / TRIALS / f"{name}.c3d"
    rec = load_recording(path)
    res = analyze_recording(rec)
    truth = trial_truth(path)
    inside = (rec.t_us[0] + 300_000, rec.t_us[-1] - 300_000)  # as in eval events
    compared = 0
    for side in ("left", "right"):
        fs = [e.t_us for e in truth.events if e.side == side and e.kind == "foot_strike"
              and inside[0] <= e.t_us <= inside[1]]
        for a, b in zip(fs, fs[1:]):
            # our stride whose strikes lie within 100 ms of the lab's
            ours = [c for c in res.cycles if c.side == side and abs(c.start_us - a) < 100_000
                    and abs(c.end_us - b) < 100_000]
            assert len(ours) == 1 and trusted(ours[0]), (side, a / 1e6)
            # measured differences 3-44 ms (the lab's own marks disagree by that much)
            assert ours[0].metrics["stride_time_s"] == pytest.approx((b - a) / 1e6, abs=0.05)
            compared += 1
    assert compared >= 1


def test_analyze_cli_through_the_worker_path(shared_data):
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "analyze",
                        str(shared_data / TRIALS / "C3DORG_s00_Vicon_pyCGM2_CGM24_Walking01.c3d"),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(rep["events"]) == 18 and len(rep["cycles"]) == 7
    (bout,) = rep["bouts"]
    assert bout["trusted_cycles"] == 7
    cad = bout["metrics"]["cadence_spm"]
    # lab strides 1.04-1.14 s -> cadence 105-115 steps/min
    assert 105 <= cad["mean"] <= 116 and cad["cv_pct"] < 6
    assert "bout 1" in p.stdout and "foot_strike" in p.stdout


def test_analyze_kinect_file_through_its_own_layout(shared_data):
    rec = load_recording(shared_data / "kinect_v1_walking_andersson2015/walks/Person002/1.txt")
    assert rec.raw_layout == "kinect_v1_20"
    res = analyze_recording(rec)
    assert len(res.events) > 40 and len(res.cycles) > 15 and len(res.bouts) >= 1
    assert all(e.source == "analyze" and e.method == "classical" for e in res.events)


def test_analyze_reports_an_unreadable_file(tmp_path):
    bad = tmp_path / "broken.c3d"
    bad.write_bytes(b"not a c3d file")
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "analyze", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()  # one line naming the file, no traceback
    assert line.startswith("error: ") and "broken.c3d" in line


def test_plot_writes_a_figure(shared_data, tmp_path):
    from inference.plot import plot_trial

    out = tmp_path / "ktk.png"
    info = plot_trial(shared_data / TRIALS / "KTK_walk.c3d", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    # its strides' curves over the normal bands, with the Plug-in-Gait outputs of the C3D
    assert info == {"events": 8, "true_events": 8, "strides": {"left": 1, "right": 1},
                    "reference": "Plug-in-Gait"}


def test_bench_prints_json_last(shared_data):
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "bench", "analysis", "--repeats", "1",
                        "--json", str(shared_data / TRIALS / "KTK_walk.c3d")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    (r,) = rep["results"]
    assert r["frames"] == 221 and r["frames_per_s"] > 0 and r["outputs"] == 10
    # speed is measured, not asserted; what is pinned is that the JSON states the goal's own
    # figure (CPU frames per second over a 30 Hz stream's 30) and whether it is met
    assert r["x_realtime_at_30hz"] == pytest.approx(r["frames_per_s"] / 30.0)
    assert r["x_realtime"] == pytest.approx(r["frames_per_s"] / r["rate_hz"])
    assert rep["min_x_realtime_at_30hz"] == r["x_realtime_at_30hz"]
    assert rep["goal_x_realtime_at_30hz"] == 100.0
    assert rep["meets_goal"] == (r["x_realtime_at_30hz"] >= 100.0)
    assert f"{r['x_realtime_at_30hz']:.1f}x real time for a 30 Hz stream" in p.stdout


def test_both_analyses_give_the_same_records_in_the_same_order_every_run(shared_data):
    """The gait transformer batches windows until max_wait_s passes; offline that wait runs on
    the recording's clock, so a file gives its records in one order (the host clock made the
    order, and the bout summaries' last digits, differ from run to run)."""
    rec = load_recording(shared_data / "kinect_v1_walking_andersson2015/walks/Person001/1.txt")

    def records():
        res = analyze_recording(rec, "both")
        return [(type(m).__name__, m.method, m.side, getattr(m, "t_us", None),
                 getattr(m, "start_us", None)) for m in res.events + res.cycles]

    first = records()
    assert {r[1] for r in first} == {"classical", "gait-transformer"}
    assert records() == first and records() == first


def test_analyze_both_says_which_analysis_made_each_row_and_summarises_each_apart(shared_data):
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "analyze",
                        str(shared_data / TRIALS / "KTK_walk.c3d"), "--analysis", "both",
                        "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    methods = ("classical", "gait-transformer")
    assert {c["method"] for c in rep["cycles"]} == set(methods)
    # one summary per bout and method, each counting its own strides once
    assert sorted((b["bout"], b["method"]) for b in rep["bouts"]) == [(1, m) for m in methods]
    for b in rep["bouts"]:
        assert b["cycles"] == sum(c["method"] == b["method"] for c in rep["cycles"])
    table = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("  ")]
    assert ["method", "side", "start", "end"] == table[next(
        i for i, r in enumerate(table) if r[:1] == ["method"])][:4]
    assert sum(r[:1] == ["gait-transformer"] for r in table) == \
        sum(c["method"] == "gait-transformer" for c in rep["cycles"])
    assert "bout 1 (0.0-2.2 s), classical:" in p.stdout


def test_a_recording_without_a_cycle_says_why(shared_data):
    from dataclasses import replace

    from inference.analyze import report

    rec = load_recording(shared_data / TRIALS / "KTK_walk.c3d")
    keep = slice(0, int(0.6 * rec.rate_hz))  # 0.6 s: less than one stride
    short = replace(rec, t_us=rec.t_us[keep], joints=rec.joints[keep],
                    confidence=rec.confidence[keep], raw_layout=None, raw_joints=None,
                    raw_confidence=None, markers={}, feet=rec.feet[keep],
                    feet_confidence=rec.feet_confidence[keep])
    rep = report(TRIALS, short, analyze_recording(short))
    assert rep["cycles"] == [] and "shorter than one stride" in rep["no_cycles"]
    full = report(TRIALS, rec, analyze_recording(rec))
    assert full["cycles"] and full["no_cycles"] is None


def test_analyze_and_run_take_a_stream_file_of_ours(tmp_path):
    """`analyze` and `run` refused the .gst files `record` and the demo write."""
    import numpy as np

    from capture.sources import source_for_file
    from inference.analyze import analyze_frames
    from inference.data.simulated import walkway_walk
    from streams.schema import Body, SkeletonFrame, encode
    from streams.streamfile import StreamWriter

    t, j, c = walkway_walk(12.0, seed=6)
    frames = [SkeletonFrame(source="cam", seq=i + 1, t_us=int(t[i]), host_us=0,
                            layout="canonical22", bodies=[Body(0, j[i], c[i])])
              for i in range(len(t))]
    path = tmp_path / "walk.gst"
    with StreamWriter(path, topics=["skel/"]) as w:
        for f in frames:
            w.write(f.t_us, [b"skel/cam", encode(f)])
    want = analyze_frames(frames)
    p = subprocess.run([sys.executable, "-m", "deploy.cli", "analyze", str(path), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(want.cycles) >= 8 and len(rep["cycles"]) == len(want.cycles)
    assert np.allclose([c["start_s"] for c in rep["cycles"]],
                       [c.start_us / 1e6 for c in want.cycles])
    assert rep["frames"] == len(frames) and abs(rep["rate_hz"] - 30.0) < 0.5
    assert source_for_file(path) == {"source": "stream", "path": str(path.resolve())}
