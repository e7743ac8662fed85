"""Floor, walking direction (path or body), motion states, bouts and per-frame quality."""

import numpy as np
import pytest

from inference.analysis import motion
from streams.skeletons import CJ

from _stepping_walker import Gait, walk


def test_floor_plane_and_tilt():
    rng = np.random.default_rng(2)
    xz = rng.uniform(-2, 2, (200, 2))
    tilt = np.radians(5.0)
    y = 0.7 + np.tan(tilt) * xz[:, 0]  # a camera pitched by 5 deg sees a sloping floor
    n, h, deg = motion.estimate_floor(np.column_stack([xz[:, 0], y, xz[:, 1]]))
    assert deg == pytest.approx(5.0, abs=1e-6)
    assert n[1] > 0 and h == pytest.approx(y.mean(), abs=1e-9)
    line = np.column_stack([np.linspace(0, 3, 20), np.zeros(20), np.zeros(20)])
    with pytest.raises(ValueError, match="collinear"):
        motion.estimate_floor(line)


def _headings(g: Gait, joints=None, conf=None):
    """Walking directions of 6 s of ``g`` at 30 Hz (its own joints unless given)."""
    t = np.arange(0, 6, 1 / 30)
    j = walk(g, t) if joints is None else joints
    tu = (t * 1e6).astype(np.int64)
    w = motion.heading_weights(np.ones((len(t), 22)) if conf is None else conf, 0.5)
    return motion.headings(tu, motion.heading_inputs(j), w, motion.FrameOptions(), 80.0)


def _swap_legs(joints):
    """Joints with the left and right hip, knee, ankle and foot labels exchanged."""
    swap = np.arange(22)
    for a, b in (("left_hip", "right_hip"), ("left_knee", "right_knee"),
                 ("left_ankle", "right_ankle"), ("left_foot", "right_foot")):
        swap[CJ[a]], swap[CJ[b]] = CJ[b], CJ[a]
    return joints[:, swap]


@pytest.mark.parametrize("heading", [0.0, 100.0, -160.0])
def test_direction_from_the_path_overground(heading):
    g = Gait(heading_deg=heading)
    d, speed, from_body = _headings(g)
    mid = slice(40, -40)
    assert not from_body[mid].any()
    assert np.degrees(np.arccos(np.clip(d[mid] @ g.direction(), -1, 1))).max() < 3.0
    assert np.median(speed[mid]) == pytest.approx(g.speed, rel=0.05)


@pytest.mark.parametrize("heading", [20.0, -95.0])
def test_direction_from_the_body_on_a_treadmill(heading):
    g = Gait(treadmill=True, heading_deg=heading)
    d, speed, from_body = _headings(g)
    mid = slice(40, -40)
    assert from_body[mid].all() and speed[mid].max() < 0.1
    assert np.degrees(np.arccos(np.clip(d[mid] @ g.direction(), -1, 1))).max() < 3.0


def test_mirrored_skeleton_still_walks_forward():
    # a source with left and right swapped (a mirrored camera): the hip-line normal points
    # backwards, the toes and the feet's stride axis do not
    g = Gait(treadmill=True, heading_deg=45.0)
    t = np.arange(0, 6, 1 / 30)
    d, _, _ = _headings(g, _swap_legs(walk(g, t)))
    assert (d[40:-40] @ g.direction()).min() > 0.99


def test_motion_states_and_bouts():
    opts = motion.FrameOptions()
    st = motion.motion_state(np.array([0.0, 1.2, 0.0, 1.0]), np.array([0.02, 0.6, 0.5, 0.6]),
                         np.array([0.0, 5.0, 0.0, 90.0]), opts)
    assert st.tolist() == [motion.STANDING, motion.WALKING, motion.WALKING, motion.TURNING]  # 3rd: treadmill
    t = np.arange(0, 20_000_000, 100_000, dtype=np.int64)
    walking = ((t > 2e6) & (t < 8e6)) | ((t > 8.5e6) & (t < 10e6)) | ((t > 14e6) & (t < 15e6))
    # a half-second pause does not split a bout; a one-second walk is not a bout
    assert motion.bouts(t, walking) == [(2_100_000, 9_900_000)]


def test_quality_flags():
    g = Gait()
    t = (np.arange(0, 2, 1 / 30) * 1e6).astype(np.int64)
    j = walk(g, t / 1e6)
    c = np.ones((len(t), 22))
    ref = np.median(motion.bone_lengths(j), axis=0)
    opts = motion.FrameOptions()
    assert (motion.quality_flags(t, j, c, ref, opts) == 0).all()
    c2 = c.copy()
    c2[10, CJ["left_ankle"]] = 0.0
    c2[11, CJ["pelvis"]] = 0.3
    j2 = j.copy()
    j2[12, CJ["right_knee"]] += np.array([0.0, 0.2, 0.0])  # a 20 cm longer right shank
    j2[20:, [CJ["left_knee"], CJ["left_ankle"], CJ["left_foot"], CJ["right_knee"],
             CJ["right_ankle"], CJ["right_foot"]]] = j[20:, [CJ["right_knee"], CJ["right_ankle"],
                                                            CJ["right_foot"], CJ["left_knee"],
                                                            CJ["left_ankle"], CJ["left_foot"]]]
    t2 = t.copy()
    t2[30:] += 300_000  # a 0.3 s hole
    q = motion.quality_flags(t2, j2, c2, ref, opts)  # flags of frames 1..N-1
    assert q[9] & motion.Q_MISSING and q[10] & motion.Q_LOW_CONF and not q[10] & motion.Q_MISSING
    assert q[11] & motion.Q_BONE_LENGTH
    stance_gap = np.linalg.norm(j[20, CJ["left_ankle"]] - j[20, CJ["right_ankle"]])
    assert stance_gap > 0.3 and q[19] & motion.Q_LR_SWAP  # the labels jumped across at frame 20
    assert q[29] & motion.Q_GAP and not q[30] & motion.Q_GAP


def test_legs_crossed_across_the_walking_direction():
    g = Gait(heading_deg=60.0)
    j = walk(g, np.array([0.3]))
    fwd = g.direction()[None]
    assert not motion.legs_crossed(j, fwd)[0]
    swapped = j.copy()
    for a, b in (("left_knee", "right_knee"), ("left_ankle", "right_ankle")):
        swapped[:, [CJ[a], CJ[b]]] = j[:, [CJ[b], CJ[a]]]
    assert motion.legs_crossed(swapped, fwd)[0]


def test_a_stretch_without_frames_ends_a_bout():
    t = np.arange(0, 12_000_000, 100_000, dtype=np.int64)
    keep = (t < 5_000_000) | (t >= 7_000_000)  # 2 s without frames, walking either side
    assert motion.bouts(t[keep], np.ones(keep.sum(), bool)) == [(0, 4_900_000),
                                                            (7_000_000, 11_900_000)]
    # a gap shorter than the pause does not split
    keep = (t < 5_000_000) | (t >= 5_500_000)
    assert motion.bouts(t[keep], np.ones(keep.sum(), bool)) == [(0, 11_900_000)]


def test_swapped_labels_without_the_toes_do_not_reverse_an_overground_heading():
    # seen from behind, a depth camera loses the feet (toes): the body axis's sign then comes
    # from the hip line, which a left/right swap reverses; the pelvis path still says where
    # the walker goes
    g = Gait(heading_deg=-20.0)
    t = np.arange(0, 6, 1 / 30)
    conf = np.ones((len(t), 22))
    conf[:, [CJ["left_foot"], CJ["right_foot"]]] = 0.3  # LOW: not used for the heading
    d, _, from_body = _headings(g, _swap_legs(walk(g, t)), conf)
    mid = slice(40, -40)
    assert not from_body[mid].any()
    assert (d[mid] @ g.direction()).min() > 0.99


def test_a_body_direction_does_not_reverse_between_two_frames():
    t = np.arange(0, 4_000_000, 33_333, dtype=np.int64)
    fwd = np.array([0.0, 0.0, 1.0])
    d = np.tile(fwd, (len(t), 1))
    d[30:36] *= -1  # a swap or lost toes flip the body's sign for 0.2 s
    d[60:] *= -1  # from 2 s on for good: the earlier sign was the wrong one
    from_body = np.ones(len(t), bool)
    state = motion.HeadingSign()
    # in batches, as the analyzer finalises frames
    out = np.concatenate([motion.hold_heading_sign(state, t[i:i + 4], d[i:i + 4],
                                               from_body[i:i + 4], 1000.0)
                          for i in range(0, len(t), 4)])
    along = out @ fwd
    assert (along[:91] > 0).all()  # the flips are taken back, the lasting one for 1 s ...
    assert (along[91:] < 0).all()  # ... then accepted
    # a direction from the pelvis path is the walker's way: never reversed
    path = motion.hold_heading_sign(motion.HeadingSign(), t, d, np.zeros(len(t), bool), 1000.0)
    np.testing.assert_array_equal(path, d)
