"""One run end to end: scenario + device + model in, verdict and report files out.

This is the entry point every interface shares (``arsim run``, Python callers, tests);
it wires the stages together and builds ``report.json`` — it holds no pipeline logic.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from simulator import __version__, signals
from simulator.device.catalog import load_profile
from simulator.device.cost import CostModel
from simulator.device.cpu_quota import calibrate
from simulator.device.memory import MemoryModel, model_process_budget_mb
from simulator.device.thermal import ThermalModel
from simulator.engine.replay import Replay, ReplayResult
from simulator.engine.worker import InferenceWorker
from simulator.errors import InputError
from simulator.metrics.timing import timing_metrics
from simulator.metrics.verdict import budgets_for, evaluate
from simulator.output_paths import prepare_output_dir
from simulator.pipeline.chain import Chain
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.stylize import Stylizer, input_shape, resolve_fit
from simulator.report import SCHEMA, write_reports
from simulator.scenario.load import load_scenario
from simulator.scenario.model import Scenario
from simulator.sinks import Sink
from simulator.sinks.video_file import VideoFileSink, grid_frames
from simulator.stream_settings import StreamSettings
from simulator.work_cache import WorkCache
from simulator.zoo.registry import ResolvedModel, resolve_model


@dataclass(frozen=True, kw_only=True)
class RunSettings(StreamSettings):
    """Everything that chooses how a scenario is replayed (plain data: CLI, app and
    tests build the same object). With ``throttle`` the confined worker's measured
    latency drives the timeline; ``cpu_fraction`` None: calibrated to the device profile's
    prediction; ``memory_limit_mb`` None: the profile's budget for the model process
    (device.memory.model_process_budget_mb)."""

    device: str = "redmi-note-10"
    backend: str = "cpu"
    timing_only: bool = False
    output_video: bool = False
    thumbnails: int = 6
    # On a memory_pressure event: release pooled buffers (ORT arena off) and force the
    # smallest input size (the seed's mitigations; one inference in flight is the design).
    memory_mitigations: bool = False
    relaunch: bool = False  # after a kill the app relaunches after profile app.cold_start_ms


@dataclass
class RunOutcome:
    report: dict
    paths: dict[str, Path]
    interrupted_by: int | None = None  # the signal that stopped the run early, if one did

    def raise_if_interrupted(self) -> None:
        """Raise the interruption that stopped this run early again: a caller running many
        runs stops at the signal, after keeping this one's partial reports."""
        if self.interrupted_by is not None:
            raise signals.interruption(self.interrupted_by)


def run_scenario(
    scenario_path: str | Path,
    settings: RunSettings,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    sinks: Sequence[Sink] = (),
    cache: WorkCache | None = None,
) -> RunOutcome:
    """Replay, judge and write the reports; each new screen also goes to ``sinks`` (e.g.
    the app's views). ``cache``: host work earlier runs did is reused (simulator/work_cache.py;
    the report is the same, apart from ``host``). Bad input raises InputError before any
    work."""
    profile = load_profile(settings.device)
    profile.backend(settings.backend)  # unknown backend: fail before loading anything big
    model = resolve_model(settings.model)
    input_size = settings.input_size or model.card.input.default_size
    problem = model.card.input.size_problem(input_size)
    if problem:
        raise InputError("--input-size", problem)
    resolve_fit(model.card, settings.fit)  # --fit aspect on a square-only model: refused
    settings.validate()
    for size in settings.pipeline.sizing.sizes:
        problem = model.card.input.size_problem(size)
        if problem:
            raise InputError("--sizes", f"{size}: {problem}")
    out_dir = prepare_output_dir(out_dir)  # a bad --out costs nothing: checked first
    stage = _Stage("loading the scenario")
    try:
        return _replay_and_report(scenario_path, settings, out_dir, profile, model, input_size,
                                  progress, sinks, stage, cache)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (simulator.signals)
        if stage.replaying:
            raise
        report = _interrupted_report(scenario_path, settings, model, input_size,
                                     f"{signals.reason(exc)} while {stage.name}")
        return RunOutcome(report, write_reports(report, out_dir), signals.signal_of(exc))


@dataclass
class _Stage:
    """How far a run got: an interruption before the replay still leaves a report."""

    name: str
    replaying: bool = False


def _interrupted_report(
    scenario_path: str | Path, settings: RunSettings, model: ResolvedModel, input_size: int,
    reason: str,
) -> dict:
    """The report of a run stopped before its replay began: nothing measured (null metrics),
    but a report all the same, marked incomplete with the reason."""
    from simulator.mobile.contract import null_metrics

    metrics = null_metrics()
    return {
        "schema": SCHEMA, "complete": False, "incomplete_reason": reason,
        "generated_by": f"arsim {__version__}", "target": "simulator",
        "scenario": {"name": Path(scenario_path).name, "path": str(scenario_path)},
        "device": {"id": settings.device}, "backend": settings.backend,
        "model": {"name": model.card.name, "path": str(model.path)},
        "input_size": input_size, "settings": asdict(settings), "budgets": {},
        "metrics": metrics, "oom_events": [], "size_changes": [], "face": None,
        "face_detections": [],
        "verdict": {"passed": False, "checks": []},
        "series": {"t": [], "memory_mb": [], "thermal_factor": []},
        "display": [], "frames": [], "host": {"wall_s": None, "frames_per_s": None},
    }


def _replay_and_report(
    scenario_path: str | Path,
    settings: RunSettings,
    out_dir: Path,
    profile,
    model: ResolvedModel,
    input_size: int,
    progress: Callable[[int, int], None] | None,
    sinks: Sequence[Sink],
    stage: _Stage,
    cache: WorkCache | None,
) -> RunOutcome:
    with load_scenario(scenario_path) as scenario, ExitStack() as stack:
        check_pose_stages(settings.pipeline, scenario)
        stage.name = "loading the model"
        fit = resolve_fit(model.card, settings.fit)
        stylizer = None if settings.timing_only else _stylizer(
            model, input_size, settings.threads, fit, settings.host_runtime, cache)
        memory = _memory_model(profile, settings, model, input_size, scenario, fit)
        cam = scenario.camera
        sink = None
        if settings.output_video:
            out_dir.mkdir(parents=True, exist_ok=True)
            sink = VideoFileSink(
                out_dir / "output.mp4", fps=scenario.fps, width=cam.width, height=cam.height,
                t0=float(scenario.frame_times[0]),
                frames=grid_frames(float(scenario.frame_times[0]),
                                   float(scenario.frame_times[-1]), scenario.fps),
            )
        throttle, worker = None, None
        if settings.throttle and not settings.timing_only:
            stage.name = "starting the confined worker"
            throttle, worker = _start_worker(profile, settings, model, input_size, stack)
        chain = Chain.for_scenario(settings.pipeline, scenario, model=model,
                                   input_size=input_size, fit=fit, stylizer=stylizer,
                                   worker=worker, cache=None if worker is not None else cache)
        replay = _replay(scenario, profile, settings, memory, chain,
                         sinks=(*sinks, sink) if sink is not None else sinks, progress=progress)
        started = time.perf_counter()
        cache_before = chain.cache.stats.snapshot() if chain.cache is not None else None
        stage.replaying = True
        result = replay.run()
        wall_s = time.perf_counter() - started
        paths: dict[str, Path] = {}
        if sink is not None:
            sink.close()
            paths["video"] = sink.path
        report = build_report(
            scenario, profile, settings, model, input_size, memory, result, wall_s
        )
        if stylizer is not None:
            report["host"]["runtime"] = stylizer.runtime_id
        if chain.cache is not None and cache_before is not None:
            # this run's lookups: found in memory, on disk, or computed
            report["host"]["cache"] = chain.cache.stats.since(cache_before).as_dict()
        if result.complete and throttle is None:
            prediction = _prediction(scenario, profile, settings, model, input_size, fit)
            if prediction is not None:
                report["prediction"] = prediction
        if throttle is not None:
            measured = result.measured_latency_ms
            throttle["measured_latency_ms"] = statistics.median(measured) if measured else None
            report["throttle"] = throttle
    paths = {**write_reports(report, out_dir, result.thumbnails), **paths}
    return RunOutcome(report, paths, result.interrupted_by)


_loaded: dict[tuple, Stylizer] = {}  # the last sessions, for runs that share a cache
KEEP_LOADED = 2


def _stylizer(model: ResolvedModel, input_size: int, threads: int, fit: str, runtime: str,
              cache: WorkCache | None) -> Stylizer:
    """A stylizer for the run; with a cache that keeps results in memory (a matrix, the
    pytest plugin, the app: processes that run many replays) the last sessions stay loaded
    for the runs after it (a Ray actor keeps its model's session)."""
    if cache is None or cache.memory_bytes == 0:
        return Stylizer(model, input_size, threads, fit, runtime=runtime)
    key = (str(model.path.resolve()), model.path.stat().st_mtime_ns, input_size, threads, fit,
           runtime)
    if key not in _loaded:
        while len(_loaded) >= KEEP_LOADED:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = Stylizer(model, input_size, threads, fit, runtime=runtime)
    return _loaded[key]


def _memory_model(profile, settings: RunSettings, model: ResolvedModel, input_size: int,
                  scenario: Scenario, fit: str) -> MemoryModel:
    cam = scenario.camera
    shape = input_shape(model.card, input_size, cam.width, cam.height, fit)
    return MemoryModel(
        profile,
        settings.backend,
        weights_bytes_fp32=model.weights_bytes(),
        activation_mb=model.activation_mb(shape),  # at the real input shape
        camera_w=cam.width,
        camera_h=cam.height,
        input_size=input_size,
        input_shape=shape,
    )


def _replay(scenario: Scenario, profile, settings: RunSettings, memory: MemoryModel,
            chain: Chain, sinks: Sequence[Sink] = (),
            progress: Callable[[int, int], None] | None = None) -> Replay:
    """The replay of ``scenario`` on ``profile`` (the one place one is built)."""
    return Replay(
        scenario,
        cost=CostModel(profile, settings.backend),
        memory=memory,
        thermal=ThermalModel(profile),
        display_hz=profile.hardware.display_hz,
        screen_size=(profile.hardware.screen_width, profile.hardware.screen_height),
        chain=chain,
        sinks=sinks,
        mitigate_memory=settings.memory_mitigations,
        relaunch_after_s=profile.app.cold_start_ms / 1000.0 if settings.relaunch else None,
        thumbnails=settings.thumbnails,
        progress=progress,
    )


PREDICTION_LEVEL = 0.95
_Z = 1.959964  # two-sided 95 % of a normal distribution


def _prediction(scenario: Scenario, profile, settings: RunSettings, model: ResolvedModel,
                input_size: int, fit: str) -> dict | None:
    """On a calibrated profile (``seed_fps`` with a standard error, ``arsim calibrate``): the
    run's display FPS, inference FPS and latency replayed (timing only) with the backend
    slower and faster by 1.96 standard errors, as a 95 % interval of the prediction. None on
    a profile without one."""
    backend = profile.backend(settings.backend)
    se = profile.stderrs.get(f"backends.{backend.name}.seed_fps")
    if not se:
        return None
    timing = replace(settings, timing_only=True, output_video=False, thumbnails=0)
    ends: dict[str, dict] = {}
    for side, fps in (("slow", backend.seed_fps - _Z * se), ("fast", backend.seed_fps + _Z * se)):
        if fps <= 0:  # the uncertainty reaches a phone that never finishes: no bound
            ends[side] = {}
            continue
        # the overhead stays, unless the faster phone's whole latency is less than it
        overhead = min(backend.overhead_ms, 0.5 * 1000.0 / fps)
        variant = replace(profile, backends={**profile.backends, backend.name: replace(
            backend, seed_fps=fps, overhead_ms=overhead)})
        memory = _memory_model(variant, timing, model, input_size, scenario, fit)
        chain = Chain.for_scenario(timing.pipeline, scenario, model=model,
                                   input_size=input_size, fit=fit)
        result = _replay(scenario, variant, timing, memory, chain).run()
        ends[side] = build_report(scenario, variant, timing, model, input_size, memory, result,
                                  0.0)["metrics"]

    def interval(key: str, sub: str | None = None) -> list[float | None]:
        values = []
        for side in ("slow", "fast"):
            value = ends[side].get(key)
            values.append(value.get(sub) if isinstance(value, dict) and sub else value)
        return sorted(values, key=lambda v: math.inf if v is None else v)

    return {
        "level": PREDICTION_LEVEL,
        "method": f"timing-only replays with backends.{backend.name}.seed_fps at"
                  f" {backend.seed_fps:g} -/+ 1.96 x {se:.3g} (its standard error)",
        "display_fps": interval("display_fps"),
        "inference_fps": interval("inference_fps"),
        "latency_p50_ms": interval("latency_ms", "p50"),
        "latency_p95_ms": interval("latency_ms", "p95"),
    }


def check_pose_stages(pipeline: PipelineSettings, scenario: Scenario) -> None:
    """InputError when a stage needs what the scenario lacks: pose smoothing and warped
    reuse need poses and a scale (metres, or a known scene depth); frame skip's translation
    threshold needs a scale (without poses it judges the picture alone)."""
    problem = scenario.pose_stages_problem
    if problem is None:
        return
    wanted = []
    if pipeline.smoothing.method == "pose":
        wanted.append("--smooth pose")
    if pipeline.skip.reuse == "warp":
        wanted.append("--reuse warp")
    if pipeline.skip.skip and scenario.poses_available:
        wanted.append("--skip")
    if wanted:
        raise InputError(scenario.source_path, f"{' and '.join(wanted)} cannot run: {problem}")


def _start_worker(
    profile, settings: RunSettings, model: ResolvedModel, input_size: int, stack: ExitStack
):
    """The confined worker (closed by ``stack``) and the report's ``throttle`` block."""
    fraction, predicted, too_slow = settings.cpu_fraction, None, None
    if fraction is None:
        calibration = calibrate(profile, settings.backend, model, input_size)
        fraction, predicted = calibration.cpu_fraction, calibration.predicted_ms
        too_slow = calibration.host_too_slow
    else:
        predicted = CostModel(profile, settings.backend).inference_ms(
            model.flops(input_size), input_pixels=input_size * input_size)
    limit = settings.memory_limit_mb
    if limit is None:
        limit = round(model_process_budget_mb(profile), 1)
    worker = InferenceWorker(model, threads=1, cpu_fraction=fraction, memory_limit_mb=limit,
                             fit=settings.fit)
    stack.callback(worker.close)
    return {
        "mechanism": worker.mechanism,
        "cpu_fraction": fraction,
        "memory_limit_mb": limit,
        "memory_limit_source": ("--memory-limit-mb" if settings.memory_limit_mb is not None
                                else "profile: budget - app base - camera/display buffers"),
        # memory_pressure events: a balloon process in the worker's memory cgroup, else the
        # limit is lowered (RLIMIT_AS fallback: an allocation failure, not a kernel OOM)
        "memory_pressure": "balloon" if worker.can_balloon else "lower limit",
        "predicted_latency_ms": predicted,
        "measured_latency_ms": None,
        "host_too_slow": too_slow,  # measured / predicted when the host cannot keep up
    }, worker


def build_report(
    scenario: Scenario,
    profile,
    settings: RunSettings,
    model: ResolvedModel,
    input_size: int,
    memory: MemoryModel,
    result: ReplayResult,
    wall_s: float,
) -> dict:
    """``report.json`` (schema ``arsim-report/1``, see docs/architecture.md)."""
    budgets = budgets_for(memory.budget_mb, scenario.expect)
    metrics = timing_metrics(
        shown=result.shown,
        inference_done_times=result.inference_done,
        background=result.background,
        foreground_s=result.foreground_s,
        camera_fps=scenario.fps,
        display_hz=profile.hardware.display_hz,
        min_display_fps=budgets["min_display_fps"],
        dropped_frames=sum(1 for f in result.frames if f["dropped"]),
        skipped_frames=sum(1 for f in result.frames if f["skipped"]),
        stylized_frames=sum(1 for f in result.frames if f["stylized"]),
    )
    metrics["reused_frames"] = sum(1 for d in result.display if d.get("kind") == "reuse")
    metrics["resized_inferences"] = sum(
        1 for f in result.frames if f["stylized"] and f["input_size"] != input_size
    )
    metrics["flicker"] = {
        k: result.flicker.get(k)
        for k in ("warp_error", "warp_error_p95", "frame_diff", "luminance_flicker",
                  "ghosting_ssim")
    }
    metrics["memory_peak_mb"] = result.memory_peak_mb
    metrics["thermal_factor_max"] = result.thermal_factor_max
    cam = scenario.camera
    processed = len(result.series["t"])  # frames the replay reached
    fit = resolve_fit(model.card, settings.fit)
    shape = input_shape(model.card, input_size, cam.width, cam.height, fit)
    return {
        "schema": SCHEMA,
        "complete": result.complete,
        "incomplete_reason": result.incomplete_reason,
        "generated_by": f"arsim {__version__}",
        "target": "simulator",
        "scenario": {
            "name": scenario.name,
            "path": str(scenario.source_path),
            "frames": scenario.frame_count,
            "duration_s": scenario.duration_s,
            "fps": scenario.fps,
            "width": cam.width,
            "height": cam.height,
            "format": scenario.format,
            "clock_offset_s": scenario.clock_offset_s,
            "poses": "available" if scenario.poses_available else "none",
            "metric": scenario.metric,
            "pose_scale": scenario.pose_scale,
            "scale_source": scenario.scale_source,
            "discontinuities": [asdict(d) for d in scenario.discontinuities],
        },
        "device": {
            "id": profile.id,
            "name": profile.name,
            "display_hz": profile.hardware.display_hz,
            "ram_mb": profile.hardware.ram_mb,
            "kill_limit_mb": memory.kill_limit_mb(),
        },
        "backend": settings.backend,
        "model": {
            "name": model.card.name,
            "path": str(model.path),
            "flops": model.flops(shape),  # at the real input shape
            "parameters": model.card.parameters,
        },
        "input_size": input_size,
        "input_shape": list(shape),  # [width, height] of the model input at input_size
        "fit": fit,
        "settings": asdict(settings),
        "budgets": budgets,
        "metrics": metrics,
        "oom_events": result.oom_events,
        "size_changes": result.size_changes,
        "face": result.face,
        # face priority: every frame with a face box (docs/architecture.md), [] without
        "face_detections": result.face_detections,
        "verdict": evaluate(metrics, budgets, len(result.oom_events)),
        "series": result.series,
        "display": result.display,
        "frames": result.frames,
        "host": {"wall_s": wall_s, "frames_per_s": processed / wall_s if wall_s > 0 else None},
    }
