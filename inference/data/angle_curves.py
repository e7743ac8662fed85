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
