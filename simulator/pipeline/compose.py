"""Compositor: what the phone draws over the stylized camera image (AR anchors, HUD, and
optionally the world axes and a top-down trajectory mini-map)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from simulator.scenario.model import Anchor
from simulator.types import Intrinsics, Pose

# The 12 edges of a box, as pairs of corner indices (corners enumerated by sign bits).
_BOX_EDGES = (
    (0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3),
    (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7),
)
_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
_ANCHOR_COLOUR = (255, 64, 160)  # RGB magenta: stands out on any style
_NEAR_M = 0.05  # edges closer than this to the camera plane are not drawn
# World axes x, y, z in RGB red, green, blue (the usual convention).
_AXIS_COLOURS = ((255, 48, 48), (48, 220, 48), (64, 128, 255))
_TRAIL_COLOUR = (255, 210, 0)  # RGB amber
_CAMERA_COLOUR = (255, 255, 255)
_MINIMAP_FRACTION = 0.3  # side of the mini-map, as a fraction of the image's shorter side


def anchor_corners(anchor: Anchor) -> np.ndarray:
    """World coordinates (8, 3) of the anchor's box corners."""
    half = _SIGNS * (np.asarray(anchor.size, float) / 2.0)
    rotation = Pose(t=np.zeros(3), q=np.asarray(anchor.rotation, float)).rotation()
    return half @ rotation.T + np.asarray(anchor.position, float)


@dataclass
class Compositor:
    """Draws anchors (projected with the source frame's pose, so they stay glued to the
    stylized image they are drawn on) and a one-line HUD; optionally the world origin's
    axes (``show_axes``, projected the same way) and a top-down mini-map in the top-right
    corner (``show_minimap``: the camera trail passed to ``compose``, the anchors, the
    camera's position and heading). Pure: returns a new image."""

    camera: Intrinsics
    anchors: Sequence[Anchor] = ()
    show_anchors: bool = True
    show_hud: bool = True
    show_axes: bool = False
    show_minimap: bool = False
    axis_length_m: float = 0.25

    def compose(
        self,
        image: np.ndarray,
        pose: Pose,
        tracking: str,
        hud: str = "",
        trail: np.ndarray | None = None,
        camera: Intrinsics | None = None,
    ) -> np.ndarray:
        """``trail``: camera positions (N, 3) so far, for the mini-map (None: none);
        ``camera``: this frame's intrinsics when they vary (autofocus, zoom)."""
        out = image.copy()
        camera = camera or self.camera
        if self.show_axes and tracking != "lost":
            self._draw_axes(out, pose, camera)
        if self.show_anchors and tracking != "lost":
            self._draw_anchors(out, pose, camera)
        if self.show_hud and hud:
            self._draw_hud(out, hud)
        if self.show_minimap:
            self.draw_minimap(out, pose, trail)
        return out

    def _thickness(self, out: np.ndarray) -> int:
        return max(1, round(min(out.shape[:2]) / 240))

    def _segment(self, out, pixels, depth, a: int, b: int, colour, thickness: int) -> None:
        if depth[a] < _NEAR_M or depth[b] < _NEAR_M:
            return
        h, w = out.shape[:2]
        pa = tuple(round(v) for v in pixels[a])
        pb = tuple(round(v) for v in pixels[b])
        ok, pa, pb = cv2.clipLine((0, 0, w, h), pa, pb)
        if ok:
            cv2.line(out, pa, pb, colour, thickness, cv2.LINE_AA)

    @staticmethod
    def _project(out: np.ndarray, pose: Pose, points: np.ndarray, camera: Intrinsics):
        h, w = out.shape[:2]
        pixels, depth = camera.project(pose, points)
        return pixels * (w / camera.width, h / camera.height), depth

    def _draw_anchors(self, out: np.ndarray, pose: Pose, camera: Intrinsics) -> None:
        thickness = self._thickness(out)
        for anchor in self.anchors:
            pixels, depth = self._project(out, pose, anchor_corners(anchor), camera)
            for a, b in _BOX_EDGES:
                self._segment(out, pixels, depth, a, b, _ANCHOR_COLOUR, thickness)

    def _draw_axes(self, out: np.ndarray, pose: Pose, camera: Intrinsics) -> None:
        points = np.vstack([np.zeros(3), np.eye(3) * self.axis_length_m])
        pixels, depth = self._project(out, pose, points, camera)
        thickness = self._thickness(out) + 1
        for axis, colour in enumerate(_AXIS_COLOURS):
            self._segment(out, pixels, depth, 0, axis + 1, colour, thickness)

    def draw_minimap(self, out: np.ndarray, pose: Pose, trail: np.ndarray | None) -> None:
        """In place: top-down (world x to the right, world z downwards: y is up) in the top-right
        corner: the trail, the anchors' footprints, the camera and its heading."""
        h, w = out.shape[:2]
        side = max(24, round(min(w, h) * _MINIMAP_FRACTION))
        pad = max(2, side // 16)
        x0, y0 = w - side - pad, pad
        region = out[y0 : y0 + side, x0 : x0 + side]
        region[:] = (region.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darkened backdrop
        cv2.rectangle(out, (x0, y0), (x0 + side - 1, y0 + side - 1), (200, 200, 200), 1)
        here = np.asarray(pose.t, float)
        trail = np.zeros((0, 3)) if trail is None else np.asarray(trail, float).reshape(-1, 3)
        anchors = self.anchors if self.show_anchors else ()
        points = [here[None], trail] + [anchor_corners(a) for a in anchors]
        xz = np.vstack(points)[:, [0, 2]]
        lo, hi = xz.min(axis=0), xz.max(axis=0)
        centre, span = (lo + hi) / 2, max(float((hi - lo).max()), 0.5) * 1.15
        inner = side - 2 * pad
        middle = np.array([x0 + side / 2, y0 + side / 2])

        def to_px(p: np.ndarray) -> np.ndarray:
            uv = (np.asarray(p, float).reshape(-1, 3)[:, [0, 2]] - centre) / span * inner
            return np.round(uv + middle).astype(np.int32)

        for anchor in anchors:
            corners = to_px(anchor_corners(anchor))
            hull = cv2.convexHull(corners)
            cv2.polylines(out, [hull], True, _ANCHOR_COLOUR, 1, cv2.LINE_AA)
        if len(trail) >= 2:
            cv2.polylines(out, [to_px(trail)], False, _TRAIL_COLOUR, 1, cv2.LINE_AA)
        cam = to_px(here)[0]
        forward = pose.rotation() @ np.array([0.0, 0.0, -1.0])  # the camera looks down -z
        heading = np.array([forward[0], forward[2]])
        norm = float(np.linalg.norm(heading))
        if norm > 1e-6:
            tip = cam + np.round(heading / norm * side * 0.15).astype(np.int32)
            cv2.line(out, tuple(int(v) for v in cam), tuple(int(v) for v in tip),
                     _CAMERA_COLOUR, 1, cv2.LINE_AA)
        cv2.circle(out, tuple(int(v) for v in cam), max(2, side // 40), _CAMERA_COLOUR, -1)

    @staticmethod
    def _draw_hud(out: np.ndarray, text: str) -> None:
        h = out.shape[0]
        scale = max(0.35, h / 900)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        pad = max(2, th // 3)
        cv2.rectangle(out, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), -1)
        cv2.putText(out, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
