"""Timing metrics from a replay timeline: FPS, latency, frame intervals, jank, drops.

Definitions (the README's "Metrics" section says the same in prose). Rates come from
timestamps, not from counts in a time window (a count steps by one frame: at 2 FPS over a
few seconds one step is 10-20 % of the value):
- display interval: time between two consecutive new results on screen, never across a
  background period (the first result after one starts afresh);
- display FPS: the rate of those intervals, (number of intervals) / (their summed time) =
  1 / mean interval. A stall at the end counts: the open interval from the last result to
  the end of the session (foreground time only) is one more interval when it is longer
  than the median interval, so an app that stops showing results does not keep the rate
  it had before. With no interval (fewer than two results, or each after a background
  period) it is results / foreground seconds (0 with none);
- inference interval: time between two consecutive finished inferences, never across a
  background period;
- inference FPS: completed inferences per second, measured between the first and the last
  completion (so start-up and the unfinished tail do not bias it), background time excluded;
- latency (motion-to-photon): display time minus capture time of the frame whose camera
  pose the picture shows (a result re-projected to a newer pose counts from that frame);
- content age: display time minus capture time of the stylized frame whose content is
  shown (equal to the latency unless results are re-projected);
- jank: a display interval longer than the run's own cadence plus one display refresh,
  where the cadence is the median interval (never shorter than the camera interval): a
  steady 10 FPS is slow but smooth, and it is the FPS budget that judges it; jank is a
  hitch in delivery;
- slow / frozen: intervals longer than the FPS budget's frame time / longer than 700 ms;
- dropped: camera frames whose content never reached the screen (not counting frames a
  policy chose to skip, which are reported as skipped);
- samples: how many values each statistic rests on: ``display_intervals`` the intervals
  display FPS averages (the stall at the end included; 0 when it fell back to the count),
  ``inference_intervals`` completions - 1 (0 when inference FPS is null), ``latencies`` the
  results shown. ``display_interval_ms`` / ``inference_interval_ms`` carry their own
  ``n``; ``frame_interval_ms`` is ``display_interval_ms`` under its older name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

FROZEN_S = 0.7


@dataclass(frozen=True)
class Shown:
    """One new result on screen."""

    t_display: float
    t_capture: float  # of the frame whose pose the picture is aligned to (motion-to-photon)
    after_gap: bool  # first result after a background period (its interval is not counted)
    t_source: float | None = None  # of the stylized frame whose content it shows


def _percentiles(values_ms: Sequence[float], names: Sequence[int]) -> dict[str, float | None]:
    if not values_ms:
        return {f"p{p}": None for p in names}
    arr = np.asarray(values_ms, dtype=np.float64)
    return {f"p{p}": float(np.percentile(arr, p)) for p in names}


def _intervals_ms(values_s: Sequence[float], names: Sequence[int]) -> dict[str, float | int | None]:
    """Percentiles of intervals given in seconds, in ms, with ``n``: their sample count."""
    return {**_percentiles([1000.0 * dt for dt in values_s], names), "n": len(values_s)}


def _away(start: float, end: float, background: Sequence[tuple[float, float]]) -> float:
    """Background time within [start, end]."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in background)


def _display_rate(
    shown: Sequence[Shown],
    intervals: Sequence[float],
    *,
    background: Sequence[tuple[float, float]],
    foreground_s: float,
    session_end: float,
) -> tuple[float, int]:
    """(display FPS, intervals it averages): the module docstring's definition."""
    total, n = sum(intervals), len(intervals)
    if n and total > 0:
        stall = session_end - shown[-1].t_display - _away(shown[-1].t_display, session_end,
                                                           background)
        # an app that stopped showing results (1 ns of slack for float noise, as jank's)
        if stall > float(np.median(intervals)) + 1e-9:
            total, n = total + stall, n + 1
        return n / total, n
    return (len(shown) / foreground_s if foreground_s > 0 else 0.0), 0


def timing_metrics(
    *,
    shown: Sequence[Shown],
    inference_done_times: Sequence[float],
    background: Sequence[tuple[float, float]],
    foreground_s: float,
    camera_fps: float,
    display_hz: float,
    min_display_fps: float,
    dropped_frames: int,
    skipped_frames: int,
    stylized_frames: int,
    session_start: float = 0.0,
) -> dict:
    """The timing part of ``report.json``'s ``metrics``. Times are seconds on one clock;
    ``session_start`` is the session's first capture on it (0 for replays and device
    reports, whose times count from it): the session ends ``foreground_s`` plus the
    background time later."""
    latencies = [1000.0 * (s.t_display - s.t_capture) for s in shown]
    intervals = [
        b.t_display - a.t_display for a, b in pairwise(shown) if not b.after_gap
    ]
    cadence = max(1.0 / camera_fps, float(np.median(intervals))) if intervals else 0.0
    jank_limit = cadence + 1.0 / display_hz
    janky = sum(1 for dt in intervals if dt > jank_limit + 1e-9)
    session_end = session_start + foreground_s + sum(b - a for a, b in background)
    display_fps, display_samples = _display_rate(
        shown, intervals, background=background, foreground_s=foreground_s,
        session_end=session_end,
    )
    done = list(inference_done_times)
    inference_fps = None
    if len(done) >= 2:
        span = done[-1] - done[0] - _away(done[0], done[-1], background)
        inference_fps = (len(done) - 1) / span if span > 0 else None
    inference_intervals = [
        b - a for a, b in pairwise(done) if not any(s < b and a < e for s, e in background)
    ]
    latency = _percentiles(latencies, (50, 95, 99))
    latency["mean"] = float(np.mean(latencies)) if latencies else None
    ages = [1000.0 * (s.t_display - (s.t_source if s.t_source is not None else s.t_capture))
            for s in shown]
    display_interval_ms = _intervals_ms(intervals, (50, 90, 95, 99))
    return {
        "display_fps": display_fps,
        "inference_fps": inference_fps,
        "latency_ms": latency,
        "content_age_ms": _percentiles(ages, (50, 95)),
        "frame_interval_ms": display_interval_ms,
        "display_interval_ms": dict(display_interval_ms),
        "inference_interval_ms": _intervals_ms(inference_intervals, (50, 95)),
        "jank_pct": 100.0 * janky / len(intervals) if intervals else 0.0,
        "slow_frames": sum(1 for dt in intervals if dt > 1.0 / min_display_fps + 1e-9),
        "frozen_frames": sum(1 for dt in intervals if dt > FROZEN_S),
        "dropped_frames": dropped_frames,
        "skipped_frames": skipped_frames,
        "stylized_frames": stylized_frames,
        "displayed_frames": len(shown),
        "samples": {
            "display_intervals": display_samples,
            "inference_intervals": len(done) - 1 if inference_fps is not None else 0,
            "latencies": len(latencies),
        },
    }
