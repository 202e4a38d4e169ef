"""Re-projecting an image taken at one camera pose to another pose (no depth map needed).

Conventions (``simulator.types``): poses are camera-to-world, camera y up, looking down −z;
pixels have v growing downwards. With D = diag(1, −1, −1), q = D·p turns camera
coordinates p into the usual computer-vision frame (x right, y down, z forward), where a
pixel is K·q up to scale, K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].

From camera A (``from_pose``, rotation R_A, position t_A) to camera B:
p_B = R_Bᵀ R_A p_A + R_Bᵀ (t_A − t_B), so in the CV frame q_B = R q_A + t with
R = D R_Bᵀ R_A D and t = D R_Bᵀ (t_A − t_B). For points on the fronto-parallel plane at
depth d in front of A (nᵀ q_A = d, n = (0, 0, 1)), q_B = (R + t nᵀ / d) q_A, hence

    H = K (R + t nᵀ / d) K⁻¹

which maps pixels of A to pixels of B. It is exact for a pure rotation (t = 0, any depth)
and for points on that plane. A point at depth z ≠ d lands off by the parallax
f·|t⊥|·|1/z − 1/d| pixels (t⊥: the translation across the view axis, camera B's focal
length f), e.g. 512 px · 0.05 m · |1/4 − 1/2| m⁻¹ = 6.4 px for a 5 cm side step, a plane at
2 m and a point at 4 m.
"""

from __future__ import annotations

import cv2
import numpy as np

from simulator.types import Intrinsics, Pose

_FLIP = np.diag([1.0, -1.0, -1.0])  # camera (y up, looks down −z) <-> CV (y down, looks down +z)


def camera_matrix(
    camera: Intrinsics, width: int | None = None, height: int | None = None
) -> np.ndarray:
    """3x3 K for images of ``width`` x ``height`` (default: the camera's own size).

    Another size scales K with pixel centres kept aligned: u' = (u + 0.5)·s − 0.5.
    """
    sx = (width or camera.width) / camera.width
    sy = (height or camera.height) / camera.height
    return np.array(
        [
            [camera.fx * sx, 0.0, (camera.cx + 0.5) * sx - 0.5],
            [0.0, camera.fy * sy, (camera.cy + 0.5) * sy - 0.5],
            [0.0, 0.0, 1.0],
        ]
    )


def pose_homography(
    camera: Intrinsics,
    from_pose: Pose,
    to_pose: Pose,
    depth_m: float,
    *,
    width: int | None = None,
    height: int | None = None,
) -> np.ndarray:
    """3x3 homography taking pixels of an image seen from ``from_pose`` to where they appear
    from ``to_pose``: exact for rotation, a plane at ``depth_m`` in front of the source
    camera for translation (module docstring). ``width``/``height``: pixel grid of the
    images, when not the camera's own size."""
    if not depth_m > 0:
        raise ValueError(f"depth_m must be > 0, got {depth_m}")
    rot_a, rot_b = from_pose.rotation(), to_pose.rotation()
    rotation = _FLIP @ rot_b.T @ rot_a @ _FLIP
    shift = _FLIP @ rot_b.T @ (np.asarray(from_pose.t, float) - np.asarray(to_pose.t, float))
    k = camera_matrix(camera, width, height)
    homography = k @ (rotation + np.outer(shift, [0.0, 0.0, 1.0 / depth_m])) @ np.linalg.inv(k)
    return homography / homography[2, 2]


def apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) pixel coordinates through a 3x3 homography."""
    pts = np.asarray(points, dtype=np.float64)
    mapped = np.column_stack([pts, np.ones(len(pts))]) @ homography.T
    return mapped[:, :2] / mapped[:, 2:3]


def warp_to_pose(
    image: np.ndarray,
    camera: Intrinsics,
    from_pose: Pose,
    to_pose: Pose,
    depth_m: float = 2.0,
    *,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """``image`` (taken at ``from_pose``, any resolution of the camera's aspect) as seen from
    ``to_pose``; areas that come into view repeat the border pixels."""
    height, width = image.shape[:2]
    homography = pose_homography(camera, from_pose, to_pose, depth_m, width=width, height=height)
    # OpenCV's vectorised warp path takes 4 channels: RGB -> RGBA -> RGB is identical
    # output at about 40 % of the time (1.5 ms instead of 3.9 ms for 720p).
    rgb = image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    source = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA) if rgb else image
    warped = cv2.warpPerspective(
        source, homography, (width, height), flags=interpolation,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB) if rgb else warped
