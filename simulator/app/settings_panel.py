"""Widgets for every pipeline knob, bound to a PipelineSettings."""

from __future__ import annotations

from dataclasses import replace

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from simulator.errors import InputError
from simulator.pipeline.face_priority import BACKGROUNDS
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.skip import REUSE_MODES
from simulator.pipeline.smooth import COLOUR_MODES, METHODS


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"160, 256"`` -> (160, 256); empty -> () (fixed size); ValueError when malformed."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    return tuple(int(p) for p in parts)


def _combo(items: tuple[str, ...]) -> QComboBox:
    combo = QComboBox()
    combo.addItems(items)
    return combo


class SettingsPanel(QWidget):
    """Emits ``changed(PipelineSettings)`` for every valid edit; invalid combinations are
    shown in red under the form and not emitted."""

    changed = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = _combo(METHODS)
        self.alpha = QDoubleSpinBox(decimals=2, minimum=0.01, maximum=1.0, singleStep=0.05)
        self.colour = _combo(COLOUR_MODES)
        self.reuse = _combo(REUSE_MODES)
        self.skip = QCheckBox("skip unchanged frames")
        self.max_age = QSpinBox(minimum=1, maximum=120)
        self.sizes = QLineEdit(placeholderText="fixed (e.g. 160,256)")
        self.face = QCheckBox("face priority")
        self.face_every = QSpinBox(minimum=1, maximum=120)
        self.face_background = _combo(BACKGROUNDS)
        self.problem = QLabel(wordWrap=True)
        self.problem.setStyleSheet("color: #f85149")
        self._settings = PipelineSettings()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        for title, rows in (
            ("Temporal smoothing", [("method", self.method), ("alpha (new)", self.alpha),
                                    ("colour", self.colour)]),
            ("Reuse and frame skip", [("reuse", self.reuse), ("", self.skip),
                                      ("max reuse age", self.max_age)]),
            ("Dynamic input size", [("sizes", self.sizes)]),
            ("Face priority", [("", self.face), ("detect every N", self.face_every),
                               ("background", self.face_background)]),
        ):
            box = QGroupBox(title)
            form = QFormLayout(box)
            for label, widget in rows:
                form.addRow(label, widget)
            layout.addWidget(box)
        layout.addWidget(self.problem)
        layout.addStretch(1)
        self.set_settings(self._settings)
        for combo in (self.method, self.colour, self.reuse, self.face_background):
            combo.currentTextChanged.connect(self._edited)
        for spin in (self.alpha, self.max_age, self.face_every):
            spin.valueChanged.connect(self._edited)
        for box in (self.skip, self.face):
            box.toggled.connect(self._edited)
        self.sizes.editingFinished.connect(self._edited)

    def settings(self) -> PipelineSettings:
        """The settings the widgets show (the last valid ones)."""
        return self._settings

    def set_settings(self, settings: PipelineSettings) -> None:
        """Show ``settings`` without emitting ``changed``."""
        self._settings = settings
        widgets = (self.method, self.alpha, self.colour, self.reuse, self.skip, self.max_age,
                   self.sizes, self.face, self.face_every, self.face_background)
        for w in widgets:
            w.blockSignals(True)
        s = settings
        self.method.setCurrentText(s.smoothing.method)
        self.alpha.setValue(s.smoothing.alpha)
        self.colour.setCurrentText(s.smoothing.colour)
        self.reuse.setCurrentText(s.skip.reuse)
        self.skip.setChecked(s.skip.skip)
        self.max_age.setValue(s.skip.max_age)
        self.sizes.setText(",".join(str(v) for v in s.sizing.sizes))
        self.face.setChecked(s.face.enabled)
        self.face_every.setValue(s.face.tracker.detect_every)
        self.face_background.setCurrentText(s.face.priority.background)
        for w in widgets:
            w.blockSignals(False)
        self._update_enabled()
        self.problem.clear()

    def _update_enabled(self) -> None:
        self.alpha.setEnabled(self.method.currentText() not in ("none",))
        self.skip.setEnabled(self.reuse.currentText() != "off")
        self.max_age.setEnabled(self.reuse.currentText() != "off")
        for w in (self.face_every, self.face_background):
            w.setEnabled(self.face.isChecked())

    def _from_widgets(self) -> PipelineSettings:
        s = self._settings
        reuse = self.reuse.currentText()
        try:
            sizes = parse_sizes(self.sizes.text())
        except ValueError:
            raise InputError(
                "sizes", f"expected sizes like 160,256, got {self.sizes.text()!r}"
            ) from None
        return replace(
            s,
            smoothing=replace(s.smoothing, method=self.method.currentText(),
                              alpha=round(self.alpha.value(), 2), colour=self.colour.currentText()),
            skip=replace(s.skip, reuse=reuse, skip=self.skip.isChecked() and reuse != "off",
                         max_age=self.max_age.value()),
            sizing=replace(s.sizing, sizes=sizes),
            face=replace(
                s.face,
                enabled=self.face.isChecked(),
                tracker=replace(s.face.tracker, detect_every=self.face_every.value()),
                priority=replace(s.face.priority, background=self.face_background.currentText()),
            ),
        )

    def _edited(self, *_: object) -> None:
        self._update_enabled()
        try:
            settings = self._from_widgets()
            settings.validate()
        except InputError as exc:
            self.problem.setText(str(exc))
            return
        self.problem.clear()
        if settings != self._settings:
            self._settings = settings
            self.changed.emit(settings)
