"""Where alerts go: the log database, an HTTP webhook, an MQTT broker, stdout.

Each output's ``send(payload)`` returns once the endpoint acknowledged the alert, raises
:class:`DeliveryError` when a later attempt may succeed (down, slow, refused for now) and
:class:`PermanentDeliveryError` when it cannot (the outbox then marks the alert dead). Retrying
and backoff belong to the outbox's delivery loop, not to the outputs.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from streams.schema import SEVERITIES, Alert
from streams.options import check_keys

from sinks.log.records import Record, alert_row, wall_us

log = logging.getLogger(__name__)

OUTPUT_TYPES = ("log", "webhook", "mqtt", "stdout")


class DeliveryError(RuntimeError):
    """Not delivered this time; try again later."""


class PermanentDeliveryError(RuntimeError):
    """The endpoint refused the alert in a way retrying cannot change."""


def payload_of(a: Alert) -> dict:
    """The JSON document every output sends (the receiver de-duplicates on alert_id + state)."""
    return {"alert_id": a.alert_id, "state": a.state, "rule": a.rule, "severity": a.severity,
            "text": a.text, "source": a.source, "seq": a.seq, "track": a.track,
            "value": a.value, "t_us": a.t_us, "host_us": a.host_us, "wall_us": wall_us()}


def alert_of(p: dict) -> Alert:
    return Alert(source=p["source"], seq=p["seq"], t_us=p["t_us"], host_us=p["host_us"],
                 alert_id=p["alert_id"], rule=p["rule"], severity=p["severity"],
                 state=p["state"], text=p["text"], track=p["track"], value=p["value"])


class Output:
    name: str
    min_severity: str = "info"

    def accepts(self, severity: str) -> bool:
        return SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity)

    def send(self, payload: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class StdoutOutput(Output):
    def __init__(self, name: str = "stdout", write: Callable[[str], Any] | None = None):
        self.name = name
        self._write = write

    def send(self, payload: dict) -> None:
        line = json.dumps(payload, sort_keys=True)
        if self._write is not None:
            self._write(line)
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


class LogOutput(Output):
    """Writes alerts into the log database (opened lazily, reopened after errors)."""

    def __init__(self, name: str, target: str, store_options: dict | None = None):
        self.name = name
        self.target = target
        self.store_options = dict(store_options or {})
        self.store: Any = None

    def send(self, payload: dict) -> None:
        from sinks.log import open_store
        from sinks.log.store import StoreUnavailable

        try:
            if self.store is None:
                self.store = open_store(self.target, **self.store_options)
            # No sequence bookkeeping: this path runs beside, not in, the ZeroMQ order.
            rec = Record("alerts", alert_row(alert_of(payload), wall_us()), payload["source"],
                         payload["seq"], None)
            res = self.store.write([rec])
        except StoreUnavailable as e:
            raise DeliveryError(str(e)) from e
        except OSError as e:  # e.g. the directory of a fresh database cannot be created
            raise DeliveryError(f"log {self.target}: {e}") from e
        if res.rejected:
            raise PermanentDeliveryError(res.rejected[0][1])

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


class WebhookOutput(Output):
    """POSTs the JSON payload; 2xx = delivered. ``Idempotency-Key`` = alert_id:state."""

    RETRYABLE_4XX = (408, 425, 429)

    def __init__(self, name: str, url: str, timeout_s: float = 5.0,
                 headers: dict[str, str] | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {name}: url must be http:// or https://, got {url!r}")
        self.name, self.url, self.timeout_s = name, url, timeout_s
        self.headers = dict(headers or {})

    def send(self, payload: dict) -> None:
        body = json.dumps(payload, sort_keys=True).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "Idempotency-Key": f"{payload['alert_id']}:{payload['state']}", **self.headers})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code not in self.RETRYABLE_4XX:
                raise PermanentDeliveryError(f"HTTP {e.code} {e.reason}") from e
            raise DeliveryError(f"HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError) as e:  # refused, unreachable, timed out
            raise DeliveryError(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from e


class MqttOutput(Output):
    """Publishes with QoS 1 and waits for the broker's PUBACK; reconnects on its own."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 1883,
                 topic: str = "gaitstream/alerts", timeout_s: float = 5.0, keepalive_s: int = 30,
                 client_id: str | None = None, username: str | None = None,
                 password: str | None = None, reconnect_max_s: float = 5.0):
        import paho.mqtt.client as mqtt

        self.name, self.topic, self.timeout_s = name, topic, timeout_s
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"gaitstream-{name}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=max(0.2, reconnect_max_s))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(host, int(port), keepalive=keepalive_s)
        self.client.loop_start()  # its thread connects, and reconnects after the broker left

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if not reason.is_failure:
            self._connected.set()
            log.info("mqtt %s: connected", self.name)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self._connected.clear()
        log.warning("mqtt %s: disconnected (%s)", self.name, reason)

    def send(self, payload: dict) -> None:
        if not self._connected.wait(min(self.timeout_s, 1.0)):
            raise DeliveryError("broker not connected")
        info = self.client.publish(self.topic, json.dumps(payload, sort_keys=True), qos=1)
        try:
            info.wait_for_publish(self.timeout_s)
            ok = info.is_published()
        except (RuntimeError, ValueError) as e:  # not queued: the connection just went
            raise DeliveryError(f"publish failed: {e}") from e
        if not ok:
            raise DeliveryError(f"no PUBACK within {self.timeout_s:g} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class OutputSpec:
    type: str
    name: str
    min_severity: str
    options: dict


_OPTIONS = {
    "log": {"path", "dsn", "busy_timeout_s"},
    "webhook": {"url", "timeout_s", "headers"},
    "mqtt": {"host", "port", "topic", "timeout_s", "keepalive_s", "client_id", "username",
             "password", "reconnect_max_s"},
    "stdout": set(),
}


def parse_output(d: Any, index: int) -> OutputSpec:
    where = f"alerts.output[{index}]"
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a table")
    t = d.get("type")
    if t not in OUTPUT_TYPES:
        raise ValueError(f"{where}: 'type' must be one of {OUTPUT_TYPES}, got {t!r}")
    allowed = _OPTIONS[t] | {"type", "name", "min_severity"}
    check_keys(f"{where} (type {t!r})", d, allowed)
    sev = d.get("min_severity", "info")
    if sev not in SEVERITIES:
        raise ValueError(f"{where}: 'min_severity' must be one of {SEVERITIES}")
    name = d.get("name", t)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: 'name' must be a non-empty string")
    opts = {k: v for k, v in d.items() if k in _OPTIONS[t]}
    if t == "webhook" and "url" not in opts:
        raise ValueError(f"{where}: a webhook needs 'url'")
    if t == "log" and ("path" in opts) == ("dsn" in opts):
        raise ValueError(f"{where}: a log output needs exactly one of 'path' (SQLite or .jsonl) "
                         "or 'dsn' (postgresql://...)")
    return OutputSpec(t, name, sev, opts)


def make_output(spec: OutputSpec, resolve: Callable[[str], Any] = str) -> Output:
    o = dict(spec.options)
    out: Output
    if spec.type == "stdout":
        out = StdoutOutput(spec.name)
    elif spec.type == "webhook":
        out = WebhookOutput(spec.name, **o)
    elif spec.type == "mqtt":
        out = MqttOutput(spec.name, **o)
    else:
        target = o.pop("dsn", None) or str(resolve(o.pop("path")))
        out = LogOutput(spec.name, target, o)
    out.min_severity = spec.min_severity
    return out
