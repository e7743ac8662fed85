"""Real servers for the sink tests: one throwaway PostgreSQL cluster per test session, a
mosquitto broker per test, and a small HTTP receiver that de-duplicates alerts by id.

Import the fixtures into a test module (``from sinks_servers import pg_dsn``). When a server's
binaries are missing the tests that need it are skipped with a loud reason naming the Debian
package (CI installs postgresql and mosquitto, so there they run).
"""

from __future__ import annotations

import atexit
import http.server
import json
import threading
import time
import uuid
import warnings

import pytest

from sinks.localservers import (MosquittoBroker, PostgresCluster, ServerUnavailable,
                                find_mosquitto, find_pg_bin)

_cluster: PostgresCluster | None = None
_cluster_lock = threading.Lock()


def _loud_skip(what: str) -> None:
    msg = f"NOT RUN — {what}"
    warnings.warn(msg, stacklevel=3)
    pytest.skip(msg)


def postgres_cluster() -> PostgresCluster:
    global _cluster
    with _cluster_lock:
        if _cluster is None:
            if find_pg_bin() is None:
                _loud_skip("PostgreSQL binaries absent (apt-get install postgresql); the "
                           "PostgreSQL sink tests did not run")
            c = PostgresCluster(fsync=False)
            try:
                c.start()
            except ServerUnavailable as e:
                c.stop()
                pytest.fail(f"PostgreSQL is installed but would not start: {e}")
            atexit.register(c.stop)
            _cluster = c
        return _cluster


@pytest.fixture
def pg_dsn() -> str:
    """A fresh, empty database on the session's PostgreSQL cluster."""
    return postgres_cluster().create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def broker():
    if find_mosquitto() is None:
        _loud_skip("mosquitto absent (apt-get install mosquitto); the MQTT tests did not run")
    b = MosquittoBroker().start()
    yield b
    b.close()


class AlertReceiver:
    """A real HTTP server on loopback that keeps alerts by (alert_id, state), counting
    repeats; ``delay_s`` makes it slow, ``fail_first`` answers ``fail_code`` to the first N
    posts."""

    def __init__(self, port: int = 0, delay_s: float = 0.0, fail_first: int = 0,
                 fail_code: int = 503):
        self.alerts: dict[tuple[str, str], dict] = {}
        self.posts = 0
        self.repeats = 0
        self.arrivals: list[tuple[float, dict]] = []
        self.delay_s = delay_s
        self.fail_first = fail_first
        self.fail_code = fail_code
        self.lock = threading.Lock()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with recv.lock:
                    recv.posts += 1
                    n = recv.posts
                if recv.delay_s:
                    time.sleep(recv.delay_s)
                if n <= recv.fail_first:
                    self.send_response(recv.fail_code)
                    self.end_headers()
                    return
                p = json.loads(body)
                assert self.headers["Idempotency-Key"] == f"{p['alert_id']}:{p['state']}"
                with recv.lock:
                    key = (p["alert_id"], p["state"])
                    if key in recv.alerts:
                        recv.repeats += 1
                    else:
                        recv.alerts[key] = p
                        recv.arrivals.append((time.monotonic(), p))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MqttReceiver:
    """A paho subscriber with a persistent session (QoS 1) that keeps alerts by
    (alert_id, state) and counts repeats, like :class:`AlertReceiver`."""

    def __init__(self, port: int, topic: str = "gaitstream/alerts"):
        import paho.mqtt.client as mqtt

        self.alerts: dict[tuple[str, str], dict] = {}
        self.arrivals: list[tuple[float, dict]] = []
        self.repeats = 0
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"receiver-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.1, 0.5)

        def on_connect(c, userdata, flags, reason, props):
            c.subscribe(topic, qos=1)

        def on_subscribe(c, userdata, mid, reasons, props):
            self.subscribed.set()

        def on_message(c, userdata, msg):
            p = json.loads(msg.payload)
            with self.lock:
                key = (p["alert_id"], p["state"])
                if key in self.alerts:
                    self.repeats += 1
                else:
                    self.alerts[key] = p
                    self.arrivals.append((time.monotonic(), p))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(5), "MQTT receiver could not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
