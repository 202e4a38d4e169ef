"""The graph-figures cache (zoo/stats_cache.py): a warm cache gives the same figures and the
same report without parsing the graph; a bad cache file is ignored, never trusted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator import work_cache
from simulator.zoo import registry, stats_cache
from simulator.zoo.registry import resolve_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ARSIM_CACHE_DIR", str(folder))
    return folder


def test_figures_come_back_from_disk_without_the_graph(cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cold = resolve_model("toon-classic")
    figures = (cold.flops((344, 192)), cold.activation_mb((344, 192)), cold.weights_bytes())
    (entry,) = (cache / "graph-stats").glob("*.json")
    assert json.loads(entry.read_text())["input_axis"] == 1
    monkeypatch.setattr(registry, "_load_checked", _refuse)  # no parse, no ORT check
    monkeypatch.setattr(registry.graph_stats, "analyze", _refuse)
    warm = resolve_model("toon-classic")
    assert (warm.flops((344, 192)), warm.activation_mb((344, 192)),
            warm.weights_bytes()) == figures


def _refuse(*_args, **_kwargs):
    raise AssertionError("the cache was not used")


def test_a_bad_cache_file_is_recomputed(cache: Path) -> None:
    model = resolve_model("toon-classic")
    expected = model.flops((344, 192))
    (entry,) = (cache / "graph-stats").glob("*.json")
    for text in ("{not json", json.dumps({"format": "other", "shapes": {}}),
                 json.dumps({"format": stats_cache.FORMAT, "input_axis": 7,
                             "shapes": {"344x192": {"flops": -5}}})):
        entry.write_text(text)
        assert stats_cache.load(model.path, (344, 192)) is None
        assert stats_cache.checked_axis(model.path) is None
        fresh = resolve_model("toon-classic")  # checked and analysed again, then stored
        assert fresh.flops((344, 192)) == expected
        assert stats_cache.load(model.path, (344, 192)).flops == expected


def test_another_file_is_another_entry(cache: Path, tmp_path: Path) -> None:
    model = resolve_model("toon-classic")
    copy = tmp_path / "copy.onnx"
    shutil.copyfile(model.path, copy)
    assert work_cache.file_hash(copy) == work_cache.file_hash(model.path)  # by content
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert work_cache.file_hash(copy) != work_cache.file_hash(model.path)


def test_an_unwritable_cache_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("ARSIM_CACHE_DIR", str(blocked))
    assert resolve_model("toon-classic").flops((344, 192)) > 0


def test_warm_and_cold_timing_only_reports_are_identical(tmp_path: Path) -> None:
    """Two processes (the second with a warm cache and no onnx import): the same report."""
    scenario = make_scenario(tmp_path / "s", frames=12, width=96, height=64)
    reports = []
    for name in ("cold", "warm"):
        code = ("import sys; from simulator.cli import main; rc = main(sys.argv[1:]); "
                "print('onnx' in sys.modules); sys.exit(rc)")
        done = subprocess.run(
            [sys.executable, "-c", code, "run", str(scenario), "--timing-only", "--quiet",
             "--out", str(tmp_path / name)],
            capture_output=True, text=True, cwd=REPO,
            env={**os.environ, "ARSIM_CACHE_DIR": str(tmp_path / "cache")})
        assert done.returncode in (0, 1), done.stderr
        reports.append((json.loads((tmp_path / name / "report.json").read_text()),
                        done.stdout.strip().splitlines()[-1]))
    (cold, cold_onnx), (warm, warm_onnx) = reports
    cold.pop("host"), warm.pop("host")
    assert cold == warm
    assert cold_onnx == "True" and warm_onnx == "False"  # the warm run never imported onnx


def test_cli_cache_info_and_clear(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    resolve_model("toon-classic").flops((344, 192))
    other = cache / "someone-elses.txt"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("not ours")
    assert main(["cache", "info"]) == 0
    assert "graph-stats: 1 files" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert not (cache / "graph-stats").exists() and other.exists()  # only our folders go
    assert main(["cache", "info"]) == 0
    assert "graph-stats: 0 files" in capsys.readouterr().out
