"""A canonical skeleton walked by joint-angle curves over one gait cycle (OpenSim .mot).

The OpenSim reference curves (../shared/data/opensim_walking_trc_grf/reference_curves: a normal
cycle and a crouch-gait cycle) give pelvis, hip, knee, ankle and lumbar angles but no positions.
They drive the canonical skeleton of :mod:`inference.models.motion_diffusion.features` (its target body): the angles set
the bone rotations, the pelvis height keeps the lowest foot joint (ankle or ball of the foot) on
the floor, and the pelvis moves forward (and sideways) so that the carrying foot (on the floor,
moving backwards relative to the pelvis) does not slide, which gives the walking speed the
curves imply. Arms hang still (the curves have no arm angles).

Sign conventions of the OpenSim gait models (degrees): hip flexion +, hip adduction +, hip
internal rotation +; knee_angle negative = flexion; ankle dorsiflexion +; pelvis_tilt +
= posterior tilt; lumbar_extension + = trunk backwards. Body frame: +x left, +y up, +z forward.
"""

from __future__ import annotations


import numpy as np

from inference.models.motion_diffusion import features as hml3d
from streams.skeletons import CJ

FOOT_JOINTS = {"left": (CJ["left_ankle"], CJ["left_foot"]),
               "right": (CJ["right_ankle"], CJ["right_foot"])}  # the heel is not in the skeleton


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1),
                     np.stack([z, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                     np.stack([-s, z, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1),
                     np.stack([z, z, o], -1)], -2)


def curve_walk(curves: dict[str, np.ndarray], cycles: int = 3, rate_hz: float = 100.0
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """(t_us, joints (T, 22, 3), cycle duration s): ``cycles`` repetitions of the cycle."""
    t_src = curves["time"] - curves["time"][0]
    period = float(t_src[-1] + (t_src[-1] - t_src[-2]))  # the last row is not the next strike
    t = np.arange(0.0, cycles * period, 1.0 / rate_hz)
    phase_t = np.mod(t, period)

    def ang(name: str) -> np.ndarray:
        v = np.concatenate([curves[name], curves[name][:1]])  # periodic
        return np.radians(np.interp(phase_t, np.append(t_src, period), v))

    n = len(t)
    local = np.broadcast_to(np.eye(3), (n, 22, 3, 3)).copy()
    for side, lat in (("r", 1.0), ("l", -1.0)):  # right leg at -x: adduction turns it to +x
        s = "right" if side == "r" else "left"
        local[:, CJ[f"{s}_knee"]] = (_rx(-ang(f"hip_flexion_{side}"))
                                     @ _rz(lat * ang(f"hip_adduction_{side}"))
                                     @ _ry(lat * ang(f"hip_rotation_{side}")))
        local[:, CJ[f"{s}_ankle"]] = _rx(-ang(f"knee_angle_{side}"))
        local[:, CJ[f"{s}_foot"]] = _rx(-ang(f"ankle_angle_{side}"))
    local[:, CJ["spine1"]] = (_rx(-ang("lumbar_extension")) @ _rz(ang("lumbar_bending"))
                              @ _ry(ang("lumbar_rotation")))
    pelvis = _ry(ang("pelvis_rotation")) @ _rz(ang("pelvis_list")) @ _rx(-ang("pelvis_tilt"))
    body = np.einsum("tab,tjb->tja", pelvis, hml3d.forward_kinematics(local, hml3d.TARGET_BONE_LENGTHS))

    # The lowest foot joint is on the floor. The carrying foot's contact joint does not slide
    # from one frame to the next. A carrying foot moves backwards relative to the pelvis (a foot
    # swinging forwards at floor level, which the curves on this body can give, is not carrying),
    # and the other foot takes over once it is 1 cm lower, so double support does not flicker.
    low = {s: body[:, list(j), 1].min(axis=1) for s, j in FOOT_JOINTS.items()}
    root = np.zeros((n, 3))
    root[:, 1] = -np.minimum(low["left"], low["right"])
    side = "left" if low["left"][0] <= low["right"][0] else "right"
    for i in range(1, n):
        step = body[i] - body[i - 1]

        def carrying(s: str) -> list[int]:
            return [j for j in FOOT_JOINTS[s] if step[j, 2] <= 0.0]

        other = "right" if side == "left" else "left"
        if carrying(other) and (not carrying(side)
                                or low[other][i - 1] < low[side][i - 1] - 0.01):
            side = other
        pair = carrying(side) or list(FOOT_JOINTS[side])
        c = pair[int(np.argmin(body[i - 1, pair, 1]))]
        root[i, [0, 2]] = root[i - 1, [0, 2]] - step[c, [0, 2]]
    joints = body + root[:, None, :]
    return np.round(t * 1e6).astype(np.int64), joints, period


# Plug-in-Gait variables (inference.analysis.gait_variables, each side in its own sign
# convention) -> the OpenSim coordinates curve_walk takes: (coordinate, sign for the right side,
# sign for the left side). The leg angles share their signs (flexion, adduction, internal
# rotation and dorsiflexion + in both); OpenSim's knee_angle is negative in flexion. The pelvis is
# one body: Plug-in-Gait reads tilt + anterior (OpenSim: + posterior), obliquity + with the
# side's hip up and rotation + with the side's hip ahead, so the left side's read mirrors the
# right's (OpenSim: pelvis_list + = left hip up, pelvis_rotation + = right hip ahead).
PIG_TO_OPENSIM: dict[str, tuple[str, float, float]] = {
    "hip_flexion": ("hip_flexion_{s}", 1.0, 1.0),
    "hip_adduction": ("hip_adduction_{s}", 1.0, 1.0),
    "hip_rotation": ("hip_rotation_{s}", 1.0, 1.0),
    "knee_flexion": ("knee_angle_{s}", -1.0, -1.0),
    "ankle_dorsiflexion": ("ankle_angle_{s}", 1.0, 1.0),
    "pelvis_tilt": ("pelvis_tilt", -1.0, -1.0),
    "pelvis_obliquity": ("pelvis_list", -1.0, 1.0),
    "pelvis_rotation": ("pelvis_rotation", 1.0, -1.0),
}
# A stride's curves have no time: a normal adult cycle (cadence ~110 steps/min) unless told.
DEFAULT_STRIDE_S = 1.1


def pig_curves(right: np.ndarray, left: np.ndarray, period_s: float = DEFAULT_STRIDE_S
               ) -> dict[str, np.ndarray]:
    """curve_walk's input from one right and one left stride of the nine gait variables
    ((9, 101) degrees each, 0 and 100 % at the side's own foot strikes, VARIABLES order).

    The cycle is the right stride's; the left stride is placed half a cycle later (its foot
    strike at 50 %), as in symmetric walking: two strides of a person that were not walked
    together become one walk. The pelvis is the mean of the two sides' reads (mirrored, the
    left's shifted by half a cycle); a variable missing (NaN, as pelvis tilt from a skeleton)
    on both sides is taken as 0. The trunk is held upright and foot progression is not used: it
    follows from the pelvis and hip rotations and the walking direction.
    """
    from inference.analysis.gait_variables import V

    right, left = np.asarray(right, float), np.asarray(left, float)
    for name, a in (("right", right), ("left", left)):
        if a.ndim != 2 or a.shape[0] != len(V) or a.shape[1] < 3:
            raise ValueError(f"{name} stride: expected ({len(V)}, points) curves, got {a.shape}")
    n = right.shape[1] - 1  # the last point is the next foot strike (= the first)
    phase = np.arange(n) / n
    # the left stride read on the right stride's cycle: at right-cycle phase p it is at p - 0.5
    left_on_right = np.stack([np.interp((phase - 0.5) % 1.0, np.linspace(0, 1, left.shape[1]), v)
                              for v in left])
    out: dict[str, np.ndarray] = {"time": phase * period_s}
    for var, (coord, sign_r, sign_l) in PIG_TO_OPENSIM.items():
        r, l_ = right[V[var], :n], left_on_right[V[var]]
        if "{s}" in coord:
            out[coord.format(s="r")] = sign_r * np.nan_to_num(r)
            out[coord.format(s="l")] = sign_l * np.nan_to_num(l_)
        else:
            out[coord] = np.nan_to_num(np.nanmean(np.stack([sign_r * r, sign_l * l_]), axis=0))
    for k in ("lumbar_extension", "lumbar_bending", "lumbar_rotation"):
        out[k] = np.zeros(n)
    return out


def pig_walk(right: np.ndarray, left: np.ndarray, cycles: int = 3, rate_hz: float = 100.0,
             period_s: float = DEFAULT_STRIDE_S) -> tuple[np.ndarray, np.ndarray, float]:
    """(t_us, joints (T, 22, 3), cycle duration s): the canonical skeleton walked ``cycles``
    times through a right and a left stride of the nine gait variables (pig_curves), so that
    kinematics-only data (the FGDI strides, a lab's Plug-in-Gait curves) can be seen as a walk."""
    return curve_walk(pig_curves(right, left, period_s), cycles=cycles, rate_hz=rate_hz)
