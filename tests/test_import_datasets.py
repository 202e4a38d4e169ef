"""Importers of public datasets and reconstruction exports: nerfstudio / instant-ngp
``transforms.json``, TUM RGB-D (and any TUM trajectory beside a video or images), and
ARKitScenes.

Fixtures are written here from each format's published description:

- nerfstudio: https://docs.nerf.studio/quickstart/data_conventions.html (camera-to-world
  ``transform_matrix``, OpenGL camera axes, ``fl_x fl_y cx cy w h``, ``camera_model`` with
  ``k1..k4 p1 p2``); instant-ngp's ``camera_angle_x``;
- TUM RGB-D: https://cvg.cit.tum.de/data/datasets/rgbd-dataset/file_formats (``rgb.txt``
  ``timestamp filename``; ``groundtruth.txt`` ``timestamp tx ty tz qx qy qz qw`` of the
  colour camera's optical centre, epoch seconds) and its intrinsic calibration table;
- ARKitScenes: https://github.com/apple/ARKitScenes DATA.md (``.pincam`` ``w h fx fy cx
  cy``, ``.traj`` ``timestamp`` + axis-angle rotation + translation) with the
  world-to-camera reading of its ``TrajStringToMatrix``, world z up (issues #78, #81).

Most fixtures re-package a rendered synthetic scenario in the format, so poses, times and
intrinsics can be compared with the original after import.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.errors import InputError
from simulator.run import RunSettings, run_scenario
from simulator.scenario.importers import ImportOptions, detect, import_recording, read_recording
from simulator.scenario.importers.convert import CV_TO_GL, matrix_to_quat, quat_to_matrix
from simulator.scenario.load import load_scenario, validate_scenario
from simulator.scenario.synth import synthesize
from simulator.scenario.video import iter_frames
from simulator.types import Pose

# The scenario world is y up; the sources below are z up (nerfstudio's convention, a
# motion-capture room, ARKitScenes' laser-scan world): Y_TO_Z takes y to z, x unchanged.
Y_TO_Z = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
EPOCH = "1305031102"  # a TUM-like Unix epoch second


# --- the original: a small rendered scenario ------------------------------------------------


class Original:
    """A synthetic scenario's frames, frame times, poses (at the frames) and camera."""

    def __init__(self, folder: Path) -> None:
        scenario = load_scenario(folder)
        self.camera = scenario.camera
        self.times = np.asarray(scenario.frame_times)
        self.images = list(iter_frames(folder / scenario.video))
        self.trajectory = scenario.trajectory
        self.positions, self.quats = scenario.trajectory.at_many(self.times)
        self.video = folder / scenario.video

    def rotations(self) -> np.ndarray:
        return quat_to_matrix(self.quats)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Original:
    out = tmp_path_factory.mktemp("synth") / "orbit"
    synthesize(out, "orbit", width=64, height=48, fps=10, duration_s=1.2)
    return Original(out)


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def same_rotation(q1: np.ndarray, q2: np.ndarray, tol: float = 1e-6) -> bool:
    dots = np.abs(np.sum(np.asarray(q1) * np.asarray(q2), axis=-1))
    return bool(np.all(1 - dots < tol))


def imported_poses(scenario) -> tuple[np.ndarray, np.ndarray]:
    return scenario.trajectory.at_many(np.asarray(scenario.frame_times))


def replay(out: Path, tmp_path: Path, *, full: bool = False) -> None:
    """Validate, then replay (timing only, or the whole pipeline with the model)."""
    validation = validate_scenario(out)
    assert not validation.problems
    frames = len(validation.scenario.frame_times)
    outcome = run_scenario(out, RunSettings(timing_only=not full), tmp_path / "run")
    assert outcome.report["complete"]
    assert outcome.report["scenario"]["frames"] == frames


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --- nerfstudio -----------------------------------------------------------------------------


def nerf_capture(original: Original, folder: Path, *, shuffle: bool = True,
                 **top: object) -> Path:
    """The original as a nerfstudio export: images/frame_<i+1>.png (not zero-padded, so
    natural order matters), poses in a z-up world, frames listed out of order."""
    frames = []
    for i, image in enumerate(original.images):
        name = f"images/frame_{i + 1}.png"
        write_png(folder / name, image)
        m = np.eye(4)
        m[:3, :3] = Y_TO_Z @ original.rotations()[i]
        m[:3, 3] = Y_TO_Z @ original.positions[i]
        frames.append({"file_path": name, "transform_matrix": m.tolist()})
    if shuffle:
        frames = frames[::-1][:3] + frames[::-1][3:][::2] + frames[::-1][3:][1::2]
    cam = original.camera
    doc = {"fl_x": cam.fx, "fl_y": cam.fy, "cx": cam.cx, "cy": cam.cy,
           "w": cam.width, "h": cam.height, **top, "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(doc, indent=1))
    return folder


def test_nerfstudio_round_trip(original, tmp_path):
    src = nerf_capture(original, tmp_path / "capture")
    assert detect(src).name == "nerfstudio"
    assert detect(src / "transforms.json").name == "nerfstudio"
    out = import_recording(src, tmp_path / "out", "auto", ImportOptions(up="+z", fps=10))
    scenario = load_scenario(out)
    assert len(scenario.frame_times) == len(original.times)
    np.testing.assert_allclose(scenario.frame_times, np.arange(len(original.times)) / 10,
                               atol=1e-9)
    positions, quats = imported_poses(scenario)
    # --up +z levels the z-up world back onto the original y-up one: exact round trip
    np.testing.assert_allclose(positions, original.positions, atol=1e-6)
    assert same_rotation(quats, original.quats)
    assert scenario.camera == original.camera
    assert not scenario.metric and scenario.pose_scale is None
    # frames in capture order despite the shuffled list: compare pixels with the original
    frames = sorted((out / "frames").iterdir())
    for k in (0, 5, len(frames) - 1):
        image = cv2.cvtColor(cv2.imread(str(frames[k])), cv2.COLOR_BGR2RGB)
        assert np.array_equal(image, original.images[k])
    source = json.loads((out / "scenario.json").read_text())["source"]
    assert "natural order" in source["notes"] and "--fps" in source["notes"]
    replay(out, tmp_path)


def test_nerfstudio_estimated_up_and_default_fps(original, tmp_path):
    src = nerf_capture(original, tmp_path / "capture")
    rec = read_recording(src, "nerfstudio")
    notes = "; ".join(rec.notes)
    assert "i / 30 s" in notes and "estimated" in notes
    np.testing.assert_allclose(np.diff(rec.frame_ns), 1e9 / 30, atol=1)
    # gravity: the original's up (+z in the file) ends near +y after levelling
    rots = quat_to_matrix(rec.poses.quaternions)
    source_rots = np.array([Y_TO_Z @ r for r in original.rotations()])
    world = rots[0] @ source_rots[0].T  # the world rotation the importer applied
    up_after = world @ np.array([0.0, 0.0, 1.0])
    tilt = np.degrees(np.arccos(np.clip(up_after[1], -1, 1)))
    assert tilt < 30, tilt
    # the world rotation is one rotation for all cameras
    for k in range(len(rots)):
        np.testing.assert_allclose(rots[k], world @ source_rots[k], atol=1e-6)


def test_nerfstudio_axes_project_a_known_point(tmp_path):
    """An identity transform_matrix is an OpenGL camera at the origin looking down -z:
    a point 2 m ahead lands on the principal point, one to the right at u > cx, one above
    at v < cy."""
    folder = tmp_path / "cap"
    frames = []
    for i in range(3):
        write_png(folder / f"{i}.png", np.full((48, 64, 3), 90, np.uint8))
        m = np.eye(4)
        m[0, 3] = 0.01 * i
        frames.append({"file_path": f"{i}.png", "transform_matrix": m.tolist()})
    (folder / "transforms.json").write_text(json.dumps(
        {"fl_x": 50, "fl_y": 50, "cx": 32, "cy": 24, "frames": frames}))
    out = import_recording(folder, tmp_path / "out", "nerfstudio", ImportOptions(up="+y"))
    scenario = load_scenario(out)
    positions, quats = imported_poses(scenario)
    pose = Pose(positions[0], quats[0])
    points = np.array([[0.0, 0.0, -2.0], [0.5, 0.0, -2.0], [0.0, 0.5, -2.0]])
    pixels, depth = scenario.camera.project(pose, points)
    assert np.all(depth > 0)
    np.testing.assert_allclose(pixels[0], [32, 24], atol=1e-9)
    assert pixels[1][0] == pytest.approx(32 + 50 * 0.25) and pixels[1][1] == pytest.approx(24)
    assert pixels[2][1] == pytest.approx(24 - 50 * 0.25)


def test_nerfstudio_distortion_portrait_per_frame_intrinsics_and_scale(tmp_path):
    folder = tmp_path / "cap"
    frames = []
    for i in range(4):
        write_png(folder / "images" / f"f{i:02d}.jpg".replace(".jpg", ".png"),
                  np.full((64, 48, 3), 40 * i, np.uint8))
        m = np.eye(4)
        m[0, 3] = 0.1 * i
        frames.append({"file_path": f"images/f{i:02d}.png", "transform_matrix": m.tolist(),
                       "fl_x": 40.0 + i, "fl_y": 41.0 + i})
    doc = {"camera_model": "OPENCV", "cx": 24.0, "cy": 32.0, "w": 48, "h": 64,
           "k1": 0.1, "k2": -0.02, "p1": 0.001, "p2": -0.002, "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(doc))
    out = import_recording(folder, tmp_path / "out", "nerfstudio",
                           ImportOptions(up="+y", scale=2.0))
    scenario = load_scenario(out)
    assert (scenario.camera.width, scenario.camera.height) == (48, 64)  # portrait kept
    assert scenario.camera.distortion.model == "radtan"
    np.testing.assert_allclose(scenario.camera.distortion.coeffs, (0.1, -0.02, 0.001, -0.002))
    np.testing.assert_allclose(scenario.intrinsics[:, 0], [40, 41, 42, 43])
    np.testing.assert_allclose(scenario.intrinsics[:, 1], [41, 42, 43, 44])
    positions, _ = imported_poses(scenario)
    np.testing.assert_allclose(positions[:, 0], [0, 0.2, 0.4, 0.6], atol=1e-9)  # --scale 2
    assert scenario.metric

    doc.update(camera_model="OPENCV_FISHEYE", k3=0.003, k4=-0.004)
    (folder / "transforms.json").write_text(json.dumps(doc))
    rec = read_recording(folder, "nerfstudio", ImportOptions(up="+y"))
    assert rec.camera.distortion.model == "fisheye"
    assert rec.camera.distortion.coeffs == (0.1, -0.02, 0.003, -0.004)


def test_nerfstudio_instant_ngp_camera_angle(tmp_path):
    """instant-ngp: only camera_angle_x; file_path without extension (NeRF synthetic)."""
    folder = tmp_path / "ngp"
    frames = []
    for i in range(3):
        write_png(folder / "train" / f"r_{i}.png", np.zeros((48, 64, 3), np.uint8))
        m = np.eye(4)
        m[2, 3] = 0.1 * i
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": m.tolist()})
    angle = 2 * np.arctan(32 / 50.0)
    (folder / "transforms.json").write_text(json.dumps({"camera_angle_x": angle,
                                                        "frames": frames}))
    rec = read_recording(folder, "nerfstudio", ImportOptions(up="+y"))
    assert rec.camera.fx == pytest.approx(50.0) and rec.camera.fy == pytest.approx(50.0)
    assert (rec.camera.cx, rec.camera.cy) == (32, 24)
    assert [p.name for p in rec.frames.paths] == ["r_0.png", "r_1.png", "r_2.png"]


def test_nerfstudio_refuses_bad_input(tmp_path):
    folder = tmp_path / "cap"
    write_png(folder / "a.png", np.zeros((48, 64, 3), np.uint8))
    write_png(folder / "b.png", np.zeros((48, 62, 3), np.uint8))
    write_png(tmp_path / "outside.png", np.zeros((48, 64, 3), np.uint8))
    os.symlink(tmp_path / "outside.png", folder / "link.png")
    eye = np.eye(4).tolist()

    def attempt(frames, **top) -> str:
        doc = {"fl_x": 50, "frames": frames, **top}
        (folder / "transforms.json").write_text(json.dumps(doc))
        with pytest.raises(InputError) as exc:
            read_recording(folder, "nerfstudio", ImportOptions(up="+y"))
        text = one_line(exc)
        assert "transforms.json" in text
        return text

    assert "outside the capture folder" in attempt(
        [{"file_path": "../outside.png", "transform_matrix": eye}] * 2)
    assert "outside" in attempt([{"file_path": "link.png", "transform_matrix": eye}] * 2)
    assert "absolute" in attempt(
        [{"file_path": str(tmp_path / "outside.png"), "transform_matrix": eye}] * 2)
    assert "same size" in attempt([{"file_path": "a.png", "transform_matrix": eye},
                                   {"file_path": "b.png", "transform_matrix": eye}])
    assert "not found" in attempt([{"file_path": "missing.png", "transform_matrix": eye}])
    assert "4x4" in attempt([{"file_path": "a.png", "transform_matrix": [[1, 0], [0, 1]]}])
    scaled = (np.eye(4) * 3).tolist()
    assert "orthonormal" in attempt([{"file_path": "a.png", "transform_matrix": scaled}] * 2)
    assert "EQUIRECTANGULAR" in attempt([{"file_path": "a.png", "transform_matrix": eye}] * 2,
                                        camera_model="EQUIRECTANGULAR")
    assert "declares" in attempt([{"file_path": "a.png", "transform_matrix": eye}] * 2, w=640)
    (folder / "transforms.json").write_text('{"frames": [\n  {"file_path": "a.png",}\n]}')
    with pytest.raises(InputError) as exc:
        read_recording(folder, "nerfstudio")
    assert "transforms.json line 2" in one_line(exc)


# --- TUM ------------------------------------------------------------------------------------


def tum_row(t: str, position: np.ndarray, q: np.ndarray) -> str:
    return t + " " + " ".join(f"{v:.9f}" for v in (*position, *q)) + "\n"


def to_tum_world(positions: np.ndarray, quats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scenario poses (y-up world, OpenGL camera) as TUM's (z-up room, OpenCV camera)."""
    rot = np.array([Y_TO_Z @ r @ CV_TO_GL for r in quat_to_matrix(quats)])
    return positions @ Y_TO_Z.T, matrix_to_quat(rot)


def stamp(seconds: float) -> str:
    """EPOCH + ``seconds`` with microsecond decimals, as TUM writes its timestamps."""
    micro = round(seconds * 1e6)
    return f"{int(EPOCH) + micro // 1_000_000}.{micro % 1_000_000:06d}"


def tum_capture(original: Original, folder: Path, *, drop: tuple[float, float] | None = None,
                camera: bool = True) -> Path:
    """The original as a TUM RGB-D sequence: rgb/<stamp>.png, rgb.txt, groundtruth.txt (the
    original's 60 Hz pose rows), camera.json with the original intrinsics. Scenario time t
    is written as the epoch stamp EPOCH + 1 + t (every stamp positive)."""
    folder.mkdir(parents=True)
    lines = ["# color images\n", "# timestamp filename\n"]
    for t, image in zip(original.times, original.images, strict=True):
        name = f"rgb/{stamp(t + 1.0)}.png"
        write_png(folder / name, image)
        lines.append(f"{stamp(t + 1.0)} {name}\n")
    (folder / "rgb.txt").write_text("".join(lines))
    traj = original.trajectory
    keep = traj.times >= -1.0
    if drop is not None:
        keep &= (traj.times < drop[0]) | (traj.times > drop[1])
    times = traj.times[keep] + 1.0  # all positive, to make exact stamps
    positions, quats = to_tum_world(traj.positions[keep], traj.quaternions[keep])
    rows = ["# ground truth trajectory\n", "# timestamp tx ty tz qx qy qz qw\n"]
    rows += [tum_row(stamp(t), p, q) for t, p, q in zip(times, positions, quats, strict=True)]
    (folder / "groundtruth.txt").write_text("".join(rows))
    if camera:
        cam = original.camera
        (folder / "camera.json").write_text(json.dumps(
            {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy}))
    return folder


def test_tum_round_trip_epoch_clock(original, tmp_path):
    src = tmp_path / "rgbd_dataset_synthetic"
    tum_capture(original, src)
    assert detect(src).name == "tum"
    out = import_recording(src, tmp_path / "out", "auto", ImportOptions(up="+z"))
    scenario = load_scenario(out)
    assert len(scenario.frame_times) == len(original.times)
    np.testing.assert_allclose(scenario.frame_times, original.times - original.times[0],
                               atol=1e-9)
    assert scenario.clock_offset_s == pytest.approx(int(EPOCH) + original.times[0] + 1.0,
                                                    abs=1e-6)
    positions, quats = imported_poses(scenario)
    np.testing.assert_allclose(positions, original.positions, atol=1e-6)
    assert same_rotation(quats, original.quats)
    assert scenario.camera == original.camera
    assert scenario.metric
    source = json.loads((out / "scenario.json").read_text())["source"]
    assert "Unix epoch" in source["clock"] and "OpenCV" in source["axes"]
    replay(out, tmp_path)


def test_tum_ground_truth_gaps_drop_frames(original, tmp_path):
    src = tmp_path / "seq"
    tum_capture(original, src, drop=(0.35, 0.65))
    rec = read_recording(src, "tum", ImportOptions(up="+z"))
    inside = (original.times > 0.35 + 0.02) & (original.times < 0.65 - 0.02)
    assert len(rec.frame_ns) == len(original.times) - int(inside.sum())
    assert any("dropped" in n for n in rec.notes)
    assert len(rec.frames.paths) == len(rec.frame_ns)


def test_tum_sequence_defaults_and_projection(tmp_path):
    """640x480 frames in rgbd_dataset_freiburgN_* get TUM's calibration; an identity
    ground-truth pose is an OpenCV camera looking down +z."""
    def sequence(name: str) -> Path:
        folder = tmp_path / name
        lines, rows = [], []
        for i in range(3):
            t = f"{EPOCH}.{100000 + 33333 * i:06d}"
            write_png(folder / "rgb" / f"{t}.png", np.full((480, 640, 3), 50, np.uint8))
            lines.append(f"{t} rgb/{t}.png\n")
        for i in range(12):
            t = f"{EPOCH}.{90000 + 10000 * i:06d}"
            rows.append(f"{t} {0.001 * i} 0 0 0 0 0 1\n")
        (folder / "rgb.txt").write_text("".join(lines))
        (folder / "groundtruth.txt").write_text("".join(rows))
        return folder

    fr1 = read_recording(sequence("rgbd_dataset_freiburg1_xyz"), "tum", ImportOptions(up="-y"))
    assert (fr1.camera.fx, fr1.camera.fy, fr1.camera.cx, fr1.camera.cy) == (
        517.306408, 516.469215, 318.643040, 255.313989)
    assert fr1.camera.distortion.model == "radtan"
    assert fr1.camera.distortion.coeffs == (0.262383, -0.953104, -0.005358, 0.002628, 1.163314)
    assert "freiburg1" in fr1.device
    fr3 = read_recording(sequence("rgbd_dataset_freiburg3_office"), "tum")
    assert fr3.camera.fx == 535.4 and fr3.camera.distortion is None
    other = read_recording(sequence("my_kinect"), "tum")
    assert (other.camera.fx, other.camera.cx, other.camera.cy) == (525.0, 319.5, 239.5)
    assert any("ROS default" in n for n in other.notes)

    # --up +y: no world rotation, so the source's points stay as they are
    out = import_recording(tmp_path / "rgbd_dataset_freiburg3_office", tmp_path / "out",
                           "tum", ImportOptions(up="+y"))
    scenario = load_scenario(out)
    positions, quats = imported_poses(scenario)
    np.testing.assert_allclose(positions[0], [0.001, 0, 0], atol=1e-12)
    cam = scenario.camera
    points = positions[0] + np.array([[0.0, 0.0, 2.0], [0.5, 0.0, 2.0], [0.0, 0.5, 2.0]])
    pixels, depth = cam.project(Pose(positions[0], quats[0]), points)
    assert np.all(depth > 0)  # OpenCV camera: +z is ahead
    np.testing.assert_allclose(pixels[0], [cam.cx, cam.cy], atol=1e-9)
    assert pixels[1][0] == pytest.approx(cam.cx + cam.fx * 0.25)  # +x is right
    assert pixels[2][1] == pytest.approx(cam.cy + cam.fy * 0.25)  # +y is down in the image
    replay(out, tmp_path)


def test_tum_trajectory_with_video(original, tmp_path):
    """poses.txt (camera.json says OpenGL axes) beside video.mp4: times from times.txt, or
    the video's own timestamps."""
    src = tmp_path / "slam"
    src.mkdir()
    os.link(original.video, src / "video.mp4")
    traj = original.trajectory
    rows = [tum_row(f"{t:.6f}", p, q)
            for t, p, q in zip(traj.times - traj.times[0], traj.positions, traj.quaternions,
                               strict=True)]
    (src / "poses.txt").write_text("".join(rows))
    cam = original.camera
    (src / "camera.json").write_text(json.dumps(
        {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy, "width": 64, "height": 48,
         "camera_axes": "opengl"}))
    # the video's own clock: frame i at i / 10 s
    rec = read_recording(src, "auto", ImportOptions(up="+y"))
    assert rec.format == "tum"
    np.testing.assert_array_equal(rec.frame_ns, np.arange(12) * 100_000_000)
    assert rec.clock == "seconds from the video's start"
    # times.txt, one per frame, on the trajectory's clock: the exact original frame times
    (src / "times.txt").write_text(
        "".join(f"{t - traj.times[0]:.6f}\n" for t in original.times))
    out = import_recording(src, tmp_path / "out", "tum", ImportOptions(up="+y"))
    scenario = load_scenario(out)
    positions, quats = imported_poses(scenario)
    np.testing.assert_allclose(positions, original.positions, atol=1e-6)
    assert same_rotation(quats, original.quats)
    assert scenario.video == "video.mp4"
    replay(out, tmp_path)


def test_tum_images_named_by_time(tmp_path):
    src = tmp_path / "cap"
    for i in range(4):
        write_png(src / "images" / f"{10 + 0.1 * i:.6f}.png", np.zeros((48, 64, 3), np.uint8))
    (src / "trajectory.txt").write_text(
        "".join(f"{9.9 + 0.05 * k:.6f} {0.01 * k} 0 0 0 0 0 1\n" for k in range(12)))
    rec = read_recording(src, "tum", ImportOptions(up="-y"))
    np.testing.assert_array_equal(rec.frame_ns, [10_000_000_000, 10_100_000_000,
                                                 10_200_000_000, 10_300_000_000])
    assert any("ROS default focal 525 px at 640 wide scaled" in n for n in rec.notes)
    assert rec.camera.fx == pytest.approx(52.5)


def test_tum_refuses_bad_input(original, tmp_path):
    src = tmp_path / "seq"
    tum_capture(original, src)
    gt = src / "groundtruth.txt"
    good = gt.read_text()

    def attempt(text: str, name: str = "groundtruth.txt") -> str:
        (src / name).write_text(text)
        with pytest.raises(InputError) as exc:
            read_recording(src, "tum", ImportOptions(up="+z"))
        return one_line(exc)

    lines = good.splitlines()
    bad = "\n".join([*lines[:5], lines[5].rsplit(" ", 1)[0], *lines[6:]])
    assert "groundtruth.txt line 6" in attempt(bad) and "8 numbers" in attempt(bad)
    unit = "\n".join([*lines[:4], " ".join([*lines[4].split()[:-1], "3.0"]), *lines[5:]])
    assert "line 5" in attempt(unit) and "unit quaternion" in attempt(unit)
    assert "do not overlap" in attempt("1.0 0 0 0 0 0 0 1\n2.0 0 0 0 0 0 0 1\n")
    gt.write_text(good)
    assert "rgb.txt line 3" in attempt("# x\n# y\n12a.5 rgb/x.png\n", "rgb.txt")
    assert "outside the capture folder" in attempt(f"{EPOCH}.1 ../x.png\n", "rgb.txt")
    (src / "rgb.txt").unlink()
    (src / "scenario.json").write_text("{}")
    assert "scenario.json" in detect_reason(src)


def detect_reason(src: Path) -> str:
    from simulator.scenario.importers import importers
    return importers()["tum"].why_not(src) or ""


REAL_TUM = Path(__file__).parent / "data" / "real" / "tum-rgbd" / "freiburg1_xyz"


@pytest.mark.skipif(not (REAL_TUM / "groundtruth.txt").is_file(),
                    reason="real TUM sample not staged")
def test_tum_real_freiburg1_xyz_ground_truth(tmp_path):
    """TUM's real fr1/xyz ground truth (tests/data/real/tum-rgbd, CC BY 4.0, unmodified)
    with stand-in 640x480 frames at 10 Hz from the sequence's first rgb stamp
    (1305031102.175304): fr1 calibration, exact epoch clock, the one mocap drop-out (110 ms
    at 1305031108.8357) drops one frame, a plausible hand-held path."""
    src = tmp_path / "rgbd_dataset_freiburg1_xyz"
    (src / "rgb").mkdir(parents=True)
    (src / "groundtruth.txt").write_bytes((REAL_TUM / "groundtruth.txt").read_bytes())
    image = np.full((480, 640, 3), 80, np.uint8)
    lines = []
    for k in range(260):
        micro = 175304 + 100_000 * k
        t = f"{1305031102 + micro // 1_000_000}.{micro % 1_000_000:06d}"
        write_png(src / "rgb" / f"{t}.png", image)
        lines.append(f"{t} rgb/{t}.png\n")
    (src / "rgb.txt").write_text("".join(lines))
    assert detect(src).name == "tum"
    out = import_recording(src, tmp_path / "out", "auto", ImportOptions(up="+z"))
    scenario = load_scenario(out)
    assert len(scenario.frame_times) == 259  # 1305031108.875304 lies in the drop-out
    assert scenario.clock_offset_s == pytest.approx(1305031102.175304, abs=1e-6)
    assert scenario.frame_times[-1] == pytest.approx(25.9, abs=1e-6)
    cam = scenario.camera
    assert (cam.width, cam.height, cam.fx) == (640, 480, 517.306408)
    assert cam.distortion.model == "radtan"
    traj = scenario.trajectory
    assert len(traj.times) > 2500  # the mocap's ~100 Hz rows kept for interpolation
    path = float(np.linalg.norm(np.diff(traj.positions, axis=0), axis=1).sum())
    assert 5.0 < path < 10.0, path  # TUM lists 7.1 m over the whole 30 s
    positions, quats = imported_poses(scenario)
    heights = positions[:, 1]
    assert heights.min() > 1.2 and heights.max() < 1.9  # hand-held, with --up +z
    forward = -quat_to_matrix(quats)[:, :, 2]
    assert forward[:, 1].mean() < -0.5  # looking down at the desk
    source = json.loads((out / "scenario.json").read_text())["source"]
    assert "1 frames without a ground-truth pose" in source["notes"]
    replay(out, tmp_path)


# --- ARKitScenes ----------------------------------------------------------------------------

VIDEO_ID = "41069021"
T0 = 3061.0  # ARKit uptime seconds at the first pose


def arkit_capture(original: Original, parent: Path, *, vary: bool = True) -> Path:
    """The original as ARKitScenes' 3dod layout: <id>/<id>_frames/lowres_wide/*.png with
    millisecond stamps, .pincam per frame (some a millisecond off), lowres_wide.traj
    world-to-camera axis-angle rows in a z-up world with OpenCV camera axes."""
    folder = parent / VIDEO_ID / f"{VIDEO_ID}_frames"
    cam = original.camera
    for i, (t, image) in enumerate(zip(original.times, original.images, strict=True)):
        stamp_ms = f"{T0 + 1.0 + t:.3f}"
        write_png(folder / "lowres_wide" / f"{VIDEO_ID}_{stamp_ms}.png", image)
        cam_stamp = f"{float(stamp_ms) + (0.001 if i % 3 == 1 else 0.0):.3f}"
        fx = cam.fx + (0.25 * i if vary else 0.0)
        (folder / "lowres_wide_intrinsics").mkdir(parents=True, exist_ok=True)
        (folder / "lowres_wide_intrinsics" / f"{VIDEO_ID}_{cam_stamp}.pincam").write_text(
            f"{cam.width} {cam.height} {fx} {cam.fy} {cam.cx} {cam.cy}\n")
    traj = original.trajectory
    lines = []
    for t, p, q in zip(traj.times, traj.positions, traj.quaternions, strict=True):
        r_c2w = Y_TO_Z @ quat_to_matrix(q)[0] @ CV_TO_GL
        p_world = Y_TO_Z @ p
        r_w2c = r_c2w.T
        t_w2c = -r_w2c @ p_world
        rotvec = cv2.Rodrigues(r_w2c)[0].ravel()
        lines.append(f"{T0 + 1.0 + t:.6f} " + " ".join(f"{v:.9f}" for v in (*rotvec, *t_w2c))
                     + "\n")
    (folder / "lowres_wide.traj").write_text("".join(lines))
    return folder


def test_arkitscenes_round_trip(original, tmp_path):
    frames_folder = arkit_capture(original, tmp_path)
    parent = frames_folder.parent
    assert detect(parent).name == "arkitscenes"
    assert detect(frames_folder).name == "arkitscenes"
    out = import_recording(parent, tmp_path / "out", "auto")
    scenario = load_scenario(out)
    assert len(scenario.frame_times) == len(original.times)
    stamps = np.array([round(T0 + 1.0 + t, 3) for t in original.times])
    np.testing.assert_allclose(scenario.frame_times, stamps - stamps[0], atol=1e-9)
    assert scenario.clock_offset_s == pytest.approx(stamps[0], abs=1e-9)
    # poses at the (millisecond) frame stamps, back in the original y-up world
    expected_p, expected_q = original.trajectory.at_many(stamps - T0 - 1.0)
    positions, quats = imported_poses(scenario)
    np.testing.assert_allclose(positions, expected_p, atol=1e-6)
    assert same_rotation(quats, expected_q)
    np.testing.assert_allclose(scenario.intrinsics[:, 0],
                               original.camera.fx + 0.25 * np.arange(len(original.times)))
    assert (scenario.camera.width, scenario.camera.height) == (64, 48)
    assert scenario.metric
    source = json.loads((out / "scenario.json").read_text())["source"]
    assert "world-to-camera" in source["notes"] and "OpenCV" in source["axes"]
    replay(out, tmp_path, full=True)


def test_arkitscenes_world_to_camera_and_axes(tmp_path):
    """Rows with an identity rotation and translation -(1, 2, 3): inverted, the camera sits
    at (1, 2, 3) (not at -(1, 2, 3)); an OpenCV camera, so with --up +y (no levelling) a
    point 2 m along +z lands on the principal point, +x to the right, +y below."""
    folder = tmp_path / f"{VIDEO_ID}_frames"
    for i in range(3):
        t = f"{T0 + 0.1 * i:.3f}"
        write_png(folder / "lowres_wide" / f"{VIDEO_ID}_{t}.png", np.zeros((48, 64, 3), np.uint8))
        (folder / "lowres_wide_intrinsics").mkdir(parents=True, exist_ok=True)
        (folder / "lowres_wide_intrinsics" / f"{VIDEO_ID}_{t}.pincam").write_text(
            "64 48 50 50 32 24")
    centre = np.array([1.0, 2.0, 3.0])
    (folder / "lowres_wide.traj").write_text("".join(
        f"{T0 + 0.05 * k:.6f} 0 0 0 {-centre[0]} {-centre[1]} {-centre[2]}\n"
        for k in range(6)))
    rec = read_recording(folder, "arkitscenes", ImportOptions(up="+y"))
    np.testing.assert_allclose(rec.poses.positions, np.tile(centre, (6, 1)), atol=1e-12)
    assert rec.intrinsics is None
    cam = rec.camera
    pose = Pose(rec.poses.positions[0], rec.poses.quaternions[0])
    points = centre + np.array([[0.0, 0.0, 2.0], [0.5, 0.0, 2.0], [0.0, 0.5, 2.0]])
    pixels, depth = cam.project(pose, points)
    assert np.all(depth > 0)
    np.testing.assert_allclose(pixels[0], [32, 24], atol=1e-9)
    assert pixels[1][0] == pytest.approx(32 + 12.5) and pixels[2][1] == pytest.approx(24 + 12.5)
    # default: world z up -> y up; the camera looks along the world's +z = up after levelling
    rec = read_recording(folder, "arkitscenes")
    np.testing.assert_allclose(rec.poses.positions[0], [1.0, 3.0, -2.0], atol=1e-12)


def test_arkitscenes_refuses_bad_input(original, tmp_path):
    folder = arkit_capture(original, tmp_path, vary=False)
    traj = folder / "lowres_wide.traj"
    good = traj.read_text()
    lines = good.splitlines()
    traj.write_text("\n".join([*lines[:2], " ".join(lines[2].split()[:6]), *lines[3:]]))
    with pytest.raises(InputError) as exc:
        read_recording(folder, "arkitscenes")
    assert "lowres_wide.traj line 3" in one_line(exc) and "7 numbers" in str(exc.value)
    traj.write_text(good)
    pincam = sorted((folder / "lowres_wide_intrinsics").iterdir())[4]
    pincam.write_text("64 48 50")
    with pytest.raises(InputError) as exc:
        read_recording(folder, "arkitscenes")
    assert pincam.name in one_line(exc)
    pincam.unlink()
    with pytest.raises(InputError) as exc:
        read_recording(folder, "arkitscenes")
    assert "no lowres_wide_intrinsics" in one_line(exc)
    assert importers_reason(tmp_path / "empty") is not None


def importers_reason(src: Path) -> str | None:
    from simulator.scenario.importers import importers
    src.mkdir(exist_ok=True)
    return importers()["arkitscenes"].why_not(src)
