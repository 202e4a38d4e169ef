"""Small, valid ``arsim-scenario/1`` folders for tests, written from scratch.

``make_scenario`` writes a real video (``mp4v`` via OpenCV) or a ``frames/`` folder of PNGs,
``frames.csv``, ``poses.txt`` (at about half the frame rate, so poses are interpolated)
and ``scenario.json``. Keyword overrides replace scenario.json fields; ``REMOVE`` drops one.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REMOVE = object()  # pass as an override value to leave a scenario.json field out

DEFAULT_ANCHORS = [{"id": "box", "position": [0.0, 0.0, -2.0], "size": [0.3, 0.3, 0.3]}]


def frame_image(index: int, width: int, height: int) -> np.ndarray:
    """A deterministic RGB test frame: a gradient sliding with ``index`` and a moving block."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = (x * 4 + index * 8) % 256
    image[..., 1] = (y * 4) % 256
    image[..., 2] = 128
    left = (index * 3) % max(1, width - 8)
    image[height // 4 : height // 4 + 8, left : left + 8] = 255
    return image


def pose_rows(times: np.ndarray) -> list[str]:
    """TUM rows: the camera slides along x and turns slowly about y."""
    rows = []
    for t in map(float, times):
        angle = 0.2 * t
        q = (0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2))
        rows.append(f"{t!r} {0.5 * t!r} 1.5 0.0 " + " ".join(repr(v) for v in q))
    return rows


def make_scenario(
    directory: Path,
    *,
    frames: int = 12,
    width: int = 64,
    height: int = 48,
    fps: float = 30.0,
    video: str = "video.mp4",
    anchors: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    tracking: list[str] | None = None,
    poses_text: str | None = None,
    frames_csv: str | None = None,
    **overrides: Any,
) -> Path:
    """Write a valid scenario into ``directory`` (created) and return it.

    ``poses_text`` / ``frames_csv`` replace those files' contents verbatim; other keyword
    arguments replace (or, with ``REMOVE``, drop) top-level scenario.json fields.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_frames(directory, video, frames, width, height, fps)

    times = np.arange(frames) / fps
    states = tracking or ["tracking"] * frames
    if frames_csv is None:
        rows = [f"{i},{float(t)!r},{states[i]}" for i, t in enumerate(times)]
        frames_csv = "\n".join(["index,timestamp,tracking", *rows]) + "\n"
    (directory / "frames.csv").write_text(frames_csv, encoding="utf-8")

    if poses_text is None:
        pose_times = np.linspace(0.0, times[-1] if frames > 1 else 1.0, max(2, frames // 2 + 1))
        poses_text = "# timestamp tx ty tz qx qy qz qw\n" + "\n".join(pose_rows(pose_times)) + "\n"
    (directory / "poses.txt").write_text(poses_text, encoding="utf-8")

    meta: dict[str, Any] = {
        "format": "arsim-scenario/1",
        "name": directory.name if directory.name else "test",
        "description": "test fixture",
        "video": video,
        "fps": fps,
        "camera": {
            "width": width,
            "height": height,
            "fx": 0.8 * width,
            "fy": 0.8 * width,
            "cx": width / 2,
            "cy": height / 2,
        },
        "source": {"device": "fixture", "app": "pytest", "recorded": "2024-05-01"},
        "anchors": DEFAULT_ANCHORS if anchors is None else anchors,
        "events": events or [],
        "expect": {"min_display_fps": 10},
    }
    (directory / "scenario.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return edit_json(directory, **overrides)


def edit_json(directory: Path, **fields: Any) -> Path:
    """Replace (or, with ``REMOVE``, drop) top-level fields of an existing scenario.json,
    e.g. to give it a ``video`` or ``fps`` that the files on disk do not match."""
    path = Path(directory) / "scenario.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    for key, value in fields.items():
        if value is REMOVE:
            meta.pop(key, None)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return Path(directory)


def _write_frames(directory: Path, video: str, frames: int, width: int, height: int,
                  fps: float) -> None:
    if video == "frames/":
        folder = directory / "frames"
        folder.mkdir(exist_ok=True)
        for i in range(frames):
            bgr = cv2.cvtColor(frame_image(i, width, height), cv2.COLOR_RGB2BGR)
            assert cv2.imwrite(str(folder / f"{i:06d}.png"), bgr)
        return
    writer = cv2.VideoWriter(
        str(directory / video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height)
    )
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(frames):
        writer.write(cv2.cvtColor(frame_image(i, width, height), cv2.COLOR_RGB2BGR))
    writer.release()


def zip_folder(folder: Path, zip_path: Path, *, top: str | None = None) -> Path:
    """Zip a scenario folder's files at the archive root, or inside the folder ``top``."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(Path(folder).rglob("*")):
            if file.is_file():
                name = file.relative_to(folder).as_posix()
                archive.write(file, f"{top}/{name}" if top else name)
    return zip_path
