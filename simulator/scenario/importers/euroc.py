"""EuRoC MAV datasets and other recordings in the ASL dataset format (TUM-VI's ``mav0``).

Layout (https://projects.asl.ethz.ch/datasets/doku.php?id=kmavvisualinertialdatasets and
the ASL dataset format description that comes with it), a sequence folder holding ``mav0/``
(or the ``mav0`` folder itself):

- ``mav0/cam0/data.csv``: ``#timestamp [ns],filename`` rows, the images in
  ``mav0/cam0/data/<timestamp>.png`` (EuRoC: 752x480 grayscale, 20 Hz);
- ``mav0/cam0/sensor.yaml``: ``T_BS`` (4x4, row-major ``data``: the camera (sensor) frame
  expressed in the body (IMU) frame, p_B = T_BS p_S), ``resolution [w, h]``,
  ``camera_model: pinhole``, ``intrinsics [fu, fv, cu, cv]``, ``distortion_model``
  (``radial-tangential`` k1 k2 p1 p2, or TUM-VI's ``equidistant`` k1..k4),
  ``distortion_coefficients``;
- ground truth, the first found of ``mav0/state_groundtruth_estimate0/data.csv`` (EuRoC's
  200 Hz estimate of the body's pose), ``mav0/vicon0/data.csv`` or ``mav0/mocap0/data.csv``
  (TUM-VI): ``timestamp [ns], p_RS_R_x, p_RS_R_y, p_RS_R_z [m], q_RS_w, q_RS_x, q_RS_y,
  q_RS_z, ...`` (the quaternion is w first), the pose of that sensor's frame S in the
  reference frame R. Its own ``sensor.yaml`` ``T_BS`` (identity for the estimate, the
  marker's place on the body for vicon0) turns it into the body's pose. ``leica0`` holds
  positions only and is refused as a pose source.

The small YAML files are read by a tiny reader of their own (``key: value``, one nesting
level, ``[...]`` lists over several lines, ``#`` comments): no YAML library is needed.

Conventions of the source and what the importer converts:

- the camera's pose in the world is T_W_C = T_W_B · T_BS (ground truth body pose times the
  camera's extrinsics); the camera frame is OpenCV's (x right, y down, looking down +z),
  turned to the scenario's camera with ``convert.camera_cv_to_gl``;
- world: the ground-truth frame is gravity aligned with z up; levelled to y up with
  ``convert.level_world`` (``--up`` overrides +z);
- clock: integer nanoseconds (EuRoC: Unix epoch), read exactly with ``convert.integer_ns``;
  frames and ground truth share it, poses are interpolated at the frame times by the writer
  (frames outside the ground truth's time span are dropped there);
- images are copied unchanged (ImageFrames); metres.

``--camera-frame cam1`` (ImportOptions.camera_frame) imports another camera folder than
``cam0``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import inside_root, read_user_text
from simulator.scenario.importers import convert
from simulator.scenario.importers.base import (
    ImageFrames,
    ImportOptions,
    PoseTrack,
    Progress,
    Recording,
)
from simulator.scenario.video import image_size
from simulator.types import Distortion, Intrinsics

GROUND_TRUTH = ("state_groundtruth_estimate0", "vicon0", "mocap0")
YAML_CAP = 1 << 20
_CAMERA_NAME = re.compile(r"cam\d+")
_KEY = re.compile(r"([A-Za-z_][\w\-]*)\s*:(?:\s+(.*))?$")
_DISTORTION = {"radial-tangential": "radtan", "radtan": "radtan", "plumb_bob": "radtan",
               "equidistant": "fisheye", "fisheye": "fisheye"}


def _mav(src: Path) -> Path | None:
    if (src / "mav0").is_dir():
        return src / "mav0"
    if src.name == "mav0" or (src / "cam0" / "data.csv").is_file():
        return src
    return None


class EurocImporter:
    name = "euroc"
    description = ("EuRoC MAV / ASL dataset folder (mav0/cam0/data.csv + data/*.png, "
                   "sensor.yaml, state_groundtruth_estimate0, vicon0 or mocap0)")

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if not src.is_dir():
            return "not a folder"
        if (src / "scenario.json").exists():
            return "holds scenario.json (an arsim scenario, not a capture)"
        mav = _mav(src)
        if mav is None:
            return "no mav0/ folder (expected mav0/cam0/data.csv)"
        if not (mav / "cam0" / "data.csv").is_file():
            return "no mav0/cam0/data.csv"
        return None

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        mav = _mav(src)
        if mav is None:
            raise InputError(src, "no mav0/ folder (expected mav0/cam0/data.csv)")
        root = mav.parent
        cam_name = options.camera_frame or "cam0"
        if not _CAMERA_NAME.fullmatch(cam_name):
            raise InputError("--camera-frame", f"expected a camera folder of mav0/ such as "
                             f"cam0 or cam1, got {cam_name!r}")
        cam_dir = mav / cam_name
        if not cam_dir.is_dir():
            raise InputError(cam_dir, "no such camera folder")
        notes: list[str] = []

        sensor_path = cam_dir / "sensor.yaml"
        sensor = read_simple_yaml(sensor_path, root)
        r_bs, t_bs = _transform(sensor, sensor_path)
        paths, frame_ns = _frames(cam_dir, root)
        camera = _camera(sensor, sensor_path, paths[0])

        pose_ns, r_wb, p_wb, gt_name = _ground_truth(mav, root, notes)
        # the camera in the world: T_W_C = T_W_B T_BS
        r_wc = r_wb @ r_bs
        p_wc = p_wb + r_wb @ t_bs
        rotations = convert.camera_cv_to_gl(r_wc)
        up_text = options.up or "+z"
        up = convert.axis_vector(up_text)
        notes.append(f"world up {up_text}" + (" (--up)" if options.up else
                                             " (EuRoC's ground truth is gravity aligned)"))
        rotations, positions, world = convert.level_world(rotations, p_wc, up)
        if not np.any((frame_ns >= pose_ns[0]) & (frame_ns <= pose_ns[-1])):
            raise InputError(
                mav / gt_name / "data.csv",
                f"its times ({pose_ns[0]} .. {pose_ns[-1]} ns) do not overlap the frame times "
                f"of {cam_name}/data.csv ({frame_ns[0]} .. {frame_ns[-1]} ns); expected one "
                "clock for both",
            )
        notes.append(f"camera pose = {gt_name} body pose x {cam_name} T_BS; poses interpolated "
                     "at the frame times")
        if progress:
            progress(len(paths), len(paths))
        comment = sensor.get("comment")
        return Recording(
            format=self.name,
            camera=camera,
            frames=ImageFrames(tuple(paths)),
            frame_ns=frame_ns,
            poses=PoseTrack(pose_ns, positions, convert.matrix_to_quat(rotations)),
            metric=True,
            device=comment if isinstance(comment, str) else "",
            app="ASL dataset format (EuRoC MAV)",
            axes=("camera T_W_B T_BS, OpenCV axes (x right, y down, +z forward) -> y up, -z "
                  "forward; " + convert.describe_rotation(world) + " to make world up +y"),
            clock=_clock_name(frame_ns),
            notes=notes,
        )


# --- the small YAML files -----------------------------------------------------------------


def read_simple_yaml(path: Path, root: Path) -> dict:
    """The keys of a small ASL ``sensor.yaml``: ``key: value`` (a scalar string or a list of
    strings) with one nested level (``T_BS: {cols, rows, data}``). Lines it does not
    understand are skipped; the reader of a key checks its value."""
    label = str(path)
    text = read_user_text(path, label, cap=YAML_CAP, root=root)
    logical: list[tuple[int, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith(("%", "---"))):
            continue
        if pending:
            pending += " " + line.strip()
        else:
            pending = line.expandtabs(2)
        if pending.count("[") <= pending.count("]"):
            logical.append((len(pending) - len(pending.lstrip()), pending.strip()))
            pending = ""
    if pending:
        raise InputError(label, "a [ list is not closed with ]")
    doc: dict = {}
    stack: list[tuple[int, dict]] = [(-1, doc)]
    for indent, line in logical:
        match = _KEY.match(line)
        if not match:
            continue
        while stack[-1][0] >= indent:
            stack.pop()
        key, value = match.group(1), (match.group(2) or "").strip()
        value = re.sub(r"^!!\S+\s*", "", value)  # OpenCV's !!opencv-matrix tags
        parent = stack[-1][1]
        if not value:
            child: dict = {}
            parent[key] = child
            stack.append((indent, child))
        elif value.startswith("["):
            inner = value[1:value.rfind("]")]
            parent[key] = [c.strip() for c in inner.split(",") if c.strip()]
        else:
            parent[key] = value.strip("'\"")
    return doc


def _numbers(doc: dict, key: str, count: int, label: str) -> list[float]:
    value = doc.get(key)
    if isinstance(value, dict):  # {rows, cols, data: [...]}
        value = value.get("data")
    if not isinstance(value, list) or len(value) != count:
        raise InputError(f"{label}: {key}", f"expected a list of {count} numbers")
    return [convert.number(v, f"{label}: {key}", key) for v in value]


def _transform(doc: dict, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """T_BS as (rotation, translation); identity when the file has none."""
    label = str(path)
    if "T_BS" not in doc:
        return np.eye(3), np.zeros(3)
    m = np.array(_numbers(doc, "T_BS", 16, label)).reshape(4, 4)
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise InputError(f"{label}: T_BS", "last row must be 0 0 0 1 (a rigid transform)")
    convert.check_rotations(m[None, :3, :3], f"{label}: T_BS")
    return convert.quat_to_matrix(convert.matrix_to_quat(m[:3, :3]))[0], m[:3, 3]


def _camera(doc: dict, path: Path, first_image: Path) -> Intrinsics:
    label = str(path)
    model = doc.get("camera_model", "pinhole")
    if model != "pinhole":
        raise InputError(f"{label}: camera_model", f"{model!r} is not supported (expected "
                         "pinhole)")
    fx, fy, cx, cy = _numbers(doc, "intrinsics", 4, label)
    width, height = (int(v) for v in _numbers(doc, "resolution", 2, label))
    actual = image_size(first_image, str(first_image))
    if actual != (width, height):
        raise InputError(f"{label}: resolution", f"is {width}x{height} but {first_image.name} "
                         f"is {actual[0]}x{actual[1]}")
    distortion = None
    coeffs = doc.get("distortion_coefficients")
    if coeffs is not None:
        name = doc.get("distortion_model", "radial-tangential")
        kind = _DISTORTION.get(str(name))
        if kind is None:
            raise InputError(f"{label}: distortion_model", f"{name!r} is not supported "
                             "(expected radial-tangential or equidistant)")
        counts = (4,) if kind == "fisheye" else (4, 5, 8)
        if not isinstance(coeffs, list) or len(coeffs) not in counts:
            raise InputError(f"{label}: distortion_coefficients", f"expected {counts[0]} "
                             f"numbers for {name}")
        values = tuple(convert.number(c, f"{label}: distortion_coefficients", "coefficient")
                       for c in coeffs)
        if any(values):
            distortion = Distortion(kind, values)
    if fx <= 0 or fy <= 0:
        raise InputError(f"{label}: intrinsics", "fu and fv must be > 0")
    return Intrinsics(width, height, fx, fy, cx, cy, distortion)


# --- frames and ground truth --------------------------------------------------------------


def _frames(cam_dir: Path, root: Path) -> tuple[list[Path], np.ndarray]:
    csv = cam_dir / "data.csv"
    label = str(csv)
    paths, stamps = [], []
    for line_no, cells in convert.read_rows(csv, label, delimiter=",", root=root):
        where = f"{label} line {line_no}"
        if len(cells) != 2:
            raise InputError(where, "expected 'timestamp [ns],filename'")
        stamps.append(convert.integer_ns(cells[0], where))
        name = cells[1]
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise InputError(where, f"{name!r} must be a file name in {cam_dir.name}/data/")
        path = cam_dir / "data" / name
        if not path.is_file():
            raise InputError(where, f"{cam_dir.name}/data/{name}: image file not found")
        inside_root(path, str(path), root)
        paths.append(path)
    if not paths:
        raise InputError(label, "lists no frames")
    ns = np.array(stamps, dtype=np.int64)
    bad = np.nonzero(np.diff(ns) <= 0)[0]
    if bad.size:
        raise InputError(label, f"frame {int(bad[0]) + 1}: timestamp {ns[bad[0] + 1]} does not "
                         "increase (expected strictly increasing times)")
    return paths, ns


def _ground_truth(
    mav: Path, root: Path, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(ns, R_W_B (N, 3, 3), p_W_B (N, 3), the folder used)."""
    for name in GROUND_TRUTH:
        csv = mav / name / "data.csv"
        if not csv.is_file():
            continue
        ns, r, p = _pose_rows(csv, root)
        sensor_path = mav / name / "sensor.yaml"
        if sensor_path.is_file():
            r_bs, t_bs = _transform(read_simple_yaml(sensor_path, root), sensor_path)
        else:
            r_bs, t_bs = np.eye(3), np.zeros(3)
        # T_W_B = T_W_S T_BS^-1
        r_sb = r_bs.T
        t_sb = -r_sb @ t_bs
        notes.append(f"ground truth from {name}/data.csv")
        return ns, r @ r_sb, p + r @ t_sb, name
    if (mav / "leica0" / "data.csv").is_file():
        raise InputError(mav / "leica0" / "data.csv", "holds positions only (no orientation); "
                         "expected state_groundtruth_estimate0/, vicon0/ or mocap0/ with poses")
    raise InputError(mav, "no ground truth (expected state_groundtruth_estimate0/data.csv, "
                     "vicon0/data.csv or mocap0/data.csv)")


def _pose_rows(csv: Path, root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    label = str(csv)
    ns, positions, quats = [], [], []
    for line_no, cells in convert.read_rows(csv, label, delimiter=",", root=root):
        where = f"{label} line {line_no}"
        if len(cells) < 8:
            raise InputError(where, "expected 'timestamp [ns], p_RS_R_x, p_RS_R_y, p_RS_R_z, "
                             f"q_RS_w, q_RS_x, q_RS_y, q_RS_z, ...', got {len(cells)} values")
        ns.append(convert.integer_ns(cells[0], where))
        v = [convert.number(c, where, f) for c, f in zip(cells[1:8], _FIELDS, strict=True)]
        w, x, y, z = v[3:]
        norm = float(np.sqrt(w * w + x * x + y * y + z * z))
        if abs(norm - 1.0) > 1e-2:
            raise InputError(where, f"quaternion norm is {norm:.4f}, expected a unit "
                             "quaternion q_RS_w q_RS_x q_RS_y q_RS_z")
        positions.append(v[:3])
        quats.append([x / norm, y / norm, z / norm, w / norm])
    if len(ns) < 2:
        raise InputError(label, "expected at least two poses")
    t = np.array(ns, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t = t[order]
    if np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0)) + 1
        raise InputError(label, f"two poses share the timestamp {t[k]} (expected one pose per "
                         "timestamp)")
    return t, convert.quat_to_matrix(np.array(quats)[order]), np.array(positions)[order]


_FIELDS = ("p_RS_R_x", "p_RS_R_y", "p_RS_R_z", "q_RS_w", "q_RS_x", "q_RS_y", "q_RS_z")


def _clock_name(ns: np.ndarray) -> str:
    if ns[0] > 1_000_000_000 * 1_000_000_000:  # after 2001 in ns since 1970
        return "Unix epoch nanoseconds (ASL sensor timestamps)"
    return "nanoseconds (ASL sensor timestamps)"


IMPORTER = EurocImporter()
