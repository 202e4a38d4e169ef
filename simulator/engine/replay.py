"""Discrete-event replay of a scenario on a virtual clock.

The simulated phone's timeline comes only from the scenario, the settings and the device
models, never from how fast this host is: host work (decoding, ONNX inference, smoothing,
flicker) happens *at* virtual instants but takes no virtual time.

The scheduler is the seed's mobile design: frames are pre-processed on the camera thread;
at most one inference is in flight; the latest ready frame wins (older waiting frames are
dropped); a result is post-processed, smoothed and composed on the render thread and
appears at the next display refresh. Optional stages (pipeline/settings.py): frame skip
with reuse of the last result (plain repeat, or warped to the new camera pose, which makes
a new displayed frame), dynamic input size, temporal smoothing and face priority.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import cv2
import numpy as np

from simulator import signals
from simulator.device.cost import CostModel
from simulator.device.memory import MemoryModel
from simulator.device.thermal import ThermalModel
from simulator.engine.costs import stage_costs
from simulator.engine.scheduler import Decision, Scheduler
from simulator.engine.worker import InferenceWorker
from simulator.metrics.flicker import FlickerMeter, mean_luminance
from simulator.metrics.timing import Shown
from simulator.pipeline.chain import Chain, WorkerKilled
from simulator.pipeline.face import FaceTrack
from simulator.scenario.model import Scenario
from simulator.sinks import ShownFrame, Sink
from simulator.types import Frame, Pose
from simulator.zoo.quality import ssim


class Kind(IntEnum):
    """Event kinds; at equal times the lower value is handled first, so a result that
    completes exactly when a frame arrives frees the worker for that frame."""

    SCENARIO = 0
    INFER_DONE = 1
    SHOT_READY = 2
    DISPLAY = 3
    FRAME = 4
    RELAUNCH = 5


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
    size_changes: list[dict]
    face: dict | None
    measured_latency_ms: list[float]  # real throttling: per inference, in the worker
    thumbnails: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    interrupted_by: int | None = None  # the signal that ended the replay early
    # face priority: every frame with a face box (report.json "face_detections")
    face_detections: list[dict] = field(default_factory=list)


@dataclass
class _Work:
    """A camera frame on its way through the model."""

    index: int
    image: np.ndarray | None
    track: FaceTrack | None = None
    size: int = 0
    output: np.ndarray | None = None
    face_box: tuple[int, int, int, int] | None = None


@dataclass
class _Shot:
    """Something that can appear on screen: a new stylized result (``kind`` "new") or the
    last result re-projected to a newer camera pose ("reuse"). ``source`` is the stylized
    frame whose content it shows, ``aligned`` the frame whose pose and input it matches."""

    kind: str
    source: int
    aligned: int
    image: np.ndarray | None
    input: np.ndarray | None
    face_box: tuple[int, int, int, int] | None = None


GHOSTING_SIDE = 320  # ghosting SSIM is measured at this longer side (cost, not precision)


def ghosting_ssim(smoothed: np.ndarray, unsmoothed: np.ndarray) -> float:
    """SSIM of the smoothed result to the unsmoothed one: 1 = the smoother left no trail."""
    h, w = smoothed.shape[:2]
    scale = min(1.0, GHOSTING_SIDE / max(h, w))
    size = (max(11, round(w * scale)), max(11, round(h * scale)))
    return ssim(cv2.resize(smoothed, size, interpolation=cv2.INTER_AREA),
                cv2.resize(unsmoothed, size, interpolation=cv2.INTER_AREA))


class Replay:
    """One replay of one scenario under one device/backend/model/pipeline configuration."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        cost: CostModel,
        memory: MemoryModel,
        thermal: ThermalModel,
        display_hz: float,
        screen_size: tuple[int, int],
        chain: Chain,
        sinks: Sequence[Sink] = (),
        mitigate_memory: bool = False,
        relaunch_after_s: float | None = None,
        thumbnails: int = 6,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.cost, self.memory, self.thermal = cost, memory, thermal
        self.display_hz = display_hz
        # the stages (pipeline/chain.py); without images (timing only) nothing is decoded
        # or stylized and the chain only answers the model input shapes the cost model charges
        self.chain = chain
        self.model = chain.model
        self.input_size = chain.input_size
        self.pipeline = chain.settings
        # where each new screen goes (sinks/: the video file, the app's views)
        self.sinks = tuple(sinks)
        # real throttling: every model call in an OS-confined process (the chain's worker)
        self.worker: InferenceWorker | None = chain.worker
        self._memory_limit_mb = self.worker.memory_limit_mb if self.worker is not None else None
        # memory_pressure: release pooled buffers + smallest input size (the seed's)
        self.mitigate_memory = mitigate_memory
        self.relaunch_after_s = relaunch_after_s  # None: a killed app stays dead
        self.progress = progress
        n = scenario.frame_count
        self._thumb_targets = (
            [round(x) for x in np.linspace(0, n - 1, thumbnails)]
            if chain.images and thumbnails > 0
            else []
        )
        cam = scenario.camera
        shape = chain.input_shape(self.input_size)
        stages = stage_costs(cost, self.pipeline, camera=(cam.width, cam.height),
                             screen=screen_size, input_size=self.input_size,
                             inference_flops=self.model.flops(shape),
                             input_pixels=shape[0] * shape[1])
        self._pre_s = stages.preprocess / 1000.0
        self._render_s = stages.render / 1000.0
        self._screen = screen_size
        self._warp_s = stages.warp / 1000.0

    # --- the event loop -------------------------------------------------------------

    def run(self) -> ReplayResult:
        sc, p = self.scenario, self.pipeline
        self._queue: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._now = float(sc.frame_times[0])
        self._thermal_at = self._now
        self._state = "foreground"
        self._pressure_mb = 0.0
        self._sched: Scheduler[_Work] = Scheduler(p, self.input_size)
        self._poses: dict[int, Pose] = {}
        self._shots: dict[int, _Shot] = {}
        self._shot_seq = 0
        self._latest_shot = -1
        self._last_result: _Shot | None = None  # latest new result, smoothed (for reuse)
        self._latest_frame: tuple[int, np.ndarray | None] | None = None
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
                "input_size": None,
                "input_shape": None,
                "displayed": False,
                "reused": False,
                "t_display": None,
                "dropped": False,
                "skipped": False,
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
        maps = any(getattr(sink, "shows_flicker", True) for sink in self.sinks)
        self._flicker = FlickerMeter(cache=self.chain.cache, maps=maps)
        self._face_flicker = FlickerMeter(cache=self.chain.cache, maps=maps)
        self._thumbs: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._images: Iterator[Frame] | None = (
            sc.frames(self.chain.cache) if self.chain.images else None)
        self._face_shares: list[float] = []
        self._face_log: list[dict] = []
        self._measured_ms: list[float] = []
        self._worker_rss: float | None = None
        self._ballooned = False  # memory pressure went to a balloon (the limit stays)
        smoothing = p.smoothing
        self._smoothing_on = smoothing.method != "none" or smoothing.colour != "none"
        self._ghosting: list[float] = []
        self._breaks = sc.breaks

        for i, t in enumerate(sc.frame_times):
            self._push(float(t) + self._pre_s, Kind.FRAME, i)
        for k, ev in enumerate(sc.events):
            self._push(ev.t, Kind.SCENARIO, k)
        t_end = float(sc.frame_times[-1]) + 1.0 / sc.fps

        complete, reason, interrupted_by = True, None, None
        try:
            while self._queue and self._queue[0][0] <= t_end:
                t, kind, _, arg = heapq.heappop(self._queue)
                self._advance(t)
                self._handle(Kind(kind), arg)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (simulator.signals)
            complete, reason = False, f"{signals.reason(exc)} at t={self._now:.3f} s"
            interrupted_by = signals.signal_of(exc)
            t_end = self._now
        finally:
            self.chain.close()
        self._advance(max(self._now, t_end))
        if self._background_since is not None:
            self._background.append((self._background_since, self._now))
        for rec in self._frames:
            # dropped: this camera frame never reached the screen, as content or as the pose
            # a result was re-projected to (skipped frames are counted apart)
            rec["dropped"] = rec["t_display"] is None and not rec["skipped"]
        return ReplayResult(
            complete=complete,
            incomplete_reason=reason,
            frames=self._frames,
            display=self._display,
            shown=self._shown,
            inference_done=self._done_times,
            oom_events=self._ooms,
            series=self._series,
            flicker={
                **self._flicker.summary(),
                "ghosting_ssim": float(np.mean(self._ghosting)) if self._ghosting else None,
            },
            memory_peak_mb=self._peak_mb,
            thermal_factor_max=self._thermal_max,
            foreground_s=max(
                0.0, t_end - float(sc.frame_times[0]) - sum(b - a for a, b in self._background)
            ),
            background=self._background,
            size_changes=self._sched.sizes.changes,
            face=self._face_summary(),
            measured_latency_ms=self._measured_ms,
            thumbnails=self._thumbs,
            interrupted_by=interrupted_by,
            face_detections=self._face_log,
        )

    def _push(self, t: float, kind: Kind, arg: int) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, int(kind), self._seq, arg))

    def _advance(self, t: float) -> None:
        """Move the virtual clock to ``t``, heating the phone while it infers."""
        dt = t - self._thermal_at
        if dt > 0:
            self.thermal.advance(dt, 1.0 if self._sched.in_flight is not None else 0.0)
            self._thermal_max = max(self._thermal_max, self.thermal.factor)
            self._thermal_at = t
        self._now = max(self._now, t)

    def _handle(self, kind: Kind, arg: int) -> None:
        if kind is Kind.FRAME:
            self._on_frame(arg)
        elif kind is Kind.INFER_DONE:
            self._on_inference_done(arg)
        elif kind is Kind.SHOT_READY:
            self._on_shot_ready(arg)
        elif kind is Kind.DISPLAY:
            self._on_display(arg)
        elif kind is Kind.RELAUNCH:
            self._on_relaunch()
        else:
            self._on_scenario_event(arg)

    def _pose(self, index: int) -> Pose:
        """Camera frame ``index``'s pose, interpolated once: the scheduler, smoothing,
        re-projection and composing all ask for it (the same values as ``pose_at``)."""
        pose = self._poses.get(index)
        if pose is None:
            pose = self._poses[index] = self.scenario.pose_at(self._frames[index]["t_capture"])
        return pose

    # --- camera frames and inference ------------------------------------------------

    def _on_frame(self, index: int) -> None:
        frame = next(self._images) if self._images is not None else None
        image = frame.image if frame is not None else None
        self._sample_memory()
        if index in self._breaks:
            # a pose jump or gap: nothing before it may be blended into or warped to it
            self._last_result = None
            self.chain.reset()
        track = None
        if frame is not None:
            track = self.chain.track(frame)
        if track is not None and image is not None:
            self._log_face(index, track, image.shape[1], image.shape[0])
        if self._state != "foreground":
            self._sched.missed()
        else:
            self._latest_frame = (index, image)
            decision = self._sched.offer(
                _Work(index, image, track), self._sched.thumbnail(image), self._pose(index),
                can_reuse=self._last_result is not None)
            if decision is Decision.SKIP:
                self._frames[index]["skipped"] = True
                self._reuse(index, image)
            elif decision is Decision.START:
                self._start_inference()
            else:
                self._reuse(index, image)
        if self.progress:
            self.progress(index + 1, self.scenario.frame_count)

    def _start_inference(self) -> None:
        work = self._sched.start()
        if work is None:
            return
        if self._check_oom(inferring=True, cause="inference activations"):
            return
        work.size = self._sched.size
        latency_ms = self._run_model(work)
        if latency_ms is None:  # the kernel killed the confined worker
            return
        rec = self._frames[work.index]
        rec.update(stylized=True, t_infer_start=self._now, input_size=work.size,
                   input_shape=list(self.chain.input_shape(work.size)))
        self._push(self._now + latency_ms / 1000.0, Kind.INFER_DONE, work.index)

    def _log_face(self, index: int, track: FaceTrack, width: int, height: int) -> None:
        """One ``face_detections`` entry: the track's box on this frame, clipped to it."""
        box = _clip_box(track.box, width, height)
        if box is None:
            return
        raw = None if track.detection_box is None else _clip_box(track.detection_box,
                                                                  width, height)
        self._face_log.append({
            "t": self._frames[index]["t_capture"], "frame": index, "box": box,
            "score": round(float(track.confidence), 4),
            "kind": "detection" if track.detected else "cached", "age": int(track.age),
            "detector_box": raw,
        })

    def _run_model(self, work: _Work) -> float | None:
        """Stylize on the host (if images are on) and return the inference latency on the
        phone: from the cost model (FLOPs of each model call: two with face priority, face
        crop + background), or as measured in the OS-confined worker (real throttling, every
        model call there; None when the kernel killed it)."""
        if work.image is None:  # timing only
            shapes = (self.chain.input_shape(work.size),)
        else:
            try:
                stylized = self.chain.stylize(work.image, work.size, work.track)
            except WorkerKilled as killed:
                self._kernel_kill(killed.cause, killed.rss_mb)
                return None
            work.output, work.face_box = stylized.image, stylized.face_box
            if stylized.face_flops_share is not None:
                self._face_shares.append(stylized.face_flops_share)
            if stylized.measured_ms is not None:
                self._worker_rss = stylized.worker_rss_mb
                self._measured_ms.append(stylized.measured_ms)
                return stylized.measured_ms
            shapes = stylized.input_shapes
        return sum(self.cost.inference_ms(self.model.flops(s), self.thermal.factor, s[0] * s[1])
                   for s in shapes)

    def _kernel_kill(self, cause: str, rss_mb: float | None) -> None:
        """The confined worker was killed: the app dies, as it would on the phone."""
        self._ooms.append({
            "t": self._now, "memory_mb": rss_mb, "limit_mb": self._worker_limit_mb(),
            # "kernel": the OOM killer; "os-limit": the limit could not shrink below the usage
            "cause": cause, "source": "kernel" if "kernel" in cause else "os-limit",
            "pressure_mb": self._pressure_mb,
        })
        self._worker_rss = None
        self._die()

    def _die(self) -> None:
        """The app is gone; with relaunch on, it comes back after the cold start."""
        self._state = "dead"
        self._sched.clear()
        self._last_result = None
        if self.relaunch_after_s is not None:
            self._push(self._now + self.relaunch_after_s, Kind.RELAUNCH, len(self._ooms) - 1)

    def _on_relaunch(self) -> None:
        """The app is back (a cold start): frames flow again from the next camera frame."""
        if self._state != "dead":
            return
        self._ooms[-1]["relaunched_at"] = self._now
        self._state, self._after_gap = "foreground", True
        self.chain.reset()
        if self.worker is not None:
            self.worker.restart()  # same limits; under pressure the balloon is re-inflated
            if not self.worker.alive:
                self._kernel_kill(self.worker.killed or "relaunch failed", None)

    def _on_inference_done(self, index: int) -> None:
        in_flight = self._sched.in_flight
        if in_flight is None or in_flight.index != index:
            return  # the app died while this inference ran (and may have relaunched)
        rec = self._frames[index]
        work = self._sched.finished(self._now, 1000.0 * (self._now - rec["t_infer_start"]))
        assert work is not None
        rec["t_infer_end"] = self._now
        self._done_times.append(self._now)
        if self._state != "foreground":
            return
        image = work.output
        if image is not None and work.image is not None:
            frame = Frame(work.index, rec["t_capture"], work.image, self._pose(work.index),
                          rec["tracking"])
            image = self.chain.smooth(image, frame)
            if self._smoothing_on:
                self._ghosting.append(ghosting_ssim(image, work.output))
        shot = _Shot("new", work.index, work.index, image, work.image, work.face_box)
        self._last_result = shot
        post_s = self.cost.postprocess_ms(work.size, *self._screen) / 1000.0 + self._render_s
        if self.pipeline.skip.reuse == "warp" and self._latest_frame is not None:
            # late warp: show the new result re-projected to the newest camera pose
            latest, latest_image = self._latest_frame
            if latest > work.index and not self._break_between(work.index, latest):
                shot = self._warped(shot, latest, latest_image, "new")
                post_s += self._warp_s
        self._queue_shot(shot, post_s)
        self._start_inference()

    # --- reuse and display ----------------------------------------------------------

    def _break_between(self, first: int, last: int) -> bool:
        """A discontinuity after frame ``first`` up to frame ``last``."""
        return any(first < b <= last for b in self._breaks)

    def _reuse(self, index: int, image: np.ndarray | None) -> None:
        """Show the last result for this camera frame, re-projected to its pose."""
        last = self._last_result
        if last is None or self.pipeline.skip.reuse != "warp":
            return
        self._queue_shot(self._warped(last, index, image, "reuse"), self._warp_s)

    def _warped(self, shot: _Shot, index: int, image: np.ndarray | None, kind: str) -> _Shot:
        """``shot`` re-projected from its frame's pose to frame ``index``'s pose."""
        warped = None
        if shot.image is not None:
            warped = self.chain.reproject(shot.image, self._pose(shot.aligned), self._pose(index))
        return _Shot(kind, shot.source, index, warped, image)

    def _queue_shot(self, shot: _Shot, delay_s: float) -> None:
        self._shot_seq += 1
        self._shots[self._shot_seq] = shot
        self._push(self._now + delay_s, Kind.SHOT_READY, self._shot_seq)

    def _on_shot_ready(self, seq: int) -> None:
        if self._state != "foreground":
            self._shots.pop(seq, None)
            return
        self._latest_shot = max(self._latest_shot, seq)
        vsync = math.ceil(self._now * self.display_hz - 1e-9) / self.display_hz
        self._push(vsync, Kind.DISPLAY, seq)

    def _on_display(self, seq: int) -> None:
        shot = self._shots.pop(seq, None)
        if shot is None or seq != self._latest_shot or self._state != "foreground":
            return  # superseded by a newer shot at the same refresh, or app gone
        aligned = self._frames[shot.aligned]
        source = self._frames[shot.source]
        if shot.kind == "new":
            source["displayed"] = True
        else:
            aligned["reused"] = True
        refresh = aligned["t_display"] is not None
        if not refresh:
            aligned["t_display"] = self._now
            # a displayed frame is a camera pose reaching the screen: a new result re-projected
            # to a pose already shown (by a reuse) refreshes that frame, it is not another one
            self._shown.append(
                Shown(self._now, aligned["t_capture"], self._after_gap, source["t_capture"])
            )
            self._after_gap = False
        entry = {
            "t": self._now,
            "frame": shot.aligned,
            "source": shot.source,
            "kind": shot.kind,
            "latency_ms": 1000.0 * (self._now - aligned["t_capture"]),
            "content_age_ms": 1000.0 * (self._now - source["t_capture"]),
            "warp_error": None,
            "luminance": None,
            "refresh": refresh,
        }
        if shot.image is not None and shot.input is not None:
            entry["warp_error"] = self._flicker.add(self._now, shot.input, shot.image)
            entry["luminance"] = mean_luminance(shot.image)
            if shot.face_box is not None:
                entry["face_warp_error"] = self._face_region_error(shot)
            self._show(shot, aligned, entry)
        self._display.append(entry)

    def _face_region_error(self, shot: _Shot) -> float | None:
        x, y, w, h = shot.face_box
        return self._face_flicker.add(
            self._now, shot.input[y : y + h, x : x + w], shot.image[y : y + h, x : x + w]
        )

    def _show(self, shot: _Shot, rec: dict, entry: dict) -> None:
        """Compose the screen only when someone looks at it (video sink, viewer, report)."""
        wants_thumb = bool(self._thumb_targets) and shot.aligned >= self._thumb_targets[0]
        if not self.sinks and not wants_thumb:
            return
        hud = f"{self._recent_fps():4.1f} FPS  {entry['latency_ms']:5.0f} ms"
        screen = self.chain.compose(shot.image, self._pose(shot.aligned), rec["tracking"], hud,
                                    camera=self.scenario.camera_at(shot.aligned))
        shown = ShownFrame(self._now, screen, entry, shot.input, shot.image,
                           self._flicker.last_map)
        for sink in self.sinks:
            sink.send(shown)
        if wants_thumb:
            self._thumbs.append((shot.aligned, shot.input, screen))
            while self._thumb_targets and self._thumb_targets[0] <= shot.aligned:
                self._thumb_targets.pop(0)

    def _recent_fps(self) -> float:
        """Display FPS over the last second, as the app's own HUD would show it, with the
        report's definition (frames per second of time, not frames counted in a window):
        (n - 1) / (t_last - t_first) of the n frames shown in the trailing second (a
        steady 10 FPS reads 10.0, never 11 for the frame on the window's edge); 0 for
        fewer than two."""
        first = bisect.bisect_right(self._shown, self._now - 1.0 + 1e-9,
                                    key=lambda s: s.t_display)
        recent = self._shown[first:]
        if len(recent) < 2:
            return 0.0
        span = recent[-1].t_display - recent[0].t_display
        return (len(recent) - 1) / span if span > 0 else 0.0

    def _face_summary(self) -> dict | None:
        tracker = self.chain.tracker_counters
        if tracker is None:
            return None
        return {
            "frames": tracker.frames,
            "detections": tracker.detections,
            "found": tracker.found,
            "detections_per_s": tracker.detections_per_s,
            "phone_detect_ms_per_s": tracker.detections_per_s * self.cost.face_detect_ms(),
            "face_flops_share": float(np.mean(self._face_shares)) if self._face_shares else None,
            "face_warp_error": self._face_flicker.summary().get("warp_error"),
        }

    # --- scenario events and memory -------------------------------------------------

    def _on_scenario_event(self, k: int) -> None:
        ev = self.scenario.events[k]
        if ev.type == "background" and self._state == "foreground":
            self._state, self._background_since = "background", self._now
            self._sched.drop_waiting()
        elif ev.type == "foreground" and self._state == "background":
            self._state, self._after_gap = "foreground", True
            self._background.append((self._background_since or self._now, self._now))
            self._background_since = None
            self._last_result = None  # an app resuming starts afresh
            self.chain.reset()
        elif ev.type == "memory_pressure":
            self._pressure_mb = float(ev.mb or 0.0)
            if self.mitigate_memory:
                self._mitigate(self._pressure_mb > 0)
            if self.worker is not None and self._memory_limit_mb is not None:
                if self._state == "dead":
                    self.worker.pressure_mb = self._pressure_mb  # for a relaunch
                elif self.worker.can_balloon:
                    # other apps' memory: a balloon process in the worker's memory cgroup
                    self._ballooned = True
                    killed = self.worker.apply_pressure(self._pressure_mb)
                    if killed:
                        self._kernel_kill(killed, self._worker_rss)
                else:  # no memory cgroup (RLIMIT_AS fallback): lower the limit instead
                    killed = self.worker.set_memory_limit(self._worker_limit_mb())
                    if killed:
                        self._kernel_kill(killed, self._worker_rss)
            else:
                self._check_oom(inferring=self._sched.in_flight is not None,
                                cause="memory pressure")
        elif ev.type == "thermal":
            self.thermal.force(float(ev.factor or 1.0))

    def _mitigate(self, pressure: bool) -> None:
        """The seed's mitigations on a memory warning: release pooled buffers and drop to
        the smallest input size until the pressure is gone (one inference in flight at most
        is the scheduler's design anyway)."""
        if not pressure:
            self._sched.sizes.unpin()
            return
        if self.worker is not None and self._state != "dead":
            self.worker.release_memory(arena=False)
        self._sched.sizes.force_smallest(self._now, f"memory pressure {self._pressure_mb:g} MB")

    def _worker_limit_mb(self) -> float | None:
        """The confined worker's memory limit under the current pressure (with a balloon
        the limit stays and the balloon takes the pressure out of it)."""
        if self._memory_limit_mb is None:
            return None
        if self._ballooned:
            return self._memory_limit_mb
        return max(1.0, self._memory_limit_mb - self._pressure_mb)

    def _sample_memory(self) -> None:
        if self.worker is not None and self._worker_rss is not None and self._state != "dead":
            mb = self._worker_rss  # real mode: the worker's measured resident memory
            self._peak_mb = max(self._peak_mb, mb)
        else:
            mb = self._footprint(self._sched.in_flight is not None)
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
        if self.worker is not None:
            return False  # real mode: the kernel decides (see _kernel_kill)
        mb = self._footprint(inferring)
        limit = self.memory.kill_limit_mb(self._pressure_mb)
        if mb <= limit:
            return False
        self._ooms.append(
            {"t": self._now, "memory_mb": mb, "limit_mb": limit, "cause": cause, "source": "model"}
        )
        self._die()
        return True


def _clip_box(box, width: int, height: int) -> list[float] | None:
    """[x, y, w, h] of ``box`` inside a ``width`` x ``height`` frame (2 decimals); None
    when it does not touch the frame."""
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]
