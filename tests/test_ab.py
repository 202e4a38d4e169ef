"""A/B comparison (simulator/ab.py, `arsim run --compare-settings`, `arsim compare --html`):
two real replays of one scenario, their reports lined up, their screens synchronized."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import sample_report
from scenario_fixtures import make_scenario

from simulator.ab import comparison_frames, run_ab
from simulator.cli import main
from simulator.compare import check_rows, compare_reports
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.smooth import SmoothSettings
from simulator.run import RunSettings
from simulator.scenario.video import iter_frames


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("ab") / "s", frames=24, width=96, height=64)


@pytest.fixture(scope="module")
def ab(scenario: Path, tmp_path_factory: pytest.TempPathFactory):
    a = RunSettings(device="ipad-pro-m1", model="toon-classic", input_size=64, threads=1)
    b = RunSettings(device="ipad-pro-m1", model="toon-classic", input_size=64, threads=1,
                    pipeline=PipelineSettings(smoothing=SmoothSettings(method="ema", alpha=0.3)))
    out = tmp_path_factory.mktemp("ab-out")
    return run_ab(scenario, a, b, out, frames=5), out


def test_two_runs_one_page_with_both_flicker_curves(ab) -> None:
    result, out = ab
    assert result.html == out / "compare.html" and result.html.is_file()
    page = result.html.read_text()
    flicker_chart = page.split("<h2>Flicker</h2>")[1].split("</figure>")[0]
    assert flicker_chart.count('stroke-width="1.6"') == 2  # a curve per run
    for name in ("a", "b"):
        assert json.loads((out / name / "report.json").read_text())["complete"]
    flicker = next(row for row in result.comparison["rows"] if row["key"].endswith("warp_error"))
    a_error, b_error = flicker["values"]
    assert b_error < 0.8 * a_error  # EMA smoothing: visibly less flicker, on the same frames
    assert [e["label"] for e in result.comparison["reports"]] == ["A", "B"]


def test_screens_are_synchronized_through_the_videos(ab) -> None:
    result, out = ab
    frames = result.frames
    assert 2 <= len(frames) <= 5 and frames[0].index > 0  # not the black screen before
    videos = [list(iter_frames(out / name / "output.mp4")) for name in ("a", "b")]
    for frame in frames:
        for screen, video in zip(frame.screens, videos, strict=True):
            assert np.array_equal(screen, video[frame.index])  # 96x64: not shrunk
    differs = [not np.array_equal(*frame.screens) for frame in frames[1:]]
    assert any(differs)  # smoothing changes what B shows
    assert 'id="ab-split"' in result.html.read_text()


def test_compare_of_existing_runs_finds_their_videos(ab, tmp_path: Path) -> None:
    _, out = ab
    comparison = compare_reports([out / "a" / "report.json", out / "b" / "report.json"])
    assert len(comparison_frames(comparison, 3)) == 3
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "report.json").write_bytes((out / "a" / "report.json").read_bytes())
    alone = compare_reports([tmp_path / "a" / "report.json", out / "b" / "report.json"])
    assert comparison_frames(alone) == []  # one run has no output.mp4: no frames


def test_checks_whose_result_differs_are_marked() -> None:
    passing, failing = sample_report(seed=1), sample_report(seed=1)
    check = failing["verdict"]["checks"][0]
    check["passed"] = not check["passed"]
    comparison = {"reports": [{"report": passing}, {"report": failing}]}
    rows = check_rows(comparison)
    assert [r["name"] for r in rows if r["differs"]] == [check["name"]]
    assert len(rows) == len(passing["verdict"]["checks"])


def test_cli_compare_settings(scenario: Path, tmp_path: Path, capsys) -> None:
    settings = tmp_path / "b.toml"
    settings.write_text('[smoothing]\nmethod = "ema"\nalpha = 0.3\n')
    code = main(["run", str(scenario), "--device", "ipad-pro-m1", "--input-size", "64",
                 "--quiet", "--out", str(tmp_path / "out"), "--compare-settings", str(settings)])
    printed = capsys.readouterr().out
    verdicts = next(r for r in printed.splitlines() if r.startswith("verdict")).split()
    assert verdicts[1:] == ["FAIL", "PASS"]  # A flickers past its budget, smoothed B does not
    assert code == 1  # either run failing a budget fails the command
    assert "B (b.toml)" in printed
    assert (tmp_path / "out" / "compare.html").is_file()


def test_cli_compare_settings_bad_input_is_one_line(scenario: Path, tmp_path: Path,
                                                    capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[smoothing]\nmethod = 3\n")
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--compare-settings", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "smoothing.method" in err
    assert not out.exists()  # refused before any run
    good = tmp_path / "good.toml"
    good.write_text("")
    assert main(["run", str(scenario), "--out", str(out), "--timing-only",
                 "--compare-settings", str(good)]) == 2
    assert "timing-only" in capsys.readouterr().err


def test_compare_page_that_cannot_be_written_is_one_line_and_exit_4(
        ab, tmp_path: Path, capsys) -> None:
    _, out = ab
    page = tmp_path / "missing-folder" / "compare.html"
    code = main(["compare", str(out / "a" / "report.json"), str(out / "b" / "report.json"),
                 "--html", str(page)])
    err = capsys.readouterr().err.strip()
    assert code == 4 and len(err.splitlines()) == 1 and "compare.html" in err


def test_first_screen_of_a_report_that_does_not_say_is_zero() -> None:
    from simulator.ab import first_screen

    assert first_screen({"display": [], "frames": []}, 30.0) == 0
    assert first_screen({"display": [{"frame": 0}], "frames": [{"t_capture": 0.0}]}, 30.0) == 0
    shown = {"display": [{"t": 0.12}], "frames": [{"t_capture": 0.0}]}
    assert first_screen(shown, 30.0) == 4  # 0.12 s at 30 fps: video frame 4 is the first
