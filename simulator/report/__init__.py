"""Report writers: ``report.json``, ``report.html`` and ``junit.xml`` from one report dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from simulator.output_paths import prepare_output_dir, writing
from simulator.report.html import write_html
from simulator.report.json_report import SCHEMA, write_json
from simulator.report.junit import write_junit

__all__ = ["SCHEMA", "write_html", "write_json", "write_junit", "write_reports"]

REPORT_FILES = {"json": "report.json", "html": "report.html", "junit": "junit.xml"}


def write_reports(
    report: Mapping,
    out_dir: Path,
    thumbnails: Sequence[tuple[int, np.ndarray, np.ndarray]] = (),
) -> dict[str, Path]:
    """Write all three reports into ``out_dir`` (created if missing); return their paths.
    Each file is written atomically; a write error is an ``OutputError`` naming the file."""
    out_dir = prepare_output_dir(out_dir)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    with writing(paths["json"]):
        write_json(report, paths["json"])
    with writing(paths["html"]):
        write_html(report, paths["html"], thumbnails)
    with writing(paths["junit"]):
        write_junit(report, paths["junit"])
    return paths
