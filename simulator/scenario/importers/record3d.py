"""Record3D (iOS app by Marek Šimoník): a ``.r3d`` export, or the folder it unzips to.

A ``.r3d`` is a zip archive (github.com/marek-simonik/record3d issues #27, #33, #64; the
readers in nerfstudio ``process_data/record3d_utils.py`` and codekansas/usa ``r3d.py``):

- ``metadata``: JSON. ``w``, ``h``: size of the colour images; ``K``: their 3x3 camera matrix
  as 9 numbers, column-major (``[fx, 0, 0, 0, fy, 0, cx, cy, 1]``; a row-major matrix is
  recognised too); ``fps``; ``poses``: one ``[qx, qy, qz, qw, px, py, pz]`` per frame,
  camera-to-world in the OpenGL / ARKit camera convention (y up, looking down −z), metres;
  newer versions add ``frameTimestamps`` (seconds, one per frame) and
  ``perFrameIntrinsicCoeffs`` (``[fx, fy, cx, cy]`` per frame); ``dw``, ``dh``: depth size;
- ``rgbd/0.jpg``, ``rgbd/1.jpg`` ...: the colour frames (portrait or landscape as recorded;
  ``K`` and the poses describe them as stored), ``rgbd/N.depth`` / ``.conf``: LZFSE depth and
  confidence (not carried).

Record3D's world is, in the versions its author describes, the first camera's own frame
(the first pose is the identity), not gravity-aligned: then the world is levelled so that
the cameras' mean up becomes +y (``estimate_up``; ``--up`` overrides). A first pose that is
not the identity is taken as ARKit's world (y up), kept. Frame times are ``frameTimestamps``
when present, else ``i / fps``. A capture whose poses are all equal (the selfie camera: no
tracking) is imported without poses. The JPEGs are extracted unchanged into a temporary
folder (removed with the ``Recording``) and copied into the scenario as they are; members
are matched by exact name, counted and size-capped, never used as paths.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tempfile
import weakref
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import JSON_CAP, MB, check_user_file, open_user_file, read_user_bytes
from simulator.scenario.importers.base import (
    ImageFrames,
    ImportOptions,
    PoseTrack,
    Progress,
    Recording,
)
from simulator.scenario.importers.convert import (
    axis_vector,
    describe_rotation,
    estimate_up,
    frames_at_fps,
    level_world,
    matrix_to_quat,
    number,
    quat_to_matrix,
    seconds_text_to_ns,
)
from simulator.scenario.video import image_size
from simulator.types import Intrinsics

METADATA = "metadata"
_JPEG = re.compile(r"rgbd/(\d{1,7})\.jpg")
MAX_MEMBERS = 500_000  # three per frame: over an hour at 60 fps
MAX_IMAGE_BYTES = 64 * MB  # one colour JPEG
MAX_TOTAL_BYTES = 32 * 1024 * MB  # all the JPEGs extracted
MAX_RATIO = 200  # uncompressed : compressed, per member read
_CHUNK = 1 << 20


class Record3DImporter:
    name = "record3d"
    description = "Record3D (iOS) .r3d export (a zip: metadata, rgbd/N.jpg) or its folder"

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if src.is_dir():
            if (src / METADATA).is_file() and (src / "rgbd").is_dir():
                return None
            return "no metadata file and rgbd/ folder"
        if not src.is_file():
            return "not a file or folder"
        try:
            if not zipfile.is_zipfile(src):
                return "not a zip archive (.r3d)"
            with zipfile.ZipFile(src) as archive:
                names = set(archive.namelist())
        except (OSError, zipfile.BadZipFile, ValueError, EOFError):
            return "not a readable zip archive (.r3d)"
        if METADATA not in names or "rgbd/0.jpg" not in names:
            return "zip without metadata and rgbd/0.jpg"
        return None

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        if src.is_dir():
            meta = _parse_metadata(read_user_bytes(src / METADATA, str(src / METADATA),
                                                   cap=JSON_CAP, root=src), str(src / METADATA))
            count = _frame_count(_folder_jpegs(src), len(meta.poses), str(src / "rgbd"))
            paths = []
            for i in range(count):
                path = src / "rgbd" / f"{i}.jpg"
                check_user_file(path, str(path), root=src)
                paths.append(path)
            return self._recording(meta, tuple(paths), count, options, None)
        handle = open_user_file(src, str(src))
        with handle:
            try:
                archive = zipfile.ZipFile(handle)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise InputError(src, f"not a readable zip archive ({exc})") from None
            with archive:
                infos = archive.infolist()
                if len(infos) > MAX_MEMBERS:
                    raise InputError(src, f"{len(infos)} members, at most {MAX_MEMBERS} are "
                                     "allowed")
                by_name: dict[str, zipfile.ZipInfo] = {}
                for info in infos:
                    if info.filename in by_name:
                        raise InputError(f"{src}:{info.filename[:200]}", "duplicate member")
                    by_name[info.filename] = info
                if METADATA not in by_name:
                    raise InputError(src, "no metadata member (expected a Record3D .r3d)")
                label = f"{src}:{METADATA}"
                meta = _parse_metadata(_member_bytes(archive, by_name[METADATA], label,
                                                     JSON_CAP), label)
                jpegs = {int(m.group(1)): name for name in by_name
                         if (m := _JPEG.fullmatch(name))}
                count = _frame_count(jpegs, len(meta.poses), f"{src}:rgbd/")
                folder = Path(tempfile.mkdtemp(prefix="arsim-r3d-"))
                try:
                    paths = _extract_jpegs(archive, [by_name[jpegs[i]] for i in range(count)],
                                           folder, str(src), progress)
                    recording = self._recording(meta, paths, count, options, src)
                except BaseException:
                    shutil.rmtree(folder, ignore_errors=True)
                    raise
        # the extracted frames live as long as the Recording (and never past the process)
        weakref.finalize(recording, shutil.rmtree, str(folder), True)
        return recording

    def _recording(self, meta: _Metadata, paths: tuple[Path, ...], count: int,
                   options: ImportOptions, archive: Path | None) -> Recording:
        notes = ["rgbd/*.depth and *.conf (LiDAR depth) not carried"]
        if len(meta.poses) > count:
            notes.append(f"metadata has {len(meta.poses)} poses for {count} images: the "
                         "extra poses ignored")
        where = f"{archive}:rgbd/0.jpg" if archive else str(paths[0])
        width, height = image_size(paths[0], where)
        fx, fy, cx, cy = meta.k
        if (width, height) != (meta.w, meta.h):
            if abs(width * meta.h - height * meta.w) > max(width, height):
                raise InputError(where, f"is {width}x{height} but metadata w, h say "
                                 f"{meta.w}x{meta.h} (expected the same size or shape)")
            notes.append(f"camera matrix scaled from metadata's {meta.w}x{meta.h} to the "
                         f"{width}x{height} images")
        sx, sy = width / meta.w, height / meta.h
        camera = Intrinsics(width=width, height=height, fx=fx * sx, fy=fy * sy,
                            cx=cx * sx, cy=cy * sy)
        intrinsics = None
        if meta.per_frame is not None:
            per_frame = meta.per_frame[:count] * [sx, sy, sx, sy]
            if np.ptp(per_frame, axis=0).max() > 1e-3:
                intrinsics = per_frame
                notes.append("per-frame intrinsics from perFrameIntrinsicCoeffs")

        if meta.timestamps is not None:
            frame_ns = meta.timestamps[:count]
            clock = "Record3D frameTimestamps (seconds; the phone's ARKit clock)"
            fps = None
        else:
            fps = options.fps or meta.fps
            if fps is None:
                raise InputError(f"{archive or paths[0].parent.parent}:{METADATA}",
                                 "no frameTimestamps and no fps: give the frame rate with --fps")
            frame_ns = frames_at_fps(count, fps)
            clock = f"none in the file: frame i at i / {fps:g} s (metadata fps)"
            notes.append("no frameTimestamps: frames spaced evenly at the metadata's fps")

        poses_q = meta.poses[:count, :4]
        positions = meta.poses[:count, 4:]
        poses = None
        axes = "none (no poses)"
        if np.ptp(meta.poses[:count], axis=0).max() < 1e-9:
            notes.append("all poses equal (a capture without tracking, e.g. the selfie "
                         "camera): imported without poses")
        else:
            rotations = quat_to_matrix(poses_q)
            first_identity = (np.abs(rotations[0] - np.eye(3)).max() < 1e-4
                              and np.abs(positions[0]).max() < 1e-6)
            if options.up is not None:
                up = axis_vector(options.up)
                rotations, positions, w = level_world(rotations, positions, up)
                axes = f"world up {options.up} (--up) turned to +y: {describe_rotation(w)}"
            elif first_identity:
                up = estimate_up(rotations)
                rotations, positions, w = level_world(rotations, positions, up)
                axes = ("camera axes kept (OpenGL: y up, looking down -z); the world is the "
                        "first camera's frame, levelled so the cameras' mean up is +y: "
                        + describe_rotation(w))
            else:
                axes = "none: OpenGL / ARKit camera-to-world poses, world kept (y up)"
            poses = PoseTrack(ns=frame_ns, positions=np.asarray(positions, dtype=np.float64),
                              quaternions=matrix_to_quat(rotations))
        return Recording(
            format=self.name,
            camera=camera,
            frames=ImageFrames(paths),
            frame_ns=frame_ns,
            poses=poses,
            intrinsics=intrinsics,
            metric=True,
            fps=fps,
            app="Record3D",
            axes=axes,
            clock=clock,
            notes=notes,
        )


class _Metadata:
    def __init__(self, w: int, h: int, k: tuple[float, float, float, float],
                 fps: float | None, poses: np.ndarray, timestamps: np.ndarray | None,
                 per_frame: np.ndarray | None) -> None:
        self.w, self.h, self.k, self.fps = w, h, k, fps
        self.poses, self.timestamps, self.per_frame = poses, timestamps, per_frame


def _parse_metadata(data: bytes, label: str) -> _Metadata:
    def refuse(constant: str) -> Any:
        raise InputError(label, f"{constant} is not JSON (expected finite numbers)")

    try:
        # decimals kept as text: exact nanosecond timestamps from seconds
        meta = json.loads(data.decode("utf-8-sig"), parse_float=str, parse_constant=refuse)
    except UnicodeDecodeError:
        raise InputError(label, "not UTF-8 JSON text") from None
    except json.JSONDecodeError as exc:
        raise InputError(label, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(meta, dict):
        raise InputError(label, "expected a JSON object")

    def num(value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InputError(label, f"{field} must be a number, got {str(value)[:40]}")
        return number(str(value), label, field)

    def array(field: str, width: int) -> list[list[float]]:
        rows = meta.get(field)
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == width
                                                 for r in rows):
            raise InputError(label, f"{field} must be a list of {width}-number lists")
        return [[num(v, f"{field}[{i}]") for v in row] for i, row in enumerate(rows)]

    sizes = []
    for field in ("w", "h"):
        value = meta.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16384:
            raise InputError(label, f"{field} must be the image {('width', 'height')[len(sizes)]}"
                             f" in pixels, got {str(value)[:40]}")
        sizes.append(value)
    flat = meta.get("K")
    if not isinstance(flat, list) or len(flat) != 9:
        raise InputError(label, "K must be the 3x3 camera matrix as 9 numbers")
    k = [num(v, f"K[{i}]") for i, v in enumerate(flat)]
    if abs(k[2]) < 1e-9 and abs(k[5]) < 1e-9:  # column-major, as Record3D writes it
        fx, fy, cx, cy = k[0], k[4], k[6], k[7]
    elif abs(k[6]) < 1e-9 and abs(k[7]) < 1e-9:  # row-major
        fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    else:
        raise InputError(label, "K is not a camera matrix [fx, 0, 0, 0, fy, 0, cx, cy, 1]")
    if min(fx, fy, cx, cy) <= 0 or abs(k[8] - 1) > 1e-6:
        raise InputError(label, "K must have fx, fy, cx, cy > 0 and a last entry of 1")
    fps = None
    if meta.get("fps") is not None:
        fps = num(meta["fps"], "fps")
        if not 1 <= fps <= 240:
            raise InputError(label, f"fps is {fps:g}; expected 1..240")
    poses = np.array(array("poses", 7), dtype=np.float64).reshape(-1, 7)
    if len(poses) < 2:
        raise InputError(label, f"{len(poses)} poses; expected one per frame (at least two)")
    norms = np.linalg.norm(poses[:, :4], axis=1)
    bad = np.nonzero(np.abs(norms - 1) > 1e-2)[0]
    if bad.size:
        i = int(bad[0])
        raise InputError(label, f"poses[{i}]: quaternion qx, qy, qz, qw has norm "
                         f"{norms[i]:.4g}; expected [qx, qy, qz, qw, px, py, pz]")
    timestamps = None
    if meta.get("frameTimestamps") is not None:
        stamps = meta["frameTimestamps"]
        if not isinstance(stamps, list) or len(stamps) < len(poses):
            raise InputError(label, "frameTimestamps must list one time (seconds) per pose")
        ns = [seconds_text_to_ns(str(v), label, f"frameTimestamps[{i}]")
              if isinstance(v, int | str) and not isinstance(v, bool)
              else num(v, f"frameTimestamps[{i}]") for i, v in enumerate(stamps)]
        timestamps = np.array(ns, dtype=np.int64)
        steps = np.diff(timestamps)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0)) + 1
            raise InputError(label, f"frameTimestamps[{i}] does not increase (expected "
                             "strictly increasing seconds)")
    per_frame = None
    if meta.get("perFrameIntrinsicCoeffs") is not None:
        per_frame = np.array(array("perFrameIntrinsicCoeffs", 4), dtype=np.float64)
        per_frame = per_frame.reshape(-1, 4)
        if len(per_frame) < len(poses) or np.any(per_frame <= 0):
            raise InputError(label, "perFrameIntrinsicCoeffs must hold [fx, fy, cx, cy] > 0 "
                             "for every pose")
    return _Metadata(sizes[0], sizes[1], (fx, fy, cx, cy), fps, poses, timestamps, per_frame)


def _folder_jpegs(src: Path) -> dict[int, str]:
    try:
        names = [p.name for p in (src / "rgbd").iterdir()]
    except OSError as exc:
        raise InputError(src / "rgbd", f"cannot list the folder: {exc.strerror or exc}") from None
    return {int(m.group(1)): f"rgbd/{n}" for n in names if (m := _JPEG.fullmatch(f"rgbd/{n}"))}


def _frame_count(jpegs: dict[int, str], poses: int, label: str) -> int:
    """Images 0..N-1 used: N = the images present from 0 without a gap, at most one per
    pose."""
    if 0 not in jpegs:
        raise InputError(label, "no 0.jpg (expected colour frames 0.jpg, 1.jpg, ...)")
    count = 0
    while count in jpegs and count < poses:
        count += 1
    if count < 2:
        raise InputError(label, "fewer than two colour frames")
    later = [i for i in jpegs if i > count]
    if later and count < poses:
        raise InputError(label, f"{count}.jpg is missing but {min(later)}.jpg exists "
                         "(expected frames without gaps)")
    return count


def _member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str,
                  cap: int) -> bytes:
    _check_member(info, label, cap)
    out = bytearray()
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                out += chunk
                if len(out) > info.file_size:
                    raise InputError(label, "holds more data than its declared size")
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
        raise InputError(label, f"cannot be read ({exc})") from None
    return bytes(out)


def _check_member(info: zipfile.ZipInfo, label: str, cap: int) -> None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode) or info.is_dir():
        raise InputError(label, "is a link or folder, expected a file")
    if info.flag_bits & 0x1:
        raise InputError(label, "encrypted (password-protected members are not supported)")
    if info.file_size > cap:
        raise InputError(label, f"is {info.file_size / MB:.1f} MB; expected at most "
                         f"{cap // MB} MB")
    if info.file_size > MAX_RATIO * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        raise InputError(label, f"compression ratio {ratio:.0f}:1 exceeds {MAX_RATIO}:1 "
                         "(zip bomb?)")


def _extract_jpegs(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], folder: Path,
                   label: str, progress: Progress | None) -> tuple[Path, ...]:
    """Copy the colour frames out unchanged as folder/NNNNNN.jpg, counting every byte."""
    total = 0
    paths = []
    for i, info in enumerate(infos):
        where = f"{label}:{info.filename}"
        _check_member(info, where, MAX_IMAGE_BYTES)
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise InputError(label, f"colour frames exceed {MAX_TOTAL_BYTES // (1024 * MB)} GiB")
        target = folder / f"{i:06d}.jpg"
        data = _member_bytes(archive, info, where, MAX_IMAGE_BYTES)
        if not data.startswith(b"\xff\xd8"):
            raise InputError(where, "not a JPEG image")
        try:
            target.write_bytes(data)
        except OSError as exc:
            raise InputError(folder, f"cannot write an extracted frame: {exc.strerror or exc}"
                             ) from None
        paths.append(target)
        if progress:
            progress(i + 1, len(infos))
    return tuple(paths)


IMPORTER = Record3DImporter()
