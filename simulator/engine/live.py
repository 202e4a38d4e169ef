"""Live mode: a webcam (or a scenario looped as if it were one) stylized on the wall clock.

Unlike the replay (engine/replay.py), nothing here is simulated: the times are this host's
``time.perf_counter`` and the latencies are what this host achieves. The schedule is the
same mobile design, on three threads:

- capture: reads the camera (or paces the scenario's frames to its fps) and puts each frame
  in a one-slot mailbox; a frame the worker has not taken yet is replaced (latest frame
  wins, the old one is dropped), so capture never waits for inference;
- worker: takes the newest frame, asks the skip policy, runs the model (dynamic size, face
  priority) and the smoother, and puts the result in a second one-slot mailbox: at most
  one inference is in flight;
- display (the thread that called ``run_live``): composes the newest result (re-projected
  to the newest camera pose with ``--reuse warp``), hands the screen to ``on_frame`` and
  to the virtual camera (which paces it to the camera rate).

The stages are the pipeline's own classes (Stylizer, SizeController, SkipPolicy,
FaceTracker/FacePriority, Smoother, warp_to_pose, Compositor) and the numbers come from
``simulator.metrics.timing``, so they mean what a replay's mean.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from simulator import signals
from simulator.engine.sizing import SizeController
from simulator.engine.worker import InferenceWorker
from simulator.errors import InputError
from simulator.metrics.timing import Shown, timing_metrics
from simulator.pipeline.compose import Compositor
from simulator.pipeline.face import FaceTracker
from simulator.pipeline.face_priority import FacePriority
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.skip import SkipPolicy, thumbnail
from simulator.pipeline.smooth import Smoother
from simulator.pipeline.stylize import Stylizer
from simulator.pipeline.warp import warp_to_pose
from simulator.scenario.load import load_scenario
from simulator.scenario.model import Anchor, Scenario
from simulator.sinks.virtual_cam import VirtualCamSink, open_virtual_cam
from simulator.types import Intrinsics, Pose
from simulator.zoo.host_bench import bench_model
from simulator.zoo.registry import ResolvedModel, resolve_model

AUTO_CANDIDATES = ("ar-lite", "toon-classic")  # the zoo's real-time styles, in that order
AUTO_RUNS = 3
MIN_DISPLAY_FPS = 15.0  # the AR budget (README "Metrics"), for slow-frame counting
IDENTITY = Pose(t=np.zeros(3), q=np.array([0.0, 0.0, 0.0, 1.0]))

# Called on the display thread with each new screen (RGB uint8) and running stats.
FrameCallback = Callable[[np.ndarray, dict[str, Any]], None]
T = TypeVar("T")


@dataclass(frozen=True)
class LiveSettings:
    """``source``: a camera index (int) or a scenario path; ``model``: a zoo name, an .onnx
    path or "auto"; ``duration_s``: None runs until ``stop`` or Ctrl-C; ``fps``: the rate
    asked of the camera, of the virtual camera, and the frame budget of "auto"."""

    source: int | str | Path
    model: str = "auto"
    input_size: int | None = None
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    duration_s: float | None = None
    virtual_cam: bool = False
    fps: float = 30.0
    threads: int = 2
    virtual_cam_size: tuple[int, int] = (1280, 720)
    virtual_cam_backend: str | None = None  # None: pyvirtualcam tries every backend
    # Real throttling: stylize in an OS-confined worker process (simulator.engine.worker)
    throttle: bool = False
    cpu_fraction: float | None = None  # the worker's CPU quota (None: unlimited)
    memory_limit_mb: float | None = None  # the worker's memory limit (None: unlimited)

    def validate(self) -> None:
        if isinstance(self.source, int) and self.source < 0:
            raise InputError("--camera", f"expected a camera index >= 0, got {self.source}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise InputError("--duration", f"expected seconds > 0, got {self.duration_s}")
        if not (0 < self.fps <= 240):
            raise InputError("--fps", f"expected a frame rate in (0, 240], got {self.fps}")
        if self.threads < 1:
            raise InputError("--threads", f"expected a positive integer, got {self.threads}")
        if self.cpu_fraction is not None and not self.cpu_fraction > 0:
            raise InputError("--cpu-fraction", f"expected a fraction > 0, got {self.cpu_fraction}")
        if self.memory_limit_mb is not None and not self.memory_limit_mb > 0:
            raise InputError("--memory-limit-mb",
                             f"expected MB > 0, got {self.memory_limit_mb}")
        self.pipeline.validate()


@dataclass
class Captured:
    """One camera frame: wall-clock capture time (perf_counter seconds), RGB image, pose."""

    index: int
    t_capture: float
    image: np.ndarray
    pose: Pose
    tracking: str


@dataclass
class _Result:
    """A stylized (and smoothed) result of ``frame``."""

    frame: Captured
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
        self.worker: InferenceWorker | None = None
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
            self.stylizer = Stylizer(self.model, size, settings.threads)
            for candidate in p.sizing.sizes:
                self.stylizer.check_size(candidate)
            self.compositor = Compositor(self.source.camera, self.source.anchors)
            self._sizes = SizeController(p.sizing, size)
            self._skip = SkipPolicy(p.skip)
            self._smoother = Smoother(p.smoothing, self.source.camera)
            self._tracker = FaceTracker(p.face.tracker) if p.face.enabled else None
            self._face = FacePriority(self.stylizer, p.face.priority) if p.face.enabled else None
            if settings.throttle:  # last: nothing after it can fail and leave it behind
                self.worker = InferenceWorker(
                    self.model, threads=settings.threads, cpu_fraction=settings.cpu_fraction,
                    memory_limit_mb=settings.memory_limit_mb)
        except BaseException:
            self.source.close()
            if self.worker is not None:
                self.worker.close()
            raise
        self._halt = threading.Event()  # threads stop on this (set on any end of the run)
        self._frames: _Latest[Captured] = _Latest()
        self._results: _Latest[_Result] = _Latest()
        self._latest: Captured | None = None  # newest captured frame (for --reuse warp)
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
            frame = Captured(self._captured, now, image, pose, tracking)
            self._t_first = now if self._t_first is None else self._t_first
            self._t_last = now
            self._captured += 1
            self._latest = frame
            self._frames.put(frame)  # an unread older frame is dropped here
            if warp_reuse:
                self._results.poke()  # the display may re-project the last result

    def _worker_loop(self) -> None:
        p = self.settings.pipeline
        use_thumbs = p.skip.skip
        seen = -1
        while not self._halt.is_set():
            frame = self._frames.take(timeout=0.05)
            if frame is None:
                continue
            for _ in range(frame.index - seen):
                self._skip.new_frame()
            seen = frame.index
            thumb = thumbnail(frame.image) if use_thumbs else None
            if self._last_result is not None and self._skip.should_skip(thumb, frame.pose):
                self._skipped += 1  # the display re-projects the last result (--reuse warp)
                continue
            size = self._sizes.size
            started = time.perf_counter()
            if self._face is not None and self._tracker is not None:
                track = self._tracker.update(frame.t_capture, frame.image, frame.index)
                in_worker = self._infer_in_worker if self.worker is not None else None
                output = self._face.render(frame.image, track, in_worker).image
            elif self.worker is not None:
                output = self._infer_in_worker(frame.image, size)
            else:
                output = self.stylizer.stylize(frame.image, size)
            done = time.perf_counter()
            self._skip.stylized(thumb, frame.pose)
            self._infer_done.append(done)
            self._infer_ms.append(1000.0 * (done - started))
            self._sizes.observe(done, 1000.0 * (done - started))
            image = self._smoother.apply(output, frame.image, frame.pose, frame.tracking)
            result = _Result(frame, image, size)
            self._last_result = result
            self._results.put(result)

    def _infer_in_worker(self, image: np.ndarray, size: int) -> np.ndarray:
        """Stylize in the confined worker; after a kill it is relaunched (like a phone app)
        and the camera frame is shown unstylized meanwhile."""
        assert self.worker is not None
        reply = self.worker.infer(image, size)
        if reply.output is not None:
            return reply.output
        self._worker_restarts += 1
        self.worker.restart()
        return image

    # --- display ------------------------------------------------------------------------

    def _next_shot(self, result: _Result | None) -> tuple[np.ndarray, Captured, Captured] | None:
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
            image = warp_to_pose(image, self.source.camera, base.frame.pose, aligned.pose,
                                 depth_m=self.settings.pipeline.smoothing.pose_depth_m)
        return image, aligned, base.frame

    def _show(self, image: np.ndarray, aligned: Captured, source: Captured) -> None:
        now = time.perf_counter()
        latency_ms = 1000.0 * (now - aligned.t_capture)
        recent = sum(1 for s in self._shown if s.t_display > now - 1.0)
        hud = f"{recent:4.1f} FPS  {latency_ms:5.0f} ms  {self.model.name}"
        screen = self.compositor.compose(image, aligned.pose, aligned.tracking, hud)
        self._screen = screen
        t_display = time.perf_counter()
        if aligned.index not in self._reached:
            self._reached.add(aligned.index)
            self._shown.append(Shown(t_display, aligned.t_capture, False, source.t_capture))
        if self.on_frame is not None:
            self.on_frame(screen, {
                "frame": aligned.index,
                "source_frame": source.index,
                "latency_ms": 1000.0 * (t_display - aligned.t_capture),
                "display_fps": float(recent),
                "inference_ms": self._infer_ms[-1] if self._infer_ms else None,
                "captured_frames": self._captured,
                "displayed_frames": len(self._shown),
                "skipped_frames": self._skipped,
                "model": self.model.name,
                "input_size": self._sizes.size,
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
                vcam.send(self._screen if self._screen is not None else black)

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
            for thread in threads:
                thread.join(timeout=10.0)
            self.source.close()
            if vcam is not None:
                vcam.close()
            if self._tracker is not None:
                self._tracker.close()
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
        )
        infer = np.asarray(self._infer_ms) if self._infer_ms else None
        return {
            "source": self.source.name,
            "model": self.model.name,
            "model_choice": self.auto,
            "input_size": self.stylizer.input_size,
            "size_changes": self._sizes.changes,
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


# --- command line ------------------------------------------------------------------------


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """``arsim live``'s own flags (the pipeline flags are added by the CLI beside them)."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", type=int, metavar="N", help="webcam index (0 = the first)")
    src.add_argument("--source", metavar="SCENARIO",
                     help="a scenario, looped and paced to its fps as if it were a camera")
    p.add_argument("--model", default="auto",
                   help="model name, .onnx path, or auto (fastest that fits the frame budget)")
    p.add_argument("--input-size", type=int, default=None, help="model input size (square)")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    p.add_argument("--virtual-cam", action="store_true",
                   help="also send the stylized screen to a virtual webcam (pyvirtualcam)")
    p.add_argument("--virtual-cam-backend", metavar="NAME",
                   help="pyvirtualcam backend (Linux: v4l2loopback; Windows/macOS: obs, "
                        "unitycapture; default: the first that works)")
    p.add_argument("--virtual-cam-size", metavar="WxH", type=_size, default=(1280, 720),
                   help="virtual camera frame size (default 1280x720)")
    p.add_argument("--fps", type=float, default=30.0, help="camera / virtual camera rate")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    p.add_argument("--throttle", nargs="?", const="real", choices=("real", "off"),
                   default="off",
                   help="real: stylize in a worker process confined by the OS (cgroups, "
                        "else SIGSTOP/SIGCONT + RLIMIT_AS; docs/throttling.md)")
    p.add_argument("--cpu-fraction", type=float, default=None, metavar="F",
                   help="with --throttle real: the worker's CPU quota in cores (default: none)")
    p.add_argument("--memory-limit-mb", type=float, default=None, metavar="MB",
                   help="with --throttle real: the worker's memory limit (default: none)")
    p.add_argument("--json", metavar="FILE", help="also write the stats as JSON")


def format_stats(stats: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lat = stats["latency_ms"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"
    choice = stats.get("model_choice")
    chosen = ""
    if choice:
        timings = ", ".join(f"{k} {v:.1f} ms" for k, v in choice["stylize_ms"].items())
        chosen = f" (auto: {timings}; budget {choice['budget_ms']:.1f} ms)"
    return "\n".join([
        f"live {stats['source']} with {stats['model']} at {stats['input_size']}{chosen}",
        f"  ended ({stats['stop_reason']}) after {stats['wall_s']:.1f} s",
        f"  capture {stats['capture_fps']:.1f} FPS  display {stats['display_fps']:.1f} FPS  "
        f"inference {fmt(stats['inference_fps'])} FPS",
        f"  latency p50 {fmt(lat['p50'])} ms  p95 {fmt(lat['p95'])} ms  "
        f"(display time - capture time)",
        f"  frames: captured {stats['captured_frames']}  shown {stats['displayed_frames']}  "
        f"dropped {stats['dropped_frames']}  skipped {stats['skipped_frames']}",
        f"  virtual camera: {stats['virtual_cam'] or 'off'}",
        f"  throttling: {stats.get('throttle_mechanism') or 'off'}",
    ])


def main_live(args: argparse.Namespace, pipeline: PipelineSettings) -> int:
    """``arsim live``: run, print the stats; 0, or 130 when stopped with Ctrl-C."""
    settings = LiveSettings(
        source=args.camera if args.camera is not None else args.source,
        model=args.model,
        input_size=args.input_size,
        pipeline=pipeline,
        duration_s=args.duration,
        virtual_cam=args.virtual_cam,
        virtual_cam_backend=args.virtual_cam_backend,
        virtual_cam_size=args.virtual_cam_size,
        fps=args.fps,
        threads=args.threads,
        throttle=getattr(args, "throttle", None) == "real",
        cpu_fraction=getattr(args, "cpu_fraction", None),
        memory_limit_mb=getattr(args, "memory_limit_mb", None),
    )
    for flag, value in (("--cpu-fraction", settings.cpu_fraction),
                        ("--memory-limit-mb", settings.memory_limit_mb)):
        if value is not None and not settings.throttle:
            raise InputError(flag, "needs --throttle real")
    if settings.model == "auto":
        print("arsim: timing the candidate models on this host ...", file=sys.stderr)
    shown: list[bool] = []

    def announce(_screen: np.ndarray, _stats: dict[str, Any]) -> None:
        if not shown:  # once, when the first stylized screen is up
            shown.append(True)
            print("live: running (Ctrl-C stops)", file=sys.stderr, flush=True)

    stats = run_live(settings, on_frame=announce)
    print(format_stats(stats))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(args.json, f"cannot write: {exc.strerror}") from None
    signum = stats["interrupted_by"]
    return 0 if signum is None else 128 + signum  # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
