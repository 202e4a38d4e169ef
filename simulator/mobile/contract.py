"""The host side of mobile/CONTRACT.md: launch parameters, ``ARSIM`` log lines, report checks.

Everything here is platform-free; the platform adapters (web.py, android.py, ios.py) only
move bytes and lines between Appium and these functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from simulator.errors import InputError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "mobile" / "report.schema.json"
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# One contract line anywhere in a log message (logcat and browser consoles add prefixes).
LINE_RE = re.compile(r"\bARSIM (start|progress|oom|done|error)\b ?(.*)$")


def check_name(text: str, where: str) -> str:
    """``text`` when it can name a file or URL path segment on a device (run ids, model
    names): 1-64 of ``[A-Za-z0-9._-]`` and not ``.``/``..``; else InputError."""
    if not NAME_RE.match(text) or set(text) == {"."}:
        raise InputError(where, f"expected 1-64 of [A-Za-z0-9._-] (not . or ..), got {text!r}")
    return text


@dataclass(frozen=True)
class LaunchParams:
    """CONTRACT §2: what the app is told to play."""

    scenario: str
    run_id: str
    model: str
    input_size: int | None = None
    backend: str | None = None
    realtime: bool = True
    warmup_frames: int = 0

    def __post_init__(self) -> None:
        check_name(self.run_id, "--run-id")
        if self.input_size is not None and not 16 <= self.input_size <= 4096:
            raise InputError("--input-size", f"expected 16..4096, got {self.input_size}")
        if self.warmup_frames < 0:
            raise InputError("--warmup-frames", f"expected >= 0, got {self.warmup_frames}")

    def as_dict(self) -> dict[str, str | int | bool]:
        """``arsim.*`` key → typed value, optional keys only when given."""
        values: dict[str, str | int | bool] = {
            "arsim.scenario": self.scenario, "arsim.run_id": self.run_id,
            "arsim.model": self.model, "arsim.realtime": self.realtime,
            "arsim.warmup_frames": self.warmup_frames,
        }
        if self.input_size is not None:
            values["arsim.input_size"] = self.input_size
        if self.backend is not None:
            values["arsim.backend"] = self.backend
        return values


@dataclass(frozen=True)
class Event:
    """One parsed ``ARSIM`` line."""

    kind: str  # start | progress | oom | done | error
    text: str  # everything after the kind
    values: tuple = ()


def parse_line(message: str) -> Event | None:
    """The contract event in a log message, or None when it holds none (or a malformed one)."""
    match = LINE_RE.search(message.strip())
    if match is None:
        return None
    kind, rest = match.group(1), match.group(2).strip()
    parts = rest.split()
    try:
        if kind == "start":
            return Event(kind, rest, (parts[0], int(parts[1])))
        if kind == "progress":
            done, total = parts[0].split("/")
            return Event(kind, rest, (int(done), int(total)))
        if kind == "oom":
            return Event(kind, rest, (float(parts[0]), float(parts[1])))
        if kind == "done":
            return Event(kind, rest, (rest,)) if rest else None
    except (IndexError, ValueError):
        return None
    return Event(kind, rest, (rest,))  # error: the message


@dataclass
class RunWatch:
    """What the harness knows about a run from its contract lines so far."""

    total: int | None = None
    done_frames: int = 0
    oom_events: list[dict] = field(default_factory=list)
    report_location: str | None = None
    error: str | None = None

    def feed(self, event: Event) -> None:
        if event.kind == "start":
            self.total = event.values[1]
        elif event.kind == "progress":
            self.done_frames, self.total = event.values
        elif event.kind == "oom":
            t, mb = event.values
            self.oom_events.append({"t": t, "memory_mb": mb, "limit_mb": None,
                                    "cause": "memory_warning", "source": "os"})
        elif event.kind == "done":
            self.report_location = event.values[0]
        elif event.kind == "error" and self.error is None:
            self.error = event.text or "(no message)"

    @property
    def finished(self) -> bool:
        return self.report_location is not None or self.error is not None


@cache
def _validator():
    import jsonschema  # only where reports are checked

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def schema_errors(report: Mapping) -> list[str]:
    """Where ``report`` breaks mobile/report.schema.json: ``"<dotted.path>: <problem>"`` each."""
    errors = sorted(_validator().iter_errors(report), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.path)) or '(top level)'}: {e.message[:160]}" for e in errors]


def null_metrics() -> dict:
    """The metrics block of a run that measured nothing (CONTRACT §4: null, never 0)."""
    return {
        "display_fps": None, "inference_fps": None,
        "latency_ms": {"p50": None, "p95": None, "p99": None, "mean": None},
        "inference_ms": {"p50": None, "p95": None}, "jank_pct": None, "dropped_frames": None,
        "flicker": {"warp_error": None, "warp_error_p95": None, "luminance_flicker": None},
        "memory_peak_mb": None, "thermal_factor_max": None,
    }
