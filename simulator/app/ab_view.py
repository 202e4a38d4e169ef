"""The app's A/B view: two settings on the same frames, seen and measured side by side.

``ABWorker`` runs :func:`simulator.ab.run_ab` (two full replays through the one engine,
their comparison and synchronized screens) on its own thread; ``ABWindow`` shows the result:
the two phone screens as a split view (drag the divide, or switch to side by side) with a
frame slider that moves both, both flicker curves on one chart, and the metrics and budget
checks of A and B with the differences marked. The same page is written as
``compare.html`` next to the two runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QRectF, Qt, QThread, pyqtSignal
from PyQt6.QtGui import QAction, QColor, QKeySequence, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from simulator.ab import ABResult, run_ab
from simulator.app.views import qimage_view
from simulator.compare import check_rows, display_series, format_cell, format_delta
from simulator.errors import InputError
from simulator.run import RunSettings

if TYPE_CHECKING:
    from simulator.app.window import MainWindow

COLOURS = ("#58a6ff", "#f85149")  # A, B
DIFFERS = QColor(120, 60, 20)


class ABWorker(QThread):
    """Runs one A/B comparison; ``stop`` ends it early (the runs' reports say where)."""

    progress = pyqtSignal(str, int, int)  # run ("a" / "b"), camera frames done, total
    finished_ab = pyqtSignal(object, str)  # ABResult or None, error ("" if none)

    def __init__(self, scenario: str, a: RunSettings, b: RunSettings, out_dir: Path,
                 names: tuple[str, str] = ("A", "B")) -> None:
        super().__init__()
        self.scenario, self.a, self.b, self.out_dir, self.names = scenario, a, b, out_dir, names
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def _step(self, name: str):
        def step(done: int, total: int) -> None:
            if self._stop:
                raise KeyboardInterrupt
            self.progress.emit(name, done, total)
        return step

    def run(self) -> None:
        try:
            result = run_ab(self.scenario, self.a, self.b, self.out_dir, names=self.names,
                            progress=self._step)
        except InputError as exc:
            self.finished_ab.emit(None, str(exc))
        except Exception as exc:  # a failing comparison must not take the app down
            self.finished_ab.emit(None, f"{type(exc).__name__}: {exc}")
        else:
            self.finished_ab.emit(result, "")


class SplitView(QWidget):
    """Two pictures of the same size over one another: A left of the divide, B right of it
    (drag to move it), or side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.split = 0.5
        self.side_by_side = False
        self._images: tuple[np.ndarray, np.ndarray] | None = None
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_images(self, a: np.ndarray, b: np.ndarray) -> None:
        self._images = (np.ascontiguousarray(a), np.ascontiguousarray(b))
        self.update()

    def set_split(self, fraction: float) -> None:
        self.split = min(1.0, max(0.0, fraction))
        self.update()

    def set_side_by_side(self, on: bool) -> None:
        self.side_by_side = on
        self.update()

    def _target(self, width: float, height: float, area: QRectF) -> QRectF:
        scale = min(area.width() / width, area.height() / height)
        target = QRectF(0, 0, width * scale, height * scale)
        target.moveCenter(area.center())
        return target

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not self.side_by_side and self._images is not None:
            h, w = self._images[0].shape[:2]
            target = self._target(w, h, QRectF(self.rect()))
            self.set_split((event.position().x() - target.left()) / max(1.0, target.width()))
        super().mouseMoveEvent(event)

    mousePressEvent = mouseMoveEvent

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        if self._images is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            a, b = (qimage_view(image) for image in self._images)
            area = QRectF(self.rect())
            if self.side_by_side:
                half = area.width() / 2
                for k, image in enumerate((a, b)):
                    cell = QRectF(area.left() + k * half, area.top(), half - 2, area.height())
                    painter.drawImage(self._target(image.width(), image.height(), cell), image)
            else:
                target = self._target(a.width(), a.height(), area)
                cut = target.left() + self.split * target.width()
                painter.drawImage(target, a)
                painter.save()
                painter.setClipRect(QRectF(cut, target.top(), target.right() - cut,
                                           target.height()))
                painter.drawImage(target, b)
                painter.restore()
                painter.setPen(QColor(255, 255, 255))
                painter.drawLine(int(cut), int(target.top()), int(cut), int(target.bottom()))
        painter.end()


class ABWindow(QWidget):
    """The result of one A/B comparison (module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("arsim — A/B compare")
        self.result: ABResult | None = None
        self.status = QLabel("")
        self.view = SplitView()
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_slider.valueChanged.connect(self.show_frame)
        self.frame_label = QLabel("–")
        self.side_by_side = QCheckBox("Side by side")
        self.side_by_side.toggled.connect(self.view.set_side_by_side)
        self.chart = pg.PlotWidget()
        self.chart.setTitle("Flicker (warp error per displayed frame)")
        self.chart.setLabel("bottom", "time", units="s")
        self.chart.addLegend(offset=(10, 10))
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["", "A", "B"])
        self.table.verticalHeader().setVisible(False)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Frame"))
        controls.addWidget(self.frame_slider, 1)
        controls.addWidget(self.frame_label)
        controls.addWidget(self.side_by_side)
        left = QWidget()
        column = QVBoxLayout(left)
        column.addWidget(self.status)
        column.addWidget(self.view, 1)
        column.addLayout(controls)
        column.addWidget(self.chart, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.table)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([880, 520])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self.resize(1400, 860)

    def set_progress(self, run: str, done: int, total: int) -> None:
        self.status.setText(f"replaying {run.upper()}: {done}/{total} camera frames")

    def set_error(self, error: str) -> None:
        self.status.setText(f"A/B compare failed: {error}")

    def set_result(self, result: ABResult) -> None:
        """Show a finished comparison (an incomplete one says where it stopped)."""
        self.result = result
        if result.comparison is None:
            reason = result.outcomes[-1].report["incomplete_reason"]
            self.status.setText(f"A/B compare stopped: {reason}")
            return
        labels = [entry["label"] for entry in result.comparison["reports"]]
        self.status.setText(f"{labels[0]}  |  {labels[1]}    —  {result.html}")
        self.table.setHorizontalHeaderLabels(["", *labels])
        self._fill_chart(result.comparison)
        self._fill_table(result.comparison)
        self.frame_slider.setRange(0, max(0, len(result.frames) - 1))
        self.frame_slider.setValue(len(result.frames) // 2)
        self.show_frame(self.frame_slider.value())

    def show_frame(self, k: int) -> None:
        if self.result is None or not self.result.frames:
            return
        frame = self.result.frames[min(max(0, k), len(self.result.frames) - 1)]
        self.view.set_images(*frame.screens[:2])
        self.frame_label.setText(f"t = {frame.t:.2f} s")

    def _fill_chart(self, comparison: dict) -> None:
        self.chart.clear()
        curves = display_series(comparison, "warp_error")
        for entry, colour, (times, errors) in zip(comparison["reports"], COLOURS, curves,
                                                  strict=False):
            points = [(t, e) for t, e in zip(times, errors, strict=True) if e is not None]
            self.chart.plot([t for t, _ in points], [e for _, e in points],
                            pen=pg.mkPen(colour, width=2), name=entry["label"])

    def _fill_table(self, comparison: dict) -> None:
        rows: list[tuple[str, list[str], bool]] = []
        for row in comparison["rows"]:
            a, b = row["values"][:2]
            b_text = f"{format_cell(b)} {format_delta(row['delta'][1], row['delta_pct'][1])}"
            rows.append((row["metric"], [format_cell(a), b_text.rstrip()], a != b))
        for check in check_rows(comparison):
            cells = ["–" if c is None else f"{format_cell(c[0])} {format_cell(bool(c[1]))}"
                     for c in check["cells"][:2]]
            rows.append((f"check {check['name']}", cells, check["differs"]))
        self.table.setRowCount(len(rows))
        for i, (name, cells, differs) in enumerate(rows):
            for j, text in enumerate([name, *cells]):
                item = QTableWidgetItem(text)
                if differs:
                    item.setBackground(DIFFERS)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()



class ABTools(QObject):
    """The Compare menu of one MainWindow: pin the current settings as A, then compare the
    settings being tuned (B) with them on the open scenario."""

    compared = pyqtSignal(object)  # ABResult of a finished comparison

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.pinned: RunSettings | None = None
        self.worker: ABWorker | None = None
        self.view: ABWindow | None = None
        self._count = 0
        self.pin_action = QAction("Pin settings as A", window)
        self.pin_action.setShortcut(QKeySequence("Ctrl+Shift+A"))
        self.pin_action.triggered.connect(lambda _c=False: self.pin())
        self.compare_action = QAction("Compare A/B", window)
        self.compare_action.setShortcut(QKeySequence("Ctrl+Shift+B"))
        self.compare_action.setToolTip("Replay the scenario with the pinned settings (A) and "
                                       "the current ones (B): split view, flicker, checks")
        self.compare_action.triggered.connect(lambda _c=False: self.compare())
        menu = window.menuBar().addMenu("&Compare")
        for action in (self.pin_action, self.compare_action):
            menu.addAction(action)
            window.addAction(action)

    def pin(self, settings: RunSettings | None = None) -> None:
        """A = ``settings`` (default: the window's current ones)."""
        self.pinned = settings or self.window.run_settings()
        self.window.statusBar().showMessage("settings pinned as A: change them, then Compare "
                                            "A/B (Ctrl+Shift+B)")

    def compare(self, b: RunSettings | None = None, names: tuple[str, str] = ("A", "B")) -> bool:
        """Start comparing A (pinned) with ``b`` (default: the window's current settings)
        on the open scenario; False, with a status message, when it cannot start."""
        window = self.window
        if window.scenario_path is None or self.pinned is None:
            window.statusBar().showMessage("A/B compare: open a scenario and pin settings "
                                           "as A first")
            return False
        self.stop()
        self._count += 1
        out = window.worker.out_root / f"ab-{self._count}"
        self.worker = ABWorker(window.scenario_path, self.pinned, b or window.run_settings(),
                               out, names)
        if self.view is None:
            self.view = ABWindow()
        self.worker.progress.connect(self.view.set_progress)
        self.worker.finished_ab.connect(self._finished)
        self.view.show()
        self.view.raise_()
        self.worker.start()
        return True

    def _finished(self, result: ABResult | None, error: str) -> None:
        if self.view is None:
            return
        if result is None:
            self.view.set_error(error)
            return
        self.view.set_result(result)
        self.compared.emit(result)

    def stop(self) -> None:
        """End a running comparison (its thread is waited for)."""
        if self.worker is not None:
            self.worker.stop()
            self.worker.wait()
            self.worker = None

    def shutdown(self) -> None:
        self.stop()
        if self.view is not None:
            self.view.close()
