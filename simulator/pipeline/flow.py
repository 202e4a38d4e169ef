"""Dense optical flow between two frames, its forward–backward consistency, and flow warping.

Shared by the flicker metric (``simulator.metrics.flicker``) and the temporal smoother
(``simulator.pipeline.smooth``), so the flow, mask and remap code exists once.

- Flow is OpenCV DIS (Kroeger et al. 2016) on grey (Rec. 601, OpenCV's RGB2GRAY) images
  downscaled so the longer side is ≤ ``max_side``; vectors are in pixels of that analysis
  size. Presets: ``"fast"`` for the metric (it judges; 1 ms per direction at 320×180 on a
  2-core EPYC host), ``"ultrafast"`` for the smoother (host cost counts per displayed frame;
  0.5 ms, a little noisier on weak texture, which the consistency mask then rejects).
- Sampling convention: warping ``image`` with ``flow`` gives W(x) = image(x + flow(x))
  (bilinear), i.e. ``flow`` points from the pixel being filled to where its content is in
  ``image``. Warping the *current* frame back onto the previous one uses the forward flow;
  bringing the *previous* frame forward onto the current one uses the backward flow.
- Consistency (Sundaram et al. 2010; thresholds of Ruder et al. 2016): for a flow w with
  reverse flow r sampled at the target, r̃(x) = r(x + w(x)), a pixel is occluded when
  |w + r̃|² > 0.01(|w|² + |r̃|²) + 0.5, on a motion boundary when
  |∇r̃_u|² + |∇r̃_v|² > 0.01|r̃|² + 0.002 (central differences), and out of view when
  x + w(x) leaves the image.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

OCCLUSION_REL, OCCLUSION_ABS = 0.01, 0.5
BOUNDARY_REL, BOUNDARY_ABS = 0.01, 0.002
PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
_GRID_CACHE_SIZE = 4
T = TypeVar("T")


@dataclass(frozen=True)
class FlowPair:
    """Forward (prev → cur) and backward (cur → prev) flow, H×W×2 float32 each, in pixels of
    the analysis size (``size`` = (width, height))."""

    forward: np.ndarray
    backward: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.forward.shape[1], self.forward.shape[0]


def analysis_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(width, height) after downscaling so the longer side is ≤ ``max_side`` (never upscaled)."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 pixels from uint8 (unchanged) or float on [0, 1]."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` (width, height), area-averaged; the same array when already there."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def grey_at(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey uint8 image at ``size`` from an RGB (uint8 or [0, 1] float) or grey image."""
    small = resize_to(to_uint8(image), size)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small


_local = threading.local()


def _dis(preset: str, size: tuple[int, int]) -> cv2.DISOpticalFlow:
    # A DIS instance holds buffers for its last call, so each thread gets its own. It also
    # keeps state sized by its first image: after a call at another size its results differ
    # (measured: up to 19 px on the same pair), so instances are kept per (preset, size).
    instances: dict[tuple[str, tuple[int, int]], cv2.DISOpticalFlow] | None = getattr(
        _local, "dis", None)
    if instances is None:
        instances = _local.dis = {}
    key = (preset, size)
    if key not in instances:
        if preset not in PRESETS:
            raise ValueError(f"DIS preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        if len(instances) >= _GRID_CACHE_SIZE:
            instances.pop(next(iter(instances)))
        instances[key] = cv2.DISOpticalFlow_create(PRESETS[preset])
    return instances[key]


def compute_flow(
    prev: np.ndarray, cur: np.ndarray, *, max_side: int = 320, preset: str = "fast"
) -> FlowPair:
    """Forward and backward DIS flow between two frames (RGB or grey, uint8 or [0, 1] float,
    same size) at the analysis size for ``max_side``."""
    forward, backward = start_flow(prev, cur, max_side=max_side, preset=preset)
    return FlowPair(forward=forward, backward=backward.result())


def start_flow(
    prev: np.ndarray, cur: np.ndarray, *, max_side: int = 320, preset: str = "fast"
) -> tuple[np.ndarray, Future[np.ndarray]]:
    """``compute_flow`` with the backward flow still under way on the helper thread: the
    caller can use the forward flow meanwhile."""
    if prev.shape[:2] != cur.shape[:2]:
        raise ValueError(f"frame sizes differ: {prev.shape[:2]} and {cur.shape[:2]}")
    size = analysis_size(prev.shape[0], prev.shape[1], max_side)
    prev_grey, cur_grey = grey_at(prev, size), grey_at(cur, size)
    # the two directions at once (OpenCV releases the GIL; each thread has its own DIS
    # instance): 5.5 -> 3.2 ms per pair at 320x180 when a second core is free, same vectors
    backward = _beside(lambda: _dis(preset, size).calc(cur_grey, prev_grey, None))
    return _dis(preset, size).calc(prev_grey, cur_grey, None), backward


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _beside(work: Callable[[], T]) -> Future[T]:
    """``work`` on the one helper thread (made on first use; tasks run in the order given),
    while the caller goes on: OpenCV releases the GIL, so two cores work at once. Never call
    it from a task already on the helper (it would wait on itself)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(1, thread_name_prefix="arsim-flow")
    return _pool.submit(work)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """H×W×2 float32 pixel coordinates (x, y), cached per thread for a few sizes; read-only."""
    grids: dict[tuple[int, int], np.ndarray] = getattr(_local, "grids", None) or {}
    _local.grids = grids
    grid = grids.get((height, width))
    if grid is None:
        if len(grids) >= _GRID_CACHE_SIZE:
            grids.pop(next(iter(grids)))
        xs, ys = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        )
        grid = np.dstack([xs, ys])
        grid.flags.writeable = False
        grids[(height, width)] = grid
    return grid


def scale_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``flow`` resampled to ``size`` (width, height) with its vectors scaled to match."""
    height, width = flow.shape[:2]
    if (width, height) == size:
        return flow
    scale = np.array([size[0] / width, size[1] / height], dtype=np.float32)
    # Scaling before the resize touches 1/16 of the pixels for a 4x upscale.
    return cv2.resize(flow * scale, size, interpolation=cv2.INTER_LINEAR)


def sampling_map(flow: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Absolute source coordinates x + flow(x) (H×W×2 float32) at ``size`` (default: the
    flow's own size), for cv2.remap."""
    flow = flow if size is None else scale_flow(flow, size)
    return cv2.add(pixel_grid(flow.shape[0], flow.shape[1]), flow)


def warp_with_flow(
    image: np.ndarray,
    flow: np.ndarray,
    *,
    interpolation: int = cv2.INTER_LINEAR,
    border: int = cv2.BORDER_REPLICATE,
) -> np.ndarray:
    """W(x) = image(x + flow(x)) at the image's size; a flow at another (analysis) size is
    upscaled and its vectors scaled to the image's pixels."""
    size = (image.shape[1], image.shape[0])
    return cv2.remap(image, sampling_map(flow, size), None, interpolation, borderMode=border)


def squared_norm(vectors: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """weight·Σ_c v_c² per pixel of an H×W×C float32 array (squares, then one weighted
    channel sum: ~2x splitting into planes, ~5x einsum)."""
    channels = vectors.shape[2]
    return cv2.transform(cv2.multiply(vectors, vectors),
                         np.full((1, channels), weight, dtype=np.float32))


def consistency_mask(
    flow: np.ndarray, reverse: np.ndarray, *, boundaries: bool = True,
    target: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean H×W mask of the pixels where ``flow`` can be trusted: the target x + flow(x) is
    inside the image, the reverse flow there leads back (not occluded) and, with
    ``boundaries``, it is not on a motion boundary. For the metric (previous frame's pixels)
    pass (forward, backward); for pixels of the current frame, (backward, forward).
    ``target`` is ``sampling_map(flow)`` when the caller has it already (it warps with it)."""
    height, width = flow.shape[:2]
    if target is None:
        target = sampling_map(flow)
    reverse_at_target = cv2.remap(
        reverse, target, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mask = cv2.inRange(target, (0.0, 0.0), (width - 1.0, height - 1.0))  # 0 / 255
    # One OpenCV call per plane operation, squares summed in place: each call is ~10 us at
    # 320x180, a numpy expression's temporaries several times that.
    flow_u, flow_v = cv2.split(flow)
    rev_u, rev_v = cv2.split(reverse_at_target)
    round_trip = _sum_of_squares(cv2.add(flow_u, rev_u), cv2.add(flow_v, rev_v))
    reverse_sq = _sum_of_squares(rev_u, rev_v)
    both = cv2.add(_sum_of_squares(flow_u, flow_v), reverse_sq)
    cv2.bitwise_and(mask, _at_most(round_trip, both, OCCLUSION_REL, OCCLUSION_ABS), dst=mask)
    if boundaries:
        # ksize=1 with scale 0.5 is the central difference in flow pixels per pixel.
        grad_sq = _sum_of_squares(*(cv2.Sobel(plane, cv2.CV_32F, dx, dy, ksize=1, scale=0.5)
                                    for plane in (rev_u, rev_v)
                                    for dx, dy in ((1, 0), (0, 1))))
        cv2.bitwise_and(mask, _at_most(grad_sq, reverse_sq, BOUNDARY_REL, BOUNDARY_ABS),
                        dst=mask)
    return mask > 0


def _sum_of_squares(*planes: np.ndarray) -> np.ndarray:
    """Σ plane² per pixel of single-channel float32 planes (a new array)."""
    out = cv2.multiply(planes[0], planes[0])
    for plane in planes[1:]:
        cv2.accumulateSquare(plane, out)
    return out


def _at_most(value: np.ndarray, scale: np.ndarray, rel: float, offset: float) -> np.ndarray:
    """255 where value <= rel·scale + offset, else 0 (uint8)."""
    return cv2.compare(value, cv2.addWeighted(scale, rel, scale, 0.0, offset), cv2.CMP_LE)
