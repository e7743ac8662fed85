"""How many concurrent 30 Hz tracks one worker holds, per configuration of its models.

``gaitstream bench capacity [--json] [--configs ...] [--steps 8,16,...] [--hold S] [--plot PNG]``

A feeder process publishes simulated walkers (``capture/sim``, each its own camera with one
person, frames spread over the 1/30 s period as unsynchronised cameras send them) to one worker
process running the pipeline's own loop (``run_worker``), which reads them over ZeroMQ as it does
live. The number of tracks goes up step by step; at each step the bench reads the worker's Status
(what an operator sees) for ``--hold`` seconds after ``--settle`` seconds, and the step holds when
Status showed no drops (``dropped_upstream``), no records sent without their model work and a
p99 latency at or under 250 ms. A
configuration's capacity is the last step that held; the ramp stops at the first that did not.

The worker is pinned to one core and the feeder to another where the machine has two, so the
figures are per core; CPU per track is the worker's CPU time (user + system, from /proc) over the
hold, divided by the tracks. On a shared machine other processes take from that core too: the
wall-clock latency suffers, the CPU figures much less. Status's latency is over the worker's last
2048 outputs (events and cycles), which at a few tracks reaches back into earlier steps.

Configurations: ``classical`` (no learned weights), ``gait-transformer`` (the model alone),
``gait-transformer+anomaly`` (the model, and the diffusion scorer on every cycle),
``classical+anomaly+embedding`` (the scorer on every cycle and the GaitMAE embedding of every
walking bout). The scorer and the embedding run in the worker's model thread (``model_threads``)
beside its loop, on the same core here; a step also fails when Status shows records sent without
their model work (``model_work_skipped``: the model thread fell behind). DPG is listed, not
ramped: it runs once per webcam bout, and a webcam track costs its pose estimation.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


RATE_HZ = 30.0
P99_LIMIT_MS = 250.0
CONFIGS: dict[str, dict[str, Any]] = {
    "classical": {"analysis": "classical"},
    "gait-transformer": {"analysis": "gait-transformer"},
    "gait-transformer+anomaly": {"analysis": "gait-transformer", "anomaly": True},
    # every model a depth camera's tracks get: bouts come from the classical analysis
    "classical+anomaly+embedding": {"analysis": "classical", "anomaly": True,
                                    "embedding": True},
}
# Models this bench does not ramp, and why (the JSON carries the reason).
NOT_RAMPED = {"dpg": ("webcam tracks only, once per walking bout (4 ms a clip: bench dpg); a "
                      "webcam track's cost is its pose estimation (bench webcam), not ramped "
                      "here")}
DEFAULT_STEPS = (4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320)


@dataclass
class Walk:
    """One simulated person's frames: times (us) and Azure Kinect joints and confidences."""

    layout: str
    t_us: np.ndarray
    joints: list[np.ndarray]
    conf: list[np.ndarray]


def simulate_walks(n: int, seconds: float, sensor: str) -> list[Walk]:
    """``n`` different walkers (people, patterns and seeds) from the simulator, frames with no
    body (the sensor lost the person) left out."""
    from capture.sim.source import SimSource

    walks = []
    for i in range(n):
        src = SimSource(f"w{i}", rate_hz=RATE_HZ, seed=100 + i, duration_s=seconds,
                        sensor=sensor, pattern=("normal", "antalgic", "shuffling")[i % 3],
                        severity=i % 3)
        t, j, c = [], [], []
        for f in src.frames():
            if f.bodies:
                t.append(f.t_us)
                j.append(f.bodies[0].joints.astype(np.float32))
                c.append(f.bodies[0].confidence.astype(np.float32))
        walks.append(Walk(src.layout, np.asarray(t, np.int64), j, c))
    return walks


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def _feeder(walks: list[Walk], ep: str, conn: Any, cpu: int | None) -> None:
    """Publish ``n`` tracks at 30 Hz, ``n`` as the parent last said (0 ends it). Track ``i`` is
    camera ``cam<i>`` playing walk ``i % len(walks)`` from its own offset; its frames go out at
    phase ``i / n`` of each period, as independent cameras' would."""
    from streams.schema import Body, SkeletonFrame, monotonic_us
    from streams.transport import Publisher

    _pin(cpu)
    pub = Publisher(ep, hwm=100000)
    n = 0
    frame: dict[int, int] = {}  # track -> frames sent
    period = 1.0 / RATE_HZ
    t0 = time.monotonic()
    tick = 0
    while True:
        if conn.poll():
            n = conn.recv()
            if n == 0:
                break
        due0 = t0 + tick * period
        for i in range(n):
            due = due0 + period * i / n
            if (d := due - time.monotonic()) > 0.0005:
                time.sleep(d)
            w = walks[i % len(walks)]
            k = frame.get(i, 0)
            frame[i] = k + 1
            idx = (k + 37 * i) % len(w.t_us)
            pub.send(SkeletonFrame(source=f"cam{i:03d}", seq=k + 1,
                                   t_us=int(k * 1e6 / RATE_HZ), host_us=monotonic_us(),
                                   layout=w.layout, bodies=[Body(0, w.joints[idx], w.conf[idx])]))
        tick += 1
        if (d := t0 + tick * period - time.monotonic()) > 0:
            time.sleep(d)
        elif d < -1.0:  # the feeder itself fell behind: start the clock again, not a burst
            t0, tick = time.monotonic(), 0
    pub.close()


def _worker(options: dict[str, Any], ep_in: str, ep_out: str, cpu: int | None) -> None:
    """The pipeline's worker loop, as ``gaitstream run`` starts it."""
    from inference.worker import WorkerConfig, run_worker
    from streams.node import StatusReporter, install_stop_handlers
    from streams.transport import Publisher, Subscriber

    _pin(cpu)
    stop = install_stop_handlers()
    # load each model once before the worker starts, so that the imports and first session
    # (seconds) do not land in its latency window as if they were the cost of the load
    cfg = WorkerConfig.from_options(options)
    if cfg.analysis != "classical":
        from inference.models.gait_transformer.runtime import load_gait_model

        load_gait_model(backend=cfg.backend, options=cfg.model_options())
    pub = Publisher(ep_out)  # run_worker loads the scorer and the embedder before its loop
    run_worker(cfg, Subscriber([ep_in], ["skel/"]), pub, stop, StatusReporter("worker", "worker"))
    pub.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, its threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpus() -> tuple[int | None, int | None]:
    """(worker core, feeder core): two different ones where this process may use two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1], cpus[0]) if len(cpus) > 1 else (cpus[0], cpus[0])


def run_config(name: str, walks: list[Walk], steps: list[int], hold_s: float, settle_s: float,
               warmup_s: float) -> dict[str, Any]:
    from streams.schema import Status
    from streams.transport import Subscriber

    ctx = mp.get_context("spawn")  # a clean worker: no state from this process, as in a run
    ep_in, ep_out = free_endpoint(), free_endpoint()
    wcpu, fcpu = _cpus()
    status_sub = Subscriber([ep_out], ["status"])
    worker = ctx.Process(target=_worker, args=(CONFIGS[name], ep_in, ep_out, wcpu), daemon=True)
    worker.start()
    parent, child = ctx.Pipe()
    feeder = ctx.Process(target=_feeder, args=(walks, ep_in, child, fcpu), daemon=True)
    feeder.start()
    latest: list[Status] = []

    def statuses_for(seconds: float) -> list[Status]:
        got, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            r = status_sub.recv(int(left * 1000) + 1)
            if r is not None and isinstance(r[1], Status):
                got.append(r[1])
        latest[:] = got[-1:] or latest
        return got

    out: dict[str, Any] = {"name": name, "built": True, "options": CONFIGS[name], "steps": []}
    try:
        # models load again at the first track: let that and the first cycles (the anomaly
        # scorer's first run) pass before anything is measured
        parent.send(min(steps[0], 2))
        end = time.monotonic() + max(warmup_s, 60.0)
        while time.monotonic() < end:
            got = statuses_for(1.0)
            if (got and got[-1].uptime_s >= warmup_s
                    and got[-1].counters.get("cycles", 0) >= 1):
                break
        for n in steps:
            parent.send(n)
            statuses_for(settle_s)
            before = latest[0] if latest else None
            c0, w0 = cpu_seconds(worker.pid), time.monotonic()
            window = statuses_for(hold_s)
            c1, w1 = cpu_seconds(worker.pid), time.monotonic()
            if not window or before is None:
                step = {"tracks": n, "ok": False, "reason": "no Status from the worker"}
                out["steps"].append(step)
                break
            last = window[-1]
            dropped = (last.counters.get("dropped_upstream", 0.0)
                       - before.counters.get("dropped_upstream", 0.0))
            frames = last.counters.get("frames", 0.0) - before.counters.get("frames", 0.0)
            skipped = (last.counters.get("model_work_skipped", 0.0)
                       - before.counters.get("model_work_skipped", 0.0))
            span = max(last.uptime_s - before.uptime_s, 1e-9)
            p99 = max(s.latency_ms.get("p99", 0.0) for s in window)
            cpu = (c1 - c0) / (w1 - w0)
            step = {"tracks": n, "p50_ms": last.latency_ms.get("p50", float("nan")),
                    "p99_ms": p99, "dropped": int(dropped), "skipped": int(skipped),
                    "frames_per_s": frames / span,
                    "cpu_core_fraction": cpu, "cpu_per_track_pct": 100.0 * cpu / n}
            reasons = []
            if dropped > 0:
                reasons.append(f"{int(dropped)} frames dropped")
            if skipped > 0:  # records sent without their model's work: the models fell behind
                reasons.append(f"{int(skipped)} records without their model work")
            if not p99 <= P99_LIMIT_MS:
                reasons.append(f"p99 {p99:.0f} ms > {P99_LIMIT_MS:.0f} ms")
            step["ok"] = not reasons
            if reasons:
                step["reason"] = ", ".join(reasons)
            out["steps"].append(step)
            print(f"  {name:<26} {n:4d} tracks: p50 {step['p50_ms']:7.1f} ms  p99 {p99:7.1f} ms"
                  f"  dropped {int(dropped):5d}  {frames / span:7.0f} frames/s  CPU "
                  f"{100 * cpu:5.1f}% of a core  {'ok' if step['ok'] else step['reason']}",
                  flush=True)
            if not step["ok"]:
                break
    finally:
        parent.send(0)
        feeder.join(5)
        worker.terminate()  # SIGTERM: the worker's stop handler ends its loop
        worker.join(10)
        for p in (feeder, worker):
            if p.is_alive():
                p.kill()
        status_sub.close()
    held = [s for s in out["steps"] if s["ok"]]
    failed = [s for s in out["steps"] if not s["ok"]]
    out["tracks"] = held[-1]["tracks"] if held else 0
    out["failed_at"] = failed[0]["tracks"] if failed else None
    out["failed_because"] = failed[0].get("reason") if failed else None
    out["cpu_per_track_pct"] = held[-1]["cpu_per_track_pct"] if held else None
    out["cpu_at_capacity"] = held[-1]["cpu_core_fraction"] if held else None
    # tracks one full core would hold at the CPU per track measured, where the latency allowed
    out["tracks_per_core_by_cpu"] = (100.0 / held[-1]["cpu_per_track_pct"]
                                     if held and held[-1]["cpu_per_track_pct"] > 0 else None)
    return out


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in results:
        if not r.get("steps"):
            continue
        n = [s["tracks"] for s in r["steps"] if "p99_ms" in s]
        ln = ax.plot(n, [s["p99_ms"] for s in r["steps"] if "p99_ms" in s], marker="o",
                     label=f"{r['name']} p99")
        ax.plot(n, [s["p50_ms"] for s in r["steps"] if "p99_ms" in s], ls="--",
                color=ln[0].get_color(), alpha=0.6, label=f"{r['name']} p50")
    ax.axhline(P99_LIMIT_MS, color="k", lw=0.8, ls=":", label=f"{P99_LIMIT_MS:.0f} ms")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent 30 Hz tracks on one worker")
    ax.set_ylabel("worker latency (ms, Status)")
    ax.set_title("gaitstream bench capacity")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help=f"comma-separated, of: {', '.join(CONFIGS)}")
    p.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                   help="track counts to ramp through (comma-separated, increasing)")
    p.add_argument("--hold", type=float, default=8.0, help="seconds measured per step")
    p.add_argument("--settle", type=float, default=3.0, help="seconds before each measurement")
    p.add_argument("--warmup", type=float, default=8.0, help="seconds for models to load")
    p.add_argument("--walks", type=int, default=6, help="different simulated walkers")
    p.add_argument("--walk-s", type=float, default=60.0, help="seconds simulated per walker")
    p.add_argument("--sensor", default="kinect", help="simulated sensor: kinect, none")
    p.add_argument("--plot", type=Path, default=Path("bench-capacity.png"),
                   help="PNG of latency against tracks")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration {unknown}; known: {', '.join(CONFIGS)}")
    steps = sorted({int(s) for s in args.steps.split(",")})
    if not steps or steps[0] < 1:
        raise SystemExit("--steps must be positive track counts")
    t0 = time.monotonic()
    walks = simulate_walks(args.walks, args.walk_s, args.sensor)
    print(f"simulated {len(walks)} walkers x {args.walk_s:.0f} s ({args.sensor} sensor) in "
          f"{time.monotonic() - t0:.1f} s; worker on CPU {_cpus()[0]}, feeder on {_cpus()[1]}",
          flush=True)
    results = [run_config(n, walks, steps, args.hold, args.settle, args.warmup) for n in names]
    for n, why in NOT_RAMPED.items():
        results.append({"name": n, "built": False, "note": why})
    for r in results:
        if not r["built"]:
            print(f"{r['name']:<28} not ramped: {r['note']}")
            continue
        cpt = r["cpu_per_track_pct"]
        print(f"{r['name']:<28} holds {r['tracks']:4d} tracks"
              + (f" (fails at {r['failed_at']}: {r['failed_because']})" if r["failed_at"]
                 else " (every step held)")
              + (f"; {cpt:.2f}% of a core per track, ~{r['tracks_per_core_by_cpu']:.0f} tracks "
                 "per core by CPU" if cpt else ""))
    plot(results, args.plot)
    print(f"plot: {args.plot}")
    if args.json:
        print(json.dumps({"bench": "capacity", "rate_hz": RATE_HZ, "p99_limit_ms": P99_LIMIT_MS,
                          "worker_cpu": _cpus()[0], "hold_s": args.hold, "sensor": args.sensor,
                          "configs": results, "plot": str(args.plot)}))
    return 0
