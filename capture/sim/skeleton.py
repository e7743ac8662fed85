"""From the walker's leg geometry and trunk state to named 3-D points, and to each source layout.

The walker's points are the canonical 22 joints plus what the device layouts have beyond them
(heels, toe tips, hand points, face points). Azure Kinect 32 and MediaPipe 33 skeletons are read
off those points with the tables below; their extra joints are therefore consistent with the body
(the heel is where the heel is), not invented per frame.
"""

from __future__ import annotations

import numpy as np

from streams.skeletons import AZURE_KINECT_JOINTS, CANONICAL_JOINTS, MEDIAPIPE_JOINTS

from capture.sim.body import BodyDims
from capture.sim.walker import D2R, LAT, SIDES, UP, _bump, foot_axes, forward, segment_frame

# device joint -> walker point
AZURE_KINECT_POINTS: dict[str, str] = {
    "PELVIS": "pelvis", "SPINE_NAVEL": "spine2", "SPINE_CHEST": "spine3", "NECK": "neck",
    "HEAD": "k4a_head", "NOSE": "nose", "EYE_LEFT": "left_eye", "EAR_LEFT": "left_ear",
    "EYE_RIGHT": "right_eye", "EAR_RIGHT": "right_ear",
}
for _s, _S in (("left", "LEFT"), ("right", "RIGHT")):
    AZURE_KINECT_POINTS.update({
        f"CLAVICLE_{_S}": f"{_s}_collar", f"SHOULDER_{_S}": f"{_s}_shoulder",
        f"ELBOW_{_S}": f"{_s}_elbow", f"WRIST_{_S}": f"{_s}_wrist", f"HAND_{_S}": f"{_s}_hand",
        f"HANDTIP_{_S}": f"{_s}_handtip", f"THUMB_{_S}": f"{_s}_thumb", f"HIP_{_S}": f"{_s}_hip",
        f"KNEE_{_S}": f"{_s}_knee", f"ANKLE_{_S}": f"{_s}_ankle", f"FOOT_{_S}": f"{_s}_foot",
    })

MEDIAPIPE_POINTS: dict[str, str] = {"nose": "nose", "mouth_left": "left_mouth",
                                    "mouth_right": "right_mouth"}
for _s in SIDES:
    MEDIAPIPE_POINTS.update({
        f"{_s}_eye_inner": f"{_s}_eye_inner", f"{_s}_eye": f"{_s}_eye",
        f"{_s}_eye_outer": f"{_s}_eye_outer", f"{_s}_ear": f"{_s}_ear",
        f"{_s}_shoulder": f"{_s}_shoulder", f"{_s}_elbow": f"{_s}_elbow",
        f"{_s}_wrist": f"{_s}_wrist", f"{_s}_pinky": f"{_s}_pinky", f"{_s}_index": f"{_s}_index",
        f"{_s}_thumb": f"{_s}_thumb", f"{_s}_hip": f"{_s}_hip", f"{_s}_knee": f"{_s}_knee",
        f"{_s}_ankle": f"{_s}_ankle", f"{_s}_heel": f"{_s}_heel",
        f"{_s}_foot_index": f"{_s}_toe",
    })

LAYOUT_POINTS: dict[str, tuple[str, ...]] = {
    "canonical22": CANONICAL_JOINTS,
    "azure_kinect32": tuple(AZURE_KINECT_POINTS[j] for j in AZURE_KINECT_JOINTS),
    "mediapipe33": tuple(MEDIAPIPE_POINTS[j] for j in MEDIAPIPE_JOINTS),
}

# Face points in the head frame (forward, up, right), fractions of height: nose tip, eyes,
# ears, mouth corners (adult head proportions; the head joint sits at the skull base).
_FACE = {
    "nose": (0.060, 0.008, 0.0), "eye": (0.050, 0.030, 0.018), "eye_inner": (0.052, 0.030, 0.009),
    "eye_outer": (0.046, 0.030, 0.027), "ear": (0.002, 0.022, 0.042),
    "mouth": (0.054, -0.012, 0.013), "k4a_head": (0.012, 0.045, 0.0),
}


def layout_joints(points: dict[str, np.ndarray], layout: str) -> np.ndarray:
    """(N, J, 3) joints of ``layout`` from the walker's named points."""
    if layout not in LAYOUT_POINTS:
        raise ValueError(f"the simulator writes layouts {sorted(LAYOUT_POINTS)}, not {layout!r}")
    return np.stack([points[p] for p in LAYOUT_POINTS[layout]], axis=1)


def assemble(S: dict[str, np.ndarray], legs: dict[str, dict[str, np.ndarray]], body: BodyDims,
             style, params, arm_amp: float) -> dict[str, np.ndarray]:
    """Named points (N, 3) of the whole body from the walker state and leg geometry."""
    b = body
    a = S["a"]
    cR, cL = S["c_right"], S["c_left"]
    pts: dict[str, np.ndarray] = {"pelvis": S["pelvis"]}
    Rp = S["R_pelvis"]
    pts["spine1"] = S["pelvis"] + Rp @ np.array([0.0, b.spine[0], 0.0])
    crouch = 0.5 * (style.left.crouch + style.right.crouch)
    lean_fwd = (params.trunk_lean_deg + style.trunk_lean_add + 12.0 * crouch) * D2R \
        + a * 1.0 * D2R * np.cos(4 * np.pi * (cR - 0.1))
    lean_right = a * style.trunk_sway_deg * D2R * (_bump(cR, 0.3, 0.15) - _bump(cL, 0.3, 0.15))
    lean_right = lean_right + D2R * (style.right.trunk_over_deg * _bump(cR, 0.3, 0.15)
                                     - style.left.trunk_over_deg * _bump(cL, 0.3, 0.15))
    # the thorax turns against the pelvis
    Rt = segment_frame(S["heading"] + 0.7 * S["rotation"], lean_right, lean_fwd)
    up = np.array([0.0, 1.0, 0.0])
    pts["spine2"] = pts["spine1"] + Rt @ (b.spine[1] * up)
    pts["spine3"] = pts["spine2"] + Rt @ (b.spine[2] * up)
    pts["neck"] = pts["spine3"] + Rt @ (b.spine[3] * up)
    # the head stays level and faces the way the walker goes
    Rh = segment_frame(S["heading"], 0.3 * lean_right, -0.5 * lean_fwd + 5 * D2R)
    pts["head"] = pts["neck"] + Rh @ (b.head * up)
    for name, (f, u, r) in _FACE.items():
        for side in (SIDES if r else ("",)):
            off = np.array([f, u, LAT[side] * r if r else 0.0]) * b.height
            key = f"{side}_{name}" if r else name
            pts[key] = pts["head"] + Rh @ off
    for side in SIDES:
        lat = LAT[side]
        c = S[f"c_{side}"]
        ss = style.side(side)
        pts[f"{side}_collar"] = pts["spine3"] + Rt @ np.array([0.0, b.collar[0], lat * b.collar[1]])
        sh = pts["spine3"] + Rt @ np.array([0.0, b.shoulder[0], lat * b.shoulder[1]])
        pts[f"{side}_shoulder"] = sh
        amp = arm_amp * ss.arm_gain * a
        swing = np.cos(2 * np.pi * (c - 0.5))
        flex = (-4.0 + amp * swing) * D2R
        elbow_flex = (16.0 + ss.elbow_add + 0.4 * amp * (1 + swing)) * D2R
        abd = 8.0 * D2R
        def arm_dir(ang: np.ndarray) -> np.ndarray:
            v = np.stack([np.sin(ang) * np.cos(abd), -np.cos(ang) * np.cos(abd),
                          np.full_like(ang, lat * np.sin(abd))], axis=-1)
            return np.einsum("nij,nj->ni", Rt, v)
        d1, d2 = arm_dir(flex), arm_dir(flex + elbow_flex)
        elbow = sh + b.upper_arm * d1
        wrist = elbow + b.forearm * d2
        d3 = arm_dir(flex + elbow_flex + 10 * D2R)
        medial = np.einsum("nij,j->ni", Rt, np.array([0.0, 0.0, -lat]))
        fwd_t = np.einsum("nij,j->ni", Rt, np.array([1.0, 0.0, 0.0]))
        pts[f"{side}_elbow"], pts[f"{side}_wrist"] = elbow, wrist
        pts[f"{side}_hand"] = wrist + 0.45 * b.hand * d3
        pts[f"{side}_handtip"] = wrist + 0.95 * b.hand * d3
        pts[f"{side}_thumb"] = wrist + 0.45 * b.hand * d2 + 0.30 * b.hand * fwd_t
        pts[f"{side}_index"] = wrist + 0.80 * b.hand * d3 + 0.15 * b.hand * fwd_t
        pts[f"{side}_pinky"] = wrist + 0.75 * b.hand * d3 - 0.12 * b.hand * fwd_t \
            + 0.05 * b.hand * medial
        L = legs[side]
        pts[f"{side}_hip"], pts[f"{side}_knee"], pts[f"{side}_ankle"] = L["hip"], L["knee"], L["ankle"]
        e1, e2 = foot_axes(L["yaw"], L["phi"])
        ball = L["ankle"] + b.ball_fwd * e1 + (b.ball_height - b.ankle_height) * e2
        pts[f"{side}_foot"] = ball
        pts[f"{side}_heel"] = L["ankle"] - b.heel_back * e1 + (0.015 * b.height - b.ankle_height) * e2
        toe_ang = (L["phi"] + L["toe"])[:, None]
        f = forward(L["yaw"])
        t1 = np.cos(toe_ang) * f + np.sin(toe_ang) * UP
        t2 = -np.sin(toe_ang) * f + np.cos(toe_ang) * UP
        pts[f"{side}_toe"] = ball + (b.toe_fwd - b.ball_fwd) * t1 \
            + (0.006 * b.height - b.ball_height) * t2
    return pts
