"""The ``arsim`` command line. Exit codes: 0 all budgets met, 1 a budget failed,
2 bad input or usage (one line on stderr), 3 a device run ended incomplete (report written,
reason inside), 4 an output could not be written (one line), 130 interrupted (partial report
written)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator import __version__, signals
from simulator.errors import InputError, OutputError
from simulator.mobile.cli import add_device_commands, cmd_device
from simulator.signals import terminate_as_interrupt

if TYPE_CHECKING:
    from simulator.pipeline.settings import PipelineSettings
    from simulator.run import RunSettings

EXIT_OK, EXIT_BUDGET_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_OUTPUT = 4  # an output could not be written (never 1: that means a budget failed)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the contract for bad input)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(self.prog, message)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="replay a scenario on a simulated phone and judge it")
    p.add_argument("scenario", help="scenario folder or .zip")
    p.add_argument("--device", default="redmi-note-10", help="device profile id or .toml path")
    p.add_argument("--backend", default="cpu", help="cpu | gpu-fp16")
    p.add_argument("--model", default="toon-classic", help="model name or .onnx path")
    p.add_argument("--input-size", type=int, default=None,
                   help="model input size: size x size pixels (the pixel budget with --fit aspect)")
    p.add_argument("--fit", choices=("aspect", "crop", "letterbox", "squash"), default=None,
                   help="how a frame fits the model input: keep its aspect at the pixel budget "
                   "(default for fully convolutional models), centre crop (sides unstylized), "
                   "letterbox (padded square) or squash (default otherwise)")
    p.add_argument("--out", default="out/run", help="folder for the reports (default out/run)")
    p.add_argument("--output-video", action="store_true", help="also write output.mp4")
    p.add_argument(
        "--timing-only",
        action="store_true",
        help="simulate the timeline without decoding or stylizing (fast; no flicker metric)",
    )
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads on this host")
    _add_host_runtime(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--compare-settings", metavar="FILE",
                   help="A/B: also run with the pipeline settings of FILE (.toml or .json) and "
                   "write OUT/a, OUT/b and OUT/compare.html (metrics, flicker curves, checks, "
                   "synchronized frames); exit 1 when either run fails a budget")
    _add_cache_options(p)
    g = p.add_argument_group("real throttling (inference in an OS-confined worker process)")
    g.add_argument("--throttle", nargs="?", const="real", choices=("real", "model"),
                   default="model",
                   help="real: measured latency under a CPU quota drives the timeline "
                        "(model: the device cost model, the default)")
    g.add_argument("--cpu-fraction", type=float,
                   help="CPU quota in cores (default: calibrated to the device profile)")
    g.add_argument("--memory-limit-mb", type=float,
                   help="the worker's memory limit (default: the profile's budget for the "
                   "model process); memory_pressure events fill it with other apps' memory")
    g.add_argument("--mitigate-memory", action="store_true",
                   help="on memory pressure: release pooled buffers, drop to the smallest size")
    g.add_argument("--relaunch", action="store_true",
                   help="after a kill, relaunch the app after the profile's cold start")
    _add_pipeline_options(p)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 160,256, got {text!r}") from None


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    """Temporal-pipeline knobs; each overrides the same setting of --settings FILE."""
    g = p.add_argument_group("pipeline (defaults: everything off)")
    g.add_argument("--settings", help="pipeline settings file (.toml or .json)")
    g.add_argument("--smooth", choices=("none", "ema", "flow", "pose"), help="smoothing method")
    g.add_argument("--smooth-alpha", type=float, help="weight of the new frame (1 = none)")
    g.add_argument("--colour", choices=("none", "stats", "histogram"),
                   help="colour stabilisation")
    g.add_argument("--reuse", choices=("off", "repeat", "warp"),
                   help="show the last result between inferences (warp: re-projected)")
    g.add_argument("--skip", action="store_true", default=None,
                   help="skip inference on frames that barely changed (needs --reuse)")
    g.add_argument("--max-reuse-age", type=int, help="camera frames a result may be reused")
    g.add_argument("--sizes", type=_sizes, help="dynamic input sizes, e.g. 160,256")
    g.add_argument("--face", action="store_true", default=None, help="face priority")
    g.add_argument("--face-every", type=int, help="run face detection every N frames")
    g.add_argument("--face-background", choices=("stylize", "passthrough"),
                   help="what face priority does with the rest of the frame")


def pipeline_from_args(args: argparse.Namespace):
    """PipelineSettings from --settings FILE (or defaults) with the explicit flags applied."""
    from dataclasses import replace

    from simulator.pipeline.settings import PipelineSettings, load_settings

    base = load_settings(args.settings) if args.settings else PipelineSettings()

    def given(**values):
        return {k: v for k, v in values.items() if v is not None}

    face = base.face
    return replace(
        base,
        smoothing=replace(base.smoothing, **given(method=args.smooth, alpha=args.smooth_alpha,
                                                  colour=args.colour)),
        skip=replace(base.skip, **given(reuse=args.reuse, skip=args.skip,
                                        max_age=args.max_reuse_age)),
        sizing=replace(base.sizing, **given(sizes=args.sizes)),
        face=replace(
            face,
            **given(enabled=args.face),
            tracker=replace(face.tracker, **given(detect_every=args.face_every)),
            priority=replace(face.priority, **given(background=args.face_background)),
        ),
    )


def _add_scenario(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenario", help="validate, describe or synthesise scenarios")
    s = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    s.add_parser("validate", help="check every file and field; one line per problem"
                 ).add_argument("path")
    s.add_parser("info", help="summary of a scenario").add_argument("path")
    imp = s.add_parser("import", help="a recording from a capture app or dataset into a "
                       "scenario (docs/recordings.md)")
    imp.add_argument("src", help="the capture: a folder, a file (.r3d, .bag, .mp4 ...)")
    imp.add_argument("out", help="the scenario folder to write (must not exist)")
    imp.add_argument("--format", default="auto", help="auto (default) or a format name: "
                     "arsim scenario import --list")
    imp.add_argument("--name", help="scenario name (default: from the source's name)")
    imp.add_argument("--fps", type=float, help="frame rate for sources without timestamps")
    imp.add_argument("--up", help="the source world's up axis (+z, -y, ...); default: "
                     "the format's own, or estimated from the cameras")
    imp.add_argument("--scale", type=float, help="metres per source unit (makes non-metric "
                     "poses metric)")
    imp.add_argument("--undistort", action="store_true", help="undistort the frames "
                     "(re-encodes them; the scenario then has no distortion)")
    imp.add_argument("--image-topic", help="ROS bags: the image topic")
    imp.add_argument("--pose-topic", help="ROS bags: the pose / odometry / tf topic")
    imp.add_argument("--camera-frame", help="ROS bags with /tf: the camera's frame id")
    imp.add_argument("--max-frames", type=int, help="keep only the first N frames")
    imp.add_argument("--force", action="store_true", help="replace an existing OUT folder")
    imp.add_argument("--quiet", action="store_true", help="no progress")
    s.add_parser("formats", help="the capture formats scenario import reads")
    anchor = s.add_parser("anchor", help="place anchors from pixels (into scenario.json)")
    anchor_sub = anchor.add_subparsers(dest="anchor_action", required=True, parser_class=_Parser)
    _add_anchor_arguments(anchor_sub.add_parser(
        "add", help="an anchor at a depth along a pixel's ray, or triangulated from two frames"))
    synth = s.add_parser("synth", help="render a synthetic scenario")
    synth.add_argument("out", help="output folder")
    synth.add_argument("--preset", default="orbit")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--width", type=int, default=640)
    synth.add_argument("--height", type=int, default=360)
    synth.add_argument("--fps", type=float, default=30.0)
    synth.add_argument("--duration", type=float, default=None, help="seconds")


def _add_devices(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="device profiles")
    s = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    s.add_parser("list", help="one line per profile")
    s.add_parser("show", help="a profile with the source of every number").add_argument("id")


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the model zoo")
    s = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    s.add_parser("list", help="one line per model")
    s.add_parser("info", help="a model's card").add_argument("name")
    imp = s.add_parser("import", help="a PyTorch checkpoint or ONNX file into the zoo")
    imp.add_argument("file")
    imp.add_argument("--name", required=True, help="zoo name ([a-z0-9._-])")
    imp.add_argument("--out", help="where to write NAME.onnx (default: the models folder)")
    imp.add_argument("--force", action="store_true", help="replace a different model")
    q = s.add_parser("quantize", help="an FP16 or INT8 variant with its card")
    q.add_argument("name")
    mode = q.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fp16", action="store_const", dest="mode", const="fp16")
    mode.add_argument("--int8", action="store_const", dest="mode", const="int8")
    q.add_argument("--scenario", help="calibration frames (INT8; default scenarios/orbit-desk)")
    b = s.add_parser("bench", help="host speed of a model (bare run and full stylize)")
    b.add_argument("name")
    b.add_argument("--sizes", type=_sizes, default=(256, 512))


def _add_live(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="stylize a webcam or a looped scenario in real time")
    add_live_arguments(p)
    _add_pipeline_options(p)


def _cmd_live(args: argparse.Namespace) -> int:
    return main_live(args, pipeline_from_args(args))


def _frame_size(text: str) -> tuple[int, int]:
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
    p.add_argument("--virtual-cam-size", metavar="WxH", type=_frame_size, default=(1280, 720),
                   help="virtual camera frame size (default 1280x720)")
    p.add_argument("--fps", type=float, default=30.0, help="camera / virtual camera rate")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    _add_host_runtime(p)
    p.add_argument("--fit", choices=("aspect", "crop", "letterbox", "squash"), default=None,
                   help="how a frame fits the model input (as arsim run's --fit)")
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
    from simulator.engine.live import LiveSettings, run_live

    settings = LiveSettings(
        source=args.camera if args.camera is not None else args.source,
        duration_s=args.duration,
        virtual_cam=args.virtual_cam,
        virtual_cam_backend=args.virtual_cam_backend,
        virtual_cam_size=args.virtual_cam_size,
        fps=args.fps,
        **_stream_settings(args, pipeline),
    )
    for flag, value in (("--cpu-fraction", settings.cpu_fraction),
                        ("--memory-limit-mb", settings.memory_limit_mb)):
        if value is not None and not settings.throttle:
            raise InputError(flag, "needs --throttle real")
    if settings.model == "auto":
        print("arsim: timing the candidate models on this host ...", file=sys.stderr)
    shown: list[bool] = []

    def announce(_screen: object, _stats: dict[str, Any]) -> None:
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


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="the same scenario on simulator and devices, side by side")
    p.add_argument("reports", nargs="+", help="report.json files (the first is the baseline)")
    p.add_argument("--html", type=Path, help="also write a self-contained HTML page (with the "
                   "screens at the same instants when each report's folder has output.mp4)")
    p.add_argument("--names", help="comma-separated column names, one per report (e.g."
                   " direct,grid: two runs on one device that share a label)")
    c = sub.add_parser("calibrate", help="fit a device profile from device runs")
    c.add_argument("reports", nargs="+", help="device report.json files")
    c.add_argument("--profile", required=True, help="profile id or .toml to update")
    c.add_argument("--out", type=Path, help="write the updated profile here (default: stdout)")
    c.add_argument("--timing", choices=("model", "cycle"), default="model",
                   help="fit the model call (default) or the completion interval (targets that"
                   " run all stages on one thread, like the web page)")


def _cmd_compare(args: argparse.Namespace) -> int:
    from simulator.ab import comparison_frames
    from simulator.compare import compare_reports, format_table, write_compare_html

    names = [n.strip() for n in args.names.split(",")] if args.names else []
    if names and (len(names) != len(args.reports) or not all(names)):
        raise InputError("--names", f"expected {len(args.reports)} comma-separated names (one"
                         f" per report), got {args.names!r}")
    result = compare_reports(args.reports, names)
    print(format_table(result))
    if args.html:
        write_compare_html(result, args.html, comparison_frames(result))
        print(f"wrote {args.html}")
    return EXIT_OK


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from simulator.device.calibrate import calibrate_profile
    from simulator.report.json_report import write_atomic

    text, summary = calibrate_profile(args.reports, args.profile, timing=args.timing)
    print(summary["text"], file=sys.stderr if args.out is None else sys.stdout)
    if args.out is None:
        print(text)
    else:
        write_atomic(args.out, text.encode("utf-8"))
        print(f"wrote {args.out}")
    return EXIT_OK


def _add_gui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="the desktop app: replay and tune with live views")
    p.add_argument("scenario", nargs="?", help="scenario to open")
    p.add_argument("--screenshot", type=Path, help="render offscreen, save this PNG and exit")
    p.add_argument("--frames", type=int, default=12, help="frames to show before --screenshot")
    p.add_argument("--live", metavar="SCENARIO|N", help="start in live mode: a looped scenario "
                   "or camera N")
    p.add_argument("--compare-settings", type=Path, metavar="FILE",
                   help="open the A/B view: the app's settings (A) against the pipeline "
                   "settings of FILE (B) on SCENARIO (with --screenshot: a PNG of that view)")


def _cmd_gui(args: argparse.Namespace) -> int:
    from simulator.app import run_gui

    return run_gui(args.scenario, screenshot=args.screenshot, frames=args.frames,
                   live_source=args.live, compare_settings=args.compare_settings)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="bundled scenarios through a grid of pipeline settings")
    p.add_argument("scenarios", nargs="*", help="default: the bundled orbit-desk and pan-fast")
    p.add_argument("--out", default="out/sweep", help="folder for sweep.json and sweep.md")
    _add_cache_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="arsim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"arsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    _add_scenario(sub)
    _add_devices(sub)
    _add_models(sub)
    _add_sweep(sub)
    _add_gui(sub)
    _add_live(sub)
    _add_compare(sub)
    add_device_commands(sub)
    _add_matrix(sub)
    _add_cache(sub)
    return parser


def _add_matrix(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help="every scenario x device x model x settings, one summary")
    p.add_argument("scenarios", nargs="+", help="scenario folders or .zip files")
    p.add_argument("--device", action="append", required=True, metavar="ID",
                   help="device profile id or .toml (repeatable)")
    p.add_argument("--model", action="append", metavar="NAME",
                   help="model name or .onnx path (repeatable; default toon-classic)")
    p.add_argument("--settings", action="append", metavar="FILE",
                   help="pipeline settings .toml/.json (repeatable; default: the defaults)")
    p.add_argument("--backend", default="cpu", help="cpu | gpu-fp16 (every device)")
    p.add_argument("--input-size", type=int, help="model input size (default: each model's)")
    p.add_argument("--timing-only", action="store_true", help="timelines only (fast)")
    _add_host_runtime(p)
    p.add_argument("--out", type=Path, default=Path("out/matrix"),
                   help="one folder per run and the summary (default out/matrix)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: a Ray cluster")
    p.add_argument("--workers", type=int, help="local: processes (default: one per core, at"
                   " most one per scenario and model); ray: actors (default: the cluster's CPUs)")
    p.add_argument("--address", help="ray: the cluster's address (host:port, ray://...; "
                   "default: a local Ray instance started for the matrix)")
    _add_cache_options(p)


def _cmd_matrix(args: argparse.Namespace) -> int:
    from simulator import matrix, work_cache
    from simulator.output_paths import prepare_output_dir

    if args.workers is not None and args.workers < 1:
        raise InputError("--workers", f"expected at least 1, got {args.workers}")
    if args.address and args.executor != "ray":
        raise InputError("--address", "needs --executor ray")
    if args.cache_size_mb <= 0:
        raise InputError("--cache-size-mb", f"expected a size > 0, got {args.cache_size_mb:g}")
    runs = matrix.plan(args.scenarios, args.device, args.model or ["toon-classic"],
                       args.settings or [])
    options = matrix.MatrixOptions(
        backend=args.backend, input_size=args.input_size, timing_only=args.timing_only,
        host_runtime=args.host_runtime,
        cache=not args.no_cache, cache_disk_mb=args.cache_size_mb,
        cache_dir=str((args.cache or work_cache.cache_dir()).resolve()))
    matrix.check_inputs(runs, options)
    out = prepare_output_dir(args.out)
    if args.executor == "ray":
        from simulator.matrix_ray import RayExecutor

        executor = RayExecutor(args.address, args.workers)
    else:
        executor = matrix.LocalExecutor(args.workers)

    def progress(record: matrix.RunRecord, done: int, total: int) -> None:
        print(f"matrix: {done}/{total} {record.run.label}: {record.status}", file=sys.stderr,
              flush=True)

    summary, paths = matrix.run_matrix(runs, out, options, executor, progress)
    return matrix.print_outcome(summary, paths)


def _add_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="arsim's cache of derived data (graph figures, checks)")
    p.add_argument("action", choices=("info", "clear"),
                   help="info: where it is and what it holds; clear: remove it (always safe)")


def _cmd_cache(args: argparse.Namespace) -> int:
    from simulator import work_cache

    if args.action == "clear":
        freed = work_cache.clear()
        print(f"cleared {work_cache.cache_dir()} ({freed / 1e6:.2f} MB)")
        return EXIT_OK
    print(f"cache: {work_cache.cache_dir()} (ARSIM_CACHE_DIR, XDG_CACHE_HOME)")
    for name, (files, size) in work_cache.usage().items():
        print(f"  {name}: {files} files, {size / 1e6:.2f} MB")
    return EXIT_OK


def _add_host_runtime(parser: argparse.ArgumentParser) -> None:
    from simulator.pipeline.stylize import RUNTIMES

    parser.add_argument("--host-runtime", choices=RUNTIMES, default="ort-cpu",
                        help="what runs the model on this host: ONNX Runtime CPU (default),"
                        " OpenVINO, ONNX Runtime CUDA; never changes the simulated timeline")


def _add_cache_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("reuse of host work (docs/scaling-out.md)")
    g.add_argument("--cache", type=Path, metavar="DIR",
                   help="keep model outputs and optical flow under DIR and reuse them (default:"
                   " arsim's cache directory, see `arsim cache info`); reports are unchanged")
    g.add_argument("--no-cache", action="store_true", help="neither reuse nor keep host work")
    g.add_argument("--cache-size-mb", type=float, default=4096.0,
                   help="the disk cache's cap; the least recently used go first (default 4096)")


def _work_cache(args: argparse.Namespace, memory: bool):
    """The cache the flags ask for (None with --no-cache). ``memory``: also keep results in
    this process (for commands that run more than one replay)."""
    from simulator import work_cache

    if args.no_cache:
        return None
    if args.cache_size_mb <= 0:
        raise InputError("--cache-size-mb", f"expected a size > 0, got {args.cache_size_mb:g}")
    return work_cache.shared_cache(
        args.cache or work_cache.cache_dir(), disk_bytes=int(args.cache_size_mb * 2**20),
        memory_bytes=work_cache.DEFAULT_MEMORY_MB << 20 if memory else 0)


def _stream_settings(args: argparse.Namespace, pipeline: PipelineSettings) -> dict[str, Any]:
    """The ``StreamSettings`` fields (what replay and live share) from their flags, which
    ``arsim run`` and ``arsim live`` spell alike."""
    return {"model": args.model, "input_size": args.input_size, "fit": args.fit,
            "pipeline": pipeline, "threads": args.threads, "host_runtime": args.host_runtime,
            "throttle": args.throttle == "real", "cpu_fraction": args.cpu_fraction,
            "memory_limit_mb": args.memory_limit_mb}


def _cmd_run(args: argparse.Namespace) -> int:
    from simulator.progress import Progress
    from simulator.report.console import format_verdict
    from simulator.run import RunSettings, run_scenario

    settings = RunSettings(
        device=args.device,
        backend=args.backend,
        timing_only=args.timing_only,
        output_video=args.output_video,
        **_stream_settings(args, pipeline_from_args(args)),
        memory_mitigations=args.mitigate_memory,
        relaunch=args.relaunch,
    )
    if args.compare_settings:
        return _run_ab(args, settings)
    progress = Progress("replay", enabled=not args.quiet)
    outcome = run_scenario(args.scenario, settings, Path(args.out), progress=progress,
                           cache=_work_cache(args, memory=False))
    if not outcome.report["complete"]:
        progress.interrupted()
    print(format_verdict(outcome.report))
    for kind, path in outcome.paths.items():
        print(f"{kind:>8}: {path}")
    if not outcome.report["complete"]:
        print(f"incomplete: {outcome.report['incomplete_reason']}", file=sys.stderr)
        return 128 + (outcome.interrupted_by or 2)
    return EXIT_OK if outcome.report["verdict"]["passed"] else EXIT_BUDGET_FAILED


def _run_ab(args: argparse.Namespace, a: RunSettings) -> int:
    """``arsim run … --compare-settings FILE``: A = the command's settings, B = the same with
    the pipeline settings of FILE; both runs and ``compare.html`` under ``--out``."""
    from dataclasses import replace

    from simulator.ab import run_ab
    from simulator.compare import format_table
    from simulator.pipeline.settings import load_settings
    from simulator.progress import Progress

    b = replace(a, pipeline=load_settings(args.compare_settings))
    names = ("A", f"B ({Path(args.compare_settings).name})")
    result = run_ab(args.scenario, a, b, Path(args.out), names=names,
                    progress=lambda name: Progress(f"replay {name.upper()}",
                                                   enabled=not args.quiet),
                    cache=_work_cache(args, memory=True))
    last = result.outcomes[-1]
    if result.comparison is None:
        print(f"incomplete: {last.report['incomplete_reason']}", file=sys.stderr)
        return 128 + (last.interrupted_by or 2)
    print(format_table(result.comparison))
    print(f"wrote {result.html}")
    passed = all(o.report["verdict"]["passed"] for o in result.outcomes)
    return EXIT_OK if passed else EXIT_BUDGET_FAILED


def _add_anchor_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``arsim scenario anchor add``."""
    parser.add_argument("scenario", help="a scenario folder (a .zip must be unzipped first)")
    parser.add_argument("--frame", type=int, required=True, help="the frame the pixel is in")
    parser.add_argument("--pixel", required=True, help="U,V: the pixel (x right, y down)")
    parser.add_argument("--depth", type=float, help="distance in front of the camera, along "
                        "its viewing axis, in the scenario's pose units")
    parser.add_argument("--frame2", type=int, help="a second frame showing the same point "
                        "(triangulated instead of --depth)")
    parser.add_argument("--pixel2", help="U2,V2: the point's pixel in --frame2")
    parser.add_argument("--id", help="the anchor's id (default anchor-N)")
    parser.add_argument("--size", type=float, help="the box's extent in pose units "
                        "(default: 10 %% of the depth)")


def _cmd_anchor(args: argparse.Namespace) -> int:
    """``arsim scenario anchor add``: place the anchor, write it, print one line."""
    from simulator.scenario.anchors import (
        add_anchor,
        anchor_from_depth,
        anchor_from_two_views,
        parse_pixel,
        scenario_json,
    )
    from simulator.scenario.load import load_scenario

    path = Path(args.scenario)
    scenario_json(path)
    pixel = parse_pixel(args.pixel)
    two_view = args.frame2 is not None or args.pixel2 is not None
    if two_view and args.depth is not None:
        raise InputError("--depth", "give either --depth or --frame2 with --pixel2, not both")
    if not two_view and args.depth is None:
        raise InputError("--depth", "expected --depth D, or --frame2 M --pixel2 U2,V2")
    if two_view and (args.frame2 is None or args.pixel2 is None):
        raise InputError("--frame2" if args.frame2 is None else "--pixel2",
                         "--frame2 and --pixel2 go together")
    with load_scenario(path) as scenario:
        if two_view:
            anchor = anchor_from_two_views(scenario, args.frame, pixel, args.frame2,
                                           parse_pixel(args.pixel2, "--pixel2"),
                                           size=args.size)
        else:
            anchor = anchor_from_depth(scenario, args.frame, pixel, args.depth, size=args.size)
    written = add_anchor(path, anchor, args.id)
    x, y, z = written["position"]
    print(f"added anchor {written['id']!r} at ({x:.4g}, {y:.4g}, {z:.4g}), size "
          f"{written['size'][0]:.3g} to {path / 'scenario.json'}")
    return EXIT_OK


def _cmd_scenario(args: argparse.Namespace) -> int:
    from simulator.scenario.load import load_scenario

    if args.action == "synth":
        from simulator.progress import Progress
        from simulator.scenario.synth import synthesize

        out = synthesize(
            Path(args.out), args.preset, args.seed, width=args.width, height=args.height,
            fps=args.fps, duration_s=args.duration, progress=Progress(f"synth {args.preset}"),
        )
        print(f"wrote {out}")
        return EXIT_OK
    if args.action == "import":
        return _cmd_import(args)
    if args.action == "anchor":
        return _cmd_anchor(args)
    if args.action == "formats":
        from simulator.scenario.importers import importers

        for importer in importers().values():
            print(f"{importer.name:16} {importer.description}")
        return EXIT_OK
    if args.action == "validate":
        return _cmd_validate(args.path)
    with load_scenario(args.path) as scenario:
        from simulator.scenario.summary import describe

        print(describe(scenario))
    return EXIT_OK


def _cmd_validate(path: str) -> int:
    """Every problem on its own line (stderr, exit 2), else the summary and warnings."""
    from simulator.scenario.load import validate_scenario

    result = validate_scenario(path)
    for problem in result.problems:
        print(f"arsim: error: {problem}", file=sys.stderr)
    if result.problems:
        print(f"{path}: {len(result.problems)} problem(s)", file=sys.stderr)
        return EXIT_BAD_INPUT
    scenario = result.scenario
    assert scenario is not None
    with scenario:
        for warning in result.warnings:
            print(f"warning: {warning}")
        print(f"{path}: valid {scenario.format} ({scenario.frame_count} frames)")
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    from simulator.progress import Progress
    from simulator.scenario.importers import ImportOptions, detect, import_recording
    from simulator.scenario.load import validate_scenario

    if args.fps is not None and not 1 <= args.fps <= 240:
        raise InputError("--fps", f"expected a frame rate in 1-240, got {args.fps:g}")
    if args.scale is not None and not args.scale > 0:
        raise InputError("--scale", f"expected metres per unit > 0, got {args.scale:g}")
    if args.max_frames is not None and args.max_frames < 2:
        raise InputError("--max-frames", f"expected at least 2, got {args.max_frames}")
    options = ImportOptions(
        name=args.name, fps=args.fps, up=args.up, scale=args.scale, undistort=args.undistort,
        image_topic=args.image_topic, pose_topic=args.pose_topic,
        camera_frame=args.camera_frame, max_frames=args.max_frames,
    )
    fmt = args.format
    if fmt == "auto":
        fmt = detect(Path(args.src)).name
        print(f"format: {fmt} (auto-detected)", file=sys.stderr)
    out = import_recording(args.src, args.out, fmt, options,
                           Progress(f"import {fmt}", enabled=not args.quiet), force=args.force)
    result = validate_scenario(out)
    for problem in result.problems:  # the writer's own output must load: say so if not
        print(f"arsim: error: {problem}", file=sys.stderr)
    if result.scenario is not None:
        result.scenario.close()
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"wrote {out}")
    return EXIT_BAD_INPUT if result.problems else EXIT_OK


def _cmd_devices(args: argparse.Namespace) -> int:
    from simulator.device.catalog import describe, list_profiles, load_profile, summary_line

    if args.action == "list":
        for profile in list_profiles():
            print(summary_line(profile))
    else:
        print(describe(load_profile(args.id)))
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from simulator.zoo.card import card_to_dict
    from simulator.zoo.registry import list_models, resolve_model

    if args.action == "import":
        from simulator.zoo.importer import import_model

        print(f"wrote {import_model(args.file, args.name, args.out, overwrite=args.force)}")
    elif args.action == "quantize":
        from simulator.zoo.quantize import quantize_model
        from simulator.zoo.registry import models_dir

        calibration = Path(args.scenario) if args.scenario else None
        out = quantize_model(args.name, args.mode, calibration=calibration, out_dir=models_dir())
        print(f"wrote {out}")
    elif args.action == "bench":
        from simulator.zoo.host_bench import bench_model, format_bench

        print(format_bench(bench_model(args.name, sizes=args.sizes)))
    elif args.action == "list":
        for card in list_models():
            flops = card.flops.get(256)
            gflops = f"{flops / 1e9:7.2f} GFLOPs@256" if flops else "    ? GFLOPs@256"
            summary = card.description.split(". ")[0].rstrip(".")
            print(f"{card.name:18} {card.parameters:>10,} params  {gflops}  {summary}")
    else:
        model = resolve_model(args.name)
        print(json.dumps(card_to_dict(model.card), indent=2))
        print(f"file: {model.path}")
    return EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    import simulator
    from simulator.output_paths import prepare_output_dir
    from simulator.sweep import default_grid, run_sweep, write_sweep

    bundled = Path(simulator.__file__).resolve().parents[1] / "scenarios"
    scenarios = [Path(s) for s in args.scenarios] or [bundled / "orbit-desk", bundled / "pan-fast"]
    prepare_output_dir(Path(args.out))  # before the (long) sweep
    rows: list[dict] = []
    try:
        run_sweep(scenarios, default_grid(), progress=lambda s: print(s, file=sys.stderr),
                  rows=rows, cache=_work_cache(args, memory=True))
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: keep the finished runs
        json_path, _ = write_sweep(rows, Path(args.out), incomplete_reason=signals.reason(exc))
        print(f"wrote {json_path} (incomplete: {len(rows)} runs)", file=sys.stderr)
        raise
    json_path, md_path = write_sweep(rows, Path(args.out))
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "scenario": _cmd_scenario,
    "devices": _cmd_devices,
    "models": _cmd_models,
    "sweep": _cmd_sweep,
    "cache": _cmd_cache,
    "matrix": _cmd_matrix,
    "gui": _cmd_gui,
    "live": _cmd_live,
    "compare": _cmd_compare,
    "calibrate": _cmd_calibrate,
    "device": cmd_device,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        with terminate_as_interrupt():
            return _COMMANDS[args.command](args)
    except InputError as err:
        print(f"arsim: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OutputError as err:
        print(f"arsim: error: {err}", file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt as exc:
        print(f"arsim: {signals.reason(exc)}", file=sys.stderr)
        return signals.exit_code(exc)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
