"""What every importer produces: a ``Recording`` (frames, clock, camera, poses) in the
scenario format's conventions, which ``importers.output.write_recording`` turns into a
scenario folder.

Conventions an importer converts *to* (``simulator.scenario.importers.convert`` has the
shared conversions):

- poses camera-to-world, right-handed, world y up, the camera looking down its −z with x to
  the right of the image (ARKit's convention);
- positions in metres (``metric`` False when the source's scale is unknown: COLMAP, NeRF
  exports);
- timestamps as integer nanoseconds on the source's own clock (epoch, boot time, ...): the
  writer rebases them to seconds from the first frame and records the offset, so nothing is
  lost to floating point on an epoch clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from simulator.types import Intrinsics

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoFrames:
    """Frames in a video file the scenario can carry as it is (OpenCV decodes it; rotation
    metadata applied). ``keep``: indices of the decoded frames that are part of the
    recording, when not all of them are (the writer then re-encodes)."""

    path: Path
    keep: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ImageFrames:
    """One image file per frame (JPEG or PNG), copied into ``frames/`` unchanged when they
    share one extension and size."""

    paths: tuple[Path, ...]


@dataclass(frozen=True)
class DecodedFrames:
    """Frames the importer decodes itself (e.g. images inside a bag): ``open()`` yields
    ``count`` RGB uint8 images in order; ``lossy`` images are stored as JPEG, others PNG."""

    count: int
    open: Callable[[], Iterator[np.ndarray]]
    lossy: bool = True


FrameSource = VideoFrames | ImageFrames | DecodedFrames


@dataclass(frozen=True, eq=False)
class PoseTrack:
    """Camera-to-world poses in the scenario convention: ``ns`` (N,) int64 timestamps on the
    source clock, ``positions`` (N, 3), unit ``quaternions`` (N, 4, x y z w)."""

    ns: np.ndarray
    positions: np.ndarray
    quaternions: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ns)
        if self.positions.shape != (n, 3) or self.quaternions.shape != (n, 4):
            raise ValueError("PoseTrack needs (N,) times, (N, 3) positions, (N, 4) quaternions")


@dataclass(eq=False)
class Recording:
    """A capture read by an importer, before it is written as a scenario."""

    format: str  # the importer's name
    camera: Intrinsics  # of the frames as decoded (after rotation metadata)
    frames: FrameSource
    frame_ns: np.ndarray  # (N,) int64, source clock, strictly increasing
    poses: PoseTrack | None  # None: a video without poses (tracking unavailable)
    tracking: list[str] | None = None  # per frame; None: "tracking" (or "unavailable")
    intrinsics: np.ndarray | None = None  # (N, 4) fx fy cx cy per frame (autofocus, zoom)
    metric: bool = True  # positions are metres
    fps: float | None = None  # nominal frame rate; None: measured from the frame times
    device: str = ""
    app: str = ""
    recorded: str = ""  # ISO 8601 date
    axes: str = ""  # the axis conversion done, in words
    clock: str = ""  # what the source clock is (e.g. "Unix epoch", "seconds since boot")
    notes: list[str] = field(default_factory=list)  # other conversions, in words
    anchors: list[dict] = field(default_factory=list)  # scenario.json anchor objects

    @property
    def frame_count(self) -> int:
        return len(self.frame_ns)


@dataclass(frozen=True)
class ImportOptions:
    """Choices the user can make at import (``arsim scenario import`` flags)."""

    name: str | None = None  # scenario name; default from the source's name
    fps: float | None = None  # frame rate for sources without timestamps (transforms.json)
    up: str | None = None  # world up axis of the source ("+z", "-y", ...); None: auto
    scale: float | None = None  # metres per source unit (makes non-metric poses metric)
    undistort: bool = False  # undistort the frames (then no distortion in scenario.json)
    image_topic: str | None = None  # ROS bags
    pose_topic: str | None = None  # ROS bags: PoseStamped, Odometry, TransformStamped or /tf
    camera_frame: str | None = None  # ROS bags with /tf: the camera's frame id
    max_frames: int | None = None  # keep the first N frames (trim long captures)


class Importer(Protocol):
    """One capture format. ``why_not`` says why ``src`` is not of this format (None when it
    is): auto-detection names each importer's reason when none fits."""

    name: str
    description: str

    def why_not(self, src: Path) -> str | None: ...

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        ...
