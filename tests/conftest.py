import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout_s: float = 15.0, step_s: float = 0.02):
    """Poll ``cond`` until it returns something truthy, and return that; after ``timeout_s``
    return whatever it returns then."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if v := cond():
            return v
        time.sleep(step_s)
    return cond()


def gaitstream(*args: str, **popen_kw) -> subprocess.Popen:
    """``gaitstream ARGS`` (``python -m deploy.cli``) as a child process run from the repo."""
    return subprocess.Popen([sys.executable, "-m", "deploy.cli", *args], cwd=REPO, **popen_kw)


@pytest.fixture
def endpoint():
    """A fresh loopback TCP endpoint."""
    return lambda: f"tcp://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder missing: {SHARED_DATA} (CI runs with ../shared beside "
                    "the clone)")
    return SHARED_DATA
