"""The web target (mobile/web) in Debian's headless Chromium through Appium's Chromium driver.

The harness serves the page, onnxruntime-web, the scenario (re-encoded as JPEG frames) and
the model from a loopback HTTP server (simulator/mobile/web_target.py); the page POSTs its
report back to it. ``ARSIM`` lines come from the browser console (``get_log('browser')``),
DevTools commands pass through the driver (``goog/cdp/execute``): CPU throttling emulates a
slower device, ``Performance.getMetrics`` samples the JS heap. A renderer that dies (crash or
killed) surfaces as chromedriver's "tab crashed" error.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.mobile.appium_server import free_port
from simulator.mobile.contract import LaunchParams
from simulator.mobile.platforms.base import DeviceDied, Platform
from simulator.progress import Progress
from simulator.scenario.model import Scenario

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEFAULT_DEVICE = "web-chromium"
# A phone-sized viewport (a 6.4-inch 1080 x 2400 screen at 3x): the page lays out like on a phone.
MOBILE_EMULATION = {"deviceMetrics": {"width": 360, "height": 800, "pixelRatio": 3.0}}
_CONSOLE_RE = re.compile(r'^\S+ \d+:\d+ ("(?:[^"\\]|\\.)*")')
_DEAD_WORDS = ("tab crashed", "target crashed", "target window already closed",
               "no such window", "chrome not reachable", "session deleted because of page crash")


def console_text(message: str) -> str:
    """The logged text of a ``get_log('browser')`` message (``<url> <line>:<col> "<text>"``)."""
    match = _CONSOLE_RE.match(message)
    if match is None:
        return message
    try:
        return json.loads(match.group(1))
    except ValueError:
        return match.group(1)


@contextlib.contextmanager
def _tab_guard() -> Iterator[None]:
    """Turn chromedriver's errors about a dead tab into :class:`DeviceDied`."""
    try:
        yield
    except Exception as err:
        if any(word in str(err).lower() for word in _DEAD_WORDS):
            raise DeviceDied("crashed: renderer (tab crashed)") from None
        raise


class WebPlatform(Platform):
    name = "web"
    target = "web"
    default_backend = "wasm"

    def __init__(self, options, work_dir: Path) -> None:
        super().__init__(options, work_dir)
        self.server = None
        self._cdp_ready = False

    def capabilities(self, caps: dict[str, Any]) -> dict[str, Any]:
        for binary in (CHROMIUM, CHROMEDRIVER):
            if not Path(binary).is_file() and "appium:executable" not in caps:
                raise InputError(binary, "not installed; run `make mobile-setup` (Debian"
                                 " chromium and chromium-driver)")
        chrome_options = {"binary": CHROMIUM, "mobileEmulation": MOBILE_EMULATION,
                          "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                                   "--autoplay-policy=no-user-gesture-required"]}
        # chromedriver on a port of its own: sessions at once on one Appium server (a Grid
        # node's slots, a device matrix) would all take its default 9515, and all but the
        # first crash at startup. The page server is on this host's loopback, so the browser
        # is too: a port free here is free where chromedriver starts.
        return {"platformName": "linux", "browserName": "chrome",
                "appium:automationName": "Chromium", "appium:executable": CHROMEDRIVER,
                "appium:chromedriverPort": free_port(),
                "appium:autodownloadEnabled": False, "goog:chromeOptions": chrome_options,
                "goog:loggingPrefs": {"browser": "ALL"}, **caps}

    def _cdp(self, driver: Any, command: str, params: dict | None = None) -> dict:
        if not self._cdp_ready:
            driver.command_executor.add_command(
                "arsimCdp", "POST", "/session/$sessionId/goog/cdp/execute")
            self._cdp_ready = True
        answer = driver.execute("arsimCdp", {"cmd": command, "params": params or {}})
        return answer.get("value") or {}

    def prepare(self, driver: Any, scenario: Scenario, model: str) -> str:
        from simulator.mobile.web_target import WebTargetServer

        root = self.work_dir / "web"
        shutil.rmtree(root, ignore_errors=True)
        self.server = WebTargetServer(root).start()
        self.server.add_scenario(scenario, progress=Progress("web bundle (JPEG frames)"))
        name = self.server.add_model(model, sizes=self.options.sizes)
        if self.options.cpu_throttle is not None:
            self._cdp(driver, "Emulation.setCPUThrottlingRate",
                      {"rate": float(self.options.cpu_throttle)})
        self._cdp(driver, "Performance.enable")
        return name

    def launch(self, driver: Any, params: LaunchParams) -> None:
        query: dict[str, Any] = {**params.as_dict(), "arsim.device": DEFAULT_DEVICE}
        if self.options.record:
            query["arsim.record"] = True
        if self.options.max_frames is not None:
            query["arsim.max_frames"] = self.options.max_frames
        if self.options.budgets:
            query["arsim.budgets"] = json.dumps(self.options.budgets, separators=(",", ":"))
        self.run_id = params.run_id
        driver.get(self.server.page_url(query))

    def read_messages(self, driver: Any) -> list[str]:
        with _tab_guard():
            entries = driver.get_log("browser")
        lines = []
        for entry in entries:
            text = console_text(str(entry.get("message", "")))
            if entry.get("level") == "SEVERE" and "ARSIM" not in text:
                text = f"page error: {text}"
            lines.append(text)
        return lines

    def check_alive(self, driver: Any) -> None:
        # answered by the browser process, so polling it costs the page's main thread nothing
        with _tab_guard():
            self._cdp(driver, "Target.getTargetInfo")

    def sample(self, driver: Any) -> dict | None:
        with _tab_guard():
            metrics = self._cdp(driver, "Performance.getMetrics").get("metrics", [])
        values = {m.get("name"): m.get("value") for m in metrics if isinstance(m, dict)}
        heap = values.get("JSHeapUsedSize")
        return None if heap is None else {"js_heap_mb": heap / 2**20}

    def fetch_report(self, driver: Any, run_id: str, location: str) -> dict:
        from simulator.jsonfile import read_json

        path = self.server.report_path(run_id)
        report = read_json(path, what="device report")
        if not isinstance(report, dict):
            raise InputError(path, "report is not a JSON object")
        return report

    def finish(self, report: dict, run_id: str) -> None:
        if not self.options.record:
            return
        from simulator.mobile.web_target import flicker_from_recording

        flicker = flicker_from_recording(self.server, report["scenario"]["name"], run_id, report)
        if flicker:
            report.setdefault("metrics", {})["flicker"] = flicker

    def stop(self, driver: Any) -> None:
        with contextlib.suppress(Exception):  # best effort on a dying tab
            driver.get("about:blank")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def device_defaults(self, caps: dict[str, Any]) -> dict[str, Any]:
        return {"name": "Headless Chromium (onnxruntime-web, WASM)", "os": "Linux"}
