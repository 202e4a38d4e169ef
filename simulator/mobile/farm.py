"""``arsim device matrix``: every scenario on every farm target through a Selenium Grid 4 hub.

A target is a name and a capabilities file (``--target pixel7=caps/pixel7.json``): the
platform's capabilities under the file's, which the hub routes to a node slot by
platformName, ``appium:deviceName`` and the like. Each run is its own ``arsim device run``
process (its own session, web page server, report and exit code), writing
``OUT/<scenario>/<target>/`` exactly as ``arsim device run --out`` does, its console output in
``device-run.log`` there.

Parallelism comes from the Grid: before the first run the hub's ``/status`` says how many
slots match each target and are free; at most that many of a target's runs are in flight,
and at most as many runs in all as free slots match any target, so no request waits in the
Grid's session queue behind our own runs (where its session request timeout would end it).
A target no slot matches still gets its runs, each ending at once as an incomplete report
naming the problem.

The summary (terminal table, ``summary.json``, ``index.html``, one ``junit.xml``) and the exit
code are ``simulator/matrix.py``'s: this module is an executor for its ``run_matrix``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator import signals
from simulator.errors import InputError
from simulator.matrix import MatrixRun, RunRecord, record_of
from simulator.mobile.appium_server import server_status
from simulator.mobile.contract import check_name
from simulator.mobile.grid import is_grid, slot_counts

LOG_NAME = "device-run.log"
# After Ctrl-C / SIGTERM, how long a run gets to write its incomplete report.
STOP_GRACE_S = 60.0


@dataclass(frozen=True)
class Target:
    """One farm device: its name (the run folder) and the session capabilities it asks for."""

    name: str
    caps_file: Path
    caps: dict[str, Any]  # as sent: the platform's under the file's, appium:-prefixed


def parse_targets(texts: Sequence[str], platform: str, work_dir: Path) -> list[Target]:
    """``NAME=caps.json`` each; names unique and usable as folder names (InputError)."""
    from simulator.mobile.harness import read_caps, w3c_caps
    from simulator.mobile.platforms import PLATFORMS
    from simulator.mobile.platforms.base import PlatformOptions

    adapter = PLATFORMS[platform](PlatformOptions(), work_dir)
    targets: list[Target] = []
    for text in texts:
        name, sep, path = text.partition("=")
        if not sep or not path:
            raise InputError("--target", f"expected NAME=caps.json, got {text!r}")
        check_name(name, f"--target {text}")
        if any(t.name == name for t in targets):
            raise InputError("--target", f"target name {name!r} given twice")
        caps = w3c_caps(adapter.capabilities(read_caps(Path(path))))
        targets.append(Target(name, Path(path), caps))
    return targets


def farm_plan(scenarios: Sequence[str], targets: Sequence[Target], model: str
              ) -> list[MatrixRun]:
    """Every scenario on every target, scenario by scenario; folders ``<scenario>/<target>``
    (a second scenario of the same name gets ``<name>-2``)."""
    runs, names = [], Counter()
    for scenario in scenarios:
        stem = Path(scenario).stem
        names[stem] += 1
        folder = stem if names[stem] == 1 else f"{stem}-{names[stem]}"
        runs += [MatrixRun(scenario, t.name, model, "default", None, f"{folder}/{t.name}")
                 for t in targets]
    return runs


def slot_limits(status: Mapping[str, Any], targets: Sequence[Target]) -> tuple[dict[str, int],
                                                                                 int]:
    """(runs in flight per target, in all): the free slots that match. A target with
    matching slots, all busy now, still gets one (the Grid queues it). A target no slot
    matches gets 0: its runs end at once with the Grid's answer and are not counted."""
    per_target = {}
    for target in targets:
        total, free = slot_counts(status, target.caps)
        per_target[target.name] = max(1, free) if total else 0
    routable = [t.caps for t in targets if per_target[t.name]]
    _, free_any = slot_counts(status, *routable) if routable else (0, 0)
    return per_target, max(1, free_any)


class GridExecutor:
    """Runs a farm plan as ``arsim device run`` processes, as many at once as the Grid has
    free matching slots (an executor for ``simulator.matrix.run_matrix``)."""

    name = "grid"

    def __init__(self, server: str, platform: str, targets: Sequence[Target],
                 run_flags: Sequence[str], poll_s: float = 0.2) -> None:
        self.server, self.platform = server, platform
        self.targets = {t.name: t for t in targets}
        self.run_flags = list(run_flags)  # shared `arsim device run` flags (model, timeout...)
        self.poll_s = poll_s
        self.limits: tuple[dict[str, int], int] | None = None  # what the Grid allowed

    def check_server(self) -> dict:
        """The hub's ``/status`` (InputError when ``server`` is not a Grid 4 hub)."""
        status = server_status(self.server)
        if not is_grid(status):
            raise InputError(self.server, "not a Selenium Grid 4 hub (its /status lists no"
                             " nodes); arsim device matrix spreads runs over a Grid's slots,"
                             " use arsim device run for one Appium server")
        return status

    def run(self, runs: Sequence[MatrixRun], out: Path, options: object,
            on_record: Callable[[RunRecord], None]) -> None:
        per_target, in_all = self.limits = slot_limits(self.check_server(),
                                                       list(self.targets.values()))
        pending = list(runs)
        running: dict[subprocess.Popen, tuple[MatrixRun, float]] = {}
        try:
            while pending or running:
                busy = Counter(run.device for run, _ in running.values())
                for run in list(pending):
                    limit = per_target[run.device]
                    in_flight = sum(n for name, n in busy.items() if per_target[name])
                    if busy[run.device] >= max(limit, 1) or (limit and in_flight >= in_all):
                        continue
                    pending.remove(run)
                    running[self._start(run, out)] = (run, time.monotonic())
                    busy[run.device] += 1
                done = [p for p in running if p.poll() is not None]
                for process in done:
                    run, started = running.pop(process)
                    on_record(self._record(run, process, out, started))
                if not done:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt as exc:
            # each run writes its incomplete report on the same signal, then the matrix stops
            for process in running:
                _signal(process, signals.signal_of(exc))
            for process, (run, started) in running.items():
                try:
                    process.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    _signal(process, signal.SIGKILL)
                    process.wait()
                on_record(self._record(run, process, out, started))
            raise

    def _start(self, run: MatrixRun, out: Path) -> subprocess.Popen:
        folder = out / run.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").unlink(missing_ok=True)  # a report there is this run's
        command = [sys.executable, "-m", "simulator", "device", "run", run.scenario,
                   "--platform", self.platform, "--server", self.server,
                   "--caps", str(self.targets[run.device].caps_file), "--out", str(folder),
                   "--model", run.model, *self.run_flags]
        with open(folder / LOG_NAME, "wb") as log:
            # a session of its own: the terminal's Ctrl-C reaches the matrix, which passes it
            # on once (a second signal could cut a run's incomplete report short)
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def _record(run: MatrixRun, process: subprocess.Popen, out: Path,
                started: float) -> RunRecord:
        from simulator.jsonfile import read_json

        wall = time.monotonic() - started
        folder = out / run.folder
        report = None
        if process.returncode != 2 and (folder / "report.json").is_file():
            try:
                report = read_json(folder / "report.json", what="report")
            except InputError:
                report = None
        if isinstance(report, dict) and "verdict" in report:
            return record_of(run, report, wall)
        return RunRecord(run, "error", error=_last_line(folder / LOG_NAME)
                         or f"arsim device run exited with code {process.returncode}",
                         wall_s=wall)


def _signal(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _last_line(log: Path) -> str | None:
    """The run's last console line (its one-line error, for a run that wrote no report)."""
    try:
        lines = log.read_text("utf-8", "replace").strip().splitlines()
    except OSError:
        return None
    line = lines[-1].strip() if lines else ""
    return line.removeprefix("arsim: error: ")[:300] or None
