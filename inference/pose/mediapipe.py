"""MediaPipe Pose (legacy ``mp.solutions.pose``) made multi-person, top-down.

The legacy solution follows a single person, whichever its detector liked best, and on a wide
frame with small people it often finds nobody (its detector sees the frame letterboxed to
224 x 224). So it is used as a *single-person model on regions*:

* **finding people** (``discover``): a static-image Pose runs on overlapping square tiles that
  cover the frame (a square tile is what the detector sees without letterboxing); after each find
  the person's box is greyed out and the tile is run again, to find the next person. People
  already followed are greyed out first. This is costly (a few model runs), so the caller does it
  only while it looks for someone.
* **following a person** (``track``): a video-mode Pose per followed person runs on a square crop
  centred where that person is expected; the crop follows the person, so MediaPipe's own
  frame-to-frame tracking stays valid inside it, and another person outside the crop cannot
  capture it. Whether the result really is the same person is decided by the caller's gate.

Landmark smoothing is off: the legacy graph assumes 30 fps timestamps for its filters, and the
project's algorithms take real timestamps instead.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from inference.pose.people import PersonObservation
from streams.extras import require
from streams.node import silence_native_stderr

cv2 = require("cv2", "MediaPipe pose")

log = logging.getLogger(__name__)

MASK_GREY = 127


def square_tiles(width: int, height: int, min_overlap: float = 0.25) -> list[tuple[int, int, int]]:
    """(x0, y0, side) of square tiles of side min(width, height) covering the image, neighbours
    overlapping by at least ``min_overlap`` of a tile."""
    side = min(width, height)
    long_ = max(width, height)
    if long_ <= side * 1.15:  # nearly square: one tile, the detector letterboxes it a little
        return [(0, 0, max(width, height))]
    stride = side * (1.0 - min_overlap)
    n = int(math.ceil((long_ - side) / stride)) + 1
    starts = np.linspace(0, long_ - side, n).round().astype(int)
    if width >= height:
        return [(int(s), 0, side) for s in starts]
    return [(0, int(s), side) for s in starts]


def crop_square(image: np.ndarray, cx: float, cy: float, side: float
                ) -> tuple[np.ndarray, int, int, int]:
    """The square of ``side`` px centred at (cx, cy), padded with black where it leaves the image.
    Returns (crop, x0, y0, side) with (x0, y0) the crop's top-left corner in the image."""
    s = int(round(side))
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    h, w = image.shape[:2]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
    if ix0 == x0 and iy0 == y0 and ix1 == x0 + s and iy1 == y0 + s:
        return image[y0:y0 + s, x0:x0 + s], x0, y0, s
    out = np.zeros((s, s, image.shape[2]), dtype=image.dtype)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = image[iy0:iy1, ix0:ix1]
    return out, x0, y0, s


def grey_out(image: np.ndarray, box: tuple[float, float, float, float], grow: float = 0.15
             ) -> None:
    """Paint a person's box (grown by ``grow`` of its size) grey, in place."""
    x0, y0, x1, y1 = box
    dx, dy = grow * (x1 - x0), grow * (y1 - y0)
    h, w = image.shape[:2]
    xa, ya = max(int(x0 - dx), 0), max(int(y0 - dy), 0)
    xb, yb = min(int(x1 + dx) + 1, w), min(int(y1 + dy) + 1, h)
    if xb > xa and yb > ya:
        image[ya:yb, xa:xb] = MASK_GREY


def _observation(result, x0: int, y0: int, side_x: int, side_y: int) -> PersonObservation | None:
    if result.pose_landmarks is None or result.pose_world_landmarks is None:
        return None
    lm = result.pose_landmarks.landmark
    xy = np.array([[p.x * side_x + x0, p.y * side_y + y0] for p in lm], dtype=np.float64)
    vis = np.clip(np.array([p.visibility for p in lm], dtype=np.float32), 0.0, 1.0)
    world = np.array([[p.x, p.y, p.z] for p in result.pose_world_landmarks.landmark],
                     dtype=np.float64)
    return PersonObservation(image_xy=xy, visibility=vis, world=world,
                             score=float(np.mean(vis)))


class MediaPipePeople:
    """Finds and follows people with MediaPipe Pose; one video-mode graph per followed person."""

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, people_per_tile: int = 2):
        silence_native_stderr()  # its graphs log to the console on every start otherwise
        mp = require("mediapipe", "MediaPipe pose")
        self._pose_cls = mp.solutions.pose.Pose
        self._opts = dict(model_complexity=model_complexity, smooth_landmarks=False,
                          enable_segmentation=False,
                          min_detection_confidence=min_detection_confidence,
                          min_tracking_confidence=min_tracking_confidence)
        self._finder = self._pose_cls(static_image_mode=True, **self._opts)
        self._followers: dict[int, object] = {}
        self._spare: list[object] = []  # graphs of people no longer followed, reset, for reuse
        self.people_per_tile = people_per_tile
        self.model_runs = 0

    def discover(self, image_bgr: np.ndarray,
                 exclude: list[tuple[float, float, float, float]]) -> list[PersonObservation]:
        """People visible in the frame outside the ``exclude`` boxes (duplicates across tiles
        merged, the more visible kept)."""
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        for box in exclude:
            grey_out(rgb, box)
        found: list[PersonObservation] = []
        for tx, ty, side in square_tiles(w, h):
            tile = np.ascontiguousarray(rgb[ty:ty + side, tx:tx + side])
            th, tw = tile.shape[:2]
            for _ in range(self.people_per_tile):
                self.model_runs += 1
                obs = _observation(self._finder.process(tile), tx, ty, tw, th)
                if obs is None:
                    break
                found.append(obs)
                x0, y0, x1, y1 = obs.box
                grey_out(tile, (x0 - tx, y0 - ty, x1 - tx, y1 - ty))
        return _merge_duplicates(found)

    def track(self, image_bgr: np.ndarray, cid: int, roi: tuple[float, float, float]
              ) -> PersonObservation | None:
        """Person ``cid`` within the square ``roi`` (centre x, centre y, side)."""
        crop, x0, y0, side = crop_square(image_bgr, *roi)
        graph = self._followers.get(cid)
        if graph is None:
            graph = self._spare.pop() if self._spare else self._pose_cls(
                static_image_mode=False, **self._opts)
            self._followers[cid] = graph
        self.model_runs += 1
        return _observation(graph.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)),
                            x0, y0, side, side)

    def followed_ids(self) -> list[int]:
        return list(self._followers)

    def reset(self, cid: int) -> None:
        """Forget what person ``cid``'s graph was tracking (after a rejected result)."""
        graph = self._followers.get(cid)
        if graph is not None:
            graph.reset()

    def release(self, cid: int) -> None:
        graph = self._followers.pop(cid, None)
        if graph is not None:
            graph.reset()
            self._spare.append(graph)

    def close(self) -> None:
        for g in [self._finder, *self._followers.values(), *self._spare]:
            g.close()
        self._followers.clear()
        self._spare.clear()


def _merge_duplicates(found: list[PersonObservation]) -> list[PersonObservation]:
    kept: list[PersonObservation] = []
    for obs in sorted(found, key=lambda o: -o.score):
        if all(np.linalg.norm(obs.hip_px - k.hip_px) > 0.5 * min(obs.leg_px, k.leg_px)
               for k in kept):
            kept.append(obs)
    return kept
