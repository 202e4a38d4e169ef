"""What a replay (``run.RunSettings``) and a live session (``engine.live.LiveSettings``)
share: the model and how frames fit it, the pipeline, host threads and real throttling —
declared and checked once."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

from simulator.errors import InputError
from simulator.pipeline.settings import PipelineSettings


@dataclass(frozen=True, kw_only=True)
class StreamSettings:
    model: str = "toon-classic"  # a zoo name or an .onnx path
    input_size: int | None = None  # None: the model card's default size
    # how a frame fits the model input: aspect | crop | letterbox | squash (pipeline/
    # stylize.py); None: aspect for fully convolutional models, else squash
    fit: str | None = None
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    threads: int = 2  # ONNX Runtime threads on this host; never changes a replay's timeline
    # what runs the model on this host (pipeline/stylize.py RUNTIMES); never the timeline
    host_runtime: str = "ort-cpu"
    # Real throttling: inference in a worker process confined by the OS (cgroups, else a
    # SIGSTOP/SIGCONT duty cycle and RLIMIT_AS; docs/throttling.md)
    throttle: bool = False
    cpu_fraction: float | None = None  # the worker's CPU quota in cores
    memory_limit_mb: float | None = None  # the worker's memory limit

    def shared(self) -> dict[str, Any]:
        """These fields' values, e.g. to start a live session with a replay's settings."""
        return {f.name: getattr(self, f.name) for f in fields(StreamSettings)}

    def validate(self) -> None:
        """InputError (naming the flag) for a value out of range; before any work."""
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) \
                or self.threads < 1:
            raise InputError("--threads", f"expected a positive integer, got {self.threads}")
        cores = os.cpu_count() or 1
        fraction, limit = self.cpu_fraction, self.memory_limit_mb
        if fraction is not None and not (math.isfinite(fraction) and 0 < fraction <= cores):
            raise InputError("--cpu-fraction", f"expected a number of cores in (0, {cores}], "
                             f"got {fraction!r}")
        if limit is not None and not (math.isfinite(limit) and limit > 0):
            raise InputError("--memory-limit-mb",
                             f"expected a positive number of MB, got {limit!r}")
        from simulator.pipeline.stylize import RUNTIMES

        if self.host_runtime not in RUNTIMES:
            raise InputError("--host-runtime", f"expected one of {', '.join(RUNTIMES)}, got "
                             f"{self.host_runtime!r}")
        if self.throttle and self.host_runtime != "ort-cpu":
            raise InputError("--host-runtime", "real throttling measures ONNX Runtime on the "
                             "CPU in its confined worker: use ort-cpu with --throttle real")
        self.pipeline.validate()
