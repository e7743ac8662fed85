"""The TensorRT backend's engine cache, above a fake ``tensorrt`` module.

This is a vendor-boundary fake: TensorRT needs an NVIDIA GPU and NVIDIA's wheel, neither of
which exists on the development or CI machines. ``FakeTensorRT`` has the TensorRT 10 Python
names the backend calls (``Builder.create_network``, ``OnnxParser.parse_from_file``,
``IBuilderConfig.set_memory_pool_limit`` / ``set_flag`` / ``add_optimization_profile``,
``IOptimizationProfile.set_shape``, ``build_serialized_network``,
``Runtime.deserialize_cuda_engine`` returning None on a bad blob) and records what was built;
the cache logic in ``inference.models.backends`` (keys, reuse, atomic writes, rebuild of a bad file,
the version check) runs unchanged. Running an engine is not faked: that needs the GPU.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from inference.models.backends import BackendError, TensorRTBackend, load_or_build_engine
from inference.models.gait_transformer.runtime import DEFAULT_ONNX, tensorrt_profile

MAGIC = b"FAKE-TRT-ENGINE\n"


class FakeTensorRT(types.ModuleType):
    def __init__(self, version: str = "10.3.0", fp16_flag: bool = True):
        super().__init__("tensorrt")
        self.__version__ = version
        self.builds: list[dict] = []  # one entry per build_serialized_network call
        fake = self

        class Logger:
            WARNING = 2

            def __init__(self, severity: int):
                self.severity = severity

        class MemoryPoolType:
            WORKSPACE = "workspace"

        class BuilderFlag:
            pass

        if fp16_flag:  # TensorRT 11 removed it (weak typing)
            BuilderFlag.FP16 = "fp16"

        class Network:
            def __init__(self, flags: int):
                self.flags = flags
                self.parsed: str | None = None

        class OnnxParser:
            num_errors = 0

            def __init__(self, network: Network, logger: Logger):
                self.network = network

            def parse_from_file(self, path: str) -> bool:
                self.network.parsed = Path(path).name
                return Path(path).is_file()

            def get_error(self, i: int) -> str:
                return "no such file"

        class Profile:
            def __init__(self):
                self.shapes: dict[str, list] = {}

            def set_shape(self, name, lo, opt, hi) -> None:
                self.shapes[name] = [list(lo), list(opt), list(hi)]

        class Config:
            def __init__(self):
                self.flags: list[str] = []
                self.pools: dict[str, int] = {}
                self.profiles: list[Profile] = []

            def set_memory_pool_limit(self, pool: str, size: int) -> None:
                self.pools[pool] = size

            def set_flag(self, flag: str) -> None:
                self.flags.append(flag)

            def add_optimization_profile(self, p: Profile) -> int:
                self.profiles.append(p)
                return len(self.profiles) - 1

        class Builder:
            def __init__(self, logger: Logger):
                pass

            def create_network(self, flags: int = 0) -> Network:
                return Network(flags)

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: Network, config: Config) -> bytes:
                rec = {"network_flags": network.flags, "onnx": network.parsed,
                       "flags": config.flags, "pools": config.pools,
                       "profiles": [p.shapes for p in config.profiles]}
                fake.builds.append(rec)
                return MAGIC + json.dumps(rec).encode()

        class Engine:
            def __init__(self, rec: dict):
                self.rec = rec

        class Runtime:
            def __init__(self, logger: Logger):
                pass

            def deserialize_cuda_engine(self, blob: bytes):
                if not bytes(blob).startswith(MAGIC):
                    return None  # as TensorRT does for a blob it cannot read
                return Engine(json.loads(bytes(blob)[len(MAGIC):]))

        self.Logger, self.MemoryPoolType, self.BuilderFlag = Logger, MemoryPoolType, BuilderFlag
        self.Builder, self.OnnxParser, self.Runtime = Builder, OnnxParser, Runtime


PROFILE = tensorrt_profile(90, 64)


def load(trt: FakeTensorRT, cache: Path, gpu: str = "NVIDIA H100 80GB HBM3", **kw):
    return load_or_build_engine(trt, trt.Logger(trt.Logger.WARNING), DEFAULT_ONNX, PROFILE,
                                gpu_name=gpu, cache_dir=cache, **kw)


def test_engine_is_built_once_then_loaded_from_the_cache(tmp_path):
    trt = FakeTensorRT()
    _, engine, path, fp16 = load(trt, tmp_path)
    assert len(trt.builds) == 1 and path.parent == tmp_path and path.is_file()
    assert fp16 and engine.rec["flags"] == ["fp16"] and engine.rec["network_flags"] == 0
    assert engine.rec["onnx"] == DEFAULT_ONNX.name
    assert engine.rec["pools"] == {"workspace": 1 << 30}
    # one profile: any batch 1..64, tuned for a small one
    (shapes,) = engine.rec["profiles"]
    assert shapes["x"] == [[1, 90, 88], [4, 90, 88], [64, 90, 88]]
    assert shapes["valid"] == [[1, 90], [4, 90], [64, 90]]
    assert shapes["height"] == [[1, 1], [4, 1], [64, 1]]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left

    _, again, path2, _ = load(trt, tmp_path)  # a second worker, or a restart
    assert len(trt.builds) == 1 and path2 == path and again.rec == engine.rec


def test_a_cached_engine_that_does_not_deserialize_is_rebuilt(tmp_path):
    trt = FakeTensorRT()
    _, _, path, _ = load(trt, tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3][::-1])  # truncated / garbage
    _, engine, path2, _ = load(trt, tmp_path)
    assert path2 == path and len(trt.builds) == 2
    assert path.read_bytes() == good and engine.rec["flags"] == ["fp16"]
    load(trt, tmp_path)
    assert len(trt.builds) == 2  # the rebuilt file is used from then on


def test_cache_key_follows_gpu_and_tensorrt_version(tmp_path):
    trt = FakeTensorRT("10.3.0")
    _, _, h100, _ = load(trt, tmp_path, gpu="NVIDIA H100 80GB HBM3")
    _, _, a2, _ = load(trt, tmp_path, gpu="NVIDIA A2")
    newer = FakeTensorRT("10.4.0")
    _, _, v104, _ = load(newer, tmp_path, gpu="NVIDIA A2")
    _, _, fp32, _ = load(newer, tmp_path, gpu="NVIDIA A2", fp16=False)
    assert len({h100, a2, v104, fp32}) == 4
    assert len(trt.builds) == 2 and len(newer.builds) == 2
    assert "NVIDIA-A2" in a2.name and "trt10.4.0" in v104.name
    assert newer.builds[-1]["flags"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (h100, a2, v104, fp32))


def test_tensorrt_without_the_fp16_flag_builds_fp32(tmp_path, caplog):
    trt = FakeTensorRT("11.0.0", fp16_flag=False)
    _, engine, path, fp16 = load(trt, tmp_path)
    assert not fp16 and engine.rec["flags"] == []
    assert "no FP16 builder flag" in caplog.text


@pytest.mark.parametrize("version", ["8.6.1", "9.3.0.post12.dev1"])
def test_tensorrt_before_10_is_refused_with_a_clear_message(version, tmp_path, monkeypatch):
    trt = FakeTensorRT(version)
    with pytest.raises(BackendError, match=rf"TensorRT {version} is too old.*10 or newer"):
        load(trt, tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    with pytest.raises(BackendError, match="too old"):  # before it looks for a GPU
        TensorRTBackend(DEFAULT_ONNX, PROFILE, cache_dir=tmp_path)
    assert trt.builds == [] and not any(tmp_path.iterdir())
