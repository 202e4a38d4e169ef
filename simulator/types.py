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


DISTORTION_MODELS = {
    # OpenCV's radial-tangential model: k1 k2 p1 p2 [k3 [k4 k5 k6]] (4, 5 or 8 numbers)
    "radtan": (4, 5, 8),
    # OpenCV's fisheye (equidistant, Kannala-Brandt) model: k1 k2 k3 k4
    "fisheye": (4,),
}


@dataclass(frozen=True)
class Distortion:
    """Lens distortion of a camera, in OpenCV's conventions (normalised image coordinates,
    x right, y down): ``model`` "radtan" or "fisheye", ``coeffs`` as OpenCV orders them."""

    model: str
    coeffs: tuple[float, ...]

    def __post_init__(self) -> None:
        counts = DISTORTION_MODELS.get(self.model)
        if counts is None or len(self.coeffs) not in counts:
            raise ValueError(f"bad distortion {self.model!r} with {len(self.coeffs)} coefficients")

    def apply(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distort normalised coordinates (x = X/Z, y = Y/Z, y down)."""
        c = self.coeffs
        if self.model == "fisheye":
            r = np.hypot(x, y)
            theta = np.arctan(r)
            t2 = theta * theta
            theta_d = theta * (1 + c[0] * t2 + c[1] * t2**2 + c[2] * t2**3 + c[3] * t2**4)
            scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0)
            return x * scale, y * scale
        k1, k2, p1, p2 = c[:4]
        k3 = c[4] if len(c) > 4 else 0.0
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        if len(c) == 8:
            radial = radial / (1 + c[5] * r2 + c[6] * r2**2 + c[7] * r2**3)
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return xd, yd

    def opencv(self) -> np.ndarray:
        """The coefficient vector as cv2 (or cv2.fisheye) takes it."""
        return np.asarray(self.coeffs, dtype=np.float64)


@dataclass(frozen=True)
class Intrinsics:
    """Camera intrinsics in pixels, for images of ``width`` x ``height``: a pinhole, with an
    optional lens ``distortion`` applied when projecting."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: Distortion | None = None

    def project(self, pose: Pose, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (N, 3) to pixels (N, 2); also return depth (N,) in front of
        the camera (positive when visible). Image y grows downwards. With a distortion the
        pixels are where the (distorted) recorded image shows the points."""
        r = pose.rotation()
        cam = (np.asarray(points_world, dtype=np.float64) - pose.t) @ r  # world -> camera
        depth = -cam[:, 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        x, y = cam[:, 0] / safe, -cam[:, 1] / safe  # normalised, OpenCV's y down
        if self.distortion is not None:
            # the models diverge far outside the field of view: distort only points in front
            x, y = self.distortion.apply(np.clip(x, -4, 4), np.clip(y, -4, 4))
        u = self.cx + self.fx * x
        v = self.cy + self.fy * y
        return np.stack([u, v], axis=1), depth

    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K (OpenCV convention)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass
class Frame:
    """One camera frame as it enters the pipeline."""

    index: int
    time: float  # capture timestamp, seconds
    image: np.ndarray  # H x W x 3, uint8, RGB
    pose: Pose
    tracking: str  # "tracking" | "limited" | "lost"
