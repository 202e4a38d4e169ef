"""Stray Scanner (iOS app by Kenneth Blomqvist / Stray Robots): its export folder.

Files (docs/format.md and StrayScanner/Helpers/*Encoder.swift in github.com/strayrobots/scanner):

- ``rgb.mp4``: HEVC video of ``ARFrame.capturedImage``, the sensor's landscape image
  (1920x1440 on most iPhones), no rotation metadata, one video frame per saved ARFrame;
- ``odometry.csv``: header ``timestamp, frame, x, y, z, qx, qy, qz, qw`` then one row per
  video frame: ``ARFrame.timestamp`` (seconds since the phone booted), the frame number
  (``000005``, counting the video's frames), the camera position in ARKit's world (metres,
  y up, gravity-aligned) and a rotation quaternion. The app writes ``q_WA * q_AC`` with
  ``q_AC`` a half turn about x: the ARKit camera turned into an OpenCV-style camera (y down,
  looking down +z). Newer builds append ``fx, fy, cx, cy`` (per-frame intrinsics of the
  colour image) and ``distortion_center_x/y``;
- ``camera_matrix.csv``: the 3x3 intrinsics of the colour image (of the last frame);
- ``imu.csv``, ``depth/``, ``confidence/``: not carried (the scenario has no IMU or depth).

The importer maps row ``frame`` to video frame ``frame - first frame``, turns the camera
back to ARKit's axes (``camera_cv_to_gl``), keeps the world as it is (already y up), uses
the rows' times as frame and pose times (ns on the boot clock) and scales the camera matrix
if the video was re-encoded at another size.
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
from simulator.scenario.importers.convert import (
    camera_cv_to_gl,
    matrix_to_quat,
    number,
    quat_to_matrix,
    read_rows,
    seconds_text_to_ns,
)
from simulator.scenario.video import frame_size
from simulator.types import Intrinsics

VIDEO = "rgb.mp4"
ODOMETRY = "odometry.csv"
CAMERA_MATRIX = "camera_matrix.csv"
_COLUMNS = ("timestamp", "frame", "x", "y", "z", "qx", "qy", "qz", "qw")
_INTRINSIC_COLUMNS = ("fx", "fy", "cx", "cy")
_FRAME = re.compile(r"\d{1,9}")
# Capture widths ARKit delivers (capturedImage), to tell a re-encoded video's scale exactly.
_CAPTURE_WIDTHS = (640, 1280, 1440, 1920, 2560, 3840, 4032, 4096)


class StrayScannerImporter:
    name = "stray_scanner"
    description = "Stray Scanner (iOS) export folder: rgb.mp4, odometry.csv, camera_matrix.csv"

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if not src.is_dir():
            return "not a folder (an export is a folder with rgb.mp4 and odometry.csv)"
        missing = [n for n in (VIDEO, ODOMETRY, CAMERA_MATRIX) if not (src / n).is_file()]
        if missing:
            return "no " + ", ".join(missing)
        return None

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        video = src / VIDEO
        check_user_file(video, str(video), root=src)
        rows = _read_odometry(src)
        matrix = _read_camera_matrix(src)
        width, height = frame_size(video, str(video))
        scale, scale_note = _matrix_scale(matrix, width, height, src / CAMERA_MATRIX)
        fx, fy, cx, cy = (v * scale for v in matrix)
        camera = Intrinsics(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy)
        notes = ["frame and pose times are the odometry rows' ARFrame timestamps",
                 "depth/, confidence/ and imu.csv not carried"]
        if scale_note:
            notes.append(scale_note)

        first = rows.frames[0]
        indices = tuple(int(f - first) for f in rows.frames)
        contiguous = indices == tuple(range(len(indices)))
        if first:
            notes.append(f"frame numbers start at {first}: row frame {first} is video frame 0")
        if not contiguous:
            notes.append(f"odometry.csv skips frame numbers: {len(indices)} of the video's "
                         f"first {indices[-1] + 1} frames kept")
        intrinsics = None
        if rows.intrinsics is not None:
            per_frame = rows.intrinsics * scale
            if np.ptp(per_frame, axis=0).max() > 1e-3:
                intrinsics = per_frame
                notes.append("per-frame intrinsics from odometry.csv fx, fy, cx, cy")

        rotations = camera_cv_to_gl(quat_to_matrix(rows.quaternions))
        poses = PoseTrack(ns=rows.ns, positions=rows.positions,
                          quaternions=matrix_to_quat(rotations))
        return Recording(
            format=self.name,
            camera=camera,
            frames=VideoFrames(video, keep=None if contiguous else indices),
            frame_ns=rows.ns,
            poses=poses,
            intrinsics=intrinsics,
            metric=True,
            app="Stray Scanner",
            axes="camera turned from the file's OpenCV-style axes (y down, looking down +z: "
                 "ARKit's camera times a half turn about x) back to ARKit's; world kept "
                 "(ARKit, y up)",
            clock="seconds since the phone booted (ARFrame.timestamp)",
            notes=notes,
        )


class _Odometry:
    def __init__(self, ns: list[int], frames: list[int], positions: list[list[float]],
                 quaternions: list[list[float]], intrinsics: list[list[float]] | None) -> None:
        self.ns = np.array(ns, dtype=np.int64)
        self.frames = frames
        self.positions = np.array(positions, dtype=np.float64).reshape(-1, 3)
        self.quaternions = np.array(quaternions, dtype=np.float64).reshape(-1, 4)
        self.intrinsics = (np.array(intrinsics, dtype=np.float64).reshape(-1, 4)
                           if intrinsics is not None else None)


def _read_odometry(src: Path) -> _Odometry:
    path = src / ODOMETRY
    label = str(path)
    table = read_rows(path, label, delimiter=",", comment="", root=src)
    if not table:
        raise InputError(label, "is empty; expected the header "
                         + ", ".join(_COLUMNS) + " and one row per video frame")
    header_line, header = table[0]
    names = [c.lower() for c in header]
    missing = [c for c in _COLUMNS if c not in names]
    if missing:
        raise InputError(f"{label} line {header_line}",
                         f"header lacks {', '.join(missing)}; expected "
                         + ", ".join(_COLUMNS))
    col = {name: names.index(name) for name in (*_COLUMNS, *_INTRINSIC_COLUMNS) if name in names}
    has_k = all(c in col for c in _INTRINSIC_COLUMNS)
    ns: list[int] = []
    frames: list[int] = []
    positions: list[list[float]] = []
    quats: list[list[float]] = []
    intrinsics: list[list[float]] | None = [] if has_k else None
    for line_no, cells in table[1:]:
        where = f"{label} line {line_no}"
        if len(cells) != len(names):
            raise InputError(where, f"{len(cells)} values, expected {len(names)} like the "
                             "header (" + ", ".join(header) + ")")
        t = seconds_text_to_ns(cells[col["timestamp"]], where, "timestamp")
        frame_text = cells[col["frame"]]
        if not _FRAME.fullmatch(frame_text):
            raise InputError(where, f"frame must be a frame number such as 000005, got "
                             f"{frame_text[:20]!r}")
        frame = int(frame_text)
        if frames and frame <= frames[-1]:
            raise InputError(where, f"frame {frame} after frame {frames[-1]}; expected "
                             "increasing frame numbers")
        if ns and t <= ns[-1]:
            raise InputError(where, "timestamp does not increase (expected strictly "
                             "increasing seconds)")
        xyz = [number(cells[col[c]], where, c) for c in ("x", "y", "z")]
        q = [number(cells[col[c]], where, c) for c in ("qx", "qy", "qz", "qw")]
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > 1e-2:
            raise InputError(where, f"quaternion qx, qy, qz, qw has norm {norm:.4g}; expected "
                             "a unit quaternion")
        if intrinsics is not None:
            k = [number(cells[col[c]], where, c) for c in _INTRINSIC_COLUMNS]
            if k[0] <= 0 or k[1] <= 0:
                raise InputError(where, "fx and fy must be > 0")
            intrinsics.append(k)
        ns.append(t)
        frames.append(frame)
        positions.append(xyz)
        quats.append(q)
    if len(ns) < 2:
        raise InputError(label, f"{len(ns)} pose rows; expected one per video frame "
                         "(at least two)")
    return _Odometry(ns, frames, positions, quats, intrinsics)


def _read_camera_matrix(src: Path) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of the 3x3 row-major camera matrix."""
    path = src / CAMERA_MATRIX
    label = str(path)
    table = read_rows(path, label, delimiter=",", root=src)
    if len(table) != 3 or any(len(cells) != 3 for _, cells in table):
        raise InputError(label, "expected a 3x3 camera matrix: 3 lines of 3 comma-separated "
                         "numbers")
    m = np.array([[number(c, f"{label} line {n}", "matrix entry") for c in cells]
                  for n, cells in table])
    fx, fy, cx, cy = float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2])
    if (fx <= 0 or fy <= 0 or cx <= 0 or cy <= 0 or abs(m[1, 0]) > 1e-6
            or np.abs(m[2] - [0, 0, 1]).max() > 1e-6):
        raise InputError(label, "expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy, "
                         "cx, cy > 0")
    return fx, fy, cx, cy


def _matrix_scale(
    matrix: tuple[float, float, float, float], width: int, height: int, path: Path
) -> tuple[float, str]:
    """The factor taking the camera matrix to the decoded video's size (1 when the video is
    the size the matrix describes, as the app writes it) and a note when it is not 1."""
    _, _, cx, cy = matrix
    sx, sy = width / (2 * cx), height / (2 * cy)
    if abs(sx - 1) < 0.15 and abs(sy - 1) < 0.15:
        return 1.0, ""
    if abs(width / (2 * cy) - 1) < 0.15 and abs(height / (2 * cx) - 1) < 0.15:
        raise InputError(path, f"describes a {2 * cx:.0f}x{2 * cy:.0f} image but {VIDEO} "
                         f"decodes as {width}x{height} (turned a quarter): expected the "
                         "video as the app writes it, in the sensor's orientation")
    if abs(sx / sy - 1) > 0.1:
        raise InputError(path, f"principal point ({cx:g}, {cy:g}) does not fit the "
                         f"{width}x{height} video (expected the matrix of its frames)")
    nearest = min(_CAPTURE_WIDTHS, key=lambda w: abs(w - 2 * cx))
    scale = width / nearest if abs(nearest / (2 * cx) - 1) < 0.1 else (sx + sy) / 2
    return scale, (f"camera matrix scaled by {scale:.6g} to the {width}x{height} video "
                   f"(it describes a {width / scale:.0f}-pixel-wide capture)")


IMPORTER = StrayScannerImporter()
