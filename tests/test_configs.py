"""The shipped configurations load, name known kinds and sources, and wire up consistently."""

from pathlib import Path

import pytest

from capture.sources import SOURCE_KINDS
from deploy.config import ConfigError, load_config
from deploy.processes import make_subscriber
from sinks.alerting import AlertsConfig

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
