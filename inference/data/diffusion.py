"""Which recordings the diffusion scorer learns from and is judged on, loaded at 20 fps.

Training uses normal walking only. Some normal walks are held out so that the evaluation can
compare altered gaits with normal walks the model has never seen (the opencap subject's second
normal walk, two of the six normal-shoe Kinect walkers); the altered walks (opencap toe-in,
toe-out, trunk sway; the Kinect high-heels and backpack walkers; the crouch curve) are never
used in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.models.motion_diffusion import features as hml3d
from inference.data import SHARED_DATA as DEFAULT_DATA_DIR
from inference.data.simulated import walk_frames
from streams.skeletons import CJ

log = logging.getLogger(__name__)

LEG_JOINTS = [CJ[n] for n in ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                              "right_ankle", "left_foot", "right_foot")]

KINECT = "kinect_v1_walking_andersson2015"
OPENCAP = "opencap_mocap_modified_gait"
KINECT_TRAIN_PERSONS = ("Person001", "Person002", "Person003", "Person004")
KINECT_HELD_OUT_NORMAL = ("Person005", "Person006")
KINECT_ALTERED = {"Person029": "high_heels", "Person034": "backpack"}
OPENCAP_TRAIN_NORMAL = ("session20210830/walking1_markers.trc", "expert1/markers/walking1.trc")
OPENCAP_HELD_OUT_NORMAL = ("expert1/markers/walking2.trc",)
OPENCAP_ALTERED = {f"expert1/markers/walking{p}{i}.trc": label
                   for p, label in (("TI", "toe_in"), ("TO", "toe_out"), ("TS", "trunk_sway"))
                   for i in (1, 2)}


@dataclass
class Walk:
    """One recording at 20 fps."""

    name: str
    group: str  # lab | kinect | opencap | sim
    joints: np.ndarray  # (T, 22, 3) float32
    confidence: np.ndarray  # (T, 22) float32
    label: str = "normal"
    cycles: list[tuple[int, int]] | None = None  # true strides as frame ranges, when known

    @property
    def n_frames(self) -> int:
        return len(self.joints)


def walk_from_arrays(name: str, group: str, t_us: np.ndarray, joints: np.ndarray,
                     confidence: np.ndarray, label: str = "normal") -> Walk:
    t_new, j = hml3d.resample(t_us, joints)
    conf = np.stack([np.interp(t_new, t_us, c) for c in np.asarray(confidence, float).T], 1)
    return Walk(name, group, j.astype(np.float32), conf.astype(np.float32), label)


def load_walk(path: Path, group: str, label: str = "normal", name: str | None = None) -> Walk:
    from capture.readers import load_recording

    r = load_recording(path)
    return walk_from_arrays(name or r.name, group, r.t_us, r.joints, r.confidence, label)


def legs_tracked(w: Walk) -> bool:
    return bool(w.confidence[:, LEG_JOINTS].mean() >= 0.5)


def real_training_walks(data_dir: Path = DEFAULT_DATA_DIR) -> list[Walk]:
    """The real normal walks used for training; files that cannot be read or whose legs are not
    tracked are left out, each with a logged reason."""
    from capture.readers import RecordingError

    paths: list[tuple[Path, str]] = []
    paths += [(p, "lab") for p in sorted((data_dir / "c3d_gait_lab_samples" / "trials")
                                          .glob("*.c3d"))]
    paths.append((data_dir / "opensim_walking_trc_grf" / "subject01_walk1.trc", "lab"))
    paths += [(data_dir / OPENCAP / rel, "opencap") for rel in OPENCAP_TRAIN_NORMAL]
    for person in KINECT_TRAIN_PERSONS:
        paths += [(p, "kinect") for p in sorted((data_dir / KINECT / "walks" / person)
                                                 .glob("*.txt"))]
    walks = []
    for path, group in paths:
        name = f"{path.parent.name}/{path.name}" if group == "kinect" else path.stem
        try:
            w = load_walk(path, group, name=name)
        except (RecordingError, hml3d.FeatureError) as e:
            log.warning("training data: skipping %s: %s", path.name, e)
            continue
        if not legs_tracked(w):
            log.warning("training data: skipping %s: legs not tracked (mean confidence < 0.5)",
                        name)
            continue
        walks.append(w)
    return walks


def sim_walks(n: int, first_seed: int, pattern: str = "normal", severity: int = 0) -> list[Walk]:
    """``n`` walkers of the synthetic walker (noise-free canonical joints), one per seed
    ``first_seed, first_seed + 1, ...``: random height, proportions, speed, arm swing, trunk
    lean and foot angle around the published norms, walking a straight line or a line, a turn
    and a line. Training uses seeds from 0, the evaluation from EVAL_SEED0."""
    from capture.sim.paths import Arc, Line
    from capture.sim.person import Go, Person
    from capture.sim.style import Style, WalkerParams
    from capture.sim.walker import SIDES

    if pattern == "normal":
        style = Style()
    else:
        from capture.sim.patterns import make_style

        style = make_style(pattern, severity)
    walks = []
    for seed in range(first_seed, first_seed + n):
        rng = np.random.default_rng(seed)
        height = rng.uniform(1.5, 1.95)
        params = WalkerParams(
            height_m=height, leg_scale=rng.uniform(0.95, 1.05),
            width_scale=rng.uniform(0.9, 1.1),
            speed_mps=1.36 * np.sqrt(height / 1.75) * rng.uniform(0.75, 1.2),
            arm_swing=rng.uniform(0.6, 1.4), trunk_lean_deg=rng.uniform(0.0, 6.0),
            toe_out_deg=rng.uniform(2.0, 11.0))
        if rng.random() < 0.5:
            segments = (Line(rng.uniform(6.0, 10.0)),)
        else:
            turn = rng.uniform(45, 180) * rng.choice([-1, 1])
            segments = (Line(rng.uniform(3.0, 6.0)), Arc(rng.uniform(1.5, 4.0), turn),
                        Line(rng.uniform(2.0, 5.0)))
        person = Person.build(params, style, [Go(segments)], (0.0, 0.0),
                              rng.uniform(-np.pi, np.pi), 0.0, rng)
        t = np.arange(person.t_start, person.t_stop, 1.0 / hml3d.FPS)
        joints = walk_frames(person, t)[1].astype(np.float32)
        strikes = {side: [e.t for e in person.events()
                          if e.side == side and e.kind == "foot_strike"] for side in SIDES}
        cycles = [(int(round((a - t[0]) * hml3d.FPS)), int(round((b - t[0]) * hml3d.FPS)))
                  for ts in strikes.values() for a, b in zip(ts, ts[1:]) if b <= t[-1]]
        walks.append(Walk(f"sim/{pattern}{severity}/seed{seed}", "sim", joints,
                          np.ones(joints.shape[:2], np.float32),
                          "normal" if pattern == "normal" else f"{pattern}/{severity}",
                          sorted(cycles)))
    return walks


EVAL_SEED0 = 100_000  # simulator seeds from here on are never used in training
