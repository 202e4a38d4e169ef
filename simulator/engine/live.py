"""Live mode: a webcam (or a scenario looped as if it were one) stylized on the wall clock.

Unlike the replay (engine/replay.py), nothing here is simulated: the times are this host's
``time.perf_counter`` and the latencies are what this host achieves. The schedule is the
same mobile design, on three threads:

- capture: reads the camera (or paces the scenario's frames to its fps) and offers each
  frame to the scheduler (engine/scheduler.py, the replay's): skipped, or waiting in its
  one slot, where a newer frame replaces it (latest frame wins), so capture never waits
  for inference;
- worker: starts the waiting frame (at most one inference in flight, at the scheduler's
  dynamic size), runs the chain's model stage (face priority included) and smoother, and
  puts the result in a one-slot mailbox;
- display (the thread that called ``run_live``): composes the newest result (re-projected
  to the newest camera pose with ``--reuse warp``), hands the screen to ``on_frame`` and
  to the virtual camera (which paces it to the camera rate).

The stages are the replay's chain (pipeline/chain.py) and the numbers come from
``simulator.metrics.timing``, so they mean what a replay's mean. The command line
(``arsim live``) is in ``simulator/cli.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from simulator import signals
from simulator.engine.scheduler import Decision, Scheduler
from simulator.engine.worker import InferenceWorker
from simulator.errors import InputError
from simulator.metrics.timing import Shown, timing_metrics
from simulator.pipeline.chain import Chain, WorkerKilled, scene_pipeline
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.scenario.model import Anchor, Scenario
from simulator.sinks import ShownFrame
from simulator.sinks.virtual_cam import VirtualCamSink, open_virtual_cam
from simulator.stream_settings import StreamSettings
from simulator.types import Frame, Intrinsics, Pose
from simulator.zoo.host_bench import bench_model
from simulator.zoo.registry import ResolvedModel, resolve_model

AUTO_CANDIDATES = ("ar-lite", "toon-classic")  # the zoo's real-time styles, in that order
AUTO_RUNS = 3
MIN_DISPLAY_FPS = 15.0  # the AR budget (README "Metrics"), for slow-frame counting
IDENTITY = Pose(t=np.zeros(3), q=np.array([0.0, 0.0, 0.0, 1.0]))

# Called on the display thread with each new screen (RGB uint8) and running stats.
FrameCallback = Callable[[np.ndarray, dict[str, Any]], None]
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class LiveSettings(StreamSettings):
    """``source``: a camera index (int) or a scenario path; ``model``: a zoo name, an .onnx
    path or "auto"; ``duration_s``: None runs until ``stop`` or Ctrl-C; ``fps``: the rate
    asked of the camera, of the virtual camera, and the frame budget of "auto". With
    ``throttle`` the model runs in the confined worker (``cpu_fraction`` and
    ``memory_limit_mb`` None: unlimited)."""

    source: int | str | Path
    model: str = "auto"
    duration_s: float | None = None
    virtual_cam: bool = False
    fps: float = 30.0
    virtual_cam_size: tuple[int, int] = (1280, 720)
    virtual_cam_backend: str | None = None  # None: pyvirtualcam tries every backend

    def validate(self) -> None:
        if isinstance(self.source, int) and self.source < 0:
            raise InputError("--camera", f"expected a camera index >= 0, got {self.source}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise InputError("--duration", f"expected seconds > 0, got {self.duration_s}")
        if not (0 < self.fps <= 240):
            raise InputError("--fps", f"expected a frame rate in (0, 240], got {self.fps}")
        super().validate()


@dataclass
class _Result:
    """A stylized (and smoothed) result of ``frame`` (its ``time``: the wall-clock capture
    time, perf_counter seconds)."""

    frame: Frame
    image: np.ndarray
    size: int


class _Latest(Generic[T]):
    """A one-item mailbox: ``put`` replaces an unread item (returned, so it can be counted
    as dropped), ``take`` waits for one; ``poke`` wakes a waiting ``take`` with nothing."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None

    def put(self, item: T) -> T | None:
        with self._cond:
            old, self._item = self._item, item
            self._cond.notify_all()
        return old

    def take(self, timeout: float) -> T | None:
        with self._cond:
            if self._item is None and timeout > 0:
                self._cond.wait(timeout)
            item, self._item = self._item, None
        return item

    def poke(self) -> None:
        with self._cond:
            self._cond.notify_all()


# --- sources ---------------------------------------------------------------------------


class CameraSource:
    """``cv2.VideoCapture(index)``; poses are unknown (identity), there are no anchors."""

    def __init__(self, index: int, fps: float) -> None:
        self.name = f"camera {index}"
        quiet = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # one line, not ten
        try:
            self._cap = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(quiet)
        if not self._cap.isOpened():
            raise InputError("--camera", f"cannot open camera {index} (not connected, no "
                             "permission, or in use by another app)")
        self._cap.set(cv2.CAP_PROP_FPS, fps)
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._cap.release()
            raise InputError("--camera", f"camera {index} opened but delivers no frames")
        self._first: np.ndarray | None = bgr
        h, w = bgr.shape[:2]
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or fps
        self.camera = Intrinsics(w, h, float(w), float(w), w / 2.0, h / 2.0)  # nominal
        self.anchors: list[Anchor] = []
        self.has_poses = False
        self.scene_depth_m: float | None = None

    def read(self) -> tuple[np.ndarray, Pose, str] | None:
        """The next frame (blocks at the camera rate); None when the camera stopped."""
        bgr, self._first = self._first, None
        if bgr is None:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), IDENTITY, "tracking"

    def close(self) -> None:
        self._cap.release()


class ScenarioSource:
    """A scenario's frames looped forever, each delivered at its wall-clock slot
    (start + k / fps), with its recorded pose and tracking state."""

    def __init__(self, path: str | Path) -> None:
        self._scenario: Scenario = load_scenario(path)
        self.name = self._scenario.name
        self.fps = self._scenario.fps
        self.camera = self._scenario.camera
        self.anchors = list(self._scenario.anchors)
        self.has_poses = True
        self.scene_depth_m = self._scenario.scene_depth_m
        self._frames: Iterator = iter(())
        self._count = 0
        self._start: float | None = None

    def read(self) -> tuple[np.ndarray, Pose, str] | None:
        frame = next(self._frames, None)
        if frame is None:  # end of the recording: start it again
            self._frames = self._scenario.frames()
            frame = next(self._frames)
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        due = self._start + self._count / self.fps
        if due > now:
            time.sleep(due - now)
        elif now - due > 1.0:  # the host stalled: start a new schedule, no burst of frames
            self._start, self._count = now, 0
        self._count += 1
        return frame.image, frame.pose, frame.tracking

    def close(self) -> None:
        self._scenario.close()


def open_source(source: int | str | Path, fps: float) -> CameraSource | ScenarioSource:
    """A camera for an int, a looped scenario for a path."""
    return CameraSource(source, fps) if isinstance(source, int) else ScenarioSource(source)


# --- "auto" model ---------------------------------------------------------------------


def choose_model(
    budget_ms: float,
    input_size: int | None = None,
    *,
    candidates: tuple[str, ...] = AUTO_CANDIDATES,
    threads: int = 2,
    runs: int = AUTO_RUNS,
) -> tuple[ResolvedModel, dict[str, Any]]:
    """The fastest candidate whose median ``Stylizer.stylize`` of a 1280x720 frame on this
    host (``host_bench``) fits ``budget_ms``; the fastest overall when none does. Returns
    the model and what was measured."""
    timed: list[tuple[float, ResolvedModel]] = []
    for name in candidates:
        model = resolve_model(name)
        size = input_size or model.card.input.default_size
        result = bench_model(model, sizes=(size,), runs=runs, threads=threads)
        timed.append((result["sizes"][size]["stylize_ms"]["median"], model))
    fitting = [item for item in timed if item[0] <= budget_ms]
    ms, model = min(fitting or timed, key=lambda item: item[0])
    return model, {
        "budget_ms": round(budget_ms, 2),
        "stylize_ms": {m.name: t for t, m in timed},
        "chosen": model.name,
        "meets_budget": ms <= budget_ms,
    }


# --- the run ------------------------------------------------------------------------


class LiveRun:
    """One live session; ``run`` blocks until duration, stop event, source end or Ctrl-C."""

    def __init__(
        self,
        settings: LiveSettings,
        *,
        on_frame: FrameCallback | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        settings.validate()
        self.settings = settings
        self.on_frame = on_frame
        self.stop = stop or threading.Event()
        p = settings.pipeline
        self._needs_poses = p.smoothing.method == "pose" or p.skip.reuse == "warp"
        if isinstance(settings.source, int) and self._needs_poses:
            raise InputError("--camera", "pose smoothing and --reuse warp need camera poses: "
                             "use --source SCENARIO")
        self.source = open_source(settings.source, settings.fps)  # a bad camera fails first
        worker: InferenceWorker | None = None
        self._worker_restarts = 0
        self._mechanism: str | None = None
        try:
            self.auto: dict[str, Any] | None = None
            if settings.model == "auto":
                self.model, self.auto = choose_model(
                    1000.0 / settings.fps, settings.input_size, threads=settings.threads
                )
            else:
                self.model = resolve_model(settings.model)
            size = settings.input_size or self.model.card.input.default_size
            stylizer = Stylizer(self.model, size, settings.threads, settings.fit,
                                runtime=settings.host_runtime)
            for candidate in p.sizing.sizes:
                stylizer.check_size(candidate)
            if settings.throttle:  # last: nothing after it can fail and leave it behind
                worker = InferenceWorker(
                    self.model, threads=settings.threads, cpu_fraction=settings.cpu_fraction,
                    memory_limit_mb=settings.memory_limit_mb, fit=settings.fit)
            self.chain = Chain(scene_pipeline(p, self.source.scene_depth_m), model=self.model,
                               input_size=size, fit=stylizer.fit, camera=self.source.camera,
                               anchors=self.source.anchors, stylizer=stylizer, worker=worker)
        except BaseException:
            self.source.close()
            if worker is not None:
                worker.close()
            raise
        self.worker = worker
        self._sched: Scheduler[Frame] = Scheduler(p, size)
        self._cond = threading.Condition()  # guards the scheduler (capture and worker threads)
        self._halt = threading.Event()  # threads stop on this (set on any end of the run)
        self._results: _Latest[_Result] = _Latest()
        self._latest: Frame | None = None  # newest captured frame (for --reuse warp)
        self._error: BaseException | None = None
        self._source_ended = False
        self._captured = 0
        self._t_first: float | None = None
        self._t_last = 0.0
        self._skipped = 0
        self._infer_done: list[float] = []
        self._infer_ms: list[float] = []
        self._shown: list[Shown] = []
        self._reached: set[int] = set()  # frames whose pose reached the screen
        self._last_result: _Result | None = None  # the worker's newest (for the skip policy)
        self._on_screen: _Result | None = None  # the display's newest (for re-projection)
        self._screen: np.ndarray | None = None

    # --- threads ------------------------------------------------------------------------

    def _guarded(self, loop: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                loop()
            except BaseException as exc:  # handed to the display thread, which re-raises
                self._error = exc
                self._halt.set()
                self._results.poke()
        return body

    def _capture_loop(self) -> None:
        warp_reuse = self.settings.pipeline.skip.reuse == "warp"
        while not self._halt.is_set():
            got = self.source.read()
            if got is None:
                self._source_ended = True
                self._halt.set()
                self._results.poke()
                return
            image, pose, tracking = got
            now = time.perf_counter()
            frame = Frame(self._captured, now, image, pose, tracking)
            self._t_first = now if self._t_first is None else self._t_first
            self._t_last = now
            self._captured += 1
            self._latest = frame
            thumb = self._sched.thumbnail(image)
            with self._cond:  # capture never waits for inference: a waiting frame is replaced
                decision = self._sched.offer(frame, thumb, pose,
                                             can_reuse=self._last_result is not None)
                self._cond.notify_all()
            if decision is Decision.SKIP:
                self._skipped += 1  # the display re-projects the last result (--reuse warp)
            if warp_reuse:
                self._results.poke()  # the display may re-project the last result

    def _worker_loop(self) -> None:
        while not self._halt.is_set():
            with self._cond:
                frame = self._sched.start()
                if frame is None:
                    self._cond.wait(0.05)
                    continue
                size = self._sched.size
            started = time.perf_counter()
            try:
                output = self.chain.stylize(frame.image, size, self.chain.track(frame)).image
            except WorkerKilled:
                # relaunched like a phone app; the camera frame is shown unstylized meanwhile
                self._worker_restarts += 1
                assert self.worker is not None
                self.worker.restart()
                output = frame.image
            done = time.perf_counter()
            with self._cond:
                self._sched.finished(done, 1000.0 * (done - started))
            self._infer_done.append(done)
            self._infer_ms.append(1000.0 * (done - started))
            result = _Result(frame, self.chain.smooth(output, frame), size)
            self._last_result = result
            self._results.put(result)

    # --- display ------------------------------------------------------------------------

    def _next_shot(self, result: _Result | None) -> tuple[np.ndarray, Frame, Frame] | None:
        """(image, frame whose pose it is aligned to, frame whose content it shows) to put
        on screen now, or None when nothing new is there."""
        warp = self.settings.pipeline.skip.reuse == "warp"
        if result is not None:
            self._on_screen = result
        base = result or (self._on_screen if warp else None)
        latest = self._latest
        if base is None:
            return None
        aligned = base.frame
        if warp and latest is not None and latest.index > aligned.index:
            aligned = latest
        if result is None and (aligned is base.frame or aligned.index in self._reached):
            return None  # no new result and no newer pose to re-project to
        image = base.image
        if aligned is not base.frame:
            image = self.chain.reproject(image, base.frame.pose, aligned.pose)
        return image, aligned, base.frame

    def _show(self, image: np.ndarray, aligned: Frame, source: Frame) -> None:
        now = time.perf_counter()
        latency_ms = 1000.0 * (now - aligned.time)
        recent = sum(1 for s in self._shown if s.t_display > now - 1.0)
        hud = f"{recent:4.1f} FPS  {latency_ms:5.0f} ms  {self.model.name}"
        screen = self.chain.compose(image, aligned.pose, aligned.tracking, hud)
        self._screen = screen
        t_display = time.perf_counter()
        if aligned.index not in self._reached:
            self._reached.add(aligned.index)
            self._shown.append(Shown(t_display, aligned.time, False, source.time))
        if self.on_frame is not None:
            self.on_frame(screen, {
                "frame": aligned.index,
                "source_frame": source.index,
                "latency_ms": 1000.0 * (t_display - aligned.time),
                "display_fps": float(recent),
                "inference_ms": self._infer_ms[-1] if self._infer_ms else None,
                "captured_frames": self._captured,
                "displayed_frames": len(self._shown),
                "skipped_frames": self._skipped,
                "model": self.model.name,
                "input_size": self._sched.size,
            })

    def _display_loop(self, vcam: VirtualCamSink | None, deadline: float | None) -> str:
        black = None
        while True:
            if self.stop.is_set():
                return "stopped"
            if deadline is not None and time.perf_counter() >= deadline:
                return "duration"
            if self._halt.is_set():
                return "source ended"
            # with a virtual camera its send() paces this loop; without, wait for news
            shot = self._next_shot(self._results.take(timeout=0.0 if vcam else 0.05))
            if shot is not None:
                self._show(*shot)
            if vcam is not None:
                if self._screen is None and black is None:
                    black = np.zeros((vcam.height, vcam.width, 3), np.uint8)
                screen = self._screen if self._screen is not None else black
                vcam.send(ShownFrame(time.perf_counter(), screen))

    def run(self) -> dict[str, Any]:
        s = self.settings
        vcam = None
        if s.virtual_cam:
            width, height = s.virtual_cam_size
            vcam = open_virtual_cam(width, height, s.fps, backend=s.virtual_cam_backend)
        threads = [
            threading.Thread(target=self._guarded(loop), name=f"arsim-live-{name}", daemon=True)
            for name, loop in (("capture", self._capture_loop), ("worker", self._worker_loop))
        ]
        started = time.perf_counter()
        deadline = started + s.duration_s if s.duration_s is not None else None
        for thread in threads:
            thread.start()
        interrupted_by: int | None = None
        try:
            reason = self._display_loop(vcam, deadline)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (simulator.signals)
            reason, interrupted_by = signals.reason(exc), signals.signal_of(exc)
        finally:
            end = time.perf_counter()
            self._halt.set()
            with self._cond:
                self._cond.notify_all()
            for thread in threads:
                thread.join(timeout=10.0)
            self.source.close()
            if vcam is not None:
                vcam.close()
            self.chain.close()
            if self.worker is not None:
                mechanism = self.worker.mechanism
                self.worker.close()
                self._mechanism = mechanism
        if self._error is not None:
            raise self._error
        if reason == "source ended" and not self._source_ended:
            reason = "stopped"
        stats = self._stats(reason, end - started, end, vcam)
        stats["interrupted_by"] = interrupted_by  # the signal number, None when it ran out
        return stats

    def _stats(
        self, reason: str, wall_s: float, end: float, vcam: VirtualCamSink | None
    ) -> dict[str, Any]:
        captured = self._captured
        span = self._t_last - (self._t_first or 0.0)
        foreground = end - self._t_first if self._t_first is not None else 0.0
        timing = timing_metrics(
            shown=self._shown,
            inference_done_times=self._infer_done,
            background=[],
            foreground_s=foreground,
            camera_fps=self.source.fps,
            display_hz=self.settings.fps,
            min_display_fps=MIN_DISPLAY_FPS,
            dropped_frames=captured - len(self._reached) - self._skipped,
            skipped_frames=self._skipped,
            stylized_frames=len(self._infer_done),
            session_start=self._t_first or 0.0,  # perf_counter seconds, like the times above
        )
        infer = np.asarray(self._infer_ms) if self._infer_ms else None
        return {
            "source": self.source.name,
            "model": self.model.name,
            "model_choice": self.auto,
            "input_size": self.chain.input_size,
            "size_changes": self._sched.sizes.changes,
            "stop_reason": reason,
            "wall_s": wall_s,
            "camera_fps": self.source.fps,
            "captured_frames": captured,
            "capture_fps": (captured - 1) / span if captured > 1 and span > 0 else 0.0,
            **timing,
            "inference_ms": {
                "p50": float(np.percentile(infer, 50)) if infer is not None else None,
                "p95": float(np.percentile(infer, 95)) if infer is not None else None,
            },
            "virtual_cam": vcam.device if vcam is not None else None,
            "virtual_cam_frames": vcam.frames_sent if vcam is not None else 0,
            # real throttling: how the worker was confined ("cgroup-v2", "cgroup-v1",
            # "duty-cycle+rlimit", "none"); None when inference ran in this process
            "throttle_mechanism": self._mechanism,
            "worker_restarts": self._worker_restarts,
        }


def run_live(
    settings: LiveSettings,
    *,
    on_frame: FrameCallback | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run live mode (module docstring) and return the measured stats: ``capture_fps``,
    ``display_fps``, ``inference_fps``, ``latency_ms`` p50/p95/p99/mean (display − capture
    time), ``dropped_frames``, ``model`` (and ``model_choice`` for "auto"), and the rest of
    ``simulator.metrics.timing``'s metrics. ``on_frame(screen, stats)`` is called on this
    thread for each new screen; setting ``stop`` ends the run."""
    return LiveRun(settings, on_frame=on_frame, stop=stop).run()  # run() closes the worker

