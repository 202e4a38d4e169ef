"""The Android app's platform-free Kotlin, compiled and run for real (mobile/android/check.sh).

check.sh compiles Metrics.kt, PoseRecord.kt and RunParams.kt with their JVM unit tests
(MetricsVectorTest against the shared metrics vector, PoseRecordTest, RecordParamsTest) with
kotlinc 2.4.20 from npm and runs them with JUnit 4. The first run downloads the compiler
(~90 MB) and compiles (~20 s on 2 cores); later runs reuse the classes (stamp of the sources).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from simulator.mobile.vectors import VECTOR_PATH

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "mobile" / "android" / "check.sh"
TEST_CLASSES = ("MetricsVectorTest", "PoseRecordTest", "RecordParamsTest")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("java") is None, reason="no java on PATH: the Kotlin check needs a JDK 17"
    ),
]


def run_check(vector: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ARSIM_METRICS_VECTOR", None)
    if vector is not None:
        env["ARSIM_METRICS_VECTOR"] = str(vector)
    return subprocess.run(
        ["bash", str(CHECK)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def first_run() -> subprocess.CompletedProcess[str]:
    """check.sh on the shared vector: installs and compiles what is missing, runs the tests."""
    return run_check()


def test_kotlin_sources_compile_and_their_tests_pass(
    first_run: subprocess.CompletedProcess[str],
) -> None:
    done = first_run
    assert done.returncode == 0, done.stdout + done.stderr
    for name in TEST_CLASSES:
        assert f"PASS {name}: OK" in done.stdout, done.stdout


def test_a_wrong_expected_value_fails_the_kotlin_check(
    first_run: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    if first_run.returncode != 0:
        pytest.fail(
            "check.sh fails on the shared vector already:\n" + first_run.stdout + first_run.stderr
        )
    vector = json.loads(VECTOR_PATH.read_text())
    case = next(
        c for c in vector["cases"] if (c["expected"]["metrics"].get("display_fps") or 0) > 0
    )
    case["expected"]["metrics"]["display_fps"] += 1.0  # far beyond the vector's tolerance
    bad = tmp_path / "metrics-vector.json"
    bad.write_text(json.dumps(vector))

    done = run_check(bad)
    assert done.returncode == 1, done.stdout + done.stderr  # the code failed: not 2
    assert "FAIL MetricsVectorTest" in done.stdout, done.stdout
    assert f"{case['name']}: metrics.display_fps" in done.stderr, done.stderr
    # only the vector changed: the other tests still pass, the classes of the first run are reused
    assert "PASS PoseRecordTest: OK" in done.stdout, done.stdout
    assert "compiled" not in done.stdout, done.stdout
