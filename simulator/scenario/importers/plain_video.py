"""A plain video without poses (a phone clip: .mp4, .mov, .mkv, ...), the catch-all format.

Any file FFmpeg (through PyAV) opens with a video stream, other than a still image, is
accepted; it is last in the detection order, so every format with poses is tried first.

What the importer reads and converts:

- frame times: the container's own presentation timestamps of each decoded frame (``pts x
  time_base``, exact rational arithmetic to integer ns): phone videos have a variable frame
  rate, and a nominal rate would misplace frames. The clock is seconds from the video's
  start; the writer rebases it to the first frame. A video without usable timestamps gets
  frame i at i / fps (``--fps``, else the stream's rate), said in the notes;
- rotation: a phone records portrait clips as landscape pixels plus a display matrix;
  OpenCV applies it when decoding (as the replay does), so the camera's size is the size
  OpenCV decodes, compared with PyAV's reading of the display matrix (a disagreement is
  noted). A portrait clip stays portrait;
- intrinsics: unknown (a video does not carry them): a 65 degree field of view across the
  long side of the image (typical of a phone's main camera), principal point centred, no
  distortion, said in the notes;
- poses: none (``Recording.poses`` None: every frame's tracking is "unavailable"; stages
  that need poses are refused at replay);
- the file is carried as it is (VideoFrames); its OpenCV frame count must equal the number
  of timestamps (the writer checks it);
- the capture date (QuickTime ``creationdate``, else ``creation_time``) and the phone's
  make/model tags (QuickTime ``com.apple.quicktime.*``, Android ``com.android.*``) become
  ``source.recorded`` / ``source.device`` when present.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import check_user_file
from simulator.scenario.importers import convert
from simulator.scenario.importers.base import (
    ImportOptions,
    Progress,
    Recording,
    VideoFrames,
)
from simulator.scenario.video import frame_size
from simulator.types import Intrinsics

DEFAULT_FOV_DEG = 65.0  # across the long side: a phone's main camera
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".heic"}
_STILL_FORMATS = {"image2", "tty"}  # also every "*_pipe" demuxer (single images)


def _open(path: Path, label: str):  # returns an av container
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except Exception as exc:  # av raises FFmpegError subclasses and OSError
        raise InputError(label, f"cannot be opened as a video ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


class PlainVideoImporter:
    name = "plain_video"
    description = ("a plain video file without poses (a phone clip): frame times from the "
                   "container, rotation metadata applied, tracking unavailable")

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if not src.is_file():
            return "not a file" if not src.is_dir() else "a folder, not a video file"
        if src.suffix.lower() in IMAGE_SUFFIXES:
            return "an image, not a video"
        try:
            check_user_file(src, str(src))
            container = _open(src, str(src))
        except InputError as exc:
            return exc.problem
        try:
            fmt = container.format.name
            if fmt in _STILL_FORMATS or fmt.endswith("_pipe"):
                return f"a still image ({fmt}), not a video"
            if not container.streams.video:
                return "no video stream"
        finally:
            container.close()
        return None

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        label = str(src)
        check_user_file(src, label)
        notes: list[str] = []
        container = _open(src, label)
        try:
            if not container.streams.video:
                raise InputError(label, "holds no video stream")
            stream = container.streams.video[0]
            if len(container.streams.video) > 1:
                notes.append(f"{len(container.streams.video)} video streams: the first used")
            tags = {str(k).lower(): str(v) for k, v in container.metadata.items()}
            tags.update({str(k).lower(): str(v) for k, v in stream.metadata.items()
                         if str(k).lower() not in tags})
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            total = int(stream.frames or 0)
            pts, rotation, stored = _decode_times(container, stream, label, progress, total)
        finally:
            container.close()

        fps = options.fps or (float(rate) if rate and 1 <= float(rate) <= 240 else 30.0)
        if pts is None:
            frame_ns = convert.frames_at_fps(len(stored), fps)
            notes.append(f"the video's timestamps are unusable: frame i at i / {fps:g} s")
        else:
            frame_ns = pts
            notes.append("frame times from the container's presentation timestamps "
                         "(variable frame rate kept)")
        width, height = frame_size(src, label)  # as OpenCV decodes it, rotation applied
        clockwise = (-rotation) % 360
        expected = stored[0] if clockwise in (0, 180) else stored[0][::-1]
        if clockwise:
            notes.append(f"rotation metadata: displayed turned {clockwise} deg clockwise, "
                         f"stored {stored[0][0]}x{stored[0][1]}, decoded {width}x{height}")
        if (width, height) != tuple(expected):
            notes.append(f"OpenCV decodes {width}x{height} but the rotation metadata says "
                         f"{expected[0]}x{expected[1]}: the decoded size is used")
        f = (max(width, height) / 2) / math.tan(math.radians(DEFAULT_FOV_DEG / 2))
        notes.append(f"intrinsics unknown: a {DEFAULT_FOV_DEG:g} degree field of view across "
                     f"the long side assumed (f = {f:.1f} px, centred, no distortion)")
        notes.append("no poses: tracking unavailable")
        camera = Intrinsics(width, height, f, f, (width - 1) / 2, (height - 1) / 2)
        return Recording(
            format=self.name,
            camera=camera,
            frames=VideoFrames(src),
            frame_ns=frame_ns,
            poses=None,
            device=_device(tags),
            recorded=tags.get("com.apple.quicktime.creationdate") or tags.get("creation_time", ""),
            clock="seconds from the video's start (container presentation timestamps)",
            axes="no poses",
            notes=notes,
        )


def _decode_times(
    container, stream, label: str, progress: Progress | None, total: int
) -> tuple[np.ndarray | None, int, list[tuple[int, int]]]:
    """Each decoded frame's time (ns; None when some frame has no timestamp or times do not
    increase), the first frame's PyAV rotation (degrees, counter-clockwise) and the stored
    (width, height) of each frame."""
    stream.thread_type = "AUTO"
    times: list[int | None] = []
    sizes: list[tuple[int, int]] = []
    rotation = 0
    try:
        for frame in container.decode(stream):
            if not sizes:
                rotation = round(frame.rotation or 0)
            sizes.append((frame.width, frame.height))
            base = frame.time_base or stream.time_base
            if frame.pts is None or base is None:
                times.append(None)
            else:
                times.append(round(Fraction(frame.pts) * Fraction(base) * convert.NS_PER_S))
            if progress and len(times) % 64 == 0:
                progress(len(times), max(total, len(times)))
    except Exception as exc:  # a broken file: av raises FFmpegError subclasses
        if not times:
            raise InputError(label, f"cannot be decoded ({_first_line(exc)})") from None
        raise InputError(label, f"frame {len(times)} cannot be decoded "
                         f"({_first_line(exc)})") from None
    if not times:
        raise InputError(label, "the video holds no decodable frame")
    if progress:
        progress(len(times), len(times))
    if any(t is None for t in times):
        return None, rotation, sizes
    ns = np.array(times, dtype=np.int64)
    if len(ns) > 1 and not np.all(np.diff(ns) > 0):
        k = int(np.argmax(np.diff(ns) <= 0)) + 1
        raise InputError(label, f"frame {k}: presentation time {ns[k] / 1e9:.6f} s does not "
                         "increase (expected strictly increasing frame times)")
    return ns, rotation, sizes


def _device(tags: dict[str, str]) -> str:
    for make, model in (("com.apple.quicktime.make", "com.apple.quicktime.model"),
                        ("com.android.manufacturer", "com.android.model")):
        text = " ".join(tags[k] for k in (make, model) if tags.get(k))
        if text:
            return text
    return ""


IMPORTER = PlainVideoImporter()
