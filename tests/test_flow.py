"""Shared optical-flow helpers: DIS flow pair, forward–backward consistency, flow warping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from simulator.pipeline.flow import (
    FlowPair,
    analysis_size,
    compute_flow,
    consistency_mask,
    pixel_grid,
    warp_with_flow,
)


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth multi-scale noise, textured everywhere (RGB uint8)."""
    rng = np.random.default_rng(seed)
    layers = [
        cv2.resize(rng.random((height // s + 1, width // s + 1, 3)).astype(np.float32),
                   (width, height), interpolation=cv2.INTER_CUBIC)
        for s in (3, 9, 27)
    ]
    return np.clip(sum(layers) / 3 * 255, 0, 255).astype(np.uint8)


CANVAS = texture(440, 720, seed=2)


def view(dx: int, dy: int, height: int = 360, width: int = 640) -> np.ndarray:
    return CANVAS[40 + dy: 40 + dy + height, 40 + dx: 40 + dx + width].copy()


def with_square(x: int) -> np.ndarray:
    frame = texture(180, 320, seed=4)
    frame[60:120, x: x + 60] = texture(60, 60, seed=5)
    return frame


def test_flow_pair_is_at_the_analysis_size_and_scaled() -> None:
    prev, cur = view(0, 0), view(8, 4)  # content moves 8 px left, 4 px up at 640x360
    pair = compute_flow(prev, cur, max_side=320)
    assert isinstance(pair, FlowPair) and pair.size == (320, 180) == analysis_size(360, 640, 320)
    inner = (slice(20, -20), slice(20, -20))
    assert np.median(pair.forward[inner][..., 0]) == pytest.approx(-4.0, abs=0.3)
    assert np.median(pair.forward[inner][..., 1]) == pytest.approx(-2.0, abs=0.3)
    assert np.median(pair.backward[inner][..., 0]) == pytest.approx(4.0, abs=0.3)
    # Grey input and the ultrafast preset give the same kind of answer.
    prev_grey, cur_grey = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (prev, cur))
    grey = compute_flow(prev_grey, cur_grey, max_side=320, preset="ultrafast")
    assert np.median(grey.forward[inner][..., 0]) == pytest.approx(-4.0, abs=0.5)
    with pytest.raises(ValueError):
        compute_flow(prev, cur[:-2])
    with pytest.raises(ValueError):
        compute_flow(prev, cur, preset="warp-speed")


def test_warp_with_a_constant_flow_at_half_size_is_an_exact_shift() -> None:
    image = view(0, 0)
    flow = np.zeros((180, 320, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -2.0  # at half size: (6, -4) px at full size
    warped = warp_with_flow(image, flow)
    assert warped.shape == image.shape
    # W(x) = image(x + flow): the pixel at (x, y) comes from (x + 6, y - 4).
    assert np.array_equal(warped[4:, :-6], image[:-4, 6:])


def test_warp_with_estimated_flow_undoes_a_translation() -> None:
    prev, cur = view(0, 0), view(10, -6)
    pair = compute_flow(prev, cur, max_side=320)
    back = warp_with_flow(cur, pair.forward)  # the current frame, warped onto the previous
    inner = (slice(30, -30), slice(30, -30))
    error = np.abs(back[inner].astype(int) - prev[inner].astype(int)).mean()
    unaligned = np.abs(cur[inner].astype(int) - prev[inner].astype(int)).mean()
    # Flow at half size, upscaled: a few grey levels of interpolation error remain.
    assert error < 3.0 and unaligned > 10 * error


def test_consistency_mask_rejects_occlusions_in_both_directions() -> None:
    prev, cur = with_square(100), with_square(112)  # the square moves 12 px right
    pair = compute_flow(prev, cur, max_side=320)
    # Pixels of the previous frame: the background right of the square gets covered.
    covered = consistency_mask(pair.forward, pair.backward)
    assert covered.shape == (180, 320) and covered.dtype == bool
    assert covered[64:116, 161:171].mean() < 0.3
    assert covered[5:50, 5:80].mean() > 0.95
    # Pixels of the current frame: the background left of the square is newly uncovered.
    uncovered = consistency_mask(pair.backward, pair.forward, boundaries=False)
    assert uncovered[64:116, 101:111].mean() < 0.3
    assert uncovered[5:50, 5:80].mean() > 0.95


def test_consistency_mask_rejects_targets_outside_the_view() -> None:
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = 5.0
    mask = consistency_mask(flow, -flow, boundaries=False)
    assert not mask[:, 25:].any() and mask[:, :25].all()


def test_pixel_grid_is_cached_and_read_only() -> None:
    grid = pixel_grid(4, 5)
    assert grid is pixel_grid(4, 5) and not grid.flags.writeable
    assert grid[3, 4].tolist() == [4.0, 3.0]


def test_flow_of_a_pair_does_not_depend_on_earlier_calls_at_other_sizes() -> None:
    """OpenCV's DIS keeps state sized by its first image: one instance fed 96x64 after
    64x48 gave a flow up to 19 px off (and a sweep after another replay a wrong verdict)."""
    a, b = texture(64, 96, seed=11), texture(64, 96, seed=12)
    first = compute_flow(a, b).forward.copy()
    compute_flow(texture(48, 64, seed=13), texture(48, 64, seed=14))
    compute_flow(texture(64, 96, seed=15), texture(64, 96, seed=16))
    np.testing.assert_array_equal(compute_flow(a, b).forward, first)
