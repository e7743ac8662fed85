"""DPG's training and evaluation clips: 2D keypoints of 124 frames at 30 Hz with their targets.

Three sources, each read by its documented layout:

* the simulator (``capture.sim``): a random walker (every pattern and severity, random scenes),
  its canonical skeleton seen by a random pinhole camera (:class:`Camera`) with webcam-like
  pixel noise; targets from the simulator's truth: per stride cadence and step length
  (``cycle_truth``), GDI (``stride_indices`` of the true skeleton) and the knee's flexion at
  maximum extension (the minimum of the stride's knee-flexion curve);
* real strides in the FGDI layout (``inference.data.fgdi``): each subject-session's right and
  left stride drive the canonical skeleton (``angle_curves.pig_walk``) at a drawn stride time,
  seen from a side view; GDI and knee from the stride's own curves, cadence = 120 / the drawn
  stride time (the curves carry no time), step length measured on the driven skeleton;
* clinic-video keypoints with IMU reports (the ``trials_index.csv`` + zip layout of
  ../shared/data/video_keypoints_imu_gaitvalidation): 3D camera-frame poses (mm, y down) of 17
  joints, projected onto the image plane (x/z, y/z: what a 2D pose model gives); cadence and
  left/right step length from the IMU report; no GDI or knee target.

Step length is a target in leg lengths (``inference.models.gdi.indices.leg_length`` of the 3D
skeleton); reported in metres again. Persons are held out whole (:func:`held_out`).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.data import SHARED_DATA
from inference.models.dpg.config import CLIP_FRAMES, LANDMARKS, RATE_HZ, SIDES
from inference.models.dpg.features import HOP_FRAMES, clip_images, project
from inference.models.gdi.indices import leg_length
from streams.skeletons import CANONICAL_JOINTS, CJ

FGDI = SHARED_DATA / "pathological_kinematics_fgdi"
VIDEO = SHARED_DATA / "video_keypoints_imu_gaitvalidation"
KIDZINSKI_MODELS = SHARED_DATA / "gdi_models_mobile_gaitlab" / "models"
HOLD_EVERY = 3  # every third person of a group (in sorted order) is held out
BASELINE_FRAMES = CLIP_FRAMES + 1  # the 1D-CNN's loop needs one frame more for one window

# The 17 joints of the video keypoints (MeTRAbs ``mpi_inf_3dhp_17``, joint order in the folder's
# SOURCES.md) -> canonical joint names; htop and spin have no canonical counterpart.
MPI_INF_3DHP_17: tuple[str | None, ...] = (
    None, "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "pelvis", None, "head")
# IMU report columns (Noraxon export header names, SOURCES.md)
IMU_CADENCE = "Cadence [step/min]"
IMU_STEP = {"left": "Step Length left [cm]", "right": "Step Length right [cm]"}


@dataclass
class Clip:
    images: np.ndarray  # (2, 128, 128)
    targets: np.ndarray  # (8,) OUTPUTS order, NaN = no truth
    leg_m: float
    person: str
    group: str
    source: str  # 'sim' | 'fgdi' | 'video'
    # canonical-named (125, 2) image keypoints at 30 Hz (with feet where the source has them):
    # the 1D-CNN baseline's input on the same clip
    keypoints: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def held_out(persons_by_group: dict[str, list[str]]) -> set[str]:
    """Every HOLD_EVERY-th person of each group in sorted order (from the first): a fixed,
    person-level test split that covers every group."""
    out: set[str] = set()
    for persons in persons_by_group.values():
        out.update(p for i, p in enumerate(sorted(set(persons))) if i % HOLD_EVERY == 0)
    return out


# --------------------------------------------------------------------------- cameras


@dataclass
class Camera:
    """A level-ish pinhole camera looking at ``target`` (world, y up) from ``position``."""
    position: np.ndarray
    target: np.ndarray
    width_px: float
    hfov_deg: float
    noise_px: float

    def camera_frame(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera coordinates: x right, y down, z forward (depth)."""
        fwd = self.target - self.position
        fwd = fwd / np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        rel = np.asarray(points, np.float64) - self.position
        return np.stack([rel @ right, rel @ down, rel @ fwd], axis=-1)

    def to_image(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """World points (..., 3) -> pixel coordinates (..., 2), y down, with Gaussian noise."""
        f = 0.5 * self.width_px / np.tan(np.radians(self.hfov_deg) / 2)
        px = f * project(self.camera_frame(points)) + 0.5 * self.width_px
        return px + rng.normal(0.0, self.noise_px, px.shape)


def random_camera(joints: np.ndarray, rng: np.random.Generator, side_view: bool) -> Camera:
    """A webcam watching a stretch of walking: at 3-6 m from the middle of the pelvis path, 0.7-
    1.5 m high, either side; ``side_view``: within 20 deg of perpendicular to the walking
    direction, else at any angle 30 % of the time. 640-1920 px wide, 50-80 deg field of view,
    0.5-3 px noise at 640 px."""
    pel = joints[:, CJ["pelvis"]]
    mid = pel.mean(0)
    travel = pel[-1] - pel[0]
    travel[1] = 0.0
    heading = np.arctan2(travel[0], travel[2]) if np.linalg.norm(travel) > 0.2 else \
        rng.uniform(-np.pi, np.pi)
    if side_view or rng.random() < 0.7:
        az = heading + rng.choice([-1.0, 1.0]) * np.pi / 2 + np.radians(rng.uniform(-20, 20))
    else:
        az = rng.uniform(-np.pi, np.pi)
    dist = rng.uniform(3.0, 6.0)
    pos = mid + dist * np.array([np.sin(az), 0.0, np.cos(az)])
    pos[1] = rng.uniform(0.7, 1.5)
    target = np.array([mid[0], rng.uniform(0.6, 1.1), mid[2]])
    width = float(rng.choice([640.0, 1280.0, 1920.0]))
    return Camera(pos, target, width, rng.uniform(50, 80), rng.uniform(0.5, 3.0) * width / 640)


def named(kp: np.ndarray, names: tuple[str | None, ...]) -> dict[str, np.ndarray]:
    return {n: kp[:, i] for i, n in enumerate(names) if n is not None}


def landmarks(kp: dict[str, np.ndarray]) -> np.ndarray:
    """(T, L, 2) DPG landmarks from canonical-named (T, 2) keypoints."""
    missing = [n for n in LANDMARKS if n not in kp]
    if missing:
        raise ValueError(f"keypoints lack DPG landmarks: {', '.join(missing)}")
    return np.stack([kp[n] for n in LANDMARKS], axis=1)


def _clip(kp30: dict[str, np.ndarray], s: int, targets: np.ndarray, leg: float, person: str,
          group: str, source: str) -> Clip:
    window = {n: v[s:s + BASELINE_FRAMES] for n, v in kp30.items()}
    images = clip_images(landmarks({n: v[:CLIP_FRAMES] for n, v in window.items()}))
    return Clip(images, targets, leg, person, group, source, window)


def _targets(per_side: dict[str, dict[str, float]]) -> np.ndarray:
    return np.array([per_side.get(side, {}).get(t, np.nan)
                     for t in ("gdi", "knee_flex_max_ext_deg", "cadence_spm", "step_length_legs")
                     for side in SIDES], np.float64)


# --------------------------------------------------------------------------- simulator


def sim_clips(n_walkers: int, seed: int = 0, hop: int = 62) -> list[Clip]:
    """Clips of ``n_walkers`` random simulated walkers at 30 Hz (hop ``hop`` frames)."""
    from capture.sim.truth import cycle_truth
    from inference.analysis.gait_variables import V, stride_variables
    from inference.data.simulated import random_person, walk_frames
    from inference.models.gdi.indices import stride_indices

    rng = np.random.default_rng(seed)
    out: list[Clip] = []
    for w in range(n_walkers):
        person, info = random_person(rng)
        t_s = np.arange(0.0, person.t_stop, 1.0 / RATE_HZ)
        if len(t_s) < BASELINE_FRAMES:
            continue
        t_us, joints, _, _ = walk_frames(person, t_s)
        leg = leg_length(joints)
        strides = []
        for c in cycle_truth(person):
            m = c["metrics"]
            fs0, fs1 = int(c["start_s"] * 1e6), int(c["end_s"] * 1e6)
            idx = stride_indices(t_us, joints, c["side"], fs0, fs1, m.get("speed_mps"))
            curves = stride_variables(t_us, joints, c["side"], fs0, fs1)
            knee = float(np.nanmin(curves[V["knee_flexion"]])) if curves is not None else np.nan
            sl = m.get("step_length_m")
            strides.append((c["side"], c["start_s"], c["end_s"], {
                "gdi": idx.get("gdi", np.nan), "knee_flex_max_ext_deg": knee,
                "cadence_spm": m.get("cadence_spm") or np.nan,
                "step_length_legs": (sl / leg) if sl is not None and leg else np.nan}))
        cam = random_camera(joints, rng, side_view=False)
        kp = named(cam.to_image(joints, rng), CANONICAL_JOINTS)
        person_id = f"sim{seed}-{w}"
        for s in range(0, len(t_s) - BASELINE_FRAMES + 1, hop):
            t0, t1 = t_s[s], t_s[s + CLIP_FRAMES - 1]
            per_side: dict[str, dict[str, float]] = {}
            for side in SIDES:
                mine = [v for sd, a, b, v in strides if sd == side and a >= t0 and b <= t1]
                if mine:
                    per_side[side] = {k: float(np.nanmean([v[k] for v in mine]))
                                      if np.isfinite([v[k] for v in mine]).any() else np.nan
                                      for k in mine[0]}
            tg = _targets(per_side)
            if np.isfinite(tg).any():
                out.append(_clip(kp, s, tg, leg, person_id,
                                 f"{info['pattern']}{info['severity']}", "sim"))
    return out


# --------------------------------------------------------------------------- FGDI strides


def fgdi_pairs(folder: str | Path = FGDI) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(person, group, right curves, left curves) of every subject-session with both sides."""
    from inference.data.fgdi import read_folder

    by: dict[tuple[str, str], dict] = {}
    for s in read_folder(folder).strides:
        d = by.setdefault((s.subject, s.session), {"group": s.group})
        d.setdefault(s.side, s.curves)
    return [(subj, d["group"], d["right"], d["left"]) for (subj, _), d in sorted(by.items())
            if "right" in d and "left" in d]


def fgdi_stride_targets(curves: np.ndarray) -> dict[str, float]:
    from inference.analysis.gait_variables import V
    from inference.models.gdi.indices import gait_vector, load_basis

    return {"gdi": float(load_basis().gdi(gait_vector(curves)[None])[0]),
            "knee_flex_max_ext_deg": float(np.min(curves[V["knee_flexion"]]))}


def step_lengths(joints: np.ndarray, period_s: float, cycle: int = 1) -> dict[str, float]:
    """Step length (m) per side of a pig_walk skeleton at 30 Hz: ankle ahead of the other along
    the walking direction at the side's foot strike (right at 0 %, left at 50 % of a cycle)."""
    pel = joints[:, CJ["pelvis"]]
    fwd = pel[-1] - pel[0]
    fwd[1] = 0.0
    fwd /= np.linalg.norm(fwd)
    out = {}
    for side, other, phase in (("right", "left", 0.0), ("left", "right", 0.5)):
        i = int(round((cycle + phase) * period_s * RATE_HZ))
        out[side] = float((joints[i, CJ[f"{side}_ankle"]] - joints[i, CJ[f"{other}_ankle"]]) @ fwd)
    return out


def fgdi_clips(folder: str | Path = FGDI, views: int = 4, seed: int = 0,
               persons: set[str] | None = None) -> list[Clip]:
    """``views`` clips per subject-session (each its own stride time, 0.95-1.35 s, and side-view
    camera); only the persons in ``persons`` when given."""
    from inference.data.angle_curves import pig_walk

    rng = np.random.default_rng(seed)
    out = []
    for person, group, right, left in fgdi_pairs(folder):
        if persons is not None and person not in persons:
            continue
        tr, tl = fgdi_stride_targets(right), fgdi_stride_targets(left)
        for _ in range(views):
            period = rng.uniform(0.95, 1.35)
            cycles = int(np.ceil(BASELINE_FRAMES / RATE_HZ / period)) + 2
            _, joints, _ = pig_walk(right, left, cycles=cycles, rate_hz=RATE_HZ, period_s=period)
            leg = leg_length(joints)
            steps = step_lengths(joints, period)
            per_side = {side: {**t, "cadence_spm": 120.0 / period,
                               "step_length_legs": steps[side] / leg}
                        for side, t in (("right", tr), ("left", tl))}
            cam = random_camera(joints, rng, side_view=True)
            kp = named(cam.to_image(joints, rng), CANONICAL_JOINTS)
            out.append(_clip(kp, 0, _targets(per_side), leg, person, group, "fgdi"))
    return out


# --------------------------------------------------------------------------- video keypoints


@dataclass
class VideoTrial:
    trial: str
    person: str
    group: str
    t_us: np.ndarray
    keypoints: dict[str, np.ndarray]  # canonical-named (T, 2) image-plane coordinates
    joints_mm: np.ndarray  # (T, 17, 3) camera frame, y down
    imu: dict[str, float]  # cadence_spm, step_length_m_left/right


def _float(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return float("nan")


def read_video_folder(folder: str | Path = VIDEO) -> list[VideoTrial]:
    """Every trial of a folder in the video-keypoints layout: an index CSV with ``trial,
    subject, keypoints_file, imu_report_file, n_frames, duration_s_at_60fps`` naming members of
    the folder's zip (read in place, never extracted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    need = ("trial", "subject", "keypoints_file", "imu_report_file", "n_frames")
    index = None
    for p in sorted(folder.glob("*.csv")):
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        if rows and all(c in rows[0] for c in need):
            index = rows
            break
    zips = sorted(folder.glob("*.zip"))
    if index is None or not zips:
        raise ValueError(f"{folder}: not the video-keypoints layout (an index CSV with "
                         f"{', '.join(need)} and a zip of its members)")
    out = []
    with zipfile.ZipFile(zips[0]) as z:
        for r in index:
            kp = np.load(io.BytesIO(z.read(r["keypoints_file"])))
            if kp.ndim != 3 or kp.shape[1:] != (len(MPI_INF_3DHP_17), 3):
                raise ValueError(f"{r['keypoints_file']}: expected (T, 17, 3), got {kp.shape}")
            n = len(kp)
            dur = _float(r.get("duration_s_at_60fps", "nan"))
            rate = n / dur if dur > 0 else 60.0  # the index's duration gives the rate
            t_us = np.round(np.arange(n) / rate * 1e6).astype(np.int64)
            rep = list(csv.reader(io.TextIOWrapper(z.open(r["imu_report_file"]),
                                                    encoding="utf-8-sig")))
            head = [h.strip() for h in rep[0]]
            vals = dict(zip(head, rep[1])) if len(rep) > 1 else {}
            imu = {"cadence_spm": _float(vals.get(IMU_CADENCE, "nan"))}
            for side, col in IMU_STEP.items():
                imu[f"step_length_m_{side}"] = _float(vals.get(col, "nan")) / 100.0
            out.append(VideoTrial(r["trial"], r["subject"], r.get("lmm_group") or "unknown",
                                  t_us, named(project(kp), MPI_INF_3DHP_17), kp, imu))
    return out


def video_canonical(trial: VideoTrial) -> np.ndarray:
    """(T, 22, 3) canonical joints (metres, y up: the camera frame turned 180 deg about x),
    NaN where the 17 joints have no counterpart."""
    out = np.full((len(trial.joints_mm), len(CANONICAL_JOINTS), 3), np.nan)
    for i, n in enumerate(MPI_INF_3DHP_17):
        if n is not None:
            out[:, CJ[n]] = trial.joints_mm[:, i] * np.array([1e-3, -1e-3, -1e-3])
    return out


# Canonical joints the 17 lack, filled so that the classical analysis takes the skeleton (at
# confidence 0: filled, not seen): (joint, from, to, fraction along from -> to)
VIDEO_FILL: tuple[tuple[str, str, str, float], ...] = (
    ("spine1", "pelvis", "neck", 0.25), ("spine2", "pelvis", "neck", 0.5),
    ("spine3", "pelvis", "neck", 0.75), ("left_collar", "neck", "left_shoulder", 0.5),
    ("right_collar", "neck", "right_shoulder", 0.5), ("left_foot", "left_ankle", "left_ankle", 0),
    ("right_foot", "right_ankle", "right_ankle", 0))


def video_skeleton_frames(trial: VideoTrial) -> list:
    """The trial's 3D poses as canonical22 SkeletonFrames (the feet at the ankles, confidence
    0 on every filled joint), for the classical analysis."""
    from streams.schema import Body, SkeletonFrame

    j = video_canonical(trial)
    conf = np.ones(j.shape[:2], np.float32)
    for name, a, b, f in VIDEO_FILL:
        j[:, CJ[name]] = (1 - f) * j[:, CJ[a]] + f * j[:, CJ[b]]
        conf[:, CJ[name]] = 0.0
    j = j.astype(np.float32)
    return [SkeletonFrame(source="video", seq=i + 1, t_us=int(t), host_us=0, layout="canonical22",
                          bodies=[Body(0, j[i], conf[i])]) for i, t in enumerate(trial.t_us)]


def video_clips(trials: list[VideoTrial], hop: int = HOP_FRAMES) -> list[Clip]:
    from inference.models.dpg.features import resample

    out = []
    for tr in trials:
        frames = resample(tr.t_us, landmarks(tr.keypoints))
        kp30 = {n: frames[:, i] for i, n in enumerate(LANDMARKS)}
        leg = leg_length(video_canonical(tr))
        per_side = {side: {"cadence_spm": tr.imu["cadence_spm"],
                           "step_length_legs": tr.imu[f"step_length_m_{side}"] / leg}
                    for side in SIDES}
        tg = _targets(per_side)
        for s in range(0, len(frames) - CLIP_FRAMES + 1, hop):
            c = _clip(kp30, s, tg, leg, tr.person, tr.group, "video")
            c.keypoints = {}  # no feet: the 1D-CNN's documented input cannot be built
            out.append(c)
    return out

