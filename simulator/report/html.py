"""``report.html``: one self-contained page (inline CSS, inline SVG, data-URI images, no JS).

Sections: header (scenario, device, backend, model, input size, complete/incomplete banner),
verdict table, key metrics, plots (display FPS, latency, memory, thermal factor, flicker),
OOM events, pipeline (size changes, face priority with its detection timeline),
input/output thumbnails (face boxes drawn on them), settings. Every piece of report text is escaped.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

import cv2
import numpy as np

from simulator.metrics.verdict import budget_op
from simulator.report.json_report import write_atomic
from simulator.report.junit import format_number
from simulator.report.svg import Guide, Marker, Series, line_chart

THUMBNAIL_WIDTH = 240
FPS_WINDOW_S = 1.0

BUDGET_LABELS = {
    "min_display_fps": "Display FPS",
    "max_latency_p95_ms": "Latency p95 (ms)",
    "max_jank_pct": "Jank (%)",
    "max_flicker": "Flicker (warp error)",
    "max_memory_mb": "Peak memory (MB)",
    "max_oom_events": "OOM events",
}

CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --pass:#15803d; --pass-bg:#f0fdf4;
  --fail:#b91c1c; --fail-bg:#fef2f2; --warn:#92400e; --warn-bg:#fffbeb; --card:#ffffff; }
* { box-sizing: border-box; }
body { margin:0; background:#f8fafc; color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1120px; margin:0 auto; padding:24px 24px 40px; }
header { display:flex; justify-content:space-between; align-items:flex-start; gap:16px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:16px; margin:28px 0 10px; }
.sub { color:var(--muted); }
.badge { font-weight:700; letter-spacing:.06em; padding:8px 16px; border-radius:6px;
  font-size:18px; white-space:nowrap; }
.badge.pass { color:var(--pass); background:var(--pass-bg); border:1px solid #86efac; }
.badge.fail { color:var(--fail); background:var(--fail-bg); border:1px solid #fca5a5; }
.banner { margin:16px 0 0; padding:10px 14px; border-radius:6px; }
.banner.complete { color:var(--pass); background:var(--pass-bg); border:1px solid #bbf7d0; }
.banner.incomplete { color:var(--warn); background:var(--warn-bg); border:1px solid #fcd34d; }
.facts { display:grid; grid-template-columns:repeat(auto-fill,minmax(165px,1fr)); gap:10px;
  margin-top:16px; }
.fact { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px 12px; }
.fact .k { color:var(--muted); font-size:12px; } .fact .v { font-weight:600; }
table { border-collapse:collapse; width:100%; background:var(--card);
  border:1px solid var(--line); border-radius:6px; overflow:hidden; }
th, td { text-align:left; padding:7px 12px; border-bottom:1px solid var(--line); }
th { background:#f1f5f9; font-size:12px; color:var(--muted); font-weight:600; }
td.num { font-variant-numeric:tabular-nums; text-align:right; white-space:nowrap; }
tr.pass td.result { color:var(--pass); font-weight:700; }
tr.fail td { background:var(--fail-bg); } tr.fail td.result { color:var(--fail); font-weight:700; }
tr.skipped td { color:var(--muted); }
.plots { display:grid; grid-template-columns:repeat(auto-fill,minmax(460px,1fr)); gap:14px; }
figure { margin:0; background:var(--card); border:1px solid var(--line); border-radius:6px;
  padding:10px 10px 4px; }
figcaption { font-weight:600; margin:0 0 2px 4px; }
svg.chart { width:100%; height:auto; display:block; }
.thumbs { display:flex; gap:12px; overflow-x:auto; padding-bottom:6px; }
.thumb { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px;
  flex:0 0 auto; }
.thumb img { display:block; border-radius:3px; }
.shot { position:relative; } .shot svg.face-box { position:absolute; left:0; top:0;
  width:100%; height:100%; pointer-events:none; }
.thumb .pair { display:flex; gap:6px; } .thumb .cap { color:var(--muted); font-size:12px; }
footer { margin-top:32px; color:var(--muted); font-size:12px; }
.empty { color:var(--muted); }
"""


def rolling_fps(times: Sequence[float], window_s: float = FPS_WINDOW_S) -> tuple[list, list]:
    """Displayed results per second over the trailing ``window_s`` at each display time.

    Points start one full window after the first result (earlier windows are partial).
    """
    t = np.asarray(sorted(times), dtype=np.float64)
    if t.size == 0:
        return [], []
    # Window (t − w, t]; the 1e-9 keeps a result exactly w earlier out despite rounding.
    starts = np.searchsorted(t, t - window_s + 1e-9, side="right")
    counts = np.arange(1, t.size + 1) - starts
    full = t >= t[0] + window_s
    return t[full].tolist(), (counts[full] / window_s).tolist()


def _text(value: object) -> str:
    return escape(format_number(value) if isinstance(value, int | float) else str(value))


def _column(rows: Iterable[Mapping], key: str) -> list:
    return [row.get(key) for row in rows]


def _table(headings: Sequence[str], rows_html: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"


def _header(report: Mapping) -> str:
    scenario = report.get("scenario") or {}
    device = report.get("device") or {}
    model = report.get("model") or {}
    passed = (report.get("verdict") or {}).get("passed", False)
    badge = '<div class="badge pass">PASS</div>' if passed else '<div class="badge fail">FAIL</div>'
    if report.get("complete", True):
        banner = '<div class="banner complete">Complete run: every camera frame was replayed.</div>'
    else:
        reason = report.get("incomplete_reason") or "the run did not finish"
        banner = (
            '<div class="banner incomplete"><strong>Incomplete report</strong>: '
            f"{escape(str(reason))}. Metrics cover only the replayed part.</div>"
        )
    size = scenario.get("width"), scenario.get("height")
    facts = [
        ("Device", f"{device.get('name', '?')} ({device.get('id', '?')})"),
        ("Backend", report.get("backend", "?")),
        ("Model", model.get("name", "?")),
        ("Input size", f"{report.get('input_size', '?')} px"),
        ("Scenario", f"{scenario.get('frames', '?')} frames, {_text(scenario.get('duration_s'))}"
                     " s"),
        ("Camera", f"{size[0]}×{size[1]} at {_text(scenario.get('fps'))} fps"),
    ]
    fact_html = "".join(
        f'<div class="fact"><div class="k">{escape(k)}</div><div class="v">{escape(str(v))}</div>'
        "</div>"
        for k, v in facts
    )
    return (
        "<header><div>"
        f"<h1>{escape(str(scenario.get('name', 'scenario')))}</h1>"
        f'<div class="sub">arsim replay report · {escape(str(report.get("target", "simulator")))}'
        f" · {escape(str(report.get('schema', '')))}</div>"
        f"</div>{badge}</header>{banner}<div class=\"facts\">{fact_html}</div>"
    )


def _verdict_table(report: Mapping) -> str:
    verdict = report.get("verdict") or {}
    rows = []
    for check in verdict.get("checks") or []:
        state = "pass" if check["passed"] else "fail"
        rows.append(
            f'<tr class="{state}"><td>{escape(BUDGET_LABELS.get(check["name"], check["name"]))}'
            f'</td><td><code>{escape(check["name"])}</code></td>'
            f'<td class="num">{_text(check["value"])}</td>'
            f'<td class="num">{escape(check["op"])} {_text(check["limit"])}</td>'
            f'<td class="result">{state.upper()}</td></tr>'
        )
    budgets = report.get("budgets") or {}
    for name in verdict.get("skipped") or []:
        rows.append(
            f'<tr class="skipped"><td>{escape(BUDGET_LABELS.get(name, name))}</td>'
            f"<td><code>{escape(name)}</code></td><td class=\"num\">not measured</td>"
            f'<td class="num">{escape(budget_op(name))} {_text(budgets.get(name, "–"))}</td>'
            '<td class="result">SKIPPED</td>'
            "</tr>"
        )
    if not rows:
        return '<p class="empty">No budgets were checked.</p>'
    return _table(("Budget", "Name", "Measured", "Limit", "Result"), "".join(rows))


def _flatten(prefix: str, value: object) -> Iterable[tuple[str, object]]:
    """Nested mappings as ("a.b.c", value) pairs."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), item)
    else:
        yield prefix, value


def _key_value_table(data: Mapping, heading: str) -> str:
    rows = "".join(
        f'<tr><td><code>{escape(name)}</code></td><td class="num">'
        f"{'–' if value is None else _text(value)}</td></tr>"
        for name, value in _flatten("", data)
    )
    return _table((heading, "Value"), rows)


def _metrics_table(metrics: Mapping) -> str:
    return _key_value_table(metrics, "Metric")


def _pipeline(report: Mapping) -> str:
    """What the temporal stages did: input size switches and face priority."""
    parts = []
    changes = report.get("size_changes") or []
    if changes:
        rows = "".join(
            f'<tr><td class="num">{_text(c.get("t"))}</td><td class="num">{_text(c.get("from"))}'
            f'</td><td class="num">{_text(c.get("to"))}</td><td>{_text(c.get("reason", ""))}'
            "</td></tr>"
            for c in changes
        )
        parts.append(_table(("Time (s)", "From", "To", "Why"), rows))
    if report.get("face"):
        parts.append(_key_value_table(report["face"], "Face priority"))
    if report.get("face_detections"):
        parts.append(f'<div class="plots">{_face_timeline(report["face_detections"])}</div>')
    return "".join(parts) or '<p class="empty">No input size changes; face priority off.</p>'


def _face_timeline(detections: Sequence[Mapping]) -> str:
    """Detector hits (dots: time, score) and the span the face box was tracked (line at
    the score it carries; broken where no frame had a box)."""
    fresh = [d for d in detections if d.get("kind") == "detection"]
    xs: list[float] = []
    ys: list[float | None] = []
    previous = None
    for d in detections:
        if previous is not None and d.get("frame") != previous + 1:
            xs.append(float(d["t"]))
            ys.append(None)  # a gap: no box on the frames between
        xs.append(float(d["t"]))
        ys.append(d.get("score"))
        previous = d.get("frame")
    chart = line_chart(
        [Series("tracked box", xs, ys, "#94a3b8"),
         Series("detection", [d["t"] for d in fresh], [d.get("score") for d in fresh],
                "#db2777", dots=True)],
        x_label="capture time (s)", y_label="score", description="face detections",
    )
    return _figure(f"Face detections ({len(fresh)} detector hits, {len(detections)} frames "
                   "with a box)", chart)


def _frame_size(report: Mapping) -> tuple[int, int] | None:
    scenario = report.get("scenario") or {}
    width, height = scenario.get("width"), scenario.get("height")
    ok = all(isinstance(v, int) and v > 0 for v in (width, height))
    return (width, height) if ok else None


def _face_box_svg(entry: Mapping | None, frame_w: int, frame_h: int) -> str:
    """An SVG overlay (frame pixel coordinates) with the frame's face box, or ""."""
    if not entry or not entry.get("box") or frame_w <= 0 or frame_h <= 0:
        return ""
    x, y, w, h = (float(v) for v in entry["box"])
    kind = str(entry.get("kind", ""))
    colour = "#db2777" if kind == "detection" else "#f59e0b"
    title = f"face {kind}, score {format_number(entry.get('score'))}"
    return (
        f'<svg class="face-box" viewBox="0 0 {frame_w} {frame_h}" preserveAspectRatio="none">'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="none" '
        f'stroke="{colour}" stroke-width="{max(2.0, frame_w / 160):.1f}">'
        f"<title>{escape(title)}</title></rect></svg>"
    )


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"


def _plots(report: Mapping) -> str:
    display = report.get("display") or []
    series = report.get("series") or {}
    budgets = report.get("budgets") or {}
    kill_limit = (report.get("device") or {}).get("kill_limit_mb")
    display_t = _column(display, "t")

    def guide(name: str, label: str, colour: str = "#dc2626") -> list[Guide]:
        value = budgets.get(name)
        return [Guide(float(value), label, colour)] if value is not None else []

    # a refresh (a new result re-projected to a pose already on screen) is no new frame
    fps_t, fps = rolling_fps(
        [d["t"] for d in display if d.get("t") is not None and not d.get("refresh")]
    )
    oom_markers = [
        Marker(float(e["t"]), f"OOM at {format_number(e['t'])} s: {e.get('cause', '')}")
        for e in report.get("oom_events") or []
        if e.get("t") is not None
    ]
    memory_guides = guide("max_memory_mb", "budget", "#d97706")
    if kill_limit is not None:
        memory_guides.append(Guide(float(kill_limit), "kill limit", "#b91c1c"))
    figures = [
        _figure(
            "Display FPS (rolling 1 s window)",
            line_chart([Series("display FPS", fps_t, fps)], x_label="time (s)",
                       y_label="frames per second", guides=guide("min_display_fps", "minimum")),
        ),
        _figure(
            "Motion-to-photon latency per displayed frame",
            line_chart([Series("latency", display_t, _column(display, "latency_ms"))],
                       x_label="display time (s)", y_label="latency (ms)",
                       guides=guide("max_latency_p95_ms", "p95 budget")),
        ),
        _figure(
            "Memory footprint",
            line_chart([Series("memory", series.get("t", []), series.get("memory_mb", []))],
                       x_label="time (s)", y_label="memory (MB)", guides=memory_guides,
                       markers=oom_markers, marker_legend="OOM", y_from_zero=False),
        ),
        _figure(
            "Thermal latency factor",
            line_chart(
                [Series("thermal factor", series.get("t", []), series.get("thermal_factor", []),
                        "#7c3aed")],
                x_label="time (s)", y_label="factor (× cool latency)", y_from_zero=False,
            ),
        ),
        _figure(
            "Flicker: warping error per displayed frame",
            line_chart([Series("warp error", display_t, _column(display, "warp_error"),
                               "#0891b2")],
                       x_label="display time (s)", y_label="warp error",
                       guides=guide("max_flicker", "budget")),
        ),
    ]
    return f'<div class="plots">{"".join(figures)}</div>'


def _oom_table(events: Sequence[Mapping]) -> str:
    if not events:
        return '<p class="empty">No out-of-memory events.</p>'
    rows = "".join(
        f'<tr><td class="num">{_text(e.get("t"))}</td><td class="num">{_text(e.get("memory_mb"))}'
        f'</td><td class="num">{_text(e.get("limit_mb"))}</td><td>{_text(e.get("cause", ""))}</td>'
        f"<td>{_text(e.get('source', ''))}</td></tr>"
        for e in events
    )
    return _table(("Time (s)", "Memory (MB)", "Limit (MB)", "Cause", "Source"), rows)


def jpeg_data_uri(rgb: np.ndarray, width: int = THUMBNAIL_WIDTH, quality: int = 82) -> str:
    """A ``data:image/jpeg;base64,…`` URI of ``rgb`` (uint8 or [0,1] float), ``width`` px wide."""
    image = rgb if rgb.dtype == np.uint8 else np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _thumbnails(
    thumbnails: Sequence[tuple[int, np.ndarray, np.ndarray]],
    face_detections: Sequence[Mapping] = (),
    frame_size: tuple[int, int] | None = None,
) -> str:
    """Input/output pairs; with face priority, the frame's face box (in ``frame_size``
    pixels, default each image's own) drawn on both."""
    if not thumbnails:
        return '<p class="empty">No thumbnails were recorded.</p>'
    faces = {d.get("frame"): d for d in face_detections}
    cells = []
    for frame_index, input_rgb, output_rgb in thumbnails:
        face = faces.get(int(frame_index))
        images = "".join(
            f'<div><div class="shot"><img src="{jpeg_data_uri(image)}" '
            f'width="{THUMBNAIL_WIDTH}" alt="{kind}">'
            f"{_face_box_svg(face, *(frame_size or (image.shape[1], image.shape[0])))}</div>"
            f'<div class="cap">{kind}</div></div>'
            for kind, image in (("input", input_rgb), ("output", output_rgb))
        )
        cells.append(
            f'<div class="thumb"><div class="pair">{images}</div>'
            f'<div class="cap">frame {int(frame_index)}</div></div>'
        )
    return f'<div class="thumbs">{"".join(cells)}</div>'


def _settings_table(settings: Mapping) -> str:
    if not settings:
        return '<p class="empty">No settings recorded.</p>'
    return _key_value_table(settings, "Setting")


def _clock_note(report: Mapping) -> str:
    if report.get("target", "simulator") == "simulator":
        return ("Timings are on the simulated device's virtual clock; only host time depends on"
                " this machine.")
    return f"Timings were measured on the {escape(str(report['target']))} target's own clock."


def render_html(
    report: Mapping, thumbnails: Sequence[tuple[int, np.ndarray, np.ndarray]] = ()
) -> str:
    """The whole ``report.html`` page as text."""
    scenario_name = str((report.get("scenario") or {}).get("name", "scenario"))
    host = report.get("host") or {}
    wall_s = host.get("wall_s")
    timed = isinstance(wall_s, int | float) and math.isfinite(wall_s)
    wall = f" in {format_number(wall_s)} s of host time" if timed else ""
    body = "".join(
        [
            _header(report),
            "<h2>Verdict</h2>",
            _verdict_table(report),
            "<h2>Plots</h2>",
            _plots(report),
            "<h2>Out-of-memory events</h2>",
            _oom_table(report.get("oom_events") or []),
            "<h2>Pipeline</h2>",
            _pipeline(report),
            "<h2>Input and output</h2>",
            _thumbnails(thumbnails, report.get("face_detections") or [], _frame_size(report)),
            "<h2>Metrics</h2>",
            _metrics_table(report.get("metrics") or {}),
            "<h2>Settings</h2>",
            _settings_table(report.get("settings") or {}),
            f"<footer>Generated by {escape(str(report.get('generated_by', 'arsim')))}"
            f"{escape(wall)}. {_clock_note(report)}</footer>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>arsim · {escape(scenario_name)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def write_html(
    report: Mapping, path: Path, thumbnails: Sequence[tuple[int, np.ndarray, np.ndarray]] = ()
) -> None:
    """Write ``report.html`` (atomically)."""
    write_atomic(Path(path), render_html(report, thumbnails).encode("utf-8"))
