"""The ``gaitstream`` command line.

Each command lives in the module that owns its job; that module exposes
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only when their command
runs, so an edge box without the webcam or training extras still has every other command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from importlib.metadata import version

from capture.readers.recording import RecordingError
from deploy.config import ConfigError
from streams.extras import MissingExtra
from streams.node import FloodFilter
from streams.streamfile import StreamFileError

# What a user can put right (a path, a key, an extra): reported in one line, not a traceback.
USER_ERRORS = (MissingExtra, ConfigError, RecordingError, StreamFileError, FileNotFoundError,
               IsADirectoryError, NotADirectoryError)

# (command, module, help). Two-word commands ("bench transport") group under their first word.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "deploy.demo", "run the whole pipeline on the simulated walker (no camera needed)"),
    ("run", "deploy.run", "start, watch and restart the processes a TOML configuration names"),
    ("proc", "deploy.processes", "run one pipeline process (used by the launcher)"),
    ("keys", "streams.keys", "generate CURVE key pairs for links that leave the machine"),
    ("record", "streams.record", "record topics to a stream file"),
    ("replay", "streams.replay", "publish a stream file again"),
    ("info", "streams.info", "what a stream file holds: topics, counts, sources, duration"),
    ("preview", "sinks.preview", "live skeleton-on-video preview over HTTP (kiosk screen)"),
    ("analyze", "inference.analyze", "run a recording through the gait analysis offline"),
    ("plot", "inference.plot", "save a figure of a trial: angles, feet, events"),
    ("simulate", "capture.sim.dataset", "write a simulated-walker dataset with ground truth"),
    ("export", "sinks.export", "export logged records to CSV or Parquet"),
    ("report", "deploy.report", "the walk report of a logged session: HTML and PDF"),
    ("eval events", "inference.eval.events", "gait-event timing against ground truth"),
    ("eval anomaly", "inference.eval.anomaly", "diffusion anomaly scores against labels"),
    ("eval noise", "inference.eval.noise", "event timing against simulated sensor noise (plot)"),
    ("eval gdi", "inference.eval.gdi", "GDI and GPS per group of an FGDI-layout folder, with CIs"),
    ("eval gait-variables", "inference.eval.gait_variables",
     "the nine gait variables from skeletons against a lab's Plug-in-Gait angles"),
    ("eval angles", "inference.eval.angles",
     "joint angles from markers against the lab's own (Plug-in-Gait, OpenSim IK)"),
    ("train gait-transformer", "inference.train.gait_transformer", "train the gait transformer"),
    ("train diffusion", "inference.train.diffusion", "train the diffusion anomaly scorer"),
    ("train gdi", "inference.train.gdi", "fit the GDI basis, convert the normative curves"),
    ("train gait-mae", "inference.train.gait_mae", "train the GaitMAE skeleton-motion embedding"),
    ("train dpg", "inference.train.dpg",
     "train DPG (2D keypoints -> GDI, knee, cadence, step length) on simulated and real clips"),
    ("eval dpg", "inference.eval.dpg",
     "DPG vs the Kidzinski 2020 1D-CNN (or the event-based measures) per target, with CIs"),
    ("embed", "inference.embed", "GaitMAE embedding per walking bout of a recording"),
    ("eval embedding", "inference.eval.embedding",
     "probes, re-identification and reconstruction of the GaitMAE embedding, with CIs"),
    ("bench transport", "streams.bench", "latency and throughput of the wire vs bare pyzmq"),
    ("bench analysis", "inference.bench.analysis", "frames/s of the classical analysis"),
    ("bench sinks", "sinks.bench", "records/s into the databases, alert latency"),
    ("bench webcam", "inference.bench.webcam", "pose ms/frame and end-to-end frames/s"),
    ("bench gait-transformer", "inference.bench.gait_transformer", "model windows/s per backend"),
    ("bench diffusion", "inference.bench.diffusion", "ms per scored cycle per backend and K"),
    ("bench dpg", "inference.bench.dpg", "ms per clip of DPG and the Kidzinski 1D-CNN"),
    ("bench fuzz", "deploy.fuzz", "hostile messages against a running pipeline: refusals, "
     "restarts, memory"),
    ("bench capacity", "inference.bench.capacity",
     "30 Hz tracks one worker holds per model configuration"),
]


def describe(doc: str | None) -> str | None:
    """A command's help text: the first paragraph of its module's docstring, whole, without
    reStructuredText marks (``x``, :class:`x`)."""
    if not doc:
        return None
    para = " ".join(doc.strip().split("\n\n")[0].split())
    para = re.sub(r":\w+:`~?([^`]+)`", r"\1", para)
    return para.replace("``", "")


def _build_parser() -> tuple[argparse.ArgumentParser, dict[tuple[str, ...], str]]:
    parser = argparse.ArgumentParser(prog="gaitstream", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="store_true", help="print the version")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    targets: dict[tuple[str, ...], str] = {}
    for name, module, help_ in COMMANDS:
        words = tuple(name.split())
        targets[words] = module
        if len(words) == 1:
            top.add_parser(words[0], help=help_, add_help=False)
        else:
            if words[0] not in groups:
                g = top.add_parser(words[0], help=f"{words[0]} commands")
                groups[words[0]] = g.add_subparsers(dest="sub", metavar="WHAT")
            groups[words[0]].add_parser(words[1], help=help_, add_help=False)
    return parser, targets


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, targets = _build_parser()
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose = True
        argv.pop(0)
    if argv[:1] == ["--version"]:
        print(f"gaitstream {version('gaitstream')}")
        return 0
    # What gaitstream writes (logs, databases, outboxes, stream files, exports) is clinical data:
    # readable by its owner only, in this process and every process it starts.
    os.umask(0o077)
    # native libraries' own log lines only with -v (streams.node.silence_native_stderr)
    os.environ["GAITSTREAM_QUIET_NATIVE"] = "0" if verbose else "1"
    words: tuple[str, ...] = ()
    for n in (2, 1):
        if tuple(argv[:n]) in targets:
            words = tuple(argv[:n])
            break
    if not words:
        if argv and argv[0] not in ("-h", "--help"):
            parser.parse_args(argv)  # prints the usage error and exits 2
        parser.print_help()
        return 0 if argv else 2
    before = set(logging.getLogger().handlers)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("absl").setLevel(logging.ERROR)
    # A flood of bad input is counted, not written line by line: on the handler made here only
    # (a host that configured logging before, such as a test runner, keeps its handlers as they
    # are: a filter left on them would hold back its records long after this command)
    for handler in set(logging.getLogger().handlers) - before:
        handler.addFilter(FloodFilter())
    module = importlib.import_module(targets[words])
    sub = argparse.ArgumentParser(prog="gaitstream " + " ".join(words),
                                  description=describe(module.__doc__))
    module.add_arguments(sub)
    args = sub.parse_args(argv[len(words):])
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as e:  # a wrong file, key or missing extra: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
