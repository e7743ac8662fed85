"""What a person at a console sees: the version, a stream file's contents, whole help texts,
progress bars on a terminal, and no native libraries' log lines unless asked for (-v)."""

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import tomllib
from importlib.metadata import version

import numpy as np

from conftest import REPO
from deploy.cli import COMMANDS, describe
from streams.schema import Body, GaitCycle, SkeletonFrame, Status, encode
from streams.streamfile import StreamWriter


def gaitstream(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def on_a_terminal(*args, timeout=60) -> str:
    """Everything ``gaitstream ARGS`` writes to a terminal (a pseudo-terminal here)."""
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    p = subprocess.Popen([sys.executable, "-m", "deploy.cli", *args], cwd=REPO, stdin=sub,
                         stdout=sub, stderr=sub, close_fds=True)
    os.close(sub)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout)
    os.close(main)
    return out.decode(errors="replace")


def stream_file(path, n_skel=90, n_cycles=3):
    with StreamWriter(path, topics=["skel/", "gait/"], meta={"endpoints": ["tcp://x:1"]}) as w:
        for i in range(n_skel):
            f = SkeletonFrame(source="cam", seq=i + 1, t_us=i * 33_333, host_us=0,
                              layout="canonical22",
                              bodies=[Body(0, np.zeros((22, 3), np.float32),
                                           np.ones(22, np.float32))])
            w.write(i * 33_333, [b"skel/cam", encode(f)])
        for k in range(n_cycles):
            c = GaitCycle(source="cam", seq=k + 1, t_us=k, host_us=0, start_us=k, end_us=k + 1)
            w.write(n_skel * 33_333, [b"gait/cam", encode(c)])
        w.write(n_skel * 33_333, [b"status", encode(Status(source="worker", seq=1, t_us=0,
                                                              host_us=0, process="worker"))])
    return path


def test_version():
    p = gaitstream("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"gaitstream {version('gaitstream')}"


def test_info_says_what_a_stream_file_holds(tmp_path):
    path = stream_file(tmp_path / "walk.gst")
    p = gaitstream("info", str(path), "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert info["messages"] == 94 and info["topics"] == {"gait/cam": 3, "skel/cam": 90,
                                                         "status": 1}
    assert info["types"] == {"gait_cycle": 3, "skeleton": 90, "status": 1}
    assert info["sources"] == {"cam": 93, "worker": 1}
    assert abs(info["duration_s"] - 89 * 0.033333) < 0.05 + 0.034
    assert info["recorded_topics"] == ["skel/", "gait/"] and not info["cut"]
    assert "skel/cam" in p.stdout and "90" in p.stdout
    with open(path, "ab") as f:  # a recorder killed mid-record
        f.write(b"\x00\x00\x01")
    cut = json.loads(gaitstream("info", str(path), "--json").stdout.splitlines()[-1])
    assert cut["cut"] and cut["messages"] == 94


def test_help_texts_are_whole_sentences_without_markup():
    import importlib

    for name, module, _ in COMMANDS:
        text = describe(importlib.import_module(module).__doc__)
        assert text and text[-1] in ".:)", (name, text)
        assert "``" not in text and not re.search(r":\w+:`", text), (name, text)
    assert describe("A ``x`` and\n:class:`y.Z` run\n\non.") == "A x and y.Z run"


def test_the_replay_default_port_is_none_of_the_shipped_configurations():
    import argparse

    from streams import replay

    p = argparse.ArgumentParser()
    replay.add_arguments(p)
    default = p.parse_args(["x.gst"]).publish
    used = set()
    for cfg in (REPO / "deploy" / "configs").glob("*.toml"):
        for proc in tomllib.loads(cfg.read_text()).get("process", []):
            used.update([proc.get("publish")] + proc.get("subscribe", []))
    assert default not in used


def test_progress_bars_on_a_terminal_only(tmp_path):
    path = stream_file(tmp_path / "walk.gst", n_skel=300)
    shown = on_a_terminal("replay", str(path), "--fast", "--wait-subscribers", "0")
    assert "replaying walk.gst" in shown and "304 msg" in shown
    piped = gaitstream("replay", str(path), "--fast", "--wait-subscribers", "0")
    assert piped.returncode == 0 and "replaying walk.gst" not in piped.stderr + piped.stdout
    assert "304 messages replayed" in piped.stdout


def test_native_libraries_log_lines_only_with_verbose(shared_data):
    video = str(shared_data / "video_walking_sports2d" / "sports2d_demo.mp4")
    quiet = gaitstream("analyze", video)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    native = re.compile(r"^(W0000|I0000|INFO: Created TensorFlow Lite)", re.M)
    assert not native.search(quiet.stderr)
    assert native.search(gaitstream("-v", "analyze", video).stderr)
