"""``load_scenario``: read a scenario folder or ``.zip`` and validate every file and field.

Each problem raises one InputError naming the file (``walk/frames.csv line 7``), the field
and what was expected. The rules are those of ``scenarios/README.md``.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from simulator.errors import InputError
from simulator.scenario.archive import safe_extract
from simulator.scenario.model import Anchor, Scenario, ScenarioEvent, file_label
from simulator.scenario.poses import UNIT_TOLERANCE, parse_number, parse_tum, read_text
from simulator.scenario.video import FRAMES_DIR, count_frames, frame_size
from simulator.types import Intrinsics

FORMAT = "arsim-scenario/1"
TRACKING_STATES = ("tracking", "limited", "lost")
EXPECT_KEYS = (
    "min_display_fps",
    "max_latency_p95_ms",
    "max_jank_pct",
    "max_flicker",
    "max_memory_mb",
    "max_oom_events",
)
CSV_HEADER = ["index", "timestamp", "tracking"]
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_INDEX = re.compile(r"\d{1,12}")
_MAX_DESCRIPTION = 2000
_IDENTITY = (0.0, 0.0, 0.0, 1.0)


def load_scenario(path: str | Path) -> Scenario:
    """Load and fully validate a scenario folder or a ``.zip`` of one.

    A zip is extracted (safely) to a temporary folder that ``Scenario.close()`` removes;
    use the scenario as a context manager.
    """
    given = Path(path)
    if given.is_dir():
        return _load_folder(given, given, None)
    if not given.exists():
        raise InputError(given, "no such scenario folder or .zip file")
    if given.suffix.lower() != ".zip" and not zipfile.is_zipfile(given):
        raise InputError(given, "expected a scenario folder or a .zip of one")
    extracted = tempfile.TemporaryDirectory(prefix="arsim-scenario-")
    try:
        root = safe_extract(given, Path(extracted.name))
        return _load_folder(root, given, extracted)
    except BaseException:
        extracted.cleanup()
        raise


def _load_folder(
    root: Path, given: Path, extracted: tempfile.TemporaryDirectory | None
) -> Scenario:
    def label(name: str) -> str:
        return file_label(given, name, zipped=extracted is not None)

    json_label = label("scenario.json")
    meta = _Metadata(_read_json(root / "scenario.json", json_label), _Checker(json_label))
    frame_times, tracking, csv_lines = _read_frames_csv(root / "frames.csv", label("frames.csv"))
    trajectory = parse_tum(root / "poses.txt", label("poses.txt"))

    outside = np.nonzero((frame_times < trajectory.start) | (frame_times > trajectory.end))[0]
    if outside.size:
        row = int(outside[0])
        raise InputError(
            f"{label('frames.csv')} line {csv_lines[row]}",
            f"timestamp {float(frame_times[row])!r} is outside the poses.txt time range "
            f"[{trajectory.start!r}, {trajectory.end!r}] (poses are not extrapolated)",
        )

    video_path = root / meta.video.rstrip("/")
    video_label = label(meta.video)
    if meta.video == FRAMES_DIR and not video_path.is_dir():
        raise InputError(video_label, "folder not found (scenario.json video is 'frames/')")
    if meta.video != FRAMES_DIR and not video_path.is_file():
        raise InputError(video_label, "video file not found (named by scenario.json video)")
    width, height = frame_size(video_path, video_label)
    camera = meta.camera
    if (width, height) != (camera.width, camera.height):
        raise InputError(
            json_label,
            f"camera.width x camera.height is {camera.width}x{camera.height} "
            f"but the frames of {meta.video} are {width}x{height} (they must be equal)",
        )
    frames_in_video = count_frames(video_path, video_label)
    if frames_in_video != len(frame_times):
        raise InputError(
            label("frames.csv"),
            f"{len(frame_times)} frame rows but {meta.video} holds {frames_in_video} frames "
            "(expected one row per video frame)",
        )
    return Scenario(
        root=root,
        source_path=given,
        name=meta.name,
        description=meta.description,
        video=meta.video,
        fps=meta.fps,
        camera=camera,
        source=meta.source,
        anchors=meta.anchors,
        events=meta.events,
        expect=meta.expect,
        frame_times=frame_times,
        tracking=tracking,
        trajectory=trajectory,
        extracted=extracted,
    )


# --- scenario.json ------------------------------------------------------------------------


def _read_json(path: Path, label: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise InputError(label, f"field {key!r} appears twice in one object")
            obj[key] = value
        return obj

    def no_constants(name: str) -> NoReturn:
        raise InputError(label, f"{name} is not valid JSON (numbers must be finite)")

    text = read_text(path, label)
    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise InputError(
            label, f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise InputError(label, "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal with thousands of digits
        raise InputError(label, f"invalid JSON: {exc}") from None


def _show(value: Any) -> str:
    """A short JSON rendering of a bad value for an error message."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Metadata:
    """The parsed, validated fields of ``scenario.json``."""

    def __init__(self, data: Any, check: _Checker) -> None:
        self.check = check
        obj = check.object(
            data,
            "",
            required=("format", "name", "video", "fps", "camera"),
            optional=("description", "source", "anchors", "events", "expect"),
        )
        if obj["format"] != FORMAT:
            check.fail("format", f"expected {FORMAT!r}, got {_show(obj['format'])}")
        self.name = check.string(obj["name"], "name")
        if not _NAME.fullmatch(self.name):
            check.fail(
                "name", f"expected 1-64 characters of [A-Za-z0-9._-], got {_show(self.name)}"
            )
        self.description = check.string(obj.get("description", ""), "description")
        if len(self.description) > _MAX_DESCRIPTION:
            check.fail("description", f"at most {_MAX_DESCRIPTION} characters")
        self.video = self._video(obj["video"])
        self.fps = check.number(obj["fps"], "fps", minimum=1, maximum=240)
        self.camera = self._camera(obj["camera"])
        self.source = self._source(obj.get("source", {}))
        self.anchors = self._anchors(obj.get("anchors", []))
        self.events = self._events(obj.get("events", []))
        self.expect = self._expect(obj.get("expect", {}))

    def _video(self, value: Any) -> str:
        video = self.check.string(value, "video")
        if video == FRAMES_DIR:
            return video
        if not video or video in (".", "..") or any(c in video for c in "/\\\x00"):
            self.check.fail(
                "video",
                f"expected a file name in the scenario folder (no '/', no '..') or "
                f"{FRAMES_DIR!r}, got {_show(video)}",
            )
        return video

    def _camera(self, value: Any) -> Intrinsics:
        check = self.check
        cam = check.object(value, "camera", required=("width", "height", "fx", "fy", "cx", "cy"))
        width = check.integer(cam["width"], "camera.width", minimum=16, maximum=8192)
        height = check.integer(cam["height"], "camera.height", minimum=16, maximum=8192)
        return Intrinsics(
            width=width,
            height=height,
            fx=check.number(cam["fx"], "camera.fx", above=0),
            fy=check.number(cam["fy"], "camera.fy", above=0),
            cx=check.number(cam["cx"], "camera.cx", minimum=0, maximum=width),
            cy=check.number(cam["cy"], "camera.cy", minimum=0, maximum=height),
        )

    def _source(self, value: Any) -> dict[str, str]:
        source = self.check.object(value, "source", optional=("device", "app", "recorded"))
        out = {key: self.check.string(item, f"source.{key}") for key, item in source.items()}
        if "recorded" in out:
            try:
                datetime.fromisoformat(out["recorded"])
            except ValueError:
                self.check.fail(
                    "source.recorded",
                    f"expected an ISO 8601 date such as 2024-05-01, got {_show(out['recorded'])}",
                )
        return out

    def _anchors(self, value: Any) -> list[Anchor]:
        check = self.check
        anchors: list[Anchor] = []
        for i, item in enumerate(check.array(value, "anchors")):
            field = f"anchors[{i}]"
            obj = check.object(
                item, field, required=("id", "position", "size"), optional=("rotation",)
            )
            anchor_id = check.string(obj["id"], f"{field}.id")
            if not anchor_id:
                check.fail(f"{field}.id", "expected a non-empty string")
            if any(a.id == anchor_id for a in anchors):
                check.fail(f"{field}.id", f"{_show(anchor_id)} is used twice (ids are unique)")
            rotation = check.vector(obj.get("rotation", list(_IDENTITY)), f"{field}.rotation", 4)
            norm = float(np.linalg.norm(rotation))
            if abs(norm - 1.0) > UNIT_TOLERANCE:
                check.fail(
                    f"{field}.rotation", f"quaternion norm is {norm:.6g}, expected 1 (within 1e-3)"
                )
            size = check.vector(obj["size"], f"{field}.size", 3)
            if not np.all(size > 0):
                check.fail(f"{field}.size", f"extents must be > 0, got {_show(obj['size'])}")
            anchors.append(
                Anchor(
                    id=anchor_id,
                    position=check.vector(obj["position"], f"{field}.position", 3),
                    rotation=rotation / norm,
                    size=size,
                )
            )
        return anchors

    def _events(self, value: Any) -> list[ScenarioEvent]:
        check = self.check
        extra_field = {"memory_pressure": "mb", "thermal": "factor"}
        events: list[ScenarioEvent] = []
        for i, item in enumerate(check.array(value, "events")):
            field = f"events[{i}]"
            obj = check.object(item, field, required=("t", "type"), optional=("mb", "factor"))
            kind = check.string(obj["type"], f"{field}.type")
            if kind not in ("background", "foreground", *extra_field):
                check.fail(
                    f"{field}.type",
                    f"expected background, foreground, memory_pressure or thermal, "
                    f"got {_show(kind)}",
                )
            wanted = extra_field.get(kind)
            for name in ("mb", "factor"):
                if name in obj and name != wanted:
                    check.fail(f"{field}.{name}", f"not a field of a {kind!r} event")
            if wanted and wanted not in obj:
                check.fail(field, f"a {kind!r} event needs the field {wanted!r}")
            t = check.number(obj["t"], f"{field}.t", minimum=0)
            if events and t < events[-1].t:
                check.fail(
                    f"{field}.t", f"{t!r} is before the previous event's {events[-1].t!r} "
                    "(events must be sorted by t)",
                )
            events.append(
                ScenarioEvent(
                    t=t,
                    type=kind,
                    mb=check.number(obj["mb"], f"{field}.mb", minimum=0) if "mb" in obj else None,
                    factor=(
                        check.number(obj["factor"], f"{field}.factor", minimum=1)
                        if "factor" in obj
                        else None
                    ),
                )
            )
        return events

    def _expect(self, value: Any) -> dict[str, float]:
        expect = self.check.object(value, "expect", optional=EXPECT_KEYS)
        return {
            key: self.check.number(item, f"expect.{key}", minimum=0)
            for key, item in expect.items()
        }


class _Checker:
    """Type and range checks of JSON values; a failure names the file and the field."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, field: str, problem: str) -> NoReturn:
        raise InputError(self.label, f"{field}: {problem}")

    def object(
        self,
        value: Any,
        field: str,
        required: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        where = field or "top level"
        if not isinstance(value, dict):
            self.fail(where, f"expected a JSON object, got {_show(value)}")
        prefix = f"{field}." if field else ""
        allowed = (*required, *optional)
        for key in value:
            if key not in allowed:
                self.fail(
                    f"{prefix}{key}",
                    f"unknown field (expected {', '.join(allowed) or 'no fields'})",
                )
        for key in required:
            if key not in value:
                self.fail(f"{prefix}{key}", "missing required field")
        return value

    def array(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(field, f"expected a JSON array, got {_show(value)}")
        return value

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            self.fail(field, f"expected a string, got {_show(value)}")
        return value

    def number(
        self,
        value: Any,
        field: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        above: float | None = None,
    ) -> float:
        wanted = _range_text(minimum, maximum, above)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, f"expected a number{wanted}, got {_show(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        out_of_range = (
            (minimum is not None and number < minimum)
            or (maximum is not None and number > maximum)
            or (above is not None and number <= above)
        )
        if not math.isfinite(number) or out_of_range:
            self.fail(field, f"expected a finite number{wanted}, got {_show(value)}")
        return number

    def integer(self, value: Any, field: str, *, minimum: int, maximum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.fail(field, f"expected an integer {minimum}-{maximum}, got {_show(value)}")
        return value

    def vector(self, value: Any, field: str, length: int) -> np.ndarray:
        if not isinstance(value, list) or len(value) != length:
            self.fail(field, f"expected an array of {length} numbers, got {_show(value)}")
        return np.array([self.number(v, f"{field}[{i}]") for i, v in enumerate(value)])


def _range_text(minimum: float | None, maximum: float | None, above: float | None) -> str:
    if above is not None:
        return f" > {above:g}"
    if minimum is not None and maximum is not None:
        return f" in {minimum:g}-{maximum:g}"
    if minimum is not None:
        return f" >= {minimum:g}"
    return ""



# --- frames.csv ---------------------------------------------------------------------------


def _read_frames_csv(path: Path, label: str) -> tuple[np.ndarray, list[str], list[int]]:
    """(timestamps, tracking states, line number of each row); blank lines are skipped."""
    lines = read_text(path, label).splitlines()
    header = [cell.strip() for cell in lines[0].split(",")] if lines else []
    if header != CSV_HEADER:
        raise InputError(f"{label} line 1", f"expected the header {','.join(CSV_HEADER)}")
    times: list[float] = []
    tracking: list[str] = []
    line_numbers: list[int] = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{label} line {line_no}"
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != 3:
            raise InputError(where, f"expected 3 columns {','.join(CSV_HEADER)}, got {len(cells)}")
        index_text, time_text, state = cells
        expected = len(times)
        if not _INDEX.fullmatch(index_text) or int(index_text) != expected:
            raise InputError(
                where,
                f"index is {index_text[:20]!r}, expected {expected} "
                "(rows are numbered 0, 1, 2, ... without gaps)",
            )
        t = parse_number(time_text, where, "timestamp")
        if times and t <= times[-1]:
            raise InputError(
                where,
                f"timestamp {time_text} is not after the previous row's {times[-1]!r} "
                "(timestamps must be strictly increasing)",
            )
        if state not in TRACKING_STATES:
            raise InputError(
                where, f"tracking is {state[:20]!r}, expected tracking, limited or lost"
            )
        times.append(t)
        tracking.append(state)
        line_numbers.append(line_no)
    if not times:
        raise InputError(label, "no frame rows after the header (one row per video frame)")
    return np.array(times, dtype=np.float64), tracking, line_numbers
