"""Human-readable summary of a loaded scenario (``arsim scenario info``)."""

from __future__ import annotations

import numpy as np

from simulator.scenario.model import Scenario


def describe(scenario: Scenario) -> str:
    cam = scenario.camera
    times = scenario.frame_times
    intervals = np.diff(times) if len(times) > 1 else np.array([1.0 / scenario.fps])
    path_len = float(
        np.sum(np.linalg.norm(np.diff(scenario.trajectory.positions, axis=0), axis=1))
    )
    tracking = {
        s: scenario.tracking.count(s)
        for s in ("tracking", "limited", "lost", "unavailable")
        if s != "unavailable" or not scenario.poses_available
    }
    if not scenario.poses_available:
        poses = "none (a video only: tracking unavailable, pose-based stages refused)"
    else:
        unit = "m" if scenario.pose_scale is not None else "units (scale unknown)"
        poses = (f"{len(scenario.trajectory.times)} samples, path length {path_len:.2f} {unit}"
                 + ("" if scenario.metric else f"; not metric, scale from {scenario.scale_source}"
                    + (f" ({scenario.pose_scale:.4g} m per unit)" if scenario.pose_scale else "")))
    dist = cam.distortion
    lens = f", {dist.model} distortion {list(dist.coeffs)}" if dist is not None else ""
    per_frame = ", per-frame intrinsics" if scenario.intrinsics is not None else ""
    lines = [
        f"name:        {scenario.name} ({scenario.format})",
        f"description: {scenario.description or '-'}",
        f"video:       {scenario.video} ({scenario.frame_count} frames, {cam.width}x{cam.height})",
        f"duration:    {scenario.duration_s:.2f} s at {scenario.fps:g} fps nominal "
        f"(measured interval {1000 * float(np.median(intervals)):.2f} ms median)",
        f"clock:       session seconds = file timestamps - {scenario.clock_offset_s:.9g}",
        f"camera:      fx={cam.fx:.1f} fy={cam.fy:.1f} cx={cam.cx:.1f} cy={cam.cy:.1f}"
        f"{lens}{per_frame}",
        f"poses:       {poses}",
        "tracking:    " + ", ".join(f"{k} {v}" for k, v in tracking.items()),
        f"anchors:     {', '.join(a.id for a in scenario.anchors) or '-'}",
        f"events:      {len(scenario.events)}",
    ]
    lines += [
        f"  t={ev.t:7.3f} s  {ev.type}"
        + (f" mb={ev.mb:g}" if ev.mb is not None else "")
        + (f" factor={ev.factor:g}" if ev.factor is not None else "")
        for ev in scenario.events
    ]
    lines += [f"warning:     {w}" for w in scenario.warnings]
    if scenario.source:
        lines.append("source:      " + ", ".join(f"{k}={v}" for k, v in scenario.source.items()))
    if scenario.expect:
        lines.append("expect:      " + ", ".join(f"{k}={v:g}" for k, v in scenario.expect.items()))
    return "\n".join(lines)
