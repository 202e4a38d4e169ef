"""The device harness against phones: Android (UiAutomator2) and iOS (XCUITest) adapters.

No phone can be reached from this machine, so ``FakePhone`` stands in for one at the Appium
client boundary: it answers the commands the adapters send (push/pull files, start the app,
logs, app state, performance data) the way UiAutomator2 / XCUITest answer them, and plays a
scripted app: one that finishes, one killed by lmkd / jetsam, one that crashes, one that
reports an error. Everything else (contract lines, timeout, incomplete reports, schema check,
verdict) is the real harness.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator.errors import InputError
from simulator.mobile.contract import LaunchParams, parse_line, schema_errors
from simulator.mobile.harness import DeviceRunRequest, run_device
from simulator.mobile.platforms.android import death_reason, pss_mb
from simulator.mobile.platforms.ios import crash_reason, launch_arguments

ROOT = Path(__file__).resolve().parents[1]
VECTOR = json.loads((ROOT / "mobile/test-vectors/minimal-device-report.json").read_text())
PACKAGE = "dev.arsim.bench"


class FakePhone:
    """A stand-in for an Appium session on a phone (see the module docstring)."""

    def __init__(self, platform: str, behaviour: str, frames: int = 6) -> None:
        self.platform, self.behaviour, self.frames = platform, behaviour, frames
        self.files: dict[str, bytes] = {}
        self.launched: dict | None = None
        self.pending: list[str] = []
        self.crash_logs: list[str] = []
        self.state = 1  # not running
        self.polls = 0
        self.quit_called = False

    # --- the Appium client API the adapters use -------------------------------------
    def push_file(self, path: str, data: str) -> None:
        self.files[path] = base64.b64decode(data)

    def pull_file(self, path: str) -> str:
        return base64.b64encode(self.files[path]).decode()

    def execute_script(self, script: str, args: dict) -> None:
        assert script in ("mobile: startActivity", "mobile: launchApp")
        self.launched = {"script": script, **args}
        self.state = 4
        self.pending.append(f"ARSIM start r1 {self.frames}")

    def get_log(self, kind: str) -> list[dict]:
        if kind == "crashlog":
            return [{"message": text} for text in self.crash_logs]
        assert kind == ("logcat" if self.platform == "android" else "syslog")
        if self.launched is not None and self.state == 4:
            self._advance()
        lines, self.pending = self.pending, []
        prefix = "11-24 13:00:00.000  4242  4242 I ARSIM   : " if kind == "logcat" else ""
        return [{"message": prefix + line if line.startswith("ARSIM") else line}
                for line in lines]

    def query_app_state(self, app_id: str) -> int:
        assert app_id == PACKAGE
        return self.state

    def get_performance_data(self, package: str, kind: str, tries: int) -> list:
        assert (package, kind) == (PACKAGE, "memoryinfo")
        return [["totalPrivateDirty", "totalPss", "totalSharedDirty"],
                ["1000", str(150 * 1024 + 100 * self.polls), "50"]]

    def terminate_app(self, app_id: str) -> None:
        self.state = 1

    def quit(self) -> None:
        self.quit_called = True

    # --- the scripted app -------------------------------------------------------------
    def _advance(self) -> None:
        self.polls += 1
        done = min(self.polls, self.frames)
        self.pending.append(f"ARSIM progress {done}/{self.frames}")
        if self.behaviour == "hang":
            return
        if self.behaviour == "error":
            self.pending.append("ARSIM error unknown model 'nope'")
            return
        if self.behaviour in ("lmk", "crash") and self.polls == 3:
            self.state = 1
            if self.behaviour == "lmk":
                self.pending.append(f"lowmemorykiller: Kill '{PACKAGE}' (4242), uid 10123,"
                                    " oom_score_adj 0 to free 312000kB")
                self.crash_logs.append('{"bug_type":"298", "name":"JetsamEvent"}')
            else:
                self.pending += ["E AndroidRuntime: FATAL EXCEPTION: main",
                                 "E AndroidRuntime: java.lang.IllegalStateException: boom"]
                self.crash_logs.append("Exception Type:  EXC_BAD_ACCESS (SIGSEGV)")
            return
        if done == self.frames and self.behaviour == "finish":
            path = self._report_path()
            self.files[path] = json.dumps(self._report()).encode()
            self.pending.append(f"ARSIM done {path}")
            self.behaviour = "finished"

    def _report_path(self) -> str:
        run_id = self._param("arsim.run_id")
        if self.platform == "android":
            return f"/sdcard/Android/data/{PACKAGE}/files/arsim/runs/{run_id}/report.json"
        return f"@{PACKAGE}:documents/arsim/runs/{run_id}/report.json"

    def _param(self, key: str) -> str:
        if self.platform == "android":
            return next(v for _, k, v in self.launched["extras"] if k == key)
        args = self.launched["arguments"]
        return args[args.index(f"-{key}") + 1]

    def _report(self) -> dict:
        report = copy.deepcopy(VECTOR)
        report.update(target=self.platform, run_id=self._param("arsim.run_id"))
        report["scenario"]["name"] = self._param("arsim.scenario")
        report["verdict"]["passed"] = False  # the harness re-evaluates with its budgets
        return report


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("sc") / "tiny", frames=8)


def _run(scenario: Path, tmp_path: Path, phone: FakePhone, **kw) -> tuple:
    request = DeviceRunRequest(scenario=scenario, platform=phone.platform,
                               server="http://127.0.0.1:1/wd/hub", out=tmp_path / "out",
                               device="redmi-note-10", run_id="r1", poll_s=0.001, **kw)
    seen = {}
    result = run_device(request, progress=lambda d, t: seen.update(done=d, total=t),
                        connect=lambda url, caps: seen.setdefault("caps", caps) and phone)
    return result, seen


@pytest.mark.parametrize("platform", ["android", "ios"])
def test_phone_run_to_the_end(platform, scenario, tmp_path):
    phone = FakePhone(platform, "finish")
    result, seen = _run(scenario, tmp_path, phone)
    assert result.complete and result.path.is_file() and phone.quit_called
    on_disk = json.loads(result.path.read_text())
    assert on_disk["run_id"] == "r1" and on_disk["target"] == platform
    assert schema_errors(on_disk) == []
    # the harness re-judged the app's verdict with its own budgets (redmi-note-10: 819.2 MB)
    assert on_disk["verdict"]["passed"] is True and on_disk["verdict_app"]["passed"] is False
    assert on_disk["harness"]["platform"] == platform
    assert seen["done"] == seen["total"] == 6
    # scenario and model were delivered where CONTRACT §1 says
    root = (f"/sdcard/Android/data/{PACKAGE}/files/arsim" if platform == "android"
            else f"@{PACKAGE}:documents/arsim")
    expected = {f"{root}/tiny/{name}" for name in ("scenario.json", "frames.csv", "poses.txt")}
    expected |= {f"{root}/models/toon-classic.onnx", f"{root}/models/toon-classic.json"}
    assert expected <= set(phone.files)
    assert json.loads(phone.files[f"{root}/models/toon-classic.json"])["name"] == "toon-classic"
    if platform == "android":
        assert seen["caps"]["appium:automationName"] == "UiAutomator2"
        assert phone.launched["intent"] == f"{PACKAGE}/.PlaybackActivity"
        extras = {k: (t, v) for t, k, v in phone.launched["extras"]}
        assert extras["arsim.scenario"] == ("s", "tiny")
        assert extras["arsim.realtime"] == ("z", "true")
        assert extras["arsim.warmup_frames"] == ("i", "0")
        peak = on_disk["harness"]["samples"]
        assert peak and all(s["memory_mb"] >= 150 for s in peak)
    else:
        assert seen["caps"]["appium:automationName"] == "XCUITest"
        assert phone.launched["bundleId"] == PACKAGE


@pytest.mark.parametrize("platform,behaviour,reason", [
    ("android", "lmk", "killed: oom"),
    ("android", "crash", "crashed: java.lang.IllegalStateException"),
    ("ios", "lmk", "killed: oom"),
    ("ios", "crash", "crashed: EXC_BAD_ACCESS"),
])
def test_phone_dies_mid_run(platform, behaviour, reason, scenario, tmp_path):
    result, _ = _run(scenario, tmp_path, FakePhone(platform, behaviour))
    report = json.loads(result.path.read_text())
    assert not result.complete and report["complete"] is False
    assert report["incomplete_reason"] == reason
    junit = (result.path.parent / "junit.xml").read_text()
    assert f"incomplete report: {reason}" in junit
    assert "Incomplete report" in (result.path.parent / "report.html").read_text()
    assert report["progress"]["frames_done"] == 3 and report["progress"]["frames_total"] == 6
    assert schema_errors(report) == []
    assert report["metrics"]["display_fps"] is None  # not measured, never 0
    harness_ooms = [e for e in report["oom_events"] if e["source"] == "harness"]
    assert len(harness_ooms) == (1 if behaviour == "lmk" else 0)
    if behaviour == "lmk":
        assert report["verdict"]["passed"] is False  # max_oom_events 0
        if platform == "android":
            assert harness_ooms[0]["memory_mb"] >= 150  # last memoryinfo sample


def test_phone_timeout_and_app_error(scenario, tmp_path):
    result, _ = _run(scenario, tmp_path / "t", FakePhone("android", "hang"), timeout_s=0.05)
    assert not result.complete
    assert result.report["incomplete_reason"].startswith("timeout: no report after 0.05 s")
    result, _ = _run(scenario, tmp_path / "e", FakePhone("android", "error"))
    assert result.report["incomplete_reason"] == "app error: unknown model 'nope'"


def test_invalid_device_report_is_kept_and_named(scenario, tmp_path):
    phone = FakePhone("android", "finish")
    original = phone._report
    phone._report = lambda: {**original(), "metrics": {"display_fps": "fast"}}
    with pytest.raises(InputError, match=r"device-report.raw.json: .*breaks.*metrics"):
        _run(scenario, tmp_path, phone)
    assert (tmp_path / "out" / "device-report.raw.json").is_file()


def test_contract_lines_and_params():
    assert parse_line('https://x/page.mjs 12:9 "ARSIM progress 3/10"'[:-1]).values == (3, 10)
    assert parse_line("I ARSIM   : ARSIM oom 1.5 812.25").values == (1.5, 812.25)
    assert parse_line("ARSIM done /sdcard/x/report.json").values == ("/sdcard/x/report.json",)
    assert parse_line("ARSIM progress three/10") is None
    assert parse_line("ARSIMprogress 1/2") is None and parse_line("hello") is None
    params = LaunchParams("walk", "r-1.2", "ar-lite", input_size=192, realtime=False)
    assert launch_arguments(params) == [
        "-arsim.scenario", "walk", "-arsim.run_id", "r-1.2", "-arsim.model", "ar-lite",
        "-arsim.realtime", "false", "-arsim.warmup_frames", "0", "-arsim.input_size", "192"]
    with pytest.raises(InputError, match="run-id"):
        LaunchParams("walk", "../etc", "ar-lite")


def test_death_classification():
    assert death_reason(["lmkd: Kill 'dev.arsim.bench' (1), uid 1"], PACKAGE).oom
    other = death_reason(["lmkd: Kill 'com.other' (1)"], PACKAGE)
    assert other.reason == "crashed: process died"
    signal = death_reason(["F libc: Fatal signal 11 (SIGSEGV)"], PACKAGE)
    assert signal.reason == "crashed: signal 11"
    assert crash_reason(['{"name":"JetsamEvent"}']).oom
    assert crash_reason(["Exception Type: EXC_CRASH (SIGABRT)"]).reason == "crashed: EXC_CRASH"
    assert pss_mb([["totalPss"], ["2048"]]) == 2.0 and pss_mb([["x"], ["1"]]) is None
