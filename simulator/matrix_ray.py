"""``arsim matrix --executor ray``: the matrix's groups as tasks of Ray actors on a cluster.

- Each actor (``GroupRunner``) is a long-lived process on some node with its own work cache
  and stylizer sessions (simulator/run.py keeps the last ones loaded), so a group's devices and
  settings reuse its frames and model outputs, and the next group of the same model reuses its
  session. The disk cache is ``--cache`` on each node, where that path is writable.
- Scenarios go through the object store: the caller packs each one once (a stored zip) and
  ``ray.put``s it; an actor whose node sees the scenario's path (this machine, shared storage)
  reads it there, any other unpacks the zip (simulator/scenario/archive.py checks it).
- Reports come back to the caller: the actor replays into a temporary folder and returns the
  files' bytes, which the caller writes under ``OUT`` as the local executor would.
- An actor that dies (its node lost, its process killed) is restarted once and its group run
  again (``max_restarts``/``max_task_retries``); a group that fails twice is reported, run by
  run, as errors: no run is silently lost.

Without ``--address`` a local Ray instance is started for the matrix and stopped after it.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from simulator.errors import InputError
from simulator.matrix import MatrixOptions, MatrixRun, RunRecord, groups, run_one
from simulator.output_paths import writing
from simulator.report.json_report import write_atomic

REPORT_FILES = ("report.json", "report.html", "junit.xml")


def pack(scenario: str) -> bytes:
    """A scenario folder as a stored zip (its video is compressed already); a ``.zip`` as is."""
    path = Path(scenario)
    if path.is_file():
        return path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


class GroupRunner:
    """A Ray actor's body: runs groups, returns each run's record and report files."""

    def __init__(self, options: MatrixOptions, threads: int) -> None:
        self.options, self.threads = options, threads
        self.scratch = Path(tempfile.mkdtemp(prefix="arsim-ray-"))
        self.unpacked: dict[str, str] = {}

    def run_group(self, group: Sequence[MatrixRun], packed: bytes
                  ) -> list[tuple[RunRecord, dict[str, bytes]]]:
        import ray

        local = group[0].scenario
        if not Path(local).exists():  # not on this node: the shipped copy
            if local not in self.unpacked:
                target = self.scratch / f"scenario-{len(self.unpacked)}.zip"
                target.write_bytes(packed)
                self.unpacked[local] = str(target)
            local = self.unpacked[local]
        retried = ray.get_runtime_context().was_current_actor_reconstructed
        results = []
        for run in group:
            out = Path(tempfile.mkdtemp(dir=self.scratch))
            record = run_one(replace(run, scenario=local, folder="run"), out, self.options,
                             self.threads)
            files = {name: (out / "run" / name).read_bytes() for name in REPORT_FILES
                     if (out / "run" / name).is_file()}
            results.append((replace(record, run=run, attempts=2 if retried else 1), files))
        return results

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """See the module docstring. ``workers``: actors (default: the cluster's CPUs, at most
    one per group)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address, self.workers = address, workers

    def run(self, runs: Sequence[MatrixRun], out: Path, options: MatrixOptions,
            on_record: Callable[[RunRecord], None]) -> None:
        ray = _import_ray()
        _connect(ray, self.address)
        actors = []
        try:
            todo = groups(runs)
            cpus = int(ray.cluster_resources().get("CPU", 1))
            n_actors = max(1, min(len(todo), self.workers or cpus))
            # an actor's threads are CPUs it reserves, on one node: no more than a node has
            node_cpus = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes()
                             if n.get("Alive")), default=1)
            threads = max(1, min(cpus // n_actors, node_cpus))
            remote = ray.remote(num_cpus=threads, max_restarts=1,
                                max_task_retries=1)(GroupRunner)
            actors = [remote.remote(options, threads) for _ in range(n_actors)]
            packed = {s: ray.put(pack(s)) for s in {g[0].scenario for g in todo}}
            pending: dict = {}
            idle = list(actors)
            queue = list(todo)
            while queue or pending:
                while queue and idle:
                    group, actor = queue.pop(0), idle.pop()
                    pending[actor.run_group.remote(group, packed[group[0].scenario])] = \
                        (group, actor)
                done, _ = ray.wait(list(pending), num_returns=1)
                group, actor = pending.pop(done[0])
                idle.append(actor)
                try:
                    results = ray.get(done[0])
                except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError,
                        ray.exceptions.WorkerCrashedError) as exc:
                    for run in group:
                        on_record(RunRecord(run, "error", attempts=2,
                                            error=f"its Ray worker failed: {_first_line(exc)}"))
                    continue
                for record, files in results:
                    folder = out / record.run.folder
                    with writing(folder):
                        folder.mkdir(parents=True, exist_ok=True)
                        for name, data in files.items():
                            write_atomic(folder / name, data)
                    on_record(record)
        finally:
            for actor in actors:
                ray.kill(actor)
            ray.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray", "Ray is not installed (pip install 'arsim[cluster]',"
                         " which `make setup-train` installs)") from None
    return ray


def _connect(ray, address: str | None) -> None:
    """Join the cluster at ``address``, or start a local instance."""
    # Ray's own C++ log lines would repeat on stderr what the one line below says
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError("--address", f"cannot join the Ray cluster at {address}: "
                         f"{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
