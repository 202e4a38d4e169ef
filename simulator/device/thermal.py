"""Thermal throttling as a latency factor: a first-order (lumped RC) temperature model.

The temperature rise above ambient T follows dT/dt = heating x busy - T / tau, so under
full load it approaches heating x tau with time constant tau. Below `throttle_above_c` the
factor is 1; above it rises linearly, reaching `max_factor` at the full-load steady state.
"""

from __future__ import annotations

import math

from simulator.device.profile import DeviceProfile


class ThermalModel:
    """Deterministic thermal state of one device; starts cool (at ambient)."""

    def __init__(self, profile: DeviceProfile) -> None:
        self.spec = profile.thermal
        self.temperature_c = 0.0  # rise above ambient
        self.elapsed_s = 0.0
        self._forced_factor = 1.0

    @property
    def full_load_temperature_c(self) -> float:
        """Steady-state rise under 100 % load."""
        return self.spec.heating_c_per_s * self.spec.tau_s

    def advance(self, dt_s: float, busy_fraction: float) -> None:
        """Moves time on by `dt_s` with the SoC busy `busy_fraction` (0..1) of the time.

        Uses the exact solution for a constant load, so splitting an interval into steps
        gives the same state as one step.
        """
        if not (math.isfinite(dt_s) and dt_s >= 0):
            raise ValueError(f"dt_s must be a finite number >= 0, got {dt_s!r}")
        if not (0.0 <= busy_fraction <= 1.0):
            raise ValueError(f"busy_fraction must be within 0..1, got {busy_fraction!r}")
        steady_c = self.full_load_temperature_c * busy_fraction
        decay = math.exp(-dt_s / self.spec.tau_s)
        self.temperature_c = steady_c + (self.temperature_c - steady_c) * decay
        self.elapsed_s += dt_s

    def force(self, min_factor: float) -> None:
        """From now on the factor is at least `min_factor` (a scenario thermal event; 1 = none)."""
        if not (math.isfinite(min_factor) and min_factor >= 1.0):
            raise ValueError(f"min_factor must be a finite number >= 1, got {min_factor!r}")
        self._forced_factor = min_factor

    @property
    def modelled_factor(self) -> float:
        """The factor from temperature alone, ignoring `force`."""
        over_c = self.temperature_c - self.spec.throttle_above_c
        if over_c <= 0:
            return 1.0
        # Reached only if T > threshold, hence the full-load temperature exceeds it too.
        span_c = self.full_load_temperature_c - self.spec.throttle_above_c
        return 1.0 + (self.spec.max_factor - 1.0) * min(1.0, over_c / span_c)

    @property
    def factor(self) -> float:
        """Latency multiplier >= 1 applied to inference."""
        return max(self.modelled_factor, self._forced_factor)

    def time_to_throttle_s(self, busy_fraction: float = 1.0) -> float:
        """Seconds of constant load from cool until throttling starts (inf if it never does)."""
        steady_c = self.full_load_temperature_c * busy_fraction
        if steady_c <= self.spec.throttle_above_c:
            return math.inf
        return -self.spec.tau_s * math.log(1.0 - self.spec.throttle_above_c / steady_c)
