"""Run the scale-out site of tests/test_scale_out.py with each worker in a network namespace.

Started by the test under ``unshare -rnm`` (a user, network and mount namespace of its own, so no
privilege is needed): this namespace holds the cameras and the log; ``wa`` and ``wb`` are made
here, each joined to this one by a veth pair, and each worker runs in its own with ``ip netns
exec``. The processes are started in flow order's reverse (the log first) and stopped in flow
order once the cameras have played their walks, as the launcher does; ``gaitstream run`` itself
cannot put a process in a namespace. The MQTT broker (mosquitto on this namespace's loopback,
port MQTT_PORT) and a subscriber to it run here too; what the subscriber received is written to
OUT as JSON. Exit status 0 when every process stopped cleanly.

    _netns_site.py CONFIG MQTT_PORT OUT
"""

import json

import signal
import subprocess
import sys
import time

NETS = {"wa": "10.20.1", "wb": "10.20.2"}  # this namespace's side is .1, the worker's .2


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def main(cfg: str, mqtt_port: int, out: str) -> int:
    from sinks.localservers import MosquittoBroker
    from sinks_servers import MqttReceiver  # beside this file


    sh("mount", "-t", "tmpfs", "none", "/run")  # ip netns keeps its handles there
    sh("mkdir", "-p", "/run/netns")
    sh("ip", "link", "set", "lo", "up")
    for ns, net in NETS.items():
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"v{ns}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "addr", "add", f"{net}.1/24", "dev", f"v{ns}")
        sh("ip", "link", "set", f"v{ns}", "up")
        for cmd in (("addr", "add", f"{net}.2/24", "dev", "eth0"), ("link", "set", "eth0", "up"),
                    ("link", "set", "lo", "up")):
            sh("ip", "netns", "exec", ns, "ip", *cmd)
    probe = subprocess.run(["ip", "netns", "exec", "wa", sys.executable, "-c",
                            "import socket; socket.create_connection(('10.20.2.2', 9), 1)"],
                           capture_output=True)
    print("wa reaches wb" if probe.returncode == 0 else "wa cannot reach wb", flush=True)

    def proc(name: str, ns: str | None = None) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "deploy.cli", "proc", "--config", cfg, "--name", name]
        return subprocess.Popen((["ip", "netns", "exec", ns] if ns else []) + cmd)

    # root of this user namespace: mosquitto cannot drop to its own user, which is not mapped
    broker = MosquittoBroker(mqtt_port, user="root").start()
    mq = MqttReceiver(mqtt_port)
    log = proc("log")
    alerts = proc("alerts")
    workers = [proc(w, w) for w in NETS]
    time.sleep(4.0)  # the workers import their analysis and connect before the walks start
    cams = [proc("cam1"), proc("cam2")]
    codes = {}
    for name, p in zip(("cam1", "cam2"), cams, strict=True):
        codes[name] = p.wait(120)
    for p in workers:
        p.send_signal(signal.SIGINT)
    for name, p in zip(NETS, workers, strict=True):
        codes[name] = p.wait(60)
    alerts.send_signal(signal.SIGINT)
    codes["alerts"] = alerts.wait(60)
    log.send_signal(signal.SIGINT)
    codes["log"] = log.wait(60)
    time.sleep(0.5)
    with mq.lock:
        json.dump({"alerts": {f"{a}|{s}": p for (a, s), p in mq.alerts.items()},
                   "repeats": mq.repeats}, open(out, "w"))
    mq.close()
    broker.close()
    print(codes, flush=True)
    return 0 if not any(codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
