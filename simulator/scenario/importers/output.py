"""Writes a ``Recording`` as an ``arsim-scenario/1.1`` folder, all or nothing.

The folder is built beside ``OUT`` under a hidden name and moved into place only when every
file is written, so an error (or Ctrl-C) never leaves a half-written scenario. Frames are
carried unchanged where the format allows (a video OpenCV decodes, JPEG or PNG files) and
re-encoded only when they must change (a subset of a video's frames, undistortion, images a
bag holds).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.output_paths import prepare_output_dir, writing
from simulator.scenario.importers.base import (
    DecodedFrames,
    ImageFrames,
    ImportOptions,
    Progress,
    Recording,
    VideoFrames,
)
from simulator.scenario.importers.convert import NS_PER_S
from simulator.scenario.video import count_frames, image_size, iter_frames
from simulator.scenario.write import (
    FORMAT_1_1,
    FRAMES_DIR,
    camera_json,
    poses_text,
    rounded_frame_times,
    write_text,
)
from simulator.types import Intrinsics

_JPEG_QUALITY = 95
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_output(out: Path, *, force: bool = False) -> None:
    """Refuse an unusable OUT before any work: an existing file, a non-empty folder (unless
    ``force``), or a parent that cannot be created or written."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise InputError(out, "exists and is not a folder; expected a new folder to write")
        if any(out.iterdir()) and not force:
            raise InputError(out, "exists and is not empty (give --force to replace it)")
    prepare_output_dir(out.parent if str(out.parent) else Path("."), "OUT's folder")


def scenario_name(src: Path, options: ImportOptions) -> str:
    """The scenario's name: ``--name``, else the source's name made valid."""
    if options.name is not None:
        return options.name
    stem = src.stem if src.is_file() else src.name
    cleaned = "".join(c if c in _NAME_CHARS else "-" for c in stem).strip("-.") or "recording"
    return cleaned[:64]


def write_recording(
    rec: Recording,
    out: Path,
    options: ImportOptions,
    progress: Progress | None = None,
    *,
    force: bool = False,
    src: Path | None = None,
) -> Path:
    """Write ``rec`` as the scenario folder ``out`` (see the module docstring)."""
    check_output(out, force=force)
    plan = _Plan(rec, options)
    staging = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    with writing(staging):
        staging.mkdir()
    try:
        with writing(out):
            _write_all(plan, staging, out, options, progress, src)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write_all(
    plan: _Plan, staging: Path, out: Path, options: ImportOptions, progress: Progress | None,
    src: Path | None,
) -> None:
    video = _write_frames(plan, staging, progress)
    meta = _metadata(plan, video, scenario_name(src or Path(out.name), options))
    rows = "".join(
        f"{i},{t:.6f},{state}\n"
        for i, (t, state) in enumerate(zip(plan.frame_s, plan.tracking, strict=True))
    )
    write_text(staging / "frames.csv", "index,timestamp,tracking\n" + rows)
    if plan.pose_rows is not None:
        write_text(staging / "poses.txt", poses_text(plan.pose_rows, plan.frame_s,
                                                     staging / "poses.txt"))
    if plan.intrinsics is not None:
        lines = "".join(
            f"{i},{fx:.6f},{fy:.6f},{cx:.6f},{cy:.6f}\n"
            for i, (fx, fy, cx, cy) in enumerate(plan.intrinsics)
        )
        write_text(staging / "intrinsics.csv", "index,fx,fy,cx,cy\n" + lines)
    write_text(staging / "scenario.json", json.dumps(meta, indent=2) + "\n")
    _move_into_place(staging, out)


def _move_into_place(staging: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


class _Plan:
    """What will be written: the kept frames, times in seconds from the first frame, poses,
    camera (undistorted or not) and the notes describing every conversion."""

    def __init__(self, rec: Recording, options: ImportOptions) -> None:
        self.rec = rec
        self.notes = list(rec.notes)
        frame_ns = np.asarray(rec.frame_ns, dtype=np.int64)
        if frame_ns.ndim != 1 or len(frame_ns) == 0:
            raise InputError(rec.format, "the recording holds no frames")
        if np.any(np.diff(frame_ns) <= 0):
            k = int(np.argmax(np.diff(frame_ns) <= 0)) + 1
            raise InputError(rec.format, f"frame {k}: capture times must increase strictly")
        keep = np.arange(len(frame_ns))
        positions = quats = pose_ns = None
        if rec.poses is not None:
            pose_ns = np.asarray(rec.poses.ns, dtype=np.int64)
            if len(pose_ns) < 2:
                raise InputError(rec.format, "fewer than two poses: nothing to interpolate")
            order_ok = np.all(np.diff(pose_ns) > 0)
            if not order_ok:
                raise InputError(rec.format, "pose times must increase strictly")
            covered = (frame_ns >= pose_ns[0]) & (frame_ns <= pose_ns[-1])
            if not covered.any():
                raise InputError(
                    rec.format,
                    "no frame lies within the poses' time range: the clocks of frames and "
                    "poses do not match",
                )
            dropped = len(keep) - int(covered.sum())
            if dropped:
                self.notes.append(f"{dropped} frames outside the pose time range dropped")
            keep = keep[covered]
            positions = np.asarray(rec.poses.positions, dtype=np.float64)
            quats = np.asarray(rec.poses.quaternions, dtype=np.float64)
        if options.max_frames is not None and len(keep) > options.max_frames:
            self.notes.append(f"trimmed to the first {options.max_frames} of {len(keep)} frames")
            keep = keep[: options.max_frames]
        self.keep = keep
        self.origin_ns = int(frame_ns[keep[0]])
        self.frame_s = rounded_frame_times(
            (frame_ns[keep] - self.origin_ns) / NS_PER_S, Path("frames.csv")
        )
        self.pose_rows = None
        self.scale = 1.0
        self.metric = rec.metric
        if positions is not None and pose_ns is not None and quats is not None:
            if options.scale is not None:
                self.scale = float(options.scale)
                positions = positions * self.scale
                self.metric = True
                self.notes.append(f"positions scaled by {self.scale:g} (--scale)")
            # poses beyond the frames are kept only as far as interpolation needs them
            first = max(0, int(np.searchsorted(pose_ns, frame_ns[keep[0]], side="right")) - 1)
            last = min(len(pose_ns), int(np.searchsorted(pose_ns, frame_ns[keep[-1]])) + 1)
            span = slice(first, max(last, first + 2))
            self.pose_rows = (
                (pose_ns[span] - self.origin_ns) / NS_PER_S, positions[span], quats[span]
            )
        self.tracking = (
            [rec.tracking[i] for i in keep] if rec.tracking is not None
            else ["tracking" if rec.poses is not None else "unavailable"] * len(keep)
        )
        self.intrinsics = rec.intrinsics[keep] if rec.intrinsics is not None else None
        self.undistort = bool(options.undistort and rec.camera.distortion is not None)
        if options.undistort and rec.camera.distortion is None:
            self.notes.append("--undistort: the source declares no distortion, nothing to do")
        self.camera = rec.camera
        if self.undistort:
            self.camera = Intrinsics(**{**vars(rec.camera), "distortion": None})
            self.notes.append(
                f"frames undistorted ({rec.camera.distortion.model}), same camera matrix"
            )
        self.fps = rec.fps or _measured_fps(self.frame_s)
        self.scale_known = self.metric

    @property
    def reencode(self) -> bool:
        """Frames must be decoded and written again (not copied)."""
        frames = self.rec.frames
        all_kept = len(self.keep) == self.rec.frame_count
        if isinstance(frames, DecodedFrames) or self.undistort or not all_kept:
            return True
        if isinstance(frames, ImageFrames):
            return len({p.suffix.lower().replace("jpeg", "jpg") for p in frames.paths}) != 1
        return frames.keep is not None


def _measured_fps(frame_s: np.ndarray) -> float:
    if len(frame_s) < 2:
        return 30.0
    median = float(np.median(np.diff(frame_s)))
    return float(min(240.0, max(1.0, round(1.0 / median, 3))))


def _write_frames(plan: _Plan, staging: Path, progress: Progress | None) -> str:
    """Write the frames; returns scenario.json's ``video`` value."""
    frames = plan.rec.frames
    cam = plan.rec.camera
    total = len(plan.keep)
    if not plan.reencode and isinstance(frames, VideoFrames):
        name = "video" + frames.path.suffix.lower()
        shutil.copyfile(frames.path, staging / name)
        found = count_frames(staging / name, str(frames.path))
        if found != total:
            raise InputError(frames.path, f"holds {found} frames but the recording has {total} "
                             "frame times (expected one time per frame)")
        if progress:
            progress(total, total)
        return name
    folder = staging / FRAMES_DIR.rstrip("/")
    folder.mkdir()
    if not plan.reencode and isinstance(frames, ImageFrames):
        ext = frames.paths[0].suffix.lower().lstrip(".").replace("jpeg", "jpg")
        for k, path in enumerate(frames.paths):
            size = image_size(path, str(path))
            if size != (cam.width, cam.height):
                raise InputError(path, f"is {size[0]}x{size[1]}, expected "
                                 f"{cam.width}x{cam.height} like the camera")
            shutil.copyfile(path, folder / f"{k:06d}.{ext}")
            if progress:
                progress(k + 1, total)
        return FRAMES_DIR
    lossy = not (isinstance(frames, DecodedFrames) and not frames.lossy)
    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]) if lossy else (
        ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3])
    undistort = _Undistorter(cam, plan.intrinsics) if plan.undistort else None
    written = 0
    for k, image in enumerate(_kept_images(plan)):
        if image.shape[:2] != (cam.height, cam.width):
            raise InputError(plan.rec.format, f"frame {k} is {image.shape[1]}x{image.shape[0]}, "
                             f"expected {cam.width}x{cam.height}")
        if undistort is not None:
            image = undistort(image, k)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(folder / f"{k:06d}{ext}"), bgr, params):
            raise InputError(folder, "cannot write a frame (disk full?)")
        written += 1
        if progress:
            progress(written, total)
    if written != total:
        raise InputError(plan.rec.format, f"yielded {written} frames, expected {total}")
    return FRAMES_DIR


def _kept_images(plan: _Plan) -> Iterator[np.ndarray]:
    """The kept frames as RGB uint8, decoded in order."""
    frames = plan.rec.frames
    wanted = set(int(i) for i in plan.keep)
    if isinstance(frames, VideoFrames):
        mapping = frames.keep if frames.keep is not None else None
        source_index = {(mapping[i] if mapping else i): i for i in wanted}
        for decoded_index, image in enumerate(iter_frames(frames.path, str(frames.path))):
            if decoded_index in source_index:
                yield image
        return
    if isinstance(frames, ImageFrames):
        for i in plan.keep:
            path = frames.paths[int(i)]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(path, "cannot be decoded as an image")
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return
    for i, image in enumerate(frames.open()):
        if i in wanted:
            yield image


class _Undistorter:
    """Undistorts frames with the camera's distortion, keeping the camera matrix (per-frame
    matrices when the recording has them: maps are cached per matrix)."""

    def __init__(self, camera: Intrinsics, per_frame: np.ndarray | None) -> None:
        self.camera = camera
        self.per_frame = per_frame
        self._maps: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, image: np.ndarray, k: int) -> np.ndarray:
        cam = self.camera
        key = (
            tuple(float(v) for v in self.per_frame[k]) if self.per_frame is not None
            else (cam.fx, cam.fy, cam.cx, cam.cy)
        )
        if key not in self._maps:
            fx, fy, cx, cy = key
            matrix = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
            dist = cam.distortion
            size = (cam.width, cam.height)
            if dist.model == "fisheye":
                maps = cv2.fisheye.initUndistortRectifyMap(
                    matrix, dist.opencv(), np.eye(3), matrix, size, cv2.CV_16SC2)
            else:
                maps = cv2.initUndistortRectifyMap(
                    matrix, dist.opencv(), np.eye(3), matrix, size, cv2.CV_16SC2)
            self._maps[key] = maps
        map1, map2 = self._maps[key]
        return cv2.remap(image, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _metadata(plan: _Plan, video: str, name: str) -> dict[str, Any]:
    rec = plan.rec
    meta: dict[str, Any] = {
        "format": FORMAT_1_1,
        "name": name,
        "description": f"Imported by arsim scenario import from a {rec.format} recording.",
        "video": video,
        "fps": plan.fps,
        "camera": camera_json(plan.camera),
    }
    if plan.intrinsics is not None:
        meta["intrinsics"] = "intrinsics.csv"
    source: dict[str, Any] = {"format": rec.format}
    for key in ("device", "app", "recorded", "clock", "axes"):
        value = getattr(rec, key)
        if value:
            source[key] = value
    source["clock_offset_s"] = plan.origin_ns / NS_PER_S
    source["scale"] = plan.scale
    if plan.notes:
        source["notes"] = "; ".join(plan.notes)
    meta["source"] = source
    poses: dict[str, Any] = {"available": rec.poses is not None}
    if rec.poses is not None:
        poses["metric"] = plan.metric
    meta["poses"] = poses
    if rec.anchors:
        meta["anchors"] = rec.anchors
    return meta
