"""``arsim gui``: start the app; with ``screenshot``, render it offscreen and exit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def parse_live_source(source: str | int) -> int | str:
    """``--live`` value: a camera index (digits) or a scenario path."""
    if isinstance(source, int):
        return source
    return int(source) if source.strip().isdigit() else source


def run_gui(scenario: str | None, *, screenshot: Path | None = None, frames: int = 12,
            live_source: str | int | None = None) -> int:
    """Run the app on ``scenario`` (a folder or .zip; None: open one from the menu).

    With ``live_source`` (a camera index, or a scenario path looped as a camera) the app
    starts straight in live mode; a scenario path given only there is opened too.
    With ``screenshot``: play offscreen until ``frames`` pictures were shown (or the replay
    ended), save the window as a PNG and return 0 (1 when it failed, 2 for bad input).
    """
    live = parse_live_source(live_source) if live_source is not None else None
    if scenario is None and isinstance(live, str):
        scenario = live
    prepare_qt_environment(offscreen=screenshot is not None)
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from simulator.app.window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], "-style", "Fusion"])
    window = MainWindow()
    if screenshot is not None:
        window.resize(*SCREENSHOT_SIZE)  # the same picture whatever geometry was remembered
    window.show()
    if scenario is not None and not window.open_scenario(scenario, paused=live is not None):
        print(f"arsim: error: {window.statusBar().currentMessage()}", file=sys.stderr)
        window.close()
        return 2
    if live is not None:
        window.start_live(live)
    if screenshot is None:
        return app.exec()
    if scenario is None and live is None:
        print("arsim: error: --screenshot needs a SCENARIO", file=sys.stderr)
        window.close()
        return 2
    result = {"code": 1}

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
