"""Alert rules and the engine that evaluates them: pure logic, the caller supplies the clock.

Four kinds of rule (the TOML format is documented in :mod:`sinks.alerts.sink`):

``metric``
    A rolling window of the last ``window`` cycles per track (``per = "track"``) or per source
    (``per = "source"``) of one measure: a :data:`streams.schema.CYCLE_METRICS` key, or
    ``anomaly.<name>`` for an anomaly score (``anomaly.subject`` = the subject-level score).
    The window's ``aggregate`` (mean, median, min, max) is compared with ``raise`` using ``op``
    (below / above) once ``min_cycles`` cycles are in it. Hysteresis: a raised alert clears only
    when the aggregate is back past ``clear`` (``clear`` >= ``raise`` for below, <= for above),
    so a value hovering at the threshold does not flap. Cycles whose measure is None, or that
    carry one of ``exclude_flags`` (default: :data:`streams.schema.UNTRUSTED_FLAGS`, the strides
    across a turn, a pause or a tracking fault; ``[]`` lets every cycle in), do not enter the
    window. A scope without cycles for
    ``expire_s`` is forgotten; an alert still raised for it is cleared ("no data").
    "Every one of the last 5 cycles below 0.8 m/s" is ``window = 5, aggregate = "max"``.

``silence``
    A capture source that makes no progress for ``after_s`` seconds: progress is a skeleton
    message from it (when the sink subscribes ``skel/``) or a Status of the process of that
    name whose ``counter`` (default ``published``) went up. A dead process (no Status at all)
    and a live process whose camera is unplugged (its counter stands still) both count as
    silent. ``sources`` lists the sources to watch from the start; empty = every process whose
    Status says role ``capture``, from the moment it is first seen. Clears on progress.

``camera``
    A capture process that is running but whose camera is gone: its Status ``state["camera"]``
    has said one of ``states`` (default ``["offline"]``: unplugged, not found, a stream that
    dropped) for ``after_s`` seconds, counted from the first Status that said so. Clears with
    the first Status whose camera state is anything else (``online``; ``playback`` / ``ended``
    for a recording). ``sources`` lists the capture processes to watch; empty = every process
    whose Status says role ``capture``. A process that stopped sending Status altogether is the
    ``silence`` rule's case, not this one's; its alert stays raised until a Status clears it.

``restarts``
    A process restarting ``count`` times within ``within_s`` seconds. Restarts are read from the
    launcher's Status (counters ``restarts.<name>``) for the processes the launcher names in
    its state; for any other process, from its own Status: uptime going down = a restart.
    Clears after ``clear_after_s`` without a restart. ``processes`` empty = every process.

De-duplication: one alert per (rule, scope) at a time — a condition that stays true raises
once, not once per cycle; a cycle delivered twice (same source, track, side, start, method)
enters a window once; after a clear, the same rule and scope do not raise again for
``reraise_after_s`` (counted as suppressed). Each raising gets a new unique ``alert_id``; its
clearing carries the same id with state ``cleared``.

A restarted alert sink gets back only its raised alerts (the outbox keeps them, see ``active``):
rolling windows, silence timers, restart counts and re-raise cool-downs are in memory and start
afresh, so a metric scope needs ``min_cycles`` new cycles before it can raise or clear again.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from streams.schema import CYCLE_METRICS, SEVERITIES, UNTRUSTED_FLAGS, GaitCycle, Status
from streams.options import check_keys

RULE_KINDS = ("metric", "silence", "camera", "restarts")
AGGREGATES = {"mean": statistics.fmean, "median": statistics.median, "min": min, "max": max}
MAX_RULE_NAME = 64


class RuleError(ValueError):
    """A rule in the configuration is invalid; the message names the rule and the key."""


@dataclass
class Rule:
    name: str
    kind: str
    severity: str = "warning"
    text: str = ""  # optional template: {rule} {scope} {value} {threshold} {metric}
    reraise_after_s: float = 0.0


@dataclass
class MetricRule(Rule):
    metric: str = ""
    op: str = "below"
    raise_at: float = 0.0
    clear_at: float = 0.0
    window: int = 1
    aggregate: str = "mean"
    min_cycles: int = 0  # 0 = the full window
    per: str = "track"
    exclude_flags: list[str] = field(default_factory=list)
    expire_s: float = 300.0

    def value_of(self, c: GaitCycle) -> float | None:
        if self.metric.startswith("anomaly."):
            v = c.anomaly.get(self.metric[len("anomaly."):])
        else:
            v = c.metrics.get(self.metric)
        return None if v is None or not math.isfinite(v) else float(v)

    def crossed(self, v: float) -> bool:
        return v < self.raise_at if self.op == "below" else v > self.raise_at

    def back(self, v: float) -> bool:
        return v >= self.clear_at if self.op == "below" else v <= self.clear_at


@dataclass
class SilenceRule(Rule):
    sources: list[str] = field(default_factory=list)
    after_s: float = 10.0
    counter: str = "published"


@dataclass
class CameraRule(Rule):
    sources: list[str] = field(default_factory=list)
    after_s: float = 10.0
    states: list[str] = field(default_factory=lambda: ["offline"])

    def watches(self, s: Status) -> bool:
        proc = s.process or s.source
        return proc in self.sources if self.sources else s.role == "capture"


@dataclass
class RestartRule(Rule):
    processes: list[str] = field(default_factory=list)
    count: int = 3
    within_s: float = 300.0
    clear_after_s: float = 600.0


_COMMON = {"name", "kind", "severity", "text", "reraise_after_s"}
_KEYS = {
    "metric": _COMMON | {"metric", "op", "raise", "clear", "window", "aggregate", "min_cycles",
                         "per", "exclude_flags", "expire_s"},
    "silence": _COMMON | {"sources", "after_s", "counter"},
    "camera": _COMMON | {"sources", "after_s", "states"},
    "restarts": _COMMON | {"processes", "count", "within_s", "clear_after_s"},
}


def _num(d: dict, key: str, where: str, default: Any = None, *, positive: bool = False) -> Any:
    v = d.get(key, default)
    if v is None:
        raise RuleError(f"{where}: '{key}' is required")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RuleError(f"{where}: '{key}' must be a number, got {v!r}")
    if positive and v <= 0:
        raise RuleError(f"{where}: '{key}' must be > 0")
    return v


def _int(d: dict, key: str, where: str, default: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise RuleError(f"{where}: '{key}' must be a non-negative integer, got {v!r}")
    return v


def _strs(d: dict, key: str, where: str) -> list[str]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise RuleError(f"{where}: '{key}' must be a list of strings")
    return list(v)


def parse_rule(d: dict, index: int = 0) -> Rule:
    where = f"alerts.rule[{index}]"
    if not isinstance(d, dict):
        raise RuleError(f"{where}: expected a table")
    name = d.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_RULE_NAME:
        raise RuleError(f"{where}: 'name' must be a string of 1..{MAX_RULE_NAME} characters")
    where = f"alerts.rule {name!r}"
    kind = d.get("kind")
    if kind not in RULE_KINDS:
        raise RuleError(f"{where}: 'kind' must be one of {RULE_KINDS}, got {kind!r}")
    check_keys(f"{where} (kind {kind!r})", d, _KEYS[kind], RuleError)
    sev = d.get("severity", "warning")
    if sev not in SEVERITIES:
        raise RuleError(f"{where}: 'severity' must be one of {SEVERITIES}, got {sev!r}")
    text = d.get("text", "")
    if not isinstance(text, str):
        raise RuleError(f"{where}: 'text' must be a string")
    common = dict(name=name, kind=kind, severity=sev, text=text,
                  reraise_after_s=float(_num(d, "reraise_after_s", where, 0.0)))
    rule: Rule
    if kind == "metric":
        metric = d.get("metric")
        if not isinstance(metric, str) or not (
                metric in CYCLE_METRICS or (metric.startswith("anomaly.") and len(metric) > 8)):
            raise RuleError(f"{where}: 'metric' must be one of {sorted(CYCLE_METRICS)} or "
                            f"'anomaly.<score>', got {metric!r}")
        op = d.get("op", "below")
        if op not in ("below", "above"):
            raise RuleError(f"{where}: 'op' must be 'below' or 'above', got {op!r}")
        raise_at = float(_num(d, "raise", where))
        clear_at = float(_num(d, "clear", where, raise_at))
        if (op == "below" and clear_at < raise_at) or (op == "above" and clear_at > raise_at):
            raise RuleError(f"{where}: hysteresis runs the wrong way: for op={op!r} 'clear' "
                            f"({clear_at}) must be {'>=' if op == 'below' else '<='} 'raise' "
                            f"({raise_at})")
        window = _int(d, "window", where, 1)
        if window < 1:
            raise RuleError(f"{where}: 'window' must be >= 1")
        min_cycles = _int(d, "min_cycles", where, 0)
        if min_cycles > window:
            raise RuleError(f"{where}: 'min_cycles' ({min_cycles}) exceeds 'window' ({window})")
        agg = d.get("aggregate", "mean")
        if agg not in AGGREGATES:
            raise RuleError(f"{where}: 'aggregate' must be one of {sorted(AGGREGATES)}")
        per = d.get("per", "track")
        if per not in ("track", "source"):
            raise RuleError(f"{where}: 'per' must be 'track' or 'source'")
        rule = MetricRule(**common, metric=metric, op=op, raise_at=raise_at, clear_at=clear_at,
                          window=window, aggregate=agg, min_cycles=min_cycles or window,
                          per=per,
                          exclude_flags=(_strs(d, "exclude_flags", where) if "exclude_flags" in d
                                         else sorted(UNTRUSTED_FLAGS)),
                          expire_s=float(_num(d, "expire_s", where, 300.0, positive=True)))
    elif kind == "silence":
        counter = d.get("counter", "published")
        if not isinstance(counter, str) or not counter:
            raise RuleError(f"{where}: 'counter' must be a counter name")
        rule = SilenceRule(**common, sources=_strs(d, "sources", where),
                           after_s=float(_num(d, "after_s", where, 10.0, positive=True)),
                           counter=counter)
    elif kind == "camera":
        states = _strs(d, "states", where) if "states" in d else ["offline"]
        if not states:
            raise RuleError(f"{where}: 'states' must name at least one camera state")
        rule = CameraRule(**common, sources=_strs(d, "sources", where),
                          after_s=float(_num(d, "after_s", where, 10.0, positive=True)),
                          states=states)
    else:
        count = _int(d, "count", where, 3)
        if count < 1:
            raise RuleError(f"{where}: 'count' must be >= 1")
        rule = RestartRule(**common, processes=_strs(d, "processes", where), count=count,
                           within_s=float(_num(d, "within_s", where, 300.0, positive=True)),
                           clear_after_s=float(_num(d, "clear_after_s", where, 600.0,
                                                    positive=True)))
    if text:
        try:
            text.format(rule=name, scope="s", value=0.0, threshold=0.0, metric="m")
        except (KeyError, IndexError, ValueError) as e:
            raise RuleError(f"{where}: 'text' template is invalid: {e!r}") from None
    return rule


def parse_rules(items: Any) -> list[Rule]:
    if not isinstance(items, list):
        raise RuleError("alerts.rule must be an array of tables ([[alerts.rule]])")
    rules = [parse_rule(d, i) for i, d in enumerate(items)]
    names = [r.name for r in rules]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RuleError(f"alerts.rule: names must be unique, repeated: {sorted(dup)}")
    return rules


# --------------------------------------------------------------------------- the engine


@dataclass
class Active:
    """A raised alert that has not cleared yet (persisted by the alert sink's outbox)."""

    alert_id: str
    severity: str
    track: int | None = None
    value: float | None = None


@dataclass
class Transition:
    rule: str
    scope: str
    state: str  # raised | cleared
    alert_id: str
    severity: str
    text: str
    value: float | None
    track: int | None
    host_us: int | None  # when the triggering data entered the pipeline (None: not data-driven)


@dataclass
class _Window:
    values: deque
    ids: deque
    last_seen: float


def new_alert_id(rule: str, scope: str) -> str:
    return f"{rule}:{uuid.uuid4().hex}"


class AlertEngine:
    """Evaluates the rules over cycles, statuses and skeleton traffic.

    Every method takes ``now`` (monotonic seconds) and returns the alert transitions it caused;
    nothing here touches a clock, a socket or a file.
    """

    def __init__(self, rules: list[Rule], now: float,
                 active: dict[tuple[str, str], Active] | None = None,
                 new_id: Callable[[str, str], str] = new_alert_id):
        self.rules = rules
        self.metric_rules = [r for r in rules if isinstance(r, MetricRule)]
        self.silence_rules = [r for r in rules if isinstance(r, SilenceRule)]
        self.camera_rules = [r for r in rules if isinstance(r, CameraRule)]
        self.restart_rules = [r for r in rules if isinstance(r, RestartRule)]
        self.active: dict[tuple[str, str], Active] = dict(active or {})
        self.new_id = new_id
        self.cleared_at: dict[tuple[str, str], float] = {}
        self.suppressed = 0
        self.windows: dict[tuple[str, str], _Window] = {}
        # silence: last progress per source, and the counter value it was read from
        self.progress: dict[str, float] = {}
        self.counter_seen: dict[tuple[str, str], float] = {}
        self.capture_seen: set[str] = set()
        # camera: since when (monotonic s) each process's Status has said its camera is down,
        # per rule (rules may differ in which states count), and the state it said
        self.camera_down: dict[tuple[str, str], tuple[float, str]] = {}
        for r in self.silence_rules:
            for s in r.sources:
                self.progress.setdefault(s, now)
        # restarts
        self.managed: set[str] = set()
        self.launcher_counts: dict[str, float] = {}
        self.uptime: dict[str, float] = {}
        self.restarts: dict[str, deque] = {}
        # Alerts restored from a previous run keep their clocks from now: a metric alert expires
        # if its scope never sends again, a restart alert clears after a calm period.
        by_name = {r.name: r for r in rules}
        for (name, scope) in self.active:
            r = by_name.get(name)
            if isinstance(r, MetricRule):
                self.windows[(name, scope)] = _Window(deque(maxlen=r.window),
                                                      deque(maxlen=4 * r.window), now)
            elif isinstance(r, RestartRule):
                self.restarts.setdefault(scope, deque()).append(now)

    # transitions ---------------------------------------------------------------------------

    def _raise(self, rule: Rule, scope: str, value: float | None, text: str, now: float,
               track: int | None = None, host_us: int | None = None) -> list[Transition]:
        key = (rule.name, scope)
        if key in self.active:
            return []
        if now - self.cleared_at.get(key, -math.inf) < rule.reraise_after_s:
            self.suppressed += 1
            return []
        a = Active(self.new_id(rule.name, scope), rule.severity, track, value)
        self.active[key] = a
        return [Transition(rule.name, scope, "raised", a.alert_id, rule.severity, text, value,
                           track, host_us)]

    def _clear(self, rule: Rule, scope: str, value: float | None, text: str, now: float,
               host_us: int | None = None) -> list[Transition]:
        a = self.active.pop((rule.name, scope), None)
        if a is None:
            return []
        self.cleared_at[(rule.name, scope)] = now
        return [Transition(rule.name, scope, "cleared", a.alert_id, a.severity, text, value,
                           a.track, host_us)]

    @staticmethod
    def _text(rule: Rule, default: str, scope: str, value: float | None, threshold: float,
              metric: str = "") -> str:
        if not rule.text:
            return default
        return rule.text.format(rule=rule.name, scope=scope, value=value, threshold=threshold,
                                metric=metric)

    # inputs --------------------------------------------------------------------------------

    def on_cycle(self, c: GaitCycle, now: float) -> list[Transition]:
        out: list[Transition] = []
        for r in self.metric_rules:
            v = r.value_of(c)
            if v is None or any(f in r.exclude_flags for f in c.flags):
                continue
            scope = f"{c.source}/{c.track}" if r.per == "track" else c.source
            w = self.windows.get((r.name, scope))
            if w is None:
                w = self.windows[(r.name, scope)] = _Window(deque(maxlen=r.window),
                                                            deque(maxlen=4 * r.window), now)
            ident = (c.track, c.side, c.start_us, c.method)
            if ident in w.ids:  # the same cycle delivered again
                continue
            w.ids.append(ident)
            w.values.append(v)
            w.last_seen = now
            if len(w.values) < r.min_cycles:
                continue
            agg = float(AGGREGATES[r.aggregate](w.values))
            track = c.track if r.per == "track" else None
            what = f"{r.metric} {r.aggregate} {agg:.3g} over {len(w.values)} cycles ({scope})"
            if (r.name, scope) not in self.active and r.crossed(agg):
                text = self._text(r, f"{what} {r.op} {r.raise_at:g}", scope, agg, r.raise_at,
                                  r.metric)
                out += self._raise(r, scope, agg, text, now, track, c.host_us)
            elif (r.name, scope) in self.active and r.back(agg):
                text = self._text(r, f"{what} back past {r.clear_at:g}", scope, agg, r.clear_at,
                                  r.metric)
                out += self._clear(r, scope, agg, text, now, c.host_us)
        return out

    def on_skeleton(self, source: str, now: float) -> list[Transition]:
        return self._progress(source, now)

    def _progress(self, source: str, now: float) -> list[Transition]:
        self.progress[source] = now
        out: list[Transition] = []
        for r in self.silence_rules:
            if (r.name, source) in self.active:
                out += self._clear(r, source, 0.0, f"{source} is sending again", now)
        return out

    def on_status(self, s: Status, now: float) -> list[Transition]:
        out: list[Transition] = []
        proc = s.process or s.source
        # silence: a capture process's counter moving is progress
        if s.role == "capture" and proc not in self.capture_seen:
            self.capture_seen.add(proc)
            self.progress.setdefault(proc, now)
        for counter in {r.counter for r in self.silence_rules}:
            v = s.counters.get(counter)
            if v is None:
                continue
            prev = self.counter_seen.get((proc, counter))
            self.counter_seen[(proc, counter)] = v
            if prev is not None and v != prev:  # up = progress; down = a restarted process
                out += self._progress(proc, now)
        out += self._camera(s, proc, now)
        # restarts
        if s.role == "launcher":
            self.managed |= set(s.state)
            for k, v in s.counters.items():
                if not k.startswith("restarts."):
                    continue
                name = k[len("restarts."):]
                prev = self.launcher_counts.get(name)
                self.launcher_counts[name] = v
                if prev is not None and v > prev:
                    out += self._restarted(name, int(v - prev), now)
        elif proc not in self.managed:
            prev_up = self.uptime.get(proc)
            self.uptime[proc] = s.uptime_s
            if prev_up is not None and s.uptime_s < prev_up:
                out += self._restarted(proc, 1, now)
        return out

    def _camera(self, s: Status, proc: str, now: float) -> list[Transition]:
        cam = s.state.get("camera")
        out: list[Transition] = []
        if cam is None:
            return out
        for r in self.camera_rules:
            if not r.watches(s):
                continue
            key = (r.name, proc)
            if cam in r.states:
                self.camera_down.setdefault(key, (now, cam))
                out += self._camera_due(r, proc, now)
            else:
                self.camera_down.pop(key, None)
                out += self._clear(r, proc, 0.0, f"{proc}: camera {cam} again", now)
        return out

    def _camera_due(self, r: CameraRule, proc: str, now: float) -> list[Transition]:
        since, cam = self.camera_down[(r.name, proc)]
        down = now - since
        if down < r.after_s:
            return []
        text = self._text(r, f"{proc}: camera {cam} for {down:.1f} s", proc, down, r.after_s)
        return self._raise(r, proc, down, text, now)

    def _restarted(self, proc: str, n: int, now: float) -> list[Transition]:
        q = self.restarts.setdefault(proc, deque())
        q.extend([now] * n)
        out: list[Transition] = []
        for r in self.restart_rules:
            if r.processes and proc not in r.processes:
                continue
            recent = sum(1 for t in q if now - t <= r.within_s)
            if recent >= r.count:
                text = self._text(r, f"{proc} restarted {recent} times within {r.within_s:g} s",
                                  proc, float(recent), float(r.count))
                out += self._raise(r, proc, float(recent), text, now)
        return out

    def tick(self, now: float) -> list[Transition]:
        """Time-driven rules: silences, restart alerts that have calmed down, stale windows."""
        out: list[Transition] = []
        names = {r.name for r in self.rules}
        for (name, scope), a in list(self.active.items()):
            if name not in names:  # the configuration no longer has this rule
                del self.active[(name, scope)]
                out.append(Transition(name, scope, "cleared", a.alert_id, a.severity,
                                      f"rule {name!r} removed from the configuration", None,
                                      a.track, None))
        for r in self.silence_rules:
            watched = set(r.sources) if r.sources else set(self.capture_seen)
            for src in sorted(watched):
                silent = now - self.progress.get(src, now)
                if silent >= r.after_s:
                    text = self._text(r, f"no data from {src} for {silent:.1f} s", src, silent,
                                      r.after_s)
                    out += self._raise(r, src, silent, text, now)
        by_camera_rule = {r.name: r for r in self.camera_rules}
        for (name, proc) in list(self.camera_down):
            out += self._camera_due(by_camera_rule[name], proc, now)
        for r in self.restart_rules:
            for (rule, proc), _a in list(self.active.items()):
                if rule != r.name:
                    continue
                q = self.restarts.get(proc)
                last = q[-1] if q else -math.inf
                if now - last >= r.clear_after_s:
                    out += self._clear(r, proc, 0.0, f"{proc}: no restart for "
                                       f"{r.clear_after_s:g} s", now)
        keep = max((max(r.within_s, r.clear_after_s) for r in self.restart_rules), default=0.0)
        for q in self.restarts.values():
            while q and now - q[0] > keep:
                q.popleft()
        by_name = {r.name: r for r in self.metric_rules}
        for (name, scope), w in list(self.windows.items()):
            r = by_name[name]
            if now - w.last_seen >= r.expire_s:
                del self.windows[(name, scope)]
                out += self._clear(r, scope, None, f"{scope}: no cycles for {r.expire_s:g} s",
                                   now)
        return out
