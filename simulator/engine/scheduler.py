"""The mobile design's scheduling rules, in one place and without a clock of their own.

- at most one inference is in flight;
- the latest frame wins: a frame that arrives while the model is busy waits in a single
  slot, and a newer one replaces it (the older is dropped);
- frame skip: a frame that arrives while the model is free and barely differs from the last
  stylized one (``SkipPolicy``) is not stylized; the last result is reused for it;
- dynamic input size: each finished inference's latency feeds the ``SizeController``, whose
  size the next inference runs at.

The replay (engine/replay.py) drives it from virtual-clock events, live mode
(engine/live.py) from its capture and worker threads under one lock; what a frame *is* (an
index with its image, a captured frame) is the caller's, so the scheduler is generic in it.
"""

from __future__ import annotations

from enum import Enum
from typing import Generic, TypeVar

import numpy as np

from simulator.engine.sizing import SizeController
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.skip import SkipPolicy, thumbnail
from simulator.types import Pose

T = TypeVar("T")


class Decision(Enum):
    """What becomes of an offered frame."""

    SKIP = "skip"  # not stylized: the last result is reused for it
    START = "start"  # the model is free: it can start now (``start``)
    WAIT = "wait"  # the model is busy: it waits, unless a newer frame replaces it


class Scheduler(Generic[T]):
    """See the module docstring. Not thread-safe: live mode holds a lock around it."""

    def __init__(self, pipeline: PipelineSettings, input_size: int) -> None:
        self.skip = SkipPolicy(pipeline.skip)
        self.sizes = SizeController(pipeline.sizing, input_size)
        self._thumbs = pipeline.skip.skip
        self._waiting: tuple[T, np.ndarray | None, Pose] | None = None
        self.in_flight: T | None = None

    @property
    def size(self) -> int:
        """The input size the next inference runs at."""
        return self.sizes.size

    def thumbnail(self, image: np.ndarray | None) -> np.ndarray | None:
        """The skip policy's view of a frame (None when skipping is off, or no image)."""
        return thumbnail(image) if self._thumbs and image is not None else None

    def offer(self, item: T, thumb: np.ndarray | None, pose: Pose, *,
              can_reuse: bool) -> Decision:
        """A new camera frame. ``can_reuse``: a result exists that could stand in for it."""
        self.skip.new_frame()
        if self.in_flight is None and can_reuse and self.skip.should_skip(thumb, pose):
            return Decision.SKIP
        self._waiting = (item, thumb, pose)  # latest frame wins
        return Decision.START if self.in_flight is None else Decision.WAIT

    def missed(self) -> None:
        """A camera frame the app did not get (it was in the background, or dead): it
        still ages the last result for the skip policy."""
        self.skip.new_frame()

    def start(self) -> T | None:
        """The waiting frame goes to the model; None when none waits or the model is busy."""
        if self.in_flight is not None or self._waiting is None:
            return None
        (item, thumb, pose), self._waiting = self._waiting, None
        self.in_flight = item
        self.skip.stylized(thumb, pose)
        return item

    def finished(self, t: float, latency_ms: float) -> T | None:
        """The inference in flight ended at ``t`` after ``latency_ms``; returns its frame."""
        item, self.in_flight = self.in_flight, None
        self.sizes.observe(t, latency_ms)
        return item

    def drop_waiting(self) -> None:
        """The waiting frame will never be stylized (the app went to the background)."""
        self._waiting = None

    def clear(self) -> None:
        """The app died: nothing waits, nothing is in flight."""
        self._waiting, self.in_flight = None, None
