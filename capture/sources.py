"""The table of capture source kinds (a configuration names one by kind), and which source
plays a given file."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from capture.base import Source
from capture.readers import VIDEO_SUFFIXES, is_video_file

# kind -> "module:Class". Imported only when used: an edge box without OpenCV still runs Kinect.
SOURCE_KINDS: dict[str, str] = {
    "sim": "capture.sim.source:SimSource",
    "file": "capture.files:FileSource",
    "stream": "capture.files:StreamFileSource",
    "webcam": "capture.webcam:WebcamSource",
    "kinect": "capture.kinect.source:KinectSource",
    "k4a_json": "capture.readers.k4a_json:K4AJsonSource",
}


def make_source(kind: str, name: str, options: dict[str, Any]) -> Source:
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source kind {kind!r}; known: {sorted(SOURCE_KINDS)}")
    module, cls = SOURCE_KINDS[kind].split(":")
    factory = getattr(importlib.import_module(module), cls)
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
    return {"source": "file", "path": str(path)}
