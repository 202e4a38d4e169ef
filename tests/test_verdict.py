"""Budgets and verdicts."""

from __future__ import annotations

import math

import pytest

from simulator.errors import InputError
from simulator.metrics.verdict import BUDGET_METRICS, DEFAULT_BUDGETS, budgets_for, evaluate


def good_metrics(**changes: object) -> dict:
    metrics = {
        "display_fps": 20.0,
        "latency_ms": {"p50": 40.0, "p95": 60.0, "p99": 70.0, "mean": 42.0},
        "jank_pct": 2.0,
        "flicker": {"warp_error": 0.001},
        "memory_peak_mb": 150.0,
    }
    metrics.update(changes)
    return metrics


def test_budgets_for_adds_device_memory_and_expect_overrides() -> None:
    budgets = budgets_for(819.2, {"min_display_fps": 24, "max_flicker": 0.01})
    assert budgets["max_memory_mb"] == 819.2
    assert budgets["min_display_fps"] == 24.0
    assert budgets["max_flicker"] == 0.01
    assert budgets["max_latency_p95_ms"] == DEFAULT_BUDGETS["max_latency_p95_ms"]
    assert list(budgets) == list(BUDGET_METRICS)


@pytest.mark.parametrize("expect", [{"max_fps": 3.0}, {"max_jank_pct": "5"}, {"max_flicker": True}])
def test_bad_expect_entries_are_input_errors(expect: dict) -> None:
    with pytest.raises(InputError, match="expect"):
        budgets_for(800.0, expect)


def test_all_budgets_met() -> None:
    verdict = evaluate(good_metrics(), budgets_for(200.0, {}), oom_count=0)
    assert verdict["passed"] is True
    assert [c["name"] for c in verdict["checks"]] == list(BUDGET_METRICS)
    assert verdict["skipped"] == []
    fps = verdict["checks"][0]
    assert fps == {"name": "min_display_fps", "value": 20.0, "limit": 15.0, "op": ">=",
                   "passed": True}


def test_failures_and_boundaries() -> None:
    metrics = good_metrics(display_fps=14.9, latency_ms={"p95": 66.0})
    verdict = evaluate(metrics, budgets_for(200.0, {}), oom_count=1)
    by_name = {c["name"]: c for c in verdict["checks"]}
    assert verdict["passed"] is False
    assert by_name["min_display_fps"]["passed"] is False
    assert by_name["max_latency_p95_ms"]["passed"] is True  # equal to the limit passes
    assert by_name["max_latency_p95_ms"]["op"] == "<="
    assert by_name["max_oom_events"] == {"name": "max_oom_events", "value": 1.0, "limit": 0.0,
                                         "op": "<=", "passed": False}


def test_expect_override_changes_the_outcome() -> None:
    metrics = good_metrics(display_fps=12.0)
    assert not evaluate(metrics, budgets_for(200.0, {}), 0)["passed"]
    assert evaluate(metrics, budgets_for(200.0, {"min_display_fps": 10}), 0)["passed"]


def test_unmeasured_metrics_are_skipped_not_failed() -> None:
    metrics = good_metrics(flicker={"warp_error": None}, jank_pct=math.nan)
    del metrics["memory_peak_mb"]
    verdict = evaluate(metrics, budgets_for(200.0, {}), oom_count=0)
    assert verdict["skipped"] == ["max_jank_pct", "max_flicker", "max_memory_mb"]
    assert verdict["passed"] is True
    assert {c["name"] for c in verdict["checks"]}.isdisjoint(verdict["skipped"])


def test_a_budget_without_limit_is_skipped_and_unknown_budgets_rejected() -> None:
    verdict = evaluate(good_metrics(), {"max_memory_mb": None, "min_display_fps": 30.0}, 0)
    assert verdict["skipped"] == ["max_memory_mb"]
    assert verdict["passed"] is False
    with pytest.raises(ValueError):
        evaluate(good_metrics(), {"max_cpu": 1.0}, 0)
