"""Host runtimes (--host-runtime): OpenVINO beside ONNX Runtime, the same timeline, one line
for what this host lacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scenario_fixtures import make_scenario

from simulator.cli import main
from simulator.pipeline.stylize import Stylizer
from simulator.run import RunSettings, run_scenario
from simulator.work_cache import WorkCache
from simulator.zoo.registry import resolve_model


@pytest.mark.parametrize("name", ["toon-classic", "ar-lite"])
def test_openvino_outputs_match_onnx_runtime(name: str) -> None:
    frame = np.random.default_rng(4).integers(0, 255, (96, 160, 3), dtype=np.uint8)
    ort_out = Stylizer(resolve_model(name), 128).stylize(frame)
    ov = Stylizer(resolve_model(name), 128, runtime="openvino")
    ov_out = ov.stylize(frame)
    assert ov.runtime_id.startswith("openvino ")
    assert np.abs(ort_out.astype(int) - ov_out).max() <= 2  # fp32 both: rounding only
    assert np.mean(ort_out != ov_out) < 0.01


def _timeline(report: dict) -> dict:
    """The report without what the host's pixels decide (flicker) or the host itself."""
    report = json.loads(json.dumps(report))
    report.pop("host")
    report["settings"].pop("host_runtime")
    report["metrics"].pop("flicker")
    report["verdict"]["checks"] = [c for c in report["verdict"]["checks"]
                                   if c["name"] != "max_flicker"]
    for entry in report["display"]:
        entry.pop("warp_error"), entry.pop("luminance")
    return report


def test_the_runtime_never_changes_the_timeline(tmp_path: Path) -> None:
    scenario = make_scenario(tmp_path / "sc", frames=20)
    cache = WorkCache(None)
    reports = {runtime: run_scenario(scenario, RunSettings(host_runtime=runtime, thumbnails=0),
                                     tmp_path / runtime, cache=cache).report
               for runtime in ("ort-cpu", "openvino")}
    assert reports["openvino"]["host"]["runtime"].startswith("openvino")
    assert reports["ort-cpu"]["host"]["runtime"].startswith("onnxruntime-cpu")
    assert _timeline(reports["ort-cpu"]) == _timeline(reports["openvino"])
    # a runtime's outputs are its own: OpenVINO reused nothing ONNX Runtime computed
    assert reports["openvino"]["host"]["cache"]["stylized"]["misses"] > 0


HAS_CUDA = "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers()


@pytest.mark.parametrize("flags, words", [
    pytest.param(["--host-runtime", "cuda"], "CUDA provider",
                 marks=pytest.mark.skipif(HAS_CUDA, reason="this host has CUDA")),
    (["--host-runtime", "openvino", "--throttle", "real"], "ort-cpu with --throttle real"),
])
def test_what_the_host_lacks_is_one_line(flags: list[str], words: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    scenario = make_scenario(tmp_path / "sc", frames=6)
    code = main(["run", str(scenario), "--out", str(tmp_path / "out"), "--quiet", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0] and "--host-runtime" in err[0]


def test_an_unknown_runtime_is_one_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    scenario = make_scenario(tmp_path / "sc", frames=6)
    try:
        code = main(["run", str(scenario), "--out", str(tmp_path / "out"),
                     "--host-runtime", "tpu"])
    except SystemExit as exc:  # argparse's choices
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--host-runtime" in err[0] and "'tpu'" in err[0]


def test_openvino_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(__import__("sys").modules, "openvino", None)  # import fails
    scenario = make_scenario(tmp_path / "sc", frames=6)
    code = main(["run", str(scenario), "--out", str(tmp_path / "out"), "--quiet",
                 "--host-runtime", "openvino", "--no-cache"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "openvino is not installed" in err[0]
    assert "arsim[fast]" in err[0]
