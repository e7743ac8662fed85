"""Optional dependencies: import one where it is needed, or say which extra of the package
brings it. The base install (numpy, pyzmq, msgpack, scipy, matplotlib, ezc3d, onnxruntime) runs
every command it can; the rest name the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

# top-level module -> how to get it
INSTALL = {
    "cv2": 'pip install "gaitstream[webcam]"',
    "mediapipe": 'pip install "gaitstream[webcam]"',
    "torch": 'pip install "gaitstream[train]"',
    "onnx": 'pip install "gaitstream[train]"',
    "pyk4a": 'pip install "gaitstream[kinect]" (after the Azure Kinect SDK, capture/kinect/KINECT.md)',
    "paho": 'pip install "gaitstream[sinks]"',
    "psycopg": 'pip install "gaitstream[sinks]"',
    "pyarrow": 'pip install "gaitstream[sinks]"',
    "tensorrt": "NVIDIA's TensorRT wheel for this GPU (README, Models)",
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says what needs it and how to get
    it."""


def install_hint(module: str) -> str:
    return INSTALL.get(module.split(".")[0], f"pip install {module.split('.')[0]}")


def require(module: str, needed_for: str) -> ModuleType:
    """``module``, imported; :class:`MissingExtra` naming ``needed_for`` and the extra when it
    is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(f"{needed_for} needs {module.split('.')[0]}: {install_hint(module)}"
                           ) from e


class _Deferred:
    """A module imported on first use (see :func:`deferred`)."""

    def __init__(self, module: str, needed_for: str):
        self._name, self._needed_for = module, needed_for
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = require(self._name, self._needed_for)
        return getattr(self._module, attr)


def deferred(module: str, needed_for: str) -> ModuleType:
    """``module`` as a name bound at import time but imported when first used: a command whose
    module needs it for some of its work still shows its ``--help`` and does the rest."""
    return _Deferred(module, needed_for)  # type: ignore[return-value]
