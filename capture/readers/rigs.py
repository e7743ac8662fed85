"""Rigs with named joints (BVH, ASF/AMC): Euler rotations, forward kinematics' helpers, the rig's
unit, and retargeting to the canonical 22 joints by the naming conventions of
``streams.skeletons.RIG_CONVENTIONS``.

Retargeting makes one constant matrix W (22 x rig joints), canonical = W @ rig joints, as the
layouts' MAPPINGS do: each canonical joint is a rig joint, the midpoint of two, or (for spine
joints a convention does not name) a point along the rig's pelvis-to-neck chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from streams.skeletons import CANONICAL_JOINTS, CJ, RIG_CONVENTIONS, SPINE_ALONG_TRUNK

from capture.readers.recording import RecordingError

_AXIS = {"x": 0, "y": 1, "z": 2}


def axis_rotation(axis: str, angle_rad: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices about x, y or z (column vectors, right-handed)."""
    a = np.asarray(angle_rad, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    i = _AXIS[axis.lower()]
    if i == 0:
        rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
    elif i == 1:
        rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
    else:
        rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def compose(axes: str, angles_rad: np.ndarray) -> np.ndarray:
    """R = R[axes[0]] @ R[axes[1]] @ ... for angles (..., len(axes)): the product in the order
    written (BVH's convention: ``Zrotation Xrotation Yrotation`` is Rz Rx Ry)."""
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    r = np.broadcast_to(np.eye(3), angles_rad.shape[:-1] + (3, 3))
    for k, ax in enumerate(axes):
        r = r @ axis_rotation(ax, angles_rad[..., k])
    return r


# --- joint names -----------------------------------------------------------------------------

_SIDE_WORDS = {"l": "left", "left": "left", "r": "right", "right": "right"}
_TOKENS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def name_keys(name: str) -> set[tuple[str | None, str]]:
    """The (side, role word) readings of a rig joint's name: ``mixamorig:LeftUpLeg`` ->
    (left, upleg); ``Shoulder_L`` -> (left, shoulder); ``lfemur`` -> (left, femur);
    ``Spine1`` -> (None, spine1). A name has its whole self as an unsided reading too, so
    that a central joint is found by its full name; a wrong extra reading (``root`` as
    (right, oot)) matches no role word."""
    base = name.rsplit(":", 1)[-1]  # namespace: "mixamorig:Hips", "Subject1:Hips"
    tokens = [t.lower() for t in _TOKENS.findall(base)]
    whole = "".join(tokens)
    keys: set[tuple[str | None, str]] = {(None, whole)}
    sided = [i for i, t in enumerate(tokens) if t in _SIDE_WORDS]
    if len(sided) == 1 and len(tokens) > 1:
        i = sided[0]
        keys.add((_SIDE_WORDS[tokens[i]], "".join(tokens[:i] + tokens[i + 1:])))
    elif not sided:  # glued: "lfemur", "leftfoot", "footleft"
        for word, side in (("left", "left"), ("right", "right"), ("l", "left"), ("r", "right")):
            if whole.startswith(word) and len(whole) > len(word):
                keys.add((side, whole[len(word):]))
            if len(word) > 1 and whole.endswith(word) and len(whole) > len(word):
                keys.add((side, whole[:-len(word)]))
    return keys


@dataclass
class Retarget:
    """canonical (T,22,3) = weights (22,J) @ rig joints (T,J,3); ``sources`` says per canonical
    joint which rig joints made it."""

    convention: str
    weights: np.ndarray
    sources: dict[str, str] = field(default_factory=dict)

    def apply(self, joints: np.ndarray) -> np.ndarray:
        return np.einsum("cj,tjk->tck", self.weights, joints)


def _role(canonical: str) -> tuple[str | None, str]:
    for side in ("left", "right"):
        if canonical.startswith(side + "_"):
            return side, canonical[len(side) + 1:]
    return None, canonical


def _chain(parents: list[int], lo: int, hi: int) -> list[int] | None:
    """Joint indices from ``lo`` up to ``hi`` when ``lo`` is an ancestor of ``hi``."""
    path = [hi]
    while path[-1] != lo:
        p = parents[path[-1]]
        if p < 0:
            return None
        path.append(p)
    return path[::-1]


def _resolve(table: dict[str, tuple[str, ...]], index: dict[tuple[str | None, str], int],
             names: list[str], parents: list[int], rest: np.ndarray
             ) -> tuple[np.ndarray, dict[str, str], list[str]]:
    w = np.zeros((len(CANONICAL_JOINTS), len(names)))
    sources: dict[str, str] = {}
    single: dict[str, int] = {}  # canonical joints made of one rig joint
    missing: list[str] = []
    for cname in CANONICAL_JOINTS:
        side, role = _role(cname)
        for alias in table.get(role, ()):
            parts = [index.get((side, a)) for a in alias.split("+")]
            if all(p is not None for p in parts):
                for p in parts:
                    w[CJ[cname], p] += 1.0 / len(parts)
                sources[cname] = "+".join(names[p] for p in parts)
                if len(parts) == 1:
                    single[cname] = parts[0]
                break
        else:
            if role not in table and role in SPINE_ALONG_TRUNK:
                continue  # placed along the trunk below, once pelvis and neck are known
            missing.append(cname)
    for cname, frac in SPINE_ALONG_TRUNK.items():
        if cname in sources or cname in missing:
            continue
        lo, hi = single.get("pelvis"), single.get("neck")
        chain = None if lo is None or hi is None else _chain(parents, lo, hi)
        if chain is None or len(chain) < 2:
            missing.append(cname)
            continue
        seg = np.linalg.norm(np.diff(rest[chain], axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        target = frac * cum[-1]
        k = min(int(np.searchsorted(cum, target, side="right")) - 1, len(seg) - 1)
        u = (target - cum[k]) / seg[k] if seg[k] > 0 else 0.0
        w[CJ[cname], chain[k]] += 1.0 - u
        w[CJ[cname], chain[k + 1]] += u
        sources[cname] = (f"{frac:.0%} along {'-'.join(names[c] for c in chain)}")
    return w, sources, missing


def retarget(names: list[str], parents: list[int], rest: np.ndarray, *, what: str
             ) -> Retarget:
    """The mapping of a rig (joint ``names``, ``parents`` index or -1, ``rest`` (J,3) joint
    positions of any one pose, for lengths along the trunk) to the canonical joints, by the
    first convention of RIG_CONVENTIONS that gives all 22. ``what`` names the file in errors."""
    index: dict[tuple[str | None, str], int] = {}
    for j, n in enumerate(names):
        for key in sorted(name_keys(n), key=lambda k: (k[0] is not None, k[1])):
            index.setdefault(key, j)  # the first joint of a name wins (hierarchy order)
    best: tuple[int, str, list[str]] | None = None
    for conv, table in RIG_CONVENTIONS.items():
        w, sources, missing = _resolve(table, index, names, parents, rest)
        if not missing:
            return Retarget(conv, w, sources)
        if best is None or len(missing) < len(best[2]):
            best = (len(missing), conv, missing)
    assert best is not None
    _, conv, missing = best
    raise RecordingError(
        f"{what}: no joint for the canonical {', '.join(missing)} under any naming convention "
        f"of streams.skeletons.RIG_CONVENTIONS (nearest: {conv}); the rig's joints: "
        f"{', '.join(names[:60])}{', ...' if len(names) > 60 else ''}")


# --- units -----------------------------------------------------------------------------------

# Lengths a rig may be written in (BVH has no unit; an ASF's unit is its writer's convention).
UNITS_M: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254}
# An adult's hip-to-ankle length (thigh + shank, 0.245 + 0.246 of the stature in Winter's
# anthropometric table, 1.65 m tall): the unit making the rig's leg nearest to it (by ratio) is
# the rig's unit. Neighbouring units differ by a factor 2.54 or more, so the choice is wrong
# only for a leg outside about 0.5-1.3 m in its true unit.
TYPICAL_LEG_M = 0.81


def leg_length(canonical: np.ndarray) -> float:
    """Median hip -> knee -> ankle length over frames and sides, in the rig's unit."""
    out = []
    for side in ("left", "right"):
        h, k, a = (canonical[:, CJ[f"{side}_{j}"]] for j in ("hip", "knee", "ankle"))
        out.append(np.linalg.norm(k - h, axis=-1) + np.linalg.norm(a - k, axis=-1))
    return float(np.median(np.concatenate(out)))


def guess_unit(leg: float) -> str:
    if not leg > 0:
        raise RecordingError("the rig's legs have no length")
    return min(UNITS_M, key=lambda u: abs(np.log(leg * UNITS_M[u] / TYPICAL_LEG_M)))
