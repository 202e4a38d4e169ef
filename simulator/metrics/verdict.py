"""Budgets → checks → verdict.

A budget named ``min_*`` passes when the metric is ≥ the limit, ``max_*`` when it is ≤.
A metric that is None or NaN (not measured, e.g. flicker in a timing-only run, or latency
when nothing was displayed) is not judged: its budget is listed under ``skipped`` and does
not change ``passed``. A budget whose limit is None is skipped the same way.

Default limits and why:
- ``min_display_fps`` 15 and ``max_latency_p95_ms`` 66: the AR fluency budget of the seed
  study (≥ 15 FPS, ≤ 66 ms motion-to-photon).
- ``max_jank_pct`` 10: jank is an interval longer than the run's own cadence (median
  interval, at least the camera interval) plus one display refresh (metrics/timing.py).
  Isolated hitches (a thermal step, an app event) stay well under 10 %, while a pipeline
  whose delivery is irregular shows them in many intervals; at 15 FPS, 10 % is a visible
  stutter about every 0.7 s, the most we accept.
- ``max_flicker`` 0.002 (warping error, metrics/flicker.py): measured on camera-like 640×360
  frames (panning, rotating, zooming textured scene with sensor noise), output = input gives
  0.00012; with an independent per-frame colour gain jitter of σ = 2 % 0.00028 and σ = 5 %
  0.0012; a hard-quantising toon filter 0.00065 (0.0014 with 2 % jitter); an output whose
  brightness alternates ±10 % 0.011. 0.002 passes stable per-frame stylisation of a
  camera stream and fails visible colour pumping (≳ ±5 % frame to frame).
- ``max_memory_mb``: not a default; it comes from the device (its app budget, 20 % of RAM),
  see :func:`budgets_for`.
- ``max_oom_events`` 0: an OOM kills the app on a phone.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from simulator.errors import InputError

DEFAULT_BUDGETS: dict[str, float] = {
    "min_display_fps": 15.0,
    "max_latency_p95_ms": 66.0,
    "max_jank_pct": 10.0,
    "max_flicker": 0.002,
    "max_oom_events": 0.0,
}

# Budget name → path of the metric it limits in report["metrics"] ("oom_count" is separate).
BUDGET_METRICS: dict[str, tuple[str, ...]] = {
    "min_display_fps": ("display_fps",),
    "max_latency_p95_ms": ("latency_ms", "p95"),
    "max_jank_pct": ("jank_pct",),
    "max_flicker": ("flicker", "warp_error"),
    "max_memory_mb": ("memory_peak_mb",),
    "max_oom_events": ("oom_count",),
}


def budget_op(name: str) -> str:
    """The comparison a budget makes: ``>=`` for ``min_*`` budgets, ``<=`` for ``max_*``."""
    return ">=" if name.startswith("min_") else "<="


def budgets_for(device_budget_mb: float, expect: Mapping[str, float]) -> dict[str, float]:
    """The run's budgets: defaults, the device's memory budget, then the scenario's ``expect``.

    Raises :class:`InputError` for an ``expect`` entry that names no known budget or is not
    a number.
    """
    budgets = {**DEFAULT_BUDGETS, "max_memory_mb": float(device_budget_mb)}
    for name, limit in expect.items():
        if name not in BUDGET_METRICS:
            known = ", ".join(BUDGET_METRICS)
            raise InputError(f"expect.{name}", f"unknown budget; expected one of {known}")
        if isinstance(limit, bool) or not isinstance(limit, int | float) or math.isnan(limit):
            raise InputError(f"expect.{name}", f"expected a number, got {limit!r}")
        budgets[name] = float(limit)
    # Keep a fixed order (the table order of BUDGET_METRICS) for reports.
    return {name: budgets[name] for name in BUDGET_METRICS if name in budgets}


def _metric_value(metrics: Mapping, path: tuple[str, ...]) -> float | None:
    value: object = metrics
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def evaluate(metrics: Mapping, budgets: Mapping[str, float | None], oom_count: int) -> dict:
    """Judge ``metrics`` against ``budgets``.

    Returns ``{"passed", "checks": [{"name", "value", "limit", "op", "passed"}], "skipped"}``;
    ``passed`` is true when every judged check passed (skipped budgets do not count).
    """
    values = {**metrics, "oom_count": oom_count}
    checks: list[dict] = []
    skipped: list[str] = []
    for name, limit in budgets.items():
        if name not in BUDGET_METRICS:
            raise ValueError(f"unknown budget {name!r}")
        value = _metric_value(values, BUDGET_METRICS[name])
        if value is None or limit is None:
            skipped.append(name)
            continue
        op = budget_op(name)
        passed = value >= limit if op == ">=" else value <= limit
        checks.append(
            {"name": name, "value": value, "limit": float(limit), "op": op, "passed": passed}
        )
    return {"passed": all(c["passed"] for c in checks), "checks": checks, "skipped": skipped}
