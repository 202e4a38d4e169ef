"""``arsim compare``: several ``report.json`` files of one scenario side by side.

The reports may come from the simulator or from a device build (``mobile/CONTRACT.md``):
both write schema ``arsim-report/1``. Every report is checked field by field before use
(a missing field or a wrong type is an InputError naming the file and the dotted field);
reports of different scenarios are refused. Deltas are against the first report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.report.html import CSS, rolling_fps
from simulator.report.json_report import write_atomic
from simulator.report.junit import format_number
from simulator.report.reader import get_field, load_report
from simulator.report.svg import Series, line_chart

_NUM = (int, float)
_PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f")

# (row label, dotted field or "oom_count", whether higher is better)
METRIC_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("display FPS", "metrics.display_fps", True),
    ("inference FPS", "metrics.inference_fps", True),
    ("latency p50 (ms)", "metrics.latency_ms.p50", False),
    ("latency p95 (ms)", "metrics.latency_ms.p95", False),
    ("jank (%)", "metrics.jank_pct", False),
    ("dropped frames", "metrics.dropped_frames", False),
    ("flicker (warp error)", "metrics.flicker.warp_error", False),
    ("memory peak (MB)", "metrics.memory_peak_mb", False),
    ("OOM events", "oom_count", False),
    ("verdict", "verdict.passed", True),
)

def report_label(report: Mapping) -> str:
    """``target/device/backend/model@size``: how a column is headed."""
    return (f"{report['target']}/{report['device']['id']}/{report['backend']}/"
            f"{report['model']['name']}@{report['input_size']}")


def _value(report: Mapping, key: str) -> Any:
    return len(report["oom_events"]) if key == "oom_count" else get_field(report, key)


def compare_reports(paths: Sequence[str | Path]) -> dict:
    """Load ``paths`` (at least two, same scenario) and line up their metrics.

    Returns ``{"scenario", "reports": [{"path", "label", "target", "report"}],
    "rows": [{"metric", "key", "higher_is_better", "values", "delta", "delta_pct"}]}``;
    ``delta``/``delta_pct`` are against the first report (None where either value is null
    or not a number; ``delta_pct`` also None when the first value is 0).
    """
    if len(paths) < 2:
        raise InputError("compare", f"expected at least two report files, got {len(paths)}")
    reports = [load_report(path) for path in paths]
    scenario = reports[0]["scenario"]["name"]
    for path, report in zip(paths[1:], reports[1:], strict=True):
        other = report["scenario"]["name"]
        if other != scenario:
            raise InputError(path, f"field 'scenario.name': '{other}' differs from '{scenario}'"
                             f" in {paths[0]} (compare reports of one scenario)")
    rows = []
    for label, key, higher in METRIC_ROWS:
        values = [_value(report, key) for report in reports]
        base = values[0]
        delta, delta_pct = [], []
        for value in values:
            numeric = all(isinstance(v, _NUM) and not isinstance(v, bool) for v in (base, value))
            delta.append(value - base if numeric else None)
            delta_pct.append(100.0 * (value - base) / base if numeric and base != 0 else None)
        rows.append({"metric": label, "key": key, "higher_is_better": higher,
                     "values": values, "delta": delta, "delta_pct": delta_pct})
    return {
        "scenario": scenario,
        "reports": [{"path": str(path), "label": report_label(report),
                     "target": report["target"], "report": report}
                    for path, report in zip(paths, reports, strict=True)],
        "rows": rows,
    }


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    return "–" if value is None else format_number(value)


def _delta_cell(delta: object, pct: object) -> str:
    if delta is None:
        return ""
    text = f"{delta:+.4g}"
    return f"{text} ({pct:+.1f} %)" if pct is not None else text


def format_table(result: Mapping) -> str:
    """A plain-text table: one row per metric, one column per report, deltas vs the first."""
    labels = [entry["label"] for entry in result["reports"]]
    header = ["metric", *labels]
    lines = [header]
    for row in result["rows"]:
        cells = [row["metric"]]
        for i, value in enumerate(row["values"]):
            cell = _cell(value)
            delta = _delta_cell(row["delta"][i], row["delta_pct"][i]) if i else ""
            cells.append(f"{cell} {delta}".rstrip())
        lines.append(cells)
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    title = f"scenario {result['scenario']}: deltas vs {labels[0]} (absolute, %)"
    return "\n".join([title, *text])


def _delta_class(row: Mapping, i: int) -> str:
    delta = row["delta"][i]
    if not delta:
        return ""
    better = (delta > 0) == row["higher_is_better"]
    return ' class="pass"' if better else ' class="fail"'


def render_compare_html(result: Mapping) -> str:
    """The comparison as one self-contained page (the report page's CSS, inline SVG)."""
    labels = [entry["label"] for entry in result["reports"]]
    head = "".join(f"<th>{escape(h)}</th>" for h in ("Metric", *labels))
    body = []
    for row in result["rows"]:
        cells = [f"<td>{escape(row['metric'])}</td>"]
        for i, value in enumerate(row["values"]):
            delta = _delta_cell(row["delta"][i], row["delta_pct"][i]) if i else ""
            extra = f' <span{_delta_class(row, i)}>{escape(delta)}</span>' if delta else ""
            cells.append(f'<td class="num">{escape(_cell(value))}{extra}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    series = []
    for i, entry in enumerate(result["reports"]):
        display = entry["report"].get("display")
        times = [d.get("t") for d in display if isinstance(d, Mapping) and not d.get("refresh")
                 and isinstance(d.get("t"), _NUM)] if isinstance(display, list) else []
        xs, ys = rolling_fps(times)
        series.append(Series(entry["label"], list(xs), list(ys), _PALETTE[i % len(_PALETTE)]))
    chart = line_chart(series, x_label="time (s)", y_label="display FPS",
                       description="rolling display FPS of each report")
    sources = "".join(f"<li><code>{escape(e['path'])}</code> ({escape(e['label'])})</li>"
                      for e in result["reports"])
    title = f"arsim compare · {result['scenario']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}"
        " .pass{color:var(--pass)} .fail{color:var(--fail)}</style></head><body><main>"
        f"<h1>{escape(title)}</h1><p class=\"sub\">Deltas against the first report.</p>"
        f"<h2>Metrics</h2>{table}<h2>Display FPS</h2><figure>{chart}</figure>"
        f"<h2>Reports</h2><ul>{sources}</ul></main></body></html>\n"
    )


def write_compare_html(result: Mapping, path: str | Path) -> Path:
    """Write the comparison page (atomically); returns its path."""
    path = Path(path)
    write_atomic(path, render_compare_html(result).encode("utf-8"))
    return path
