"""``report.json`` writer (schema ``arsim-report/1``) and the atomic write all writers use."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import numpy as np

SCHEMA = "arsim-report/1"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A reader (or a Ctrl-C) never sees a half-written file.
    """
    path = Path(path)
    # A unique name opened with "x" (not mkstemp) so the file gets the usual umask permissions.
    tmp_path = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp_path, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def to_jsonable(value: object) -> object:
    """Plain JSON data: numpy scalars/arrays to Python, tuples to lists, NaN/±inf to None.

    Mapping key order is kept, so a report built in schema order is written in that order.
    """
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot write {type(value).__name__} to report.json")


def write_json(report: Mapping, path: Path) -> None:
    """Write ``report`` as ``report.json``: ``schema`` first, then the report's own key order."""
    data = to_jsonable({"schema": report.get("schema", SCHEMA), **report})
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    write_atomic(Path(path), (text + "\n").encode("utf-8"))
