"""Camera frames of a scenario: a video file OpenCV decodes, or a ``frames/`` folder of PNGs.

Frames are streamed one at a time (RGB, uint8); nothing holds a whole video in memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from simulator.errors import InputError

# FFmpeg would print its own complaints about a broken file on stderr, where our InputError
# already says it. Read when OpenCV first opens a video, so setting it after import works.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

FRAMES_DIR = "frames/"  # the `video` value naming a folder of PNGs
_PNG_NAME = re.compile(r"\d{6}\.png")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def count_frames(path: Path, label: str | None = None) -> int:
    """Number of frames: decoded (grab without retrieve) for a video, since the container's
    frame count can lie; the number of ``NNNNNN.png`` files for a folder."""
    label = label or str(path)
    if path.is_dir():
        return len(png_frames(path, label))
    count = 0
    with _open_video(path, label) as capture:
        while capture.grab():
            count += 1
    if count == 0:
        raise InputError(label, "the video holds no decodable frame")
    return count


def frame_size(path: Path, label: str | None = None) -> tuple[int, int]:
    """(width, height) of the frames. A video's first frame is decoded (OpenCV applies the
    rotation metadata, so this is the size the pipeline sees); every PNG's header is read
    and all must agree."""
    label = label or str(path)
    if path.is_dir():
        sizes = {}
        for png in png_frames(path, label):
            size = png_size(png, _inside(label, png.name))
            sizes.setdefault(size, png)
            if len(sizes) > 1:
                first = next(iter(sizes))
                raise InputError(
                    _inside(label, png.name),
                    f"frame is {size[0]}x{size[1]}, expected {first[0]}x{first[1]} "
                    "like the frames before it",
                )
        return next(iter(sizes))
    with _open_video(path, label) as capture:
        ok, image = capture.read()
    if not ok or image is None:
        raise InputError(label, "the video holds no decodable frame")
    return int(image.shape[1]), int(image.shape[0])


def iter_frames(path: Path, label: str | None = None) -> Iterator[np.ndarray]:
    """Yield the frames in order as H x W x 3 RGB uint8 arrays, one decoded at a time."""
    label = label or str(path)
    first_shape: tuple[int, ...] | None = None
    for where, image in _decoded(path, label):
        if first_shape is None:
            first_shape = image.shape
        elif image.shape != first_shape:
            raise InputError(where, f"frame size changed from {first_shape} to {image.shape}")
        yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def png_frames(folder: Path, label: str | None = None) -> list[Path]:
    """The folder's ``000000.png, 000001.png, …`` in order; gaps and stray files are errors
    (hidden files such as ``.DS_Store`` are ignored)."""
    label = label or str(folder)
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    except OSError as exc:
        raise InputError(label, f"cannot list the folder: {exc.strerror or exc}") from None
    names = sorted(e.name for e in entries)
    for entry in entries:
        if not _PNG_NAME.fullmatch(entry.name) or not entry.is_file():
            raise InputError(
                _inside(label, entry.name), "unexpected entry (expected only files NNNNNN.png)"
            )
    if not names:
        raise InputError(label, "no frames (expected 000000.png, 000001.png, ...)")
    for index, name in enumerate(names):
        if name != f"{index:06d}.png":
            raise InputError(label, f"{index:06d}.png is missing (frames must have no gaps)")
    return [folder / name for name in names]


def png_size(path: Path, label: str) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR header, without decoding the image."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise InputError(label, f"cannot read: {exc.strerror or exc}") from None
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise InputError(label, "not a PNG image")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _decoded(path: Path, label: str) -> Iterator[tuple[str, np.ndarray]]:
    """(where, BGR image) for each frame of a video or PNG folder."""
    if path.is_dir():
        for png in png_frames(path, label):
            where = _inside(label, png.name)
            image = cv2.imread(str(png), cv2.IMREAD_COLOR)
            if image is None:
                raise InputError(where, "cannot be decoded as a PNG image")
            yield where, image
        return
    with _open_video(path, label) as capture:
        index = 0
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                return
            yield f"{label} frame {index}", image
            index += 1


def _inside(folder_label: str, name: str) -> str:
    return f"{folder_label.rstrip('/')}/{name}"


@contextmanager
def _open_video(path: Path, label: str) -> Iterator[cv2.VideoCapture]:
    if not path.is_file():
        raise InputError(label, "video file not found")
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no WARN on a bad file
    try:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if not capture.isOpened():
        raise InputError(label, "not a video OpenCV can decode")
    try:
        yield capture
    finally:
        capture.release()
