"""Gait patterns with a severity grade 0-3, as changes to the normal walking style.

Severity 0 is normal walking for every pattern; 1 mild, 2 moderate, 3 severe. The changes follow
the clinical descriptions in Perry & Burnfield (*Gait Analysis*, 2nd ed., 2010) and Kirtley
(*Clinical Gait Analysis*, 2006) unless noted:

* ``shuffling``: short, quick steps with low foot clearance, flat-foot contact, stooped trunk and
  little arm swing (Parkinsonian gait; Morris et al. 1994, Brain 117:1169-1181: step length
  reduced, cadence preserved or raised);
* ``stiff_knee``: peak swing knee flexion reduced (severe: ~25 deg instead of ~60) with hip hiking
  and circumduction for clearance (Kerrigan et al. 1991, Am J Phys Med Rehabil 70:294-300);
* ``crouch``: stance knee flexion, excess hip flexion and ankle dorsiflexion (Sutherland & Davids
  1993; Rodda et al. 2004); severe crouch resembles the OpenSim crouch example;
* ``hemiparetic``: on the paretic side a stiff-kneed, circumducting swing with foot drop, shorter
  stance and longer swing, a flexed arm that barely swings; slower (Olney & Richards 1996, Gait
  Posture 4:136-148);
* ``antalgic``: short stance on the painful side (the other foot comes down early), stiff loading
  knee and a trunk lean over the painful hip;
* ``trunk_sway``: exaggerated lateral trunk and pelvis sway with a wider base;
* ``reduced_arm_swing``: arm swing amplitude reduced (one side or both), elbows more flexed;
* ``festination``: bouts where steps get shorter and quicker with a forward-leaning trunk;
  moderate and severe grades end some of them in freezing;
* ``freezing``: freezing-of-gait episodes (the walker stops with trembling knees at 3-8 Hz for a
  few seconds, Moore et al. 2008) preceded by a short festination;
* ``ataxic``: high stride-to-stride variability of timing, length and width, a wide base and
  irregular trunk sway (cerebellar ataxia; Hausdorff 2005 for variability measures).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from capture.sim.style import Style

PATTERNS: tuple[str, ...] = (
    "normal", "shuffling", "stiff_knee", "crouch", "hemiparetic", "antalgic", "trunk_sway",
    "reduced_arm_swing", "festination", "freezing", "ataxic",
)
# patterns that affect one side (the other side's gait adapts)
ONE_SIDED = ("stiff_knee", "hemiparetic", "antalgic")


def _side(style: Style, side: str, **kw: object) -> Style:
    s = replace(style.side(side), **kw)
    return replace(style, left=s) if side == "left" else replace(style, right=s)


def make_style(pattern: str = "normal", severity: int = 0, side: str | None = None,
               rng: np.random.Generator | None = None) -> Style:
    """The Style of ``pattern`` at ``severity`` (0-3). ``side``: the affected side of a one-sided
    pattern (or of reduced arm swing; None there means both arms); when None for a one-sided
    pattern it is drawn from ``rng`` (right without one)."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown gait pattern {pattern!r}; known: {', '.join(PATTERNS)}")
    if severity not in (0, 1, 2, 3):
        raise ValueError(f"severity must be 0, 1, 2 or 3, got {severity!r}")
    if side is not None and side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    st = Style(pattern=pattern, severity=severity)
    if severity == 0 or pattern == "normal":
        return replace(st, severity=0 if pattern == "normal" else severity)
    g = severity / 3.0
    if pattern in ONE_SIDED and side is None:
        side = "right" if rng is None or rng.random() < 0.5 else "left"
    st = replace(st, affected_side=side or "")
    other = {"left": "right", "right": "left"}.get(side or "", "")
    if pattern == "shuffling":
        st = st.with_sides(step_gain=1 - 0.45 * g, ankle_contact_add=-14 * g,
                           arm_gain=1 - 0.6 * g, knee_swing_gain=1 - 0.3 * g)
        st = replace(st, cadence_gain=1 + 0.12 * g, speed_gain=1 - 0.1 * g,
                     trunk_lean_add=10 * g, toe_clearance_m=0.01 * (1 - 0.8 * g),
                     stride_cv=0.02 + 0.01 * g)
    elif pattern == "stiff_knee":
        st = _side(st, side, knee_swing_gain=1 - 0.22 * severity, hip_hike_deg=3.0 * severity,
                   circumduction_deg=3.0 * severity, clearance="circumduction")
        st = replace(st, speed_gain=1 - 0.08 * severity)
    elif pattern == "crouch":
        st = st.with_sides(crouch=g)
        st = replace(st, speed_gain=1 - 0.3 * g, cadence_gain=1 + 0.05 * g,
                     stand_knee_deg=4.0 + 10 * g)
    elif pattern == "hemiparetic":
        st = _side(st, side, knee_swing_gain=1 - 0.18 * severity, circumduction_deg=3.0 * severity,
                   hip_hike_deg=1.5 * severity, ankle_swing_add=-4.0 * severity,
                   ankle_contact_add=-5.0 * severity, stance_add=-0.035 * severity,
                   step_time_gain=1 + 0.08 * severity, arm_gain=1 - 0.3 * severity,
                   elbow_add=20.0 * severity, hip_gain=1 - 0.1 * severity,
                   clearance="circumduction")
        st = _side(st, other, stance_add=0.03 * severity, step_gain=1 - 0.08 * severity)
        st = replace(st, speed_gain=1 - 0.18 * severity, step_width_add=0.015 * severity,
                     stride_cv=0.02 + 0.006 * severity)
    elif pattern == "antalgic":
        st = _side(st, side, stance_add=-0.035 * severity, knee_loading_gain=1 - 0.25 * severity,
                   trunk_over_deg=2.0 * severity)
        st = _side(st, other, step_time_gain=1 - 0.1 * severity, step_gain=1 - 0.1 * severity)
        st = replace(st, speed_gain=1 - 0.1 * severity)
    elif pattern == "trunk_sway":
        st = replace(st, trunk_sway_deg=1.5 + 2.5 * severity, pelvis_sway_gain=1 + 0.4 * severity,
                     step_width_add=0.02 * severity)
    elif pattern == "reduced_arm_swing":
        kw = {"arm_gain": 1 - 0.3 * severity, "elbow_add": 8.0 * severity}
        st = _side(st, side, **kw) if side else st.with_sides(**kw)
    elif pattern == "festination":
        st = replace(st, festination=0.3 * severity, trunk_lean_add=5.0 * severity,
                     speed_gain=1 - 0.1 * severity,
                     freezes_per_min=0.0 if severity < 2 else 0.5 * (severity - 1))
    elif pattern == "freezing":
        st = replace(st, freezes_per_min=0.8 * severity, festination=0.15 * severity,
                     speed_gain=1 - 0.08 * severity, freeze_s=(1.0, 1.0 + 1.0 * severity))
    elif pattern == "ataxic":
        st = replace(st, stride_cv=0.02 + 0.03 * severity, step_length_cv=0.025 + 0.04 * severity,
                     step_width_sd=0.018 + 0.025 * severity, step_width_add=0.04 * severity,
                     trunk_sway_deg=1.5 + 1.5 * severity, pelvis_sway_gain=1 + 0.3 * severity,
                     speed_gain=1 - 0.12 * severity)
    return st

