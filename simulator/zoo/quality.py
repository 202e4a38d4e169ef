"""Image quality of one model's pictures against another's: PSNR and SSIM.

SSIM follows Wang et al. 2004 ("Image quality assessment: from error visibility to
structural similarity"): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
L = 255, local statistics by ``cv2.GaussianBlur``. The SSIM map is computed for each RGB
channel separately and averaged over the channels (so colour shifts count, not only
luminance); the 5-pixel border where the window leaves the image is cut off, which makes
the result equal to the reference implementation's 'valid' filtering.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.pipeline.stylize import Stylizer
from simulator.zoo.registry import ResolvedModel, resolve_model

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
PEAK = 255.0


def _check_pair(a: np.ndarray, b: np.ndarray, minimum: int = 1) -> None:
    for name, image in (("first", a), ("second", b)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            got = getattr(image, "dtype", type(image).__name__)
            raise InputError("image", f"{name} image: expected uint8 H x W x 3 RGB, got {got}")
        if image.shape[2] != 3:
            raise InputError("image", f"{name} image: expected 3 channels, got {image.shape[2]}")
    if a.shape != b.shape:
        raise InputError("image", f"images differ in shape: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < minimum:
        raise InputError("image", f"images must be at least {minimum}x{minimum}, got {a.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 RGB images in dB (inf when identical)."""
    _check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(PEAK * PEAK / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of two uint8 RGB images, mean over the
    RGB channels; 1.0 for identical images."""
    _check_pair(a, b, minimum=SSIM_WINDOW)
    c1 = (SSIM_K1 * PEAK) ** 2
    c2 = (SSIM_K2 * PEAK) ** 2
    x = a.astype(np.float64)
    y = b.astype(np.float64)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    edge = SSIM_WINDOW // 2
    return float(ssim_map[edge:-edge, edge:-edge].mean())


def compare_models(
    model_a: str | ResolvedModel,
    model_b: str | ResolvedModel,
    frames: Iterable[np.ndarray],
    size: int,
    threads: int = 1,
) -> dict[str, Any]:
    """Mean and worst PSNR/SSIM of ``model_b``'s stylized frames against ``model_a``'s
    (the reference), both run through the Stylizer at ``size``.

    PSNR is averaged over frames; a frame where both agree exactly counts as inf, so the
    mean is inf only when every frame agrees.
    """
    reference = Stylizer(_resolved(model_a), size, threads=threads)
    candidate = Stylizer(_resolved(model_b), size, threads=threads)
    psnrs, ssims = [], []
    for frame in frames:
        expected, got = reference.stylize(frame), candidate.stylize(frame)
        psnrs.append(psnr(expected, got))
        ssims.append(ssim(expected, got))
    if not psnrs:
        raise InputError("frames", "no frames to compare the models on")
    return {
        "reference": reference.model.name,
        "model": candidate.model.name,
        "size": size,
        "frames": len(psnrs),
        "psnr_db": float(np.mean(psnrs)),
        "psnr_db_min": float(min(psnrs)),
        "ssim": float(np.mean(ssims)),
        "ssim_min": float(min(ssims)),
    }


def _resolved(model: str | ResolvedModel) -> ResolvedModel:
    return model if isinstance(model, ResolvedModel) else resolve_model(model)
