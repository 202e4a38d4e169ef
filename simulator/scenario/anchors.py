"""Place anchors in a scenario from pixels: ``arsim scenario anchor add``.

A recording comes without virtual objects; the user points at something in a frame and the
anchor is put there — at a given depth along the pixel's ray (``anchor_from_depth``), or
where the rays of two frames meet (``anchor_from_two_views``) — and written into
``scenario.json`` (``add_anchor``).

Conventions are the scenario's (``Intrinsics.project`` is the forward model): camera-to-world
poses, the camera looks down -z, pixel v grows downwards, the lens distortion applied to
normalised coordinates. A loaded scenario's positions may be rescaled (``pose_scale``: metres
per file unit); everything given and returned here is in the FILE's units, as the anchors
of ``scenario.json`` are.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import InputError, OutputError
from simulator.scenario.model import Scenario
from simulator.types import Intrinsics

MIN_RAY_ANGLE_DEG = 1.0  # two rays closer to parallel than this do not triangulate
MAX_MISS_FRACTION = 0.2  # rays passing further apart than this share of the depth: refused
DEFAULT_SIZE_FRACTION = 0.1  # an anchor's default extent, as a share of its depth
_DECIMALS = 9  # as simulator.scenario.write writes numbers


# --- geometry ------------------------------------------------------------------------------


def _file_scale(scenario: Scenario) -> float:
    """Metres (loaded units) per file unit: positions in memory / this = the file's."""
    return float(scenario.pose_scale) if scenario.pose_scale else 1.0


def _check_posed(scenario: Scenario) -> None:
    if not scenario.poses_available:
        raise InputError(scenario.source_path, "the scenario has no poses (a video only: "
                         "tracking unavailable), so an anchor cannot be placed in its world")


def _check_frame(scenario: Scenario, frame: int, flag: str) -> None:
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
        raise InputError(flag, f"expected a frame index, got {frame!r}")
    if not 0 <= frame < scenario.frame_count:
        raise InputError(flag, f"no frame {frame}: the scenario has frames 0-"
                         f"{scenario.frame_count - 1}")


def undistort_normalised(camera: Intrinsics, u: float, v: float) -> tuple[float, float]:
    """The pinhole normalised coordinates (x right, y down) whose distorted projection lands
    on pixel (u, v): ``Distortion.apply`` inverted by Newton's method."""
    xd, yd = (u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy
    dist = camera.distortion
    if dist is None:
        return xd, yd
    target = np.array([xd, yd])
    guess = target.copy()
    step = 1e-7
    for _ in range(100):
        fx, fy = dist.apply(np.array([guess[0]]), np.array([guess[1]]))
        residual = np.array([fx[0], fy[0]]) - target
        if float(np.max(np.abs(residual))) < 1e-12:
            break
        jac = np.empty((2, 2))
        for k in range(2):
            moved = guess.copy()
            moved[k] += step
            mx, my = dist.apply(np.array([moved[0]]), np.array([moved[1]]))
            jac[:, k] = (np.array([mx[0], my[0]]) - np.array([fx[0], fy[0]])) / step
        try:
            delta = np.linalg.solve(jac, residual)
        except np.linalg.LinAlgError:
            break
        guess = guess - delta
        if not np.all(np.isfinite(guess)):
            break
    fx, fy = dist.apply(np.array([guess[0]]), np.array([guess[1]]))
    miss = float(np.hypot(fx[0] - xd, fy[0] - yd)) * max(camera.fx, camera.fy)
    if not np.all(np.isfinite(guess)) or miss > 1e-3:
        raise InputError("pixel", f"({u:g}, {v:g}) cannot be undistorted with the camera's "
                         f"{dist.model} model (outside the range the lens model is valid in)")
    return float(guess[0]), float(guess[1])


def pixel_ray(scenario: Scenario, frame: int, pixel: tuple[float, float],
              flag: str = "--frame") -> tuple[np.ndarray, np.ndarray]:
    """The ray through ``pixel`` of frame ``frame``'s camera, in FILE units: (camera
    centre (3,), direction (3,)) with the direction scaled so that its depth in front of
    the camera (-z in camera coordinates) is 1."""
    _check_posed(scenario)
    _check_frame(scenario, frame, flag)
    camera = scenario.camera_at(int(frame))
    u, v = (float(p) for p in pixel)
    pixel_flag = "--pixel" if flag == "--frame" else "--pixel2"
    if not (math.isfinite(u) and math.isfinite(v)):
        raise InputError(pixel_flag, f"expected finite pixel coordinates, got {pixel!r}")
    if not (0 <= u <= camera.width and 0 <= v <= camera.height):
        raise InputError(pixel_flag, f"({u:g}, {v:g}) is outside the {camera.width}x"
                         f"{camera.height} image")
    x, y = undistort_normalised(camera, u, v)
    pose = scenario.pose_at(float(scenario.frame_times[int(frame)]))
    direction = pose.rotation() @ np.array([x, -y, -1.0])
    return np.asarray(pose.t, float) / _file_scale(scenario), direction


def _size_vector(size: float | None, depth: float) -> list[float]:
    if size is None:
        size = DEFAULT_SIZE_FRACTION * depth
    elif not (math.isfinite(size) and size > 0):
        raise InputError("--size", f"expected an extent > 0 (file units), got {size:g}")
    return [round(float(size), _DECIMALS)] * 3


def _anchor(position: np.ndarray, size: float | None, depth: float,
            anchor_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if anchor_id is not None:
        out["id"] = anchor_id
    out["position"] = [round(float(c), _DECIMALS) for c in position]
    out["size"] = _size_vector(size, depth)
    return out


def anchor_from_depth(scenario: Scenario, frame: int, pixel: tuple[float, float],
                      depth: float, *, size: float | None = None,
                      anchor_id: str | None = None) -> dict[str, Any]:
    """An anchor (the JSON fields of ``scenario.json``: ``position``, ``size``, ``id`` when
    given) at ``depth`` in front of frame ``frame``'s camera on the ray through ``pixel``.

    ``depth`` is in the file's pose units, measured along the camera's viewing axis (the
    depth ``Intrinsics.project`` returns, and what a depth map holds); ``size`` is the
    box's extent in file units (default: 10 % of the depth)."""
    if not (math.isfinite(depth) and depth > 0):
        raise InputError("--depth", f"expected a distance > 0 in the scenario's pose units, "
                         f"got {depth:g}")
    origin, direction = pixel_ray(scenario, frame, pixel)
    return _anchor(origin + depth * direction, size, depth, anchor_id)


def anchor_from_two_views(scenario: Scenario, frame1: int, pixel1: tuple[float, float],
                          frame2: int, pixel2: tuple[float, float], *,
                          size: float | None = None,
                          anchor_id: str | None = None) -> dict[str, Any]:
    """An anchor where the rays through ``pixel1`` of frame ``frame1`` and ``pixel2`` of
    ``frame2`` meet: the midpoint of their closest points. Refused (InputError, saying why)
    when the rays are within 1 degree of parallel (too small a baseline for the distance),
    when the point lies behind either camera, or when the rays miss each other by more
    than 20 % of the depth (the pixels do not show the same point)."""
    o1, d1 = pixel_ray(scenario, frame1, pixel1, "--frame")
    o2, d2 = pixel_ray(scenario, frame2, pixel2, "--frame2")
    u1, u2 = d1 / np.linalg.norm(d1), d2 / np.linalg.norm(d2)
    angle = math.degrees(math.acos(float(np.clip(np.dot(u1, u2), -1.0, 1.0))))
    baseline = float(np.linalg.norm(o2 - o1))
    if angle < MIN_RAY_ANGLE_DEG:
        raise InputError(
            "--frame2", f"the rays of frames {frame1} and {frame2} are nearly parallel "
            f"({angle:.2f} degrees apart, baseline {baseline:.4g} units; at least "
            f"{MIN_RAY_ANGLE_DEG:g} degree needed): pick frames further apart, or give --depth")
    # closest points o1 + a d1 and o2 + b d2 (a, b: depths in each camera)
    w = o1 - o2
    aa, bb, cc = float(d1 @ d1), float(d1 @ d2), float(d2 @ d2)
    dd, ee = float(d1 @ w), float(d2 @ w)
    denom = aa * cc - bb * bb
    a = (bb * ee - cc * dd) / denom
    b = (aa * ee - bb * dd) / denom
    for depth, frame, flag in ((a, frame1, "--pixel"), (b, frame2, "--pixel2")):
        if depth <= 0:
            raise InputError(
                flag, f"the rays meet behind the camera of frame {frame} (depth "
                f"{depth:.4g}): the two pixels do not show the same point")
    p1, p2 = o1 + a * d1, o2 + b * d2
    miss = float(np.linalg.norm(p1 - p2))
    mean_depth = 0.5 * (a + b)
    if miss > MAX_MISS_FRACTION * mean_depth:
        raise InputError(
            "--pixel2", f"the rays of frames {frame1} and {frame2} pass {miss:.4g} units "
            f"apart at a depth of {mean_depth:.4g}: the two pixels do not show the same point")
    return _anchor(0.5 * (p1 + p2), size, float(a), anchor_id)


def default_depth(scenario: Scenario) -> float:
    """A depth to offer (file units): the scenario's scene depth, else 2 m."""
    scale = _file_scale(scenario)
    metres = scenario.scene_depth_m if scenario.scene_depth_m else 2.0
    return metres / scale


# --- scenario.json -------------------------------------------------------------------------


def scenario_json(path: Path) -> Path:
    """``scenario.json`` of a scenario folder; InputError for a .zip or no folder."""
    if path.is_file() and path.suffix.lower() == ".zip":
        raise InputError(path, "anchors cannot be added to a .zip scenario; unzip it and add "
                         "the anchor to the folder")
    if not path.is_dir():
        raise InputError(path, "no such scenario folder")
    return path / "scenario.json"


def add_anchor(scenario_path: str | Path, anchor: dict[str, Any],
               anchor_id: str | None = None) -> dict[str, Any]:
    """Append ``anchor`` (JSON fields; ``id`` from ``anchor_id``, the anchor's own, or the
    first free ``anchor-N``) to the ``anchors`` of a scenario folder's ``scenario.json``,
    keeping every other field and its order. The file is replaced atomically (a temporary
    file beside it, then ``os.replace``) and the scenario reloaded to prove it is still valid
    (else the previous file is put back and the problem raised). Returns the anchor as
    written."""
    from simulator.scenario.load import load_scenario

    path = Path(scenario_path)
    json_path = scenario_json(path)
    load_scenario(path).close()  # only a valid scenario is edited
    original = json_path.read_bytes()
    data = json.loads(original.decode("utf-8-sig"))
    anchors = data.get("anchors", [])
    used = {a.get("id") for a in anchors if isinstance(a, dict)}
    wanted = anchor_id if anchor_id is not None else anchor.get("id")
    if wanted is not None:
        if not isinstance(wanted, str) or not wanted:
            raise InputError("--id", f"expected a non-empty string, got {wanted!r}")
        if wanted in used:
            raise InputError("--id", f"{wanted!r} is already an anchor of {json_path}; "
                             "ids are unique")
    else:
        n = len(anchors) + 1
        while f"anchor-{n}" in used:
            n += 1
        wanted = f"anchor-{n}"
    written = {"id": wanted, **{k: v for k, v in anchor.items() if k != "id"}}
    data["anchors"] = [*anchors, written]
    _replace_atomically(json_path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n")
                        .encode("utf-8"))
    try:
        load_scenario(path).close()
    except InputError:
        _replace_atomically(json_path, original)
        raise
    return written


def _replace_atomically(target: Path, content: bytes) -> None:
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, target.stat().st_mode & 0o7777)
        os.replace(temp, target)
    except OSError as exc:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        raise OutputError(target, f"cannot be rewritten: {exc.strerror or exc}") from None


# --- command line --------------------------------------------------------------------------


def parse_pixel(text: str, flag: str = "--pixel") -> tuple[float, float]:
    """``U,V`` as two finite numbers."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        u, v = (float(p) for p in parts)
    except ValueError:
        raise InputError(flag, f"expected a pixel U,V (two numbers), got {text!r}") from None
    if not (math.isfinite(u) and math.isfinite(v)):
        raise InputError(flag, f"expected finite pixel coordinates, got {text!r}")
    return u, v


__all__ = [
    "add_anchor",
    "anchor_from_depth",
    "anchor_from_two_views",
    "default_depth",
    "parse_pixel",
    "pixel_ray",
    "scenario_json",
    "undistort_normalised",
]
