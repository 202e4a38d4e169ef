"""Real throttling inside a replay: the confined worker's measured latency drives the
timeline, and a worker killed for memory is an OOM event; nothing is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator.device.throttle import our_cgroups
from simulator.engine.worker import our_segments
from simulator.run import RunSettings, run_scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("t") / "s", frames=20, width=96, height=64)


def test_measured_latency_drives_the_timeline(scenario: Path, tmp_path: Path) -> None:
    settings = RunSettings(model="ar-lite", throttle=True, cpu_fraction=0.5)
    report = run_scenario(scenario, settings, tmp_path).report
    throttle = report["throttle"]
    assert throttle["mechanism"] in ("cgroup-v2", "cgroup-v1", "duty-cycle+rlimit")
    assert throttle["measured_latency_ms"] > 0 and throttle["predicted_latency_ms"] > 0
    runs = [f for f in report["frames"] if f["t_infer_end"] is not None]
    durations = sorted(1000 * (f["t_infer_end"] - f["t_infer_start"]) for f in runs)
    # the timeline's inference durations are the worker's measured latencies
    assert durations[len(durations) // 2] == pytest.approx(throttle["measured_latency_ms"],
                                                           rel=0.3)
    assert len(set(durations)) > 1  # measured, not a constant from the cost model
    assert not our_cgroups() and not our_segments()


def test_a_worker_killed_for_memory_is_an_oom_and_the_run_finishes(
    tmp_path: Path,
) -> None:
    events = [{"t": 0.2, "type": "memory_pressure", "mb": 400}]
    scenario = make_scenario(tmp_path / "p", frames=20, width=96, height=64, events=events)
    settings = RunSettings(model="ar-lite", throttle=True, cpu_fraction=1.0,
                           memory_limit_mb=410)
    run_scenario(scenario, settings, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (oom,) = report["oom_events"]
    assert oom["t"] == pytest.approx(0.2) and oom["source"] in ("kernel", "os-limit")
    assert report["complete"] is True and not report["verdict"]["passed"]
    assert not [d for d in report["display"] if d["t"] > 0.3]
    assert (tmp_path / "out" / "report.html").exists()
    assert not our_cgroups() and not our_segments()
