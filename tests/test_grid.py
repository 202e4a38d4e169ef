"""The device harness through a real Selenium Grid 4 on loopback: a hub and a relay node (the
jar from mobile/node_modules, the machine's Java) in front of the project's Appium server and
its Chromium driver. The web target end to end and beside a direct-Appium run, a device
matrix over the Grid's slots, and the Grid's own failures: no matching slot, a session queue
timeout, a node lost mid-run. One Grid serves the module (two web slots, chromium-a and
chromium-b, two sessions at once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from mobile_fixtures import ORBIT, ROOT, needs

from simulator.cli import main
from simulator.errors import InputError
from simulator.mobile.appium_server import APPIUM_BIN, AppiumServer, free_port
from simulator.mobile.contract import schema_errors
from simulator.mobile.grid import (
    JAR_DIR,
    WEB_STEREOTYPE,
    LocalGrid,
    fetch_status,
    grid_problem,
    hub_config,
    relay_node_config,
    slot_counts,
)
from simulator.mobile.harness import DeviceRunRequest, appium_session, run_device, w3c_caps
from simulator.mobile.platforms.base import PlatformOptions
from simulator.mobile.platforms.web import CHROMEDRIVER, CHROMIUM, WebPlatform


def slow_browser(test):
    """A test of the shared Grid: seconds of Java, Appium and headless Chromium."""
    return pytest.mark.slow(pytest.mark.browser(test))


SLOTS = ("chromium-a", "chromium-b")
QUEUE_TIMEOUT_S = 4  # the hub's session request timeout: short, for the queue test
FRAMES = 30  # --max-frames of the web runs: a few seconds each


@dataclass
class Farm:
    appium: AppiumServer
    grid: LocalGrid
    caps: dict[str, Path]  # a caps file per slot name, and "pixel" that no slot matches


def _java_pids() -> set[int]:
    """Live processes running the Selenium server jar."""
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if b"selenium-server" in (proc / "cmdline").read_bytes() \
                    and b"State:\tZ" not in (proc / "status").read_bytes():
                pids.add(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


@pytest.fixture(scope="module")
def farm(tmp_path_factory) -> Farm:
    needs(APPIUM_BIN, CHROMIUM, CHROMEDRIVER, JAR_DIR)
    folder = tmp_path_factory.mktemp("farm")
    caps = {}
    for name, value in [*((s, {"appium:deviceName": s}) for s in SLOTS),
                        ("pixel", {"platformName": "Android", "deviceName": "Pixel 7"})]:
        caps[name] = folder / f"{name}.json"
        caps[name].write_text(json.dumps(value))
    before = _java_pids()
    with AppiumServer(log_path=folder / "appium.log") as appium:
        grid = LocalGrid(appium.url, max_sessions=2, log_dir=folder,
                         stereotypes=[{**WEB_STEREOTYPE, "appium:deviceName": s} for s in SLOTS],
                         session_request_timeout_s=QUEUE_TIMEOUT_S)
        with grid:
            assert grid.start_s is not None and grid.start_s < 60
            ours = set(grid.pids())
            assert len(ours) == 2 and ours <= _java_pids()
            yield Farm(appium, grid, caps)
    assert not (_java_pids() - before), "java processes of the Grid left behind"


def _run(capsys, farm: Farm, out: Path, *flags: str, server: str | None = None
         ) -> tuple[int, str, str]:
    code = main(["device", "run", str(ORBIT), "--platform", "web", "--server",
                 server or farm.grid.url, "--out", str(out), "--max-frames", str(FRAMES),
                 *flags])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def _report(folder: Path) -> dict:
    report = json.loads((folder / "report.json").read_text())
    assert schema_errors(report) == []
    return report


@slow_browser
def test_web_target_through_the_grid_beside_direct_appium(farm, tmp_path, capsys):
    code, _, err = _run(capsys, farm, tmp_path / "grid", "--caps", str(farm.caps["chromium-b"]))
    assert code in (0, 1), err  # a budget may fail on a loaded host; the run is complete
    report = _report(tmp_path / "grid")
    assert report["complete"] is True and report["target"] == "web"
    assert len(report["frames"]) == FRAMES
    grid = report["harness"]["grid"]  # routed by appium:deviceName to the chromium-b slot
    assert grid["hub"] == farm.grid.url and grid["node"].startswith("http://127.0.0.1:")
    assert grid["stereotype"]["appium:deviceName"] == "chromium-b"
    assert report["harness"]["samples"]  # DevTools samples pass through the relay
    # the same scenario straight to Appium, and the two side by side
    code, _, err = _run(capsys, farm, tmp_path / "direct", server=farm.appium.url)
    assert code in (0, 1), err
    assert "grid" not in _report(tmp_path / "direct")["harness"]
    code = main(["compare", str(tmp_path / "direct" / "report.json"),
                 str(tmp_path / "grid" / "report.json"), "--names", "direct,grid"])
    table = capsys.readouterr().out
    assert code == 0
    header = next(line for line in table.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "direct", "grid"]
    fps_row = next(line for line in table.splitlines() if line.startswith("display FPS"))
    assert len(fps_row.split()) >= 4  # a value under each, the grid's with its delta


@slow_browser
def test_no_matching_slot_is_an_incomplete_report(farm, tmp_path, capsys):
    code, out, err = _run(capsys, farm, tmp_path, "--caps", str(farm.caps["pixel"]))
    assert code == 3 and "Traceback" not in err
    assert len(out.splitlines()) == 1 and out.startswith("INCOMPLETE (grid: no matching slot")
    report = _report(tmp_path)
    reason = report["incomplete_reason"]
    assert reason.startswith(f"grid: no matching slot at {farm.grid.url}")
    assert "platformName=Android" in reason and "appium:deviceName=Pixel 7" in reason
    assert "chromium-a" in reason  # what the Grid offers instead
    assert report["progress"]["frames_done"] == 0
    assert "incomplete report: grid: no matching slot" in (tmp_path / "junit.xml").read_text()


@slow_browser
def test_slot_matching_agrees_with_the_grid(farm):
    """What slot_counts calls unmatched the hub refuses too, with the message grid_problem
    reads as "no matching slot"; what it matches (the e2e run) the hub routes."""
    web = w3c_caps(WebPlatform(PlatformOptions(), Path()).capabilities({}))
    status = fetch_status(farm.grid.url)
    assert slot_counts(status, web) == (2, 2)
    assert slot_counts(status, {**web, "appium:deviceName": "chromium-a"}) == (1, 1)
    for caps in ({**web, "appium:deviceName": "Pixel 7"}, {**web, "platformName": "iOS"},
                 {**web, "browserName": "firefox"}):
        assert slot_counts(status, caps) == (0, 0)
        body = json.dumps({"capabilities": {"alwaysMatch": caps}}).encode()
        request = urllib.request.Request(
            farm.grid.url + "/session", body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        message = json.loads(refused.value.read())["value"]["message"]
        assert grid_problem(message) == "no matching slot", message


@slow_browser
def test_session_queue_timeout_is_an_incomplete_report(farm, tmp_path, capsys):
    # another client holds the only chromium-a slot: our request waits in the hub's queue
    web = WebPlatform(PlatformOptions(), tmp_path).capabilities({"appium:deviceName":
                                                                 "chromium-a"})
    holder = appium_session(farm.grid.url, web)
    try:
        started = time.monotonic()
        code, out, err = _run(capsys, farm, tmp_path / "run", "--caps",
                              str(farm.caps["chromium-a"]))
        waited = time.monotonic() - started
    finally:
        holder.quit()
    assert code == 3 and "Traceback" not in err
    assert len(out.splitlines()) == 1 and "grid: session queue timeout" in out
    assert QUEUE_TIMEOUT_S <= waited < QUEUE_TIMEOUT_S + 20
    reason = _report(tmp_path / "run")["incomplete_reason"]
    assert reason.startswith(f"grid: session queue timeout at {farm.grid.url}")
    assert "appium:deviceName=chromium-a" in reason and "New session request timed out" in reason


def _end_appium_session(url: str, session_id: str) -> None:
    """Close what a lost node left on the Appium server (its browser still playing): a relay
    node's sessions keep the id Appium gave them."""
    request = urllib.request.Request(f"{url}/session/{session_id}", method="DELETE")
    urllib.request.urlopen(request, timeout=30).close()


@slow_browser
def test_node_lost_mid_run_is_an_incomplete_report(farm, tmp_path):
    killed = []

    def kill_node_at_frame_10(event, driver):
        if event.kind == "progress" and event.values[0] >= 10 and not killed:
            killed.append(driver.session_id)
            os.killpg(farm.grid.node.pid, signal.SIGKILL)

    request = DeviceRunRequest(scenario=ORBIT, platform="web", server=farm.grid.url,
                               out=tmp_path, device="web-chromium", max_frames=120,
                               timeout_s=120.0, poll_s=0.05)
    try:
        result = run_device(request, on_event=kill_node_at_frame_10)
    finally:
        if killed:
            _end_appium_session(farm.appium.url, killed[0])
        farm.grid.start_node()  # the next tests get their node back
        farm.grid.wait_ready()
    assert killed and not result.complete
    report = _report(tmp_path)
    node = report["harness"]["grid"]["node"]
    assert report["incomplete_reason"].startswith(f"grid: node lost mid-run ({node}): ")
    assert "Unable to execute request for an existing session" in report["incomplete_reason"]
    assert 10 <= report["progress"]["frames_done"] < 120


@slow_browser
def test_device_matrix_over_the_grid_slots(farm, tmp_path, capsys):
    out = tmp_path / "matrix"
    code = main(["device", "matrix", str(ORBIT), "--server", farm.grid.url, "--platform", "web",
                 "--target", f"a={farm.caps['chromium-a']}",
                 "--target", f"b={farm.caps['chromium-b']}",
                 "--target", f"pixel={farm.caps['pixel']}",
                 "--max-frames", str(FRAMES), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 3  # pixel matches no slot: incomplete, whatever a and b's budgets say
    summary = json.loads((out / "summary.json").read_text())
    runs = {run["device"]: run for run in summary["runs"]}
    assert runs["pixel"]["status"] == "incomplete"
    assert runs["pixel"]["error"].startswith("grid: no matching slot")
    for name, slot in (("a", "chromium-a"), ("b", "chromium-b")):
        assert runs[name]["status"] in ("passed", "failed")  # complete, budgets aside
        report = _report(out / "orbit-desk" / name)  # as `arsim device run --out` writes it
        assert report["complete"] and report["harness"]["grid"]["stereotype"][
            "appium:deviceName"] == slot
        assert (out / "orbit-desk" / name / "junit.xml").is_file()
    # the Grid had two free matching slots: a and b ran at the same time
    assert "grid: 2 run(s) at once (a 1, b 1, pixel 0)" in printed
    assert summary["wall_s"] < 0.8 * (runs["a"]["wall_s"] + runs["b"]["wall_s"])
    suites = ET.parse(out / "junit.xml").getroot()
    assert len(suites.findall("testsuite")) == 3


@pytest.mark.slow
def test_grid_command_stops_cleanly_on_sigterm(tmp_path):
    needs(APPIUM_BIN, JAR_DIR)
    before = _java_pids()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "device", "grid", "--port", str(free_port()),
         "--appium-port", str(free_port()), "--logs", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("Selenium Grid ready at http://127.0.0.1:"), proc.stderr.read()
    children = _java_pids() - before
    assert len(children) == 2  # the hub and the relay node
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err
    assert not (_java_pids() & children)
    assert {"hub.log", "node.log", "appium.log"} <= {p.name for p in tmp_path.iterdir()}


def test_missing_java_is_one_line(tmp_path, monkeypatch, capsys):
    needs(JAR_DIR)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    with pytest.raises(InputError, match="java: not found: Selenium Grid needs Java 11"):
        LocalGrid("http://127.0.0.1:1/wd/hub")
    assert main(["device", "grid", "--port", str(free_port()), "--logs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "java: not found" in err


def test_grid_configs_are_toml_with_json_stereotypes():
    hub = tomllib.loads(hub_config(4444, (4442, 4443), 12.4))
    assert hub["server"] == {"host": "127.0.0.1", "port": 4444}
    assert hub["events"]["publish"] == "tcp://127.0.0.1:4442"
    assert hub["sessionqueue"]["session-request-timeout"] == 12
    assert hub["distributor"]["reject-unsupported-caps"] is True
    odd = {**WEB_STEREOTYPE, "appium:deviceName": 'a "quoted" \\ name'}
    node = tomllib.loads(relay_node_config(5555, (4442, 4443), "http://127.0.0.1:4723/wd/hub",
                                           [WEB_STEREOTYPE, odd], 2))
    assert node["relay"]["url"] == "http://127.0.0.1:4723/wd/hub"
    assert node["node"]["max-sessions"] == 2 and node["node"]["detect-drivers"] is False
    configs = node["relay"]["configs"]  # slot count, stereotype, slot count, stereotype
    assert configs[0::2] == ["1", "1"]
    assert [json.loads(c) for c in configs[1::2]] == [WEB_STEREOTYPE, odd]


@pytest.mark.parametrize(("target", "problem"), [
    ("pixel", "--target: expected NAME=caps.json, got 'pixel'"),
    ("pixel=", "--target: expected NAME=caps.json"),
    ("../up={caps}", "--target ../up="),
    ("missing={missing}", "no such capabilities file"),
    ("a={caps}", "--target: target name 'a' given twice"),
])
def test_bad_device_matrix_targets_are_one_line(tmp_path, capsys, target, problem):
    caps = tmp_path / "caps.json"
    caps.write_text('{"appium:deviceName": "Pixel 7"}')
    target = target.format(caps=caps, missing=tmp_path / "missing.json")
    code = main(["device", "matrix", str(ORBIT), "--server", "http://127.0.0.1:1",
                 "--platform", "android", "--target", f"a={caps}", "--target", target,
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and problem in err, err


def test_device_matrix_needs_a_reachable_hub(tmp_path, capsys):
    caps = tmp_path / "caps.json"
    caps.write_text("{}")
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["device", "matrix", str(ORBIT), "--server", url, "--platform", "android",
                 "--target", f"a={caps}", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and url in err and "unreachable" in err
    assert not (tmp_path / "out" / "summary.json").exists()
