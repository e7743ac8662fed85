"""A user-supplied YOLOv8-pose ONNX model as the webcam pose backend.

Format (Ultralytics ``yolo export model=yolov8n-pose.pt format=onnx``): input ``images``
(1, 3, S, S) float32 RGB in [0, 1], the frame letterboxed into S x S (aspect kept, grey 114
padding split evenly); output (1, 56, N) (some exports give (1, N, 56)): per anchor the box
centre x, centre y, width, height in input pixels, the person score (already a sigmoid), and 17
COCO keypoints as (x, y, visibility score). Post-processing keeps anchors above a score, removes
overlapping boxes (greedy NMS on IoU) and maps points back to the frame by undoing the letterbox.

COCO has 17 keypoints; the pipeline speaks MediaPipe's 33. The mapping below says where each
MediaPipe point comes from. Points COCO does not have (eye corners, mouth, fingers, heels, toes)
are placed on their nearest COCO keypoint with its score times ``SUBSTITUTE_CONFIDENCE``: the
canonical foot then sits at the ankle, which is how 2D gait analysis times events anyway, and
says by its lower confidence that it was not measured.

The model runs through the project's model backends (``inference.models.backends``: onnxruntime by
default, TensorRT on a GPU box). No YOLO weights can be downloaded here, so this module is tested
on constructed model outputs (and an ONNX graph that emits them), not on a real network.
"""

from __future__ import annotations

import logging

import numpy as np

from inference.pose.people import PersonObservation
from streams.extras import require

cv2 = require("cv2", "YOLO-pose")

log = logging.getLogger(__name__)

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
N_COCO = len(COCO_KEYPOINTS)
SUBSTITUTE_CONFIDENCE = 0.6
LETTERBOX_GREY = 114

# MediaPipe point -> (COCO keypoint, measured?). Order: streams.skeletons.MEDIAPIPE_JOINTS.
MEDIAPIPE_FROM_COCO: tuple[tuple[str, str, bool], ...] = (
    ("nose", "nose", True),
    ("left_eye_inner", "left_eye", False),
    ("left_eye", "left_eye", True),
    ("left_eye_outer", "left_eye", False),
    ("right_eye_inner", "right_eye", False),
    ("right_eye", "right_eye", True),
    ("right_eye_outer", "right_eye", False),
    ("left_ear", "left_ear", True),
    ("right_ear", "right_ear", True),
    ("mouth_left", "nose", False),
    ("mouth_right", "nose", False),
    ("left_shoulder", "left_shoulder", True),
    ("right_shoulder", "right_shoulder", True),
    ("left_elbow", "left_elbow", True),
    ("right_elbow", "right_elbow", True),
    ("left_wrist", "left_wrist", True),
    ("right_wrist", "right_wrist", True),
    ("left_pinky", "left_wrist", False),
    ("right_pinky", "right_wrist", False),
    ("left_index", "left_wrist", False),
    ("right_index", "right_wrist", False),
    ("left_thumb", "left_wrist", False),
    ("right_thumb", "right_wrist", False),
    ("left_hip", "left_hip", True),
    ("right_hip", "right_hip", True),
    ("left_knee", "left_knee", True),
    ("right_knee", "right_knee", True),
    ("left_ankle", "left_ankle", True),
    ("right_ankle", "right_ankle", True),
    ("left_heel", "left_ankle", False),
    ("right_heel", "right_ankle", False),
    ("left_foot_index", "left_ankle", False),
    ("right_foot_index", "right_ankle", False),
)
_SRC = np.array([COCO_KEYPOINTS.index(c) for _, c, _ in MEDIAPIPE_FROM_COCO])
_FACTOR = np.array([1.0 if m else SUBSTITUTE_CONFIDENCE for _, _, m in MEDIAPIPE_FROM_COCO],
                   dtype=np.float32)


def letterbox(image_bgr: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """(input tensor (1, 3, size, size) float32 RGB in [0, 1], scale, (pad x, pad y)): the
    frame resized by ``scale`` with its aspect kept and centred on grey padding."""
    h, w = image_bgr.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    px, py = (size - nw) / 2.0, (size - nh) / 2.0
    canvas = np.full((size, size, 3), LETTERBOX_GREY, dtype=np.uint8)
    x0, y0 = int(round(px - 0.1)), int(round(py - 0.1))
    canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image_bgr, (nw, nh),
                                                interpolation=cv2.INTER_LINEAR)
    rgb = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb), r, (float(x0), float(y0))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression on (N, 4) x0, y0, x1, y1 boxes; kept indices, best first."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if not order:
            break
        rest = np.array(order)
        xx0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = [int(k) for k, v in zip(rest, iou) if v <= iou_threshold]
    return keep


def decode(output: np.ndarray, scale: float, pad: tuple[float, float], min_score: float,
           iou_threshold: float = 0.5, max_people: int = 20
           ) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """YOLOv8-pose output -> [(box x0 y0 x1 y1, score, keypoints (17, 3) x y score)] in frame
    pixels, best first."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ValueError(f"yolo-pose output batch {out.shape[0]}, expected 1")
        out = out[0]
    width = 5 + 3 * N_COCO
    if out.ndim != 2 or width not in out.shape:
        raise ValueError(f"yolo-pose output shape {np.shape(output)}: expected (1, {width}, N) "
                         f"or (1, N, {width})")
    if out.shape[0] == width and out.shape[1] != width:
        out = out.T
    scores = out[:, 4]
    sel = np.flatnonzero(scores >= min_score)
    if sel.size == 0:
        return []
    cand = out[sel]
    cx, cy, bw, bh = cand[:, 0], cand[:, 1], cand[:, 2], cand[:, 3]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    keep = nms(boxes, cand[:, 4], iou_threshold)[:max_people]
    px, py = pad
    people = []
    for k in keep:
        box = (boxes[k] - [px, py, px, py]) / scale
        kp = cand[k, 5:].reshape(N_COCO, 3).copy()
        kp[:, 0] = (kp[:, 0] - px) / scale
        kp[:, 1] = (kp[:, 1] - py) / scale
        people.append((box.astype(np.float64), float(cand[k, 4]), kp))
    return people


def mediapipe_from_coco(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO (17, 3) x, y, score -> MediaPipe 33 image points (33, 2) and visibilities (33,)."""
    xy = keypoints[_SRC, :2].astype(np.float64)
    vis = np.clip(keypoints[_SRC, 2], 0.0, 1.0).astype(np.float32) * _FACTOR
    return xy, vis


def observation_from_coco(keypoints: np.ndarray, score: float, min_keypoint_score: float
                          ) -> PersonObservation:
    """One person's COCO keypoints (17, 3) -> a PersonObservation in the MediaPipe layout;
    keypoints scored below ``min_keypoint_score`` are not visible (0)."""
    xy, vis = mediapipe_from_coco(keypoints)
    vis = np.where(vis >= min_keypoint_score * _FACTOR, vis, 0.0).astype(np.float32)
    return PersonObservation(image_xy=xy, visibility=vis, world=None, score=score)


class YoloPose:
    """Runs the model on one frame and returns every person found, in the MediaPipe layout."""

    def __init__(self, model_path: str, *, backend: str = "onnxruntime", device: str = "cpu",
                 input_size: int = 640, min_person_score: float = 0.4,
                 min_keypoint_score: float = 0.25):
        from inference.models.backends import make_backend

        self.size = int(input_size)
        shape = (1, 3, self.size, self.size)
        self.backend = make_backend(backend, onnx_path=model_path, device=device,
                                    trt_profile={"images": (shape, shape, shape)})
        if len(self.backend.input_names) != 1 or not self.backend.output_names:
            raise ValueError(f"{model_path}: a YOLOv8-pose model has one image input, got inputs "
                             f"{self.backend.input_names}")
        self.min_person_score = min_person_score
        self.min_keypoint_score = min_keypoint_score

    def detect(self, image_bgr: np.ndarray) -> list[PersonObservation]:
        x, scale, pad = letterbox(image_bgr, self.size)
        out = self.backend.run({self.backend.input_names[0]: x})[self.backend.output_names[0]]
        return [observation_from_coco(kp, score, self.min_keypoint_score)
                for _box, score, kp in decode(out, scale, pad, self.min_person_score)]
