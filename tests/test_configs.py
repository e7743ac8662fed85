"""The shipped configurations load, name known kinds and sources, and wire up consistently."""

from pathlib import Path

import pytest

from capture.sources import SOURCE_KINDS
from deploy.config import ConfigError, load_config
from deploy.processes import expected_subscriptions, make_subscriber
from sinks.alerts.sink import AlertsConfig
from streams.transport import Publisher

from conftest import REPO

CONFIGS = sorted((REPO / "deploy" / "configs").glob("*.toml"))


def test_the_three_uses_are_shipped():
    names = {p.stem for p in CONFIGS}
    assert {"kiosk", "edge", "replay", "demo"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_is_consistent(path: Path):
    cfg = load_config(path)
    endpoints = {p.publish for p in cfg.processes if p.publish}
    if cfg.launcher.publish:
        endpoints.add(cfg.launcher.publish)
    assert len(endpoints) == len([p for p in cfg.processes if p.publish]) + bool(
        cfg.launcher.publish), "two processes bind the same endpoint"
    for p in cfg.processes:
        for ep in p.subscribe:
            assert ep in endpoints, f"{p.name} subscribes to {ep}, which nothing publishes"
        if p.kind == "capture":
            assert p.options["source"] in SOURCE_KINDS
        assert p.allow_remote or not p.publish or p.publish.startswith("tcp://127.0.0.1:")
    if any(p.kind == "sink" and p.options.get("sink") == "alert" for p in cfg.processes):
        assert AlertsConfig.from_toml(cfg.raw["alerts"]).rules


def test_unknown_keys_are_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[process]]\nname = "w"\nkind = "worker"\nsubscibe = ["x"]\n')
    with pytest.raises(ConfigError, match="subscibe"):
        load_config(bad)
    bad.write_text('[[process]]\nname = "w"\nkind = "wroker"\n')
    with pytest.raises(ConfigError, match="wroker"):
        load_config(bad)


def test_the_edge_box_alerts_on_an_offline_camera_of_its_capture_process():
    cfg = load_config(REPO / "deploy" / "configs" / "edge.toml")
    captures = {p.name for p in cfg.processes if p.kind == "capture"}
    rules = AlertsConfig.from_toml(cfg.raw["alerts"]).rules
    camera = [r for r in rules if r.kind == "camera"]
    assert camera and all(set(r.sources) == captures and r.states == ["offline"]
                          for r in camera)
    alerts = next(p for p in cfg.processes if p.options.get("sink") == "alert")
    cams = {p.publish for p in cfg.processes if p.kind == "capture"}
    assert cams <= set(alerts.subscribe)  # it hears the capture processes' Status
    sub = make_subscriber(alerts)  # the socket the process would read (topics or the default)
    try:
        assert "status" in sub.topics
    finally:
        sub.close()


def test_a_paced_source_waits_only_for_the_processes_that_read_its_skeletons(tmp_path, endpoint):
    # The demo's shape: a worker and a recorder read the camera's skeletons; two sinks on the
    # same endpoint read only gait/, alert and status, so they never subscribe to skel/. Waiting
    # for them too held the demo's walker back 30 s and a 16 s demo saw no strides at all.
    cam = endpoint()
    path = tmp_path / "p.toml"
    path.write_text(f"""
[[process]]
name = "camera"
kind = "capture"
publish = "{cam}"
[process.options]
source = "sim"

[[process]]
name = "worker"
kind = "worker"
subscribe = ["{cam}"]

[[process]]
name = "alerts"
kind = "sink"
subscribe = ["{cam}"]
[process.options]
sink = "alert"

[[process]]
name = "recorder"
kind = "record"
subscribe = ["{cam}"]
topics = ["skel/", "gait/", "status"]
""")
    cfg = load_config(path)
    camera = cfg.process("camera")
    want = expected_subscriptions(cfg, camera, "skel/camera")
    assert want == 2
    pub = Publisher(cam)
    subs = [make_subscriber(p) for p in cfg.processes if p.subscribe]
    try:
        # every reader's subscription arrives, and no further one that a wait could count
        assert pub.wait_for_subscribers(want, 10.0, topic="skel/camera") == want
        assert pub.wait_for_subscribers(1, 0.5, topic="skel/camera") == 0
    finally:
        for s in subs:
            s.close()
        pub.close()
