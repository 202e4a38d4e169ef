"""Which tests are slow: `pytest -m "not slow"` is the quick loop (a minute on 2 cores).

Whole integration modules are slow (real worker processes and cgroups, headless Chromium and
Appium, the Qt app, signals sent to subprocesses, PyTorch parity, model builds and full
replays); single slow tests elsewhere carry `@pytest.mark.slow` themselves.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SLOW_MODULES = {
    "test_ab", "test_animegan_parity", "test_app", "test_device_appium", "test_face_report",
    "test_lite_parity", "test_live", "test_pytest_plugin", "test_quantize", "test_signals",
    "test_throttle", "test_throttle_run", "test_virtual_cam", "test_web_target", "test_worker",
}


_OWN_CACHE: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """The tests' runs (and the ``arsim`` subprocesses they start) keep their cache in a
    folder of their own, not in the user's (tests that need a particular one set it); it is
    removed at the end."""
    if "ARSIM_CACHE_DIR" not in os.environ:
        os.environ["ARSIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="arsim-test-cache-")
        _OWN_CACHE.append(os.environ["ARSIM_CACHE_DIR"])


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _OWN_CACHE:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m "not slow"`` the slow modules are not even imported (torch alone takes
    seconds to import, in every pytest-xdist process)."""
    if config.getoption("markexpr", "").strip() == "not slow" \
            and collection_path.stem in SLOW_MODULES:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


class Leftovers:
    """Confined-worker resources (cgroups, shared-memory segments) of this process that
    appeared since the test began: a test asserts ``not leftovers.new()`` after its run.
    Only new ones count: a module fixture's live worker is not this test's leftover."""

    def __init__(self) -> None:
        self.before = self._now()

    @staticmethod
    def _now() -> set[str]:
        from simulator.device.throttle import our_cgroups
        from simulator.engine.worker import our_segments

        return {str(p) for p in our_cgroups()} | set(our_segments())

    def new(self) -> set[str]:
        return self._now() - self.before


@pytest.fixture
def leftovers() -> Leftovers:
    return Leftovers()


@pytest.fixture(autouse=True)
def _qt_cycles_freed_on_the_gui_thread(request: pytest.FixtureRequest):
    """Tests with Qt widgets run as the app does (simulator/app/gui_gc.py): windows left in
    reference cycles are freed on the GUI thread when the test ends, never by a replay's
    worker thread during a later test (which crashed the process at random)."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    from simulator.app.gui_gc import collect_on_gui_thread

    request.getfixturevalue("qapp")
    with collect_on_gui_thread():
        yield
