"""Two workers share a site's cameras: each names its sources in the configuration, and their
records reach one log exactly once.

The links are CURVE ones, keyed per role as a site does it (`gaitstream keys`): the cameras bind
with the "cameras" key and let only the workers in, the workers bind with the "workers" key and
let only the log in. Both workers subscribe to both cameras, so nothing but their ``sources``
keeps them from analysing the same person twice. The site runs twice: all on this host's
loopback under the launcher, and with each worker in a network namespace of its own, made by the
test (``unshare``, a user namespace: no privilege needed where the kernel allows them), reaching
the cameras and the log only over virtual links with addresses of the test's namespaces. The log
is one PostgreSQL database (the session's test cluster; from the namespaces, by its socket file);
the alerts of both workers' cycles go to one MQTT broker (mosquitto, in the namespace of the
cameras and the log for the second run) through one alert sink, and each arrives there once.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from sinks_servers import MqttReceiver, broker, pg_dsn, postgres_cluster  # noqa: F401 - fixture

from conftest import REPO, free_port, gaitstream

ENV = dict(os.environ, PYTHONPATH=str(REPO))


def make_keys(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    for name in ("cameras", "workers", "log"):
        assert gaitstream("keys", str(keys), name, stdout=subprocess.DEVNULL).wait(30) == 0
    for role, client in (("cameras", "workers"), ("workers", "log")):
        (tmp_path / f"allow-{role}").mkdir()
        shutil.copy(keys / f"{client}.key", tmp_path / f"allow-{role}")
    return keys


def site_config(tmp_path: Path, keys: Path, bind: dict, reach: dict, remote: bool,
                dsn: str, mqtt_port: int) -> Path:
    """Two sim cameras, workers ``wa`` (cam1) and ``wb`` (cam2), one log sink into PostgreSQL
    at ``dsn``, one alert sink delivering to the MQTT broker on loopback port ``mqtt_port``.
    ``bind``: the endpoint each publisher binds; ``reach[(who, whom)]``: where ``who`` connects
    to ``whom``."""
    allow = "allow_remote = true\n" if remote else ""

    def camera(name, seed):
        return f"""
[[process]]
name = "{name}"
kind = "capture"
restart = "on-failure"
publish = "{bind[name]}"
{allow}[process.curve]
secret_key_file = "{keys / 'cameras.key_secret'}"
authorized_dir = "{tmp_path / 'allow-cameras'}"
[process.options]
source = "sim"
seed = {seed}
duration_s = 14.0
"""

    def worker(name, source):
        return f"""
[[process]]
name = "{name}"
kind = "worker"
subscribe = ["{reach[(name, 'cam1')]}", "{reach[(name, 'cam2')]}"]
publish = "{bind[name]}"
{allow}[process.subscribe_curve]
secret_key_file = "{keys / 'workers.key_secret'}"
server_key_file = "{keys / 'cameras.key'}"
[process.curve]
secret_key_file = "{keys / 'workers.key_secret'}"
authorized_dir = "{tmp_path / 'allow-workers'}"
[process.options]
sources = ["{source}"]
"""

    cfg = tmp_path / "site.toml"
    cfg.write_text(f"""
[pipeline]
name = "site"
data_dir = "{tmp_path}"
session = "scale-out"

[launcher]
publish = "{bind['launcher']}"
stop_when_done = ["cam1", "cam2"]
""" + camera("cam1", 1) + camera("cam2", 2) + worker("wa", "cam1") + worker("wb", "cam2") + f"""
[[process]]
name = "alerts"
kind = "sink"
subscribe = ["{reach[('log', 'wa')]}", "{reach[('log', 'wb')]}"]
topics = ["gait/"]
publish = "{bind['alerts']}"
[process.subscribe_curve]
secret_key_file = "{keys / 'log.key_secret'}"
server_key_file = "{keys / 'workers.key'}"
[process.curve]
secret_key_file = "{keys / 'workers.key_secret'}"
authorized_dir = "{tmp_path / 'allow-workers'}"
[process.options]
sink = "alert"

[[process]]
name = "log"
kind = "sink"
subscribe = ["{reach[('log', 'wa')]}", "{reach[('log', 'wb')]}", "{bind['alerts']}"]
topics = ["gait/", "status"]
[process.subscribe_curve]
secret_key_file = "{keys / 'log.key_secret'}"
server_key_file = "{keys / 'workers.key'}"
[process.options]
store = "postgresql"
dsn = "{dsn}"
status_every_s = 0.0  # every Status kept: the workers' last ones say what they published

[alerts]
outbox = "{tmp_path / 'alerts-outbox.db'}"

[[alerts.output]]
type = "mqtt"
port = {mqtt_port}

# every walking track raises once (and, walking to the end, never clears)
[[alerts.rule]]
name = "walking"
kind = "metric"
metric = "speed_mps"
op = "above"
raise = 0.3
clear = 0.2
window = 2
severity = "info"
text = "walking: {{scope}}"
""")
    return cfg


def check_every_record_once(dsn: str) -> None:
    db = psycopg.connect(dsn)
    cycles = db.execute("SELECT source, track, side, start_us, run FROM cycles").fetchall()
    events = db.execute("SELECT source, track, side, kind, event_us, run FROM events").fetchall()
    # every stride and event once: not once per worker
    assert cycles and max(Counter(c[:4] for c in cycles).values()) == 1
    assert max(Counter(e[:5] for e in events).values()) == 1
    runs = {cam: {c[4] for c in cycles if c[0] == cam} for cam in ("cam1", "cam2")}
    assert all(len(r) == 1 for r in runs.values()) and runs["cam1"] != runs["cam2"], runs
    # and none lost: what each worker says it published (its last Status) is what the log holds
    for proc, cam in (("wa", "cam1"), ("wb", "cam2")):
        counters, state = db.execute(
            "SELECT counters, state FROM status WHERE process = %s ORDER BY id DESC LIMIT 1",
            (proc,)).fetchone()
        counters, state = json.loads(counters), json.loads(state)
        assert {state["run"]} == runs[cam]
        assert counters["cycles"] == sum(c[0] == cam for c in cycles) >= 4
        assert counters["events"] == sum(e[0] == cam for e in events)
        assert counters["dropped_upstream"] == 0 and counters["rejected"] == 0
        assert "other_sources" not in counters  # the subscription already kept the other out


def check_every_alert_once(dsn: str, alerts: dict, repeats: int) -> None:
    """What the MQTT subscriber got: each alert the alert sink raised (its last Status, in the
    log) once, one per walking track of either camera."""
    db = psycopg.connect(dsn)
    counters = json.loads(db.execute(
        "SELECT counters FROM status WHERE process = 'alerts' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0])
    tracks = db.execute("SELECT COUNT(DISTINCT (source, track)) FROM cycles").fetchone()[0]
    assert repeats == 0
    assert counters["alerts_raised"] == counters["delivered.mqtt"] == len(alerts) >= 2
    assert all(state == "raised" for _, state in alerts)
    scopes = Counter(p["text"] for p in alerts.values())  # the rule's text names its scope
    assert max(scopes.values()) == 1 and len(scopes) <= tracks
    # both workers' cycles reached the rule
    assert all(any(cam in s for s in scopes) for cam in ("cam1", "cam2")), scopes


def test_two_workers_split_the_cameras_and_every_record_arrives_once(tmp_path, pg_dsn,  # noqa: F811
                                                                     broker):  # noqa: F811
    keys = make_keys(tmp_path)
    mq = MqttReceiver(broker.port)
    bind = {k: f"tcp://127.0.0.1:{free_port()}"
            for k in ("cam1", "cam2", "wa", "wb", "alerts", "launcher")}
    reach = {(who, whom): bind[whom] for who, whoms in (("wa", ("cam1", "cam2")),
                                                        ("wb", ("cam1", "cam2")),
                                                        ("log", ("wa", "wb"))) for whom in whoms}
    cfg = site_config(tmp_path, keys, bind, reach, remote=False, dsn=pg_dsn,
                      mqtt_port=broker.port)
    try:
        run = subprocess.run([sys.executable, "-m", "deploy.cli", "run", str(cfg), "--logs",
                              str(tmp_path / "logs")], cwd=REPO, timeout=180, env=ENV)
        assert run.returncode == 0
        check_every_record_once(pg_dsn)
        time.sleep(0.5)  # QoS 1: the broker forwards after the sink's publish is acknowledged
        with mq.lock:
            check_every_alert_once(pg_dsn, dict(mq.alerts), mq.repeats)
    finally:
        mq.close()


def namespaces_work() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    r = subprocess.run(["unshare", "-rnm", "--propagation", "private", "sh", "-c",
                        "mount -t tmpfs none /run && ip netns add probe"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.mark.skipif(not namespaces_work(), reason="no user and network namespaces here")
def test_the_same_site_with_each_worker_in_its_own_network_namespace(tmp_path, pg_dsn):  # noqa: F811
    """The cameras and the log in the test's namespace, each worker in one of its own, joined
    to it by a veth pair (10.20.1.0/24 for wa, 10.20.2.0/24 for wb): the workers' and cameras'
    sockets bind addresses that exist only in these namespaces, over CURVE."""
    keys = make_keys(tmp_path)
    port = {k: free_port() for k in ("cam1", "cam2", "wa", "wb", "alerts", "launcher", "mqtt")}
    near = {"wa": "10.20.1", "wb": "10.20.2"}  # the site side is .1, the worker .2
    bind = {"cam1": f"tcp://0.0.0.0:{port['cam1']}", "cam2": f"tcp://0.0.0.0:{port['cam2']}",
            "wa": f"tcp://10.20.1.2:{port['wa']}", "wb": f"tcp://10.20.2.2:{port['wb']}",
            "alerts": f"tcp://127.0.0.1:{port['alerts']}",
            "launcher": f"tcp://127.0.0.1:{port['launcher']}"}
    reach = {(w, cam): f"tcp://{near[w]}.1:{port[cam]}" for w in ("wa", "wb")
             for cam in ("cam1", "cam2")}
    reach.update({("log", w): bind[w] for w in ("wa", "wb")})
    # the log sink, in the test's namespace, reaches the server by its Unix socket (a file):
    # the server listens on the host's loopback, which no namespace of the test can reach
    cluster = postgres_cluster()
    db = pg_dsn.rsplit("/", 1)[1]
    socket_dsn = f"postgresql://{cluster.USER}@/{db}?host={cluster.dir}&port={cluster.port}"
    cfg = site_config(tmp_path, keys, bind, reach, remote=True, dsn=socket_dsn,
                      mqtt_port=port["mqtt"])
    got = tmp_path / "mqtt.json"  # what the subscriber in the namespace received
    # Run as root, the cluster belongs to the postgres user, whom the user namespace does not
    # map: its folder must let others through to the socket for the test's run (only).
    mode = cluster.dir.stat().st_mode & 0o777
    if cluster.dir.stat().st_uid != os.getuid():
        os.chmod(cluster.dir, mode | 0o011)
    try:
        r = subprocess.run(["unshare", "-rnm", "--propagation", "private", sys.executable,
                            str(Path(__file__).with_name("_netns_site.py")), str(cfg),
                            str(port["mqtt"]), str(got)],
                           cwd=REPO, timeout=240, env=ENV, capture_output=True, text=True)
    finally:
        os.chmod(cluster.dir, mode)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "wa cannot reach wb" in r.stdout
    check_every_record_once(pg_dsn)
    mqtt = json.loads(got.read_text())
    check_every_alert_once(pg_dsn, {tuple(k.split("|")): p for k, p in mqtt["alerts"].items()},
                           mqtt["repeats"])


def test_a_worker_takes_only_its_sources_though_a_prefix_lets_more_through():
    """``sources = ["cam1"]`` subscribes to skel/cam1, which ZeroMQ matches as a prefix: cam10's
    frames arrive too, and the worker ignores them, counted; cam2's never cross the link."""
    import time

    import numpy as np

    from deploy.config import ProcessConfig
    from deploy.processes import make_subscriber
    from inference.worker import Worker, WorkerConfig
    from streams.node import StatusReporter
    from streams.schema import Body, SkeletonFrame
    from streams.transport import Publisher

    ep = f"tcp://127.0.0.1:{free_port()}"
    proc = ProcessConfig(name="w", kind="worker", subscribe=[ep], options={"sources": ["cam1"]})
    pub, sub = Publisher(ep), make_subscriber(proc)
    worker = Worker(WorkerConfig.from_options(proc.options), None,
                    StatusReporter("w", "worker"))
    try:
        assert pub.wait_for_subscribers(2, 5.0) == 2  # skel/cam1 and img/cam1
        time.sleep(0.1)
        for i in range(1, 6):
            for cam in ("cam1", "cam10", "cam2"):
                pub.send(SkeletonFrame(source=cam, seq=i, t_us=i * 33_333, host_us=1, bodies=[
                    Body(0, np.zeros((22, 3), np.float32), np.ones(22, np.float32))]))
        got = []
        while (r := sub.recv(500)) is not None:
            got.append(r[1].source)
            worker.handle(r[1])
    finally:
        pub.close()
        sub.close()
    assert sorted(set(got)) == ["cam1", "cam10"] and len(got) == 10
    assert set(worker.tracks) == {("cam1", 0)}
    assert worker.status.counters["other_sources"] == 5
    assert worker.status.counters["frames"] == 5
