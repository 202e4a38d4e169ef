"""ios_logger (github.com/Varvrar/ios_logger): a dataset folder of the iOS logging app.

Files (README "Dataset format" and ios_logger/ViewController.mm of that repository):

- ``Frames.m4v``: HEVC video of the camera's pixel buffers (``ARFrame.capturedImage`` in
  ARKit mode: the sensor's landscape image), no rotation metadata;
- ``Frames.txt``: one line per video frame, ``time,frameNumber[,fx,fy,cx,cy]``: the capture
  time, the frame number (from 0 since September 2020, from 1 before) and, when the camera
  delivered them, that frame's intrinsics (they change with autofocus);
- ``ARposes.txt`` (ARKit mode only): one line per ARFrame,
  ``time,x,y,z,qw,qx,qy,qz``: ``ARFrame.camera.transform`` as it is, camera-to-world in
  ARKit's convention (world y up, camera looking down −z), metres, quaternion **w first**;
- ``Accel.txt``, ``Gyro.txt``, ``GPS.txt``, ``Motion.txt`` ...: not carried.

Times are seconds with microseconds (``%f``) on the Unix epoch clock: the app adds the boot
time (now − uptime) to every sensor timestamp. Lines end with CR LF.

The importer reads frame ``k`` of the video as the ``k``-th line of ``Frames.txt`` (frame
numbers relative to the first), poses as they are (the axes are already the scenario's),
reorders the quaternion to x y z w, and keeps per-frame intrinsics when they vary. Without
``ARposes.txt`` the video is imported without poses; without intrinsics in ``Frames.txt``
a nominal camera is assumed (noted).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import check_user_file
from simulator.scenario.importers.base import (
    ImportOptions,
    PoseTrack,
    Progress,
    Recording,
    VideoFrames,
)
from simulator.scenario.importers.convert import number, read_rows, seconds_text_to_ns
from simulator.scenario.video import frame_size
from simulator.types import Intrinsics

VIDEO = "Frames.m4v"
FRAMES = "Frames.txt"
POSES = "ARposes.txt"
_INTEGER = re.compile(r"\d{1,9}")
# Assumed when Frames.txt has no intrinsics: the horizontal field of view of a phone's
# main camera (about 65 degrees).
_NOMINAL_HFOV_DEG = 65.0


class IosLoggerImporter:
    name = "ios_logger"
    description = "ios_logger (iOS) dataset folder: Frames.m4v, Frames.txt, ARposes.txt"

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if not src.is_dir():
            return "not a folder (a dataset is a folder with Frames.m4v and Frames.txt)"
        missing = [n for n in (VIDEO, FRAMES) if not (src / n).is_file()]
        if missing:
            return "no " + ", ".join(missing)
        return None

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        video = src / VIDEO
        check_user_file(video, str(video), root=src)
        frame_ns, intrinsics, first_number = _read_frames(src)
        width, height = frame_size(video, str(video))
        notes = [f"frame k of {VIDEO} is line k of {FRAMES}",
                 "Accel, Gyro, GPS, Motion and Magnet logs not carried"]
        if first_number:
            notes.append(f"frame numbers start at {first_number} (app versions before "
                         "September 2020 count from 1)")
        per_frame = None
        if intrinsics is not None:
            fx, fy, cx, cy = (float(v) for v in intrinsics[0])
            if np.ptp(intrinsics, axis=0).max() > 1e-3:
                per_frame = intrinsics
                notes.append("per-frame intrinsics from Frames.txt (autofocus)")
            if cx > width or cy > height:
                raise InputError(src / FRAMES, f"principal point ({cx:g}, {cy:g}) lies outside "
                                 f"the {width}x{height} frames of {VIDEO}")
        else:
            fx = fy = width / 2 / np.tan(np.radians(_NOMINAL_HFOV_DEG) / 2)
            cx, cy = width / 2, height / 2
            notes.append(f"{FRAMES} holds no intrinsics: assumed a {_NOMINAL_HFOV_DEG:g} "
                         "degree horizontal field of view, principal point at the centre")
        camera = Intrinsics(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy)
        poses = None
        if (src / POSES).exists():
            poses = _read_poses(src)
        else:
            notes.append(f"no {POSES} (recorded without ARKit): no poses")
        return Recording(
            format=self.name,
            camera=camera,
            frames=VideoFrames(video),
            frame_ns=frame_ns,
            poses=poses,
            intrinsics=per_frame,
            metric=True,
            app="ios_logger",
            axes="none: ARposes.txt holds ARKit's camera.transform (camera-to-world, y up, "
                 "camera looking down -z); quaternion reordered from w x y z to x y z w",
            clock="Unix epoch seconds (the app adds the boot time to ARKit's uptime "
                  "timestamps)",
            notes=notes,
        )


def _read_frames(src: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Frame times (ns), per-frame (fx, fy, cx, cy) or None, the first frame number."""
    path = src / FRAMES
    label = str(path)
    table = read_rows(path, label, delimiter=",", root=src)
    ns: list[int] = []
    k: list[list[float]] = []
    numbers: list[int] = []
    columns = None
    for line_no, cells in table:
        where = f"{label} line {line_no}"
        if len(cells) not in (2, 6):
            raise InputError(where, f"{len(cells)} values; expected time,frameNumber or "
                             "time,frameNumber,fx,fy,cx,cy")
        if columns is None:
            columns = len(cells)
        elif len(cells) != columns:
            raise InputError(where, f"{len(cells)} values where the lines before have "
                             f"{columns}")
        t = seconds_text_to_ns(cells[0], where, "time")
        if not _INTEGER.fullmatch(cells[1]):
            raise InputError(where, f"frameNumber must be an integer, got {cells[1][:20]!r}")
        frame = int(cells[1])
        if numbers and frame != numbers[-1] + 1:
            raise InputError(where, f"frameNumber {frame} after {numbers[-1]}; expected "
                             "consecutive frame numbers (one line per video frame)")
        if ns and t <= ns[-1]:
            raise InputError(where, "time does not increase (expected strictly increasing "
                             "seconds)")
        if columns == 6:
            values = [number(c, where, n) for c, n in zip(cells[2:], ("fx", "fy", "cx", "cy"),
                                                           strict=True)]
            if min(values) <= 0:
                raise InputError(where, "fx, fy, cx and cy must be > 0")
            k.append(values)
        ns.append(t)
        numbers.append(frame)
    if not ns:
        raise InputError(label, "holds no frame lines; expected time,frameNumber,fx,fy,cx,cy "
                         "per video frame")
    intrinsics = np.array(k, dtype=np.float64) if columns == 6 else None
    return np.array(ns, dtype=np.int64), intrinsics, numbers[0]


def _read_poses(src: Path) -> PoseTrack:
    path = src / POSES
    label = str(path)
    table = read_rows(path, label, delimiter=",", root=src)
    ns: list[int] = []
    positions: list[list[float]] = []
    quats: list[list[float]] = []
    for line_no, cells in table:
        where = f"{label} line {line_no}"
        if len(cells) != 8:
            raise InputError(where, f"{len(cells)} values; expected 8: time,x,y,z,qw,qx,qy,qz")
        t = seconds_text_to_ns(cells[0], where, "time")
        if ns and t <= ns[-1]:
            raise InputError(where, "time does not increase (expected strictly increasing "
                             "seconds)")
        xyz = [number(c, where, n) for c, n in zip(cells[1:4], "xyz", strict=True)]
        qw, qx, qy, qz = (number(c, where, n) for c, n in zip(cells[4:], ("qw", "qx", "qy", "qz"),
                                                               strict=True))
        norm = float(np.linalg.norm([qw, qx, qy, qz]))
        if abs(norm - 1.0) > 1e-2:
            raise InputError(where, f"quaternion qw, qx, qy, qz has norm {norm:.4g}; expected "
                             "a unit quaternion")
        ns.append(t)
        positions.append(xyz)
        quats.append([qx / norm, qy / norm, qz / norm, qw / norm])
    if len(ns) < 2:
        raise InputError(label, f"{len(ns)} pose lines; expected one per ARKit frame (at "
                         "least two)")
    return PoseTrack(ns=np.array(ns, dtype=np.int64), positions=np.array(positions),
                     quaternions=np.array(quats))


IMPORTER = IosLoggerImporter()
