"""The iOS app's ArsimCore (mobile/ios), compiled and tested for real (mobile/ios/check.sh).

check.sh runs `swift build` and `swift test` (XCTest: MetricsVectorTests against the shared
metrics vector, SessionRecordingTests) with Debian's swiftlang 6.0.3 inside a Debian trixie root
that `make swift-check` prepares once in mobile/.swift-root/ (debootstrap + apt, ~0.6 GB
download, ~2.6 GB on disk, ~2 min). These tests run only when that root already exists:
the suite does not download a toolchain. With the root in place a check takes ~5-40 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "mobile" / "ios" / "check.sh"
VECTOR = ROOT / "mobile" / "test-vectors" / "metrics-vector.json"
SWIFT_ROOT = Path(os.environ.get("ARSIM_SWIFT_ROOT", ROOT / "mobile" / ".swift-root"))


def _root_ready() -> bool:
    ready = SWIFT_ROOT / "trixie.ready"
    return (SWIFT_ROOT / "trixie").is_dir() and ready.is_file() and ready.stat().st_size > 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _root_ready(),
        reason=f"no prepared Swift root in {SWIFT_ROOT}: run `make swift-check` once "
        "(as root; debootstrap + Debian swiftlang, ~0.6 GB download, ~2.6 GB on disk)",
    ),
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="the Swift check needs root (chroot)",
    ),
]


def run_check(vector: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ARSIM_METRICS_VECTOR", None)
    if vector is not None:
        env["ARSIM_METRICS_VECTOR"] = str(vector)
    proc = subprocess.Popen(
        ["bash", str(CHECK)],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM lets check.sh stop the compilers inside the root; then the rest of its group
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_arsimcore_compiles_and_its_xctests_pass_on_the_shared_vector() -> None:
    done = run_check()
    assert done.returncode == 0, done.stdout[-6000:]
    assert "swift-check: OK: Executed" in done.stdout, done.stdout[-3000:]
    for case in (
        "MetricsVectorTests.testMetricsAndVerdictMatchTheSharedVector",
        "MetricsVectorTests.testJsonNumberTellsBooleansFromNumbers",
        "SessionRecordingTests.testOneLineExactly",
    ):
        assert f"Test Case '{case}' passed" in done.stdout, case


def test_a_wrong_expected_value_fails_the_swift_check(tmp_path: Path) -> None:
    vector = json.loads(VECTOR.read_text())
    case = vector["cases"][0]
    case["expected"]["metrics"]["display_fps"] += 0.5
    bad = tmp_path / "metrics-vector.json"
    bad.write_text(json.dumps(vector))
    done = run_check(bad)
    assert done.returncode == 1, done.stdout[-6000:]
    assert "swift-check: FAILED: swift test" in done.stdout, done.stdout[-3000:]
    assert f"{case['name']}: metrics.display_fps" in done.stdout, done.stdout[-3000:]
    failed = "Test Case 'MetricsVectorTests.testMetricsAndVerdictMatchTheSharedVector' failed"
    assert failed in done.stdout, done.stdout[-3000:]
