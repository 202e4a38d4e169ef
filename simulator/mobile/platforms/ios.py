"""iOS builds through Appium's XCUITest driver (mobile/ios, CONTRACT §1-§5).

Files go into the app's Documents container (``@<bundle id>:documents/arsim/...``, the app
sets ``UIFileSharingEnabled``), playback starts with ``mobile: launchApp`` and launch
arguments, ``ARSIM`` lines come from the device log (``syslog``), and a process that is gone
before ``ARSIM done`` is classified from the crash logs: a ``JetsamEvent`` report means the
app was killed for memory. iOS gives Appium no memory samples; the app reports its own
``phys_footprint`` peak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.mobile.contract import LaunchParams
from simulator.mobile.platforms.base import DeviceDied, Platform, decode_pulled, push_run_files
from simulator.scenario.model import Scenario

DEFAULT_BUNDLE_ID = "dev.arsim.bench"
APP_NOT_RUNNING = 1  # query_app_state, as on Android


def launch_arguments(params: LaunchParams) -> list[str]:
    """``-arsim.key value`` pairs, read back by the app from ``UserDefaults`` (argument domain)."""
    arguments: list[str] = []
    for key, value in params.as_dict().items():
        arguments += [f"-{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return arguments


def crash_reason(crash_logs: list[str]) -> DeviceDied:
    """Why the app died, from ``get_log('crashlog')`` messages (CONTRACT §5 wording)."""
    for text in crash_logs:
        if "JetsamEvent" in text or '"reason" : "per-process-limit"' in text:
            return DeviceDied("killed: oom", oom=True)
    for text in crash_logs:
        for word in text.replace('"', " ").split():
            if word.startswith(("EXC_", "SIG")) and word.rstrip(",").isupper():
                return DeviceDied(f"crashed: {word.rstrip(',')}")
    return DeviceDied("crashed: process died")


class IosPlatform(Platform):
    name = "ios"
    target = "ios"
    os_name = "iOS"

    def __init__(self, options, work_dir: Path) -> None:
        super().__init__(options, work_dir)
        self.bundle_id = DEFAULT_BUNDLE_ID

    def capabilities(self, caps: dict[str, Any]) -> dict[str, Any]:
        merged = {"platformName": "iOS", "appium:automationName": "XCUITest",
                  "appium:bundleId": DEFAULT_BUNDLE_ID, "appium:autoLaunch": False,
                  "appium:newCommandTimeout": 600, **caps}
        if self.options.app is not None:
            merged["appium:app"] = str(self.options.app.resolve())
        self.bundle_id = str(merged["appium:bundleId"])
        return merged

    def _documents(self) -> str:
        return f"@{self.bundle_id}:documents/arsim"

    def prepare(self, driver: Any, scenario: Scenario, model: str) -> str:
        name = push_run_files(driver, self._documents(), scenario, model,
                              self.options.sizes)
        driver.get_log("syslog")  # only lines of this run from here on
        driver.get_log("crashlog")
        return name

    def launch(self, driver: Any, params: LaunchParams) -> None:
        driver.execute_script("mobile: launchApp", {
            "bundleId": self.bundle_id, "arguments": launch_arguments(params)})

    def read_messages(self, driver: Any) -> list[str]:
        return [str(entry.get("message", "")) for entry in driver.get_log("syslog")]

    def check_alive(self, driver: Any) -> None:
        if driver.query_app_state(self.bundle_id) <= APP_NOT_RUNNING:
            logs = [str(entry.get("message", "")) for entry in driver.get_log("crashlog")]
            raise crash_reason(logs)

    def fetch_report(self, driver: Any, run_id: str, location: str) -> dict:
        path = f"{self._documents()}/runs/{run_id}/report.json"
        return decode_pulled(driver.pull_file(path), path)

    def stop(self, driver: Any) -> None:
        driver.terminate_app(self.bundle_id)
