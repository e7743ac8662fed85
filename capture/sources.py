"""The table of capture source kinds; a configuration names one by kind."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Source

# kind -> "module:Class". Imported only when used: an edge box without OpenCV still runs Kinect.
SOURCE_KINDS: dict[str, str] = {
    "sim": "capture.sim.source:SimSource",
    "file": "capture.files:FileSource",
    "stream": "capture.stream_source:StreamFileSource",
    "webcam": "capture.webcam:WebcamSource",
    "kinect": "capture.kinect:KinectSource",
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
