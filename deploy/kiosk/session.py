"""What the kiosk knows, without any I/O: the session staff started (checked from the form),
the camera's state in words, and the live numbers of the session's patient.

The patient is picked as the walk report picks it (``deploy.report.data``): of the tracks the
worker tagged with the session, the one with the most strides, then the longest in view; a
bystander's track is counted apart and never mixed into the numbers on screen.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from streams.schema import (AGE_Y_RANGE, HEIGHT_M_RANGE, UNTRUSTED_FLAGS, GaitCycle, GaitEvent,
                            Status)

# The walking aids the form offers (value, words); one list, the page and the check read it.
ASSISTIVE_DEVICES: tuple[tuple[str, str], ...] = (
    ("", "none"), ("cane", "cane"), ("crutches", "crutches"), ("walker", "walker / rollator"),
    ("orthosis", "orthosis"), ("other", "other"),
)
# A hospital's pseudonyms are codes, not names: letters, digits and . _ - (a site with another
# scheme sets ``pseudonym_pattern``). Spaces are refused: a name typed by mistake has them.
PSEUDONYM_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{1,39}"
NO_PICTURE_S = 3.0  # the camera is said to be silent after this long without a frame
STATUS_LATE_S = 5.0  # a capture process publishes Status every second


class FormError(ValueError):
    """The start form is not right; ``errors`` maps each wrong field to what to put right."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Patient:
    subject: str
    height_m: float | None = None
    age_y: float | None = None
    assistive_device: str = ""


def _number(errors: dict[str, str], form: dict[str, str], key: str, what: str,
            rng: tuple[float, float], unit: str, example: str) -> float | None:
    raw = form.get(key, "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        errors[key] = f"{what} must be a number in {unit} (e.g. {example}), not {raw!r}"
        return None
    if not (math.isfinite(v) and rng[0] <= v <= rng[1]):
        hint = (" (it looks like centimetres)" if key == "height_m" and 50 <= v <= 250 else "")
        errors[key] = (f"{what} must lie between {rng[0]:g} and {rng[1]:g} {unit}{hint}; "
                       f"leave it empty if it is not known")
        return None
    return v


def check_form(form: dict[str, str], pattern: str = PSEUDONYM_PATTERN) -> Patient:
    """The patient entered on the start form, or FormError naming every wrong field."""
    errors: dict[str, str] = {}
    subject = form.get("pseudonym", "").strip()
    if not subject:
        errors["pseudonym"] = "The patient's pseudonym is required: copy it from the hospital's system"
    elif not re.fullmatch(pattern, subject):
        errors["pseudonym"] = ("This is not a pseudonym of the hospital's form (letters, digits "
                               "and . _ - only, 2 to 40 characters; no names, no spaces)")
    height = _number(errors, form, "height_m", "Height", HEIGHT_M_RANGE, "m", "1.72")
    age = _number(errors, form, "age_y", "Age", AGE_Y_RANGE, "years", "67")
    device = form.get("assistive_device", "").strip()
    if device not in dict(ASSISTIVE_DEVICES):
        errors["assistive_device"] = (f"Walking aid {device!r} is not one of the list")
    if errors:
        raise FormError(errors)
    return Patient(subject, height, age, device)


def new_session_id() -> str:
    """The kiosk's name for a session: when it started (UTC) and 16 random bits; it names no
    one, so it may appear in file names, URLs and the report's title."""
    return time.strftime("K%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


# --------------------------------------------------------------------------- the camera


@dataclass
class CameraWatch:
    """The camera's state in words, from what reaches the kiosk: the capture's Status (its
    ``camera`` state: online, offline with ``camera_error``, playback) and the frames."""

    last_frame: float | None = None  # monotonic time of the last picture or skeleton
    pictures: bool = False  # the camera sends pictures (a webcam), not only skeletons
    status: Status | None = None
    status_at: float = 0.0

    def on_frame(self, now: float, picture: bool) -> None:
        self.last_frame = now
        self.pictures = self.pictures or picture

    def on_status(self, now: float, st: Status) -> None:
        if st.role == "capture":
            self.status, self.status_at = st, now

    def words(self, now: float) -> tuple[bool, str]:
        """(all well, what to tell staff)."""
        st = self.status.state if self.status is not None else {}
        if st.get("camera") == "offline":
            why = st.get("camera_error")
            return False, ("The camera is disconnected" + (f" ({why})" if why else "")
                           + ". Check its cable: the pipeline reconnects by itself.")
        if self.last_frame is None:
            if self.status is None:
                return False, ("No camera: nothing has come from it. Is it plugged in, and is "
                               "the pipeline running?")
            return False, "The camera is starting: no picture yet."
        silent = now - self.last_frame
        if silent > NO_PICTURE_S:
            if self.status is not None and now - self.status_at > STATUS_LATE_S:
                return False, (f"No picture for {silent:.0f} s and the camera process is not "
                               "answering: is the pipeline running?")
            return False, f"No picture from the camera for {silent:.0f} s. Is it still plugged in?"
        if self.pictures:
            return True, "Camera on"
        return True, "Camera on (depth camera: skeletons only)"


# --------------------------------------------------------------------------- live numbers


Key = tuple[str, int, str]


def _method(counts: Counter) -> str | None:
    """The analysis a track's numbers come from, as the report chooses it: the classical one
    when it ran (a worker running both writes each stride twice), else the commonest."""
    if not counts:
        return None
    return "classical" if "classical" in counts else counts.most_common(1)[0][0]


@dataclass
class LiveWalk:
    """The running session's strides and steps per track (source, track, worker run)."""

    session: str
    cycles: dict[Key, list[GaitCycle]] = field(default_factory=dict)
    strikes: dict[Key, Counter] = field(default_factory=dict)  # foot strikes per method

    def on_record(self, m: GaitCycle | GaitEvent) -> None:
        if m.session != self.session:
            return
        key = (m.source, m.track, m.run)
        if isinstance(m, GaitCycle):
            self.cycles.setdefault(key, []).append(m)
        elif m.kind == "foot_strike":
            self.strikes.setdefault(key, Counter())[m.method] += 1

    def _of(self, key: Key) -> list[GaitCycle]:
        cs = self.cycles.get(key, [])
        method = _method(Counter(c.method for c in cs))
        return [c for c in cs if c.method == method]

    def _steps(self, key: Key) -> int:
        counts = self.strikes.get(key, Counter())
        method = _method(counts)
        return counts[method] if method else 0

    def patient(self) -> Key | None:
        def span(k: Key) -> int:
            cs = self.cycles.get(k, [])
            return max((c.end_us for c in cs), default=0) - min((c.start_us for c in cs),
                                                                 default=0)

        keys = set(self.cycles) | set(self.strikes)
        # as deploy.report.data picks the patient: strides (of any analysis), then time in view
        return max(keys, key=lambda k: (len(self.cycles.get(k, [])), span(k), self._steps(k)),
                   default=None)

    def numbers(self) -> dict:
        """What the screen shows: the patient's steps, strides (trusted of measured), mean
        cadence and speed over the trusted strides, and how many others were kept apart."""
        key = self.patient()
        cycles = self._of(key) if key else []
        trusted = [c for c in cycles if not set(c.flags) & UNTRUSTED_FLAGS]

        def mean(metric: str) -> float | None:
            v = [c.metrics.get(metric) for c in trusted]
            v = [x for x in v if x is not None and math.isfinite(x)]
            return sum(v) / len(v) if v else None

        others = len((set(self.cycles) | set(self.strikes)) - {key}) if key else 0
        return {"steps": self._steps(key) if key else 0, "strides": len(cycles),
                "trusted": len(trusted), "cadence_spm": mean("cadence_spm"),
                "speed_mps": mean("speed_mps"), "others": others}
