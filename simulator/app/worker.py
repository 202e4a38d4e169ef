"""Worker threads: the replay paced against wall time, and the re-processing of one frame.

The UI thread never runs pipeline work. ``ReplayWorker`` drives
:func:`simulator.run.run_scenario` (the one engine) on its own thread: the progress callback
paces virtual time against wall time (≤ speed × wall time), blocks while paused, and raises
KeyboardInterrupt to stop a run (seek, new settings), which then returns a partial report.
Results reach the window through queued signals.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from simulator.engine.live import LiveSettings, run_live
from simulator.engine.scheduler import Decision, Scheduler
from simulator.errors import InputError
from simulator.pipeline.chain import Chain
from simulator.pipeline.stylize import Stylizer
from simulator.run import RunOutcome, RunSettings, run_scenario
from simulator.scenario.load import load_scenario
from simulator.scenario.model import Scenario
from simulator.sinks import ShownFrame
from simulator.types import Frame
from simulator.work_cache import cache_dir, shared_cache
from simulator.zoo.registry import resolve_model

BEHIND_S = 0.1  # further behind the wall-clock schedule than this: re-anchor, report slow-down
RATE_WINDOW_S = 1.0  # wall seconds over which the actual replay speed is measured


@dataclass(frozen=True)
class Job:
    """One replay: show frames captured at or after ``start_t``; ``speed`` None = unpaced."""

    scenario: str
    settings: RunSettings
    start_t: float = 0.0
    speed: float | None = 1.0
    paused: bool = False
    timeline: bool = True  # first run timing-only for the whole memory / thermal series


class ReplayWorker(QThread):
    """Runs one Job at a time; ``submit`` replaces the current one (it is interrupted)."""

    started_job = pyqtSignal(int)  # job id: the engine is loading (model, scenario)
    timeline = pyqtSignal(int, object)  # job id, report of the timing-only run
    # id, entry, input, screen, heat-map, stylized picture before composing
    shown = pyqtSignal(int, object, object, object, object, object)
    position = pyqtSignal(int, float)  # id, virtual time of the latest camera frame
    rate = pyqtSignal(float)  # measured virtual seconds per wall second (speed actually run)
    finished_job = pyqtSignal(int, object, str)  # id, RunOutcome or None, error ("" if none)

    def __init__(self, out_root: Path | None = None) -> None:
        super().__init__()
        self._own_root = out_root is None
        self.out_root = Path(out_root or tempfile.mkdtemp(prefix="arsim-gui-"))
        self._cond = threading.Condition()
        self._pending: Job | None = None
        self._job_id = 0
        self._quit = False
        self._abort = False
        self._paused = False
        self._step = False
        self._speed: float | None = 1.0
        self._anchor: tuple[float, float] | None = None  # (wall, virtual) pacing origin
        self._samples: deque[tuple[float, float]] = deque()
        self._job: Job | None = None
        self._running = 0  # id of the job being executed
        self._frame_times: np.ndarray = np.zeros(0)

    # --- control (any thread) -------------------------------------------------------

    def submit(self, job: Job) -> int:
        """Replace the current job with ``job``; returns its id (signals carry it)."""
        with self._cond:
            self._job_id += 1
            self._pending = job
            self._abort = True
            self._paused = job.paused
            self._step = job.paused  # a paused seek still shows the frame it lands on
            self._speed = job.speed
            self._anchor = None
            self._cond.notify_all()
            return self._job_id

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused, self._step, self._anchor = paused, False, None
            self._cond.notify_all()

    def step(self) -> None:
        """While paused: let the replay run until it shows one more picture."""
        with self._cond:
            self._paused, self._step = True, True
            self._cond.notify_all()

    def set_speed(self, speed: float | None) -> None:
        with self._cond:
            self._speed, self._anchor = speed, None
            self._cond.notify_all()

    def shutdown(self) -> None:
        """Stop the current run and the thread; blocks until it has ended."""
        with self._cond:
            self._quit = self._abort = True
            self._cond.notify_all()
        self.wait()
        if self._own_root:
            shutil.rmtree(self.out_root, ignore_errors=True)

    @property
    def paused(self) -> bool:
        return self._paused

    # --- the thread -----------------------------------------------------------------

    def run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._quit:
                    self._cond.wait()
                if self._quit:
                    return
                job, job_id = self._pending, self._job_id
                self._pending, self._abort = None, False
            self._execute(job_id, job)

    def _execute(self, job_id: int, job: Job) -> None:
        self._job, self._running, self._samples = job, job_id, deque()
        self.started_job.emit(job_id)
        out_dir = self.out_root / f"run-{job_id}"
        try:
            with load_scenario(job.scenario) as scenario:
                self._frame_times = np.asarray(scenario.frame_times, float)
            if job.timeline:
                timing = replace(job.settings, timing_only=True, output_video=False)
                outcome = run_scenario(job.scenario, timing, out_dir / "timing",
                                       progress=self._check_abort)
                if self._aborted():
                    return
                self.timeline.emit(job_id, outcome.report)
            outcome = run_scenario(job.scenario, job.settings, out_dir,
                                   progress=self._progress, sinks=(self,),
                                   cache=shared_cache(cache_dir()))
        except InputError as exc:
            self.finished_job.emit(job_id, None, str(exc))
            return
        self.finished_job.emit(job_id, outcome, "")
        for old in self.out_root.glob("run-*"):  # keep the latest runs for export
            if old.name not in (f"run-{job_id}", f"run-{job_id - 1}"):
                shutil.rmtree(old, ignore_errors=True)

    def _aborted(self) -> bool:
        with self._cond:
            return self._abort or self._quit

    def _check_abort(self, done: int, total: int) -> None:
        if self._aborted():
            raise KeyboardInterrupt

    def _progress(self, done: int, total: int) -> None:
        """Per camera frame: stop, pause or wait until wall time catches up."""
        t = float(self._frame_times[done - 1])
        job = self._job
        self.position.emit(self._running, t)
        with self._cond:
            while True:
                if self._abort or self._quit:
                    raise KeyboardInterrupt
                if t < job.start_t:
                    return  # before the seek target: run as fast as the host can
                if self._paused and not self._step:
                    self._anchor = None
                    self._cond.wait()
                    continue
                if self._speed is None:
                    return
                now = time.perf_counter()
                if self._anchor is None:
                    self._anchor = (now, t)
                    self._samples.clear()
                wall0, t0 = self._anchor
                delay = wall0 + (t - t0) / self._speed - now
                if delay <= 0:
                    break
                self._cond.wait(delay)
            if delay < -BEHIND_S:
                self._anchor = (now, t)  # no catch-up burst after a slow stretch
        self._measure(now, t)

    def _measure(self, now: float, t: float) -> None:
        samples = self._samples
        samples.append((now, t))
        while len(samples) > 2 and samples[-1][0] - samples[0][0] > RATE_WINDOW_S:
            samples.popleft()
        (w0, v0), (w1, v1) = samples[0], samples[-1]
        if w1 - w0 >= 0.5 * RATE_WINDOW_S:
            self.rate.emit((v1 - v0) / (w1 - w0))

    def send(self, shown: ShownFrame) -> None:
        """The app's views as a sink (sinks/): every picture the phone shows is forwarded,
        with the engine's flicker map of it, unless it is before the seek target."""
        entry = shown.entry
        if float(self._frame_times[entry["frame"]]) < self._job.start_t:
            return
        self.shown.emit(self._running, dict(entry), shown.input, shown.screen,
                        shown.flicker_map, shown.stylized)
        with self._cond:
            self._step = False


@dataclass(frozen=True)
class PreviewRequest:
    """Re-process camera frame ``index`` (and the one before, for smoothing) of a scenario."""

    scenario: str
    index: int
    settings: RunSettings


class PreviewWorker(QThread):
    """Re-processes the current (possibly paused) frame with new settings through the
    engine's chain (pipeline/chain.py: fit, size, face priority, smoothing, compose); the
    latest request wins. Also decodes a plain input frame when asked with stylize=False."""

    # frame index, input RGB, screen RGB (None: a plain decoded frame), stylized RGB (or None)
    ready = pyqtSignal(int, object, object, object)

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._request: tuple[PreviewRequest, bool] | None = None
        self._quit = False
        self._stylizers: dict[tuple[str, int, str | None], Stylizer] = {}
        self._scenario: Scenario | None = None

    def request(self, req: PreviewRequest, stylize: bool = True) -> None:
        with self._cond:
            self._request = (req, stylize)
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        self.wait()
        if self._scenario is not None:
            self._scenario.close()

    def run(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._quit:
                    self._cond.wait()
                if self._quit:
                    return
                (req, stylize), self._request = self._request, None
            try:
                self._process(req, stylize)
            except InputError:
                continue  # the replay reports bad input; a preview just does not appear

    def _open(self, path: str) -> Scenario:
        if self._scenario is None or str(self._scenario.source_path) != str(Path(path)):
            if self._scenario is not None:
                self._scenario.close()
            self._scenario = load_scenario(path)
        return self._scenario

    def _process(self, req: PreviewRequest, stylize: bool) -> None:
        scenario = self._open(req.scenario)
        index = min(max(req.index, 0), scenario.frame_count - 1)
        frames = list(itertools.islice(scenario.frames(), max(0, index - 1), index + 1))
        current = frames[-1]
        if not stylize:
            self.ready.emit(index, current.image, None, None)
            return
        settings = req.settings
        model = resolve_model(settings.model)
        size = settings.input_size or model.card.input.default_size
        key = (str(model.path), size, settings.fit, settings.host_runtime)
        if key not in self._stylizers:
            self._stylizers = {key: Stylizer(model, size, settings.threads, settings.fit,
                                             runtime=settings.host_runtime)}
        stylizer = self._stylizers[key]
        # the engine's chain and scheduler: the size the replay starts at, and with frame
        # skip the previous result re-projected to this frame when the policy skips it
        chain = Chain.for_scenario(settings.pipeline, scenario, model=model, input_size=size,
                                   fit=stylizer.fit, stylizer=stylizer)
        scheduler: Scheduler[Frame] = Scheduler(chain.settings, size)
        hud = "preview: new settings"
        try:
            image, screen, shown = None, None, None
            for frame in frames:
                decision = scheduler.offer(frame, scheduler.thumbnail(frame.image), frame.pose,
                                           can_reuse=image is not None)
                if decision is Decision.SKIP and image is not None and shown is not None:
                    if chain.settings.skip.reuse == "warp":
                        image = chain.reproject(image, shown.pose, frame.pose)
                    screen = chain.compose(image, frame.pose, frame.tracking, hud)
                    continue
                scheduler.start()
                started = time.perf_counter()
                processed = chain.process(frame, scheduler.size, hud)
                scheduler.finished(frame.time, 1000.0 * (time.perf_counter() - started))
                image, screen, shown = processed.image, processed.screen, frame
        finally:
            chain.close()
        self.ready.emit(index, current.image, screen, image)


class LiveWorker(QThread):
    """One live session: :func:`simulator.engine.live.run_live` (the live engine, the same
    pipeline stages) on this thread until ``stop``. Each new phone screen arrives through
    ``frame`` (queued to the GUI thread); ``ended`` carries the final stats or the error."""

    frame = pyqtSignal(int, object, object)  # session id, screen (RGB), per-frame stats
    ended = pyqtSignal(int, object, str)  # session id, stats or None, error ("" if none)

    def __init__(self, session: int, settings: LiveSettings) -> None:
        super().__init__()
        self.session = session
        self.settings = settings
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        def on_frame(screen: np.ndarray, stats: dict) -> None:
            self.frame.emit(self.session, screen, stats)

        try:
            stats = run_live(self.settings, on_frame=on_frame, stop=self._stop)
        except InputError as exc:
            self.ended.emit(self.session, None, str(exc))
        except Exception as exc:  # a failing session must not take the app down
            self.ended.emit(self.session, None, f"{type(exc).__name__}: {exc}")
        else:
            self.ended.emit(self.session, stats, "")


__all__ = ["Job", "LiveWorker", "PreviewRequest", "PreviewWorker", "ReplayWorker",
           "RunOutcome"]
