"""Android builds through Appium's UiAutomator2 driver (mobile/android, CONTRACT §1-§5).

Scenario and model files are pushed to the app's external files folder, playback starts with
``mobile: startActivity`` and typed intent extras, ``ARSIM`` lines come from logcat, memory is
sampled from ``dumpsys meminfo`` (``memoryinfo`` performance data), and a process that is gone
before ``ARSIM done`` is classified from logcat: low-memory-killer lines mean ``killed: oom``,
``FATAL EXCEPTION`` a crash.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from simulator.mobile.contract import LaunchParams
from simulator.mobile.platforms.base import (
    DeviceDied,
    Platform,
    decode_pulled,
    push_run_files,
)
from simulator.scenario.model import Scenario

DEFAULT_PACKAGE = "dev.arsim.bench"
DEFAULT_ACTIVITY = ".PlaybackActivity"
APP_NOT_RUNNING = 1  # query_app_state: 0 not installed, 1 not running, 3 background, 4 foreground
_LMK_RE = re.compile(r"lowmemorykiller|lmkd|low memory killer|LowMemoryKiller", re.IGNORECASE)
_FATAL_RE = re.compile(r"FATAL EXCEPTION|Fatal signal (\d+)")
_EXCEPTION_RE = re.compile(r"^\s*([A-Za-z_$][\w$.]*(?:Exception|Error))\b")


def extra_type(value: str | int | bool) -> str:
    """The ``am start`` / ``mobile: startActivity`` type letter of an intent extra."""
    if isinstance(value, bool):
        return "z"
    return "i" if isinstance(value, int) else "s"


def pss_mb(performance_data: Any) -> float | None:
    """``totalPss`` in MiB from ``get_performance_data(pkg, "memoryinfo")`` (header row + values
    row, KB), or None when the answer has no such column."""
    if not isinstance(performance_data, list) or len(performance_data) < 2:
        return None
    header, values = performance_data[0], performance_data[1]
    try:
        kb = float(values[list(header).index("totalPss")])
    except (ValueError, TypeError, IndexError):
        return None
    return kb / 1024.0


def death_reason(log: list[str], package: str) -> DeviceDied:
    """Why the app died, from the logcat lines seen during the run (CONTRACT §5 wording)."""
    about_app = [line for line in log if package in line or "ARSIM" in line]
    if any(_LMK_RE.search(line) for line in about_app):
        return DeviceDied("killed: oom", oom=True)
    for i, line in enumerate(log):
        fatal = _FATAL_RE.search(line)
        if not fatal:
            continue
        if fatal.group(1):
            return DeviceDied(f"crashed: signal {fatal.group(1)}")
        for following in log[i + 1:i + 6]:
            text = following.split(": ", 1)[-1]
            exception = _EXCEPTION_RE.match(text)
            if exception:
                return DeviceDied(f"crashed: {exception.group(1)}")
        return DeviceDied("crashed: FATAL EXCEPTION")
    return DeviceDied("crashed: process died")


class AndroidPlatform(Platform):
    name = "android"
    target = "android"
    os_name = "Android"

    def __init__(self, options, work_dir: Path) -> None:
        super().__init__(options, work_dir)
        self.package = DEFAULT_PACKAGE
        self.activity = DEFAULT_ACTIVITY
        self._log: list[str] = []

    def capabilities(self, caps: dict[str, Any]) -> dict[str, Any]:
        merged = {"platformName": "Android", "appium:automationName": "UiAutomator2",
                  "appium:appPackage": DEFAULT_PACKAGE, "appium:appActivity": DEFAULT_ACTIVITY,
                  "appium:autoGrantPermissions": True, "appium:autoLaunch": False,
                  "appium:newCommandTimeout": 600, **caps}
        if self.options.app is not None:
            merged["appium:app"] = str(self.options.app.resolve())
        self.package = str(merged["appium:appPackage"])
        self.activity = str(merged["appium:appActivity"])
        return merged

    def _files_dir(self) -> str:
        return f"/sdcard/Android/data/{self.package}/files/arsim"

    def prepare(self, driver: Any, scenario: Scenario, model: str) -> str:
        name = push_run_files(driver, self._files_dir(), scenario, model,
                              self.options.sizes)
        driver.get_log("logcat")  # drop what came before the run: only new lines from here
        return name

    def launch(self, driver: Any, params: LaunchParams) -> None:
        extras = [[extra_type(v), k, str(v).lower() if isinstance(v, bool) else str(v)]
                  for k, v in params.as_dict().items()]
        driver.execute_script("mobile: startActivity", {
            "intent": f"{self.package}/{self.activity}", "extras": extras, "wait": True,
            "stop": True})

    def read_messages(self, driver: Any) -> list[str]:
        lines = [str(entry.get("message", "")) for entry in driver.get_log("logcat")]
        self._log.extend(lines)
        return lines

    def check_alive(self, driver: Any) -> None:
        if driver.query_app_state(self.package) <= APP_NOT_RUNNING:
            self.read_messages(driver)  # the lines the death left behind
            raise death_reason(self._log, self.package)

    def sample(self, driver: Any) -> dict | None:
        memory = pss_mb(driver.get_performance_data(self.package, "memoryinfo", 1))
        return None if memory is None else {"memory_mb": memory}

    def fetch_report(self, driver: Any, run_id: str, location: str) -> dict:
        default = f"{self._files_dir()}/runs/{run_id}/report.json"
        path = location if location.startswith("/") else default
        return decode_pulled(driver.pull_file(path), path)

    def stop(self, driver: Any) -> None:
        driver.terminate_app(self.package)
