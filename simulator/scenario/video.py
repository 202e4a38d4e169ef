"""Camera frames of a scenario: a video file OpenCV decodes, or a ``frames/`` folder of PNGs.

Frames are streamed one at a time (RGB, uint8); nothing holds a whole video in memory.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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
    """Number of frames: for a video, the sample count of its container when that count is
    unambiguous (``container_frame_count``: an MP4/MOV file, no time read), else decoded
    (grab without retrieve) and remembered by the file's content (the work cache,
    simulator/work_cache.py), so such a video is decoded to count it once, not at every load;
    the number of ``NNNNNN.png`` files for a folder."""
    label = label or str(path)
    if path.is_dir():
        return len(png_frames(path, label))
    declared = container_frame_count(path)
    if declared is not None:
        return declared
    from simulator.work_cache import cache_dir, file_hash, key_of, shared_cache

    counted = shared_cache(cache_dir(), memory_bytes=1 << 20).get_or_compute(
        "video", key_of("frame count", file_hash(path)),
        lambda: np.array([_decoded_count(path, label)], dtype=np.int64))
    return int(counted[0])


# ISO BMFF (MP4 / MOV) boxes: containers walked into, and the ones read
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
_TOP_LEVEL = {b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov", b"uuid", b"pnot", b"meta"}
_MAX_BOXES = 10_000


def container_frame_count(path: Path) -> int | None:
    """Frames of an MP4/MOV file's video track from its sample table (``stsz``), when every
    frame in it is one the decoder shows; None (decode to count) otherwise.

    The count is trusted only for one video track whose samples are all presented: no
    composition offsets (``ctts``: B-frames, whose reordering can push a frame past an edit),
    an edit list that is absent or a single edit from media time 0 at rate 1 covering the
    whole track (an iPhone clip whose edit ends before its last sample shows one frame fewer
    than it holds), not fragmented (``mvex``), and boxes that end exactly at the end of the
    file (a truncated file is decoded). Other containers (AVI, MKV, WebM) return None.

    Why not PyAV's ``stream.frames``: it is FFmpeg's ``nb_frames``, the raw sample count, and
    ignores the edit list (5 for tests/data/real/phone-video/dolbyVision-hdr.MOV, whose
    decoder shows 4); what this adds is the judgement of when the table can be trusted."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            boxes = _boxes(f, 0, size, top=True)
            if boxes is None or b"moov" not in boxes or b"mvex" in boxes:
                return None
            return _video_samples(f, boxes)
    except (OSError, ValueError, struct.error):
        return None


def _boxes(f: BinaryIO, start: int, end: int, *, top: bool = False,
           found: dict | None = None) -> dict[bytes, list] | None:
    """{type: [(payload start, payload end, children or None)]} of the boxes in [start, end);
    None when a box runs past ``end`` or an unknown box opens the file."""
    found = {} if found is None else found
    pos = start
    count = 0
    while pos < end:
        count += 1
        if count > _MAX_BOXES or end - pos < 8:
            return None
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if length == 1:
            length, header = struct.unpack(">Q", f.read(8))[0], 16
        elif length == 0:
            length = end - pos
        if length < header or pos + length > end or (top and pos == 0 and kind not in _TOP_LEVEL):
            return None
        children = None
        if kind in _CONTAINERS:
            children = _boxes(f, pos + header, pos + length)
            if children is None:
                return None
        found.setdefault(kind, []).append((pos + header, pos + length, children))
        pos += length
    return found


def _payload(f: BinaryIO, box: tuple, size: int) -> bytes:
    f.seek(box[0])
    data = f.read(min(size, box[1] - box[0]))
    if len(data) < size:
        raise ValueError("box too short")
    return data


def _timescale_duration(f: BinaryIO, box: tuple) -> tuple[int, int]:
    """(timescale, duration) of an ``mvhd`` / ``mdhd`` box (version 0 or 1)."""
    if _payload(f, box, 1)[0] == 1:
        return struct.unpack(">IQ", _payload(f, box, 32)[20:32])
    return struct.unpack(">II", _payload(f, box, 20)[12:20])


def _video_samples(f: BinaryIO, top: dict[bytes, list]) -> int | None:
    moov = top[b"moov"][0][2]
    if b"mvhd" not in moov:
        return None
    movie_scale, _ = _timescale_duration(f, moov[b"mvhd"][0])
    videos = []
    for trak in moov.get(b"trak", []):
        mdia = trak[2].get(b"mdia", [(0, 0, {})])[0][2]
        if b"hdlr" in mdia and _payload(f, mdia[b"hdlr"][0], 12)[8:12] == b"vide":
            videos.append((trak[2], mdia))
    if len(videos) != 1:
        return None
    trak, mdia = videos[0]
    stbl = mdia.get(b"minf", [(0, 0, {})])[0][2].get(b"stbl", [(0, 0, {})])[0][2]
    if b"ctts" in stbl or b"mdhd" not in mdia:
        return None
    media_scale, media_duration = _timescale_duration(f, mdia[b"mdhd"][0])
    if b"edts" in trak:
        elst = trak[b"edts"][0][2].get(b"elst")
        if elst is not None:
            head = _payload(f, elst[0], 8)
            version, entries = head[0], struct.unpack(">I", head[4:8])[0]
            if entries != 1:
                return None
            entry = _payload(f, elst[0], 28 if version == 1 else 20)[8:]
            segment, media_time, rate = struct.unpack(">QqI", entry[:20]) if version == 1 \
                else struct.unpack(">IiI", entry[:12])
            # the edit must show the media from its start, at rate 1, to its end (one movie
            # tick of rounding allowed)
            if media_time != 0 or rate != 0x10000 or movie_scale <= 0 or media_scale <= 0 \
                    or (segment + 1) * media_scale < media_duration * movie_scale:
                return None
    for kind, offset in ((b"stsz", 8), (b"stz2", 8)):
        if kind in stbl:
            samples = struct.unpack(">I", _payload(f, stbl[kind][0], offset + 4)[offset:])[0]
            return samples or None
    return None


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
