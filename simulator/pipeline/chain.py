"""The stage chain, built in one place: track → stylize → smooth → (re-project) → compose.

Replay, live mode, the app's preview and sweeps all build a ``Chain`` from the same
``PipelineSettings`` and only decide *when* to call its stages (the scheduler's job); the
confined worker's child runs the chain's model stage and tracker. The model runs either in
this process (a ``Stylizer``) or in an OS-confined worker process
(``simulator.engine.worker.InferenceWorker``) behind the same ``stylize(rgb, size)`` call:
with face priority on, both the face crop and the background go to the same place, and the
face tracker runs there too, so nothing of a throttled run escapes its confinement.

``process(frame, size)`` runs the stages back to back (preview, live); a replay calls
``stylize`` when an inference starts and ``smooth`` when it ends on the virtual clock, so that
a reset in between (a pose jump, the app going to the background) lands where it would on
the phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from simulator.pipeline.compose import Compositor
from simulator.pipeline.face import FaceTrack, FaceTracker
from simulator.pipeline.face_priority import FacePriority
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.smooth import Smoother
from simulator.pipeline.stylize import Stylizer, input_shape
from simulator.pipeline.warp import warp_to_pose
from simulator.scenario.model import Anchor, Scenario
from simulator.types import Frame, Intrinsics, Pose
from simulator.work_cache import WorkCache, file_hash, key_of
from simulator.zoo.registry import ResolvedModel

if TYPE_CHECKING:
    from simulator.engine.worker import InferenceWorker


class WorkerKilled(Exception):
    """The confined worker died during a model call (the app dies with it)."""

    def __init__(self, cause: str, rss_mb: float | None) -> None:
        super().__init__(cause)
        self.cause, self.rss_mb = cause, rss_mb


class TrackerCounters(Protocol):
    """What a face tracker counts (``FaceTracker`` here, ``TrackerStats`` from the worker)."""

    frames: int
    detections: int
    found: int
    detections_per_s: float


@dataclass(frozen=True, eq=False)
class Stylized:
    """One frame through the model stage. ``input_shapes``: (width, height) of each model
    call (two with face priority: the face crop and the background), which the cost model
    charges; ``measured_ms``: their latency summed as measured in the confined worker (None
    in-process); ``worker_rss_mb``: the worker's resident memory after the last call."""

    image: np.ndarray
    size: int
    input_shapes: tuple[tuple[int, int], ...]
    face_box: tuple[int, int, int, int] | None = None
    face_flops_share: float | None = None  # None: face priority did not render this frame
    measured_ms: float | None = None
    worker_rss_mb: float | None = None


@dataclass(frozen=True, eq=False)
class Processed:
    """``process``'s result: the model stage, the smoothed picture, the composed screen."""

    stylized: Stylized
    image: np.ndarray
    screen: np.ndarray


@dataclass
class _WorkerCalls:
    """The confined worker behind ``Stylizer.stylize``'s signature, keeping the measured
    latency of each call; a dead worker raises ``WorkerKilled``."""

    worker: InferenceWorker
    measured: list[float] = field(default_factory=list)
    rss_mb: float | None = None

    def stylize(self, rgb: np.ndarray, size: int) -> np.ndarray:
        reply = self.worker.infer(rgb, size)
        self.rss_mb = reply.rss_mb
        if reply.killed or reply.output is None:
            raise WorkerKilled(reply.killed or "worker died", reply.rss_mb)
        self.measured.append(reply.latency_ms)
        return reply.output


def scene_pipeline(pipeline: PipelineSettings, scene_depth_m: float | None) -> PipelineSettings:
    """The settings with a scene's declared depth as the plane pose smoothing and warped
    reuse project through (the 2 m default is for scenes that declare none)."""
    if scene_depth_m is None:
        return pipeline
    smoothing = replace(pipeline.smoothing, pose_depth_m=scene_depth_m)
    return replace(pipeline, smoothing=smoothing)


class Chain:
    """The stages of one stream; see the module docstring. ``stylizer`` None: a chain that
    only answers questions about shapes (a timing-only replay decodes and stylizes nothing);
    ``worker``: model calls and face tracking in the confined worker; ``cache``: in-process
    model calls reuse earlier results of the same model, fit, size and pixels
    (simulator/work_cache.py; never with the worker, whose measured latency is the point)."""

    def __init__(
        self,
        settings: PipelineSettings,
        *,
        model: ResolvedModel,
        input_size: int,
        fit: str,
        camera: Intrinsics,
        anchors: Sequence[Anchor] = (),
        stylizer: Stylizer | None = None,
        worker: InferenceWorker | None = None,
        compositor: Compositor | None = None,
        cache: WorkCache | None = None,
    ) -> None:
        settings.validate()
        self.settings = settings
        self.model, self.input_size, self.fit, self.camera = model, input_size, fit, camera
        self.stylizer = stylizer
        self.worker = worker
        self.cache = cache
        self._model_key: str | None = None
        self.compositor = compositor or Compositor(camera, anchors)
        self.images = stylizer is not None
        face_on = settings.face.enabled and self.images
        self.face = FacePriority(stylizer, settings.face.priority) if face_on else None
        self._tracker = FaceTracker(settings.face.tracker) if face_on and worker is None \
            else None
        self.smoother = Smoother(settings.smoothing, camera) if self.images else None

    @classmethod
    def for_scenario(cls, settings: PipelineSettings, scenario: Scenario, *,
                     model: ResolvedModel, input_size: int, fit: str,
                     stylizer: Stylizer | None = None,
                     worker: InferenceWorker | None = None,
                     cache: WorkCache | None = None) -> Chain:
        """The chain for a scenario's frames: its camera, anchors and scene depth."""
        return cls(scene_pipeline(settings, scenario.scene_depth_m), model=model,
                   input_size=input_size, fit=fit, camera=scenario.camera, anchors=scenario.anchors,
                   stylizer=stylizer, worker=worker, cache=cache)

    # --- the stages ---------------------------------------------------------------------------

    def track(self, frame: Frame) -> FaceTrack | None:
        """The face track on this frame (face priority only; in the worker when confined).
        Detection runs beside the camera thread (MediaPipe's own graph thread): it costs
        phone CPU time but does not delay the frame."""
        if self.face is None:
            return None
        if self.worker is not None:
            return self.worker.track(frame.time, frame.image, frame.index,
                                     self.settings.face.tracker)
        assert self._tracker is not None
        return self._tracker.update(frame.time, frame.image, frame.index)

    @property
    def tracker_counters(self) -> TrackerCounters | None:
        """The face tracker's counters (None without face priority)."""
        if self.face is None:
            return None
        return self._tracker if self._tracker is not None else self.worker.tracker_stats

    def input_shape(self, size: int) -> tuple[int, int]:
        """(width, height) of the model input for a whole camera frame at ``size``."""
        return input_shape(self.model.card, size, self.camera.width, self.camera.height,
                           self.fit)

    def stylize(self, rgb: np.ndarray, size: int, track: FaceTrack | None = None) -> Stylized:
        """The model stage: the frame at ``size``, or with a face track the face crop at the
        model's size and the rest cheaper (face priority). Raises ``WorkerKilled`` when the
        confined worker dies."""
        assert self.stylizer is not None, "a shapes-only chain stylizes nothing"
        calls = _WorkerCalls(self.worker) if self.worker is not None else None
        run = calls.stylize if calls is not None else self._model_call
        if self.face is not None and track is not None:
            result = self.face.render(rgb, track, run)
            shapes = [] if result.face_size is None else [(result.face_size,) * 2]  # square
            if result.background_size is not None:
                shapes.append(self.input_shape(result.background_size))
            stylized = Stylized(result.image, size, tuple(shapes), result.face_box,
                                result.face_flops_share)
        else:
            stylized = Stylized(run(rgb, size), size, (self.input_shape(size),))
        if calls is None:
            return stylized
        return Stylized(stylized.image, size, stylized.input_shapes, stylized.face_box,
                        stylized.face_flops_share, sum(calls.measured), calls.rss_mb)

    def _model_call(self, rgb: np.ndarray, size: int) -> np.ndarray:
        """One in-process model call, through the cache when there is one."""
        assert self.stylizer is not None
        if self.cache is None:
            return self.stylizer.stylize(rgb, size)
        if self._model_key is None:  # what, besides the pixels and size, decides the output
            self._model_key = key_of(self.stylizer.runtime_id, file_hash(self.model.path),
                                     self.stylizer.fit)
        return self.cache.get_or_compute("stylized", key_of(self._model_key, size, rgb),
                                         lambda: self.stylizer.stylize(rgb, size))

    def smooth(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """Temporal smoothing of a result stylized from ``frame``."""
        assert self.smoother is not None
        return self.smoother.apply(image, frame.image, frame.pose, frame.tracking)

    def reproject(self, image: np.ndarray, source: Pose, target: Pose) -> np.ndarray:
        """A result re-projected from the pose it was stylized at to another (warped reuse)."""
        return warp_to_pose(image, self.camera, source, target,
                            depth_m=self.settings.smoothing.pose_depth_m)

    def compose(self, image: np.ndarray, pose: Pose, tracking: str, hud: str = "",
                camera: Intrinsics | None = None) -> np.ndarray:
        """The phone screen: anchors drawn with ``pose``, the HUD line."""
        return self.compositor.compose(image, pose, tracking, hud, camera=camera)

    def process(self, frame: Frame, size: int | None = None, hud: str = "") -> Processed:
        """Every stage back to back on one frame."""
        stylized = self.stylize(frame.image, size or self.input_size, self.track(frame))
        image = self.smooth(stylized.image, frame)
        return Processed(stylized, image, self.compose(image, frame.pose, frame.tracking, hud))

    def reset(self) -> None:
        """Forget the temporal state (a cut, a pose jump, the app resuming)."""
        if self.smoother is not None:
            self.smoother.reset()

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
