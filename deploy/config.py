"""The TOML configuration of a deployment: which processes run and how they connect.

::

    [pipeline]
    name = "kiosk"
    data_dir = "~/gaitstream"           # relative paths of processes resolve against it
    session = "walkway-1"               # pseudonymous session id put on records

    [launcher]
    publish = "tcp://127.0.0.1:5559"    # the launcher's own Status (restarts per process)

    [[process]]
    name = "cam"                        # unique; also the source name on the wire
    kind = "capture"                    # capture | worker | record | sink | preview | kiosk
    publish = "tcp://127.0.0.1:5550"    # where this process binds its PUB socket
    subscribe = []                      # endpoints to read from
    topics = []                         # topic prefixes to read (default per kind)
    hwm = 1000                          # ZeroMQ high-water mark
    allow_remote = false                # bind beyond 127.0.0.1 only when true
    restart = "always"                  # always | on-failure | never (when it exits)
    [process.curve]                     # optional CURVE keys (gaitstream keys)
    [process.options]                   # kind-specific options (source kind, paths, rules...)

Unknown keys are errors: a typo must not silently change what runs in a clinic.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.transport import CurveConfig
from streams.options import check_keys, check_types

PROCESS_KINDS = ("capture", "worker", "record", "sink", "preview", "kiosk")

# A process's exit code for "the configuration (or the installation) is wrong": the launcher does
# not restart it, since the same configuration would fail the same way (sysexits' EX_CONFIG).
EXIT_CONFIG = 78


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the key."""


@dataclass
class ProcessConfig:
    name: str
    kind: str
    publish: str | None = None
    subscribe: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    hwm: int = 1000
    allow_remote: bool = False
    curve: CurveConfig | None = None
    subscribe_curve: CurveConfig | None = None
    options: dict[str, Any] = field(default_factory=dict)
    restart: str = "always"


RESTART_POLICIES = ("always", "on-failure", "never")


@dataclass
class LauncherConfig:
    publish: str | None = None
    stop_timeout_s: float = 5.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    stable_after_s: float = 30.0  # a process up this long has its backoff reset
    # Stop the whole pipeline once these processes have finished for good (a file played to its
    # end): the others are then stopped in configuration order, so nothing in flight is lost.
    stop_when_done: list[str] = field(default_factory=list)


@dataclass
class PipelineConfig:
    path: Path
    name: str
    data_dir: Path
    session: str
    launcher: LauncherConfig
    processes: list[ProcessConfig]
    raw: dict[str, Any]

    def process(self, name: str) -> ProcessConfig:
        for p in self.processes:
            if p.name == name:
                return p
        raise ConfigError(f"{self.path}: no process named {name!r}")

    def resolve(self, p: str | os.PathLike) -> Path:
        q = Path(os.path.expanduser(str(p)))
        return q if q.is_absolute() else self.data_dir / q


_PROCESS_KEYS = {"name", "kind", "publish", "subscribe", "topics", "hwm", "allow_remote", "curve",
                 "subscribe_curve", "options", "restart"}


def check_endpoint(where: str, endpoint: str | None) -> None:
    """A ZeroMQ endpoint a process binds or connects to, with a port that exists."""
    if endpoint is None:
        return
    m = re.fullmatch(r"tcp://(.+):(\d+|\*)", endpoint)
    if m is None:
        if not re.fullmatch(r"(ipc|inproc)://.+", endpoint):
            raise ConfigError(f"{where}: endpoint {endpoint!r} is not tcp://HOST:PORT, ipc:// "
                              "or inproc://")
        return
    if m.group(2) != "*" and not 1 <= int(m.group(2)) <= 65535:
        raise ConfigError(f"{where}: endpoint {endpoint!r}: port {m.group(2)} is outside "
                          "1-65535")


def _check_keys(where: str, d: dict, allowed: set[str]) -> None:
    check_keys(where, d, allowed, ConfigError)


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None
                ) -> PipelineConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    for k, v in (overrides or {}).items():
        raw.setdefault("pipeline", {})[k] = v
    _check_keys(str(path), raw, {"pipeline", "launcher", "process", "alerts"})
    pl = raw.get("pipeline", {})
    _check_keys(f"{path}: [pipeline]", pl, {"name", "data_dir", "session"})
    dd = Path(os.path.expanduser(str(pl.get("data_dir", "."))))
    data_dir = (dd if dd.is_absolute() else path.parent / dd).resolve()
    for key in ("name", "data_dir", "session"):
        if key in pl and not isinstance(pl[key], str):
            raise ConfigError(f"{path}: [pipeline] {key} = {pl[key]!r} is no string")
    la = raw.get("launcher", {})
    _check_keys(f"{path}: [launcher]", la, set(LauncherConfig.__dataclass_fields__))
    check_types(f"{path}: [launcher]", la, LauncherConfig, ConfigError)
    procs = []
    for i, p in enumerate(raw.get("process", [])):
        where = f"{path}: process[{i}]"
        _check_keys(where, p, _PROCESS_KEYS)
        if "name" not in p or "kind" not in p:
            raise ConfigError(f"{where}: needs name and kind")
        check_types(where, {k: v for k, v in p.items() if k not in ("curve", "subscribe_curve")},
                    ProcessConfig, ConfigError)
        for ep in [p.get("publish")] + list(p.get("subscribe", [])):
            check_endpoint(f"{where}", ep)
        if p["kind"] not in PROCESS_KINDS:
            raise ConfigError(f"{where}: kind {p['kind']!r} not one of {PROCESS_KINDS}")
        if p.get("restart", "always") not in RESTART_POLICIES:
            raise ConfigError(f"{where}: restart {p['restart']!r} not one of {RESTART_POLICIES}")
        try:
            procs.append(ProcessConfig(
                name=str(p["name"]), kind=p["kind"], publish=p.get("publish"),
                subscribe=list(p.get("subscribe", [])), topics=list(p.get("topics", [])),
                hwm=int(p.get("hwm", 1000)), allow_remote=bool(p.get("allow_remote", False)),
                curve=CurveConfig.from_dict(p.get("curve")),
                subscribe_curve=CurveConfig.from_dict(p.get("subscribe_curve")),
                options=dict(p.get("options", {})), restart=p.get("restart", "always")))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None
    names = [p.name for p in procs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: process names must be unique: {names}")
    if not procs:
        raise ConfigError(f"{path}: no [[process]] entries")
    launcher = LauncherConfig(**la)
    for n in launcher.stop_when_done:
        if n not in names:
            raise ConfigError(f"{path}: [launcher] stop_when_done names no process {n!r}")
    return PipelineConfig(path=path, name=str(pl.get("name", path.stem)), data_dir=data_dir,
                          session=str(pl.get("session", "")), launcher=launcher,
                          processes=procs, raw=raw)
