"""``gaitstream run CONFIG.toml``: start, watch and restart the processes a configuration names,
until Ctrl-C / SIGTERM. ``gaitstream run FILE`` runs a recording or a video through capture ->
worker -> log like the demo, and stops when the file has been played.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from capture.sources import source_for_file
from deploy import preflight
from deploy.config import load_config
from deploy.demo import run_with_console, write_config
from deploy.launcher import Launcher
from streams.node import install_stop_handlers


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path,
                   help="pipeline TOML (see deploy/configs/), or a recording / video file to run "
                        "through capture -> worker -> log like the demo")
    p.add_argument("--out", type=Path, default=None,
                   help="with a recording or video: folder for the database, logs and stream")
    p.add_argument("--json", action="store_true",
                   help="with a recording or video: JSON summary as the last line")
    p.add_argument("--logs", type=Path, default=None,
                   help="write each process's output to DIR/<name>.log")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the configuration's data folder instead of its [pipeline] data_dir "
                        "(relative paths of its processes resolve against it)")


def main(args: argparse.Namespace) -> int:
    if args.config.suffix.lower() != ".toml":
        out = args.out or Path(f"gaitstream-{args.config.stem}")
        out.mkdir(parents=True, exist_ok=True)
        return run_with_console(write_config(out, source_for_file(args.config), finite=True), out,
                                args.duration, args.json)
    cfg = load_config(args.config, {"data_dir": str(args.data_dir.resolve())}
                      if args.data_dir else None)
    if not preflight.report(cfg):
        return 2
    stop = install_stop_handlers()
    if args.duration:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    return Launcher(cfg, stop, args.logs).run()
