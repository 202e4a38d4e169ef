"""Image views: the input frame, the phone's screen and a flicker heat-map."""

from __future__ import annotations

import cv2
import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

HEAT_MAX = 0.02  # warping error mapped to the top of the colour scale ([0,1] RGB, squared)


def qimage_view(rgb: np.ndarray) -> QImage:
    """A QImage that *borrows* the pixels of a contiguous uint8 H×W×3 RGB array.

    No copy is made: the caller keeps the array alive as long as the QImage (ImageView
    stores both together).
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 H x W x 3 image, got {rgb.dtype} {rgb.shape}")
    if not rgb.flags.c_contiguous:
        raise ValueError("expected a C-contiguous image")
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)


def heat_map(error_map: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Colour-mapped RGB uint8 image of a per-pixel warping error (0 … HEAT_MAX, square-root
    scale so that small errors stay visible), resized to ``size`` (width, height)."""
    level = np.sqrt(np.clip(error_map / HEAT_MAX, 0.0, 1.0)) * 255.0
    bgr = cv2.applyColorMap(level.astype(np.uint8), cv2.COLORMAP_INFERNO)
    if size is not None and (bgr.shape[1], bgr.shape[0]) != size:
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageView(QWidget):
    """Shows one RGB image scaled to fit (aspect kept), with a title and an optional note.
    A left click on the picture emits ``pixel_clicked(x, y)`` in the image's pixel
    coordinates (pixel k's centre at k, as the compositor and OpenCV draw)."""

    pixel_clicked = pyqtSignal(float, float)
    _TITLE_H = 22

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.note = ""
        self._array: np.ndarray | None = None  # owns the pixels the QImage borrows
        self._qimage: QImage | None = None
        self.setMinimumSize(200, 130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, rgb: np.ndarray | None, note: str = "") -> None:
        """Show ``rgb`` (kept by reference: do not modify it afterwards)."""
        if rgb is None:
            self._array, self._qimage = None, None
        else:
            self._array = np.ascontiguousarray(rgb)
            self._qimage = qimage_view(self._array)
        self.note = note
        self.update()

    def set_note(self, note: str) -> None:
        self.note = note
        self.update()

    def image(self) -> np.ndarray | None:
        """The image shown now (for tests and screenshots)."""
        return self._array

    def _area(self) -> QRectF:
        return QRectF(self.rect()).adjusted(4, self._TITLE_H, -4, -4)

    def image_rect(self) -> QRectF | None:
        """Where the picture is drawn in the widget (None: no picture)."""
        if self._qimage is None:
            return None
        area = self._area()
        w, h = self._qimage.width(), self._qimage.height()
        scale = min(area.width() / w, area.height() / h)
        target = QRectF(0, 0, w * scale, h * scale)
        target.moveCenter(area.center())
        return target

    def widget_to_image(self, pos: QPointF) -> tuple[float, float] | None:
        """The image pixel under widget position ``pos`` (widget pixel j covers [j, j+1)),
        or None outside the picture."""
        target = self.image_rect()
        if target is None or not target.contains(pos.x() + 0.5, pos.y() + 0.5):
            return None
        scale = target.width() / self._qimage.width()
        return ((pos.x() + 0.5 - target.left()) / scale - 0.5,
                (pos.y() + 0.5 - target.top()) / scale - 0.5)

    def image_to_widget(self, x: float, y: float) -> QPointF | None:
        """The widget position showing image pixel (x, y) (the inverse of widget_to_image)."""
        target = self.image_rect()
        if target is None:
            return None
        scale = target.width() / self._qimage.width()
        return QPointF(target.left() + (x + 0.5) * scale - 0.5,
                       target.top() + (y + 0.5) * scale - 0.5)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            pixel = self.widget_to_image(event.position())
            if pixel is not None:
                self.pixel_clicked.emit(*pixel)
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        title_h = self._TITLE_H
        area = self._area()
        target = self.image_rect()
        if target is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, self._qimage)
        painter.setPen(QColor(220, 220, 225))
        painter.drawText(QRectF(6, 2, self.width() - 12, title_h - 2),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.title)
        if self.note:
            box = QRectF(area.left() + 8, area.bottom() - 30, area.width() - 16, 24)
            painter.fillRect(box, QColor(0, 0, 0, 170))
            painter.setPen(QColor(255, 210, 90))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.note)
        painter.end()
