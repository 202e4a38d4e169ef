"""The arsim pytest plugin, run by pytester in a subprocess (an in-process inner session
would start a second Qt application under pytest-qt): scenario x device items, verdicts
as results."""

from __future__ import annotations

import json
from pathlib import Path

from scenario_fixtures import make_scenario

pytest_plugins = ["pytester"]


def _run(pytester, *args: str):
    return pytester.runpytest_subprocess("--arsim", "--arsim-timing-only", "-p",
                                         "no:cacheprovider", "--junitxml", "junit.xml", *args)


def test_each_scenario_and_device_is_a_test(pytester) -> None:
    make_scenario(pytester.path / "scenarios" / "calm", frames=20)
    make_scenario(pytester.path / "scenarios" / "strict", frames=20,
                  expect={"max_latency_p95_ms": 1})  # no phone shows a frame within 1 ms
    result = _run(pytester, "scenarios", "--arsim-device", "redmi-note-10",
                  "--arsim-device", "iphone-se-2020", "--arsim-out", "runs", "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*scenarios/calm/scenario.json::redmi-note-10 PASSED*",
        "*scenarios/calm/scenario.json::iphone-se-2020 PASSED*",
        "*strict on redmi-note-10: budget failed: max_latency_p95_ms: * (limit <= 1)*",
    ])
    report = json.loads(Path(pytester.path / "runs/strict/iphone-se-2020/report.json").read_text())
    assert report["verdict"]["passed"] is False and report["device"]["id"] == "iphone-se-2020"
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="report"' in junit and "runs/calm/redmi-note-10/report.json" in junit


def test_bad_input_is_an_error_naming_the_field(pytester) -> None:
    make_scenario(pytester.path / "sc" / "bad", frames=20, expect={"max_nonsense": 1})
    result = _run(pytester, "sc")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*bad on redmi-note-10: bad input: *bad/scenario.json: expect.max_nonsense: unknown*"])


def test_inactive_without_the_flag(pytester) -> None:
    make_scenario(pytester.path / "sc" / "calm", frames=20)
    result = pytester.runpytest_subprocess("sc", "-p", "no:cacheprovider")
    result.assert_outcomes()  # nothing collected


def test_items_spread_over_xdist_workers(pytester) -> None:
    for name in ("a", "b"):
        make_scenario(pytester.path / "sc" / name, frames=20)
    result = _run(pytester, "sc", "-n", "2", "--arsim-device", "redmi-note-10",
                  "--arsim-device", "ipad-pro-m1", "--arsim-out", "runs")
    result.assert_outcomes(passed=4)
    reports = sorted(p.relative_to(pytester.path).as_posix()
                     for p in (pytester.path / "runs").rglob("report.json"))
    assert reports == [f"runs/{s}/{d}/report.json" for s in ("a", "b")
                       for d in ("ipad-pro-m1", "redmi-note-10")]


def test_a_scenarios_devices_reuse_its_work(pytester) -> None:
    make_scenario(pytester.path / "sc" / "calm", frames=20)
    result = pytester.runpytest_subprocess(
        "--arsim", "-p", "no:cacheprovider", "sc", "--arsim-device", "redmi-note-10",
        "--arsim-device", "iphone-se-2020", "--arsim-out", "runs",
        "--arsim-cache", str(pytester.path / "cache"))
    result.assert_outcomes(passed=2)
    first, second = (json.loads((pytester.path / f"runs/calm/{d}/report.json").read_text())
                     ["host"]["cache"] for d in ("redmi-note-10", "iphone-se-2020"))
    assert first["stylized"]["misses"] > 0
    assert second["stylized"]["misses"] == 0 and second["decoded"]["misses"] == 0
    assert list((pytester.path / "cache" / "work" / "stylized").rglob("*.npy"))
