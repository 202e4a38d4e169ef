"""``arsim matrix``: every scenario x device x model x settings, one summary.

Runs are grouped by (scenario, model): a group's runs go to one process one after the other,
so that the devices and settings after the first reuse its decoded frames and model outputs
(and flow and flicker) from the process's work cache (simulator/work_cache.py) instead of
repeating them; with a disk cache, groups in other processes and later matrices reuse them too.

Executors (``--executor``):
- ``local`` (default): the groups over a process pool sized to the cores, each worker's ONNX
  Runtime threads set so that the pool does not oversubscribe (a single group runs in this
  process). Each run's record comes back as the run ends (progress per run). A worker that
  dies takes its group's unfinished runs with it; they are run once more in a fresh pool,
  and reported as errors if they fail again.
- ``ray`` (simulator/matrix_ray.py): the same groups as tasks of Ray actors on a cluster.

Every run writes its usual ``report.json``/``.html``/``junit.xml`` to
``OUT/<scenario>/<device>/<model>/<settings>/``; the matrix writes ``summary.json``,
``index.html`` (the table, each row linking its run's report) and one ``junit.xml`` with each
run's suite. ``summary.json`` lists the runs in plan order whatever order they finished in,
so that two executors' summaries compare equal (``comparable``).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import queue
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from simulator import signals
from simulator.errors import InputError
from simulator.report.json_report import write_atomic
from simulator.report.junit import build_junit, format_number

SCHEMA = "arsim-matrix/1"


@dataclass(frozen=True)
class MatrixRun:
    """One cell of the matrix: what to replay, and the folder (relative to OUT) it writes."""

    scenario: str  # a scenario folder or .zip
    device: str
    model: str
    settings_name: str  # "default" or the settings file's stem
    settings_file: str | None  # pipeline settings (.toml / .json); None: the defaults
    folder: str

    @property
    def label(self) -> str:
        return f"{Path(self.scenario).name} on {self.device} ({self.model}, {self.settings_name})"


@dataclass(frozen=True)
class MatrixOptions:
    """What every run shares (the ``arsim run`` flags that are not matrix axes)."""

    backend: str = "cpu"
    input_size: int | None = None
    timing_only: bool = False
    host_runtime: str = "ort-cpu"
    cache_dir: str | None = None  # the disk tier (None: memory only)
    cache: bool = True  # False: --no-cache
    cache_disk_mb: float = 4096.0


@dataclass
class RunRecord:
    """What a run came to: ``status`` passed / failed (a budget) / incomplete / error."""

    run: MatrixRun
    status: str
    checks_failed: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    error: str | None = None
    wall_s: float = 0.0
    attempts: int = 1
    interrupted_by: int | None = None  # the signal that stopped this run (not in the summary)


def plan(scenarios: Sequence[str], devices: Sequence[str], models: Sequence[str],
         settings_files: Sequence[str]) -> list[MatrixRun]:
    """Every combination, in that order; folder names made unique."""
    named = [("default", None)] if not settings_files else \
        [(Path(f).stem, str(f)) for f in settings_files]
    runs, seen = [], set()
    for scenario in scenarios:
        for model in models:
            for device in devices:
                for settings_name, settings_file in named:
                    parts = [Path(scenario).stem, Path(device).stem, Path(model).stem,
                             settings_name]
                    folder = "/".join(parts)
                    suffix = 2
                    while folder in seen:  # two files of one name in different folders
                        folder = "/".join([*parts[:-1], f"{settings_name}-{suffix}"])
                        suffix += 1
                    seen.add(folder)
                    runs.append(MatrixRun(scenario, device, model, folder.split("/")[-1],
                                          settings_file, folder))
    return runs


def check_inputs(runs: Sequence[MatrixRun], options: MatrixOptions) -> None:
    """Every scenario, device, model and settings file checked before any run (InputError)."""
    from simulator.device.catalog import load_profile
    from simulator.pipeline.settings import load_settings
    from simulator.scenario.load import load_scenario
    from simulator.zoo.registry import resolve_model

    for scenario in sorted({r.scenario for r in runs}):
        with load_scenario(scenario):
            pass
    for device in sorted({r.device for r in runs}):
        load_profile(device).backend(options.backend)
    for model in sorted({r.model for r in runs}):
        card = resolve_model(model).card
        size = options.input_size or card.input.default_size
        problem = card.input.size_problem(size)
        if problem:
            raise InputError("--input-size", f"{problem} (model {model})")
    for settings_file in sorted({r.settings_file for r in runs if r.settings_file}):
        load_settings(settings_file)


def groups(runs: Sequence[MatrixRun]) -> list[list[MatrixRun]]:
    """Runs sharing a scenario and a model (their frames and model outputs), in plan order."""
    by_key: dict[tuple[str, str], list[MatrixRun]] = {}
    for run in runs:
        by_key.setdefault((run.scenario, run.model), []).append(run)
    return list(by_key.values())


# --- running -------------------------------------------------------------------------------

def run_group(group: Sequence[MatrixRun], out: str, options: MatrixOptions, threads: int,
              on_record: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
    """The group's runs one after the other in this process, sharing its work cache."""
    records = []
    for run in group:
        record = run_one(run, Path(out), options, threads)
        records.append(record)
        if on_record is not None:
            on_record(record)
        if record.interrupted_by is not None:  # the matrix stops with the run it was in
            raise signals.interruption(record.interrupted_by)
    return records


def run_one(run: MatrixRun, out: Path, options: MatrixOptions, threads: int) -> RunRecord:
    """One replay; an input problem found only now (a corrupt video frame, say) is this
    run's error, not the matrix's end."""
    from simulator.pipeline.settings import PipelineSettings, load_settings
    from simulator.run import RunSettings, run_scenario
    from simulator.work_cache import DEFAULT_MEMORY_MB, shared_cache

    started = time.perf_counter()
    try:
        pipeline = load_settings(run.settings_file) if run.settings_file else PipelineSettings()
        settings = RunSettings(device=run.device, backend=options.backend, model=run.model,
                               input_size=options.input_size, pipeline=pipeline,
                               threads=threads, timing_only=options.timing_only,
                               host_runtime=options.host_runtime)
        cache = None
        if options.cache:
            cache = shared_cache(Path(options.cache_dir) if options.cache_dir else None,
                                 memory_bytes=DEFAULT_MEMORY_MB << 20,
                                 disk_bytes=int(options.cache_disk_mb * 2**20))
        outcome = run_scenario(run.scenario, settings, out / run.folder, cache=cache)
    except InputError as exc:
        return RunRecord(run, "error", error=str(exc), wall_s=time.perf_counter() - started)
    record = record_of(run, outcome.report, time.perf_counter() - started)
    return replace(record, interrupted_by=outcome.interrupted_by)


def record_of(run: MatrixRun, report: dict, wall_s: float) -> RunRecord:
    """The summary row of a run's report."""
    metrics = report.get("metrics") or {}
    flicker = metrics.get("flicker") or {}
    row = {
        "display_fps": metrics.get("display_fps"),
        "latency_p95_ms": (metrics.get("latency_ms") or {}).get("p95"),
        "jank_pct": metrics.get("jank_pct"),
        "warp_error": flicker.get("warp_error"),
        "memory_peak_mb": metrics.get("memory_peak_mb"),
        "oom_events": len(report.get("oom_events") or []),
    }
    failed = [c["name"] for c in (report.get("verdict") or {}).get("checks", [])
              if not c["passed"]]
    if not report.get("complete", False):
        return RunRecord(run, "incomplete", failed, row, report.get("incomplete_reason"),
                         wall_s)
    status = "passed" if report["verdict"]["passed"] else "failed"
    return RunRecord(run, status, failed, row, wall_s=wall_s)


def pool_plan(n_groups: int, workers: int | None) -> tuple[int, int]:
    """(processes, ONNX Runtime threads each): as many processes as groups up to the cores,
    the cores shared out among them."""
    cores = os.cpu_count() or 1
    processes = max(1, min(n_groups, workers or cores))
    return processes, max(1, cores // processes)


class LocalExecutor:
    """Groups over a process pool (see the module docstring)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    def run(self, runs: Sequence[MatrixRun], out: Path, options: MatrixOptions,
            on_record: Callable[[RunRecord], None]) -> None:
        todo = groups(runs)
        processes, threads = pool_plan(len(todo), self.workers)
        if processes == 1:
            for group in todo:
                run_group(group, str(out), options, threads, on_record)
            return
        recorded: set[MatrixRun] = set()

        def record_once(record: RunRecord) -> None:
            # a run's record comes as it ends and again with its group's result
            if record.run not in recorded:
                recorded.add(record.run)
                on_record(record)

        lost = self._pool(todo, out, options, processes, threads, record_once)
        # once more, in a fresh pool: the runs a dead worker had not finished
        lost = [unfinished for g in lost if (unfinished := [r for r in g if r not in recorded])]
        if lost:
            lost = self._pool(lost, out, options, processes, threads,
                              lambda record: record_once(replace(record, attempts=2)))
        for run in (r for g in lost for r in g if r not in recorded):
            on_record(RunRecord(run, "error", error="its worker process died twice",
                                attempts=2))

    @staticmethod
    def _pool(todo: list[list[MatrixRun]], out: Path, options: MatrixOptions, processes: int,
              threads: int, on_record: Callable[[RunRecord], None]) -> list[list[MatrixRun]]:
        """Run ``todo``; returns the groups whose worker died. Each run's record comes back
        as the run ends, through a queue (progress per run, not per group), and again with
        its group's result (a record the queue lost is still counted)."""
        lost = []
        context = get_context("spawn")
        finished = context.Queue()
        pool = ProcessPoolExecutor(processes, mp_context=context,
                                   initializer=_report_runs_to, initargs=(finished,))

        def drain() -> None:
            with contextlib.suppress(queue.Empty):
                while True:
                    on_record(finished.get_nowait())

        try:
            futures = {pool.submit(_run_group_reporting, g, str(out), options, threads): g
                       for g in todo}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    try:
                        group_records = future.result()
                    except BrokenProcessPool:
                        lost.append(futures[future])
                        continue
                    for record in group_records:
                        on_record(record)
        except BaseException:
            # Ctrl-C / SIGTERM: no worker outlives the matrix (the pool's own shutdown
            # would wait for the running replays)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            finished.close()
        pool.shutdown(wait=True)
        return lost


_finished_runs = None  # in a pool worker: the queue its run records go to as each run ends


def _report_runs_to(finished) -> None:
    global _finished_runs
    _finished_runs = finished


def _run_group_reporting(group: Sequence[MatrixRun], out: str, options: MatrixOptions,
                         threads: int) -> list[RunRecord]:
    return run_group(group, out, options, threads, _finished_runs.put)


# --- the summary ---------------------------------------------------------------------------

@dataclass
class MatrixSummary:
    runs: list[RunRecord]
    executor: str
    complete: bool = True
    incomplete_reason: str | None = None
    interrupted_by: int | None = None  # the signal that stopped the matrix
    wall_s: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "incomplete": 0, "error": 0}
        for record in self.runs:
            counts[record.status] += 1
        return counts

    def as_dict(self) -> dict:
        return {
            "schema": SCHEMA, "complete": self.complete,
            "incomplete_reason": self.incomplete_reason, "executor": self.executor,
            "counts": self.counts, "wall_s": self.wall_s,
            "runs": [{**asdict(r.run), "status": r.status, "checks_failed": r.checks_failed,
                      "metrics": r.metrics, "error": r.error, "wall_s": r.wall_s,
                      "attempts": r.attempts,
                      "report": f"{r.run.folder}/report.json" if r.status != "error" else None}
                     for r in self.runs],
        }


def comparable(summary: dict) -> dict:
    """A summary without what depends on the host or executor (times, attempts): two
    executors' summaries of one matrix are equal."""
    return {**{k: v for k, v in summary.items() if k not in ("wall_s", "executor")},
            "runs": [{k: v for k, v in run.items() if k not in ("wall_s", "attempts")}
                     for run in summary["runs"]]}


def exit_code(summary: MatrixSummary) -> int:
    """0 all passed; 1 a budget failed; 3 a run ended incomplete or in error; 128 + signal
    when the matrix itself was stopped (Ctrl-C, SIGTERM)."""
    if not summary.complete:
        return 128 + (summary.interrupted_by or 2)
    counts = summary.counts
    if counts["incomplete"] or counts["error"]:
        return 3
    return 1 if counts["failed"] else 0


COLUMNS = (("display_fps", "FPS"), ("latency_p95_ms", "p95 ms"), ("jank_pct", "jank %"),
           ("warp_error", "flicker"), ("memory_peak_mb", "memory MB"), ("oom_events", "OOM"))


def _row_cells(record: RunRecord) -> list[str]:
    run = record.run
    return [Path(run.scenario).name, run.device, run.model, run.settings_name,
            record.status.upper(), *(format_number(record.metrics.get(k)) if record.metrics
                                     else "" for k, _ in COLUMNS),
            record.error or ", ".join(record.checks_failed)]


HEADINGS = ["scenario", "device", "model", "settings", "result", *(h for _, h in COLUMNS),
            "failed checks / error"]


def print_outcome(summary: MatrixSummary, paths: dict[str, Path],
                  notes: Sequence[str] = ()) -> int:
    """What a matrix command prints at its end (the table, ``notes``, the files written, why
    it is incomplete) and its exit code: the one ending of ``arsim matrix`` and ``arsim
    device matrix``."""
    print(format_table(summary))
    for note in notes:
        print(f"    {note}")
    for kind, path in paths.items():
        print(f"{kind:>8}: {path}")
    if not summary.complete:
        print(f"incomplete: {summary.incomplete_reason}", file=sys.stderr)
    return exit_code(summary)


def format_table(summary: MatrixSummary) -> str:
    """The terminal table."""
    rows = [HEADINGS, *(_row_cells(r) for r in summary.runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADINGS) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(HEADINGS[-1]))
    counts = summary.counts
    lines.append(f"{len(summary.runs)} runs: " + ", ".join(
        f"{n} {k}" for k, n in counts.items() if n) + f" ({summary.wall_s:.1f} s)")
    if not summary.complete:
        lines.append(f"incomplete: {summary.incomplete_reason}")
    return "\n".join(lines)


def write_summary(summary: MatrixSummary, out: Path, reports: dict[str, dict]) -> dict[str,
                                                                                        Path]:
    """``summary.json``, ``index.html`` and ``junit.xml`` in ``out``; ``reports``: each run's
    report by folder (for the JUnit suites)."""
    data = summary.as_dict()
    paths = {"json": out / "summary.json", "html": out / "index.html",
             "junit": out / "junit.xml"}
    write_atomic(paths["json"], (json.dumps(data, indent=1) + "\n").encode())
    write_atomic(paths["html"], _html(summary).encode())
    tree = ET.ElementTree(_junit(summary, reports))
    ET.indent(tree)
    write_atomic(paths["junit"], ET.tostring(tree.getroot(), encoding="utf-8",
                                             xml_declaration=True) + b"\n")
    return paths


def _junit(summary: MatrixSummary, reports: dict[str, dict]) -> ET.Element:
    """One ``<testsuites>``: each run's own suite (as its ``junit.xml``), named with its
    model and settings; a run in error is a suite with one error case."""
    root = ET.Element("testsuites", name="arsim matrix")
    tests = failures = errors = 0
    for record in summary.runs:
        run = record.run
        report = reports.get(run.folder)
        if report is None:
            suite = ET.SubElement(root, "testsuite", name=f"arsim.{run.folder}", tests="1",
                                  errors="1", failures="0")
            case = ET.SubElement(suite, "testcase", classname=f"arsim.{run.folder}",
                                 name="run")
            ET.SubElement(case, "error", message=record.error or "no report")
            tests, errors = tests + 1, errors + 1
            continue
        for suite in build_junit(report):
            suite.set("name", f"{suite.get('name')}.{run.model}.{run.settings_name}")
            for case in suite.iter("testcase"):
                case.set("classname", suite.get("name"))
            tests += int(suite.get("tests", 0))
            failures += int(suite.get("failures", 0))
            root.append(suite)
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    return root


def _html(summary: MatrixSummary) -> str:
    def cell(text: str) -> str:
        return f"<td>{html.escape(text)}</td>"

    rows = []
    for record in summary.runs:
        cells = _row_cells(record)
        link = f"{record.run.folder}/report.html"
        first = f'<td><a href="{html.escape(link)}">{html.escape(cells[0])}</a></td>' \
            if record.status != "error" else cell(cells[0])
        rows.append(f'<tr class="{record.status}">{first}'
                    + "".join(cell(c) for c in cells[1:]) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADINGS)
    counts = ", ".join(f"{n} {k}" for k, n in summary.counts.items() if n)
    state = "" if summary.complete else \
        f"<p class='incomplete'>incomplete: {html.escape(summary.incomplete_reason or '')}</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>arsim matrix</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd;
text-align: left; }} tr.failed td, tr.error td, tr.incomplete td {{ background: #fde8e8; }}
tr.passed td:nth-child(5) {{ color: #176d2c; }} .incomplete {{ color: #a00; }}
</style></head><body>
<h1>arsim matrix</h1>
<p>{len(summary.runs)} runs ({html.escape(counts)}), executor {html.escape(summary.executor)},
{summary.wall_s:.1f} s. Each scenario links its run's report.</p>{state}
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def run_matrix(runs: Sequence[MatrixRun], out: Path, options: MatrixOptions, executor,
               progress: Callable[[RunRecord, int, int], None] | None = None,
               ) -> tuple[MatrixSummary, dict[str, Path]]:
    """Run ``runs`` with ``executor`` and write the summary (also when Ctrl-C / SIGTERM stops
    the matrix: the runs that finished, marked incomplete)."""
    records: list[RunRecord] = []
    started = time.perf_counter()

    def on_record(record: RunRecord) -> None:
        records.append(record)
        if progress is not None:
            progress(record, len(records), len(runs))

    summary = MatrixSummary([], executor.name)
    try:
        executor.run(runs, out, options, on_record)
    except KeyboardInterrupt as exc:
        summary.complete = False
        summary.incomplete_reason = f"{signals.reason(exc)} after {len(records)} of " \
                                    f"{len(runs)} runs"
        summary.interrupted_by = signals.signal_of(exc)
    summary.wall_s = time.perf_counter() - started
    order = {run: i for i, run in enumerate(runs)}
    summary.runs = sorted(records, key=lambda r: order[r.run])
    reports = {}
    for record in summary.runs:
        path = out / record.run.folder / "report.json"
        if record.status != "error" and path.is_file():
            reports[record.run.folder] = json.loads(path.read_text())
    return summary, write_summary(summary, out, reports)

