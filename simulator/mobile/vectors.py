"""The metrics test vector every app checks itself against: mobile/test-vectors/metrics-vector.json.

Each case is a device run's timeline (``frames[]``, ``display[]`` as in report.json), the
display rate, camera rate, session end and budgets, with the ``expected`` metrics and
verdict computed by the simulator's own code (simulator/metrics/timing.py ``timing_metrics``,
flicker.py ``luminance_flicker``, verdict.py ``evaluate``) under the rules in
``RULES`` (also written into the file). The timelines come from a small deterministic
latest-frame-wins scheduler (the engine's: at most one inference in flight, the newest
waiting frame wins, a result appears at the next display refresh after post-processing).

``python -m simulator.mobile.vectors`` rewrites the file; ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulator.metrics.flicker import luminance_flicker
from simulator.metrics.timing import Shown, timing_metrics
from simulator.metrics.verdict import evaluate

VECTOR_PATH = (
    Path(__file__).resolve().parents[2] / "mobile" / "test-vectors" / "metrics-vector.json"
)
FORMAT = "arsim-metrics-vector/1"
TOLERANCE = 1e-6
INPUT_SIZE = 256

RULES = [
    "Times are seconds from the first played frame's capture; the session ends at t_end "
    "(realtime: last capture + 1/camera_fps); nothing after t_end counts, as in the simulator.",
    "shown: display[] entries with t <= t_end and refresh not true, in order; their t_capture is "
    "frames[entry.frame].t_capture, t_source frames[entry.source or entry.frame].t_capture; "
    "after_gap is entry.after_gap == true.",
    "inference done times: t_infer_end of frames with stylized true and t_infer_end <= t_end.",
    "foreground_s = t_end - frames[0].t_capture - time in background (no background here); "
    "the session starts at frames[0].t_capture (session_start) and ends at t_end.",
    "dropped_frames: frames not displayed by t_end (t_display null or > t_end) and not skipped; "
    "stylized_frames / skipped_frames: frames with stylized / skipped true.",
    "metrics = timing_metrics(shown, done, background, foreground_s, camera_fps, display_hz, "
    "budgets.min_display_fps, dropped, skipped, stylized, session_start) "
    "(simulator/metrics/timing.py): display_fps = (display intervals) / (their summed time), "
    "plus the open interval from the last shown result to t_end as one more when it is longer "
    "than the median interval; fewer than two shown: shown / foreground_s.",
    "inference_ms {p50, p95}: numpy-linear percentiles of 1000 * (t_infer_end - t_infer_start) "
    "over every stylized frame with both times (no t_end cut: calibrate uses them all).",
    "flicker.luminance_flicker: luminance_flicker() of the non-null display[].luminance with "
    "t <= t_end (simulator/metrics/flicker.py).",
    "verdict = evaluate(metrics, budgets, oom_count) (simulator/metrics/verdict.py); a metric "
    "that is null or absent (here flicker.warp_error, memory_peak_mb) is skipped.",
    f"Compare numbers within {TOLERANCE} (absolute); null must be null; integers exactly.",
]

BUDGETS = {
    "min_display_fps": 15.0,
    "max_latency_p95_ms": 66.0,
    "max_jank_pct": 10.0,
    "max_flicker": 0.002,
    "max_memory_mb": 819.2,
    "max_oom_events": 0.0,
}


class _Lcg:
    """Deterministic numbers on every platform (no library RNG stream to change)."""

    def __init__(self, seed: int) -> None:
        self.state = seed

    def uniform(self, low: float, high: float) -> float:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return low + (high - low) * (self.state >> 11) / 2**53


def _t(value: float) -> float:
    """Times as devices report them: microseconds."""
    return round(value, 6)


def schedule(
    capture: Sequence[float],
    infer_ms: Callable[[int], float],
    *,
    display_hz: float,
    t_end: float,
    post_ms: float = 3.0,
) -> tuple[list[dict], list[dict]]:
    """frames[] and display[] of a latest-frame-wins run (times rounded to microseconds)."""
    n = len(capture)
    frames = [
        {"index": i, "t_capture": _t(capture[i]), "stylized": False, "t_infer_start": None,
         "t_infer_end": None, "input_size": None, "t_display": None, "dropped": False,
         "skipped": False}
        for i in range(n)
    ]
    display: list[dict] = []
    free_at, next_i = capture[0], 0
    while next_i < n:
        now = max(free_at, capture[next_i])
        if now > t_end:
            break
        newest = max(i for i in range(next_i, n) if capture[i] <= now)
        end = now + infer_ms(newest) / 1000.0
        frame = frames[newest]
        frame.update(stylized=True, t_infer_start=_t(now), t_infer_end=_t(end),
                     input_size=INPUT_SIZE)
        shown = math.ceil((end + post_ms / 1000.0) * display_hz - 1e-9) / display_hz
        if _t(shown) <= t_end:
            if display and display[-1]["t"] == _t(shown):  # the newer one wins the refresh
                frames[display.pop()["frame"]]["t_display"] = None
            frame["t_display"] = _t(shown)
            display.append({"t": _t(shown), "frame": newest, "source": newest, "kind": "new",
                            "refresh": False, "luminance": None})
        free_at, next_i = end, newest + 1
    for frame in frames:
        frame["dropped"] = frame["t_display"] is None
    for k, entry in enumerate(display):
        entry["luminance"] = round(0.45 + 0.02 * math.sin(0.7 * k) + 0.004 * (k % 3), 6)
    return frames, display


def expected(case: Mapping[str, Any]) -> dict:
    """The expected metrics and verdict of a case, by the simulator's code under RULES."""
    frames, t_end = case["frames"], case["t_end"]
    by_index = {f["index"]: f for f in frames}
    shown, luminance = [], []
    for entry in case["display"]:
        if entry["t"] > t_end:
            continue
        if entry.get("luminance") is not None:
            luminance.append(entry["luminance"])
        if entry.get("refresh") is True:
            continue
        source = by_index[entry.get("source", entry["frame"])]
        shown.append(Shown(entry["t"], by_index[entry["frame"]]["t_capture"],
                           entry.get("after_gap") is True, source["t_capture"]))
    done = sorted(f["t_infer_end"] for f in frames
                  if f["stylized"] and f["t_infer_end"] is not None and f["t_infer_end"] <= t_end)
    displayed = [f["t_display"] is not None and f["t_display"] <= t_end for f in frames]
    budgets = case["budgets"]
    metrics = timing_metrics(
        shown=shown,
        inference_done_times=done,
        background=[],
        foreground_s=max(0.0, t_end - frames[0]["t_capture"]),
        camera_fps=case["camera_fps"],
        display_hz=case["display_hz"],
        min_display_fps=budgets["min_display_fps"],
        dropped_frames=sum(1 for f, d in zip(frames, displayed, strict=True)
                           if not d and not f["skipped"]),
        skipped_frames=sum(1 for f in frames if f["skipped"]),
        stylized_frames=sum(1 for f in frames if f["stylized"]),
        session_start=frames[0]["t_capture"],
    )
    infer = [1000.0 * (f["t_infer_end"] - f["t_infer_start"]) for f in frames
             if f["stylized"] and f["t_infer_start"] is not None and f["t_infer_end"] is not None]
    metrics["inference_ms"] = {
        f"p{p}": float(np.percentile(infer, p)) if infer else None for p in (50, 95)
    }
    metrics["flicker"] = {"luminance_flicker": luminance_flicker(luminance)}
    return {"metrics": metrics, "verdict": evaluate(metrics, budgets, case["oom_count"])}


def _case(
    name: str,
    description: str,
    *,
    frames: int,
    infer_ms: Callable[[int, _Lcg], float],
    display_hz: float = 60.0,
    fps: float = 30.0,
    budgets: Mapping[str, float | None] = BUDGETS,
    seed: int = 1,
) -> dict:
    rng = _Lcg(seed)
    capture = [0.0] + [i / fps + rng.uniform(-1.5e-3, 1.5e-3) for i in range(1, frames)]
    t_end = _t(capture[-1] + 1.0 / fps)
    timeline_frames, display = schedule(
        capture, lambda i: infer_ms(i, rng), display_hz=display_hz, t_end=t_end
    )
    case = {
        "name": name,
        "description": description,
        "camera_fps": fps,
        "display_hz": display_hz,
        "t_end": t_end,
        "background": [],
        "budgets": dict(budgets),
        "oom_count": 0,
        "frames": timeline_frames,
        "display": display,
    }
    case["expected"] = expected(case)
    return case


def build_vector() -> dict:
    """The whole vector (deterministic)."""
    cases = [
        _case("steady", "fast model (~12 ms): every frame shown, no jank, verdict passes",
              frames=45, infer_ms=lambda i, r: r.uniform(10.0, 14.0)),
        _case("hitch", "~15 ms model with two 180 ms hitches: drops, slow and jank intervals",
              frames=90, infer_ms=lambda i, r: 180.0 if i in (30, 61) else r.uniform(13.0, 17.0),
              seed=2),
        _case("stutter", "every third inference takes 75 ms instead of 12: irregular delivery, "
              "jank over its 10 % budget",
              frames=60, infer_ms=lambda i, r: 75.0 if i % 3 == 2 else r.uniform(10.0, 14.0),
              seed=6),
        _case("drops-120hz", "slow model (70-90 ms) on a 120 Hz display: latest frame wins, "
              "most frames dropped, FPS and latency budgets fail",
              frames=60, infer_ms=lambda i, r: r.uniform(70.0, 90.0), display_hz=120.0, seed=3),
        _case("tail", "50 ms model, short run: the last inference ends after t_end (not counted)",
              frames=8, infer_ms=lambda i, r: 50.0, seed=4,
              budgets={**BUDGETS, "max_flicker": None, "max_memory_mb": None}),
        _case("nothing-shown", "a 500 ms first inference: nothing shown before t_end; latency "
              "null and not judged", frames=4, infer_ms=lambda i, r: 500.0, seed=5),
        _case("slow-model", "450 ms model over a 3 s session: six results 0.45 s apart; display "
              "FPS 1 / 0.45 s = 2.22 (a count over the session would read 6 / 3 s = 2.0)",
              frames=90, infer_ms=lambda i, r: 450.0, seed=7),
        _case("stall-at-end", "12 ms model whose inference never returns after 2 s of an 8 s "
              "session: the 6 s without a new picture count as one more interval, so display "
              "FPS is about 7.5, not the 30 of the first 2 s",
              frames=240, infer_ms=lambda i, r: 1e6 if i >= 60 else r.uniform(10.0, 14.0),
              seed=8),
    ]
    return {
        "format": FORMAT,
        "generated_by": "python -m simulator.mobile.vectors",
        "description": "Device metrics (mobile/CONTRACT.md §4) computed from report timelines; "
                       "every target (mobile/web/metrics.mjs, the Android and iOS apps) must "
                       "reproduce `expected` from the other fields of each case.",
        "tolerance": TOLERANCE,
        "rules": RULES,
        "cases": cases,
    }


def render(value: Any, indent: int = 0, width: int = 200) -> str:
    """JSON with small objects and arrays on one line (stable, diff-friendly)."""
    flat = json.dumps(value, allow_nan=False)
    if not isinstance(value, dict | list) or len(flat) + indent <= width or not value:
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, list):
        items = [inner + render(v, indent + 2, width) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    items = [f"{inner}{json.dumps(k)}: {render(v, indent + 2, width)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.mobile.vectors",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=VECTOR_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render(build_vector()) + "\n"
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out}: stale; run python -m simulator.mobile.vectors", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
