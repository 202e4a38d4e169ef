"""Compositor overlays: anchors, world axes, the trajectory mini-map (pixels, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.pipeline.compose import Compositor
from simulator.scenario.model import Anchor
from simulator.types import Intrinsics, Pose

W, H = 320, 240
CAMERA = Intrinsics(W, H, fx=260.0, fy=260.0, cx=W / 2, cy=H / 2)
IDENTITY_Q = np.array([0.0, 0.0, 0.0, 1.0])
# Camera 1.5 m in front of the origin (on +z), looking down -z at it, slightly to the side
# so that no axis is seen end-on.
POSE = Pose(t=np.array([0.3, 0.2, 1.5]), q=IDENTITY_Q)
ANCHOR = Anchor("box", np.array([-0.3, 0.0, 0.0]), IDENTITY_Q, np.array([0.2, 0.2, 0.2]))
GREY = np.full((H, W, 3), 90, np.uint8)


def magenta(image: np.ndarray) -> np.ndarray:
    """Pixels close to the anchor colour (255, 64, 160)."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 180) & (g < 120) & (b > 110) & (b < 210)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0


def test_defaults_are_the_engine_look() -> None:
    comp = Compositor(CAMERA, [ANCHOR])
    assert comp.show_anchors and comp.show_hud
    assert not comp.show_axes and not comp.show_minimap
    out = comp.compose(GREY, POSE, "tracking")
    assert magenta(out).sum() > 20  # the anchor box
    assert out is not GREY and (GREY == 90).all()  # pure


def test_anchors_off_draws_no_magenta() -> None:
    out = Compositor(CAMERA, [ANCHOR], show_anchors=False).compose(GREY, POSE, "tracking")
    assert not magenta(out).any()
    assert (out == GREY).all()


def test_axes_are_drawn_at_the_projected_origin() -> None:
    plain = Compositor(CAMERA, [], show_hud=False).compose(GREY, POSE, "tracking")
    axes = Compositor(CAMERA, [], show_hud=False, show_axes=True).compose(GREY, POSE, "tracking")
    diff = changed(plain, axes)
    assert diff.sum() > 50
    pixels, _depth = CAMERA.project(POSE, np.zeros((1, 3)))
    u, v = (round(float(c)) for c in pixels[0])
    assert diff[v - 3 : v + 4, u - 3 : u + 4].any()  # the lines start at the origin
    # x axis red, y axis green: both colours are present
    r, g = axes[..., 0].astype(int), axes[..., 1].astype(int)
    assert ((r > 200) & (g < 100)).any() and ((g > 180) & (r < 100)).any()
    lost = Compositor(CAMERA, [], show_axes=True).compose(GREY, POSE, "lost")
    assert (lost == GREY).all()  # no tracking: nothing is glued to the world


@pytest.mark.parametrize("anchors", [True, False])
def test_minimap_in_the_top_right_corner(anchors: bool) -> None:
    trail = np.array([[0.3 + 0.1 * k, 0.2, 1.5 + 0.05 * k] for k in range(-5, 1)])
    comp = Compositor(CAMERA, [ANCHOR], show_anchors=anchors, show_hud=False)
    plain = comp.compose(GREY, POSE, "tracking")
    comp.show_minimap = True
    mapped = comp.compose(GREY, POSE, "tracking", trail=trail)
    diff = changed(plain, mapped)
    side = round(min(W, H) * 0.3)
    corner = diff[6:side, W - side : W - 6]
    assert corner.mean() > 0.9  # the darkened backdrop
    assert not diff[side + 10 :, :].any() and not diff[:, : W - side - 10].any()
    box = mapped[: side + 10, W - side - 10 :]
    r, g, b = (box[..., i].astype(int) for i in range(3))
    assert ((r > 200) & (g > 150) & (b < 80)).any()  # the amber trail
    assert ((r > 240) & (g > 240) & (b > 240)).any()  # the camera
    assert magenta(box).any() == anchors  # anchors off: not on the map either


def test_minimap_without_trail_and_when_lost() -> None:
    comp = Compositor(CAMERA, [ANCHOR], show_minimap=True, show_hud=False)
    out = comp.compose(GREY, POSE, "lost")  # the map stays (no tracking is not no history)
    assert changed(out, GREY)[:20, W - 20 :].any()
    assert not magenta(out[H // 2 :]).any()
