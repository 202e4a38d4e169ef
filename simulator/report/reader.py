"""Reading a ``report.json`` someone gives us (a simulator or device run): the defensive
JSON reader, then a check of every field that compare and calibrate rely on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.jsonfile import read_json
from simulator.report.json_report import SCHEMA

_NUM = (int, float)
_NONE = type(None)
# (dotted field, accepted types) that compare and calibrate need; None in the types: the
# field may be null (a device that cannot measure it, docs in mobile/CONTRACT.md).
REQUIRED_FIELDS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("schema", (str,)),
    ("target", (str,)),
    ("scenario.name", (str,)),
    ("scenario.frames", (int,)),
    ("device.id", (str,)),
    ("backend", (str,)),
    ("model.name", (str,)),
    ("model.flops", (*_NUM, _NONE)),
    ("input_size", (int,)),
    ("metrics.display_fps", (*_NUM, _NONE)),
    ("metrics.inference_fps", (*_NUM, _NONE)),
    ("metrics.latency_ms.p50", (*_NUM, _NONE)),
    ("metrics.latency_ms.p95", (*_NUM, _NONE)),
    ("metrics.jank_pct", (*_NUM, _NONE)),
    ("metrics.dropped_frames", (int, _NONE)),
    ("metrics.flicker.warp_error", (*_NUM, _NONE)),
    ("metrics.memory_peak_mb", (*_NUM, _NONE)),
    ("oom_events", (list,)),
    ("verdict.passed", (bool,)),
)



class PositiveInt:
    """Field type marker: an integer > 0 (a frame size)."""


# (dotted field, accepted types) read when present: a device may leave them out.
OPTIONAL_FIELDS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("scenario.width", (PositiveInt, _NONE)),
    ("scenario.height", (PositiveInt, _NONE)),
)

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
               list: "a list", dict: "an object", _NONE: "null",
               PositiveInt: "a positive integer"}


def get_field(data: Mapping, dotted: str) -> Any:
    """The value at a dotted path; KeyError when a part is missing or not an object."""
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def _type_ok(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if PositiveInt in types and isinstance(value, int) and value > 0:
        return True
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, types)


def check_report(report: object, where: str | Path) -> dict:
    """``report`` itself when it is an arsim-report/1 with every field compare needs."""
    if not isinstance(report, dict):
        raise InputError(where, "expected a JSON object (an arsim-report/1 report.json)")
    if report.get("schema") != SCHEMA:
        got = report.get("schema")
        raise InputError(where, f"field 'schema': expected '{SCHEMA}', got {got!r}")
    fields = [*REQUIRED_FIELDS, *OPTIONAL_FIELDS]
    for dotted, types in fields:
        try:
            value = get_field(report, dotted)
        except KeyError:
            if (dotted, types) in OPTIONAL_FIELDS:
                continue
            raise InputError(where, f"missing field '{dotted}'") from None
        if not _type_ok(value, types):
            expected = " or ".join(dict.fromkeys(_TYPE_NAMES[t] for t in types))
            raise InputError(where, f"field '{dotted}': expected {expected}, got {value!r}")
    return report


def load_report(path: str | Path) -> dict:
    """Read and check one ``report.json``."""
    path = Path(path)
    return check_report(read_json(path, "report"), path)
