"""Graph figures (FLOPs, activation peak, weights) of a model at an input shape, and the
result of the model file's checks (registry: one RGB image in and out, ONNX Runtime accepts
it), kept on disk by the file's content, so that a run which only needs the numbers
(``--timing-only``, the cost and memory models) neither parses the ONNX graph nor imports the
onnx package (about 2 s here, most of it ml_dtypes).

One small JSON file per model file, named by its SHA-256, in ``graph-stats/`` under
``cache_dir()`` (simulator/work_cache.py). Entries are written atomically (a temporary file,
then ``os.replace``); concurrent writers may each drop the other's new entry, which is only
recomputed later. A file that cannot be read, parsed or trusted is ignored (and replaced),
never an error. With no writable cache directory everything still works, uncached.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from simulator.work_cache import cache_dir, file_hash
from simulator.zoo.graph_stats import GraphStats

FORMAT = "arsim-graph-stats/1"
MAX_FILE_BYTES = 1 << 20  # a model's entries; more means the file is not ours


def _file(model_path: Path) -> Path:
    return cache_dir() / "graph-stats" / f"{file_hash(model_path)}.json"


def _read(path: Path) -> dict:
    """The cache file of one model ({"format", "shapes": {"WxH": figures}, "input_axis"});
    an empty one when missing, oversized or not ours."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return {"format": FORMAT, "shapes": {}}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": FORMAT, "shapes": {}}
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or not isinstance(data.get("shapes"), dict):
        return {"format": FORMAT, "shapes": {}}
    return data


def _write(path: Path, data: dict) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _key(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def load(model_path: Path, shape: tuple[int, int]) -> GraphStats | None:
    """The cached figures of ``model_path`` at ``shape`` (width, height), or None."""
    try:
        entry = _read(_file(model_path))["shapes"].get(_key(shape))
    except OSError:
        return None
    fields = ("flops", "parameters", "weights_bytes", "activation_peak_bytes")
    if not isinstance(entry, dict) or not all(
            isinstance(entry.get(f), int) and not isinstance(entry.get(f), bool)
            and entry[f] >= 0 for f in fields):
        return None
    width, height = shape
    return GraphStats(size=width if width == height else 0, shape=(width, height),
                      **{f: entry[f] for f in fields})


def store(model_path: Path, stats: GraphStats) -> None:
    """Remember ``stats`` (best effort: an unwritable cache is no error)."""
    with contextlib.suppress(OSError):
        path = _file(model_path)
        data = _read(path)
        data["shapes"][_key(stats.shape)] = {
            "flops": stats.flops, "parameters": stats.parameters,
            "weights_bytes": stats.weights_bytes,
            "activation_peak_bytes": stats.activation_peak_bytes,
        }
        _write(path, data)


def checked_axis(model_path: Path) -> int | None:
    """The image input's channel axis (1: NCHW, 3: NHWC) of a model file that passed the
    registry's checks before; None when it was not checked (or the cache is unreadable)."""
    try:
        axis = _read(_file(model_path)).get("input_axis")
    except OSError:
        return None
    return axis if axis in (1, 3) else None


def store_checked(model_path: Path, axis: int) -> None:
    """Remember that ``model_path`` passed the checks, with its input's channel axis."""
    with contextlib.suppress(OSError):
        path = _file(model_path)
        data = _read(path)
        data["input_axis"] = int(axis)
        _write(path, data)
