"""A user-supplied RTMPose ONNX model (MMPose's RTMPose body models, 17 COCO keypoints) as the
webcam pose backend.

RTMPose is top-down: it estimates one person inside a box. The box is the person followed in the
previous frame (its keypoints' box, moved by its predicted motion and padded by ``PADDING`` as
MMPose pads a detector's box), or, while nobody is followed, the whole frame (every
``find_period_s``). No person detector is needed for a walkway with one patient; a second person
is not looked for while one is followed.

Format (MMPose/mmdeploy ``rtmpose-*_simcc-*_256x192`` exports, as rtmlib runs them): input
``input`` (1, 3, H, W) float32, the box's region warped to W x H (aspect kept: the box is widened
or heightened to W:H first; outside the image is 0), RGB, minus mean (123.675, 116.28, 103.53),
divided by std (58.395, 57.12, 57.375) (MMPose's PoseDataPreprocessor, bgr_to_rgb). Outputs
``simcc_x`` (1, 17, W * r) and ``simcc_y`` (1, 17, H * r): per keypoint a 1-D classification over
sub-pixel bins (SimCC; split ratio r = 2 in the released models, read here from the shapes). A
keypoint is at (argmax x / r, argmax y / r) in the input, its score the smaller of the two
maxima (MMPose's ``get_simcc_maximum``), and is mapped back to the frame by undoing the warp.

The 17 COCO keypoints become MediaPipe's 33 exactly as for YOLO-pose (``pose.yolo``), and the
body is placed the same way (2D keypoints: flat in the image plane at the depth its leg length
implies). The model runs through ``inference.models.backends`` (onnxruntime, TensorRT). No RTMPose
weights can be downloaded here: this module is tested with an ONNX graph that has RTMPose's
input and output names and shapes and emits known SimCC peaks.
"""

from __future__ import annotations

import logging

import numpy as np

from inference.pose.people import PersonObservation
from inference.pose.yolo import N_COCO, observation_from_coco
from streams.extras import require

cv2 = require("cv2", "RTMPose")

log = logging.getLogger(__name__)

MEAN_RGB = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD_RGB = np.array([58.395, 57.12, 57.375], dtype=np.float32)
PADDING = 1.25  # MMPose's top-down box padding
DEFAULT_INPUT_WH = (192, 256)


def box_center_scale(box: tuple[float, float, float, float], aspect_wh: float,
                     padding: float = PADDING) -> tuple[np.ndarray, np.ndarray]:
    """(centre (2,), size (w, h)) of the region the model sees: the box padded, then widened
    or heightened to the model's aspect ratio (w / h)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    w, h = max(x1 - x0, 1.0) * padding, max(y1 - y0, 1.0) * padding
    if w > h * aspect_wh:
        h = w / aspect_wh
    else:
        w = h * aspect_wh
    return center, np.array([w, h])


def crop_input(image_bgr: np.ndarray, center: np.ndarray, size: np.ndarray,
               input_wh: tuple[int, int]) -> np.ndarray:
    """The (1, 3, H, W) float32 input: the region ``center`` +- ``size`` / 2 of the frame
    warped to W x H, RGB, normalised."""
    iw, ih = input_wh
    sx, sy = iw / size[0], ih / size[1]
    m = np.array([[sx, 0.0, iw / 2.0 - sx * center[0]],
                  [0.0, sy, ih / 2.0 - sy * center[1]]])
    crop = cv2.warpAffine(image_bgr, m, (iw, ih), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    rgb = (crop[:, :, ::-1].astype(np.float32) - MEAN_RGB) / STD_RGB
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, center: np.ndarray, size: np.ndarray,
                 input_wh: tuple[int, int]) -> np.ndarray:
    """SimCC outputs (1, K, W r) and (1, K, H r) -> keypoints (K, 3): x, y in frame pixels and
    the score (the smaller of the two maxima; 0 where a maximum is not positive)."""
    sx, sy = np.asarray(simcc_x, np.float32), np.asarray(simcc_y, np.float32)
    if sx.ndim == 3:
        sx, sy = sx[0], sy[0]
    iw, ih = input_wh
    rx, ry = sx.shape[-1] / iw, sy.shape[-1] / ih
    u = np.argmax(sx, axis=1) / rx
    v = np.argmax(sy, axis=1) / ry
    score = np.minimum(sx.max(axis=1), sy.max(axis=1))
    out = np.empty((sx.shape[0], 3))
    out[:, 0] = u / iw * size[0] + center[0] - size[0] / 2.0
    out[:, 1] = v / ih * size[1] + center[1] - size[1] / 2.0
    out[:, 2] = np.where(score > 0, score, 0.0)
    return out


class RTMPose:
    """Runs the model on one box of a frame; the person there in the MediaPipe layout."""

    def __init__(self, model_path: str, *, backend: str = "onnxruntime", device: str = "cpu",
                 input_wh: tuple[int, int] | None = None, min_person_score: float = 0.4,
                 min_keypoint_score: float = 0.25):
        from inference.models.backends import make_backend

        self.input_wh = tuple(int(v) for v in (input_wh or DEFAULT_INPUT_WH))
        if len(self.input_wh) != 2 or min(self.input_wh) < 8:
            raise ValueError(f"rtmpose input size {input_wh}: expected (width, height)")
        iw, ih = self.input_wh
        shape = (1, 3, ih, iw)
        self.backend = make_backend(backend, onnx_path=model_path, device=device,
                                    trt_profile={"input": (shape, shape, shape)})
        names = set(self.backend.output_names)
        if len(self.backend.input_names) != 1 or not {"simcc_x", "simcc_y"} <= names:
            raise ValueError(f"{model_path}: an RTMPose (SimCC) model has one image input and "
                             f"outputs simcc_x, simcc_y; got inputs {self.backend.input_names}, "
                             f"outputs {self.backend.output_names}")
        self.min_person_score = min_person_score
        self.min_keypoint_score = min_keypoint_score
        self.runs = 0

    def estimate(self, image_bgr: np.ndarray, box: tuple[float, float, float, float]
                 ) -> PersonObservation | None:
        """The person in ``box`` (x0, y0, x1, y1 frame px), or None when the model is not sure
        there is one (mean keypoint score below ``min_person_score``)."""
        iw, ih = self.input_wh
        center, size = box_center_scale(box, iw / ih)
        x = crop_input(image_bgr, center, size, self.input_wh)
        out = self.backend.run({self.backend.input_names[0]: x})
        self.runs += 1
        sx, sy = out["simcc_x"], out["simcc_y"]
        if sx.ndim != 3 or sy.ndim != 3 or sx.shape[:2] != (1, N_COCO) or \
                sy.shape[:2] != (1, N_COCO):
            raise ValueError(f"rtmpose outputs {sx.shape}, {sy.shape}: expected (1, {N_COCO}, "
                             f"{iw} r) and (1, {N_COCO}, {ih} r) (a 17-keypoint COCO body model)")
        kp = decode_simcc(sx, sy, center, size, self.input_wh)
        score = float(np.clip(kp[:, 2], 0, 1).mean())
        if score < self.min_person_score:
            return None
        kp[:, 2] = np.clip(kp[:, 2], 0.0, 1.0)  # SimCC maxima are not probabilities
        return observation_from_coco(kp, score, self.min_keypoint_score)
