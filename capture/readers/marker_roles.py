"""Markers by anatomical role, whatever the lab named them: a table of roles and their names in
the common conventions (Plug-in-Gait / CGM, Helen Hayes, Codamotion, Qualisys, OpenSim
Gait2392 / Rajagopal / Hamner, OpenCap ``*_study``, ISB landmark names, descriptive names), and
the marker set a file's own labels fill from it.

A label is matched after removing a subject prefix (``Matt:``), an OpenCap ``_study`` suffix,
letter case and separators (``_ . - :`` and spaces), with its side taken from a prefix or a
suffix (``L``/``R``, ``Left``/``Right``, ``l_``, ``_r``, ``.L``...). A role's names are tried in
the order written, so an anatomical landmark wins over a nearby surrogate; ``A+B`` is the mean
of two markers.

The known marker sets of :mod:`capture.readers.markers` are tried first (they also carry the
thigh/shank clusters that functional joint centres need); this table reads the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

from capture.readers.markers import Candidates, MarkerSet

# Roles used by the joint-centre construction, with their names (normalised: upper case, no
# separators). Sided roles name the marker of one side without its side.
SIDED_ROLES: dict[str, tuple[str, ...]] = {
    "ASI": ("ASI", "ASIS", "ANTSUPILIACSPINE", "ANTERIORSUPERIORILIACSPINE", "IAS", "ASIS1"),
    "PSI": ("PSI", "PSIS", "POSTSUPILIACSPINE", "POSTERIORSUPERIORILIACSPINE", "IPS"),
    "KNE": ("KNE", "KNEE", "LATKNEE", "KNEELAT", "KNEELATERAL", "LATERALKNEE", "LKNE",
            "FLE", "LEPI", "LATEPI", "LATEPICONDYLE", "LATERALEPICONDYLE", "EPICONDYLELAT",
            "FEMLATEPICONDYLE", "LFC", "KNJNTLN", "KNEEJOINTLINE"),
    "KNM": ("KNM", "MKNE", "MKNEE", "KNEEMED", "KNEEMEDIAL", "MEDKNEE", "MEDIALKNEE", "KNEEIN", "FME",
            "MEPI", "MEDEPI", "MEDEPICONDYLE", "MEDIALEPICONDYLE", "EPICONDYLEMED", "MFC"),
    "ANK": ("ANK", "ANKLE", "LATANKLE", "ANKLELAT", "ANKLELATERAL", "LMAL", "LATMAL",
            "LATMALL", "LATERALMALLEOLUS", "MALLEOLUSLAT", "FAL", "LATMALLEOLUS"),
    "ANM": ("ANM", "MMAL", "MANKLE", "MEDMAL", "MEDMALL", "MEDIALMALLEOLUS", "MALLEOLUSMED", "ANKLEMED",
            "ANKLEMEDIAL", "ANKIN", "TAM", "MEDMALLEOLUS"),
    "HEE": ("HEE", "HEEL", "CAL", "CALC", "CALCANEUS", "HEL", "HEELPOST"),
    "TOE": ("TOE", "TOETIP", "MT2", "MET2", "MH2", "SMH", "2MT", "TOE2", "FOREFOOT",
            "FMH+VMH", "MT1+MT5", "MET1+MET5", "MH1+MH5", "1MT+5MT", "FM1+FM5",
            "TOEMED+TOELAT", "MTH1+MTH5", "5MT+1MT"),
    "THI": ("THI", "THIGH", "THIGHLAT"),
    "TIB": ("TIB", "TIBIA", "SHANK", "SHA", "TUBTIB", "TT", "SHANKLAT"),
    "SHO": ("SHO", "SHOULDER", "ACROMION", "ACROMIUM", "ACR", "AC", "SHOULDERLAT"),
    "ELB": ("ELB", "ELBOW", "ELBOWLAT", "LATELBOW", "ELBLAT", "EL", "HLE", "ELBOWLATERAL"),
    "ELM": ("ELM", "ELBOWMED", "MEDELBOW", "ELBMED", "HME", "ELBOWMEDIAL"),
    "WRI": ("WRA+WRB", "WRISTRADIUS+WRISTULNA", "RSP+USP", "WRISTLAT+WRISTMED", "WRI", "WRIST",
            "WRA", "WRB", "RSP", "USP"),
    "FHD": ("FHD", "FOREHEAD", "HEADFRONT", "FRONTHEAD", "TEMPLE"),
    "BHD": ("BHD", "HEADBACK", "BACKHEAD"),
}
CENTRAL_ROLES: dict[str, tuple[str, ...]] = {
    "SACR": ("SACR", "SACRUM", "SAC", "VSAC", "VSACRAL", "SACRAL", "S1", "S2", "MPSIS"),
    "C7": ("C7", "CV7", "VC7", "VERTEBRAC7"),
    "T10": ("T10", "TV10", "TH10", "T12", "TH12", "T8"),
    "CLAV": ("CLAV", "IJ", "SJN", "JUGULARNOTCH", "STERNUMTOP", "MANUBRIUM", "STERNUM",
             "CLAVICLE"),
    "STRN": ("STRN", "PX", "SXS", "XIPHOID", "STERNUMBOTTOM"),
    "HEAD": ("HEAD", "HEADTOP", "VERTEX", "TOPHEAD"),
}
# Joint centres a lab's software stored in the file (used when the reader is asked to).
SIDED_CENTRES: dict[str, tuple[str, ...]] = {
    "HJC": ("HJC", "HIPJC", "HIPJOINTCENTRE", "HIPJOINTCENTER", "HIPCENTRE", "HIPCENTER",
            "HJCCGM24", "FEMURHEAD"),
    "KJC": ("KJC", "KNEEJC", "KNEEJOINTCENTRE", "KNEEJOINTCENTER", "KNEECENTRE", "KNEECENTER",
            "KJCCGM24", "FEO"),
    "AJC": ("AJC", "ANKLEJC", "ANKLEJOINTCENTRE", "ANKLEJOINTCENTER", "ANKLECENTRE",
            "ANKLECENTER", "AJCCGM24", "TIO"),
}
# What a file must give for legs to be built: pelvis landmarks, and per side a knee and an
# ankle (a landmark or a stored centre). Clusters alone are not enough.
REQUIRED = ("ASI", "KNE|KJC", "ANK|AJC")
ROLE_WORDS = {"ASI": "anterior superior iliac spine", "KNE": "lateral knee",
              "KJC": "knee joint centre", "ANK": "lateral malleolus",
              "AJC": "ankle joint centre"}

SITE_FILE = "markers.toml"  # a site's own names, beside its recordings


def site_names(recording: Path, given: dict[str, str] | None = None) -> dict[str, str]:
    """A site's own marker names: ``{its label: role code}`` from a ``[markers]`` table in
    ``<recording stem>.markers.toml`` or ``markers.toml`` beside the recording, and ``given``
    (a configuration's; it wins). A role code is a sided role with its side first (``LKNE``,
    ``RANK``, ``LHJC``) or a central one (``SACR``, ``C7``), as in :data:`SIDED_ROLES`,
    :data:`SIDED_CENTRES` and :data:`CENTRAL_ROLES`."""
    import tomllib

    names: dict[str, str] = {}
    for f in (recording.parent / SITE_FILE, recording.with_name(recording.stem + ".markers.toml")):
        if f.is_file():
            try:
                table = tomllib.loads(f.read_text()).get("markers", {})
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{f}: {e}") from None
            names.update({str(k): str(v) for k, v in table.items()})
    names.update(given or {})
    codes = set(CENTRAL_ROLES) | {s + r for s in "LR" for r in {**SIDED_ROLES, **SIDED_CENTRES}}
    for label, code in names.items():
        if code.upper() not in codes:
            close = sorted(c for c in codes if c[1:] == code.upper()[1:] or c == code.upper()[:4])
            raise ValueError(f"marker name {label!r}: {code!r} is no role code"
                             + (f" (did you mean {close[0]!r}?)" if close else "")
                             + "; codes: LASI-style sided roles and SACR, C7, T10, CLAV, ...")
    return {label.upper(): code.upper() for label, code in names.items()}


_SEP = re.compile(r"[\s_.\-:]+")
_SIDE_WORDS = (("LEFT", "L"), ("RIGHT", "R"))


def side_and_base(label: str) -> list[tuple[str | None, str]]:
    """The readings of a label as (side, base name): ``LASI`` -> (L, ASI); ``R_Knee_Lat`` ->
    (R, KNEELAT); ``ASIS_L`` -> (L, ASIS); ``Left Heel`` -> (L, HEEL); always (None, whole)."""
    raw = label.rsplit(":", 1)[-1].strip()
    raw = re.sub(r"(?i)[_.\-\s]?study$", "", raw)
    parts = [p for p in _SEP.split(raw) if p]
    whole = "".join(parts).upper()
    out: list[tuple[str | None, str]] = [(None, whole)]
    if not parts:
        return out
    first, last = parts[0].upper(), parts[-1].upper()
    for word, side in _SIDE_WORDS:
        if first == word and len(parts) > 1:
            out.append((side, "".join(parts[1:]).upper()))
        elif first.startswith(word) and len(first) > len(word):
            out.append((side, whole[len(word):]))
        if last == word and len(parts) > 1:
            out.append((side, "".join(parts[:-1]).upper()))
    if first in ("L", "R") and len(parts) > 1:
        out.append((first, "".join(parts[1:]).upper()))
    elif first[:1] in ("L", "R") and len(first) > 1:
        out.append((first[0], whole[1:]))  # LASI, RKneeLat
    if last in ("L", "R") and len(parts) > 1:
        out.append((last, "".join(parts[:-1]).upper()))
    return out


def _index(labels: list[str]) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """(side, base) -> label and base -> label for central names (first label wins)."""
    sided: dict[tuple[str, str], str] = {}
    central: dict[str, str] = {}
    for label in labels:
        for side, base in side_and_base(label):
            if side is None:
                central.setdefault(base, label)
            else:
                sided.setdefault((side, base), label)
    return sided, central


def _fill(names: tuple[str, ...], find) -> list[str]:
    """The candidates (label or ``A+B``) that the file's labels fill, in the table's order."""
    out = []
    for name in names:
        labels = [find(part) for part in name.split("+")]
        if all(labels):
            out.append("+".join(labels))
    return out


def role_marker_set(labels: list[str] | set[str]) -> tuple[MarkerSet | None, list[str]]:
    """The marker set the labels fill by role, or None and the roles that are missing."""
    labels = sorted(labels)
    sided_index, central_index = _index(labels)
    per_side: dict[str, dict[str, tuple[str, ...]]] = {}
    for side in ("L", "R"):
        per_side[side] = {}
        for role, names in {**SIDED_ROLES, **SIDED_CENTRES}.items():
            found = _fill(names, lambda b: sided_index.get((side, b)))
            if found:
                per_side[side][role] = tuple(found)
    missing = [f"{'left' if side == 'L' else 'right'} "
               + " or ".join(ROLE_WORDS[o] for o in need.split("|"))
               for need in REQUIRED for side in ("L", "R")
               if not any(per_side[side].get(o) for o in need.split("|"))]
    if missing:
        return None, missing
    central: dict[str, Candidates] = {}
    for role, names in CENTRAL_ROLES.items():
        found = _fill(names, central_index.get)
        if found:
            central[role] = tuple(found)
    # the back of the pelvis: both PSIS, else a sacral marker
    back: tuple[str, ...] = ()
    if per_side["L"].get("PSI") and per_side["R"].get("PSI"):
        back = (f"{per_side['L']['PSI'][0]}+{per_side['R']['PSI'][0]}",)
    back += central.pop("SACR", ())
    if back:
        central["BACK"] = back
    heads = [per_side[s][r][0] for s in ("L", "R") for r in ("FHD", "BHD") if per_side[s].get(r)]
    if heads:
        central.setdefault("HEAD", ("+".join(heads),))
    return _ByRole(name="by-role", identify=(), central=central, per_side=per_side), []


class _ByRole(MarkerSet):
    """A MarkerSet whose sided candidates come from the file's own labels, per side."""

    def __init__(self, *, per_side: dict[str, dict[str, tuple[str, ...]]], **kw):
        super().__init__(**kw)
        object.__setattr__(self, "per_side", per_side)

    def role(self, role: str, side: str | None = None) -> Candidates:
        if side is None:
            return self.central.get(role, ())
        return tuple(self.per_side[side].get(role, ()))

    def lab_centre(self, role: str, side: str) -> Candidates:
        return tuple(self.per_side[side].get(role, ()))

    def all_labels(self) -> set[str]:
        out = {p.upper() for cands in self.central.values() for c in cands for p in c.split("+")}
        for roles in self.per_side.values():
            out |= {p.upper() for cands in roles.values() for c in cands for p in c.split("+")}
        return out
