"""``load_scenario``: read a scenario folder or ``.zip`` and validate every file and field.

Each problem is an InputError naming the file (``walk/frames.csv line 7``), the field and
what was expected. ``validate_scenario`` collects every problem it can find (one line
each) and the warnings (pose jumps, gaps); ``load_scenario`` raises them as one error.
The rules are those of ``scenarios/README.md`` (formats ``arsim-scenario/1`` and ``/1.1``).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import JSON_CAP, check_user_file
from simulator.scenario.archive import safe_extract
from simulator.scenario.continuity import find_discontinuities
from simulator.scenario.model import Anchor, Scenario, ScenarioEvent, file_label
from simulator.scenario.poses import (
    UNIT_TOLERANCE,
    Trajectory,
    parse_number,
    parse_tum,
    read_text,
)
from simulator.scenario.video import FRAMES_DIR, count_frames, frame_size
from simulator.types import DISTORTION_MODELS, Distortion, Intrinsics

FORMAT = "arsim-scenario/1"
FORMAT_1_1 = "arsim-scenario/1.1"
FORMATS = (FORMAT, FORMAT_1_1)
TRACKING_STATES = ("tracking", "limited", "lost")
UNAVAILABLE = "unavailable"  # 1.1, a scenario without poses
EXPECT_KEYS = (
    "min_display_fps",
    "max_latency_p95_ms",
    "max_jank_pct",
    "max_flicker",
    "max_memory_mb",
    "max_oom_events",
)
CSV_HEADER = ["index", "timestamp", "tracking"]
INTRINSICS_HEADER = ["index", "fx", "fy", "cx", "cy"]
SOURCE_TEXT = ("device", "app", "recorded", "format", "clock", "axes", "notes")
SOURCE_NUMBERS = ("clock_offset_s", "scale")
FPS_TOLERANCE = 0.10  # declared fps within ±10 % of the rate the frame times give
MAX_FRAME_INTERVAL_S = 5.0  # a median frame interval above this is a unit mistake
NOMINAL_DEPTH_M = 2.0  # the depth a non-metric scene's typical depth is taken as
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_INDEX = re.compile(r"\d{1,12}")
_MAX_DESCRIPTION = 2000
_MAX_PROBLEMS_PER_FILE = 20
_FIELDS_1_1 = ("poses", "intrinsics")
_TOP_FIELDS = ("format", "name", "video", "fps", "camera", "description", "source", "anchors",
               "events", "expect", *_FIELDS_1_1)
_IDENTITY = (0.0, 0.0, 0.0, 1.0)


class ScenarioProblems(InputError):
    """Several problems in one scenario: the message is the first, ``problems`` all."""

    def __init__(self, problems: list[InputError]) -> None:
        first = problems[0]
        more = len(problems) - 1
        tail = f" (and {more} more: arsim scenario validate lists them)" if more else ""
        super().__init__(first.where, first.problem + tail)
        self.problems = problems


@dataclass
class Validation:
    """Every problem found (``problems``, one line each) and warnings; ``scenario`` when
    there was no problem (the caller closes it)."""

    problems: list[InputError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scenario: Scenario | None = None


class _Collector:
    """Gathers problems instead of stopping at the first; ``part`` runs one independent
    check and records its InputError. Files stop adding rows after a cap."""

    def __init__(self) -> None:
        self.problems: list[InputError] = []
        self._per_label: dict[str, int] = {}

    def add(self, problem: InputError) -> None:
        key = problem.where.split(" line ")[0]
        count = self._per_label.get(key, 0) + 1
        self._per_label[key] = count
        if count <= _MAX_PROBLEMS_PER_FILE:
            self.problems.append(problem)
        elif count == _MAX_PROBLEMS_PER_FILE + 1:
            self.problems.append(InputError(key, "more problems not listed"))

    @contextmanager
    def part(self) -> Iterator[None]:
        try:
            yield
        except ScenarioProblems as many:
            for problem in many.problems:
                self.add(problem)
        except InputError as problem:
            self.add(problem)


def load_scenario(path: str | Path) -> Scenario:
    """Load and fully validate a scenario folder or a ``.zip`` of one; every problem found
    is raised as one ``ScenarioProblems`` (an InputError).

    A zip is extracted (safely) to a temporary folder that ``Scenario.close()`` removes;
    use the scenario as a context manager.
    """
    result = validate_scenario(path)
    if result.problems:
        raise ScenarioProblems(result.problems)
    assert result.scenario is not None
    return result.scenario


def validate_scenario(path: str | Path) -> Validation:
    """Every problem and warning of a scenario (nothing raised for the scenario's own
    content; a missing path or broken zip is one problem)."""
    given = Path(path)
    try:
        if given.is_dir():
            meta_file = given / "scenario.json"
            if not meta_file.exists() and not meta_file.is_symlink():
                raise InputError(given, _not_a_scenario(given))
            return _load_folder(given, given, None)
        if not given.exists():
            raise InputError(given, "no such scenario folder or .zip file")
        if given.suffix.lower() != ".zip" and not zipfile.is_zipfile(given):
            raise InputError(
                given,
                "expected a scenario folder or a .zip of one (a recording from a capture "
                "app? convert it with: arsim scenario import SRC OUT)",
            )
        check_user_file(given, str(given))
    except InputError as problem:
        return Validation(problems=[problem])
    extracted = tempfile.TemporaryDirectory(prefix="arsim-scenario-")
    try:
        root = safe_extract(given, Path(extracted.name))
        result = _load_folder(root, given, extracted)
    except InputError as problem:
        extracted.cleanup()
        return Validation(problems=[problem])
    except BaseException:
        extracted.cleanup()
        raise
    if result.scenario is None:
        extracted.cleanup()
    return result


def _not_a_scenario(folder: Path) -> str:
    """The message for a folder without scenario.json: a capture, if one is recognised."""
    from simulator.scenario.importers import detect

    try:
        fmt = detect(folder).name
    except InputError:
        return "no scenario.json: not a scenario folder (nor a recording arsim can import)"
    return (f"no scenario.json: this looks like a {fmt} recording; convert it with "
            f"arsim scenario import {folder} OUT")


def _load_folder(
    root: Path, given: Path, extracted: tempfile.TemporaryDirectory | None
) -> Validation:
    def label(name: str) -> str:
        return file_label(given, name, zipped=extracted is not None)

    found = _Collector()
    json_label = label("scenario.json")
    meta: _Metadata | None = None
    with found.part():
        data = _read_json(root / "scenario.json", json_label, root)
        meta = _Metadata(data, _Checker(json_label), found)

    frames: _FrameRows | None = None
    with found.part():
        frames = _read_frames_csv(root / "frames.csv", label("frames.csv"), root, found)
    frame_times = origin = None
    if frames is not None and not frames.bad:
        with found.part():
            origin = frames.origin
            frame_times = frames.session_times()
    posed = meta.poses_available if meta is not None else True
    trajectory: Trajectory | None = None
    if posed:
        with found.part():
            trajectory = parse_tum(
                root / "poses.txt", label("poses.txt"), origin=origin, root=root, report=found.add
            )
    elif frame_times is not None:
        trajectory = _still_trajectory(frame_times)

    if frames is not None and trajectory is not None and frame_times is not None and posed:
        with found.part():
            _check_coverage(frame_times, trajectory, frames, label("frames.csv"))
    if frames is not None and meta is not None:
        with found.part():
            _check_tracking_states(frames, posed, label("frames.csv"))
        if frame_times is not None:
            with found.part():
                _check_fps(meta.fps, frame_times, json_label)

    camera = meta.camera if meta is not None else None
    if meta is not None and camera is not None:
        with found.part():
            _check_video(root, meta.video, label(meta.video), camera, json_label,
                         len(frames.times) if frames is not None else None, label("frames.csv"))
    intrinsics = None
    if meta is not None and meta.intrinsics_file is not None and frames is not None:
        with found.part():
            intrinsics = _read_intrinsics(
                root / meta.intrinsics_file, label(meta.intrinsics_file), root,
                len(frames.times), meta.camera,
            )
    if meta is not None and not posed and meta.anchors:
        found.add(InputError(json_label, "anchors: a scenario without poses cannot place "
                             "anchors (poses.available is false)"))

    if found.problems:
        return Validation(problems=found.problems)
    assert meta is not None and frames is not None and trajectory is not None
    assert frame_times is not None and origin is not None
    scale, scale_source, depth_m = _resolve_scale(meta, trajectory, frame_times)
    if scale is not None and scale != 1.0:
        trajectory = Trajectory(trajectory.times, trajectory.positions * scale,
                                trajectory.quaternions)
    anchors = [_scaled_anchor(a, scale) for a in meta.anchors]
    discontinuities = (
        find_discontinuities(frame_times, trajectory, metric=scale is not None)
        if posed else find_discontinuities(frame_times, None, metric=False)
    )
    warnings = [
        f"{label('poses.txt' if d.kind.startswith('pose') else 'frames.csv')}: "
        f"{d.kind} before frame {d.frame} (t={d.t:.3f} s): {d.detail}"
        for d in discontinuities
    ]
    if posed and scale is None:
        warnings.append(f"{json_label}: poses are not metric and no scene depth is known: "
                        "pose smoothing and warped reuse are refused for this scenario")
    events = [
        ScenarioEvent(t=max(0.0, float(Decimal(repr(ev.t)) - origin)), type=ev.type,
                      mb=ev.mb, factor=ev.factor)
        for ev in meta.events
    ]
    scenario = Scenario(
        root=root,
        source_path=given,
        name=meta.name,
        description=meta.description,
        video=meta.video,
        fps=meta.fps,
        camera=meta.camera,
        source=meta.source,
        anchors=anchors,
        events=events,
        expect=meta.expect,
        frame_times=frame_times,
        tracking=frames.tracking,
        trajectory=trajectory,
        extracted=extracted,
        format=meta.format,
        # the recording's own clock: what the importer rebased, plus this file's origin
        clock_offset_s=float(origin + Decimal(repr(float(meta.source.get("clock_offset_s", 0))))),
        intrinsics=intrinsics,
        poses_available=posed,
        metric=meta.metric,
        pose_scale=scale,
        scale_source=scale_source,
        scene_depth_m=depth_m,
        discontinuities=tuple(discontinuities),
        warnings=tuple(warnings),
    )
    return Validation(warnings=warnings, scenario=scenario)


def _still_trajectory(frame_times: np.ndarray) -> Trajectory:
    """A scenario without poses: the camera stands still at the origin (identity), so
    everything that does not need a pose runs unchanged."""
    end = float(frame_times[-1]) if frame_times[-1] > frame_times[0] else 1.0
    return Trajectory(
        times=np.array([float(frame_times[0]), end]),
        positions=np.zeros((2, 3)),
        quaternions=np.tile(np.array(_IDENTITY), (2, 1)),
    )


def _check_coverage(
    frame_times: np.ndarray, trajectory: Trajectory, frames: _FrameRows, csv_label: str
) -> None:
    outside = np.nonzero((frame_times < trajectory.start) | (frame_times > trajectory.end))[0]
    if outside.size:
        row = int(outside[0])
        origin = frames.origin
        start, end = (Decimal(repr(t)) + origin for t in (trajectory.start, trajectory.end))
        raise InputError(
            f"{csv_label} line {frames.lines[row]}",
            f"timestamp {frames.times[row]} is outside the poses.txt time range "
            f"[{start.normalize()}, {end.normalize()}] ({len(outside)} frames are; poses are "
            "not extrapolated)",
        )


def _check_tracking_states(frames: _FrameRows, posed: bool, csv_label: str) -> None:
    for state, line in zip(frames.tracking, frames.lines, strict=True):
        if posed and state == UNAVAILABLE:
            raise InputError(f"{csv_label} line {line}", "tracking 'unavailable' is only for "
                             "scenarios without poses (poses.available false)")
        if not posed and state != UNAVAILABLE:
            raise InputError(f"{csv_label} line {line}", f"tracking is {state!r}, expected "
                             "'unavailable' (the scenario has no poses)")


def _check_fps(fps: float | None, frame_times: np.ndarray, json_label: str) -> None:
    """The declared fps must match the frame times: it sets the session's end and the
    camera rate the metrics judge against."""
    if fps is None or len(frame_times) < 3:
        return
    median = float(np.median(np.diff(frame_times)))
    measured = 1.0 / median
    if abs(fps / measured - 1.0) > FPS_TOLERANCE:
        raise InputError(
            json_label,
            f"fps: declared {fps:g} but the frame times give {measured:.2f} fps (median "
            f"interval {1000 * median:.1f} ms); expected the measured rate within "
            f"{FPS_TOLERANCE:.0%}",
        )


def _check_video(
    root: Path,
    video: str,
    video_label: str,
    camera: Intrinsics,
    json_label: str,
    rows: int | None,
    csv_label: str,
) -> None:
    video_path = root / video.rstrip("/")
    if video == FRAMES_DIR and not video_path.is_dir():
        raise InputError(video_label, "folder not found (scenario.json video is 'frames/')")
    if video != FRAMES_DIR:
        if video_path.is_dir():
            raise InputError(video_label, "is a folder, expected the video file named by "
                             "scenario.json video")
        if not video_path.exists():
            raise InputError(video_label, "video file not found (named by scenario.json video)")
        check_user_file(video_path, video_label, root=root)
    else:
        from simulator.safe_files import inside_root

        inside_root(video_path, video_label, root)
    width, height = frame_size(video_path, video_label)
    if (width, height) != (camera.width, camera.height):
        raise InputError(
            json_label,
            f"camera.width x camera.height is {camera.width}x{camera.height} "
            f"but the frames of {video} are {width}x{height} (they must be equal)",
        )
    frames_in_video = count_frames(video_path, video_label)
    if rows is not None and frames_in_video != rows:
        raise InputError(
            csv_label,
            f"{rows} frame rows but {video} holds {frames_in_video} frames "
            "(expected one row per video frame)",
        )


def _read_intrinsics(
    path: Path, file_label_: str, root: Path, frames: int, camera: Intrinsics
) -> np.ndarray:
    """``intrinsics.csv``: index,fx,fy,cx,cy, one row per frame (autofocus, zoom)."""
    lines = read_text(path, file_label_, root=root).splitlines()
    header = [c.strip() for c in lines[0].split(",")] if lines else []
    if header != INTRINSICS_HEADER:
        raise InputError(f"{file_label_} line 1",
                         f"expected the header {','.join(INTRINSICS_HEADER)}")
    rows = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{file_label_} line {line_no}"
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 5:
            raise InputError(where, f"expected 5 columns {','.join(INTRINSICS_HEADER)}")
        if not _INDEX.fullmatch(cells[0]) or int(cells[0]) != len(rows):
            raise InputError(where, f"index is {cells[0][:20]!r}, expected {len(rows)}")
        fx, fy, cx, cy = (
            parse_number(c, where, n) for c, n in zip(cells[1:], INTRINSICS_HEADER[1:], strict=True)
        )
        if fx <= 0 or fy <= 0 or not (0 <= cx <= camera.width and 0 <= cy <= camera.height):
            raise InputError(where, "expected fx, fy > 0 and the principal point in the image")
        rows.append((fx, fy, cx, cy))
    if len(rows) != frames:
        raise InputError(file_label_, f"{len(rows)} rows, expected one per frame ({frames})")
    return np.array(rows, dtype=np.float64)


def _resolve_scale(
    meta: _Metadata, trajectory: Trajectory, frame_times: np.ndarray
) -> tuple[float | None, str, float | None]:
    """(metres per file unit, where that came from, scene depth in metres)."""
    if meta.metric:
        depth = meta.scene_depth
        return 1.0, "metric poses", depth
    if meta.scale is not None:
        depth = meta.scene_depth * meta.scale if meta.scene_depth is not None else None
        return meta.scale, "poses.scale", depth
    if meta.scene_depth is not None:
        return NOMINAL_DEPTH_M / meta.scene_depth, "poses.scene_depth", NOMINAL_DEPTH_M
    depth = _anchor_depth(meta.anchors, trajectory, frame_times)
    if depth is not None:
        return NOMINAL_DEPTH_M / depth, "anchor distance", NOMINAL_DEPTH_M
    return None, "unknown", None


def _anchor_depth(
    anchors: list[Anchor], trajectory: Trajectory, frame_times: np.ndarray
) -> float | None:
    """Median distance (file units) from the camera to the nearest anchor in front of it."""
    if not anchors:
        return None
    positions, quats = trajectory.at_many(frame_times)
    from simulator.scenario.importers.convert import quat_to_matrix

    forward = -quat_to_matrix(quats)[:, :, 2]
    depths = []
    for anchor in anchors:
        rel = anchor.position[None, :] - positions
        depths.append(np.where(np.sum(rel * forward, axis=1) > 0,
                               np.linalg.norm(rel, axis=1), np.inf))
    nearest = np.min(np.stack(depths), axis=0)
    nearest = nearest[np.isfinite(nearest)]
    if not nearest.size or float(np.median(nearest)) <= 0:
        return None
    return float(np.median(nearest))


def _scaled_anchor(anchor: Anchor, scale: float | None) -> Anchor:
    if scale is None or scale == 1.0:
        return anchor
    return Anchor(anchor.id, anchor.position * scale, anchor.rotation, anchor.size * scale)


# --- scenario.json ------------------------------------------------------------------------


def _read_json(path: Path, label: str, root: Path | None = None) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise InputError(label, f"field {key!r} appears twice in one object")
            obj[key] = value
        return obj

    def no_constants(name: str) -> NoReturn:
        raise InputError(label, f"{name} is not valid JSON (numbers must be finite)")

    from simulator.safe_files import read_user_text

    text = read_user_text(path, label, cap=JSON_CAP, root=root)
    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise InputError(
            label, f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise InputError(label, "JSON nested too deeply") from None
    except ValueError:  # an integer literal with thousands of digits
        raise InputError(label, "a number has too many digits (at most 4300); expected an "
                         "ordinary number") from None


def _show(value: Any) -> str:
    """A short JSON rendering of a bad value for an error message."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Metadata:
    """The parsed, validated fields of ``scenario.json``; each field's problem is reported
    to ``found`` and the others are still checked."""

    def __init__(self, data: Any, check: _Checker, found: _Collector) -> None:
        self.check = check
        obj = check.object(data, "", optional=_TOP_FIELDS)  # unknown fields (typos) first
        if "format" not in obj:
            check.fail("format", "missing required field")
        fmt = obj["format"]
        if fmt not in FORMATS:
            check.fail("format", f"expected {' or '.join(map(repr, FORMATS))}, got {_show(fmt)}")
        self.format = fmt
        newer = fmt == FORMAT_1_1
        for key in _FIELDS_1_1:
            if key in obj and not newer:
                found.add(InputError(check.label, f"{key}: a field of {FORMAT_1_1} (the file "
                                     f"says {fmt}; change format to {FORMAT_1_1!r})"))
        for key in ("name", "video", "fps", "camera"):
            if key not in obj:
                found.add(InputError(check.label, f"{key}: missing required field"))

        def field(key: str, parse: Callable[[Any], Any], default: Any) -> Any:
            if key not in obj:
                return default
            try:
                return parse(obj[key])
            except InputError as problem:
                found.add(problem)
                return default

        self.name = field("name", self._name, "scenario")
        self.description = field("description", self._description, "")
        self.video = field("video", self._video, None)
        self.fps = field("fps", lambda v: check.number(v, "fps", minimum=1, maximum=240), None)
        self.camera = field("camera", self._camera, None)
        self.source = field("source", self._source, {})
        self.anchors = field("anchors", self._anchors, [])
        self.events = field("events", self._events, [])
        self.expect = field("expect", self._expect, {})
        poses = field("poses", self._poses, {})
        self.poses_available = poses.get("available", True)
        self.metric = poses.get("metric", True)
        self.scale = poses.get("scale")
        self.scene_depth = poses.get("scene_depth")
        self.intrinsics_file = field("intrinsics", self._file_name, None)
        if self.video is None or self.camera is None or self.fps is None:
            self.camera = None  # the video and its frames cannot be checked

    def _name(self, value: Any) -> str:
        name = self.check.string(value, "name")
        if not _NAME.fullmatch(name):
            self.check.fail(
                "name", f"expected 1-64 characters of [A-Za-z0-9._-], got {_show(name)}"
            )
        return name

    def _description(self, value: Any) -> str:
        text = self.check.string(value, "description")
        if len(text) > _MAX_DESCRIPTION:
            self.check.fail("description", f"at most {_MAX_DESCRIPTION} characters")
        return text

    def _file_name(self, value: Any) -> str:
        name = self.check.string(value, "intrinsics")
        if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
            self.check.fail("intrinsics", "expected a file name in the scenario folder")
        return name

    def _poses(self, value: Any) -> dict[str, Any]:
        check = self.check
        obj = check.object(value, "poses", optional=("available", "metric", "scale",
                                                     "scene_depth"))
        out: dict[str, Any] = {}
        for key in ("available", "metric"):
            if key in obj:
                if not isinstance(obj[key], bool):
                    check.fail(f"poses.{key}", f"expected true or false, got {_show(obj[key])}")
                out[key] = obj[key]
        for key in ("scale", "scene_depth"):
            if key in obj:
                out[key] = check.number(obj[key], f"poses.{key}", above=0)
        if out.get("metric", True) and "scale" in out:
            check.fail("poses.scale", "only for non-metric poses (poses.metric false): it "
                       "says how many metres one pose unit is")
        return out

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
        cam = check.object(value, "camera", required=("width", "height", "fx", "fy", "cx", "cy"),
                           optional=("distortion",))
        width = check.integer(cam["width"], "camera.width", minimum=16, maximum=8192)
        height = check.integer(cam["height"], "camera.height", minimum=16, maximum=8192)
        distortion = None
        if "distortion" in cam:
            dist = check.object(cam["distortion"], "camera.distortion",
                                required=("model", "coeffs"))
            model = check.string(dist["model"], "camera.distortion.model")
            counts = DISTORTION_MODELS.get(model)
            if counts is None:
                check.fail("camera.distortion.model",
                           f"expected {' or '.join(DISTORTION_MODELS)}, got {_show(model)}")
            coeffs = check.array(dist["coeffs"], "camera.distortion.coeffs")
            if len(coeffs) not in counts:
                check.fail("camera.distortion.coeffs", f"{model} takes "
                           f"{' or '.join(map(str, counts))} coefficients, got {len(coeffs)}")
            distortion = Distortion(model, tuple(
                check.number(c, f"camera.distortion.coeffs[{i}]") for i, c in enumerate(coeffs)
            ))
        return Intrinsics(
            width=width,
            height=height,
            fx=check.number(cam["fx"], "camera.fx", above=0),
            fy=check.number(cam["fy"], "camera.fy", above=0),
            cx=check.number(cam["cx"], "camera.cx", minimum=0, maximum=width),
            cy=check.number(cam["cy"], "camera.cy", minimum=0, maximum=height),
            distortion=distortion,
        )

    def _source(self, value: Any) -> dict[str, Any]:
        newer = self.format == FORMAT_1_1
        allowed = (*SOURCE_TEXT, *SOURCE_NUMBERS) if newer else ("device", "app", "recorded")
        source = self.check.object(value, "source", optional=allowed)
        out: dict[str, Any] = {
            key: (self.check.number(item, f"source.{key}") if key in SOURCE_NUMBERS
                  else self.check.string(item, f"source.{key}"))
            for key, item in source.items()
        }
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
                shown = key if key.isprintable() else json.dumps(key)  # "\n" stays one line
                self.fail(
                    f"{prefix}{shown}",
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


@dataclass
class _FrameRows:
    """frames.csv as read: timestamps as written (decimal text), tracking states, lines."""

    times: list[str]
    tracking: list[str]
    lines: list[int]
    label: str
    bad: int = 0  # rows reported as problems (their placeholders are not real times)

    @property
    def origin(self) -> Decimal:
        return Decimal(self.times[0])

    def session_times(self) -> np.ndarray:
        """Seconds from the first frame, computed exactly in decimal and only then rounded
        to floats: the same session on an epoch, boot-time or zero-based clock gives the
        same numbers. Refuses a clock whose unit is not seconds."""
        origin = self.origin
        rel = np.array([float(Decimal(t) - origin) for t in self.times], dtype=np.float64)
        if len(rel) >= 2:
            median = float(np.median(np.diff(rel)))
            if median > MAX_FRAME_INTERVAL_S:
                raise InputError(self.label, _unit_hint(median))
        return rel


def _unit_hint(median: float) -> str:
    for unit, factor in (("nanoseconds", 1e9), ("microseconds", 1e6), ("milliseconds", 1e3)):
        if median / factor <= MAX_FRAME_INTERVAL_S and median / factor >= 1e-3:
            return (
                f"timestamps look like {unit} (median frame interval {median:.6g}); "
                f"frames.csv and poses.txt take seconds: divide both by {factor:g}, or import "
                "the recording with arsim scenario import, which converts clocks"
            )
    return (f"median frame interval is {median:.6g} s; expected seconds between frames "
            f"(at most {MAX_FRAME_INTERVAL_S:g} s)")


def _read_frames_csv(path: Path, label: str, root: Path, found: _Collector) -> _FrameRows:
    """frames.csv rows; a bad row is reported to ``found`` and skipped (blank lines are
    ignored). Raises only when no row can be used."""
    lines = read_text(path, label, root=root).splitlines()
    header = [cell.strip() for cell in lines[0].split(",")] if lines else []
    if header != CSV_HEADER:
        raise InputError(f"{label} line 1", f"expected the header {','.join(CSV_HEADER)}")
    rows = _FrameRows([], [], [], label)
    previous: Decimal | None = None
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{label} line {line_no}"
        try:
            time_text, state = _frame_row(line, where, len(rows.times), previous)
        except InputError as problem:
            found.add(problem)
            rows.bad += 1
            rows.times.append("0")  # keep the numbering: later rows are judged on their own
            rows.tracking.append("lost")
            rows.lines.append(line_no)
            continue
        previous = Decimal(time_text)
        rows.times.append(time_text)
        rows.tracking.append(state)
        rows.lines.append(line_no)
    if not rows.times:
        raise InputError(label, "no frame rows after the header (one row per video frame)")
    return rows


def _frame_row(line: str, where: str, expected: int, previous: Decimal | None) -> tuple[str, str]:
    cells = [cell.strip() for cell in line.split(",")]
    if len(cells) != 3:
        raise InputError(where, f"expected 3 columns {','.join(CSV_HEADER)}, got {len(cells)}")
    index_text, time_text, state = cells
    if not _INDEX.fullmatch(index_text) or int(index_text) != expected:
        raise InputError(
            where,
            f"index is {index_text[:20]!r}, expected {expected} "
            "(rows are numbered 0, 1, 2, ... without gaps)",
        )
    parse_number(time_text, where, "timestamp")
    if previous is not None and Decimal(time_text) <= previous:
        raise InputError(
            where,
            f"timestamp {time_text} is not after the previous row's {previous} "
            "(timestamps must be strictly increasing)",
        )
    if state not in (*TRACKING_STATES, UNAVAILABLE):
        raise InputError(
            where, f"tracking is {state[:20]!r}, expected tracking, limited or lost"
        )
    return time_text, state
