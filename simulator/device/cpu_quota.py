"""The CPU quota at which the confined inference worker runs as fast as a device profile
predicts: real throttling's link between this host and the simulated phone (``arsim run
--throttle real`` without ``--cpu-fraction``; docs/throttling.md)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.device.cost import CostModel
from simulator.device.profile import DeviceProfile
from simulator.engine.worker import InferenceWorker
from simulator.errors import InputError
from simulator.zoo.registry import ResolvedModel, resolve_model


@dataclass
class Calibration:
    """The CPU quota at which the confined worker's median latency matches the prediction."""

    cpu_fraction: float | None  # None: the host is too slow even unconfined
    predicted_ms: float
    measured_ms: float  # median under cpu_fraction (unconfined when too slow)
    host_too_slow: float | None  # measured / predicted when the host cannot keep up
    unconfined_ms: float
    mechanism: str
    iterations: int


def calibrate(profile: DeviceProfile | str | Path, backend: str, model: str | ResolvedModel,
              size: int, *, runs: int = 5, threads: int = 1, tolerance: float = 0.10,
              max_iterations: int = 6, mechanism: str = "auto") -> Calibration:
    """Find the CPU fraction at which the confined worker's median latency (a size x size
    frame, so pre/post-processing are negligible) is within ``tolerance`` of
    CostModel(profile, backend).inference_ms(model.flops(size))."""
    from simulator.device.catalog import load_profile

    if isinstance(profile, str | Path):
        profile = load_profile(profile)
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(str(model))
    if runs < 1:
        raise InputError("runs", f"expected >= 1, got {runs}")
    predicted = CostModel(profile, backend).inference_ms(resolved.flops(size),
                                                         input_pixels=size * size)
    frame = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    with InferenceWorker(resolved, threads=threads, mechanism=mechanism) as worker:
        for _ in range(2):  # warm-up: first-run allocations, arena growth
            worker.infer(frame, size)
        base = _median(worker, frame, size, runs)
        unconfined = base[0]
        if unconfined > predicted * (1 + tolerance):
            return Calibration(None, predicted, unconfined, unconfined / predicted,
                               unconfined, "none", 0)
        fraction = min(float(threads), base[1] / predicted)  # CPU ms per inference / target
        measured, used, iterations = unconfined, "none", 0
        while iterations < max_iterations:
            iterations += 1
            worker.set_cpu_fraction(fraction)
            used = worker.mechanism
            measured = _median(worker, frame, size, runs)[0]
            if abs(measured / predicted - 1) <= tolerance:
                break
            fraction = min(float(threads), fraction * measured / predicted)
        return Calibration(fraction, predicted, measured, None, unconfined, used, iterations)


def _median(worker: InferenceWorker, frame: np.ndarray, size: int,
            runs: int) -> tuple[float, float]:
    """(median latency, median CPU ms) over ``runs`` inferences."""
    replies = [worker.infer(frame, size) for _ in range(runs)]
    if any(r.killed for r in replies):
        raise RuntimeError(f"worker died during calibration: {replies[-1].killed}")
    return (statistics.median(r.latency_ms for r in replies),
            statistics.median(r.cpu_ms or 0.0 for r in replies))
