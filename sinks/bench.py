"""Records/s into the log stores and alert latency from cycle message to webhook and MQTT.

``gaitstream bench sinks [--json] [--records N] [--alerts K] [--pg-dsn URL] [--mqtt HOST:PORT]``

Stores: N cycle records (all 17 measures filled) written through ``store.write`` in batches of
the log sink's default size (200) and one record per commit (the worst case: one fsync each),
into a fresh SQLite file (WAL, synchronous=FULL) and a PostgreSQL database (a throwaway cluster
with PostgreSQL's default durability unless ``--pg-dsn`` names one).

Alerts: the alert sink runs as its own process (``gaitstream proc``) with a webhook and an MQTT
output; this process publishes K slow cycles on ZeroMQ, 20 ms apart, each raising one alert, and
receives them on a local HTTP server and an MQTT subscriber (a throwaway mosquitto unless
``--mqtt`` names one). Latency = arrival time − the cycle's ``host_us`` (same host, monotonic
clock), so it includes ZeroMQ, the rule engine, the durable outbox commit and the delivery.
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from streams.schema import CYCLE_METRICS, GaitCycle, monotonic_us
from streams.transport import Publisher

from sinks.localservers import (MosquittoBroker, PostgresCluster, ServerUnavailable, free_port,
                           wait_port)
from sinks.log.records import to_record, wall_us
from sinks.log.sql import SqlStore, postgres_store, sqlite_store

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


def _cycle(i: int, speed: float = 1.2, track: int = 1) -> GaitCycle:
    m = {k: 1.0 + (i % 17) / 10 for k in CYCLE_METRICS}
    m["speed_mps"] = speed
    return GaitCycle(source="bench", seq=i, t_us=i, host_us=monotonic_us(), track=track,
                     side="left" if i % 2 else "right", start_us=i * 1_100_000,
                     end_us=i * 1_100_000 + 1_100_000, metrics=m, flags=[],
                     anomaly={"subject": 0.5}, session="bench", subject="P-bench")


def store_rate(store: SqlStore, n: int, batch: int) -> float:
    """Records per second stored (committed) in batches of ``batch``."""
    recs = [to_record(_cycle(i), wall_us()) for i in range(1, n + 1)]
    t0 = time.perf_counter()
    for k in range(0, n, batch):
        store.write(recs[k:k + batch])
    return n / (time.perf_counter() - t0)


def bench_store(name: str, open_store: Any, n: int) -> dict[str, float]:
    out = {}
    for batch, count in ((200, n), (1, max(200, n // 20))):
        s = open_store(f"b{batch}")
        try:
            out[f"records_per_s_batch{batch}"] = round(store_rate(s, count, batch), 1)
        finally:
            s.close()
        log.info("%s: %.0f records/s in batches of %d (%d records)", name,
                 out[f"records_per_s_batch{batch}"], batch, count)
    return out


class _Arrivals:
    def __init__(self) -> None:
        self.latency_ms: dict[str, float] = {}
        self.lock = threading.Lock()

    def add(self, payload: bytes) -> None:
        now = monotonic_us()
        p = json.loads(payload)
        with self.lock:
            self.latency_ms.setdefault(p["alert_id"], (now - p["host_us"]) / 1000.0)


def _webhook_server(arrivals: _Arrivals) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            arrivals.add(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _mqtt_subscriber(port: int, arrivals: _Arrivals) -> Any:
    import paho.mqtt.client as mqtt

    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-receiver")
    c.on_connect = lambda cl, *a: cl.subscribe("gaitstream/alerts", qos=1)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = lambda cl, u, msg: arrivals.add(msg.payload)
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError("bench MQTT subscriber could not subscribe")
    return c


def _stats(v: list[float], sent: int) -> dict[str, Any]:
    """Latency figures of one output; an output that received nothing says so (``missing``)
    instead of failing the whole bench."""
    if not v:
        return {"n": 0, "missing": f"none of {sent} alerts arrived"}
    a = np.asarray(v)
    return {"median_ms": round(float(np.median(a)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2), "n": int(a.size)}


def bench_alerts(k: int, mqtt_port: int, workdir: Path) -> dict[str, Any]:
    web, mq = _Arrivals(), _Arrivals()
    srv = _webhook_server(web)
    sub = _mqtt_subscriber(mqtt_port, mq)
    pub = Publisher("tcp://127.0.0.1:0")
    cfg = workdir / "alerts.toml"
    cfg.write_text(f"""[pipeline]
name = "bench"
data_dir = "{workdir}"

[[process]]
name = "alerts"
kind = "sink"
subscribe = ["{pub.endpoint}"]
topics = ["gait/"]
[process.options]
sink = "alert"

[alerts]
outbox = "outbox.db"

[[alerts.output]]
type = "webhook"
url = "http://127.0.0.1:{srv.server_address[1]}/alerts"

[[alerts.output]]
type = "mqtt"
port = {mqtt_port}

[[alerts.rule]]
name = "slow"
kind = "metric"
metric = "speed_mps"
raise = 0.8
""")
    with open(workdir / "alerts.log", "ab") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "deploy.cli", "proc", "--config",
                                 str(cfg), "--name", "alerts"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=logf)
    try:
        if pub.wait_for_subscribers(1, 30) != 1:
            raise RuntimeError(f"alert sink did not start; see {workdir / 'alerts.log'}")
        time.sleep(0.3)  # the MQTT output connects in the background
        for i in range(1, k + 1):
            pub.send(_cycle(i, speed=0.5, track=i))  # a new track each time: a new alert
            time.sleep(0.02)
            if i % 50 == 0:
                log.info("alerts: %d/%d sent", i, k)
        end = time.monotonic() + 30
        while (len(web.latency_ms) < k or len(mq.latency_ms) < k) and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(15)
        pub.close()
        sub.loop_stop()
        srv.shutdown()
    return {"webhook": _stats(list(web.latency_ms.values()), k),
            "mqtt": _stats(list(mq.latency_ms.values()), k), "alerts_sent": k}


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"records": args.records}
    with tempfile.TemporaryDirectory(prefix="gaitstream-bench-") as tmp:
        work = Path(tmp)
        result["sqlite"] = bench_store("sqlite", lambda n: sqlite_store(work / f"{n}.db"),
                                       args.records)
        cluster = None
        try:
            if args.pg_dsn:
                import psycopg

                schemas: list[str] = []

                def open_pg(n: str) -> SqlStore:
                    # a schema of its own, dropped afterwards: the database's tables are not
                    # touched
                    schema = f"gaitstream_bench_{n}_{uuid.uuid4().hex[:8]}"
                    with psycopg.connect(args.pg_dsn, autocommit=True) as c:
                        c.execute(f"CREATE SCHEMA {schema}")
                    schemas.append(schema)
                    sep = "&" if "?" in args.pg_dsn else "?"
                    return postgres_store(f"{args.pg_dsn}{sep}options=-csearch_path%3D{schema}")
                try:
                    result["postgresql"] = bench_store("postgresql", open_pg, args.records)
                finally:
                    with psycopg.connect(args.pg_dsn, autocommit=True) as c:
                        for schema in schemas:
                            c.execute(f"DROP SCHEMA {schema} CASCADE")
            else:
                cluster = PostgresCluster(fsync=True).start()
                log.info("postgresql: throwaway cluster on port %d", cluster.port)

                def open_pg(n: str) -> SqlStore:
                    return postgres_store(cluster.create_database(n))
                result["postgresql"] = bench_store("postgresql", open_pg, args.records)
        except ServerUnavailable as e:
            log.error("PostgreSQL NOT BENCHED: %s", e)
            result["postgresql"] = {"not_run": str(e)}
        finally:
            if cluster is not None:
                cluster.stop()
        broker = None
        try:
            if args.mqtt:
                host, _, port = args.mqtt.rpartition(":")
                if host not in ("127.0.0.1", "localhost") or not wait_port(int(port), 2):
                    raise ServerUnavailable(f"no MQTT broker at {args.mqtt} (local only)")
                mqtt_port = int(port)
            else:
                broker = MosquittoBroker(free_port()).start()
                mqtt_port = broker.port
            result["alert_latency"] = bench_alerts(args.alerts, mqtt_port, work)
        except ServerUnavailable as e:
            log.error("alert latency NOT BENCHED: %s", e)
            result["alert_latency"] = {"not_run": str(e)}
        finally:
            if broker is not None:
                broker.close()
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--records", type=int, default=20000, help="cycle records per store")
    p.add_argument("--alerts", type=int, default=200, help="alerts for the latency figures")
    p.add_argument("--pg-dsn", default=None,
                   help="benchmark in this PostgreSQL database (in a temporary schema, "
                        "dropped afterwards) instead of a throwaway cluster")
    p.add_argument("--mqtt", default=None, help="local broker HOST:PORT instead of a throwaway "
                                                "mosquitto")


def main(args: argparse.Namespace) -> int:
    r = run(args)
    for name in ("sqlite", "postgresql"):
        v = r[name]
        if "not_run" in v:
            print(f"{name:11s} NOT RUN: {v['not_run']}")
        else:
            print(f"{name:11s} {v['records_per_s_batch200']:10.0f} records/s (batches of 200)"
                  f"  {v['records_per_s_batch1']:8.0f} records/s (one commit each)")
    lat = r["alert_latency"]
    if "not_run" in lat:
        print(f"alert latency NOT RUN: {lat['not_run']}")
    else:
        for out in ("webhook", "mqtt"):
            s = lat[out]
            if "missing" in s:
                print(f"alert → {out:8s} NOTHING ARRIVED: {s['missing']}")
                continue
            print(f"alert → {out:8s} median {s['median_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms"
                  f"  max {s['max_ms']:.1f} ms  ({s['n']}/{lat['alerts_sent']} arrived)")
    if args.json:
        print(json.dumps(r))
    return 0
