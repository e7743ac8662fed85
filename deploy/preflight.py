"""Check a whole configuration before anything starts: every process's options (an unknown key is
named, with the one it is closest to), the files its sources read, and the optional packages and
SDKs it needs. ``gaitstream run`` stops at start with one line per problem instead of starting
processes that the launcher would restart forever.

What can only be found once a process runs (a camera that is not plugged in, a database that is
down) is the process's own business: it waits and retries, and says so in its Status.
"""

from __future__ import annotations

import errno
import inspect
import re
import socket
import sys
from pathlib import Path
from typing import Any, Callable

from deploy.config import PipelineConfig, ProcessConfig
from streams.extras import require
from streams.options import check_keys

# What a configuration problem raises: ValueError (and ConfigError, RecordingError, RuleError),
# FileNotFoundError, and ImportError (MissingExtra, the Kinect's SDKMissingError).
PROBLEMS = (ValueError, TypeError, OSError, ImportError)


def capture_options(cfg: PipelineConfig, proc: ProcessConfig) -> tuple[str, float, dict]:
    """(source kind, speed, the source's own options) of a capture process; files it reads are
    resolved against the data folder like every other path of the configuration."""
    from capture.sources import FILE_OPTIONS

    opts = dict(proc.options)
    kind = opts.pop("source", None)
    if kind is None:
        raise ValueError("options.source (the source kind: sim, file, stream, webcam, kinect, "
                         "k4a_json) is missing")
    speed = float(opts.pop("speed", 1.0))
    if speed < 0:
        raise ValueError(f"options.speed must be >= 0 (0 = as fast as possible), got {speed}")
    if proc.publish is None:
        raise ValueError("a capture process needs publish (the endpoint it binds)")
    for key in FILE_OPTIONS:
        if key in opts:
            opts[key] = str(cfg.resolve(opts[key]))
    return kind, speed, opts


def _capture(cfg: PipelineConfig, proc: ProcessConfig) -> None:
    from capture.sources import check_source

    kind, _, opts = capture_options(cfg, proc)
    check_source(kind, opts)


def _feeds_webcam_frames(cfg: PipelineConfig, proc: ProcessConfig) -> bool:
    return any(p.kind == "capture" and p.options.get("source") == "webcam"
               and p.publish in proc.subscribe for p in cfg.processes)


def _backend(kind: str, what: str) -> None:
    if kind == "torch":
        require("torch", f"{what} on the torch backend")
    elif kind == "tensorrt":
        require("tensorrt", f"{what} on the tensorrt backend")


def _worker(cfg: PipelineConfig, proc: ProcessConfig) -> None:
    from inference.worker import WorkerConfig

    wc = WorkerConfig.from_options(proc.options, cfg.session)
    if wc.analysis != "classical" or wc.anomaly:
        _backend(wc.backend, "the worker's models")
    if _feeds_webcam_frames(cfg, proc):
        from inference.pose.estimator import PoseConfig

        pose = PoseConfig.from_options(wc.pose_options)
        require("cv2", "pose estimation on webcam frames")
        if pose.backend == "mediapipe":
            require("mediapipe", "MediaPipe pose on webcam frames")
        else:
            _backend(pose.model_backend, f"{pose.backend} pose")


def _sink(cfg: PipelineConfig, proc: ProcessConfig) -> None:
    from sinks.process import SINK_KINDS

    opts = dict(proc.options)
    kind = opts.pop("sink", "log")
    if kind == "log":
        from sinks.log.sink import LogSinkConfig

        if LogSinkConfig.from_options(opts).store == "postgresql":
            require("psycopg", "the PostgreSQL log")
    elif kind == "alert":
        from sinks.alerts.sink import AlertsConfig

        if opts:
            raise ValueError(f"an alert sink takes its settings from [alerts], not options "
                             f"{sorted(opts)}")
        alerts = AlertsConfig.from_toml(cfg.raw.get("alerts", {}))
        if any(o.type == "mqtt" for o in alerts.outputs):
            require("paho.mqtt.client", "the MQTT alert output")
    else:
        raise ValueError(f"options.sink {kind!r} not one of {SINK_KINDS}")


def _curve(proc: ProcessConfig) -> None:
    """CURVE key files and the authorised clients' folder exist."""
    for curve in (proc.curve, proc.subscribe_curve):
        if curve is None:
            continue
        for key in ("secret_key_file", "server_key_file"):
            f = getattr(curve, key)
            if f and not Path(f).is_file():
                raise FileNotFoundError(f"curve.{key}: no such file {f}")
        if curve.authorized_dir and not Path(curve.authorized_dir).is_dir():
            raise FileNotFoundError(f"curve.authorized_dir: no such folder "
                                    f"{curve.authorized_dir}")


def _record(cfg: PipelineConfig, proc: ProcessConfig) -> None:
    check_keys("options of a record process", proc.options, {"path"})


def _preview(cfg: PipelineConfig, proc: ProcessConfig) -> None:
    from sinks.preview import PreviewComposer

    composer = set(inspect.signature(PreviewComposer).parameters)
    check_keys("options of a preview process", proc.options, composer | {"host", "port"})
    require("cv2", "the preview")


def _kiosk(cfg: PipelineConfig, proc: ProcessConfig) -> None:
    from deploy.kiosk.app import KIOSK_OPTIONS, log_path
    from deploy.report.render import SOURCE_KINDS
    from sinks.preview import PreviewComposer

    composer = set(inspect.signature(PreviewComposer).parameters)
    check_keys("options of a kiosk process", proc.options, composer | KIOSK_OPTIONS)
    kind = proc.options.get("source_kind")
    if kind is not None and kind not in SOURCE_KINDS:
        raise ValueError(f"options.source_kind {kind!r} not one of {SOURCE_KINDS}")
    log_path(cfg, proc.options)
    if proc.publish is None:
        raise ValueError("a kiosk needs publish (the endpoint its session requests go out on, "
                         "which the worker subscribes to)")
    if not any(proc.publish in p.subscribe for p in cfg.processes if p.kind == "worker"):
        raise ValueError(f"no worker subscribes to the kiosk's publish endpoint {proc.publish}: "
                         "sessions started on its page would never reach the analysis")
    require("cv2", "the kiosk's live view")


CHECKS: dict[str, Callable[[PipelineConfig, ProcessConfig], Any]] = {
    "capture": _capture, "worker": _worker, "sink": _sink, "record": _record,
    "preview": _preview, "kiosk": _kiosk,
}


def warnings(cfg: PipelineConfig) -> list[str]:
    """What may start but should be said: a link that leaves the machine in plaintext."""
    return [f"{cfg.path}: process {p.name!r} binds {p.publish} beyond this machine without "
            "CURVE: its skeletons and records travel in plaintext (see README, Security)"
            for p in cfg.processes if p.allow_remote and p.publish and p.curve is None]


def report(cfg: PipelineConfig) -> bool:
    """Print each problem (stderr, one line each); True when the configuration can start."""
    for w in warnings(cfg):
        print(f"warning: {w}", file=sys.stderr)
    found = problems(cfg)
    for p in found:
        print(f"error: {p}", file=sys.stderr)
    return not found


def endpoint_in_use(endpoint: str) -> bool:
    """Whether a ``tcp://host:port`` endpoint is bound by another process right now."""
    m = re.fullmatch(r"tcp://([^:/]+|\[[^\]]+\]):(\d+)", endpoint)
    if not m or m.group(1) == "*":
        return False
    host = m.group(1).strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # as ZeroMQ binds: a port whose last connections linger in TIME_WAIT is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(m.group(2))))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def problems(cfg: PipelineConfig) -> list[str]:
    """One line per problem found, naming the process; empty when the configuration can start."""
    out = []
    binds = [("[launcher].publish", cfg.launcher.publish)]
    binds += [(f"process {p.name!r} publish", p.publish) for p in cfg.processes]
    for where, ep in binds:
        if ep and endpoint_in_use(ep):
            out.append(f"{cfg.path}: {where} {ep} is in use by another process (is this "
                       "pipeline, or another on the same ports, already running?)")
    for proc in cfg.processes:
        try:
            _curve(proc)
            CHECKS[proc.kind](cfg, proc)
        except PROBLEMS as e:
            out.append(f"{cfg.path}: process {proc.name!r} ({proc.kind}): {e}")
    return out
