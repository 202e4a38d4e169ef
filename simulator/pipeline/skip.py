"""Frame skip: stylize this camera frame, or reuse the last result (warped to this frame)?

The decision is the seed's "result reuse": when adjacent frames barely change, skip the
inference and show the last result again. Change is measured two ways, both cheap on a
phone: the mean absolute difference of tiny grey thumbnails (scene and lighting change)
and the camera's pose delta (ego-motion, free from the AR framework).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.types import Pose

REUSE_MODES = ("off", "repeat", "warp")
THUMB_SIZE = (32, 18)  # thumbnail for the input difference: ~600 pixels


@dataclass(frozen=True)
class SkipSettings:
    """``reuse``: "off" (never show an old result as a new frame), "repeat" (keep showing
    it: not a new displayed frame), "warp" (re-project it to each new camera pose: a new
    displayed frame). ``skip`` lets the policy skip inference on frames that barely changed
    even when the worker is free; thresholds are on the [0, 255] grey thumbnail and on the
    pose delta since the last stylized frame; ``max_age`` bounds how many camera frames a
    result may be reused before a fresh one is forced."""

    reuse: str = "off"
    skip: bool = False
    diff_threshold: float = 3.0
    rotation_deg: float = 2.0
    translation_m: float = 0.03
    max_age: int = 6

    def validate(self) -> None:
        if self.reuse not in REUSE_MODES:
            raise InputError("skip", f"reuse must be one of {', '.join(REUSE_MODES)}, "
                             f"got {self.reuse!r}")
        for name in ("diff_threshold", "rotation_deg", "translation_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError("skip", f"{name} must be a number >= 0, got {value!r}")
        if self.max_age < 1:
            raise InputError("skip", f"max_age must be >= 1 frame, got {self.max_age}")
        if self.skip and self.reuse == "off":
            raise InputError("skip", "skipping inference needs a reuse mode (repeat or warp)")


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """Tiny grey float32 thumbnail used for the input-change test."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


def pose_delta(a: Pose, b: Pose) -> tuple[float, float]:
    """(rotation angle in degrees, translation in metres) between two poses."""
    dot = abs(float(np.dot(a.q, b.q)))
    angle = math.degrees(2.0 * math.acos(min(1.0, dot)))
    return angle, float(np.linalg.norm(np.asarray(a.t) - np.asarray(b.t)))


class SkipPolicy:
    """Remembers the last stylized frame and judges each new frame against it."""

    def __init__(self, settings: SkipSettings) -> None:
        settings.validate()
        self.settings = settings
        self._thumb: np.ndarray | None = None
        self._pose: Pose | None = None
        self.age = 0  # camera frames since the last stylized one

    def new_frame(self) -> None:
        """A camera frame arrived (whether or not it is judged)."""
        self.age += 1

    def stylized(self, thumb: np.ndarray | None, pose: Pose) -> None:
        """Record that this frame goes to the model."""
        self._thumb, self._pose, self.age = thumb, pose, 0

    def should_skip(self, thumb: np.ndarray | None, pose: Pose) -> bool:
        """True when this frame may reuse the last result instead of being stylized.
        Without images (timing-only replays) only the pose delta decides."""
        s = self.settings
        if not s.skip or self._pose is None or self.age > s.max_age:
            return False
        angle, shift = pose_delta(self._pose, pose)
        if angle > s.rotation_deg or shift > s.translation_m:
            return False
        if thumb is not None and self._thumb is not None:
            return float(np.mean(np.abs(thumb - self._thumb))) <= s.diff_threshold
        return True
