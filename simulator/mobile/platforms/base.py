"""What every platform adapter does; the harness (simulator/mobile/harness.py) drives it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.mobile.contract import LaunchParams, check_name
from simulator.scenario.model import Scenario

MAX_REPORT_BYTES = 64 * 1024 * 1024


class DeviceDied(Exception):
    """The app (or the browser tab) is gone before ``ARSIM done``; ``reason`` goes in the report,
    as CONTRACT §5 spells it (``killed: oom``, ``crashed: <what>``)."""

    def __init__(self, reason: str, *, oom: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.oom = oom


@dataclass(frozen=True)
class PlatformOptions:
    """The parts of a device run request a platform needs."""

    app: Path | None = None  # an .apk / .app / .ipa to install (Android, iOS)
    cpu_throttle: float | None = None  # web: DevTools CPU slow-down factor
    record: bool = False  # web: record displayed pictures so the harness measures flicker
    max_frames: int | None = None  # web: play only the first N frames
    input_size: int | None = None  # the model's card gets its FLOPs at this size too
    budgets: dict | None = None  # web: the page judges its verdict with these

    @property
    def sizes(self) -> tuple[int, ...]:
        return () if self.input_size is None else (self.input_size,)


def scenario_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, file) of every file of an unpacked scenario folder."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path.relative_to(folder).as_posix(), path


def model_files(model: str, sizes: tuple[int, ...] = ()) -> tuple[str, dict[str, bytes]]:
    """The zoo model's name and the files an app loads it from (CONTRACT §1): ``<name>.onnx``
    and its card as ``<name>.json``, the card's ``flops``/``activation_mb`` tables completed
    for the default input size and ``sizes``, with ``weights_bytes`` and ``parameters`` (the
    app copies them into its report)."""
    from simulator.zoo.card import card_to_dict  # heavy imports only where models move
    from simulator.zoo.registry import resolve_model

    resolved = resolve_model(model)
    name = resolved.card.name
    check_name(name, f"model {model}")
    card = card_to_dict(resolved.card)
    for size in {resolved.card.input.default_size, *sizes}:
        problem = resolved.card.input.size_problem(size)
        if problem:
            raise InputError("--input-size", f"{problem} (model {name})")
        card["flops"][str(size)] = resolved.flops(size)
        card["activation_mb"][str(size)] = resolved.activation_mb(size)
    card["weights_bytes"] = resolved.weights_bytes()
    card["parameters"] = resolved.parameters
    return name, {f"{name}.onnx": resolved.path.read_bytes(),
                  f"{name}.json": (json.dumps(card, indent=2) + "\n").encode("utf-8")}


def push_run_files(driver: Any, root: str, scenario: Scenario, model: str,
                   sizes: tuple[int, ...] = ()) -> str:
    """Push the scenario to ``<root>/<scenario>/`` and the model to ``<root>/models/`` with
    Appium's ``push_file`` (CONTRACT §1); return the model name."""
    def push(remote: str, data: bytes) -> None:
        driver.push_file(remote, base64.b64encode(data).decode("ascii"))

    for rel, path in scenario_files(scenario.root):
        push(f"{root}/{scenario.name}/{rel}", path.read_bytes())
    name, files = model_files(model, sizes)
    for filename, data in files.items():
        push(f"{root}/models/{filename}", data)
    return name


def decode_pulled(data: Any, where: str) -> dict:
    """A JSON object from ``pull_file``'s base64 answer (CONTRACT §3 report.json)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (TypeError, ValueError):
        raise InputError(where, "pulled file is not base64 as Appium sends it") from None
    if len(raw) > MAX_REPORT_BYTES:
        raise InputError(where, f"report is {len(raw)} bytes; expected at most {MAX_REPORT_BYTES}")
    try:
        report = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise InputError(where, f"report is not JSON ({err})") from None
    if not isinstance(report, dict):
        raise InputError(where, "report is not a JSON object")
    return report


class Platform:
    """One kind of target. Subclasses fill in the Appium specifics; every method that talks
    to the device may raise :class:`DeviceDied`."""

    name = "?"
    target = "?"  # report "target"
    os_name: str | None = None  # "Android", "iOS": device.os of reports the harness writes
    default_backend = "app default"  # report "backend" when --backend was not given

    def __init__(self, options: PlatformOptions, work_dir: Path) -> None:
        self.options = options
        self.work_dir = work_dir

    def capabilities(self, caps: dict[str, Any]) -> dict[str, Any]:
        """The session capabilities: the platform's defaults under the user's ``caps``."""
        return caps

    def prepare(self, driver: Any, scenario: Scenario, model: str) -> str:
        """Deliver scenario and model (CONTRACT §1); return the model name the app must load."""
        raise NotImplementedError

    def launch(self, driver: Any, params: LaunchParams) -> None:
        """Start playback (CONTRACT §2)."""
        raise NotImplementedError

    def read_messages(self, driver: Any) -> list[str]:
        """New log messages since the last call (the ``ARSIM`` lines are among them)."""
        raise NotImplementedError

    def check_alive(self, driver: Any) -> None:
        """Raise :class:`DeviceDied` when the app is no longer running."""

    def sample(self, driver: Any) -> dict | None:
        """A performance sample taken during the run (``{"memory_mb": ...}``), if any."""
        return None

    def fetch_report(self, driver: Any, run_id: str, location: str) -> dict:
        """The app's report.json after ``ARSIM done <location>``."""
        raise NotImplementedError

    def finish(self, report: dict, run_id: str) -> None:
        """Host-side additions to a complete report (web: flicker from a recording)."""

    def stop(self, driver: Any) -> None:
        """Stop the app (best effort; the session ends after this)."""

    def close(self) -> None:
        """Release local resources (servers)."""

    def device_defaults(self, caps: dict[str, Any]) -> dict[str, Any]:
        """``device`` fields for a report the harness writes itself (the app died)."""
        version = caps.get("appium:platformVersion")
        os_text = f"{self.os_name} {version}" if self.os_name and version else self.os_name
        return {"name": str(caps.get("appium:deviceName") or f"{self.os_name or self.name} device"),
                "os": os_text}
