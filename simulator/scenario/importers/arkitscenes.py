"""ARKitScenes (Apple's indoor dataset captured with a 2020 iPad Pro): the low-resolution
wide-camera stream of one video.

Files (https://github.com/apple/ARKitScenes, DATA.md and raw/README.md), in the folder
``<video_id>_frames/`` (given directly, or its parent ``<video_id>/`` as the 3dod download
lays it out):

- ``lowres_wide/<video_id>_<timestamp>.png``: RGB frames (256x192), the timestamp in
  seconds with millisecond decimals in the name;
- ``lowres_wide_intrinsics/<video_id>_<timestamp>.pincam``: one line
  ``width height fx fy cx cy`` per frame (its name's timestamp may differ from the
  frame's by a millisecond of rounding: matched within 2 ms, as ARKitScenes' own loader
  does with ±1 ms);
- ``lowres_wide.traj``: per line ``timestamp rx ry rz tx ty tz``, the rotation as an axis-angle
  vector in radians and the translation in metres.

Conventions of the source (ARKitScenes' ``TrajStringToMatrix`` in
``threedod/benchmark_scripts/utils/tenFpsDataLoader.py`` names the rotation ``r_w_to_p`` and
inverts the matrix to get the camera pose; maintainers in apple/ARKitScenes issues #78 and
#81: world "X-right, Y-forward, Z-up", gravity aligned, camera "X-right, Y-down,
Z-forward"):

- the trajectory rows are world-to-camera: inverted (``convert.invert``);
- camera axes OpenCV: turned to the scenario's (y up, −z forward) with
  ``convert.camera_cv_to_gl``;
- world z up (the laser scanner's frame): rotated to y up (``--up`` overrides);
- clock: ARKit frame timestamps in seconds (the device's uptime clock), read exactly;
  poses are interpolated at the frame times by the writer;
- intrinsics per frame (ARKit reports them per frame): ``intrinsics.csv`` when they vary.
"""

from __future__ import annotations

import re
from itertools import pairwise
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
from simulator.types import Intrinsics

STREAM = "lowres_wide"
TRAJ = "lowres_wide.traj"
_NAME = re.compile(r"(.+)_(\d+(?:\.\d+)?)\.(png|pincam)")
INTRINSICS_MAX_DIFF_NS = 2_000_000


class ArkitScenesImporter:
    name = "arkitscenes"
    description = ("ARKitScenes video: <video_id>_frames/ with lowres_wide/*.png, "
                   "lowres_wide_intrinsics/*.pincam and lowres_wide.traj")

    def why_not(self, src: Path) -> str | None:
        folder = _frames_folder(Path(src))
        if folder is None:
            return (f"no {STREAM}/ and {TRAJ} (expected an ARKitScenes <video_id>_frames/ "
                    "folder or its parent)")
        return None

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        folder = _frames_folder(Path(src))
        if folder is None:  # registry checked why_not; a folder changed since
            raise InputError(src, f"no {STREAM}/ and {TRAJ}")
        images = _stamped_files(folder / STREAM, ".png", folder)
        if not images:
            raise InputError(folder / STREAM, "holds no <video_id>_<timestamp>.png frames")
        frame_ns = np.array([t for t, _ in images], dtype=np.int64)
        paths = tuple(p for _, p in images)
        video_ids = {_NAME.fullmatch(p.name).group(1) for p in paths}

        intrinsics = _intrinsics(folder, frame_ns, paths)
        width, height = (int(v) for v in intrinsics[0, :2])
        if np.any(intrinsics[:, :2] != intrinsics[0, :2]):
            k = int(np.argmax(np.any(intrinsics[:, :2] != intrinsics[0, :2], axis=1)))
            raise InputError(paths[k], "its .pincam size differs from the first frame's "
                             "(expected one image size)")
        for k, path in enumerate(paths):
            size = image_size(path, str(path))
            if size != (width, height):
                raise InputError(path, f"is {size[0]}x{size[1]}, expected {width}x{height} "
                                 "as its .pincam says")
            if progress and k % 256 == 0:
                progress(k, len(paths))
        matrix = intrinsics[:, 2:]
        camera = Intrinsics(width, height, *(float(v) for v in matrix[0]))
        per_frame = matrix if np.ptp(matrix, axis=0).max() > 1e-9 else None

        pose_ns, rot_w2c, t_w2c = _trajectory(folder / TRAJ, folder)
        rotations, positions = convert.invert(rot_w2c, t_w2c)
        convert.check_rotations(rotations, str(folder / TRAJ))
        rotations = convert.camera_cv_to_gl(rotations)
        up_text = options.up or "+z"
        rotations, positions, world = convert.level_world(
            rotations, positions, convert.axis_vector(up_text))
        notes = [
            f"{TRAJ} rows are world-to-camera (axis-angle): inverted",
            f"world up {up_text}" + (" (--up)" if options.up else " (ARKitScenes' laser-scan "
                                     "world, gravity aligned)"),
            "poses interpolated at the frame times",
        ]
        return Recording(
            format=self.name,
            camera=camera,
            frames=ImageFrames(paths),
            frame_ns=frame_ns,
            poses=PoseTrack(pose_ns, positions, convert.matrix_to_quat(rotations)),
            intrinsics=per_frame,
            metric=True,
            device="iPad Pro (ARKitScenes)",
            app="ARKitScenes " + ", ".join(sorted(video_ids)),
            axes=("trajectory inverted (world-to-camera -> camera-to-world); camera axes "
                  "OpenCV (x right, y down, +z forward) -> y up, -z forward; "
                  + convert.describe_rotation(world) + " to make world up +y"),
            clock="ARKit timestamps, seconds (device uptime)",
            notes=notes,
        )


def _frames_folder(src: Path) -> Path | None:
    """The ``<video_id>_frames`` folder: ``src`` itself or its only ``*_frames`` child."""
    if not src.is_dir():
        return None
    if (src / STREAM).is_dir() and (src / TRAJ).is_file():
        return src
    children = [c for c in src.glob("*_frames")
                if (c / STREAM).is_dir() and (c / TRAJ).is_file()]
    return children[0] if len(children) == 1 else None


def _stamped_files(folder: Path, suffix: str, root: Path) -> list[tuple[int, Path]]:
    """(ns, path) of ``<video_id>_<timestamp><suffix>`` files, sorted by time."""
    if not folder.is_dir():
        raise InputError(folder, "folder not found")
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or path.suffix != suffix:
            continue
        match = _NAME.fullmatch(path.name)
        if not match:
            raise InputError(path, f"expected a name <video_id>_<timestamp>{suffix}")
        inside_root(path, str(path), root)
        found.append((convert.seconds_text_to_ns(match.group(2), str(path)), path))
    found.sort()
    for (a, pa), (b, _) in pairwise(found):
        if a == b:
            raise InputError(pa, "two files share its timestamp")
    return found


def _intrinsics(folder: Path, frame_ns: np.ndarray, paths: tuple[Path, ...]) -> np.ndarray:
    """(N, 6) ``w h fx fy cx cy`` per frame from the matching ``.pincam`` files."""
    pincams = _stamped_files(folder / f"{STREAM}_intrinsics", ".pincam", folder)
    if not pincams:
        raise InputError(folder / f"{STREAM}_intrinsics", "holds no .pincam files")
    cam_ns = np.array([t for t, _ in pincams], dtype=np.int64)
    pairs = dict(convert.associate(frame_ns, cam_ns, INTRINSICS_MAX_DIFF_NS))
    out = np.empty((len(frame_ns), 6))
    for i in range(len(frame_ns)):
        if i not in pairs:
            raise InputError(paths[i], f"no {STREAM}_intrinsics/*.pincam within 2 ms of its "
                             "timestamp")
        path = pincams[pairs[i]][1]
        cells = read_user_text(path, str(path), root=folder).split()
        if len(cells) != 6:
            raise InputError(path, "expected one line 'width height fx fy cx cy'")
        values = [convert.number(c, str(path), f)
                  for c, f in zip(cells, ("width", "height", "fx", "fy", "cx", "cy"),
                                  strict=True)]
        if values[0] != int(values[0]) or values[1] != int(values[1]) or min(values[:4]) <= 0:
            raise InputError(path, "expected a positive integer width and height and focal "
                             "lengths > 0")
        out[i] = values
    return out


def _trajectory(path: Path, root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ns, world-to-camera rotations (N, 3, 3), translations (N, 3))."""
    label = str(path)
    ns, rotvecs, translations = [], [], []
    for line_no, cells in convert.read_rows(path, label, root=root):
        where = f"{label} line {line_no}"
        if len(cells) != 7:
            raise InputError(where, "expected 7 numbers 'timestamp rx ry rz tx ty tz' "
                             f"(axis-angle rotation, translation), got {len(cells)}")
        ns.append(convert.seconds_text_to_ns(cells[0], where))
        values = [convert.number(c, where, f)
                  for c, f in zip(cells[1:], ("rx", "ry", "rz", "tx", "ty", "tz"), strict=True)]
        rotvecs.append(values[:3])
        translations.append(values[3:])
    if len(ns) < 2:
        raise InputError(label, "expected at least two poses")
    t = np.array(ns, dtype=np.int64)
    bad = np.nonzero(np.diff(t) <= 0)[0]
    if bad.size:
        raise InputError(label, f"pose {int(bad[0]) + 1}: timestamps must increase strictly")
    return t, convert.axis_angle_to_matrix(np.array(rotvecs)), np.array(translations)


IMPORTER = ArkitScenesImporter()
