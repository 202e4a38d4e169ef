"""Capture formats in, scenarios out: ``arsim scenario import SRC OUT [--format auto|NAME]``.

One module per format, each defining ``IMPORTER`` (see ``base.Importer``); this registry
finds them, auto-detects which one reads a source (naming every format it tried and why
each declined) and writes the result with ``output.write_recording``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from simulator.errors import InputError
from simulator.scenario.importers.base import Importer, ImportOptions, Progress, Recording

# Detection order: specific layouts first, the catch-all plain video last.
_MODULES = (
    "arsim_app",
    "stray_scanner",
    "ios_logger",
    "record3d",
    "arkitscenes",
    "euroc",
    "tum",
    "nerfstudio",
    "rosbag",
    "plain_video",
)
_registry: dict[str, Importer] | None = None


def importers() -> dict[str, Importer]:
    """Every available importer by name, in detection order."""
    global _registry
    if _registry is None:
        found: dict[str, Importer] = {}
        for module_name in _MODULES:
            try:
                module = importlib.import_module(f"{__name__}.{module_name}")
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.startswith(__name__):
                    continue  # a format not built yet
                raise
            importer = module.IMPORTER
            found[importer.name] = importer
        _registry = found
    return _registry


def detect(src: Path) -> Importer:
    """The importer that reads ``src``, or InputError listing why each format declined."""
    src = Path(src)
    if not src.exists():
        raise InputError(src, "no such file or folder")
    reasons = []
    for importer in importers().values():
        why = importer.why_not(src)
        if why is None:
            return importer
        reasons.append(f"{importer.name}: {why}")
    raise InputError(src, "not a recording of any known format (" + "; ".join(reasons) + ")")


def read_recording(
    src: str | Path,
    fmt: str = "auto",
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> Recording:
    """Read a capture into a ``Recording`` (nothing written)."""
    src = Path(src)
    options = options or ImportOptions()
    if fmt == "auto":
        importer = detect(src)
    else:
        table = importers()
        if fmt not in table:
            raise InputError("--format", f"unknown format {fmt!r} (known: auto, "
                             + ", ".join(table) + ")")
        importer = table[fmt]
        if not src.exists():
            raise InputError(src, "no such file or folder")
        why = importer.why_not(src)
        if why is not None:
            raise InputError(src, f"not a {fmt} recording: {why}")
    return importer.read(src, options, progress)


def import_recording(
    src: str | Path,
    out: str | Path,
    fmt: str = "auto",
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    *,
    force: bool = False,
) -> Path:
    """Read ``src`` and write the scenario folder ``out``; returns ``out``. On any error
    nothing is left at ``out`` (the scenario is written beside it and moved in place)."""
    from simulator.scenario.importers.output import check_output, write_recording

    options = options or ImportOptions()
    check_output(Path(out), force=force)
    recording = read_recording(src, fmt, options, progress)
    return write_recording(recording, Path(out), options, progress, force=force)


__all__ = [
    "ImportOptions",
    "Importer",
    "Recording",
    "detect",
    "import_recording",
    "importers",
    "read_recording",
]
