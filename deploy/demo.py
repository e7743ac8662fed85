"""``gaitstream demo``: the whole pipeline on the simulated walker, no camera needed.

Starts the processes of ``deploy/configs/demo.toml`` through the launcher (separate processes over
ZeroMQ, exactly as a kiosk runs), prints each gait cycle record as it arrives, and a summary at the
end. Everything it writes goes under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np

from inference.analysis.cycles import trusted
from streams.schema import Alert, GaitCycle, Status, flag_words
from streams.transport import Subscriber

from deploy import preflight
from deploy.config import PipelineConfig, load_config
from deploy.launcher import Launcher
from streams.node import install_stop_handlers

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("gaitstream-demo"),
                   help="folder for the demo's recordings, database and logs")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def write_config(out: Path, source: dict | None = None, finite: bool = False) -> Path:
    """The demo configuration with its data folder pointed at ``out``; ``source`` replaces the
    simulated walker's options (``gaitstream run FILE`` runs a recording or a video this way)."""
    text = resources.files("deploy").joinpath("configs/demo.toml").read_text()
    text = re.sub(r'(?m)^data_dir = .*$', f'data_dir = {json.dumps(str(out.resolve()))}', text)
    if source is not None:
        opts = "\n".join(f"{k} = {json.dumps(v)}" for k, v in source.items())
        text = re.sub(r'(?ms)(name = "camera"\n.*?\[process.options\]\n).*?\n\n',
                      lambda m: m.group(1) + opts + "\n\n", text)
    if finite:  # a file played once: the pipeline stops when the camera process is done
        text = text.replace('name = "camera"\nkind = "capture"',
                            'name = "camera"\nkind = "capture"\nrestart = "on-failure"')
        text = text.replace("[launcher]\n", '[launcher]\nstop_when_done = ["camera"]\n')
    path = out / "pipeline.toml"
    path.write_text(text)
    return path


def _fmt(v: float | None, nd: int = 2) -> str:
    return "   -" if v is None else f"{v:.{nd}f}"


HEADER = (f"{'track':>5} {'side':>5} {'stride s':>8} {'cadence':>7} {'stride m':>8} "
          f"{'speed':>6} {'stance%':>7} {'knee ROM':>8}")


def cycle_line(m: GaitCycle) -> str:
    """One console row: the measures of a trusted cycle; for one that is not, why not (its
    measures would mislead: a stride across a turn, legs swapped by the tracker)."""
    head = f"{m.track:>5} {m.side:>5}"
    if not trusted(m):
        return f"{head}   not used: {flag_words(m.flags)}"
    g = m.metrics.get
    note = f"  ({flag_words(m.flags)})" if m.flags else ""
    return (f"{head} {_fmt(g('stride_time_s')):>8} {_fmt(g('cadence_spm'), 0):>7} "
            f"{_fmt(g('stride_length_m')):>8} {_fmt(g('speed_mps')):>6} "
            f"{_fmt(g('stance_pct'), 0):>7} {_fmt(g('knee_rom_deg'), 0):>8}{note}")


def alert_line(a: Alert) -> str:
    return f"ALERT {a.state} [{a.severity}] {a.rule}: {a.text}"


def print_records(endpoints: list[str], stop: threading.Event, seen: list[GaitCycle],
                  statuses: dict[str, Status]) -> None:
    sub = Subscriber(endpoints, ["gait/", "status", "alert"])
    print(HEADER, flush=True)
    while not stop.is_set():
        got = sub.recv(200)
        if got is None:
            continue
        _, m = got
        if isinstance(m, Status):
            statuses[m.process] = m
        elif isinstance(m, GaitCycle):
            seen.append(m)
            print(cycle_line(m), flush=True)
        elif isinstance(m, Alert):
            print(alert_line(m), flush=True)
    sub.close()


def summarize(cycles: list[GaitCycle], statuses: dict[str, Status]) -> dict:
    """Medians over the trusted cycles only: turns, swaps and missing events would bias them."""
    good = [c for c in cycles if trusted(c)]

    def med(key: str) -> float | None:
        vals = [c.metrics.get(key) for c in good if c.metrics.get(key) is not None]
        return float(np.median(vals)) if vals else None

    return {
        "cycles": len(cycles),
        "trusted_cycles": len(good),
        "median": {k: med(k) for k in ("cadence_spm", "stride_length_m", "speed_mps",
                                       "stance_pct", "knee_rom_deg")},
        "processes": {name: st.counters for name, st in statuses.items()},
    }


def what_was_written(cfg: PipelineConfig, out: Path) -> str:
    """Where the run's files are and what to do with them next."""
    logs = [cfg.resolve(p.options.get("path", "")) for p in cfg.processes
            if p.kind == "sink" and p.options.get("sink", "log") == "log"
            and p.options.get("store", "sqlite") == "sqlite"]
    streams = [cfg.resolve(p.options.get("path", "stream.gst")) for p in cfg.processes
               if p.kind == "record"]
    lines = [f"\nWritten to {out}:"]
    lines += [f"  {p.name:<14} the log (SQLite): every cycle, event and alert" for p in logs]
    lines += [f"  {p.name:<14} the recorded stream: skeletons, records, status" for p in streams]
    lines += [f"  {'logs/':<14} each process's own output", "Next:"]
    lines += [f"  gaitstream export {p} --format csv --out cycles.csv    the cycles as a table"
              for p in logs]
    lines += [f"  gaitstream run deploy/configs/replay.toml --data-dir {p.parent}    "
              "replay the recording flat out into a fresh log" for p in streams
              if p.name == "demo.gst"]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"gaitstream demo: simulated walker -> worker -> records; output in {args.out} "
          "(Ctrl-C to stop)", flush=True)
    return run_with_console(write_config(args.out), args.out, args.duration, args.json)


def run_with_console(config: Path, out: Path, duration: float | None, as_json: bool) -> int:
    """Run a configuration through the launcher, printing cycle records as they arrive."""
    cfg = load_config(config)
    if not preflight.report(cfg):
        return 2
    if logging.getLogger().level > logging.DEBUG:  # the console is for records, unless -v
        logging.getLogger("deploy.launcher").setLevel(logging.WARNING)
    stop = install_stop_handlers()
    if duration:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    cycles: list[GaitCycle] = []
    statuses: dict[str, Status] = {}
    endpoints = [p.publish for p in cfg.processes if p.publish]
    printer_stop = threading.Event()
    printer = threading.Thread(target=print_records, args=(endpoints, printer_stop, cycles,
                                                           statuses), daemon=True)
    printer.start()
    Launcher(cfg, stop, log_dir=out / "logs").run()
    time.sleep(0.3)
    printer_stop.set()
    printer.join(2.0)
    summary = summarize(cycles, statuses)
    m = summary["median"]
    print(f"\n{summary['cycles']} gait cycles, {summary['trusted_cycles']} trusted (the others "
          "crossed a turn or a tracking problem: 'not used' above); over the trusted ones: "
          f"median cadence {_fmt(m['cadence_spm'], 0)} "
          f"steps/min, stride {_fmt(m['stride_length_m'])} m, speed {_fmt(m['speed_mps'])} m/s")
    print(what_was_written(cfg, out))
    if as_json:
        print(json.dumps(summary))
    return 0
