"""``arsim gui``: start the app; with ``screenshot``, render it offscreen and exit."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from simulator.errors import InputError

if TYPE_CHECKING:
    from PyQt6.QtWidgets import QApplication, QWidget

    from simulator.app.window import MainWindow
    from simulator.pipeline.settings import PipelineSettings

SCREENSHOT_TIMEOUT_S = 120.0
SCREENSHOT_SIZE = (1500, 900)


def prepare_qt_environment(offscreen: bool = False) -> None:
    """Undo what importing OpenCV does to Qt's environment (its own Qt5 plugin and font
    folders) and pick the offscreen platform when asked or when there is no display."""
    import cv2  # noqa: F401  (imported first so that its changes can be undone here)

    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        os.environ.pop(name, None)
    no_display = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if offscreen or (no_display and sys.platform.startswith("linux")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        _quiet_offscreen_warnings()


def _quiet_offscreen_warnings() -> None:
    """The offscreen platform warns about window hints it ignores: noise, not news (the
    CLI's contract is one clear line on errors)."""
    from PyQt6.QtCore import QtMsgType, qInstallMessageHandler

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)


def _open(window: MainWindow, scenario: str | None, live: int | str | None) -> bool:
    """Open ``scenario`` and start ``live``; False (window closed, error printed) when the
    scenario cannot be opened."""
    if scenario is not None and not window.open_scenario(scenario, paused=live is not None):
        print(f"arsim: error: {window.statusBar().currentMessage()}", file=sys.stderr)
        window.close()
        return False
    if live is not None:
        window.start_live(live)
    return True


@contextmanager
def _close_on_signals(shown: list[QWidget]) -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM and SIGHUP close the ``shown`` window like its close button (live workers,
    confined workers and their cgroups, the virtual camera are shut down by closeEvent);
    the signal received is put in the yielded list. Qt's event loop runs no Python, so a
    timer wakes the interpreter to run the handlers."""
    from PyQt6.QtCore import QTimer

    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            for window in shown:  # none yet while starting: the caller checks ``received``
                QTimer.singleShot(0, window.close)

    previous = {signum: signal.signal(signum, handler)
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        yield received
    finally:
        wake.stop()
        for signum, old in previous.items():
            signal.signal(signum, old)


def _start_ab(window: MainWindow, b_pipeline: PipelineSettings, path: Path | None) -> bool:
    """Pin the window's settings as A and compare them with ``b_pipeline`` (B)."""
    from dataclasses import replace

    window.ab.pin()
    b = replace(window.run_settings(), pipeline=b_pipeline)
    return window.ab.compare(b, ("A", f"B ({Path(path).name})" if path else "B"))


def parse_live_source(source: str | int) -> int | str:
    """``--live`` value: a camera index (digits) or a scenario path."""
    if isinstance(source, int):
        return source
    return int(source) if source.strip().isdigit() else source


def run_gui(scenario: str | None, *, screenshot: Path | None = None, frames: int = 12,
            live_source: str | int | None = None, compare_settings: Path | None = None) -> int:
    """Run the app on ``scenario`` (a folder or .zip; None: open one from the menu).

    With ``live_source`` (a camera index, or a scenario path looped as a camera) the app
    starts straight in live mode; a scenario path given only there is opened too.
    With ``screenshot``: play offscreen until ``frames`` pictures were shown (or the replay
    ended), save the window as a PNG and return 0 (1 when it failed, 2 for bad input).
    With ``compare_settings`` (a pipeline settings file) the app pins its settings as A and
    compares them with the file's (B) in its A/B view; a screenshot is then of that view.
    """
    live = parse_live_source(live_source) if live_source is not None else None
    b_pipeline = None
    if compare_settings is not None:
        from simulator.pipeline.settings import load_settings

        if scenario is None:
            raise InputError("--compare-settings", "needs a SCENARIO")
        b_pipeline = load_settings(compare_settings)  # bad input: before any window
    if scenario is None and isinstance(live, str):
        scenario = live
    prepare_qt_environment(offscreen=screenshot is not None)
    from PyQt6.QtWidgets import QApplication

    from simulator.app.gui_gc import collect_on_gui_thread

    app = QApplication.instance() or QApplication([sys.argv[0], "-style", "Fusion"])
    with collect_on_gui_thread():  # Qt objects in cycles are freed on this thread only
        return _run_app(app, scenario, screenshot, frames, live, b_pipeline, compare_settings)


def _run_app(app: QApplication, scenario: str | None, screenshot: Path | None, frames: int,
             live: int | str | None, b_pipeline: PipelineSettings | None,
             compare_settings: Path | None) -> int:
    from PyQt6.QtCore import QTimer

    from simulator.app.window import MainWindow

    if screenshot is None:  # interactive: signals close the window from the start
        shown: list[MainWindow] = []
        with _close_on_signals(shown) as received:
            window = MainWindow()
            shown.append(window)
            window.show()
            if not _open(window, scenario, live):
                return 2
            if b_pipeline is not None:
                _start_ab(window, b_pipeline, compare_settings)
            if received:  # a signal while starting: close now, no event loop runs
                window.close()
            else:
                print("arsim gui: running (close the window or press Ctrl-C to quit)",
                      file=sys.stderr, flush=True)
                code = app.exec()
        return 128 + received[0] if received else code  # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    window = MainWindow()
    window.resize(*SCREENSHOT_SIZE)  # the same picture whatever geometry was remembered
    window.show()
    if not _open(window, scenario, live):
        return 2
    if scenario is None and live is None:
        print("arsim: error: --screenshot needs a SCENARIO", file=sys.stderr)
        window.close()
        return 2
    result = {"code": 1}
    if b_pipeline is not None:
        def shoot_ab(_result: object) -> None:
            view = window.ab.view
            view.resize(*SCREENSHOT_SIZE)
            app.processEvents()
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            if view.grab().save(str(screenshot), "PNG"):
                result["code"] = 0
            QTimer.singleShot(0, window.close)

        window.ab.compared.connect(shoot_ab)
        if not _start_ab(window, b_pipeline, compare_settings):
            window.close()
            return 1
        QTimer.singleShot(int(2 * SCREENSHOT_TIMEOUT_S * 1000), window.close)
        app.exec()
        if result["code"]:
            print("arsim: error: no screenshot: the A/B comparison did not finish",
                  file=sys.stderr)
        return result["code"]

    def shoot(count: int) -> None:
        """Save the window once ``count`` pictures were shown (or the replay ended)."""
        if count < frames or result["code"] == 0:
            return
        window.pause()
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        app.processEvents()
        if window.grab().save(str(screenshot), "PNG"):
            result["code"] = 0
        QTimer.singleShot(0, window.close)

    window.frame_shown.connect(shoot)
    window.run_finished.connect(lambda _outcome: shoot(frames))  # a replay shorter than that
    QTimer.singleShot(int(SCREENSHOT_TIMEOUT_S * 1000), window.close)
    app.exec()
    if result["code"]:
        print(f"arsim: error: no screenshot: {window.statusBar().currentMessage()}",
              file=sys.stderr)
    return result["code"]
