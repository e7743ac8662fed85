"""Joint layouts and their mappings into the canonical skeleton, written out once as data.

Every SkeletonFrame names its layout. Positions on the wire are always metres in a right-handed,
y-up frame (each capture source converts its device's axes and units before publishing); the
layouts differ only in which joints they have. The canonical layout is the 22-joint SMPL /
HumanML3D one. A mapping says, for each canonical joint, which source joints (with weights) make
it; the canonical confidence is the lowest confidence among the joints used.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CANONICAL = "canonical22"

CANONICAL_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
CJ = {name: i for i, name in enumerate(CANONICAL_JOINTS)}

# Optional foot points, carried after the 22 canonical joints in the ``canonical26`` layout by
# sources that have them (gait-lab heel and toe markers, MediaPipe heel and foot index, the Azure
# Kinect's FOOT joint as the toe). The 22 joints stay what every model takes; the foot points
# only time gait events and measure steps where a clinician does, heel to heel (the canonical
# ankle and foot are joints, 5-10 cm from the heel). A source without them sends ``canonical22``
# or leaves them at confidence 0; they never replace a canonical joint.
FOOT_POINTS: tuple[str, ...] = ("left_heel", "right_heel", "left_toe", "right_toe")
CANONICAL_FEET = "canonical26"
CANONICAL_FEET_JOINTS: tuple[str, ...] = CANONICAL_JOINTS + FOOT_POINTS

# Kinematic tree of the canonical skeleton (SMPL parents); -1 is the root.
CANONICAL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)

# Azure Kinect Body Tracking SDK, k4abt_joint_id_t order (32 joints).
AZURE_KINECT_JOINTS: tuple[str, ...] = (
    "PELVIS", "SPINE_NAVEL", "SPINE_CHEST", "NECK", "CLAVICLE_LEFT", "SHOULDER_LEFT",
    "ELBOW_LEFT", "WRIST_LEFT", "HAND_LEFT", "HANDTIP_LEFT", "THUMB_LEFT", "CLAVICLE_RIGHT",
    "SHOULDER_RIGHT", "ELBOW_RIGHT", "WRIST_RIGHT", "HAND_RIGHT", "HANDTIP_RIGHT", "THUMB_RIGHT",
    "HIP_LEFT", "KNEE_LEFT", "ANKLE_LEFT", "FOOT_LEFT", "HIP_RIGHT", "KNEE_RIGHT", "ANKLE_RIGHT",
    "FOOT_RIGHT", "HEAD", "NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT",
)
# k4abt_joint_confidence_level_t: NONE, LOW, MEDIUM, HIGH (HIGH is unused by SDK 1.x).
AZURE_KINECT_CONFIDENCE: tuple[float, ...] = (0.0, 0.3, 0.8, 1.0)

# MediaPipe Pose landmarks (33), PoseLandmark order.
MEDIAPIPE_JOINTS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)

# Kinect for Windows SDK v1, NUI_SKELETON_POSITION_INDEX order (20 joints).
KINECT_V1_JOINTS: tuple[str, ...] = (
    "HipCenter", "Spine", "ShoulderCenter", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft",
    "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft",
    "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight",
)

# Kinect for Windows SDK v2, JointType order (25 joints).
KINECT_V2_JOINTS: tuple[str, ...] = (
    "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft",
    "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft",
    "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight", "SpineShoulder",
    "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
)

LAYOUTS: dict[str, tuple[str, ...]] = {
    CANONICAL: CANONICAL_JOINTS,
    CANONICAL_FEET: CANONICAL_FEET_JOINTS,
    "azure_kinect32": AZURE_KINECT_JOINTS,
    "mediapipe33": MEDIAPIPE_JOINTS,
    "kinect_v1_20": KINECT_V1_JOINTS,
    "kinect_v2_25": KINECT_V2_JOINTS,
}

Weights = dict[str, float]

# canonical joint -> {source joint: weight}. Weights of one entry sum to 1.
MAPPINGS: dict[str, dict[str, Weights]] = {
    "azure_kinect32": {
        "pelvis": {"PELVIS": 1.0},
        "left_hip": {"HIP_LEFT": 1.0},
        "right_hip": {"HIP_RIGHT": 1.0},
        "spine1": {"PELVIS": 0.5, "SPINE_NAVEL": 0.5},
        "left_knee": {"KNEE_LEFT": 1.0},
        "right_knee": {"KNEE_RIGHT": 1.0},
        "spine2": {"SPINE_NAVEL": 1.0},
        "left_ankle": {"ANKLE_LEFT": 1.0},
        "right_ankle": {"ANKLE_RIGHT": 1.0},
        "spine3": {"SPINE_CHEST": 1.0},
        "left_foot": {"FOOT_LEFT": 1.0},
        "right_foot": {"FOOT_RIGHT": 1.0},
        "neck": {"NECK": 1.0},
        "left_collar": {"CLAVICLE_LEFT": 1.0},
        "right_collar": {"CLAVICLE_RIGHT": 1.0},
        "head": {"HEAD": 1.0},
        "left_shoulder": {"SHOULDER_LEFT": 1.0},
        "right_shoulder": {"SHOULDER_RIGHT": 1.0},
        "left_elbow": {"ELBOW_LEFT": 1.0},
        "right_elbow": {"ELBOW_RIGHT": 1.0},
        "left_wrist": {"WRIST_LEFT": 1.0},
        "right_wrist": {"WRIST_RIGHT": 1.0},
    },
    # MediaPipe has no spine: spine joints are placed along the mid-hip -> mid-shoulder line at
    # the SMPL proportions (about 1/4, 1/2, 3/4 of the trunk); its foot joint is the toe tip,
    # so the canonical foot (ball of the foot) is taken between heel and toe tip.
    "mediapipe33": {
        "pelvis": {"left_hip": 0.5, "right_hip": 0.5},
        "left_hip": {"left_hip": 1.0},
        "right_hip": {"right_hip": 1.0},
        "spine1": {"left_hip": 0.375, "right_hip": 0.375, "left_shoulder": 0.125,
                   "right_shoulder": 0.125},
        "left_knee": {"left_knee": 1.0},
        "right_knee": {"right_knee": 1.0},
        "spine2": {"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25,
                   "right_shoulder": 0.25},
        "left_ankle": {"left_ankle": 1.0},
        "right_ankle": {"right_ankle": 1.0},
        "spine3": {"left_hip": 0.125, "right_hip": 0.125, "left_shoulder": 0.375,
                   "right_shoulder": 0.375},
        "left_foot": {"left_heel": 0.3, "left_foot_index": 0.7},
        "right_foot": {"right_heel": 0.3, "right_foot_index": 0.7},
        "neck": {"left_shoulder": 0.5, "right_shoulder": 0.5},
        "left_collar": {"left_shoulder": 0.75, "right_shoulder": 0.25},
        "right_collar": {"left_shoulder": 0.25, "right_shoulder": 0.75},
        "head": {"left_ear": 0.5, "right_ear": 0.5},
        "left_shoulder": {"left_shoulder": 1.0},
        "right_shoulder": {"right_shoulder": 1.0},
        "left_elbow": {"left_elbow": 1.0},
        "right_elbow": {"right_elbow": 1.0},
        "left_wrist": {"left_wrist": 1.0},
        "right_wrist": {"right_wrist": 1.0},
    },
    # Kinect v1 has no collars; they sit halfway between the shoulder centre and each shoulder.
    "kinect_v1_20": {
        "pelvis": {"HipCenter": 1.0},
        "left_hip": {"HipLeft": 1.0},
        "right_hip": {"HipRight": 1.0},
        "spine1": {"HipCenter": 0.5, "Spine": 0.5},
        "left_knee": {"KneeLeft": 1.0},
        "right_knee": {"KneeRight": 1.0},
        "spine2": {"Spine": 1.0},
        "left_ankle": {"AnkleLeft": 1.0},
        "right_ankle": {"AnkleRight": 1.0},
        "spine3": {"Spine": 0.5, "ShoulderCenter": 0.5},
        "left_foot": {"FootLeft": 1.0},
        "right_foot": {"FootRight": 1.0},
        "neck": {"ShoulderCenter": 1.0},
        "left_collar": {"ShoulderCenter": 0.5, "ShoulderLeft": 0.5},
        "right_collar": {"ShoulderCenter": 0.5, "ShoulderRight": 0.5},
        "head": {"Head": 1.0},
        "left_shoulder": {"ShoulderLeft": 1.0},
        "right_shoulder": {"ShoulderRight": 1.0},
        "left_elbow": {"ElbowLeft": 1.0},
        "right_elbow": {"ElbowRight": 1.0},
        "left_wrist": {"WristLeft": 1.0},
        "right_wrist": {"WristRight": 1.0},
    },
    # Kinect v2 is Kinect v1 with a neck and hand tips added: SpineShoulder is v1's
    # ShoulderCenter (between the shoulders, the base of the neck), its Neck sits halfway up the
    # neck, above SMPL's neck joint, so it is not used; no collars either, as for v1.
    "kinect_v2_25": {
        "pelvis": {"SpineBase": 1.0},
        "left_hip": {"HipLeft": 1.0},
        "right_hip": {"HipRight": 1.0},
        "spine1": {"SpineBase": 0.5, "SpineMid": 0.5},
        "left_knee": {"KneeLeft": 1.0},
        "right_knee": {"KneeRight": 1.0},
        "spine2": {"SpineMid": 1.0},
        "left_ankle": {"AnkleLeft": 1.0},
        "right_ankle": {"AnkleRight": 1.0},
        "spine3": {"SpineMid": 0.5, "SpineShoulder": 0.5},
        "left_foot": {"FootLeft": 1.0},
        "right_foot": {"FootRight": 1.0},
        "neck": {"SpineShoulder": 1.0},
        "left_collar": {"SpineShoulder": 0.5, "ShoulderLeft": 0.5},
        "right_collar": {"SpineShoulder": 0.5, "ShoulderRight": 0.5},
        "head": {"Head": 1.0},
        "left_shoulder": {"ShoulderLeft": 1.0},
        "right_shoulder": {"ShoulderRight": 1.0},
        "left_elbow": {"ElbowLeft": 1.0},
        "right_elbow": {"ElbowRight": 1.0},
        "left_wrist": {"WristLeft": 1.0},
        "right_wrist": {"WristRight": 1.0},
    },
}

# Rigs with named joints (BVH, ASF/AMC): joint names differ by convention and are read by role.
# Per naming convention, for each canonical joint, the rig's joint names that make it, tried in
# the order written (the first the rig has wins; "a+b" is the midpoint of two joints). A sided
# canonical joint (left_hip, right_hip) is written once as its role ("hip"); the rig joint's side
# comes from its name (Left/Right, L/R, l_/_r, .L, CMU's lfemur). Names are compared after
# dropping a namespace ("mixamorig:"), letter case and separators. A BVH joint stands for its
# origin; an ASF bone for its start (lfemur starts at the hip).
# The same word means different joints in different conventions (SMPL's "shoulder" is the
# glenohumeral joint, a humanoid rig's "Shoulder" the clavicle; SMPL's "foot" is the ball of the
# foot, a humanoid's "Foot" the ankle), hence one table per convention; a rig takes the first
# convention that gives all 22 joints.
RIG_CONVENTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # SMPL / HumanML3D names (the canonical ones), e.g. exported SMPL rigs
    "smpl": {
        "pelvis": ("pelvis",), "spine1": ("spine1",), "spine2": ("spine2",),
        "spine3": ("spine3",), "neck": ("neck",), "head": ("head",),
        "hip": ("hip",), "knee": ("knee",), "ankle": ("ankle",), "foot": ("foot",),
        "collar": ("collar",), "shoulder": ("shoulder",), "elbow": ("elbow",),
        "wrist": ("wrist",),
    },
    # Humanoid rigs: Mixamo (mixamorig:LeftUpLeg), CMU's BVH release (LeftUpLeg, LeftLeg,
    # LeftFoot, LeftToeBase, LeftShoulder, LeftArm, LeftForeArm, LeftHand), Bandai Namco
    # (UpperLeg_L, LowerLeg_L, Foot_L, Toes_L, Shoulder_L, UpperArm_L, LowerArm_L, Hand_L),
    # Unity/Unreal humanoids (LeftUpperLeg, thigh_l, calf_l, clavicle_l, upperarm_l).
    # Their spine joints are left out on purpose: "Spine" is the lowest of three in Mixamo, the
    # middle one over a LowerBack in CMU's BVH and one of two in Bandai Namco's; see
    # SPINE_ALONG_TRUNK.
    "humanoid": {
        "pelvis": ("hips", "pelvis", "hip"), "neck": ("neck", "neck01"), "head": ("head",),
        "hip": ("upleg", "upperleg", "thigh"),
        "knee": ("leg", "lowerleg", "lowleg", "shin", "calf", "knee"),
        "ankle": ("foot", "ankle"),
        "foot": ("toebase", "toes", "toe", "ball"),
        "collar": ("shoulder", "clavicle", "collar"),
        "shoulder": ("arm", "upperarm"),
        "elbow": ("forearm", "lowerarm", "elbow"),
        "wrist": ("hand", "wrist"),
    },
    # Acclaim ASF bones as CMU names them. The clavicle bone runs from the top of the sternum to
    # the shoulder; SMPL's collar joint lies between, so the collar is the bone's midpoint.
    "acclaim": {
        "pelvis": ("root",), "neck": ("lowerneck",), "head": ("head",),
        "hip": ("femur",), "knee": ("tibia",), "ankle": ("foot",), "foot": ("toes",),
        "collar": ("clavicle+humerus",), "shoulder": ("humerus",), "elbow": ("radius",),
        "wrist": ("wrist",),
    },
}
# Spine joints a convention does not name: placed along the rig's own chain of joints from the
# pelvis to the neck, at these fractions of its length (the SMPL template's pelvis -> spine1 ->
# spine2 -> spine3 -> neck proportions, 24/29/11/36 %, as capture/sim/body.py uses).
SPINE_ALONG_TRUNK: dict[str, float] = {"spine1": 0.24, "spine2": 0.53, "spine3": 0.64}


# canonical26 -> canonical22: its first 22 joints as they are.
MAPPINGS[CANONICAL_FEET] = {name: {name: 1.0} for name in CANONICAL_JOINTS}

# foot point -> {source joint: weight}, for the layouts that have the point. The Azure Kinect's
# FOOT joint sits on the forefoot (its toe; it has no heel), Kinect v1's FootLeft/Right at the
# mid-foot (neither heel nor toe: none).
FOOT_MAPPINGS: dict[str, dict[str, Weights]] = {
    CANONICAL_FEET: {name: {name: 1.0} for name in FOOT_POINTS},
    "mediapipe33": {
        "left_heel": {"left_heel": 1.0}, "right_heel": {"right_heel": 1.0},
        "left_toe": {"left_foot_index": 1.0}, "right_toe": {"right_foot_index": 1.0},
    },
    "azure_kinect32": {"left_toe": {"FOOT_LEFT": 1.0}, "right_toe": {"FOOT_RIGHT": 1.0}},
}


class LayoutError(ValueError):
    """A skeleton's layout is unknown or its joint count does not match the layout."""


@lru_cache(maxsize=None)
def mapping_matrix(layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(W, used): canonical26 = W @ source joints; used[i, j] says source j feeds joint i of
    canonical26 (22 canonical joints, then the foot points; a row the source cannot fill is 0)."""
    if layout == CANONICAL:
        eye = np.eye(len(CANONICAL_FEET_JOINTS), len(CANONICAL_JOINTS), dtype=np.float32)
        eye.setflags(write=False)
        return eye, eye.astype(bool)
    if layout not in MAPPINGS:
        raise LayoutError(f"no mapping from layout {layout!r} to {CANONICAL}")
    names = {n: i for i, n in enumerate(LAYOUTS[layout])}
    w = np.zeros((len(CANONICAL_FEET_JOINTS), len(names)), dtype=np.float32)
    rows = {n: i for i, n in enumerate(CANONICAL_FEET_JOINTS)}
    for cname, weights in (*MAPPINGS[layout].items(), *FOOT_MAPPINGS.get(layout, {}).items()):
        for sname, wt in weights.items():
            w[rows[cname], names[sname]] = wt
    w.setflags(write=False)
    used = w > 0
    used.setflags(write=False)
    return w, used


def to_canonical(layout: str, joints: np.ndarray, confidence: np.ndarray, feet: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Map (J, 3) or (T, J, 3) joints of ``layout`` to the canonical 22 joints and confidences;
    with ``feet``, to canonical26 (the foot points the layout lacks at confidence 0)."""
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
    n = len(LAYOUTS[layout])
    if joints.shape[-2:] != (n, 3) or confidence.shape[-1] != n:
        raise LayoutError(f"layout {layout} has {n} joints; got joints {joints.shape}, "
                          f"confidence {confidence.shape}")
    w, used = mapping_matrix(layout)
    if not feet:
        w, used = w[:len(CANONICAL_JOINTS)], used[:len(CANONICAL_JOINTS)]
    out = np.einsum("cj,...jk->...ck", w, joints).astype(np.float32)
    # lowest confidence among the source joints used for each canonical joint (0: none used)
    c = np.where(used, confidence[..., None, :], np.inf).min(axis=-1)
    c = np.where(np.isfinite(c), c, 0.0).astype(np.float32)
    return out, c
