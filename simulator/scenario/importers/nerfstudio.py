"""nerfstudio / instant-ngp ``transforms.json`` (what Polycam, Record3D, KIRI Engine and
``ns-process-data`` / COLMAP exports produce).

Files: a capture folder holding ``transforms.json`` (or that file given directly) and the
images its frames name. Described in nerfstudio's data conventions
(https://docs.nerf.studio/quickstart/data_conventions.html) and instant-ngp's
``docs/nerf_dataset_tips.md``:

- ``frames[]``, each ``file_path`` (an image path relative to the folder; it must stay inside
  it, links included) and ``transform_matrix`` (4x4, or 3x4, camera-to-world);
- camera axes OpenGL / Blender / NeRF: x right, y up, the camera looks down −z — already
  the scenario's camera convention, so no camera-axis change;
- intrinsics ``fl_x fl_y cx cy w h`` at the top level and/or per frame (a frame's values
  win); instant-ngp files may give only ``camera_angle_x`` (and ``camera_angle_y``), the
  horizontal (vertical) field of view in radians; without ``w``/``h`` the size is read from
  the first image, without ``cx``/``cy`` the centre is assumed;
- ``camera_model`` ``OPENCV`` (radial-tangential ``k1 k2 p1 p2`` [``k3``]) or
  ``OPENCV_FISHEYE`` (``k1 k2 k3 k4``); ``PINHOLE``/``SIMPLE_PINHOLE`` or no model: no
  distortion unless coefficients are given (then ``OPENCV``).

What the importer converts:

- time: the format has no timestamps. Frames are sorted by ``file_path`` in natural order
  (``frame_2`` before ``frame_10``; exports do not list frames in capture order) and
  placed at i / fps, fps from ``--fps`` (default 30, said in the notes);
- world: its up direction is arbitrary (COLMAP's is wherever the first camera was;
  nerfstudio's +z only after its own re-orientation), so it is estimated from the cameras'
  up vectors (``convert.estimate_up``) unless ``--up`` gives it, and the world is rotated
  to y up (``convert.level_world``);
- scale: unknown (COLMAP / NeRF units), so ``metric`` is False unless ``--scale`` says
  how many metres one unit is (the writer applies it);
- images: copied unchanged; all must have the same size (the one declared, if any).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import JSON_CAP, inside_root, read_user_text
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

TRANSFORMS = "transforms.json"
DEFAULT_FPS = 30.0
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y")
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_PINHOLE_MODELS = {"PINHOLE", "SIMPLE_PINHOLE", "PERSPECTIVE"}


class NerfstudioImporter:
    name = "nerfstudio"
    description = ("nerfstudio / instant-ngp transforms.json (Polycam, Record3D, KIRI, "
                   "COLMAP exports): images + camera-to-world matrices, no timestamps")

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if src.is_file():
            if src.name.lower() == TRANSFORMS:
                return None
            return f"not a folder holding {TRANSFORMS} (nor that file)"
        if src.is_dir():
            if (src / TRANSFORMS).is_file():
                return None
            return f"no {TRANSFORMS} in the folder"
        return "neither a file nor a folder"

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        path = src if src.is_file() else src / TRANSFORMS
        root = path.parent
        label = str(path)
        doc = _read_json(path, label, root)
        if not isinstance(doc, dict):
            raise InputError(label, "expected a JSON object with a 'frames' array")
        frames = doc.get("frames")
        if not isinstance(frames, list) or not frames:
            raise InputError(f"{label}: frames", "expected a non-empty array of frames")
        for k, frame in enumerate(frames):
            if not isinstance(frame, dict):
                raise InputError(f"{label}: frames[{k}]", "expected an object")
            if not isinstance(frame.get("file_path"), str) or not frame["file_path"]:
                raise InputError(f"{label}: frames[{k}].file_path", "expected an image path")
        order = sorted(range(len(frames)),
                       key=lambda k: convert.natural_key(frames[k]["file_path"]))
        notes = ["frames sorted by file_path in natural order (the file has no timestamps)"]

        paths = [_image_path(root, frames[k], f"{label}: frames[{k}].file_path") for k in order]
        sizes = []
        for n, (k, image) in enumerate(zip(order, paths, strict=True)):
            sizes.append(image_size(image, f"{label}: frames[{k}] image {image.name}"))
            if n and sizes[-1] != sizes[0]:
                raise InputError(
                    f"{label}: frames[{k}] image {image.name}",
                    f"is {sizes[-1][0]}x{sizes[-1][1]}, expected {sizes[0][0]}x{sizes[0][1]} "
                    "like the first frame (all images must have the same size)",
                )
            if progress:
                progress(n + 1, len(order))
        width, height = sizes[0]

        # intrinsics: per frame, falling back to the file's top level
        rows = []
        for k in order:
            values = _intrinsics(doc, frames[k], f"{label}: frames[{k}]", width, height)
            rows.append(values)
        matrix = np.array(rows, dtype=np.float64)
        distortion, model_note = _distortion(doc, [frames[k] for k in order], label)
        if model_note:
            notes.append(model_note)
        camera = Intrinsics(width, height, *(float(v) for v in matrix[0]), distortion=distortion)
        per_frame = matrix if np.ptp(matrix, axis=0).max() > 1e-9 else None

        # poses: camera-to-world, OpenGL camera axes (the scenario's own)
        mats = np.stack(
            [_matrix(frames[k].get("transform_matrix"), f"{label}: frames[{k}].transform_matrix")
             for k in order]
        )
        rotations, positions = convert.split_matrices(mats)
        convert.check_rotations(rotations, f"{label}: transform_matrix")
        if options.up is not None:
            up = convert.axis_vector(options.up)
            up_note = f"world up {options.up} (--up)"
        else:
            up = convert.estimate_up(rotations)
            up_note = ("world up estimated from the cameras' up vectors "
                       f"({up[0]:.3f}, {up[1]:.3f}, {up[2]:.3f}); give --up to override")
        rotations, positions, world = convert.level_world(rotations, positions, up)
        notes.append(up_note)

        if options.fps is not None:
            fps = float(options.fps)
            notes.append(f"frame i at i / {fps:g} s (--fps)")
        else:
            fps = DEFAULT_FPS
            notes.append(f"frame i at i / {fps:g} s (no timestamps in the file; "
                         "--fps sets the rate)")
        frame_ns = convert.frames_at_fps(len(order), fps)
        if options.scale is None:
            notes.append("scale unknown (NeRF/COLMAP units): poses not metric unless --scale")

        return Recording(
            format=self.name,
            camera=camera,
            frames=ImageFrames(tuple(paths)),
            frame_ns=frame_ns,
            poses=PoseTrack(frame_ns, positions, convert.matrix_to_quat(rotations)),
            intrinsics=per_frame,
            metric=False,
            fps=fps,
            axes=("camera axes already OpenGL (x right, y up, looks down -z); "
                  + convert.describe_rotation(world) + " to make world up +y"),
            clock=f"none in the source: frame index / {fps:g} fps",
            notes=notes,
        )


def _read_json(path: Path, label: str, root: Path) -> Any:
    text = read_user_text(path, label, cap=JSON_CAP, root=root)

    def refuse(constant: str) -> None:
        raise InputError(label, f"{constant} is not JSON (expected finite numbers)")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise InputError(f"{label} line {exc.lineno}", f"not valid JSON: {exc.msg}") from None


def _image_path(root: Path, frame: dict, where: str) -> Path:
    """The frame's image inside ``root``: links and ``..`` must not leave it; instant-ngp's
    NeRF-synthetic files name images without their extension."""
    name = frame["file_path"]
    relative = Path(name.replace("\\", "/"))
    if relative.is_absolute():
        raise InputError(f"{where} {name!r}",
                         "must be a path relative to the capture folder, not absolute")
    if ".." in relative.parts:
        real, base = os.path.realpath(root / relative), os.path.realpath(root)
        if os.path.commonpath([real, base]) != base:
            raise InputError(f"{where} {name!r}", "leads outside the capture folder")
    candidate = root / relative
    if not candidate.exists() and not relative.suffix:
        for suffix in _IMAGE_SUFFIXES:
            if candidate.with_name(candidate.name + suffix).exists():
                candidate = candidate.with_name(candidate.name + suffix)
                break
    inside_root(candidate, f"{where} {name!r}", root)
    if not candidate.is_file():
        raise InputError(f"{where} {name!r}", "image file not found in the capture folder")
    return candidate


def _get(doc: dict, frame: dict, key: str, where: str) -> float | None:
    """A numeric value from the frame (``where`` names it), else from the file's top level;
    None when neither has it."""
    for owner, place in ((frame, f"{where}.{key}"), (doc, key)):
        if key in owner:
            value = owner[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise InputError(place, f"expected a finite number, got {value!r}")
            return float(value)
    return None


def _intrinsics(doc: dict, frame: dict, where: str, width: int, height: int) -> tuple:
    w = _get(doc, frame, "w", where)
    h = _get(doc, frame, "h", where)
    if (w is not None and int(w) != width) or (h is not None and int(h) != height):
        raise InputError(
            f"{where}", f"declares {int(w or width)}x{int(h or height)} but its image is "
            f"{width}x{height} (expected the size of the image files)")
    fx = _get(doc, frame, "fl_x", where)
    fy = _get(doc, frame, "fl_y", where)
    angle_x = _get(doc, frame, "camera_angle_x", where)
    angle_y = _get(doc, frame, "camera_angle_y", where)
    if fx is None and angle_x is not None:
        fx = 0.5 * width / math.tan(0.5 * angle_x)
    if fy is None and angle_y is not None:
        fy = 0.5 * height / math.tan(0.5 * angle_y)
    if fx is None and fy is None:
        raise InputError(where, "no focal length (expected fl_x/fl_y or camera_angle_x)")
    fx = fx if fx is not None else fy
    fy = fy if fy is not None else fx
    cx = _get(doc, frame, "cx", where)
    cy = _get(doc, frame, "cy", where)
    cx = width / 2 if cx is None else cx
    cy = height / 2 if cy is None else cy
    if not (fx > 0 and fy > 0):
        raise InputError(where, f"focal lengths must be > 0, got {fx:g}, {fy:g}")
    return fx, fy, cx, cy


def _distortion(doc: dict, frames: list[dict], label: str) -> tuple[Distortion | None, str]:
    """One distortion for the whole capture (per-frame coefficients must agree)."""
    found = set()
    for k, frame in enumerate(frames):
        model = frame.get("camera_model", doc.get("camera_model"))
        coeffs = tuple(_get(doc, frame, key, f"{label}: frame {k}") or 0.0
                       for key in _DISTORTION_KEYS)
        found.add((model, coeffs))
    if len(found) > 1:
        raise InputError(f"{label}: camera_model/k1..p2",
                         "frames differ in lens distortion (expected one for all frames)")
    model, (k1, k2, k3, k4, p1, p2) = found.pop()
    if model is not None and not isinstance(model, str):
        raise InputError(f"{label}: camera_model", f"expected a string, got {model!r}")
    any_coeff = any((k1, k2, k3, k4, p1, p2))
    if model == "OPENCV_FISHEYE":
        return Distortion("fisheye", (k1, k2, k3, k4)), "OPENCV_FISHEYE lens (k1..k4) kept"
    if model == "OPENCV" or (model in (None, *_PINHOLE_MODELS) and any_coeff):
        if not any_coeff:
            return None, ""
        coeffs = (k1, k2, p1, p2, k3) if k3 else (k1, k2, p1, p2)
        return Distortion("radtan", coeffs), "OPENCV lens (k1 k2 p1 p2 k3) kept"
    if model is None or model in _PINHOLE_MODELS:
        return None, ""
    raise InputError(f"{label}: camera_model",
                     f"{model!r} is not supported (expected OPENCV, OPENCV_FISHEYE or PINHOLE)")


def _matrix(value: Any, where: str) -> np.ndarray:
    try:
        m = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(where, "expected a 4x4 array of numbers") from None
    if m.shape not in ((4, 4), (3, 4)):
        raise InputError(where, f"expected a 4x4 array of numbers, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise InputError(where, "has non-finite values")
    return m[:3]


IMPORTER = NerfstudioImporter()
