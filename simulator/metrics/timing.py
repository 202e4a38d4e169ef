"""Timing metrics from a replay timeline: FPS, latency, frame intervals, jank, drops.

Definitions (the README's "Metrics" section says the same in prose):
- display FPS: new stylized results shown per second of foreground time;
- inference FPS: completed inferences per second, measured between the first and the last
  completion (so start-up and the unfinished tail do not bias it), background time excluded;
- latency (motion-to-photon): display time minus capture time of the frame whose camera
  pose the picture shows (a result re-projected to a newer pose counts from that frame);
- content age: display time minus capture time of the stylized frame whose content is
  shown (equal to the latency unless results are re-projected);
- frame interval: time between two consecutive new results on screen (never across a
  background period);
- jank: an interval longer than the run's own cadence plus one display refresh, where the
  cadence is the median interval (never shorter than the camera interval): a steady 10 FPS
  is slow but smooth, and it is the FPS budget that judges it; jank is a hitch in delivery;
- slow / frozen: intervals longer than the FPS budget's frame time / longer than 700 ms;
- dropped: camera frames whose content never reached the screen (not counting frames a
  policy chose to skip, which are reported as skipped).
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
) -> dict:
    """The timing part of ``report.json``'s ``metrics``."""
    latencies = [1000.0 * (s.t_display - s.t_capture) for s in shown]
    intervals = [
        b.t_display - a.t_display for a, b in pairwise(shown) if not b.after_gap
    ]
    cadence = max(1.0 / camera_fps, float(np.median(intervals))) if intervals else 0.0
    jank_limit = cadence + 1.0 / display_hz
    janky = sum(1 for dt in intervals if dt > jank_limit + 1e-9)
    done = list(inference_done_times)
    inference_fps = None
    if len(done) >= 2:
        span = done[-1] - done[0] - sum(
            max(0.0, min(end, done[-1]) - max(start, done[0])) for start, end in background
        )
        inference_fps = (len(done) - 1) / span if span > 0 else None
    latency = _percentiles(latencies, (50, 95, 99))
    latency["mean"] = float(np.mean(latencies)) if latencies else None
    ages = [1000.0 * (s.t_display - (s.t_source if s.t_source is not None else s.t_capture))
            for s in shown]
    return {
        "display_fps": len(shown) / foreground_s if foreground_s > 0 else 0.0,
        "inference_fps": inference_fps,
        "latency_ms": latency,
        "content_age_ms": _percentiles(ages, (50, 95)),
        "frame_interval_ms": _percentiles([1000.0 * dt for dt in intervals], (50, 90, 95, 99)),
        "jank_pct": 100.0 * janky / len(intervals) if intervals else 0.0,
        "slow_frames": sum(1 for dt in intervals if dt > 1.0 / min_display_fps + 1e-9),
        "frozen_frames": sum(1 for dt in intervals if dt > FROZEN_S),
        "dropped_frames": dropped_frames,
        "skipped_frames": skipped_frames,
        "stylized_frames": stylized_frames,
        "displayed_frames": len(shown),
    }
