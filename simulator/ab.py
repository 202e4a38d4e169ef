"""A/B: one scenario under two settings (pipeline settings, models or devices), compared.

``run_ab`` replays the scenario twice through the one engine (``run_scenario``), each run
writing its own reports and ``output.mp4`` into ``OUT/a`` and ``OUT/b``, then lines the two
reports up (``simulator.compare``) and writes ``OUT/compare.html``: the metric table with
deltas, both flicker curves on one chart, the budget checks whose result differs, and the
two phone screens at the same instants (a split slider over one view and a frame slider
that moves both). Frames are synchronized through the videos: video frame k of either run
is the screen at ``t0 + k / fps`` (``sinks/video_file.py``), so any two runs of one
scenario written with ``--output-video`` can be compared this way (``arsim compare``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from simulator.compare import SyncedFrame, compare_reports, write_compare_html
from simulator.errors import InputError
from simulator.run import RunOutcome, RunSettings, run_scenario
from simulator.scenario.video import iter_frames
from simulator.sinks.video_file import grid_frames
from simulator.work_cache import WorkCache

SYNCED_FRAMES = 12  # screens per run on the compare page
FRAME_SIDE = 360  # longer side of each screen on the page (pixels)


@dataclass(frozen=True, eq=False)
class ABResult:
    """Both runs, their comparison (``compare_reports``'s dict) and the synchronized
    screens; ``html`` the written page (None when a run ended early)."""

    outcomes: tuple[RunOutcome, ...]
    comparison: dict | None
    frames: list[SyncedFrame]
    html: Path | None


def synced_frames(videos: Sequence[Path], fps: float, length: int,
                  count: int = SYNCED_FRAMES, side: int = FRAME_SIDE,
                  start: int = 0) -> list[SyncedFrame]:
    """``count`` instants spread over video frames ``start`` .. ``length - 1``, each video's
    frame there, shrunk to ``side`` pixels on the longer side; an instant a video does not
    reach is left out. One decoding pass per video, stopping at the last instant."""
    if length < 1:
        return []
    start = min(max(0, start), length - 1)
    wanted = sorted({round(k) for k in np.linspace(start, length - 1,
                                                    min(count, length - start))})
    per_video = []
    for video in videos:
        picked = {}
        for k, image in enumerate(iter_frames(video)):
            if k in wanted:
                picked[k] = _shrink(image, side)
            if k >= wanted[-1]:
                break
        per_video.append(picked)
    return [SyncedFrame(k, k / fps, tuple(p[k] for p in per_video))
            for k in wanted if all(k in p for p in per_video)]


def comparison_frames(comparison: dict, count: int = SYNCED_FRAMES) -> list[SyncedFrame]:
    """Synchronized screens of the compared reports when each report's folder holds its
    run's ``output.mp4`` (``--output-video``); none otherwise."""
    entries = comparison["reports"]
    videos = [Path(entry["path"]).parent / "output.mp4" for entry in entries]
    if not all(video.is_file() for video in videos):
        return []
    fps = float(entries[0]["report"]["scenario"].get("fps") or 30.0)
    # output.mp4's frames lie on the camera's nominal grid (sinks/video_file.py): the
    # length follows from the reports' capture times, no counting pass over the videos
    length = min(_video_frames(entry["report"], fps) for entry in entries)
    start = max(first_screen(entry["report"], fps) for entry in entries)
    return synced_frames(videos, fps, length, count, start=start)


def _video_frames(report: dict, fps: float) -> int:
    times = [f.get("t_capture") for f in report.get("frames") or [] if isinstance(f, dict)]
    times = [t for t in times if isinstance(t, int | float) and math.isfinite(t)]
    return grid_frames(times[0], times[-1], fps) if times else 0


def first_screen(report: dict, fps: float) -> int:
    """The first video frame (of ``output.mp4``) that shows a result, not the black screen
    before it; 0 when the report does not say."""
    display, frames = report.get("display") or [], report.get("frames") or []
    shown = display[0].get("t") if display and isinstance(display[0], dict) else None
    captured = frames[0].get("t_capture") if frames and isinstance(frames[0], dict) else None
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (shown, captured)):
        return 0
    return max(0, math.ceil((shown - captured) * fps - 1e-9))


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def run_ab(
    scenario: str | Path,
    a: RunSettings,
    b: RunSettings,
    out_dir: Path,
    *,
    names: tuple[str, str] = ("A", "B"),
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
    frames: int = SYNCED_FRAMES,
    cache: WorkCache | None = None,
) -> ABResult:
    """Replay ``scenario`` under ``a`` then ``b`` (both with ``output.mp4``) and compare
    them, the columns headed by ``names``; ``progress("a" or "b")`` gives each run's
    ``(done, total)`` callback; with ``cache``, B reuses what A computed alike. When a run
    ends early (Ctrl-C, SIGTERM) the other is not started and no comparison is written: the
    partial run's own reports say where it stopped."""
    out_dir = Path(out_dir)
    outcomes = []
    for name, settings in (("a", a), ("b", b)):
        if settings.timing_only:
            raise InputError(f"settings {name.upper()}", "an A/B comparison shows frames: it "
                             "cannot run timing-only")
        outcome = run_scenario(scenario, replace(settings, output_video=True), out_dir / name,
                               progress=progress(name) if progress else None, cache=cache)
        outcomes.append(outcome)
        if not outcome.report["complete"]:
            return ABResult(tuple(outcomes), None, [], None)
    comparison = compare_reports([out_dir / "a" / "report.json", out_dir / "b" / "report.json"],
                                 names)
    screens = comparison_frames(comparison, frames)
    html = write_compare_html(comparison, out_dir / "compare.html", frames=screens)
    return ABResult(tuple(outcomes), comparison, screens, html)
