"""Does a profile fitted on device runs predict *other* runs? (``make bench``; issues 7, 15)

The web target stands in for a family of phones: the page in headless Chromium through a
real Appium server, slowed down by DevTools CPU throttling x2, x4 and x6 (three "phones").
For each phone:

1. run the calibration scenario (orbit-desk) with four workloads of distinct FLOP counts
   (two models x two input sizes), ``--repeats`` times each;
2. run a *different* scenario (pan-fast) with the same workloads *and* one held out of the
   fit (an input size the fit never saw), as many times; steps 1 and 2 are interleaved in
   rounds (``measure``) so that the host's drifting speed falls on both alike;
3. ``arsim calibrate --timing cycle`` fits the phone's profile from the step-1 reports
   (relative least squares, a stray run left out, standard errors, residuals;
   ``web-x<N>-fitted.toml``);
4. replay pan-fast in the simulator on the fitted profile and compare its predicted display
   FPS (with the interval the calibration's uncertainty gives) with the measured median and
   its 95 % t-interval over the repeats. Goal: within +-10 % of the measured median.

Display FPS comes from display timestamps (simulator/metrics/timing.py), not counts.

Writes ``<out>/mobile_calibration.json`` and ``.md``, the fitted profiles
``<out>/web-x<N>-fitted.toml`` and a side-by-side ``<out>/mobile_compare.html``; with
``--history FILE`` the run's table is also appended to FILE as its next numbered section.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from simulator.compare import compare_reports, repeat_stats, write_compare_html
from simulator.device.calibrate import calibrate_profile
from simulator.errors import OutputError
from simulator.mobile.appium_server import AppiumServer
from simulator.mobile.harness import DeviceRunRequest, run_device
from simulator.output_paths import prepare_output_dir, prepare_output_file, writing
from simulator.progress import Progress
from simulator.report.json_report import write_atomic
from simulator.run import RunSettings, run_scenario
from simulator.signals import exit_code, reason, terminate_as_interrupt

ROOT = Path(__file__).resolve().parents[1]
CALIBRATE_ON = ROOT / "scenarios" / "orbit-desk"
PREDICT = ROOT / "scenarios" / "pan-fast"
# (model, input size): four distinct FLOP counts to fit, one size the fit never sees
FIT = (("toon-classic", 192), ("toon-classic", 256), ("ar-lite", 192), ("ar-lite", 256))
HELD_OUT = (("ar-lite", 224),)
GOAL_PCT = 10.0
WARMUP_FRAMES = 2  # the first WASM inferences are slower (allocation, JIT): as an app warms up


REUSE = False  # --reuse: keep the web runs a previous (interrupted) bench left


def web_run(server: AppiumServer, scenario: Path, model: str, size: int, throttle: float,
            out: Path) -> Path:
    if REUSE and (out / "report.json").is_file():
        return out / "report.json"
    request = DeviceRunRequest(scenario=scenario, platform="web", server=server.url, out=out,
                               model=model, input_size=size, device="web-chromium",
                               cpu_throttle=throttle, run_id=out.name, timeout_s=300.0,
                               warmup_frames=WARMUP_FRAMES)
    result = run_device(request, progress=Progress(f"web x{throttle:g} {scenario.name} "
                                                   f"{model}@{size}"))
    if not result.complete:  # a failure of the bench, not a missed goal: exit 3, never 1
        print(f"mobile_calibration: web run {out} incomplete:"
              f" {result.report['incomplete_reason']}", file=sys.stderr)
        raise SystemExit(3)
    shutil.rmtree(out / "web", ignore_errors=True)  # the served bundle; report.json stays
    return result.path


def measure(server: AppiumServer, throttles: list[float], repeats: int,
            out: Path) -> dict[float, tuple[list[Path], dict[tuple[str, int], list[Path]]]]:
    """Every web run of the bench, in rounds: a round runs each phone's workloads once, a
    workload's fit run and check run back to back. The host's speed drifts over minutes
    (each phone's runs take several), so running all fits first and all checks after would
    put the drift between the fit and what it predicts; interleaved, both see it alike.
    Returns per phone its fit reports and its check reports per workload."""
    runs = {t: ([], {w: [] for w in (*FIT, *HELD_OUT)}) for t in throttles}
    plan = [(i, throttle, workload, fit) for i in range(1, repeats + 1) for throttle in throttles
            for workload in (*FIT, *HELD_OUT) for fit in (True, False)
            if not fit or workload in FIT]
    for k, (i, throttle, (model, size), fit) in enumerate(plan, 1):
        name = f"{'fit' if fit else 'check'}-{model}-{size}-{i}"
        print(f"[{k}/{len(plan)}] x{throttle:g} {name}", file=sys.stderr, flush=True)
        path = web_run(server, CALIBRATE_ON if fit else PREDICT, model, size, throttle,
                       out / "mobile-runs" / f"x{throttle:g}" / name)
        fits, checks = runs[throttle]
        if fit:
            fits.append(path)
        else:
            checks[(model, size)].append(path)
    return runs


def _why(predicted: float, median: float, spread: dict) -> str:
    """What the intervals say about a prediction that missed the goal."""
    low, high = spread["low"], spread["high"]
    if low is None:
        return "one run: no interval"
    if low <= predicted <= high:
        return "the prediction lies inside the measured 95 % interval: the runs scatter more" \
               " than the goal"
    if (high - low) / 2 > GOAL_PCT / 100 * median:
        return "the measured 95 % interval is wider than the goal"
    return "outside the measured interval: a model error"


def phone(throttle: float, fit_reports: list[Path],
          checks: dict[tuple[str, int], list[Path]], out: Path) -> dict:
    """Fit one throttling level's profile and check its predictions."""
    work = out / "mobile-runs" / f"x{throttle:g}"
    text, summary = calibrate_profile(fit_reports, "web-chromium", timing="cycle")
    fitted = out / f"web-x{throttle:g}-fitted.toml"
    with writing(fitted):
        write_atomic(fitted, text.encode("utf-8"))
    rows = []
    for (model, size), measured_paths in checks.items():
        settings = RunSettings(device=str(fitted), backend="wasm", model=model,
                               input_size=size, timing_only=True)
        sim = run_scenario(PREDICT, settings, work / f"sim-{model}-{size}")
        sim.raise_if_interrupted()
        measured = [json.loads(p.read_text())["metrics"]["display_fps"] for p in measured_paths]
        median = statistics.median(measured)
        predicted = sim.report["metrics"]["display_fps"]
        spread = repeat_stats(compare_reports(measured_paths))[0]["rows"][0] \
            if len(measured_paths) >= 2 else {"low": None, "high": None}
        error = 100.0 * (predicted - median) / median
        rows.append({
            "throttle": throttle, "model": model, "input_size": size,
            "held_out": (model, size) in HELD_OUT,
            "measured_fps": round(median, 3), "measured_runs": [round(r, 3) for r in measured],
            "measured_interval": [spread["low"], spread["high"]],
            "predicted_fps": round(predicted, 3),
            "predicted_interval": (sim.report.get("prediction") or {}).get("display_fps"),
            "error_pct": round(error, 1), "within_goal": abs(error) <= GOAL_PCT,
            "why": None if abs(error) <= GOAL_PCT else _why(predicted, median, spread),
            "simulator_report": str(sim.paths["json"].relative_to(out)),
            "web_reports": [str(p.relative_to(out)) for p in measured_paths]})
        if throttle == 4 and (model, size) == HELD_OUT[0]:
            write_compare_html(compare_reports([sim.paths["json"], *measured_paths]),
                               out / "mobile_compare.html")
    fit = summary["backends"]["wasm"]
    return {"throttle": throttle, "profile": fitted.name, "rows": rows,
            "fit": {k: v for k, v in fit.items() if k != "points"} | {
                "points": [{"gflops": p["flops"] / 1e9, "cycle_ms": round(p["latency_ms"], 2),
                            "residual_ms": round(p["residual_ms"], 2),
                            "left_out": p["left_out"]} for p in fit["points"]]}}


def _interval(values: list | None) -> str:
    if not values or values[0] is None:
        return "–"
    return f"[{values[0]:.2f}, {values[1]:.2f}]"


def result_table(result: dict) -> list[str]:
    """The rows of a bench result as a markdown table, each phone's left-out fit runs, and
    the count within the goal."""
    rows = [row for p in result["phones"] for row in p["rows"]]
    lines = ["| phone | workload | measured FPS (median, 95 % interval, runs) |"
             " predicted FPS (95 % from the fit) | error |", "|---|---|---|---|---|"]
    for r in rows:
        held = " (held out)" if r["held_out"] else ""
        lines.append(f"| x{r['throttle']:g} | {r['model']}@{r['input_size']}{held} |"
                     f" {r['measured_fps']:.2f} {_interval(r['measured_interval'])}"
                     f" ({', '.join(f'{x:.2f}' for x in r['measured_runs'])}) |"
                     f" {r['predicted_fps']:.2f} {_interval(r['predicted_interval'])} |"
                     f" {r['error_pct']:+.1f} %" + (f" ({r['why']})" if r["why"] else "") + " |")
    for p in result["phones"]:
        lines += [f"- x{p['throttle']:g} fit: {w}" for w in p["fit"]["warnings"]]
    within = sum(r["within_goal"] for r in rows)
    return [*lines, "", f"{within} of {len(rows)} predictions within ±{result['goal_pct']:g} %."]


HISTORY_HEAD = """# Runs of the web-phone fidelity check

Each run of `bench/mobile_calibration.py --history <this file>` (as `make bench` runs it)
appends its section, newest last: the commit, every row with the measured median, its 95 %
t-interval and the runs, and the prediction with the interval from the fit's standard errors.
Goal: every prediction within ±10 % of the measured median.
"""


def _commit() -> str:
    """The checkout's commit, ``+changes`` when the work tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()
    try:
        return git("rev-parse", "--short", "HEAD") + ("+changes" if git(
            "status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"


def append_history(path: Path, result: dict) -> int:
    """Append ``result`` to the history file ``path`` as its next ``## Run N`` section
    (the file is started when missing); returns N."""
    text = path.read_text(encoding="utf-8") if path.is_file() else HISTORY_HEAD
    number = 1 + sum(1 for line in text.splitlines() if line.startswith("## Run "))
    rows = [row for p in result["phones"] for row in p["rows"]]
    within = sum(r["within_goal"] for r in rows)
    worst = max(rows, key=lambda r: abs(r["error_pct"]))
    heading = (f"## Run {number}: {within} of {len(rows)} within ±{result['goal_pct']:g} %"
               f" (largest error {worst['error_pct']:+.1f} %, x{worst['throttle']:g}"
               f" {worst['model']}@{worst['input_size']}); {result['generated']},"
               f" {result['wall_s']:.0f} s, commit {result.get('commit', 'unknown')},"
               f" {result['repeats']} runs per workload")
    section = "\n".join([heading, "", *result_table(result)])
    with writing(path):
        write_atomic(path, (text.rstrip("\n") + "\n\n" + section + "\n").encode("utf-8"))
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--throttles", default="2,4,6",
                        help="DevTools CPU slow-downs, one web phone each (default 2,4,6)")
    parser.add_argument("--repeats", type=int, default=5, help="web runs per workload")
    parser.add_argument("--history", type=Path,
                        help="append this run's table to this markdown file (make bench:"
                             " bench/mobile_calibration_runs.md), numbered after the runs"
                             " already there")
    parser.add_argument("--reuse", action="store_true",
                        help="keep web runs whose report a previous bench left in OUT")
    args = parser.parse_args(argv)
    global REUSE
    REUSE = args.reuse
    try:
        throttles = [float(t) for t in args.throttles.split(",")]
    except ValueError:
        parser.error(f"--throttles: expected numbers separated by commas, got {args.throttles!r}")
    if args.repeats < 2 or any(t < 1 for t in throttles):  # parser.error: one line, exit 2
        parser.error("--repeats must be at least 2 (the measured interval needs two runs) and"
                     " every --throttles value at least 1")
    # an unwritable output is found now, not after half an hour of runs
    prepare_output_dir(args.out)
    if args.history:
        prepare_output_file(args.history, "--history")
    started, commit = time.monotonic(), _commit()  # the code measured, not edits made meanwhile
    with AppiumServer(log_path=args.out / "mobile-runs" / "appium.log") as server:
        runs = measure(server, throttles, args.repeats, args.out)
    phones = [phone(t, *runs[t], args.out) for t in throttles]
    rows = [row for p in phones for row in p["rows"]]
    result = {
        "generated": _dt.datetime.now().isoformat(timespec="seconds"), "commit": commit,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "repeats": args.repeats, "calibrated_on": CALIBRATE_ON.name, "predicted": PREDICT.name,
        "fit_workloads": [list(w) for w in FIT], "held_out": [list(w) for w in HELD_OUT],
        "phones": phones, "goal_pct": GOAL_PCT, "wall_s": round(time.monotonic() - started),
        "all_within_goal": all(r["within_goal"] for r in rows),
    }
    with writing(args.out / "mobile_calibration.json"):
        write_atomic(args.out / "mobile_calibration.json",
                     (json.dumps(result, indent=2) + "\n").encode("utf-8"))

    lines = [f"# Web phones: calibrate on {CALIBRATE_ON.name}, predict {PREDICT.name}", "",
             f"{result['generated']}, {result['wall_s']:.0f} s; fit and check runs interleaved"
             " in rounds.", "",
             f"DevTools CPU throttling x{', x'.join(f'{t:g}' for t in throttles)}; each fitted"
             f" with `arsim calibrate --timing cycle` on {len(FIT)} workloads x {args.repeats}"
             " runs; display FPS from display timestamps.", "", *result_table(result)]
    with writing(args.out / "mobile_calibration.md"):
        write_atomic(args.out / "mobile_calibration.md",
                     ("\n".join(lines) + "\n").encode("utf-8"))
    print("\n".join(lines))
    if args.history:
        append_history(args.history, result)
        print(f"appended to {args.history}", file=sys.stderr)
    return 0 if result["all_within_goal"] else 1


if __name__ == "__main__":
    with terminate_as_interrupt():  # SIGTERM too stops Appium and the browser it started
        try:
            sys.exit(main())
        except OutputError as failed:  # one line and exit 4, never 1 (a missed goal)
            print(f"mobile_calibration: error: {failed}", file=sys.stderr)
            sys.exit(4)
        except KeyboardInterrupt as stop:
            print(f"mobile_calibration: {reason(stop)}; the web runs done so far stay"
                  " (--reuse keeps them)", file=sys.stderr)
            sys.exit(exit_code(stop))
