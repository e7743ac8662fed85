"""Fixture files in the exact format of the Azure Kinect Body Tracking SDK's offline_processor
sample (Azure-Kinect-Samples, body-tracking-samples/offline_processor/main.cpp), and the scenes in
them. ``python tests/k4a_json_fixtures.py`` rewrites tests/data/k4a/; test_kinect_json.py checks
that the committed files are what this module writes.

Format, as main.cpp builds it with nlohmann::json and writes ``std::setw(4) << json``: object keys
sorted (nlohmann's std::map), 4-space indentation, ``k4abt_sdk_version`` and ``source_file``,
``joint_names`` from BodyTrackingHelpers.h's g_jointNames in k4abt_joint_id_t order,
``bone_list`` from its g_boneList, and per frame ``timestamp_usec`` (the body frame's device
timestamp), ``frame_id`` (the capture's index: a capture without depth is skipped, so ids can
jump), ``num_bodies`` and ``bodies`` with ``body_id``, ``joint_positions`` [x, y, z] (mm) and
``joint_orientations`` [w, x, y, z] for the 32 joints. The SDK's floats are widened to double by
nlohmann, which prints the shortest text that reads back the same double, as Python's json does
for the same double; so positions go through float32 first.

Scenes are geometric, not recorded people: the standing skeleton of tests/kinect_fakes.py moved
along straight lines, seen by a level camera 1 m above the floor, so the metres-y-up positions
a reader must produce are known exactly (world position minus the camera height).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kinect_fakes import Camera, standing_body_world
from streams.skeletons import AZURE_KINECT_JOINTS

DATA = Path(__file__).resolve().parent / "data" / "k4a"
CAMERA = Camera(height=1.0)

# BodyTrackingHelpers.h g_boneList
BONES = [
    ("SPINE_CHEST", "SPINE_NAVEL"), ("SPINE_NAVEL", "PELVIS"), ("SPINE_CHEST", "NECK"),
    ("NECK", "HEAD"), ("HEAD", "NOSE"), ("SPINE_CHEST", "CLAVICLE_LEFT"),
    ("CLAVICLE_LEFT", "SHOULDER_LEFT"), ("SHOULDER_LEFT", "ELBOW_LEFT"),
    ("ELBOW_LEFT", "WRIST_LEFT"), ("WRIST_LEFT", "HAND_LEFT"), ("HAND_LEFT", "HANDTIP_LEFT"),
    ("WRIST_LEFT", "THUMB_LEFT"), ("PELVIS", "HIP_LEFT"), ("HIP_LEFT", "KNEE_LEFT"),
    ("KNEE_LEFT", "ANKLE_LEFT"), ("ANKLE_LEFT", "FOOT_LEFT"), ("NOSE", "EYE_LEFT"),
    ("EYE_LEFT", "EAR_LEFT"), ("SPINE_CHEST", "CLAVICLE_RIGHT"),
    ("CLAVICLE_RIGHT", "SHOULDER_RIGHT"), ("SHOULDER_RIGHT", "ELBOW_RIGHT"),
    ("ELBOW_RIGHT", "WRIST_RIGHT"), ("WRIST_RIGHT", "HAND_RIGHT"),
    ("HAND_RIGHT", "HANDTIP_RIGHT"), ("WRIST_RIGHT", "THUMB_RIGHT"), ("PELVIS", "HIP_RIGHT"),
    ("HIP_RIGHT", "KNEE_RIGHT"), ("KNEE_RIGHT", "ANKLE_RIGHT"), ("ANKLE_RIGHT", "FOOT_RIGHT"),
    ("NOSE", "EYE_RIGHT"), ("EYE_RIGHT", "EAR_RIGHT"),
]

# A scene: per frame (frame_id, timestamp_usec, [(body_id, world positions (32, 3) metres)])
Scene = list[tuple[int, int, list[tuple[int, np.ndarray]]]]


def offline_processor_json(scene: Scene, *, sdk_version: str = "1.1.2",
                           source_file: str = "walk.mkv") -> str:
    """The text offline_processor writes for ``scene`` seen by CAMERA."""
    frames = []
    for frame_id, t_us, bodies in scene:
        out = []
        for body_id, world in bodies:
            mm = CAMERA.to_camera_mm(world).astype(np.float32)
            out.append({
                "body_id": body_id,
                "joint_positions": [[float(v) for v in p] for p in mm],
                "joint_orientations": [[1.0, 0.0, 0.0, 0.0] for _ in mm],
            })
        frames.append({"timestamp_usec": t_us, "frame_id": frame_id, "num_bodies": len(out),
                       "bodies": out})
    doc = {"k4abt_sdk_version": sdk_version, "source_file": source_file,
           "joint_names": list(AZURE_KINECT_JOINTS), "bone_list": [list(b) for b in BONES],
           "frames": frames}
    return json.dumps(doc, indent=4, sort_keys=True) + "\n"


def device_time(k: int, start_us: int = 2_000_000) -> int:
    """The k-th depth frame time of a 30 fps Azure Kinect (33 333 / 33 334 µs apart)."""
    return start_us + round(k * 1e6 / 30)


def walker(k: int) -> np.ndarray:
    """Body 1: walks towards the camera at 1.2 m/s, 0.3 m to its right."""
    return standing_body_world(0.3, -4.0 + 1.2 * k / 30)


def crosser(k: int) -> np.ndarray:
    """Bodies 2 then 3 (the SDK lost and re-found them): cross 3 m away at 1.5 m/s."""
    return standing_body_world(-1.0 + 1.5 * k / 30, -3.0)


def two_walkers() -> Scene:
    """Ten body frames: an empty start, two people, body 1 lost for two frames and found again
    with its id, body 2 lost and found as body 3, a skipped capture (frame_id 4)."""
    who = {0: [], 1: [1], 2: [1, 2], 3: [1, 2], 5: [2], 6: [2], 7: [1, 3], 8: [1, 3], 9: [1, 3],
           10: [1]}
    scene: Scene = []
    for fid, ids in who.items():
        bodies = [(i, walker(fid) if i == 1 else crosser(fid)) for i in ids]
        scene.append((fid, device_time(fid), bodies))
    return scene


FIXTURES = {"offline_processor_two_walkers.json": two_walkers}


def write_fixtures(folder: Path = DATA) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, scene in FIXTURES.items():
        path = folder / name
        path.write_text(offline_processor_json(scene()), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_fixtures():
        print(p, p.stat().st_size, "bytes")
