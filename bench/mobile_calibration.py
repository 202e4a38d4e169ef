"""Does a profile fitted on device runs predict *other* runs? (``make bench``; issue 7)

The web target stands in for a phone: real runs of the page in headless Chromium through a
real Appium server, slowed down by DevTools CPU throttling. Steps:

1. run the calibration scenario (orbit-desk) on the web target, ``--repeats`` times per
   model (two models of very different FLOPs, so overhead and throughput are both fitted);
2. ``arsim calibrate --timing cycle`` fits the web-chromium profile from those reports;
3. run a *different* scenario (pan-fast) on the web target, same models and throttling, as
   many times;
4. replay pan-fast in the simulator with the fitted profile and compare its predicted
   display FPS with the median measured one (goal: within +-15 %).

Repeats matter: the page starts its next inference only after the display refresh that
shows the last picture (one thread), so a cycle near a multiple of the refresh interval
lands on one side or the other from run to run (toon-classic at x4: 4 or 5 refreshes).

Writes ``<out>/mobile_calibration.json`` and ``.md``, the fitted profile
``<out>/web-chromium-fitted.toml`` and a side-by-side ``<out>/mobile_compare.html``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shutil
import statistics
import sys
from pathlib import Path

from simulator.compare import compare_reports, write_compare_html
from simulator.device.calibrate import calibrate_profile
from simulator.mobile.appium_server import AppiumServer
from simulator.mobile.harness import DeviceRunRequest, run_device
from simulator.progress import Progress
from simulator.report.json_report import write_atomic
from simulator.run import RunSettings, run_scenario

ROOT = Path(__file__).resolve().parents[1]
CALIBRATE_ON = ROOT / "scenarios" / "orbit-desk"
PREDICT = ROOT / "scenarios" / "pan-fast"
MODELS = ("toon-classic", "ar-lite")
GOAL_PCT = 15.0
WARMUP_FRAMES = 2  # the first WASM inferences are slower (allocation, JIT): as an app warms up


def web_run(server: AppiumServer, scenario: Path, model: str, throttle: float, out: Path) -> Path:
    request = DeviceRunRequest(scenario=scenario, platform="web", server=server.url, out=out,
                               model=model, device="web-chromium", cpu_throttle=throttle,
                               run_id=out.name, timeout_s=300.0,
                               warmup_frames=WARMUP_FRAMES)
    result = run_device(request, progress=Progress(f"web {scenario.name} {model}"))
    if not result.complete:
        raise SystemExit(f"web run {scenario.name}/{model} incomplete: "
                         f"{result.report['incomplete_reason']}")
    shutil.rmtree(out / "web")  # the served bundle (JPEG frames); report.json stays
    return result.path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--throttle", type=float, default=4.0, help="DevTools CPU slow-down")
    parser.add_argument("--repeats", type=int, default=3, help="web runs per scenario and model")
    args = parser.parse_args(argv)
    work = args.out / "mobile-runs"
    repeats = range(1, args.repeats + 1)
    with AppiumServer(log_path=work / "appium.log") as server:
        fit_reports = [web_run(server, CALIBRATE_ON, m, args.throttle, work / f"fit-{m}-{i}")
                       for m in MODELS for i in repeats]
        check_reports = {m: [web_run(server, PREDICT, m, args.throttle, work / f"check-{m}-{i}")
                             for i in repeats] for m in MODELS}
    text, summary = calibrate_profile(fit_reports, "web-chromium", timing="cycle")
    fitted = args.out / "web-chromium-fitted.toml"
    write_atomic(fitted, text.encode("utf-8"))

    rows = []
    for model, measured_paths in check_reports.items():
        settings = RunSettings(device=str(fitted), backend="wasm", model=model, timing_only=True)
        sim = run_scenario(PREDICT, settings, work / f"sim-{model}")
        runs = [json.loads(p.read_text())["metrics"]["display_fps"] for p in measured_paths]
        measured = statistics.median(runs)
        predicted = sim.report["metrics"]["display_fps"]
        error = 100.0 * (predicted - measured) / measured
        rows.append({"model": model, "measured_fps": round(measured, 2),
                     "measured_runs": [round(r, 2) for r in runs],
                     "predicted_fps": round(predicted, 2), "error_pct": round(error, 1),
                     "within_goal": abs(error) <= GOAL_PCT,
                     "simulator_report": str(sim.paths["json"].relative_to(args.out)),
                     "web_reports": [str(p.relative_to(args.out)) for p in measured_paths]})
        if model == MODELS[-1]:
            write_compare_html(compare_reports([sim.paths["json"], *measured_paths]),
                               args.out / "mobile_compare.html")

    result = {
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "throttle": args.throttle, "repeats": args.repeats,
        "calibrated_on": CALIBRATE_ON.name, "predicted": PREDICT.name,
        "fit": {name: {k: v for k, v in fit.items() if k != "points"} | {
            "points": [{"gflops": p["flops"] / 1e9, "cycle_ms": round(p["latency_ms"], 2)}
                       for p in fit["points"]]} for name, fit in summary["backends"].items()},
        "rows": rows, "goal_pct": GOAL_PCT,
    }
    write_atomic(args.out / "mobile_calibration.json",
                 (json.dumps(result, indent=2) + "\n").encode("utf-8"))
    lines = [f"# Web target: calibrate on {CALIBRATE_ON.name}, predict {PREDICT.name}",
             "", f"DevTools CPU throttling x{args.throttle:g}; profile fitted with"
             f" `arsim calibrate --timing cycle` -> `{fitted.name}`.", "",
             "| model | measured FPS (web, median) | runs | predicted FPS (simulator) | error |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['measured_fps']:.2f} |"
              f" {', '.join(f'{x:.2f}' for x in r['measured_runs'])} |"
              f" {r['predicted_fps']:.2f} | {r['error_pct']:+.1f} % |" for r in rows]
    write_atomic(args.out / "mobile_calibration.md", ("\n".join(lines) + "\n").encode("utf-8"))
    print("\n".join(lines))
    return 0 if all(r["within_goal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
