"""The nine standard gait kinematic variables of one stride, from canonical joint positions.

The variables of the Gait Deviation Index and the Gait Profile Score (Schwartz & Rozumalski
2008; Baker et al. 2009), in Plug-in-Gait conventions (degrees, each side in its own sign
convention so that left and right read alike), time-normalised from the side's foot strike to
its next one:

====================  =================================================================
pelvis_tilt           anterior tilt +. NOT MEASURED from a skeleton: hip joint centres and
                      a pelvis joint between them carry no sagittal pelvis orientation
                      (Plug-in-Gait takes it from the ASIS-PSIS line). NaN here.
pelvis_obliquity      this side's hip above the other's +
pelvis_rotation       this side's hip ahead of the other's (internal) +
hip_flexion           thigh vs pelvis, flexion +. The pelvis frame lacks tilt, so this is
                      the thigh against the hip line's plane plus ``pelvis_tilt`` given by
                      the caller (the normative mean tilt: Plug-in-Gait's hip flexion
                      contains the walker's tilt, ~12 deg anterior).
hip_adduction         thigh vs pelvis, adduction + (Plug-in-Gait's HipAngles Y)
hip_rotation          internal +; from the plane of hip, knee and ankle (the knee bends in
                      it), in frames with the knee bent 20 deg or more (swing, loading),
                      held across the rest: WEAK. A straight knee's plane is set by its
                      varus/valgus and by millimetres of joint placement; Plug-in-Gait uses
                      the knee's anatomical axis (markers). NaN when the knee never bends.
knee_flexion          angle between thigh and shank, flexion +, hyperextension -
ankle_dorsiflexion    foot vs the shank's perpendicular, dorsiflexion +. The foot is heel ->
                      toe (``kinematics.foot_axis``, the labs' axis) in a stride whose heel is
                      seen throughout: no zeroing, a fixed equinus reads as what it is. A
                      skeleton without a heel has only ankle -> ball of the foot, which points
                      down when the sole is level: that stride is zeroed on its own foot flat
                      (the stance frames where the foot moves least), so a fixed equinus (no
                      foot flat) reads as a smaller deviation than it is.
foot_progression      foot (ankle -> ball) in the horizontal plane vs the walking direction,
                      internal (toe-in) +; from frames where the foot is pitched less than
                      60 deg, held across the rest (early swing)
====================  =================================================================

The walking direction of a stride is the pelvis' horizontal travel over it (on a treadmill,
where the pelvis stays put: perpendicular to the mean hip line, towards the feet). Up is +y.
"""

from __future__ import annotations

import numpy as np

from inference.analysis.filters import Window, local_poly
from inference.analysis.kinematics import HEEL_TOE, foot_axis
from streams.skeletons import CJ

VARIABLES: tuple[str, ...] = (
    "pelvis_tilt", "pelvis_obliquity", "pelvis_rotation", "hip_flexion", "hip_adduction",
    "hip_rotation", "knee_flexion", "ankle_dorsiflexion", "foot_progression")
V = {name: i for i, name in enumerate(VARIABLES)}

# What a skeleton gives of each variable (the report notes it next to GPS/GVS/GDI), from the
# agreement with a lab's own Plug-in-Gait outputs over 26 strides of 10 lab trials (`gaitstream
# eval gait-variables`, table in inference/models/gdi/gdi.md). Weak = RMS difference above a
# third of the variable's range over the cycle, or r < 0.7. From lab markers: hip rotation
# (RMS 11.8 deg for a range of 17.5, r 0.22). Through the simulated depth camera also pelvis
# obliquity and rotation, hip adduction, ankle, foot progression (RMS 7.6, 7.9, 8.2, 22.4, 21.7
# deg against ranges of 7.5, 11.2, 10.8, 30.6, 16.0); knee (10.7 of 54) and hip flexion (7.1 of
# 44) hold.
NOT_MEASURED = ("pelvis_tilt",)
WEAK: dict[str, tuple[str, ...]] = {
    "markers": ("hip_rotation",),
    "depth_camera": ("pelvis_obliquity", "pelvis_rotation", "hip_adduction", "hip_rotation",
                     "ankle_dorsiflexion", "foot_progression"),
}
# a layout's kind of source (an unknown one is taken as a camera: the cautious reading)
# (canonical22/26: lab markers, mocap rigs and the simulator; 26 adds the lab's heel and toe)
SOURCE_KIND = {"canonical22": "markers", "canonical26": "markers",
               "azure_kinect32": "depth_camera", "kinect_v1_20": "depth_camera",
               "kinect_v2_25": "depth_camera", "mediapipe33": "depth_camera"}


# Whether a source's GDI/GPS can be read against lab norms. Depth cameras: no. Through the
# simulated Azure Kinect, GDI reads 11 points low and GPS 8 deg high against the same strides'
# Plug-in-Gait; 436 real Kinect v1 strides of 41 walks of unimpaired adults
# (kinect_v1_walking_andersson2015) give a median GDI of 42 and GPS of 44 deg (the knee reads
# ~20 deg hyperextended in stance, the foot joint is unusable).
CAUTION = {
    "markers": None,
    "depth_camera": ("GDI and GPS from a depth camera are not comparable with lab norms: its "
                     "joint noise reads as deviation (simulated Azure Kinect: GDI 11 low, GPS "
                     "8 deg high; real Kinect v1, unimpaired adults: median GDI 42); compare "
                     "only with the same camera's own earlier walks"),
}


def caution(layout: str) -> str | None:
    return CAUTION[SOURCE_KIND.get(layout, "depth_camera")]


def weak_variables(layout: str) -> tuple[str, ...]:
    """The variables a source of ``layout`` measures poorly (mediapipe33, a webcam's 3-D
    estimate, is at best as good as a depth camera)."""
    return WEAK[SOURCE_KIND.get(layout, "depth_camera")]

UP = np.array([0.0, 1.0, 0.0])
# Knee flexion from which the knee's bend gives the femur's rotation: several times the
# frontal-plane misalignment of an adult knee (varus/valgus ~5 deg), so that the bend's
# direction is the flexion plane's.
MIN_BENT_KNEE_DEG = 20.0
# the confidence from which a foot point counts as seen (the analysis' min_confidence)
MIN_SEEN = 0.5
# cos of the steepest foot pitch at which its direction on the floor is read (60 deg)
MIN_FOOT_LEVEL = 0.5
# the variables only some frames of a stride define (filled from those)
PARTIAL = ("hip_rotation", "foot_progression")
OTHER = {"left": "right", "right": "left"}
# The classical analysis' own smoothing (AnalyzerOptions: +-80 ms, quadratic), zero-phase: a
# depth camera's joints jitter by centimetres, which at the foot's 15 cm are tens of degrees.
SMOOTH = Window(80.0, 80.0, 2, 24)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.full_like(v, np.nan), where=n > 0)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...k,...k->...", a, b)


def _deg_asin(x: np.ndarray) -> np.ndarray:
    return np.degrees(np.arcsin(np.clip(x, -1.0, 1.0)))


def walking_direction(joints: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Horizontal unit walking direction of (N, 22, 3) joints over a stride."""
    travel = joints[-1, CJ["pelvis"]] - joints[0, CJ["pelvis"]]
    travel = travel - travel @ up * up
    if np.linalg.norm(travel) > 0.2:  # at least a short step's travel: overground
        return travel / np.linalg.norm(travel)
    # treadmill: perpendicular to the mean hip line, on the side the feet point to
    hip = np.nanmean(joints[:, CJ["left_hip"]] - joints[:, CJ["right_hip"]], axis=0)
    f = np.cross(hip, up)
    f = f - f @ up * up
    feet = np.nanmean(joints[:, [CJ["left_foot"], CJ["right_foot"]]]
                      - joints[:, [CJ["left_ankle"], CJ["right_ankle"]]], axis=(0, 1))
    return f / np.linalg.norm(f) * (1.0 if feet @ f >= 0 else -1.0)


def frame_variables(joints: np.ndarray, side: str, fwd: np.ndarray, up: np.ndarray = UP,
                    heel_seen: np.ndarray | bool = False) -> np.ndarray:
    """(N, 9) variables of ``side`` per frame of (N, 22, 3) joints (or (N, 26, 3) with the
    foot points, whose heel -> toe is the foot axis where ``heel_seen``); pelvis tilt is NaN,
    hip flexion lacks the tilt and a heel-less ankle its foot-flat zero
    (:func:`stride_variables` adds them). ``up``: the floor's normal (default +y)."""
    s = 1.0 if side == "left" else -1.0
    hip, ohip = joints[:, CJ[f"{side}_hip"]], joints[:, CJ[f"{OTHER[side]}_hip"]]
    knee, ankle = joints[:, CJ[f"{side}_knee"]], joints[:, CJ[f"{side}_ankle"]]
    foot = joints[:, CJ[f"{side}_foot"]]
    left_room = np.cross(up, fwd)  # the walker's left in the room
    out = np.full((len(joints), len(VARIABLES)), np.nan)

    # Pelvis frame: lateral = the hip line (towards the left), up = room up made square to it,
    # forward = lateral x up. It carries obliquity and rotation, not tilt.
    lat_l = _unit(joints[:, CJ["left_hip"]] - joints[:, CJ["right_hip"]])
    up_p = _unit(up - _dot(lat_l, up)[:, None] * lat_l)
    fwd_p = np.cross(lat_l, up_p)
    own = s * lat_l  # towards this side
    line = hip - ohip  # other hip -> this hip
    out[:, V["pelvis_obliquity"]] = _deg_asin(_dot(_unit(line), up))
    out[:, V["pelvis_rotation"]] = np.degrees(np.arctan2(line @ fwd, s * (line @ left_room)))

    thigh = _unit(knee - hip)
    shank = _unit(ankle - knee)
    out[:, V["hip_flexion"]] = np.degrees(np.arctan2(_dot(thigh, fwd_p), -_dot(thigh, up_p)))
    out[:, V["hip_adduction"]] = _deg_asin(_dot(thigh, -own))
    # The knee's bend: its offset from the hip-ankle line, square to the thigh. Internal
    # rotation turns it from the pelvis' forward towards the midline.
    ha = _unit(ankle - hip)
    bend = (knee - hip) - _dot(knee - hip, ha)[:, None] * ha
    bend = bend - _dot(bend, thigh)[:, None] * thigh
    own_perp = _unit(own - _dot(own, thigh)[:, None] * thigh)
    fwd_ref = s * np.cross(thigh, own_perp)  # = forward for a vertical thigh
    rot = np.degrees(np.arctan2(_dot(bend, -own_perp), _dot(bend, fwd_ref)))
    flex = np.degrees(np.arccos(np.clip(_dot(thigh, shank), -1.0, 1.0)))
    out[:, V["knee_flexion"]] = np.where(_dot(bend, fwd_ref) < 0, -flex, flex)
    # Only a well-bent knee says where it points: near straight, the hip-knee-ankle plane is
    # set by the knee's varus/valgus (a few degrees in adults) and by joint-placement error,
    # not by the femur's rotation. Elsewhere NaN; stride_variables fills from the bent frames.
    out[:, V["hip_rotation"]] = np.where(flex >= MIN_BENT_KNEE_DEG, rot, np.nan)
    # ankle: the foot's angle from the shank's forward perpendicular in the shank's sagittal
    # plane (the plane of the shank and the pelvis' lateral axis' normal)
    f = _unit(foot_axis(joints, side, np.broadcast_to(heel_seen, (len(joints),)))[0])
    up_s = -shank
    fwd_s = _unit(np.cross(own_perp * s, up_s))
    out[:, V["ankle_dorsiflexion"]] = np.degrees(np.arctan2(_dot(f, up_s), _dot(f, fwd_s)))
    f = _unit(foot - ankle)  # foot progression: ankle -> ball, as before (see VARIABLES)
    fh = f - _dot(f, up)[:, None] * up
    # A foot pointing steeply down (early swing: shank back, ankle plantarflexed) has no
    # direction in the floor plane to speak of: its error grows as 1 / cos(pitch). Only frames
    # pitched less than 60 deg count; stride_variables fills from them.
    out[:, V["foot_progression"]] = np.where(
        np.linalg.norm(fh, axis=-1) >= MIN_FOOT_LEVEL,
        np.degrees(np.arctan2(-s * (fh @ left_room), fh @ fwd)), np.nan)
    return out


def stride_variables(t_us: np.ndarray, joints: np.ndarray, side: str, fs0: int, fs1: int,
                     n_points: int = 101, pelvis_tilt: np.ndarray | None = None,
                     confidence: np.ndarray | None = None, smooth: Window | None = SMOOTH,
                     up: np.ndarray = UP) -> np.ndarray | None:
    """(9, n_points) curves of the stride of ``side`` from strike ``fs0`` to ``fs1`` (us), from
    frames ``t_us`` (ascending) of (N, 22, 3) canonical joints, or (N, 26, 3) canonical26 with
    the heels and toes (``confidence`` (N, 22 or 26): weights of the smoothing, 0 = not
    tracked; the foot axis is heel -> toe when the side's heel and toe are seen, confidence
    0.5 or more, in every frame of the stride, or are finite throughout without confidences). ``pelvis_tilt`` (n_points,): the tilt assumed for hip
    flexion (see the module docstring); without it hip flexion is the thigh against the
    untilted pelvis frame. ``up``: the floor's normal (a camera pitched against the floor has
    its y axis tilted: the analysis estimates the floor). None when the frames do not cover the
    stride or a joint it needs is missing in more than a quarter of it."""
    i0 = int(np.searchsorted(t_us, fs0, "right")) - 1
    i1 = int(np.searchsorted(t_us, fs1, "left")) + 1
    if i0 < 0 or i1 > len(t_us) or i1 - i0 < 5:
        return None
    if smooth is not None:
        # the stride's frames, smoothed zero-phase with the frames around it
        m = int(smooth.back_ms * 1000)
        a = int(np.searchsorted(t_us, t_us[i0] - m, "left"))
        b = int(np.searchsorted(t_us, t_us[i1 - 1] + m, "right"))
        w = None if confidence is None else np.asarray(confidence[a:b], dtype=np.float64)
        j = local_poly(np.asarray(t_us[a:b], np.int64), np.asarray(joints[a:b], np.float64),
                       smooth, w, query=np.arange(i0 - a, i1 - a))[0]
    else:
        j = np.asarray(joints[i0:i1], dtype=np.float64)
    t = t_us[i0:i1].astype(np.float64)
    # one foot axis for the whole stride: heel -> toe only if the heel is there throughout
    heel_seen = j.shape[1] > max(HEEL_TOE[side]) and bool(
        np.isfinite(j[:, list(HEEL_TOE[side])]).all() if confidence is None
        else (np.asarray(confidence[i0:i1])[:, list(HEEL_TOE[side])] >= MIN_SEEN).all())
    fv = frame_variables(j, side, walking_direction(j, up), up, heel_seen)
    good = np.isfinite(np.delete(fv, [V[n] for n in ("pelvis_tilt",) + PARTIAL], axis=1)
                       ).all(axis=1)
    if good.mean() < 0.75:
        return None
    at = np.linspace(fs0, fs1, n_points)
    out = np.full((len(VARIABLES), n_points), np.nan)
    for k in range(1, len(VARIABLES)):
        ok = good & np.isfinite(fv[:, k])
        # hip rotation and foot progression from the frames that define them (bent knee,
        # foot not steep: frame_variables), held over the rest; none if no frame does
        if ok.sum() >= 2:
            out[k] = np.interp(at, t[ok], fv[ok, k])
    # Foot flat: the quarter of the stance frames (first 60 %) where ankle and ball of the foot
    # move least (the median over them, not one frame: a depth camera's foot jitters).
    feet = j[:, [CJ[f"{side}_ankle"], CJ[f"{side}_foot"]]]
    speed = np.linalg.norm(np.gradient(feet, t, axis=0), axis=-1).sum(axis=1)
    stance = np.flatnonzero((t >= fs0) & (t <= fs0 + 0.6 * (fs1 - fs0)) & good)
    if len(stance) and not heel_seen:
        flat = stance[np.argsort(speed[stance])[:max(1, len(stance) // 4)]]
        # at foot flat the sole is level: the ankle angle is then the shank's forward lean
        shank = j[flat, CJ[f"{side}_ankle"]] - j[flat, CJ[f"{side}_knee"]]
        fwd = walking_direction(j, up)
        lean = np.degrees(np.arctan2(-shank @ fwd, -shank @ up))
        out[V["ankle_dorsiflexion"]] += np.median(lean - fv[flat, V["ankle_dorsiflexion"]])
    if pelvis_tilt is not None:
        out[V["hip_flexion"]] += pelvis_tilt
    return out
