"""The flicker metric as it was computed before issue 14: the baseline its fast implementation
is timed against and checked with (bench/host_speed.py, tests/test_flicker.py).

The same definition (simulator/metrics/flicker.py's docstring) and the same OpenCV calls as
the code of commit 85c0133^, frozen here: whole frames converted to float before they are
resized, the two flow directions one after the other, numpy expressions with their
temporaries, magnitudes squared again. It shares no code with the simulator, so a change
there cannot move the baseline. Measured against that commit's own code on orbit-desk: the
same warp errors, frame differences and luminance bit for bit, the same speed within this
host's noise.
"""

from __future__ import annotations

import cv2
import numpy as np

OCCLUSION_REL, OCCLUSION_ABS = 0.01, 0.5
BOUNDARY_REL, BOUNDARY_ABS = 0.01, 0.002
REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

_dis: dict[tuple[int, int], cv2.DISOpticalFlow] = {}
_grids: dict[tuple[int, int], np.ndarray] = {}


def _unit(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    return rgb.astype(np.float32, copy=False)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _grey(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(_resize(image, size), cv2.COLOR_RGB2GRAY)


def _target(flow: np.ndarray) -> np.ndarray:
    """x + flow(x), for cv2.remap."""
    height, width = flow.shape[:2]
    if (height, width) not in _grids:
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float32),
                             np.arange(height, dtype=np.float32))
        _grids[(height, width)] = np.dstack([xs, ys])
    return cv2.add(_grids[(height, width)], flow)


def _squared_norm(vectors: np.ndarray, weight: float = 1.0) -> np.ndarray:
    channels = vectors.shape[2]
    return cv2.transform(vectors * vectors, np.full((1, channels), weight, dtype=np.float32))


def _mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    height, width = forward.shape[:2]
    target = _target(forward)
    back = cv2.remap(backward, target, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.inRange(target, (0.0, 0.0), (width - 1.0, height - 1.0)) > 0
    f_u, f_v = cv2.split(forward)
    b_u, b_v = cv2.split(back)
    round_trip = cv2.magnitude(f_u + b_u, f_v + b_v)
    both = cv2.magnitude(cv2.magnitude(f_u, f_v), cv2.magnitude(b_u, b_v))
    mask &= round_trip * round_trip <= OCCLUSION_REL * (both * both) + OCCLUSION_ABS
    grad_sq = np.zeros((height, width), dtype=np.float32)
    for dx, dy in ((1, 0), (0, 1)):
        grad_sq += _squared_norm(cv2.Sobel(back, cv2.CV_32F, dx, dy, ksize=1, scale=0.5))
    return mask & (grad_sq <= BOUNDARY_REL * _squared_norm(back) + BOUNDARY_ABS)


class ReferenceMeter:
    """``FlickerMeter.add`` / ``summary`` (warp error, frame difference, luminance) of 85c0133^."""

    def __init__(self, max_side: int = 320) -> None:
        self.max_side = max_side
        self.errors: list[float] = []
        self.diffs: list[float] = []
        self.luminance: list[float] = []
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, input_rgb: np.ndarray, output_rgb: np.ndarray) -> float | None:
        height, width = input_rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        size = max(1, round(width * scale)), max(1, round(height * scale))
        grey = _grey(input_rgb, size)
        output = _resize(_unit(output_rgb), size)
        small_input = _resize(_unit(input_rgb), size)
        self.luminance.append(float(np.asarray(cv2.mean(output)[:3]) @ REC709.astype(np.float64)))
        prev, self._prev = self._prev, (grey, output, small_input)
        if prev is None:
            return None
        self.diffs.append(float(np.mean(np.abs(output - prev[1]))) /
                          max(float(np.mean(np.abs(small_input - prev[2]))), 1.0 / 255.0))
        if size not in _dis:
            _dis[size] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        forward = _dis[size].calc(prev[0], grey, None)
        backward = _dis[size].calc(grey, prev[0], None)
        mask = _mask(forward, backward)
        warped = cv2.remap(output, _target(forward), None, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        error_map = np.where(mask, _squared_norm(prev[1] - warped, 1.0 / 3.0), np.float32(0))
        valid = int(np.count_nonzero(mask))
        if not valid:
            return None
        error = float(np.sum(error_map, dtype=np.float64) / valid)
        self.errors.append(error)
        return error

    def summary(self) -> dict:
        return {"warp_error": float(np.mean(self.errors)) if self.errors else None,
                "frame_diff": float(np.mean(self.diffs)) if self.diffs else None,
                "luminance_flicker": float(np.mean(np.abs(np.diff(self.luminance, 2))))
                if len(self.luminance) >= 3 else None}
