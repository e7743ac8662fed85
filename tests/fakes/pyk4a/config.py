"""pyk4a.config: the k4a enums (same names and values as k4atypes.h) and the device Config."""

from __future__ import annotations

from enum import IntEnum


class FPS(IntEnum):  # k4a_fps_t
    FPS_5 = 0
    FPS_15 = 1
    FPS_30 = 2


class ImageFormat(IntEnum):  # k4a_image_format_t
    COLOR_MJPG = 0
    COLOR_NV12 = 1
    COLOR_YUY2 = 2
    COLOR_BGRA32 = 3
    DEPTH16 = 4
    IR16 = 5
    CUSTOM8 = 6
    CUSTOM16 = 7
    CUSTOM = 8


class DepthMode(IntEnum):  # k4a_depth_mode_t
    OFF = 0
    NFOV_2X2BINNED = 1
    NFOV_UNBINNED = 2
    WFOV_2X2BINNED = 3
    WFOV_UNBINNED = 4
    PASSIVE_IR = 5


class ColorResolution(IntEnum):  # k4a_color_resolution_t
    OFF = 0
    RES_720P = 1
    RES_1080P = 2
    RES_1440P = 3
    RES_1536P = 4
    RES_2160P = 5
    RES_3072P = 6


class WiredSyncMode(IntEnum):  # k4a_wired_sync_mode_t
    STANDALONE = 0
    MASTER = 1
    SUBORDINATE = 2


class Config:
    """pyk4a's defaults: colour 720p BGRA, NFOV unbinned depth, 30 fps, synchronised images."""

    def __init__(self, color_resolution: ColorResolution = ColorResolution.RES_720P,
                 color_format: ImageFormat = ImageFormat.COLOR_BGRA32,
                 depth_mode: DepthMode = DepthMode.NFOV_UNBINNED,
                 camera_fps: FPS = FPS.FPS_30,
                 synchronized_images_only: bool = True,
                 depth_delay_off_color_usec: int = 0,
                 wired_sync_mode: WiredSyncMode = WiredSyncMode.STANDALONE,
                 subordinate_delay_off_master_usec: int = 0,
                 disable_streaming_indicator: bool = False):
        self.color_resolution = color_resolution
        self.color_format = color_format
        self.depth_mode = depth_mode
        self.camera_fps = camera_fps
        self.synchronized_images_only = synchronized_images_only
        self.depth_delay_off_color_usec = depth_delay_off_color_usec
        self.wired_sync_mode = wired_sync_mode
        self.subordinate_delay_off_master_usec = subordinate_delay_off_master_usec
        self.disable_streaming_indicator = disable_streaming_indicator
