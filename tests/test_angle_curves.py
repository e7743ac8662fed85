"""Kinematics-only strides (the nine Plug-in-Gait variables) walk the canonical skeleton: the
angles measured back from the skeleton are the ones it was driven with."""

import numpy as np
import pytest

from inference.analysis.gait_variables import V, stride_variables
from inference.data.angle_curves import pig_curves, pig_walk
from inference.data.fgdi import read_folder


@pytest.fixture(scope="module")
def stride_pair(shared_data):
    """A right and a left stride of the same person and session from the FGDI folder."""
    strides = read_folder(shared_data / "pathological_kinematics_fgdi").strides
    rights = {(s.subject, s.session): s for s in strides if s.side == "right"}
    left = next(s for s in strides if s.side == "left" and (s.subject, s.session) in rights)
    return rights[(left.subject, left.session)], left


def test_driven_skeleton_gives_back_the_strides_angles(stride_pair):
    right, left = stride_pair
    t_us, joints, period = pig_walk(right.curves, left.curves, cycles=3, rate_hz=100.0)
    assert period == pytest.approx(1.1)
    # the left stride starts half a cycle after the right one
    for side, stride, start in (("right", right, 1.0), ("left", left, 1.5)):
        got = stride_variables(t_us, joints, side, int(start * period * 1e6),
                               int((start + 1) * period * 1e6), smooth=None)
        for name in ("knee_flexion", "hip_adduction", "pelvis_obliquity", "pelvis_rotation"):
            d = got[V[name]] - stride.curves[V[name]]
            assert np.abs(d).max() < 1.5, (side, name, np.abs(d).max())
        # a skeleton carries no pelvis tilt: its hip flexion is the driven one less the tilt
        d = got[V["hip_flexion"]] - stride.curves[V["hip_flexion"]]
        tilt = 0.5 * (right.curves[V["pelvis_tilt"]] + left.curves[V["pelvis_tilt"]]).mean()
        assert np.mean(d) == pytest.approx(-tilt, abs=1.5)
        assert np.std(d) < 2.0
    speed = (joints[-1, 0, 2] - joints[0, 0, 2]) / (t_us[-1] / 1e6)
    assert 0.6 < speed < 1.8  # the feet do not slide: an adult's walking speed follows


def test_pig_curves_mirror_the_pelvis_and_reject_wrong_shapes(stride_pair):
    right, _ = stride_pair
    c = pig_curves(right.curves, right.curves)
    assert c["knee_angle_r"][0] == pytest.approx(-right.curves[V["knee_flexion"], 0])
    assert len(c["time"]) == right.curves.shape[1] - 1
    with pytest.raises(ValueError, match="left stride"):
        pig_curves(right.curves, right.curves[:5])
