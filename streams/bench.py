"""``gaitstream bench transport``: per-hop latency and throughput of the wire vs bare pyzmq.

Every case runs its receiver in a separate process (as the pipeline does), in one run, so the
ratios compare like with like on whatever this machine is doing at the time:

* one hop, skeleton message (1 body, 22 joints): gaitstream Publisher/Subscriber with encode +
  validation vs a bare pyzmq PUB/SUB pair sending the same number of bytes;
* one hop, 640x480 BGR frame: ImageFrame (zero-copy pixel frame) vs bare pyzmq;
* two hops at 30 Hz, skeletons: capture -> relay process (decode, re-encode, publish, as the worker
  does) -> subscriber, gaitstream vs bare.

Latency uses the host monotonic clock, shared by all processes on one host. A shared machine's
noise is larger than the difference measured (the same bare case reads 0.11 then 0.20 ms a few
seconds apart), so every pair runs ``--rounds`` times, bare and wire alternating and starting
with each in turn, and a case reports the median over its rounds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import struct
import time
from dataclasses import dataclass

import numpy as np
import zmq

from streams.schema import Body, ImageFrame, SkeletonFrame, encode, monotonic_us
from streams.transport import Publisher, Subscriber

_STAMP = struct.Struct("<q")


@dataclass
class Case:
    name: str
    wire: bool  # gaitstream transport (True) or bare pyzmq (False)
    image: bool
    hops: int
    rate_hz: float  # 0 = as fast as possible (throughput)
    n: int


_JOINTS = np.random.default_rng(0).normal(size=(22, 3)).astype(np.float32)
_CONF = np.ones(22, np.float32)


def _skeleton(i: int) -> SkeletonFrame:
    """A one-body frame stamped now: the stamp is taken last so latency starts at the send."""
    f = SkeletonFrame(source="bench", seq=i, t_us=i, host_us=0, bodies=[Body(0, _JOINTS, _CONF)])
    f.host_us = monotonic_us()
    return f


_IMG = np.zeros((480, 640, 3), np.uint8)


def _receiver(case: Case, ep: str, conn) -> None:
    """Subscribe, receive ``case.n`` messages (or time out), send back latencies and duration."""
    lat = np.full(case.n, np.nan)
    if case.wire:
        sub = Subscriber([ep], [""], hwm=100000)
    else:
        ctx = zmq.Context()
        sub_sock = ctx.socket(zmq.SUB)
        sub_sock.setsockopt(zmq.RCVHWM, 100000)
        sub_sock.setsockopt(zmq.SUBSCRIBE, b"")
        sub_sock.connect(ep)
    conn.send("ready")
    got, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + 60
    while got < case.n and time.monotonic() < deadline:
        if case.wire:
            r = sub.recv(200)
            if r is None:
                continue
            sent = r[1].host_us
        else:
            if not sub_sock.poll(200):
                continue
            frames = sub_sock.recv_multipart(copy=False)
            sent = _STAMP.unpack_from(frames[1].buffer)[0]
        now = monotonic_us()
        if got == 0:
            first = time.monotonic()
        last = time.monotonic()
        lat[got] = (now - sent) / 1000.0
        got += 1
    conn.send((lat[:got], got, last - first))


def _relay(case: Case, ep_in: str, ep_out: str, conn) -> None:
    """One intermediate hop: receive, (decode, validate, re-encode,) publish."""
    if case.wire:
        sub = Subscriber([ep_in], [""], hwm=100000)
        pub = Publisher(ep_out, hwm=100000)
    else:
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(ep_in)
        pub = ctx.socket(zmq.PUB)
        pub.bind(ep_out)
    conn.send("ready")
    for _ in range(case.n):
        if case.wire:
            r = None
            while r is None:
                r = sub.recv(1000)
            pub.send(r[1])
        else:
            pub.send_multipart(sub.recv_multipart(copy=False), copy=False)
    time.sleep(0.5)


def _free_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def run_case(case: Case) -> dict:
    ctx = mp.get_context("fork")
    ep0 = _free_endpoint()
    ep_last = _free_endpoint() if case.hops == 2 else ep0
    if case.wire:
        pub = Publisher(ep0, hwm=100000)
    else:
        zctx = zmq.Context()
        pub = zctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 100000)
        pub.bind(ep0)
    procs = []
    if case.hops == 2:
        a, b = ctx.Pipe()
        p = ctx.Process(target=_relay, args=(case, ep0, ep_last, b), daemon=True)
        p.start()
        procs.append(p)
        a.recv()
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_receiver, args=(case, ep_last, child), daemon=True)
    p.start()
    procs.append(p)
    parent.recv()
    time.sleep(0.5)  # let subscriptions propagate through both hops
    skel_bytes = len(encode(_skeleton(0)))
    pad = b"\0" * (skel_bytes - _STAMP.size)
    period = 1.0 / case.rate_hz if case.rate_hz else 0.0
    t_next = time.monotonic()
    for i in range(case.n):
        if period:
            t_next += period
            while (d := t_next - time.monotonic()) > 0:
                time.sleep(d)
        if case.wire:
            if case.image:
                pub.send(ImageFrame(source="bench", seq=i, t_us=i, host_us=monotonic_us(),
                                    width=640, height=480, image=_IMG))
            else:
                pub.send(_skeleton(i))
        else:
            body = _STAMP.pack(monotonic_us()) + (b"" if case.image else pad)
            frames = [b"x", body] + ([_IMG] if case.image else [])
            pub.send_multipart(frames, copy=not case.image)
    lat, got, dur = parent.recv()
    for p in procs:
        p.join(2)
    pub.close()
    out = {"case": case.name, "sent": case.n, "received": int(got)}
    if got:
        out.update(median_ms=float(np.median(lat)), p99_ms=float(np.percentile(lat, 99)))
    if case.rate_hz == 0 and dur > 0:
        out["msgs_per_s"] = got / dur
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=1000, help="messages per latency case")
    p.add_argument("--rounds", type=int, default=3, help="runs of every case (medians taken)")
    p.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    n = args.n
    cases = [
        Case("skeleton 1-hop wire", True, False, 1, 500, n),
        Case("skeleton 1-hop bare", False, False, 1, 500, n),
        Case("skeleton throughput wire", True, False, 1, 0, n * 10),
        Case("skeleton throughput bare", False, False, 1, 0, n * 10),
        Case("image640 1-hop wire", True, True, 1, 100, max(10, n // 4)),
        Case("image640 1-hop bare", False, True, 1, 100, max(10, n // 4)),
        Case("image640 throughput wire", True, True, 1, 0, n),
        Case("image640 throughput bare", False, True, 1, 0, n),
        Case("skeleton 2-hop 30Hz wire", True, False, 2, 30, max(10, n // 5)),
        Case("skeleton 2-hop 30Hz bare", False, False, 2, 30, max(10, n // 5)),
    ]
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    runs: dict[str, list[dict]] = {c.name: [] for c in cases}
    for rnd in range(args.rounds):
        for i in range(0, len(cases), 2):  # (wire, bare) pairs, alternating which runs first
            pair = cases[i:i + 2] if rnd % 2 == 0 else cases[i:i + 2][::-1]
            for c in pair:
                runs[c.name].append(run_case(c))
    results = []
    for c in cases:
        rs = runs[c.name]
        r = {"case": c.name, "sent": c.n, "received": min(x["received"] for x in rs),
             "rounds": len(rs)}
        for key in ("median_ms", "p99_ms", "msgs_per_s"):
            vals = [x[key] for x in rs if key in x]
            if vals:
                r[key] = float(np.median(vals))
        r["median_ms_rounds"] = [x.get("median_ms") for x in rs]
        results.append(r)
        extra = f"  {r['msgs_per_s']:,.0f} msg/s" if "msgs_per_s" in r else ""
        print(f"{r['case']:<28} recv {r['received']:>6}/{r['sent']:<6} median "
              f"{r.get('median_ms', float('nan')):7.3f} ms  p99 {r.get('p99_ms', float('nan')):7.3f}"
              f" ms{extra}", flush=True)
    by = {r["case"]: r for r in results}

    def ratio(a: str, b: str, key: str) -> float:
        return by[a].get(key, float("nan")) / by[b].get(key, float("nan"))

    summary = {
        "skeleton_hop_median_ratio": ratio("skeleton 1-hop wire", "skeleton 1-hop bare",
                                           "median_ms"),
        "image_hop_median_ratio": ratio("image640 1-hop wire", "image640 1-hop bare",
                                        "median_ms"),
        "skeleton_throughput_ratio": ratio("skeleton throughput wire",
                                           "skeleton throughput bare", "msgs_per_s"),
        "image_throughput_ratio": ratio("image640 throughput wire", "image640 throughput bare",
                                        "msgs_per_s"),
        "two_hop_30hz_median_ms": by["skeleton 2-hop 30Hz wire"].get("median_ms"),
        "two_hop_30hz_added_vs_bare_ms": by["skeleton 2-hop 30Hz wire"].get("median_ms", 0)
        - by["skeleton 2-hop 30Hz bare"].get("median_ms", 0),
    }
    print(f"per-hop median, wire / bare pyzmq: skeleton {summary['skeleton_hop_median_ratio']:.2f}x, "
          f"640x480 image {summary['image_hop_median_ratio']:.2f}x (goal: skeleton <= 1.3x)")
    print(f"throughput, wire / bare: skeleton {summary['skeleton_throughput_ratio']:.2f} "
          f"(goal >= 0.8), image {summary['image_throughput_ratio']:.2f}")
    print(f"30 Hz skeletons over two hops: median {summary['two_hop_30hz_median_ms']:.3f} ms "
          f"({summary['two_hop_30hz_added_vs_bare_ms']:+.3f} ms vs bare; goal <= 1 ms)")
    if args.json:
        print(json.dumps({"cases": results, "summary": summary}))
    return 0
