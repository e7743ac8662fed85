"""Run one pipeline process named in a configuration (the launcher starts these).

Every process: binds its PUB socket if it has one, publishes Status every second, stops cleanly
on SIGINT/SIGTERM (the in-flight item finishes, files are closed, Status goes out a last time).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from streams.node import StatusReporter, install_stop_handlers
from streams.transport import (SESSION_TOPIC, Publisher, Subscriber, image_topic,
                               skeleton_topic)

from deploy.config import EXIT_CONFIG, PipelineConfig, ProcessConfig, load_config
from deploy.preflight import CHECKS, PROBLEMS, capture_options

log = logging.getLogger(__name__)

DEFAULT_TOPICS = {
    "worker": ["skel/", "img/", SESSION_TOPIC],
    "record": [""],
    "sink": ["gait/", "alert", "status"],
    "preview": ["img/", "skel/"],
    # frames for the live view; records for the live numbers; the capture's Status for the
    # camera's state; the worker's answers to its session requests
    "kiosk": ["img/", "skel/", "gait/", "status", SESSION_TOPIC],
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="pipeline TOML file")
    p.add_argument("--name", required=True, help="the [[process]] name to run")
    p.add_argument("--data-dir", default=None, help="the launcher's data folder (it may have "
                   "been given on its command line instead of the configuration)")


def subscribed_topics(proc: ProcessConfig) -> list[str]:
    """The topic prefixes a process reads: its ``topics``, else a worker's ``sources``' frames,
    else the default of its kind."""
    if not proc.topics and proc.kind == "worker" and proc.options.get("sources"):
        return [t for s in proc.options["sources"] for t in (skeleton_topic(s), image_topic(s))
                ] + [SESSION_TOPIC]
    return proc.topics or DEFAULT_TOPICS.get(proc.kind, [""])


def make_subscriber(proc: ProcessConfig) -> Subscriber:
    return Subscriber(proc.subscribe, subscribed_topics(proc), hwm=proc.hwm,
                      curve=proc.subscribe_curve)


def expected_subscriptions(cfg: PipelineConfig, proc: ProcessConfig, topic: str) -> int:
    """How many subscriptions to ``topic`` on ``proc``'s endpoint the other processes will send
    (one per matching topic prefix). A sink on the same endpoint that reads only gait/ and
    status never subscribes to skel/: counting it made a paced source wait its whole limit."""
    return sum(1 for p in cfg.processes if proc.publish in p.subscribe
               for t in subscribed_topics(p) if topic.startswith(t))


def wait_for_subscribers(cfg: PipelineConfig, proc: ProcessConfig, pub: Publisher,
                         topic: str, stop: threading.Event, limit_s: float = 30.0) -> None:
    """Wait until every process of the configuration that reads ``topic`` from ``proc`` has
    subscribed (at most ``limit_s``: generous, because a worker importing its models on a loaded
    2-core box took longer than 5 s). The wait ends as soon as they are all there."""
    want = expected_subscriptions(cfg, proc, topic)
    got = pub.wait_for_subscribers(want, limit_s, topic=topic, stop=stop)
    if got < want and not stop.is_set():
        log.warning("%d of %d subscriptions to %s arrived; starting anyway", got, want, topic)


def run_process(cfg: PipelineConfig, proc: ProcessConfig, stop: threading.Event) -> int:
    # After a stop, a stage takes what is still arriving until its input is quiet, and must be
    # done before the launcher's stop timeout kills it.
    drain_s = max(0.0, cfg.launcher.stop_timeout_s - 1.0)
    pub = None
    if proc.publish:
        pub = Publisher(proc.publish, hwm=proc.hwm, curve=proc.curve,
                        allow_remote=proc.allow_remote)
    status = StatusReporter(proc.name, proc.kind)
    try:
        if proc.kind == "capture":
            from capture.base import run_capture
            from capture.sources import make_source

            kind, speed, opts = capture_options(cfg, proc)
            try:
                source = make_source(kind, proc.name, opts)
            except PROBLEMS as e:  # a file it cannot read: no restart will read it either
                return config_problem(proc, e)
            if source.paced:
                # A file or the simulator would lose its first frames to subscribers still
                # connecting; a live camera starts at once (its frames are live anyway).
                wait_for_subscribers(cfg, proc, pub, f"skel/{proc.name}", stop)
            run_capture(source, pub, stop, status, speed=speed)
        elif proc.kind == "worker":
            from inference.worker import WorkerConfig, run_worker

            opts = dict(proc.options)
            ckpt = opts.get("checkpoint", f"{proc.name}.checkpoint.json")
            if isinstance(ckpt, str):  # else the option check below names the bad type
                opts["checkpoint"] = str(cfg.resolve(ckpt)) if ckpt else ""
            wcfg = WorkerConfig.from_options(opts, cfg.session)
            if pub is not None:
                # The stages reading its records connect first: only then does it subscribe,
                # and a paced source waits for that, so a file's first records reach them all.
                wait_for_subscribers(cfg, proc, pub, "gait/", stop)
            run_worker(wcfg, make_subscriber(proc), pub, stop, status, drain_s)
        elif proc.kind == "record":
            from streams.record import run_record

            run_record(make_subscriber(proc), cfg.resolve(proc.options.get("path", "stream.gst")),
                       stop, status, pub, drain_s=drain_s)
        elif proc.kind == "sink":
            from sinks.process import run_sink

            run_sink(cfg, proc, make_subscriber(proc), pub, stop, status, drain_s)
        elif proc.kind == "preview":
            from sinks.preview import MjpegServer, PreviewComposer, run_preview

            o = dict(proc.options)
            server = MjpegServer(o.pop("host", "127.0.0.1"), int(o.pop("port", 8090)),
                                 allow_remote=proc.allow_remote)
            log.info("preview on %s", server.url)
            try:
                run_preview(make_subscriber(proc), server, PreviewComposer(**o), stop,
                            pub=pub, status=status)
            finally:
                server.close()
        elif proc.kind == "kiosk":
            from deploy.kiosk.app import make_kiosk, run_kiosk
            from sinks.preview import MjpegServer, PreviewComposer

            kiosk, view, where = make_kiosk(cfg, proc)
            server = MjpegServer(where["host"], where["port"], allow_remote=proc.allow_remote)
            server.app = kiosk.app(server)
            log.info("kiosk on %s (reports from %s)", server.url, kiosk.db)
            try:
                run_kiosk(kiosk, make_subscriber(proc), server, PreviewComposer(**view), stop,
                          pub, status)
            finally:
                server.close()
                kiosk.close()
        else:  # config.py already refuses unknown kinds
            raise ValueError(proc.kind)
    finally:
        if pub is not None:
            pub.close(linger_s=drain_s)
    return 0


def config_problem(proc: ProcessConfig, e: BaseException) -> int:
    """Say what is wrong in one line and exit with EXIT_CONFIG, which the launcher does not
    restart: the same configuration would fail the same way."""
    print(f"error: process {proc.name!r} ({proc.kind}): {e}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def main(args: argparse.Namespace) -> int:
    stop = install_stop_handlers()
    cfg = load_config(args.config, {"data_dir": args.data_dir} if args.data_dir else None)
    proc = cfg.process(args.name)
    try:
        CHECKS[proc.kind](cfg, proc)
    except PROBLEMS as e:
        return config_problem(proc, e)
    return run_process(cfg, proc, stop)
