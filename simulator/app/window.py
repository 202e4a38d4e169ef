"""MainWindow: open a scenario, pick device / backend / model, play it on the engine paced
against wall time, tune the pipeline and watch the phone's screen, a flicker heat-map and
live charts against the device's budgets."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QSlider,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from simulator.app.ab_view import ABTools
from simulator.app.charts import ChartPanel
from simulator.app.overlay import OverlayComposer, Overlays, VirtualCamFeeder
from simulator.app.recordings import RecordingTools
from simulator.app.settings_panel import SettingsPanel
from simulator.app.views import ImageView, heat_map
from simulator.app.worker import Job, LiveWorker, PreviewRequest, PreviewWorker, ReplayWorker
from simulator.device.catalog import list_profiles
from simulator.device.memory import app_budget_mb
from simulator.engine.costs import device_stage_costs
from simulator.engine.live import LiveSettings
from simulator.errors import InputError
from simulator.metrics.verdict import budgets_for
from simulator.pipeline.settings import PipelineSettings, load_settings, save_settings
from simulator.run import RunOutcome, RunSettings
from simulator.scenario.load import load_scenario
from simulator.sinks.virtual_cam import open_virtual_cam
from simulator.zoo.registry import ResolvedModel, list_models, resolve_model

ORGANISATION, APPLICATION = "arsim", "arsim-gui"
SPEEDS = (("¼×", 0.25), ("½×", 0.5), ("1×", 1.0))
MAX_RECENT = 8
VIRTUAL_CAM = (1280, 720, 30.0)  # width, height, fps
LOADING_NOTE = "loading model… frames pass through unstylized"
LIVE_FPS = 30.0  # the rate asked of a camera (a scenario source keeps its own)
LIVE_CAMERAS = 4  # camera indices offered in the Live source dialog
LIVE_WINDOW_S = 30.0  # seconds of wall time the charts show in live mode
DEFAULT_CAMERA = (1280, 720)  # camera frame size for the stage costs with no scenario open


class MainWindow(QMainWindow):
    """The app's one window. Public methods are what menus, shortcuts and tests call."""

    frame_shown = pyqtSignal(int)  # pictures shown since the app started
    exported = pyqtSignal(object)  # Path of the folder a report was exported to
    run_finished = pyqtSignal(object)  # RunOutcome of a run that reached its end

    def __init__(self, store: QSettings | None = None) -> None:
        super().__init__()
        self.store = store or QSettings(ORGANISATION, APPLICATION)
        self.setWindowTitle("arsim — AR stylization bench")
        self.profiles = {p.id: p for p in list_profiles()}
        self.scenario_path: str | None = None
        self.frame_times = np.zeros(0)
        self.expect: dict[str, float] = {}
        self.current_t = 0.0
        self.current_frame = 0
        self.shown_count = 0
        self.job_id = 0
        self.running = False
        self.loading = False
        self.last_outcome: RunOutcome | None = None
        self._pending_export: tuple[int, Path] | None = None  # (job interrupted, folder)
        self._want_preview = False
        self._speed = 1.0
        self.overlays = Overlays()
        self.composer: OverlayComposer | None = None
        # engine screen, stylized picture, frame, note
        self._raw: tuple[np.ndarray, np.ndarray, int, str] | None = None
        self.vcam: VirtualCamFeeder | None = None
        self.vcam_backend: str | None = None  # pyvirtualcam backend (None: the OS default)
        self.camera_size = DEFAULT_CAMERA
        self._models: dict[str, ResolvedModel] = {}
        self.live: LiveWorker | None = None  # the live session shown (None: replay mode)
        self.live_source: int | str | None = None
        self.live_frames = 0
        self._live_session = 0
        self._live_t0 = 0.0
        self._live_workers: list[LiveWorker] = []  # sessions still ending on their thread

        self.worker = ReplayWorker()
        self.preview = PreviewWorker()
        self._build_views()
        self._build_toolbar()
        self._build_settings_dock()
        self.recordings = RecordingTools(self)  # File ▸ Import recording…, Place anchor
        self.ab = ABTools(self)  # Compare ▸ Pin settings as A, Compare A/B
        self._connect_workers()
        self._restore()
        self.worker.start()
        self.preview.start()

    # --- construction ---------------------------------------------------------------

    def _build_views(self) -> None:
        self.input_view = ImageView("Camera input")
        self.phone_view = ImageView("Phone display (stylized, anchors, HUD)")
        self.heat_view = ImageView("Flicker heat-map (warp error 0 … 0.02)")
        views = QWidget()
        row = QHBoxLayout(views)
        row.setContentsMargins(0, 0, 0, 0)
        for view in (self.input_view, self.phone_view, self.heat_view):
            row.addWidget(view, 1)
        self.timeline = QSlider(Qt.Orientation.Horizontal)
        self.timeline.setEnabled(False)
        self.timeline.sliderReleased.connect(self._slider_seek)
        self.timeline.actionTriggered.connect(
            lambda _a: QTimer.singleShot(0, self._slider_seek) if not self.timeline.isSliderDown()
            else None
        )
        self.time_label = QLabel("–")
        self.time_label.setMinimumWidth(150)
        transport = QHBoxLayout()
        transport.addWidget(self.timeline, 1)
        transport.addWidget(self.time_label)
        self.charts = ChartPanel()
        top = QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(6, 6, 6, 0)
        column.addWidget(views, 1)
        column.addLayout(transport)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.charts)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([470, 360])
        self.setCentralWidget(splitter)
        self.rate_label = QLabel("")
        self.statusBar().addPermanentWidget(self.rate_label)

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_toolbar(self) -> None:
        bar = QToolBar("Replay")
        bar.setObjectName("replay-toolbar")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.open_action = self._action("Open…", self._ask_open_folder, "Ctrl+O")
        self.open_zip_action = self._action("Open .zip…", self._ask_open_zip)
        self.recent_menu = QMenu("Recent", self)
        self.play_action = self._action("Play", self.toggle_play, Qt.Key.Key_Space)
        self.step_action = self._action("Step ▸", self.step, Qt.Key.Key_Right)
        self.export_action = self._action("Export report…", self._ask_export, "Ctrl+E")
        self.save_action = self._action("Save settings…", self._ask_save_settings, "Ctrl+S")
        self.load_action = self._action("Load settings…", self._ask_load_settings, "Ctrl+L")
        self.live_action = QAction("Live ●", self)
        self.live_action.setCheckable(True)
        self.live_action.setShortcut(QKeySequence("Ctrl+Shift+L"))
        self.live_action.setToolTip("Live mode: the pipeline on the wall clock (Ctrl+Shift+L)")
        self.live_action.triggered.connect(self._live_triggered)
        self.addAction(self.live_action)
        file_menu = self.menuBar().addMenu("&File")
        for action in (self.open_action, self.open_zip_action):
            file_menu.addAction(action)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        for action in (self.export_action, self.save_action, self.load_action):
            file_menu.addAction(action)
        bar.addAction(self.open_action)
        bar.addSeparator()
        self.device_combo = QComboBox()
        for profile in self.profiles.values():
            self.device_combo.addItem(profile.name, profile.id)
        self.backend_combo = QComboBox()
        self.model_combo = QComboBox()
        for card in list_models():
            self.model_combo.addItem(card.name, card.name)
        self.speed_combo = QComboBox()
        for label, speed in SPEEDS:
            self.speed_combo.addItem(label, speed)
        for label, combo in (("Device", self.device_combo), ("Backend", self.backend_combo),
                             ("Model", self.model_combo)):
            bar.addWidget(QLabel(f" {label} "))
            bar.addWidget(combo)
        bar.addSeparator()
        bar.addAction(self.play_action)
        bar.addAction(self.step_action)
        bar.addWidget(QLabel(" Speed "))
        bar.addWidget(self.speed_combo)
        bar.addSeparator()
        bar.addAction(self.live_action)
        bar.addSeparator()
        bar.addAction(self.export_action)
        bar.addSeparator()
        live_menu = self.menuBar().addMenu("&Live")
        live_menu.addAction(self.live_action)
        view_menu = self.menuBar().addMenu("&View")
        self.anchors_action = self._toggle("Anchors", True, "A")
        self.axes_action = self._toggle("Axes", False, "X")
        self.minimap_action = self._toggle("Mini-map", False, "M")
        for action in (self.anchors_action, self.axes_action, self.minimap_action):
            view_menu.addAction(action)
            bar.addAction(action)
        view_menu.addSeparator()
        self.vcam_action = QAction("Virtual webcam", self)
        self.vcam_action.setCheckable(True)
        self.vcam_action.toggled.connect(self.set_virtual_cam)
        view_menu.addAction(self.vcam_action)
        bar.addAction(self.vcam_action)
        # Real throttling: the model runs in an OS-confined worker process (run.py
        # RunSettings.throttle; docs/throttling.md); the next run restarts from here
        self.throttle_action = QAction("Real throttling", self)
        self.throttle_action.setCheckable(True)
        self.throttle_action.setToolTip(
            "Run the model in a worker process confined by the OS to the phone's CPU and "
            "memory budget; its measured latency drives the timeline")
        self.throttle_action.toggled.connect(self.set_throttle)
        live_menu.addAction(self.throttle_action)
        bar.addAction(self.throttle_action)
        self.device_combo.currentIndexChanged.connect(lambda _i: self._device_changed())
        self.backend_combo.currentIndexChanged.connect(lambda _i: self._choice_changed())
        self.model_combo.currentIndexChanged.connect(lambda _i: self._choice_changed())
        self.speed_combo.currentIndexChanged.connect(
            lambda _i: self.set_speed(self.speed_combo.currentData())
        )

    def _toggle(self, text: str, checked: bool, shortcut: str) -> QAction:
        action = QAction(text, self)
        action.setCheckable(True)
        action.setChecked(checked)
        action.setShortcut(QKeySequence(shortcut))
        action.toggled.connect(lambda _on: self._overlays_changed())
        self.addAction(action)
        return action

    def _build_settings_dock(self) -> None:
        self.settings_panel = SettingsPanel()
        self.settings_panel.changed.connect(self._pipeline_changed)
        scroll = QScrollArea()
        scroll.setWidget(self.settings_panel)
        scroll.setWidgetResizable(True)
        dock = QDockWidget("Pipeline settings", self)
        dock.setObjectName("settings-dock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        dock.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    def _connect_workers(self) -> None:
        self.worker.started_job.connect(self._on_started)
        self.worker.timeline.connect(self._on_timeline)
        self.worker.shown.connect(self._on_shown)
        self.worker.position.connect(self._on_position)
        self.worker.rate.connect(self._on_rate)
        self.worker.finished_job.connect(self._on_finished)
        self.preview.ready.connect(self._on_preview)

    def _restore(self) -> None:
        geometry = self.store.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 900)
        defaults = RunSettings()
        combos = (("device", self.device_combo), ("model", self.model_combo))
        for key, combo in combos:
            index = combo.findData(self.store.value(key, getattr(defaults, key), str))
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, index))
            combo.blockSignals(False)
        self._fill_backends(self.store.value("backend", defaults.backend, str))
        speed = self.store.value("speed", 1.0, float)
        self.speed_combo.blockSignals(True)
        self.speed_combo.setCurrentIndex(max(0, self.speed_combo.findData(speed)))
        self.speed_combo.blockSignals(False)
        self._speed = self.speed_combo.currentData()
        self._update_recent_menu()
        self._update_budgets()

    # --- choices --------------------------------------------------------------------

    def run_settings(self) -> RunSettings:
        """The RunSettings the window's choices describe (the same object `arsim run` builds)."""
        return RunSettings(
            device=self.device_combo.currentData(),
            backend=self.backend_combo.currentData() or "cpu",
            model=self.model_combo.currentData() or "toon-classic",
            pipeline=self.settings_panel.settings(),
            throttle=self.throttle_action.isChecked(),
        )

    def set_throttle(self, on: bool) -> None:
        """Real throttling on/off: the replay restarts from the current position (and a
        live session restarts with it)."""
        if self.throttle_action.isChecked() != on:
            self.throttle_action.setChecked(on)  # toggled comes back here
            return
        if self._restart_live():
            return
        self.restart()

    def set_device(self, device_id: str) -> None:
        index = self.device_combo.findData(device_id)
        if index < 0:
            raise InputError("device", f"unknown device '{device_id}'")
        self.device_combo.setCurrentIndex(index)

    def set_pipeline(self, settings: PipelineSettings) -> None:
        """Show ``settings`` in the panel and apply them (as an edit in the panel would)."""
        self.settings_panel.set_settings(settings)
        self._pipeline_changed(settings)

    def _fill_backends(self, wanted: str = "") -> None:
        profile = self.profiles[self.device_combo.currentData()]
        current = wanted or self.backend_combo.currentData() or ""
        self.backend_combo.blockSignals(True)
        self.backend_combo.clear()
        for name in profile.backend_names:
            self.backend_combo.addItem(name, name)
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(current)))
        self.backend_combo.blockSignals(False)

    def _device_changed(self) -> None:
        self._fill_backends()
        self._choice_changed()

    def _choice_changed(self) -> None:
        self._update_budgets()
        for key, combo in (("device", self.device_combo), ("backend", self.backend_combo),
                           ("model", self.model_combo)):
            self.store.setValue(key, combo.currentData())
        self.restart()
        self._restart_live()

    def _update_budgets(self) -> None:
        settings = self.run_settings()
        try:
            budget = app_budget_mb(self.profiles[settings.device])
            self.charts.set_budgets(budgets_for(budget, self.expect))
        except InputError as exc:
            self.statusBar().showMessage(str(exc))
        self._update_stages()

    def _update_stages(self) -> None:
        """The per-stage phone cost bars for the current device / backend / model / input
        size / pipeline settings and the scenario's camera (``CostModel``)."""
        settings = self.run_settings()
        try:
            model = self._models.get(settings.model) or resolve_model(settings.model)
            self._models[settings.model] = model
            size = settings.input_size or model.card.input.default_size
            self.charts.stages.set_costs(device_stage_costs(
                self.profiles[settings.device], settings.backend, model, size, settings.fit,
                settings.pipeline, self.camera_size,
            ).chart())
        except InputError as exc:
            self.statusBar().showMessage(str(exc))

    def _pipeline_changed(self, settings: PipelineSettings) -> None:
        """Restart from the current position and re-process the current frame at once."""
        self._update_stages()
        if self._restart_live():
            return
        self.restart()
        if self.scenario_path is not None and self.shown_count:
            self._want_preview = True
            self.preview.request(PreviewRequest(self.scenario_path, self.current_frame,
                                                self.run_settings()))

    # --- overlays and the virtual webcam ----------------------------------------------

    def set_overlays(self, *, anchors: bool | None = None, axes: bool | None = None,
                     minimap: bool | None = None) -> None:
        """Switch AR overlays (as the View menu does); the current frame is re-composed."""
        for action, on in ((self.anchors_action, anchors), (self.axes_action, axes),
                           (self.minimap_action, minimap)):
            if on is not None:
                action.setChecked(on)

    def _overlays_changed(self) -> None:
        self.overlays = Overlays(self.anchors_action.isChecked(), self.axes_action.isChecked(),
                                 self.minimap_action.isChecked())
        if self._raw is not None:
            self._show_phone()

    def _show_phone(self) -> None:
        """The latest engine screen, with the app's overlays, on the phone view (and the
        virtual webcam when on)."""
        screen, stylized, frame, note = self._raw
        if self.composer is not None:
            screen = self.composer.apply(screen, stylized, frame, self.overlays, note)
        self.phone_view.set_image(screen, note)
        if self.vcam is not None:
            self.vcam.put(screen)

    def set_virtual_cam(self, on: bool) -> bool:
        """Open (1280x720 @ 30 fps) or close the virtual webcam; False, with the one-line
        hint in the status bar, when none is available (the app goes on without it)."""
        if not on:
            if self.vcam is not None:
                self.vcam.close()
                self.vcam = None
                self.statusBar().showMessage("virtual webcam off")
            return True
        if self.vcam is not None:
            return True
        hint = io.StringIO()
        width, height, fps = VIRTUAL_CAM
        sink = open_virtual_cam(width, height, fps, backend=self.vcam_backend, stream=hint)
        if sink is None:
            self.statusBar().showMessage(hint.getvalue().strip().removeprefix("arsim: "))
            self.vcam_action.blockSignals(True)
            self.vcam_action.setChecked(False)
            self.vcam_action.blockSignals(False)
            return False
        self.vcam = VirtualCamFeeder(sink)
        self.vcam_action.blockSignals(True)
        self.vcam_action.setChecked(True)
        self.vcam_action.blockSignals(False)
        self.statusBar().showMessage(f"virtual webcam on: {sink.device} "
                                     f"({width}x{height} @ {fps:g} fps)")
        if self._raw is not None:
            self._show_phone()
        return True

    # --- scenario and transport -----------------------------------------------------

    def open_scenario(self, path: str | Path, *, paused: bool = False) -> bool:
        """Open a scenario folder or .zip and start playing it; False (and a status message)
        when it is not a valid scenario."""
        path = str(path)
        try:
            with load_scenario(path) as scenario:
                self.frame_times = np.asarray(scenario.frame_times, float)
                self.expect = dict(scenario.expect)
                name, count = scenario.name, scenario.frame_count
                camera = (scenario.camera.width, scenario.camera.height)
                composer = OverlayComposer(scenario)
                self.recordings.scenario_opened(scenario)
        except InputError as exc:
            self.statusBar().showMessage(f"cannot open: {exc}")
            return False
        self.scenario_path = path
        self.composer, self._raw = composer, None
        self.camera_size = camera
        self.setWindowTitle(f"arsim — {name}")
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, count - 1)
        self.timeline.setValue(0)
        self.timeline.blockSignals(False)
        self.timeline.setEnabled(True)
        self.charts.set_duration(float(self.frame_times[0]), float(self.frame_times[-1]))
        self.charts.reset(keep_timeline=False)
        self.current_t, self.current_frame = float(self.frame_times[0]), 0
        self._remember_recent(path)
        self._update_budgets()
        self.preview.request(PreviewRequest(path, 0, self.run_settings()), stylize=False)
        self.restart(paused=paused)
        return True

    def restart(self, at: float | None = None, *, paused: bool | None = None) -> None:
        """(Re)start the replay, showing frames from virtual time ``at`` (default: now)."""
        if self.scenario_path is None or self.live is not None:
            return  # in live mode the replay waits until the session stops
        at = self.current_t if at is None else at
        paused = self.worker.paused if paused is None else paused
        self.job_id = self.worker.submit(Job(self.scenario_path, self.run_settings(), start_t=at,
                                             speed=self._speed, paused=paused))
        self.running = True
        self.charts.reset()
        self._set_play_text(paused)

    def play(self) -> None:
        if not self.running:  # at the end (or never started): from the beginning
            self.current_t = float(self.frame_times[0]) if len(self.frame_times) else 0.0
            self.restart(paused=False)
        self.worker.set_paused(False)
        self._set_play_text(False)

    def pause(self) -> None:
        self.worker.set_paused(True)
        self._set_play_text(True)

    def toggle_play(self) -> None:
        if self.running and not self.worker.paused:
            self.pause()
        else:
            self.play()

    def step(self) -> None:
        """Pause and show the next picture the phone displays."""
        if not self.running:
            return
        self.worker.step()
        self._set_play_text(True)

    def seek(self, t: float) -> None:
        """Restart the run and show frames from virtual time ``t`` (pause state kept)."""
        if not len(self.frame_times):
            return
        t = float(np.clip(t, self.frame_times[0], self.frame_times[-1]))
        self.current_t = t
        self.current_frame = int(np.searchsorted(self.frame_times, t - 1e-9))
        self.restart(t)

    def set_speed(self, speed: float) -> None:
        self._speed = speed
        self.store.setValue("speed", speed)
        self.worker.set_speed(speed)

    def _set_play_text(self, paused: bool) -> None:
        self.play_action.setText("Play ▶" if paused or not self.running else "Pause ❚❚")

    def _slider_seek(self) -> None:
        index = self.timeline.value()
        if 0 <= index < len(self.frame_times):
            self.seek(float(self.frame_times[index]))

    # --- worker results -------------------------------------------------------------

    def _on_started(self, job_id: int) -> None:
        if job_id != self.job_id or self.live is not None:
            return
        self.loading = True
        self.phone_view.set_note(LOADING_NOTE)

    def _on_position(self, job_id: int, t: float) -> None:
        if job_id == self.job_id and self.loading and self.live is None:
            self.loading = False
            self.phone_view.set_note("seeking…" if t < self.current_t - 1e-6 else "")

    def _on_timeline(self, job_id: int, report: dict) -> None:
        if job_id == self.job_id:
            self.charts.set_timeline(report["series"])
            self.charts.set_budgets(report["budgets"])

    def _on_shown(self, job_id: int, entry: dict, input_rgb: np.ndarray, screen: np.ndarray,
                  heat: np.ndarray | None, stylized: np.ndarray) -> None:
        if job_id != self.job_id or self.live is not None:
            return
        self.loading = self._want_preview = False
        self.input_view.set_image(input_rgb)
        self._raw = (screen, stylized, int(entry["frame"]), "")
        self._show_phone()
        if heat is not None:
            self.heat_view.set_image(heat_map(heat, (screen.shape[1], screen.shape[0])))
        self.current_frame = int(entry["frame"])
        self.current_t = float(self.frame_times[self.current_frame])
        self.timeline.blockSignals(True)
        if not self.timeline.isSliderDown():
            self.timeline.setValue(self.current_frame)
        self.timeline.blockSignals(False)
        end = float(self.frame_times[-1])
        self.time_label.setText(f"{self.current_t - self.frame_times[0]:6.2f} / "
                                f"{end - self.frame_times[0]:.2f} s  #{self.current_frame}")
        self.charts.add_entry(entry)
        self.shown_count += 1
        self.frame_shown.emit(self.shown_count)

    def _on_rate(self, rate: float) -> None:
        asked = self._speed
        if rate < 0.9 * asked:
            self.rate_label.setStyleSheet("color: #d29922")
            self.rate_label.setText(f"host-limited: {rate:.2f}× real time (asked {asked:g}×) ")
        else:
            self.rate_label.setStyleSheet("")
            self.rate_label.setText(f"{asked:g}× real time ")

    def _on_finished(self, job_id: int, outcome: RunOutcome | None, error: str) -> None:
        if error:
            if job_id == self.job_id:
                self.running = False
                self.phone_view.set_note("")
                self.statusBar().showMessage(f"run failed: {error}")
                self._set_play_text(True)
            return
        self.last_outcome = outcome
        if self._pending_export is not None and self._pending_export[0] == job_id:
            folder = self._pending_export[1]
            self._pending_export = None
            self._copy_reports(outcome, folder)
        if job_id == self.job_id:
            self.running = False
            self._set_play_text(True)
            verdict = "PASS" if outcome.report["verdict"]["passed"] else "FAIL"
            self.statusBar().showMessage(f"replay finished: {verdict}")
            self.run_finished.emit(outcome)

    def _on_preview(self, index: int, input_rgb: np.ndarray, screen: np.ndarray | None,
                    stylized: np.ndarray | None) -> None:
        if self.live is not None:
            return
        if screen is None:  # a plain decoded frame: shown while the model loads
            if self.shown_count == 0 or self.loading:
                self.input_view.set_image(input_rgb)
                self.phone_view.set_image(input_rgb, LOADING_NOTE if self.loading else "")
            return
        if self._want_preview and index == self.current_frame:
            self._raw = (screen, stylized, index, "re-processed with the new settings")
            self._show_phone()

    # --- live mode --------------------------------------------------------------------

    def live_settings(self, source: int | str) -> LiveSettings:
        """The LiveSettings of the window's choices (model, pipeline) for ``source``."""
        return LiveSettings(source=source, fps=LIVE_FPS, **self.run_settings().shared())

    def start_live(self, source: int | str | Path) -> None:
        """Run live mode (``simulator.engine.live.run_live``) on a camera index or a
        scenario looped as a camera, with the current model and pipeline settings; the
        replay is paused meanwhile. Each new screen goes to the phone view (and the virtual
        webcam when on), its display FPS and latency to the charts (wall time)."""
        self._end_live_worker()
        source = source if isinstance(source, int) else str(source)
        self.live_source = source
        self.worker.set_paused(True)
        self._set_play_text(True)
        self._live_session += 1
        worker = LiveWorker(self._live_session, self.live_settings(source))
        worker.frame.connect(self._on_live_frame)
        worker.ended.connect(self._on_live_ended)
        self.live, self.live_frames = worker, 0
        self._live_workers.append(worker)
        self.charts.reset(keep_timeline=False)
        self.charts.set_duration(0.0, LIVE_WINDOW_S)
        self._live_t0 = time.perf_counter()
        self.live_action.setChecked(True)
        self.timeline.setEnabled(False)
        name = f"camera {source}" if isinstance(source, int) else Path(source).name
        self.phone_view.set_note(f"live: starting {name}…")
        self.statusBar().showMessage(f"live: {name} with {self.run_settings().model}")
        worker.start()

    def stop_live(self) -> None:
        """End the live session; the replay comes back (paused where it was)."""
        if self.live is None:
            return
        self._end_live_worker()
        self.live_action.setChecked(False)
        self.timeline.setEnabled(self.scenario_path is not None)
        self.phone_view.set_note("")
        if self.scenario_path is not None:
            self.charts.set_duration(float(self.frame_times[0]), float(self.frame_times[-1]))
            self.charts.reset(keep_timeline=False)
            self.restart(paused=True)

    def _end_live_worker(self) -> None:
        if self.live is not None:
            self.live.stop()  # it ends on its own thread; _on_live_ended forgets it
            self.live = None

    def _restart_live(self) -> bool:
        """New settings in live mode: a new session with them (True when live)."""
        if self.live is None or self.live_source is None:
            return False
        self.start_live(self.live_source)
        return True

    def _live_triggered(self, checked: bool) -> None:
        if not checked:
            self.stop_live()
            return
        source = self._ask_live_source()
        if source is None:
            self.live_action.setChecked(False)
        else:
            self.start_live(source)

    def _ask_live_source(self) -> int | str | None:
        items = [f"Camera {i}" for i in range(LIVE_CAMERAS)]
        if self.scenario_path is not None:
            items.insert(0, f"Scenario {Path(self.scenario_path).name} (looped)")
        item, ok = QInputDialog.getItem(self, "Live", "Source:", items, 0, False)
        if not ok:
            return None
        if item.startswith("Camera "):
            return int(item.removeprefix("Camera "))
        return self.scenario_path

    def _on_live_frame(self, session: int, screen: np.ndarray, stats: dict) -> None:
        if self.live is None or session != self.live.session:
            return
        t = time.perf_counter() - self._live_t0
        latency, fps = stats.get("latency_ms"), stats.get("display_fps")
        note = f"live  {fps or 0:.0f} FPS  {latency or 0:.0f} ms"
        self.phone_view.set_image(screen, note)
        if self.vcam is not None:
            self.vcam.put(screen)
        self.charts.charts["fps"].append(t, fps)
        self.charts.charts["latency"].append(t, latency)
        self.charts.set_time(t)
        if t > LIVE_WINDOW_S:
            self.charts.set_duration(t - LIVE_WINDOW_S, t)
        self.time_label.setText(f"live {t:6.1f} s  #{stats.get('frame', 0)}")
        self.live_frames += 1
        self.shown_count += 1
        self.frame_shown.emit(self.shown_count)

    def _on_live_ended(self, session: int, stats: dict | None, error: str) -> None:
        worker = next((w for w in self._live_workers if w.session == session), None)
        if worker is not None:
            worker.wait(10_000)
            self._live_workers.remove(worker)
            worker.deleteLater()
        if self.live is not None and session == self.live.session:  # ended by itself
            self.stop_live()
        if error:
            self.statusBar().showMessage(f"live failed: {error}")
        elif stats is not None and session == self._live_session:
            lat = stats["latency_ms"]
            p95 = "–" if lat.get("p95") is None else f"{lat['p95']:.0f}"
            self.statusBar().showMessage(
                f"live ended ({stats['stop_reason']}): {stats['display_fps']:.1f} FPS, "
                f"latency p95 {p95} ms, {stats['displayed_frames']} frames shown"
            )

    # --- files ----------------------------------------------------------------------

    def export_report(self, folder: str | Path) -> None:
        """Write the current run's report.json, report.html and junit.xml into ``folder``
        (the files `arsim run` writes). A run in progress is cut at the current position
        (its partial report is exported) and goes on from there."""
        folder = Path(folder)
        if self.running:
            self._pending_export = (self.job_id, folder)
            self.restart()
        elif self.last_outcome is not None:
            self._copy_reports(self.last_outcome, folder)
        else:
            self.statusBar().showMessage("nothing to export: open a scenario first")

    def _copy_reports(self, outcome: RunOutcome, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for path in outcome.paths.values():
            shutil.copy2(path, folder / path.name)
        self.statusBar().showMessage(f"report exported to {folder}")
        self.exported.emit(folder)

    def save_settings_file(self, path: str | Path) -> None:
        save_settings(self.settings_panel.settings(), path)
        self.statusBar().showMessage(f"settings saved to {path}")

    def load_settings_file(self, path: str | Path) -> bool:
        try:
            settings = load_settings(path)
        except InputError as exc:
            self.statusBar().showMessage(str(exc))
            return False
        self.set_pipeline(settings)
        return True

    def _remember_recent(self, path: str) -> None:
        recent = [p for p in self.store.value("recent", [], list) if p != path]
        self.store.setValue("recent", [path, *recent][:MAX_RECENT])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.store.value("recent", [], list):
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_scenario(p))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def _last_dir(self) -> str:
        return self.store.value("last_dir", str(Path.cwd()), str)

    def _ask_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open scenario folder", self._last_dir())
        if path:
            self.store.setValue("last_dir", str(Path(path).parent))
            self.open_scenario(path)

    def _ask_open_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open scenario archive", self._last_dir(),
                                              "Scenario archives (*.zip)")
        if path:
            self.store.setValue("last_dir", str(Path(path).parent))
            self.open_scenario(path)

    def _ask_export(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export report to", self._last_dir())
        if path:
            self.export_report(path)

    def _ask_save_settings(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save pipeline settings", self._last_dir(),
                                              "Settings (*.json)")
        if path:
            self.save_settings_file(path if path.endswith(".json") else path + ".json")

    def _ask_load_settings(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load pipeline settings", self._last_dir(),
                                              "Settings (*.json *.toml)")
        if path:
            self.load_settings_file(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.store.setValue("geometry", self.saveGeometry())
        self.store.sync()
        self._end_live_worker()
        self.recordings.shutdown()
        self.ab.shutdown()
        for worker in list(self._live_workers):
            worker.stop()
            worker.wait(10_000)
        self.worker.shutdown()
        self.preview.shutdown()
        if self.vcam is not None:
            self.vcam.close()
            self.vcam = None
        super().closeEvent(event)


__all__ = ["MainWindow"]
