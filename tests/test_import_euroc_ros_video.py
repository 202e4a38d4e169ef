"""Importers of EuRoC / ASL datasets, ROS 1 and ROS 2 bags, and plain (phone) videos.

Fixtures are written here from each format's published description:

- EuRoC / ASL: the EuRoC MAV dataset page
  (https://projects.asl.ethz.ch/datasets/doku.php?id=kmavvisualinertialdatasets) and its
  ASL dataset format: ``mav0/cam0/data.csv`` (``#timestamp [ns],filename``),
  ``cam0/sensor.yaml`` (``T_BS`` the camera in the body frame, ``intrinsics [fu, fv, cu,
  cv]``, ``radial-tangential`` k1 k2 p1 p2), ``state_groundtruth_estimate0/data.csv``
  (ns, p_RS_R xyz, q_RS w x y z, velocities and biases), world gravity aligned z up;
- ROS bags: sensor_msgs/Image, CompressedImage, CameraInfo, geometry_msgs/PoseStamped,
  nav_msgs/Odometry, tf2_msgs/TFMessage as the ROS message definitions give them (REP 103
  axes: body x forward, y left, z up; optical frames z forward, y down), written with the
  rosbags library's own ROS 1 and ROS 2 writers;
- plain videos: MP4 written with PyAV with explicit presentation times (variable frame
  rate) and a portrait display matrix in the track header (ISO/IEC 14496-12 ``tkhd``
  matrix, which is where phones put the rotation).

A rendered synthetic scenario is re-packaged in each format so times, poses and intrinsics
can be compared with the original after import.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.errors import InputError
from simulator.run import RunSettings, run_scenario
from simulator.scenario.importers import ImportOptions, detect, import_recording, read_recording
from simulator.scenario.importers.convert import CV_TO_GL, FLU_TO_GL, quat_to_matrix
from simulator.scenario.importers.euroc import read_simple_yaml
from simulator.scenario.load import load_scenario, validate_scenario
from simulator.scenario.synth import synthesize
from simulator.scenario.video import count_frames, iter_frames
from simulator.types import Pose

# scenario worlds are y up; EuRoC and ROS worlds are z up: Y_TO_Z takes y to z
Y_TO_Z = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
EPOCH_NS = 1403636579763555584  # EuRoC MH_01's first camera timestamp (2014, Unix epoch)


def rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def rot_x(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])


def quat_xyzw(r: np.ndarray) -> np.ndarray:
    from simulator.scenario.importers.convert import matrix_to_quat

    return matrix_to_quat(r[None])[0]


class Original:
    """A synthetic scenario's frames, frame times, poses (at the frames and between them)."""

    def __init__(self, folder: Path) -> None:
        scenario = load_scenario(folder)
        self.camera = scenario.camera
        self.times = np.asarray(scenario.frame_times)
        self.images = list(iter_frames(folder / scenario.video))
        self.trajectory = scenario.trajectory
        self.positions, self.quats = scenario.trajectory.at_many(self.times)
        # the poses also half-way between frames (a ground truth denser than the frames)
        mid = (self.times[:-1] + self.times[1:]) / 2
        self.dense_times = np.sort(np.concatenate([self.times, mid]))
        self.dense_positions, self.dense_quats = scenario.trajectory.at_many(self.dense_times)

    def frame_ns(self, times: np.ndarray | None = None) -> np.ndarray:
        t = self.times if times is None else times
        return EPOCH_NS + np.round(np.asarray(t) * 1e9).astype(np.int64)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Original:
    out = tmp_path_factory.mktemp("synth") / "orbit"
    synthesize(out, "orbit", width=64, height=48, fps=10, duration_s=1.2)
    return Original(out)


def same_rotation(q1: np.ndarray, q2: np.ndarray, tol: float = 1e-8) -> bool:
    dots = np.abs(np.sum(np.asarray(q1) * np.asarray(q2), axis=-1))
    return bool(np.all(1 - dots < tol))


def check_poses(scenario, original: Original, pos_tol: float = 1e-5) -> None:
    positions, quats = scenario.trajectory.at_many(np.asarray(scenario.frame_times))
    assert np.allclose(positions, original.positions, atol=pos_tol)
    assert same_rotation(quats, original.quats, 1e-8)


def check_projection(scenario, original: Original) -> None:
    """A point 2 m in front of the original camera projects to the principal point, and a
    point up-right of it to the upper right quadrant, after import."""
    r = quat_to_matrix(original.quats[3:4])[0]
    centre = original.positions[3] - 2.0 * r[:, 2]
    up_right = centre + 0.3 * r[:, 0] + 0.3 * r[:, 1]
    p, q = scenario.trajectory.at_many(np.asarray(scenario.frame_times[3:4]))
    pixels, depth = scenario.camera.project(Pose(p[0], q[0]), np.stack([centre, up_right]))
    cam = scenario.camera
    assert depth[0] == pytest.approx(2.0, abs=1e-6)
    assert pixels[0] == pytest.approx([cam.cx, cam.cy], abs=1e-4)
    assert pixels[1][0] > cam.cx and pixels[1][1] < cam.cy


def replay(out: Path, tmp_path: Path, *, full: bool = False) -> None:
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


# --- EuRoC / ASL ----------------------------------------------------------------------------

# the camera in the body frame (EuRoC's cam0 is turned about 90 deg about z from the IMU)
R_BS = rot_z(90.0) @ rot_x(4.0)
T_BS = np.array([-0.0216, -0.0647, 0.0098])
DISTORTION = [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05]


def euroc_capture(original: Original, folder: Path, *, gt: str = "state_groundtruth_estimate0",
                  marker: np.ndarray | None = None) -> Path:
    """The original as an EuRoC sequence: grayscale PNGs named by their ns time, the body's
    ground truth in a z-up world with the camera at T_BS on the body."""
    cam = folder / "mav0" / "cam0"
    (cam / "data").mkdir(parents=True)
    rows = ["#timestamp [ns],filename"]
    for ns, image in zip(original.frame_ns(), original.images, strict=True):
        cv2.imwrite(str(cam / "data" / f"{ns}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rows.append(f"{ns},{ns}.png")
    (cam / "data.csv").write_text("\r\n".join(rows) + "\r\n")  # EuRoC's files are CRLF
    t_bs = np.eye(4)
    t_bs[:3, :3], t_bs[:3, 3] = R_BS, T_BS
    data = ", ".join(f"{v:.15g}" for v in t_bs.ravel()[:8])
    data2 = ", ".join(f"{v:.15g}" for v in t_bs.ravel()[8:])
    c = original.camera
    (cam / "sensor.yaml").write_text(
        "%YAML:1.0\n# General sensor definitions.\nsensor_type: camera\n"
        "comment: VI-Sensor cam0 (MT9M034)\n\n# Sensor extrinsics wrt. the body-frame.\n"
        f"T_BS:\n  cols: 4\n  rows: 4\n  data: [{data},\n\t\t {data2}]\n\n"
        "# Camera specific definitions.\nrate_hz: 10\n"
        f"resolution: [{c.width}, {c.height}]\ncamera_model: pinhole\n"
        f"intrinsics: [{c.fx}, {c.fy}, {c.cx}, {c.cy}] #fu, fv, cu, cv\n"
        "distortion_model: radial-tangential\n"
        f"distortion_coefficients: [{', '.join(str(d) for d in DISTORTION)}]\n"
    )
    gt_dir = folder / "mav0" / gt
    gt_dir.mkdir()
    header = ("#timestamp, p_RS_R_x [m], p_RS_R_y [m], p_RS_R_z [m], q_RS_w [], q_RS_x [], "
              "q_RS_y [], q_RS_z [], v_RS_R_x [m s^-1], v_RS_R_y [m s^-1], v_RS_R_z [m s^-1], "
              "b_w_RS_S_x [rad s^-1], b_w_RS_S_y [rad s^-1], b_w_RS_S_z [rad s^-1], "
              "b_a_RS_S_x [m s^-2], b_a_RS_S_y [m s^-2], b_a_RS_S_z [m s^-2]")
    lines = [header]
    for t, p, q in zip(original.dense_times, original.dense_positions, original.dense_quats,
                       strict=True):
        r_wc = Y_TO_Z @ quat_to_matrix(q[None])[0] @ CV_TO_GL  # OpenCV camera, z-up world
        p_wc = Y_TO_Z @ p
        r_wb = r_wc @ R_BS.T
        p_wb = p_wc - r_wb @ T_BS
        r_ws, p_ws = r_wb, p_wb
        if marker is not None:  # a vicon marker at ``marker`` (R, t) on the body
            r_ws, p_ws = r_wb @ marker[:3, :3], p_wb + r_wb @ marker[:3, 3]
        x, y, z, w = quat_xyzw(r_ws)
        ns = EPOCH_NS + round(t * 1e9)
        values = [*p_ws, w, x, y, z] + [0.0] * 9
        lines.append(f"{ns}," + ",".join(f"{v:.12f}" for v in values))
    (gt_dir / "data.csv").write_text("\n".join(lines) + "\n")
    if marker is not None:
        m = ", ".join(f"{v:.15g}" for v in marker.ravel())
        (gt_dir / "sensor.yaml").write_text(f"sensor_type: visualization\nT_BS:\n  cols: 4\n"
                                            f"  rows: 4\n  data: [{m}]\n")
    return folder


def test_euroc_round_trip(original: Original, tmp_path: Path) -> None:
    src = euroc_capture(original, tmp_path / "MH_01_easy")
    assert detect(src).name == "euroc"
    assert detect(src / "mav0").name == "euroc"
    out = import_recording(src, tmp_path / "out")
    scenario = load_scenario(out)
    assert scenario.format == "arsim-scenario/1.1"
    assert len(scenario.frame_times) == len(original.times)
    # ns epoch clock rebased: times from 0, the offset kept
    assert scenario.frame_times[0] == 0.0
    assert np.allclose(scenario.frame_times, original.times - original.times[0], atol=1e-6)
    assert scenario.clock_offset_s == pytest.approx(EPOCH_NS / 1e9 + original.times[0],
                                                    abs=1e-6)
    assert "epoch" in scenario.source["clock"].lower()
    cam, c0 = scenario.camera, original.camera
    assert (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy) == (
        c0.width, c0.height, c0.fx, c0.fy, c0.cx, c0.cy)
    assert cam.distortion.model == "radtan"
    assert cam.distortion.coeffs == pytest.approx(DISTORTION)
    assert scenario.source["device"] == "VI-Sensor cam0 (MT9M034)"
    # the PNGs are carried unchanged
    assert sorted(p.name for p in (out / "frames").iterdir())[:2] == ["000000.png",
                                                                      "000001.png"]
    check_poses(scenario, original)
    check_projection(scenario, original)
    replay(out, tmp_path)


def test_euroc_vicon_marker_and_other_camera(original: Original, tmp_path: Path) -> None:
    """vicon0 gives the marker's pose: its sensor.yaml T_BS (marker on the body) is undone."""
    marker = np.eye(4)
    marker[:3, :3], marker[:3, 3] = rot_x(30.0) @ rot_z(-20.0), [0.1, 0.02, -0.05]
    src = euroc_capture(original, tmp_path / "V1_01", gt="vicon0", marker=marker)
    recording = read_recording(src, "euroc")
    assert any("vicon0" in n for n in recording.notes)
    out = import_recording(src, tmp_path / "out", "euroc")
    check_poses(load_scenario(out), original)
    with pytest.raises(InputError) as exc:
        read_recording(src, "euroc", ImportOptions(camera_frame="cam1"))
    assert "cam1" in one_line(exc) and "no such camera folder" in str(exc.value)


def test_euroc_yaml_reader(tmp_path: Path) -> None:
    path = tmp_path / "sensor.yaml"
    path.write_text("%YAML:1.0\n---\n# c\nT_BS:\n  cols: 4\n  data: [1, 2, # one\n   3,\n\t4]\n"
                    "rate_hz: 20 # Hz\nname: 'cam #0'\nlist: [a,b]\nother:\n  - [1, 2]\n")
    doc = read_simple_yaml(path, tmp_path)
    assert doc["T_BS"] == {"cols": "4", "data": ["1", "2", "3", "4"]}
    assert doc["rate_hz"] == "20" and doc["list"] == ["a", "b"]
    path.write_text("intrinsics: [1, 2,\n")
    with pytest.raises(InputError) as exc:
        read_simple_yaml(path, tmp_path)
    assert "not closed" in one_line(exc)


@pytest.mark.parametrize("case, where, what", [
    ("timestamp", "data.csv line 3", "timestamp must be a number"),
    ("intrinsics", "sensor.yaml: intrinsics", "expected a list of 4 numbers"),
    ("resolution", "sensor.yaml: resolution", "is 640x480 but"),
    ("distortion", "sensor.yaml: distortion_model", "not supported"),
    ("quaternion", "state_groundtruth_estimate0/data.csv line 2", "quaternion norm"),
    ("leica", "leica0/data.csv", "positions only"),
    ("missing image", "data.csv line 2", "image file not found"),
])
def test_euroc_malformed(original: Original, tmp_path: Path, case: str, where: str,
                         what: str) -> None:
    src = euroc_capture(original, tmp_path / "seq")
    cam = src / "mav0" / "cam0"
    yaml = cam / "sensor.yaml"
    gt = src / "mav0" / "state_groundtruth_estimate0" / "data.csv"
    if case == "timestamp":
        lines = (cam / "data.csv").read_text().splitlines()
        lines[2] = "14036365797x,foo.png"
        (cam / "data.csv").write_text("\n".join(lines) + "\n")
    elif case == "intrinsics":
        yaml.write_text(yaml.read_text().replace("intrinsics: [", "intrinsics: [1, "))
    elif case == "resolution":
        yaml.write_text(yaml.read_text().replace("resolution: [64, 48]", "resolution: [640, 480]"))
    elif case == "distortion":
        yaml.write_text(yaml.read_text().replace("radial-tangential", "equidistant-ish"))
    elif case == "quaternion":
        lines = gt.read_text().splitlines()
        cells = lines[1].split(",")
        cells[4] = "0.2"
        lines[1] = ",".join(cells)
        gt.write_text("\n".join(lines) + "\n")
    elif case == "leica":
        gt.rename(gt.with_name("gone.csv"))
        (src / "mav0" / "leica0").mkdir()
        (src / "mav0" / "leica0" / "data.csv").write_text("#timestamp [ns],p_x,p_y,p_z\n")
    elif case == "missing image":
        name = (cam / "data.csv").read_text().splitlines()[1].split(",")[1]
        (cam / "data" / name).unlink()
    with pytest.raises(InputError) as exc:
        import_recording(src, tmp_path / "out")
    text = one_line(exc)
    assert where in text and what in text
    assert not (tmp_path / "out").exists()


def test_euroc_not_detected_elsewhere(tmp_path: Path) -> None:
    from simulator.scenario.importers.euroc import IMPORTER

    (tmp_path / "mav0").mkdir()
    assert "cam0/data.csv" in IMPORTER.why_not(tmp_path)
    assert IMPORTER.why_not(tmp_path / "nothing.bag") == "not a folder"


# --- ROS bags -------------------------------------------------------------------------------


def _typestore(ros1: bool):
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    if "tf2_msgs/msg/TFMessage" not in store.types:  # not in rosbags' noetic store
        store.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms",
                                          "tf2_msgs/msg/TFMessage"))
    return store


class BagWriter:
    """Messages of the ROS types the importer reads, written to a ROS 1 or ROS 2 bag."""

    def __init__(self, path: Path, ros1: bool, storage: str = "sqlite3") -> None:
        self.ts = _typestore(ros1)
        self.ros1 = ros1
        if ros1:
            from rosbags.rosbag1 import Writer

            self.writer = Writer(path)
        else:
            from rosbags.rosbag2 import StoragePlugin, Writer

            plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
            self.writer = Writer(path, version=9, storage_plugin=plugin)
        self.connections: dict[str, object] = {}

    def __enter__(self) -> BagWriter:
        self.writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.close()

    def t(self, name: str):
        return self.ts.types[name]

    def header(self, ns: int, frame: str):
        stamp = self.t("builtin_interfaces/msg/Time")(sec=ns // 10**9, nanosec=ns % 10**9)
        if self.ros1:
            return self.t("std_msgs/msg/Header")(seq=0, stamp=stamp, frame_id=frame)
        return self.t("std_msgs/msg/Header")(stamp=stamp, frame_id=frame)

    def write(self, topic: str, msg: object, bag_ns: int) -> None:
        msgtype = msg.__msgtype__
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msgtype,
                                                                 typestore=self.ts)
        data = (self.ts.serialize_ros1(msg, msgtype) if self.ros1
                else self.ts.serialize_cdr(msg, msgtype))
        self.writer.write(self.connections[topic], bag_ns, data)

    def image(self, topic: str, ns: int, rgb: np.ndarray, frame: str, *, encoding: str = "rgb8",
              bag_ns: int | None = None) -> None:
        data = rgb if encoding == "rgb8" else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        h, w = rgb.shape[:2]
        msg = self.t("sensor_msgs/msg/Image")(
            header=self.header(ns, frame), height=h, width=w, encoding=encoding,
            is_bigendian=0, step=w * 3, data=np.ascontiguousarray(data).ravel())
        self.write(topic, msg, bag_ns or ns)

    def compressed(self, topic: str, ns: int, rgb: np.ndarray, frame: str, fmt: str = "jpeg",
                   bag_ns: int | None = None) -> None:
        ext = ".jpg" if fmt == "jpeg" else ".png"
        ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 98] if fmt == "jpeg" else [])
        assert ok
        msg = self.t("sensor_msgs/msg/CompressedImage")(
            header=self.header(ns, frame), format=fmt, data=buf.ravel())
        self.write(topic, msg, bag_ns or ns)

    def camera_info(self, topic: str, ns: int, cam, frame: str, d=(), model="plumb_bob",
                    size: tuple[int, int] | None = None, scale: float = 1.0) -> None:
        k = np.array([cam.fx * scale, 0, cam.cx * scale, 0, cam.fy * scale, cam.cy * scale,
                      0, 0, 1.0])
        p = np.zeros(12)
        w, h = size or (cam.width, cam.height)
        roi = self.t("sensor_msgs/msg/RegionOfInterest")(x_offset=0, y_offset=0, height=0,
                                                          width=0, do_rectify=False)
        fields = {"D" if self.ros1 else "d": np.array(d, dtype=np.float64),
                  "K" if self.ros1 else "k": k, "R" if self.ros1 else "r": np.eye(3).ravel(),
                  "P" if self.ros1 else "p": p}
        msg = self.t("sensor_msgs/msg/CameraInfo")(
            header=self.header(ns, frame), height=h, width=w, distortion_model=model,
            binning_x=0, binning_y=0, roi=roi, **fields)
        self.write(topic, msg, ns)

    def _pose(self, p: np.ndarray, r: np.ndarray):
        x, y, z, w = quat_xyzw(r)
        return self.t("geometry_msgs/msg/Pose")(
            position=self.t("geometry_msgs/msg/Point")(x=p[0], y=p[1], z=p[2]),
            orientation=self.t("geometry_msgs/msg/Quaternion")(x=x, y=y, z=z, w=w))

    def _transform(self, ns: int, parent: str, child: str, p: np.ndarray, r: np.ndarray):
        x, y, z, w = quat_xyzw(r)
        return self.t("geometry_msgs/msg/TransformStamped")(
            header=self.header(ns, parent), child_frame_id=child,
            transform=self.t("geometry_msgs/msg/Transform")(
                translation=self.t("geometry_msgs/msg/Vector3")(x=p[0], y=p[1], z=p[2]),
                rotation=self.t("geometry_msgs/msg/Quaternion")(x=x, y=y, z=z, w=w)))

    def pose_stamped(self, topic: str, ns: int, p: np.ndarray, r: np.ndarray) -> None:
        msg = self.t("geometry_msgs/msg/PoseStamped")(header=self.header(ns, "map"),
                                                      pose=self._pose(p, r))
        self.write(topic, msg, ns)

    def odometry(self, topic: str, ns: int, p: np.ndarray, r: np.ndarray, child: str) -> None:
        cov = np.zeros(36)
        msg = self.t("nav_msgs/msg/Odometry")(
            header=self.header(ns, "odom"), child_frame_id=child,
            pose=self.t("geometry_msgs/msg/PoseWithCovariance")(pose=self._pose(p, r),
                                                                 covariance=cov),
            twist=self.t("geometry_msgs/msg/TwistWithCovariance")(
                twist=self.t("geometry_msgs/msg/Twist")(
                    linear=self.t("geometry_msgs/msg/Vector3")(x=0.0, y=0.0, z=0.0),
                    angular=self.t("geometry_msgs/msg/Vector3")(x=0.0, y=0.0, z=0.0)),
                covariance=cov))
        self.write(topic, msg, ns)

    def tf(self, topic: str, ns: int, edges: list[tuple[str, str, np.ndarray, np.ndarray]]):
        msg = self.t("tf2_msgs/msg/TFMessage")(
            transforms=[self._transform(ns, a, b, p, r) for a, b, p, r in edges])
        self.write(topic, msg, ns)


def ros_camera_poses(original: Original, dense: bool = True):
    """(ns, R_W_optical (OpenCV camera), p) of the original in a z-up ROS world."""
    times = original.dense_times if dense else original.times
    positions = original.dense_positions if dense else original.positions
    quats = original.dense_quats if dense else original.quats
    rotations = Y_TO_Z @ quat_to_matrix(quats) @ CV_TO_GL
    return original.frame_ns(times), rotations, positions @ Y_TO_Z.T


# optical frame in the body (camera_link) frame: the REP 103 optical rotation
R_LINK_OPTICAL = FLU_TO_GL @ CV_TO_GL  # columns: optical x, y, z in body axes
R_BASE_LINK = rot_z(10.0)  # camera_link on base_link: turned 10 deg, 20 cm forward
T_BASE_LINK = np.array([0.2, 0.0, 0.1])


def ros1_tf_bag(original: Original, path: Path) -> Path:
    """ROS 1: raw rgb8 images (received 30 ms after capture), CameraInfo with plumb_bob,
    /tf map -> base_link (moving), /tf_static base_link -> camera_link -> optical."""
    ns, r_opt, p_opt = ros_camera_poses(original)
    frame = "camera_color_optical_frame"
    with BagWriter(path, ros1=True) as bag:
        bag.tf("/tf_static", int(ns[0]) - 10**6, [
            ("base_link", "camera_link", T_BASE_LINK, R_BASE_LINK),
            ("camera_link", frame, np.zeros(3), R_LINK_OPTICAL)])
        bag.camera_info("/camera/color/camera_info", int(ns[0]), original.camera, frame,
                        d=(0.1, -0.05, 0.001, 0.002, 0.01))
        frame_ns = set(original.frame_ns().tolist())
        images = dict(zip(original.frame_ns().tolist(), original.images, strict=True))
        for t, r, p in zip(ns, r_opt, p_opt, strict=True):
            # base_link pose = optical pose x (base_link -> optical)^-1
            r_bo = R_BASE_LINK @ R_LINK_OPTICAL
            r_wb = r @ r_bo.T
            p_wb = p - r_wb @ T_BASE_LINK
            bag.tf("/tf", int(t), [("map", "base_link", p_wb, r_wb)])
            if int(t) in frame_ns:
                bag.image("/camera/color/image_raw", int(t), images[int(t)], frame,
                          bag_ns=int(t) + 30_000_000)
    return path


def test_rosbag1_tf_chain_round_trip(original: Original, tmp_path: Path) -> None:
    src = ros1_tf_bag(original, tmp_path / "walk.bag")
    assert detect(src).name == "rosbag"
    out = import_recording(src, tmp_path / "out")
    scenario = load_scenario(out)
    assert len(scenario.frame_times) == len(original.times)
    # header stamps, not the bag's receive times (30 ms later)
    assert scenario.clock_offset_s == pytest.approx(EPOCH_NS / 1e9 + original.times[0],
                                                    abs=1e-6)
    assert np.allclose(scenario.frame_times, original.times - original.times[0], atol=1e-6)
    cam = scenario.camera
    assert (cam.fx, cam.cx, cam.width) == (original.camera.fx, original.camera.cx, 64)
    assert cam.distortion.model == "radtan"
    assert cam.distortion.coeffs == pytest.approx((0.1, -0.05, 0.001, 0.002, 0.01))
    check_poses(scenario, original)
    check_projection(scenario, original)
    # raw images are stored losslessly
    assert sorted(p.suffix for p in (out / "frames").iterdir())[0] == ".png"
    first = next(iter_frames(out / "frames"))
    assert np.array_equal(first, original.images[0])
    replay(out, tmp_path)


def test_rosbag2_odometry_body_frame(original: Original, tmp_path: Path) -> None:
    """ROS 2 (sqlite3): JPEG CompressedImage, Odometry of a body frame (x forward) that is
    the camera, CameraInfo for twice the image size (scaled)."""
    ns, r_opt, p_opt = ros_camera_poses(original)
    frames = set(original.frame_ns().tolist())
    images = dict(zip(original.frame_ns().tolist(), original.images, strict=True))
    src = tmp_path / "ros2_bag"
    with BagWriter(src, ros1=False) as bag:
        c = original.camera
        bag.camera_info("/cam/camera_info", int(ns[0]), c, "cam", size=(128, 96), scale=2.0)
        for t, r, p in zip(ns, r_opt, p_opt, strict=True):
            # the body frame looks along x: R_W_body = R_W_optical x (optical in body)^-1
            bag.odometry("/odom", int(t), p, r @ R_LINK_OPTICAL.T, "cam_link")
            if int(t) in frames:
                bag.compressed("/cam/image_raw/compressed", int(t), images[int(t)], "cam")
    assert detect(src).name == "rosbag"
    out = import_recording(src, tmp_path / "out")
    scenario = load_scenario(out)
    assert "body frame" in scenario.source["axes"]
    check_poses(scenario, original)
    check_projection(scenario, original)
    cam = scenario.camera
    assert cam.fx == pytest.approx(original.camera.fx)
    assert cam.cx == pytest.approx((original.camera.cx * 2 + 0.5) / 2 - 0.5)
    assert "scaled" in scenario.source["notes"]
    assert sorted(p.suffix for p in (out / "frames").iterdir())[0] == ".jpg"
    replay(out, tmp_path)


def test_rosbag2_mcap_pose_stamped_choices(original: Original, tmp_path: Path) -> None:
    """ROS 2 (mcap): two PoseStamped topics (ambiguous: the error lists them and the flag),
    bgr8 images, no CameraInfo (the default field of view, said in the notes)."""
    ns, r_opt, p_opt = ros_camera_poses(original)
    frames = set(original.frame_ns().tolist())
    images = dict(zip(original.frame_ns().tolist(), original.images, strict=True))
    src = tmp_path / "mcap_bag"
    with BagWriter(src, ros1=False, storage="mcap") as bag:
        for t, r, p in zip(ns, r_opt, p_opt, strict=True):
            bag.pose_stamped("/slam/camera_pose", int(t), p, r)
            bag.pose_stamped("/other/pose", int(t), p + 1.0, r)
            if int(t) in frames:
                bag.image("/cam/image", int(t), images[int(t)], "cam_optical", encoding="bgr8")
    with pytest.raises(InputError) as exc:
        read_recording(src)
    text = one_line(exc)
    assert "/slam/camera_pose" in text and "/other/pose" in text and "--pose-topic" in text
    options = ImportOptions(pose_topic="/slam/camera_pose")
    out = import_recording(src, tmp_path / "out", options=options)
    scenario = load_scenario(out)
    check_poses(scenario, original)
    assert "INTRINSICS UNKNOWN" in scenario.source["notes"]
    assert scenario.camera.fx == pytest.approx(32 / math.tan(math.radians(30)))
    assert np.array_equal(next(iter_frames(out / "frames")), original.images[0])
    # the bare .mcap file is a bag too
    mcap = next(src.glob("*.mcap"))
    assert detect(mcap).name == "rosbag"
    assert read_recording(mcap, options=options).frame_count == len(original.times)
    with pytest.raises(InputError) as exc:
        read_recording(src, options=ImportOptions(image_topic="/nope"))
    assert "--image-topic" in one_line(exc) and "/cam/image" in str(exc.value)


def test_rosbag_decodes_encodings() -> None:
    from simulator.scenario.importers.rosbag import _decode

    rgb = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)

    class Msg:
        def __init__(self, encoding: str, data: np.ndarray, step: int) -> None:
            self.encoding, self.height, self.width = encoding, 6, 8
            self.step, self.is_bigendian, self.data = step, 0, data.ravel()

    padded = np.zeros((6, 30), np.uint8)
    padded[:, :24] = rgb.reshape(6, 24)
    assert np.array_equal(_decode(Msg("rgb8", padded, 30), "sensor_msgs/msg/Image", "x"), rgb)
    bgr = rgb[:, :, ::-1].copy()
    assert np.array_equal(_decode(Msg("bgr8", bgr, 24), "sensor_msgs/msg/Image", "x"), rgb)
    mono16 = (rgb[:, :, 0].astype(np.uint16) << 8).astype("<u2").view(np.uint8)
    out = _decode(Msg("mono16", mono16, 16), "sensor_msgs/msg/Image", "x")
    assert np.array_equal(out[:, :, 1], rgb[:, :, 0])
    with pytest.raises(InputError) as exc:
        _decode(Msg("rgb8", rgb[:3], 24), "sensor_msgs/msg/Image", "bag: /img")
    assert "bag: /img" in one_line(exc) and "step" in str(exc.value)
    with pytest.raises(InputError) as exc:
        _decode(Msg("32FC1", rgb, 24), "sensor_msgs/msg/Image", "bag: /img")
    assert "not supported" in one_line(exc)


def test_rosbag_not_a_bag(tmp_path: Path) -> None:
    from simulator.scenario.importers.rosbag import IMPORTER

    fake = tmp_path / "x.bag"
    fake.write_bytes(b"not a bag at all")
    assert IMPORTER.why_not(fake) is not None
    broken = tmp_path / "y.bag"
    broken.write_bytes(b"#ROSBAG V2.0\n" + b"\x00" * 64)
    assert IMPORTER.why_not(broken) is None
    with pytest.raises(InputError) as exc:
        read_recording(broken, "rosbag")
    assert "y.bag" in one_line(exc) and "cannot be read as a ROS bag" in str(exc.value)


# --- plain videos ---------------------------------------------------------------------------

# variable frame intervals (1/30000 s units): 33 ms, 34 ms, 66 ms (a dropped frame), ...
PTS = [0, 1000, 2033, 3000, 5000, 6000, 7166, 8000, 9000, 10100, 11000, 12000]
TIME_BASE = Fraction(1, 30000)


def write_vfr_video(path: Path, images: list[np.ndarray], pts: list[int]) -> None:
    import av

    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        for image, p in zip(images, pts, strict=False):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = p, TIME_BASE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def set_display_rotation(path: Path, clockwise: int) -> None:
    """Write a rotation into the video track's tkhd matrix (ISO/IEC 14496-12 8.3.2), as
    phones do for a portrait clip (FFmpeg 8's muxer ignores the old 'rotate' tag)."""
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    assert i > 0 and data[i + 4] == 0  # version 0 box
    one = 0x10000
    w = struct.unpack(">I", data[i + 80:i + 84])[0] >> 16
    h = struct.unpack(">I", data[i + 84:i + 88])[0] >> 16
    a, b, c, d = {90: (0, one, -one, 0), 180: (-one, 0, 0, -one), 270: (0, -one, one, 0)}[
        clockwise]
    tx, ty = {90: (h, 0), 180: (w, h), 270: (0, w)}[clockwise]
    data[i + 44:i + 80] = struct.pack(">9i", a, b, 0, c, d, 0, tx << 16, ty << 16, 1 << 30)
    path.write_bytes(bytes(data))


def test_plain_video_vfr_times_and_portrait(original: Original, tmp_path: Path) -> None:
    images = original.images[: len(PTS)]
    src = tmp_path / "clip.mp4"
    write_vfr_video(src, images, PTS)
    set_display_rotation(src, 90)
    assert detect(src).name == "plain_video"
    recording = read_recording(src)
    expected_ns = [round(Fraction(p) * TIME_BASE * 10**9) for p in PTS]
    assert recording.frame_ns.tolist() == expected_ns
    assert recording.poses is None
    # stored 64x48, displayed (and decoded by OpenCV) portrait 48x64
    assert (recording.camera.width, recording.camera.height) == (48, 64)
    assert count_frames(src) == recording.frame_count == len(PTS)
    assert any("90 deg clockwise" in n for n in recording.notes)
    out = import_recording(src, tmp_path / "out")
    scenario = load_scenario(out)
    assert not scenario.poses_available
    assert set(scenario.tracking) == {"unavailable"}
    assert scenario.frame_times.tolist() == pytest.approx(
        [float(Fraction(p) * TIME_BASE) for p in PTS], abs=1e-6)
    assert (scenario.camera.width, scenario.camera.height) == (48, 64)
    # the file is carried as it is, and the decoded frames are the portrait ones
    assert (out / "video.mp4").read_bytes() == src.read_bytes()
    first = next(iter_frames(out / "video.mp4"))
    assert first.shape == (64, 48, 3)
    assert "65 degree" in scenario.source["notes"]
    f = 32 / math.tan(math.radians(32.5))
    assert scenario.camera.fx == pytest.approx(f)
    replay(out, tmp_path)


def test_plain_video_landscape_and_refusals(original: Original, tmp_path: Path) -> None:
    from simulator.scenario.importers.plain_video import IMPORTER

    src = tmp_path / "landscape.mov"
    write_vfr_video(src, original.images[:5], PTS[:5])
    recording = read_recording(src, "plain_video")
    assert (recording.camera.width, recording.camera.height) == (64, 48)
    png = tmp_path / "still.png"
    cv2.imwrite(str(png), original.images[0])
    assert IMPORTER.why_not(png) is not None
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert IMPORTER.why_not(text) is not None
    assert IMPORTER.why_not(tmp_path) is not None
    with pytest.raises(InputError) as exc:
        read_recording(text, "plain_video")
    assert "notes.txt" in one_line(exc)
    # an unknown file is refused naming every format, this one last
    with pytest.raises(InputError) as exc:
        detect(text)
    assert "plain_video:" in one_line(exc)


# --- real samples ---------------------------------------------------------------------------

REAL = Path(__file__).parent / "data" / "real"


def real(path: str) -> Path:
    sample = REAL / path
    if not sample.exists():
        pytest.skip(f"real sample tests/data/real/{path} not staged")
    return sample


@pytest.mark.slow
def test_real_iphone_portrait_clip(tmp_path: Path) -> None:
    """androidx/media's dolbyVision-hdr.MOV (SOURCE.md): an iPhone 14 Pro HEVC clip stored
    1280x720 with a -90 display matrix, 4 decodable frames at 30 fps."""
    src = real("phone-video/dolbyVision-hdr.MOV")
    assert detect(src).name == "plain_video"
    out = import_recording(src, tmp_path / "out")
    scenario = load_scenario(out)
    assert (scenario.camera.width, scenario.camera.height) == (720, 1280)  # portrait
    assert scenario.frame_times.tolist() == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30],
                                                          abs=1e-6)
    assert count_frames(out / scenario.video) == 4
    assert scenario.source["device"] == "Apple iPhone 14 Pro"
    assert scenario.source["recorded"].startswith("2023-05-09")
    assert not scenario.poses_available
    replay(out, tmp_path)


def test_real_android_slow_motion_vfr(tmp_path: Path) -> None:
    """androidx/media's sample_android_slow_motion.mp4: 7 frames, variable frame rate (one
    325 ms gap then 33.3 ms steps, time base 1/90000), landscape 1280x720."""
    src = real("phone-video/sample_android_slow_motion.mp4")
    out = import_recording(src, tmp_path / "out")
    scenario = load_scenario(out)
    assert (scenario.camera.width, scenario.camera.height) == (1280, 720)
    steps = np.diff(scenario.frame_times)
    assert len(scenario.frame_times) == 7
    assert steps[0] == pytest.approx(29281 / 90000, abs=1e-6)
    assert np.allclose(steps[1:], 3000 / 90000, atol=1e-6)
    assert any("frame gap" in w for w in scenario.warnings)
    replay(out, tmp_path)


@pytest.mark.parametrize("path", ["rosbag1/tf_example.bag", "rosbag2/tf_example"])
def test_real_tf_bags(path: str) -> None:
    """evo's tf_example bags (ROS 1, and the same converted to ROS 2 sqlite3): /tf odom ->
    base_footprint at about 10 Hz for 51.7 s, /tf_static base_footprint -> base_link, no
    images. Detected as bags; the import is refused naming the missing image topic; the TF
    chain to base_link reads as a planar drive."""
    from simulator.scenario.importers import rosbag

    src = real(path)
    assert detect(src).name == "rosbag"
    with pytest.raises(InputError) as exc:
        read_recording(src)
    text = one_line(exc)
    assert "no image topic" in text and "/tf (tf2_msgs/TFMessage)" in text
    with rosbag._Bag(src) as bag:
        scan = rosbag._scan(bag, "", None, "/tf", None)
    notes: list[str] = []
    ns, rotations, positions, frame = rosbag._poses(
        scan, rosbag.TF, "/tf", "base_link", ImportOptions(), src, notes)
    assert frame == "base_link" and "odom -> base_link" in notes[0]
    assert 500 <= len(ns) <= 517
    assert (ns[-1] - ns[0]) / 1e9 == pytest.approx(51.7, abs=0.2)
    assert np.ptp(positions[:, 2]) < 1e-6  # planar: z fixed by the static link
    path_m = float(np.sum(np.linalg.norm(np.diff(positions, axis=0), axis=1)))
    assert 0.1 < path_m < 100  # a robot's drive in under a minute
    assert np.allclose(np.linalg.det(rotations), 1.0)


def test_real_tf_bag_with_camera_images_added(original: Original, tmp_path: Path) -> None:
    """evo's real ROS 1 bag (its /tf and /tf_static messages as recorded: a robot's drive,
    epoch header stamps, ~10 Hz) with a camera added on base_link (JPEG images at 10 Hz for
    the first 5 s, stamps between the TF messages): imported with --camera-frame, the camera
    follows the recorded chain odom -> base_footprint -> base_link."""
    from rosbags.highlevel import AnyReader

    from simulator.scenario.importers import rosbag

    src = real("rosbag1/tf_example.bag")
    path = tmp_path / "robot-with-camera.bag"
    with AnyReader([src]) as reader, BagWriter(path, ros1=True) as bag:
        messages = [(c.topic, t, reader.deserialize(raw, c.msgtype))
                    for c, t, raw in reader.messages()]
        stamps = sorted(t for topic, t, _ in messages if topic == "/tf")
        first, image_ns = stamps[0], []
        for topic, t, msg in messages:
            bag.write(topic, msg, t)
        for k in range(50):  # 5 s at 10 Hz, offset from the TF stamps by 37 ms
            ns = first + 37_000_000 + k * 100_000_000
            image_ns.append(ns)
            bag.compressed("/camera/image/compressed", ns,
                           original.images[k % len(original.images)], "base_link")
    out = import_recording(path, tmp_path / "out", "auto",
                           ImportOptions(camera_frame="base_link"))
    scenario = load_scenario(out)
    assert len(scenario.frame_times) == 50
    assert scenario.clock_offset_s == pytest.approx(image_ns[0] / 1e9, abs=1e-6)  # epoch
    assert np.allclose(np.diff(scenario.frame_times), 0.1, atol=1e-6)
    # the recorded chain at the image stamps, read independently of the importer
    with rosbag._Bag(src) as reader:
        scan = rosbag._scan(reader, "", None, "/tf", None)
    notes: list[str] = []
    ns, _, positions, _ = rosbag._poses(scan, rosbag.TF, "/tf", "base_link", ImportOptions(),
                                        src, notes)
    expected_path = sum(np.linalg.norm(np.diff(
        np.array([np.interp(image_ns, ns, positions[:, i]) for i in range(3)]).T, axis=0),
        axis=1))
    got, _ = scenario.trajectory.at_many(scenario.frame_times)
    # levelled to y up: the planar drive keeps a constant height, and the same path length
    assert np.ptp(got[:, 1]) < 1e-6
    got_path = float(np.sum(np.linalg.norm(np.diff(got, axis=0), axis=1)))
    assert got_path == pytest.approx(expected_path, rel=1e-3)
    replay(out, tmp_path)
