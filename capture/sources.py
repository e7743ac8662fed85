"""The table of capture source kinds (a configuration names one by kind), and which source
plays a given file."""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

from capture.base import Source
from capture.readers import VIDEO_SUFFIXES, is_video_file
from streams.options import check_keys

# kind -> "module:Class". Imported only when used: an edge box without OpenCV still runs Kinect.
SOURCE_KINDS: dict[str, str] = {
    "sim": "capture.sim.source:SimSource",
    "file": "capture.files:FileSource",
    "stream": "capture.files:StreamFileSource",
    "webcam": "capture.webcam:WebcamSource",
    "kinect": "capture.kinect.source:KinectSource",
    "k4a_json": "capture.readers.k4a_json:K4AJsonSource",
}


# options that name a file the source reads
FILE_OPTIONS = ("path", "recording")


def source_class(kind: str) -> type:
    """The class of a source kind (importing it: a missing extra says so here)."""
    if kind not in SOURCE_KINDS:
        close = difflib.get_close_matches(str(kind), SOURCE_KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown source kind {kind!r}{hint}; known: {', '.join(SOURCE_KINDS)}")
    module, cls = SOURCE_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def check_source(kind: str, options: dict[str, Any]) -> None:
    """What can be known of a source before it opens anything: its kind, its option keys, the
    files it reads, and for an Azure Kinect the SDKs. Raises ValueError, FileNotFoundError or an
    ImportError (a missing extra or SDK) naming the problem."""
    cls = source_class(kind)
    params = inspect.signature(cls).parameters
    allowed = {k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if len(allowed) == len(params):
        check_keys(f"options of source {kind!r}", options, allowed - {"name"})
    elif getattr(cls, "EXTRA_OPTIONS", None) is not None:  # what its **kwargs take, if known
        check_keys(f"options of source {kind!r}", options,
                   (allowed | set(cls.EXTRA_OPTIONS)) - {"name"})
    for key in FILE_OPTIONS:
        if key in options and not Path(options[key]).is_file():
            raise FileNotFoundError(f"options.{key}: no such file {options[key]}")
    if kind == "kinect":
        from capture.kinect.source import Pyk4aBackend

        Pyk4aBackend()  # pyk4a and the Body Tracking SDK, or the install instructions


def make_source(kind: str, name: str, options: dict[str, Any]) -> Source:
    factory = source_class(kind)
    try:
        return factory(name=name, **options)
    except TypeError as e:
        raise ValueError(f"source {name!r} ({kind}): bad options {sorted(options)}: {e}") from None


def source_for_file(path: Path) -> dict:
    """Capture options that play a file: videos through the webcam source (pose in the worker),
    Azure Kinect recordings (.mkv with K4A markers) through the Kinect source's playback,
    recordings (C3D, TRC, Kinect text, offline_processor JSON) through the file source.

    A Kinect recording needs pyk4a and the Body Tracking SDK; without them this exits at once
    with the install instructions rather than start a pipeline whose camera cannot open."""
    path = path.resolve()
    if is_video_file(path):
        return {"source": "webcam", "path": str(path)}
    if path.suffix.lower() in VIDEO_SUFFIXES:  # a video suffix, not a video: a Kinect .mkv
        from capture.kinect.k4abt import SDKMissingError
        from capture.kinect.source import Pyk4aBackend

        try:
            Pyk4aBackend()
        except SDKMissingError as e:
            raise SystemExit(f"error: {path.name} is an Azure Kinect recording; playing it "
                             f"needs the Azure Kinect SDKs: {e}") from None
        return {"source": "kinect", "recording": str(path)}
    if path.suffix.lower() == ".json":
        return {"source": "k4a_json", "path": str(path)}
    if path.suffix.lower() == ".gst":  # a stream file of ours: its skeletons as recorded
        return {"source": "stream", "path": str(path)}
    return {"source": "file", "path": str(path)}
