"""RTMPose (SimCC, 17 COCO keypoints) pre/post-processing and the estimator path.

No RTMPose weights can be downloaded here, so the network itself is not exercised. An ONNX graph
with RTMPose's input and outputs (``input`` (1, 3, 256, 192), ``simcc_x`` (1, 17, 384),
``simcc_y`` (1, 17, 512): the 256x192 body models, split ratio 2) emits SimCC vectors peaked at
known bins; the decoded keypoints must be those bins / 2 mapped back through the box the
estimator chose (the whole frame first, then the previous pose's box), as MMPose maps them.
"""

from __future__ import annotations

import numpy as np
import pytest

from sinks.preview import project_to_image
from inference.pose.estimator import PoseEstimator
from inference.pose.rtmpose import box_center_scale, crop_input, decode_simcc
from inference.pose.yolo import COCO_KEYPOINTS, mediapipe_from_coco
from test_pose_yolo import coco_person

IW, IH, R = 192, 256, 2  # RTMPose-m 256x192, SimCC split ratio 2
MMPOSE_MEAN = np.array([123.675, 116.28, 103.53])  # RGB, MMPose's PoseDataPreprocessor
MMPOSE_STD = np.array([58.395, 57.12, 57.375])


def simcc(bins: np.ndarray, peaks: np.ndarray, length: int, sigma: float = 3.0) -> np.ndarray:
    """(1, K, length) SimCC vectors: a Gaussian of height ``peaks[k]`` at bin ``bins[k]`` on a
    slightly negative floor (the raw outputs are logits, not probabilities)."""
    x = np.arange(length)
    out = peaks[:, None] * np.exp(-0.5 * ((x[None] - bins[:, None]) / sigma) ** 2) - 0.05
    return out[None].astype(np.float32)


def crop_person() -> np.ndarray:
    """(17, 3) u, v (input pixels, on the SimCC half-pixel grid), score: a standing person
    centred in the crop, 205 of its 256 rows tall (1 / padding: the box found from these
    keypoints, padded, gives the same crop again)."""
    kp = coco_person(96.0, 128.0, 102.5)
    kp[:, :2] = np.round(kp[:, :2] * R) / R
    kp[:, 2] = 0.9
    return kp


def rtmpose_model(path, kp: np.ndarray, y_peaks: np.ndarray | None = None,
                  n_keypoints: int = 17, outputs=("simcc_x", "simcc_y")) -> None:
    """An ONNX graph with RTMPose's input and outputs that always emits SimCC vectors peaked at
    ``kp``'s bins (x peaks kp[:, 2], y peaks ``y_peaks`` or the same)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    sx = simcc(kp[:, 0] * R, kp[:, 2], IW * R)
    sy = simcc(kp[:, 1] * R, kp[:, 2] if y_peaks is None else y_peaks, IH * R)
    if n_keypoints != 17:
        sx = np.repeat(sx, 8, axis=1)[:, :n_keypoints]
        sy = np.repeat(sy, 8, axis=1)[:, :n_keypoints]
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
         helper.make_node("Mul", ["m", "zero"], ["z"]),
         helper.make_node("Add", ["cx", "z"], [outputs[0]]),
         helper.make_node("Add", ["cy", "z"], [outputs[1]])],
        "rtmpose_stand_in",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, IH, IW])],
        [helper.make_tensor_value_info(outputs[0], TensorProto.FLOAT, list(sx.shape)),
         helper.make_tensor_value_info(outputs[1], TensorProto.FLOAT, list(sy.shape))],
        [numpy_helper.from_array(sx, "cx"), numpy_helper.from_array(sy, "cy"),
         numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def expected_frame_keypoints(kp: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    """MMPose's top-down mapping, written out: the box padded by 1.25, widened or heightened to
    192:256, and input pixel (u, v) -> centre + (u / 192 - 1/2) * width, likewise for v."""
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * 1.25, (y1 - y0) * 1.25
    w, h = (w, w * 256 / 192) if w > h * 192 / 256 else (h * 192 / 256, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.stack([cx + (kp[:, 0] / IW - 0.5) * w, cy + (kp[:, 1] / IH - 0.5) * h], axis=1)


def test_box_to_the_models_aspect():
    c, s = box_center_scale((100, 200, 140, 400), 0.75)  # tall: width follows the height
    assert np.allclose(c, (120, 300)) and np.allclose(s, (187.5, 250))
    c, s = box_center_scale((0, 0, 400, 100), 0.75)  # wide: height follows the width
    assert np.allclose(s, (500, 500 / 0.75))


def test_crop_is_the_box_warped_rgb_and_normalised():
    img = np.zeros((480, 640, 3), np.uint8)
    img[296:305, 396:405] = (0, 0, 255)  # a red spot (BGR) centred at (400, 300)
    center, size = np.array([400.0, 280.0]), np.array([150.0, 200.0])
    x = crop_input(img, center, size, (IW, IH))
    assert x.shape == (1, 3, IH, IW) and x.dtype == np.float32
    # channel 0 is red: the spot is at (u, v) = (W/2, H/2 + 20 px * 256/200)
    red = np.clip(x[0, 0] - x[0, 1], 0, None)
    vv, uu = (np.indices(red.shape) * red).sum(axis=(1, 2)) / red.sum()
    assert abs(uu - IW / 2) <= 0.6 and abs(vv - (IH / 2 + 20 * IH / 200)) <= 0.6
    u, v = int(round(uu)), int(round(vv))
    np.testing.assert_allclose(x[0, :, v, u], (np.array([255, 0, 0]) - MMPOSE_MEAN) / MMPOSE_STD,
                               atol=0.05)
    # black image and outside-the-frame padding both read as 0 before normalisation
    far = crop_input(img, np.array([10.0, 10.0]), size, (IW, IH))
    np.testing.assert_allclose(far[0, :, 0, 0], -MMPOSE_MEAN / MMPOSE_STD, atol=1e-5)


def test_decode_known_simcc_peaks():
    kp = crop_person()
    y_peaks = kp[:, 2].copy()
    y_peaks[COCO_KEYPOINTS.index("left_wrist")] = 0.5  # score = the smaller maximum
    y_peaks[COCO_KEYPOINTS.index("left_ear")] = -0.2  # no positive maximum: score 0
    sx = simcc(kp[:, 0] * R, kp[:, 2], IW * R)
    sy = simcc(kp[:, 1] * R, y_peaks, IH * R)
    center, size = np.array([700.0, 500.0]), np.array([300.0, 400.0])
    out = decode_simcc(sx, sy, center, size, (IW, IH))
    np.testing.assert_allclose(out[:, 0], 700 + (kp[:, 0] / IW - 0.5) * 300, atol=1e-6)
    ear = COCO_KEYPOINTS.index("left_ear")
    ok = np.arange(17) != ear  # the ear's y maximum is the floor, not its bin
    np.testing.assert_allclose(out[ok, 1], 500 + (kp[ok, 1] / IH - 0.5) * 400, atol=1e-6)
    assert out[COCO_KEYPOINTS.index("left_wrist"), 2] == pytest.approx(0.45)  # 0.5 - floor
    assert out[ear, 2] == 0.0
    assert out[0, 2] == pytest.approx(0.85)


def test_rtmpose_through_the_estimator(tmp_path):
    """Whole frame first (nobody followed yet), then the previous pose's box: decoded where
    MMPose's mapping puts the known peaks, followed as one person, placed like YOLO-pose."""
    kp = crop_person()
    path = tmp_path / "rtmpose-m.onnx"
    rtmpose_model(path, kp)
    w, h = 480, 640  # a portrait frame: the whole-frame crop is exactly the model's aspect
    est = PoseEstimator(backend="rtmpose", model_path=str(path), leg_length_m=0.85,
                        hfov_deg=60.0)
    frame = np.zeros((h, w, 3), np.uint8)
    box = (0.0, 0.0, float(w), float(h))
    ids = set()
    for k in range(6):
        pose = est.estimate(frame, k * 33_333)
        assert len(pose) == 1
        want = expected_frame_keypoints(kp, box)
        xy, _ = mediapipe_from_coco(np.column_stack([want, kp[:, 2]]))
        np.testing.assert_allclose(pose[0].image_xy, xy, atol=1e-3)
        ids.add(pose[0].body.body_id)
        box = (want[:, 0].min(), want[:, 1].min(), want[:, 0].max(), want[:, 1].max())
    assert len(ids) == 1
    c = est.all_counters()
    assert c["finds"] == 1 and c["box_runs"] == 5 and c["model_runs"] == 6
    # the first frame fills the portrait frame's height (the crop is the frame padded by 1.25)
    first = expected_frame_keypoints(kp, (0, 0, w, h))
    assert first[:, 1].max() - first[:, 1].min() == pytest.approx(205 / 256 * 1.25 * h)
    # placed like YOLO-pose: projected back onto its keypoints, legs leg_length_m long
    body = pose[0].body
    assert np.allclose(project_to_image(body.joints, w, h, 60.0), pose[0].image_xy, atol=0.05)
    leg = np.linalg.norm(body.joints[23] - body.joints[25]) + np.linalg.norm(
        body.joints[25] - body.joints[27])
    # (the box-to-box crop grows the person by 0.1 % a frame, 205 / 256 * 1.25; the smoothed
    # scale lags it a little)
    assert leg == pytest.approx(0.85, rel=1e-2)
    assert body.joints[0, 1] > body.joints[27, 1]  # nose above ankle: y up


def test_rtmpose_finds_nobody_when_unsure(tmp_path):
    kp = crop_person()
    kp[:, 2] = 0.2  # mean score under min_person_score
    path = tmp_path / "unsure.onnx"
    rtmpose_model(path, kp)
    est = PoseEstimator(backend="rtmpose", model_path=str(path), find_period_s=0.1)
    frame = np.zeros((480, 640, 3), np.uint8)
    assert all(est.process(frame, k * 33_333) == [] for k in range(7))
    assert est.all_counters()["finds"] == 2  # the whole frame every find_period_s


def test_rtmpose_refuses_other_models(tmp_path):
    kp = crop_person()
    with pytest.raises(ValueError, match="model_path"):
        PoseEstimator(backend="rtmpose")
    named = tmp_path / "named.onnx"
    rtmpose_model(named, kp, outputs=("output0", "output1"))
    with pytest.raises(ValueError, match="simcc_x, simcc_y"):
        PoseEstimator(backend="rtmpose", model_path=str(named))
    wholebody = tmp_path / "wholebody.onnx"
    rtmpose_model(wholebody, kp, n_keypoints=133)
    est = PoseEstimator(backend="rtmpose", model_path=str(wholebody))
    with pytest.raises(ValueError, match="17-keypoint COCO body model"):
        est.process(np.zeros((480, 640, 3), np.uint8), 0)
