"""Conversions every importer shares: clocks, rotations, camera axes, world up, association.

Importers only parse; the arithmetic of converting a format's conventions to the scenario's
(camera-to-world, y up, camera looking down −z, seconds from the first frame, metres) lives
here, once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import read_user_text

NS_PER_S = 1_000_000_000
# A plain decimal number (no nan/inf, no underscores), as text formats write them.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

# Camera axes: OpenCV / COLMAP / ROS optical frames look down +z with y down; the scenario
# format (ARKit, OpenGL, NeRF) looks down −z with y up. The same camera, axes flipped.
CV_TO_GL = np.diag([1.0, -1.0, -1.0])
# ROS body frames (x forward, y left, z up) to the scenario camera looking along x: the
# columns are the camera's x (right), y (up) and z (backwards) in the body frame.
FLU_TO_GL = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


# --- clocks -------------------------------------------------------------------------------


def seconds_text_to_ns(text: str, where: str, field: str = "timestamp") -> int:
    """Exact integer nanoseconds from a decimal seconds string ("1305031102.175304")."""
    return _scaled(text, where, field, NS_PER_S)


def integer_ns(text: str, where: str, field: str = "timestamp") -> int:
    """A nanosecond timestamp written as an integer (EuRoC, ROS)."""
    return _scaled(text, where, field, 1)


def _scaled(text: str, where: str, field: str, factor: int) -> int:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise InputError(where, f"{field} must be a number, got {text[:40]!r}")
    try:
        value = Decimal(text) * factor
    except InvalidOperation:
        raise InputError(where, f"{field} must be a number, got {text[:40]!r}") from None
    if abs(value) > Decimal(2**62):
        raise InputError(where, f"{field} {text[:40]} is out of range")
    return int(value.to_integral_value())


def seconds_to_ns(seconds: np.ndarray | Sequence[float]) -> np.ndarray:
    """Float seconds to int64 nanoseconds (for sources that are already floats: a few
    hundred nanoseconds of rounding on an epoch clock)."""
    return np.round(np.asarray(seconds, dtype=np.float64) * NS_PER_S).astype(np.int64)


def frames_at_fps(count: int, fps: float) -> np.ndarray:
    """Synthetic capture times for sources without timestamps: frame i at i / fps."""
    return np.array([round(i * NS_PER_S / fps) for i in range(count)], dtype=np.int64)


def associate(
    a_ns: np.ndarray, b_ns: np.ndarray, max_diff_ns: int
) -> list[tuple[int, int]]:
    """Pairs (i, j) of the closest timestamps of two sorted series, each index used at most
    once, |a_i − b_j| ≤ ``max_diff_ns`` (the TUM ``associate.py`` rule, greedy by
    difference)."""
    a = np.asarray(a_ns, dtype=np.int64)
    b = np.asarray(b_ns, dtype=np.int64)
    if not len(a) or not len(b):
        return []
    candidates: list[tuple[int, int, int]] = []
    for i, t in enumerate(a):
        k = int(np.searchsorted(b, t))
        for j in (k - 1, k):
            if 0 <= j < len(b):
                diff = abs(int(b[j]) - int(t))
                if diff <= max_diff_ns:
                    candidates.append((diff, i, j))
    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return sorted(pairs)


# --- rotations ----------------------------------------------------------------------------


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(N, 4) x y z w unit quaternions to (N, 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64).reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices to (N, 4) x y z w unit quaternions (w ≥ 0). Matrices that
    are not quite orthonormal (text exports, scaled COLMAP) are projected onto the nearest
    rotation first."""
    r = np.asarray(r, dtype=np.float64).reshape(-1, 3, 3)
    u, _, vt = np.linalg.svd(r)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, 2] *= d[:, None]
    r = u @ vt
    out = np.empty((len(r), 4))
    for k, m in enumerate(r):
        trace = m[0, 0] + m[1, 1] + m[2, 2]
        if trace > 0:
            s = 2.0 * np.sqrt(trace + 1.0)
            q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
        elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
        elif m[1, 1] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
            q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
        else:
            s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
            q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
        out[k] = q
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.where(out[:, 3:4] < 0, -out, out)


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """(N, 3) rotation vectors (axis × angle in radians, as OpenCV's Rodrigues takes them)
    to (N, 3, 3) rotation matrices."""
    v = np.asarray(rotvec, dtype=np.float64).reshape(-1, 3)
    angle = np.linalg.norm(v, axis=1)
    safe = np.where(angle > 1e-12, angle, 1.0)
    k = v / safe[:, None]
    zero = np.zeros(len(v))
    kx = np.stack(
        [
            np.stack([zero, -k[:, 2], k[:, 1]], -1),
            np.stack([k[:, 2], zero, -k[:, 0]], -1),
            np.stack([-k[:, 1], k[:, 0], zero], -1),
        ],
        axis=1,
    )
    s = np.sin(angle)[:, None, None]
    c = (1 - np.cos(angle))[:, None, None]
    return np.eye(3)[None] + s * kx + c * (kx @ kx)


def check_rotations(r: np.ndarray, where: str, tolerance: float = 1e-2) -> None:
    """InputError unless every (3, 3) is a rotation (orthonormal, det +1) within tolerance:
    a file whose matrices are not poses must not be imported as if they were."""
    r = np.asarray(r, dtype=np.float64).reshape(-1, 3, 3)
    if not np.all(np.isfinite(r)):
        raise InputError(where, "rotation has non-finite values")
    err = np.abs(r @ np.transpose(r, (0, 2, 1)) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(r)
    bad = np.nonzero((err > tolerance) | (det < 0))[0]
    if bad.size:
        k = int(bad[0])
        raise InputError(
            where,
            f"pose {k}: rotation is not orthonormal (error {err[k]:.3g}, det {det[k]:.3g}); "
            "expected a camera-to-world rigid transform",
        )


def split_matrices(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3|4, 4) rigid transforms to rotations (N, 3, 3) and translations (N, 3)."""
    m = np.asarray(m, dtype=np.float64)
    return m[:, :3, :3], m[:, :3, 3]


def camera_cv_to_gl(rotations_c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world rotations of an OpenCV-style camera (x right, y down, looks down +z)
    to the scenario's camera (y up, looks down −z)."""
    return np.asarray(rotations_c2w, dtype=np.float64) @ CV_TO_GL


def camera_flu_to_gl(rotations_c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world rotations of a ROS body-style frame (REP 103: x forward, y left, z up;
    a ``camera_link``) to the scenario's camera looking along that x, its image x right
    (body −y) and up (body +z)."""
    return np.asarray(rotations_c2w, dtype=np.float64) @ FLU_TO_GL


def invert(rotations: np.ndarray, translations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (COLMAP, some exports) <-> camera-to-world."""
    rt = np.transpose(np.asarray(rotations, dtype=np.float64), (0, 2, 1))
    return rt, -np.einsum("nij,nj->ni", rt, np.asarray(translations, dtype=np.float64))


# --- image rotation (video rotation metadata) ---------------------------------------------


def rotate_camera_cw(
    degrees: int,
    width: int,
    height: int,
    fxfycxcy: np.ndarray,
    rotations_c2w_gl: np.ndarray | None = None,
) -> tuple[int, int, np.ndarray, np.ndarray | None]:
    """A camera whose stored image is shown turned ``degrees`` clockwise (0, 90, 180, 270:
    MP4 rotation metadata, OpenCV applies it when decoding): the decoded image's size,
    its (N, 4) fx fy cx cy, and (scenario-convention, camera x right / y up of the image)
    camera-to-world rotations turned about the camera's z so that x and y follow the
    decoded image. A stored pixel (u, v) is at (h − v, u) after 90°, (w − u, h − v) after
    180°, (v, w − u) after 270°."""
    k = np.asarray(fxfycxcy, dtype=np.float64).reshape(-1, 4)
    fx, fy, cx, cy = k.T
    turn = int(degrees) % 360
    if turn == 0:
        out_w, out_h, out = width, height, k.copy()
    elif turn == 90:
        out_w, out_h, out = height, width, np.stack([fy, fx, height - cy, cx], axis=1)
    elif turn == 180:
        out_w, out_h, out = width, height, np.stack([fx, fy, width - cx, height - cy], axis=1)
    elif turn == 270:
        out_w, out_h, out = height, width, np.stack([fy, fx, cy, width - cx], axis=1)
    else:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    if rotations_c2w_gl is None:
        return out_w, out_h, out, None
    a = np.radians(turn)
    c, s = round(np.cos(a)), round(np.sin(a))
    about_z = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return out_w, out_h, out, np.asarray(rotations_c2w_gl, dtype=np.float64) @ about_z


# --- world up -----------------------------------------------------------------------------

_AXES = {"x": 0, "y": 1, "z": 2}


def axis_vector(text: str, where: str = "--up") -> np.ndarray:
    """'+z', '-y', 'x' ... as a unit vector."""
    t = text.strip().lower()
    sign = -1.0 if t.startswith("-") else 1.0
    name = t.lstrip("+-")
    if name not in _AXES:
        raise InputError(where, f"expected an axis such as +z, -y or x, got {text!r}")
    v = np.zeros(3)
    v[_AXES[name]] = sign
    return v


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1 + 1e-9:  # opposite: any half turn about an axis perpendicular to a
        perp = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(a, [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        return 2 * np.outer(perp, perp) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def estimate_up(rotations_c2w_gl: np.ndarray) -> np.ndarray:
    """The world's up direction estimated from the cameras: people hold a phone upright
    (roughly), so the mean of the cameras' up vectors (their +y, in the scenario's camera
    convention) points against gravity. A portrait-held phone records a frame whose up is
    the image's up as decoded (rotation metadata applied), which is what the poses describe."""
    ups = np.asarray(rotations_c2w_gl, dtype=np.float64)[:, :, 1]
    mean = ups.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 0.3:  # cameras pointing every which way: no reliable estimate
        raise InputError("--up", "the cameras' up vectors disagree too much to estimate the "
                         "world's up direction; give it with --up (e.g. --up +z)")
    return mean / norm


def level_world(
    rotations_c2w_gl: np.ndarray, positions: np.ndarray, up: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate the world so that ``up`` becomes +y; returns (rotations, positions, W) with W
    the world rotation applied (p' = W p)."""
    w = rotation_between(up, np.array([0.0, 1.0, 0.0]))
    return w @ np.asarray(rotations_c2w_gl, float), np.asarray(positions, float) @ w.T, w


def describe_rotation(w: np.ndarray) -> str:
    """A world rotation in words, for ``source.axes``."""
    angle = float(np.degrees(np.arccos(np.clip((np.trace(w) - 1) / 2, -1, 1))))
    if angle < 1e-6:
        return "no world rotation"
    axis = np.array([w[2, 1] - w[1, 2], w[0, 2] - w[2, 0], w[1, 0] - w[0, 1]])
    norm = np.linalg.norm(axis)
    axis = axis / norm if norm > 1e-9 else np.array([1.0, 0.0, 0.0])
    return f"world rotated {angle:.1f} deg about ({axis[0]:.3f}, {axis[1]:.3f}, {axis[2]:.3f})"


# --- plain text tables --------------------------------------------------------------------


def natural_key(text: str) -> tuple:
    """Sort key putting "frame_2" before "frame_10" (digit runs compared as numbers)."""
    return tuple(
        (0, int(part), part) if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", text) if part
    )


def number(text: str, where: str, field: str) -> float:
    """A finite decimal number or InputError naming the field."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise InputError(where, f"{field} must be a number, got {text[:40]!r}")
    return float(text)


def read_rows(
    path: Path,
    label: str,
    *,
    delimiter: str | None = None,
    comment: str = "#",
    root: Path | None = None,
) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each non-empty, non-comment line of a text table; cells split
    on ``delimiter`` (None: any whitespace) and stripped."""
    text = read_user_text(path, label, root=root)
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or (comment and stripped.startswith(comment)):
            continue
        cells = stripped.split(delimiter) if delimiter else stripped.split()
        rows.append((line_no, [c.strip() for c in cells]))
    return rows
