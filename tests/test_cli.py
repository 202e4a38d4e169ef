"""The ``arsim`` command line: the run contract, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator.cli import main


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("cli") / "sc", frames=30, width=96, height=64)


def _one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("arsim: error: ")
    for needle in needles:
        assert needle in err, err
    return err


def test_run_writes_reports_and_prints_verdict(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["run", str(scenario), "--out", str(tmp_path), "--quiet", "--device", "ipad-pro-m1",
               "--backend", "gpu-fp16"])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert rc == (0 if report["verdict"]["passed"] else 1)
    assert "verdict:" in out and "min_display_fps" in out
    for key in ("schema", "complete", "scenario", "device", "backend", "model", "input_size",
                "metrics", "oom_events", "verdict", "frames"):
        assert key in report
    for key in ("display_fps", "inference_fps", "latency_ms", "jank_pct", "dropped_frames",
                "flicker", "memory_peak_mb"):
        assert key in report["metrics"]
    assert set(report["metrics"]["latency_ms"]) >= {"p50", "p95", "p99"}
    assert report["device"]["id"] == "ipad-pro-m1" and report["input_size"] == 256
    assert len(report["frames"]) == 30
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "<testsuite" in (tmp_path / "junit.xml").read_text()


def test_failed_budget_exits_1(scenario: Path, tmp_path: Path) -> None:
    (tmp_path / "sc").mkdir()
    strict = make_scenario(tmp_path / "sc", frames=30, width=96, height=64,
                           expect={"min_display_fps": 1000})
    assert main(["run", str(strict), "--out", str(tmp_path / "o"), "--quiet",
                 "--timing-only"]) == 1


@pytest.mark.slow
def test_console_script_runs_without_traceback(scenario: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "run", str(scenario), "--device", "no-such-phone"],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "no-such-phone" in done.stderr


def _broken_json(d: Path) -> Path:
    p = make_scenario(d, frames=4)
    (p / "scenario.json").write_text('{"format": "arsim-scenario/1",')
    return p


def _escaping_zip(d: Path) -> Path:
    d.mkdir(parents=True)
    z = d / "evil.zip"
    with zipfile.ZipFile(z, "w") as archive:
        archive.writestr("../../escape.txt", "x")
    return z


def _not_a_video(d: Path) -> Path:
    p = make_scenario(d, frames=4)
    (p / "video.mp4").write_bytes(b"this is not a video at all" * 10)
    return p


@pytest.mark.parametrize(
    ("case", "args", "needles"),
    [
        ("missing", lambda d: ["run", str(d / "nope")], ["nope"]),
        ("broken json", lambda d: ["run", str(_broken_json(d / "b"))], ["scenario.json"]),
        ("escaping zip", lambda d: ["run", str(_escaping_zip(d / "z"))], ["evil.zip"]),
        ("not a video", lambda d: ["run", str(_not_a_video(d / "v"))], ["video.mp4"]),
        ("unknown device", lambda d: ["run", str(make_scenario(d / "s", frames=4)),
                                      "--device", "nokia-3310"], ["nokia-3310"]),
        ("unknown backend", lambda d: ["run", str(make_scenario(d / "s", frames=4)),
                                       "--backend", "npu"], ["npu"]),
        ("bad input size", lambda d: ["run", str(make_scenario(d / "s", frames=4)),
                                      "--input-size", "250"], ["250"]),
        ("unknown option", lambda d: ["run", "x", "--fast"], ["--fast"]),
        ("unknown model", lambda d: ["run", "x", "--model", "no-such-model"], ["no-such-model"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    case: str, args, needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(tmp_path)) == 2, case
    _one_error_line(capsys, *needles)


def test_model_file_that_is_not_onnx(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_text("definitely not a protobuf")
    assert main(["run", str(scenario), "--model", str(fake), "--out", str(tmp_path)]) == 2
    _one_error_line(capsys, "model.onnx")
    assert not (tmp_path / "report.json").exists()


def test_scenario_validate_and_info(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "validate", str(scenario)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["scenario", "info", str(scenario)]) == 0
    out = capsys.readouterr().out
    assert "30 frames" in out and "96x64" in out


def test_devices_and_models_listings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "list"]) == 0
    out = capsys.readouterr().out
    assert all(d in out for d in ("redmi-note-10", "iphone-se-2020", "ipad-pro-m1"))
    assert main(["devices", "show", "redmi-note-10"]) == 0
    assert "seed table" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    assert "toon-classic" in capsys.readouterr().out
    assert main(["models", "info", "toon-classic"]) == 0
    assert '"flops"' in capsys.readouterr().out


def test_interrupted_run_exits_130_with_partial_report(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator import progress

    def interrupt(self, done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.Progress, "__call__", interrupt)
    assert main(["run", str(scenario), "--out", str(tmp_path)]) == 130
    assert json.loads((tmp_path / "report.json").read_text())["complete"] is False


@pytest.mark.slow
def test_real_sigint_writes_partial_report(tmp_path: Path) -> None:
    import os
    import signal

    bundled = Path(__file__).resolve().parents[1] / "scenarios" / "orbit-desk"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "run", str(bundled), "--out", str(tmp_path),
         "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # progress lines start once the replay runs
    assert first.startswith("replay:"), first
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "incomplete" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["complete"] is False
    assert 0 < sum(f["stylized"] for f in report["frames"]) < len(report["frames"])
    assert "INCOMPLETE" in out


def test_live_virtual_cam_options_parse() -> None:
    from simulator.cli import build_parser

    args = build_parser().parse_args(
        ["live", "--source", "s", "--virtual-cam", "--virtual-cam-backend", "v4l2loopback",
         "--virtual-cam-size", "640x360"])
    assert args.virtual_cam and args.virtual_cam_backend == "v4l2loopback"
    assert args.virtual_cam_size == (640, 360)
