"""A FAKE ``pyk4a`` for tests: a vendor-boundary fake, never installed, never shipped.

The Azure Kinect (and pyk4a, which needs its Sensor SDK) cannot exist on the development or CI
machines. This package stands exactly where the real pyk4a does, so that capture/kinect.py's
_Pyk4aCamera / _Pyk4aRecording / Pyk4aBackend run unchanged above it: the tests put
``tests/fakes`` first on sys.path (tests/test_kinect_pyk4a.py only) and ``import pyk4a`` finds
this.

Names, signatures and behaviour follow pyk4a's own Python layer (etiennedub/pyk4a 1.5:
pyk4a/pyk4a.py, calibration.py, capture.py, config.py, errors.py, playback.py, and pyk4a.cpp for
the capsule names and what a capsule points at; ``Calibration.get_extrinsic_parameters`` and
``PyK4APlayback.get_next_imu_sample`` from the releases that added them, pyk4a PR #192 and the
1.5 playback). What the C extension (k4a_module over libk4a) would do is simulated by
``pyk4a._fake_hardware``, which the tests script; that module is not part of the real pyk4a.
Only what capture/kinect.py uses is here (no colour controls, no seeking).
"""

from .calibration import Calibration, CalibrationType
from .capture import PyK4ACapture
from .config import FPS, ColorResolution, Config, DepthMode, ImageFormat, WiredSyncMode
from .errors import K4AException, K4ATimeoutException
from .playback import PyK4APlayback
from .pyk4a import ImuSample, PyK4A

__all__ = [
    "Calibration", "CalibrationType", "ColorResolution", "Config", "DepthMode", "FPS",
    "ImageFormat", "ImuSample", "K4AException", "K4ATimeoutException", "PyK4A", "PyK4ACapture",
    "PyK4APlayback", "WiredSyncMode",
]
