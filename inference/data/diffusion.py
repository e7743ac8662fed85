"""Which recordings the diffusion scorer learns from and is judged on, loaded at 20 fps.

Nothing here names a file or a person of ../shared/data. Training draws from

- motion corpora: any folder with an index CSV that has a ``file`` column (a file in the folder,
  or a member of a zip in it) and label columns (:data:`LABEL_COLUMNS`: action, style,
  description, label); the labels' words are the clip's prompt (:func:`corpus_walks`);
- the project's normal walks: gait-lab C3D trials and the OpenSim example walk, and the Kinect v1
  walkers of the person-data layout with no condition flag (backpack, high heels) whose person id
  the split rule (:func:`held_out`) keeps for training; prompt "walk normal";
- the synthetic walker (``sim_walks``).

The split rule is a hash of the person id, so a folder of the same layout with other people is
split the same way and no list of ids is kept: about one person in three is held out. The
evaluation layouts (``inference.eval.anomaly``) are never trained on, apart from the Kinect v1
normal walkers the rule keeps for training, which it reports apart.
"""

from __future__ import annotations

import csv
import logging
import zipfile
import zlib
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
NORMAL_PROMPT = "walk normal"
LABEL_COLUMNS = ("action", "style", "description", "label")  # corpus index columns with words
HELD_OUT_BUCKETS = 3  # one person in three is held out


def held_out(person: str) -> bool:
    """The split rule: a person is held out of training when the CRC-32 of its id falls in one
    of HELD_OUT_BUCKETS buckets. Stable across runs and machines, needs no list of ids."""
    return zlib.crc32(person.strip().encode()) % HELD_OUT_BUCKETS == 0


@dataclass
class Walk:
    """One recording at 20 fps."""

    name: str
    group: str  # lab | kinect | opencap | sim
    joints: np.ndarray  # (T, 22, 3) float32
    confidence: np.ndarray  # (T, 22) float32
    label: str = "normal"
    cycles: list[tuple[int, int]] | None = None  # true strides as frame ranges, when known
    prompt: str = NORMAL_PROMPT  # the words training puts this walk under

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


def _load_all(items: list[tuple[str | Path, str, str, str]], what: str,
              check_legs: bool = True) -> list[Walk]:
    """Walks from (path, group, name, prompt); unreadable files and walks whose legs are not
    tracked are left out, each with a logged reason."""
    from capture.readers import RecordingError

    walks = []
    for path, group, name, prompt in items:
        try:
            w = load_walk(path, group, name=name)
        except (RecordingError, hml3d.FeatureError, OSError, ValueError) as e:
            log.warning("%s: skipping %s: %s", what, name, e)
            continue
        if check_legs and not legs_tracked(w):
            log.warning("%s: skipping %s: legs not tracked (mean confidence < 0.5)", what, name)
            continue
        w.prompt = prompt
        walks.append(w)
    return walks


def kinect_v1_walks(folder: Path) -> list[tuple[str, Path | str, str]]:
    """(person, recording path, label) of a Kinect v1 folder in the person-data layout: a CSV
    with ``Individual`` and the condition flag columns (``BackPack``, ``HighHeels``: "S" = yes),
    and index CSVs with ``person`` and ``file`` columns (the file under ``walks/<person>/`` or a
    member of a zip in the folder). Label: the flags set ("backpack", "high_heels", both joined
    by "+"), or "normal"."""
    from inference.data.groundtruth import load_kinect_persons

    persons = {}
    indexes = []
    for p in sorted(folder.glob("*.csv")):
        head = _header(p)
        if "Individual" in head:
            persons.update(load_kinect_persons(p))
        elif {"person", "file"} <= set(head):
            indexes.append(p)
    if not persons or not indexes:
        return []
    zips = _zip_members(folder)
    out = []
    for idx in indexes:
        for row in _dict_rows(idx):
            person, rel = row["person"].strip(), row["file"].strip()
            if person not in persons:
                continue
            loose = folder / "walks" / person / rel
            path = loose if loose.is_file() else (f"{zips[rel]}::{rel}" if rel in zips else None)
            if path is None:
                log.warning("%s: %s of %s not found", idx.name, rel, person)
                continue
            pr = persons[person]
            flags = [n for n, on in (("backpack", pr.backpack), ("high_heels", pr.high_heels))
                     if on]
            out.append((person, path, "+".join(flags) or "normal"))
    return out


KINECT_V2_COLUMNS = ("file", "human", "gait", "kinect")


def kinect_v2_rows(folder: Path) -> tuple[list[tuple[dict[str, str], Path | str]], list[str]]:
    """(index row, recording path) of a folder in the Kinect v2 layout: index CSVs with
    :data:`KINECT_V2_COLUMNS` naming each file, which lies in the folder or in a zip in it
    (``archive.zip::member``); and notes on rows whose file is in neither. Empty when no CSV
    of the folder has those columns."""
    idx = [p for p in sorted(folder.glob("*.csv")) if set(KINECT_V2_COLUMNS) <= set(_header(p))]
    zips = _zip_members(folder) if idx else {}
    out, notes = [], []
    for p in idx:
        for row in _dict_rows(p):
            rel = row["file"].strip()
            path = folder / rel if (folder / rel).is_file() else (
                f"{zips[rel]}::{rel}" if rel in zips else None)
            if path is None:
                notes.append(f"{rel}: neither in the folder nor in its zips")
            else:
                out.append((row, path))
    return out, notes


def kinect_v1_trained_on(person: str, path: Path | str, label: str) -> bool:
    """Whether training takes a Kinect v1 walk: normal, a person the split rule keeps, and a
    loose file (the zipped walks stay out to keep loading short; they are all evaluation)."""
    return label == "normal" and not held_out(person) and "::" not in str(path)


def real_training_walks(data_dir: Path = DEFAULT_DATA_DIR) -> list[Walk]:
    """The project's real normal walks used for training (see the module docstring)."""
    items: list[tuple[str | Path, str, str, str]] = []
    items += [(p, "lab", p.stem, NORMAL_PROMPT)
              for p in sorted((data_dir / "c3d_gait_lab_samples" / "trials").glob("*.c3d"))]
    walk = data_dir / "opensim_walking_trc_grf" / "subject01_walk1.trc"
    if walk.is_file():
        items.append((walk, "lab", walk.stem, NORMAL_PROMPT))
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        for person, path, label in kinect_v1_walks(folder):
            if kinect_v1_trained_on(person, path, label):
                items.append((path, "kinect", f"{person}/{Path(str(path)).name}",
                              NORMAL_PROMPT))
    return _load_all(items, "training data")


# --------------------------------------------------------------------------- corpora


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def _dict_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [{(k or "").strip(): (v or "") for k, v in r.items()}
                for r in csv.DictReader(fh)]


def _zip_members(folder: Path) -> dict[str, Path]:
    """Member name -> the zip in ``folder`` that holds it."""
    out = {}
    for z in sorted(folder.glob("*.zip")):
        with zipfile.ZipFile(z) as zf:
            for n in zf.namelist():
                out.setdefault(n, z)
    return out


def corpus_index(folder: Path) -> list[tuple[str, str]]:
    """(recording path, prompt) of every clip listed by the index CSVs of a corpus folder: a CSV
    with a ``file`` column and at least one of :data:`LABEL_COLUMNS`; the prompt is the label
    columns' text joined ("walk-turn-left", "tired" -> "walk-turn-left tired")."""
    folder = Path(folder)
    zips = None
    out = []
    for idx in sorted(folder.glob("*.csv")):
        head = _header(idx)
        labels = [c for c in LABEL_COLUMNS if c in head]
        if "file" not in head or not labels:
            continue
        if zips is None:
            zips = _zip_members(folder)
        for row in _dict_rows(idx):
            rel = row["file"].strip()
            prompt = " ".join(row[c].strip() for c in labels if row[c].strip())
            if (folder / rel).is_file():
                out.append((str(folder / rel), prompt))
            elif rel in zips:
                out.append((f"{zips[rel]}::{rel}", prompt))
            else:
                log.warning("%s: %s is neither in the folder nor in its zips", idx.name, rel)
    return out


def is_corpus(folder: Path) -> bool:
    return any("file" in (h := _header(p)) and any(c in h for c in LABEL_COLUMNS)
               for p in Path(folder).glob("*.csv"))


def corpus_walks(folder: Path) -> list[Walk]:
    """Every clip of a corpus folder at 20 fps, under its label words, group "corpus"."""
    items = [(path, "corpus", f"{Path(folder).name}/{Path(path.split('::')[-1]).stem}", prompt)
             for path, prompt in corpus_index(folder)]
    if not items:
        raise ValueError(f"{folder}: no index CSV with a 'file' column and one of "
                         f"{', '.join(LABEL_COLUMNS)}")
    return _load_all(items, f"corpus {Path(folder).name}", check_legs=False)


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
                          sorted(cycles),
                          NORMAL_PROMPT if pattern == "normal" else f"walk {pattern}"))
    return walks


EVAL_SEED0 = 100_000  # simulator seeds from here on are never used in training
