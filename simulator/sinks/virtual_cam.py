"""Virtual webcam sink: the stylized screen as a camera other apps (Zoom, OBS, a browser) can
open, through pyvirtualcam (v4l2loopback on Linux, OBS Studio's virtual camera on Windows
and macOS).

``VirtualCamSink.send`` letterboxes any RGB frame onto the camera's fixed size and paces the
caller to the camera rate (``pyvirtualcam.Camera.sleep_until_next_frame``).
``open_virtual_cam`` returns None, after one line on stderr saying what to install, when no
virtual camera device is available, so a live run goes on without it.
"""

from __future__ import annotations

import platform
import sys
from typing import TextIO

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.sinks import ShownFrame

LINUX_HINT = (
    'install v4l2loopback-dkms and run: sudo modprobe v4l2loopback exclusive_caps=1 '
    'card_label="arsim"'
)
OBS_HINT = "install OBS Studio and start its virtual camera once (Start Virtual Camera)"


def install_hint(system: str | None = None) -> str:
    """What to install or load for a virtual camera on this (or the named) OS."""
    return LINUX_HINT if (system or platform.system()) == "Linux" else OBS_HINT


def letterbox(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` scaled to fit ``width`` x ``height`` (aspect kept), centred on black; grey or
    RGBA input becomes RGB. Returns a C-contiguous uint8 H x W x 3 array."""
    if rgb.dtype != np.uint8:
        raise InputError("virtual camera", f"expected a uint8 image, got {rgb.dtype}")
    if rgb.ndim == 2:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    elif rgb.ndim == 3 and rgb.shape[2] == 4:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGBA2RGB)
    elif rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError("virtual camera", f"expected an RGB image, got shape {rgb.shape}")
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return np.ascontiguousarray(rgb)
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    shrinking = scale < 1.0
    resized = cv2.resize(rgb, (new_w, new_h),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    out[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return out


class VirtualCamSink:
    """One pyvirtualcam camera fed RGB frames at ``fps``. Raises RuntimeError (pyvirtualcam's)
    when no device is available; ``open_virtual_cam`` turns that into None."""

    shows_flicker = False  # no heat-map: known flicker need not be measured again

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        backend: str | None = None,
        device: str | None = None,
    ) -> None:
        import pyvirtualcam  # optional at import time: only live runs need it

        if width < 2 or height < 2 or width % 2 or height % 2:
            raise InputError("virtual camera", f"expected an even size >= 2, got {width}x{height}")
        if not fps > 0:
            raise InputError("virtual camera", f"expected fps > 0, got {fps}")
        if backend is not None and backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(pyvirtualcam.camera.BACKENDS) or "none on this OS"
            raise InputError("virtual camera", f"unknown backend '{backend}' (known: {known})")
        self.width, self.height, self.fps = width, height, fps
        self.camera = pyvirtualcam.Camera(
            width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, backend=backend, device=device
        )
        self.device: str = self.camera.device  # e.g. /dev/video10, OBS Virtual Camera
        self.frames_sent = 0

    def send(self, frame: ShownFrame) -> None:
        """Send one screen (any size; letterboxed), then sleep until the next one is due."""
        self.camera.send(letterbox(frame.screen, self.width, self.height))
        self.frames_sent += 1
        self.camera.sleep_until_next_frame()

    def close(self) -> None:
        self.camera.close()

    def __enter__(self) -> VirtualCamSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_virtual_cam(
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    backend: str | None = None,
    device: str | None = None,
    stream: TextIO | None = None,
) -> VirtualCamSink | None:
    """A ``VirtualCamSink``, or None after ONE line on stderr (``stream``) naming the problem
    and what to install when no virtual camera can be opened."""
    try:
        return VirtualCamSink(width, height, fps, backend=backend, device=device)
    except RuntimeError as exc:
        problem = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(
            f"arsim: virtual camera unavailable ({problem or 'no backend on this OS'}); "
            f"going on without it. To enable it: {install_hint()}",
            file=stream or sys.stderr,
        )
        return None
