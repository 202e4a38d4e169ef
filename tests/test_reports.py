"""report.json, junit.xml and report.html writers on a synthetic report."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import sample_report, sample_thumbnails

from simulator.report import write_reports
from simulator.report.html import render_html, rolling_fps
from simulator.report.json_report import SCHEMA, write_json
from simulator.report.junit import write_junit
from simulator.report.svg import Series, line_chart, nice_ticks


def test_json_round_trip_with_non_finite_numbers(tmp_path: Path) -> None:
    report = sample_report()
    report["metrics"]["inference_fps"] = math.nan
    report["metrics"]["latency_ms"]["p99"] = math.inf
    report["metrics"]["memory_peak_mb"] = np.float32(183.5)
    report["series"]["thermal_factor"] = np.array([1.0, 1.25])
    path = tmp_path / "report.json"
    write_json(report, path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text)
    assert next(iter(loaded)) == "schema" and loaded["schema"] == SCHEMA
    assert list(loaded) == list(report)  # key order kept
    assert loaded["metrics"]["inference_fps"] is None
    assert loaded["metrics"]["latency_ms"]["p99"] is None
    assert loaded["metrics"]["memory_peak_mb"] == 183.5
    assert loaded["series"]["thermal_factor"] == [1.0, 1.25]
    assert loaded["frames"] == report["frames"]
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_json_rejects_unknown_types(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_json({"value": object()}, tmp_path / "report.json")
    assert not list(tmp_path.iterdir())


def parse_junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root.find("testsuite")


def test_junit_counts_failures(tmp_path: Path) -> None:
    report = sample_report()
    write_junit(report, tmp_path / "junit.xml")
    suite = parse_junit(tmp_path / "junit.xml")
    checks = report["verdict"]["checks"]
    failed = [c["name"] for c in checks if not c["passed"]]
    assert suite.get("name") == "arsim.orbit-desk.redmi-note-10.gpu-fp16"
    assert int(suite.get("tests")) == len(checks)
    assert int(suite.get("failures")) == len(failed) > 0
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c["name"] for c in checks]
    assert [c.get("name") for c in cases if c.find("failure") is not None] == failed
    oom = next(c for c in cases if c.get("name") == "max_oom_events")
    assert oom.find("failure").get("message") == "value 1, limit <= 0"


def test_junit_incomplete_and_skipped(tmp_path: Path) -> None:
    report = sample_report(complete=False)
    report["verdict"]["skipped"] = ["max_flicker"]
    write_junit(report, tmp_path / "junit.xml")
    suite = parse_junit(tmp_path / "junit.xml")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["complete"].find("failure") is not None
    assert cases["max_flicker"].find("skipped") is not None
    failed = sum(1 for c in report["verdict"]["checks"] if not c["passed"])
    assert int(suite.get("failures")) == failed + 1
    assert int(suite.get("skipped")) == 1


def test_html_is_self_contained_with_verdict_and_plots() -> None:
    report = sample_report()
    report["scenario"]["name"] = "desk <script>alert(1)</script>"
    page = render_html(report, sample_thumbnails(2))
    for check in report["verdict"]["checks"]:
        assert f"<code>{check['name']}</code>" in page
    failed = sum(not c["passed"] for c in report["verdict"]["checks"])
    assert page.count('<tr class="fail">') == failed
    assert page.count("<svg") == 5
    assert "http" not in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count('src="data:image/jpeg;base64,') == 4
    assert "Incomplete report" not in page


def test_html_marks_incomplete_runs_and_handles_empty_data() -> None:
    report = sample_report(complete=False)
    report["display"] = []
    report["oom_events"] = []
    page = render_html(report)
    assert "Incomplete report" in page and "Ctrl-C" in page
    assert page.count("<svg") == 5
    assert "no data" in page
    assert "No out-of-memory events" in page


def test_write_reports_writes_all_three(tmp_path: Path) -> None:
    paths = write_reports(sample_report(), tmp_path / "out", sample_thumbnails(1))
    assert sorted(p.name for p in paths.values()) == ["junit.xml", "report.html", "report.json"]
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert json.loads(paths["json"].read_text())["verdict"]["passed"] is False


def test_rolling_fps_and_chart_helpers() -> None:
    times = [i / 15 for i in range(60)]
    t, fps = rolling_fps(times)
    assert t[0] >= 1.0 and all(f == pytest.approx(15.0) for f in fps)
    assert nice_ticks(0.0, 0.0023) == pytest.approx([0.0, 0.0005, 0.001, 0.0015, 0.002])
    svg = line_chart([Series("a", [0, 1, 2, 3], [1.0, None, 2.0, 3.0])], x_label="x", y_label="y")
    series_path = re.search(r'<path d="([^"]+)" fill="none" stroke="#2563eb"', svg).group(1)
    assert series_path.count("M") == 2 and series_path.count("L") == 1  # a gap at the None


def test_html_shows_size_changes_and_face_priority(tmp_path: Path) -> None:
    report = sample_report()
    report["size_changes"] = [{"t": 0.95, "from": 256, "to": 160, "reason": "latency 314 ms"}]
    report["face"] = {"detections_per_s": 6.0, "face_flops_share": 0.7}
    html = render_html(report)
    assert "latency 314 ms" in html and "detections_per_s" in html
    assert "face priority off" not in html
    assert "face priority off" in render_html(sample_report())
