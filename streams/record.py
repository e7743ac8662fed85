"""``gaitstream record``: write chosen topics to a stream file (see ``streams.streamfile``)."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from tqdm import tqdm

from streams.streamfile import StreamWriter
from streams.schema import monotonic_us
from streams.node import Drain, StatusReporter, install_stop_handlers
from streams.transport import Publisher, Subscriber

log = logging.getLogger(__name__)


def keep_previous(path: Path) -> Path | None:
    """Move a stream file already at ``path`` aside, named after its last write time
    (``demo-20261207T101502.gst``), so that a new recording (a re-run, a restarted recorder)
    never overwrites an earlier one. Returns where it went."""
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(path.stat().st_mtime))
    target = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.stem}-{stamp}-{n}{path.suffix}")
    path.rename(target)
    log.info("%s existed: kept as %s", path, target.name)
    return target


def run_record(sub: Subscriber, path: Path, stop: threading.Event, status: StatusReporter,
               pub: Publisher | None = None, duration_s: float | None = None,
               drain_s: float = 0.0, progress: bool = False) -> int:
    """Write every valid message the subscriber gets, byte for byte, until stopped.

    The file's header names the topic prefixes ``sub`` subscribed to (``""`` = every topic)
    and the endpoints it reads, so that a file says what it holds.
    Invalid messages are counted and not written: a replay must only carry what a live
    consumer would have accepted. A file already at ``path`` is kept under another name."""
    end = time.monotonic() + duration_s if duration_s else None
    go = Drain(stop, sub, drain_s)  # after a stop, what is still arriving is recorded too
    keep_previous(path)
    # a console shows what is being recorded (tqdm leaves a pipe or a log file alone)
    bar = tqdm(desc=f"recording {path.name}", unit=" msg", disable=None if progress else True,
               total=None, mininterval=0.5)
    with StreamWriter(path, topics=sub.topics, meta={"endpoints": sub.endpoints}) as w, bar:
        log.info("recording to %s", path)
        while go() and (end is None or time.monotonic() < end):
            frames = sub.recv_frames(100)
            if frames is not None:
                if sub.parse(frames) is not None:
                    w.write(monotonic_us(), [f.buffer for f in frames])
                    status.count("written")
                    bar.update()
                    bar.set_postfix_str(f"{w.bytes / 1e6:.1f} MB", refresh=False)
            status.absorb(sub)
            status.counters["bytes"] = w.bytes
            status.maybe_publish(pub)
        status.maybe_publish(pub, force=True)
        log.info("recorded %d messages (%d bytes) to %s", w.records, w.bytes, path)
        return w.records


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect", action="append", required=True,
                   help="publisher endpoint to read (repeatable)")
    p.add_argument("--topic", action="append", default=None,
                   help="topic prefix to record (repeatable; default: everything)")
    p.add_argument("--out", required=True, type=Path, help="stream file to write")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")


def main(args: argparse.Namespace) -> int:
    stop = install_stop_handlers()
    sub = Subscriber(args.connect, args.topic or [""])
    n = run_record(sub, args.out, stop, StatusReporter("record", "record"),
                   duration_s=args.duration, progress=True)
    print(f"{n} messages written to {args.out}")
    return 0
