"""Labelled gait-lab markers (from C3D or TRC) -> a canonical Recording."""

from __future__ import annotations

from typing import Any

import numpy as np

from capture.readers.axes import AxisError, level_rotation
from capture.readers.marker_roles import role_marker_set
from capture.readers.markers import (SubjectParams, foot_markers, identify, joint_centres,
                                     vertical_reference)
from capture.readers.recording import Recording, RecordingError, fill_foot_points, fill_missing


def subject_params(processing: dict[str, float]) -> SubjectParams:
    """Anthropometry from a Vicon PROCESSING group (mm), defaults where the lab stored none."""
    d = SubjectParams()

    def mm(key: str, default: float) -> float:
        v = processing.get(key)
        return v / 1000.0 if v is not None and v > 0 else default

    return SubjectParams(
        knee_width=(mm("LKneeWidth", d.knee_width[0]), mm("RKneeWidth", d.knee_width[1])),
        ankle_width=(mm("LAnkleWidth", d.ankle_width[0]), mm("RAnkleWidth", d.ankle_width[1])),
        marker_radius=mm("Marker Diameter", 2 * d.marker_radius) / 2,
        height=mm("Height", 0.0) or None,
    )


def markers_to_recording(name: str, markers: dict[str, np.ndarray], t_us: np.ndarray,
                         rate_hz: float, meta: dict[str, Any], *,
                         processing: dict[str, float] | None = None,
                         lab_centres: bool = False,
                         site_names: dict[str, str] | None = None) -> Recording:
    """Identify the marker set, turn the lab axes to y up, compute the joint centres.
    ``site_names`` (upper-case label -> role code, :func:`marker_roles.site_names`) renames a
    site's own labels; the markers are then read by role."""
    if site_names:
        markers = {site_names.get(k, k): v for k, v in markers.items()}
    ms = None if site_names else identify(set(markers))
    if ms is None:  # no set of its own: the labels by anatomical role
        ms, missing = role_marker_set(set(markers))
        if ms is None:
            raise RecordingError(
                f"{name}: no marker for the {', the '.join(missing)} under any name "
                "capture/readers/marker_roles.py knows (marker clusters alone do not place "
                f"the joints); its labels: {', '.join(sorted(markers)[:40])}"
                f"{', ...' if len(markers) > 40 else ''}")
        lab_centres = True  # centres the lab stored stand in for missing landmarks
    ref = vertical_reference(ms, markers)
    if ref is None:
        raise RecordingError(f"{name}: marker set {ms.name} has no pelvis and foot markers")
    try:
        rot, info = level_rotation(*ref)
    except AxisError as e:
        raise RecordingError(f"{name}: {e}") from None
    markers = {k: v @ rot.T for k, v in markers.items()}
    params = subject_params(processing or {})
    jc = joint_centres(ms, markers, params, lab_centres=lab_centres)
    joints, conf = fill_missing(jc.joints)
    conf = conf * jc.trust
    feet, feet_conf = fill_foot_points(foot_markers(ms, markers), joints)
    meta = dict(meta)
    meta.update(info)
    meta["marker_set"] = ms.name
    meta["joint_methods"] = jc.methods
    meta["lab_axes_to_y_up"] = rot.tolist()
    if params.height:
        meta.setdefault("subject_height_m", params.height)
    return Recording(name=name, t_us=t_us, joints=joints, confidence=conf, rate_hz=rate_hz,
                     source_layout=f"markers:{ms.name}", meta=meta, markers=markers,
                     feet=feet, feet_confidence=feet_conf)
