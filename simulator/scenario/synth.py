"""Synthetic scenarios: a procedural room rendered by ray casting along exact camera paths.

The scene is a set of textured rectangles (room, desk, boxes, a photo billboard with a real
face). Every pixel's ray is intersected with every rectangle whose screen bounding box
covers it (vectorised numpy), the nearest hit wins, and its texture is looked up with
``cv2.remap`` in one atlas. Shading is Lambert from one light direction plus ambient.
Camera poses follow the ARKit convention of :mod:`simulator.types`, so
``Intrinsics.project`` lands exactly where the renderer draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.scenario.write import write_scenario
from simulator.types import Intrinsics, Pose

TEXTURE_SIZE = 256  # every texture is square, this many texels
FACE_ASSET = Path(__file__).parent / "assets" / "face.png"
POSE_RATE_HZ = 60.0
HORIZONTAL_FOV_DEG = 64.0
NEAR_M = 0.02
TEXTURE_SOFTEN_TEXELS = 1.5
LENS_BLUR_PX = 0.6  # optics: no real camera is pixel-sharp
_UP = np.array([0.0, 1.0, 0.0])

# ---------------------------------------------------------------------------------------
# Textures (procedural from the seed, all tileable except the photo)


def _smooth_noise(rng: np.random.Generator, size: int, scale_xy: tuple[float, float]) -> np.ndarray:
    """Tileable smooth noise (zero mean, unit std): white noise low-passed in Fourier space.

    ``scale_xy`` is the feature size in texels along x and y (different values stretch it).
    """
    white = rng.standard_normal((size, size))
    fy = np.fft.fftfreq(size)[:, None] * scale_xy[1]
    fx = np.fft.fftfreq(size)[None, :] * scale_xy[0]
    smooth = np.real(np.fft.ifft2(np.fft.fft2(white) * np.exp(-(fx * fx + fy * fy) * 8.0)))
    return (smooth - smooth.mean()) / (smooth.std() + 1e-12)


def _colorize(base_rgb: Sequence[float], shade: np.ndarray) -> np.ndarray:
    """RGB image from a base colour scaled by a per-texel brightness map."""
    out = np.asarray(base_rgb, dtype=np.float64)[None, None, :] * shade[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _wood(rng: np.random.Generator, n: int) -> np.ndarray:
    grain = _smooth_noise(rng, n, (64.0, 4.0))
    y = np.arange(n)[:, None] / n
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (y * rng.integers(10, 16) + 0.35 * grain))
    planks = np.repeat(rng.uniform(0.85, 1.1, 4), n // 4)[:, None]
    seams = np.where((np.arange(n) % (n // 4))[:, None] < 2, 0.55, 1.0)
    light, dark = np.array([176, 120, 70.0]), np.array([112, 68, 36.0])
    color = dark + (light - dark) * rings[:, :, None]
    fine = 1.0 + 0.05 * _smooth_noise(rng, n, (2.0, 1.0))
    return np.clip(color * (planks * seams * fine)[:, :, None], 0, 255).astype(np.uint8)


def _tiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """2 x 2 floor tiles in a checker of two seeded tones, with grout lines."""
    grey = rng.uniform(150, 205, (2, 1))
    tones = grey * rng.uniform(0.92, 1.06, (2, 3))  # near-neutral, slightly tinted
    cell = np.arange(n) // (n // 2)
    checker = (cell[:, None] + cell[None, :]) % 2
    color = tones[checker]
    color *= (1.0 + 0.06 * _smooth_noise(rng, n, (6.0, 6.0)))[:, :, None]
    grout = (np.arange(n) % (n // 2)) < 4
    color[grout, :, :] = 95.0
    color[:, grout, :] = 95.0
    return np.clip(color, 0, 255).astype(np.uint8)


def _brick(rng: np.random.Generator, n: int) -> np.ndarray:
    rows, per_row = 8, 4
    row_h, brick_w = n // rows, n // per_row
    y, x = np.mgrid[0:n, 0:n]
    row = y // row_h
    shifted = (x + (row % 2) * (brick_w // 2)) % n
    brick_id = row * per_row + shifted // brick_w
    tints = rng.uniform(0.75, 1.15, rows * per_row)[brick_id]
    mortar = ((y % row_h) < 3) | ((shifted % brick_w) < 3)
    shade = tints * (1.0 + 0.08 * _smooth_noise(rng, n, (3.0, 3.0)))
    color = _colorize((165, 78, 55), shade)
    color[mortar] = (188, 182, 170)
    return color


def _plaster(rng: np.random.Generator, n: int, base: Sequence[float]) -> np.ndarray:
    shade = 1.0 + 0.05 * _smooth_noise(rng, n, (20.0, 20.0)) + 0.02 * _smooth_noise(
        rng, n, (2.0, 2.0)
    )
    return _colorize(base, shade)


def _cardboard(rng: np.random.Generator, n: int) -> np.ndarray:
    shade = 1.0 + 0.07 * _smooth_noise(rng, n, (3.0, 30.0))
    color = _colorize((190, 150, 100), shade)
    tape = slice(n // 2 - n // 16, n // 2 + n // 16)
    color[:, tape] = (np.asarray(color[:, tape], dtype=np.float64) * 0.75 + 50).astype(np.uint8)
    return color


def _checker(rng: np.random.Generator, n: int) -> np.ndarray:
    colors = rng.uniform(30, 230, (2, 3))
    cell = np.arange(n) // (n // 8)
    return colors[(cell[:, None] + cell[None, :]) % 2].astype(np.uint8)


def _poster(rng: np.random.Generator, n: int) -> np.ndarray:
    image = np.full((n, n, 3), rng.uniform(200, 245, 3), dtype=np.uint8)
    for _ in range(9):
        center = tuple(int(v) for v in rng.integers(20, n - 20, 2))
        color = tuple(int(v) for v in rng.integers(20, 235, 3))
        if rng.random() < 0.5:
            cv2.circle(image, center, int(rng.integers(12, 40)), color, -1, cv2.LINE_AA)
        else:
            half = rng.integers(10, 36, 2)
            top_left = (center[0] - int(half[0]), center[1] - int(half[1]))
            bottom_right = (center[0] + int(half[0]), center[1] + int(half[1]))
            cv2.rectangle(image, top_left, bottom_right, color, -1)
    return image


def _soften(texture: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that keeps a texture tileable (wraps around its edges)."""
    pad = math.ceil(3 * sigma)
    wrapped = cv2.copyMakeBorder(texture, pad, pad, pad, pad, cv2.BORDER_WRAP)
    return cv2.GaussianBlur(wrapped, (0, 0), sigma)[pad:-pad, pad:-pad]


def _face_photo(n: int) -> np.ndarray:
    bgr = cv2.imread(str(FACE_ASSET), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(FACE_ASSET, "bundled face photo is missing or unreadable")
    return cv2.cvtColor(cv2.resize(bgr, (n, n), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True)
class Rect:
    """A textured rectangle. Seen from the front, ``edge_u`` runs to the right along the top
    edge from ``origin`` (the top-left corner) and ``edge_v`` runs down; the front normal is
    ``edge_v x edge_u``. Only the front side is drawn. The texture spans ``texels_u`` x
    ``texels_v`` texels across the rectangle (more than the texture size tiles it)."""

    origin: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    texture: int
    texels_u: float
    texels_v: float

    @cached_property
    def normal(self) -> np.ndarray:
        n = np.cross(self.edge_v, self.edge_u)
        return n / np.linalg.norm(n)

    def corners(self) -> np.ndarray:
        o, u, v = self.origin, self.edge_u, self.edge_v
        return np.stack([o, o + u, o + u + v, o + v])


def _face(
    center: Sequence[float],
    normal: Sequence[float],
    up: Sequence[float],
    size: tuple[float, float],
    texture: int,
    tile_m: float | None,
) -> Rect:
    """A rectangle facing ``normal``; ``up`` gives the top of its texture; ``tile_m`` the
    texture repeat in metres (None: the texture is stretched over it once)."""
    n = np.asarray(normal, dtype=np.float64)
    n /= np.linalg.norm(n)
    right = np.cross(np.asarray(up, dtype=np.float64), n)
    right /= np.linalg.norm(right)
    top = np.cross(n, right)
    width, height = size
    origin = np.asarray(center, dtype=np.float64) - right * width / 2 + top * height / 2
    texels_u = TEXTURE_SIZE * (width / tile_m if tile_m else 1.0)
    texels_v = TEXTURE_SIZE * (height / tile_m if tile_m else 1.0)
    return Rect(origin, right * width, -top * height, texture, texels_u, texels_v)


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _box(
    center: Sequence[float],
    size: Sequence[float],
    texture: int,
    yaw: float = 0.0,
    tile_m: float | None = None,
) -> list[Rect]:
    """Six outward-facing rectangles of a box turned by ``yaw`` about the vertical axis."""
    rot = _yaw_matrix(yaw)
    c = np.asarray(center, dtype=np.float64)
    half = np.asarray(size, dtype=np.float64) / 2
    rects = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            local_n = np.zeros(3)
            local_n[axis] = sign
            local_up = np.array([0.0, 1.0, 0.0]) if axis != 1 else np.array([0.0, 0.0, -sign])
            width_axis = next(a for a in range(3) if a != axis and local_up[a] == 0)
            height_axis = 3 - axis - width_axis
            rects.append(
                _face(
                    c + rot @ (local_n * half[axis]),
                    rot @ local_n,
                    rot @ local_up,
                    (2 * half[width_axis], 2 * half[height_axis]),
                    texture,
                    tile_m,
                )
            )
    return rects


@dataclass
class Scene:
    """Rectangles plus the texture atlas they index into."""

    rects: list[Rect]
    textures: list[np.ndarray]
    tileable: list[bool]
    atlas: np.ndarray = field(init=False)
    atlas_rows: np.ndarray = field(init=False)  # first atlas row of each texture

    def __post_init__(self) -> None:
        # Each texture gets a 1-texel border (wrapped when it tiles) so bilinear lookups
        # at its edges read the right neighbours.
        padded = [
            cv2.copyMakeBorder(tex, 1, 1, 1, 1, cv2.BORDER_WRAP if tiles else cv2.BORDER_REPLICATE)
            for tex, tiles in zip(self.textures, self.tileable, strict=True)
        ]
        self.atlas = np.ascontiguousarray(np.concatenate(padded, axis=0))
        self.atlas_rows = np.arange(len(padded), dtype=np.float32) * (TEXTURE_SIZE + 2)


DESK_TOP_Y = 0.75
PHOTO_CENTER = np.array([0.0, DESK_TOP_Y + 0.36, -0.28])
PHOTO_SIZE_M = 0.6


def build_scene(rng: np.random.Generator) -> Scene:
    """The room: tiled floor, brick and plaster walls, a poster, a wooden desk with a face
    photo standing on it, and cardboard/checker boxes; textures and placements from ``rng``."""
    n = TEXTURE_SIZE
    textures = [
        _tiles(rng, n),  # 0 floor
        _brick(rng, n),  # 1 back wall
        _plaster(rng, n, rng.uniform(170, 225, 3)),  # 2 side walls
        _plaster(rng, n, (226, 224, 218)),  # 3 ceiling
        _wood(rng, n),  # 4 desk
        _plaster(rng, n, (60, 62, 66)),  # 5 dark metal / frame
        _cardboard(rng, n),  # 6
        _checker(rng, n),  # 7
        _poster(rng, n),  # 8
        _face_photo(n),  # 9
    ]
    # Softened so that the sample videos stay small: mp4v spends most bits on fine texture.
    textures[:9] = [_soften(tex, TEXTURE_SOFTEN_TEXELS) for tex in textures[:9]]
    tileable = [True] * 9 + [False]
    w, d, h = 4.0, 4.5, 2.8  # room half-width, half-depth, height
    rects = [
        _face((0, 0, 0), (0, 1, 0), (0, 0, -1), (2 * w, 2 * d), 0, 1.0),
        _face((0, h, 0), (0, -1, 0), (0, 0, 1), (2 * w, 2 * d), 3, 2.0),
        _face((0, h / 2, -d), (0, 0, 1), _UP, (2 * w, h), 1, 1.2),
        _face((0, h / 2, d), (0, 0, -1), _UP, (2 * w, h), 2, 1.6),
        _face((-w, h / 2, 0), (1, 0, 0), _UP, (2 * d, h), 2, 1.6),
        _face((w, h / 2, 0), (-1, 0, 0), _UP, (2 * d, h), 2, 1.6),
        _face((-w + 0.01, 1.55, rng.uniform(-1.5, -0.5)), (1, 0, 0), _UP, (1.2, 1.2), 8, None),
    ]
    # Desk: top and four legs.
    rects += _box((0, DESK_TOP_Y - 0.02, 0), (1.6, 0.04, 0.8), 4, tile_m=1.0)
    for lx in (-0.74, 0.74):
        for lz in (-0.34, 0.34):
            rects += _box((lx, (DESK_TOP_Y - 0.04) / 2, lz), (0.05, DESK_TOP_Y - 0.04, 0.05), 5)
    # Photo billboard: a thin dark frame with the face photo just in front of it.
    frame = PHOTO_SIZE_M + 0.06
    rects += _box(PHOTO_CENTER, (frame, frame, 0.03), 5)
    rects.append(
        _face(PHOTO_CENTER + np.array([0, 0, 0.016]), (0, 0, 1), _UP, (PHOTO_SIZE_M,) * 2, 9, None)
    )
    # Real boxes (seeded placement), away from where the anchors stand.
    big = rng.uniform(0.45, 0.55)
    rects += _box((1.35, big / 2, rng.uniform(-0.4, 0.0)), (big,) * 3, 6, rng.uniform(-0.4, 0.4))
    small = rng.uniform(0.35, 0.42)
    small_at = (-1.45, small / 2, rng.uniform(0.1, 0.5))
    rects += _box(small_at, (small,) * 3, 7, rng.uniform(-0.5, 0.5))
    rects += _box((0.5, DESK_TOP_Y + 0.07, 0.15), (0.14, 0.14, 0.14), 7, rng.uniform(0, 1.5))
    return Scene(rects, textures, tileable)


# ---------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class Lighting:
    """Directional light + ambient, a colour tint, an exposure drift and sensor noise."""

    direction: tuple[float, float, float]  # towards the light
    ambient: float
    diffuse: float
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure: float = 1.0
    exposure_drift: float = 0.0  # exposure dips by this fraction mid-scenario
    noise_sigma: float = 0.0  # Gaussian sensor noise, in 8-bit levels

    def exposure_at(self, t: float, duration_s: float) -> float:
        return self.exposure * (1.0 - self.exposure_drift * math.sin(math.pi * t / duration_s) ** 2)


def _wrap_texels(coords: np.ndarray) -> np.ndarray:
    """Texture coordinates (>= 0) wrapped into one tile (faster than np.fmod)."""
    wrapped = coords * (1.0 / TEXTURE_SIZE)
    np.floor(wrapped, out=wrapped)
    wrapped *= -float(TEXTURE_SIZE)
    wrapped += coords
    return wrapped


class Renderer:
    """Ray casts a :class:`Scene` for one camera; ``supersample`` > 1 renders larger and
    shrinks with area averaging (anti-aliasing)."""

    def __init__(self, scene: Scene, camera: Intrinsics, supersample: float = 1.5) -> None:
        self.scene = scene
        self.camera = camera
        self.width = round(camera.width * supersample)
        self.height = round(camera.height * supersample)
        # Ray direction of each (super-sampled) pixel in camera coordinates is (xs, ys, -1);
        # pixel centres map to the same image coordinates that Intrinsics.project returns.
        sx, sy = camera.width / self.width, camera.height / self.height
        self._xs = ((np.arange(self.width) + 0.5) * sx - 0.5 - camera.cx) / camera.fx
        self._ys = -((np.arange(self.height) + 0.5) * sy - 0.5 - camera.cy) / camera.fy
        shape = (self.height, self.width)
        self.depth = np.empty(shape, np.float32)
        self.ids = np.empty(shape, np.int16)
        self.tex_u = np.empty(shape, np.float32)
        self.tex_v = np.empty(shape, np.float32)
        self._scratch = [np.empty(self.height * self.width, np.float32) for _ in range(4)]
        self._mask = np.empty(self.height * self.width, bool)
        self._test = np.empty(self.height * self.width, bool)
        yy, xx = np.mgrid[0 : camera.height, 0 : camera.width]
        r2 = ((xx - camera.cx) / camera.width) ** 2 + ((yy - camera.cy) / camera.width) ** 2
        self._vignette = (1.0 - 0.6 * r2).astype(np.float32)[:, :, None]

    def cast(self, pose: Pose) -> np.ndarray:
        """Fill ``depth``, ``ids`` (-1 where nothing is hit) and texture coordinates."""
        self.depth.fill(np.inf)
        self.ids.fill(-1)
        self.tex_u.fill(0)
        self.tex_v.fill(0)
        rot = pose.rotation()
        eye = np.asarray(pose.t, dtype=np.float64)
        for index, rect in enumerate(self.scene.rects):
            normal = rect.normal
            if np.dot(eye - rect.origin, normal) <= 0:  # seen from behind: culled
                continue
            box = self._screen_box(rect, eye, rot)
            if box is not None:
                self._cast_rect(index, rect, normal, eye, rot, box)
        return self.ids

    def _screen_box(
        self, rect: Rect, eye: np.ndarray, rot: np.ndarray
    ) -> tuple[int, int, int, int] | None:
        """Super-sampled pixel bounds (x0, x1, y0, y1) covering the rectangle, or None."""
        cam = (rect.corners() - eye) @ rot
        clipped = []
        for a, b in zip(cam, np.roll(cam, -1, axis=0), strict=True):
            a_in, b_in = -a[2] >= NEAR_M, -b[2] >= NEAR_M
            if a_in:
                clipped.append(a)
            if a_in != b_in:  # edge crosses the near plane
                s = (-NEAR_M - a[2]) / (b[2] - a[2])
                clipped.append(a + s * (b - a))
        if not clipped:
            return None
        pts = np.array(clipped)
        c = self.camera
        u = (c.cx + c.fx * pts[:, 0] / -pts[:, 2] + 0.5) * (self.width / c.width) - 0.5
        v = (c.cy - c.fy * pts[:, 1] / -pts[:, 2] + 0.5) * (self.height / c.height) - 0.5
        x0, x1 = max(0, math.floor(u.min()) - 1), min(self.width, math.ceil(u.max()) + 2)
        y0, y1 = max(0, math.floor(v.min()) - 1), min(self.height, math.ceil(v.max()) + 2)
        return (x0, x1, y0, y1) if x0 < x1 and y0 < y1 else None

    def _cast_rect(
        self,
        index: int,
        rect: Rect,
        normal: np.ndarray,
        eye: np.ndarray,
        rot: np.ndarray,
        box: tuple[int, int, int, int],
    ) -> None:
        # For a ray d = (xs, ys, -1) in camera space, d.w = xs*wc.x + ys*wc.y - wc.z for any
        # world vector w (wc = its camera-space form), so every per-pixel quantity is a sum of
        # a row term and a column term over the same denominator d.n.
        x0, x1, y0, y1 = box
        xs, ys = self._xs[x0:x1], self._ys[y0:y1]
        to_origin = rect.origin - eye
        num = float(np.dot(to_origin, normal))  # depth along d = num / (d.n)

        def split(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            wc = w @ rot
            return xs * wc[0], ys * wc[1] - wc[2]

        dn_x, dn_y = split(normal)
        terms = []
        for edge, texels in ((rect.edge_u, rect.texels_u), (rect.edge_v, rect.texels_v)):
            scaled = edge * (texels / float(np.dot(edge, edge)))
            offset = -float(np.dot(to_origin, scaled))  # texel coordinate of the eye's foot
            e_x, e_y = split(scaled)
            terms.append((offset * dn_x + num * e_x, offset * dn_y + num * e_y, texels))

        rows, cols = y1 - y0, x1 - x0
        size = rows * cols
        inv, depth, tu, tv = (buf[:size].reshape(rows, cols) for buf in self._scratch)
        mask = self._mask[:size].reshape(rows, cols)
        test = self._test[:size].reshape(rows, cols)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.add(dn_y.astype(np.float32)[:, None], dn_x.astype(np.float32)[None, :], out=inv)
            np.divide(1.0, inv, out=inv)
        np.multiply(inv, num, out=depth)
        region = (slice(y0, y1), slice(x0, x1))
        np.greater(depth, NEAR_M, out=mask)
        np.less(depth, self.depth[region], out=test)
        mask &= test
        for out, (t_x, t_y, texels) in zip((tu, tv), terms, strict=True):
            np.add(t_y.astype(np.float32)[:, None], t_x.astype(np.float32)[None, :], out=out)
            out *= inv
            np.greater_equal(out, 0.0, out=test)
            mask &= test
            np.less_equal(out, texels, out=test)
            mask &= test
        np.copyto(self.depth[region], depth, where=mask)
        np.copyto(self.ids[region], index, where=mask)
        np.copyto(self.tex_u[region], tu, where=mask)
        np.copyto(self.tex_v[region], tv, where=mask)

    def render(
        self,
        pose: Pose,
        lighting: Lighting,
        exposure: float = 1.0,
        noise_rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """One RGB uint8 frame of the camera's size seen from ``pose``."""
        ids = self.cast(pose)
        light = np.asarray(lighting.direction, dtype=np.float64)
        light /= np.linalg.norm(light)
        shade_of = np.zeros(len(self.scene.rects) + 1, np.float32)  # slot 0: no hit, black
        rows_of = np.zeros(len(self.scene.rects) + 1, np.float32)
        for index, rect in enumerate(self.scene.rects):
            lambert = max(0.0, float(np.dot(rect.normal, light)))
            shade_of[index + 1] = lighting.ambient + lighting.diffuse * lambert
            rows_of[index + 1] = self.scene.atlas_rows[rect.texture]
        slot = ids + 1
        map_x = _wrap_texels(self.tex_u)
        map_x += 1.0
        map_y = _wrap_texels(self.tex_v)
        map_y += rows_of[slot] + 1.0
        color = cv2.remap(self.scene.atlas, map_x, map_y, cv2.INTER_LINEAR)
        shade = shade_of[slot]
        c = self.camera
        if (self.width, self.height) != (c.width, c.height):
            # Shrinking colour and shade separately (cheaper on uint8) only differs from
            # shrinking their product on the one-pixel seams between surfaces.
            color = cv2.resize(color, (c.width, c.height), interpolation=cv2.INTER_AREA)
            shade = cv2.resize(shade, (c.width, c.height), interpolation=cv2.INTER_AREA)
        lit = color.astype(np.float32)
        lit *= shade[:, :, None]
        lit = cv2.GaussianBlur(lit, (0, 0), LENS_BLUR_PX)
        lit *= self._vignette * (np.asarray(lighting.tint, np.float32) * exposure)
        if lighting.noise_sigma > 0 and noise_rng is not None:
            lit += noise_rng.standard_normal(lit.shape, dtype=np.float32) * lighting.noise_sigma
        np.clip(lit, 0.0, 255.0, out=lit)
        lit += 0.5
        return lit.astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Camera paths


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world rotation for a camera at ``eye`` looking at ``target`` (y up, -z
    forward), turned by ``roll`` radians about its viewing axis."""
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, _UP)
    right /= np.linalg.norm(right)
    back = -forward
    up = np.cross(back, right)
    rot = np.column_stack([right, up, back])
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        rot = rot @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return rot


def _small_rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rotation by the vector (rx, ry, rz) (Rodrigues)."""
    vec, _ = cv2.Rodrigues(np.array([rx, ry, rz], dtype=np.float64))
    return vec


def quaternion_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix, with w >= 0."""
    m = rot
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] >= m[1, 1] and m[0, 0] >= m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] >= m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    quat = np.array(q)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


@dataclass(frozen=True)
class CameraRig:
    """A camera path: the pose at any time and the tracking state an AR framework reports."""

    pose_at: Callable[[float], tuple[np.ndarray, np.ndarray]]  # t -> (position, rotation)
    tracking_at: Callable[[float], str]


def _waves(
    rng: np.random.Generator, count: int, low_hz: float, high_hz: float
) -> Callable[[float], float]:
    """A sum of ``count`` seeded sinusoids with unit total amplitude, as a function of t."""
    freqs = rng.uniform(low_hz, high_hz, count)
    phases = rng.uniform(0, 2 * np.pi, count)
    weights = rng.uniform(0.5, 1.0, count)
    weights /= weights.sum()

    def wave(t: float) -> float:
        return float(np.sum(weights * np.sin(2 * np.pi * freqs * t + phases)))

    return wave


def _orbit_rig(rng: np.random.Generator, duration: float) -> CameraRig:
    """A slow arc in front of the desk, always facing the photo."""
    phase = rng.uniform(0, 2 * np.pi)
    span = math.radians(rng.uniform(34, 42))
    radius = rng.uniform(1.9, 2.1)
    target = np.array([0.0, 0.98, -0.2])

    def pose_at(t: float) -> tuple[np.ndarray, np.ndarray]:
        s = 2 * np.pi * t / 8.0 + phase
        azimuth = span * math.sin(s)
        eye = np.array(
            [radius * math.sin(azimuth), 1.45 + 0.08 * math.sin(2 * s), radius * math.cos(azimuth)]
        )
        return eye, look_at(eye, target)

    return CameraRig(pose_at, lambda t: "tracking")


def _pan_rig(rng: np.random.Generator, duration: float) -> CameraRig:
    """A camera standing near the front wall panning fast from side to side."""
    eye0 = np.array([rng.uniform(0.0, 0.4), 1.5, rng.uniform(2.4, 2.8)])
    amplitude = math.radians(65.0)
    period = 2.5
    phase = rng.uniform(-0.3, 0.3)
    limited_dps = 155.0

    def angle(t: float) -> float:
        return amplitude * math.sin(2 * np.pi * t / period + phase)

    def pose_at(t: float) -> tuple[np.ndarray, np.ndarray]:
        yaw, pitch = angle(t), math.radians(-14.0 + 3.0 * math.sin(2 * np.pi * t / 3.1))
        forward = np.array(
            [-math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)]
        )
        eye = eye0 + np.array([0.05 * math.sin(0.9 * t), 0.0, 0.0])
        return eye, look_at(eye, eye + forward)

    def tracking_at(t: float) -> str:
        speed = abs(amplitude * 2 * np.pi / period * math.cos(2 * np.pi * t / period + phase))
        return "limited" if math.degrees(speed) > limited_dps else "tracking"

    return CameraRig(pose_at, tracking_at)


def _bursts(times: np.ndarray, width_s: float) -> Callable[[float], float]:
    def burst(t: float) -> float:
        return float(np.sum(np.exp(-(((t - times) / width_s) ** 2))))

    return burst


def _handheld_rig(rng: np.random.Generator, duration: float) -> CameraRig:
    """A hand holding the phone towards the photo: tremor with two strong shake bursts."""
    eye0 = np.array([rng.uniform(0.2, 0.45), rng.uniform(1.25, 1.35), rng.uniform(1.2, 1.4)])
    target = PHOTO_CENTER + np.array([0.0, -0.05, 0.0])
    rot_waves = [_waves(rng, 3, 3.0, 11.0) for _ in range(3)]
    move_waves = [_waves(rng, 3, 2.0, 8.0) for _ in range(3)]
    burst = _bursts(np.sort(rng.uniform(0.25, 0.75, 2)) * duration, 0.18)

    def envelope(t: float) -> float:
        return 1.0 + 2.5 * burst(t)

    def pose_at(t: float) -> tuple[np.ndarray, np.ndarray]:
        e = envelope(t)
        sway = np.array([0.03 * math.sin(0.7 * t), 0.01 * math.sin(1.9 * t), 0.0])
        eye = eye0 + sway + 0.004 * e * np.array([w(t) for w in move_waves])
        tremor = math.radians(0.6) * e * np.array([w(t) for w in rot_waves])
        return eye, look_at(eye, target) @ _small_rotation(*tremor)

    def tracking_at(t: float) -> str:
        e = envelope(t)
        return "lost" if e > 3.3 else "limited" if e > 2.4 else "tracking"

    return CameraRig(pose_at, tracking_at)


def _walk_rig(rng: np.random.Generator, duration: float) -> CameraRig:
    """Walking across the room past the desk with head bob and one quick look aside."""
    start = np.array([-2.6, 1.6, 3.0]) + rng.uniform(-0.2, 0.2, 3) * (1, 0, 1)
    end = np.array([1.7, 1.6, 1.6]) + rng.uniform(-0.2, 0.2, 3) * (1, 0, 1)
    step_hz = rng.uniform(1.7, 1.9)
    turn_at, turn_width = 0.55 * duration, 0.35
    turn_amplitude = math.radians(55.0)
    target = np.array([0.0, 1.0, -0.3])

    def turn(t: float) -> float:
        return math.exp(-(((t - turn_at) / turn_width) ** 2))

    def pose_at(t: float) -> tuple[np.ndarray, np.ndarray]:
        s = t / duration
        s = s * s * (3 - 2 * s)  # ease in and out
        eye = start + (end - start) * s + np.array([0.0, 0.0, 0.5 * math.sin(math.pi * s)])
        eye = eye + np.array(
            [0.02 * math.sin(np.pi * step_hz * t), 0.03 * math.sin(2 * np.pi * step_hz * t), 0.0]
        )
        base = look_at(eye, target)
        return eye, _yaw_matrix(turn_amplitude * turn(t)) @ base

    def tracking_at(t: float) -> str:
        speed = abs(turn_amplitude * turn(t) * 2 * (t - turn_at) / turn_width**2)
        dps = math.degrees(speed)
        return "lost" if dps > 128.0 else "limited" if dps > 75.0 else "tracking"

    return CameraRig(pose_at, tracking_at)


# ---------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class Preset:
    """A camera path, its lighting and the scenario's default length."""

    name: str
    description: str
    duration_s: float
    make_rig: Callable[[np.random.Generator, float], CameraRig]
    lighting: Lighting
    with_events: bool = False


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "orbit",
            "Slow arc around a desk with a face photo, warm daylight.",
            8.0,
            _orbit_rig,
            Lighting((0.3, 1.0, 0.5), ambient=0.5, diffuse=0.55, tint=(1.05, 1.0, 0.92)),
        ),
        Preset(
            "pan-fast",
            "Fast side-to-side pans across the room (up to ~160 deg/s), cool office light.",
            5.0,
            _pan_rig,
            Lighting((-0.4, 1.0, 0.3), ambient=0.55, diffuse=0.5, tint=(0.95, 1.0, 1.06)),
        ),
        Preset(
            "handheld-shake",
            "Hand-held view of the face photo with tremor and two strong shake bursts.",
            6.0,
            _handheld_rig,
            Lighting((0.5, 1.0, -0.2), ambient=0.45, diffuse=0.6),
        ),
        Preset(
            "walk",
            "Walk across the room with head bob and a quick look aside; app goes to the "
            "background and back, then memory pressure.",
            8.0,
            _walk_rig,
            Lighting(
                (0.2, 1.0, 0.6), ambient=0.5, diffuse=0.55, tint=(1.03, 1.0, 0.95),
                exposure_drift=0.15,
            ),
            with_events=True,
        ),
        Preset(
            "low-light",
            "The orbit in a dim room: low exposure, blue cast and sensor noise.",
            6.0,
            _orbit_rig,
            Lighting(
                (0.3, 1.0, 0.5), ambient=0.35, diffuse=0.4, tint=(0.85, 0.92, 1.1),
                exposure=0.3, noise_sigma=5.0,
            ),
        ),
    )
}


def _anchors(rng: np.random.Generator, preset: Preset) -> list[dict[str, Any]]:
    """Virtual boxes standing on the desk and on the floor."""

    def yaw_quat(yaw: float) -> list[float]:
        return [0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)]

    cube = 0.15
    crate = rng.uniform(0.3, 0.38)
    anchors = [
        {
            "id": "desk-cube",
            "position": [rng.uniform(-0.55, -0.35), DESK_TOP_Y + cube / 2, 0.15],
            "rotation": yaw_quat(rng.uniform(0, 1.2)),
            "size": [cube, cube, cube],
        },
        {
            "id": "floor-crate",
            "position": [rng.uniform(0.75, 0.95), crate / 2, rng.uniform(0.8, 1.0)],
            "rotation": yaw_quat(rng.uniform(0, 1.2)),
            "size": [crate, crate, crate],
        },
    ]
    if preset.with_events:
        anchors.append(
            {"id": "hall-marker", "position": [-1.8, 0.25, 1.6], "size": [0.5, 0.5, 0.5]}
        )
    return anchors


def _events(duration: float) -> list[dict[str, Any]]:
    background = round(0.3 * duration, 3)
    return [
        {"t": background, "type": "background"},
        {"t": round(background + min(1.0, 0.2 * duration), 3), "type": "foreground"},
        {"t": round(0.6 * duration, 3), "type": "memory_pressure", "mb": 300},
        {"t": round(0.85 * duration, 3), "type": "memory_pressure", "mb": 0},
    ]


def camera_for(width: int, height: int) -> Intrinsics:
    """Pinhole intrinsics with a 64 degree horizontal field of view, centred."""
    fx = (width / 2) / math.tan(math.radians(HORIZONTAL_FOV_DEG / 2))
    return Intrinsics(width, height, fx, fx, width / 2, height / 2)


def _check_options(preset: str, width: int, height: int, fps: float, duration: float) -> None:
    if preset not in PRESETS:
        raise InputError("preset", f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    for label, value in (("width", width), ("height", height)):
        if not (16 <= value <= 8192 and value % 2 == 0):
            raise InputError(label, f"{value}: expected an even number of pixels in 16..8192")
    if not (math.isfinite(fps) and 1 <= fps <= 240):
        raise InputError("fps", f"{fps}: expected a number in 1..240")
    if not (math.isfinite(duration) and 0 < duration <= 600):
        raise InputError("duration", f"{duration}: expected seconds in (0, 600]")


def synthesize(
    out_dir: Path,
    preset: str,
    seed: int = 0,
    *,
    width: int = 640,
    height: int = 360,
    fps: float = 30.0,
    duration_s: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    name: str | None = None,
    video: str = "video.mp4",
    supersample: float = 1.5,
    events: Sequence[Mapping[str, Any]] | None = None,
    note: str = "",
) -> Path:
    """Render a synthetic scenario of ``preset`` into ``out_dir`` and return its path.

    Deterministic for a seed. Frames arrive at ``fps`` with sub-millisecond jitter; poses are
    sampled at 60 Hz from the same path, so a reader interpolates between them.
    ``progress(done, total)`` is called after each frame. ``events`` replace the preset's
    events; ``note`` is appended to the description.
    """
    spec = PRESETS.get(preset)
    duration = float(duration_s if duration_s is not None else spec.duration_s if spec else 0)
    _check_options(preset, width, height, fps, duration)
    assert spec is not None
    rng = np.random.default_rng([seed, 0])
    scene = build_scene(rng)
    rig = spec.make_rig(rng, duration)
    direction = np.asarray(spec.lighting.direction) + rng.uniform(-0.1, 0.1, 3)
    lighting = replace(spec.lighting, direction=tuple(float(v) for v in direction))
    camera = camera_for(width, height)

    count = max(2, round(duration * fps))
    frame_times = 0.004 + np.arange(count) / fps + rng.uniform(-0.0015, 0.0015, count)
    frame_times = np.round(frame_times, 6)
    pose_times = np.arange(math.ceil(frame_times[-1] * POSE_RATE_HZ) + 2) / POSE_RATE_HZ
    samples = [rig.pose_at(float(t)) for t in pose_times]
    positions = np.array([eye for eye, _ in samples])
    quats = np.array([quaternion_from_matrix(rot) for _, rot in samples])
    renderer = Renderer(scene, camera, supersample)

    def frames():
        for index, t in enumerate(frame_times):
            eye, rot = rig.pose_at(float(t))
            pose = Pose(eye, quaternion_from_matrix(rot))
            noise = np.random.default_rng([seed, 1, index])
            yield renderer.render(pose, lighting, lighting.exposure_at(float(t), duration), noise)
            if progress is not None:
                progress(index + 1, count)

    return write_scenario(
        Path(out_dir),
        name=name or f"{preset}-seed{seed}",
        description=f"Synthetic ({preset}, seed {seed}): {spec.description}{note}",
        fps=fps,
        camera=camera,
        frames=frames(),
        frame_times=frame_times,
        tracking=[rig.tracking_at(float(t)) for t in frame_times],
        pose_rows=(pose_times, positions, quats),
        anchors=_anchors(rng, spec),
        events=(events if events is not None
                else _events(duration) if spec.with_events else ()),
        source={"device": "synthetic", "app": "arsim scenario synth"},
        video=video,
    )
