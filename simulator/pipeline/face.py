"""Face tracker stage: BlazeFace detection (mediapipe) every N frames, a cached track between.

A detection runs when ``detect_every`` frames (by frame index) have passed since the last
one, on a copy of the frame shrunk to ``detect_max_side``. The detected box (centre, size)
and its 6 keypoints are One Euro filtered at the detection times; between detections the
filtered state is carried, moved on by its filtered velocity (``predict``). A track with no
successful detection for more than ``max_age`` frames is dropped. ``detect_every=1`` is
per-frame detection with the same filtering.

mediapipe is imported on first use (it takes about a second); its C++ start-up log lines
are kept off stderr.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.pipeline.one_euro import OneEuroFilter

KEYPOINT_NAMES = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)


@dataclass(frozen=True)
class FaceTrackerSettings:
    """How often to detect, which BlazeFace model, and how the cached track is smoothed.

    ``model_selection`` 0 is the short-range model (faces within ~2 m, large in the frame),
    1 the full-range one (small faces too). ``max_age`` is in frames; ``detect_max_side`` is
    the longer side of the frame the detector sees (0: the full frame). The One Euro
    parameters apply to pixel coordinates (``beta`` in 1/px).
    """

    detect_every: int = 5
    model_selection: int = 1
    min_confidence: float = 0.5
    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0
    max_age: int = 15
    detect_max_side: int = 320
    predict: bool = True

    def validate(self) -> None:
        """InputError("face", ...) for a setting out of range."""
        problems = {
            "detect_every": self.detect_every >= 1,
            "model_selection": self.model_selection in (0, 1),
            "min_confidence": 0.0 <= self.min_confidence <= 1.0,
            "min_cutoff": math.isfinite(self.min_cutoff) and self.min_cutoff > 0,
            "beta": math.isfinite(self.beta) and self.beta >= 0,
            "d_cutoff": math.isfinite(self.d_cutoff) and self.d_cutoff > 0,
            "max_age": self.max_age >= 0,
            "detect_max_side": self.detect_max_side == 0 or self.detect_max_side >= 64,
        }
        expected = {
            "detect_every": "an integer >= 1",
            "model_selection": "0 (short range) or 1 (full range)",
            "min_confidence": "a number in [0, 1]",
            "min_cutoff": "a number > 0 (Hz)",
            "beta": "a number >= 0",
            "d_cutoff": "a number > 0 (Hz)",
            "max_age": "an integer >= 0 (frames)",
            "detect_max_side": "0 (full frame) or an integer >= 64 (pixels)",
        }
        for name, ok in problems.items():
            if not ok:
                raise InputError(
                    "face", f"{name}: expected {expected[name]}, got {getattr(self, name)!r}"
                )


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One raw detection in full-frame pixels: box (x, y, w, h), keypoints (6, 2), score."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2


@dataclass(frozen=True, eq=False)
class FaceTrack:
    """The tracked face on one frame, in full-frame pixels, filtered.

    ``detected``: a detection ran on this frame and found the face; ``age``: frames since
    the last successful detection (0 when ``detected``); ``confidence``: its score;
    ``detection_box``: the detector's own (unfiltered) box when ``detected``, else None.
    """

    box: tuple[float, float, float, float]
    keypoints: np.ndarray  # (6, 2) x, y in KEYPOINT_NAMES order
    confidence: float
    detected: bool
    age: int
    detection_box: tuple[float, float, float, float] | None = None

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2


class FaceTracker:
    """Cached face tracking: ``update`` once per frame, in frame order."""

    def __init__(self, settings: FaceTrackerSettings | None = None) -> None:
        self.settings = settings or FaceTrackerSettings()
        self.settings.validate()
        mp = _import_mediapipe()
        # The graph opens its calculators on its own threads, logging as they go; one
        # warm-up frame makes sure that has finished before stderr is given back.
        with _quiet_stderr():
            self._detector: Any = mp.solutions.face_detection.FaceDetection(
                model_selection=self.settings.model_selection,
                min_detection_confidence=self.settings.min_confidence,
            )
            self._detector.process(np.zeros((64, 64, 3), dtype=np.uint8))
        self._filter = OneEuroFilter(
            self.settings.min_cutoff, self.settings.beta, self.settings.d_cutoff
        )
        self.frames = 0  # frames processed by update
        self.detections = 0  # detector runs
        self.found = 0  # detector runs that found a face
        self.detect_s = 0.0  # host seconds in the detector (resize included)
        self._closed_span_s = 0.0  # capture time of the sequences before the current one
        self._seq_frames = 0  # frames of the current sequence
        self.reset()

    def reset(self) -> None:
        """Forget the track (a new sequence); the counters are kept."""
        if self._seq_frames:
            self._closed_span_s += self._sequence_span()
        self._seq_frames = 0
        self._first_t = self._last_t = 0.0
        self._filter.reset()
        self._last_index: int | None = None
        self._last_attempt: int | None = None
        self._found_index: int | None = None
        self._found_t = 0.0
        self._confidence = 0.0

    # --- the stage ---------------------------------------------------------------------

    def update(self, t: float, rgb: np.ndarray, index: int) -> FaceTrack | None:
        """Track the face on frame ``index`` captured at ``t`` (RGB uint8 H x W x 3).
        A frame index not above the previous one starts a new sequence."""
        if self._last_index is not None and index <= self._last_index:
            self.reset()
        self._last_index = index
        self.frames += 1
        self._seq_frames += 1
        self._first_t = t if self._seq_frames == 1 else self._first_t
        self._last_t = t

        detected, detection_box = False, None
        every = self.settings.detect_every
        if self._last_attempt is None or index - self._last_attempt >= every:
            self._last_attempt = index
            found = self.detect(rgb, near=self._predicted(t))
            if found is not None:
                self._accept(t, index, found)
                detected, detection_box = True, tuple(float(v) for v in found.box)
        if self._found_index is None:
            return None
        age = index - self._found_index
        if age > self.settings.max_age:
            self._filter.reset()
            self._found_index = None
            return None
        state = self._predicted(t)
        assert state is not None  # a face was found and the filter holds it
        return FaceTrack(
            box=_box_of(state),
            keypoints=state[4:].reshape(len(KEYPOINT_NAMES), 2),
            confidence=self._confidence,
            detected=detected,
            age=age,
            detection_box=detection_box,
        )

    def detect(self, rgb: np.ndarray, near: np.ndarray | None = None) -> FaceDetection | None:
        """Run the detector once on ``rgb``: the face nearest to the state ``near`` (when
        given), else the most confident one; None when there is no face. Counted."""
        started = time.perf_counter()
        height, width = rgb.shape[:2]
        small = _shrink(rgb, self.settings.detect_max_side)
        result = self._detector.process(small)
        self.detections += 1
        faces = [_detection(d, width, height) for d in (result.detections or [])]
        self.detect_s += time.perf_counter() - started
        if not faces:
            return None
        self.found += 1
        if near is None:
            return max(faces, key=lambda f: f.score)
        cx, cy = near[0], near[1]
        return min(faces, key=lambda f: math.hypot(f.center[0] - cx, f.center[1] - cy))

    # --- counters ------------------------------------------------------------------------

    @property
    def span_s(self) -> float:
        """Capture time covered by the processed frames, one mean frame interval added
        per sequence (a sequence of one frame counts 0)."""
        return self._closed_span_s + self._sequence_span()

    def _sequence_span(self) -> float:
        n = self._seq_frames
        return (self._last_t - self._first_t) * n / (n - 1) if n > 1 else 0.0

    @property
    def detections_per_s(self) -> float:
        """Detector runs per second of capture time."""
        span = self.span_s
        return self.detections / span if span > 0 else 0.0

    @property
    def ms_per_detection(self) -> float:
        """Mean host milliseconds per detector run."""
        return 1000.0 * self.detect_s / self.detections if self.detections else 0.0

    # --- internals -----------------------------------------------------------------------

    def _predicted(self, t: float) -> np.ndarray | None:
        """The filtered state [cx, cy, w, h, keypoints...] carried to time ``t``."""
        state = self._filter.value
        velocity = self._filter.velocity
        if state is None or velocity is None:
            return None
        if self.settings.predict and self._found_index is not None:
            state = state + velocity * (t - self._found_t)
        return state

    def _accept(self, t: float, index: int, face: FaceDetection) -> None:
        x, y, w, h = face.box
        measured = np.concatenate([[x + w / 2, y + h / 2, w, h], face.keypoints.ravel()])
        held = self._predicted(t)
        if held is not None and math.hypot(*(measured[:2] - held[:2])) > max(held[2], held[3]):
            self._filter.reset()  # another face or a cut: do not smooth across the jump
        self._filter.filter(t, measured)
        self._found_index, self._found_t, self._confidence = index, t, face.score

    def close(self) -> None:
        """Release the mediapipe graph."""
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _box_of(state: np.ndarray) -> tuple[float, float, float, float]:
    cx, cy, w, h = (float(v) for v in state[:4])
    return cx - w / 2, cy - h / 2, w, h


def _detection(found: Any, width: int, height: int) -> FaceDetection:
    """A mediapipe Detection (relative coordinates) -> FaceDetection in pixels."""
    location = found.location_data
    rel = location.relative_bounding_box
    keypoints = np.array(
        [[k.x * width, k.y * height] for k in location.relative_keypoints], dtype=np.float64
    )
    if keypoints.shape != (len(KEYPOINT_NAMES), 2):
        keypoints = np.full((len(KEYPOINT_NAMES), 2), np.nan)
    box = (rel.xmin * width, rel.ymin * height, rel.width * width, rel.height * height)
    return FaceDetection(box=box, keypoints=keypoints, score=float(found.score[0]))


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Area-shrink so that the longer side is at most ``max_side`` (0: unchanged)."""
    height, width = rgb.shape[:2]
    longer = max(height, width)
    if max_side == 0 or longer <= max_side:
        return np.ascontiguousarray(rgb)
    scale = max_side / longer
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _import_mediapipe() -> Any:
    """Import mediapipe with its C++ and TensorFlow Lite logging turned down."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import mediapipe as mp  # slow import: only when a tracker is made
    except ImportError as exc:
        raise InputError("face", f"mediapipe is not available: {exc}") from None
    return mp


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (C++ logs bypass sys.stderr).
    Process-wide: another thread's stderr output in the block is lost too."""
    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2: nothing to quiet
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
