"""Host benchmarks (``make bench``): numbers go to bench/results.json, not into tests.

- replay speed: camera frames replayed per wall second, full run and timing-only, and with
  AR-lite stylizing every frame (goal: >= 30 frames per second on a 2-core host);
- pipeline overhead: the Stylizer stage (preprocess -> session.run -> postprocess) against
  bare ``session.run`` on the same pre-made tensors, for the same frames, in one run
  (interleaved, so machine load hits both alike). Goal: <= 5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import onnxruntime as ort

from simulator import __version__
from simulator.pipeline.stylize import Stylizer
from simulator.progress import Progress
from simulator.run import RunSettings, run_scenario
from simulator.scenario.load import load_scenario
from simulator.zoo.probe import write_conv_probe
from simulator.zoo.registry import resolve_model


def replay_speed(scenario: Path, settings: RunSettings) -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        progress = Progress("bench replay")
        outcome = run_scenario(scenario, settings, Path(out), progress=progress)
        outcome.raise_if_interrupted()
        report = outcome.report
        wall = time.perf_counter() - started
    frames = report["scenario"]["frames"]
    return {
        "settings": {k: v for k, v in asdict(settings).items() if k != "thumbnails"},
        "frames": frames,
        "stylized_frames": report["metrics"]["stylized_frames"],
        "wall_s": round(wall, 3),
        "camera_frames_per_wall_s": round(frames / wall, 1),
        "realtime_factor": round(report["scenario"]["duration_s"] / wall, 2),
    }


def pipeline_overhead(scenario: Path, model_name: str, size: int, frames: int, rounds: int) -> dict:
    model = resolve_model(model_name)
    stylizer = Stylizer(model, size, threads=1)
    with load_scenario(scenario) as sc:
        images = [f.image for f, _ in zip(sc.frames(), range(frames), strict=False)]
    tensors = [stylizer.preprocess(im) for im in images]
    feed = stylizer.input_name
    bare, full = [], []
    stylizer.stylize(images[0])  # warm-up
    for _ in range(rounds):
        for image, tensor in zip(images, tensors, strict=True):
            t0 = time.perf_counter()
            stylizer.session.run(None, {feed: tensor})
            t1 = time.perf_counter()
            stylizer.stylize(image)
            t2 = time.perf_counter()
            bare.append(t1 - t0)
            full.append(t2 - t1)
    bare_s, full_s = sum(bare), sum(full)
    return {
        "model": Path(model_name).stem,
        "input_size": size,
        "frame_size": list(images[0].shape[1::-1]),
        "frames": len(images) * rounds,
        "session_run_ms_median": round(1000 * statistics.median(bare), 3),
        "stylize_ms_median": round(1000 * statistics.median(full), 3),
        "overhead_ratio": round(full_s / bare_s - 1.0, 4),
        "goal_ratio": 0.05,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/orbit-desk")
    parser.add_argument("--model", default="toon-classic")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="bench/results.json")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    scenario = Path(args.scenario)
    # A generator-like cost next to the cheap default model: the pipeline's cost per frame is
    # fixed, so its share depends on how long the model itself takes.
    probe_dir = Path(tempfile.mkdtemp(prefix="arsim-bench-"))
    probe = str(write_conv_probe(probe_dir / "conv-probe-2.6g.onnx", width=32, depth=2))
    results = {
        "generated_by": f"arsim {__version__}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "onnxruntime": ort.__version__,
            "opencv": cv2.__version__,
        },
        "scenario": str(scenario),
        "replay": replay_speed(scenario, RunSettings(model=args.model)),
        # AR-lite inside the full pipeline: every camera frame stylized on this host's CPU
        "replay_ar_lite": replay_speed(scenario, RunSettings(model="ar-lite",
                                                             device="ipad-pro-m1",
                                                             backend="gpu-fp16")),
        "replay_timing_only": replay_speed(scenario, RunSettings(model=args.model,
                                                                 timing_only=True)),
        "pipeline_overhead": [
            pipeline_overhead(scenario, model, 256, args.frames, args.rounds)
            for model in (args.model, probe)
        ],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
