"""ROS 1 and ROS 2 bags: an image topic, a pose topic (or /tf) and, when present, CameraInfo.

Sources: a ROS 1 ``.bag`` file, a ROS 2 bag folder (``metadata.yaml`` with its ``.db3`` or
``.mcap`` storage files), or a bare ROS 2 ``.mcap`` / ``.db3`` file; read with the
``rosbags`` library (``AnyReader``; ROS 2 bags without embedded message definitions use the
standard Humble definitions).

Topics, chosen with ImportOptions ``image_topic`` / ``pose_topic`` / ``camera_frame``
(``--image-topic``, ``--pose-topic``, ``--camera-frame``), else detected when exactly one
plausible topic of each kind exists (an InputError lists the candidates and the flag
otherwise):

- images: ``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 8UC1/3,
  rgb16/bgr16, bayer_*8, yuv422) or ``sensor_msgs/CompressedImage`` (JPEG or PNG); when a
  raw topic and its image_transport ``.../compressed`` twin are both there the raw one is
  taken. Frames are decoded here (DecodedFrames: JPEG input is kept as JPEG, raw as PNG);
- poses: ``geometry_msgs/PoseStamped``, ``PoseWithCovarianceStamped``,
  ``nav_msgs/Odometry``, ``geometry_msgs/TransformStamped``, or ``/tf``
  (``tf2_msgs/TFMessage``, with ``/tf_static``) holding a chain from the tree's root to the
  camera frame. The camera frame is ``--camera-frame``, else the images' ``frame_id``;
- intrinsics: the ``sensor_msgs/CameraInfo`` topic beside the images (``K``, ``D`` with
  ``distortion_model`` plumb_bob / rational_polynomial -> radtan, equidistant -> fisheye),
  scaled when the images are a uniformly scaled version of its size. Without one (or with
  an all-zero K) a 60 degree horizontal field of view, centred, is assumed and said loudly
  in the notes: the bag does not say, and anchors will not line up until it is given.

Conventions of the source and what the importer converts:

- time: each message's ``header.stamp`` (integer ns, the sensor's capture time) is
  preferred over the bag's receive time, which is used only when the stamps are zero;
- world: REP 103/105 (``map`` / ``odom``: x forward/east, y left/north, z up), levelled to
  y up with ``convert.level_world`` (``--up`` overrides +z);
- the pose's frame is Odometry / TransformStamped ``child_frame_id``, the end of the /tf
  chain, or for PoseStamped (which names none) ``--camera-frame`` or the images' frame. A
  ``/tf_static`` chain from that frame to the camera frame is applied when there is one.
  The frame's axes follow its name (REP 103): a name containing ``optical`` is an optical
  frame (x right, y down, z forward: ``convert.camera_cv_to_gl``), any other is a body /
  ``camera_link`` frame (x forward, y left, z up: ``convert.camera_flu_to_gl``, the camera
  looking along x);
- units: metres. Frames whose stamp does not increase are dropped (noted).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.safe_files import check_user_file
from simulator.scenario.importers import convert
from simulator.scenario.importers.base import (
    DecodedFrames,
    ImportOptions,
    PoseTrack,
    Progress,
    Recording,
)
from simulator.types import Distortion, Intrinsics

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF = "tf2_msgs/msg/TFMessage"
POSE_TYPES = (
    "geometry_msgs/msg/PoseStamped",
    "geometry_msgs/msg/PoseWithCovarianceStamped",
    "nav_msgs/msg/Odometry",
    "geometry_msgs/msg/TransformStamped",
)
DEFAULT_HFOV_DEG = 60.0
_ROS1_MAGIC = b"#ROSBAG V2.0"
_MCAP_MAGIC = b"\x89MCAP0\r\n"
_SQLITE_MAGIC = b"SQLite format 3\x00"
# encoding -> (channels, bytes per channel, OpenCV conversion to RGB or None)
_ENCODINGS = {
    "rgb8": (3, 1, None),
    "bgr8": (3, 1, cv2.COLOR_BGR2RGB),
    "8uc3": (3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": (4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, 1, cv2.COLOR_BGRA2RGB),
    "8uc4": (4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": (1, 1, cv2.COLOR_GRAY2RGB),
    "8uc1": (1, 1, cv2.COLOR_GRAY2RGB),
    "mono16": (1, 2, cv2.COLOR_GRAY2RGB),
    "16uc1": (1, 2, cv2.COLOR_GRAY2RGB),
    "rgb16": (3, 2, None),
    "bgr16": (3, 2, cv2.COLOR_BGR2RGB),
    # ROS's Bayer names are OpenCV's shifted by one row (as cv_bridge maps them)
    "bayer_rggb8": (1, 1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": (1, 1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, 1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": (1, 1, cv2.COLOR_BayerGB2RGB),
    "yuv422": (2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, 1, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": (2, 1, cv2.COLOR_YUV2RGB_YUY2),
}


def _kind(src: Path) -> str | None:
    """'ros1', 'ros2' or None, from the file's first bytes / the folder's metadata.yaml."""
    try:
        if src.is_dir():
            meta = src / "metadata.yaml"
            if not meta.is_file():
                return None
            with open(meta, "rb") as f:
                return "ros2" if b"rosbag2_bagfile_information" in f.read(4096) else None
        if not src.is_file():
            return None
        with open(src, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head.startswith(_ROS1_MAGIC) and src.suffix == ".bag":
        return "ros1"
    if (head.startswith(_MCAP_MAGIC) and src.suffix == ".mcap") or (
            head.startswith(_SQLITE_MAGIC) and src.suffix == ".db3"):
        return "ros2"
    return None


class RosbagImporter:
    name = "rosbag"
    description = ("ROS 1 .bag or ROS 2 bag (folder, .mcap, .db3): image topic + pose topic "
                   "(PoseStamped, Odometry, TransformStamped or /tf) + CameraInfo")

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if _kind(src) is not None:
            return None
        if src.is_dir():
            return "no ROS 2 metadata.yaml in the folder"
        return "not a ROS bag (.bag starting '#ROSBAG V2.0', .mcap or .db3)"

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        _check_files(src)
        notes: list[str] = []
        with _Bag(src) as bag:
            topics = bag.topics()
            image_topic = _choose_image_topic(topics, options, src)
            info_topic = _choose_info_topic(topics, image_topic, notes)
            pose_topic = _choose_pose_topic(topics, options, src)
            scan = _scan(bag, image_topic, info_topic, pose_topic, progress)
        if not scan.image_ns:
            raise InputError(f"{src}: {image_topic}", "holds no images")
        frame_ns, keep = _frame_times(scan, notes)
        first = _decode(scan.first_image, topics[image_topic], f"{src}: {image_topic}")
        height, width = first.shape[:2]
        camera = _camera(scan.info, width, height, f"{src}: {info_topic}", notes)
        cam_frame = options.camera_frame or scan.image_frame
        pose_ns, rotations_ros, positions, pose_frame = _poses(
            scan, topics[pose_topic], pose_topic, cam_frame, options, src, notes)
        if "optical" in pose_frame.lower():
            rotations = convert.camera_cv_to_gl(rotations_ros)
            axes = (f"pose of the optical frame {pose_frame!r} (x right, y down, z forward) -> "
                    "y up, -z forward")
        else:
            rotations = convert.camera_flu_to_gl(rotations_ros)
            axes = (f"pose of the body frame {pose_frame or '(unnamed)'!r} (REP 103: x "
                    "forward, y left, z up; the camera looks along x) -> y up, -z forward")
        up_text = options.up or "+z"
        notes.append(f"world up {up_text}" + (" (--up)" if options.up else " (REP 103)"))
        rotations, positions, world = convert.level_world(
            rotations, positions, convert.axis_vector(up_text))
        kept = np.asarray(keep, dtype=np.int64)
        lossy = topics[image_topic] == COMPRESSED and _is_jpeg(scan.first_image)
        return Recording(
            format=self.name,
            camera=camera,
            frames=DecodedFrames(len(kept), lambda: _images(src, image_topic, kept), lossy),
            frame_ns=frame_ns,
            poses=PoseTrack(pose_ns, positions, convert.matrix_to_quat(rotations)),
            metric=True,
            app=f"ROS {'1' if _kind(src) == 'ros1' else '2'} bag",
            axes=axes + "; " + convert.describe_rotation(world) + " to make world up +y",
            clock=scan.clock,
            notes=[*notes, f"images {image_topic}, poses {pose_topic}"],
        )


# --- opening the bag ----------------------------------------------------------------------


def _check_files(src: Path) -> None:
    """Regular files only (no FIFO that blocks the reader), nothing linked out of the bag."""
    if src.is_dir():
        for path in sorted(src.iterdir()):
            if path.is_file() or path.is_symlink():
                check_user_file(path, str(path), root=src)
        return
    check_user_file(src, str(src), root=src.parent)


class _Bag:
    """An open AnyReader whose errors are InputErrors naming the bag."""

    def __init__(self, src: Path) -> None:
        self.src = src

    def __enter__(self) -> _Bag:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        try:
            self.reader = AnyReader([self.src],
                                    default_typestore=get_typestore(Stores.ROS2_HUMBLE))
            self.reader.open()
        except Exception as exc:  # rosbags raises its own types and a few plain ones
            raise InputError(self.src, f"cannot be read as a ROS bag: {_first_line(exc)}") \
                from None
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # a reader that failed half-way
            self.reader.close()

    def topics(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for c in self.reader.connections:
            out.setdefault(c.topic, c.msgtype)
        return out

    def messages(self, topics: set[str]) -> Iterator[tuple[str, int, object]]:
        connections = [c for c in self.reader.connections if c.topic in topics]
        if not connections:
            return
        try:
            for conn, bag_ns, raw in self.reader.messages(connections=connections):
                yield conn.topic, int(bag_ns), self.reader.deserialize(raw, conn.msgtype)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(self.src, f"cannot be read as a ROS bag: {_first_line(exc)}") \
                from None

    def count(self, topics: set[str]) -> int:
        return sum(c.msgcount for c in self.reader.connections if c.topic in topics)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# --- topics -------------------------------------------------------------------------------


def _listing(topics: dict[str, str], names: list[str]) -> str:
    return ", ".join(f"{t} ({topics[t].replace('/msg/', '/')})" for t in names) or "none"


def _choose_image_topic(topics: dict[str, str], options: ImportOptions, src: Path) -> str:
    candidates = sorted(t for t, m in topics.items() if m in (IMAGE, COMPRESSED))
    if options.image_topic is not None:
        if options.image_topic not in candidates:
            raise InputError("--image-topic", f"{options.image_topic!r} is not an image topic "
                             f"of {src.name} (image topics: {_listing(topics, candidates)})")
        return options.image_topic
    if len(candidates) == 2:  # a raw topic and its image_transport twin: the raw one
        raw, other = candidates
        if other.startswith(raw + "/") and topics[raw] == IMAGE:
            return raw
    if not candidates:
        raise InputError(src, "holds no image topic (expected sensor_msgs/Image or "
                         f"CompressedImage); its topics: {_listing(topics, sorted(topics))}")
    if len(candidates) > 1:
        raise InputError(src, "several image topics (sensor_msgs/Image or CompressedImage): "
                         f"{_listing(topics, candidates)}; choose one with --image-topic")
    return candidates[0]


def _choose_pose_topic(topics: dict[str, str], options: ImportOptions, src: Path) -> str:
    poses = sorted(t for t, m in topics.items() if m in POSE_TYPES)
    tf = sorted(t for t, m in topics.items() if m == TF and t != "/tf_static")
    if options.pose_topic is not None:
        if options.pose_topic not in poses + tf:
            raise InputError("--pose-topic", f"{options.pose_topic!r} is not a pose topic of "
                             f"{src.name} (pose topics: {_listing(topics, poses + tf)})")
        return options.pose_topic
    if len(poses) == 1:
        return poses[0]
    if not poses and len(tf) == 1:
        return tf[0]
    if not poses + tf:
        raise InputError(src, "holds no pose topic (expected PoseStamped, "
                         "PoseWithCovarianceStamped, Odometry, TransformStamped or /tf); its "
                         f"topics: {_listing(topics, sorted(topics))}")
    raise InputError(src, "several pose topics (PoseStamped, PoseWithCovarianceStamped, "
                     f"Odometry, TransformStamped or /tf): {_listing(topics, poses + tf)}; "
                     "choose one with --pose-topic")


def _choose_info_topic(topics: dict[str, str], image_topic: str, notes: list[str]) -> str | None:
    infos = sorted(t for t, m in topics.items() if m == CAMERA_INFO)
    if len(infos) == 1:
        return infos[0]
    # the CameraInfo beside the image topic: /cam/camera_info for /cam/image_raw(/compressed)
    matching = [t for t in infos if image_topic.startswith(t.rsplit("/", 1)[0] + "/")]
    if matching:
        return max(matching, key=len)
    if infos:
        notes.append("camera info topics " + ", ".join(infos) + f" are not beside {image_topic}:"
                     " none used")
    return None


# --- reading the messages -----------------------------------------------------------------


@dataclass
class _Scan:
    image_ns: list[int] = field(default_factory=list)  # header stamps (0 when unset)
    image_bag_ns: list[int] = field(default_factory=list)
    image_frame: str = ""
    first_image: object = None
    info: object = None
    poses: list[tuple[int, int, object]] = field(default_factory=list)  # (stamp, bag, msg)
    tf: list[object] = field(default_factory=list)  # TransformStamped of /tf, in order
    tf_static: list[object] = field(default_factory=list)
    clock: str = ""


def _scan(bag: _Bag, image_topic: str, info_topic: str | None, pose_topic: str,
          progress: Progress | None) -> _Scan:
    scan = _Scan()
    wanted = {image_topic, pose_topic, "/tf_static"} | ({info_topic} if info_topic else set())
    total = bag.count(wanted)
    for done, (topic, bag_ns, msg) in enumerate(bag.messages(wanted), start=1):
        if progress and done % 64 == 0:
            progress(done, total)
        if topic == image_topic:
            scan.image_ns.append(_stamp(msg.header))
            scan.image_bag_ns.append(bag_ns)
            if scan.first_image is None:
                scan.first_image = msg
                scan.image_frame = str(msg.header.frame_id).lstrip("/")
        elif topic == info_topic:
            if scan.info is None:
                scan.info = msg
        elif topic == "/tf_static":
            scan.tf_static.extend(msg.transforms)
        elif hasattr(msg, "transforms"):  # /tf
            scan.tf.extend(msg.transforms)
        else:
            scan.poses.append((_stamp(msg.header), bag_ns, msg))
    if progress:
        progress(total, total)
    return scan


def _stamp(header: object) -> int:
    stamp = header.stamp
    return int(stamp.sec) * convert.NS_PER_S + int(stamp.nanosec)


def _frame_times(scan: _Scan, notes: list[str]) -> tuple[np.ndarray, list[int]]:
    """The frames' times and which image messages are kept (times strictly increasing)."""
    if scan.image_ns[0] == 0:
        times = scan.image_bag_ns
        scan.clock = "ROS time, nanoseconds (bag receive time: the images' header stamps are 0)"
        notes.append("image header stamps unset: the bag's receive times used")
    else:
        times = scan.image_ns
        scan.clock = "ROS time, nanoseconds (header.stamp" + (
            ", Unix epoch)" if times[0] > 10**18 else ")")
    keep, out, last = [], [], None
    for i, t in enumerate(times):
        if last is None or t > last:
            keep.append(i)
            out.append(t)
            last = t
    if len(keep) < len(times):
        notes.append(f"{len(times) - len(keep)} images whose stamp does not increase dropped")
    return np.array(out, dtype=np.int64), keep


# --- images -------------------------------------------------------------------------------


def _is_jpeg(msg: object) -> bool:
    return bytes(np.asarray(msg.data[:2], dtype=np.uint8)) == b"\xff\xd8"


def _decode(msg: object, msgtype: str, where: str) -> np.ndarray:
    """An Image or CompressedImage message as H x W x 3 RGB uint8."""
    if msgtype == COMPRESSED:
        data = np.asarray(msg.data, dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise InputError(where, f"a CompressedImage ({msg.format!r}) that cannot be decoded"
                             " (expected JPEG or PNG)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    encoding = str(msg.encoding).lower()
    if encoding not in _ENCODINGS:
        raise InputError(where, f"image encoding {msg.encoding!r} is not supported (expected "
                         "one of " + ", ".join(sorted(_ENCODINGS)) + ")")
    channels, size, code = _ENCODINGS[encoding]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    row = w * channels * size
    if h <= 0 or w <= 0 or step < row or data.size < step * h:
        raise InputError(where, f"a {w}x{h} {encoding} image with step {step} holds "
                         f"{data.size} bytes (expected at least step x height)")
    rows = data[: step * h].reshape(h, step)[:, :row]
    if size == 2:
        dtype = ">u2" if msg.is_bigendian else "<u2"
        rows = (np.ascontiguousarray(rows).view(dtype) >> 8).astype(np.uint8)
    image = np.ascontiguousarray(rows.reshape(h, w, channels) if channels > 1
                                 else rows.reshape(h, w))
    return image if code is None else cv2.cvtColor(image, code)


def _images(src: Path, image_topic: str, keep: np.ndarray) -> Iterator[np.ndarray]:
    wanted = set(int(i) for i in keep)
    with _Bag(src) as bag:
        msgtype = bag.topics()[image_topic]
        for index, (_, _, msg) in enumerate(bag.messages({image_topic})):
            if index in wanted:
                yield _decode(msg, msgtype, f"{src}: {image_topic} image {index}")


# --- intrinsics ---------------------------------------------------------------------------


def _field(msg: object, name: str) -> object:
    """A CameraInfo field: lower case in ROS 2 (k, d), upper case in ROS 1 (K, D)."""
    return getattr(msg, name) if hasattr(msg, name) else getattr(msg, name.upper())


def _camera(info: object, width: int, height: int, where: str, notes: list[str]) -> Intrinsics:
    k = np.asarray(_field(info, "k"), dtype=np.float64) if info is not None else np.zeros(9)
    if info is None or k.size != 9 or k[0] <= 0 or k[4] <= 0:
        f = (width / 2) / math.tan(math.radians(DEFAULT_HFOV_DEG / 2))
        notes.append(f"INTRINSICS UNKNOWN: no calibrated sensor_msgs/CameraInfo; a "
                     f"{DEFAULT_HFOV_DEG:g} degree horizontal field of view assumed (f = "
                     f"{f:.1f} px, centred): anchors will not line up with the real camera")
        return Intrinsics(width, height, f, f, (width - 1) / 2, (height - 1) / 2)
    if not np.all(np.isfinite(k)):
        raise InputError(where, "K has non-finite values")
    fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    info_w, info_h = int(info.width), int(info.height)
    if info_w and info_h and (info_w, info_h) != (width, height):
        sx, sy = width / info_w, height / info_h
        if abs(sx - sy) > 0.01 * sx:
            raise InputError(where, f"is for {info_w}x{info_h} images but the images are "
                             f"{width}x{height} (not a uniform scaling)")
        fx, cx, fy, cy = fx * sx, (cx + 0.5) * sx - 0.5, fy * sy, (cy + 0.5) * sy - 0.5
        notes.append(f"camera info for {info_w}x{info_h} scaled to the {width}x{height} images")
    d = tuple(float(v) for v in np.asarray(_field(info, "d"), dtype=np.float64))
    model = str(info.distortion_model)
    distortion = None
    if any(d):
        radtan = {"plumb_bob": (4, 5), "rational_polynomial": (5, 8)}
        if len(d) in radtan.get(model, ()):
            distortion = Distortion("radtan", d)
        elif model in ("equidistant", "fisheye", "kannala_brandt") and len(d) == 4:
            distortion = Distortion("fisheye", d)
        else:
            raise InputError(where, f"distortion model {model!r} with {len(d)} coefficients is "
                             "not supported (expected plumb_bob (5), rational_polynomial (8) or "
                             "equidistant (4))")
        notes.append(f"distortion {model} from camera info")
    return Intrinsics(width, height, float(fx), float(fy), float(cx), float(cy), distortion)


# --- poses --------------------------------------------------------------------------------


def _pose_of(msg: object) -> tuple[np.ndarray, np.ndarray]:
    """(position, quaternion x y z w) of any supported pose message or a transform."""
    if hasattr(msg, "transform"):
        t, q = msg.transform.translation, msg.transform.rotation
    else:
        pose = msg.pose.pose if hasattr(msg.pose, "pose") else msg.pose
        t, q = pose.position, pose.orientation
    return (np.array([t.x, t.y, t.z], dtype=np.float64),
            np.array([q.x, q.y, q.z, q.w], dtype=np.float64))


def _rotation(q: np.ndarray, where: str) -> np.ndarray:
    norm = float(np.linalg.norm(q))
    if not math.isfinite(norm) or abs(norm - 1.0) > 1e-2:
        raise InputError(where, f"quaternion norm is {norm:.4f}, expected a unit quaternion")
    return convert.quat_to_matrix(q / norm)[0]


def _poses(
    scan: _Scan, msgtype: str, topic: str, cam_frame: str, options: ImportOptions, src: Path,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(ns, R (N, 3, 3), p (N, 3), the frame they are the pose of) in the ROS world."""
    where = f"{src}: {topic}"
    static = _tree(scan.tf_static, {}, f"{src}: /tf_static")
    if msgtype == TF:
        return _tf_chain(scan, static, cam_frame, where, notes)
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for stamp, bag_ns, msg in scan.poses:
        t, q = _pose_of(msg)
        rows[stamp or bag_ns] = (t, _rotation(q, f"{where} at {stamp or bag_ns} ns"))
    if len(rows) < 2:
        raise InputError(where, "holds fewer than two poses")
    child = str(getattr(scan.poses[0][2], "child_frame_id", "")).lstrip("/")
    if child:
        pose_frame = child
    else:
        pose_frame = cam_frame
        notes.append(f"{msgtype.rsplit('/', 1)[-1]} names no child frame: taken as the pose of "
                     f"{pose_frame or 'the camera'!r}" + ("" if options.camera_frame else
                     " (the images' frame; give --camera-frame to change)"))
    ns = np.array(sorted(rows), dtype=np.int64)
    positions = np.array([rows[t][0] for t in ns])
    rotations = np.array([rows[t][1] for t in ns])
    if cam_frame and pose_frame != cam_frame:
        chain = _chain(static, cam_frame, pose_frame)
        if chain is None:
            notes.append(f"no /tf_static chain from {pose_frame!r} to the camera frame "
                         f"{cam_frame!r}: the pose is taken as the camera's")
        else:
            r_pc, t_pc = _compose([static[f] for f in chain])
            positions = positions + rotations @ t_pc
            rotations = rotations @ r_pc
            notes.append(f"/tf_static {pose_frame} -> {cam_frame} applied")
            pose_frame = cam_frame
    return ns, rotations, positions, pose_frame


@dataclass
class _Edge:
    parent: str
    samples: dict[int, tuple[np.ndarray, np.ndarray]]  # ns -> (R, t) parent <- child
    _times: np.ndarray | None = None

    def times(self) -> np.ndarray:
        if self._times is None or len(self._times) != len(self.samples):
            self._times = np.array(sorted(self.samples), dtype=np.int64)
        return self._times


def _tree(transforms: list[object], edges: dict[str, _Edge], where: str) -> dict[str, _Edge]:
    for tf in transforms:
        parent = str(tf.header.frame_id).lstrip("/")
        child = str(tf.child_frame_id).lstrip("/")
        edge = edges.setdefault(child, _Edge(parent, {}))
        if edge.parent != parent:
            raise InputError(where, f"frame {child!r} has two parents ({edge.parent!r} and "
                             f"{parent!r}); expected a tree")
        t, q = _pose_of(tf)
        stamp = _stamp(tf.header)
        edge.samples[stamp] = (_rotation(q, f"{where} {parent} -> {child}"), t)
    return edges


def _chain(edges: dict[str, _Edge], frame: str, ancestor: str | None) -> list[str] | None:
    """Frames from just below ``ancestor`` (None: the root) down to ``frame``, top first."""
    out, seen = [], set()
    while frame in edges and frame != ancestor:
        if frame in seen:
            return None
        seen.add(frame)
        out.append(frame)
        frame = edges[frame].parent
    if ancestor is not None and frame != ancestor:
        return None
    return out[::-1]


def _compose(edges: list[_Edge], at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """parent_top <- child_bottom as (R, t), each edge at its sample nearest ``at``."""
    r, t = np.eye(3), np.zeros(3)
    for edge in edges:
        times = edge.times()
        if at is None or len(times) == 1:
            key = int(times[-1])
        else:
            k = int(np.clip(np.searchsorted(times, at), 1, len(times) - 1))
            key = int(times[k] if times[k] - at < at - times[k - 1] else times[k - 1])
        er, et = edge.samples[key]
        t = t + r @ et
        r = r @ er
    return r, t


def _tf_chain(
    scan: _Scan, static: dict[str, _Edge], cam_frame: str, where: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    if not cam_frame:
        raise InputError(where, "the images name no frame_id: give the camera's frame with "
                         "--camera-frame")
    edges = _tree(scan.tf, {}, where)
    for child, edge in static.items():
        if child in edges:
            raise InputError(where, f"frame {child!r} is in both /tf and /tf_static")
        edges[child] = edge
    chain = _chain(edges, cam_frame, None)
    if not chain:
        raise InputError("--camera-frame", f"{cam_frame!r} is not a frame of the /tf tree "
                         "(frames: " + ", ".join(sorted(edges)) + ")")
    root = edges[chain[0]].parent
    moving = [f for f in chain if f not in static]
    if not moving:
        raise InputError(where, f"no moving transform between {root!r} and {cam_frame!r} "
                         "(only /tf_static)")
    reference = max(moving, key=lambda f: len(edges[f].samples))
    ns = np.array(sorted(edges[reference].samples), dtype=np.int64)
    if len(ns) < 2:
        raise InputError(where, f"fewer than two transforms to {reference!r}")
    rotations, positions = [], []
    for t in ns:
        r, p = _compose([edges[f] for f in chain], int(t))
        rotations.append(r)
        positions.append(p)
    if len(moving) > 1:
        notes.append(f"/tf chain {root} -> {cam_frame} sampled at the times of {reference!r} "
                     "(other moving links at their nearest sample)")
    else:
        notes.append(f"/tf chain {root} -> {cam_frame}")
    return ns, np.array(rotations), np.array(positions), cam_frame


IMPORTER = RosbagImporter()
