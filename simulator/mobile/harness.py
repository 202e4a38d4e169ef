"""``arsim device run``: one scenario on a device build through an Appium server.

The run follows mobile/CONTRACT.md: start a session (installing ``--app`` if given), deliver
scenario and model, start playback, follow the app's ``ARSIM`` lines with progress, sample
performance data, and pull ``report.json`` after ``ARSIM done``. The pulled report is checked
against mobile/report.schema.json and its verdict re-evaluated with the run's budgets.

A run that does not finish still yields a report marked incomplete, with the reason: the
app died (``crashed: ...`` / ``killed: oom``, CONTRACT §5), the app reported ``ARSIM error``,
the timeout passed, or the user pressed Ctrl-C. Problems with what the user gave (a server
that does not answer, a session the server refuses, a caps file) are InputErrors: one line,
exit code 2, nothing half-written.

``--server`` may also be a Selenium Grid 4 hub relaying to Appium nodes (simulator/mobile/
grid.py). What only a Grid does ends the run with an incomplete report naming it: no slot
matches the capabilities, the request timed out in the Grid's session queue, the node was
lost mid-run (``grid: ...`` reasons). The report's ``harness.grid`` says which node ran it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator import signals
from simulator.errors import InputError
from simulator.mobile.appium_server import AppiumServer, server_status
from simulator.mobile.contract import (
    Event,
    LaunchParams,
    RunWatch,
    null_metrics,
    parse_line,
    schema_errors,
)
from simulator.mobile.grid import (
    GridError,
    check_slots,
    describe_caps,
    grid_problem,
    is_grid,
    session_slot,
)
from simulator.mobile.platforms import PLATFORMS, DeviceDied, Platform
from simulator.mobile.platforms.base import PlatformOptions
from simulator.report.json_report import SCHEMA, write_json

GENERATED_BY = "arsim device run"
SAMPLE_EVERY_S = 1.0


@dataclass
class DeviceRunRequest:
    """Everything ``arsim device run`` was asked to do."""

    scenario: Path
    platform: str
    server: str  # Appium server URL with its base path, a Grid 4 hub URL, or "auto"
    out: Path
    model: str = "toon-classic"
    input_size: int | None = None
    backend: str | None = None
    device: str | None = None  # the arsim device profile the target corresponds to
    caps_file: Path | None = None
    app: Path | None = None
    run_id: str | None = None
    timeout_s: float = 600.0
    realtime: bool = True
    warmup_frames: int = 0
    cpu_throttle: float | None = None
    record: bool = False
    max_frames: int | None = None
    poll_s: float = 0.25


@dataclass
class DeviceRunResult:
    report: dict
    path: Path
    complete: bool


def read_caps(path: Path | None) -> dict[str, Any]:
    """The capabilities JSON object in ``path`` (empty without one)."""
    if path is None:
        return {}
    from simulator.jsonfile import read_json

    caps = read_json(path, what="capabilities")
    if not isinstance(caps, dict):
        raise InputError(path, "expected a JSON object of capabilities")
    return caps


def w3c_caps(caps: Mapping[str, Any]) -> dict[str, Any]:
    """Capabilities as the Appium client sends them: names that are not W3C's get the
    ``appium:`` prefix (``deviceName`` -> ``appium:deviceName``; a Grid routes by those)."""
    from appium.options.common import AppiumOptions

    options = AppiumOptions()
    options.load_capabilities(dict(caps))
    return options.to_capabilities()


def appium_session(url: str, caps: Mapping[str, Any]) -> Any:
    """A new Appium session, directly or through a Selenium Grid 4 hub. A refusal is an
    InputError with the server's reason, except the Grid's own (no matching slot, session
    queue timeout): a GridError, which ends the run with an incomplete report."""
    from appium import webdriver
    from appium.options.common import AppiumOptions
    from selenium.common.exceptions import WebDriverException

    status = server_status(url)
    if is_grid(status):
        check_slots(url, status, w3c_caps(caps))
    options = AppiumOptions()
    options.load_capabilities(dict(caps))
    asked = time.monotonic()
    try:
        return webdriver.Remote(url, options=options)
    except WebDriverException as err:  # SessionNotCreated, or a driver that is not installed
        problem = grid_problem(str(err))
        if problem in ("no matching slot", "session queue timeout"):
            waited = time.monotonic() - asked
            raise GridError(f"grid: {problem} at {url} for {describe_caps(w3c_caps(caps))} after"
                            f" {waited:.1f} s: {_first_line(err)}") from None
        raise InputError(url, f"session refused: {_first_line(err)}") from None
    except OSError as err:
        raise InputError(url, f"Appium server unreachable ({err})") from None


def _budgets(device: str | None, expect: Mapping[str, float]) -> tuple[dict, Any]:
    from simulator.device.catalog import load_profile
    from simulator.metrics.verdict import budgets_for

    profile = None
    if device is not None:
        with contextlib.suppress(InputError):  # else a vendor model string (CONTRACT §4)
            profile = load_profile(device)
    if profile is None:  # no memory budget without a profile's RAM
        return budgets_for(0.0, expect) | {"max_memory_mb": None}, None
    budget_mb = profile.memory.budget_fraction * profile.hardware.ram_mb
    return budgets_for(budget_mb, expect), profile


class _Run:
    """One device run's state, and the report the harness writes from it when the app cannot."""

    def __init__(self, request: DeviceRunRequest, platform: Platform, scenario, budgets: dict,
                 profile, caps: dict, params: LaunchParams) -> None:
        self.request, self.platform, self.scenario = request, platform, scenario
        self.budgets, self.profile, self.caps, self.params = budgets, profile, caps, params
        self.watch = RunWatch()
        self.log_tail: deque[str] = deque(maxlen=20)  # the last log lines, for the report
        self.samples: list[dict] = []
        self.sampling_off: str | None = None  # why the server gives no samples, if it does not
        self.grid: dict | None = None  # the Grid hub and node that ran it
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def harness_block(self) -> dict:
        caps = {k: v for k, v in self.caps.items() if "key" not in k.lower()
                and "password" not in k.lower() and "token" not in k.lower()}
        block = {"platform": self.request.platform, "server": self.request.server,
                 "profile": self.profile.id if self.profile else None, "capabilities": caps,
                 "cpu_throttle": self.request.cpu_throttle,
                 "timeout_s": self.request.timeout_s, "wall_s": round(self.elapsed(), 3),
                 "samples": self.samples, "log_tail": list(self.log_tail)}
        if self.sampling_off:
            block["samples_unavailable"] = self.sampling_off
        if self.grid is not None:
            block["grid"] = self.grid
        return block

    def incomplete(self, reason: str, *, oom: bool = False) -> dict:
        """CONTRACT §5: the report the harness writes when the app could not."""
        from simulator.metrics.verdict import evaluate

        scenario, profile = self.scenario, self.profile
        oom_events = list(self.watch.oom_events)
        if oom:
            last = next((s["memory_mb"] for s in reversed(self.samples) if "memory_mb" in s), None)
            oom_events.append({"t": round(self.elapsed(), 3), "memory_mb": last, "limit_mb": None,
                               "cause": "killed", "source": "harness"})
        device = {"id": self.request.device or self.platform.name,
                  **self.platform.device_defaults(self.caps)}
        if profile is not None:
            device.update(name=profile.name, display_hz=profile.hardware.display_hz,
                          ram_mb=profile.hardware.ram_mb)
        metrics = null_metrics()
        peak = max((s["memory_mb"] for s in self.samples if "memory_mb" in s), default=None)
        metrics["memory_peak_mb"] = peak
        model, size = self._model_block()
        return {
            "schema": SCHEMA, "complete": False, "incomplete_reason": reason,
            "generated_by": GENERATED_BY, "target": self.platform.target,
            "run_id": self.params.run_id,
            "scenario": {"name": scenario.name, "path": str(scenario.source_path),
                         "frames": scenario.frame_count, "duration_s": scenario.duration_s,
                         "fps": scenario.fps, "width": scenario.camera.width,
                         "height": scenario.camera.height},
            "device": device, "backend": self.request.backend or self.platform.default_backend,
            "model": model, "input_size": size,
            "budgets": self.budgets, "metrics": metrics, "oom_events": oom_events,
            "verdict": evaluate(metrics, self.budgets, len(oom_events)),
            "progress": {"frames_done": self.watch.done_frames,
                         "frames_total": self.watch.total or scenario.frame_count},
            "harness": self.harness_block(),
        }

    def _model_block(self) -> tuple[dict, int]:
        from simulator.zoo.registry import resolve_model

        resolved = resolve_model(self.request.model)
        size = self.params.input_size or resolved.card.input.default_size
        return {"name": resolved.card.name, "flops": resolved.flops(size),
                "parameters": resolved.card.parameters}, size

    def finish_complete(self, report: dict) -> dict:
        """Check the pulled report and re-evaluate its verdict with the run's budgets."""
        from simulator.metrics.verdict import evaluate

        raw_path = self.request.out / "device-report.raw.json"
        problems = schema_errors(report)
        if problems:
            write_json(report, raw_path)
            raise InputError(raw_path, f"device report breaks mobile/report.schema.json at"
                             f" {problems[0]} ({len(problems)} problem(s))")
        self.platform.finish(report, self.params.run_id)
        budgets = {**self.budgets, **{k: v for k, v in (report.get("budgets") or {}).items()
                                      if k not in self.budgets}}
        verdict = evaluate(report["metrics"], budgets, len(report.get("oom_events") or []))
        if verdict["passed"] != report["verdict"].get("passed"):
            report["verdict_app"] = report["verdict"]
        report["budgets"], report["verdict"] = budgets, verdict
        return report


def write_reports(report: dict, out: Path) -> None:
    """``report.json``, ``report.html`` and ``junit.xml``, as ``arsim run`` writes them."""
    from simulator.report.html import write_html
    from simulator.report.junit import write_junit

    write_json(report, out / "report.json")
    write_html(report, out / "report.html")
    write_junit(report, out / "junit.xml")


def _handle(run: _Run, message: str, on_event: Callable[[Event, Any], None] | None,
            driver: Any, progress: Callable[[int, int], None] | None) -> None:
    run.log_tail.append(message)
    event = parse_line(message)
    if event is None:
        return
    run.watch.feed(event)
    if progress is not None and event.kind == "progress":
        progress(*event.values)
    if on_event is not None:
        on_event(event, driver)


def run_device(
    request: DeviceRunRequest,
    *,
    progress: Callable[[int, int], None] | None = None,
    on_event: Callable[[Event, Any], None] | None = None,
    connect: Callable[[str, Mapping[str, Any]], Any] = appium_session,
) -> DeviceRunResult:
    """Run ``request`` and write ``<out>/report.json`` (complete or not).

    ``on_event(event, driver)`` sees every contract line (tests inject faults with it);
    ``connect(url, caps)`` opens the session (tests of the phone adapters pass a stand-in).
    """
    from simulator.scenario.load import load_scenario

    if request.platform not in PLATFORMS:
        raise InputError("--platform", f"expected one of {', '.join(PLATFORMS)},"
                         f" got {request.platform!r}")
    user_caps = read_caps(request.caps_file)
    if request.app is not None and not request.app.exists():
        raise InputError(request.app, "no such app file")
    run_id = request.run_id or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with load_scenario(request.scenario) as scenario:
        params = LaunchParams(scenario=scenario.name, run_id=run_id, model=request.model,
                              input_size=request.input_size, backend=request.backend,
                              realtime=request.realtime, warmup_frames=request.warmup_frames)
        budgets, profile = _budgets(request.device, scenario.expect)
        request.out.mkdir(parents=True, exist_ok=True)
        options = PlatformOptions(app=request.app, cpu_throttle=request.cpu_throttle,
                                  record=request.record, max_frames=request.max_frames,
                                  input_size=request.input_size, budgets=budgets)
        platform = PLATFORMS[request.platform](options, request.out)
        caps = w3c_caps(platform.capabilities(user_caps))
        run = _Run(request, platform, scenario, budgets, profile, caps, params)
        server = None
        try:
            if request.server == "auto":
                server = AppiumServer(log_path=request.out / "appium.log").start()
            url = server.url if server else request.server
            try:
                driver = connect(url, caps)
            except GridError as refused:
                report = run.incomplete(refused.reason)
            except KeyboardInterrupt as exc:  # e.g. waiting in a Grid's session queue
                write_reports(run.incomplete(signals.reason(exc)), request.out)
                raise
            else:
                run.grid = session_slot(url, getattr(driver, "session_id", None) or "")
                try:
                    report = _drive(run, driver, progress, on_event)
                finally:
                    _quit(platform, driver)
        finally:
            platform.close()
            if server is not None:
                server.stop()
        path = request.out / "report.json"
        write_reports(report, request.out)
        return DeviceRunResult(report=report, path=path, complete=bool(report["complete"]))


def _drive(run: _Run, driver: Any, progress, on_event) -> dict:
    from selenium.common.exceptions import WebDriverException

    request, platform = run.request, run.platform
    try:
        model_name = platform.prepare(driver, run.scenario, request.model)
        if model_name != run.params.model:
            run.params = LaunchParams(**{**run.params.__dict__, "model": model_name})
        platform.launch(driver, run.params)
    except WebDriverException as err:
        raise InputError(request.server, f"{platform.name}: delivering or starting the run"
                         f" failed: {_first_line(err)}") from None
    run.started = time.monotonic()
    try:
        next_sample = 0.0
        while not run.watch.finished:
            for message in platform.read_messages(driver):
                _handle(run, message, on_event, driver, progress)
            if run.watch.finished:
                break
            if run.sampling_off is None and run.elapsed() >= next_sample:
                _sample(run, driver)
                next_sample = run.elapsed() + SAMPLE_EVERY_S
            platform.check_alive(driver)
            if run.elapsed() > request.timeout_s:
                return run.incomplete(f"timeout: no report after {request.timeout_s:g} s"
                                      f" ({run.watch.done_frames} frames done)")
            time.sleep(request.poll_s)
    except DeviceDied as died:
        return run.incomplete(died.reason, oom=died.oom)
    except WebDriverException as err:  # the session, the server or the Grid node went away
        if grid_problem(str(err)) == "node lost":
            node = (run.grid or {}).get("node") or "its node"
            return run.incomplete(f"grid: node lost mid-run ({node}): {_first_line(err)}")
        return run.incomplete(f"session lost: {_first_line(err)}")
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (simulator.signals)
        write_reports(run.incomplete(signals.reason(exc)), request.out)
        raise
    if run.watch.error is not None:
        return run.incomplete(f"app error: {run.watch.error}")
    report = platform.fetch_report(driver, run.params.run_id, run.watch.report_location)
    report = run.finish_complete(report)
    report["harness"] = run.harness_block()
    return report


# What a server says about a command it does not have (a cloud farm behind a Grid may not
# offer Appium's performance data): the run goes on without samples.
_UNSUPPORTED = ("unknown command", "unknown method", "not implemented", "not yet implemented",
                "unsupported operation", "not supported")


def _sample(run: _Run, driver: Any) -> None:
    from selenium.common.exceptions import WebDriverException

    try:
        sample = run.platform.sample(driver)
    except WebDriverException as err:
        if not any(word in str(err).lower() for word in _UNSUPPORTED):
            raise
        run.sampling_off = _first_line(err)
        return
    if sample:
        run.samples.append({"t": round(run.elapsed(), 3), **sample})


def _first_line(err: Exception) -> str:
    text = getattr(err, "msg", None) or str(err)
    return text.strip().splitlines()[0][:300] if text.strip() else err.__class__.__name__


def _quit(platform: Platform, driver: Any) -> None:
    with contextlib.suppress(Exception):  # the app may already be gone
        platform.stop(driver)
    with contextlib.suppress(Exception):  # a crashed session cannot always be closed
        driver.quit()


def summary_line(result: DeviceRunResult) -> str:
    """One line for the console: the verdict or why the run is incomplete."""
    report = result.report
    if not result.complete:
        return f"INCOMPLETE ({report['incomplete_reason']}): {result.path}"
    metrics = report["metrics"]
    verdict = "PASS" if report["verdict"]["passed"] else "FAIL"
    p95 = (metrics.get("latency_ms") or {}).get("p95")
    return (f"{verdict}: display {metrics['display_fps']:.1f} FPS, latency p95 "
            f"{p95 if p95 is None else round(p95, 1)} ms, jank {metrics['jank_pct']:.1f} %"
            f" -> {result.path}")
