"""Compositor: what the phone draws over the stylized camera image (AR anchors, HUD)."""

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


def anchor_corners(anchor: Anchor) -> np.ndarray:
    """World coordinates (8, 3) of the anchor's box corners."""
    half = _SIGNS * (np.asarray(anchor.size, float) / 2.0)
    rotation = Pose(t=np.zeros(3), q=np.asarray(anchor.rotation, float)).rotation()
    return half @ rotation.T + np.asarray(anchor.position, float)


@dataclass
class Compositor:
    """Draws anchors (projected with the source frame's pose, so they stay glued to the
    stylized image they are drawn on) and a one-line HUD. Pure: returns a new image."""

    camera: Intrinsics
    anchors: Sequence[Anchor] = ()
    show_anchors: bool = True
    show_hud: bool = True

    def compose(
        self, image: np.ndarray, pose: Pose, tracking: str, hud: str = ""
    ) -> np.ndarray:
        out = image.copy()
        if self.show_anchors and tracking != "lost":
            self._draw_anchors(out, pose)
        if self.show_hud and hud:
            self._draw_hud(out, hud)
        return out

    def _draw_anchors(self, out: np.ndarray, pose: Pose) -> None:
        h, w = out.shape[:2]
        sx, sy = w / self.camera.width, h / self.camera.height
        thickness = max(1, round(min(w, h) / 240))
        for anchor in self.anchors:
            pixels, depth = self.camera.project(pose, anchor_corners(anchor))
            pixels = pixels * (sx, sy)
            for a, b in _BOX_EDGES:
                if depth[a] < _NEAR_M or depth[b] < _NEAR_M:
                    continue
                pa = tuple(round(v) for v in pixels[a])
                pb = tuple(round(v) for v in pixels[b])
                ok, pa, pb = cv2.clipLine((0, 0, w, h), pa, pb)
                if ok:
                    cv2.line(out, pa, pb, _ANCHOR_COLOUR, thickness, cv2.LINE_AA)

    @staticmethod
    def _draw_hud(out: np.ndarray, text: str) -> None:
        h = out.shape[0]
        scale = max(0.35, h / 900)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        pad = max(2, th // 3)
        cv2.rectangle(out, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), -1)
        cv2.putText(out, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
