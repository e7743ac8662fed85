"""Turning a lab's axes into the wire's: metres, right-handed, y up.

Labs use Z up (Vicon, Motion Analysis, Codamotion, Qualisys) or Y up (OpenSim); the vertical
is found from the data (pelvis above feet, averaged over the trial, which is within a few
degrees of vertical for walking) and snapped to the nearest lab axis, so that the horizontal
walking plane is kept exactly. The two horizontal axes keep their order as far as a proper
rotation allows.
"""

from __future__ import annotations

import numpy as np

AXES = "XYZ"
SNAP_DEG = 25.0  # the body's pelvis-over-feet direction is well within this of the vertical


class AxisError(ValueError):
    """The vertical could not be determined."""


def vertical_from_body(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Unit mean direction from ``lower`` to ``upper`` (T,3) points, skipping frames with NaN."""
    d = upper - lower
    d = d[np.isfinite(d).all(1)]
    if len(d) == 0:
        raise AxisError("no frame with both pelvis and foot markers to find the vertical")
    v = d.mean(0)
    n = np.linalg.norm(v)
    if n < 0.2:  # metres: pelvis is ~0.9 m above the feet
        raise AxisError(f"pelvis-to-feet distance {n:.2f} m is too small to define the vertical")
    return v / n


def snap_to_axis(v: np.ndarray) -> tuple[int, float, float]:
    """(axis index, sign, angle in degrees between v and that signed axis)."""
    i = int(np.argmax(np.abs(v)))
    sign = float(np.sign(v[i]))
    angle = float(np.degrees(np.arccos(min(1.0, abs(v[i])))))
    return i, sign, angle


def y_up_rotation(axis: int, sign: float) -> np.ndarray:
    """Proper rotation R (rows = new x, y, z in old coordinates) with new y = sign * old axis."""
    if axis == 1 and sign > 0:
        return np.eye(3)
    up = np.zeros(3)
    up[axis] = sign
    # new x: the first old horizontal axis (keeps X as X for Z-up labs)
    hx = np.zeros(3)
    hx[0 if axis != 0 else 1] = 1.0
    new_z = np.cross(hx, up)
    return np.stack([hx, up, new_z])


def level_rotation(upper: np.ndarray, lower: np.ndarray, *, snap_deg: float = SNAP_DEG
                   ) -> tuple[np.ndarray, dict[str, object]]:
    """The rotation to y up for a recording and what was found (for Recording.meta)."""
    v = vertical_from_body(upper, lower)
    axis, sign, angle = snap_to_axis(v)
    if angle > snap_deg:
        raise AxisError(f"pelvis-over-feet direction {np.round(v, 3).tolist()} is {angle:.0f} deg "
                        f"from the nearest lab axis; refusing to guess the vertical")
    rot = y_up_rotation(axis, sign)
    info = {"up_axis": ("+" if sign > 0 else "-") + AXES[axis],
            "up_axis_deviation_deg": round(angle, 2)}
    return rot, info
