"""Run a recording through the gait analysis offline and print its events and cycle records.

``gaitstream analyze FILE [--json]``

FILE is any recording ``capture.readers.load_recording`` reads (C3D, TRC, Kinect v1 and v2 text,
BVH, ASF/AMC, ``archive.zip::member`` for a member of a zip). Its
frames go as SkeletonFrames through the inference worker's own code path (layout mapping, the
per-track analyzer, flush at the end), so the records are the ones a live run or a replay of the
same frames publishes. Per walking bout it adds a summary (mean, SD, CV of every measure over
the cycles whose flags do not make them untrustworthy).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np


from inference.analysis.cycles import summarize, trusted, why_no_cycles
from streams.schema import UNTRUSTED_FLAGS, Body, GaitCycle, GaitEvent, SkeletonFrame, flag_words

log = logging.getLogger(__name__)

SOURCE = "analyze"


@dataclass
class Analysis:
    events: list[GaitEvent] = field(default_factory=list)
    cycles: list[GaitCycle] = field(default_factory=list)
    bouts: list[tuple[int, int]] = field(default_factory=list)
    lookahead_ms: float | None = None
    floor: dict[str, float] | None = None  # tilt of the floor vs y, resting ankle level


def skeleton_frames(rec: Any, source: str = SOURCE) -> list[SkeletonFrame]:
    """The recording as the SkeletonFrames a live source (``capture.files.FileSource``) would
    publish."""
    layout, joints, conf = rec.wire_skeleton()
    return [SkeletonFrame(source=source, seq=i + 1, t_us=int(t), host_us=0, layout=layout,
                          bodies=[Body(0, joints[i], conf[i])])
            for i, t in enumerate(rec.t_us)]


def analyze_recording(rec: Any, analysis: str = "classical",
                      analyzer_options: dict[str, Any] | None = None) -> Analysis:
    """Events, cycles and walking bouts of a recording, through the worker's code path."""
    return analyze_frames(skeleton_frames(rec), analysis, analyzer_options)


def analyze_frames(frames: Iterable[SkeletonFrame], analysis: str = "classical",
                   analyzer_options: dict[str, Any] | None = None) -> Analysis:
    """Events, cycles and walking bouts of skeleton frames (a recording's, or a stream file's),
    through the worker's code path."""
    from inference.worker import Worker, WorkerConfig
    from streams.node import StatusReporter

    cfg = WorkerConfig(analysis=analysis, analyzer_options=dict(analyzer_options or {}))
    now_s = [0.0]  # the recording's clock: the model batches as it would live, every run alike
    worker = Worker(cfg, None, StatusReporter(SOURCE, "analyze"), clock=lambda: now_s[0])
    for frame in frames:
        now_s[0] = frame.t_us / 1e6
        worker.handle(frame)
    analyzers = [a for tr in worker.tracks.values() for a in tr.analyzers]
    worker.expire(force=True)
    out = Analysis()
    for m in worker.outputs:
        if isinstance(m, GaitEvent):
            out.events.append(m)
        elif isinstance(m, GaitCycle):
            out.cycles.append(m)
    for a in analyzers:
        out.bouts.extend(getattr(a, "bouts", []))
        if hasattr(a, "lookahead_ms"):
            out.lookahead_ms = a.lookahead_ms
        out.floor = getattr(a, "floor", None) or out.floor
    return out


def wire_layout(rec: Any) -> str:
    """The layout a recording's frames travel in (which variables its source measures
    poorly)."""
    if isinstance(rec, StreamSkeletons):
        return rec.frames[0].layout if rec.frames else "canonical22"
    return rec.wire_skeleton()[0]


def _indices(cycles: list[GaitCycle], layout: str | None) -> dict[str, Any] | None:
    from inference.models.gdi.indices import bout_indices

    use = [c for c in cycles if trusted(c)]
    return bout_indices([(c.side, c.metrics) for c in use], layout) if use and layout else None


def bout_summaries(cycles: list[GaitCycle], bouts: list[tuple[int, int]],
                   layout: str | None = None) -> list[dict[str, Any]]:
    """Summary per bout and analysis method of the cycles that lie in it (cycles in no bout are
    reported apart): with both analyses each stride is measured twice, once by each. Given the
    source's ``layout``, ``indices`` summarises the trusted strides' GDI, GPS and GVS
    (``inference.models.gdi.indices.bout_indices``; None where no stride has them: the gait
    transformer's records carry none)."""
    out = []
    for method in sorted({c.method for c in cycles}):
        mine = [c for c in cycles if c.method == method]
        rest = list(mine)
        for i, (b0, b1) in enumerate(bouts):
            inside = [c for c in mine if b0 <= c.start_us and c.end_us <= b1]
            rest = [c for c in rest if c not in inside]
            out.append({"bout": i + 1, "method": method, "start_s": b0 / 1e6, "end_s": b1 / 1e6,
                        **summarize(inside), "indices": _indices(inside, layout)})
        if rest:
            out.append({"bout": None, "method": method, "note": "cycles outside any walking bout",
                        **summarize(rest), "indices": _indices(rest, layout)})
    return out


def _cycle_dict(c: GaitCycle) -> dict[str, Any]:
    return {"method": c.method, "side": c.side, "start_s": c.start_us / 1e6,
            "end_s": c.end_us / 1e6, "metrics": c.metrics, "flags": c.flags,
            "trusted": trusted(c)}


def report(path: Path, rec: Any, res: Analysis) -> dict[str, Any]:
    return {
        "file": str(path), "frames": rec.n_frames, "rate_hz": rec.rate_hz,
        "duration_s": rec.duration_s, "layout": rec.source_layout,
        "truncated": getattr(rec, "meta", {}).get("truncated"),
        "lookahead_ms": res.lookahead_ms, "floor": res.floor,
        "events": [{"side": e.side, "kind": e.kind, "t_s": e.event_us / 1e6,
                    "confidence": e.confidence, "method": e.method} for e in res.events],
        "cycles": [_cycle_dict(c) for c in res.cycles],
        "bouts": bout_summaries(res.cycles, res.bouts, wire_layout(rec)),
        "no_cycles": None if res.cycles else why_no_cycles(
            rec.duration_s, {s: sum(e.side == s and e.kind == "foot_strike" for e in res.events)
                             for s in ("left", "right")}),
    }


def _f(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


SHOWN = (("stride_time_s", "stride s", ".2f"), ("cadence_spm", "cad", ".0f"),
         ("step_length_m", "step m", ".2f"), ("speed_mps", "m/s", ".2f"),
         ("stance_pct", "stance%", ".0f"), ("double_support_pct", "DS%", ".0f"),
         ("knee_rom_deg", "kneeROM", ".0f"), ("peak_swing_knee_flexion_deg", "pkKnee", ".0f"),
         ("gdi", "GDI", ".0f"), ("gps", "GPS", ".1f"))


def print_report(rep: dict[str, Any]) -> None:
    print(f"{rep['file']}: {rep['frames']} frames, {rep['rate_hz']:.0f} Hz, "
          f"{rep['duration_s']:.2f} s, {rep['layout']}; events published at most "
          f"{_f(rep['lookahead_ms'], '.0f')} ms (+1 frame) after they happen")
    if rep.get("truncated"):
        print(f"WARNING: {rep['truncated']}; what follows covers only the frames read")
    fl = rep["floor"]
    print("floor: " + (f"tilted {fl['tilt_deg']:.1f} deg against the y axis, resting ankles at "
                       f"y = {fl['ankle_level_m']:.3f} m" if fl else
                       "not estimated (the feet never rested in two lines)"))
    # with more than one analysis, every row says which one made it
    methods = {e["method"] for e in rep["events"]} | {c["method"] for c in rep["cycles"]}
    by = len(methods) > 1
    print(f"\nevents ({len(rep['events'])}):")
    for e in sorted(rep["events"], key=lambda e: (e["method"], e["t_s"])) if by else rep["events"]:
        print(f"  {e['t_s']:8.3f} s  {e['side']:5s} {e['kind']:11s} conf {e['confidence']:.2f}"
              + (f"  {e['method']}" if by else ""))
    print(f"\ncycles ({len(rep['cycles'])}):" + (f" none: {rep['no_cycles']}"
                                                  if rep["no_cycles"] else ""))
    heads = " ".join(f"{h:>8s}" for _, h, _ in SHOWN)
    print(f"  {'method':17s} " * by + f"{'side':5s} {'start':>7s} {'end':>7s} {heads}  flags")
    for c in sorted(rep["cycles"], key=lambda c: (c["method"], c["start_s"])) if by \
            else rep["cycles"]:
        m = {k: None for k, _, _ in SHOWN} | c["metrics"]
        print(f"  {c['method']:17s} " * by + f"{c['side']:5s} {c['start_s']:7.3f} "
              f"{c['end_s']:7.3f} " + " ".join(f"{_f(m[k], s):>8s}" for k, _, s in SHOWN)
              + "  " + (",".join(c["flags"]) or "-"))
    print("  A cycle is trusted unless a flag says its measures are unreliable:\n  "
          + flag_words(sorted(UNTRUSTED_FLAGS)) + ". Bout summaries use trusted cycles only.")
    for b in rep["bouts"]:
        title = (f"bout {b['bout']} ({b['start_s']:.1f}-{b['end_s']:.1f} s)" if b["bout"]
                 else b["note"]) + (f", {b['method']}" if by else "")
        print(f"\n{title}: {b['trusted_cycles']} of {b['cycles']} cycles trusted")
        for k, v in b["metrics"].items():
            if v["n"]:
                print(f"  {k:30s} mean {v['mean']:8.3f}  sd {_f(v['sd'], '8.3f')}  "
                      f"CV {_f(v['cv_pct'], '5.1f')} %  (n={v['n']})")
        print_indices(b.get("indices"))


def print_indices(ix: dict[str, Any] | None) -> None:
    if not ix:
        return
    sides = [s for s in ("left", "right") if s in ix["gdi"]]
    print(f"  clinical indices (mean over strides; vs {ix['normative']}):")
    print("    GDI  " + "  ".join(f"{s} {ix['gdi'][s]:5.1f} (n={ix['strides'][s]})"
                                  for s in sides))
    print("    GPS  " + "  ".join(f"{s} {ix['gps'][s]:4.1f}" for s in sides)
          + (f"  overall {ix['gps']['overall']:4.1f} deg" if ix["gps"]["overall"] is not None
             else " deg"))
    for s in sides:
        print(f"    GVS {s:5s} " + ", ".join(f"{k} {_f(x, '.1f')}"
                                            for k, x in ix["gvs"][s].items()))
    print(f"    not measured: {', '.join(ix['not_measured'])}; weak from this source: "
          f"{', '.join(ix['weak'])} ({ix['note']})")
    if ix.get("caution"):
        print(f"    CAUTION: {ix['caution']}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="recording (C3D, TRC, Kinect v1 or v2 text, BVH, "
                   "AMC, Azure Kinect offline_processor JSON; ARCHIVE.zip::MEMBER reads a member "
                   "of a zip) or a video file (pose estimated with MediaPipe)")
    p.add_argument("--skeleton", type=Path, default=None,
                   help="the ASF skeleton of an AMC file (default: the .asf beside it)")
    p.add_argument("--analysis", default="classical",
                   choices=("classical", "gait-transformer", "both"),
                   help="which analysis the worker runs (default classical)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


@dataclass
class StreamSkeletons:
    """The skeleton frames of a stream file (``gaitstream record``, the demo's demo.gst), with
    what the report says of a recording."""

    frames: list[SkeletonFrame]

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def duration_s(self) -> float:
        return (self.frames[-1].t_us - self.frames[0].t_us) / 1e6 if self.frames else 0.0

    @property
    def rate_hz(self) -> float:
        t = sorted({f.t_us for f in self.frames})
        return 1e6 / float(np.median(np.diff(t))) if len(t) > 1 else 0.0

    @property
    def source_layout(self) -> str:
        return ", ".join(sorted({f.layout for f in self.frames})) or "-"


def stream_skeletons(path: Path) -> StreamSkeletons:
    from capture.files import StreamFileSource
    from capture.readers import RecordingError

    frames = [f for f in StreamFileSource("analyze", str(path)).frames()
              if isinstance(f, SkeletonFrame)]
    if not frames:
        raise RecordingError(f"{path.name}: a stream file without skeletons (record skel/)")
    return StreamSkeletons(frames)


def main(args: argparse.Namespace) -> int:
    from capture.readers import VIDEO_SUFFIXES, load_recording
    from inference.video import load_video_recording

    # a file that cannot be read raises RecordingError: the command line says why in one line
    suffix = args.file.suffix.lower()
    if suffix == ".gst":
        rec = stream_skeletons(args.file)
        res = analyze_frames(rec.frames, args.analysis)
    else:
        opts = {"skeleton": args.skeleton} if getattr(args, "skeleton", None) else {}
        rec = (load_video_recording(args.file) if suffix in VIDEO_SUFFIXES
               else load_recording(args.file, **opts))
        res = analyze_recording(rec, args.analysis)
    rep = report(args.file, rec, res)
    print_report(rep)
    if args.json:
        print(json.dumps(rep))
    return 0
