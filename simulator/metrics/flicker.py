"""Temporal flicker of the displayed output: warping error, frame difference, luminance flicker.

Warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency"): the output of
frame t is warped back onto frame t−1 with optical flow computed on the *input* frames, and
compared with the output of frame t−1 where the flow is trustworthy:

    E = Σ_x M(x)·‖O_prev(x) − W(O_cur)(x)‖² / Σ_x M(x)

- Images are downscaled so the longer side is ≤ ``max_side`` (320 px by default); the
  inputs and outputs of a pair are resized to the same size. Flow is in pixels of that
  downscaled image, and the mask thresholds below apply in those units.
- Flow: OpenCV DIS, preset FAST, on the grey (Rec. 601, OpenCV's RGB2GRAY) input frames
  (shared code: simulator.pipeline.flow);
  forward flow f (prev → cur) and backward flow b (cur → prev).
- W(O_cur)(x) = O_cur(x + f(x)) (bilinear); b̃(x) = b(x + f(x)).
- M(x) = 1 where x + f(x) lands inside the image, and x is not occluded
  (|f + b̃|² ≤ 0.01(|f|² + |b̃|²) + 0.5) and not on a motion boundary
  (|∇b̃_u|² + |∇b̃_v|² ≤ 0.01|b̃|² + 0.002, central differences).
- ‖·‖² is the squared difference on [0, 1] RGB averaged over the three channels (the
  mean, not the sum, so E reads as a per-channel mean squared error).

Input-normalised frame difference: mean|O_cur − O_prev| / max(mean|I_cur − I_prev|, 1/255),
means over all pixels and channels on [0, 1] RGB. ≈ 1 means the output changes as much as
the scene; ≫ 1 means the output changes more than the input (flicker). The 1/255 floor (one
grey level) keeps a static scene from dividing by zero while still scoring a flickering output
on a still input as large.

Luminance flicker of a series L_0..L_n of mean output luma (Rec. 709 weights on the
gamma-encoded [0, 1] RGB values): mean over t of |L_{t+1} − 2·L_t + L_{t−1}|. The second
difference ignores steady fades and scene brightness trends and responds to back-and-forth
pumping; it needs at least three samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from simulator.pipeline.flow import (
    BOUNDARY_ABS,
    BOUNDARY_REL,
    OCCLUSION_ABS,
    OCCLUSION_REL,
    analysis_size,
    compute_flow,
    consistency_mask,
    resize_to,
    sampling_map,
    squared_norm,
    start_flow,
    to_uint8,
)

if TYPE_CHECKING:
    from simulator.work_cache import WorkCache

__all__ = [
    "BOUNDARY_ABS",
    "BOUNDARY_REL",
    "FRAME_DIFF_FLOOR",
    "OCCLUSION_ABS",
    "OCCLUSION_REL",
    "REC709",
    "FlickerMeter",
    "WarpResult",
    "analysis_size",
    "frame_diff",
    "luminance_flicker",
    "mean_luminance",
    "warp_error",
]

REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
FRAME_DIFF_FLOOR = 1.0 / 255.0
FLOW_PRESET = "fast"  # the metric judges, so it takes the more accurate of the cheap presets


@dataclass(frozen=True)
class WarpResult:
    """Warping error of one frame pair.

    ``error`` is NaN when no pixel passes the mask (e.g. a scene cut); ``error_map`` is the
    per-pixel error at the analysis size, 0 where the mask rejects the pixel; ``mask`` is the
    boolean validity mask M at that size.
    """

    error: float
    mask_fraction: float
    error_map: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class _PreparedPair:
    """One input/output pair at the analysis size: grey uint8 input, float32 [0,1] RGB
    output, and the pixels the frame difference compares (``input``: uint8 RGB; ``output``:
    uint8 RGB when the output came as uint8, else the float32 output)."""

    grey: np.ndarray
    output: np.ndarray
    diff_input: np.ndarray
    diff_output: np.ndarray


_UNIT = np.float32(1.0 / 255.0)


def _to_unit_rgb(rgb: np.ndarray) -> np.ndarray:
    """Float32 RGB on [0, 1] from uint8 (0..255) or float (already 0..1) pixels."""
    if rgb.dtype == np.uint8:
        return np.multiply(rgb, _UNIT, dtype=np.float32)  # one pass: cast and scale
    return rgb.astype(np.float32, copy=False)


def _prepare(input_rgb: np.ndarray, output_rgb: np.ndarray, max_side: int) -> _PreparedPair:
    """Both images at the analysis size, each resized once. uint8 pixels are area-averaged
    as uint8 before any float conversion: a fifth of the work of converting the whole frame,
    for values rounded to the nearest grey level (warping errors move by well under 1 %)."""
    size = analysis_size(input_rgb.shape[0], input_rgb.shape[1], max_side)
    small_input = resize_to(to_uint8(input_rgb), size)  # for the grey and the difference
    grey = cv2.cvtColor(small_input, cv2.COLOR_RGB2GRAY) if small_input.ndim == 3 \
        else small_input
    if output_rgb.dtype == np.uint8:
        small_output = resize_to(output_rgb, size)
        output = _to_unit_rgb(small_output)
    else:
        small_output = output = resize_to(_to_unit_rgb(output_rgb), size)
    return _PreparedPair(grey=grey, output=output, diff_input=small_input,
                         diff_output=small_output)


def _flow_and_mask(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward flow and the validity mask of two analysis-size greys: the part of a
    comparison that depends on the inputs only."""
    # The greys are already at the analysis size, so compute_flow does not resize them again.
    flow = compute_flow(prev, cur, max_side=max(prev.shape), preset=FLOW_PRESET)
    return flow.forward, consistency_mask(flow.forward, flow.backward)


def _cached_flow_and_mask(prev: np.ndarray, cur: np.ndarray,
                          cache: WorkCache) -> tuple[np.ndarray, np.ndarray]:
    """``_flow_and_mask`` kept in ``cache`` as one H x W x 3 float32 array (u, v, mask): the
    same input pair under another device or setting has its flow already."""
    from simulator.work_cache import key_of

    def packed() -> np.ndarray:
        forward, mask = _flow_and_mask(prev, cur)
        return np.dstack([forward, mask.astype(np.float32)])

    flow_mask = cache.get_or_compute("flow", key_of("flow", FLOW_PRESET, prev, cur), packed)
    return flow_mask[..., :2], flow_mask[..., 2] > 0.5


def _compare(prev: _PreparedPair, cur: _PreparedPair,
             cache: WorkCache | None = None) -> WarpResult:
    if cache is None:
        # the backward flow is computed on the helper thread meanwhile (a second core)
        forward, backward = start_flow(prev.grey, cur.grey, max_side=max(prev.grey.shape),
                                       preset=FLOW_PRESET)
        target = sampling_map(forward)
        error_map = _pixel_error(prev.output, cur.output, target)
        mask = consistency_mask(forward, backward.result(), target=target)
    else:
        forward, mask = _cached_flow_and_mask(prev.grey, cur.grey, cache)
        error_map = _pixel_error(prev.output, cur.output, sampling_map(forward))
    np.multiply(error_map, mask, out=error_map)  # 0 where the mask rejects the pixel
    valid = int(np.count_nonzero(mask))
    # numpy's float64 sum: cv2.sumElems's order (so its last bit) follows the buffer's
    # alignment, and a report must not depend on where an array happened to be allocated
    error = float(np.sum(error_map, dtype=np.float64) / valid) if valid else float("nan")
    return WarpResult(error=error, mask_fraction=valid / mask.size, error_map=error_map, mask=mask)


def _pixel_error(prev_output: np.ndarray, cur_output: np.ndarray,
                 target: np.ndarray) -> np.ndarray:
    """‖O_prev − W(O_cur)‖² per pixel (the channel mean), W sampling ``cur_output`` at
    ``target`` = x + f(x) (the outputs are at the flow's size: the mask's sampling map)."""
    warped = cv2.remap(cur_output, target, None, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return squared_norm(cv2.subtract(prev_output, warped), weight=1.0 / prev_output.shape[2])


def warp_error(
    in_prev: np.ndarray,
    in_cur: np.ndarray,
    out_prev: np.ndarray,
    out_cur: np.ndarray,
    *,
    max_side: int = 320,
) -> WarpResult:
    """Warping error of ``out_cur`` against ``out_prev``, with flow from the input frames.

    Frames are H×W×3 RGB, uint8 or float on [0, 1]; outputs may differ in size from the
    inputs (they are resized to the same analysis size).
    """
    prev = _prepare(in_prev, out_prev, max_side)
    cur = _prepare(in_cur, out_cur, max_side)
    return _compare(prev, cur)


def frame_diff(
    in_prev: np.ndarray, in_cur: np.ndarray, out_prev: np.ndarray, out_cur: np.ndarray
) -> float:
    """Input-normalised frame difference (definition in the module docstring)."""
    return _mean_abs_change(out_prev, out_cur) / max(_mean_abs_change(in_prev, in_cur),
                                                     FRAME_DIFF_FLOOR)


def _mean_abs_change(prev: np.ndarray, cur: np.ndarray) -> float:
    """mean |cur − prev| on [0, 1]: uint8 pairs exactly (an integer L1 norm, one pass)."""
    if prev.dtype == cur.dtype == np.uint8:
        return cv2.norm(cur, prev, cv2.NORM_L1) / (255.0 * cur.size)
    return float(np.mean(np.abs(_to_unit_rgb(cur) - _to_unit_rgb(prev))))


def mean_luminance(rgb: np.ndarray) -> float:
    """Mean Rec. 709 luma of an RGB image on [0, 1] (uint8 input is scaled by 1/255).

    Luma is linear in the channels, so it is the luma of the channel means: ``cv2.mean``
    (one pass, no BLAS threads, float64 sums) instead of a per-pixel matrix product (10x
    faster on a 640x360 frame, and exact where the product accumulated in float32)."""
    if rgb.dtype == np.uint8:
        means = np.asarray(cv2.mean(rgb)[:3]) / 255.0
    else:
        means = np.asarray(cv2.mean(rgb.astype(np.float32, copy=False))[:3])
    return float(means @ REC709.astype(np.float64))


def luminance_flicker(luminance: Sequence[float]) -> float | None:
    """Mean absolute second difference of a luminance series; None below three samples."""
    if len(luminance) < 3:
        return None
    series = np.asarray(luminance, dtype=np.float64)
    return float(np.mean(np.abs(np.diff(series, n=2))))


class FlickerMeter:
    """Streaming flicker measurement over the displayed frames of a run.

    Call :meth:`add` once per new displayed result with the camera frame it came from;
    each call compares with the previously added pair. A change of frame size starts a new
    sequence (no comparison across it).

    With a ``cache`` (simulator/work_cache.py) a pair of displayed pairs measured before (the
    same inputs and outputs: another device that showed the same frames) is not measured
    again, and the flow of an input pair is reused under other outputs (other settings).
    ``maps`` False skips ``last_map`` on such reuse (it is kept only when someone shows it).
    """

    def __init__(self, *, max_side: int = 320, cache: WorkCache | None = None,
                 maps: bool = True) -> None:
        self.max_side = max_side
        self.cache = None if maps else cache
        self._flow_cache = cache
        self._prev: _PreparedPair | None = None
        self._prev_raw: tuple[np.ndarray, np.ndarray] | None = None  # prepared when needed
        self._prev_keys: tuple[str, str] | None = None
        self._pair_key: str | None = None  # a comparison to keep, once measured
        self._warp_errors: list[float] = []
        self._mask_fractions: list[float] = []
        self._frame_diffs: list[float] = []
        self._luminance: list[float] = []
        self._last_t = float("-inf")
        # per-pixel warp error of the latest comparison, at the analysis size (the app's
        # heat-map); None when the latest pair was not compared
        self.last_map: np.ndarray | None = None

    def add(self, t: float, input_rgb: np.ndarray, output_rgb: np.ndarray) -> float | None:
        """Record one displayed pair; return its warp error (None for the first or no valid pixel).

        ``t`` is the display time; pairs must come in display order.
        """
        if t < self._last_t:
            raise ValueError(f"display time {t} is before the previous one ({self._last_t})")
        self._last_t = t
        if self.cache is not None:
            known = self._known_pair(input_rgb, output_rgb)
            if known is not None:
                return known
        return self._measure(input_rgb, output_rgb)

    def _known_pair(self, input_rgb: np.ndarray, output_rgb: np.ndarray) -> float | None:
        """``add`` from the cache when this comparison was made before (None: measure it)."""
        from simulator.work_cache import content_key, key_of

        assert self.cache is not None
        keys = (content_key(input_rgb), content_key(output_rgb))
        prev_keys, self._prev_keys = self._prev_keys, keys
        if prev_keys is None or input_rgb.shape != self._prev_raw[0].shape:
            return None
        pair = key_of("flicker-pair", self.max_side, FLOW_PRESET, *prev_keys, *keys)
        known = self.cache.lookup("flicker", pair)
        if known is None:
            self._pair_key = pair
            return None
        luminance, diff, fraction, error = (float(v) for v in known)
        self._luminance.append(luminance)
        self._frame_diffs.append(diff)
        self._mask_fractions.append(fraction)
        self._prev = None
        self._prev_raw = (input_rgb, output_rgb)
        self.last_map = None
        if math.isnan(error):
            return None
        self._warp_errors.append(error)
        return error

    def _measure(self, input_rgb: np.ndarray, output_rgb: np.ndarray) -> float | None:
        if self._prev is None and self._prev_raw is not None:  # skipped by a known pair
            self._prev = _prepare(*self._prev_raw, self.max_side)
        self._prev_raw = (input_rgb, output_rgb)
        pair, self._pair_key = self._pair_key, None
        cur = _prepare(input_rgb, output_rgb, self.max_side)
        self._luminance.append(mean_luminance(cur.output))
        prev, self._prev = self._prev, cur
        self.last_map = None
        if prev is None or prev.grey.shape != cur.grey.shape:
            return None
        diff = frame_diff(prev.diff_input, cur.diff_input, prev.diff_output, cur.diff_output)
        self._frame_diffs.append(diff)
        result = _compare(prev, cur, self._flow_cache)
        self.last_map = result.error_map
        self._mask_fractions.append(result.mask_fraction)
        if self.cache is not None and pair is not None:
            self.cache.store("flicker", pair, np.array(
                [self._luminance[-1], diff, result.mask_fraction, result.error]))
        if np.isnan(result.error):
            return None
        self._warp_errors.append(result.error)
        return result.error

    @property
    def last_luminance(self) -> float | None:
        """Mean luma of the most recently added output (None before the first)."""
        return self._luminance[-1] if self._luminance else None

    def summary(self) -> dict:
        """``metrics.flicker`` of ``report.json`` plus ``last_luminance`` and ``mask_fraction``."""
        errors = np.asarray(self._warp_errors, dtype=np.float64)
        has_errors = errors.size > 0
        return {
            "warp_error": float(errors.mean()) if has_errors else None,
            "warp_error_p95": float(np.percentile(errors, 95)) if has_errors else None,
            "frame_diff": float(np.mean(self._frame_diffs)) if self._frame_diffs else None,
            "luminance_flicker": luminance_flicker(self._luminance),
            "mask_fraction": float(np.mean(self._mask_fractions)) if self._mask_fractions else None,
            "last_luminance": self.last_luminance,
        }
