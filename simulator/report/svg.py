"""A small inline-SVG line chart (axes, ticks, labels, budget lines, event markers).

Output is an ``<svg>`` element for embedding in HTML5 (no namespace URL, no scripts, no
external references). All text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

TEXT = "#334155"
MUTED = "#64748b"
GRID = "#e2e8f0"
AXIS = "#94a3b8"


@dataclass(frozen=True)
class Series:
    """One line; a None or NaN y breaks the line (a gap). ``dots``: a dot at each point
    and no line (events, e.g. face detections with their scores)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    colour: str = "#2563eb"
    dots: bool = False


@dataclass(frozen=True)
class Guide:
    """A horizontal reference line such as a budget or a limit."""

    value: float
    label: str
    colour: str = "#dc2626"


@dataclass(frozen=True)
class Marker:
    """A vertical event marker at ``x`` (e.g. an OOM kill)."""

    x: float
    label: str
    colour: str = "#d97706"


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10^k apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw_step = (high - low) / max(1, target)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    first = math.ceil(low / step - 1e-9) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [first + i * step for i in range(count)]


def format_tick(value: float, ticks: Sequence[float]) -> str:
    """A tick label with just enough decimals to tell neighbouring ticks apart."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if _needs_half(step) else 0))
    if abs(value) < step * 1e-6:
        value = 0.0
    return f"{value:.{min(decimals, 6)}f}"


def _needs_half(step: float) -> bool:
    # 2.5 × 10^k steps need one more decimal than their magnitude suggests.
    mantissa = step / 10 ** math.floor(math.log10(step))
    return abs(mantissa - 2.5) < 1e-6


def _finite_points(series: Series) -> list[tuple[float, float] | None]:
    points: list[tuple[float, float] | None] = []
    for x, y in zip(series.xs, series.ys, strict=False):
        ok = y is not None and math.isfinite(y) and x is not None and math.isfinite(x)
        points.append((float(x), float(y)) if ok else None)
    return points


def _padded_range(values: Sequence[float], from_zero: bool) -> tuple[float, float]:
    low, high = min(values), max(values)
    if from_zero:
        low, high = min(low, 0.0), max(high, 0.0)
    if high - low < 1e-12:
        spread = abs(high) * 0.1 or 1.0
        return low - (0 if from_zero and low == 0 else spread), high + spread
    pad = 0.06 * (high - low)
    return (low if from_zero and low == 0 else low - pad), high + pad


def line_chart(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    guides: Sequence[Guide] = (),
    markers: Sequence[Marker] = (),
    marker_legend: str = "event",
    width: int = 520,
    height: int = 250,
    y_from_zero: bool = True,
    description: str = "",
) -> str:
    """An ``<svg>`` line chart; with no finite data it shows the axes and "no data"."""
    point_lists = [_finite_points(s) for s in series]
    xs = [p[0] for points in point_lists for p in points if p] + [m.x for m in markers]
    ys = [p[1] for points in point_lists for p in points if p]
    ys += [g.value for g in guides if math.isfinite(g.value)]
    has_data = any(p for points in point_lists for p in points)

    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high <= x_low:
        x_high = x_low + 1.0
    y_low, y_high = _padded_range(ys, y_from_zero) if ys else (0.0, 1.0)
    y_ticks = [t for t in nice_ticks(y_low, y_high) if y_low - 1e-12 <= t <= y_high + 1e-12]
    y_tick_labels = [format_tick(t, y_ticks) for t in y_ticks]

    # Room on the left for the widest tick label (~6.2 px per character at 11 px) and the title.
    left = 30 + round(6.2 * max(len(label) for label in y_tick_labels))
    right, top, bottom = 14, 30, 42
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return top + (y_high - y) / (y_high - y_low) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(description or y_label)}" '
        f'font-family="inherit" font-size="11">'
    ]
    for tick, label in zip(y_ticks, y_tick_labels, strict=True):
        y = py(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{label}</text>"
        )
    x_ticks = [t for t in nice_ticks(x_low, x_high, 6) if x_low - 1e-12 <= t <= x_high + 1e-12]
    for tick in x_ticks:
        x = px(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" '
            f'stroke="{AXIS}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="{MUTED}">'
            f"{format_tick(tick, x_ticks)}</text>"
        )
    parts.append(
        f'<path d="M{left},{top} V{top + plot_h} H{left + plot_w}" fill="none" stroke="{AXIS}"/>'
    )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{TEXT}">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(13,{top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{TEXT}">{escape(y_label)}</text>'
    )

    for marker in markers:
        x = px(marker.x)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
            f'stroke="{marker.colour}" stroke-width="1.5"><title>{escape(marker.label)}</title>'
            "</line>"
        )
    for guide in guides:
        if not math.isfinite(guide.value):
            continue
        y = py(guide.value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="{guide.colour}" stroke-width="1.2" stroke-dasharray="5 4"/>'
        )
    for spec, points in zip(series, point_lists, strict=True):
        if spec.dots:
            parts.extend(
                f'<circle class="dot" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" '
                f'fill="{spec.colour}"><title>{escape(spec.label)}: {y:.3g} at '
                f"{x:.3g}</title></circle>"
                for x, y in (p for p in points if p)
            )
            continue
        path = _path_data(points, px, py)
        if path:
            parts.append(
                f'<path d="{path}" fill="none" stroke="{spec.colour}" stroke-width="1.6" '
                'stroke-linejoin="round" stroke-linecap="round"/>'
            )
    if not has_data:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle" fill="{MUTED}">no data</text>'
        )
    legend = [(s.label, s.colour, "") for s in series]
    legend += [(g.label, g.colour, ' stroke-dasharray="5 4"') for g in guides]
    if markers:
        legend.append((marker_legend, markers[0].colour, ""))
    parts.extend(_legend(legend, left, width - right))
    parts.append("</svg>")
    return "".join(parts)


def _path_data(
    points: Sequence[tuple[float, float] | None],
    px: Callable[[float], float],
    py: Callable[[float], float],
) -> str:
    commands: list[str] = []
    pen_down = False
    for point in points:
        if point is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{px(point[0]):.1f},{py(point[1]):.1f}")
        pen_down = True
    return "".join(commands)


def _legend(entries: Sequence[tuple[str, str, str]], x_start: float, x_end: float) -> list[str]:
    """Legend along the top: (label, colour, extra line attributes) per entry."""
    parts: list[str] = []
    x = float(x_start)
    for label, colour, dash in entries:
        if x > x_end - 40:
            break
        parts.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x + 16:.1f}" y2="14" stroke="{colour}" '
            f'stroke-width="2"{dash}/>'
        )
        parts.append(
            f'<text x="{x + 21:.1f}" y="17.5" fill="{TEXT}">{escape(label)}</text>'
        )
        x += 21 + 6.2 * len(label) + 16
    return parts
