"""Which tests are slow: `pytest -m "not slow"` is the quick loop (a minute on 2 cores).

Whole integration modules are slow (real worker processes and cgroups, headless Chromium and
Appium, the Qt app, signals sent to subprocesses, PyTorch parity, model builds and full
replays); single slow tests elsewhere carry `@pytest.mark.slow` themselves.
"""

from __future__ import annotations

import pytest

SLOW_MODULES = {
    "test_animegan_parity", "test_app", "test_device_appium", "test_face_report",
    "test_lite_parity", "test_live", "test_pytest_plugin", "test_quantize", "test_signals",
    "test_throttle", "test_throttle_run", "test_virtual_cam", "test_web_target", "test_worker",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
