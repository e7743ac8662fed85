"""``gaitstream replay FILE``: publish a stream file again, at recorded speed, N x, or flat out.

A replay sends the recorded bytes unchanged, so the pipeline behind it sees what the live run saw
and produces the same records (the worker keys everything on source timestamps, not arrival time).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from tqdm import tqdm

from streams.streamfile import StreamReader
from streams.node import Pacer, install_stop_handlers
from streams.transport import Publisher

log = logging.getLogger(__name__)


def replay(path: Path, pub: Publisher, stop: threading.Event, *, speed: float = 1.0,
           loop: bool = False, start_s: float = 0.0, end_s: float | None = None,
           topics: list[str] | None = None, progress: bool = False) -> int:
    """Publish the file's records; ``speed`` 0 means as fast as possible. Returns records sent.
    ``progress``: a progress bar on a console (messages sent, time into the recording)."""
    sent = 0
    prefixes = tuple(t.encode() for t in topics) if topics else None
    bar = tqdm(desc=f"replaying {path.name}", unit=" msg", disable=None if progress else True,
               mininterval=0.5)
    while not stop.is_set():
        reader = StreamReader(path)
        t0_rec: int | None = None
        pacer = Pacer(speed)
        for rec in reader:
            if stop.is_set():
                break
            if t0_rec is None:
                t0_rec = rec.host_us
                pacer.origin_us = t0_rec + round(start_s * 1e6)
            rel = (rec.host_us - t0_rec) / 1e6
            if rel < start_s:
                continue
            if end_s is not None and rel > end_s:
                break
            if prefixes and not rec.frames[0].startswith(prefixes):
                continue
            if not pacer.wait(rec.host_us, stop):
                break
            pub.send_raw(rec.frames)
            sent += 1
            bar.update()
            bar.set_postfix_str(f"at {rel:.1f} s", refresh=False)
        if reader.truncated:
            log.warning("%s ends in a cut record (%s); replayed what was whole",
                        path, reader.tail_error)
        if not loop:
            break
    bar.close()
    return sent


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path)
    # not 5550, the edge box camera's port: a replay beside a running deployment must not take it
    p.add_argument("--publish", default="tcp://127.0.0.1:5760", help="endpoint to bind")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--speed", type=float, default=1.0, help="1 = recorded speed, 2 = twice")
    g.add_argument("--fast", action="store_true", help="as fast as possible")
    p.add_argument("--loop", action="store_true")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the recording")
    p.add_argument("--end", type=float, default=None, help="seconds into the recording")
    p.add_argument("--topic", action="append", default=None, help="only these topic prefixes")
    p.add_argument("--hwm", type=int, default=100000,
                   help="send queue; a large one keeps a fast replay from dropping")
    p.add_argument("--wait-subscribers", type=float, default=2.0,
                   help="seconds to wait for a subscriber before sending (0 = do not wait)")


def main(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise FileNotFoundError(f"no stream file at {args.file}")
    StreamReader(args.file)  # not a stream file: say so before binding anything
    stop = install_stop_handlers()
    pub = Publisher(args.publish, hwm=args.hwm)
    if args.wait_subscribers > 0 and not pub.wait_for_subscribers(1, args.wait_subscribers):
        log.warning("no subscriber after %.1f s; replaying anyway", args.wait_subscribers)
    time.sleep(0.2)  # let the subscription settle on every topic before the first message
    n = replay(args.file, pub, stop, speed=0.0 if args.fast else args.speed, loop=args.loop,
               start_s=args.start, end_s=args.end, topics=args.topic, progress=True)
    time.sleep(0.5)  # linger so the last messages leave before the socket closes
    pub.close()
    print(f"{n} messages replayed from {args.file}")
    return 0
