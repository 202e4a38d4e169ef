"""The shared metrics test vector: current, and reproduced by the web target's metrics.mjs."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from simulator.mobile.vectors import VECTOR_PATH, build_vector, main, render

METRICS_MJS = Path(__file__).resolve().parents[1] / "mobile" / "web" / "metrics.mjs"

NODE_SCRIPT = """
import { readFileSync } from "node:fs";
const m = await import(process.argv[2]);
const vector = JSON.parse(readFileSync(process.argv[3], "utf8"));
const out = {};
for (const c of vector.cases) {
  const metrics = m.sessionMetrics({
    frames: c.frames, display: c.display, displayHz: c.display_hz, cameraFps: c.camera_fps,
    tEnd: c.t_end, background: c.background, minDisplayFps: c.budgets.min_display_fps,
  });
  out[c.name] = { metrics, verdict: m.evaluate(metrics, m.budgetsWith(c.budgets), c.oom_count) };
}
console.log(JSON.stringify(out));
"""


def test_vector_file_is_current() -> None:
    assert VECTOR_PATH.read_text(encoding="utf-8") == render(build_vector()) + "\n", (
        "mobile/test-vectors/metrics-vector.json is stale: run python -m simulator.mobile.vectors"
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "vector.json"
    assert main(["--out", str(out), "--check"]) == 1
    assert main(["--out", str(out)]) == 0
    assert main(["--out", str(out), "--check"]) == 0


def test_vector_covers_pass_fail_and_nulls() -> None:
    cases = {c["name"]: c for c in build_vector()["cases"]}
    verdicts = {name: c["expected"]["verdict"]["passed"] for name, c in cases.items()}
    assert verdicts["steady"] and not verdicts["stutter"] and not verdicts["drops-120hz"]
    assert cases["stutter"]["expected"]["metrics"]["jank_pct"] > 10
    assert cases["drops-120hz"]["expected"]["metrics"]["dropped_frames"] > 0
    nothing = cases["nothing-shown"]["expected"]
    assert nothing["metrics"]["latency_ms"]["p95"] is None
    assert "max_latency_p95_ms" in nothing["verdict"]["skipped"]
    tail = cases["tail"]
    assert any(f["t_infer_end"] is not None and f["t_infer_end"] > tail["t_end"]
               for f in tail["frames"])


def test_vector_shows_rates_from_intervals() -> None:
    cases = {c["name"]: c for c in build_vector()["cases"]}
    slow = cases["slow-model"]
    metrics = slow["expected"]["metrics"]
    counted = metrics["displayed_frames"] / (slow["t_end"] - slow["frames"][0]["t_capture"])
    assert metrics["display_fps"] == pytest.approx(1 / 0.45, abs=1e-9)
    assert counted == pytest.approx(2.0, abs=0.01)  # what a count over the session reads
    assert metrics["samples"] == {"display_intervals": 5, "inference_intervals": 5,
                                  "latencies": 6}
    assert metrics["display_interval_ms"]["n"] == metrics["frame_interval_ms"]["n"] == 5
    stall = cases["stall-at-end"]
    metrics = stall["expected"]["metrics"]
    # 30 FPS for 2 s, then nothing: the 6 s stall is one more interval than the percentiles'
    assert metrics["display_interval_ms"]["p50"] == pytest.approx(1000 / 30, rel=0.05)
    assert metrics["samples"]["display_intervals"] == metrics["display_interval_ms"]["n"] + 1
    assert 7.0 < metrics["display_fps"] < 8.0
    assert "min_display_fps" in [c["name"] for c in stall["expected"]["verdict"]["checks"]
                                 if not c["passed"]]


def _assert_same(got, want, where: str) -> None:
    if isinstance(want, bool) or want is None or isinstance(want, str):
        assert got == want and type(got) is type(want), f"{where}: got {got!r}, want {want!r}"
    elif isinstance(want, int | float):
        assert isinstance(got, int | float) and not isinstance(got, bool), f"{where}: {got!r}"
        if isinstance(want, int):
            assert got == want, f"{where}: got {got!r}, want {want!r}"
        else:
            assert math.isclose(got, want, rel_tol=0, abs_tol=1e-6), f"{where}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (
            f"{where}: keys {sorted(got) if isinstance(got, dict) else got} != {sorted(want)}"
        )
        for key in want:
            _assert_same(got[key], want[key], f"{where}.{key}")
    else:
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{where}[{i}]")


def test_metrics_mjs_reproduces_the_vector(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH (Debian: apt-get install nodejs); metrics.mjs untested")
    script = tmp_path / "check.mjs"
    script.write_text(NODE_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [node, str(script), METRICS_MJS.as_uri(), str(VECTOR_PATH)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    vector = json.loads(VECTOR_PATH.read_text(encoding="utf-8"))
    assert set(got) == {c["name"] for c in vector["cases"]}
    for case in vector["cases"]:
        _assert_same(got[case["name"]], case["expected"], case["name"])
