"""GUI-side overlays and the virtual webcam feed.

The engine composes the phone screen with its own ``Compositor`` built in ``run.py`` (the
defaults: anchors and HUD), and its observer also hands over the stylized picture before
composing. With the engine's look the app shows the engine's screen as it is; with other
overlay toggles it composes that stylized picture itself with the same ``Compositor`` class
(same pose, same projection), plus axes and the trajectory mini-map.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from simulator.pipeline.compose import Compositor
from simulator.scenario.model import Scenario
from simulator.sinks import ShownFrame
from simulator.sinks.virtual_cam import VirtualCamSink
from simulator.types import Pose


@dataclass(frozen=True)
class Overlays:
    anchors: bool = True
    axes: bool = False
    minimap: bool = False

    @property
    def is_engine_look(self) -> bool:
        return self.anchors and not self.axes and not self.minimap


class OverlayComposer:
    """Re-composes the engine's screens of one scenario with the app's overlay toggles."""

    def __init__(self, scenario: Scenario) -> None:
        self.camera = scenario.camera
        self.anchors = list(scenario.anchors)
        self.positions, self.quats = scenario.trajectory.at_many(
            np.asarray(scenario.frame_times, float)
        )
        self.tracking = list(scenario.tracking)

    def apply(self, screen: np.ndarray, stylized: np.ndarray, frame: int, overlays: Overlays,
              hud: str = "") -> np.ndarray:
        """The picture of camera frame ``frame`` with ``overlays``: the engine's ``screen``
        when they are the engine's own, else ``stylized`` composed here."""
        if overlays.is_engine_look:
            return screen
        frame = min(max(frame, 0), len(self.positions) - 1)
        pose = Pose(t=self.positions[frame], q=self.quats[frame])
        compositor = Compositor(self.camera, self.anchors, show_anchors=overlays.anchors,
                                show_axes=overlays.axes, show_minimap=overlays.minimap)
        return compositor.compose(stylized, pose, self.tracking[frame], hud,
                                  trail=self.positions[: frame + 1])


class VirtualCamFeeder:
    """Sends the latest frame to a ``VirtualCamSink`` on its own thread (the sink paces to
    the camera rate, which must not block the GUI); a newer frame replaces one not yet sent."""

    def __init__(self, sink: VirtualCamSink) -> None:
        self.sink = sink
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._quit = False
        self.error = ""
        self._thread = threading.Thread(target=self._run, name="arsim-virtual-cam", daemon=True)
        self._thread.start()

    def put(self, rgb: np.ndarray) -> None:
        with self._cond:
            self._frame = rgb
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self.sink.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._frame is None and not self._quit:
                    self._cond.wait()
                if self._quit:
                    return
                frame, self._frame = self._frame, None
            try:
                self.sink.send(ShownFrame(time.perf_counter(), frame))
            except Exception as exc:  # a broken device must not kill the app
                self.error = str(exc)
                return


__all__ = ["OverlayComposer", "Overlays", "VirtualCamFeeder"]
