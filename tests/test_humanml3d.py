"""HumanML3D features: the 263 layout, the numbers a known walker must give, and the inverse."""

from __future__ import annotations

import numpy as np
import pytest

from inference.models.motion_diffusion import features as hml3d
from streams.skeletons import CANONICAL_JOINTS, CJ
from tests._walker import walker

T_S = np.arange(0, 2.0, 1 / hml3d.FPS)


def test_layout_slices_are_the_reference_sizes_in_order():
    sizes = [(hml3d.ROOT_ROT_VEL, 1), (hml3d.ROOT_LIN_VEL, 2), (hml3d.ROOT_Y, 1), (hml3d.RIC, 63),
             (hml3d.ROT6D, 126), (hml3d.LOCAL_VEL, 66), (hml3d.FOOT_CONTACT, 4)]
    start = 0
    for sl, n in sizes:
        assert (sl.start, sl.stop) == (start, start + n)
        start += n
    assert start == hml3d.FEATURE_DIM == 263
    covered = np.concatenate([np.arange(263)[s] for s in hml3d.GROUPS.values()])
    assert sorted(covered) == list(range(263))
    # per joint: root = root motion + velocity; others: position 3 + rotation 6 + velocity 3
    assert len(hml3d.JOINT_COLUMNS["pelvis"]) == 4 + 3
    assert len(hml3d.JOINT_COLUMNS["left_knee"]) == 12
    assert len(hml3d.JOINT_COLUMNS["right_foot"]) == 13  # + its contact
    assert set(hml3d.JOINT_COLUMNS) == set(CANONICAL_JOINTS)


def test_features_shape_and_known_root_motion():
    m = hml3d.motion_features(walker(T_S, speed=1.2), retarget_body=False)
    assert m.data.shape == (len(T_S) - 1, 263)
    assert m.positions.shape == (len(T_S), 22, 3)
    # walking straight ahead at 1.2 m/s: 0.06 m per 20-fps frame forward (+z), none sideways
    np.testing.assert_allclose(m.data[:, 2], 1.2 / hml3d.FPS, atol=1e-9)
    np.testing.assert_allclose(m.data[:, 1], 0.0, atol=1e-9)
    np.testing.assert_allclose(m.data[:, 0], 0.0, atol=1e-12)
    # root height: pelvis above the lowest joint of the clip
    np.testing.assert_allclose(m.data[:, 3], m.positions[:-1, 0, 1], atol=1e-12)
    assert m.positions[..., 1].min() == pytest.approx(0.0, abs=1e-12)
    # first frame faces +z with the root at x = z = 0
    np.testing.assert_allclose(m.positions[0, 0, [0, 2]], 0.0, atol=1e-12)
    assert m.heading[0] == 0.0


def test_turn_rate_is_half_the_yaw_change_per_frame_as_the_reference():
    t = np.arange(0, 12.0, 1 / hml3d.FPS)
    m = hml3d.motion_features(walker(t, turn_rate=0.5), retarget_body=False)
    mid = m.data[len(t) // 3: 2 * len(t) // 3, 0]  # away from the smoothing's clip ends
    np.testing.assert_allclose(mid, -0.5 / hml3d.FPS / 2, rtol=1e-3)


def test_features_do_not_depend_on_where_the_walker_is_or_faces():
    a = hml3d.motion_features(walker(T_S, heading0=0.3, origin=(0.5, 0.0, -1.0))).data
    b = hml3d.motion_features(walker(T_S, heading0=2.5, origin=(-3.0, 0.4, 7.0))).data
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_retargeting_removes_body_size():
    # bodies of different size walking alike (speed in proportion to size)
    small = hml3d.motion_features(walker(T_S, scale=0.85, speed=1.2 * 0.85))
    tall = hml3d.motion_features(walker(T_S, scale=1.15, speed=1.2 * 1.15))
    np.testing.assert_allclose(small.data, tall.data, atol=1e-9)
    lengths = np.linalg.norm(hml3d.bone_vectors(small.positions), axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(hml3d.TARGET_BONE_LENGTHS, lengths.shape),
                               atol=1e-9)
    # the same bodies without retargeting do differ
    assert not np.allclose(hml3d.motion_features(walker(T_S, scale=0.85, speed=1.2 * 0.85),
                                             retarget_body=False).data,
                           hml3d.motion_features(walker(T_S, scale=1.15, speed=1.2 * 1.15),
                                             retarget_body=False).data,
                           atol=1e-3)


@pytest.mark.parametrize("retarget_body", [False, True])
def test_positions_recovered_from_root_motion_and_root_relative_positions(retarget_body):
    rng = np.random.default_rng(0)
    j = walker(T_S, turn_rate=0.4) + rng.normal(0, 0.005, (len(T_S), 22, 3))  # sensor jitter
    m = hml3d.motion_features(j, retarget_body=retarget_body)
    rec = hml3d.recover_from_ric(m.data)
    np.testing.assert_allclose(rec, m.positions[:-1], atol=1e-6)
    rec_rot = hml3d.recover_from_rot(m.data, m.bone_lengths)
    # without retargeting, jittered bones vary in length around the median used by FK
    tol = 1e-6 if retarget_body else 0.05
    np.testing.assert_allclose(rec_rot, m.positions[:-1], atol=tol)
    if not retarget_body:
        # aligned positions are the input moved rigidly: same shape in every frame, same heights
        d_in = np.linalg.norm(j[:, :, None] - j[:, None], axis=-1)
        d_out = np.linalg.norm(m.positions[:, :, None] - m.positions[:, None], axis=-1)
        np.testing.assert_allclose(d_out, d_in, atol=1e-9)
        np.testing.assert_allclose(m.positions[..., 1], j[..., 1] - j[..., 1].min(), atol=1e-9)


def test_missing_joints_placed_at_their_parent_still_give_finite_features():
    j = walker(T_S)
    for arm in ("left_elbow", "left_wrist", "right_elbow", "right_wrist"):
        parent = {"left_elbow": "left_shoulder", "left_wrist": "left_elbow",
                  "right_elbow": "right_shoulder", "right_wrist": "right_elbow"}[arm]
        j[:, CJ[arm]] = j[:, CJ[parent]]
    m = hml3d.motion_features(j)
    assert np.isfinite(m.data).all()
    # a zero-length forearm is retargeted hanging down along its rest direction
    fore = m.positions[:, CJ["left_wrist"]] - m.positions[:, CJ["left_elbow"]]
    np.testing.assert_allclose(fore[:, 1], -hml3d.TARGET_BONE_LENGTHS[CJ["left_wrist"]], atol=1e-9)


def test_foot_contact_follows_foot_speed():
    j = walker(T_S, speed=0.0, cadence_hz=0.0)  # standing still
    m = hml3d.motion_features(j, retarget_body=False)
    assert (m.data[:, hml3d.FOOT_CONTACT] == 1).all()
    fast = j.copy()
    fast[:, CJ["left_foot"], 2] += np.arange(len(T_S)) * 0.1  # 2 m/s: over the threshold
    m = hml3d.motion_features(fast, retarget_body=False)
    contacts = m.data[:, hml3d.FOOT_CONTACT]
    assert (contacts[:, 1] == 0).all() and (contacts[:, [0, 2, 3]] == 1).all()


def test_resampling_uses_timestamps_not_frame_counts():
    rng = np.random.default_rng(1)
    t_s = np.cumsum(rng.uniform(0.025, 0.040, 80))  # ~30 Hz with jitter
    t_us = np.round(t_s * 1e6).astype(np.int64)
    j = walker(t_s, speed=1.0)
    t_new, j_new = hml3d.resample(t_us, j)
    assert np.all(np.diff(t_new) == 50_000)
    assert t_new[-1] <= t_us[-1] < t_new[-1] + 50_000
    # the root moves linearly in time, so interpolation reproduces it exactly
    expect = walker((t_new - t_us[0]) / 1e6 + t_s[0], speed=1.0)
    np.testing.assert_allclose(j_new[:, 0, [0, 2]], expect[:, 0, [0, 2]], atol=1e-5)  # us rounding
    with pytest.raises(hml3d.FeatureError, match="strictly increasing"):
        hml3d.resample(t_us[::-1], j)
    with pytest.raises(hml3d.FeatureError, match="NaN"):
        bad = j.copy()
        bad[3, 4, 1] = np.nan
        hml3d.resample(t_us, bad)
    with pytest.raises(hml3d.FeatureError, match="at least 3"):
        hml3d.features_from_timestamps(t_us[:3], j[:3])


def test_a_batch_of_clips_gives_each_clip_its_own_features():
    a, b = walker(T_S), walker(T_S, turn_rate=0.3, knee_offset=0.3, scale=1.1)
    batch = hml3d.motion_features(np.stack([a, b]))
    np.testing.assert_allclose(batch.data[0], hml3d.motion_features(a).data, atol=1e-12)
    np.testing.assert_allclose(batch.data[1], hml3d.motion_features(b).data, atol=1e-12)


def test_normalizer_averages_std_within_groups_and_round_trips(tmp_path):
    data = np.concatenate([hml3d.motion_features(walker(T_S, speed=s)).data for s in (0.8, 1.4)])
    norm = hml3d.Normalizer.fit(data)
    assert np.allclose(norm.std[hml3d.RIC], norm.std[hml3d.RIC][0])
    np.testing.assert_allclose(norm.normalize(data).reshape(-1, 263).mean(0), 0, atol=1e-5)
    norm.save(tmp_path / "stats.npz")
    back = hml3d.Normalizer.load(tmp_path / "stats.npz")
    np.testing.assert_array_equal(back.mean, norm.mean)
    np.testing.assert_allclose(back.denormalize(back.normalize(data)), data, atol=1e-5)


def test_rotation_between_is_a_proper_rotation_even_for_opposite_vectors():
    rng = np.random.default_rng(3)
    u = rng.normal(size=(200, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.concatenate([rng.normal(size=(100, 3)), -u[100:]])  # half of them antiparallel
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    r = hml3d.rotation_between(u, v)
    np.testing.assert_allclose((r @ u[:, :, None])[..., 0], v, atol=1e-12)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_allclose(hml3d.matrix_from_6d(hml3d.matrix_to_6d(r)), r, atol=1e-12)
