"""BVH and ASF/AMC readers: forward kinematics against hand-worked and scipy rotations,
retargeting by joint names (streams.skeletons.RIG_CONVENTIONS), and one real file of each corpus
in ../shared/data, read from its zip."""

from __future__ import annotations

import itertools
import re
import zipfile

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from capture.readers import RecordingError, load_recording
from capture.readers.asf_amc import Bone, bone_starts, parse_amc, parse_asf
from capture.readers.bvh import load_bvh, parse_bvh, world_positions
from capture.readers.rigs import name_keys, retarget
from streams.skeletons import CANONICAL_JOINTS, CJ


# --- generated BVH ---------------------------------------------------------------------------

def bvh_text(joints: list[tuple[str, int, tuple[float, float, float], list[str]]],
             frames: np.ndarray, frame_time: float = 1 / 30) -> str:
    """A BVH from (name, parent index, offset, channels) in hierarchy order (children follow
    their parent)."""
    children: dict[int, list[int]] = {}
    for i, (_, p, _, _) in enumerate(joints):
        children.setdefault(p, []).append(i)
    out = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        name, p, off, ch = joints[i]
        pad = "  " * depth
        out.append(f"{pad}{'ROOT' if p < 0 else 'JOINT'} {name}")
        out.append(pad + "{")
        out.append(f"{pad}  OFFSET {off[0]} {off[1]} {off[2]}")
        out.append(f"{pad}  CHANNELS {len(ch)} {' '.join(ch)}")
        for c in children.get(i, []):
            emit(c, depth + 1)
        if not children.get(i):
            out.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET 0 1 0", pad + "  }"])
        out.append(pad + "}")

    emit(0, 0)
    out += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time}"]
    out += [" ".join(f"{v:.10g}" for v in row) for row in np.atleast_2d(frames)]
    return "\n".join(out) + "\n"


ROT6 = ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]


def test_two_bone_chain_lands_where_worked_by_hand():
    # root at (1,2,3) turned 90 deg about z; A 10 up the root's y; A turned 90 deg about x;
    # B 5 along A's z. A = (1,2,3) + Rz90 (0,10,0) = (-9,2,3);
    # B = A + Rz90 Rx90 (0,0,5) = A + Rz90 (0,-5,0) = A + (5,0,0) = (-4,2,3)
    joints = [("root", -1, (0, 0, 0), ROT6),
              ("A", 0, (0, 10, 0), ["Xrotation", "Yrotation", "Zrotation"]),
              ("B", 1, (0, 0, 5), ["Zrotation", "Xrotation", "Yrotation"])]
    frame = np.array([[1, 2, 3, 90, 0, 0, 90, 0, 0, 0, 0, 0]], float)
    rig = parse_bvh(bvh_text(joints, frame))
    pos = world_positions(rig)[0]
    np.testing.assert_allclose(pos, [[1, 2, 3], [-9, 2, 3], [-4, 2, 3]], atol=1e-6)


@pytest.mark.parametrize("order", ["".join(p) for p in itertools.permutations("XYZ")])
def test_rotation_orders_compose_as_written(order):
    """Each order of three rotation channels is the product in the order written (scipy's
    intrinsic Euler angles), positions channels placed anywhere among them."""
    rng = np.random.default_rng(7)
    ang_root, ang_a = rng.uniform(-170, 170, 3), rng.uniform(-170, 170, 3)
    chans = [f"{a}rotation" for a in order]
    # positions interleaved with rotations on the root, a partial position on the child
    root_ch = [chans[0], "Xposition", chans[1], "Yposition", "Zposition", chans[2]]
    a_ch = [chans[0], chans[1], "Yposition", chans[2]]
    joints = [("root", -1, (0, 0, 0), root_ch), ("A", 0, (3, 4, 5), a_ch),
              ("B", 1, (0, 0, 7), ["Zrotation"])]
    p0 = np.array([0.5, -1.0, 2.0])
    frame = [ang_root[0], p0[0], ang_root[1], p0[1], p0[2], ang_root[2],
             ang_a[0], ang_a[1], 9.0, ang_a[2], 0.0]
    pos = world_positions(parse_bvh(bvh_text(joints, np.array([frame]))))[0]
    r_root = Rotation.from_euler(order, ang_root, degrees=True).as_matrix()
    r_a = Rotation.from_euler(order, ang_a, degrees=True).as_matrix()
    a = p0 + r_root @ np.array([3.0, 9.0, 5.0])  # Yposition replaces the offset's y
    b = a + r_root @ r_a @ np.array([0.0, 0.0, 7.0])
    np.testing.assert_allclose(pos, [p0, a, b], atol=1e-6)


# A humanoid T-pose in cm, facing +z, y up (left is +x): (name, parent, offset)
HUMANOID = [
    ("Hips", None, (0, 95, 0)), ("Spine", "Hips", (0, 9, 0)), ("Spine1", "Spine", (0, 12, 0)),
    ("Spine2", "Spine1", (0, 12, 0)), ("Neck", "Spine2", (0, 16, 0)), ("Head", "Neck", (0, 10, 0)),
    ("LeftShoulder", "Spine2", (4, 13, 0)), ("LeftArm", "LeftShoulder", (13, 0, 0)),
    ("LeftForeArm", "LeftArm", (28, 0, 0)), ("LeftHand", "LeftForeArm", (25, 0, 0)),
    ("RightShoulder", "Spine2", (-4, 13, 0)), ("RightArm", "RightShoulder", (-13, 0, 0)),
    ("RightForeArm", "RightArm", (-28, 0, 0)), ("RightHand", "RightForeArm", (-25, 0, 0)),
    ("LeftUpLeg", "Hips", (9, -6, 0)), ("LeftLeg", "LeftUpLeg", (0, -42, 0)),
    ("LeftFoot", "LeftLeg", (0, -40, 0)), ("LeftToeBase", "LeftFoot", (0, -6, 13)),
    ("RightUpLeg", "Hips", (-9, -6, 0)), ("RightLeg", "RightUpLeg", (0, -42, 0)),
    ("RightFoot", "RightLeg", (0, -40, 0)), ("RightToeBase", "RightFoot", (0, -6, 13)),
]
CANON_OF = {"pelvis": "Hips", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg",
            "left_ankle": "LeftFoot", "left_foot": "LeftToeBase", "neck": "Neck", "head": "Head",
            "left_collar": "LeftShoulder", "left_shoulder": "LeftArm",
            "left_elbow": "LeftForeArm", "left_wrist": "LeftHand", "right_hip": "RightUpLeg",
            "right_foot": "RightToeBase", "right_shoulder": "RightArm"}


def humanoid_bvh(rename=lambda n: n, n_frames: int = 3) -> tuple[str, np.ndarray]:
    """(BVH text, (T, J, 3) world joint origins in cm), with a knee bend and walking forward."""
    names = [j[0] for j in HUMANOID]
    joints = [(rename(n), -1 if p is None else names.index(p), off,
               ROT6 if p is None else ["Zrotation", "Xrotation", "Yrotation"])
              for n, p, off in HUMANOID]
    frames = np.zeros((n_frames, 6 + 3 * (len(HUMANOID) - 1)))
    frames[:, 1] = 95.0
    frames[:, 2] = np.arange(n_frames) * 4.0  # 4 cm a frame along +z
    knee = 6 + 3 * (names.index("LeftLeg") - 1)
    frames[:, knee + 1] = np.linspace(0, 60, n_frames)  # Xrotation of the left knee
    text = bvh_text(joints, frames)
    return text, world_positions(parse_bvh(text))


def test_humanoid_bvh_retargets_in_metres(tmp_path):
    text, pos = humanoid_bvh()
    path = tmp_path / "walk.bvh"
    path.write_text(text)
    rec = load_recording(path)
    assert rec.meta["unit"] == "cm" and rec.meta["convention"] == "humanoid"
    assert rec.meta["up_axis"] == "+Y"
    names = [j[0] for j in HUMANOID]
    for cname, jname in CANON_OF.items():
        np.testing.assert_allclose(rec.joint(cname), pos[:, names.index(jname)] / 100,
                                   atol=1e-5, err_msg=cname)
    # spine joints lie on the Hips-Spine-Spine1-Spine2-Neck chain (a straight line here) at
    # 24/53/64 % of its 49 cm
    for cname, frac in (("spine1", 0.24), ("spine2", 0.53), ("spine3", 0.64)):
        np.testing.assert_allclose(rec.joint(cname)[0], [0, 0.95 + frac * 0.49, 0], atol=1e-6)
    assert (rec.confidence == 1).all() and rec.rate_hz == pytest.approx(30, rel=1e-6)
    assert set(np.diff(rec.t_us)) <= {33333, 33334}  # Frame Time 0.0333.. s


def test_the_same_rig_under_other_naming_conventions_gives_the_same_joints(tmp_path):
    ref = load_bvh(_write(tmp_path, "a.bvh", humanoid_bvh()[0])).joints
    bandai = {"Hips": "Hips", "Spine": "Spine", "Spine1": "Chest1", "Spine2": "Chest",
              "Neck": "Neck", "Head": "Head"}
    for side, s in (("Left", "L"), ("Right", "R")):
        bandai.update({f"{side}Shoulder": f"Shoulder_{s}", f"{side}Arm": f"UpperArm_{s}",
                       f"{side}ForeArm": f"LowerArm_{s}", f"{side}Hand": f"Hand_{s}",
                       f"{side}UpLeg": f"UpperLeg_{s}", f"{side}Leg": f"LowerLeg_{s}",
                       f"{side}Foot": f"Foot_{s}", f"{side}ToeBase": f"Toes_{s}"})
    unreal = {"Hips": "pelvis", "Spine": "spine_01", "Spine1": "spine_02", "Spine2": "spine_03",
              "Neck": "neck_01", "Head": "head"}
    for side, s in (("Left", "l"), ("Right", "r")):
        unreal.update({f"{side}Shoulder": f"clavicle_{s}", f"{side}Arm": f"upperarm_{s}",
                       f"{side}ForeArm": f"lowerarm_{s}", f"{side}Hand": f"hand_{s}",
                       f"{side}UpLeg": f"thigh_{s}", f"{side}Leg": f"calf_{s}",
                       f"{side}Foot": f"foot_{s}", f"{side}ToeBase": f"ball_{s}"})
    renames = {"mixamo": lambda n: "mixamorig:" + n, "upper": str.upper,
               "unreal": unreal.__getitem__,
               "bandai": bandai.__getitem__,
               "snake": lambda n: "_".join(w.lower() for w in
                                           re.findall("[A-Z][a-z]*|\\d", n))}
    for label, rename in renames.items():
        rec = load_bvh(_write(tmp_path, f"{label}.bvh", humanoid_bvh(rename)[0]))
        np.testing.assert_allclose(rec.joints, ref, atol=1e-6, err_msg=label)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_name_keys_read_sides_prefixes_and_case():
    assert ("left", "upleg") in name_keys("mixamorig:LeftUpLeg")
    assert ("left", "upleg") in name_keys("LEFTUPLEG")
    assert ("right", "shoulder") in name_keys("Shoulder_R")
    assert ("left", "femur") in name_keys("lfemur")
    assert ("right", "hip") in name_keys("right_hip")
    assert ("left", "hip") in name_keys("L_Hip")
    assert ("left", "clavicle") in name_keys("clavicle_l")
    assert (None, "spine1") in name_keys("Spine1")
    assert all(k[0] is None for k in name_keys("Hips") if k[1] == "hips")


def test_smpl_names_keep_their_own_meaning():
    """In SMPL, "shoulder" is the upper-arm joint and "foot" the ball of the foot; in a humanoid
    rig they are the clavicle and the ankle. Each rig is read in its own convention."""
    names = list(CANONICAL_JOINTS)
    parents = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
    rt = retarget(names, parents, np.random.default_rng(0).normal(size=(22, 3)), what="smpl")
    assert rt.convention == "smpl"
    np.testing.assert_array_equal(rt.weights, np.eye(22))


def test_a_rig_without_toes_names_what_is_missing_and_what_it_has(tmp_path):
    keep = [j for j in HUMANOID if "Toe" not in j[0]]
    text = bvh_text([(n, -1 if p is None else [k[0] for k in keep].index(p), off,
                      ["Xrotation"] if p else ROT6) for n, p, off in keep],
                    np.zeros((2, 6 + len(keep) - 1)))
    with pytest.raises(RecordingError) as e:
        load_bvh(_write(tmp_path, "notoes.bvh", text))
    msg = str(e.value)
    assert "left_foot, right_foot" in msg and "nearest: humanoid" in msg
    assert "LeftFoot" in msg and "Hips" in msg


def test_a_truncated_bvh_keeps_its_whole_frames(tmp_path):
    text, pos = humanoid_bvh(n_frames=5)
    cut = text[: text.rstrip("\n").rfind("\n")] + "\n1 2 3\n"  # last frame short
    rec = load_bvh(_write(tmp_path, "cut.bvh", cut))
    assert rec.n_frames == 4 and "header says 5 frames" in rec.meta["truncated"]


# --- generated ASF/AMC -----------------------------------------------------------------------

def test_asf_bone_rotates_about_its_own_axis():
    """An ASF bone's dof rotation is about its axis frame: C Rx C^-1 turns about C x, and it
    starts where its parent ends (lengths divided by :units length)."""
    asf = parse_asf("""
:units
  length 0.5
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     name lfemur
     direction 0 -1 0
     length 10
     axis 0 0 0 XYZ
    dof rx
  end
  begin
     name ltibia
     direction 0 -1 0
     length 10
     axis 0 0 20 XYZ
    dof rx
  end
:hierarchy
  begin
    root lfemur
    lfemur ltibia
  end
""")
    amc = parse_amc("#!OML:ASF x\n:FULLY-SPECIFIED\n:DEGREES\n1\nroot 2 4 6 0 0 90\n"
                    "lfemur 90\nltibia 30\n", asf)
    names, parents, start = bone_starts(asf, amc)
    assert names == ["root", "lfemur", "ltibia"] and parents == [-1, 0, 1]
    root = np.array([4.0, 8.0, 12.0])  # 2 4 6 / 0.5
    rz = Rotation.from_euler("z", 90, degrees=True)
    femur = rz * Rotation.from_euler("x", 90, degrees=True)
    knee = root + femur.apply([0, -20.0, 0])
    np.testing.assert_allclose(start[0], [root, root, knee], atol=1e-9)
    # the tibia's end: turned 30 deg about its axis frame's x (the x axis turned 20 deg about z)
    axis = Rotation.from_euler("z", 20, degrees=True).apply([1.0, 0, 0])
    tibia = femur * Rotation.from_rotvec(np.radians(30) * axis)
    asf.bones["ltoe"] = Bone("ltoe", parent="ltibia")
    _, _, start = bone_starts(asf, amc)
    np.testing.assert_allclose(start[0, 3], knee + tibia.apply([0, -20.0, 0]), atol=1e-9)


def cmu_like_asf() -> tuple[str, dict[str, tuple[str, tuple[float, float, float], float]]]:
    """An ASF with CMU's bone names (rest pose facing +z, y up, left = +x; lengths in CMU's
    unit, an inch times 0.45): (text, bone -> (parent, direction, length))."""
    bones: dict[str, tuple[str, tuple[float, float, float], float]] = {
        "lowerback": ("root", (0, 1, 0), 5.0), "upperback": ("lowerback", (0, 1, 0), 5.0),
        "thorax": ("upperback", (0, 1, 0), 5.0), "lowerneck": ("thorax", (0, 1, 0), 4.0),
        "upperneck": ("lowerneck", (0, 1, 0), 4.0), "head": ("upperneck", (0, 1, 0), 4.0)}
    for s, x in (("l", 1.0), ("r", -1.0)):
        bones.update({
            f"{s}hipjoint": ("root", (0.6 * x, -0.8, 0), 4.0),
            f"{s}femur": (f"{s}hipjoint", (0, -1, 0), 7.6),
            f"{s}tibia": (f"{s}femur", (0, -1, 0), 7.3),
            f"{s}foot": (f"{s}tibia", (0, -0.6, 0.8), 2.2),
            f"{s}toes": (f"{s}foot", (0, 0, 1), 1.1),
            f"{s}clavicle": ("thorax", (0.8 * x, 0.6, 0), 6.0),
            f"{s}humerus": (f"{s}clavicle", (x, 0, 0), 12.0),
            f"{s}radius": (f"{s}humerus", (x, 0, 0), 9.0),
            f"{s}wrist": (f"{s}radius", (x, 0, 0), 4.0)})
    out = [":units", "  mass 1.0", "  length 0.45", "  angle deg", ":root",
           "   order TX TY TZ RX RY RZ", "   axis XYZ", "   position 0 0 0",
           "   orientation 0 0 0", ":bonedata"]
    for i, (name, (_, d, length)) in enumerate(bones.items(), start=1):
        out += ["  begin", f"     id {i}", f"     name {name}",
                f"     direction {d[0]} {d[1]} {d[2]}", f"     length {length}",
                "     axis 0 0 0 XYZ", "    dof rx ry rz", "  end"]
    kids: dict[str, list[str]] = {}
    for name, (parent, _, _) in bones.items():
        kids.setdefault(parent, []).append(name)
    out += [":hierarchy", "  begin"] + [f"    {p} {' '.join(c)}" for p, c in kids.items()]
    return "\n".join(out + ["  end"]) + "\n", bones


def test_generated_asf_amc_lands_where_worked_by_hand(tmp_path):
    text, bones = cmu_like_asf()
    (tmp_path / "07.asf").write_text(text)
    frames = []
    for k in range(3):
        frames += [str(k + 1), f"root 0 40 {10 * k} 0 0 0"]
        frames += [f"{b} {'90' if (b, k) == ('ltibia', 2) else '0'} 0 0" for b in bones]
    (tmp_path / "07_01.amc").write_text(":FULLY-SPECIFIED\n:DEGREES\n" + "\n".join(frames))
    rec = load_recording(tmp_path / "07_01.amc")
    assert rec.meta["convention"] == "acclaim" and rec.meta["unit"] == "inch"
    assert rec.rate_hz == 120 and rec.n_frames == 3
    with pytest.raises(RecordingError, match="skeleton without motion"):
        load_recording(tmp_path / "07.asf")

    def end(bone: str) -> np.ndarray:  # rest pose, CMU units, from the root
        p = np.zeros(3)
        while bone != "root":
            parent, d, length = bones[bone]
            p = p + length * np.array(d)
            bone = parent
        return p

    m = 0.0254 / 0.45
    root = np.array([0.0, 40.0, 0.0])
    np.testing.assert_allclose(rec.joint("left_hip")[0], (root + end("lhipjoint")) * m, atol=1e-6)
    np.testing.assert_allclose(rec.joint("right_knee")[0], (root + end("rfemur")) * m, atol=1e-6)
    np.testing.assert_allclose(rec.joint("left_foot")[1], (root + end("lfoot") + [0, 0, 10]) * m,
                               atol=1e-6)
    np.testing.assert_allclose(rec.joint("left_collar")[0],
                               (root + (end("thorax") + end("lclavicle")) / 2) * m, atol=1e-6)
    np.testing.assert_allclose(rec.joint("neck")[0], (root + end("thorax")) * m, atol=1e-6)
    # frame 3: the left knee flexed 90 deg about x: the shank points along -z
    knee = rec.joint("left_knee")[2]
    np.testing.assert_allclose(rec.joint("left_ankle")[2] - knee, [0, 0, -7.3 * m], atol=1e-6)


# --- the real corpora ------------------------------------------------------------------------

BANDAI = "motion_corpus_bandai_namco/bandai_dataset1.zip"
BANDAI_WALK = "dataset/Bandai-Namco-Research-Motiondataset-1/data/dataset-1_walk_normal_001.bvh"
CMU = "motion_corpus_cmu/cmu_subjects_01-03_asfamc.zip"
CMU_WALK = "data/CMU/asfamc/subjects/02/02_01.amc"


def _segments(rec) -> dict[str, float]:
    def d(a, b):
        return float(np.median(np.linalg.norm(rec.joint(a) - rec.joint(b), axis=1)))
    return {"thigh": d("left_hip", "left_knee"), "shank": d("left_knee", "left_ankle"),
            "upper_arm": d("left_shoulder", "left_elbow"),
            "forearm": d("left_elbow", "left_wrist"), "hip_width": d("left_hip", "right_hip"),
            "trunk": d("pelvis", "neck")}


def _sane_walker(rec):
    seg = _segments(rec)
    # adult segment lengths (Winter's table: thigh, shank ~0.245 H, upper arm 0.186 H,
    # forearm 0.146 H, for H 1.5-1.9 m), with room for where a rig puts its joints
    assert 0.3 < seg["thigh"] < 0.55 and 0.3 < seg["shank"] < 0.55, seg
    assert 0.2 < seg["upper_arm"] < 0.4 and 0.15 < seg["forearm"] < 0.35, seg
    # pelvis to neck: SMPL's is ~0.5 m; CMU's lower back, upper back and thorax bones add up to
    # 0.35 m for subject 02
    assert 0.08 < seg["hip_width"] < 0.3 and 0.3 < seg["trunk"] < 0.7, seg
    # y up and the feet on the floor: the lowest foot joint within a few cm of y = 0
    feet = rec.joints[:, [CJ["left_foot"], CJ["right_foot"]], 1]
    assert -0.05 < feet.min() < 0.1
    assert (rec.joint("head")[:, 1] > rec.joint("pelvis")[:, 1] + 0.3).all()
    # the walker's left is on its left: facing the walking direction d, up y, left = y x d
    d = rec.joint("pelvis")[-1] - rec.joint("pelvis")[0]
    left = np.cross([0.0, 1.0, 0.0], d)
    lr = rec.joint("left_hip") - rec.joint("right_hip")
    assert (lr @ left > 0).mean() > 0.95


def test_bandai_namco_walk_from_the_zip(shared_data):
    rec = load_recording(f"{shared_data / BANDAI}::{BANDAI_WALK}")
    assert rec.meta["unit"] == "cm" and rec.meta["convention"] == "humanoid"
    assert rec.n_frames == 195 and rec.rate_hz == pytest.approx(30, rel=1e-4)
    _sane_walker(rec)


def test_cmu_walk_from_the_zip(shared_data):
    rec = load_recording(f"{shared_data / CMU}::{CMU_WALK}")  # 02.asf found beside it
    assert rec.meta["skeleton"].endswith("02.asf") and rec.meta["unit"] == "inch"
    assert rec.n_frames == 343 and rec.rate_hz == 120
    _sane_walker(rec)
    p = rec.joint("pelvis")
    speed = np.linalg.norm((p[-1] - p[0])[[0, 2]]) / rec.duration_s
    assert 0.9 < speed < 1.6  # "walk": an adult's comfortable speed (measured 1.18 m/s)


def test_an_amc_with_several_skeletons_beside_it_asks_for_one(tmp_path, shared_data):
    with zipfile.ZipFile(shared_data / CMU) as z:
        for m in ("02/02.asf", "03/03.asf", "02/02_01.amc"):
            (tmp_path / m.split("/")[1]).write_bytes(z.read(f"data/CMU/asfamc/subjects/{m}"))
    (tmp_path / "walk.amc").write_bytes((tmp_path / "02_01.amc").read_bytes())
    assert load_recording(tmp_path / "02_01.amc").meta["skeleton"] == "02.asf"  # by its name
    with pytest.raises(RecordingError, match="2 .asf skeletons beside it"):
        load_recording(tmp_path / "walk.amc")
    rec = load_recording(tmp_path / "walk.amc", skeleton=tmp_path / "02.asf")
    assert rec.n_frames == 343
