"""What the mobile bench's integration tests share: the bundled scenario they play and the
check that `make mobile-setup` installed what they need."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
