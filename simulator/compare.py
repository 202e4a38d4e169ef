"""``arsim compare``: several ``report.json`` files of one scenario side by side.

The reports may come from the simulator or from a device build (``mobile/CONTRACT.md``):
both write schema ``arsim-report/1``. Every report is checked field by field before use
(a missing field or a wrong type is an InputError naming the file and the dotted field);
reports of different scenarios are refused. Deltas are against the first report.

Reports with the same column label are repeats of one side (three web runs of one model, say):
``repeat_stats`` gives each side's mean and 95 % t-interval per metric, and whether its
difference from the first side is larger than the noise (Welch's t-test; a one-sample t-test
against a side of one run, such as a deterministic simulator prediction; significant when
p < 0.05).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import InputError
from simulator.output_paths import writing
from simulator.report.html import CSS, jpeg_data_uri, rolling_fps
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


@dataclass(frozen=True, eq=False)
class SyncedFrame:
    """The screens of every compared run at one instant (video frame ``index``)."""

    index: int
    t: float  # seconds from the first camera frame
    screens: tuple[np.ndarray, ...]


def report_label(report: Mapping) -> str:
    """``target/device/backend/model@size``: how a column is headed."""
    return (f"{report['target']}/{report['device']['id']}/{report['backend']}/"
            f"{report['model']['name']}@{report['input_size']}")


def _value(report: Mapping, key: str) -> Any:
    return len(report["oom_events"]) if key == "oom_count" else get_field(report, key)


def compare_reports(paths: Sequence[str | Path], names: Sequence[str] = ()) -> dict:
    """Load ``paths`` (at least two, same scenario) and line up their metrics; ``names``
    (e.g. "A", "B") head the columns, before each report's own label when those differ.

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
        "reports": [{"path": str(path), "target": report["target"], "report": report,
                     "label": _column_label(reports, i, names)}
                    for i, (path, report) in enumerate(zip(paths, reports, strict=True))],
        "rows": rows,
    }


def _column_label(reports: Sequence[Mapping], i: int, names: Sequence[str]) -> str:
    own = report_label(reports[i])
    if i >= len(names):
        return own
    same = len({report_label(r) for r in reports}) == 1  # e.g. two pipeline settings
    return names[i] if same else f"{names[i]}: {own}"


def format_cell(value: object) -> str:
    """A metric value as the tables show it (PASS / FAIL, – for none)."""
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    return "–" if value is None else format_number(value)


def format_delta(delta: object, pct: object) -> str:
    """A delta against the first report, with its percentage when there is one."""
    if delta is None:
        return ""
    text = f"{delta:+.4g}"
    return f"{text} ({pct:+.1f} %)" if pct is not None else text


SIGNIFICANCE = 0.05
SPREAD_ROWS = ("metrics.display_fps", "metrics.inference_fps", "metrics.latency_ms.p50",
               "metrics.latency_ms.p95", "metrics.jank_pct")


def repeat_stats(result: Mapping) -> list[dict]:
    """Per side (reports sharing a label, in first-seen order) and metric of
    ``SPREAD_ROWS``: ``{"side", "n", "rows": [{"metric", "key", "mean", "low", "high",
    "diff", "p", "significant"}]}``; ``low``/``high`` the 95 % t-interval of the mean (None
    below two runs), ``diff``/``p``/``significant`` against the first side (None for it,
    and where neither side has two runs)."""
    from scipy import stats

    sides: dict[str, list[Mapping]] = {}
    for entry in result["reports"]:
        sides.setdefault(entry["label"], []).append(entry["report"])
    labels = {key: label for label, key, _ in METRIC_ROWS}
    first: dict[str, list[float]] = {}
    out = []
    for side, reports in sides.items():
        rows = []
        for key in SPREAD_ROWS:
            values = [v for v in (_value(r, key) for r in reports)
                      if isinstance(v, _NUM) and not isinstance(v, bool)]
            row: dict[str, Any] = {"metric": labels[key], "key": key, "n": len(values),
                                   "mean": float(np.mean(values)) if values else None,
                                   "low": None, "high": None, "diff": None, "p": None,
                                   "significant": None}
            if len(values) >= 2:
                half = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)
                row["low"], row["high"] = row["mean"] - half, row["mean"] + half
            if not out:
                first[key] = values
            elif values and first.get(key):
                row["diff"] = row["mean"] - float(np.mean(first[key]))
                row["p"] = _p_value(first[key], values)
                row["significant"] = None if row["p"] is None else row["p"] < SIGNIFICANCE
            rows.append(row)
        out.append({"side": side, "n": len(reports), "rows": rows})
    return out


def _p_value(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p of the difference of means: Welch's t-test, or one-sample against the side
    of one run; None when neither side has two runs (no spread to judge by)."""
    from scipy import stats

    if len(a) >= 2 and len(b) >= 2:
        if np.ptp(a) == 0 and np.ptp(b) == 0:  # no noise at all: any difference is real
            return 0.0 if np.mean(a) != np.mean(b) else 1.0
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    one, many = (a, b) if len(a) == 1 else (b, a)
    if len(one) != 1 or len(many) < 2:
        return None
    if np.ptp(many) == 0:
        return 0.0 if many[0] != one[0] else 1.0
    return float(stats.ttest_1samp(many, one[0]).pvalue)


def format_spread(result: Mapping) -> str:
    """The repeats section of ``arsim compare`` ("" when no side was repeated)."""
    sides = repeat_stats(result)
    if all(side["n"] < 2 for side in sides):
        return ""
    lines = ["spread over repeats (mean, 95 % t-interval; vs the first side: difference, p,"
             f" significant at p < {SIGNIFICANCE:g}):"]
    for side in sides:
        lines.append(f"  {side['side']} ({side['n']} run{'s' if side['n'] != 1 else ''})")
        for row in side["rows"]:
            if row["mean"] is None:
                continue
            text = f"    {row['metric']}: {format_number(row['mean'])}"
            if row["low"] is not None:
                text += f" [{format_number(row['low'])}, {format_number(row['high'])}]"
            if row["p"] is not None:
                verdict = "significant" if row["significant"] else "within the noise"
                text += f"; {row['diff']:+.4g} (p = {row['p']:.2g}, {verdict})"
            lines.append(text)
    return "\n".join(lines)


def format_table(result: Mapping) -> str:
    """A plain-text table: one row per metric, one column per report, deltas vs the first."""
    labels = [entry["label"] for entry in result["reports"]]
    header = ["metric", *labels]
    lines = [header]
    for row in result["rows"]:
        cells = [row["metric"]]
        for i, value in enumerate(row["values"]):
            cell = format_cell(value)
            delta = format_delta(row["delta"][i], row["delta_pct"][i]) if i else ""
            cells.append(f"{cell} {delta}".rstrip())
        lines.append(cells)
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    title = f"scenario {result['scenario']}: deltas vs {labels[0]} (absolute, %)"
    spread = format_spread(result)
    return "\n".join([title, *text, *([spread] if spread else [])])


def _delta_class(row: Mapping, i: int) -> str:
    delta = row["delta"][i]
    if not delta:
        return ""
    better = (delta > 0) == row["higher_is_better"]
    return ' class="pass"' if better else ' class="fail"'


def display_series(result: Mapping, field: str) -> list[tuple[list, list]]:
    """Per compared report, (times, values) of a field of its new displayed frames (the
    ``display`` entries that are not refreshes); entries without a numeric time are left
    out, a missing value is None (a gap)."""
    out = []
    for entry in result["reports"]:
        display = entry["report"].get("display")
        rows = [d for d in display if isinstance(d, Mapping) and isinstance(d.get("t"), _NUM)
                and not d.get("refresh")] if isinstance(display, list) else []
        out.append(([d["t"] for d in rows], [d.get(field) for d in rows]))
    return out


def check_rows(result: Mapping) -> list[dict]:
    """The budget checks of every report by name: ``{"name", "cells": [(value, passed) or
    None per report], "differs"}``; ``differs`` when the results are not all alike."""
    names: list[str] = []
    per_report = []
    for entry in result["reports"]:
        checks = entry["report"].get("verdict", {}).get("checks") or []
        found = {c["name"]: (c.get("value"), c.get("passed")) for c in checks
                 if isinstance(c, Mapping) and isinstance(c.get("name"), str)}
        names += [n for n in found if n not in names]
        per_report.append(found)
    rows = []
    for name in names:
        cells = [found.get(name) for found in per_report]
        outcomes = {None if c is None else c[1] for c in cells}
        rows.append({"name": name, "cells": cells, "differs": len(outcomes) > 1})
    return rows


def _checks_table(result: Mapping, labels: Sequence[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in ("Check", *labels))
    body = []
    for row in check_rows(result):
        cells = [f"<td>{'<b>' if row['differs'] else ''}{escape(row['name'])}"
                 f"{' (differs)</b>' if row['differs'] else ''}</td>"]
        for cell in row["cells"]:
            if cell is None:
                cells.append("<td>–</td>")
                continue
            value, passed = cell
            verdict = "pass" if passed else "fail"
            cells.append(f'<td class="num">{escape(format_cell(value))} '
                         f'<span class="{verdict}">{verdict.upper()}</span></td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_FRAMES_JS = """
(function(){const d=JSON.parse(document.getElementById('ab-data').textContent);
const a=document.getElementById('ab-a'),b=document.getElementById('ab-b'),
f=document.getElementById('ab-frame'),s=document.getElementById('ab-split'),
t=document.getElementById('ab-time'),l=document.getElementById('ab-line');
function show(){const k=+f.value;a.src=d[k].a;b.src=d[k].b;t.textContent=d[k].t;}
function split(){b.style.clipPath='inset(0 0 0 '+s.value+'%)';l.style.left=s.value+'%';}
f.addEventListener('input',show);s.addEventListener('input',split);show();split();})();
"""


def _script_json(data: object) -> str:
    """JSON to put inside a script element: "</" must not end it."""
    return json.dumps(data).replace("</", "<\\/")


def _frames_section(frames: Sequence[SyncedFrame], labels: Sequence[str]) -> str:
    """A split view of the first two runs (frame slider moves both, split slider the
    divide) and every run's screens side by side at each instant (no script needed)."""
    if not frames:
        return ""
    uris = [[jpeg_data_uri(screen, width=screen.shape[1]) for screen in f.screens]
            for f in frames]
    parts = ["<h2>Frames</h2>"]
    if len(labels) >= 2:
        data = [{"a": u[0], "b": u[1], "t": f"t = {f.t:.2f} s (frame {f.index})"}
                for f, u in zip(frames, uris, strict=True)]
        parts.append(
            f'<p class="sub">Left of the divide: {escape(labels[0])}; right: '
            f'{escape(labels[1])}.</p>'
            '<div style="position:relative;display:inline-block;line-height:0">'
            '<img id="ab-a" alt="A"><img id="ab-b" alt="B" '
            'style="position:absolute;left:0;top:0">'
            '<div id="ab-line" style="position:absolute;top:0;bottom:0;width:2px;'
            'margin-left:-1px;background:#fff"></div></div>'
            f'<p><label>frame <input id="ab-frame" type="range" min="0" max="{len(frames) - 1}"'
            ' value="0"></label> <span id="ab-time"></span><br>'
            '<label>split <input id="ab-split" type="range" min="0" max="100" value="50">'
            '</label></p>'
            # JSON inside a script element: "</" must not end it
            '<script type="application/json" id="ab-data">'
            f'{_script_json(data)}</script>'
            f"<script>{_FRAMES_JS}</script>")
    head = "".join(f"<th>{escape(h)}</th>" for h in ("t (s)", *labels))
    rows = "".join(
        f"<tr><td>{f.t:.2f}</td>"
        + "".join(f'<td><img src="{u}" alt="" style="max-width:100%"></td>' for u in row)
        + "</tr>"
        for f, row in zip(frames, uris, strict=True))
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "".join(parts)


def render_compare_html(result: Mapping, frames: Sequence[SyncedFrame] = ()) -> str:
    """The comparison as one self-contained page (the report page's CSS, inline SVG): the
    metrics with deltas, display FPS and flicker curves of every report on shared charts,
    the budget checks (those whose result differs in bold) and, given ``frames``, the
    screens at the same instants."""
    labels = [entry["label"] for entry in result["reports"]]
    head = "".join(f"<th>{escape(h)}</th>" for h in ("Metric", *labels))
    body = []
    for row in result["rows"]:
        cells = [f"<td>{escape(row['metric'])}</td>"]
        for i, value in enumerate(row["values"]):
            delta = format_delta(row["delta"][i], row["delta_pct"][i]) if i else ""
            extra = f' <span{_delta_class(row, i)}>{escape(delta)}</span>' if delta else ""
            cells.append(f'<td class="num">{escape(format_cell(value))}{extra}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    series, flicker = [], []
    for i, (entry, (times, errors)) in enumerate(
            zip(result["reports"], display_series(result, "warp_error"), strict=True)):
        colour = _PALETTE[i % len(_PALETTE)]
        xs, ys = rolling_fps(times)
        series.append(Series(entry["label"], list(xs), list(ys), colour))
        flicker.append(Series(entry["label"], times, errors, colour))
    chart = line_chart(series, x_label="time (s)", y_label="display FPS",
                       description="rolling display FPS of each report")
    flicker_chart = line_chart(flicker, x_label="time (s)", y_label="warp error",
                               description="flicker (warping error) of each displayed frame")
    sources = "".join(f"<li><code>{escape(e['path'])}</code> ({escape(e['label'])})</li>"
                      for e in result["reports"])
    title = f"arsim compare · {result['scenario']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}"
        " .pass{color:var(--pass)} .fail{color:var(--fail)}</style></head><body><main>"
        f"<h1>{escape(title)}</h1><p class=\"sub\">Deltas against the first report.</p>"
        f"<h2>Metrics</h2>{table}{_spread_section(result)}"
        f"<h2>Budget checks</h2>{_checks_table(result, labels)}"
        f"<h2>Display FPS</h2><figure>{chart}</figure>"
        f"<h2>Flicker</h2><figure>{flicker_chart}</figure>"
        f"{_frames_section(frames, labels)}"
        f"<h2>Reports</h2><ul>{sources}</ul></main></body></html>\n"
    )


def _spread_section(result: Mapping) -> str:
    """The repeats as an HTML table ("" when no side was repeated)."""
    sides = repeat_stats(result)
    if all(side["n"] < 2 for side in sides):
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in ("Metric", *(
        f"{s['side']} ({s['n']} runs)" for s in sides)))
    body = []
    for i in range(len(SPREAD_ROWS)):
        cells = [f"<td>{escape(sides[0]['rows'][i]['metric'])}</td>"]
        for side in sides:
            row = side["rows"][i]
            text = format_cell(row["mean"])
            if row["low"] is not None:
                text += f" [{format_number(row['low'])}, {format_number(row['high'])}]"
            mark = ""
            if row["p"] is not None:
                kind = "fail" if row["significant"] else "pass"
                word = "significant" if row["significant"] else "within noise"
                mark = f' <span class="{kind}">p = {row["p"]:.2g}, {word}</span>'
            cells.append(f'<td class="num">{escape(text)}{mark}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return ("<h2>Spread over repeats</h2><p>Mean and 95 % t-interval of each side's runs; "
            "against the first side, Welch's t-test (one-sample against a side of one run)."
            f"</p><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def write_compare_html(result: Mapping, path: str | Path,
                       frames: Sequence[SyncedFrame] = ()) -> Path:
    """Write the comparison page (atomically); returns its path."""
    path = Path(path)
    with writing(path):  # an unwritable page: one line, exit 4
        write_atomic(path, render_compare_html(result, frames).encode("utf-8"))
    return path
