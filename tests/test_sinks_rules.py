"""The alert rules and their engine, driven with explicit clocks: hysteresis, windows,
de-duplication, silences, crash loops, and the configuration format as documented."""

import re
import tomllib

import numpy as np
import pytest

import sinks.alerts.sink
from sinks.alerts.sink import AlertsConfig
from sinks.alerts.rules import (Active, AlertEngine, CameraRule, MetricRule, RestartRule, RuleError,
                         SilenceRule,
                         parse_rule, parse_rules)
from streams.schema import GaitCycle, Status


def cyc(i, speed=None, track=1, source="cam", anomaly=None, flags=(), start_us=None):
    return GaitCycle(source=source, seq=i, t_us=i, host_us=1000 + i, track=track,
                     side="left", start_us=i * 1_000_000 if start_us is None else start_us,
                     end_us=i * 1_000_000 + 900_000, metrics={"speed_mps": speed},
                     anomaly=anomaly or {}, flags=list(flags))


def status(proc, role, t, up, **counters):
    return Status(source=proc, seq=t, t_us=t, host_us=t, process=proc, role=role, uptime_s=up,
                  counters={k: float(v) for k, v in counters.items()})


def test_the_documented_configuration_parses_as_written():
    doc = sinks.alerts.sink.__doc__
    block = doc.split("::\n", 1)[1]  # the first literal block is the configuration
    toml_text = "\n".join(ln[4:] for ln in block.split("\n\nThe sink process")[0].splitlines())
    cfg = AlertsConfig.from_toml(tomllib.loads(toml_text)["alerts"])
    assert [r.name for r in cfg.rules] == ["slow_gait", "anomalous_gait", "camera_silent",
                                           "camera_offline", "crash_loop"]
    assert [o.type for o in cfg.outputs] == ["webhook", "mqtt", "log", "stdout"]
    slow = cfg.rules[0]
    assert isinstance(slow, MetricRule)
    assert (slow.raise_at, slow.clear_at, slow.window, slow.min_cycles) == (0.8, 0.9, 5, 5)
    assert isinstance(cfg.rules[2], SilenceRule) and cfg.rules[2].after_s == 10
    assert isinstance(cfg.rules[3], CameraRule) and cfg.rules[3].after_s == 10
    assert cfg.rules[3].states == ["offline"] and cfg.rules[3].sources == ["cam"]
    assert isinstance(cfg.rules[4], RestartRule) and cfg.rules[4].count == 3
    assert cfg.outputs[0].min_severity == "warning"


@pytest.mark.parametrize("bad, message", [
    ({"name": "r", "kind": "metric", "metric": "speed_mps", "raise": 0.8, "clear": 0.7},
     "hysteresis runs the wrong way"),
    ({"name": "r", "kind": "metric", "metric": "speed_mps", "op": "above", "raise": 3,
      "clear": 4}, "hysteresis runs the wrong way"),
    ({"name": "r", "kind": "metric", "metric": "speed", "raise": 1}, "'metric' must be one of"),
    ({"name": "r", "kind": "metric", "metric": "speed_mps", "raise": 1, "treshold": 2},
     "unknown key 'treshold'"),
    ({"name": "r", "kind": "metric", "metric": "speed_mps"}, "'raise' is required"),
    ({"name": "r", "kind": "metric", "metric": "speed_mps", "raise": 1, "window": 3,
      "min_cycles": 4}, "exceeds 'window'"),
    ({"name": "r", "kind": "silence", "severity": "fatal"}, "'severity' must be one of"),
    ({"name": "r", "kind": "silence", "after_s": 0}, "'after_s' must be > 0"),
    ({"name": "r", "kind": "restarts", "count": "3"}, "non-negative integer"),
    ({"name": "r", "kind": "camera", "after_s": -1}, "'after_s' must be > 0"),
    ({"name": "r", "kind": "camera", "states": []}, "at least one camera state"),
    ({"name": "r", "kind": "camera", "counter": "published"}, "unknown key 'counter'"),
    ({"name": "r", "kind": "bogus"}, "'kind' must be one of"),
    ({"name": "r", "kind": "silence", "text": "{nope}"}, "template is invalid"),
])
def test_invalid_rules_are_refused_with_a_reason(bad, message):
    with pytest.raises(RuleError, match=message):
        parse_rule(bad)


def test_rule_names_must_be_unique():
    r = {"name": "a", "kind": "silence"}
    with pytest.raises(RuleError, match="repeated: \\['a'\\]"):
        parse_rules([r, dict(r)])


def slow_rule(**kw):
    d = {"name": "slow", "kind": "metric", "metric": "speed_mps", "op": "below", "raise": 0.8,
         "clear": 0.9, "window": 5}
    d.update(kw)
    return parse_rule(d)


def test_rolling_mean_raises_and_clears_at_the_cycles_numpy_says():
    rng = np.random.default_rng(3)
    speeds = np.concatenate([rng.uniform(1.0, 1.3, 8), rng.uniform(0.5, 0.7, 8),
                             np.full(6, 0.85), rng.uniform(1.0, 1.2, 8)])
    # ground truth, independent of the engine: the 5-cycle rolling mean and its crossings
    means = np.convolve(speeds, np.ones(5) / 5, mode="valid")  # means[k] ends at cycle k+4
    first_raise = int(np.argmax(means < 0.8)) + 4
    first_clear = first_raise + int(np.argmax(means[first_raise - 4:] >= 0.9))
    eng = AlertEngine([slow_rule()], now=0.0)
    got = []
    for i, v in enumerate(speeds):
        for t in eng.on_cycle(cyc(i, float(v)), now=float(i)):
            got.append((i, t.state, t.value, t.alert_id, t.track, t.host_us))
    assert [(g[0], g[1]) for g in got] == [(first_raise, "raised"), (first_clear, "cleared")]
    assert got[0][2] == pytest.approx(means[first_raise - 4])
    assert got[1][2] == pytest.approx(means[first_clear - 4])
    assert got[0][3] == got[1][3] and got[0][3].startswith("slow:")
    assert got[0][4] == 1 and got[0][5] == 1000 + first_raise  # track, and the cycle's host_us


def test_hysteresis_stops_flapping_at_the_threshold():
    eng = AlertEngine([slow_rule(window=1)], now=0.0)
    vals = [0.79, 0.81, 0.79, 0.82, 0.78, 0.85, 0.79, 0.89]  # hovering at raise, never at clear
    states = [t.state for i, v in enumerate(vals) for t in eng.on_cycle(cyc(i, v), float(i))]
    assert states == ["raised"]
    no_hyst = AlertEngine([slow_rule(window=1, clear=0.8)], now=0.0)
    flaps = [t.state for i, v in enumerate(vals) for t in no_hyst.on_cycle(cyc(i, v), float(i))]
    assert len(flaps) == 8  # what the clear threshold saves a pager from


def test_a_redelivered_cycle_enters_the_window_once():
    eng = AlertEngine([slow_rule(window=2, aggregate="mean")], now=0.0)
    assert eng.on_cycle(cyc(1, 0.5), 0.0) == []
    assert eng.on_cycle(cyc(1, 0.5), 0.1) == []  # same cycle again: still only one in window
    (t,) = eng.on_cycle(cyc(2, 0.7), 0.2)
    assert t.value == pytest.approx(0.6)


def test_windows_are_per_track_and_ignore_missing_and_flagged_cycles():
    eng = AlertEngine([slow_rule(window=3, exclude_flags=["low_confidence"])], now=0.0)
    out = []
    for i in range(6):
        out += eng.on_cycle(cyc(i, 0.5, track=7), float(i))
        out += eng.on_cycle(cyc(i, 1.2, track=8), float(i))
        out += eng.on_cycle(cyc(100 + i, None, track=8), float(i))  # not computable
        out += eng.on_cycle(cyc(200 + i, 0.1, track=8, flags=["low_confidence"]), float(i))
    assert [(t.scope, t.state, t.track) for t in out] == [("cam/7", "raised", 7)]


def test_strides_across_a_turn_stay_out_of_a_window_unless_the_rule_lets_them_in():
    """A walker slows to turn at the end of a walkway: those strides are flagged untrusted
    (turning, swaps across the turn) and by default do not raise a slow-gait alert."""
    turns = [cyc(i, 0.5, flags=["turning", "left_right_swap"]) for i in range(6)]
    assert [t for i, c in enumerate(turns) for t in
            AlertEngine([slow_rule()], now=0.0).on_cycle(c, float(i))] == []
    everything = AlertEngine([slow_rule(exclude_flags=[])], now=0.0)
    raised = [t for i, c in enumerate(turns) for t in everything.on_cycle(c, float(i))]
    assert [t.state for t in raised] == ["raised"]


def test_anomaly_above_threshold_and_every_cycle_aggregate():
    rule = parse_rule({"name": "anom", "kind": "metric", "metric": "anomaly.subject",
                       "op": "above", "raise": 3.0, "clear": 2.5, "window": 3,
                       "aggregate": "min", "severity": "critical"})
    eng = AlertEngine([rule], now=0.0)
    scores = [3.5, 3.2, 2.9, 3.4, 3.3, 3.1, 2.4]
    out = [(i, t.state) for i, s in enumerate(scores)
           for t in eng.on_cycle(cyc(i, anomaly={"subject": s}), float(i))]
    # min of the last 3 first exceeds 3.0 at cycle 5 (3.4, 3.3, 3.1); <= 2.5 at cycle 6
    assert out == [(5, "raised"), (6, "cleared")]


def test_reraise_cooldown_suppresses_and_each_raising_has_a_new_id():
    eng = AlertEngine([slow_rule(window=1, reraise_after_s=60)], now=0.0)
    seq = [(0, 0.5), (1, 1.0), (10, 0.5), (20, 1.0), (70, 0.5), (71, 1.0), (200, 0.5)]
    out = [(t_, tr.state, tr.alert_id) for i, (t_, v) in enumerate(seq)
           for tr in eng.on_cycle(cyc(i, v), float(t_))]
    assert [(t, s) for t, s, _ in out] == [(0, "raised"), (1, "cleared"), (70, "raised"),
                                           (71, "cleared"), (200, "raised")]
    assert eng.suppressed == 1
    raised_ids = [a for _, s, a in out if s == "raised"]
    assert len(set(raised_ids)) == 3


def test_a_scope_that_stops_sending_is_expired_and_its_alert_cleared():
    eng = AlertEngine([slow_rule(window=1, expire_s=30)], now=0.0)
    (r,) = eng.on_cycle(cyc(1, 0.5), 0.0)
    assert eng.tick(29.0) == []
    (c,) = eng.tick(30.5)
    assert (c.state, c.alert_id, c.value) == ("cleared", r.alert_id, None)
    assert eng.windows == {}


def test_camera_silence_from_status_counters():
    rule = parse_rule({"name": "silent", "kind": "silence", "sources": ["cam"], "after_s": 10,
                       "severity": "critical"})
    eng = AlertEngine([rule], now=0.0)
    out = []
    for t in range(0, 6):  # frames flow for 5 s, then the camera is unplugged
        out += eng.on_status(status("cam", "capture", t, t, published=30 * t), float(t))
        out += eng.tick(float(t))
    for t in range(6, 30):  # the process lives on, its counter stands still
        out += eng.on_status(status("cam", "capture", t, t, published=150), float(t))
        out += eng.tick(float(t))
        if t == 14:
            assert out == []  # 9 s silent
    assert [(x.state, x.scope, x.severity) for x in out] == [("raised", "cam", "critical")]
    assert out[0].value == pytest.approx(10.0)  # raised on the first tick 10 s after t=5
    out2 = eng.on_status(status("cam", "capture", 30, 30, published=180), 30.0)
    assert [(x.state, x.alert_id) for x in out2] == [("cleared", out[0].alert_id)]


def test_a_listed_camera_that_never_appears_is_silent_and_a_seen_one_that_dies_too():
    eng = AlertEngine([parse_rule({"name": "silent", "kind": "silence", "sources": ["cam1"],
                                   "after_s": 10})], now=100.0)
    assert eng.tick(109.0) == []
    assert [t.scope for t in eng.tick(110.0)] == ["cam1"]
    auto = AlertEngine([parse_rule({"name": "silent", "kind": "silence", "after_s": 5})],
                       now=0.0)
    auto.on_status(status("w", "worker", 1, 1, published=1), 1.0)  # not a capture process
    auto.on_status(status("cam2", "capture", 1, 1, published=1), 1.0)
    auto.on_status(status("cam2", "capture", 2, 2, published=9), 2.0)
    assert auto.tick(6.9) == []
    assert [t.scope for t in auto.tick(7.0)] == ["cam2"]  # no Status at all since t=2


def cam_status(proc, t, camera, role="capture"):
    return Status(source=proc, seq=t, t_us=t, host_us=t, process=proc, role=role,
                  uptime_s=float(t), counters={"published": 0.0},
                  state={"camera": camera} if camera else {})


def test_camera_offline_for_after_s_raises_once_and_online_clears():
    eng = AlertEngine([parse_rule({"name": "cam_off", "kind": "camera", "after_s": 10,
                                   "severity": "critical"})], now=0.0)
    out = []
    for t in range(0, 5):
        out += eng.on_status(cam_status("cam", t, "online"), float(t)) + eng.tick(t + 0.5)
    for t in range(5, 16):  # unplugged at t=5: offline in every Status from then on
        out += eng.on_status(cam_status("cam", t, "offline"), float(t)) + eng.tick(t + 0.5)
        if t == 14:
            assert out == []  # 9.5 s offline
    assert [(x.state, x.scope, x.severity) for x in out] == [("raised", "cam", "critical")]
    assert out[0].value == pytest.approx(10.0) and "camera offline for 10.0 s" in out[0].text
    for t in range(16, 20):  # still offline: no second alert
        assert eng.on_status(cam_status("cam", t, "offline"), float(t)) + eng.tick(t + .5) == []
    back = eng.on_status(cam_status("cam", 20, "online"), 20.0)
    assert [(x.state, x.alert_id) for x in back] == [("cleared", out[0].alert_id)]
    assert eng.tick(40.0) == []  # online again: nothing due


def test_camera_rule_watches_capture_processes_or_the_listed_ones_only():
    auto = AlertEngine([parse_rule({"name": "c", "kind": "camera", "after_s": 2})], now=0.0)
    auto.on_status(cam_status("w", 0, "offline", role="worker"), 0.0)  # not a capture process
    auto.on_status(cam_status("cam1", 0, "offline"), 0.0)
    auto.on_status(cam_status("cam2", 0, "online"), 0.0)
    auto.on_status(cam_status("cam3", 0, "ended"), 0.0)  # a recording that ended: not down
    auto.on_status(cam_status("cam4", 0, None), 0.0)  # a source without a camera state
    assert auto.tick(1.9) == []
    assert [t.scope for t in auto.tick(2.0)] == ["cam1"]
    listed = AlertEngine([parse_rule({"name": "c", "kind": "camera", "after_s": 2,
                                      "sources": ["cam2"], "states": ["offline", "ended"]})],
                         now=0.0)
    listed.on_status(cam_status("cam1", 0, "offline"), 0.0)
    listed.on_status(cam_status("cam2", 0, "ended"), 0.0)
    assert [t.scope for t in listed.tick(2.0)] == ["cam2"]


def test_a_restored_camera_alert_is_not_raised_again_and_clears_with_its_id():
    rule = parse_rule({"name": "c", "kind": "camera", "after_s": 2})
    eng = AlertEngine([rule], now=0.0, active={("c", "cam"): Active("c:old", "warning")})
    assert eng.on_status(cam_status("cam", 0, "offline"), 0.0) == []
    assert eng.tick(5.0) == []
    out = eng.on_status(cam_status("cam", 6, "online"), 6.0)
    assert [(x.state, x.alert_id) for x in out] == [("cleared", "c:old")]


def test_crash_loop_from_launcher_counters():
    rule = parse_rule({"name": "loop", "kind": "restarts", "processes": ["worker"], "count": 3,
                       "within_s": 60, "clear_after_s": 120})
    eng = AlertEngine([rule], now=0.0)
    launcher = {"worker": "up", "cam": "up"}

    def lst(t, n, cam_n=0):
        s = status("launcher", "launcher", t, t, **{"restarts.worker": n, "restarts.cam": cam_n})
        s.state = dict(launcher)
        return eng.on_status(s, float(t))
    out = lst(0, 0) + lst(10, 1) + lst(100, 2) + lst(130, 3, cam_n=5)
    assert out == []  # 3 restarts, but only 2 within 60 s; cam is not watched
    # the worker's own statuses show uptime resets too, but the launcher is the authority
    out += eng.on_status(status("worker", "worker", 131, 0.5), 131.0)
    out += eng.on_status(status("worker", "worker", 132, 0.1), 132.0)
    assert out == []
    (r,) = lst(140, 4)
    assert (r.state, r.scope, r.value) == ("raised", "worker", 3.0)
    assert lst(150, 5) == []  # still raised: no second alert
    assert eng.tick(260.0) == []  # 110 s calm
    (c,) = eng.tick(270.0)
    assert (c.state, c.alert_id) == ("cleared", r.alert_id)


def test_crash_loop_from_uptime_resets_when_no_launcher_reports_it():
    rule = parse_rule({"name": "loop", "kind": "restarts", "count": 2, "within_s": 60})
    eng = AlertEngine([rule], now=0.0)
    ups = [(0, 5.0), (1, 6.0), (2, 0.4), (3, 1.4), (4, 2.4), (5, 0.3)]
    out = [(t, x.state) for t, up in ups
           for x in eng.on_status(status("sinkA", "sink", t, up), float(t))]
    assert out == [(5, "raised")]


def test_alerts_restored_after_a_restart_do_not_raise_again_and_clear_with_their_id():
    active = {("slow", "cam/1"): Active("slow:restored", "warning", 1, 0.5)}
    eng = AlertEngine([slow_rule(window=1)], now=0.0, active=active)
    assert eng.on_cycle(cyc(1, 0.4), 1.0) == []
    (c,) = eng.on_cycle(cyc(2, 1.0), 2.0)
    assert (c.state, c.alert_id) == ("cleared", "slow:restored")
    gone = AlertEngine([slow_rule()], now=0.0,
                       active={("removed_rule", "x"): Active("removed_rule:1", "info")})
    (c,) = gone.tick(0.1)
    assert c.state == "cleared" and re.search("removed from the configuration", c.text)
