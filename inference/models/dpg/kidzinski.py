"""The baseline: Kidzinski et al. 2020's 1D-CNNs (Nature Communications 11:4054) with their
released weights, rebuilt in torch, fed exactly their documented input.

Weights: ``../shared/data/gdi_models_mobile_gaitlab/models/<target>_best.pb`` (Keras 2.3.1
HDF5 files, Apache-2.0; Stanford holds a pending patent, see ``dpg.md``), read with h5py. The
network (the files' own ``model_config``): six Conv1D(32, 8, 'same') each followed by ReLU and
BatchNormalization (eps 1e-3), max-pools 2, 2, 3 after the 2nd, 4th and 6th, Flatten (time-
major, as Keras flattens (T, C)), Dense(10, ReLU), Dense(2); the demo uses output 0, rescaled by
the target's (min, range). Their ``_correction`` pickles (statsmodels OLS calibrations) need
statsmodels 0.11 and are not applied: the outputs here are the networks' own.

Input (their ``preprocess_frames`` and ``process_video_and_add_cols``, as the folder's SOURCES.md
states them): OpenPose BODY_25 keypoints per frame (pixels, y down; missing = 0), 30 frames/s;
zeros to NaN, linear interpolation over time (edges: the column mean), Gaussian smoothing
(sigma 1 frame), minus the per-frame mean of the two hips, divided by the per-frame mean thigh
length, x divided by the per-frame orientation (+1 when the toes are left of the ankles) when
swapped; 8 added columns (knee and ankle angles, toe-ankle distances, ankle x differences);
windows of 124 frames every 31 while the start is below n - 124.

Our 2D keypoints reach BODY_25 through :data:`BODY25_FROM_CANONICAL` (the canonical ``*_foot``
joint, ball of the foot, stands for the big toe). A source without feet (the clinic-video
keypoints' 17 joints) cannot give the toes these networks need for orientation and two of their
angles: :func:`body25` refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# BODY_25 index -> canonical joint (the keypoints these networks read: hips, knees, ankles, big
# toes; the upper body is mapped too, though no model column uses it)
BODY25_FROM_CANONICAL: dict[int, str] = {
    0: "head", 1: "neck", 2: "right_shoulder", 3: "right_elbow", 4: "right_wrist",
    5: "left_shoulder", 6: "left_elbow", 7: "left_wrist", 8: "pelvis", 9: "right_hip",
    10: "right_knee", 11: "right_ankle", 12: "left_hip", 13: "left_knee", 14: "left_ankle",
    19: "left_foot", 22: "right_foot"}
RHIP, RKNE, RANK, LHIP, LKNE, LANK, LBTO, RBTO = 9, 10, 11, 12, 13, 14, 19, 22
NEEDED = (RHIP, RKNE, RANK, LHIP, LKNE, LANK, LBTO, RBTO)
X_COLUMNS = [2 * LANK, 2 * LANK + 1, 2 * LKNE, 2 * LKNE + 1, 2 * LHIP, 2 * LHIP + 1,
             2 * LBTO, 2 * LBTO + 1, 2 * RANK, 2 * RANK + 1, 2 * RKNE, 2 * RKNE + 1,
             2 * RHIP, 2 * RHIP + 1, 2 * RBTO, 2 * RBTO + 1, 50, 51, 52, 53, 54, 55, 56]
X_COLUMNS_SIDE = {
    "left": [2 * LANK, 2 * LANK + 1, 2 * LKNE, 2 * LKNE + 1, 2 * LHIP, 2 * LHIP + 1,
             2 * LBTO, 2 * LBTO + 1, 50, 52, 54, 56],
    "right": [2 * RANK, 2 * RANK + 1, 2 * RKNE, 2 * RKNE + 1, 2 * RHIP, 2 * RHIP + 1,
              2 * RBTO, 2 * RBTO + 1, 50, 52, 54, 56]}  # 50/52/54/56 reused, as their code does
WINDOW, HOP = 124, 31
RATE_HZ = 30.0
# (min, range) that undo the networks' target scaling (their demo.py)
SCALING = {"KneeFlex_maxExtension": (-29.4408212510502, 114.8431545843835),
           "GDI": (36.314492983907, 77.03271217530302),
           "speed": (0.0718863507111867, 1.5259117583433834),
           "cadence": (0.222, 1.71556665023985)}
# Their cadence labels run 0.45-1.5 (mean 1.01, fig_data/Fig2a-d.csv) for children walking at
# ~0.96 m/s: strides per second (120 steps/min at 1.0), though their figure says "steps/s".
STEPS_PER_MIN_PER_UNIT = 120.0


def body25(keypoints: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 75) BODY_25 rows (x, y, confidence) from canonical-named (T, 2) image keypoints;
    ValueError naming the joints the networks need that are missing."""
    missing = [BODY25_FROM_CANONICAL[i] for i in NEEDED if BODY25_FROM_CANONICAL[i] not in keypoints]
    if missing:
        raise ValueError(f"the Kidzinski 2020 input needs {', '.join(missing)}")
    n = len(next(iter(keypoints.values())))
    out = np.zeros((n, 75))
    for i, name in BODY25_FROM_CANONICAL.items():
        if name in keypoints:
            out[:, 3 * i:3 * i + 2] = keypoints[name]
            out[:, 3 * i + 2] = 1.0
    return out


def _fill_nan(a: np.ndarray) -> np.ndarray:
    good = np.isfinite(a)
    if good.sum() <= 1:
        return a
    idx = np.arange(len(a))
    b = np.where(good, a, np.interp(idx, idx[good], a[good], left=np.nan, right=np.nan))
    return np.where(np.isfinite(b), b, np.nanmean(b))


def _angle(r: np.ndarray, a: int, b: int, c: int) -> np.ndarray:
    ba = r[:, 2 * a:2 * a + 2] - r[:, 2 * b:2 * b + 2]
    bc = r[:, 2 * c:2 * c + 2] - r[:, 2 * b:2 * b + 2]
    return np.arccos(np.sum(ba * bc, 1) / (np.linalg.norm(ba, axis=1) * np.linalg.norm(bc, axis=1)))


def features(rows: np.ndarray, swap_orientation: bool = True) -> np.ndarray:
    """(T, 75) BODY_25 rows -> (T, 58) columns: 50 normalised coordinates + 8 added."""
    from scipy.ndimage import gaussian_filter1d

    r = np.asarray(rows, np.float64).reshape(len(rows), 25, 3)[:, :, :2].reshape(len(rows), 50)
    r = r.copy()
    r[r == 0] = np.nan
    r = np.stack([_fill_nan(r[:, k]) for k in range(50)], axis=1)
    r = gaussian_filter1d(r, 1, axis=0)
    mid = 0.5 * (r[:, 2 * RHIP:2 * RHIP + 2] + r[:, 2 * LHIP:2 * LHIP + 2])
    scale = 0.5 * (np.linalg.norm(r[:, 2 * RHIP:2 * RHIP + 2] - r[:, 2 * RKNE:2 * RKNE + 2], axis=1)
                   + np.linalg.norm(r[:, 2 * LHIP:2 * LHIP + 2] - r[:, 2 * LKNE:2 * LKNE + 2],
                                    axis=1))
    r = (r - np.tile(mid, 25)) / scale[:, None]
    o = np.where((r[:, 2 * LANK] - r[:, 2 * LBTO]) + (r[:, 2 * RANK] - r[:, 2 * RBTO]) >= 0, 1, -1)
    if swap_orientation:
        r[:, 0::2] = r[:, 0::2] / o[:, None]
    dist = lambda a, b: np.linalg.norm(r[:, 2 * a:2 * a + 2] - r[:, 2 * b:2 * b + 2], axis=1)  # noqa: E731
    extra = [_angle(r, LANK, LKNE, LHIP), _angle(r, RANK, RKNE, RHIP),
             _angle(r, LBTO, LANK, LKNE), _angle(r, RBTO, RANK, RKNE),
             dist(LBTO, LANK), dist(RBTO, RANK), r[:, 2 * RANK] - r[:, 2 * LANK],
             r[:, 2 * LANK] - r[:, 2 * RANK]]
    return np.concatenate([r, np.stack(extra, axis=1)], axis=1)


def windows(feat: np.ndarray, columns: list[int]) -> np.ndarray:
    """(N, 124, len(columns)) windows at starts 0, 31, ... < T - 124 (their loop)."""
    starts = range(0, len(feat) - WINDOW, HOP)
    return np.stack([feat[s:s + WINDOW, columns] for s in starts]) if len(starts) else \
        np.zeros((0, WINDOW, len(columns)))


# --------------------------------------------------------------------------- the network


def read_h5(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(model_config, {'<layer>/<weight>': array}) of a Keras HDF5 file."""
    import h5py

    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        weights: dict[str, np.ndarray] = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                layer = name.split("/")[0]
                weights[f"{layer}/{name.split('/')[-1].split(':')[0]}"] = np.array(obj)

        f["model_weights"].visititems(visit)
    return cfg, weights


def layer_plan(cfg: dict) -> list[tuple[str, dict]]:
    """The Sequential's layers as (class name, config), checked against the architecture this
    module rebuilds."""
    layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
    plan = [(l_["class_name"], l_["config"]) for l_ in layers]
    kinds = [k for k, _ in plan if k not in ("Dropout",)]
    expected = (["Conv1D", "Activation", "BatchNormalization"] * 2 + ["MaxPooling1D"]) * 3 + \
        ["Flatten", "Dense", "Dense"]
    if kinds != expected:
        raise ValueError(f"unexpected Keras architecture: {kinds}")
    return plan


def build_torch(path: str | Path):
    """The network of a ``*_best.pb`` file as a torch module (eval mode), input (B, 124, C)."""
    import torch
    from torch import nn

    cfg, w = read_h5(path)
    plan = layer_plan(cfg)

    class KidzinskiCNN(nn.Module):
        def __init__(self):
            super().__init__()
            mods: list[nn.Module] = []
            c_in = w["conv1d_1/kernel"].shape[1]
            for kind, c in plan:
                name = c["name"]
                if kind == "Conv1D":
                    k = w[f"{name}/kernel"]  # (k, in, out)
                    left = (k.shape[0] - 1) // 2  # TF 'same': the extra pad goes after
                    mods.append(nn.ConstantPad1d((left, k.shape[0] - 1 - left), 0.0))
                    conv = nn.Conv1d(k.shape[1], k.shape[2], k.shape[0])
                    conv.weight.data = torch.from_numpy(k.transpose(2, 1, 0).copy()).float()
                    conv.bias.data = torch.from_numpy(w[f"{name}/bias"]).float()
                    mods.append(conv)
                    c_in = k.shape[2]
                elif kind == "Activation":
                    mods.append(nn.ReLU())
                elif kind == "BatchNormalization":
                    bn = nn.BatchNorm1d(c_in, eps=c["epsilon"])
                    for ours, theirs in (("weight", "gamma"), ("bias", "beta"),
                                         ("running_mean", "moving_mean"),
                                         ("running_var", "moving_variance")):
                        getattr(bn, ours).data = torch.from_numpy(w[f"{name}/{theirs}"]).float()
                    mods.append(bn)
                elif kind == "MaxPooling1D":
                    mods.append(nn.MaxPool1d(c["pool_size"][0], c["strides"][0]))
            self.convs = nn.Sequential(*mods)
            d1, d2 = w["dense_1/kernel"], w["dense_2/kernel"]
            self.fc1, self.fc2 = nn.Linear(*d1.shape), nn.Linear(*d2.shape)
            for fc, name in ((self.fc1, "dense_1"), (self.fc2, "dense_2")):
                fc.weight.data = torch.from_numpy(w[f"{name}/kernel"].T.copy()).float()
                fc.bias.data = torch.from_numpy(w[f"{name}/bias"]).float()

        def forward(self, x):
            h = self.convs(x.transpose(1, 2))  # (B, C, T)
            h = h.transpose(1, 2).flatten(1)  # Keras flattens (T, C) time-major
            return self.fc2(torch.relu(self.fc1(h)))

    return KidzinskiCNN().eval()


def numpy_forward(path: str | Path, x: np.ndarray) -> np.ndarray:
    """The same network written out in numpy from the file (an independent check of
    :func:`build_torch`): (B, 124, C) -> (B, 2)."""
    cfg, w = read_h5(path)
    h = np.asarray(x, np.float64)
    for kind, c in layer_plan(cfg):
        name = c["name"]
        if kind == "Conv1D":
            k, b = w[f"{name}/kernel"], w[f"{name}/bias"]
            size = k.shape[0]
            left = (size - 1) // 2  # TF 'same': the extra pad goes after
            hp = np.pad(h, ((0, 0), (left, size - 1 - left), (0, 0)))
            h = sum(hp[:, i:i + h.shape[1]] @ k[i] for i in range(size)) + b
        elif kind == "Activation":
            h = np.maximum(h, 0)
        elif kind == "BatchNormalization":
            h = (h - w[f"{name}/moving_mean"]) / np.sqrt(w[f"{name}/moving_variance"]
                                                          + c["epsilon"]) \
                * w[f"{name}/gamma"] + w[f"{name}/beta"]
        elif kind == "MaxPooling1D":
            p = c["pool_size"][0]
            n = h.shape[1] // p
            h = h[:, :n * p].reshape(len(h), n, p, -1).max(axis=2)
        elif kind == "Flatten":
            h = h.reshape(len(h), -1)
        elif kind == "Dense":
            h = h @ w[f"{name}/kernel"] + w[f"{name}/bias"]
            if c["activation"] == "relu":
                h = np.maximum(h, 0)
    return h


class Kidzinski:
    """The four networks that match DPG's targets, run on canonical-named 2D keypoints at 30 Hz:
    GDI (one value for the walker, their "singlesided" GDI), knee flexion at maximum extension
    per side, cadence and speed; step length (m) = speed / steps per second."""

    NETS = ("GDI", "KneeFlex_maxExtension", "cadence", "speed")

    def __init__(self, models_dir: str | Path):
        import torch

        self.torch = torch
        models_dir = Path(models_dir)
        self.nets = {}
        for n in self.NETS:
            p = models_dir / f"{n}_best.pb"
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no Kidzinski 2020 model file")
            self.nets[n] = build_torch(p)

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            y = self.nets[name](self.torch.from_numpy(np.asarray(x, np.float32))).numpy()[:, 0]
        lo, rng = SCALING[name]
        return y * rng + lo

    def window_inputs(self, keypoints: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The networks' inputs of every window of a stretch of keypoints (at 30 Hz)."""
        rows = body25(keypoints)
        swapped, plain = features(rows, True), features(rows, False)
        return {"both": windows(swapped, X_COLUMNS),
                "left": windows(plain, X_COLUMNS_SIDE["left"]),
                "right": windows(plain, X_COLUMNS_SIDE["right"])}

    def predict(self, keypoints: dict[str, np.ndarray]) -> dict[str, float] | None:
        """Mean over windows of each target (None when shorter than 125 frames): ``gdi``,
        ``knee_flex_max_ext_deg_left/right``, ``cadence_spm``, ``speed_mps``,
        ``step_length_m``."""
        x = self.window_inputs(keypoints)
        if not len(x["both"]):
            return None
        cad = float(np.mean(self.run("cadence", x["both"]))) * STEPS_PER_MIN_PER_UNIT
        speed = float(np.mean(self.run("speed", x["both"])))
        return {"gdi": float(np.mean(self.run("GDI", x["both"]))),
                "knee_flex_max_ext_deg_left": float(np.mean(self.run("KneeFlex_maxExtension",
                                                                      x["left"]))),
                "knee_flex_max_ext_deg_right": float(np.mean(self.run("KneeFlex_maxExtension",
                                                                       x["right"]))),
                "cadence_spm": cad, "speed_mps": speed,
                "step_length_m": speed / (cad / 60.0) if cad > 0 else float("nan")}
