"""YOLOv8-pose pre/post-processing on constructed model outputs.

No YOLO weights can be downloaded here, so the network itself is not exercised. The outputs are
built from known keypoints through the letterbox, in the layout an Ultralytics export produces,
and decoded back; an ONNX graph that emits such an output runs through onnxruntime and the whole
PoseEstimator path.
"""

from __future__ import annotations

import numpy as np
import pytest

from sinks.preview import project_to_image
from inference.pose.estimator import PoseEstimator
from inference.pose.yolo import (COCO_KEYPOINTS, SUBSTITUTE_CONFIDENCE, decode, letterbox,
                                 mediapipe_from_coco)
from streams.skeletons import MEDIAPIPE_JOINTS, to_canonical

W, H, S = 1768, 994, 640


def coco_person(hip_x: float, hip_y: float, leg: float) -> np.ndarray:
    """(17, 3) x, y, score of a standing person in frame pixels."""
    kp = np.zeros((17, 3))
    kp[:, 2] = 0.9
    c = {n: i for i, n in enumerate(COCO_KEYPOINTS)}
    for side, dx in (("left", -0.1), ("right", 0.1)):
        x = hip_x + dx * leg
        kp[c[f"{side}_hip"], :2] = (x, hip_y)
        kp[c[f"{side}_knee"], :2] = (x, hip_y + 0.5 * leg)
        kp[c[f"{side}_ankle"], :2] = (x, hip_y + leg)
        kp[c[f"{side}_shoulder"], :2] = (x, hip_y - 0.7 * leg)
        kp[c[f"{side}_elbow"], :2] = (x, hip_y - 0.35 * leg)
        kp[c[f"{side}_wrist"], :2] = (x, hip_y)
        kp[c[f"{side}_eye"], :2] = (x * 0.3 + hip_x * 0.7, hip_y - 1.0 * leg)
        kp[c[f"{side}_ear"], :2] = (x, hip_y - 0.95 * leg)
    kp[c["nose"], :2] = (hip_x, hip_y - 0.98 * leg)
    return kp


def model_output(people: list[tuple[np.ndarray, float]], n_anchors: int = 8400,
                 noise_score: float = 0.2) -> tuple[np.ndarray, list[np.ndarray]]:
    """A (1, 56, N) YOLOv8-pose output holding ``people`` (frame keypoints, score), each twice
    (the second a slightly shifted, lower-scored duplicate NMS must remove), plus a low-score
    anchor; and the frame keypoints expected back."""
    r = min(S / H, S / W)
    px, py = round((S - W * r) / 2 - 0.1), round((S - H * r) / 2 - 0.1)
    out = np.zeros((56, n_anchors), np.float32)
    anchor = 100
    for kp, score in people:
        lk = kp.copy()
        lk[:, 0] = kp[:, 0] * r + px
        lk[:, 1] = kp[:, 1] * r + py
        x0, y0 = lk[:, :2].min(0)
        x1, y1 = lk[:, :2].max(0)
        for shift, sc in ((0.0, score), (2.0, score - 0.05)):
            out[:4, anchor] = ((x0 + x1) / 2 + shift, (y0 + y1) / 2, x1 - x0, y1 - y0)
            out[4, anchor] = sc
            out[5:, anchor] = lk.reshape(-1)
            anchor += 1
        anchor += 2000
    out[:4, 7000] = (320, 320, 50, 100)
    out[4, 7000] = noise_score
    return out[None], [kp for kp, _ in people]


def test_letterbox_keeps_aspect_and_centres():
    img = np.zeros((H, W, 3), np.uint8)
    img[496:505, 1196:1205] = (0, 0, 255)  # a red spot (BGR) centred at (1200, 500)
    x, r, (px, py) = letterbox(img, S)
    assert x.shape == (1, 3, S, S) and x.dtype == np.float32
    assert np.isclose(r, S / W) and px == 0 and py == round((S - H * S / W) / 2 - 0.1)
    redness = np.clip(x[0, 0] - x[0, 1], 0, None)  # channel 0 is R after BGR -> RGB
    yy, xx = (np.indices(redness.shape) * redness).sum(axis=(1, 2)) / redness.sum()
    assert abs(xx - 1200 * r) <= 1 and abs(yy - (500 * r + py)) <= 1
    assert np.isclose(x[0, :, 5, 5], 114 / 255).all()  # grey padding


@pytest.mark.parametrize("transpose", [False, True])
def test_decode_recovers_people_in_frame_pixels(transpose):
    a, b = coco_person(1400, 700, 200), coco_person(500, 300, 120)
    out, expected = model_output([(a, 0.9), (b, 0.7)])
    if transpose:
        out = out.transpose(0, 2, 1)
    r = S / W
    people = decode(out, r, (0.0, float(round((S - H * r) / 2 - 0.1))), min_score=0.4)
    assert len(people) == 2  # duplicates suppressed, the 0.2 anchor dropped
    (box_a, score_a, kp_a), (_, score_b, kp_b) = people
    assert (score_a, score_b) == pytest.approx((0.9, 0.7))
    assert np.allclose(kp_a[:, :2], expected[0][:, :2], atol=1e-2)
    assert np.allclose(kp_b[:, :2], expected[1][:, :2], atol=1e-2)
    assert np.allclose(kp_a[:, 2], 0.9)
    assert box_a[0] <= expected[0][:, 0].min() + 0.1 and box_a[3] >= expected[0][:, 1].max() - 0.1


def test_decode_refuses_other_shapes():
    with pytest.raises(ValueError, match="expected"):
        decode(np.zeros((1, 84, 8400), np.float32), 1.0, (0, 0), 0.4)  # a detection model
    assert decode(np.zeros((1, 56, 100), np.float32), 1.0, (0, 0), 0.4) == []


def test_coco_to_mediapipe_mapping():
    kp = coco_person(800, 500, 150)
    xy, vis = mediapipe_from_coco(kp)
    mp = {n: i for i, n in enumerate(MEDIAPIPE_JOINTS)}
    c = {n: i for i, n in enumerate(COCO_KEYPOINTS)}
    for name in ("left_hip", "right_knee", "left_ankle", "nose", "right_ear"):
        assert np.allclose(xy[mp[name]], kp[c[name], :2]) and vis[mp[name]] == pytest.approx(0.9)
    # feet are not in COCO: at the ankle, and less sure
    assert np.allclose(xy[mp["left_heel"]], kp[c["left_ankle"], :2])
    assert vis[mp["right_foot_index"]] == pytest.approx(0.9 * SUBSTITUTE_CONFIDENCE)


def constant_model(path, output: np.ndarray) -> None:
    """An ONNX graph with YOLOv8-pose's input and output that always emits ``output``."""
    import onnx  # in the dev extras (train)
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
         helper.make_node("Mul", ["m", "zero"], ["z"]),
         helper.make_node("Add", ["const", "z"], ["output0"])],
        "yolo_pose_stand_in",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, S, S])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        [numpy_helper.from_array(output.astype(np.float32), "const"),
         numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))


def test_yolo_backend_through_the_estimator(tmp_path):
    near, far = coco_person(1400, 650, 220), coco_person(500, 250, 110)
    out, _ = model_output([(near, 0.9), (far, 0.8)])
    path = tmp_path / "yolo_pose.onnx"
    constant_model(path, out)
    est = PoseEstimator(backend="yolo-pose", model_path=str(path), leg_length_m=0.85,
                        hfov_deg=60.0)
    frame = np.zeros((H, W, 3), np.uint8)
    bodies = [est.process(frame, int(k * 33_333)) for k in range(10)]
    assert all(len(b) == 1 for b in bodies)
    assert len({b[0].body_id for b in bodies}) == 1  # the same person every frame
    body = bodies[-1][0]
    assert body.joints.shape == (33, 3) and body.joints.dtype == np.float32
    # the nearer (larger) person is followed; projected back onto the frame it sits on its
    # keypoints, and its legs are 0.85 m long in the wire frame
    xy, _ = mediapipe_from_coco(near)
    assert np.allclose(project_to_image(body.joints, W, H, 60.0), xy, atol=0.05)
    leg = np.linalg.norm(body.joints[23] - body.joints[25]) + np.linalg.norm(
        body.joints[25] - body.joints[27])
    assert leg == pytest.approx(0.85, rel=1e-3)
    joints, conf = to_canonical("mediapipe33", body.joints, body.confidence)
    assert joints[15, 1] > joints[0, 1] > joints[7, 1]  # head above pelvis above ankle: y up
    assert est.all_counters()["poses"] == 10
    # a repeated timestamp is skipped; time going back by seconds (a restarted file) starts over
    assert est.process(frame, 9 * 33_333) == []
    assert est.all_counters()["rejected_time"] == 1
    assert len(est.process(frame, 3_000_000)) == 1
    again = est.process(frame[:, :, :1].copy(), 0)  # and a mono frame is accepted
    assert len(again) == 1 and again[0].body_id != body.body_id
    assert est.all_counters()["restarts"] == 1


def test_yolo_backend_needs_a_model():
    with pytest.raises(ValueError, match="model_path"):
        PoseEstimator(backend="yolo-pose")
    with pytest.raises(ValueError, match="unknown key"):
        PoseEstimator(backend="mediapipe", model_compexity=1)
