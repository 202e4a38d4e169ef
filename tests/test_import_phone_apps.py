"""Importers of three iPhone capture apps: Stray Scanner, ios_logger, Record3D.

Each fixture is a synthetic scenario (``synthesize``: real-looking frames, a known camera
path) re-packaged in the app's format as its published description says, so the import
can be checked against the original: frame times, poses at the frames, intrinsics.

- Stray Scanner: docs/format.md and StrayScanner/Helpers/OdometryEncoder.swift of
  github.com/strayrobots/scanner (odometry rows ``timestamp, frame, x, y, z, qx, qy, qz, qw``,
  the quaternion being ARKit's camera rotation times q_AC = a half turn about x).
- ios_logger: README "Dataset format" and ios_logger/ViewController.mm of
  github.com/Varvrar/ios_logger (``Frames.txt`` time,frameNumber,fx,fy,cx,cy;
  ``ARposes.txt`` time,x,y,z,qw,qx,qy,qz; epoch seconds printed with %f; CR LF).
- Record3D: github.com/marek-simonik/record3d issues #27, #33, #64 and the nerfstudio reader
  (``metadata`` JSON: w, h, column-major K, fps, poses [qx, qy, qz, qw, px, py, pz] in the
  OpenGL camera convention, frameTimestamps; ``rgbd/N.jpg``).
"""

from __future__ import annotations

import gc
import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.errors import InputError
from simulator.run import RunSettings, run_scenario
from simulator.scenario.importers import detect, import_recording, read_recording
from simulator.scenario.load import load_scenario, validate_scenario
from simulator.scenario.synth import synthesize
from simulator.types import Pose

BOOT_S = 12345.678901  # a phone's uptime clock
EPOCH_S = 1600000000.123456  # Unix epoch


# --- the original capture ---------------------------------------------------------------


class Source:
    """A synthetic scenario: frames (RGB), frame times, poses at the frames (GL c2w)."""

    def __init__(self, root: Path, width: int, height: int, frames: int = 15) -> None:
        path = synthesize(root / f"syn-{width}x{height}", "orbit", 0, width=width,
                          height=height, fps=15, duration_s=frames / 15, video="frames/")
        self.scenario = load_scenario(path)
        s = self.scenario
        self.camera = s.camera
        self.times = s.frame_times.copy()
        self.positions, self.quats = s.trajectory.at_many(self.times)
        self.rotations = np.array([Pose(p, q).rotation() for p, q in
                                   zip(self.positions, self.quats, strict=True)])
        self.images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
                       for p in sorted((path / "frames").iterdir())]
        self.traj = s.trajectory


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> Source:
    return Source(tmp_path_factory.mktemp("src"), 64, 48)


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Source:
    return Source(tmp_path_factory.mktemp("src"), 48, 64)


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of x y z w quaternions (as simd_quatf's * does)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def write_video(path: Path, images: list[np.ndarray], fps: float = 15) -> None:
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path.with_suffix(".tmp.mp4")), cv2.VideoWriter_fourcc(*"mp4v"),
                             fps, (w, h))
    assert writer.isOpened()
    for image in images:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    path.with_suffix(".tmp.mp4").rename(path)


def rotation_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def imported_poses(scenario) -> tuple[np.ndarray, np.ndarray]:
    positions, quats = scenario.trajectory.at_many(scenario.frame_times)
    rotations = np.array([Pose(p, q).rotation() for p, q in zip(positions, quats, strict=True)])
    return positions, rotations


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def replay(out: Path, tmp_path: Path, *, full: bool = False) -> None:
    outcome = run_scenario(out, RunSettings(timing_only=not full), tmp_path / "run")
    assert outcome.report["complete"]


# --- Stray Scanner ------------------------------------------------------------------------


def write_stray(folder: Path, src: Source, *, k_scale: float = 1.0, per_frame_k: bool = False,
                skip: tuple[int, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    write_video(folder / "rgb.mp4", src.images)
    header = "timestamp, frame, x, y, z, qx, qy, qz, qw"
    if per_frame_k:
        header += ", fx, fy, cx, cy, distortion_center_x, distortion_center_y"
    lines = [header]
    q_ac = np.array([1.0, 0.0, 0.0, 0.0])  # simd_quatf(ix: 1, iy: 0, iz: 0, r: 0)
    cam = src.camera
    for i, (t, p, q) in enumerate(zip(src.times, src.positions, src.quats, strict=True)):
        if i in skip:
            continue
        qx, qy, qz, qw = qmul(q, q_ac)
        line = (f"{BOOT_S + t:.6f}, {i:06d}, {p[0]:.9f}, {p[1]:.9f}, {p[2]:.9f}, "
                f"{qx:.9f}, {qy:.9f}, {qz:.9f}, {qw:.9f}")
        if per_frame_k:
            line += (f", {(cam.fx + 0.25 * i) * k_scale}, {(cam.fy + 0.25 * i) * k_scale}, "
                     f"{cam.cx * k_scale}, {cam.cy * k_scale}, , ")
        lines.append(line)
    (folder / "odometry.csv").write_text("\n".join(lines) + "\n")
    k = np.array([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]]) * k_scale
    k[2, 2] = 1.0
    (folder / "camera_matrix.csv").write_text(
        "\n".join(", ".join(repr(float(v)) for v in row) for row in k))
    (folder / "imu.csv").write_text("timestamp, a_x, a_y, a_z, alpha_x, alpha_y, alpha_z\n"
                                    f"{BOOT_S}, 0.0, -9.81, 0.0, 0.0, 0.0, 0.0\n")
    (folder / "depth").mkdir()
    cv2.imwrite(str(folder / "depth" / "000000.png"), np.full((12, 16), 1500, np.uint16))
    return folder


def test_stray_scanner_round_trip(landscape: Source, tmp_path: Path) -> None:
    src = write_stray(tmp_path / "71de12f9", landscape)
    assert detect(src).name == "stray_scanner"
    out = import_recording(src, tmp_path / "out")
    s = load_scenario(out)
    assert s.source["format"] == "stray_scanner" and s.source["app"] == "Stray Scanner"
    # times: rebased from the first frame, the boot-clock offset recorded
    np.testing.assert_allclose(s.frame_times, landscape.times, atol=1e-6)
    assert s.clock_offset_s == pytest.approx(BOOT_S + landscape.times[0], abs=1e-6)
    # camera and poses as the original (the OpenCV-style quaternion turned back to ARKit's)
    assert (s.camera.width, s.camera.height) == (64, 48)
    assert s.camera.fx == pytest.approx(landscape.camera.fx, abs=1e-6)
    assert s.camera.cy == pytest.approx(landscape.camera.cy, abs=1e-6)
    positions, rotations = imported_poses(s)
    np.testing.assert_allclose(positions, landscape.positions, atol=1e-6)
    assert rotation_error(rotations, landscape.rotations) < 1e-6
    # axis check: a point 2 m in front of the original camera, off-centre, lands on the
    # same pixel through the imported camera
    k = 7
    point = landscape.positions[k] + landscape.rotations[k] @ np.array([0.3, -0.2, -2.0])
    want, depth = landscape.camera.project(Pose(landscape.positions[k], landscape.quats[k]),
                                           point[None])
    got, got_depth = s.camera.project(s.trajectory.at(s.frame_times[k]), point[None])
    assert depth[0] == pytest.approx(2.0) and got_depth[0] == pytest.approx(2.0, abs=1e-5)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert want[0, 0] > landscape.camera.cx and want[0, 1] > landscape.camera.cy
    assert validate_scenario(out).problems == []
    replay(out, tmp_path, full=True)


def test_stray_scanner_full_resolution_matrix_is_scaled_to_the_video(
    landscape: Source, tmp_path: Path
) -> None:
    # the app writes the matrix of the capture size (1920x1440); a video re-encoded at
    # 64x48 (1/30) must get the matrix scaled by exactly 1/30
    src = write_stray(tmp_path / "cap", landscape, k_scale=30.0, per_frame_k=True)
    rec = read_recording(src)
    assert rec.camera.fx == pytest.approx(landscape.camera.fx, abs=1e-6)
    assert rec.camera.cx == pytest.approx(32.0, abs=1e-9)
    assert any("scaled" in n for n in rec.notes)
    # per-frame intrinsics (newer app builds) carried, scaled the same way
    out = import_recording(src, tmp_path / "out")
    s = load_scenario(out)
    assert s.intrinsics is not None and s.intrinsics.shape == (15, 4)
    np.testing.assert_allclose(s.intrinsics[:, 0], landscape.camera.fx + 0.25 * np.arange(15),
                               atol=1e-5)


def test_stray_scanner_portrait_video_keeps_its_size(portrait: Source, tmp_path: Path) -> None:
    out = import_recording(write_stray(tmp_path / "cap", portrait), tmp_path / "out")
    s = load_scenario(out)
    assert (s.camera.width, s.camera.height) == (48, 64)
    _, rotations = imported_poses(s)
    assert rotation_error(rotations, portrait.rotations) < 1e-6


def test_stray_scanner_rows_map_to_frames_by_number(landscape: Source, tmp_path: Path) -> None:
    src = write_stray(tmp_path / "cap", landscape, skip=(4,))
    rec = read_recording(src)
    assert rec.frames.keep == tuple(i for i in range(15) if i != 4)
    out = import_recording(src, tmp_path / "out")
    s = load_scenario(out)
    kept = np.delete(landscape.times, 4)
    np.testing.assert_allclose(s.frame_times, kept - kept[0], atol=1e-6)


@pytest.mark.parametrize(
    ("edit", "where", "what"),
    [
        (lambda t: t.replace(", 000003,", ", 000003, 0.5,"), "odometry.csv line 5", "values"),
        (lambda t: t.replace(", 000002,", ", 00000x,"), "odometry.csv line 4", "frame"),
        (lambda t: t.replace("timestamp,", "time,"), "odometry.csv line 1", "timestamp"),
    ],
)
def test_stray_scanner_malformed_odometry(landscape: Source, tmp_path: Path, edit, where: str,
                                          what: str) -> None:
    src = write_stray(tmp_path / "cap", landscape)
    path = src / "odometry.csv"
    path.write_text(edit(path.read_text()))
    with pytest.raises(InputError) as exc:
        import_recording(src, tmp_path / "out")
    assert where in one_line(exc) and what in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_stray_scanner_bad_quaternion_and_matrix(landscape: Source, tmp_path: Path) -> None:
    src = write_stray(tmp_path / "cap", landscape)
    lines = (src / "odometry.csv").read_text().splitlines()
    cells = lines[3].split(", ")
    cells[5:9] = ["0.5", "0.5", "0.5", "0.1"]
    lines[3] = ", ".join(cells)
    (src / "odometry.csv").write_text("\n".join(lines))
    with pytest.raises(InputError, match=r"odometry\.csv line 4: quaternion"):
        read_recording(src)
    write_stray(tmp_path / "cap2", landscape)
    (tmp_path / "cap2" / "camera_matrix.csv").write_text("1, 2\n3, 4\n")
    with pytest.raises(InputError, match=r"camera_matrix\.csv: expected a 3x3"):
        read_recording(tmp_path / "cap2")


# --- ios_logger ---------------------------------------------------------------------------


def write_ios_logger(folder: Path, src: Source, *, intrinsics: bool = True, poses: bool = True,
                     first_number: int = 0) -> Path:
    folder.mkdir(parents=True)
    write_video(folder / "Frames.m4v", src.images)
    cam = src.camera
    lines = []
    for i, t in enumerate(src.times):
        line = f"{EPOCH_S + t:f},{i + first_number}"
        if intrinsics:  # focal length breathing with autofocus
            line += f",{cam.fx + 0.1 * i:f},{cam.fy + 0.1 * i:f},{cam.cx:f},{cam.cy:f}"
        lines.append(line + "\r\n")
    (folder / "Frames.txt").write_text("".join(lines), newline="")
    if poses:  # ARKit rate (the synthetic 60 Hz trajectory), w first
        rows = [f"{EPOCH_S + t:f},{p[0]:f},{p[1]:f},{p[2]:f},{q[3]:f},{q[0]:f},{q[1]:f},{q[2]:f}"
                "\r\n" for t, p, q in zip(src.traj.times, src.traj.positions,
                                          src.traj.quaternions, strict=True)]
        (folder / "ARposes.txt").write_text("".join(rows), newline="")
    (folder / "Accel.txt").write_text(f"{EPOCH_S:f},0.0,-1.0,0.0\r\n", newline="")
    (folder / "Gyro.txt").write_text(f"{EPOCH_S:f},0.0,0.0,0.0\r\n", newline="")
    return folder


def test_ios_logger_round_trip(landscape: Source, tmp_path: Path) -> None:
    src = write_ios_logger(tmp_path / "2020-09-07T13-57-33", landscape)
    assert detect(src).name == "ios_logger"
    out = import_recording(src, tmp_path / "out")
    s = load_scenario(out)
    np.testing.assert_allclose(s.frame_times, landscape.times, atol=1e-6)
    assert s.clock_offset_s == pytest.approx(EPOCH_S + landscape.times[0], abs=1e-6)
    assert "epoch" in s.source["clock"].lower()
    # per-frame intrinsics (autofocus) carried; the camera is the first frame's
    assert s.intrinsics is not None
    np.testing.assert_allclose(s.intrinsics[:, 0], landscape.camera.fx + 0.1 * np.arange(15),
                               atol=2e-6)
    assert s.camera.fx == pytest.approx(landscape.camera.fx, abs=1e-6)
    # poses: w x y z in the file, interpolated at the frames like the original (%f: 1e-6)
    positions, rotations = imported_poses(s)
    np.testing.assert_allclose(positions, landscape.positions, atol=2e-6)
    assert rotation_error(rotations, landscape.rotations) < 1e-5
    k = 3
    point = landscape.positions[k] + landscape.rotations[k] @ np.array([-0.4, 0.25, -1.5])
    want, _ = landscape.camera.project(Pose(landscape.positions[k], landscape.quats[k]),
                                       point[None])
    got, _ = s.camera.project(s.trajectory.at(s.frame_times[k]), point[None])
    np.testing.assert_allclose(got, want, atol=1e-3)
    replay(out, tmp_path)


def test_ios_logger_without_arkit_and_old_numbering(landscape: Source, tmp_path: Path) -> None:
    # recorded without ARKit: no ARposes.txt, no intrinsics; frame numbers from 1 (pre-2020)
    src = write_ios_logger(tmp_path / "cap", landscape, intrinsics=False, poses=False,
                           first_number=1)
    rec = read_recording(src)
    assert rec.poses is None and rec.intrinsics is None
    assert any("field of view" in n for n in rec.notes)
    assert rec.camera.cx == 32 and rec.camera.cy == 24
    out = import_recording(src, tmp_path / "out")
    s = load_scenario(out)
    assert not s.poses_available and set(s.tracking) <= {"tracking", "unavailable"}
    np.testing.assert_allclose(s.frame_times, landscape.times, atol=1e-6)


def test_ios_logger_portrait_keeps_size(portrait: Source, tmp_path: Path) -> None:
    rec = read_recording(write_ios_logger(tmp_path / "cap", portrait))
    assert (rec.camera.width, rec.camera.height) == (48, 64)


@pytest.mark.parametrize(
    ("name", "edit", "what"),
    [
        ("ARposes.txt", lambda t: t.replace(",", ";", 1), "ARposes.txt line 1: 7 values"),
        ("Frames.txt", lambda t: t.replace(",3,", ",5,", 1), "Frames.txt line 4: frameNumber 5"),
        ("Frames.txt", lambda t: t.replace(",2,", ",2,abc,", 1), "Frames.txt line 3: 7 values"),
        ("ARposes.txt", lambda t: "1600000000.1,0,0,0,2,0,0,0\r\n" + t,
         "ARposes.txt line 1: quaternion"),
    ],
)
def test_ios_logger_malformed(landscape: Source, tmp_path: Path, name: str, edit,
                              what: str) -> None:
    src = write_ios_logger(tmp_path / "cap", landscape)
    path = src / name
    path.write_bytes(edit(path.read_bytes().decode()).encode())
    with pytest.raises(InputError) as exc:
        import_recording(src, tmp_path / "out")
    assert what in one_line(exc)


# --- Record3D -----------------------------------------------------------------------------


def r3d_metadata(src: Source, *, relative: bool, timestamps: bool,
                 fps: float | None = 15) -> dict:
    cam = src.camera
    positions, rotations = src.positions, src.rotations
    if relative:  # Record3D's world: the first camera's frame
        r0 = rotations[0]
        rotations = np.einsum("ji,njk->nik", r0, rotations)
        positions = (positions - positions[0]) @ r0
    quats = [_quat(r) for r in rotations]
    meta = {
        "w": cam.width, "h": cam.height, "dw": 16, "dh": 12,
        "K": [cam.fx, 0.0, 0.0, 0.0, cam.fy, 0.0, cam.cx, cam.cy, 1.0],  # column-major
        "poses": [[*q, *p] for q, p in zip(quats, positions.tolist(), strict=True)],
        "initPose": [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        "cameraType": 1,
    }
    if fps is not None:
        meta["fps"] = fps
    if timestamps:
        meta["frameTimestamps"] = [BOOT_S + t for t in src.times.tolist()]
        meta["perFrameIntrinsicCoeffs"] = [[cam.fx, cam.fy, cam.cx, cam.cy]] * len(src.times)
    return meta


def _quat(r: np.ndarray) -> list[float]:
    w = np.sqrt(max(0.0, 1 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    if w > 1e-3:
        return [(r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w),
                (r[1, 0] - r[0, 1]) / (4 * w), w]
    raise AssertionError("test rotation too close to a half turn")


def write_r3d(path: Path, src: Source, meta: dict, *, extra: dict[str, bytes] | None = None
              ) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, image in enumerate(src.images):  # zip order is not frame order in real files
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            assert ok
            archive.writestr(f"rgbd/{i}.jpg", jpg.tobytes())
            archive.writestr(f"rgbd/{i}.depth", b"\x00" * 64)
            archive.writestr(f"rgbd/{i}.conf", b"\x02" * 16)
        archive.writestr("metadata", json.dumps(meta))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def test_record3d_round_trip_with_timestamps(landscape: Source, tmp_path: Path) -> None:
    src = write_r3d(tmp_path / "capture.r3d", landscape,
                    r3d_metadata(landscape, relative=False, timestamps=True))
    assert detect(src).name == "record3d"
    out = import_recording(src, tmp_path / "out")
    s = load_scenario(out)
    assert s.video == "frames/" and len(list((out / "frames").glob("*.jpg"))) == 15
    # the JPEGs are carried unchanged
    with zipfile.ZipFile(src) as archive:
        assert (out / "frames" / "000007.jpg").read_bytes() == archive.read("rgbd/7.jpg")
    np.testing.assert_allclose(s.frame_times, landscape.times, atol=1e-6)
    assert s.clock_offset_s == pytest.approx(BOOT_S + landscape.times[0], abs=1e-6)
    assert s.camera.fx == pytest.approx(landscape.camera.fx)
    assert s.camera.cx == pytest.approx(landscape.camera.cx)
    positions, rotations = imported_poses(s)
    np.testing.assert_allclose(positions, landscape.positions, atol=1e-8)
    assert rotation_error(rotations, landscape.rotations) < 1e-8
    k = 10
    point = landscape.positions[k] + landscape.rotations[k] @ np.array([0.2, 0.3, -1.0])
    want, _ = landscape.camera.project(Pose(landscape.positions[k], landscape.quats[k]),
                                       point[None])
    got, _ = s.camera.project(s.trajectory.at(s.frame_times[k]), point[None])
    np.testing.assert_allclose(got, want, atol=1e-6)
    replay(out, tmp_path)


def test_record3d_first_camera_world_is_levelled(landscape: Source, tmp_path: Path) -> None:
    # older exports: no frameTimestamps (frames at i / fps), world = the first camera
    src = write_r3d(tmp_path / "old.r3d", landscape,
                    r3d_metadata(landscape, relative=True, timestamps=False))
    out = import_recording(src, tmp_path / "out")
    s = load_scenario(out)
    np.testing.assert_allclose(s.frame_times, np.arange(15) / 15, atol=1e-6)
    assert s.fps == 15
    positions, rotations = imported_poses(s)
    # the motion between frames is the original's ...
    rel = np.einsum("ji,njk->nik", rotations[0], rotations)
    rel_want = np.einsum("ji,njk->nik", landscape.rotations[0], landscape.rotations)
    assert rotation_error(rel, rel_want) < 1e-6
    np.testing.assert_allclose((positions - positions[0]) @ rotations[0],
                               (landscape.positions - landscape.positions[0])
                               @ landscape.rotations[0], atol=1e-6)
    # ... and the world is levelled: the cameras' mean up is +y
    mean_up = rotations[:, :, 1].mean(axis=0)
    np.testing.assert_allclose(mean_up / np.linalg.norm(mean_up), [0, 1, 0], atol=1e-9)
    assert "levelled" in s.source["axes"]


def test_record3d_portrait_folder_and_cleanup(portrait: Source, tmp_path: Path) -> None:
    meta = r3d_metadata(portrait, relative=False, timestamps=True)
    src = write_r3d(tmp_path / "p.r3d", portrait, meta)
    rec = read_recording(src)
    assert (rec.camera.width, rec.camera.height) == (48, 64)
    folder = rec.frames.paths[0].parent
    assert folder.is_dir()
    del rec
    gc.collect()
    assert not folder.exists()  # the extracted frames go with the Recording
    # the unzipped folder of an export reads the same
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(src) as archive:
        archive.extractall(unzipped)
    assert detect(unzipped).name == "record3d"
    s = load_scenario(import_recording(unzipped, tmp_path / "out"))
    assert (s.camera.width, s.camera.height) == (48, 64)
    np.testing.assert_allclose(s.frame_times, portrait.times, atol=1e-6)


def test_record3d_selfie_capture_has_no_poses(landscape: Source, tmp_path: Path) -> None:
    meta = r3d_metadata(landscape, relative=False, timestamps=False)
    meta["poses"] = [[0, 0, 0, 1, 0, 0, 0]] * 15
    out = import_recording(write_r3d(tmp_path / "selfie.r3d", landscape, meta), tmp_path / "o")
    assert not load_scenario(out).poses_available


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda m: m["poses"][3].pop(), "poses must be a list of 7-number lists"),
        (lambda m: m.update(K=[1, 2, 3]), "K must be the 3x3 camera matrix"),
        (lambda m: m.update(K=[50, 1, 32, 0, 50, 24, 3, 4, 1]), "K is not a camera matrix"),
        (lambda m: m["poses"][2].__setitem__(3, 3.0), "poses[2]: quaternion"),
        (lambda m: m.pop("fps"), "no frameTimestamps and no fps"),
        (lambda m: m.update(w="wide"), "w must be the image width"),
    ],
)
def test_record3d_malformed_metadata(landscape: Source, tmp_path: Path, change,
                                     what: str) -> None:
    meta = r3d_metadata(landscape, relative=False, timestamps=False)
    change(meta)
    src = write_r3d(tmp_path / "bad.r3d", landscape, meta)
    with pytest.raises(InputError) as exc:
        import_recording(src, tmp_path / "out")
    message = one_line(exc)
    assert "bad.r3d" in message and what in message


def test_record3d_archive_defences(landscape: Source, tmp_path: Path) -> None:
    meta = r3d_metadata(landscape, relative=False, timestamps=False)
    # a member compressing 1000:1 (zip bomb) is refused before it is read
    meta_bomb = dict(meta, padding=" " * 2_000_000)
    src = write_r3d(tmp_path / "bomb.r3d", landscape, meta_bomb)
    with pytest.raises(InputError, match="compression ratio"):
        read_recording(src)
    # a missing frame inside the sequence is an error, names outside rgbd/N.jpg are ignored
    buf = io.BytesIO()
    with zipfile.ZipFile(write_r3d(tmp_path / "ok.r3d", landscape, meta,
                                   extra={"../../evil.jpg": b"x", "rgbd/../x.jpg": b"y"})
                         ) as archive, zipfile.ZipFile(buf, "w") as out:
        for info in archive.infolist():
            if info.filename != "rgbd/5.jpg":
                out.writestr(info, archive.read(info))
    assert read_recording(tmp_path / "ok.r3d").frame_count == 15
    (tmp_path / "gap.r3d").write_bytes(buf.getvalue())
    with pytest.raises(InputError, match=r"5\.jpg is missing"):
        read_recording(tmp_path / "gap.r3d")
    # not a zip / not a capture: detection says why, never raises
    (tmp_path / "junk.r3d").write_bytes(b"not a zip")
    assert "zip" in detect_reason(tmp_path / "junk.r3d")


def detect_reason(path: Path) -> str:
    from simulator.scenario.importers import importers

    return importers()["record3d"].why_not(path) or ""


def test_detection_declines_other_layouts(landscape: Source, tmp_path: Path) -> None:
    stray = write_stray(tmp_path / "stray", landscape)
    logger = write_ios_logger(tmp_path / "logger", landscape)
    from simulator.scenario.importers import importers

    table = importers()
    assert table["ios_logger"].why_not(stray) and table["record3d"].why_not(stray)
    assert table["stray_scanner"].why_not(logger) and table["record3d"].why_not(logger)
    assert table["stray_scanner"].why_not(tmp_path / "missing") is not None
    assert "odometry.csv" in table["stray_scanner"].why_not(logger)
