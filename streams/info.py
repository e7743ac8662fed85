"""``gaitstream info FILE``: what a stream file holds: when and from where it was recorded, its
topics and message types with their counts and rates, its sources, its duration and size, and
whether its end was cut (like ``ros2 bag info``)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from streams.schema import WireError, decode
from streams.streamfile import StreamReader


def stream_info(path: Path) -> dict[str, Any]:
    reader = StreamReader(path)
    topics: Counter[str] = Counter()
    types: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    undecodable = 0
    first = last = None
    for rec in reader:
        first = rec.host_us if first is None else first
        last = rec.host_us
        topics[rec.topic] += 1
        try:
            msg = decode(rec.frames[1], image=rec.frames[2] if len(rec.frames) > 2 else None)
        except (WireError, IndexError):
            undecodable += 1
            continue
        types[msg.TYPE] += 1
        sources[msg.source] += 1
    duration = (last - first) / 1e6 if first is not None else 0.0
    h = reader.header
    return {
        "file": str(path), "bytes": path.stat().st_size, "created": h.get("created"),
        "recorded_topics": h.get("topics", []), "endpoints": h.get("meta", {}).get("endpoints"),
        "messages": sum(topics.values()), "duration_s": duration,
        "topics": dict(sorted(topics.items())), "types": dict(sorted(types.items())),
        "sources": dict(sorted(sources.items())), "undecodable": undecodable,
        "cut": reader.truncated, "cut_reason": reader.tail_error or None,
    }


def print_info(i: dict[str, Any]) -> None:
    rate = (lambda n: f"{n / i['duration_s']:8.1f}/s") if i["duration_s"] > 0 else (lambda n: "")
    print(f"file:       {i['file']} ({i['bytes'] / 1e6:.1f} MB)")
    print(f"recorded:   {i['created']}, topics {i['recorded_topics'] or ['(all)']}"
          + (f" from {', '.join(i['endpoints'])}" if i["endpoints"] else ""))
    print(f"duration:   {i['duration_s']:.1f} s, {i['messages']} messages")
    for title, key in (("topics", "topics"), ("types", "types"), ("sources", "sources")):
        print(f"{title}:")
        for name, n in i[key].items():
            print(f"  {name:24s} {n:9d} {rate(n)}")
    if i["undecodable"]:
        print(f"undecodable messages: {i['undecodable']}")
    if i["cut"]:
        print(f"the end is cut ({i['cut_reason']}): everything before it is readable")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="stream file (gaitstream record, the demo's demo.gst)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def main(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise FileNotFoundError(f"no stream file at {args.file}")
    info = stream_info(args.file)
    print_info(info)
    if args.json:
        print(json.dumps(info))
    return 0
