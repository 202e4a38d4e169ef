"""PSNR and SSIM (Wang et al. 2004) on known cases, and model-against-model comparison."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from simulator.errors import InputError
from simulator.zoo.probe import write_conv_probe
from simulator.zoo.quality import compare_models, psnr, ssim


def _image(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth colour ramps with seeded noise: structure for SSIM to see."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    ramps = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    return np.clip(ramps + rng.normal(0, 25, ramps.shape), 0, 255).astype(np.uint8)


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s definition written out: 11x11 Gaussian (sigma 1.5) weighted statistics
    over every fully inside window ('valid'), per channel, averaged."""
    offsets = np.arange(11) - 5
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for channel in range(3):
        wx = sliding_window_view(a[..., channel].astype(np.float64), (11, 11))
        wy = sliding_window_view(b[..., channel].astype(np.float64), (11, 11))
        mx, my = (wx * g).sum((-1, -2)), (wy * g).sum((-1, -2))
        vx = (g * (wx - mx[..., None, None]) ** 2).sum((-1, -2))
        vy = (g * (wy - my[..., None, None]) ** 2).sum((-1, -2))
        cov = (g * (wx - mx[..., None, None]) * (wy - my[..., None, None])).sum((-1, -2))
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        scores.append(s.mean())
    return float(np.mean(scores))


def test_psnr_known_values() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 10) == pytest.approx(10 * math.log10(255**2 / 100))
    b = a.copy()
    b[0, 0, 0] = 255  # one value off by 255 among 192: MSE = 255^2 / 192
    assert psnr(a, b) == pytest.approx(10 * math.log10(192))


def test_ssim_identical_is_one_and_constant_images_follow_the_formula() -> None:
    image = _image(0)
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    a, b = np.full((32, 32, 3), 100, np.uint8), np.full((32, 32, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2  # no variance: only the luminance term is left
    assert ssim(a, b) == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1), rel=1e-9)


def test_ssim_matches_the_written_out_definition() -> None:
    a = _image(1)
    b = np.clip(a.astype(int) + np.random.default_rng(2).integers(-40, 40, a.shape), 0, 255)
    b = b.astype(np.uint8)
    expected = _reference_ssim(a, b)
    assert 0.2 < expected < 0.95  # a case where the terms matter
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_ssim_falls_with_distortion_and_sees_structure_not_just_error() -> None:
    image = _image(3)
    rng = np.random.default_rng(4)
    light = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(image + rng.normal(0, 40, image.shape), 0, 255).astype(np.uint8)
    assert ssim(image, light) > ssim(image, heavy)
    # a brightness shift keeps structure, blurring destroys it: worse PSNR, far better SSIM
    shifted = np.clip(image.astype(int) + 30, 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(image, (7, 7), 2.0)
    assert psnr(image, shifted) < psnr(image, blurred)
    assert ssim(image, shifted) > ssim(image, blurred) + 0.5


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((16, 16, 3), np.float32), np.zeros((16, 16, 3), np.uint8), "uint8"),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 17, 3), np.uint8), "shape"),
        (np.zeros((16, 16, 4), np.uint8), np.zeros((16, 16, 4), np.uint8), "3 channels"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), "at least 11x11"),
    ],
)
def test_bad_images_are_one_line_input_errors(a: np.ndarray, b: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match) as caught:
        ssim(a, b)
    assert "\n" not in str(caught.value)


def test_compare_models_same_and_different(tmp_path: Path) -> None:
    frames = [cv2.resize(_image(i), (128, 72)) for i in range(2)]
    same = compare_models("toon-classic", "toon-classic", frames, 64)
    assert same["frames"] == 2 and same["psnr_db"] == math.inf and same["ssim"] == pytest.approx(1)
    probe = write_conv_probe(tmp_path / "probe.onnx", width=4, depth=1)
    other = compare_models("toon-classic", str(probe), frames, 64)
    assert other["reference"] == "toon-classic" and other["model"] == "probe"
    assert other["psnr_db"] < 20 and other["ssim"] < 0.8
    assert other["psnr_db_min"] <= other["psnr_db"] and other["ssim_min"] <= other["ssim"]
    with pytest.raises(InputError, match="no frames"):
        compare_models("toon-classic", "toon-classic", [], 64)
