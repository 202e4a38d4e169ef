"""A loaded, validated scenario (format ``arsim-scenario/1`` or ``/1.1``) and its parts."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType

import numpy as np

from simulator.errors import InputError
from simulator.scenario.poses import Trajectory
from simulator.scenario.video import FRAMES_DIR, iter_frames
from simulator.types import Frame, Intrinsics, Pose
from simulator.work_cache import WorkCache, file_hash, key_of


def file_label(source_path: Path, name: str, *, zipped: bool) -> str:
    """How error messages name a scenario file: ``walk/frames.csv`` or ``walk.zip:frames.csv``."""
    if zipped:
        return f"{source_path}:{name}"
    return str(source_path / name) + ("/" if name.endswith("/") else "")  # keep "frames/"


@dataclass(frozen=True, eq=False)
class Anchor:
    """A virtual box in the world: centre ``position`` (3,), unit quaternion ``rotation``
    (4, x y z w) and extents ``size`` (3,), in metres. Compared by identity (holds arrays)."""

    id: str
    position: np.ndarray
    rotation: np.ndarray
    size: np.ndarray


@dataclass(frozen=True)
class ScenarioEvent:
    """A time-stamped event: ``background``, ``foreground``, ``memory_pressure`` (``mb``)
    or ``thermal`` (``factor``)."""

    t: float
    type: str
    mb: float | None = None
    factor: float | None = None


@dataclass(frozen=True)
class Discontinuity:
    """A break in the recording that smoothing and reuse must not bridge: a pose ``jump``
    (relocalisation), a pose ``gap`` (no samples for a while) or a frame ``gap`` (dropped
    frames). ``frame`` is the first frame after it; ``t`` its time (session seconds)."""

    t: float
    frame: int
    kind: str
    detail: str


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario. ``root`` is the folder holding its files (a temporary folder
    for a ``.zip``, removed by ``close()``); ``source_path`` is what the user gave.

    Times are session seconds: the file's clock minus ``clock_offset_s`` (the first frame's
    timestamp), so the replay does not depend on the clock's origin. Positions are metres,
    or metre-equivalents when the recording's scale is unknown but a scene depth is
    (``scale_source`` says which; ``pose_scale`` None: no scale, pose-based stages refused).
    """

    root: Path
    source_path: Path
    name: str
    description: str
    video: str
    fps: float
    camera: Intrinsics
    source: dict[str, str]
    anchors: list[Anchor]
    events: list[ScenarioEvent]
    expect: dict[str, float]
    frame_times: np.ndarray  # (N,) float64, strictly increasing, inside the trajectory
    tracking: list[str]  # (N,) "tracking" | "limited" | "lost"
    trajectory: Trajectory
    # Owns the extraction folder of a .zip scenario; also removed when garbage-collected.
    extracted: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    format: str = "arsim-scenario/1"
    clock_offset_s: float = 0.0  # the first frame's timestamp on the recording's clock
    intrinsics: np.ndarray | None = None  # (N, 4) fx fy cx cy per frame, or None
    poses_available: bool = True  # False: a video without poses (tracking unavailable)
    metric: bool = True  # the file's pose units are metres
    pose_scale: float | None = 1.0  # metres per file unit applied at load; None: unknown
    scale_source: str = "metric poses"
    scene_depth_m: float | None = None  # declared typical depth of the scene (pose stages)
    discontinuities: tuple[Discontinuity, ...] = ()
    warnings: tuple[str, ...] = ()  # what validate/info show besides errors

    @property
    def breaks(self) -> frozenset[int]:
        """Frames that follow a discontinuity: smoothing and reuse restart there."""
        return frozenset(d.frame for d in self.discontinuities)

    @property
    def pose_stages_problem(self) -> str | None:
        """Why pose-based stages (pose smoothing, warped reuse) cannot run, or None."""
        if not self.poses_available:
            return "the scenario has no poses (a video only: tracking unavailable)"
        if self.pose_scale is None:
            return (
                "its poses are not metric (poses.metric false) and no scene depth is known; "
                "give poses.scale (metres per unit) or poses.scene_depth in scenario.json, "
                "place an anchor (arsim scenario anchor add), or re-import with --scale"
            )
        return None

    def camera_at(self, index: int) -> Intrinsics:
        """The intrinsics of frame ``index`` (per-frame ones when the scenario has them)."""
        if self.intrinsics is None:
            return self.camera
        fx, fy, cx, cy = (float(v) for v in self.intrinsics[index])
        cam = self.camera
        return Intrinsics(cam.width, cam.height, fx, fy, cx, cy, cam.distortion)

    @property
    def frame_count(self) -> int:
        return len(self.frame_times)

    @property
    def duration_s(self) -> float:
        """Time from the first frame to the end of the last one (one nominal interval)."""
        return float(self.frame_times[-1] - self.frame_times[0]) + 1.0 / self.fps

    @property
    def video_path(self) -> Path:
        """The video file, or the ``frames/`` folder of PNGs."""
        return self.root / (FRAMES_DIR.rstrip("/") if self.video == FRAMES_DIR else self.video)

    def pose_at(self, t: float) -> Pose:
        """Interpolated camera-to-world pose at time ``t`` (inside the trajectory). At a
        camera frame's time it is that frame's pose from ``frame_poses`` (the same values,
        without interpolating one time at a time: 0.1 ms per frame)."""
        index = self._frame_index.get(t)
        if index is None:
            return self.trajectory.at(t)
        positions, quats = self.frame_poses
        return Pose(t=positions[index], q=quats[index])

    @cached_property
    def frame_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (N, 3) and quaternions (N, 4) of every camera frame, interpolated at once
        (read-only)."""
        positions, quats = self.trajectory.at_many(self.frame_times)
        positions.flags.writeable = quats.flags.writeable = False
        return positions, quats

    @cached_property
    def _frame_index(self) -> dict[float, int]:
        return {float(t): i for i, t in enumerate(self.frame_times)}

    def frames(self, cache: WorkCache | None = None) -> Iterator[Frame]:
        """Stream the frames in order: decoded image (RGB uint8) with its capture time,
        interpolated pose and tracking state. Only one image is held at a time, unless
        ``cache`` keeps decoded frames (then they are shared and read-only)."""
        positions, quats = self.frame_poses
        label = file_label(self.source_path, self.video, zipped=self.extracted is not None)
        decoded = self._images(label, cache)
        for index, time in enumerate(self.frame_times):
            image = next(decoded, None)
            if image is None:
                raise InputError(label, f"ended after {index} frames, expected {self.frame_count}")
            yield Frame(
                index=index,
                time=float(time),
                image=image,
                pose=Pose(t=positions[index], q=quats[index]),
                tracking=self.tracking[index],
            )

    def _images(self, label: str, cache: WorkCache | None) -> Iterator[np.ndarray]:
        """The decoded images in order; a video decoded before in this process comes from
        the cache's memory (a matrix replays one scenario for every device)."""
        decoded = iter_frames(self.video_path, label)
        if cache is None or self.video_path.is_dir():
            yield from decoded
            return
        video = key_of("video", file_hash(self.video_path))
        position = 0  # images the decoder has given
        for index in range(self.frame_count):
            key = key_of(video, index)
            image = cache.lookup("decoded", key)
            if image is None:
                while position <= index:  # the decoder catches up (it starts lazily)
                    image = next(decoded, None)
                    position += 1
                    if image is None:
                        return
                image = cache.store("decoded", key, image)
            yield image

    def close(self) -> None:
        """Remove the extraction folder of a ``.zip`` scenario (nothing for a folder)."""
        if self.extracted is not None:
            self.extracted.cleanup()

    def __enter__(self) -> Scenario:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
