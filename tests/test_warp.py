"""Pose homography against Intrinsics.project, and warp_to_pose on an image."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from simulator.pipeline.warp import apply_homography, pose_homography, warp_to_pose
from simulator.types import Intrinsics, Pose

CAMERA = Intrinsics(width=640, height=360, fx=512.0, fy=512.0, cx=320.0, cy=180.0)


def quat(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    half = math.radians(degrees) / 2
    return np.array([*(a * math.sin(half)), math.cos(half)])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


# A camera somewhere in the room, turned and tilted, so no axis is trivially aligned.
POSE_A = Pose(t=np.array([0.3, 1.4, 2.0]), q=quat_mul(quat((0, 1, 0), 25), quat((1, 0, 0), -10)))


def grid_pixels(step: int = 80) -> np.ndarray:
    us, vs = np.meshgrid(np.arange(20, 640, step), np.arange(20, 360, step))
    return np.column_stack([us.ravel(), vs.ravel()]).astype(float)


def unproject(pose: Pose, pixels: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
    """World points seen at ``pixels`` at ``depth`` (metres along the view axis) from ``pose``."""
    depth = np.broadcast_to(np.asarray(depth, float), (len(pixels),))
    x = (pixels[:, 0] - CAMERA.cx) / CAMERA.fx * depth
    y = -(pixels[:, 1] - CAMERA.cy) / CAMERA.fy * depth
    cam = np.column_stack([x, y, -depth])  # camera looks down -z, y up
    return cam @ pose.rotation().T + pose.t


def test_unproject_inverts_project() -> None:
    pixels = grid_pixels()
    back, depth = CAMERA.project(POSE_A, unproject(POSE_A, pixels, 3.0))
    assert np.allclose(back, pixels) and np.allclose(depth, 3.0)


@pytest.mark.parametrize(
    "rotation", [quat((0, 1, 0), 4), quat((1, 0, 0), -3), quat((0, 0, 1), 5), quat((1, 2, -1), 6)]
)
def test_pure_rotation_is_exact_at_any_depth(rotation: np.ndarray) -> None:
    pose_b = Pose(t=POSE_A.t.copy(), q=quat_mul(POSE_A.q, rotation))
    homography = pose_homography(CAMERA, POSE_A, pose_b, depth_m=2.0)
    pixels = grid_pixels()
    for depth in (0.5, 2.0, 30.0):
        expected, _ = CAMERA.project(pose_b, unproject(POSE_A, pixels, depth))
        assert np.abs(apply_homography(homography, pixels) - expected).max() < 0.01


def test_yaw_left_moves_content_right() -> None:
    # Turning the camera to its left (+y rotation) moves the scene right in the image.
    pose_b = Pose(t=POSE_A.t, q=quat_mul(POSE_A.q, quat((0, 1, 0), 2)))
    moved = apply_homography(pose_homography(CAMERA, POSE_A, pose_b, 2.0), [[320.0, 180.0]])
    assert moved[0, 0] - 320.0 == pytest.approx(512 * math.tan(math.radians(2)), rel=1e-3)
    assert abs(moved[0, 1] - 180.0) < 1e-6


def test_translation_is_exact_on_the_plane_and_off_by_the_parallax_elsewhere() -> None:
    step = np.array([0.06, -0.02, -0.04])  # right, down and forward, in world axes
    pose_b = Pose(t=POSE_A.t + step, q=quat_mul(POSE_A.q, quat((0, 1, 1), 3)))
    homography = pose_homography(CAMERA, POSE_A, pose_b, depth_m=2.0)
    pixels = grid_pixels()
    mapped = apply_homography(homography, pixels)
    on_plane, _ = CAMERA.project(pose_b, unproject(POSE_A, pixels, 2.0))
    assert np.abs(mapped - on_plane).max() < 0.01
    # Off the plane: the error is the parallax f·|t_perp|·|1/z − 1/d| (docstring), to first order.
    far, _ = CAMERA.project(pose_b, unproject(POSE_A, pixels, 4.0))
    across = np.linalg.norm((POSE_A.rotation().T @ step)[:2])
    parallax = CAMERA.fx * across * abs(1 / 4.0 - 1 / 2.0)
    errors = np.linalg.norm(mapped - far, axis=1)
    assert 0.5 * parallax < np.median(errors) < 1.5 * parallax
    assert errors.max() > 3.0  # the approximation is really approximate there


def test_warp_to_pose_moves_image_content_like_the_projection() -> None:
    side_step = np.array([0.02, 0.0, 0.0])
    pose_b = Pose(t=POSE_A.t + side_step, q=quat_mul(POSE_A.q, quat((0, 1, 0), -3)))
    for width, height in ((640, 360), (320, 180)):  # the camera's size and half of it
        image = np.zeros((height, width, 3), np.uint8)
        s = width / 640
        dot = np.array([[300.0, 150.0]])
        # Anti-aliased disc at a sub-pixel centre (shift=4: coordinates in 1/16 px).
        centre_px = np.rint(((dot[0] + 0.5) * s - 0.5) * 16).astype(int)
        cv2.circle(image, tuple(int(c) for c in centre_px), round(96 * s), (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)
        warped = warp_to_pose(image, CAMERA, POSE_A, pose_b, depth_m=2.0)
        assert warped.shape == image.shape
        expected, _ = CAMERA.project(pose_b, unproject(POSE_A, dot, 2.0))
        weight = warped[..., 0].astype(float)
        ys, xs = np.mgrid[:height, :width]
        centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
        assert np.abs((centroid + 0.5) / s - 0.5 - expected[0]).max() < 0.3
        assert np.abs(expected[0] - dot[0]).max() > 10  # it really moved


def test_identity_and_bad_depth() -> None:
    assert np.allclose(pose_homography(CAMERA, POSE_A, POSE_A, 2.0), np.eye(3))
    image = np.random.default_rng(0).integers(0, 255, (36, 64, 3), dtype=np.uint8)
    assert np.array_equal(warp_to_pose(image, CAMERA, POSE_A, POSE_A), image)
    with pytest.raises(ValueError):
        pose_homography(CAMERA, POSE_A, POSE_A, 0.0)
