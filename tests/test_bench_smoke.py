"""Smoke runs of the two wire/sink benchmarks at tiny sizes: each ``--json`` run ends with one
JSON object holding the figures the issue names (no figure is judged here: speed is measured,
not asserted)."""

import json
import math
import os
import subprocess
import sys

import psycopg
import pytest
from sinks_servers import broker, pg_dsn  # noqa: F401 - fixtures

from conftest import REPO
from sinks.bench import _stats


def gaitstream(*args, timeout=180):
    r = subprocess.run([sys.executable, "-m", "deploy.cli", *args], cwd=REPO, timeout=timeout,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.splitlines(), json.loads(r.stdout.splitlines()[-1])


def test_bench_sinks_json(pg_dsn, broker):  # noqa: F811
    lines, r = gaitstream("bench", "sinks", "--json", "--records", "50", "--alerts", "3",
                          "--pg-dsn", pg_dsn, "--mqtt", f"127.0.0.1:{broker.port}")
    assert set(r) == {"records", "sqlite", "postgresql", "alert_latency"} and r["records"] == 50
    for store in ("sqlite", "postgresql"):
        assert set(r[store]) == {"records_per_s_batch200", "records_per_s_batch1"}, r[store]
        assert all(v > 0 for v in r[store].values())
    lat = r["alert_latency"]
    assert lat["alerts_sent"] == 3
    for out in ("webhook", "mqtt"):
        assert set(lat[out]) == {"median_ms", "p99_ms", "max_ms", "n"} and lat[out]["n"] == 3
        assert 0 < lat[out]["median_ms"] <= lat[out]["p99_ms"] <= lat[out]["max_ms"]
    assert any(ln.startswith("alert → webhook") for ln in lines)
    # the bench's temporary schemas are gone: the database is left as it was
    with psycopg.connect(pg_dsn) as c:
        left = c.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE "
                         "schema_name LIKE 'gaitstream_bench_%'").fetchone()[0]
    assert left == 0


def test_an_output_that_received_no_alert_is_reported_not_a_crash():
    assert _stats([], 5) == {"n": 0, "missing": "none of 5 alerts arrived"}
    assert _stats([2.0, 4.0], 5)["n"] == 2


def test_bench_transport_json():
    lines, r = gaitstream("bench", "transport", "--json", "--n", "20", "--rounds", "1")
    summary = r["summary"]
    ratios = {"skeleton_hop_median_ratio", "image_hop_median_ratio",
              "skeleton_throughput_ratio", "image_throughput_ratio"}
    assert ratios | {"two_hop_30hz_median_ms", "two_hop_30hz_added_vs_bare_ms"} == set(summary)
    for k in ratios:
        assert math.isfinite(summary[k]) and summary[k] > 0, (k, summary[k])
    assert summary["two_hop_30hz_median_ms"] > 0
    assert len(r["cases"]) == 10
    assert all(c["received"] == c["sent"] for c in r["cases"]), r["cases"]


def test_bench_fuzz_json():
    """A small fuzz run against a real pipeline: every process survives (no restart), each
    refusal is counted under its reason, and the walk's records keep coming."""
    lines, r = gaitstream("bench", "fuzz", "--json", "--messages", "2000", "--baseline-s", "2",
                          "--settle-s", "3", "--rounds", "2", timeout=300)
    assert sum(r["sent"].values()) == 2 * 2003 and r["undelivered"] == 0
    procs = r["processes"]
    assert set(procs) == {"camera", "worker", "log", "alerts"}
    assert all(p["restarts"] == 0 and not p["pid_changed"] for p in procs.values()), procs
    w = procs["worker"]
    assert w["received"] > 2000
    assert w["rejected"]["malformed msgpack"] > 0
    for k in ("rejected_tracks", "rejected_sources", "rejected_images"):
        assert w["refused_by_worker"][k] > 0, k
    assert "errors" not in w["refused_by_worker"]  # refusals, never a traceback
    for sink in ("log", "alerts"):
        assert sum(procs[sink]["rejected"].values()) > 0
    assert r["legit"]["before"]["records"] > 0 and r["legit"]["after"]["records"] > 0
    assert all(p["rss_mb"]["before"] and len(p["rss_mb"]["after_each_round"]) == 2
               for p in procs.values())
    assert any(ln.startswith("goals: no restart met") for ln in lines)


def test_bench_capacity_json(tmp_path):
    png = tmp_path / "capacity.png"
    lines, r = gaitstream("bench", "capacity", "--json", "--configs", "classical", "--steps",
                          "1,2", "--hold", "2", "--settle", "1", "--warmup", "2", "--walks", "2",
                          "--walk-s", "8", "--sensor", "none", "--plot", str(png))
    assert r["bench"] == "capacity" and r["rate_hz"] == 30 and r["p99_limit_ms"] == 250
    by = {c["name"]: c for c in r["configs"]}
    assert set(by) == {"classical", "dpg"}
    assert by["dpg"] == {"name": "dpg", "built": False, "note": "not built"}
    c = by["classical"]
    assert c["built"] and 1 <= len(c["steps"]) <= 2 and c["tracks"] in (0, 1, 2)
    for s in c["steps"]:
        assert s["tracks"] in (1, 2)
        if "p99_ms" in s:  # a step with Status from the worker
            assert 0 <= s["p50_ms"] <= s["p99_ms"] < 60_000
            assert s["dropped"] >= 0 and 0 <= s["cpu_core_fraction"] <= 4
            assert s["skipped"] == 0  # the classical analysis has no model work to skip
            assert s["frames_per_s"] > 0  # the worker analysed the simulated frames
            assert s["cpu_per_track_pct"] == pytest.approx(100 * s["cpu_core_fraction"]
                                                           / s["tracks"])
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert any("not built" in ln for ln in lines)
