"""Where the phone's screen goes: one ``Sink`` protocol for the video file, the virtual
webcam and the app's views (``send`` each new screen, ``close`` at the end).

A replay sends a ``ShownFrame`` at each display refresh that shows something new (its
report entry, the camera frame it is aligned to and the stylized picture before composing
come with it, for viewers that draw their own overlays or heat-maps); live mode sends the
screens it shows on the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True, eq=False)
class ShownFrame:
    """One picture on the phone's screen at ``t`` (virtual seconds in a replay,
    ``time.perf_counter`` seconds live)."""

    t: float
    screen: np.ndarray  # RGB uint8, composed (anchors, HUD)
    entry: dict[str, Any] | None = None  # the report's "display" entry (replay)
    input: np.ndarray | None = None  # the camera frame the screen is aligned to
    stylized: np.ndarray | None = None  # the picture before composing
    # per-pixel warp error against the previous new picture, at the flicker metric's
    # analysis size (metrics/flicker.py); None when not compared
    flicker_map: np.ndarray | None = None


class Sink(Protocol):
    """A sink may say ``shows_flicker = False`` (the video file, the webcam): then a replay
    need not compute ``flicker_map`` for pictures whose flicker it knows already (the work
    cache); a sink that does not say is given the maps."""

    def send(self, frame: ShownFrame) -> None: ...

    def close(self) -> Any: ...
