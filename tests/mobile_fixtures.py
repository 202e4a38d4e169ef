"""What the mobile bench's integration tests share: the bundled scenario they play, the
check that `make mobile-setup` installed what they need, and the simulator's metrics of a
device report's own timeline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulator.mobile.vectors import expected

ROOT = Path(__file__).resolve().parents[1]
ORBIT = ROOT / "scenarios" / "orbit-desk"


def needs(*paths: Path | str) -> None:
    """Skip when a tool is missing here; fail under CI=true, where the Makefile installs it."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if not missing:
        return
    message = f"missing {', '.join(missing)}: run `make mobile-setup`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # CI installs them through the Makefile: absence is a bug
    pytest.skip(message)


def simulator_metrics(report: dict) -> dict:
    """The metrics the simulator's code computes from a device report's own timeline, under
    the shared vector's rules (simulator/mobile/vectors.py): what the page or app must report."""
    case = {"frames": report["frames"], "display": report["display"],
            "t_end": report["playback"]["t_end"], "camera_fps": report["scenario"]["fps"],
            "display_hz": report["device"]["display_hz"], "budgets": report["budgets"],
            "oom_count": len(report["oom_events"])}
    return expected(case)["metrics"]
