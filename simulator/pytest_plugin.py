"""The arsim pytest plugin: every scenario x device is a test whose verdict is its result.

Installed with the package (entry point ``pytest11``), inactive until ``--arsim`` is given::

    pytest --arsim scenarios/ --arsim-device redmi-note-10 --arsim-device iphone-se-2020

collects each ``scenario.json`` under the given paths (``scenarios/orbit-desk`` or a folder of
them) as one test per device: ``scenarios/orbit-desk/scenario.json::redmi-note-10``. A test
replays the scenario (``arsim run``), writes its reports to ``--arsim-out`` and fails when a
budget fails, with the failed checks as the message; an input problem is an error naming the
file and field. Items are independent, so ``pytest -n auto`` (pytest-xdist) spreads them; with
``--dist loadfile`` a scenario's devices stay in one process, where the ones after the first
reuse its decoded frames and model outputs (the work cache, simulator/work_cache.py: in memory,
and on disk under ``--arsim-cache``, default arsim's cache directory; ``--arsim-no-cache``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.errors import InputError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("arsim", "arsim scenario replays as tests")
    group.addoption("--arsim", action="store_true",
                    help="collect scenario.json files as replay tests (one per device)")
    group.addoption("--arsim-device", action="append", default=None, metavar="ID",
                    help="device profile id or .toml (repeatable; default redmi-note-10)")
    group.addoption("--arsim-backend", default="cpu", help="cpu | gpu-fp16 | ... (default cpu)")
    group.addoption("--arsim-model", default="toon-classic", help="model name or .onnx path")
    group.addoption("--arsim-out", default="out/pytest", help="folder for the runs' reports")
    group.addoption("--arsim-timing-only", action="store_true",
                    help="timeline only: no pixels, no flicker (fast)")
    group.addoption("--arsim-cache", default=None, metavar="DIR",
                    help="reuse host work across items and sessions (default: arsim's cache "
                    "directory)")
    group.addoption("--arsim-no-cache", action="store_true", help="no reuse of host work")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if parent.config.getoption("arsim") and file_path.name == "scenario.json":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario folder: one :class:`ReplayItem` per device."""

    def collect(self) -> Iterator[ReplayItem]:
        devices = self.config.getoption("arsim_device") or ["redmi-note-10"]
        for device in devices:
            yield ReplayItem.from_parent(self, name=Path(device).stem, device=device)


class BudgetFailed(Exception):
    """A replay whose verdict failed; the message lists the failed checks."""


class ReplayItem(pytest.Item):
    def __init__(self, *, device: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.device = device

    def runtest(self) -> None:
        from simulator.run import RunSettings, run_scenario
        from simulator.work_cache import cache_dir, shared_cache

        option = self.config.getoption
        scenario = self.path.parent
        settings = RunSettings(device=self.device, backend=option("arsim_backend"),
                               model=option("arsim_model"),
                               timing_only=option("arsim_timing_only"))
        out = Path(option("arsim_out")) / scenario.name / self.name
        cache = None if option("arsim_no_cache") else \
            shared_cache(Path(option("arsim_cache") or cache_dir()))
        outcome = run_scenario(scenario, settings, out, cache=cache)
        outcome.raise_if_interrupted()  # pytest stops as interrupted, not a budget failure
        self.user_properties.append(("report", str(outcome.paths["json"])))
        verdict = outcome.report["verdict"]
        if not verdict["passed"]:
            failed = [c for c in verdict["checks"] if not c["passed"]]
            raise BudgetFailed("; ".join(
                f"{c['name']}: {c['value']:.4g} (limit {c['op']} {c['limit']:g})"
                for c in failed) + f" -> {outcome.paths['json']}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: str | None = None) -> str:
        if isinstance(excinfo.value, BudgetFailed | InputError):
            kind = "budget failed" if isinstance(excinfo.value, BudgetFailed) else "bad input"
            return f"{self.path.parent.name} on {self.device}: {kind}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"arsim replay {self.path.parent.name} on {self.device}"
