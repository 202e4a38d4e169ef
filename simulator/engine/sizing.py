"""Dynamic input size: step between model input sizes by measured inference latency.

The seed's "dynamic resolution, switching 256 <-> 512 by device performance". The
controller watches the latency of finished inferences (virtual time, so the same on any
host) against the frame budget, with hysteresis so it does not oscillate:
- step down when the smoothed latency exceeds the budget for ``patience`` inferences;
- step up when the latency *predicted* at the next larger size (FLOPs grow with the
  pixel count) stays under ``headroom`` x budget for ``patience`` inferences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.errors import InputError


@dataclass(frozen=True)
class SizeSettings:
    """``sizes``: candidate input sizes (empty: fixed size); ``budget_ms``: the frame
    budget the latency is held to (default: 1000 / 15 FPS)."""

    sizes: tuple[int, ...] = ()
    budget_ms: float = 1000.0 / 15.0
    headroom: float = 0.7
    patience: int = 3
    smoothing: float = 0.5  # weight of the newest latency in the running average

    def validate(self) -> None:
        if any(s <= 0 for s in self.sizes) or len(set(self.sizes)) != len(self.sizes):
            raise InputError("--sizes", f"expected distinct positive sizes, got {self.sizes}")
        if not (math.isfinite(self.budget_ms) and self.budget_ms > 0):
            raise InputError("sizing", f"budget_ms must be > 0, got {self.budget_ms}")
        if not 0 < self.headroom < 1 or not 0 < self.smoothing <= 1 or self.patience < 1:
            raise InputError("sizing", "headroom and smoothing must be in (0, 1], patience >= 1")


class SizeController:
    """Starts at the largest candidate not above ``start_size`` (else the smallest)."""

    def __init__(self, settings: SizeSettings, start_size: int) -> None:
        settings.validate()
        self.settings = settings
        self.sizes: Sequence[int] = sorted(settings.sizes) or [start_size]
        fitting = [s for s in self.sizes if s <= start_size]
        self.size = max(fitting) if fitting else self.sizes[0]
        self.changes: list[dict] = []
        self._avg: float | None = None
        self._down = self._up = 0
        self.pinned = False  # force_smallest: no stepping up

    def observe(self, t: float, latency_ms: float) -> int:
        """Feed one finished inference (run at the current size); returns the size to use
        for the next one, logging any switch."""
        s = self.settings
        self._avg = latency_ms if self._avg is None else (
            s.smoothing * latency_ms + (1 - s.smoothing) * self._avg
        )
        i = self.sizes.index(self.size)
        over = self._avg > s.budget_ms
        self._down = self._down + 1 if over and i > 0 else 0
        bigger = self.sizes[i + 1] if i + 1 < len(self.sizes) else None
        predicted = self._avg * (bigger / self.size) ** 2 if bigger else math.inf
        self._up = self._up + 1 if predicted < s.headroom * s.budget_ms else 0
        if self._down >= s.patience:
            self._switch(t, self.sizes[i - 1], f"latency {self._avg:.1f} ms > {s.budget_ms:.1f}")
        elif self._up >= s.patience and bigger and not self.pinned:
            self._switch(t, bigger, f"predicted {predicted:.1f} ms at {bigger} fits")
        return self.size

    def force_smallest(self, t: float, reason: str) -> int:
        """Drop to the smallest size now and stay there (``pinned``) until ``unpin``."""
        self.pinned = True
        if self.size != self.sizes[0]:
            self._switch(t, self.sizes[0], reason)
        return self.size

    def unpin(self) -> None:
        """Let the latency rule step up again (after ``force_smallest``)."""
        self.pinned = False

    def _switch(self, t: float, size: int, reason: str) -> None:
        self.changes.append({"t": t, "from": self.size, "to": size, "reason": reason})
        self.size, self._down, self._up = size, 0, 0
        self._avg = None  # the old average belongs to the old size
