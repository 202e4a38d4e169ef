"""The settings sweep and pipeline settings files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator.cli import main
from simulator.errors import InputError
from simulator.pipeline.settings import PipelineSettings, load_settings, save_settings
from simulator.pipeline.skip import SkipSettings
from simulator.pipeline.smooth import SmoothSettings
from simulator.run import RunSettings
from simulator.sweep import Variant, format_markdown, run_sweep


def test_sweep_rows_compare_with_the_first_of_their_group(tmp_path: Path) -> None:
    scenario = make_scenario(tmp_path / "s", frames=20, width=96, height=64)
    base = RunSettings(device="ipad-pro-m1", backend="gpu-fp16")
    grid = [
        Variant("g", "none", base),
        Variant("g", "ema", replace(base, pipeline=PipelineSettings(
            smoothing=SmoothSettings(method="ema", alpha=0.5)))),
    ]
    rows = run_sweep([scenario], grid, progress=lambda _: None)
    assert [r["setting"] for r in rows] == ["none", "ema"]
    assert rows[0]["warp_error_change_pct"] == 0.0
    assert rows[1]["warp_error_change_pct"] < 0  # blending halves frame-to-frame change
    assert rows[0]["host_ms_720p"] == 0.0 and rows[1]["host_ms_720p"] > 0.0
    assert rows[1]["ghosting_ssim"] < 1.0
    table = format_markdown(rows)
    assert table.count("\n") == 4 and "| s | ema |" in table


def test_settings_file_round_trip_and_cli_override(tmp_path: Path) -> None:
    settings = PipelineSettings(smoothing=SmoothSettings(method="pose", alpha=0.4),
                                skip=SkipSettings(reuse="warp", max_age=4))
    path = tmp_path / "tuned.json"
    save_settings(settings, path)
    assert load_settings(path) == settings
    toml = tmp_path / "tuned.toml"
    toml.write_text('[smoothing]\nmethod = "flow"\n[sizing]\nsizes = [160, 256]\n')
    loaded = load_settings(toml)
    assert loaded.smoothing.method == "flow" and loaded.sizing.sizes == (160, 256)

    from simulator.cli import build_parser, pipeline_from_args

    args = build_parser().parse_args(
        ["run", "x", "--settings", str(path), "--smooth-alpha", "0.7", "--sizes", "128,256"])
    merged = pipeline_from_args(args)
    assert merged.smoothing == SmoothSettings(method="pose", alpha=0.7)
    assert merged.skip.max_age == 4 and merged.sizing.sizes == (128, 256)


@pytest.mark.parametrize(
    ("text", "needle"),
    [('[smoothing]\nmethod = "blur"\n', "method"), ("[smoothing]\nalpha = 'x'\n", "alpha"),
     ("[warp]\n", "unknown setting 'warp'"), ("not toml [", "not valid toml"),
     # found by make fuzz: a non-integer in the sizes list was a TypeError
     ('[sizing]\nsizes = [160, "x"]\n', "expected a list of integers"),
     ("[sizing]\nsizes = [160, [256]]\n", "expected a list of integers")],
)
def test_bad_settings_files(tmp_path: Path, text: str, needle: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_settings(path)
    assert main(["run", "x", "--settings", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
