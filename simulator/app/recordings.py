"""Recordings in the app: File ▸ Import recording… and placing anchors by clicking.

``RecordingTools`` adds both to a ``MainWindow`` (its own "Anchors" toolbar, an entry in
the File menu) and talks to the window only through its public attributes
(``scenario_path``, ``current_frame``, the image views, ``open_scenario``, ``restart``).

- **Import**: ``ImportDialog`` asks for a source (a folder or a file), the format (auto or
  one of ``simulator.scenario.importers.importers()``) and the output folder; an
  ``ImportWorker`` thread runs ``import_recording`` with its progress in a
  ``QProgressDialog`` (cancel stops it; nothing is left at the output); the imported
  scenario is then opened. Errors come in a message box as their one-line message.
- **Place anchor** (toggle, P): a click on the camera input or the phone view puts an
  anchor at that pixel of the frame shown, at the depth of the toolbar's spin box (pose
  units of the file; default: the scenario's scene depth, else 2 m), or — in "two views"
  mode — where the rays of two clicks on two frames meet. The anchor is written into
  scenario.json (``simulator.scenario.anchors.add_anchor``) and the replay restarted from
  the current frame, so the anchor shows at once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QToolBar,
    QWidget,
)

from simulator.app.overlay import OverlayComposer
from simulator.app.views import ImageView
from simulator.errors import InputError, OutputError
from simulator.scenario.anchors import (
    add_anchor,
    anchor_from_depth,
    anchor_from_two_views,
    default_depth,
)
from simulator.scenario.load import load_scenario

if TYPE_CHECKING:
    from simulator.app.window import MainWindow

DEPTH_MODE, TWO_VIEW_MODE = "at depth", "two views"


class _Cancelled(Exception):
    pass


class ImportWorker(QThread):
    """One ``import_recording(src, out, fmt)`` on its own thread."""

    progress = pyqtSignal(int, int)  # done, total
    done = pyqtSignal(str)  # the scenario folder written
    failed = pyqtSignal(str)  # one line

    def __init__(self, src: str, out: str, fmt: str = "auto") -> None:
        super().__init__()
        self.src, self.out, self.fmt = src, out, fmt
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from simulator.scenario.importers import ImportOptions, import_recording

        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            self.progress.emit(int(done), int(total))

        try:
            out = import_recording(self.src, self.out, self.fmt, ImportOptions(), progress)
        except _Cancelled:
            self.failed.emit("import cancelled (nothing written)")
        except (InputError, OutputError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # an importer's bug must not take the app down
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.done.emit(str(out))


class ImportDialog(QDialog):
    """Source (folder or file), format, output folder."""

    def __init__(self, parent: QWidget | None, start_dir: str) -> None:
        super().__init__(parent)
        from simulator.scenario.importers import importers

        self.setWindowTitle("Import recording")
        self.start_dir = start_dir
        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("a capture folder, or a file (.r3d, .bag, .mp4 …)")
        self.folder_button = QPushButton("Folder…")
        self.file_button = QPushButton("File…")
        self.format_combo = QComboBox()
        self.format_combo.addItem("auto-detect", "auto")
        for name, importer in importers().items():
            self.format_combo.addItem(name, name)
            self.format_combo.setItemData(self.format_combo.count() - 1, importer.description,
                                          Qt.ItemDataRole.ToolTipRole)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("a new (or empty) folder for the scenario")
        self.out_button = QPushButton("…")
        source_row, out_row = QHBoxLayout(), QHBoxLayout()
        for widget in (self.source_edit, self.folder_button, self.file_button):
            source_row.addWidget(widget)
        out_row.addWidget(self.out_edit)
        out_row.addWidget(self.out_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Source", source_row)
        form.addRow("Format", self.format_combo)
        form.addRow("Scenario folder", out_row)
        form.addRow(buttons)
        self.folder_button.clicked.connect(self._pick_folder)
        self.file_button.clicked.connect(self._pick_file)
        self.out_button.clicked.connect(self._pick_out)

    def _set_source(self, path: str) -> None:
        self.source_edit.setText(path)
        if not self.out_edit.text():
            src = Path(path)
            self.out_edit.setText(str(src.parent / f"{src.stem or src.name}-scenario"))

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Recording folder", self.start_dir)
        if path:
            self._set_source(path)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recording file", self.start_dir)
        if path:
            self._set_source(path)

    def _pick_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Write the scenario into (a new or empty "
                                                "folder)", self.start_dir)
        if path:
            self.out_edit.setText(path)

    def values(self) -> tuple[str, str, str]:
        """(source, output folder, format)."""
        return (self.source_edit.text().strip(), self.out_edit.text().strip(),
                self.format_combo.currentData())


class RecordingTools(QObject):
    """Import and anchor placement for one MainWindow (see the module docstring)."""

    placed = pyqtSignal(object)  # the anchor dict written into scenario.json
    imported = pyqtSignal(str)  # the scenario folder an import wrote (then opened)
    import_failed = pyqtSignal(str)  # the one-line message shown

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.importer: ImportWorker | None = None
        self.progress_dialog: QProgressDialog | None = None
        self._first_view: tuple[int, tuple[float, float]] | None = None
        self.import_action = QAction("Import recording…", window)
        self.import_action.setToolTip("A capture app's or dataset's recording into a scenario")
        self.import_action.triggered.connect(lambda _c=False: self.ask_import())
        window.addAction(self.import_action)
        file_menu = next((a.menu() for a in window.menuBar().actions()
                          if a.menu() is not None and a.text().replace("&", "") == "File"),
                         None)
        if file_menu is not None:
            first = file_menu.actions()
            file_menu.insertAction(first[2] if len(first) > 2 else None, self.import_action)

        self.place_action = QAction("Place anchor", window)
        self.place_action.setCheckable(True)
        self.place_action.setShortcut(QKeySequence("P"))
        self.place_action.setToolTip("Click the camera input or the phone view to put an "
                                     "anchor there (written into scenario.json) (P)")
        self.place_action.toggled.connect(self._place_toggled)
        window.addAction(self.place_action)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems([DEPTH_MODE, TWO_VIEW_MODE])
        self.mode_combo.currentIndexChanged.connect(lambda _i: self._mode_changed())
        self.depth_spin = QDoubleSpinBox()
        self.depth_spin.setDecimals(3)
        self.depth_spin.setRange(0.001, 1e5)
        self.depth_spin.setSingleStep(0.1)
        self.depth_spin.setValue(2.0)
        self.depth_spin.setToolTip("Distance in front of the camera (along its viewing axis), "
                                   "in the scenario's pose units")
        bar = QToolBar("Anchors")
        bar.setObjectName("anchor-toolbar")
        bar.addAction(self.place_action)
        bar.addWidget(self.mode_combo)
        bar.addWidget(QLabel(" depth "))
        bar.addWidget(self.depth_spin)
        window.addToolBarBreak()  # its own row: the replay toolbar is full
        window.addToolBar(bar)
        self.toolbar = bar
        for view in (window.input_view, window.phone_view):
            view.pixel_clicked.connect(lambda x, y, v=view: self.click(v, x, y))

    # --- anchors ------------------------------------------------------------------------

    def scenario_opened(self, scenario: Any) -> None:
        """A scenario was opened: its default depth and unit in the spin box."""
        self._reset_views()
        self.depth_spin.setValue(default_depth(scenario))
        self.depth_spin.setSuffix(" m" if scenario.metric else " units")

    def _mode_changed(self) -> None:
        self._reset_views()
        self.depth_spin.setEnabled(self.mode_combo.currentText() == DEPTH_MODE)

    def _reset_views(self) -> None:
        self._first_view = None

    def _place_toggled(self, on: bool) -> None:
        self._reset_views()
        if on:
            self.window.pause()  # aim at a still picture
            self.window.statusBar().showMessage(
                "place anchor: click the point in the camera input or the phone view")

    def _message(self, text: str) -> None:
        self.window.statusBar().showMessage(text)

    def click(self, view: ImageView, x: float, y: float) -> None:
        """A click at image pixel (x, y) of ``view`` (the frame shown now)."""
        if not self.place_action.isChecked() or view.image() is None:
            return
        win = self.window
        if win.scenario_path is None:
            self._message("place anchor: open a scenario first")
            return
        height, width = view.image().shape[:2]
        frame = int(win.current_frame)
        try:
            with load_scenario(win.scenario_path) as scenario:
                cam = scenario.camera_at(min(frame, scenario.frame_count - 1))
                pixel = (x * cam.width / width, y * cam.height / height)
                if self.mode_combo.currentText() == TWO_VIEW_MODE:
                    if self._first_view is None or self._first_view[0] == frame:
                        anchor_from_depth(scenario, frame, pixel, 1.0)  # checks frame, pixel
                        self._first_view = (frame, pixel)
                        self._message(f"place anchor: frame {frame} at ({pixel[0]:.1f}, "
                                      f"{pixel[1]:.1f}); now step or seek to another frame "
                                      "and click the same point")
                        return
                    first_frame, first_pixel = self._first_view
                    self._first_view = None
                    anchor = anchor_from_two_views(scenario, first_frame, first_pixel, frame,
                                                   pixel)
                else:
                    anchor = anchor_from_depth(scenario, frame, pixel, self.depth_spin.value())
            written = add_anchor(win.scenario_path, anchor)
        except (InputError, OutputError) as exc:
            self._message(f"cannot place anchor: {exc}")
            return
        self._reload()
        x_, y_, z_ = written["position"]
        self._message(f"anchor {written['id']!r} placed at ({x_:.3g}, {y_:.3g}, {z_:.3g}) "
                      f"in {Path(win.scenario_path) / 'scenario.json'}")
        self.placed.emit(written)

    def _reload(self) -> None:
        """The scenario with its new anchor: the app's overlays and the replay (restarted
        from the current frame, pause state kept, so the anchor shows at once)."""
        win = self.window
        with load_scenario(win.scenario_path) as scenario:
            win.composer = OverlayComposer(scenario)
        win.restart()

    # --- import -------------------------------------------------------------------------

    def ask_import(self) -> None:
        """File ▸ Import recording…: the dialog, then the import."""
        start = self.window.store.value("last_dir", str(Path.cwd()), str)
        dialog = ImportDialog(self.window, start)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        src, out, fmt = dialog.values()
        if not src or not out:
            self._import_error("Import recording: give a source and a scenario folder")
            return
        self.start_import(src, out, fmt)

    def start_import(self, src: str | Path, out: str | Path, fmt: str = "auto") -> None:
        """Import ``src`` into the scenario folder ``out`` on a worker thread, with progress;
        the scenario is opened when done."""
        if self.importer is not None:
            self._message("an import is already running")
            return
        worker = ImportWorker(str(src), str(out), fmt)
        dialog = QProgressDialog(f"Importing {Path(src).name}…", "Cancel", 0, 0, self.window)
        dialog.setWindowTitle("Import recording")
        dialog.setMinimumDuration(0)
        dialog.canceled.connect(worker.cancel)
        worker.progress.connect(self._on_import_progress)
        worker.done.connect(self._on_imported)
        worker.failed.connect(self._on_import_failed)
        self.importer, self.progress_dialog = worker, dialog
        dialog.show()
        self._message(f"importing {src} …")
        worker.start()

    def _on_import_progress(self, done: int, total: int) -> None:
        if self.progress_dialog is not None and total > 0:
            self.progress_dialog.setMaximum(total)
            self.progress_dialog.setValue(min(done, total))

    def _end_import(self) -> None:
        if self.importer is not None:
            self.importer.wait(10_000)
            self.importer.deleteLater()
            self.importer = None
        if self.progress_dialog is not None:
            self.progress_dialog.canceled.disconnect()
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None

    def _on_imported(self, out: str) -> None:
        self._end_import()
        self.window.store.setValue("last_dir", str(Path(out).parent))
        self._message(f"imported {out}")
        self.window.open_scenario(out, paused=True)
        self.imported.emit(out)

    def _on_import_failed(self, message: str) -> None:
        self._end_import()
        self._import_error(message)

    def _import_error(self, message: str) -> None:
        self._message(f"import failed: {message}")
        self.import_failed.emit(message)
        QMessageBox.warning(self.window, "Import recording", message)

    def shutdown(self) -> None:
        """Stop a running import (the window is closing)."""
        if self.importer is not None:
            self.importer.cancel()
            self.importer.wait(30_000)


__all__ = ["ImportDialog", "ImportWorker", "RecordingTools"]
