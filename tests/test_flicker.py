"""Warping error, frame difference and luminance flicker on small synthetic scenes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from simulator.metrics.flicker import (
    FlickerMeter,
    analysis_size,
    frame_diff,
    luminance_flicker,
    mean_luminance,
    warp_error,
)

HEIGHT, WIDTH = 180, 320  # at the default max_side, so no downscaling


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """Multi-scale smooth noise: textured enough everywhere for optical flow."""
    rng = np.random.default_rng(seed)
    layers = [
        cv2.resize(
            rng.random((height // s + 1, width // s + 1, 3)).astype(np.float32),
            (width, height),
            interpolation=cv2.INTER_CUBIC,
        )
        for s in (3, 9, 27)
    ]
    return np.clip(sum(layers) / 3 * 255, 0, 255).astype(np.uint8)


CANVAS = texture(HEIGHT + 40, WIDTH + 40, seed=1)


def panned(dx: int, dy: int) -> np.ndarray:
    """The camera view moved by (dx, dy) pixels over a larger scene."""
    return CANVAS[20 + dy : 20 + dy + HEIGHT, 20 + dx : 20 + dx + WIDTH].copy()


def with_square(x: int) -> np.ndarray:
    """A textured square at column ``x`` over a static textured background."""
    frame = texture(HEIGHT, WIDTH, seed=4)
    frame[60:120, x : x + 60] = texture(60, 60, seed=5)
    return frame


def test_pure_translation_with_unchanged_output_has_near_zero_error() -> None:
    prev, cur = panned(0, 0), panned(6, 3)  # the content moves 6 px left and 3 px up
    result = warp_error(prev, cur, prev, cur)
    assert result.error < 2e-4
    # Pixels that leave the view (left and top borders) are masked out.
    assert 0.8 < result.mask_fraction < 0.99
    assert not result.mask[:, :4].any() and not result.mask[:2, :].any()
    assert result.mask[20:-20, 20:-20].mean() > 0.98
    assert result.error_map.shape == (HEIGHT, WIDTH)


def test_output_brightness_flicker_raises_the_error() -> None:
    prev, cur = panned(0, 0), panned(6, 3)
    steady = warp_error(prev, cur, prev, cur).error
    brighter = np.clip(cur.astype(np.float32) * 1.2, 0, 255).astype(np.uint8)
    flickering = warp_error(prev, cur, prev, brighter).error
    assert flickering > 0.002
    assert flickering > 20 * steady


def test_occluded_background_is_masked() -> None:
    prev, cur = with_square(100), with_square(112)
    result = warp_error(prev, cur, prev, cur)
    # Background at columns 160..171 of the previous frame is hidden by the square next frame.
    assert result.mask[64:116, 161:171].mean() < 0.3
    assert result.mask[5:50, 5:80].mean() > 0.95
    assert np.all(result.error_map[~result.mask] == 0.0)


def test_results_are_deterministic() -> None:
    frames = [panned(3 * i, i) for i in range(4)]
    outputs = [np.clip(f.astype(np.int16) + 9 * (i % 2), 0, 255).astype(np.uint8)
               for i, f in enumerate(frames)]

    def run() -> tuple[list, dict, float]:
        meter = FlickerMeter()
        pairs = enumerate(zip(frames, outputs, strict=True))
        errors = [meter.add(i / 15, frame, output) for i, (frame, output) in pairs]
        single = warp_error(frames[0], frames[1], outputs[0], outputs[1]).error
        return errors, meter.summary(), single

    assert run() == run()


def test_meter_summary() -> None:
    meter = FlickerMeter()
    assert meter.summary()["warp_error"] is None
    errors = []
    for i in range(5):
        frame = panned(4 * i, 2 * i)
        output = np.clip(frame.astype(np.float32) * (1.15 if i % 2 else 0.85), 0, 255)
        errors.append(meter.add(i / 15, frame, output.astype(np.uint8)))
    assert errors[0] is None
    assert all(e is not None and e > 0.002 for e in errors[1:])
    summary = meter.summary()
    assert summary["warp_error"] == pytest.approx(np.mean(errors[1:]))
    assert summary["warp_error"] <= summary["warp_error_p95"] <= max(errors[1:])
    assert summary["frame_diff"] > 1.5  # output changes far more than the scene
    assert summary["luminance_flicker"] > 0.1
    assert summary["last_luminance"] == pytest.approx(meter.last_luminance)
    with pytest.raises(ValueError):
        meter.add(0.0, panned(0, 0), panned(0, 0))


def test_meter_restarts_on_size_change() -> None:
    meter = FlickerMeter()
    meter.add(0.0, panned(0, 0), panned(0, 0))
    small = cv2.resize(panned(2, 0), (160, 90))
    assert meter.add(0.1, small, small) is None


def test_frame_difference_is_relative_to_the_input_change() -> None:
    still = panned(0, 0)
    assert frame_diff(still, panned(4, 0), still, panned(4, 0)) == pytest.approx(1.0)
    brighter = np.clip(still.astype(np.int16) + 10, 0, 255).astype(np.uint8)
    change = np.mean(np.abs(brighter / 255.0 - still / 255.0))
    # A still input uses the one-grey-level floor as the denominator.
    assert frame_diff(still, still, still, brighter) == pytest.approx(change * 255.0, rel=1e-5)


def test_luminance_helpers() -> None:
    white = np.full((4, 4, 3), 255, np.uint8)
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    assert mean_luminance(white) == pytest.approx(1.0)
    assert mean_luminance(red) == pytest.approx(0.2126)
    assert luminance_flicker([0.5, 0.5]) is None
    assert luminance_flicker([0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.0)  # a steady fade
    assert luminance_flicker([0.4, 0.6, 0.4, 0.6]) == pytest.approx(0.4)


def test_mean_luminance_is_the_per_pixel_luma_mean() -> None:
    """The channel-means shortcut equals the mean of every pixel's Rec. 709 luma."""
    from simulator.metrics.flicker import REC709

    image = np.random.default_rng(3).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    per_pixel = (image.astype(np.float64) / 255.0).reshape(-1, 3) @ REC709.astype(np.float64)
    assert mean_luminance(image) == pytest.approx(float(per_pixel.mean()), abs=1e-12)
    as_float = image.astype(np.float32) / 255.0
    assert mean_luminance(as_float) == pytest.approx(float(per_pixel.mean()), abs=1e-6)


def test_analysis_size_keeps_aspect_and_never_upscales() -> None:
    assert analysis_size(360, 640, 320) == (320, 180)
    assert analysis_size(100, 50, 320) == (50, 100)


def _reference_meter() -> type:
    """bench/flicker_reference.py: the metric computed the way it was before issue 14."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "flicker_reference.py"
    spec = importlib.util.spec_from_file_location("flicker_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ReferenceMeter


@pytest.mark.parametrize("float_output", [False, True])
def test_fast_meter_computes_the_reference_definition(float_output: bool) -> None:
    """640x360 frames (downscaled for the analysis), a pan with a moving square and a
    pumping output: the fast meter's numbers are the baseline's within uint8 rounding."""
    canvas = texture(420, 720, seed=7)
    square = texture(90, 90, seed=8)
    meter, reference = FlickerMeter(), _reference_meter()()
    fast, slow = [], []
    for i in range(6):
        frame = canvas[10 + 2 * i: 370 + 2 * i, 20 + 5 * i: 660 + 5 * i].copy()
        frame[100:190, 200 + 12 * i: 290 + 12 * i] = square  # occludes, leaves boundaries
        output = cv2.GaussianBlur(frame, (5, 5), 0).astype(np.float32) * (1.0 + 0.05 * (i % 2))
        output = np.clip(output, 0, 255) / 255.0 if float_output else \
            np.clip(output, 0, 255).astype(np.uint8)
        fast.append(meter.add(i / 30, frame, output))
        slow.append(reference.add(frame, output))
    assert fast[0] is None and slow[0] is None
    # uint8 frames are area-averaged before the float conversion: values within 1 %
    np.testing.assert_allclose(fast[1:], slow[1:], rtol=0.01)
    summary, baseline = meter.summary(), reference.summary()
    assert summary["frame_diff"] == pytest.approx(baseline["frame_diff"], rel=0.01)
    assert summary["luminance_flicker"] == pytest.approx(baseline["luminance_flicker"], rel=0.02)
    assert 0.5 < summary["mask_fraction"] < 0.99  # the square's edges are masked out
