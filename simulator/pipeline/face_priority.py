"""Face priority (face2paint-style): the tracked face gets the model's full input size.

With a face track, a square crop around the face box (plus a margin) is stylized at
``crop_size`` and resized back, the rest of the frame is stylized at a small
``background_size`` (or shown as it is: ``passthrough``), and the face is pasted onto the
background through a feathered mask. The crop is shifted to stay inside the frame; a side
that lies on the frame border is not feathered (nothing to blend with there). Without a
track the whole frame is stylized at the stylizer's ``input_size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.errors import InputError
from simulator.pipeline.face import FaceTrack
from simulator.pipeline.stylize import Stylizer

BACKGROUNDS = ("stylize", "passthrough")


@dataclass(frozen=True)
class FacePrioritySettings:
    """``margin``: added on each side of the face box, as a fraction of its longer side;
    ``crop_size``: model input size for the face crop (None: the model's default size);
    ``background``: "stylize" (at ``background_size``) or "passthrough";
    ``feather``: width of the blend ramp, as a fraction of the crop side;
    ``min_crop``: smallest crop side in frame pixels."""

    margin: float = 0.6
    crop_size: int | None = None
    background: str = "stylize"
    background_size: int = 160
    feather: float = 0.15
    min_crop: int = 32

    def validate(self) -> None:
        """InputError("face", ...) for a setting out of range (sizes are checked against
        the model by FacePriority)."""
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 5):
            raise InputError("face", f"margin: expected a number in [0, 5], got {self.margin!r}")
        if self.background not in BACKGROUNDS:
            raise InputError(
                "face", f"background: expected one of {BACKGROUNDS}, got {self.background!r}"
            )
        if not (math.isfinite(self.feather) and 0 <= self.feather <= 0.5):
            raise InputError(
                "face", f"feather: expected a number in [0, 0.5], got {self.feather!r}"
            )
        if self.min_crop < 8:
            raise InputError("face", f"min_crop: expected at least 8 pixels, got {self.min_crop}")


@dataclass(frozen=True, eq=False)
class FacePriorityResult:
    """One rendered frame. ``face_box`` is the square crop (x, y, side, side) in frame
    pixels (None without a face); ``face_flops_share`` the model FLOPs spent on the crop /
    all model FLOPs of this frame (``flops``); sizes are None where not used."""

    image: np.ndarray
    face_box: tuple[int, int, int, int] | None
    face_flops_share: float
    flops: int
    face_size: int | None
    background_size: int | None


class FacePriority:
    """Renders frames with the face stylized at full size and the background cheaper."""

    def __init__(self, stylizer: Stylizer, settings: FacePrioritySettings | None = None) -> None:
        self.settings = settings or FacePrioritySettings()
        self.settings.validate()
        self.stylizer = stylizer
        spec = stylizer.model.card.input
        self.crop_size = self.settings.crop_size or spec.default_size
        sizes = {"crop_size": self.crop_size}
        if self.settings.background == "stylize":
            sizes["background_size"] = self.settings.background_size
        for name, size in sizes.items():
            problem = spec.size_problem(size)
            if problem:
                raise InputError("face", f"{name}: {problem} (model {stylizer.model.name})")

    def crop_square(
        self, track: FaceTrack, width: int, height: int
    ) -> tuple[int, int, int, int] | None:
        """The square crop (x, y, side, side) around the face, inside a ``width`` x
        ``height`` frame; None when the face box does not touch the frame."""
        x, y, w, h = track.box
        if not all(math.isfinite(v) for v in track.box) or w <= 0 or h <= 0:
            return None
        if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
            return None
        side = round(max(w, h) * (1 + 2 * self.settings.margin))
        side = min(max(side, self.settings.min_crop), width, height)
        cx, cy = track.center
        x0 = min(max(round(cx - side / 2), 0), width - side)
        y0 = min(max(round(cy - side / 2), 0), height - side)
        return x0, y0, side, side

    def render(self, rgb: np.ndarray, track: FaceTrack | None,
               stylize: Callable[[np.ndarray, int], np.ndarray] | None = None
               ) -> FacePriorityResult:
        """Stylize one RGB uint8 frame, giving the tracked face (if any) priority.
        ``stylize(rgb, size)`` runs each model call (default: this process's Stylizer; under
        real throttling the confined worker's, so that the calls are confined and timed
        there)."""
        stylize = stylize or self.stylizer.stylize
        height, width = rgb.shape[:2]
        model = self.stylizer.model
        crop = None if track is None else self.crop_square(track, width, height)
        if crop is None:
            size = self.stylizer.input_size
            return FacePriorityResult(
                image=stylize(rgb, size),
                face_box=None,
                face_flops_share=0.0,
                flops=model.flops(self.stylizer.input_shape(width, height, size)),
                face_size=None,
                background_size=size,
            )
        x0, y0, side, _ = crop
        face = stylize(rgb[y0 : y0 + side, x0 : x0 + side], self.crop_size)
        face_flops = model.flops(self.crop_size)
        if self.settings.background == "stylize":
            background_size: int | None = self.settings.background_size
            image = stylize(rgb, background_size)
            if not image.flags.writeable:  # a shared (cached) result: the face goes on a copy
                image = image.copy()
            background_flops = model.flops(
                self.stylizer.input_shape(width, height, background_size)
            )
        else:
            background_size, image, background_flops = None, rgb.copy(), 0
        mask = feather_mask(
            side,
            self.settings.feather * side,
            hard=(x0 == 0, x0 + side == width, y0 == 0, y0 + side == height),
        )
        region = image[y0 : y0 + side, x0 : x0 + side]
        blended = region + mask[:, :, None] * (face.astype(np.float32) - region)
        region[...] = np.rint(blended).astype(np.uint8)
        total = face_flops + background_flops
        return FacePriorityResult(
            image=image,
            face_box=crop,
            face_flops_share=face_flops / total if total else 0.0,
            flops=total,
            face_size=self.crop_size,
            background_size=background_size,
        )


def feather_mask(
    side: int, width: float, hard: tuple[bool, bool, bool, bool] = (False,) * 4
) -> np.ndarray:
    """A side x side float32 weight: 1 inside, falling smoothly (smoothstep) to 0 over
    ``width`` pixels at each edge; ``hard`` (left, right, top, bottom) edges stay at 1."""
    left, right, top, bottom = hard
    ramp_x = _ramp(side, width, left, right)
    ramp_y = _ramp(side, width, top, bottom)
    return np.outer(ramp_y, ramp_x).astype(np.float32)


def _ramp(side: int, width: float, hard_start: bool, hard_end: bool) -> np.ndarray:
    """1-D profile of ``feather_mask`` along one axis."""
    if width <= 0:
        return np.ones(side)
    centres = np.arange(side) + 0.5
    start = np.ones(side) if hard_start else np.clip(centres / width, 0, 1)
    end = np.ones(side) if hard_end else np.clip((side - centres) / width, 0, 1)
    linear = np.minimum(start, end)
    return linear * linear * (3 - 2 * linear)
