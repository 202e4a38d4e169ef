"""``arsim device run`` (a scenario on a device build through Appium or a Selenium Grid),
``arsim device matrix`` (scenarios x farm targets through a Grid), ``arsim device server`` (a
local Appium server from the project's npm install) and ``arsim device grid`` (that server
behind a local Selenium Grid 4 hub and relay node)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_INCOMPLETE = 3

# The `arsim device run` options a matrix passes on to each of its runs: (flag, add_argument
# keywords). One table, so that `run` and `matrix` cannot drift apart.
_SHARED = (
    ("--model", {"default": "toon-classic", "help": "zoo model name"}),
    ("--input-size", {"type": int, "help": "model input size (default: the model's)"}),
    ("--backend", {"help": "app backend (cpu, gpu-fp16, nnapi, coreml, ...)"}),
    ("--device", {"help": "the arsim device profile this device corresponds to (budgets,"
                  " labels); web default: web-chromium"}),
    ("--app", {"type": Path, "help": ".apk / .app / .ipa to install first"}),
    ("--timeout", {"type": float, "default": 600.0, "help": "seconds to wait for the report"
                   " (default 600); after it the report is marked incomplete"}),
    ("--throughput", {"action": "store_true", "help": "frames as fast as possible"
                      " (arsim.realtime=false), for calibration"}),
    ("--warmup-frames", {"type": int, "default": 0}),
    ("--cpu-throttle", {"type": float, "help": "web: DevTools CPU slow-down factor (4 = a"
                        " device 4x slower than this host)"}),
    ("--record", {"action": "store_true", "help": "web: record displayed pictures so the"
                  " harness measures flicker"}),
    ("--max-frames", {"type": int, "help": "web: play only the first N frames"}),
)


def _add_shared(parser: argparse.ArgumentParser) -> None:
    for flag, keywords in _SHARED:
        parser.add_argument(flag, **keywords)


def _shared_flags(args: argparse.Namespace) -> list[str]:
    """The shared options the user set, as `arsim device run` flags (``--model`` aside: a
    matrix names the model of each run itself)."""
    flags: list[str] = []
    for flag, keywords in _SHARED:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if flag == "--model" or value is None or value == keywords.get("default"):
            continue
        flags += [flag] if keywords.get("action") == "store_true" else [flag, str(value)]
    return flags


def add_device_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("device", help="the mobile bench: run scenarios on device builds (Appium)")
    device_sub = p.add_subparsers(dest="device_command", required=True,
                                  parser_class=type(p))
    run = device_sub.add_parser("run", help="play a scenario on an app build, pull its report")
    run.add_argument("scenario", help="scenario folder or .zip")
    run.add_argument("--platform", required=True, choices=("android", "ios", "web"))
    run.add_argument("--server", default="auto", help="Appium server URL with base path, e.g."
                     " http://127.0.0.1:4723/wd/hub, or a Selenium Grid 4 hub URL, e.g."
                     " http://127.0.0.1:4444; 'auto' starts a local Appium server (default)")
    run.add_argument("--caps", type=Path, help="JSON file of extra capabilities (override ours)")
    run.add_argument("--run-id", help="names the run on the device (default: a timestamp)")
    run.add_argument("--out", type=Path, default=Path("out/device"), help="output folder")
    run.add_argument("--min-inferences", type=int, metavar="N",
                     help="repeat the run until the repeats hold N finished inferences in all"
                     " (a slow model's few per run are too few to judge); each repeat in"
                     " OUT/repeat-K/, and the spread of its display FPS printed")
    run.add_argument("--max-repeats", type=int, default=10,
                     help="stop repeating after this many runs (default 10)")
    _add_shared(run)

    matrix = device_sub.add_parser(
        "matrix", help="every scenario on every farm target through a Selenium Grid 4 hub,"
        " as many at once as the Grid has free matching slots")
    matrix.add_argument("scenarios", nargs="+", help="scenario folders or .zip files")
    matrix.add_argument("--server", required=True, help="the Grid hub URL, e.g."
                        " http://127.0.0.1:4444 (`arsim device grid` starts a local one)")
    matrix.add_argument("--platform", required=True, choices=("android", "ios", "web"))
    matrix.add_argument("--target", action="append", required=True, metavar="NAME=CAPS.json",
                        help="a farm device: a name (its run folder) and the capabilities the"
                        " Grid routes it by (platformName, appium:deviceName, ...); repeatable")
    matrix.add_argument("--out", type=Path, default=Path("out/device-matrix"),
                        help="OUT/<scenario>/<target>/ per run, and the summary"
                        " (default out/device-matrix)")
    _add_shared(matrix)

    server = device_sub.add_parser("server", help="run a local Appium server until Ctrl-C")
    server.add_argument("--port", type=int, default=4723)

    grid = device_sub.add_parser("grid", help="run a local Selenium Grid 4 (hub + a relay node"
                                 " to a local Appium server) until Ctrl-C")
    grid.add_argument("--port", type=int, default=4444, help="the hub's port (default 4444)")
    grid.add_argument("--appium-port", type=int, default=4723,
                      help="the Appium server's port (default 4723)")
    grid.add_argument("--max-sessions", type=int, default=1, help="sessions the node runs at"
                      " once (default 1: one headless Chromium at a time)")
    grid.add_argument("--session-request-timeout", type=float, default=300.0,
                      help="seconds a new session may wait in the hub's queue for a free slot"
                      " (default 300)")
    grid.add_argument("--device-name", action="append", metavar="NAME",
                      help="a web slot's appium:deviceName (repeatable: one slot each;"
                      " default headless-chromium)")
    grid.add_argument("--logs", type=Path, default=Path("out/grid"),
                      help="hub.log, node.log and appium.log here (default out/grid)")


def cmd_device(args: argparse.Namespace) -> int:
    if args.device_command == "server":
        return _serve(args.port)
    if args.device_command == "grid":
        return _grid(args)
    if args.device_command == "matrix":
        return _matrix(args)
    from simulator.mobile.harness import DeviceRunRequest, run_device, summary_line
    from simulator.progress import Progress

    request = DeviceRunRequest(
        scenario=Path(args.scenario), platform=args.platform, server=args.server, out=args.out,
        model=args.model, input_size=args.input_size, backend=args.backend,
        device=_profile(args), caps_file=args.caps, app=args.app, run_id=args.run_id,
        timeout_s=args.timeout, realtime=not args.throughput, warmup_frames=args.warmup_frames,
        cpu_throttle=args.cpu_throttle, record=args.record, max_frames=args.max_frames)
    if args.min_inferences is not None:
        return _repeat(request, args.min_inferences, args.max_repeats)
    result = run_device(request, progress=Progress(f"{args.platform} playback"))
    print(summary_line(result))
    if not result.complete:
        return EXIT_INCOMPLETE
    return 0 if result.report["verdict"]["passed"] else 1


def _repeat(request, min_inferences: int, max_repeats: int) -> int:
    """``--min-inferences``: the run repeated into OUT/repeat-K until the repeats' finished
    inferences reach ``min_inferences`` (or ``max_repeats`` runs); the display FPS's mean
    and 95 % t-interval over the repeats printed (simulator/compare.py's statistics)."""
    from dataclasses import replace

    from simulator.compare import compare_reports, repeat_stats
    from simulator.errors import InputError
    from simulator.mobile.harness import run_device, summary_line
    from simulator.progress import Progress

    if min_inferences < 1 or max_repeats < 1:
        raise InputError("--min-inferences", "expected --min-inferences and --max-repeats >= 1")
    paths, inferences, code = [], 0, 0
    for k in range(1, max_repeats + 1):
        run_id = f"{request.run_id}-{k}" if request.run_id else None
        result = run_device(replace(request, out=request.out / f"repeat-{k}", run_id=run_id),
                            progress=Progress(f"{request.platform} playback {k}"))
        print(summary_line(result))
        if not result.complete:
            return EXIT_INCOMPLETE
        code = max(code, 0 if result.report["verdict"]["passed"] else 1)
        paths.append(result.path)
        inferences += int(result.report["metrics"].get("stylized_frames") or 0)
        if inferences >= min_inferences:
            break
    else:
        print(f"warning: {max_repeats} repeats hold only {inferences} inferences"
              f" (asked for {min_inferences})", file=sys.stderr)
    line = f"{len(paths)} repeats, {inferences} inferences"
    if len(paths) >= 2:
        fps = repeat_stats(compare_reports(paths))[0]["rows"][0]
        line += (f": display FPS {fps['mean']:.4g}, 95 % interval [{fps['low']:.4g},"
                 f" {fps['high']:.4g}]")
    print(line)
    return code


def _profile(args: argparse.Namespace) -> str | None:
    return args.device or ("web-chromium" if args.platform == "web" else None)


def _matrix(args: argparse.Namespace) -> int:
    from simulator import matrix
    from simulator.mobile.farm import GridExecutor, farm_plan, parse_targets
    from simulator.output_paths import prepare_output_dir
    from simulator.scenario.load import load_scenario
    from simulator.zoo.registry import resolve_model

    out = prepare_output_dir(args.out)
    targets = parse_targets(args.target, args.platform, out)
    for scenario in args.scenarios:  # every input checked before the first run
        with load_scenario(scenario):
            pass
    resolve_model(args.model)
    if args.device is not None:
        from simulator.device.catalog import load_profile

        load_profile(args.device)
    executor = GridExecutor(args.server, args.platform, targets, _shared_flags(args))
    executor.check_server()
    runs = farm_plan(args.scenarios, targets, args.model)

    def progress(record: matrix.RunRecord, done: int, total: int) -> None:
        print(f"device matrix: {done}/{total} {Path(record.run.scenario).name} on"
              f" {record.run.device}: {record.status}"
              + (f" ({record.error})" if record.error else ""), file=sys.stderr, flush=True)

    summary, paths = matrix.run_matrix(runs, out, matrix.MatrixOptions(), executor, progress)
    notes = []
    if executor.limits is not None:
        per_target, in_all = executor.limits
        notes.append(f"grid: {in_all} run(s) at once ("
                     + ", ".join(f"{name} {n}" for name, n in per_target.items()) + ")")
    return matrix.print_outcome(summary, paths, notes)


def _serve(port: int) -> int:
    from simulator.mobile.appium_server import AppiumServer

    with AppiumServer(port) as server:
        return _until_stopped(f"Appium server ready at {server.url} (drivers: fake, chromium)")


def _grid(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from simulator.mobile.appium_server import AppiumServer
    from simulator.mobile.grid import WEB_STEREOTYPE, LocalGrid
    from simulator.output_paths import prepare_output_dir

    names = args.device_name or [WEB_STEREOTYPE["appium:deviceName"]]
    logs = prepare_output_dir(args.logs, "--logs")
    appium = AppiumServer(args.appium_port, log_path=logs / "appium.log")
    grid = LocalGrid(appium.url, port=args.port, max_sessions=args.max_sessions,
                     stereotypes=[{**WEB_STEREOTYPE, "appium:deviceName": n} for n in names],
                     session_request_timeout_s=args.session_request_timeout, log_dir=logs)
    with ExitStack() as stack:  # Java and the jar checked above; the Grid stops first
        stack.enter_context(appium)
        stack.enter_context(grid)
        return _until_stopped(
            f"Selenium Grid ready at {grid.url} in {grid.start_s:.1f} s: a relay node to Appium"
            f" at {appium.url}, slots {', '.join(names)}, {args.max_sessions} session(s) at"
            f" once; logs in {logs}")


def _until_stopped(ready: str) -> int:
    """Print ``ready`` and wait for Ctrl-C or SIGTERM (the caller's ``with`` stops the
    servers)."""
    print(f"{ready}; Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    return 0
