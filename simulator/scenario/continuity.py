"""Breaks in a recording that temporal stages must not bridge.

Real captures relocalise (the pose jumps), lose poses for a while (a gap in the samples) or
drop camera frames. Smoothing across such a break blends two unrelated views, and a result
warped across a pose jump smears the picture, so the replay treats the first frame after a
break like a tracking reset. Thresholds are relative to the recording's own typical step,
with absolute floors (metric poses only) so that ordinary fast motion is not flagged.
"""

from __future__ import annotations

import numpy as np

from simulator.scenario.model import Discontinuity
from simulator.scenario.poses import Trajectory

JUMP_FACTOR = 8.0  # a step this many times the median step ...
JUMP_MIN_SPEED_M_S = 2.5  # ... and faster than a hand moves a phone (metric poses)
JUMP_MIN_TURN_DEG_S = 720.0  # ... or turning faster than a hand turns one
POSE_GAP_FACTOR = 5.0  # no pose sample for this many median intervals ...
POSE_GAP_MIN_S = 0.25  # ... and at least this long
FRAME_GAP_FACTOR = 3.0  # a frame interval this many times the median (dropped frames)


def find_discontinuities(
    frame_times: np.ndarray, trajectory: Trajectory | None, *, metric: bool
) -> list[Discontinuity]:
    """Pose jumps, pose gaps and frame gaps, each with the first frame after it."""
    frame_times = np.asarray(frame_times, dtype=np.float64)
    found: list[Discontinuity] = []
    if len(frame_times) >= 3:
        intervals = np.diff(frame_times)
        median = float(np.median(intervals))
        for k in np.nonzero(intervals > FRAME_GAP_FACTOR * median)[0]:
            found.append(Discontinuity(
                float(frame_times[k + 1]), int(k + 1), "frame gap",
                f"{1000 * intervals[k]:.0f} ms between frames (median {1000 * median:.1f} ms)",
            ))
    if trajectory is not None and len(trajectory.times) >= 3:
        found += _pose_breaks(frame_times, trajectory, metric)
    found.sort(key=lambda d: (d.frame, d.kind))
    unique: list[Discontinuity] = []
    for item in found:  # one entry per frame and kind
        if not unique or (unique[-1].frame, unique[-1].kind) != (item.frame, item.kind):
            unique.append(item)
    return unique


def _pose_breaks(
    frame_times: np.ndarray, trajectory: Trajectory, metric: bool
) -> list[Discontinuity]:
    times = trajectory.times
    dt = np.diff(times)
    steps = np.linalg.norm(np.diff(trajectory.positions, axis=0), axis=1)
    q = trajectory.quaternions
    dots = np.clip(np.abs(np.sum(q[1:] * q[:-1], axis=1)), 0.0, 1.0)
    turns = np.degrees(2.0 * np.arccos(dots))
    median_dt = float(np.median(dt))
    median_step = float(np.median(steps))
    median_turn = float(np.median(turns))
    out = []

    def first_frame_after(t: float) -> int | None:
        k = int(np.searchsorted(frame_times, t, side="left"))
        return k if k < len(frame_times) else None

    for k in range(len(dt)):
        t_after = float(times[k + 1])
        if dt[k] > max(POSE_GAP_MIN_S, POSE_GAP_FACTOR * median_dt):
            frame = first_frame_after(float(times[k]) + 1e-9)
            if frame is not None and frame_times[frame] <= t_after:
                out.append(Discontinuity(float(frame_times[frame]), frame, "pose gap",
                                         f"no pose for {dt[k]:.2f} s"))
            continue
        speed = steps[k] / dt[k]
        turn_rate = turns[k] / dt[k]
        jump = steps[k] > JUMP_FACTOR * max(median_step, 1e-9) and (
            not metric or speed > JUMP_MIN_SPEED_M_S
        )
        spin = turns[k] > JUMP_FACTOR * max(median_turn, 1e-9) and turn_rate > JUMP_MIN_TURN_DEG_S
        if jump or spin:
            frame = first_frame_after(float(times[k]) + 1e-9)
            if frame is None:
                continue
            what = (f"moved {steps[k]:.3g} units in {1000 * dt[k]:.0f} ms" if jump
                    else f"turned {turns[k]:.0f} deg in {1000 * dt[k]:.0f} ms")
            out.append(Discontinuity(float(frame_times[frame]), frame, "pose jump", what))
    return out
