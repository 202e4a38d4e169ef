"""Plain data that flows between stages: poses, intrinsics and camera frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Camera-to-world pose (ARKit/ARCore convention: right-handed, y up, camera looks down -z).

    ``t`` is the camera position in the world (metres); ``q`` the rotation as a unit
    quaternion (qx, qy, qz, qw), the same order as a TUM trajectory row.
    """

    t: np.ndarray  # shape (3,), float64
    q: np.ndarray  # shape (4,), float64, unit, (x, y, z, w)

    def rotation(self) -> np.ndarray:
        """3x3 rotation matrix (camera-to-world)."""
        x, y, z, w = (float(v) for v in self.q)
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera intrinsics in pixels, for images of ``width`` x ``height``."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def project(self, pose: Pose, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (N, 3) to pixels (N, 2); also return depth (N,) in front of
        the camera (positive when visible). Image y grows downwards."""
        r = pose.rotation()
        cam = (np.asarray(points_world, dtype=np.float64) - pose.t) @ r  # world -> camera
        depth = -cam[:, 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        u = self.cx + self.fx * cam[:, 0] / safe
        v = self.cy - self.fy * cam[:, 1] / safe
        return np.stack([u, v], axis=1), depth


@dataclass
class Frame:
    """One camera frame as it enters the pipeline."""

    index: int
    time: float  # capture timestamp, seconds
    image: np.ndarray  # H x W x 3, uint8, RGB
    pose: Pose
    tracking: str  # "tracking" | "limited" | "lost"
