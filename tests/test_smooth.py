"""Smoother stage: identity, exact EMA, flicker reduction by flow and pose, resets, colour,
settings validation."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from simulator.errors import InputError
from simulator.metrics.flicker import FlickerMeter, luminance_flicker, mean_luminance
from simulator.pipeline.smooth import Smoother, SmoothSettings
from simulator.pipeline.warp import pose_homography
from simulator.types import Intrinsics, Pose

CAMERA = Intrinsics(width=640, height=360, fx=512.0, fy=512.0, cx=320.0, cy=180.0)
MARGIN = (160, 100)  # canvas border around the reference view


def texture(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    layers = [
        cv2.resize(rng.random((height // s + 1, width // s + 1, 3)).astype(np.float32),
                   (width, height), interpolation=cv2.INTER_CUBIC)
        for s in (4, 12, 36)
    ]
    return np.clip(sum(layers) / 3 * 255, 0, 255).astype(np.uint8)


CANVAS = texture(360 + 2 * MARGIN[1], 640 + 2 * MARGIN[0], seed=3)
REFERENCE = Pose(t=np.zeros(3), q=np.array([0.0, 0.0, 0.0, 1.0]))


def yaw_pitch(yaw_deg: float, pitch_deg: float) -> Pose:
    cy, sy = math.cos(math.radians(yaw_deg) / 2), math.sin(math.radians(yaw_deg) / 2)
    cp, sp = math.cos(math.radians(pitch_deg) / 2), math.sin(math.radians(pitch_deg) / 2)
    # q = q_yaw (about y) * q_pitch (about x)
    return Pose(t=np.zeros(3), q=np.array([cy * sp, sy * cp, -sy * sp, cy * cp]))


def render(pose: Pose) -> np.ndarray:
    """The view from a camera rotated away from REFERENCE (exact: pure rotation)."""
    offset = np.array([[1.0, 0, -MARGIN[0]], [0, 1.0, -MARGIN[1]], [0, 0, 1.0]])
    homography = pose_homography(CAMERA, REFERENCE, pose, 2.0) @ offset
    return cv2.warpPerspective(CANVAS, homography, (640, 360), flags=cv2.INTER_LINEAR)


POSES = [yaw_pitch(1.2 * k, 0.4 * k) for k in range(8)]
FRAMES = [render(p) for p in POSES]
GAINS = [0.82, 1.18, 0.9, 1.12, 0.8, 1.15, 0.88, 1.2]


def flickering(frame: np.ndarray, gain: float) -> np.ndarray:
    """A 'stylization' whose brightness jumps from frame to frame."""
    return cv2.convertScaleAbs(frame, alpha=gain)


def run(settings: SmoothSettings) -> tuple[float, list[np.ndarray]]:
    smoother = Smoother(settings, CAMERA)
    meter = FlickerMeter()
    outputs = []
    for i, (frame, pose, gain) in enumerate(zip(FRAMES, POSES, GAINS, strict=True)):
        out = smoother.apply(flickering(frame, gain), frame, pose, "tracking")
        assert out.shape == frame.shape and out.dtype == np.uint8
        meter.add(i / 15, frame, out)
        outputs.append(out)
    return meter.summary()["warp_error"], outputs


def test_none_is_identity() -> None:
    smoother = Smoother(SmoothSettings(method="none"), CAMERA)
    for frame, pose in zip(FRAMES[:3], POSES, strict=False):
        output = flickering(frame, 1.1)
        assert smoother.apply(output, frame, pose, "tracking") is output


def test_ema_blends_exactly() -> None:
    smoother = Smoother(SmoothSettings(method="ema", alpha=0.25), CAMERA)
    first, second = flickering(FRAMES[0], 0.8), flickering(FRAMES[1], 1.2)
    assert np.array_equal(smoother.apply(first, FRAMES[0], POSES[0], "tracking"), first)
    blended = smoother.apply(second, FRAMES[1], POSES[1], "tracking")
    expected = 0.25 * second.astype(float) + 0.75 * first.astype(float)
    assert np.abs(blended - expected).max() <= 0.5 + 1e-6


@pytest.mark.parametrize(
    "settings",
    [
        SmoothSettings(method="flow"),
        SmoothSettings(method="pose"),
        SmoothSettings(method="flow", work_side=0),
        SmoothSettings(method="pose", work_side=0),
    ],
    ids=["flow", "pose", "flow-full-res", "pose-full-res"],
)
def test_motion_compensated_methods_cut_the_warping_error(settings: SmoothSettings) -> None:
    baseline, originals = run(SmoothSettings(method="none"))
    error, outputs = run(settings)
    assert error < 0.4 * baseline
    # No ghosting: the smoothed frames keep the structure of the originals (edges and
    # texture), they mostly lose the brightness jumps.
    for out, original in zip(outputs[1:], originals[1:], strict=True):
        centred = [img.astype(float) - img.mean() for img in (out, original)]
        correlation = (centred[0] * centred[1]).sum() / math.sqrt(
            (centred[0] ** 2).sum() * (centred[1] ** 2).sum()
        )
        assert correlation > 0.95  # EMA: 0.42 on this sequence


def test_ema_ghosts_where_motion_compensation_does_not() -> None:
    # The same moving scene without any flicker: a perfect smoother changes nothing.
    def drift(settings: SmoothSettings) -> float:
        smoother = Smoother(settings, CAMERA)
        outs = [smoother.apply(f, f, p, "tracking") for f, p in zip(FRAMES, POSES, strict=True)]
        return float(np.mean(np.abs(outs[-1].astype(int) - FRAMES[-1].astype(int))))

    assert drift(SmoothSettings(method="ema")) > 3 * drift(SmoothSettings(method="pose"))
    # What remains is the blur of resampling the previous result (bilinear) each frame.
    assert drift(SmoothSettings(method="pose")) < 4.0


@pytest.mark.parametrize("method", ["ema", "flow", "pose"])
def test_reset_on_cut_lost_tracking_and_size_change(method: str) -> None:
    smoother = Smoother(SmoothSettings(method=method), CAMERA)
    for frame, pose in zip(FRAMES[:3], POSES, strict=False):
        smoother.apply(flickering(frame, 0.8), frame, pose, "tracking")
    assert smoother.resets == 0
    other = texture(360, 640, seed=9) // 4  # a cut to a dark scene
    out = smoother.apply(other, other, POSES[3], "tracking")
    assert smoother.resets == 1 and np.array_equal(out, other)

    smoother.apply(flickering(FRAMES[4], 0.8), FRAMES[4], POSES[4], "tracking")
    assert smoother.resets == 2  # and the cut back
    lost = flickering(FRAMES[5], 1.2)
    assert np.array_equal(smoother.apply(lost, FRAMES[5], POSES[5], "lost"), lost)
    after = flickering(FRAMES[6], 1.2)  # nothing from before the loss is blended in
    assert np.array_equal(smoother.apply(after, FRAMES[6], POSES[6], "tracking"), after)
    assert smoother.resets == 3

    small = cv2.resize(FRAMES[7], (320, 180))
    assert np.array_equal(smoother.apply(small, small, POSES[7], "tracking"), small)
    assert smoother.resets == 4
    smoother.reset()
    assert smoother.resets == 5


def test_limited_tracking_still_smooths() -> None:
    smoother = Smoother(SmoothSettings(method="pose"), CAMERA)
    smoother.apply(flickering(FRAMES[0], 0.8), FRAMES[0], POSES[0], "tracking")
    new = flickering(FRAMES[1], 1.2)
    assert not np.array_equal(smoother.apply(new, FRAMES[1], POSES[1], "limited"), new)


@pytest.mark.parametrize("colour", ["stats", "histogram"])
def test_colour_stabilisation_damps_pumping(colour: str) -> None:
    def pumping(settings: SmoothSettings) -> float:
        smoother = Smoother(settings, CAMERA)
        luma = [
            mean_luminance(smoother.apply(flickering(FRAMES[0], g), FRAMES[0], POSES[0],
                                          "tracking"))
            for g in GAINS
        ]
        return luminance_flicker(luma) or 0.0

    plain = pumping(SmoothSettings(method="none"))
    assert pumping(SmoothSettings(method="none", colour=colour, colour_rate=0.2)) < 0.5 * plain
    # Rate 1: the reference is always the current frame, so colours stay as they are.
    smoother = Smoother(SmoothSettings(colour=colour, colour_rate=1.0), CAMERA)
    for gain in GAINS[:3]:
        image = flickering(FRAMES[0], gain)
        out = smoother.apply(image, FRAMES[0], POSES[0], "tracking")
        assert np.abs(out.astype(int) - image.astype(int)).mean() < 0.5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "blur"),
        ("colour", "sepia"),
        ("alpha", 0.0),
        ("alpha", 1.5),
        ("alpha", float("nan")),
        ("colour_rate", -0.1),
        ("flow_max_side", 8),
        ("flow_max_side", 320.5),
        ("pose_depth_m", 0.0),
        ("pose_depth_m", float("inf")),
        ("cut_threshold", -1.0),
        ("cut_threshold", float("nan")),
        ("work_side", 10),
    ],
)
def test_settings_validation(field: str, value: object) -> None:
    settings = SmoothSettings(**{field: value})
    with pytest.raises(InputError) as error:
        settings.validate()
    assert error.value.where == "smoothing" and field in error.value.problem
    with pytest.raises(InputError):
        Smoother(settings, CAMERA)


def test_default_settings_are_valid() -> None:
    SmoothSettings().validate()
    SmoothSettings(method="flow", cut_threshold=math.inf, work_side=0).validate()
    with pytest.raises(InputError):  # the check is not a no-op
        SmoothSettings(method="blur").validate()
