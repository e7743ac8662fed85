"""Walks for GaitMAE training and evaluation: the shared Kinect corpora read through the project's
readers into canonical joints, with who walked and the labels each corpus has. A folder (or each
subfolder of it) is read by its layout, found by its tables' columns, not by its file names:

- the Kinect v1 person-data layout (KinectGait, Andersson & Araujo 2015): a table with an
  ``Individual`` column and index CSVs with ``person`` and ``file`` (loose walks under
  ``walks/<person>/`` or members of a zip in the folder); labels from the person table: height,
  weight, BMI and age where recorded (BMI 0 and empty cells mean unknown), sex;
- the Kinect v2 layout (the pathological gaits of Jun et al. 2020): an index CSV with ``file``,
  ``human``, ``gait`` and ``kinect``; label = the performed gait type, person = ``human``.

Each walk is kept as frames at the model rate (``features.resample``), so that clips, bouts and
engineered features can all be made from it; the whole list is cached (outside the repository)
because reading 1,600 files takes minutes.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from capture.readers import RecordingError, load_recording
from capture.readers.kinect_v1 import load_kinect_v1
from inference.data.diffusion import _header, kinect_v2_rows
from inference.data.diffusion import kinect_v1_walks as layout_v1_walks
from inference.models.gait_mae.features import resample

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass
class Walk:
    corpus: str  # "kinect_v1" | "kinect_v2" | "sim"
    person: str  # unique across corpora ("kv1:Person011", "kv2:human3")
    walk: str  # file (or zip member) it came from
    t_us: np.ndarray  # the source's timestamps
    joints: np.ndarray  # (T, 22, 3) canonical, metres, as the reader gives them
    labels: dict = field(default_factory=dict)


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gaitstream"


def _float(cell: str) -> float | None:
    try:
        v = float(cell.strip())
    except (AttributeError, ValueError):
        return None
    return v if v > 0 else None  # the table writes BMI 0 for "not known"


def person_table(root: Path) -> dict[str, dict]:
    """The labels of the person-data layout's table (the CSV with an ``Individual`` column)."""
    out = {}
    for p in sorted(root.glob("*.csv")):
        if "Individual" not in _header(p):
            continue
        with open(p, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                row = {k.strip(): (v or "").strip() for k, v in row.items()}
                out[row["Individual"]] = {
                    "height_m": _float(row["Height"]), "weight_kg": _float(row["Weight (Kg)"]),
                    "age": _float(row["Age"]), "bmi": _float(row["Body Mass Index"]),
                    "sex": {"F": 0.0, "M": 1.0}.get(row["Gender"].upper()),
                    "backpack": row["BackPack"] == "S", "high_heels": row["HighHeels"] == "S"}
    return out


def _name(root: Path, path: Path | str) -> str:
    """A walk's name: its path under the folder, or ``archive.zip::member``."""
    s = str(path)
    return s[len(str(root)) + 1:] if s.startswith(str(root) + "/") else s


def kinect_v1_walks(root: Path) -> list[Walk]:
    """Walks of a folder in the Kinect v1 person-data layout (``inference.data.diffusion.
    kinect_v1_walks``: found by its tables' columns, loose files or zip members)."""
    table = person_table(root)
    out: list[Walk] = []
    for person, path, _ in layout_v1_walks(root):
        try:
            rec = load_kinect_v1(path, height_m=(table.get(person) or {}).get("height_m"))
        except RecordingError as e:
            log.warning("skipped %s: %s", _name(root, path), e)
            continue
        out.append(Walk("kinect_v1", f"kv1:{person}", _name(root, path), rec.t_us, rec.joints,
                        dict(table.get(person, {}))))
    return out


def kinect_v2_walks(root: Path) -> list[Walk]:
    """Walks of a folder in the Kinect v2 layout (``inference.data.diffusion.kinect_v2_rows``):
    label = the performed gait type, person = ``human``, view = ``kinect``."""
    out: list[Walk] = []
    rows, notes = kinect_v2_rows(root)
    for n in notes:
        log.warning("%s: %s", root.name, n)
    for row, path in rows:
        try:
            rec = load_recording(path)
        except RecordingError as e:  # the garbage rows SOURCES.md warns of, when a file is all
            log.warning("skipped %s: %s", row["file"], e)
            continue
        out.append(Walk("kinect_v2", f"kv2:human{row['human']}", row["file"], rec.t_us,
                        rec.joints, {"gait": row["gait"], "kinect": int(row["kinect"]),
                                     "walk_id": f"h{row['human']}_{row['gait']}{row.get('rep', '')}"}))
    return out


def corpus_folders(data: Path) -> dict[str, list[Path]]:
    """The folders of ``data`` (itself, or its subfolders) in each layout GaitMAE reads."""
    found: dict[str, list[Path]] = {"kinect_v1": [], "kinect_v2": []}
    for d in [data] + sorted(p for p in data.iterdir() if p.is_dir()):
        if layout_v1_walks(d):
            found["kinect_v1"].append(d)
        elif kinect_v2_rows(d)[0]:
            found["kinect_v2"].append(d)
    return found


def load_walks(data: Path = DATA, cache: Path | None = None, refresh: bool = False
               ) -> list[Walk]:
    """Every walk of the Kinect v1 and v2 corpora in ``data`` (found by their layouts), read
    once and cached as a pickle per folder beside other caches."""
    data = Path(data).resolve()
    key = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    cache = cache or default_cache() / f"gait_mae_walks_{key}.pkl"
    if cache.is_file() and not refresh:
        with open(cache, "rb") as fh:
            return pickle.load(fh)
    folders = corpus_folders(data)
    walks = [w for d in folders["kinect_v1"] for w in kinect_v1_walks(d)] + \
        [w for d in folders["kinect_v2"] for w in kinect_v2_walks(d)]
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "wb") as fh:
        pickle.dump(walks, fh)
    return walks


def person_split(persons: list[str], held_out: float = 0.2, seed: int = 0) -> set[str]:
    """The held-out persons: a fixed random fifth of each corpus's persons (by id, so that no
    person's walks are on both sides)."""
    rng = np.random.default_rng(seed)
    out: set[str] = set()
    for corpus in sorted({p.split(":")[0] for p in persons}):
        mine = sorted({p for p in persons if p.startswith(corpus + ":")})
        k = max(1, round(held_out * len(mine)))
        out.update(rng.choice(mine, size=k, replace=False).tolist())
    return out


def walk_frames(w: Walk) -> np.ndarray:
    """The walk at the model rate (T', 22, 3)."""
    return resample(w.t_us, w.joints)


def simulated_walks(n: int, seed: int = 0) -> list[Walk]:
    """``n`` simulated straight walks (capture.sim), each its own person, of every pattern and
    severity, heights 1.5-2.0 m: exact joints, so they add clean gait variety to training (they
    are never used for evaluation)."""
    from capture.sim.paths import Line
    from capture.sim.patterns import PATTERNS, make_style
    from capture.sim.person import Go, Person, Stand
    from capture.sim.skeleton import layout_joints
    from capture.sim.style import WalkerParams

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pattern = PATTERNS[i % len(PATTERNS)]
        style = make_style(pattern, int(rng.integers(0, 4)) if pattern != "normal" else 0, rng=rng)
        params = WalkerParams(height_m=float(rng.uniform(1.5, 2.0)))
        person = Person.build(params, style, [Stand(0.3), Go((Line(6.0),)), Stand(0.3)],
                              (0.0, 0.0), float(rng.uniform(-np.pi, np.pi)), 0.0, rng)
        t = np.arange(0.0, person.t_stop, 1 / 30)
        pts, _ = person.evaluate(t)
        out.append(Walk("sim", f"sim:{i}", f"sim{i}_{pattern}", (t * 1e6).round().astype(np.int64),
                        layout_joints(pts, "canonical22").astype(np.float32), {"pattern": pattern}))
    return out
