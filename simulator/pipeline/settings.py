"""Every knob of the temporal pipeline, as plain data (CLI, settings files, the Qt app and
sweeps all build the same object)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from simulator.engine.sizing import SizeSettings
from simulator.errors import InputError
from simulator.pipeline.face import FaceTrackerSettings
from simulator.pipeline.face_priority import FacePrioritySettings
from simulator.pipeline.skip import SkipSettings
from simulator.pipeline.smooth import SmoothSettings
from simulator.safe_files import JSON_CAP, read_user_text


@dataclass(frozen=True)
class FaceSettings:
    """Face priority: off unless ``enabled``; tracker and crop settings inside."""

    enabled: bool = False
    tracker: FaceTrackerSettings = field(default_factory=FaceTrackerSettings)
    priority: FacePrioritySettings = field(default_factory=FacePrioritySettings)

    def validate(self) -> None:
        self.tracker.validate()
        self.priority.validate()


@dataclass(frozen=True)
class PipelineSettings:
    smoothing: SmoothSettings = field(default_factory=SmoothSettings)
    skip: SkipSettings = field(default_factory=SkipSettings)
    sizing: SizeSettings = field(default_factory=SizeSettings)
    face: FaceSettings = field(default_factory=FaceSettings)

    def validate(self) -> None:
        for part in (self.smoothing, self.skip, self.sizing, self.face):
            part.validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, data: Any, where: str) -> Any:
    """A (nested) settings dataclass from a mapping; unknown keys and wrong types are
    InputErrors naming the key."""
    if not isinstance(data, dict):
        raise InputError(where, f"expected a table of {cls.__name__} settings")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(where, f"unknown setting '{unknown[0]}' (known: {', '.join(known)})")
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if is_dataclass(default):
            values[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):  # the only tuple settings hold integers (sizes)
            if not isinstance(value, list) or not all(_same_kind(0, v) for v in value):
                raise InputError(f"{where}.{name}", f"expected a list of integers, got {value!r}")
            values[name] = tuple(value)
        elif _same_kind(default, value):
            values[name] = float(value) if isinstance(default, float) else value
        else:
            raise InputError(
                f"{where}.{name}", f"expected {type(default).__name__}, got {value!r}"
            )
    return cls(**values)


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def load_settings(path: str | Path) -> PipelineSettings:
    """Pipeline settings from a .toml or .json file (the format `save_settings` writes)."""
    path = Path(path)
    text = read_user_text(path, str(path), cap=JSON_CAP)  # regular file, size-capped
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except RecursionError:
        raise InputError(path, "settings nested too deeply") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise InputError(path, f"not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    settings = _build(PipelineSettings, data, str(path))
    settings.validate()
    return settings


def save_settings(settings: PipelineSettings, path: str | Path) -> None:
    Path(path).write_text(json.dumps(settings.to_dict(), indent=2) + "\n", encoding="utf-8")
