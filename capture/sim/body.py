"""Body proportions of the synthetic walker: segment lengths and joint offsets from height.

Long-bone lengths and landmark heights are the anthropometric segment ratios of Drillis &
Contini (1966), as tabulated in D.A. Winter, *Biomechanics and Motor Control of Human Movement*
(4th ed., 2009), Fig. 4.1: greater trochanter 0.530 H, knee 0.285 H, ankle 0.039 H, shoulder
0.818 H, upper arm 0.186 H, forearm 0.146 H, hand 0.108 H, foot length 0.152 H. Where the
canonical (SMPL / HumanML3D) skeleton puts joints that are not anatomical landmarks (pelvis
root above the hip centres, three spine joints, collars, head), the offsets follow the SMPL
template joint positions scaled to the height. Hip-joint-centre separation about 0.09 H
(Bell, Pedersen & Brand 1990 place the hip centres 14% of the ASIS width medial of each ASIS).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BodyDims:
    """Metric dimensions of one walker (metres). Built by :func:`body_dims`."""

    height: float
    thigh: float  # hip joint centre -> knee
    shank: float  # knee -> ankle
    ankle_height: float  # ankle centre above the sole
    hip_half_width: float  # pelvis root -> each hip centre, laterally
    hip_drop: float  # pelvis root above the hip centres
    spine: tuple[float, float, float, float]  # pelvis->spine1->spine2->spine3->neck, vertical
    collar: tuple[float, float]  # (up from spine3, lateral)
    shoulder: tuple[float, float]  # (up from spine3, lateral)
    head: float  # neck -> head joint
    upper_arm: float
    forearm: float
    hand: float
    foot_length: float
    heel_back: float  # ankle -> back of the heel, along the foot
    ball_fwd: float  # ankle -> ball of the foot (metatarsal heads, canonical foot joint)
    ball_height: float  # ball-of-foot joint centre above the sole
    toe_fwd: float  # ankle -> toe tip

    @property
    def leg(self) -> float:
        """Hip centre to floor when standing straight."""
        return self.thigh + self.shank + self.ankle_height


def body_dims(height: float = 1.75, leg_scale: float = 1.0, width_scale: float = 1.0) -> BodyDims:
    """Dimensions for a standing height in metres. ``leg_scale`` lengthens the legs relative
    to the trunk (inter-individual proportion differences, about +-4%), keeping the height by
    shortening the trunk; ``width_scale`` scales the pelvis and shoulder widths."""
    if not 0.8 <= height <= 2.4:
        raise ValueError(f"height {height} m is outside 0.8-2.4 m")
    if not 0.85 <= leg_scale <= 1.15 or not 0.8 <= width_scale <= 1.25:
        raise ValueError(f"leg_scale {leg_scale} / width_scale {width_scale} out of range")
    h = height
    thigh = (0.530 - 0.285) * h * leg_scale
    shank = (0.285 - 0.039) * h * leg_scale
    ankle_h = 0.039 * h
    hip_c = ankle_h + thigh + shank
    pelvis = hip_c + 0.050 * h
    neck = 0.856 * h
    # spine proportions of the SMPL template (pelvis->spine1->spine2->spine3->neck ~ 24/29/11/36 %)
    trunk = neck - pelvis
    spine = (0.236 * trunk, 0.291 * trunk, 0.109 * trunk, 0.364 * trunk)
    spine3 = pelvis + sum(spine[:3])
    foot = 0.152 * h
    return BodyDims(
        height=h, thigh=thigh, shank=shank, ankle_height=ankle_h,
        hip_half_width=0.045 * h * width_scale, hip_drop=0.050 * h,
        spine=spine,
        collar=(0.800 * h - spine3, 0.045 * h * width_scale),
        shoulder=(0.818 * h - spine3, 0.105 * h * width_scale),
        head=0.053 * h,
        upper_arm=0.186 * h, forearm=0.146 * h, hand=0.108 * h,
        foot_length=foot, heel_back=0.25 * foot, ball_fwd=0.48 * foot,
        ball_height=0.012 * h, toe_fwd=0.75 * foot,
    )
