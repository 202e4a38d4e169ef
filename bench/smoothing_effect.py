"""Effect and host cost of the Smoother stage (simulator.pipeline.smooth).

Effect: on the bundled moving scenarios, every ``stride``-th frame is stylized with the
built-in model and the results are smoothed as the replay would (one apply per result, in
order). Per setting it reports the mean warping error of (input, smoothed output)
(FlickerMeter, as in report.json) against method "none", and ghosting as the mean SSIM of
the smoothed output against the unsmoothed one (1 = untouched). ``floor`` is the warping
error of the input frames themselves: what the metric charges for its own flow errors,
which no smoother can remove honestly.

Cost: milliseconds per ``apply`` on 1280x720 frames (the scenario frames upscaled), median
over the frames, cv2 with its default threads and with one thread.

    .venv/bin/python bench/smoothing_effect.py [--frames N] [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from simulator.metrics.flicker import FlickerMeter
from simulator.pipeline.smooth import COLOUR_MODES, METHODS, Smoother, SmoothSettings
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.types import Frame, Intrinsics
from simulator.zoo.quality import ssim
from simulator.zoo.registry import resolve_model

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("orbit-desk", "pan-fast")
STRIDES = (1, 4)
HD = (1280, 720)


def stylized_sequence(
    name: str, stride: int, limit: int, stylizer: Stylizer
) -> tuple[Intrinsics, list[Frame], list[np.ndarray]]:
    """Every ``stride``-th frame (at most ``limit``) and its stylized result."""
    scenario = load_scenario(ROOT / "scenarios" / name)
    frames = [f for f in scenario.frames() if f.index % stride == 0][:limit]
    return scenario.camera, frames, [stylizer.stylize(f.image) for f in frames]


def effect(
    camera: Intrinsics, frames: list[Frame], outputs: list[np.ndarray], settings: SmoothSettings
) -> dict:
    smoother = Smoother(settings, camera)
    meter = FlickerMeter()
    similarity = []
    for frame, output in zip(frames, outputs, strict=True):
        smoothed = smoother.apply(output, frame.image, frame.pose, frame.tracking)
        meter.add(frame.time, frame.image, smoothed)
        similarity.append(ssim(smoothed, output))
    return {
        "warp_error": meter.summary()["warp_error"],
        "ssim_to_unsmoothed": float(np.mean(similarity)),
        "resets": smoother.resets,
    }


def floor(frames: list[Frame]) -> float:
    meter = FlickerMeter()
    for frame in frames:
        meter.add(frame.time, frame.image, frame.image)
    return meter.summary()["warp_error"]


def cost_ms(
    camera: Intrinsics,
    frames: list[Frame],
    outputs: list[np.ndarray],
    candidates: dict[str, SmoothSettings],
    passes: int = 3,
) -> dict[str, float]:
    """Median ms per apply() at 1280x720 (camera intrinsics scaled to that size) for each
    candidate. The candidates take turns frame by frame (in a rotating order), so load from
    other processes on this shared machine hits them alike."""
    hd_camera = Intrinsics(HD[0], HD[1], camera.fx * HD[0] / camera.width,
                           camera.fy * HD[1] / camera.height,
                           camera.cx * HD[0] / camera.width, camera.cy * HD[1] / camera.height)
    inputs = [cv2.resize(f.image, HD, interpolation=cv2.INTER_LINEAR) for f in frames]
    results = [cv2.resize(o, HD, interpolation=cv2.INTER_LINEAR) for o in outputs]
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(passes):
        smoothers = {name: Smoother(candidates[name], hd_camera) for name in names}
        for i, (frame, image, result) in enumerate(zip(frames, inputs, results, strict=True)):
            for name in names[i % len(names):] + names[: i % len(names)]:
                started = time.perf_counter()
                smoothers[name].apply(result, image, frame.pose, frame.tracking)
                if i:  # the first call has no previous result
                    times[name].append((time.perf_counter() - started) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def candidate_settings(quick: bool) -> list[SmoothSettings]:
    """The methods at a few alphas, the colour modes, and full-resolution blends."""
    out = [SmoothSettings(method="none")]
    alphas = (0.3, 0.5) if quick else (0.2, 0.3, 0.4, 0.5)
    for method in ("ema", "flow", "pose"):
        out += [SmoothSettings(method=method, alpha=a) for a in alphas]
    out += [SmoothSettings(method=m, colour=c) for m in ("none", "flow", "pose")
            for c in ("stats", "histogram")]
    out += [SmoothSettings(method=m, work_side=0) for m in ("flow", "pose")]
    return out


def label(settings: SmoothSettings) -> str:
    default = SmoothSettings()
    parts = [settings.method]
    for name in ("alpha", "colour", "work_side"):
        if getattr(settings, name) != getattr(default, name) or (
            name == "alpha" and settings.method != "none"
        ):
            parts.append(f"{name}={getattr(settings, name)}")
    return " ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="results per sequence")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--quick", action="store_true", help="fewer alphas")
    args = parser.parse_args()

    stylizer = Stylizer(resolve_model("toon-classic"), 256)
    candidates = candidate_settings(args.quick)
    report: dict = {"frames_per_sequence": args.frames, "sequences": {}, "cost_ms_720p": {}}
    sums: dict[str, list[tuple[float, float]]] = {}
    for name in SCENARIOS:
        for stride in STRIDES:
            camera, frames, outputs = stylized_sequence(name, stride, args.frames, stylizer)
            key = f"{name}/every-{stride}"
            base = effect(camera, frames, outputs, SmoothSettings())["warp_error"]
            rows = {}
            print(f"\n{key}: {len(frames)} results, floor {floor(frames):.5f}, none {base:.5f}")
            for settings in candidates:
                row = effect(camera, frames, outputs, settings)
                row["change_pct"] = 100.0 * (row["warp_error"] / base - 1.0)
                rows[label(settings)] = row
                sums.setdefault(label(settings), []).append(
                    (row["change_pct"], row["ssim_to_unsmoothed"])
                )
                print(f"  {label(settings):38s} E {row['warp_error']:.5f} "
                      f"{row['change_pct']:+6.1f}%  SSIM {row['ssim_to_unsmoothed']:.3f}"
                      f"  resets {row['resets']}")
            report["sequences"][key] = {"floor": floor(frames), "none": base, "settings": rows}

    print("\nmean over the sequences:")
    for name, values in sums.items():
        change, similarity = np.mean(values, axis=0)
        print(f"  {name:38s} {change:+6.1f}%  SSIM {similarity:.3f}")

    camera, frames, outputs = stylized_sequence("orbit-desk", 1, 40, stylizer)
    grid = {f"{m}/{c}": SmoothSettings(method=m, colour=c) for m in METHODS for c in COLOUR_MODES}
    grid.update({f"{m}/none/work_side=0": SmoothSettings(method=m, work_side=0)
                 for m in ("flow", "pose")})
    default_threads = cv2.getNumThreads()
    multi = cost_ms(camera, frames, outputs, grid)
    cv2.setNumThreads(1)
    single = cost_ms(camera, frames, outputs, grid)
    cv2.setNumThreads(default_threads)
    report["cost_ms_720p"] = {k: {"default": multi[k], "one_thread": single[k]} for k in grid}
    print(f"\nms per apply() at 1280x720, median (cv2 {default_threads} threads / 1 thread):")
    print(f"  {'method':8s}" + "".join(f"{c:>18s}" for c in COLOUR_MODES))
    for method in METHODS:
        cells = [f"{multi[f'{method}/{c}']:.2f} / {single[f'{method}/{c}']:.2f}"
                 for c in COLOUR_MODES]
        print(f"  {method:8s}" + "".join(f"{c:>18s}" for c in cells))
    for method in ("flow", "pose"):
        key = f"{method}/none/work_side=0"
        print(f"  {method} blended at full resolution (work_side=0): "
              f"{multi[key]:.2f} / {single[key]:.2f}")

    report["defaults"] = asdict(SmoothSettings())
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
