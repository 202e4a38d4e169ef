"""Host speed (issue 14): the flicker metric per displayed pair, a timing-only run's wall time,
and the stylizer's achieved GFLOP/s against this CPU's measured fp32 peak.

    python bench/host_speed.py --out bench/host_speed.json

- flicker: ``FlickerMeter.add`` on 40 consecutive orbit-desk pairs (640x360, toon-classic
  outputs), five passes, median ms per pair (spread given);
- timing-only: ``arsim run scenarios/orbit-desk --timing-only`` as a new process, after one
  warm-up run (the video's frame count and the model's figures are then cached), median of
  seven;
- peak: a 2048 x 2048 fp32 matrix product through numpy's BLAS, best of five, with one thread
  and with all cores (GFLOP/s = 2 n^3 / s), interleaved with AnimeGANv2's generator at 256
  (its FLOPs from the graph) on the host runtime, median of five calls a round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def flicker_ms() -> dict:
    from simulator.metrics.flicker import FlickerMeter
    from simulator.pipeline.stylize import Stylizer
    from simulator.scenario.load import load_scenario
    from simulator.zoo.registry import resolve_model

    with load_scenario(ROOT / "scenarios" / "orbit-desk") as scenario:
        frames = [f.image for _, f in zip(range(41), scenario.frames(), strict=False)]
    stylizer = Stylizer(resolve_model("toon-classic"), 256)
    outputs = [stylizer.stylize(f) for f in frames]
    passes = []
    for _ in range(5):
        meter = FlickerMeter()
        meter.add(0.0, frames[0], outputs[0])
        started = time.perf_counter()
        for i in range(1, len(frames)):
            meter.add(i / 30, frames[i], outputs[i])
        passes.append(1000 * (time.perf_counter() - started) / (len(frames) - 1))
    return {"frame": list(frames[0].shape), "pairs": len(frames) - 1, **spread(passes),
            "target": 4.0}


def timing_only_s() -> dict:
    command = [sys.executable, "-m", "simulator", "run", str(ROOT / "scenarios" / "orbit-desk"),
               "--timing-only", "--quiet", "--out", "/tmp/arsim-host-speed"]
    subprocess.run(command, check=True, capture_output=True)  # warm-up: caches filled
    walls = []
    for _ in range(7):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
    return {**spread(walls), "target": 0.8}


SGEMM = """
import time, numpy as np
n = 2048
a = np.random.default_rng(0).random((n, n), dtype=np.float32)
b = np.random.default_rng(1).random((n, n), dtype=np.float32)
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
print(2 * n**3 / best / 1e9)
"""


def sgemm_gflops(threads: int | None) -> float:
    """Best of five 2048^3 fp32 products through numpy's BLAS in a fresh process, its thread
    count set by the BLAS environment variables (None: the BLAS default, all cores)."""
    env = dict(os.environ)
    if threads is not None:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    done = subprocess.run([sys.executable, "-c", SGEMM], env=env, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip())


def stylizer_vs_peak(rounds: int = 5) -> dict:
    """The AnimeGANv2 generator (``animeganv2-arch``: its architecture, seeded weights) at 256
    on each host runtime present, interleaved with the SGEMM peak (this host's speed drifts by
    2x between minutes): per round, the peak with all cores and with one thread, then the
    median of five model calls per runtime; the fraction of peak is taken per round."""
    from simulator.errors import InputError
    from simulator.pipeline.stylize import Stylizer
    from simulator.zoo.registry import resolve_model

    model = resolve_model("animeganv2-arch")
    frame = np.random.default_rng(2).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    stylizers = {}
    for runtime in ("ort-cpu", "openvino"):
        try:
            stylizers[runtime] = Stylizer(model, 256, threads=os.cpu_count() or 1,
                                          fit="squash", runtime=runtime)
        except InputError as exc:  # not installed here
            print(f"skipping {runtime}: {exc}", file=sys.stderr)
    tensor = next(iter(stylizers.values())).preprocess(frame)
    for stylizer in stylizers.values():
        for _ in range(2):
            stylizer.run(tensor)
    flops = model.flops(256)
    peaks, ones = [], []
    achieved: dict[str, list[float]] = {name: [] for name in stylizers}
    for _ in range(rounds):
        peaks.append(sgemm_gflops(None))
        ones.append(sgemm_gflops(1))
        for name, stylizer in stylizers.items():
            times = []
            for _ in range(5):
                started = time.perf_counter()
                stylizer.run(tensor)
                times.append(time.perf_counter() - started)
            achieved[name].append(flops / statistics.median(times) / 1e9)
    return {
        "peak_gflops": {"all_cores": spread(peaks), "one_thread": spread(ones),
                        "how": "best of five 2048^3 float32 products through numpy's BLAS "
                               "(2 n^3 FLOPs each), in a fresh process"},
        "model_gflops": flops / 1e9,
        "runtimes": {stylizers[name].runtime_id: {
            "ms": spread([1000 * flops / 1e9 / g for g in values]),
            "achieved_gflops": spread(values),
            "fraction_of_peak": spread([a / p for a, p in zip(values, peaks, strict=True)]),
        } for name, values in achieved.items()},
        "target_fraction": 0.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "host_speed.json")
    args = parser.parse_args()
    result = {"host_cpus": os.cpu_count(), "flicker_ms_per_pair": flicker_ms(),
              "timing_only_s": timing_only_s(), "stylizer_at_256": stylizer_vs_peak()}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
