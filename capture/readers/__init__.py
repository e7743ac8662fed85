"""Recording readers: any supported file -> :class:`Recording` (canonical joints, y up, metres).

Supported: C3D (gait-lab markers or canonical-joint points), OpenSim TRC, Kinect v1 text
skeletons (Andersson 2015 format), Kinect v2 skeleton text (the pathological-gait CSVs), BVH,
ASF/AMC (the .amc; its .asf beside it or given as ``skeleton``), Azure Kinect Body Tracking
``offline_processor`` JSON, and Azure Kinect recordings (k4arecorder .mkv, played through the
Body Tracking SDK: ``k4a_mkv``). A path ``archive.zip::member`` reads a member of a zip.
Text skeletons (.txt, .csv, .tsv) are told apart by their content, not their suffix.
Videos need pose estimation, which lives in ``inference/`` (``inference.video``); an .mkv is a
video unless its Matroska markers say Azure Kinect (``is_video_file``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capture.readers.recording import Recording, RecordingError

__all__ = ["Recording", "RecordingError", "VIDEO_SUFFIXES", "is_video_file", "load_recording"]

# Text skeletons of several formats share these suffixes; the reader is chosen by content.
TEXT_SUFFIXES = (".txt", ".csv", ".tsv")

# Files that need pose estimation (inference.video) rather than a reader here.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mjpg", ".mjpeg")


def is_video_file(path: str | Path) -> bool:
    """A file for pose estimation: a video suffix, and not an Azure Kinect recording (both are
    .mkv; the Kinect's holds depth, and its bodies come from the Body Tracking SDK)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        return False
    if path.suffix.lower() == ".mkv":
        from capture.readers.k4a_mkv import is_k4a_recording
        return not is_k4a_recording(path)
    return True


def load_recording(path: str | Path, **opts: Any) -> Recording:
    """Load a recording, choosing the reader by file type (extension, then content)."""
    from capture.readers import sourcefile

    if not sourcefile.exists(path):
        raise RecordingError(f"{path}: no such file")
    ext = sourcefile.name(path).suffix.lower()
    if ext == ".bvh":
        from capture.readers.bvh import load_bvh
        return load_bvh(path, **opts)
    if ext == ".asf":
        raise RecordingError(f"{sourcefile.name(path).name}: an ASF is a skeleton without "
                             "motion; read an .amc recorded with it")
    if ext == ".amc":
        from capture.readers.asf_amc import load_amc
        return load_amc(path, **opts)
    if ext in TEXT_SUFFIXES:
        from capture.readers.kinect_v1 import is_kinect_v1_text, load_kinect_v1
        from capture.readers.kinect_v2 import is_kinect_v2_text, load_kinect_v2
        if is_kinect_v2_text(path):
            return load_kinect_v2(path, **opts)
        if is_kinect_v1_text(path):
            return load_kinect_v1(path, **opts)
    if sourcefile.split(path)[1] is not None:
        raise RecordingError(f"{path}: zip members are read for BVH, AMC and Kinect v1/v2 text")
    path = Path(path)
    if ext == ".c3d":
        from capture.readers.c3d import load_c3d
        return load_c3d(path, **opts)
    if ext == ".trc":
        from capture.readers.trc import load_trc
        return load_trc(path, **opts)
    if ext == ".json":
        from capture.readers.k4a_json import load_k4a_json
        return load_k4a_json(path, **opts)
    if ext == ".mkv":
        if is_video_file(path):
            raise RecordingError(f"{path.name}: a video, not an Azure Kinect recording: its "
                                 "poses come from inference.video.load_video_recording")
        from capture.readers.k4a_mkv import load_k4a_mkv
        return load_k4a_mkv(path, **opts)
    if ext in TEXT_SUFFIXES:
        raise RecordingError(f"{path.name}: not a Kinect v1 or v2 skeleton text (the formats "
                             f"read from {', '.join(TEXT_SUFFIXES)} files, told by content)")
    raise RecordingError(f"{path.name}: unsupported recording type {ext or '(no extension)'}")
