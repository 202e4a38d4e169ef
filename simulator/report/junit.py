"""``junit.xml``: one test case per budget check, for CI dashboards.

The suite is named ``arsim.<scenario>.<device>.<backend>``; a failed check carries
``<failure message="value X, limit OP Y">``; a budget that was not judged (its metric was not
measured) is a ``<skipped>`` case; an incomplete report adds a failing case ``complete``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from simulator.report.json_report import write_atomic


def format_number(value: object) -> str:
    """A short, readable number (4 significant digits); other values as text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    return f"{value:.4g}"


def suite_name(report: Mapping) -> str:
    """``arsim.<scenario>.<device>.<backend>``."""
    scenario = (report.get("scenario") or {}).get("name", "unknown")
    device = (report.get("device") or {}).get("id", "unknown")
    return f"arsim.{scenario}.{device}.{report.get('backend', 'unknown')}"


def build_junit(report: Mapping) -> ET.Element:
    """The ``<testsuites>`` element for ``report``."""
    name = suite_name(report)
    verdict = report.get("verdict") or {}
    checks = verdict.get("checks") or []
    skipped_names = verdict.get("skipped") or []
    wall_s = (report.get("host") or {}).get("wall_s") or 0.0

    suite = ET.Element("testsuite", name=name, time=f"{wall_s:.3f}")
    properties = ET.SubElement(suite, "properties")
    model = (report.get("model") or {}).get("name")
    for key, value in (("model", model), ("input_size", report.get("input_size"))):
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=str(value))

    failures = 0
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=name, name=str(check["name"]))
        if not check["passed"]:
            failures += 1
            message = (
                f"value {format_number(check['value'])}, "
                f"limit {check['op']} {format_number(check['limit'])}"
            )
            ET.SubElement(case, "failure", message=message)
    for skipped in skipped_names:
        case = ET.SubElement(suite, "testcase", classname=name, name=str(skipped))
        ET.SubElement(case, "skipped", message="metric not measured in this run")
    if not report.get("complete", True):
        failures += 1
        case = ET.SubElement(suite, "testcase", classname=name, name="complete")
        reason = report.get("incomplete_reason") or "run did not finish"
        ET.SubElement(case, "failure", message=f"incomplete report: {reason}")

    tests = len(suite.findall("testcase"))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(len(skipped_names)))
    root = ET.Element(
        "testsuites", name="arsim", tests=str(tests), failures=str(failures), errors="0"
    )
    root.append(suite)
    return root


def write_junit(report: Mapping, path: Path) -> None:
    """Write ``junit.xml`` for ``report`` (atomically)."""
    tree = ET.ElementTree(build_junit(report))
    ET.indent(tree)
    data = ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True)
    write_atomic(Path(path), data + b"\n")
