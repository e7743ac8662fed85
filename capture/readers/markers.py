"""Gait-lab marker sets, written out as data, and the virtual joint centres made from them.

A marker set names, for each anatomical *role*, the labels that can fill it. Roles with a side
use ``{S}`` for the side letter (L/R); labels match case-insensitively after any subject prefix
(``Matt:LHEE``) is removed. ``A+B`` means the mean of A and B. Candidates are tried in order in
every frame, so a frame that lost LPSI can still use SACR.

Joint centres (all in metres, in the lab frame already turned to y up):
- hip: Harrington et al. 2007, "Prediction of the hip joint centre in adults, children, and
  patients with cerebral palsy based on magnetic resonance imaging", J Biomech 40:595-602,
  the pelvis-width/depth regression (no leg length needed):
  x = -0.24 PD - 9.9 mm (anterior), y = -0.30 PW - 10.9 mm (superior), z = +/-(0.33 PW + 7.3 mm)
  in the ISB pelvis frame at the mid-ASIS point (PW = inter-ASIS, PD = mid-ASIS to mid-PSIS).
- knee / ankle: the midpoint of lateral and medial markers when both exist; otherwise the
  Plug-in-Gait "chord" construction (Davis et al. 1991, Hum Mov Sci 10:575-587; Vicon
  Plug-in-Gait reference): the centre lies at half the joint width plus the marker radius from
  the lateral marker, medially, such that proximal centre -> centre -> lateral marker is a right
  angle. Joint widths come from the C3D PROCESSING group when the lab stored them.
- segments tracked only by marker clusters (no anatomical knee/ankle markers): the functional
  centre of rotation between the two clusters, SCoRE (Ehrig et al. 2006, "A survey of formal
  methods for determining the centre of rotation of ball joints", J Biomech 39:2798-2809). For a
  hinge the centre is only defined along the axis; it is placed on the axis level (medio-
  laterally) with the joint above (knee under the hip centre, ankle under the knee centre).
- trunk, head and arms: approximations from the markers present, stated per joint in
  ``JointCentres.methods``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streams.skeletons import CANONICAL_JOINTS, CJ

SIDES = ("L", "R")
Candidates = tuple[str, ...]


@dataclass(frozen=True)
class MarkerSet:
    name: str
    identify: Candidates  # labels that must all be present for a file to use this set
    central: dict[str, Candidates] = field(default_factory=dict)
    sided: dict[str, Candidates] = field(default_factory=dict)  # "{S}" = L or R
    clusters: dict[str, Candidates] = field(default_factory=dict)  # segment -> rigid markers
    lab_centres: dict[str, Candidates] = field(default_factory=dict)  # HJC/KJC/AJC the lab made

    def role(self, role: str, side: str | None = None) -> Candidates:
        if side is None:
            return self.central.get(role, ())
        return tuple(c.replace("{S}", side) for c in self.sided.get(role, ()))

    def cluster(self, segment: str, side: str | None = None) -> Candidates:
        key = segment if side is None else "{S}" + segment
        return tuple(c.replace("{S}", side or "") for c in self.clusters.get(key, ()))

    def lab_centre(self, role: str, side: str) -> Candidates:
        return tuple(c.replace("{S}", side) for c in self.lab_centres.get(role, ()))

    def all_labels(self) -> set[str]:
        out: set[str] = set()
        groups = [*self.central.values(), *self.sided.values(), *self.clusters.values(),
                  *self.lab_centres.values()]
        for cands in groups:
            for cand in cands:
                for side in SIDES:
                    out.update(p.upper() for p in cand.replace("{S}", side).split("+"))
        return out


# Vicon Plug-in-Gait (and its variants: SACR instead of LPSI/RPSI, medial knee/ankle markers as
# in CGM2 / FunctionalWalk, KAD, CGM2.4 foot markers). TOE sits on the 2nd metatarsal head.
PLUG_IN_GAIT = MarkerSet(
    name="plug-in-gait",
    identify=("LASI", "RASI", "LKNE", "RKNE", "LANK", "RANK"),
    central={
        "BACK": ("LPSI+RPSI", "SACR"),
        "C7": ("C7",), "CLAV": ("CLAV", "LCLA+RCLA"), "STRN": ("STRN",), "T10": ("T10",),
        "HEAD": ("LFHD+RFHD+LBHD+RBHD", "LFHD+RFHD", "LBHD+RBHD"),
    },
    sided={
        "ASI": ("{S}ASI",), "THI": ("{S}THI",), "KNE": ("{S}KNE",),
        "KNM": ("{S}KNEin", "{S}MKNE", "{S}KNM", "{S}MEPI", "{S}MFC"),
        "TIB": ("{S}TIB",), "ANK": ("{S}ANK",), "ANM": ("{S}ANKin", "{S}MMAL", "{S}MAL", "{S}MED"),
        "HEE": ("{S}HEE",), "TOE": ("{S}TOE", "{S}FMH+{S}VMH"),
        "SHO": ("{S}SHO",), "ELB": ("{S}ELB",), "WRI": ("{S}WRA+{S}WRB", "{S}WRA", "{S}WRB"),
    },
    lab_centres={
        "HJC": ("{S}HJC_CGM_2.4", "{S}HJC"),
        "KJC": ("{S}KJC_CGM_2.4", "{S}KJC", "{S}FEO"),
        "AJC": ("{S}AJC_CGM_2.4", "{S}AJC", "{S}TIO"),
    },
)

# Helen Hayes as exported by Motion Analysis (Cortex/OrthoTrak): VSAC sacral marker, shank wand
# SHA, medial knee/ankle markers that reuse the lateral label (told apart by their description).
HELEN_HAYES = MarkerSet(
    name="helen-hayes",
    identify=("LASI", "RASI", "VSAC", "LKNE", "RKNE"),
    central={
        "BACK": ("VSAC",), "C7": ("C7",), "CLAV": ("IJ",), "STRN": ("PX",),
        "HEAD": ("THEA+FHEA+RHEA",),
    },
    sided={
        "ASI": ("{S}ASI",), "THI": ("{S}THI",), "KNE": ("{S}KNE",), "KNM": ("{S}.Knee.Medial",),
        "TIB": ("{S}SHA",), "ANK": ("{S}ANK",), "ANM": ("{S}.Ankle.Medial",),
        "HEE": ("{S}HEE",), "TOE": ("{S}TOE", "{S}.TO"),
        "SHO": ("{S}SHO",), "ELB": ("{S}ELB",), "WRI": ("{S}WRI",),
    },
    lab_centres={"HJC": ("V{S}HI",), "KJC": ("V{S}KN",), "AJC": ("V{S}AN",)},
)

# Codamotion gait wands (pelvis ASIS/PSIS, sacral wand, thigh and shank wands, lateral knee and
# ankle, heel, toe). L.Hip/R.Hip sit lateral to the ASIS (greater trochanter), not at the HJC.
CODAMOTION_GAIT_WANDS = MarkerSet(
    name="codamotion-gait-wands",
    identify=("L.ASIS", "R.ASIS", "L.Knee", "R.Knee", "L.Ankle", "R.Ankle"),
    central={"BACK": ("L.PSIS+R.PSIS", "L.Sac.Wand+R.Sac.Wand")},
    sided={
        "ASI": ("{S}.ASIS",), "KNE": ("{S}.Knee",), "ANK": ("{S}.Ankle",),
        "HEE": ("{S}.Heel",), "TOE": ("{S}.Toe",),
    },
    clusters={"{S}THIGH": ("{S}.Ant.Fem.", "{S}.Post.Fem.", "{S}.Knee"),
              "{S}SHANK": ("{S}.Ant.Tib.", "{S}.Post.Tib.", "{S}.Ankle")},
)

# OpenSim Gait2392 example marker set (subject01_walk1.trc): thigh and shank triads, no
# anatomical knee or ankle markers in the walking trial -> functional knee and ankle centres.
OPENSIM_GAIT2392 = MarkerSet(
    name="gait2392",
    identify=("R.ASIS", "L.ASIS", "V.Sacral", "R.Thigh.Upper", "L.Thigh.Upper"),
    central={
        "BACK": ("V.Sacral",), "CLAV": ("Sternum",), "HEAD": ("R.Temple+L.Temple",),
    },
    sided={
        "ASI": ("{S}.ASIS",), "HEE": ("{S}.Heel",),
        "TOE": ("{S}.Toe.Med+{S}.Toe.Lat", "{S}.Toe.Tip"),
        "SHO": ("{S}.Acromium",), "ELB": ("{S}.Elbow",),
        "WRI": ("{S}.Wrist.Med+{S}.Wrist.Lat",),
    },
    clusters={
        "{S}THIGH": ("{S}.Thigh.Upper", "{S}.Thigh.Front", "{S}.Thigh.Rear"),
        "{S}SHANK": ("{S}.Shank.Upper", "{S}.Shank.Front", "{S}.Shank.Rear"),
        "{S}FOOT": ("{S}.Heel", "{S}.Midfoot.Sup", "{S}.Midfoot.Lat", "{S}.Toe.Tip"),
    },
)

# OpenCap validation-study lab marker set (Uhlrich et al. 2023). r_toe is the toe marker,
# r_calc the heel; R_HJC/L_HJC are hip centres the lab computed (used only on request).
OPENCAP_LAB = MarkerSet(
    name="opencap",
    identify=("r.ASIS", "L.ASIS", "r_knee", "L_knee", "r_ankle", "L_ankle"),
    central={
        "BACK": ("r.PSIS+L.PSIS",), "C7": ("C7",), "CLAV": ("R_Sternum+L_Sternum",),
    },
    sided={
        "ASI": ("{S}.ASIS",), "KNE": ("{S}_knee",), "ANK": ("{S}_ankle",),
        "HEE": ("{S}_calc",), "TOE": ("{S}_toe",),
        "SHO": ("{S}_Shoulder",), "ELB": ("{S}_elbow_lat",), "ELM": ("{S}_elbow_med",),
        "WRI": ("{S}_wrist_radius+{S}_wrist_ulna",),
    },
    clusters={"{S}THIGH": ("{S}_thigh1", "{S}_thigh2", "{S}_thigh3", "{S}_thigh4"),
              "{S}SHANK": ("{S}_sh2", "{S}_sh3", "{S}_shank_antsup")},
    lab_centres={"HJC": ("{S}_HJC",)},
)

# Qualisys "hybrid" walking set (c3d.org sample 26): pelvis landmarks, 4-marker thigh and shank
# clusters, heel and 1st/5th metatarsal heads -> functional knee and ankle centres.
QUALISYS_CLUSTERS = MarkerSet(
    name="qualisys-clusters",
    identify=("R_ASIS", "L_ASIS", "SACRUM", "R_THIGH_1", "L_SHANK_2"),
    central={"BACK": ("SACRUM",)},
    sided={"ASI": ("{S}_ASIS",), "HEE": ("{S}_HEEL",), "TOE": ("{S}_MT_1+{S}_MT_5",)},
    clusters={
        "{S}THIGH": ("{S}_THIGH_1", "{S}_THIGH_2", "{S}_THIGH_3", "{S}_THIGH_4"),
        "{S}SHANK": ("{S}_SHANK_1", "{S}_SHANK_2", "{S}_SHANK_3", "{S}_SHANK_4"),
        "{S}FOOT": ("{S}_HEEL", "{S}_MT_1", "{S}_MT_5"),
    },
)

# Qualisys anatomical set (c3d.org sample 26 Capture0002): knjntln = lateral knee joint line,
# suppat = suprapatellar, tubtib = tibial tuberosity, th12 = 12th thoracic spinous process.
QUALISYS_ANATOMICAL = MarkerSet(
    name="qualisys-anatomical",
    identify=("r_asis", "l_asis", "sacrum", "r_knjntln", "l_knjntln"),
    central={"BACK": ("sacrum",), "T10": ("th12",)},
    sided={
        "ASI": ("{S}_asis",), "KNE": ("{S}_knjntln",), "TIB": ("{S}_tubtib",),
        "ANK": ("{S}_ankle",), "HEE": ("{S}_heel",), "TOE": ("{S}_toe",),
        "SHO": ("{S}_shoulder",),
    },
    clusters={"{S}SHANK": ("{S}_tubtib", "{S}_knjntln", "{S}_ankle")},
)

MARKER_SETS: tuple[MarkerSet, ...] = (
    PLUG_IN_GAIT, HELEN_HAYES, CODAMOTION_GAIT_WANDS, OPENSIM_GAIT2392, OPENCAP_LAB,
    QUALISYS_CLUSTERS, QUALISYS_ANATOMICAL,
)


def strip_prefix(label: str) -> str:
    """``Matt:LHEE`` -> ``LHEE`` (Vicon subject prefix)."""
    return label.rsplit(":", 1)[-1].strip()


def identify(labels: list[str] | set[str]) -> MarkerSet | None:
    """The marker set whose identifying labels are all present and that explains most labels."""
    have = {strip_prefix(x).upper() for x in labels}
    best, best_score = None, -1
    for ms in MARKER_SETS:
        if not all(x.upper() in have for x in ms.identify):
            continue
        score = len(have & ms.all_labels())
        if score > best_score:
            best, best_score = ms, score
    return best


# --------------------------------------------------------------------------- subject parameters


@dataclass(frozen=True)
class SubjectParams:
    """Anthropometry the joint-centre constructions need (metres); defaults are adult means."""

    knee_width: tuple[float, float] = (0.105, 0.105)  # (left, right)
    ankle_width: tuple[float, float] = (0.070, 0.070)
    marker_radius: float = 0.007  # 14 mm markers
    height: float | None = None


# --------------------------------------------------------------------------- geometry helpers


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / n


def _resolve(markers: dict[str, np.ndarray], cands: Candidates, n: int) -> np.ndarray:
    """Per frame, the first candidate whose markers are all present; NaN where none is."""
    out = np.full((n, 3), np.nan)
    for cand in cands:
        parts = [markers.get(p.upper()) for p in cand.split("+")]
        if any(p is None for p in parts):
            continue
        val = np.mean(parts, axis=0)
        take = np.isnan(out).any(1) & np.isfinite(val).all(1)
        out[take] = val[take]
    return out


def _chord(prox: np.ndarray, lateral: np.ndarray, medial_dir: np.ndarray, offset: float
           ) -> np.ndarray:
    """Joint centre ``offset`` from the lateral marker such that prox->centre->lateral is 90 deg.

    The centre lies in the plane of prox, lateral marker and the medial direction (Plug-in-Gait
    chord function with the plane taken from the pelvis medio-lateral axis)."""
    u = prox - lateral
    length = np.linalg.norm(u, axis=-1, keepdims=True)
    u = u / length
    v = _unit(medial_dir - np.sum(medial_dir * u, axis=-1, keepdims=True) * u)
    cos = np.clip(offset / length, -1.0, 1.0)
    sin = np.sqrt(1.0 - cos**2)
    return lateral + offset * (cos * u + sin * v)


def cluster_poses(points: np.ndarray, max_rms: float = 0.02
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigid pose (R (T,3,3), origin (T,3), valid (T,)) of a marker cluster (T,M,3) by Kabsch
    against the cluster's shape in its most complete frame; frames with < 3 markers, or whose
    markers do not fit the rigid shape within ``max_rms`` metres, are invalid."""
    ok = np.isfinite(points).all(-1)
    ref_frame = int(np.argmax(ok.sum(1)))
    w = (ok & ok[ref_frame]).astype(np.float64)  # (T, M): markers usable in each frame
    cnt = w.sum(1)
    enough = cnt >= 3
    ref = np.where(ok[ref_frame][:, None], points[ref_frame], 0.0)  # (M, 3)
    cur = np.where(w[..., None] > 0, points, 0.0)  # (T, M, 3)
    safe = np.maximum(cnt, 1.0)[:, None]
    c_ref = np.einsum("tm,mk->tk", w, ref) / safe
    c_cur = np.einsum("tm,tmk->tk", w, cur) / safe
    a = (ref[None] - c_ref[:, None]) * w[..., None]
    b = (cur - c_cur[:, None]) * w[..., None]
    h = np.einsum("tmi,tmj->tij", b, a)  # cross-covariance: current x reference
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, 2] *= d[:, None]
    rot = u @ vt
    org = c_cur - np.einsum("tij,tj->ti", rot, c_ref)
    fit = np.einsum("tij,mj->tmi", rot, ref) + org[:, None]
    rms = np.sqrt(np.einsum("tm,tm->t", w, np.sum((fit - cur) ** 2, -1)) / safe[:, 0])
    # a swapped or mislabelled marker leaves the cluster non-rigid in that frame
    valid = enough & (rms <= max_rms)
    rot[~valid] = np.nan
    org[~valid] = np.nan
    return rot, org, valid


def score_centre(a: tuple[np.ndarray, np.ndarray, np.ndarray],
                 b: tuple[np.ndarray, np.ndarray, np.ndarray], *, hinge: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """SCoRE: the point fixed in both segments, world (T,3) per frame; for a hinge (given, or
    found from the motion) the world axis (T,3) along which that point is undetermined; and per
    frame the distance between the point as carried by each segment (how well it fits)."""
    ra, oa, va = a
    rb, ob, vb = b
    both = va & vb
    t = len(va)
    centre = np.full((t, 3), np.nan)
    spread = np.full(t, np.nan)  # distance between the centre as seen from each segment
    if both.sum() < 10:
        return centre, None, spread
    m = np.concatenate([ra[both], -rb[both]], axis=2).reshape(-1, 6)
    rhs = (ob[both] - oa[both]).reshape(-1)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    # a hinge leaves one direction almost free; solve without it (minimum-norm solution)
    hinge = hinge or s[-1] < 0.05 * s[0]
    keep = np.arange(len(s)) < (len(s) - 1 if hinge else len(s))
    x = vt[keep].T @ ((u[:, keep].T @ rhs) / s[keep])
    ca, cb = x[:3], x[3:]
    pa = np.einsum("tij,j->ti", ra, ca) + oa
    pb = np.einsum("tij,j->ti", rb, cb) + ob
    centre[both] = 0.5 * (pa[both] + pb[both])
    spread[both] = np.linalg.norm(pa[both] - pb[both], axis=-1)
    axis = None
    if hinge:
        na = vt[-1, :3] / np.linalg.norm(vt[-1, :3])
        axis = np.full((t, 3), np.nan)
        axis[both] = np.einsum("tij,j->ti", ra[both], na)
    return centre, axis, spread


def _place_on_axis(centre: np.ndarray, axis: np.ndarray, lateral: np.ndarray,
                   origin: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Slide a hinge centre along its axis (one constant shift) so that its medio-lateral
    coordinate (along ``lateral`` from ``origin``) matches that of ``target`` on median."""
    ml_c = np.sum((centre - origin) * lateral, -1)
    ml_t = np.sum((target - origin) * lateral, -1)
    ml_a = np.sum(axis * lateral, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.nanmedian((ml_t - ml_c) / ml_a)
    if not np.isfinite(shift):
        return centre
    return centre + shift * axis


# --------------------------------------------------------------------------- joint centres


# a functional centre whose two segments disagree on it by more than this is kept at half trust
SCORE_SPREAD_DOUBTFUL = 0.04  # metres


@dataclass
class JointCentres:
    joints: np.ndarray  # (T, 22, 3), NaN where not computable
    methods: dict[str, str]  # canonical joint -> how it was made ("" = not available)
    trust: np.ndarray  # (T, 22) in [0, 1]: 1, or less where the construction is doubtful


def joint_centres(ms: MarkerSet, markers: dict[str, np.ndarray], params: SubjectParams,
                  *, lab_centres: bool = False) -> JointCentres:
    """Canonical joints (T,22,3) from labelled markers (upper-case label -> (T,3) metres, y up).

    ``lab_centres`` prefers hip/knee/ankle centres the lab's own model stored in the file.
    """
    n = len(next(iter(markers.values())))
    out = np.full((n, len(CANONICAL_JOINTS), 3), np.nan)
    trust = np.ones((n, len(CANONICAL_JOINTS)), dtype=np.float32)
    methods = {j: "" for j in CANONICAL_JOINTS}
    up = np.array([0.0, 1.0, 0.0])

    def put(joint: str, value: np.ndarray, method: str) -> None:
        if np.isfinite(value).all(1).any():
            out[:, CJ[joint]] = value
            methods[joint] = method

    def role(name: str, side: str | None = None) -> np.ndarray:
        return _resolve(markers, ms.role(name, side), n)

    def cluster(segment: str, side: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        labels = ms.cluster(segment, side)
        if not labels or not all(x.upper() in markers for x in labels):
            return None
        pts = np.stack([markers[x.upper()] for x in labels], axis=1)
        poses = cluster_poses(pts)
        return poses if poses[2].sum() >= 10 else None

    # pelvis frame (ISB: x anterior, y superior, z right) at the mid-ASIS point
    lasi, rasi, back = role("ASI", "L"), role("ASI", "R"), role("BACK")
    mid_asi = 0.5 * (lasi + rasi)
    z = _unit(rasi - lasi)
    ant = mid_asi - back
    x_from_back = _unit(ant - np.sum(ant * z, -1, keepdims=True) * z)
    x = np.where(np.isfinite(x_from_back), x_from_back, _unit(np.cross(up, z)))
    y = np.cross(z, x)
    pw = np.nanmedian(np.linalg.norm(rasi - lasi, axis=-1)) if np.isfinite(z).any() else np.nan
    pd = np.nanmedian(np.linalg.norm(ant, axis=-1)) if np.isfinite(x_from_back).any() else np.nan
    if not np.isfinite(pd):
        pd = 0.66 * pw  # typical adult depth/width ratio when no posterior marker exists

    hjc: dict[str, np.ndarray] = {}
    for side, sign in (("L", -1.0), ("R", 1.0)):
        lab = _resolve(markers, ms.lab_centre("HJC", side), n) if lab_centres else None
        if lab is not None and np.isfinite(lab).any():
            hjc[side], how = lab, "lab hip centre"
        else:
            hjc[side] = (mid_asi + x * (-0.24 * pd - 0.0099) + y * (-0.30 * pw - 0.0109)
                         + z * sign * (0.33 * pw + 0.0073))
            how = "Harrington 2007 regression"
        put("left_hip" if side == "L" else "right_hip", hjc[side], how)
    put("pelvis", 0.5 * (hjc["L"] + hjc["R"]), "mid hip centres")

    for side in SIDES:
        s = "left" if side == "L" else "right"
        k = 0 if side == "L" else 1
        medial = z if side == "L" else -z  # toward the body's midline
        # knee
        kjc, how = None, ""
        if lab_centres:
            lab = _resolve(markers, ms.lab_centre("KJC", side), n)
            if np.isfinite(lab).any():
                kjc, how = lab, "lab knee centre"
        if kjc is None:
            kne, knm = role("KNE", side), role("KNM", side)
            chord = _chord(hjc[side], kne, medial, params.knee_width[k] / 2 + params.marker_radius)
            if np.isfinite(knm).any():
                both = 0.5 * (kne + knm)
                kjc = np.where(np.isfinite(both), both, chord)
                how = "mid lateral/medial knee markers"
            elif np.isfinite(chord).any():
                kjc, how = chord, "chord from lateral knee marker and knee width"
            elif (thigh := cluster("THIGH", side)) and (shank := cluster("SHANK", side)):
                func, axis, spread = score_centre(thigh, shank, hinge=True)
                if axis is not None:
                    func = _place_on_axis(func, axis, z, mid_asi, hjc[side])
                kjc = func
                trust[spread > SCORE_SPREAD_DOUBTFUL, CJ[f"{s}_knee"]] = 0.5
                how = f"functional (SCoRE) thigh/shank, fit {1000 * np.nanmedian(spread):.0f} mm"
        if kjc is not None:
            put(f"{s}_knee", kjc, how)
        else:
            kjc = np.full((n, 3), np.nan)
        # ankle
        ajc, how = None, ""
        if lab_centres:
            lab = _resolve(markers, ms.lab_centre("AJC", side), n)
            if np.isfinite(lab).any():
                ajc, how = lab, "lab ankle centre"
        if ajc is None:
            ank, anm = role("ANK", side), role("ANM", side)
            chord = _chord(kjc, ank, medial, params.ankle_width[k] / 2 + params.marker_radius)
            if np.isfinite(anm).any():
                both = 0.5 * (ank + anm)
                ajc = np.where(np.isfinite(both), both, chord)
                how = "mid lateral/medial malleoli"
            elif np.isfinite(chord).any():
                ajc, how = chord, "chord from lateral malleolus and ankle width"
            elif (shank := cluster("SHANK", side)) and (foot := cluster("FOOT", side)):
                func, axis, spread = score_centre(shank, foot, hinge=True)
                if axis is not None:
                    func = _place_on_axis(func, axis, z, mid_asi, kjc)
                ajc = func
                trust[spread > SCORE_SPREAD_DOUBTFUL, CJ[f"{s}_ankle"]] = 0.5
                how = f"functional (SCoRE) shank/foot, fit {1000 * np.nanmedian(spread):.0f} mm"
        if ajc is not None:
            put(f"{s}_ankle", ajc, how)
        put(f"{s}_foot", role("TOE", side), "forefoot marker(s)")

    # trunk: neck at the base of the neck, spine joints along pelvis -> neck at SMPL proportions
    c7, clav = role("C7"), role("CLAV")
    lsho, rsho = role("SHO", "L"), role("SHO", "R")
    neck = 0.5 * (c7 + clav)
    neck_how = "mid C7/clavicle"
    if not np.isfinite(neck).any():
        neck = np.where(np.isfinite(clav), clav, c7)
        neck_how = "single sternal/C7 marker"
    if not np.isfinite(neck).any():
        neck = 0.5 * (lsho + rsho)
        neck_how = "mid acromia"
    put("neck", neck, neck_how)
    pelvis = out[:, CJ["pelvis"]]
    for joint, frac in (("spine1", 0.22), ("spine2", 0.48), ("spine3", 0.58)):
        put(joint, pelvis + frac * (neck - pelvis), f"pelvis->neck line at {frac:.2f}")
    put("head", role("HEAD"), "mean of head markers")
    down = _unit(pelvis - neck)
    down = np.where(np.isfinite(down), down, -up)
    for side, sho in (("L", lsho), ("R", rsho)):
        s = "left" if side == "L" else "right"
        # glenohumeral centre about 5 cm below the acromion marker (Plug-in-Gait shoulder offset)
        shoulder = sho + 0.05 * down
        put(f"{s}_shoulder", shoulder, "acromion marker lowered 5 cm")
        put(f"{s}_collar", 0.5 * (neck + shoulder), "mid neck/shoulder")
        elb, elm = role("ELB", side), role("ELM", side)
        both = 0.5 * (elb + elm)
        put(f"{s}_elbow", np.where(np.isfinite(both), both, elb), "elbow marker(s)")
        put(f"{s}_wrist", role("WRI", side), "wrist marker(s)")
    return JointCentres(out, methods, trust)


def foot_markers(ms: MarkerSet, markers: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 4, 3) heel and toe markers (streams.skeletons.FOOT_POINTS order: left heel, right
    heel, left toe, right toe) by their roles, NaN where a frame lacks one."""
    n = len(next(iter(markers.values())))
    return np.stack([_resolve(markers, ms.role(role, side), n)
                     for role in ("HEE", "TOE") for side in SIDES], axis=1)


def vertical_reference(ms: MarkerSet | None, markers: dict[str, np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray] | None:
    """(upper, lower) body points (T,3) whose difference points up: pelvis vs feet.

    The ankles come first: over a stride they are under the hips on average. Heel and toe
    together are too, but a toe alone is ~10 cm ahead and would tilt the vertical."""
    if ms is None:
        return None
    n = len(next(iter(markers.values())))
    uppers = [ms.role("ASI", "L") + ms.role("ASI", "R") + ms.role("BACK"), ms.cluster("PELVIS")]
    lowers = [ms.role("ANK", "L") + ms.role("ANK", "R"),
              ms.role("HEE", "L") + ms.role("HEE", "R")
              + ms.role("TOE", "L") + ms.role("TOE", "R"),
              ms.cluster("FOOT", "L") + ms.cluster("FOOT", "R")]

    def first_present(groups: list[Candidates]) -> np.ndarray | None:
        for cands in groups:
            pts = [_resolve(markers, (c,), n) for c in cands]
            pts = [p for p in pts if np.isfinite(p).all(1).any()]
            if pts:
                return _nanmean(np.stack(pts))
        return None

    upper, lower = first_present(uppers), first_present(lowers)
    if upper is None or lower is None:
        return None
    return upper, lower


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN, NaN (without a warning) where all are NaN."""
    ok = np.isfinite(a)
    cnt = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, a, 0.0).sum(0) / cnt
