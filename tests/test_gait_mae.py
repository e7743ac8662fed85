"""GaitMAE: shapes, masking, ONNX against torch, the embedding of a simulated walk, and the
embedding evaluation on a tiny generated folder."""

from __future__ import annotations

import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from capture.readers.recording import Recording  # noqa: E402
from inference.models.gait_mae.config import CLIP_FRAMES, N_JOINTS, MAEConfig  # noqa: E402
from inference.models.gait_mae.features import normalise_clip, walk_clips  # noqa: E402
from inference.models.gait_mae.model import (GaitMAE, export_onnx, module_from_onnx,  # noqa: E402
                                             random_keep)
from _sim import path_walk  # noqa: E402
from capture.sim.paths import Line  # noqa: E402

SMALL = MAEConfig(d_model=32, n_layers=1, d_ff=64)


def _model(cfg: MAEConfig = SMALL) -> GaitMAE:
    torch.manual_seed(0)
    return GaitMAE(cfg).eval()


def test_shapes_and_embedding_size():
    m = _model()
    x = torch.randn(3, CLIP_FRAMES, N_JOINTS, 3)
    recon, emb = m(x, torch.ones(3, CLIP_FRAMES, N_JOINTS))
    assert recon.shape == x.shape
    assert emb.shape == (3, SMALL.embedding_dim) == (3, 64)
    assert MAEConfig().embedding_dim == 128  # the shipped size the card states


def test_masks_cover_whole_tokens_and_hide_what_they_mask():
    cfg = SMALL
    keep = random_keep(200, cfg, torch.Generator().manual_seed(0))
    # a masked joint is masked over its whole token (``patch`` frames)
    assert torch.equal(keep[:, 0::2], keep[:, 1::2])
    frac = 1 - keep.mean().item()
    assert 0.38 < frac < 0.5  # 1 - 0.7 * 0.8 = 0.44 of the joints
    # what is masked cannot reach the output: changing it changes nothing
    m = _model()
    x = torch.randn(2, CLIP_FRAMES, N_JOINTS, 3)
    k = keep[:2]
    y = x + (1 - k)[..., None] * torch.randn_like(x) * 5
    with torch.no_grad():
        a, ea = m(x, k)
        b, eb = m(y, k)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(ea, eb, atol=1e-5)


def test_onnx_matches_torch_and_holds_the_weights(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from inference.models.gait_mae.config import save_config

    m = _model()
    path = tmp_path / "m.onnx"
    export_onnx(m, path)
    save_config(SMALL, tmp_path / "m.json")
    x = torch.randn(5, CLIP_FRAMES, N_JOINTS, 3)
    k = random_keep(5, SMALL, torch.Generator().manual_seed(1))
    with torch.no_grad():
        recon, emb = m(x, k)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    r2, e2 = sess.run(None, {"clip": x.numpy(), "keep": k.numpy()})
    assert np.abs(r2 - recon.numpy()).max() < 1e-4
    assert np.abs(e2 - emb.numpy()).max() < 1e-4
    back = module_from_onnx(path, tmp_path / "m.json")
    with torch.no_grad():
        assert torch.allclose(back(x, k)[1], emb, atol=1e-6)


def test_clips_are_pelvis_relative_and_face_plus_z():
    _, t_us, joints = path_walk((Line(4.0),), seed=3)
    # the same walk turned 90 degrees and moved gives the same clips
    rot = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    moved = joints @ rot.T + np.array([3.0, 0.0, -2.0])
    a, b = walk_clips(t_us, joints), walk_clips(t_us, moved)
    assert a.shape[1:] == (CLIP_FRAMES, N_JOINTS, 3) and len(a) >= 2
    assert np.abs(a - b).max() < 1e-4
    assert abs(normalise_clip(joints[:60])[:, 0].mean(0)).max() < 1e-5  # pelvis path centred


def _sim_recording(seed: int = 5) -> Recording:
    _, t_us, joints = path_walk((Line(6.0),), seed=seed)
    return Recording(name="sim", t_us=t_us, joints=joints.astype(np.float32),
                     confidence=np.ones(joints.shape[:2], np.float32), rate_hz=30.0,
                     source_layout="canonical22")


def test_embed_of_a_short_simulated_walk_has_the_stated_size_and_is_deterministic():
    pytest.importorskip("onnxruntime")
    from inference.embed import embed_recording
    from inference.models.gait_mae.runtime import GaitEmbedder

    rec = _sim_recording()
    emb = GaitEmbedder()
    a = embed_recording(rec, emb)
    b = embed_recording(rec, GaitEmbedder())
    assert emb.dim == 128
    got = [x for x in a if x["embedding"] is not None]
    assert got and all(len(x["embedding"]) == 128 for x in got)
    assert a == b


def _write_folder(d, n_persons: int = 4, walks: int = 3):
    """A walks.csv folder of simulated walks as Kinect v2 text (the format the shared corpus has):
    canonical joints written into the 25-joint slots the reader maps back."""
    from streams.skeletons import CJ

    # Kinect v2 joint -> canonical joint it is read into (close enough for a format test)
    k2 = {0: "pelvis", 1: "spine2", 2: "neck", 3: "head", 4: "left_shoulder",
          5: "left_elbow", 6: "left_wrist", 7: "left_wrist", 8: "right_shoulder",
          9: "right_elbow", 10: "right_wrist", 11: "right_wrist", 12: "left_hip",
          13: "left_knee", 14: "left_ankle", 15: "left_foot", 16: "right_hip", 17: "right_knee",
          18: "right_ankle", 19: "right_foot", 20: "spine3", 21: "left_wrist",
          22: "left_wrist", 23: "right_wrist", 24: "right_wrist"}
    rows = []
    rng = np.random.default_rng(0)
    for p in range(n_persons):
        for w in range(walks):
            _, t_us, j = path_walk((Line(5.0 + w),), seed=10 * p + w)
            j = j * (1.6 + 0.1 * p) / 1.75
            # lab axes as the corpus has them: z up (a proper rotation of the canonical axes)
            lab = j[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
            lines = []
            for f in range(len(t_us)):
                cells = [f"{10 + t_us[f] / 1e6:.3f}"]
                for k in range(25):
                    x, y, z = lab[f, CJ[k2[k]]] + rng.normal(0, 0.003, 3)
                    cells += [f"{k:.1f}", f"{x:.5f}", f"{y:.5f}", f"{z:.5f}"]
                lines.append("\t".join(cells))
            name = f"p{p}_w{w}_SkeletonData1.csv"
            (d / name).write_text("\n".join(lines) + "\n")
            rows.append({"file": name, "person": f"p{p}", "height_m": f"{1.6 + 0.1 * p:.2f}",
                         "sex": str(p % 2), "gait": "normal" if w % 2 else "other"})
    with open(d / "walks.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)


def test_eval_embedding_on_a_tiny_folder(tmp_path):
    pytest.importorskip("onnxruntime")
    from inference.eval.embedding import evaluate

    _write_folder(tmp_path)
    rep, preds = evaluate(tmp_path, n_boot=50, cache=False)
    assert rep["walks"] == 12 and rep["persons"] == 4 and rep["embedding_dim"] == 128
    targets = {p["target"] for p in rep["probes"]}
    assert {"height_m", "sex", "gait"} <= targets
    for p in rep["probes"]:
        assert p["persons"] == 4 and p["folds"] == 4
    r = rep["reid"]["folder/all/embedding"]
    assert r["queries"] == 12 and abs(r["chance"] - 2 / 11) < 1e-9
    assert 0.0 <= r["top1"] <= 1.0


def test_corpora_are_found_by_their_layout_not_their_names(shared_data, tmp_path):
    """A Kinect v1 person-data folder and a Kinect v2 index folder with other file, folder and
    zip names are read the same way: the walks, persons and labels of the rows they index."""
    import zipfile

    from inference.data.gait_mae import corpus_folders, load_walks

    v1_src, v2_src = (shared_data / "kinect_v1_walking_andersson2015",
                      shared_data / "pathological_gait_kinect_v2")
    v1, v2 = tmp_path / "lab_a", tmp_path / "lab_b"
    (v1 / "walks" / "Person001").mkdir(parents=True)
    v2.mkdir()
    (v1 / "people.csv").write_bytes((v1_src / "person-data.csv").read_bytes())
    (v1 / "walks" / "Person001" / "w1.txt").write_bytes(
        (v1_src / "walks" / "Person001" / "1.txt").read_bytes())
    with zipfile.ZipFile(v1 / "more.zip", "w") as z:
        z.writestr("x/Person002/w2.txt", (v1_src / "walks" / "Person002" / "2.txt").read_bytes())
    (v1 / "index.csv").write_text("person,file\nPerson001,w1.txt\nPerson002,x/Person002/w2.txt\n")
    with open(v2_src / "files_index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:2]
    with zipfile.ZipFile(next(v2_src.glob("*.zip"))) as src, \
            zipfile.ZipFile(v2 / "other.zip", "w") as z:
        for r in rows:
            z.writestr(r["file"], src.read(r["file"]))
    (v2 / "idx.csv").write_text("file,human,gait,kinect\n" + "".join(
        f"{r['file']},{r['human']},{r['gait']},{r['kinect']}\n" for r in rows))
    found = corpus_folders(tmp_path)
    assert found == {"kinect_v1": [v1], "kinect_v2": [v2]}
    walks = load_walks(tmp_path, cache=tmp_path / "walks.pkl")
    v1w = [w for w in walks if w.corpus == "kinect_v1"]
    assert sorted(w.person for w in v1w) == ["kv1:Person001", "kv1:Person002"]
    assert {w.walk for w in v1w} == {"walks/Person001/w1.txt", "more.zip::x/Person002/w2.txt"}
    assert all(w.labels["height_m"] > 1.4 for w in v1w)  # from the person table
    v2w = [w for w in walks if w.corpus == "kinect_v2"]
    assert [(w.person, w.labels["gait"]) for w in v2w] == [
        (f"kv2:human{r['human']}", r["gait"]) for r in rows]
