"""The verdict table printed by ``arsim run``."""

from __future__ import annotations


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_verdict(report: dict) -> str:
    m = report["metrics"]
    head = (
        f"{report['scenario']['name']} on {report['device']['id']} ({report['backend']}), "
        f"model {report['model']['name']} @ {report['input_size']}"
    )
    rows = [("check", "value", "limit", "result")]
    for c in report["verdict"]["checks"]:
        rows.append(
            (c["name"], _fmt(c["value"]), f"{c['op']} {_fmt(c['limit'])}",
             "pass" if c["passed"] else "FAIL")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    table.insert(1, "  ".join("-" * w for w in widths))
    skipped = report["verdict"].get("skipped") or []
    verdict = "PASS" if report["verdict"]["passed"] else "FAIL"
    if not report["complete"]:
        verdict += " (INCOMPLETE)"
    def rate(key: str) -> str:
        value = m.get(key)
        return "-" if value is None else f"{value:.2f}"

    summary = (
        f"display {rate('display_fps')} FPS, inference {rate('inference_fps')} FPS, "
        f"{_fmt(m.get('stylized_frames'))} stylized / {_fmt(m.get('displayed_frames'))} shown / "
        f"{_fmt(m.get('dropped_frames'))} dropped, {len(report['oom_events'])} OOM"
    )
    if m.get("reused_frames") or m.get("skipped_frames") or report.get("size_changes"):
        sizes = " -> ".join(str(c["to"]) for c in report.get("size_changes", []))
        summary += (
            f"\nreuse: {m.get('reused_frames', 0)} warped reuses, {m['skipped_frames']} skipped"
            f" inferences; {m.get('resized_inferences', 0)} inferences resized"
            + (f" (size {report['input_size']} -> {sizes})" if sizes else "")
        )
    prediction = report.get("prediction")
    if prediction:
        def span(key: str) -> str:
            low, high = prediction[key]
            return f"[{_fmt(low)}, {_fmt(high)}]"

        summary += (f"\npredicted ({prediction['level']:.0%} from the calibration's standard"
                    f" errors): display FPS {span('display_fps')}, latency p50"
                    f" {span('latency_p50_ms')} ms")
    lines = [head, summary, "", *table]
    if skipped:
        lines.append(f"(not judged: {', '.join(skipped)})")
    lines += ["", f"verdict: {verdict}"]
    return "\n".join(lines)
