"""Discrete-event replay of a scenario on a virtual clock.

The simulated phone's timeline comes only from the scenario and the device models, never
from how fast this host is: host work (decoding, ONNX inference, flicker) happens *at*
virtual instants but takes no virtual time. The scheduler is the seed's mobile design:
frames are pre-processed on the camera thread, at most one inference is in flight, the
latest ready frame wins (older waiting frames are dropped), results are post-processed and
composed on the render thread and appear at the next display refresh.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from simulator.device.cost import CostModel
from simulator.device.memory import MemoryModel
from simulator.device.thermal import ThermalModel
from simulator.metrics.flicker import FlickerMeter, mean_luminance
from simulator.metrics.timing import Shown
from simulator.pipeline.compose import Compositor
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.model import Scenario
from simulator.types import Frame

# Called with each new screen the phone shows: (virtual time, composited RGB image).
ScreenSink = Callable[[float, np.ndarray], None]


class Kind(IntEnum):
    """Event kinds; at equal times the lower value is handled first, so a result that
    completes exactly when a frame arrives frees the worker for that frame."""

    SCENARIO = 0
    INFER_DONE = 1
    RESULT_READY = 2
    DISPLAY = 3
    FRAME = 4


@dataclass
class ReplayResult:
    """Everything the replay observed; metrics and reports are derived from it."""

    complete: bool
    incomplete_reason: str | None
    frames: list[dict]
    display: list[dict]
    shown: list[Shown]
    inference_done: list[float]
    oom_events: list[dict]
    series: dict[str, list[float]]
    flicker: dict
    memory_peak_mb: float
    thermal_factor_max: float
    foreground_s: float
    background: list[tuple[float, float]]  # (start, end) of each period in the background
    thumbnails: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class _Work:
    """A frame on its way through the pipeline (waiting, in flight, or finished)."""

    index: int
    image: np.ndarray | None
    output: np.ndarray | None = None


class Replay:
    """One replay of one scenario under one device/backend/model configuration."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        cost: CostModel,
        memory: MemoryModel,
        thermal: ThermalModel,
        display_hz: float,
        screen_size: tuple[int, int],
        model_flops: float,
        input_size: int,
        stylizer: Stylizer | None,
        compositor: Compositor,
        screen_sink: ScreenSink | None = None,
        thumbnails: int = 6,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.cost, self.memory, self.thermal = cost, memory, thermal
        self.display_hz = display_hz
        self.model_flops = model_flops
        self.input_size = input_size
        self.stylizer = stylizer  # None: timing only, no images are decoded or stylized
        self.compositor = compositor
        self.screen_sink = screen_sink
        self.progress = progress
        n = scenario.frame_count
        self._thumb_targets = (
            [round(x) for x in np.linspace(0, n - 1, thumbnails)]
            if stylizer is not None and thumbnails > 0
            else []
        )
        cam = scenario.camera
        screen_w, screen_h = screen_size
        self._pre_s = cost.preprocess_ms(cam.width, cam.height) / 1000.0
        self._post_s = (
            cost.postprocess_ms(input_size, screen_w, screen_h)
            + cost.compose_ms(screen_w, screen_h)
        ) / 1000.0

    # --- the event loop -------------------------------------------------------------

    def run(self) -> ReplayResult:
        sc = self.scenario
        self._queue: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._now = float(sc.frame_times[0])
        self._thermal_at = self._now
        self._state = "foreground"
        self._pressure_mb = 0.0
        self._waiting: _Work | None = None
        self._in_flight: _Work | None = None
        self._ready: dict[int, _Work] = {}
        self._latest_ready = -1
        self._after_gap = False
        self._background_since: float | None = None
        self._background: list[tuple[float, float]] = []
        self._frames = [
            {
                "index": i,
                "t_capture": float(t),
                "tracking": sc.tracking[i],
                "stylized": False,
                "t_infer_start": None,
                "t_infer_end": None,
                "displayed": False,
                "t_display": None,
                "dropped": False,
                "skipped": False,
                "input_size": None,
            }
            for i, t in enumerate(sc.frame_times)
        ]
        self._display: list[dict] = []
        self._shown: list[Shown] = []
        self._done_times: list[float] = []
        self._ooms: list[dict] = []
        self._series: dict[str, list[float]] = {"t": [], "memory_mb": [], "thermal_factor": []}
        self._peak_mb = 0.0
        self._thermal_max = 1.0
        self._flicker = FlickerMeter()
        self._thumbs: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._images: Iterator[Frame] | None = sc.frames() if self.stylizer else None

        for i, t in enumerate(sc.frame_times):
            self._push(float(t) + self._pre_s, Kind.FRAME, i)
        for k, ev in enumerate(sc.events):
            self._push(ev.t, Kind.SCENARIO, k)
        t_end = float(sc.frame_times[-1]) + 1.0 / sc.fps

        complete, reason = True, None
        try:
            while self._queue and self._queue[0][0] <= t_end:
                t, kind, _, arg = heapq.heappop(self._queue)
                self._advance(t)
                self._handle(Kind(kind), arg)
        except KeyboardInterrupt:
            complete, reason = False, f"interrupted (Ctrl-C) at t={self._now:.3f} s"
            t_end = self._now
        self._advance(max(self._now, t_end))
        if self._background_since is not None:
            self._background.append((self._background_since, self._now))
        for rec in self._frames:
            rec["dropped"] = not rec["displayed"] and not rec["skipped"]
        return ReplayResult(
            complete=complete,
            incomplete_reason=reason,
            frames=self._frames,
            display=self._display,
            shown=self._shown,
            inference_done=self._done_times,
            oom_events=self._ooms,
            series=self._series,
            flicker=self._flicker.summary(),
            memory_peak_mb=self._peak_mb,
            thermal_factor_max=self._thermal_max,
            foreground_s=max(
                0.0, t_end - float(sc.frame_times[0]) - sum(b - a for a, b in self._background)
            ),
            background=self._background,
            thumbnails=self._thumbs,
        )

    def _push(self, t: float, kind: Kind, arg: int) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, int(kind), self._seq, arg))

    def _advance(self, t: float) -> None:
        """Move the virtual clock to ``t``, heating the phone while it infers."""
        dt = t - self._thermal_at
        if dt > 0:
            self.thermal.advance(dt, 1.0 if self._in_flight is not None else 0.0)
            self._thermal_max = max(self._thermal_max, self.thermal.factor)
            self._thermal_at = t
        self._now = max(self._now, t)

    def _handle(self, kind: Kind, arg: int) -> None:
        if kind is Kind.FRAME:
            self._on_frame(arg)
        elif kind is Kind.INFER_DONE:
            self._on_inference_done()
        elif kind is Kind.RESULT_READY:
            self._on_result_ready(arg)
        elif kind is Kind.DISPLAY:
            self._on_display(arg)
        else:
            self._on_scenario_event(arg)

    # --- handlers -------------------------------------------------------------------

    def _on_frame(self, index: int) -> None:
        image = next(self._images).image if self._images is not None else None
        self._sample_memory()
        if self._state == "foreground":
            self._waiting = _Work(index, image)  # latest frame wins: an older one is dropped
            if self._in_flight is None:
                self._start_inference()
        if self.progress:
            self.progress(index + 1, self.scenario.frame_count)

    def _start_inference(self) -> None:
        work, self._waiting = self._waiting, None
        if work is None:
            return
        if self._check_oom(inferring=True, cause="inference activations"):
            return
        rec = self._frames[work.index]
        rec.update(stylized=True, t_infer_start=self._now, input_size=self.input_size)
        if self.stylizer is not None and work.image is not None:
            work.output = self.stylizer.stylize(work.image)  # host work, no virtual time
        self._in_flight = work
        latency_s = self.cost.inference_ms(self.model_flops, self.thermal.factor) / 1000.0
        self._push(self._now + latency_s, Kind.INFER_DONE, work.index)

    def _on_inference_done(self) -> None:
        work, self._in_flight = self._in_flight, None
        if work is None:  # the app died while this inference ran
            return
        self._frames[work.index]["t_infer_end"] = self._now
        self._done_times.append(self._now)
        if self._state == "foreground":
            self._ready[work.index] = work
            self._push(self._now + self._post_s, Kind.RESULT_READY, work.index)
            if self._waiting is not None:
                self._start_inference()

    def _on_result_ready(self, index: int) -> None:
        if self._state != "foreground":
            self._ready.pop(index, None)
            return
        self._latest_ready = index
        vsync = math.ceil(self._now * self.display_hz - 1e-9) / self.display_hz
        self._push(vsync, Kind.DISPLAY, index)

    def _on_display(self, index: int) -> None:
        work = self._ready.pop(index, None)
        if work is None or index != self._latest_ready or self._state != "foreground":
            return  # superseded by a newer result at the same refresh, or app gone
        rec = self._frames[index]
        rec.update(displayed=True, t_display=self._now)
        self._shown.append(Shown(self._now, rec["t_capture"], self._after_gap))
        self._after_gap = False
        entry = {
            "t": self._now,
            "frame": index,
            "latency_ms": 1000.0 * (self._now - rec["t_capture"]),
            "warp_error": None,
            "luminance": None,
        }
        if work.output is not None and work.image is not None:
            entry["warp_error"] = self._flicker.add(self._now, work.image, work.output)
            entry["luminance"] = mean_luminance(work.output)
            self._show(work, rec, entry)
        self._display.append(entry)

    def _show(self, work: _Work, rec: dict, entry: dict) -> None:
        """Compose the screen only when someone looks at it (video sink, report strip)."""
        wants_thumb = bool(self._thumb_targets) and work.index >= self._thumb_targets[0]
        if self.screen_sink is None and not wants_thumb:
            return
        hud = f"{self._recent_fps():4.1f} FPS  {entry['latency_ms']:5.0f} ms"
        screen = self.compositor.compose(
            work.output, self.scenario.pose_at(rec["t_capture"]), rec["tracking"], hud
        )
        if self.screen_sink is not None:
            self.screen_sink(self._now, screen)
        if wants_thumb:
            self._thumbs.append((work.index, work.image, screen))
            while self._thumb_targets and self._thumb_targets[0] <= work.index:
                self._thumb_targets.pop(0)

    def _recent_fps(self) -> float:
        """Display FPS over the last second, as the app's own HUD would show it."""
        recent = [s for s in self._shown if s.t_display > self._now - 1.0]
        return float(len(recent))

    def _on_scenario_event(self, k: int) -> None:
        ev = self.scenario.events[k]
        if ev.type == "background" and self._state == "foreground":
            self._state, self._background_since = "background", self._now
            self._waiting = None
        elif ev.type == "foreground" and self._state == "background":
            self._state, self._after_gap = "foreground", True
            self._background.append((self._background_since or self._now, self._now))
            self._background_since = None
        elif ev.type == "memory_pressure":
            self._pressure_mb = float(ev.mb or 0.0)
            self._check_oom(inferring=self._in_flight is not None, cause="memory pressure")
        elif ev.type == "thermal":
            self.thermal.force(float(ev.factor or 1.0))

    # --- memory ---------------------------------------------------------------------

    def _sample_memory(self) -> None:
        mb = self._footprint(self._in_flight is not None)
        self._series["t"].append(self._now)
        self._series["memory_mb"].append(mb)
        self._series["thermal_factor"].append(self.thermal.factor)

    def _footprint(self, inferring: bool) -> float:
        if self._state == "dead":
            return 0.0
        mb = self.memory.footprint_mb(inferring)
        self._peak_mb = max(self._peak_mb, mb)
        return mb

    def _check_oom(self, *, inferring: bool, cause: str) -> bool:
        """Kill the app, as the phone's OS would, when its footprint crosses the limit."""
        if self._state == "dead":
            return True
        mb = self._footprint(inferring)
        limit = self.memory.kill_limit_mb(self._pressure_mb)
        if mb <= limit:
            return False
        self._ooms.append(
            {"t": self._now, "memory_mb": mb, "limit_mb": limit, "cause": cause, "source": "model"}
        )
        self._state, self._waiting, self._in_flight = "dead", None, None
        return True
