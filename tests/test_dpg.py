"""DPG: the pattern images as documented, the network through ONNX, the Kidzinski 2020 1D-CNN
rebuilt from its Keras weights against an independent numpy forward pass, ``eval dpg`` on a
tiny folder of each layout, and the worker's ``dpg`` option on a webcam track."""

from __future__ import annotations

import csv
import time
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

from inference.models.dpg import features as F  # noqa: E402
from inference.models.dpg.config import (CLIP_FRAMES, GRAPH_JOINTS, IMAGE_SIZE,  # noqa: E402
                                         LANDMARKS, LM, OUTPUTS, DPGConfig)


def _standing_clip() -> np.ndarray:
    """A clip of a walker drawn in image pixels (y down): hips 200 px above the knees, ankles
    200 px below them (thigh = 200 px), the whole body moving left (decreasing x)."""
    kp = np.zeros((CLIP_FRAMES, len(LANDMARKS), 2))
    base = {"head": (0, -600), "neck": (0, -450), "left_shoulder": (20, -430),
            "right_shoulder": (-20, -430), "left_elbow": (20, -250), "right_elbow": (-20, -250),
            "left_wrist": (20, -100), "right_wrist": (-20, -100), "pelvis": (0, 0),
            "left_hip": (30, 0), "right_hip": (-30, 0), "left_knee": (30, 200),
            "right_knee": (-30, 200), "left_ankle": (230, 400), "right_ankle": (-30, 400)}
    for n, (x, y) in base.items():
        kp[:, LM[n]] = (1000 + x, 500 + y)
    kp[..., 0] -= np.arange(CLIP_FRAMES)[:, None] * 2.0  # walking right to left
    return kp


def test_images_are_built_as_documented():
    kp = _standing_clip()
    img = F.clip_images(kp)
    assert img.shape == (2, IMAGE_SIZE, IMAGE_SIZE) and img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0
    norm = F.normalise(kp)
    # thigh = 200 px -> 1; mid-hip at 0; the left ankle 230 px right, 400 px down of it
    np.testing.assert_allclose(norm[:, LM["left_ankle"]], np.tile([230 / 200, 2.0], (124, 1)))
    # the pelvis row is the mid-hip path about its mean: 2 px per frame, leftwards
    np.testing.assert_allclose(norm[:, LM["pelvis"], 0], -(np.arange(124) - 61.5) * 2 / 200)
    # the left ankle is drawn on the graph at its pixel, in its grey level (3rd joint: 3/6)
    row, col, inside = F.graph_pixel(np.array([1.15]), np.array([2.0]))
    # x: (1.15 + 2.5) / 5 * 128 = 93.4, y: (2 + 1) / 5 * 128 = 76.8
    assert inside[0] and (row[0], col[0]) == (76, 93)
    k = GRAPH_JOINTS.index("left_ankle")
    assert img[1, 76, 93] == pytest.approx((k + 1) / 6)
    # six joints standing still relative to the hips: six pixels lit, one per grey level
    lit = img[1][img[1] > 0]
    np.testing.assert_allclose(np.sort(lit) * 6, np.arange(1, 7), atol=1e-6)
    # coordinate image: first row = the head's x (0 thigh lengths -> 0.5), last row = the
    # right ankle's y (2 -> (2 + 3) / 6), every column (frame) alike
    np.testing.assert_allclose(img[0, 0], 0.5, atol=1e-6)
    np.testing.assert_allclose(img[0, -1], 5 / 6, atol=1e-6)
    # scale and position of the body in the image do not matter; walking the other way mirrors
    np.testing.assert_allclose(F.clip_images(kp * 0.37 + 55.0), img, atol=1e-5)
    mirrored = kp.copy()
    mirrored[..., 0] = 2000 - mirrored[..., 0]
    np.testing.assert_allclose(F.clip_images(mirrored), img, atol=1e-5)


def test_bad_keypoints_are_refused():
    kp = _standing_clip()
    kp[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        F.clip_images(kp)
    with pytest.raises(ValueError, match="124 frames"):
        F.clip_images(_standing_clip()[:100])
    with pytest.raises(ValueError, match="keypoints: expected"):
        F.resample(np.arange(10), np.zeros((10, 4, 2)))


def test_walk_images_resample_by_timestamps():
    kp = np.concatenate([_standing_clip()] * 3)  # 372 frames
    t60 = np.arange(len(kp)) * 16667  # at 60 Hz: 6.2 s -> 186 frames at 30 Hz: clips at 0, 31, 62
    assert F.walk_images(t60, kp).shape == (3, 2, IMAGE_SIZE, IMAGE_SIZE)
    assert F.walk_images(t60[:200], kp[:200]).shape[0] == 0  # 3.3 s: shorter than a clip


def test_onnx_matches_torch(tmp_path):
    from inference.models.dpg.config import save_config
    from inference.models.dpg.model import DPG, export_onnx, module_from_onnx
    from inference.models.dpg.runtime import DPGEstimator

    torch.manual_seed(0)
    m = DPG(DPGConfig()).eval()
    export_onnx(m, tmp_path / "dpg.onnx")
    save_config(DPGConfig(), tmp_path / "dpg.json", [0.0] * 8, [1.0] * 8)
    x = np.random.default_rng(0).random((3, 2, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    est = DPGEstimator(tmp_path / "dpg.onnx", tmp_path / "dpg.json")
    np.testing.assert_allclose(est.predict_images(x), want, atol=1e-4)
    back = module_from_onnx(tmp_path / "dpg.onnx", tmp_path / "dpg.json")
    with torch.no_grad():
        np.testing.assert_allclose(back(torch.from_numpy(x)).numpy(), want, atol=1e-5)
    assert want.shape == (3, len(OUTPUTS))


def test_kidzinski_rebuilt_gives_the_keras_networks_output(shared_data):
    from inference.models.dpg import kidzinski as K

    x = np.random.default_rng(1).normal(size=(4, 124, 23)).astype(np.float32)
    for name, width in (("GDI", 23), ("KneeFlex_maxExtension", 12)):
        path = shared_data / "gdi_models_mobile_gaitlab" / "models" / f"{name}_best.pb"
        net = K.build_torch(path)
        with torch.no_grad():
            got = net(torch.from_numpy(x[..., :width])).numpy()
        assert got.shape == (4, 2)
        np.testing.assert_allclose(got, K.numpy_forward(path, x[..., :width]), atol=1e-4)
        # 124 frames -> pools 2, 2, 3 -> 10 steps x 32 channels = the Dense layer's 320 inputs
        assert net.fc1.in_features == 320


def test_kidzinski_input_is_their_documented_one():
    from inference.models.dpg import kidzinski as K

    kp = _standing_clip()
    named = {n: kp[:, LM[n]] for n in LANDMARKS}
    with pytest.raises(ValueError, match="left_foot, right_foot"):
        K.body25(named)
    # toes ahead of the ankles (to the left: walking right to left, orientation +1)
    named["left_foot"] = named["left_ankle"] + [-60.0, 0.0]
    named["right_foot"] = named["right_ankle"] + [-60.0, 0.0]
    kp125 = {n: np.concatenate([v, v[-1:]]) for n, v in named.items()}
    f = K.features(K.body25(kp125))
    assert f.shape == (125, 58)
    # mid-hip subtracted, thigh (200 px) = 1: left ankle at (230, 400) px from the mid-hip
    np.testing.assert_allclose(f[2:-2, 2 * K.LANK:2 * K.LANK + 2], [[1.15, 2.0]] * 121, atol=1e-6)
    np.testing.assert_allclose(f[2:-2, 54], 0.3, atol=1e-6)  # toe-ankle distance, 60/200
    np.testing.assert_allclose(f[2:-2, 56], -1.15 - 0.15, atol=1e-6)  # RANK.x - LANK.x
    w = K.windows(f, K.X_COLUMNS)
    assert w.shape == (1, 124, 23)  # 125 frames: one window, as their loop gives


def _tiny_fgdi(shared, out):
    """Two subject-sessions (a control and an amputee) of the FGDI folder, its layout kept."""
    src = shared / "pathological_kinematics_fgdi"
    with open(src / "Parkinsons_Data.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    keep = {"1", "65"}
    with open(out / "curves.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0]] + [r for r in rows[1:] if r and r[0] in keep])
    with open(src / "subjects_index.csv", newline="", encoding="utf-8-sig") as fh:
        idx = list(csv.reader(fh))
    with open(out / "index.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([idx[0]] + [r for r in idx[1:] if r and r[0] in keep])


def _tiny_video(shared, out, trials=("Diz_002_T1", "Val_002_T1")):
    src = shared / "video_keypoints_imu_gaitvalidation"
    with open(src / "trials_index.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["trial"] in trials]
    with zipfile.ZipFile(src / "gaitvalidation_dev.zip") as z, \
            zipfile.ZipFile(out / "keypoints.zip", "w") as o:
        for r in rows:
            for k in ("keypoints_file", "imu_report_file"):
                o.writestr(r[k], z.read(r[k]))
    with open(out / "index.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def test_eval_dpg_on_a_tiny_fgdi_folder(shared_data, tmp_path, capsys):
    from deploy.cli import main

    _tiny_fgdi(shared_data, tmp_path)
    assert main(["eval", "dpg", str(tmp_path), "--all", "--views", "1"]) == 0
    out = capsys.readouterr().out
    assert "layout fgdi: 2 clips of 2 persons" in out
    for label in ("GDI", "knee flex at max ext (deg)", "cadence (steps/min)", "step length (cm)"):
        line = next(x for x in out.splitlines() if x.strip().startswith(label.strip()))
        nums = [float(v) for v in line.replace("[", " ").replace("]", " ").replace(",", " ")
                .split()[-10:] if v.replace(".", "").replace("-", "").isdigit()]
        assert len(nums) >= 9 and all(np.isfinite(nums)), line


def test_eval_dpg_on_a_tiny_video_folder(shared_data, tmp_path, capsys):
    from deploy.cli import main

    _tiny_video(shared_data, tmp_path)
    assert main(["eval", "dpg", str(tmp_path), "--all"]) == 0
    out = capsys.readouterr().out
    assert "layout video:" in out and "2 persons" in out
    assert "needs big-toe keypoints" in out  # the 1D-CNN cannot be fed: said, not skipped
    assert "cadence (steps/min)" in out and "step length (cm)" in out
    assert "classical analysis" in out


def test_eval_dpg_names_a_folder_of_neither_layout(tmp_path, capsys):
    from deploy.cli import main

    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    assert main(["eval", "dpg", str(tmp_path)]) == 2
    assert "neither the FGDI layout nor the video-keypoints layout" in capsys.readouterr().err


def test_video_layout_is_read_by_its_index(shared_data, tmp_path):
    from inference.data.dpg import read_video_folder

    rows = _tiny_video(shared_data, tmp_path, ("Diz_002_T1",))
    (tr,) = read_video_folder(tmp_path)
    assert tr.person == "Diz_002" and len(tr.t_us) == int(rows[0]["n_frames"])
    # 60 frames/s from the index's duration; the IMU report's cadence and step lengths
    assert tr.t_us[60] == 1_000_000
    assert tr.imu["cadence_spm"] == pytest.approx(86.511)
    assert tr.imu["step_length_m_left"] == pytest.approx(0.55249)
    (tmp_path / "index.csv").unlink()
    with pytest.raises(ValueError, match="not the video-keypoints layout"):
        read_video_folder(tmp_path)


def test_worker_option_is_validated():
    from inference.worker import WorkerConfig

    with pytest.raises(ValueError, match="bout_history_s >= 4.1"):
        WorkerConfig.from_options({"dpg": True, "bout_history_s": 3.0})
    with pytest.raises(Exception, match="dpg"):
        WorkerConfig.from_options({"dpg": "yes"})
    assert WorkerConfig.from_options({"dpg": True}).dpg


def test_worker_adds_dpg_estimates_to_webcam_bouts():
    from _sim import path_walk
    from capture.sim.paths import Line
    from capture.sim.skeleton import layout_joints
    from capture.sim.truth import cycle_truth
    from inference.data.dpg import random_camera
    from inference.worker import Worker, WorkerConfig
    from streams.node import StatusReporter
    from streams.schema import Body, GaitBout, ImageFrame, SkeletonFrame

    person, t_us, joints = path_walk((Line(9.0),), seed=3)  # ~7 s of straight walking
    points, _ = person.evaluate(t_us / 1e6)
    cam = random_camera(joints, np.random.default_rng(0), side_view=True)
    # the wire frame of a webcam: camera-centred, y up, z towards the viewer
    mp = (cam.camera_frame(layout_joints(points, "mediapipe33")) * [1, -1, -1]).astype(np.float32)
    by_t = {int(t): j for t, j in zip(t_us, mp)}

    class SimPose:  # stands in for MediaPipe (the vendor model): the walker as it would report
        def process(self, image, t):
            return [Body(0, by_t[t], np.ones(33, np.float32))]

        def all_counters(self):
            return {}

        def close(self):
            pass

    def run(n_frames: int) -> tuple[Worker, list[GaitBout]]:
        w = Worker(WorkerConfig.from_options({"dpg": True}), None, StatusReporter("w", "worker"))
        w.models._pose["cam"], w.models._pose_used["cam"] = SimPose(), time.monotonic()
        img = np.zeros((6, 8, 3), np.uint8)
        for i, t in enumerate(t_us[:n_frames]):
            w.handle(ImageFrame(source="cam", seq=i + 1, t_us=int(t), host_us=0, width=8,
                                height=6, encoding="bgr8", image=img))
            # the same walker from a depth camera (skeletons, no images): no DPG
            w.handle(SkeletonFrame(source="kinect", seq=i + 1, t_us=int(t), host_us=0,
                                   layout="canonical22",
                                   bodies=[Body(0, joints[i].astype(np.float32),
                                                np.ones(22, np.float32))]))
            w.poll()
        w.expire(force=True)
        return w, [m for m in w.outputs if isinstance(m, GaitBout)]

    # 3.5 s seen: a bout, but less than one DPG clip (4.1 s), so no estimates
    _, short = run(105)
    assert any(b.source == "cam" for b in short)
    assert not any(b.estimates for b in short)
    w, bouts = run(len(t_us))
    (cam_bout,) = [b for b in bouts if b.source == "cam"]
    assert any(b.source == "kinect" for b in bouts)
    assert not any(b.estimates for b in bouts if b.source == "kinect")
    est = cam_bout.estimates
    assert est["dpg.clips"] >= 1
    truth = np.mean([c["metrics"]["cadence_spm"] for c in cycle_truth(person)])
    got = np.mean([est["dpg.cadence_spm_left"], est["dpg.cadence_spm_right"]])
    assert abs(got - truth) < 8.0, (got, truth)  # held-out simulated walkers: MAE 5.5
    # beside the cadence measured from the bout's events
    assert abs(cam_bout.summary["cadence_spm.mean"] - truth) < 8.0
    for side in ("left", "right"):
        assert 0.2 < est[f"dpg.step_length_m_{side}"] < 1.2
        assert -20 < est[f"dpg.knee_flex_max_ext_deg_{side}"] < 40
        assert 20 < est[f"dpg.gdi_{side}"] < 130
    assert w.status.counters["dpg_bouts"] == 1
