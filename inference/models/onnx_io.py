"""The ONNX file as every model's one source of weights: the steps each model's ``export_onnx``
and ``module_from_onnx`` share.

Models export with ``keep_initializers_as_inputs=True`` and no constant folding, so that the
initializers keep their state-dict names (the torch backend rebuilds the module from the same
file); :func:`finish_export` then takes the weights back out of the graph's inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def finish_export(path: str | Path, metadata: dict[str, str] | None = None) -> Any:
    """Make the weights of an exported file constants, not overridable inputs (runtimes may then
    fold and fuse them), add ``metadata`` to its metadata_props, check and save it."""
    import onnx

    m = onnx.load(str(path))
    weights = {init.name for init in m.graph.initializer}
    kept = [i for i in m.graph.input if i.name not in weights]
    del m.graph.input[:]
    m.graph.input.extend(kept)
    for k, v in (metadata or {}).items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return m


def load_weights(model: Any, path: str | Path, proto: Any = None) -> Any:
    """``model`` (a torch module) with the weights of the ONNX file at ``path``, in eval mode;
    ValueError naming the weights the file lacks."""
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper

    proto = proto if proto is not None else onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    state = model.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise ValueError(f"{path}: weights missing from the ONNX file: {missing[:5]}")
    model.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in state})
    return model.eval()
