"""Live charts (pyqtgraph): display FPS, latency, memory, flicker and thermal factor, each
against its budget line, the current value coloured pass / fail; and the phone's
milliseconds per stylized frame by pipeline stage (``CostModel``) as a bar chart."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QGridLayout, QWidget

from simulator.metrics.verdict import budget_op

PASS_COLOUR, FAIL_COLOUR, NEUTRAL_COLOUR = "#3fb950", "#f85149", "#c9d1d9"
MAX_POINTS = 20_000  # per curve; a 10-minute session at 30 fps


@dataclass(frozen=True)
class ChartSpec:
    """One chart: its key, title, unit and the budget (verdict name) it is held to."""

    key: str
    title: str
    unit: str
    budget: str | None
    fmt: str = "{:.1f}"


CHARTS = (
    ChartSpec("fps", "Display FPS", "", "min_display_fps"),
    ChartSpec("latency", "Latency", "ms", "max_latency_p95_ms", "{:.0f}"),
    ChartSpec("memory", "Memory", "MB", "max_memory_mb", "{:.0f}"),
    ChartSpec("flicker", "Flicker", "", "max_flicker", "{:.4f}"),
    ChartSpec("thermal", "Thermal", "×", None, "{:.2f}"),
)


class MetricChart(pg.PlotWidget):
    """One metric over virtual time with a horizontal budget line and a time cursor."""

    def __init__(self, spec: ChartSpec) -> None:
        super().__init__()
        self.spec = spec
        self.setBackground("#16181d")
        self.setMinimumHeight(110)
        self.showGrid(x=True, y=True, alpha=0.15)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.getAxis("bottom").setHeight(18)
        self.getAxis("left").setWidth(44)
        self.curve = self.plot([], [], pen=pg.mkPen("#58a6ff", width=1.5))
        dashed = pg.mkPen("#d29922", width=1, style=Qt.PenStyle.DashLine)
        self.budget_line = pg.InfiniteLine(angle=0, movable=False, pen=dashed)
        self.budget_line.setVisible(False)
        self.addItem(self.budget_line, ignoreBounds=True)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#8b949e", width=1))
        self.addItem(self.cursor, ignoreBounds=True)
        self.setMenuEnabled(False)
        self.limit: float | None = None
        self._top = 1.0
        self.value: float | None = None
        self._t: list[float] = []
        self._v: list[float] = []
        self._refresh_title()

    def set_limit(self, limit: float | None) -> None:
        """Move the budget line (None hides it)."""
        self.limit = limit
        self.budget_line.setVisible(limit is not None)
        if limit is not None:
            self.budget_line.setValue(limit)
        self._fit_y()
        self._refresh_title()

    def passes(self) -> bool | None:
        """The current value against the budget (None: no budget or no value)."""
        if self.limit is None or self.value is None or not np.isfinite(self.value):
            return None
        if self.spec.budget and budget_op(self.spec.budget) == ">=":
            return self.value >= self.limit
        return self.value <= self.limit

    def append(self, t: float, value: float | None) -> None:
        if value is None or not np.isfinite(value):
            return
        self._t.append(t)
        self._v.append(value)
        if len(self._t) > MAX_POINTS:
            del self._t[: len(self._t) - MAX_POINTS]
            del self._v[: len(self._v) - MAX_POINTS]
        self.curve.setData(self._t, self._v)
        if value > self._top:
            self._fit_y()
        self.set_current(value)

    def set_series(self, t: Sequence[float], values: Sequence[float]) -> None:
        """Replace the whole curve (a series known for the whole timeline)."""
        self._t, self._v = list(t), list(values)
        self.curve.setData(self._t, self._v)
        self._fit_y()

    def value_at(self, t: float) -> float | None:
        if not self._t:
            return None
        return float(np.interp(t, self._t, self._v))

    def set_current(self, value: float | None) -> None:
        self.value = value
        self._refresh_title()

    def clear_data(self) -> None:
        self._t, self._v = [], []
        self.curve.setData([], [])
        self.value = None
        self._fit_y()
        self._refresh_title()

    def _fit_y(self) -> None:
        """0 … 1.2 × the larger of the data and the budget (so the budget line is in view)."""
        values = [v for v in self._v if np.isfinite(v)] + ([self.limit] if self.limit else [])
        top = max(values, default=0.0)
        self._top = top if top > 0 else 1.0
        self.setYRange(0.0, self._top * 1.2, padding=0)

    def _refresh_title(self) -> None:
        spec, verdict = self.spec, self.passes()
        colour = NEUTRAL_COLOUR if verdict is None else PASS_COLOUR if verdict else FAIL_COLOUR
        value = "–" if self.value is None else spec.fmt.format(self.value)
        limit = ""
        if self.limit is not None and spec.budget:
            op = "≥" if budget_op(spec.budget) == ">=" else "≤"
            limit = f" {op} {spec.fmt.format(self.limit)}"
        self.setTitle(
            f"<span style='color:#c9d1d9'>{spec.title}</span>&nbsp; "
            f"<b style='color:{colour}'>{value} {spec.unit}</b>"
            f"<span style='color:#8b949e'>{limit}</span>",
            size="8pt",
        )


STAGES = (
    ("preprocess", "pre"),
    ("inference", "inf"),
    ("post_compose", "post"),
    ("smoothing", "sm"),
    ("warp", "warp"),
)
STAGE_COLOURS = ("#8b949e", "#58a6ff", "#a371f7", "#3fb950", "#d29922")


class StageChart(pg.PlotWidget):
    """Bars: phone ms per stylized frame by stage (``engine/costs.py``: as the replay
    charges them)."""

    def __init__(self) -> None:
        super().__init__()
        self.setBackground("#16181d")
        self.setMinimumHeight(110)
        self.showGrid(x=False, y=True, alpha=0.15)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.getAxis("bottom").setHeight(18)
        self.getAxis("left").setWidth(44)
        self.getAxis("bottom").setTicks([[(i, label) for i, (_k, label) in enumerate(STAGES)]])
        self.setXRange(-0.6, len(STAGES) - 0.4, padding=0)
        self.ms: dict[str, float] = {key: 0.0 for key, _label in STAGES}
        self.bars = pg.BarGraphItem(x=np.arange(len(STAGES)), height=np.zeros(len(STAGES)),
                                    width=0.7, brushes=list(STAGE_COLOURS), pen=None)
        self.addItem(self.bars)
        self.setToolTip("Phone milliseconds per stylized frame by stage (CostModel): camera "
                        "pre-processing, inference, post-processing + compose, smoothing, "
                        "reuse warp")
        self._refresh()

    def set_costs(self, ms: Mapping[str, float]) -> None:
        self.ms = {key: float(ms.get(key, 0.0)) for key, _label in STAGES}
        self._refresh()

    def height_of(self, key: str) -> float:
        """The drawn height of one bar (ms)."""
        index = [k for k, _label in STAGES].index(key)
        return float(self.bars.opts["height"][index])

    def _refresh(self) -> None:
        heights = np.array([self.ms[key] for key, _label in STAGES])
        self.bars.setOpts(height=heights)
        top = float(heights.max()) if heights.max() > 0 else 1.0
        self.setYRange(0.0, top * 1.2, padding=0)
        total = float(heights.sum())
        value = "–" if total <= 0 else f"{total:.1f} ms"
        self.setTitle(
            f"<span style='color:#c9d1d9'>Stages</span>&nbsp; "
            f"<b style='color:{NEUTRAL_COLOUR}'>{value}</b>",
            size="8pt",
        )


class ChartPanel(QWidget):
    """The five metric charts side by side, all on the scenario's virtual time axis, and
    the per-stage cost bars beside them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.charts = {spec.key: MetricChart(spec) for spec in CHARTS}
        for i, chart in enumerate(self.charts.values()):
            layout.addWidget(chart, 0, i)
        self.stages = StageChart()
        layout.addWidget(self.stages, 0, len(self.charts))
        self._new_results: deque[float] = deque()

    def set_budgets(self, budgets: Mapping[str, float]) -> None:
        """Budget lines from a verdict budget table (simulator.metrics.verdict.budgets_for)."""
        for chart in self.charts.values():
            if chart.spec.budget:
                chart.set_limit(budgets.get(chart.spec.budget))

    def set_duration(self, t0: float, t1: float) -> None:
        for chart in self.charts.values():
            chart.setXRange(t0, t1, padding=0.01)

    def reset(self, keep_timeline: bool = True) -> None:
        """Forget the live curves (a new run); memory/thermal come from the timeline."""
        for key in ("fps", "latency", "flicker"):
            self.charts[key].clear_data()
        if not keep_timeline:
            for key in ("memory", "thermal"):
                self.charts[key].clear_data()
        self._new_results.clear()

    def set_timeline(self, series: Mapping[str, Sequence[float]]) -> None:
        """Memory and thermal factor for the whole run (report ``series``)."""
        self.charts["memory"].set_series(series["t"], series["memory_mb"])
        self.charts["thermal"].set_series(series["t"], series["thermal_factor"])

    def add_entry(self, entry: Mapping) -> None:
        """One shown picture (a report ``display`` entry)."""
        t = float(entry["t"])
        if entry.get("kind") == "new" and not entry.get("refresh"):
            self._new_results.append(t)
        while self._new_results and self._new_results[0] <= t - 1.0:
            self._new_results.popleft()
        self.charts["fps"].append(t, float(len(self._new_results)))
        self.charts["latency"].append(t, entry.get("latency_ms"))
        self.charts["flicker"].append(t, entry.get("warp_error"))
        self.set_time(t)

    def set_time(self, t: float) -> None:
        for chart in self.charts.values():
            chart.cursor.setValue(t)
        for key in ("memory", "thermal"):
            self.charts[key].set_current(self.charts[key].value_at(t))
