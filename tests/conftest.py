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


def stop_process(p: subprocess.Popen, wait_s: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if it has not ended within ``wait_s``."""
    p.terminate()
    try:
        p.wait(wait_s)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random diffusion denoiser exported like the shipped one (vocabulary of the scoring
    prompt and two more prompts), with stats from walker clips."""
    import numpy as np
    import torch

    from inference.models.motion_diffusion import features as hml3d
    from inference.models.motion_diffusion.config import (SCORE_PROMPT, DenoiserConfig,
                                                          build_vocabulary, save_config)
    from inference.models.motion_diffusion.model import MotionDenoiser, export_onnx
    from tests._walker import walker

    vocabulary = build_vocabulary([SCORE_PROMPT, "walk perturbed", "run"])
    d = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(1)
    cfg = DenoiserConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, n_words=len(vocabulary))
    m = MotionDenoiser(cfg)
    with torch.no_grad():
        for p in m.parameters():  # distinct values everywhere, like trained weights
            p.add_(torch.randn_like(p) * 0.05)
    export_onnx(m, d / "motion_diffusion.onnx")
    save_config(cfg, d / "motion_diffusion.json", vocabulary)
    data = np.concatenate([hml3d.motion_features(walker(np.arange(0, 3, 0.05), speed=s)).data
                           for s in (0.9, 1.3)])
    hml3d.Normalizer.fit(data).save(d / "motion_diffusion_stats.npz")
    return d
