"""How one person walks: body and speed parameters, and the per-side gait style a pattern sets.

Defaults follow published norms for healthy adults:

* preferred speed 1.36 m/s for a 1.75 m adult (Bohannon & Andrews 2011, Physiotherapy 97:182-189,
  meta-analysis: 1.34-1.43 m/s for ages 20-59), scaled by sqrt(height) because walking speeds of
  geometrically similar bodies scale with the square root of leg length (dynamic similarity,
  Alexander 1989, Physiol Rev 69:1199-1227);
* cadence from speed through the walk ratio (step length / cadence), which is nearly constant
  over a wide range of speeds (Sekiya & Nagasaki 1998, Gait Posture 7:225-227; Murakami & Otaka
  2017, J Phys Ther Sci 29:722-725, constancy down to ~1 m/s); 0.0037 m/(steps/min) per metre of
  height gives 0.0065 at 1.75 m, i.e. 112 steps/min and 0.73 m steps at 1.36 m/s, within the
  normal-speed reference ranges of Oberg, Karsznia & Oberg (1993, J Rehabil Res Dev 30:210-223);
* stance 61% of the cycle at preferred speed, shortening with speed by ~4.5% per m/s
  (Hebenstreit et al. 2015, Hum Mov Sci; Winter 1991);
* step width ~0.09 m (heel-to-heel distances of 0.07-0.12 m in young adults, e.g. Owings &
  Grabiner 2004, J Biomech 37:935-938), stride-time CV ~2% and step-width SD ~1.5-2.5 cm in
  healthy adults (Hausdorff 2005, J Neuroeng Rehabil 2:19; Owings & Grabiner 2004);
* pelvis: list +-4 deg, rotation +-4 deg, tilt oscillation +-1.5 deg; mediolateral pelvis
  excursion ~4 cm; shoulder flexion-extension ~30-40 deg peak-to-peak at preferred speed
  (Perry & Burnfield 2010; Murray, Sepic & Barnard 1967, Phys Ther 47:272-284).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

WALK_RATIO_PER_M = 0.0037  # m/(steps/min) per metre of height


@dataclass(frozen=True)
class WalkerParams:
    """Parameters of one walker. ``None`` means "from published relations for this height"."""

    height_m: float = 1.75
    leg_scale: float = 1.0  # leg length relative to the anthropometric table
    width_scale: float = 1.0
    speed_mps: float | None = None
    cadence_spm: float | None = None
    step_width_m: float | None = None
    arm_swing: float = 1.0  # gain on the normal arm swing
    trunk_lean_deg: float = 3.0  # forward lean of the trunk
    asymmetry: float = 0.0  # right steps x (1 + a), left steps x (1 - a), in time and length
    variability: float = 1.0  # gain on the normal stride-to-stride variability
    toe_out_deg: float = 6.0  # foot progression angle
    pelvis_sway_m: float = 0.022  # mediolateral pelvis excursion each way

    def __post_init__(self) -> None:
        if self.speed_mps is not None and not 0.1 <= self.speed_mps <= 2.5:
            raise ValueError(f"speed {self.speed_mps} m/s is outside 0.1-2.5 (walking)")
        if self.cadence_spm is not None and not 30 <= self.cadence_spm <= 200:
            raise ValueError(f"cadence {self.cadence_spm} steps/min is outside 30-200")
        if not -0.6 <= self.asymmetry <= 0.6:
            raise ValueError(f"asymmetry {self.asymmetry} is outside -0.6..0.6")
        if self.variability < 0:
            raise ValueError("variability must be >= 0")

    def preferred_speed(self) -> float:
        return 1.36 * float(np.sqrt(self.height_m / 1.75))

    def walk_ratio(self) -> float:
        return WALK_RATIO_PER_M * self.height_m


@dataclass(frozen=True)
class SideStyle:
    """Per-leg deviations from the normal pattern (all neutral by default)."""

    hip_gain: float = 1.0  # hip excursion about its mean
    hip_add: float = 0.0  # deg of extra hip flexion
    knee_swing_gain: float = 1.0  # swing knee flexion above the stance level (stiff knee < 1)
    knee_loading_gain: float = 1.0  # loading-response knee flexion
    crouch: float = 0.0  # 0..1 blend towards the severe crouch curves
    ankle_swing_add: float = 0.0  # deg in swing (negative = foot drop)
    ankle_contact_add: float = 0.0  # deg around foot strike (negative = flat-foot contact)
    circumduction_deg: float = 0.0  # leg abduction at mid-swing
    hip_hike_deg: float = 0.0  # this side of the pelvis raised during its swing
    stance_add: float = 0.0  # change of the stance fraction of this leg's cycle
    step_gain: float = 1.0  # length of the step that ends with this foot's strike
    step_time_gain: float = 1.0  # duration of that step
    arm_gain: float = 1.0
    elbow_add: float = 0.0  # deg of extra elbow flexion
    trunk_over_deg: float = 0.0  # lateral trunk lean over this leg during its stance
    clearance: str = "knee"  # how swing clearance is found: "knee" flexion or "circumduction"


@dataclass(frozen=True)
class Style:
    """The whole-body gait style a pattern and severity produce."""

    pattern: str = "normal"
    severity: int = 0
    affected_side: str = ""  # the side a one-sided pattern affects ("" = both / none)
    left: SideStyle = field(default_factory=SideStyle)
    right: SideStyle = field(default_factory=SideStyle)
    speed_gain: float = 1.0
    cadence_gain: float = 1.0  # on top of the walk-ratio cadence for the (scaled) speed
    step_width_add: float = 0.0  # m
    trunk_lean_add: float = 0.0  # deg forward
    pelvis_tilt_add: float = 0.0  # deg anterior
    trunk_sway_deg: float = 1.5  # lateral trunk lean towards the stance side
    pelvis_sway_gain: float = 1.0
    stride_cv: float = 0.02
    step_length_cv: float = 0.025
    step_width_sd: float = 0.018  # m
    arm_gain: float = 1.0
    stand_knee_deg: float = 4.0
    toe_clearance_m: float = 0.01  # minimum toe clearance in swing (Winter 1992: 1.29 cm)
    festination: float = 0.0  # 0..1: steps shorten and quicken over a bout
    freezes_per_min: float = 0.0  # freezing-of-gait episodes
    freeze_s: tuple[float, float] = (1.0, 3.0)  # episode duration range
    tremble_hz: float = 5.0  # knee trembling during a freeze (3-8 Hz band, Moore et al. 2008)

    def side(self, side: str) -> SideStyle:
        return self.left if side == "left" else self.right

    def with_sides(self, **kw: float) -> "Style":
        """The same change applied to both sides."""
        return replace(self, left=replace(self.left, **kw), right=replace(self.right, **kw))

