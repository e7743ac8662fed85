"""The launcher: start the processes of a configuration, watch them, restart the ones that die
(exponential backoff), and stop them all on a stop event with none left behind.

Each child runs ``gaitstream proc`` in its own process and is tied to the launcher with
PR_SET_PDEATHSIG, so even a launcher killed with SIGKILL leaves no orphan. Restarts are published in
the launcher's Status (``restarts.<name>``) so that alert rules can catch a process in a crash loop.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.node import StatusReporter
from streams.transport import Publisher

from deploy.config import EXIT_CONFIG, PipelineConfig, ProcessConfig

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the launcher's own shutdown still stops children
        pass


@dataclass
class Child:
    proc: ProcessConfig
    popen: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    backoff_s: float = 0.0
    next_start: float = 0.0
    exit_codes: list[int] = field(default_factory=list)
    finished: bool = False  # exited and its restart policy says it stays down


class Launcher:
    def __init__(self, cfg: PipelineConfig, stop: threading.Event,
                 log_dir: Path | None = None):
        self.cfg, self.stop = cfg, stop
        self.children = [Child(p) for p in cfg.processes]
        self.log_dir = log_dir
        self.failed: list[str] = []  # processes that exited with EXIT_CONFIG
        self.status = StatusReporter("launcher", "launcher")
        self.pub = Publisher(cfg.launcher.publish) if cfg.launcher.publish else None

    def _spawn(self, ch: Child) -> None:
        cmd = [sys.executable, "-m", "deploy.cli", "proc", "--config", str(self.cfg.path),
               "--name", ch.proc.name, "--data-dir", str(self.cfg.data_dir)]
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{ch.proc.name}.log", "ab")
        ch.popen = subprocess.Popen(cmd, preexec_fn=_die_with_parent, stdout=out,
                                    stderr=subprocess.STDOUT if out else None,
                                    cwd=os.getcwd())
        if out is not None:
            out.close()
        ch.started = time.monotonic()
        log.info("started %s (%s) pid %d", ch.proc.name, ch.proc.kind, ch.popen.pid)

    def _watch(self, ch: Child) -> None:
        lc = self.cfg.launcher
        now = time.monotonic()
        if ch.finished:
            return
        if ch.popen is None:
            if now >= ch.next_start:
                self._spawn(ch)
            return
        code = ch.popen.poll()
        if code is None:
            if ch.backoff_s and now - ch.started > lc.stable_after_s:
                ch.backoff_s = 0.0  # stable again: the next crash restarts quickly
            return
        ch.exit_codes.append(code)
        if code == EXIT_CONFIG:
            ch.finished, ch.popen = True, None
            self.failed.append(ch.proc.name)
            log.error("%s: its configuration or installation is wrong (its own message above "
                      "says what); not restarted, stopping the pipeline", ch.proc.name)
            return
        policy = ch.proc.restart
        if policy == "never" or (policy == "on-failure" and code == 0):
            ch.finished, ch.popen = True, None
            log.info("%s exited with %d; not restarted (restart = %s)", ch.proc.name, code,
                     policy)
            return
        ch.restarts += 1
        ch.backoff_s = min(lc.backoff_max_s, max(lc.backoff_initial_s, ch.backoff_s * 2))
        ch.next_start = now + ch.backoff_s
        ch.popen = None
        self.status.count(f"restarts.{ch.proc.name}")
        log.warning("%s exited with %d; restart %d in %.1f s", ch.proc.name, code, ch.restarts,
                    ch.backoff_s)

    def run(self) -> int:
        for ch in self.children:
            self._spawn(ch)
        done_names = set(self.cfg.launcher.stop_when_done)
        while not self.stop.wait(0.2):
            for ch in self.children:
                self._watch(ch)
            if self.failed:
                break
            if done_names and all(ch.finished for ch in self.children
                                  if ch.proc.name in done_names):
                log.info("%s finished: stopping the pipeline", ", ".join(sorted(done_names)))
                break
            self.status.state.update({ch.proc.name: "up" if ch.popen else "restarting"
                                      for ch in self.children})
            self.status.maybe_publish(self.pub)
        self.shutdown()
        return 2 if self.failed else 0

    def shutdown(self) -> None:
        """Stop in configuration order (sources first, sinks last), each given time to finish,
        so that what a stage flushes on its way out still reaches the stages after it."""
        for ch in self.children:
            p = ch.popen
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(self.cfg.launcher.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) did not stop in time: killing it", ch.proc.name, p.pid)
                p.kill()
                p.wait()
        if self.pub is not None:
            self.status.maybe_publish(self.pub, force=True)
            self.pub.close()
        log.info("all processes stopped")
