"""Writes a scenario folder in the `arsim-scenario/1` format (see scenarios/README.md).

The writer checks what it needs to emit a valid folder (sizes, clocks, states, unit
quaternions); full validation of every field is the loader's job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.types import Intrinsics

FORMAT = "arsim-scenario/1"
FORMAT_1_1 = "arsim-scenario/1.1"  # what importers write (distortion, JPEG frames, poses block)
FRAMES_DIR = "frames/"
TRACKING_STATES = ("tracking", "limited", "lost", "unavailable")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PNG_NAME_RE = re.compile(r"^\d{6}\.png$")
# Decimal places in frames.csv / poses.txt: microseconds, and enough for the unit-norm check.
_TIME_DECIMALS = 6
_VALUE_DECIMALS = 9

PoseRows = tuple[Sequence[float] | np.ndarray, np.ndarray, np.ndarray]


def write_scenario(
    out_dir: Path,
    *,
    name: str,
    description: str = "",
    fps: float,
    camera: Intrinsics,
    frames: Iterable[np.ndarray],
    frame_times: Sequence[float] | np.ndarray,
    tracking: Sequence[str],
    pose_rows: PoseRows,
    anchors: Sequence[Mapping[str, Any]] = (),
    events: Sequence[Mapping[str, Any]] = (),
    expect: Mapping[str, float] | None = None,
    source: Mapping[str, str] | None = None,
    video: str = "video.mp4",
) -> Path:
    """Write a scenario folder and return its path.

    ``frames`` yields RGB uint8 images of the camera's size; they are streamed into
    ``video`` (an mp4 written with the 'mp4v' codec) or, for ``video="frames/"``, into
    ``frames/NNNNNN.png``. ``pose_rows`` is ``(times (N,), positions (N, 3), quats (N, 4))``
    with camera-to-world poses, quaternions as (x, y, z, w). ``anchors`` and ``events``
    are mappings with the JSON fields of the format.
    """
    out_dir = Path(out_dir)
    times = rounded_frame_times(frame_times, out_dir / "frames.csv")
    _check_tracking(tracking, len(times), out_dir / "frames.csv")
    pose_text = poses_text(pose_rows, times, out_dir / "poses.txt")
    meta = _metadata(
        out_dir / "scenario.json",
        name=name,
        description=description,
        fps=fps,
        camera=camera,
        video=video,
        source=source,
        anchors=anchors,
        events=events,
        expect=expect,
    )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a folder; expected a folder to write into")
    out_dir.mkdir(parents=True, exist_ok=True)

    written = _write_frames(out_dir, video, frames, camera, fps)
    if written != len(times):
        raise InputError(
            out_dir / video, f"got {written} frames but {len(times)} frame timestamps"
        )
    rows = "".join(
        f"{i},{t:.{_TIME_DECIMALS}f},{state}\n"
        for i, (t, state) in enumerate(zip(times, tracking, strict=True))
    )
    write_text(out_dir / "frames.csv", "index,timestamp,tracking\n" + rows)
    write_text(out_dir / "poses.txt", pose_text)
    write_text(out_dir / "scenario.json", json.dumps(meta, indent=2) + "\n")
    return out_dir


def write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def rounded_frame_times(frame_times: Sequence[float] | np.ndarray, where: Path) -> np.ndarray:
    """Frame timestamps rounded as written, checked finite, >= 0 and strictly increasing."""
    times = np.round(np.asarray(frame_times, dtype=np.float64), _TIME_DECIMALS)
    if times.ndim != 1 or len(times) == 0:
        raise InputError(where, "expected at least one frame timestamp")
    if not np.all(np.isfinite(times)) or times[0] < 0:
        raise InputError(where, "frame timestamps must be finite and >= 0")
    if np.any(np.diff(times) <= 0):
        row = int(np.argmax(np.diff(times) <= 0)) + 1
        raise InputError(where, f"row {row}: timestamps must increase strictly (at µs precision)")
    return times


def _check_tracking(tracking: Sequence[str], count: int, where: Path) -> None:
    if len(tracking) != count:
        raise InputError(where, f"{len(tracking)} tracking states for {count} frame timestamps")
    for row, state in enumerate(tracking):
        if state not in TRACKING_STATES:
            raise InputError(
                where, f"row {row}: tracking {state!r}; expected one of {TRACKING_STATES}"
            )


def poses_text(pose_rows: PoseRows, frame_times: np.ndarray, where: Path) -> str:
    """The TUM trajectory text; checks shapes, unit quaternions and frame coverage."""
    times, positions, quats = (np.asarray(part, dtype=np.float64) for part in pose_rows)
    times = np.round(times, _TIME_DECIMALS)
    count = len(times)
    if times.ndim != 1 or count < 2:
        raise InputError(where, "expected at least two pose rows")
    if positions.shape != (count, 3) or quats.shape != (count, 4):
        raise InputError(where, f"expected positions ({count}, 3) and quaternions ({count}, 4)")
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
        raise InputError(where, "pose timestamps and positions must be finite")
    if np.any(np.diff(times) <= 0):
        raise InputError(where, "pose timestamps must increase strictly (at µs precision)")
    norms = np.linalg.norm(quats, axis=1)
    if not np.all(np.abs(norms - 1.0) <= 1e-3):
        row = int(np.argmax(~(np.abs(norms - 1.0) <= 1e-3)))
        raise InputError(where, f"pose row {row}: quaternion norm {norms[row]:.6f}, expected 1")
    quats = quats / norms[:, None]
    if frame_times[0] < times[0] or frame_times[-1] > times[-1]:
        raise InputError(
            where,
            f"poses cover {times[0]}..{times[-1]} s but frames span "
            f"{frame_times[0]}..{frame_times[-1]} s; every frame must lie within",
        )
    lines = [
        f"# {FORMAT} camera trajectory, TUM format: timestamp tx ty tz qx qy qz qw",
        "# camera-to-world; right-handed, y up, camera looks down -z (ARKit convention)",
    ]
    d = _VALUE_DECIMALS
    for t, p, q in zip(times, positions, quats, strict=True):
        values = " ".join(f"{v:.{d}f}" for v in (*p, *q))
        lines.append(f"{t:.{_TIME_DECIMALS}f} {values}")
    return "\n".join(lines) + "\n"


def _metadata(
    where: Path,
    *,
    name: str,
    description: str,
    fps: float,
    camera: Intrinsics,
    video: str,
    source: Mapping[str, str] | None,
    anchors: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    expect: Mapping[str, float] | None,
) -> dict[str, Any]:
    """The scenario.json object, fields in the order of the specification."""
    if not _NAME_RE.match(name):
        raise InputError(where, f"name {name!r}: expected 1-64 chars of [A-Za-z0-9._-]")
    if not (math.isfinite(fps) and 1 <= fps <= 240):
        raise InputError(where, f"fps {fps}: expected a number in 1..240")
    if video != FRAMES_DIR and ("/" in video or "\\" in video or ".." in video or not video):
        raise InputError(where, f"video {video!r}: expected a file name or 'frames/'")
    if not (16 <= camera.width <= 8192 and 16 <= camera.height <= 8192):
        raise InputError(where, "camera width and height must be in 16..8192")
    meta: dict[str, Any] = {"format": FORMAT, "name": name}
    if description:
        meta["description"] = description
    meta["video"] = video
    meta["fps"] = float(fps)
    meta["camera"] = camera_json(camera)
    if source:
        meta["source"] = {key: str(value) for key, value in source.items()}
    if anchors:
        meta["anchors"] = [_anchor_json(anchor, where) for anchor in anchors]
    if events:
        meta["events"] = [_event_json(event) for event in events]
    if expect:
        meta["expect"] = {key: float(value) for key, value in expect.items()}
    return meta


def camera_json(camera: Intrinsics) -> dict[str, Any]:
    """``scenario.json``'s ``camera`` object (``distortion`` only when the camera has one)."""
    out: dict[str, Any] = {
        "width": int(camera.width),
        "height": int(camera.height),
        "fx": round(float(camera.fx), 6),
        "fy": round(float(camera.fy), 6),
        "cx": round(float(camera.cx), 6),
        "cy": round(float(camera.cy), 6),
    }
    if camera.distortion is not None:
        out["distortion"] = {
            "model": camera.distortion.model,
            "coeffs": [float(c) for c in camera.distortion.coeffs],
        }
    return out


def _numbers(values: Iterable[float], decimals: int = _VALUE_DECIMALS) -> list[float]:
    return [round(float(v), decimals) for v in values]


def _anchor_json(anchor: Mapping[str, Any], where: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(anchor["id"]), "position": _numbers(anchor["position"])}
    if "rotation" in anchor:
        q = np.asarray(anchor["rotation"], dtype=np.float64)
        norm = float(np.linalg.norm(q))
        if q.shape != (4,) or abs(norm - 1.0) > 1e-3:
            raise InputError(where, f"anchor {out['id']!r}: rotation must be a unit quaternion")
        out["rotation"] = _numbers(q / norm)
    out["size"] = _numbers(anchor["size"])
    return out


def _event_json(event: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"t": round(float(event["t"]), _TIME_DECIMALS)}
    out.update({key: value for key, value in event.items() if key != "t"})
    return out


def _write_frames(
    out_dir: Path, video: str, frames: Iterable[np.ndarray], camera: Intrinsics, fps: float
) -> int:
    """Stream frames to the video file or the PNG folder; return how many were written."""
    size = (camera.height, camera.width, 3)
    if video == FRAMES_DIR:
        folder = out_dir / "frames"
        folder.mkdir(exist_ok=True)
        for stale in folder.iterdir():  # a re-run must not leave extra frames behind
            if _PNG_NAME_RE.match(stale.name):
                stale.unlink()
        count = 0
        for count, image in enumerate(frames, start=1):
            bgr = _to_bgr(image, size, folder, count - 1)
            cv2.imwrite(str(folder / f"{count - 1:06d}.png"), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        return count

    path = out_dir / video
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (camera.width, camera.height)
    )
    if not writer.isOpened():
        raise InputError(path, "OpenCV cannot open an 'mp4v' video writer for this file")
    count = 0
    try:
        for count, image in enumerate(frames, start=1):
            writer.write(_to_bgr(image, size, path, count - 1))
    finally:
        writer.release()
    return count


def _to_bgr(image: np.ndarray, size: tuple[int, int, int], where: Path, index: int) -> np.ndarray:
    if image.shape != size or image.dtype != np.uint8:
        raise InputError(
            where, f"frame {index}: got {image.shape} {image.dtype}, expected {size} uint8 RGB"
        )
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
