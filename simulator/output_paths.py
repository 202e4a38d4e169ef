"""Output folders and files: checked before any work, write errors turned into one line.

``prepare_output_dir`` runs before a replay, an import or a model build starts, so that a
typo in ``--out`` costs nothing; ``writing`` wraps the writes after that, so a full disk or
a vanished folder is an ``OutputError`` (exit code 4), not a traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulator.errors import OutputError


def prepare_output_dir(path: str | Path, what: str = "--out") -> Path:
    """Create ``path`` (and its parents) if needed and prove a file can be written in it."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(folder, f"{what}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(folder, f"{what}: cannot create the folder: {_reason(exc)}") from None
    probe = folder / f".arsim-write-probe-{os.getpid()}"
    try:
        with open(probe, "xb") as handle:
            handle.write(b"ok")
    except OSError as exc:
        raise OutputError(folder, f"{what}: folder is not writable: {_reason(exc)}") from None
    finally:
        probe.unlink(missing_ok=True)
    return folder


def prepare_output_file(path: str | Path, what: str = "--out") -> Path:
    """The folder of an output file, prepared as above; the file itself must not be a folder."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(target, f"{what}: is a folder, expected a file path")
    prepare_output_dir(target.parent if str(target.parent) else Path("."), what)
    return target


@contextmanager
def writing(where: str | Path) -> Iterator[None]:
    """Turn an OSError while writing ``where`` into an OutputError."""
    try:
        yield
    except OSError as exc:
        raise OutputError(where, f"cannot write: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)
