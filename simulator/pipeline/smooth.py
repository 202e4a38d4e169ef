"""Smoother stage: temporal stability of per-frame stylized results (less flicker).

A GAN stylizes each frame alone, so consecutive results flicker. ``Smoother.apply`` is
called once per new stylized result in display order (results may be several camera
frames apart) and blends it with the previous smoothed result:

- ``none``: no temporal blend (colour stabilisation still applies when chosen).
- ``ema``: out = alpha·new + (1 − alpha)·prev, no motion compensation: it ghosts on
  motion, the baseline the motion-compensated methods are compared with.
- ``flow``: the previous result is warped onto the new frame with DIS flow computed on the
  *input* frames (backward flow new → prev, preset ULTRAFAST at ``flow_max_side``), blended
  with weight alpha for the new frame where the forward–backward check says the pixel was
  visible, the new frame alone where it was occluded or out of view (mask feathered).
- ``pose``: the same blend, the previous result warped with the camera-pose homography
  (``simulator.pipeline.warp``: exact for rotation, a plane at ``pose_depth_m`` for
  translation); the mask is the part of the view the previous frame saw, minus pixels whose
  warped previous *input* disagrees with the new input (parallax, moving objects). No flow:
  cheap, and robust to fast pans where flow fails. A ``limited`` pose is still used.

Blend resolution (``work_side``): with 0 the blend is done at full resolution. Otherwise it
is done on a copy whose longer side is ≤ ``work_side``, and only that low-frequency
correction (smoothed − new, at the small size) is upscaled and added to the full-resolution
new frame: fine detail always comes from the new result, so the blend cannot ghost edges,
and the full-resolution work is one shrink, one upscale and one add (~1.3 ms at 720p).

Colour stabilisation (any method): the new result's colours are matched to a reference
that follows the results slowly (ref = (1 − colour_rate)·ref + colour_rate·current), per
RGB channel: ``stats`` matches mean and standard deviation (one cv2.transform), ``histogram``
matches the histograms (one cv2.LUT). It runs before the temporal blend.

Resets (the next result is passed through and becomes the new reference): a cut (mean
absolute change of the grey input at the flow analysis size above ``cut_threshold`` grey
levels; the default 45 is above the 40 of the bundled pan-fast scenario sampled every 4th
or 8th frame), tracking ``lost``, a change of frame size, and ``reset()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.pipeline.flow import (
    analysis_size,
    compute_flow,
    consistency_mask,
    warp_with_flow,
)
from simulator.pipeline.warp import pose_homography
from simulator.types import Intrinsics, Pose

METHODS = ("none", "ema", "flow", "pose")
COLOUR_MODES = ("none", "stats", "histogram")
SMOOTHER_FLOW_PRESET = "ultrafast"  # host cost counts per displayed frame (flow.py docstring)
POSE_TOLERANCE = 20.0  # grey levels: warped previous input vs new input, on a 3x3 blur
_GAIN_LIMITS = (0.5, 2.0)  # colour "stats" gain bounds: a flat frame must not explode
_OFFSET = (128.0, 128.0, 128.0, 0.0)  # the low-frequency correction, as uint8 around 128


@dataclass(frozen=True)
class SmoothSettings:
    """Smoother configuration (module docstring). ``alpha`` is the weight of the NEW result
    (1 = no smoothing); ``cut_threshold`` in grey levels (0..255); ``work_side`` 0 for a
    full-resolution blend."""

    method: str = "none"
    alpha: float = 0.2
    colour: str = "none"
    colour_rate: float = 0.2
    flow_max_side: int = 320
    pose_depth_m: float = 2.0
    cut_threshold: float = 45.0
    work_side: int = 320

    def validate(self) -> None:
        """InputError("smoothing", ...) naming the first bad field."""
        if self.method not in METHODS:
            raise InputError("smoothing", f"method must be one of {', '.join(METHODS)}, "
                             f"got {self.method!r}")
        if self.colour not in COLOUR_MODES:
            raise InputError("smoothing", f"colour must be one of {', '.join(COLOUR_MODES)}, "
                             f"got {self.colour!r}")
        for name in ("alpha", "colour_rate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 < value <= 1.0):
                raise InputError("smoothing", f"{name} must be a number in (0, 1], got {value!r}")
        for name in ("pose_depth_m", "cut_threshold"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):  # NaN fails too
                raise InputError("smoothing", f"{name} must be a number > 0, got {value!r}")
        if not math.isfinite(self.pose_depth_m):
            raise InputError("smoothing", f"pose_depth_m must be finite, got {self.pose_depth_m}")
        if not (isinstance(self.flow_max_side, int) and self.flow_max_side >= 16):
            raise InputError("smoothing", f"flow_max_side must be an integer >= 16, "
                             f"got {self.flow_max_side!r}")
        if not (isinstance(self.work_side, int) and (self.work_side == 0 or self.work_side >= 16)):
            raise InputError("smoothing", f"work_side must be 0 (full resolution) or an integer "
                             f">= 16, got {self.work_side!r}")


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` area-averaged down to ``size`` (width, height).

    INTER_AREA is fast only for an exact halving (0.14 ms for 720p RGB against 1.5 ms for
    a direct 4x), so halve while the image is at least twice the target, then finish.
    """
    while (
        image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]
        and image.shape[1] % 2 == 0 and image.shape[0] % 2 == 0
    ):
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _feather(valid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float32 weights in [0, 1] at ``size``: the valid mask pulled in by one pixel and
    box-blurred, so the blend fades out before an occlusion edge instead of leaving a seam."""
    mask = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8))
    weights = cv2.blur(mask.astype(np.float32), (5, 5))
    if (weights.shape[1], weights.shape[0]) != size:
        weights = cv2.resize(weights, size, interpolation=cv2.INTER_LINEAR)
    return weights


class _ColourStabiliser:
    """Per-channel colour matching towards a slowly updated reference."""

    def __init__(self, mode: str, rate: float) -> None:
        self.mode, self.rate = mode, rate
        self._ref: np.ndarray | None = None  # stats: (2, 3) mean and std; histogram: (3, 256)

    def reset(self) -> None:
        self._ref = None

    def correct(self, full: np.ndarray, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(full, small) with colours matched; statistics come from ``small`` (the same uint8
        image shrunk) and the same mapping is applied to both."""
        if self.mode == "stats":
            return self._match_stats(full, small)
        if self.mode == "histogram":
            return self._match_histogram(full, small)
        return full, small

    def _update(self, current: np.ndarray) -> np.ndarray:
        self._ref = current if self._ref is None else (
            (1.0 - self.rate) * self._ref + self.rate * current
        )
        return self._ref

    def _match_stats(self, full: np.ndarray, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = cv2.meanStdDev(small)
        current = np.stack([mean.ravel(), std.ravel()])
        ref = self._update(current)
        gain = np.clip((ref[1] + 1.0) / (current[1] + 1.0), *_GAIN_LIMITS)
        matrix = np.zeros((3, 4), np.float32)
        matrix[:, :3] = np.diag(gain)
        matrix[:, 3] = ref[0] - gain * current[0]
        return cv2.transform(full, matrix), cv2.transform(small, matrix)

    def _match_histogram(
        self, full: np.ndarray, small: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        hists = np.stack([
            cv2.calcHist([small], [c], None, [256], [0, 256]).ravel() for c in range(3)
        ])
        current = hists / hists.sum(axis=1, keepdims=True)
        ref = self._update(current)
        levels = np.arange(256, dtype=np.float64)
        lut = np.empty((1, 256, 3), np.uint8)
        for c in range(3):
            # Mid-bin CDFs, so an unchanged histogram maps every level onto itself.
            cdf_cur = np.cumsum(current[c]) - current[c] / 2
            cdf_ref = np.cumsum(ref[c]) - ref[c] / 2
            lut[0, :, c] = np.clip(np.rint(np.interp(cdf_cur, cdf_ref, levels)), 0, 255)
        return cv2.LUT(full, lut), cv2.LUT(small, lut)


class Smoother:
    """Temporal smoothing of stylized results (module docstring); one per stream.

    ``apply`` returns a new array each call and keeps a reference to it as the previous
    output: callers must not modify it in place (the Compositor draws on a copy).
    """

    def __init__(self, settings: SmoothSettings, camera: Intrinsics) -> None:
        settings.validate()
        self.settings = settings
        self.camera = camera
        self._colour = _ColourStabiliser(settings.colour, settings.colour_rate)
        self.resets = 0  # how many times the state was dropped (cuts, lost tracking, sizes)
        self._clear()

    def reset(self) -> None:
        """Forget the previous result: the next one is passed through unchanged."""
        self._clear()
        self.resets += 1

    def _clear(self) -> None:
        self._out: np.ndarray | None = None  # previous output, full resolution
        self._work: np.ndarray | None = None  # previous smoothed image at the blend size
        self._grey: np.ndarray | None = None  # previous input, grey, at the flow size
        self._pose: Pose | None = None
        self._shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self._colour.reset()

    def apply(
        self, output_rgb: np.ndarray, input_rgb: np.ndarray, pose: Pose, tracking: str
    ) -> np.ndarray:
        """The smoothed version of ``output_rgb`` (uint8 H×W×3 RGB, stylized from the camera
        frame ``input_rgb`` taken at ``pose`` with AR ``tracking`` state)."""
        if output_rgb.dtype != np.uint8 or output_rgb.ndim != 3 or output_rgb.shape[2] != 3:
            raise ValueError(f"expected a uint8 H x W x 3 result, got {output_rgb.dtype} "
                             f"{output_rgb.shape}")
        s = self.settings
        stateful = s.method != "none" or s.colour != "none"
        needs_grey = s.method in ("flow", "pose") or (stateful and math.isfinite(s.cut_threshold))
        grey = self._input_grey(input_rgb) if needs_grey else None
        shapes = (output_rgb.shape, input_rgb.shape)
        if self._shapes is not None and (
            tracking == "lost" or shapes != self._shapes or self._is_cut(grey)
        ):
            self.reset()

        out_h, out_w = output_rgb.shape[:2]
        work_size = self._work_size(out_h, out_w)
        low_res = work_size != (out_w, out_h) and s.method in ("flow", "pose")
        if low_res:
            new, new_small = self._colour.correct(output_rgb, shrink(output_rgb, work_size))
            new_work = new_small.astype(np.float32)
        elif s.colour != "none":
            small = shrink(output_rgb, analysis_size(out_h, out_w, s.flow_max_side))
            new_work = new = self._colour.correct(output_rgb, small)[0]
        else:
            new_work = new = output_rgb

        previous = self._out is not None and tracking != "lost"
        if s.method == "ema" and previous:
            out = cv2.addWeighted(new, s.alpha, self._out, 1.0 - s.alpha, 0.0)
            work = None
        elif s.method in ("flow", "pose") and previous:
            warped, valid = (
                self._flow_warp(grey, work_size) if s.method == "flow"
                else self._pose_warp(grey, pose, work_size)
            )
            weight_prev = _feather(valid, work_size) * np.float32(1.0 - s.alpha)
            work = cv2.blendLinear(new_work, warped, 1.0 - weight_prev, weight_prev)
            out = self._add_correction(new, work, new_work) if low_res else work
        else:
            out, work = new, new_work

        if tracking == "lost":
            # Nothing to compare the next frame with: start over from the next result.
            self._shapes = None
        else:
            self._shapes = shapes
            self._out, self._work, self._grey, self._pose = out, work, grey, pose
        return out

    def _input_grey(self, input_rgb: np.ndarray) -> np.ndarray:
        h, w = input_rgb.shape[:2]
        # grey first: the shrink then moves a third of the bytes (0.4 ms less at 720p)
        grey = cv2.cvtColor(input_rgb, cv2.COLOR_RGB2GRAY) if input_rgb.ndim == 3 else input_rgb
        return shrink(grey, analysis_size(h, w, self.settings.flow_max_side))

    def _is_cut(self, grey: np.ndarray | None) -> bool:
        if grey is None or self._grey is None or grey.shape != self._grey.shape:
            return False
        change = cv2.norm(grey, self._grey, cv2.NORM_L1) / grey.size
        return change > self.settings.cut_threshold

    def _work_size(self, height: int, width: int) -> tuple[int, int]:
        side = self.settings.work_side
        return (width, height) if side == 0 else analysis_size(height, width, side)

    def _previous_work(self, work_size: tuple[int, int]) -> np.ndarray:
        """The previous smoothed image at the blend size (float32 when below full size)."""
        if self._work is not None:
            return self._work
        assert self._out is not None  # apply() only asks when there is a previous output
        if (self._out.shape[1], self._out.shape[0]) == work_size:
            return self._out
        return shrink(self._out, work_size).astype(np.float32)

    def _flow_warp(
        self, grey: np.ndarray | None, work_size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        assert grey is not None and self._grey is not None
        flow = compute_flow(self._grey, grey, max_side=max(grey.shape),
                            preset=SMOOTHER_FLOW_PRESET)
        # Pixels of the NEW frame: sample the previous one along the backward flow. No
        # motion-boundary test: the occlusion test and the feathered mask already keep the
        # blend off flow edges, and the test costs 0.8 ms while rejecting too much
        # (orbit-desk: -46 % warping error with it, -65 % without, at alpha 0.2).
        valid = consistency_mask(flow.backward, flow.forward, boundaries=False)
        return warp_with_flow(self._previous_work(work_size), flow.backward), valid

    def _pose_warp(
        self, grey: np.ndarray | None, pose: Pose, work_size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        assert grey is not None and self._grey is not None and self._pose is not None
        depth = self.settings.pose_depth_m
        homography = pose_homography(self.camera, self._pose, pose, depth,
                                     width=work_size[0], height=work_size[1])
        warped = cv2.warpPerspective(self._previous_work(work_size), homography, work_size,
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        grey_h, grey_w = grey.shape
        grey_homography = pose_homography(self.camera, self._pose, pose, depth,
                                          width=grey_w, height=grey_h)
        # A sentinel border (-1) marks what the previous frame did not see.
        prev_grey = cv2.warpPerspective(self._grey.astype(np.float32), grey_homography,
                                        (grey_w, grey_h), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=-1000.0)
        seen = prev_grey >= 0
        diff = cv2.absdiff(cv2.blur(prev_grey, (3, 3)), cv2.blur(grey.astype(np.float32), (3, 3)))
        return warped, seen & (diff <= POSE_TOLERANCE)

    @staticmethod
    def _add_correction(new: np.ndarray, work: np.ndarray, new_work: np.ndarray) -> np.ndarray:
        """new + upscaled (work − new_work): the low-frequency part of the blend, at full size.

        The correction travels as uint8 around 128, so the upscale runs on uint8, and is
        added as its positive and negative parts with saturating uint8 adds (4 passes of
        0.07 ms at 720p against 0.42 ms for one float addWeighted)."""
        delta = cv2.subtract(work, new_work)
        delta8 = cv2.add(delta, _OFFSET, dtype=cv2.CV_8U)  # rounded and saturated
        up = cv2.resize(delta8, (new.shape[1], new.shape[0]), interpolation=cv2.INTER_LINEAR)
        brighter = cv2.subtract(up, _OFFSET)  # max(up - 128, 0)
        darker = cv2.subtract(_OFFSET, up)  # max(128 - up, 0)
        return cv2.subtract(cv2.add(new, brighter), darker)
