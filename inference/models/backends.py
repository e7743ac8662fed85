"""Model backends behind one interface: named numpy arrays in, named numpy arrays out.

Every learned model of gaitstream is trained with torch, exported to ONNX, and run through a
``Backend``:

- ``onnxruntime`` (default): CPU, or the CUDA execution provider when onnxruntime-gpu has it.
- ``torch``: the PyTorch module itself with its state dict, on CPU or CUDA (reference semantics,
  training-time checks, GPUs without TensorRT).
- ``tensorrt``: an engine built from the same ONNX file (FP16 by default), cached on disk per GPU
  name, TensorRT version, ONNX content and build settings, so an edge box builds it once.

The interface is deliberately tiny so that each model (gait transformer, diffusion scorer) shares
it: ``backend.run({"x": array, ...}) -> {"y": array, ...}`` with the ONNX graph's input and
output names. Backends never change the numbers they are given (no resampling, no
normalisation): that belongs to the model's own runtime module.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from streams.extras import require

log = logging.getLogger(__name__)

BACKENDS = ("onnxruntime", "torch", "tensorrt")


class BackendError(RuntimeError):
    """A backend cannot be created or cannot run the inputs it was given."""


class Backend(Protocol):
    name: str  # e.g. "onnxruntime[CPUExecutionProvider]"
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def _check_inputs(inputs: dict[str, np.ndarray], expected: Sequence[str]) -> None:
    missing = [n for n in expected if n not in inputs]
    extra = [n for n in inputs if n not in expected]
    if missing or extra:
        raise BackendError(f"inputs: missing {missing}, unexpected {extra}; the model takes "
                           f"{list(expected)}")


class OnnxRuntimeBackend:
    """onnxruntime InferenceSession; CPU unless ``device='cuda'`` and the CUDA EP is present."""

    def __init__(self, onnx_path: str | os.PathLike, *, device: str = "cpu",
                 threads: int | None = None, fixed_dims: dict[str, int] | None = None):
        import onnxruntime as ort

        available = ort.get_available_providers()
        if device == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise BackendError("onnxruntime has no CUDAExecutionProvider here (install "
                                   f"onnxruntime-gpu); available: {available}")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise BackendError(f"onnxruntime device {device!r}: expected 'cpu' or 'cuda'")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        for name, size in (fixed_dims or {}).items():
            # A symbolic dimension fixed at load: onnxruntime then folds the shape arithmetic
            # around it instead of running it on every call.
            opts.add_free_dimension_override_by_name(name, size)
        self.session = ort.InferenceSession(str(onnx_path), sess_options=opts,
                                            providers=providers)
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.name = f"onnxruntime[{self.session.get_providers()[0]}]"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_inputs(inputs, self.input_names)
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
        outs = self.session.run(list(self.output_names), feeds)
        return dict(zip(self.output_names, outs))


class TorchBackend:
    """A torch module whose ``forward`` takes the inputs positionally (in ``input_names`` order)
    and returns one tensor or a tuple in ``output_names`` order."""

    def __init__(self, module: Any, input_names: Sequence[str], output_names: Sequence[str], *,
                 device: str = "cpu"):
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch backend: CUDA requested but torch.cuda.is_available() is "
                               "False")
        self.torch = torch
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.name = f"torch[{self.device.type}]"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_inputs(inputs, self.input_names)
        torch = self.torch
        args = [torch.as_tensor(np.asarray(inputs[n], dtype=np.float32), device=self.device)
                for n in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {n: o.float().cpu().numpy() for n, o in zip(self.output_names, outs)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gaitstream" / "tensorrt"


def tensorrt_engine_key(gpu_name: str, trt_version: str, onnx_sha256: str, fp16: bool,
                        profile: dict[str, tuple[tuple[int, ...], ...]]) -> str:
    """File-name-safe cache key: an engine is only valid for the GPU model, TensorRT version,
    ONNX content and build settings it was built with."""
    settings = repr((fp16, sorted(profile.items()))).encode()
    gpu = "".join(c if c.isalnum() else "-" for c in gpu_name).strip("-")
    return (f"{gpu}_trt{trt_version}_{onnx_sha256[:16]}_"
            f"{hashlib.sha256(settings).hexdigest()[:8]}.engine")


MIN_TENSORRT_MAJOR = 10


def tensorrt_major(trt: Any) -> int:
    """The TensorRT major version, refusing what this backend was not written for: before 10,
    ``create_network(0)`` makes an implicit-batch network and int64 tensors do not exist."""
    version = str(getattr(trt, "__version__", ""))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise BackendError(f"tensorrt: cannot read the TensorRT version {version!r}") from None
    if major < MIN_TENSORRT_MAJOR:
        raise BackendError(f"tensorrt: TensorRT {version} is too old; the tensorrt backend needs "
                           f"TensorRT {MIN_TENSORRT_MAJOR} or newer (pip install 'tensorrt>=10' "
                           "from NVIDIA's index), or use the onnxruntime or torch backend")
    return major


def build_engine(trt: Any, logger: Any, onnx_path: Path, profile: dict, fp16: bool,
                 workspace_bytes: int) -> bytes:
    """A serialized engine for the ONNX file with one optimisation profile (TensorRT 10 API)."""
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"tensorrt: cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"tensorrt: engine build failed for {onnx_path}")
    return bytes(serialized)


def load_or_build_engine(trt: Any, logger: Any, onnx_path: str | os.PathLike, profile: dict,
                         *, gpu_name: str, fp16: bool = True,
                         cache_dir: str | os.PathLike | None = None,
                         workspace_bytes: int = 1 << 30) -> tuple[Any, Any, Path, bool]:
    """(runtime, engine, engine file, fp16) for the ONNX file on this GPU: the cached engine
    when one was built for this GPU, TensorRT version, ONNX content and settings and still
    deserializes, otherwise a fresh build, written to the cache atomically.

    A cached file that does not deserialize (truncated by a crash or a full disk, or written by
    a TensorRT build with the same version string) is rebuilt, not fatal: an edge box must come
    back on its own. TensorRT 11 removed the FP16 builder flag (weak typing); there the engine
    is built in FP32 from the same ONNX, said in the log and in the returned ``fp16``."""
    tensorrt_major(trt)
    onnx_path = Path(onnx_path)
    if fp16 and not hasattr(trt.BuilderFlag, "FP16"):
        log.warning("tensorrt %s has no FP16 builder flag (weak typing was removed); building "
                    "an FP32 engine", trt.__version__)
        fp16 = False
    key = tensorrt_engine_key(gpu_name, trt.__version__, _sha256(onnx_path), fp16,
                              {k: tuple(map(tuple, v)) for k, v in profile.items()})
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    engine_path = cache / key
    runtime = trt.Runtime(logger)
    if engine_path.exists():
        log.info("tensorrt: loading cached engine %s", engine_path)
        try:
            engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        except Exception as e:  # the bindings may raise instead of returning None
            log.warning("tensorrt: cached engine %s raised on load: %s", engine_path, e)
            engine = None
        if engine is not None:
            return runtime, engine, engine_path, fp16
        log.warning("tensorrt: cached engine %s does not deserialize; rebuilding it",
                    engine_path)
    log.info("tensorrt: building engine for %s on %s (fp16=%s); cached as %s", onnx_path.name,
             gpu_name, fp16, engine_path)
    blob = build_engine(trt, logger, onnx_path, profile, fp16, workspace_bytes)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = engine_path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(blob)
    os.replace(tmp, engine_path)  # atomic: two workers building at once never clash
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        raise BackendError(f"tensorrt: the engine just built for {onnx_path} does not "
                           "deserialize")
    return runtime, engine, engine_path, fp16


class TensorRTBackend:
    """TensorRT 10 engine built from an ONNX file, cached per GPU / TensorRT version / ONNX.

    ``profile`` gives (min, opt, max) shapes per input name for the dynamic axes (the batch).
    Device memory is handled through torch CUDA tensors, so no pycuda / cuda-python is needed.
    Written against the TensorRT 10 Python API (name-based I/O tensors, ``execute_async_v3``).
    The engine cache is tested above a fake ``tensorrt`` module; running an engine needs a GPU
    and is not exercised in this repository's CI.
    """

    def __init__(self, onnx_path: str | os.PathLike,
                 profile: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]], *,
                 fp16: bool = True, cache_dir: str | os.PathLike | None = None,
                 workspace_bytes: int = 1 << 30):
        try:
            import tensorrt as trt
        except ImportError as e:
            raise BackendError("the tensorrt backend needs the TensorRT Python package "
                               "(pip install tensorrt from NVIDIA's index on a GPU box) - "
                               f"import failed: {e}") from e
        tensorrt_major(trt)
        import torch

        if not torch.cuda.is_available():
            raise BackendError("the tensorrt backend needs a CUDA GPU (torch.cuda.is_available() "
                               "is False)")
        self.trt, self.torch = trt, torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        gpu = torch.cuda.get_device_name(0)
        self.runtime, self.engine, self.engine_path, fp16 = load_or_build_engine(
            trt, self.logger, onnx_path, profile, gpu_name=gpu, fp16=fp16, cache_dir=cache_dir,
            workspace_bytes=workspace_bytes)
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = tuple(n for n in names
                                 if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_names = tuple(n for n in names
                                  if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.name = f"tensorrt[{gpu}, fp16={fp16}]"
        # Its own stream: on the default stream TensorRT synchronises around every enqueue (it
        # warns so), and the engine would queue behind any other CUDA work of the process.
        self.stream = torch.cuda.Stream()
        self._lock = threading.Lock()  # one execution context: one run at a time

    def _torch_dtype(self, name: str) -> Any:
        trt, torch = self.trt, self.torch
        return {trt.float32: torch.float32, trt.float16: torch.float16,
                trt.int32: torch.int32, trt.int64: torch.int64,
                trt.bool: torch.bool}[self.engine.get_tensor_dtype(name)]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_inputs(inputs, self.input_names)
        torch = self.torch
        # Copies in, the engine and copies out all go on this backend's stream, in order.
        with self._lock, torch.cuda.stream(self.stream):
            keep = []  # device tensors must outlive the asynchronous execution
            for name in self.input_names:
                t = torch.as_tensor(np.ascontiguousarray(inputs[name]), device="cuda")
                t = t.to(self._torch_dtype(name)).contiguous()
                if not self.context.set_input_shape(name, tuple(t.shape)):
                    raise BackendError(f"tensorrt: input {name!r} shape {tuple(t.shape)} is "
                                       "outside the engine's optimisation profile")
                self.context.set_tensor_address(name, t.data_ptr())
                keep.append(t)
            outs = {}
            for name in self.output_names:
                shape = tuple(self.context.get_tensor_shape(name))
                outs[name] = torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
                self.context.set_tensor_address(name, outs[name].data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError("tensorrt: execute_async_v3 failed")
            host = {n: t.float().cpu() for n, t in outs.items()}
            self.stream.synchronize()
            return {n: t.numpy() for n, t in host.items()}


def make_backend(kind: str, *, onnx_path: str | os.PathLike | None = None,
                 torch_module: Callable[[], Any] | None = None,
                 input_names: Sequence[str] = (), output_names: Sequence[str] = (),
                 device: str = "cpu", threads: int | None = None,
                 trt_profile: dict | None = None, trt_cache_dir: str | None = None,
                 fp16: bool = True) -> Backend:
    """One entry point for every model: ``kind`` is onnxruntime | torch | tensorrt.

    ``torch_module`` is a zero-argument callable returning the module with its weights loaded
    (the torch backend needs the module, the others only the ONNX file).
    """
    if kind == "onnxruntime":
        if onnx_path is None:
            raise BackendError("onnxruntime backend needs onnx_path")
        return OnnxRuntimeBackend(onnx_path, device=device, threads=threads)
    if kind == "torch":
        if torch_module is None:
            raise BackendError("torch backend needs the torch module (a checkpoint)")
        require("torch", "the torch backend")
        return TorchBackend(torch_module(), input_names, output_names, device=device)
    if kind == "tensorrt":
        if onnx_path is None or trt_profile is None:
            raise BackendError("tensorrt backend needs onnx_path and an optimisation profile")
        return TensorRTBackend(onnx_path, trt_profile, fp16=fp16, cache_dir=trt_cache_dir)
    raise BackendError(f"unknown backend {kind!r}; expected one of {BACKENDS}")
