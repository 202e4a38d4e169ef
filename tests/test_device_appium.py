"""The device harness against a real Appium 3 server (from mobile/node_modules, started here on
loopback): error paths with Appium's fake driver, and the web target end to end in Debian's
headless Chromium through Appium's Chromium driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mobile_fixtures import ORBIT, ROOT, simulator_metrics
from mobile_fixtures import needs as _needs

from simulator.cli import main
from simulator.compare import compare_reports, format_table
from simulator.device.calibrate import calibrate_profile
from simulator.device.catalog import load_profile
from simulator.mobile.appium_server import APPIUM_BIN, AppiumServer, free_port
from simulator.mobile.contract import schema_errors
from simulator.mobile.harness import DeviceRunRequest, run_device
from simulator.mobile.platforms.web import CHROMEDRIVER, CHROMIUM
from simulator.run import RunSettings, run_scenario

FAKE_APP = ROOT / "tests" / "fixtures" / "fake-app.xml"


@pytest.fixture(scope="module")
def appium(tmp_path_factory):
    _needs(APPIUM_BIN)
    log = tmp_path_factory.mktemp("appium") / "appium.log"
    with AppiumServer(log_path=log) as server:
        yield server


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["device", "run", *map(str, args)])
    return code, capsys.readouterr().err.strip()


def test_server_unreachable(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/wd/hub"
    code, err = _cli(capsys, ORBIT, "--platform", "web", "--server", url, "--out", tmp_path)
    assert code == 2 and len(err.splitlines()) == 1
    assert url in err and "unreachable" in err
    assert not (tmp_path / "report.json").exists()


def test_session_refused(appium, tmp_path, capsys):
    # no UiAutomator2 driver on this server: Appium refuses the session
    code, err = _cli(capsys, ORBIT, "--platform", "android", "--server", appium.url,
                     "--out", tmp_path)
    assert code == 2 and len(err.splitlines()) == 1
    assert "session refused" in err and "UiAutomator2" in err
    # the fake driver refuses an app that does not exist
    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps({"platformName": "Fake", "appium:automationName": "Fake",
                                "appium:app": str(tmp_path / "missing.xml")}))
    code, err = _cli(capsys, ORBIT, "--platform", "android", "--server", appium.url,
                     "--caps", caps, "--out", tmp_path)
    assert code == 2 and "session refused" in err and len(err.splitlines()) == 1


def test_driver_without_file_transfer(appium, tmp_path, capsys):
    # Appium's fake driver starts the session but cannot push files: a clear line, no report
    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps({"platformName": "Fake", "appium:automationName": "Fake",
                                "appium:app": str(FAKE_APP)}))
    code, err = _cli(capsys, ORBIT, "--platform", "android", "--server", appium.url,
                     "--caps", caps, "--out", tmp_path, "--timeout", "20")
    assert code == 2 and len(err.splitlines()) == 1
    assert "android: delivering or starting the run failed" in err
    assert not (tmp_path / "report.json").exists()


def _web(appium, out: Path, **kw) -> DeviceRunRequest:
    _needs(CHROMIUM, CHROMEDRIVER)
    options = {"max_frames": 60, "timeout_s": 120.0, **kw}
    return DeviceRunRequest(scenario=ORBIT, platform="web", server=appium.url, out=out,
                            device="web-chromium", run_id="e2e", poll_s=0.05, **options)


@pytest.mark.browser
def test_web_target_end_to_end(appium, tmp_path, capsys):
    seen = []
    result = run_device(_web(appium, tmp_path / "web", record=True),
                        progress=lambda d, t: seen.append((d, t)))
    report = result.report
    assert result.complete, report.get("incomplete_reason")
    assert schema_errors(json.loads(result.path.read_text())) == []
    assert report["target"] == "web" and report["run_id"] == "e2e"
    assert report["scenario"]["name"] == "orbit-desk" and report["backend"] == "wasm"
    assert seen and seen[-1][0] == seen[-1][1] == 60
    frames, display = report["frames"], report["display"]
    assert len(frames) == 60
    stylized = [f for f in frames if f["stylized"]]
    assert stylized and all(f["t_infer_end"] > f["t_infer_start"] >= f["t_capture"]
                            for f in stylized)
    # the page's rates are the simulator's code on the page's own timeline
    want = simulator_metrics(report)
    for key in ("display_fps", "inference_fps", "display_interval_ms", "inference_interval_ms",
                "samples"):
        assert report["metrics"][key] == pytest.approx(want[key], abs=1e-6), key
    assert report["metrics"]["samples"]["latencies"] == len(display)
    assert report["harness"]["samples"] and report["harness"]["samples"][0]["js_heap_mb"] > 0
    assert all((tmp_path / "web" / name).is_file() for name in ("report.html", "junit.xml"))
    # --record: the harness measured flicker on the displayed pictures with the simulator's metric
    flicker = report["metrics"]["flicker"]
    assert flicker["recorded_pictures"] == len(display) and 0 < flicker["warp_error"] < 0.05
    # side by side with the simulator's prediction for the same scenario
    sim = run_scenario(ORBIT, RunSettings(device="web-chromium", backend="wasm",
                                          timing_only=True), tmp_path / "sim")
    table = format_table(compare_reports([sim.paths["json"], result.path]))
    assert "simulator/web-chromium/wasm" in table and "web/web-chromium/wasm" in table
    # and the profile fitted from it (bench/mobile_calibration.py checks its predictions)
    text, summary = calibrate_profile([result.path], "web-chromium", timing="cycle")
    fitted = tmp_path / "fitted.toml"
    fitted.write_text(text)
    cycle = summary["backends"]["wasm"]["points"][0]["latency_ms"]
    assert 1000 / 60 * 0.9 < cycle < 1000  # at least one display refresh per cycle
    assert load_profile(fitted).backends["wasm"].seed_fps == summary["backends"]["wasm"]["seed_fps"]


def _kill_renderers(driver) -> int:
    """SIGKILL the tab's renderer processes, as the OS kills an app for memory."""
    data_dir = driver.capabilities["chrome"]["userDataDir"]
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            # one string: Chromium rewrites its process title with the arguments joined
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone, or not a process folder
            continue
        if (b"--type=renderer" in args and f"--user-data-dir={data_dir} ".encode() in args
                and b"--top-chrome-webui" not in args):
            pids.append(int(proc.name))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return len(pids)


@pytest.mark.browser
def test_web_target_killed_mid_run(appium, tmp_path):
    killed = []

    def kill_at_frame_20(event, driver):
        if event.kind == "progress" and event.values[0] >= 20 and not killed:
            killed.append(_kill_renderers(driver))

    result = run_device(_web(appium, tmp_path, max_frames=None), on_event=kill_at_frame_20)
    assert killed and killed[0] >= 1
    report = json.loads(result.path.read_text())
    assert not result.complete and report["complete"] is False
    assert report["incomplete_reason"] == "crashed: renderer (tab crashed)"
    assert report["progress"]["frames_done"] >= 20
    assert report["progress"]["frames_total"] == 240
    assert schema_errors(report) == []


@pytest.mark.browser
def test_web_target_timeout(appium, tmp_path, capsys):
    code, _ = _cli(capsys, ORBIT, "--platform", "web", "--server", appium.url, "--out",
                   tmp_path, "--timeout", "2")
    assert code == 3
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["incomplete_reason"].startswith("timeout: no report after 2 s")
    assert schema_errors(report) == []


@pytest.mark.browser
def test_web_target_reports_an_app_error(appium, tmp_path):
    # headless Chromium here has no GPU adapter: the page says so with ARSIM error, no report
    result = run_device(_web(appium, tmp_path, backend="webgpu"))
    assert not result.complete
    reason = result.report["incomplete_reason"]
    assert reason.startswith("app error: ") and "webgpu" in reason
    assert not (tmp_path / "web" / "arsim" / "runs" / "e2e" / "report.json").exists()


@pytest.mark.browser
@pytest.mark.parametrize(("signum", "code", "reason"), [
    (signal.SIGINT, 130, "interrupted (Ctrl-C)"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
])
def test_web_target_real_signal_writes_incomplete_report(appium, tmp_path, signum, code,
                                                          reason):
    _needs(CHROMIUM, CHROMEDRIVER)
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "device", "run", str(ORBIT), "--platform", "web",
         "--server", appium.url, "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = iter(proc.stderr.readline, "")  # bundle progress first, then playback progress
    line = next((text for text in lines if not text.startswith("web bundle")), "")
    assert line.startswith("web playback:"), line
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and reason in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["complete"] is False and report["incomplete_reason"] == reason
    assert report["progress"]["frames_done"] > 0
    junit = (tmp_path / "junit.xml").read_text()
    assert f"incomplete report: {reason}" in junit


@pytest.mark.browser
def test_repeats_until_enough_inferences(appium, tmp_path, capsys):
    code = main(["device", "run", str(ORBIT), "--platform", "web", "--server", appium.url,
                 "--max-frames", "12", "--throughput", "--min-inferences", "20",
                 "--max-repeats", "4", "--out", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    repeats = sorted(p.parent.name for p in (tmp_path / "rep").glob("repeat-*/report.json"))
    counts = [json.loads((tmp_path / "rep" / r / "report.json").read_text())["metrics"]
              ["stylized_frames"] for r in repeats]
    assert code in (0, 1) and 2 <= len(repeats) <= 4
    # it stopped at the first repeat that reached 20 inferences in all
    assert sum(counts) >= 20 and sum(counts[:-1]) < 20
    assert f"{len(repeats)} repeats, {sum(counts)} inferences: display FPS" in out
    assert "95 % interval" in out
