"""How fast a model runs on *this* host's CPU (ONNX Runtime CPU provider).

Host numbers say nothing about a phone: the simulated phone's latency comes from the
device cost model (FLOPs / throughput). They answer "how long does a replay take here" and
"did this variant get faster or slower on a CPU". Each size is timed two ways, interleaved
so that machine load hits both alike: bare ``session.run`` on a pre-made input tensor, and
the whole ``Stylizer.stylize`` of a 1280x720 camera frame (resize, layout, run, back).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from simulator.errors import InputError
from simulator.pipeline.stylize import Stylizer
from simulator.zoo.registry import ResolvedModel, resolve_model

FRAME_WIDTH, FRAME_HEIGHT = 1280, 720
WARMUP_RUNS = 2


def bench_model(
    name_or_path: str | ResolvedModel,
    sizes: Sequence[int] = (256, 512),
    runs: int = 20,
    threads: int = 2,
) -> dict[str, Any]:
    """Median and p90 milliseconds of ``session.run`` and of ``Stylizer.stylize`` on a
    1280x720 frame, for each square input size."""
    return bench_models([name_or_path], sizes, runs, threads)[0]


def bench_models(
    models: Sequence[str | ResolvedModel],
    sizes: Sequence[int] = (256, 512),
    runs: int = 20,
    threads: int = 2,
) -> list[dict[str, Any]]:
    """``bench_model`` for several models, their runs interleaved so that a busy machine
    slows them alike (use it to compare a variant with its parent)."""
    if runs < 1:
        raise InputError("runs", f"expected a run count >= 1, got {runs}")
    if not sizes or not models:
        raise InputError("sizes", "expected at least one model and one input size")
    resolved = [m if isinstance(m, ResolvedModel) else resolve_model(m) for m in models]
    frame = bench_frame()
    times: list[dict[int, dict[str, dict[str, float]]]] = [{} for _ in resolved]
    for size in sizes:
        stylizers = [Stylizer(model, size, threads=threads) for model in resolved]
        tensors = [stylizer.preprocess(frame) for stylizer in stylizers]
        for stylizer in stylizers:
            for _ in range(WARMUP_RUNS):
                stylizer.stylize(frame)
        bare: list[list[float]] = [[] for _ in resolved]
        full: list[list[float]] = [[] for _ in resolved]
        for _ in range(runs):
            for i, (stylizer, tensor) in enumerate(zip(stylizers, tensors, strict=True)):
                started = time.perf_counter()
                stylizer.run(tensor)
                bare[i].append(time.perf_counter() - started)
                started = time.perf_counter()
                stylizer.stylize(frame)
                full[i].append(time.perf_counter() - started)
        for i in range(len(resolved)):
            times[i][size] = {"run_ms": _summary(bare[i]), "stylize_ms": _summary(full[i])}
    return [
        {
            "model": model.name,
            "path": str(model.path),
            "precision": model.card.precision,
            "threads": threads,
            "runs": runs,
            "frame": [FRAME_WIDTH, FRAME_HEIGHT],
            "host": {"machine": platform.machine(), "processor": platform.processor() or "unknown"},
            "sizes": per_size,
        }
        for model, per_size in zip(resolved, times, strict=True)
    ]


def bench_frame() -> np.ndarray:
    """A fixed 1280x720 RGB test frame: smooth colour gradients with seeded texture."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:FRAME_HEIGHT, 0:FRAME_WIDTH].astype(np.float32)
    base = np.stack([x / FRAME_WIDTH, y / FRAME_HEIGHT, 0.5 + 0.5 * np.sin(x / 40.0)], axis=-1)
    noisy = base * 200 + rng.normal(0, 20, base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def format_bench(result: dict[str, Any]) -> str:
    """A plain-text table of a ``bench_model`` result."""
    lines = [
        f"{result['model']} ({result['precision']}) on this host's CPU, "
        f"{result['threads']} thread(s), {result['runs']} runs",
        f"{'size':>6}  {'run median':>10}  {'run p90':>8}  "
        f"{'stylize median':>14}  {'stylize p90':>11}   (ms; stylize = "
        f"{result['frame'][0]}x{result['frame'][1]} frame in and out)",
    ]
    for size, row in sorted(result["sizes"].items(), key=lambda item: int(item[0])):
        run, full = row["run_ms"], row["stylize_ms"]
        lines.append(
            f"{size:>6}  {run['median']:>10.2f}  {run['p90']:>8.2f}  "
            f"{full['median']:>14.2f}  {full['p90']:>11.2f}"
        )
    return "\n".join(lines)


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"median": round(float(np.median(ms)), 3), "p90": round(float(np.percentile(ms, 90)), 3)}
