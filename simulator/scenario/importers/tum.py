"""TUM RGB-D sequences, and any TUM-format trajectory beside a video or an image folder.

Layouts (a folder; a folder holding ``scenario.json`` is an arsim scenario, not this):

1. A TUM RGB-D benchmark sequence (https://cvg.cit.tum.de/data/datasets/rgbd-dataset/
   file_formats): ``rgb.txt`` (``timestamp filename`` per line, ``#`` comments; files such
   as ``rgb/1305031102.175304.png``, 640x480) and ``groundtruth.txt``
   (``timestamp tx ty tz qx qy qz qw``). ``depth/`` and ``accelerometer.txt`` are ignored.
2. Any trajectory in the TUM format: a folder with exactly one of ``poses.txt``,
   ``trajectory.txt``, ``groundtruth.txt`` and the frames, either one video file
   ``video.*`` or an image folder ``images/`` (or ``rgb/``) of PNG/JPEG files. Frame times,
   in order of preference:

   - ``times.txt`` or ``rgb.txt``: ``timestamp filename`` rows (files relative to the
     capture folder, as TUM's ``rgb.txt``), or one ``timestamp`` per line, one per video
     frame / per image in natural name order;
   - images named by their timestamp (``1305031102.175304.png``);
   - for a video, its own presentation times (seconds from the video's start): the
     trajectory must then use that clock too.

Timestamps are decimal seconds (TUM: Unix epoch, microsecond decimals), read exactly to
integer nanoseconds (``convert.seconds_text_to_ns``).

Conventions of the source and what the importer converts:

- poses: camera-to-world, the position and orientation of the colour camera's optical
  centre (OpenCV camera axes: x right, y down, looking down +z) in the motion-capture (or
  SLAM) world; turned to the scenario's camera (y up, −z forward) with
  ``convert.camera_cv_to_gl``. A ``camera.json`` may say ``"camera_axes": "opengl"`` for a
  trajectory already in that convention (an ARKit / arsim export);
- world up: TUM does not document the motion-capture world's up axis (nor do SLAM
  trajectories have one), so it is estimated from the cameras' up vectors
  (``convert.estimate_up``) unless ``--up`` gives it, and levelled to +y. On the real
  freiburg1_xyz ground truth that estimate is 47 degrees off: the camera looks down at a
  desk, and the mocap world there is evidently z up (camera heights 1.3-1.8 m, looking down
  in z), so a benchmark sequence's notes suggest ``--up +z``;
- frames and poses: poses are interpolated at the frame times (by the writer). With a
  ``groundtruth.txt`` (motion capture, which has drop-outs) a frame is kept only when a
  ground-truth pose lies within 20 ms of it (``convert.associate``, the rule of TUM's
  ``associate.py``); estimated trajectories (``poses.txt``, ``trajectory.txt``) may hold
  key frames only and are interpolated without that rule;
- intrinsics: ``camera.json`` (``fx fy cx cy``, optional ``width height``, optional
  ``distortion`` ``{"model": "radtan"|"fisheye", "coeffs": [...]}`` in OpenCV's order), else
  TUM's published calibration of the sequence's sensor chosen by the folder name
  ``rgbd_dataset_freiburgN_*`` (fr1 and fr2 with their radial-tangential distortion
  d0..d4 = k1 k2 p1 p2 k3, fr3 without), else the ROS default 525 / 525 / 319.5 / 239.5 for
  640x480 (scaled to the frame width for other sizes), said in the notes;
- units: metres (TUM ground truth, and assumed for other trajectories).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.safe_files import JSON_CAP, check_user_file, inside_root, read_user_text
from simulator.scenario.importers import convert
from simulator.scenario.importers.base import (
    ImageFrames,
    ImportOptions,
    PoseTrack,
    Progress,
    Recording,
    VideoFrames,
)
from simulator.scenario.video import frame_size, image_size
from simulator.types import DISTORTION_MODELS, Distortion, Intrinsics

TRAJECTORY_NAMES = ("poses.txt", "trajectory.txt", "groundtruth.txt")
TIMES_NAMES = ("times.txt", "rgb.txt")
IMAGE_FOLDERS = ("images", "rgb")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
MAX_DIFF_NS = 20_000_000  # TUM associate.py's default --max_difference (0.02 s)
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")  # a file name that is a timestamp
_SEQUENCE = re.compile(r"rgbd_dataset_freiburg([123])_", re.IGNORECASE)
# TUM's published colour-camera calibration (file_formats page, "Intrinsic Camera
# Calibration"): fx fy cx cy, and d0..d4 (OpenCV k1 k2 p1 p2 k3)
TUM_CAMERAS = {
    "1": ((517.306408, 516.469215, 318.643040, 255.313989),
          (0.262383, -0.953104, -0.005358, 0.002628, 1.163314)),
    "2": ((520.908620, 521.007327, 325.141442, 249.701764),
          (0.231222, -0.784899, -0.003257, -0.000105, 0.917205)),
    "3": ((535.4, 539.2, 320.1, 247.6), None),
}
ROS_DEFAULT = (525.0, 525.0, 319.5, 239.5)  # for 640x480


class TumImporter:
    name = "tum"
    description = ("TUM RGB-D sequence (rgb.txt + groundtruth.txt), or a TUM trajectory "
                   "(poses.txt / trajectory.txt) beside a video or an images/ folder")

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if not src.is_dir():
            return "not a folder"
        if (src / "scenario.json").exists():
            return "holds scenario.json (an arsim scenario, not a capture)"
        trajectories = [n for n in TRAJECTORY_NAMES if (src / n).is_file()]
        if not trajectories:
            return "no " + ", ".join(TRAJECTORY_NAMES) + " in the folder"
        if len(trajectories) > 1:
            return "more than one trajectory file (" + ", ".join(trajectories) + ")"
        if (src / "rgb.txt").is_file() or _image_folder(src) or _videos(src):
            return None
        return "a trajectory but no frames (expected rgb.txt, images/, rgb/ or video.*)"

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        root = Path(src)
        trajectory_name = next(n for n in TRAJECTORY_NAMES if (root / n).is_file())
        notes: list[str] = []
        frames, frame_ns, clock = _frames(root, notes)
        if isinstance(frames, ImageFrames):
            width, height = _image_sizes(frames.paths, progress)
        else:
            width, height = frame_size(frames.path, str(frames.path))

        camera, cv_axes = _camera(root, width, height, notes)
        pose_label = str(root / trajectory_name)
        pose_ns, positions, quats = read_trajectory(root / trajectory_name, pose_label, root)
        rotations = convert.quat_to_matrix(quats)
        if cv_axes:
            rotations = convert.camera_cv_to_gl(rotations)
            axes = "camera axes OpenCV (x right, y down, +z forward) -> y up, -z forward"
        else:
            axes = "camera axes already OpenGL (camera.json camera_axes)"
        if options.up is not None:
            up = convert.axis_vector(options.up)
            notes.append(f"world up {options.up} (--up)")
        else:
            up = convert.estimate_up(rotations)
            notes.append("world up estimated from the cameras' up vectors "
                         f"({up[0]:.3f}, {up[1]:.3f}, {up[2]:.3f}); give --up to override")
            if _SEQUENCE.search(root.resolve().name):
                notes.append("a camera pitched at a desk tilts that estimate: TUM's "
                             "motion-capture world looks z up (freiburg1_xyz), try --up +z")
        rotations, positions, world = convert.level_world(rotations, positions, up)

        if not np.any((frame_ns >= pose_ns[0]) & (frame_ns <= pose_ns[-1])):
            raise InputError(
                pose_label,
                f"its times ({pose_ns[0] / 1e9:.6f} .. {pose_ns[-1] / 1e9:.6f} s) do not "
                f"overlap the frame times ({frame_ns[0] / 1e9:.6f} .. {frame_ns[-1] / 1e9:.6f}"
                f" s, {clock}); expected one clock for both (give times.txt with each "
                "frame's time on the trajectory's clock)",
            )
        if trajectory_name == "groundtruth.txt":
            pairs = convert.associate(frame_ns, pose_ns, MAX_DIFF_NS)
            keep = sorted(i for i, _ in pairs)
            dropped = len(frame_ns) - len(keep)
            if not keep:
                raise InputError(pose_label, "no frame has a ground-truth pose within 20 ms")
            if dropped:
                notes.append(f"{dropped} frames without a ground-truth pose within 20 ms "
                             "dropped (motion-capture drop-outs)")
                frame_ns = frame_ns[keep]
                if isinstance(frames, ImageFrames):
                    frames = ImageFrames(tuple(frames.paths[i] for i in keep))
                else:
                    base = frames.keep or tuple(range(len(keep) + dropped))
                    frames = VideoFrames(frames.path, tuple(base[i] for i in keep))
        notes.append("poses interpolated at the frame times")

        match = _SEQUENCE.search(root.resolve().name)
        return Recording(
            format=self.name,
            camera=camera,
            frames=frames,
            frame_ns=frame_ns,
            poses=PoseTrack(pose_ns, positions, convert.matrix_to_quat(rotations)),
            metric=True,
            device=f"TUM RGB-D freiburg{match.group(1)} sensor" if match else "",
            app="TUM RGB-D benchmark" if match else "",
            axes=axes + "; " + convert.describe_rotation(world) + " to make world up +y",
            clock=clock,
            notes=notes,
        )


# --- frames and their times ---------------------------------------------------------------


def _image_folder(root: Path) -> Path | None:
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return None


def _videos(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("video.*") if p.is_file())


def _frames(root: Path, notes: list[str]) -> tuple[ImageFrames | VideoFrames, np.ndarray, str]:
    """The frames, their times (ns, strictly increasing) and what the clock is."""
    times_file = next((root / n for n in TIMES_NAMES if (root / n).is_file()), None)
    rows = _time_rows(times_file, root) if times_file else None
    videos = _videos(root)
    folder = _image_folder(root)
    if rows and rows[0][2] is not None:  # timestamp + filename rows (TUM's rgb.txt)
        paths = tuple(_inside(root, name, where) for where, _, name in rows)
        frame_ns = np.array([t for _, t, _ in rows], dtype=np.int64)
        clock = _clock_name(frame_ns, f"{times_file.name} timestamps")
        return ImageFrames(paths), _increasing(frame_ns, times_file), clock
    if folder is not None:
        if videos:
            notes.append(f"frames from {folder.name}/ ({', '.join(v.name for v in videos)} "
                         "ignored)")
        images = _folder_images(folder)
        if rows is not None:
            if len(rows) != len(images):
                raise InputError(times_file, f"has {len(rows)} times but {folder.name}/ holds "
                                 f"{len(images)} images (expected one time per image)")
            frame_ns = np.array([t for _, t, _ in rows], dtype=np.int64)
            clock = _clock_name(frame_ns, f"{times_file.name} timestamps")
            notes.append(f"{times_file.name} times given to {folder.name}/ in name order")
        else:
            frame_ns = np.array([_time_from_name(p, folder) for p in images], dtype=np.int64)
            order = np.argsort(frame_ns, kind="stable")
            images = [images[i] for i in order]
            frame_ns = frame_ns[order]
            clock = _clock_name(frame_ns, "image file names")
        return ImageFrames(tuple(images)), _increasing(frame_ns, times_file or folder), clock
    if not videos:
        raise InputError(root, "no frames (expected rgb.txt, images/, rgb/ or video.*)")
    if len(videos) > 1:
        raise InputError(root, "more than one video file (" + ", ".join(v.name for v in videos)
                         + "); expected one")
    video = videos[0]
    check_user_file(video, str(video), root=root)
    count, own_ns, fps = _video_times(video)
    if rows is not None:
        if len(rows) != count:
            raise InputError(times_file, f"has {len(rows)} times but {video.name} holds "
                             f"{count} frames (expected one time per frame)")
        frame_ns = np.array([t for _, t, _ in rows], dtype=np.int64)
        return (VideoFrames(video), _increasing(frame_ns, times_file),
                _clock_name(frame_ns, f"{times_file.name} timestamps"))
    if own_ns is None:
        own_ns = convert.frames_at_fps(count, fps)
        notes.append(f"the video's frame times are unusable: frame i at i / {fps:g} s")
    else:
        notes.append("frame times from the video's own timestamps")
    return VideoFrames(video), own_ns, "seconds from the video's start"


def _time_rows(path: Path, root: Path) -> list[tuple[str, int, str | None]]:
    """(where, ns, filename or None) per line of a times file; one form for all lines."""
    rows = []
    width = None
    for line_no, cells in convert.read_rows(path, str(path), root=root):
        where = f"{path} line {line_no}"
        if len(cells) not in (1, 2) or (width is not None and len(cells) != width):
            raise InputError(where, "expected 'timestamp filename' or one timestamp per line, "
                             "the same on every line")
        width = len(cells)
        rows.append((where, convert.seconds_text_to_ns(cells[0], where),
                     cells[1] if len(cells) == 2 else None))
    if not rows:
        raise InputError(path, "holds no frame times")
    return rows


def _inside(root: Path, name: str, where: str) -> Path:
    relative = Path(name.replace("\\", "/"))
    if relative.is_absolute():
        raise InputError(where, f"{name!r} must be relative to the capture folder")
    path = root / relative
    real, base = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, base]) != base:
        if ".." in relative.parts:
            raise InputError(where, f"{name!r} leads outside the capture folder")
        inside_root(path, f"{where}: {name}", root)
    if not path.is_file():
        raise InputError(where, f"{name!r}: image file not found")
    return path


def _folder_images(folder: Path) -> list[Path]:
    images = sorted(
        (p for p in folder.iterdir()
         if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
        key=lambda p: convert.natural_key(p.name),
    )
    if not images:
        raise InputError(folder, "holds no PNG or JPEG images")
    for image in images:
        inside_root(image, str(image), folder.parent)
    return images


def _time_from_name(image: Path, folder: Path) -> int:
    if _DECIMAL.fullmatch(image.stem) is None:
        raise InputError(image, "no frame time: expected times.txt (or rgb.txt) beside "
                         f"{folder.name}/, or images named by their timestamp in seconds")
    return convert.seconds_text_to_ns(image.stem, str(image), "file name timestamp")


def _increasing(ns: np.ndarray, where: Path) -> np.ndarray:
    bad = np.nonzero(np.diff(ns) <= 0)[0]
    if bad.size:
        k = int(bad[0]) + 1
        raise InputError(where, f"frame {k}: time {ns[k] / 1e9:.6f} s does not increase "
                         "(expected strictly increasing frame times)")
    return ns


def _clock_name(ns: np.ndarray, source: str) -> str:
    # After 2001 in seconds since 1970: an epoch clock (TUM's); otherwise unknown origin.
    if ns[0] > 1_000_000_000 * 1_000_000_000:
        return f"Unix epoch seconds ({source})"
    return f"seconds ({source})"


def _video_times(video: Path) -> tuple[int, np.ndarray | None, float]:
    """Frame count, the video's own frame times (ns from its start; None when unusable)
    and its nominal fps."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise InputError(video, "cannot be opened as a video")
    times = []
    try:
        while capture.grab():
            times.append(capture.get(cv2.CAP_PROP_POS_MSEC))
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
    if not times:
        raise InputError(video, "the video holds no decodable frame")
    fps = fps if math.isfinite(fps) and 1 <= fps <= 240 else 30.0
    ns = np.round(np.asarray(times, dtype=np.float64) * 1e6).astype(np.int64)
    if len(ns) > 1 and not np.all(np.diff(ns) > 0):
        return len(times), None, fps
    return len(times), ns - ns[0], fps


def _image_sizes(paths: tuple[Path, ...], progress: Progress | None) -> tuple[int, int]:
    first = image_size(paths[0], str(paths[0]))
    for k, path in enumerate(paths[1:], start=1):
        size = image_size(path, str(path))
        if size != first:
            raise InputError(path, f"is {size[0]}x{size[1]}, expected {first[0]}x{first[1]} "
                             "like the first frame (all frames must have one size)")
        if progress and k % 256 == 0:
            progress(k, len(paths))
    return first


# --- camera and poses ---------------------------------------------------------------------


def _camera(root: Path, width: int, height: int, notes: list[str]) -> tuple[Intrinsics, bool]:
    """The intrinsics and whether the trajectory's camera axes are OpenCV's."""
    path = root / "camera.json"
    if path.is_file():
        return _camera_json(path, root, width, height)
    match = _SEQUENCE.search(root.resolve().name)
    if match:
        if (width, height) != (640, 480):
            raise InputError(root, f"frames are {width}x{height}; TUM's calibration is for "
                             "640x480 (give camera.json)")
        (fx, fy, cx, cy), coeffs = TUM_CAMERAS[match.group(1)]
        notes.append(f"intrinsics: TUM's published freiburg{match.group(1)} calibration")
        distortion = Distortion("radtan", coeffs) if coeffs else None
        return Intrinsics(width, height, fx, fy, cx, cy, distortion), True
    s = width / 640.0
    fx, fy, cx, cy = ROS_DEFAULT
    if (width, height) == (640, 480):
        notes.append("intrinsics unknown: the ROS default 525/525/319.5/239.5 assumed "
                     "(give camera.json)")
        return Intrinsics(width, height, fx, fy, cx, cy), True
    notes.append(f"intrinsics unknown: the ROS default focal 525 px at 640 wide scaled to "
                 f"{width}x{height}, centred (a guess; give camera.json)")
    return Intrinsics(width, height, fx * s, fy * s, (width - 1) / 2, (height - 1) / 2), True


_CAMERA_KEYS = {"width", "height", "fx", "fy", "cx", "cy", "distortion", "camera_axes"}


def _camera_json(path: Path, root: Path, width: int, height: int) -> tuple[Intrinsics, bool]:
    label = str(path)
    text = read_user_text(path, label, cap=JSON_CAP, root=root)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{label} line {exc.lineno}", f"not valid JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise InputError(label, "expected an object with fx, fy, cx, cy")
    unknown = sorted(set(doc) - _CAMERA_KEYS)
    if unknown:
        raise InputError(f"{label}: {unknown[0]}", "unknown field (expected "
                         + ", ".join(sorted(_CAMERA_KEYS)) + ")")
    values = {}
    for key in ("fx", "fy", "cx", "cy"):
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise InputError(f"{label}: {key}", f"expected a number, got {value!r}")
        values[key] = float(value)
    for key, actual in (("width", width), ("height", height)):
        if key in doc and doc[key] != actual:
            raise InputError(f"{label}: {key}", f"is {doc[key]!r} but the frames are "
                             f"{width}x{height}")
    distortion = None
    if doc.get("distortion") is not None:
        d = doc["distortion"]
        model = d.get("model") if isinstance(d, dict) else None
        coeffs = d.get("coeffs") if isinstance(d, dict) else None
        if model not in DISTORTION_MODELS or not isinstance(coeffs, list) \
                or len(coeffs) not in DISTORTION_MODELS[model] \
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                           for c in coeffs):
            raise InputError(f"{label}: distortion", "expected {\"model\": \"radtan\" (4, 5 or "
                             "8 coeffs) or \"fisheye\" (4), \"coeffs\": [numbers]}")
        distortion = Distortion(model, tuple(float(c) for c in coeffs))
    axes = doc.get("camera_axes", "opencv")
    if axes not in ("opencv", "opengl"):
        raise InputError(f"{label}: camera_axes", f"expected \"opencv\" or \"opengl\", got "
                         f"{axes!r}")
    camera = Intrinsics(width, height, values["fx"], values["fy"], values["cx"], values["cy"],
                        distortion)
    return camera, axes == "opencv"


def read_trajectory(
    path: Path, label: str, root: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A TUM trajectory: (ns, positions (N, 3), unit quaternions (N, 4) x y z w), sorted by
    time, times strictly increasing."""
    ns, positions, quats = [], [], []
    for line_no, cells in convert.read_rows(path, label, root=root):
        where = f"{label} line {line_no}"
        if len(cells) != 8:
            raise InputError(where, f"expected 8 numbers 'timestamp tx ty tz qx qy qz qw', "
                             f"got {len(cells)}")
        ns.append(convert.seconds_text_to_ns(cells[0], where))
        values = [convert.number(c, where, f) for c, f in zip(cells[1:], _FIELDS, strict=True)]
        q = np.array(values[3:])
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > 1e-2:
            raise InputError(where, f"quaternion norm is {norm:.4f}, expected a unit "
                             "quaternion qx qy qz qw")
        positions.append(values[:3])
        quats.append(q / norm)
    if len(ns) < 2:
        raise InputError(label, "expected at least two poses")
    t = np.array(ns, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t = t[order]
    if np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0)) + 1
        raise InputError(label, f"two poses share the time {t[k] / 1e9:.6f} s (expected one "
                         "pose per timestamp)")
    return t, np.array(positions)[order], np.array(quats)[order]


_FIELDS = ("tx", "ty", "tz", "qx", "qy", "qz", "qw")

IMPORTER = TumImporter()
