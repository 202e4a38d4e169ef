"""SIGTERM and SIGHUP are handled like Ctrl-C, and an interruption at any moment —
start-up included — leaves reports marked incomplete (issue 13, items 2, 5, 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main

ORBIT = Path(__file__).resolve().parents[1] / "scenarios" / "orbit-desk"


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "reason"), [
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (signal.SIGHUP, 129, "terminated (SIGHUP)"),
])
def test_termination_signal_mid_replay_writes_partial_report(
    tmp_path: Path, signum: int, code: int, reason: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "run", str(ORBIT), "--out", str(tmp_path),
         "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # progress lines start once the replay runs
    assert first.startswith("replay:"), first
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["complete"] is False
    assert report["incomplete_reason"].startswith(reason)


def test_interrupt_during_start_up_still_writes_a_report(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C while the model loads (before the replay) leaves an incomplete report."""
    import simulator.run as run

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "Stylizer", interrupted)
    assert main(["run", str(ORBIT), "--out", str(tmp_path), "--quiet"]) == 130
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["complete"] is False
    assert report["incomplete_reason"] == "interrupted (Ctrl-C) while loading the model"
    assert report["metrics"]["display_fps"] is None  # nothing measured: null, never 0
    assert (tmp_path / "report.html").is_file() and (tmp_path / "junit.xml").is_file()


@pytest.mark.parametrize(("flag", "value"), [
    ("--cpu-fraction", "0"), ("--cpu-fraction", "nan"), ("--cpu-fraction", "-1"),
    ("--memory-limit-mb", "-5"), ("--memory-limit-mb", "nan"),
])
def test_bad_throttle_arguments_refused_before_any_worker(
    tmp_path: Path, capsys, monkeypatch, flag: str, value: str
) -> None:
    import simulator.run as run

    def no_worker(*_args, **_kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr(run, "InferenceWorker", no_worker)
    assert main(["run", str(ORBIT), "--throttle", "real", flag, value,
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"arsim: error: {flag}: expected")


def _stop_after_first_line(args: list[str], signum: int, ready: str) -> tuple[int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "simulator", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = next((text for text in iter(proc.stderr.readline, "") if text.startswith(ready)), "")
    assert line.startswith(ready), line
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow
def test_sigterm_in_live_mode_writes_its_stats_and_exits_143(tmp_path: Path) -> None:
    stats_path = tmp_path / "live.json"
    code, err = _stop_after_first_line(
        ["live", "--source", str(ORBIT), "--model", "ar-lite", "--duration", "60",
         "--json", str(stats_path)], signal.SIGTERM, "live: running")
    assert code == 143, err
    assert "Traceback" not in err
    stats = json.loads(stats_path.read_text())
    assert stats["stop_reason"] == "terminated (SIGTERM)" and stats["interrupted_by"] == 15
    assert stats["displayed_frames"] >= 1


@pytest.mark.slow
def test_sigterm_in_a_sweep_keeps_the_finished_runs(tmp_path: Path) -> None:
    code, err = _stop_after_first_line(
        ["sweep", str(ORBIT), "--out", str(tmp_path)], signal.SIGTERM,
        "sweep: orbit-desk / ema")  # the second run of the grid
    assert code == 143, err
    assert "Traceback" not in err
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["complete"] is False and data["incomplete_reason"] == "terminated (SIGTERM)"
    assert data["rows"] and all(row["scenario"] == "orbit-desk" for row in data["rows"])
    assert (tmp_path / "sweep.md").read_text().startswith("**Incomplete**")


@pytest.mark.slow
def test_sigterm_closes_the_app_cleanly(tmp_path: Path) -> None:
    """The desktop app in live mode: SIGTERM closes the window as its close button does
    (live threads stopped, settings stored) and exits 143, leaving no shared memory."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "gui", "--live", str(ORBIT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    line = next((t for t in iter(proc.stderr.readline, "") if t.startswith("arsim gui:")), "")
    assert line.startswith("arsim gui: running"), line
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert not list(Path("/dev/shm").glob(f"arsim-{proc.pid}-*"))
    assert list(tmp_path.rglob("*.conf"))  # closeEvent ran: the window's settings were stored


def _interrupted_mid_replay(monkeypatch, module) -> list[str]:
    """``module.run_scenario`` becomes the real one with Ctrl-C pressed at the third camera
    frame of each replay: a real replay, stopped where a signal would stop it."""
    import simulator.run as run

    real, started = run.run_scenario, []

    def press_ctrl_c(done: int, _total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    def stopped_run(scenario, settings, out_dir, **kwargs):
        started.append(str(out_dir))
        return real(scenario, settings, out_dir, **{**kwargs, "progress": press_ctrl_c})

    monkeypatch.setattr(module, "run_scenario", stopped_run)
    return started


def test_a_sweep_stops_at_a_run_interrupted_mid_replay(monkeypatch) -> None:
    """The partial run is no row and the sweep goes no further (it used to carry on, or
    fail on the partial report's missing metrics)."""
    import simulator.sweep as sweep

    started = _interrupted_mid_replay(monkeypatch, sweep)
    rows: list[dict] = []
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep([ORBIT], sweep.default_grid(), progress=lambda _s: None, rows=rows)
    assert len(started) == 1 and rows == []


def test_a_serial_matrix_stops_at_a_run_interrupted_mid_replay(
    tmp_path: Path, monkeypatch
) -> None:
    """The interrupted run is recorded as incomplete, and the next run is not started."""
    import simulator.run as run
    from simulator.matrix import MatrixOptions, plan, run_group

    started = _interrupted_mid_replay(monkeypatch, run)
    records = []
    runs = plan([str(ORBIT)], ["iphone-se-2020", "redmi-note-10"], ["toon-classic"], [])
    with pytest.raises(KeyboardInterrupt):
        run_group(runs, str(tmp_path), MatrixOptions(timing_only=True, cache=False), 1,
                  records.append)
    assert len(started) == 1
    assert [r.status for r in records] == ["incomplete"]
    assert records[0].error.startswith("interrupted (Ctrl-C) at t=")
