"""``gaitstream bench fuzz``: hostile messages against a running pipeline.

It starts a real pipeline under the launcher (the simulated walker as the camera, a worker, a log
sink on SQLite and an alert sink), lets the walk run, then sends ``--messages`` hostile messages
(default 10^5) from a publisher the worker and both sinks also subscribe to, as a rogue or broken
peer on the network would. The messages are built with the project's own encoders, then bent:

* garbage: random bytes in 1-4 frames; truncated: a valid message cut anywhere; bitflip: a valid
  message with a few bytes changed;
* absurd: well-formed skeletons with sequence numbers and timestamps near +-2^62, NaN or infinite
  joints, a layout nobody knows, joint arrays of the wrong shape;
* floods: new body ids (tracks), new source names (sources), new image source names with images
  that do not decode (pose models), many topics;
* the camera's own source and body id with a far-future timestamp (a bad clock on the wire);
* records and Status for the sinks with absurd numbers, and a few frames beyond the size limit
  (those cut the fuzzer's own link, which ZeroMQ makes again).

The publisher uses ZeroMQ's no-drop mode, so every message is delivered to every subscriber
unless the subscriber refuses it: the count is of messages the pipeline had to handle.

Reported, per process: what it received and refused by reason, its restarts (goal 0), its
resident memory before, at the peak and after a settling time (goal: back within 50 MB); and for
the legitimate walk: the records the worker published per second and their latency (frame in to
record out) before, during and after the fuzzing. Figures only; nothing is judged here except
that the goals are printed beside them."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import zmq
from tqdm import tqdm

from streams.schema import (Body, GaitCycle, ImageFrame, SkeletonFrame, Status, encode,
                            monotonic_us)
from streams.transport import Subscriber

log = logging.getLogger(__name__)

PROCESSES = ("camera", "worker", "log", "alerts")
RSS_GOAL_MB = 50.0
KINDS = ("garbage", "truncated", "bitflip", "absurd_seq", "bad_joints", "bad_layout",
         "body_flood", "source_flood", "image_flood", "future_frame", "sink_records",
         "sink_status", "topic_flood")


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def write_config(d: Path) -> tuple[Path, dict[str, str]]:
    """The pipeline under test; returns its path and the endpoints by role."""
    names = ("camera", "worker", "alerts", "log", "launcher", "fuzz")
    ep = {k: f"tcp://127.0.0.1:{p}" for k, p in zip(names, _free_ports(len(names)))}
    cfg = d / "fuzz.toml"
    cfg.write_text(f"""
[pipeline]
name = "fuzz"
data_dir = "{d}"
session = "fuzz"

[launcher]
publish = "{ep['launcher']}"
backoff_initial_s = 0.5
stop_timeout_s = 10

[[process]]
name = "camera"
kind = "capture"
publish = "{ep['camera']}"
[process.options]
source = "sim"
rate_hz = 30
seed = 1
walkway_m = 10.0

[[process]]
name = "worker"
kind = "worker"
subscribe = ["{ep['camera']}", "{ep['fuzz']}"]
publish = "{ep['worker']}"

[[process]]
name = "alerts"
kind = "sink"
subscribe = ["{ep['worker']}", "{ep['camera']}", "{ep['launcher']}", "{ep['fuzz']}"]
publish = "{ep['alerts']}"
[process.options]
sink = "alert"

[[process]]
name = "log"
kind = "sink"
subscribe = ["{ep['worker']}", "{ep['alerts']}", "{ep['camera']}", "{ep['launcher']}",
             "{ep['fuzz']}"]
topics = ["gait/", "alert", "status"]
publish = "{ep['log']}"
[process.options]
store = "sqlite"
path = "fuzz.db"

[alerts]
outbox = "alerts-outbox.db"

[[alerts.output]]
type = "log"
path = "fuzz.db"

[[alerts.rule]]
name = "slow_gait"
kind = "metric"
metric = "speed_mps"
op = "below"
raise = 0.8
clear = 0.9
window = 5
""")
    return cfg, ep


# -- the hostile messages ------------------------------------------------------------------

class Hostile:
    """Makes the frames of one hostile message of a given kind."""

    def __init__(self, rng: np.random.Generator, camera: str = "camera"):
        self.rng = rng
        self.camera = camera
        self.seq = 0
        j = np.zeros((22, 3), np.float32)
        j[:, 1] = np.linspace(0.1, 1.7, 22)
        self.joints, self.conf = j, np.ones(22, np.float32)
        self.jpeg = _tiny_jpeg()

    def _skel(self, source: str = "fuzz", body_id: int = 1, **kw: Any) -> SkeletonFrame:
        self.seq += 1
        f = SkeletonFrame(source=source, seq=self.seq, t_us=self.seq * 33_333,
                          host_us=monotonic_us(), layout="canonical22",
                          bodies=[Body(body_id, self.joints, self.conf)])
        return replace(f, **kw)

    def _valid(self) -> tuple[bytes, bytes]:
        return b"skel/fuzz", encode(self._skel())

    def make(self, kind: str) -> list[bytes]:
        r = self.rng
        if kind == "garbage":
            return [r.bytes(int(r.integers(1, 256))) for _ in range(int(r.integers(1, 5)))]
        if kind == "truncated":
            t, body = self._valid()
            return [t, body[: int(r.integers(0, len(body)))]]
        if kind == "bitflip":
            t, body = self._valid()
            b = bytearray(body)
            for i in r.integers(0, len(b), int(r.integers(1, 6))):
                b[i] ^= int(r.integers(1, 256))
            return [t, bytes(b)]
        if kind == "absurd_seq":
            big = (1 << 62) - 1
            f = self._skel(seq=int(r.choice([-big, big, -1, 0])),
                           t_us=int(r.choice([-big, big, 0])))
            return [b"skel/fuzz", _encode_unchecked(f)]
        if kind == "bad_joints":
            j = self.joints.copy()
            j[int(r.integers(0, 22)), int(r.integers(0, 3))] = r.choice([np.nan, np.inf, 1e30])
            f = self._skel()
            f.bodies[0] = Body(1, j, self.conf)
            return [b"skel/fuzz", _encode_unchecked(f)]
        if kind == "bad_layout":
            f = self._skel(layout=str(r.choice(["kinect_v9", "", "canonical22" * 40])))
            if r.random() < 0.5:
                f = self._skel()
                f.bodies[0] = Body(1, np.zeros((7, 3), np.float32), np.ones(7, np.float32))
            return [b"skel/fuzz", _encode_unchecked(f)]
        if kind == "body_flood":
            return [b"skel/fuzz", encode(self._skel(body_id=int(r.integers(0, 1 << 31))))]
        if kind == "source_flood":
            name = f"fuzz-{r.integers(0, 1 << 40):x}"
            return [f"skel/{name}".encode(), encode(self._skel(source=name))]
        if kind == "image_flood":  # half decode (a pose model each, up to the limit), half not
            name = f"img-{r.integers(0, 1 << 40):x}"
            self.seq += 1
            data = self.jpeg if r.random() < 0.5 else r.bytes(200)
            img = ImageFrame(source=name, seq=self.seq, t_us=self.seq, host_us=monotonic_us(),
                             width=64, height=48, encoding="jpeg", image=data)
            return [f"img/{name}".encode(), encode(img), img.image]
        if kind == "future_frame":  # the camera's own track, one frame a day ahead
            f = self._skel(source=self.camera, body_id=0,
                           t_us=monotonic_us() + 86_400_000_000)
            return [f"skel/{self.camera}".encode(), encode(f)]
        if kind == "sink_records":
            self.seq += 1
            c = GaitCycle(source=f"fuzz-{r.integers(0, 4)}", seq=int(r.choice(
                [self.seq, (1 << 62) - 1, -5])), t_us=self.seq, host_us=monotonic_us(),
                track=int(r.integers(-5, 1 << 31)), side=str(r.choice(["left", "right", "up"])),
                start_us=self.seq, end_us=self.seq - int(r.integers(-10, 10)),
                metrics={"speed_mps": float(r.choice([np.nan, 1e300, -1.0, 1.2]))})
            return [b"gait/fuzz", _encode_unchecked(c)]
        if kind == "sink_status":
            self.seq += 1
            st = Status(source="fuzz", seq=self.seq, t_us=self.seq, host_us=monotonic_us(),
                        process="fuzz", role=str(r.choice(["worker", "capture", "x" * 300])),
                        counters={"dropped_upstream": float(r.choice([1e300, -1, np.nan, 7])),
                                  f"k{r.integers(0, 1 << 30)}": 1.0})
            return [b"status", _encode_unchecked(st)]
        if kind == "topic_flood":
            return [f"skel/{r.integers(0, 1 << 60):x}".encode() * int(r.integers(1, 40)),
                    encode(self._skel())]
        raise ValueError(kind)


def _tiny_jpeg() -> bytes:
    """A 64x48 JPEG that decodes (a grey square), or random bytes without the webcam extra."""
    try:
        import cv2
    except ImportError:
        return b"\xff\xd8 no OpenCV here"
    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    return buf.tobytes()


def _encode_unchecked(msg: Any) -> bytes:
    """The project's encoding, or, where the encoder itself refuses the value (as it should),
    the same fields packed by hand: the receiver must refuse it either way."""
    try:
        return encode(msg)
    except Exception:  # noqa: BLE001 - any refusal: build the bytes around the encoder
        import msgpack

        d = msg.to_dict()
        return msgpack.packb(d, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


# -- measuring ---------------------------------------------------------------------------------

def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def child_pids(config: Path) -> dict[str, int]:
    """The launcher's children by process name (from their command lines)."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = [c.decode() for c in (d / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        if "proc" in cmd and str(config) in cmd and "--name" in cmd:
            found[cmd[cmd.index("--name") + 1]] = int(d.name)
    return found


class Watch(threading.Thread):
    """Collects the processes' Status and the worker's records of the camera, by phase."""

    def __init__(self, ep: dict[str, str], camera: str = "camera"):
        super().__init__(daemon=True)
        self.sub = Subscriber([ep[k] for k in ("camera", "worker", "alerts", "log",
                                               "launcher")],
                              ["status", f"gait/{camera}"])
        self.phase = "start"
        self.status: dict[str, Status] = {}
        self.latency_ms: dict[str, list[float]] = defaultdict(list)
        self.records: dict[str, int] = defaultdict(int)
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            got = self.sub.recv(100)
            if got is None:
                continue
            _, m = got
            with self.lock:
                if isinstance(m, Status):
                    self.status[m.process] = m
                else:
                    self.records[self.phase] += 1
                    self.latency_ms[self.phase].append((monotonic_us() - m.host_us) / 1000.0)
        self.sub.close()

    def counters(self, process: str) -> dict[str, float]:
        with self.lock:
            st = self.status.get(process)
            return dict(st.counters) if st else {}


def _pct(v: list[float]) -> dict[str, float | None]:
    if not v:
        return {"p50": None, "p99": None, "n": 0}
    return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "n": len(v)}


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def run(messages: int, baseline_s: float, settle_s: float, seed: int, keep: Path | None,
        rounds: int = 2) -> dict[str, Any]:
    """``rounds`` times: ``messages`` hostile messages, then ``settle_s`` of the walk alone."""
    d = Path(tempfile.mkdtemp(prefix="gaitstream-fuzz-")) if keep is None else keep
    d.mkdir(parents=True, exist_ok=True)
    cfg, ep = write_config(d)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    launcher = subprocess.Popen([sys.executable, "-m", "deploy.cli", "run", str(cfg), "--logs",
                                 str(d / "logs")], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    watch = Watch(ep)
    watch.start()
    ctx = zmq.Context.instance()
    fuzz = ctx.socket(zmq.XPUB)
    fuzz.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue makes send wait, not drop
    fuzz.setsockopt(zmq.SNDTIMEO, 2000)
    fuzz.setsockopt(zmq.LINGER, 0)
    fuzz.bind(ep["fuzz"])
    out: dict[str, Any] = {"messages": messages, "folder": str(d)}
    try:
        t0 = time.monotonic()
        while watch.counters("worker").get("cycles", 0) < 1:
            if launcher.poll() is not None or time.monotonic() - t0 > 120:
                raise RuntimeError(f"the pipeline did not produce a cycle in 120 s (logs in "
                                   f"{d / 'logs'})")
            time.sleep(0.5)
        pids = child_pids(cfg)
        log.info("pipeline up in %.0f s: %s", time.monotonic() - t0, pids)
        watch.phase = "before"
        time.sleep(baseline_s)
        before = {n: rss_mb(p) for n, p in pids.items()}
        received0 = {n: watch.counters(n).get("received", 0) for n in pids}

        rng = np.random.default_rng(seed)
        h = Hostile(rng)
        sent: dict[str, int] = defaultdict(int)
        undelivered = 0
        peak = dict(before)
        fuzz_s = 0.0
        after_rounds: list[dict[str, float | None]] = []
        weights = np.ones(len(KINDS))
        weights[KINDS.index("future_frame")] = 0.02  # a bad clock now and then, not a flood
        weights[KINDS.index("image_flood")] = 0.2
        weights /= weights.sum()
        for rnd in range(rounds):
            next_rss = time.monotonic()
            watch.phase = "during"
            t_fuzz = time.monotonic()
            kinds = rng.choice(len(KINDS), size=messages, p=weights)
            for k in tqdm(kinds, desc=f"hostile messages, round {rnd + 1} of {rounds}",
                          unit=" msg", disable=None, mininterval=1):
                kind = KINDS[k]
                try:
                    fuzz.send_multipart(h.make(kind))
                    sent[kind] += 1
                except zmq.Again:
                    undelivered += 1
                if time.monotonic() >= next_rss:
                    next_rss = time.monotonic() + 0.5
                    for n, p in pids.items():
                        r = rss_mb(p)
                        if r is not None and (peak.get(n) is None or r > peak[n]):
                            peak[n] = r
            for _ in range(3):  # beyond the size limit: the receivers drop the fuzzer's link
                fuzz.send_multipart([b"skel/fuzz", b"\0" * (64 << 20)])
                sent["oversize"] += 1
            fuzz_s += time.monotonic() - t_fuzz
            watch.phase = "after"
            time.sleep(settle_s)
            after_rounds.append({n: rss_mb(p) for n, p in child_pids(cfg).items()})
        after = after_rounds[-1]
        restarts = {n: watch.counters("launcher").get(f"restarts.{n}", 0) for n in PROCESSES}
        procs = {}
        for n in PROCESSES:
            c = watch.counters(n)
            procs[n] = {
                "received": c.get("received", 0) - received0.get(n, 0),
                "rejected": {k[len("rejected."):]: v for k, v in c.items()
                             if k.startswith("rejected.")},
                "refused_by_worker": {k: v for k, v in c.items() if k in (
                    "rejected_tracks", "rejected_sources", "rejected_image_sources",
                    "rejected_images",
                    "rejected_time", "rejected_time_jump", "rejected_layout", "errors",
                    "seq_jumps")},
                "restarts": restarts[n],
                "pid_changed": child_pids(cfg).get(n) != pids.get(n),
                "rss_mb": {"before": before.get(n), "peak": peak.get(n), "after": after.get(n),
                           "after_each_round": [a.get(n) for a in after_rounds],
                           "growth": _diff(after.get(n), before.get(n)),
                           "growth_after_round_1": _diff(after.get(n),
                                                         after_rounds[0].get(n))},
            }
        out.update({
            "sent": dict(sent), "undelivered": undelivered, "fuzz_s": fuzz_s,
            "messages_per_s": messages / fuzz_s, "processes": procs,
            "legit": {ph: {"records": watch.records[ph],
                           "records_per_s": watch.records[ph] / (
                               baseline_s if ph == "before" else fuzz_s if ph == "during"
                               else settle_s * rounds),
                           "latency_ms": _pct(watch.latency_ms[ph])}
                      for ph in ("before", "during", "after")},
            "rounds": rounds,
            "goals": {"restarts": sum(restarts.values()) == 0,
                      "rss_back_within_50mb": all(
                          p["rss_mb"]["growth"] is not None
                          and p["rss_mb"]["growth"] <= RSS_GOAL_MB for p in procs.values()),
                      "no_growth_after_round_1": all(
                          p["rss_mb"]["growth_after_round_1"] is not None
                          and p["rss_mb"]["growth_after_round_1"] <= RSS_GOAL_MB
                          for p in procs.values())},
        })
    finally:
        watch.stop.set()
        fuzz.close()
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()
        if keep is None:
            shutil.rmtree(d, ignore_errors=True)
    return out


def print_report(r: dict[str, Any]) -> None:
    print(f"{sum(r['sent'].values())} hostile messages in {r['fuzz_s']:.1f} s "
          f"({r['messages_per_s']:.0f}/s; {r['undelivered']} not taken within 2 s)")
    print("  by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(r["sent"].items())))
    print(f"\n{'process':8s} {'received':>9s} {'restarts':>8s} {'RSS MB before':>14s} "
          f"{'peak':>7s} {'after rounds':>16s} {'growth':>7s} {'since round 1':>14s}")
    for n, p in r["processes"].items():
        m = p["rss_mb"]
        f = (lambda v: "-" if v is None else f"{v:.0f}")
        rounds = " ".join(f(v) for v in m["after_each_round"])
        print(f"{n:8s} {p['received']:9.0f} {p['restarts']:8.0f} {f(m['before']):>14s} "
              f"{f(m['peak']):>7s} {rounds:>16s} {f(m['growth']):>7s} "
              f"{f(m['growth_after_round_1']):>14s}")
    for n, p in r["processes"].items():
        if p["rejected"] or p["refused_by_worker"]:
            reasons = {**p["rejected"], **p["refused_by_worker"]}
            print(f"  {n} refused: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                 sorted(reasons.items(), key=lambda kv: -kv[1])))
    print("\nthe walk's records (frame in -> record out):")
    for ph, v in r["legit"].items():
        lat = v["latency_ms"]
        print(f"  {ph:7s} {v['records']:5d} records, {v['records_per_s']:.2f}/s, latency p50 "
              f"{_ms(lat['p50'])} p99 {_ms(lat['p99'])}")
    g = r["goals"]
    print(f"\ngoals: no restart {'met' if g['restarts'] else 'NOT met'}; memory back within "
          f"{RSS_GOAL_MB:.0f} MB {'met' if g['rss_back_within_50mb'] else 'NOT met'}; "
          f"no growth after round 1 {'met' if g['no_growth_after_round_1'] else 'NOT met'}")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--messages", type=int, default=100_000, help="hostile messages to send")
    p.add_argument("--baseline-s", type=float, default=10.0,
                   help="seconds of the walk measured before the fuzzing")
    p.add_argument("--settle-s", type=float, default=40.0,
                   help="seconds after it before memory is read again (longer than the "
                        "worker's image_source_timeout_s, 30 s, so pose models are given back)")
    p.add_argument("--rounds", type=int, default=2,
                   help="fuzz-then-settle rounds: memory that a first round loads for good (a "
                        "library) shows as growth in round 1 only; a leak grows every round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="run in this folder and keep it (logs, database)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    if args.messages < 1:
        print("error: --messages must be at least 1", file=sys.stderr)
        return 2
    r = run(args.messages, args.baseline_s, args.settle_s, args.seed, args.keep, args.rounds)
    print_report(r)
    if args.json:
        print(json.dumps(r))
    return 0
