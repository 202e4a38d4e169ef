"""One safe way to read a file the user gave us.

Untrusted folders (scenarios, capture exports, bags) can hold FIFOs that block a reader for
ever, links to ``/dev/urandom`` that never end, or links that lead out of the folder. Every
reader of user files goes through ``read_user_bytes`` / ``open_user_file``: regular files
only, a size cap per kind of file, and (given a ``root``) the resolved path must stay inside
that folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from simulator.errors import InputError

MB = 1 << 20
# Caps per kind of file: far above any real file of the kind, far below what exhausts memory.
TEXT_CAP = 256 * MB  # CSV / TXT / JSON logs (a long session's per-frame rows)
JSON_CAP = 64 * MB


def check_user_file(path: Path, label: str, *, root: Path | None = None) -> os.stat_result:
    """The ``stat`` of a regular file, or InputError: missing, a folder, a FIFO or device, or
    (with ``root``) a link that resolves outside ``root``."""
    path = Path(path)
    if root is not None:
        inside_root(path, label, root)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(label, "file not found") from None
    except OSError as exc:
        raise InputError(label, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(label, "expected a file, found a folder")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(label, "not a regular file (a FIFO, socket or device is refused)")
    return info


def inside_root(path: Path, label: str, root: Path) -> Path:
    """``path`` resolved (links followed); InputError when that leaves ``root``."""
    resolved = Path(os.path.realpath(path))
    base = Path(os.path.realpath(root))
    if resolved != base and base not in resolved.parents:
        raise InputError(
            label,
            f"is a link that leads outside {root} (to {resolved}); copy the file into the "
            "folder instead of linking it",
        )
    return resolved


def read_user_bytes(
    path: Path, label: str, *, cap: int = TEXT_CAP, root: Path | None = None
) -> bytes:
    """The whole file, at most ``cap`` bytes (a larger file is refused, not truncated)."""
    info = check_user_file(path, label, root=root)
    if info.st_size > cap:
        raise InputError(label, f"is {info.st_size / MB:.1f} MB; expected at most {cap // MB} MB")
    try:
        with open(path, "rb") as handle:
            # A buffer sized to the file (not to the cap: that much address space can be
            # refused under RLIMIT_AS); the file can still grow between stat and read.
            data = handle.read(info.st_size + 1)
            while len(data) <= cap and (more := handle.read(min(MB, cap + 1 - len(data)))):
                data += more
    except OSError as exc:
        raise InputError(label, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise InputError(label, f"grew past {cap // MB} MB while being read")
    return data


def read_user_text(
    path: Path, label: str, *, cap: int = TEXT_CAP, root: Path | None = None
) -> str:
    """A UTF-8 text file (a leading byte-order mark is tolerated)."""
    data = read_user_bytes(path, label, cap=cap, root=root)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(label, f"not UTF-8 text (bad byte at offset {exc.start})") from None


def open_user_file(path: Path, label: str, *, root: Path | None = None) -> BinaryIO:
    """A regular file opened for binary reading (for streamed formats: bags, zips, videos)."""
    check_user_file(path, label, root=root)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(label, f"cannot read: {exc.strerror or exc}") from None
