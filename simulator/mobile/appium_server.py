"""A local Appium 3 server from the project's own npm install (``make mobile-setup``).

The server binary is ``mobile/node_modules/.bin/appium`` and its drivers (fake, chromium) are
registered in ``APPIUM_HOME=mobile/.appium``. ``arsim device server`` and the tests use this to
run one on loopback; ``arsim device run --server auto`` starts a private one for the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from simulator.errors import InputError

MOBILE_DIR = Path(__file__).resolve().parents[2] / "mobile"
APPIUM_BIN = MOBILE_DIR / "node_modules" / ".bin" / "appium"
APPIUM_HOME = MOBILE_DIR / ".appium"
BASE_PATH = "/wd/hub"
DRIVERS = ("fake", "chromium")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_status(url: str, timeout_s: float = 2.0) -> dict:
    """The ``/status`` answer of the Appium server (its base path included) or Selenium Grid 4
    hub (no base path) at ``url``.

    Raises InputError naming the URL when nothing answers, the answer is neither's, or an
    Appium server is not ready; a Grid's answer comes back ready or not (a Grid without a
    node up is the run's problem, not the user's: simulator/mobile/grid.py).
    """
    status_url = url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(status_url, timeout=timeout_s) as answer:
            body = json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        raise InputError(url, f"server answered HTTP {err.code} on /status; expected an Appium"
                         " server URL with its base path (e.g. .../wd/hub) or a Selenium Grid"
                         " 4 hub URL") from None
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise InputError(url, f"Appium server or Grid unreachable ({reason}); start one with"
                         " `arsim device server` / `arsim device grid`, or pass --server auto"
                         ) from None
    except ValueError:
        raise InputError(url, "answer on /status is not JSON; is this an Appium server?") from None
    value = body.get("value") if isinstance(body, dict) else None
    if isinstance(value, dict) and isinstance(value.get("nodes"), list):
        return value  # a Selenium Grid
    if not isinstance(value, dict) or not value.get("ready", False):
        raise InputError(url, f"Appium server is not ready: {str(body)[:200]}")
    return value


class AppiumServer:
    """An Appium server process on 127.0.0.1, stopped (with its children) on exit."""

    def __init__(self, port: int | None = None, *, log_path: Path | None = None,
                 start_timeout_s: float = 60.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{BASE_PATH}"
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> AppiumServer:
        if not APPIUM_BIN.is_file():
            raise InputError(APPIUM_BIN, "Appium is not installed; run `make mobile-setup`")
        env = {**os.environ, "APPIUM_HOME": str(APPIUM_HOME)}
        if self.log_path is None:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        else:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        command = [str(APPIUM_BIN), "--address", "127.0.0.1", "--port", str(self.port),
                   "--base-path", BASE_PATH, "--use-drivers", ",".join(DRIVERS),
                   "--log-level", "info", "--log-no-colors"]
        self._process = subprocess.Popen(command, cwd=MOBILE_DIR, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:  # a bad start, or Ctrl-C / SIGTERM meanwhile: no server left
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._process.poll() is not None:
                raise InputError("appium", f"server exited with code {self._process.returncode}"
                                 f" while starting: {self.log_tail()}")
            try:
                server_status(self.url, timeout_s=1.0)
                return
            except InputError:
                if time.monotonic() > deadline:
                    raise InputError("appium", f"server not ready after {self.start_timeout_s:g}"
                                     " s") from None
                time.sleep(0.2)

    def log_tail(self, lines: int = 5) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
                self._process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> AppiumServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
