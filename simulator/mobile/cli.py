"""``arsim device run`` (a scenario on a device build through Appium) and ``arsim device
server`` (a local Appium server from the project's npm install)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_INCOMPLETE = 3


def add_device_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("device", help="the mobile bench: run scenarios on device builds (Appium)")
    device_sub = p.add_subparsers(dest="device_command", required=True,
                                  parser_class=type(p))
    run = device_sub.add_parser("run", help="play a scenario on an app build, pull its report")
    run.add_argument("scenario", help="scenario folder or .zip")
    run.add_argument("--platform", required=True, choices=("android", "ios", "web"))
    run.add_argument("--server", default="auto", help="Appium server URL with base path, e.g."
                     " http://127.0.0.1:4723/wd/hub; 'auto' starts a local one (default)")
    run.add_argument("--caps", type=Path, help="JSON file of extra capabilities (override ours)")
    run.add_argument("--app", type=Path, help=".apk / .app / .ipa to install first")
    run.add_argument("--model", default="toon-classic", help="zoo model name")
    run.add_argument("--input-size", type=int, help="model input size (default: the model's)")
    run.add_argument("--backend", help="app backend (cpu, gpu-fp16, nnapi, coreml, ...)")
    run.add_argument("--device", help="the arsim device profile this device corresponds to"
                     " (budgets, labels); web default: web-chromium")
    run.add_argument("--run-id", help="names the run on the device (default: a timestamp)")
    run.add_argument("--out", type=Path, default=Path("out/device"), help="output folder")
    run.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the"
                     " report (default 600); after it the report is marked incomplete")
    run.add_argument("--throughput", action="store_true", help="frames as fast as possible"
                     " (arsim.realtime=false), for calibration")
    run.add_argument("--warmup-frames", type=int, default=0)
    run.add_argument("--cpu-throttle", type=float, help="web: DevTools CPU slow-down factor"
                     " (4 = a device 4x slower than this host)")
    run.add_argument("--record", action="store_true", help="web: record displayed pictures so"
                     " the harness measures flicker")
    run.add_argument("--max-frames", type=int, help="web: play only the first N frames")
    server = device_sub.add_parser("server", help="run a local Appium server until Ctrl-C")
    server.add_argument("--port", type=int, default=4723)


def cmd_device(args: argparse.Namespace) -> int:
    if args.device_command == "server":
        return _serve(args.port)
    from simulator.mobile.harness import DeviceRunRequest, run_device, summary_line
    from simulator.progress import Progress

    device = args.device or ("web-chromium" if args.platform == "web" else None)
    request = DeviceRunRequest(
        scenario=Path(args.scenario), platform=args.platform, server=args.server, out=args.out,
        model=args.model, input_size=args.input_size, backend=args.backend, device=device,
        caps_file=args.caps, app=args.app, run_id=args.run_id, timeout_s=args.timeout,
        realtime=not args.throughput, warmup_frames=args.warmup_frames,
        cpu_throttle=args.cpu_throttle, record=args.record, max_frames=args.max_frames)
    result = run_device(request, progress=Progress(f"{args.platform} playback"))
    print(summary_line(result))
    if not result.complete:
        return EXIT_INCOMPLETE
    return 0 if result.report["verdict"]["passed"] else 1


def _serve(port: int) -> int:
    from simulator.mobile.appium_server import AppiumServer

    with AppiumServer(port) as server:
        print(f"Appium server ready at {server.url} (drivers: fake, chromium); Ctrl-C stops it",
              flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
    return 0
