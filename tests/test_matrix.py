"""``arsim matrix`` (simulator/matrix.py, simulator/matrix_ray.py): the plan, the summary, the
local process pool, a real local Ray cluster, and workers killed mid-run."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator import matrix
from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = [str(ROOT / "scenarios" / "orbit-desk"), str(ROOT / "scenarios" / "pan-fast")]
FLOW = str(ROOT / "docs" / "settings" / "flow-smoothing.toml")


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_plan_is_every_combination_with_unique_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "fast.toml").write_text("[smoothing]\nmethod = \"ema\"\n")
    runs = matrix.plan(SCENARIOS, ["redmi-note-10", "iphone-se-2020"], ["toon-classic"],
                       [str(tmp_path / "a" / "fast.toml"), str(tmp_path / "b" / "fast.toml")])
    assert len(runs) == 8
    assert len({r.folder for r in runs}) == 8
    assert {r.settings_name for r in runs} == {"fast", "fast-2"}
    assert runs[0].folder == "orbit-desk/redmi-note-10/toon-classic/fast"
    # a scenario's runs of one model are one group: one process, one cache
    assert [len(g) for g in matrix.groups(runs)] == [4, 4]


@pytest.mark.parametrize("flags, where", [
    (["scenarios/nowhere", "--device", "redmi-note-10"], "scenarios/nowhere"),
    (["scenarios/orbit-desk", "--device", "no-such-phone"], "no-such-phone"),
    (["scenarios/orbit-desk", "--device", "redmi-note-10", "--settings", "missing.toml"],
     "missing.toml"),
    (["scenarios/orbit-desk", "--device", "redmi-note-10", "--model", "nope"], "nope"),
    (["scenarios/orbit-desk", "--device", "redmi-note-10", "--workers", "0"], "--workers"),
    (["scenarios/orbit-desk", "--device", "redmi-note-10", "--address", "x:1"], "--address"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_run(
        flags: list[str], where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    assert main(["matrix", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and where in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_summary_table_page_and_junit(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    # tight-1gb cannot hold AnimeGANv2's activations: a failed budget among passes -> exit 1
    code = main(["matrix", SCENARIOS[0], "--device", "redmi-note-10", "--device", "tight-1gb",
                 "--model", "toon-classic", "--model", "animeganv2-arch", "--timing-only",
                 "--out", str(out), "--no-cache"])
    summary = _summary(out)
    statuses = {(r["device"], r["model"]): r["status"] for r in summary["runs"]}
    assert len(statuses) == 4 and "failed" in statuses.values() and "passed" in statuses.values()
    assert code == 1
    assert summary["complete"] and summary["counts"]["failed"] >= 1
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "PASSED" in printed and "4 runs" in printed
    for run in summary["runs"]:
        report = json.loads((out / run["report"]).read_text())
        assert report["device"]["id"] == run["device"]
        assert run["metrics"]["display_fps"] == report["metrics"]["display_fps"]
        assert f'href="{run["folder"]}/report.html"' in (out / "index.html").read_text()
    junit = ET.parse(out / "junit.xml").getroot()
    suites = junit.findall("testsuite")
    assert len(suites) == 4 and len({s.get("name") for s in suites}) == 4
    failed_checks = sum(len(r["checks_failed"]) for r in summary["runs"])
    assert int(junit.get("failures")) == failed_checks > 0


@pytest.mark.slow
def test_pool_equals_serial_and_reuses_work(tmp_path: Path) -> None:
    scenarios = [str(make_scenario(tmp_path / name, frames=30, width=160, height=96))
                 for name in ("one", "two")]
    common = [*scenarios, "--device", "redmi-note-10", "--device", "iphone-se-2020",
              "--settings", FLOW]
    assert main(["matrix", *common, "--workers", "1", "--out", str(tmp_path / "serial"),
                 "--cache", str(tmp_path / "c1")]) == 0
    assert main(["matrix", *common, "--workers", "2", "--out", str(tmp_path / "pool"),
                 "--cache", str(tmp_path / "c2")]) == 0
    serial, pool = _summary(tmp_path / "serial"), _summary(tmp_path / "pool")
    assert matrix.comparable(serial) == matrix.comparable(pool)
    for run in pool["runs"]:
        a = json.loads((tmp_path / "serial" / run["report"]).read_text())
        b = json.loads((tmp_path / "pool" / run["report"]).read_text())
        a.pop("host"), b.pop("host")
        a["settings"].pop("threads"), b["settings"].pop("threads")
        assert a == b
        # the second device of a group found the first one's outputs in its process
        if run["device"] == "iphone-se-2020":
            cache = json.loads((tmp_path / "pool" / run["report"]).read_text())["host"]["cache"]
            assert cache["stylized"]["misses"] == 0 and cache["decoded"]["misses"] == 0


@pytest.mark.slow
def test_a_pool_reports_each_run_as_it_ends(tmp_path: Path) -> None:
    """Progress per run, not per group: a group's first run is reported while the group's
    later runs have not finished yet (they used to come back together, at the group's end)."""
    scenarios = [str(make_scenario(tmp_path / name, frames=120, width=160, height=96))
                 for name in ("one", "two")]
    runs = matrix.plan(scenarios, ["redmi-note-10", "iphone-se-2020", "ipad-pro-m1"],
                       ["toon-classic"], [])
    out = tmp_path / "m"
    reported = []

    def progress(record: matrix.RunRecord, done: int, total: int) -> None:
        group = [r for r in runs if r.scenario == record.run.scenario]
        later = group[group.index(record.run) + 1:]
        reported.append((record.run, sum((out / r.folder / "report.json").is_file()
                                         for r in later)))

    summary, _ = matrix.run_matrix(runs, out, matrix.MatrixOptions(cache=False),
                                   matrix.LocalExecutor(2), progress)
    assert summary.complete and sorted(r.run.folder for r in summary.runs) == \
        sorted(r.folder for r in runs)
    assert sorted(run.folder for run, _ in reported) == sorted(r.folder for r in runs)
    firsts = {scenario: next(r for r in runs if r.scenario == scenario) for scenario in scenarios}
    assert [done_later for run, done_later in reported if run in firsts.values()] == [0, 0]


def _processes() -> list[tuple[int, int, bytes]]:
    """(pid, parent pid, command line) of every process that is still there."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            found.append((int(entry.name), int(stat.rsplit(")", 1)[1].split()[1]), cmdline))
    return found


@pytest.mark.slow
def test_a_pool_worker_killed_mid_run_is_retried(tmp_path: Path) -> None:
    out = tmp_path / "m"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "matrix", *SCENARIOS, "--device", "redmi-note-10",
         "--workers", "2", "--out", str(out), "--no-cache"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline:
            time.sleep(0.5)
            # the pool's workers (the spawn machinery's resource tracker is not one)
            workers = [pid for pid, parent, cmdline in _processes()
                       if parent == process.pid and b"spawn_main" in cmdline]
            victim = workers[0] if len(workers) == 2 else None
        assert victim is not None
        time.sleep(2.0)  # inside a replay
        os.kill(victim, signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    summary = _summary(out)
    assert summary["counts"]["passed"] == 2
    # a dead worker breaks the whole pool: what was running in it is run again
    assert max(r["attempts"] for r in summary["runs"]) == 2


# --- a real local Ray cluster: `ray start --head` and a worker node ---------------------------

RAY = shutil.which("ray", path=str(Path(sys.executable).parent))


@pytest.mark.slow
def test_sigterm_stops_a_pool_matrix_with_its_finished_runs_and_no_worker_left(
    tmp_path: Path
) -> None:
    """SIGTERM after the first run is reported: exit 143, the summary holds what finished,
    marked incomplete, and no pool worker outlives the matrix."""
    scenarios = [str(make_scenario(tmp_path / name, frames=60, width=160, height=96))
                 for name in ("one", "two")]
    out = tmp_path / "m"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "matrix", *scenarios, "--device", "redmi-note-10",
         "--device", "iphone-se-2020", "--device", "ipad-pro-m1", "--workers", "2",
         "--no-cache", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("matrix: 1/6 "), first
        workers = [pid for pid, parent, cmdline in _processes()
                   if parent == process.pid and b"spawn_main" in cmdline]
        os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    summary = _summary(out)
    assert summary["complete"] is False
    assert summary["incomplete_reason"].startswith("terminated (SIGTERM) after ")
    assert 1 <= len(summary["runs"]) < 6
    alive = {pid for pid, _, _ in _processes()}
    assert workers and not alive & set(workers)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    if RAY is None:
        pytest.fail("ray is not installed: `make setup-train` installs the cluster extra")
    from socket import socket

    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_BACKEND_LOG_LEVEL": "error"}
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([RAY, "start", "--head", "--port", str(port), "--temp-dir", str(temp),
                        "--include-dashboard", "false", *common],
                       env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([RAY, "start", "--address", address, *common], env=env, check=True,
                       capture_output=True, timeout=120)
        yield address, env
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _matrix(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", "matrix", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_ray_cluster_summary_equals_the_local_one(ray_cluster, tmp_path: Path) -> None:
    address, env = ray_cluster
    grid = [*SCENARIOS, "--device", "redmi-note-10", "--device", "iphone-se-2020",
            "--device", "ipad-pro-m1", "--settings", FLOW, "--settings",
            str(ROOT / "docs" / "settings" / "flow-smoothing.toml"), "--timing-only"]
    on_ray = _matrix([*grid, "--executor", "ray", "--address", address,
                      "--out", str(tmp_path / "ray")], env)
    local = _matrix([*grid, "--out", str(tmp_path / "local")], env)
    assert on_ray.returncode == local.returncode == 0, on_ray.stderr[-2000:]
    ray_summary, local_summary = _summary(tmp_path / "ray"), _summary(tmp_path / "local")
    assert ray_summary["executor"] == "ray" and len(ray_summary["runs"]) == 12
    assert matrix.comparable(ray_summary) == matrix.comparable(local_summary)
    for run in ray_summary["runs"]:  # the reports came back to the caller
        assert (tmp_path / "ray" / run["folder"] / "report.html").is_file()


def _ray_workers() -> list[int]:
    return [pid for pid, _, cmdline in _processes() if b"ray::GroupRunner" in cmdline]


@pytest.mark.slow
def test_ray_actor_killed_mid_run_is_retried_not_lost(ray_cluster, tmp_path: Path) -> None:
    address, env = ray_cluster
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "matrix", SCENARIOS[0], "--device",
         "redmi-note-10", "--device", "iphone-se-2020", "--executor", "ray", "--address",
         address, "--out", str(tmp_path / "m"), "--no-cache"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _ray_workers() and time.monotonic() < deadline:
            time.sleep(0.3)
        if not _ray_workers():
            process.kill()
            pytest.fail(f"no actor started: {process.communicate()[1][-3000:]}")
        time.sleep(2.0)  # inside the first replay
        for pid in _ray_workers():
            os.kill(pid, signal.SIGKILL)
        process.communicate(timeout=400)
    finally:
        process.kill()
    summary = _summary(tmp_path / "m")
    assert len(summary["runs"]) == 2  # every run is in the summary: passed or an error
    for run in summary["runs"]:
        assert (run["status"] == "passed" and run["attempts"] == 2) or \
            (run["status"] == "error" and "Ray worker" in run["error"])
    assert summary["runs"][0]["attempts"] == 2  # the group was running when it was killed
    assert process.returncode in (0, 3)
