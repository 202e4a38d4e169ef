"""Video file sink: ``output.mp4``, what the phone's screen shows, at the camera frame rate."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.sinks import ShownFrame


def grid_frames(t_first: float, t_last: float, fps: float) -> int:
    """Video frames on the grid ``t_first + k / fps`` up to the last camera frame: one per
    camera frame for evenly spaced ones, more where a real recording has gaps (a phone
    clip's 325 ms pause must not cut the video short)."""
    return math.floor((t_last - t_first) * fps + 1e-6) + 1


class VideoFileSink:
    """Resamples the screen (which changes at irregular virtual times) onto a fixed
    frame grid: video frame k shows whatever was on screen at ``t0 + k / fps``."""

    shows_flicker = False  # no heat-map: known flicker need not be measured again

    def __init__(
        self, path: Path, *, fps: float, width: int, height: int, t0: float, frames: int
    ) -> None:
        self.path = Path(path)
        self.fps, self.t0, self.frames = fps, t0, frames
        self.size = (width, height)
        self._writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size
        )
        if not self._writer.isOpened():
            raise InputError(self.path, "cannot open for writing an mp4 video")
        self._screen = np.zeros((height, width, 3), np.uint8)  # black until the first result
        self._written = 0

    def send(self, frame: ShownFrame) -> None:
        self._fill_until(frame.t)
        screen_rgb = frame.screen
        if screen_rgb.shape[1::-1] != self.size:
            screen_rgb = cv2.resize(screen_rgb, self.size, interpolation=cv2.INTER_AREA)
        self._screen = cv2.cvtColor(screen_rgb, cv2.COLOR_RGB2BGR)

    def _fill_until(self, t: float) -> None:
        while self._written < self.frames and self.t0 + self._written / self.fps < t:
            self._writer.write(self._screen)
            self._written += 1

    def close(self) -> int:
        """Pad with the last screen to one video frame per camera frame and finish the
        file; returns the frame count."""
        self._fill_until(math.inf)
        self._writer.release()
        return self._written
