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

FRAMES_DIR = "frames/"  # the `video` value naming a folder of frame images
# NNNNNN.png, or (format 1.1) NNNNNN.jpg / NNNNNN.jpeg: phone captures are JPEG
_FRAME_NAME = re.compile(r"(\d{6})\.(png|jpg|jpeg)")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
# JPEG start-of-frame markers (baseline, progressive, ...) that carry the image size
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def count_frames(path: Path, label: str | None = None) -> int:
    """Number of frames: decoded (grab without retrieve) for a video, since the container's
    frame count can lie; the number of ``NNNNNN.png`` files for a folder. A video's count is
    remembered by its content (the work cache, simulator/work_cache.py), so each video is
    decoded to count it once, not at every load."""
    label = label or str(path)
    if path.is_dir():
        return len(png_frames(path, label))
    from simulator.work_cache import cache_dir, file_hash, key_of, shared_cache

    counted = shared_cache(cache_dir(), memory_bytes=1 << 20).get_or_compute(
        "video", key_of("frame count", file_hash(path)),
        lambda: np.array([_decoded_count(path, label)], dtype=np.int64))
    return int(counted[0])


def _decoded_count(path: Path, label: str) -> int:
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
            size = image_size(png, _inside(label, png.name))
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
    """The folder's ``000000.png, 000001.png, …`` (or ``.jpg``/``.jpeg``, one extension for
    all) in order; gaps, mixed extensions, links and stray files are errors (hidden files
    such as ``.DS_Store`` are ignored)."""
    label = label or str(folder)
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    except OSError as exc:
        raise InputError(label, f"cannot list the folder: {exc.strerror or exc}") from None
    names = sorted(e.name for e in entries)
    extensions = set()
    for entry in entries:
        match = _FRAME_NAME.fullmatch(entry.name)
        if not match or entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            raise InputError(
                _inside(label, entry.name),
                "unexpected entry (expected only files NNNNNN.png or NNNNNN.jpg, no links)",
            )
        extensions.add(match.group(2))
    if not names:
        raise InputError(label, "no frames (expected 000000.png, 000001.png, ...)")
    if len(extensions) > 1:
        raise InputError(label, f"frames mix extensions {', '.join(sorted(extensions))} "
                         "(expected one for all frames)")
    ext = extensions.pop()
    for index, name in enumerate(names):
        if name != f"{index:06d}.{ext}":
            raise InputError(label, f"{index:06d}.{ext} is missing (frames must have no gaps)")
    return [folder / name for name in names]


def image_size(path: Path, label: str) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG file from its header, without decoding it."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as exc:
        raise InputError(label, f"cannot read: {exc.strerror or exc}") from None
    if head == _JPEG_SOI:
        return jpeg_size(path, label)
    return png_size(path, label)


def jpeg_size(path: Path, label: str) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment (EXIF orientation is not
    applied: frame files are stored upright)."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != _JPEG_SOI:
                raise InputError(label, "not a JPEG image")
            while True:
                byte = f.read(1)
                while byte and byte != b"\xff":
                    byte = f.read(1)
                while byte == b"\xff":  # fill bytes
                    byte = f.read(1)
                if not byte:
                    raise InputError(label, "JPEG ends before its size (no SOF segment)")
                marker = byte[0]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    continue  # markers without a length
                length_bytes = f.read(2)
                if len(length_bytes) < 2:
                    raise InputError(label, "truncated JPEG")
                length = int.from_bytes(length_bytes, "big")
                if marker in _SOF_MARKERS:
                    data = f.read(5)
                    if len(data) < 5:
                        raise InputError(label, "truncated JPEG")
                    return int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big")
                if length < 2:
                    raise InputError(label, "corrupt JPEG segment length")
                f.seek(length - 2, os.SEEK_CUR)
    except OSError as exc:
        raise InputError(label, f"cannot read: {exc.strerror or exc}") from None


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
            image = cv2.imread(str(png), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            if image is None:
                raise InputError(where, "cannot be decoded as an image")
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
    if path.is_dir():
        raise InputError(label, "is a folder, expected a video file")
    if not path.exists():
        raise InputError(label, "video file not found")
    if not path.is_file():
        raise InputError(label, "not a regular file (a FIFO or device is refused as a video)")
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
