"""A synthetic ``report.json`` dict (schema ``arsim-report/1``) and thumbnails for report tests.

The timeline is generated from a small deterministic model of a phone that slows down
as it heats up, so the plots have real shapes; the timing metrics are computed from it by
the simulator's own ``timing_metrics``.
"""

from __future__ import annotations

import numpy as np

from simulator.metrics.timing import Shown, timing_metrics
from simulator.metrics.verdict import budgets_for, evaluate
from simulator.report.json_report import SCHEMA

CAMERA_FPS = 30.0
DURATION_S = 8.0


def _timeline(seed: int) -> tuple[list[dict], list[dict], dict]:
    """Camera frames, displayed results and the series, from a simple async-inference model."""
    rng = np.random.default_rng(seed)
    frames: list[dict] = []
    display: list[dict] = []
    series: dict[str, list[float]] = {"t": [], "memory_mb": [], "thermal_factor": []}
    busy_until = 0.0
    n_frames = int(DURATION_S * CAMERA_FPS)
    for index in range(n_frames):
        t = index / CAMERA_FPS
        thermal = 1.0 + 0.35 * (1.0 - np.exp(-t / 4.0))
        series["t"].append(t)
        series["thermal_factor"].append(float(thermal))
        series["memory_mb"].append(float(150.0 + 30.0 * min(t, 3.0) / 3.0 + rng.normal(0, 1.5)))
        stylized = t >= busy_until
        entry = {
            "index": index, "t_capture": t, "tracking": "normal", "stylized": stylized,
            "t_infer_start": None, "t_infer_end": None, "displayed": False, "t_display": None,
            "dropped": not stylized, "skipped": False, "input_size": 256,
        }
        if stylized:
            infer_s = 0.045 * thermal + rng.normal(0, 0.003)
            busy_until = t + infer_s
            shown_at = np.ceil((busy_until + 0.004) * 60.0) / 60.0  # next 60 Hz vsync
            entry.update(t_infer_start=t, t_infer_end=busy_until, displayed=True,
                         t_display=float(shown_at))
            display.append({
                "t": float(shown_at), "frame": index,
                "latency_ms": float(1000.0 * (shown_at - t)),
                "warp_error": None if not display else float(abs(rng.normal(0.0009, 0.0003))),
                "luminance": float(0.45 + rng.normal(0, 0.004)),
            })
        frames.append(entry)
    return frames, display, series


def sample_report(*, complete: bool = True, seed: int = 0) -> dict:
    """A full report dict as the engine would build it."""
    frames, display, series = _timeline(seed)
    warp = np.array([d["warp_error"] for d in display[1:]])
    budgets = budgets_for(176.0, {"max_latency_p95_ms": 80.0})
    metrics = {
        **timing_metrics(
            shown=[Shown(d["t"], frames[d["frame"]]["t_capture"], False) for d in display],
            inference_done_times=[f["t_infer_end"] for f in frames if f["stylized"]],
            background=[],
            foreground_s=DURATION_S,
            camera_fps=CAMERA_FPS,
            display_hz=60.0,
            min_display_fps=budgets["min_display_fps"],
            dropped_frames=sum(1 for f in frames if f["dropped"]),
            skipped_frames=0,
            stylized_frames=len(display),
        ),
        "flicker": {
            "warp_error": float(warp.mean()), "warp_error_p95": float(np.percentile(warp, 95)),
            "frame_diff": 0.93, "luminance_flicker": 0.0051,
        },
        "memory_peak_mb": float(max(series["memory_mb"])),
        "thermal_factor_max": float(max(series["thermal_factor"])),
    }
    oom_events = [{"t": 6.5, "memory_mb": 181.0, "limit_mb": 180.0, "cause": "activation peak",
                   "source": "model"}]
    verdict = evaluate(metrics, budgets, len(oom_events))
    return {
        "schema": SCHEMA,
        "complete": complete,
        "incomplete_reason": None if complete else "interrupted (Ctrl-C) at t = 5.2 s",
        "generated_by": "arsim 0.1.0",
        "target": "simulator",
        "scenario": {"name": "orbit-desk", "path": "scenarios/orbit-desk", "frames": len(frames),
                     "duration_s": DURATION_S, "fps": CAMERA_FPS, "width": 640, "height": 360},
        "device": {"id": "redmi-note-10", "name": "Xiaomi Redmi Note 10 <4 GB>", "display_hz": 60,
                   "ram_mb": 4096, "kill_limit_mb": 180.0},
        "backend": "gpu-fp16",
        "model": {"name": "toon-classic", "path": "models/toon-classic.onnx", "flops": 1.2e9,
                  "parameters": 12345},
        "input_size": 256,
        "budgets": budgets,
        "metrics": metrics,
        "oom_events": oom_events,
        "verdict": verdict,
        "series": series,
        "display": display,
        "frames": frames,
        "settings": {"policy": "latest-frame-wins", "dynamic_size": False, "smoothing": 0.0},
        "host": {"wall_s": 3.21, "frames_per_s": len(frames) / 3.21},
    }


def sample_thumbnails(count: int = 3) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(frame index, input RGB, output RGB) triples: a gradient scene and a posterised output."""
    ys, xs = np.mgrid[0:360, 0:640].astype(np.float32)
    thumbnails = []
    for i in range(count):
        shift = 40.0 * i
        frame = np.stack(
            [(xs + shift) / 640, ys / 360, 0.5 + 0.5 * np.sin((xs + ys + shift) / 60)], axis=-1
        )
        input_rgb = np.clip(frame * 255, 0, 255).astype(np.uint8)
        output_rgb = ((input_rgb // 64) * 64 + 32).astype(np.uint8)
        thumbnails.append((30 * i, input_rgb, output_rgb))
    return thumbnails
