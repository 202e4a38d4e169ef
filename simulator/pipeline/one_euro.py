"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012): an exponential low-pass filter
whose cutoff frequency rises with the signal's speed, so that a still signal is smoothed
hard (no jitter) and a moving one is followed with little lag.

For samples ``x_i`` at times ``t_i`` (``dt = t_i - t_{i-1}``)::

    alpha(fc)  = r / (r + 1),  r = 2 pi fc dt          (smoothing factor of a cutoff fc, Hz)
    dx_i       = (x_i - x_hat_{i-1}) / dt
    dx_hat_i   = alpha(d_cutoff) dx_i + (1 - alpha(d_cutoff)) dx_hat_{i-1}
    fc_i       = min_cutoff + beta |dx_hat_i|
    x_hat_i    = alpha(fc_i) x_i + (1 - alpha(fc_i)) x_hat_{i-1}

The first sample passes through unchanged (``dx_hat_0 = 0``). For a vector, each element
is filtered on its own, with its own cutoff.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.errors import InputError

Value = float | np.ndarray


def smoothing_factor(dt: float | np.ndarray, cutoff: float | np.ndarray) -> float | np.ndarray:
    """Weight of the new sample in an exponential filter of ``cutoff`` Hz after ``dt`` s."""
    r = 2.0 * math.pi * cutoff * dt
    return r / (r + 1.0)


class OneEuroFilter:
    """One Euro filter for scalars or numpy vectors with explicit timestamps (seconds).

    ``min_cutoff`` (Hz) sets the smoothing of a still signal, ``beta`` (1 / signal unit)
    how fast the cutoff grows with speed, ``d_cutoff`` (Hz) the smoothing of the speed.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        for name, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
            if not (math.isfinite(value) and value > 0):
                raise InputError("one euro filter", f"{name} must be > 0 Hz, got {value}")
        if not (math.isfinite(beta) and beta >= 0):
            raise InputError("one euro filter", f"beta must be >= 0, got {beta}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next sample passes through unchanged."""
        self._t: float | None = None
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    @property
    def value(self) -> np.ndarray | None:
        """The last filtered value (None before the first sample)."""
        return None if self._x is None else self._x.copy()

    @property
    def velocity(self) -> np.ndarray | None:
        """The filtered derivative (signal units per second; None before the first sample)."""
        return None if self._dx is None else self._dx.copy()

    def filter(self, t: float, x: Value) -> Value:
        """Filter the sample ``x`` taken at time ``t``; returns the filtered value (a float
        for a scalar input). A sample not later than the previous one changes nothing."""
        sample = np.array(x, dtype=np.float64)
        if self._x is not None and sample.shape != self._x.shape:
            raise InputError(
                "one euro filter", f"sample shape {sample.shape} != previous {self._x.shape}"
            )
        if self._t is None or self._x is None or self._dx is None:
            self._t, self._x, self._dx = t, sample, np.zeros_like(sample)
            return _like(x, sample)
        dt = t - self._t
        if dt <= 0:
            return _like(x, self._x)
        dx = (sample - self._x) / dt
        self._dx = self._dx + smoothing_factor(dt, self.d_cutoff) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + smoothing_factor(dt, cutoff) * (sample - self._x)
        self._t = t
        return _like(x, self._x)


def _like(x: Value, value: np.ndarray) -> Value:
    """A float for a scalar input, else a copy of the array."""
    return float(value) if np.ndim(x) == 0 else value.copy()
