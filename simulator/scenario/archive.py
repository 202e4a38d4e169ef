"""Safe extraction of a ``.zip`` scenario: every member is checked before anything is written."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from simulator.errors import InputError

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_RATIO = 200  # uncompressed : compressed, per member
_CHUNK = 1 << 20
# Finder adds these resource-fork copies to zips it makes; they are never scenario files.
_IGNORED_TOP = "__MACOSX"


def safe_extract(zip_path: Path, dest: Path) -> Path:
    """Extract ``zip_path`` into ``dest`` and return the scenario folder inside it: ``dest``
    itself when ``scenario.json`` is at the archive root, else the archive's single
    top-level folder.

    Refused with InputError before anything is written: not a zip, absolute names, ``..``,
    links or other special files, encrypted members, more than MAX_MEMBERS members, more
    than MAX_TOTAL_BYTES uncompressed, a member compressed more than MAX_RATIO : 1. While
    extracting, the bytes actually written are counted, since declared sizes can lie.
    """
    zip_path = Path(zip_path)
    label = str(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise InputError(label, "file not found") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(label, f"not a readable zip archive ({exc})") from None
    with archive:
        members = _checked_members(archive, label)
        names = [PurePosixPath(_normalised(m.filename)) for m in members]
        top = _scenario_top(names, label)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for member, name in zip(members, names, strict=True):
            _extract_member(archive, member, dest.joinpath(*name.parts), label)
    return dest.joinpath(top) if top else dest


def _normalised(name: str) -> str:
    # Zips made on Windows may use backslashes; treat them as separators when judging names.
    return name.replace("\\", "/")


def _checked_members(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    """The members to extract (directories and __MACOSX/ left out), after every check."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise InputError(label, f"{len(infos)} members, at most {MAX_MEMBERS} are allowed")
    total = 0
    seen: set[str] = set()
    members = []
    for info in infos:
        name = _normalised(info.filename)
        where = f"{label}: member {info.filename[:200]!r}"
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise InputError(where, "absolute path (members must be relative)")
        if ".." in parts:
            raise InputError(where, "'..' in the path (members must stay inside the archive)")
        if "\x00" in name:
            raise InputError(where, "NUL character in the name")
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise InputError(where, "symbolic link (links are not allowed)")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise InputError(where, "special file (only files and folders are allowed)")
        if info.flag_bits & 0x1:
            raise InputError(where, "encrypted (password-protected members are not supported)")
        if info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise InputError(
                where,
                f"compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1 "
                f"exceeds {MAX_RATIO}:1 (zip bomb?)",
            )
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise InputError(label, f"more than {MAX_TOTAL_BYTES // 1024**3} GiB uncompressed")
        if info.is_dir() or not parts or parts[0] == _IGNORED_TOP:
            continue
        key = "/".join(parts)
        if key in seen:
            raise InputError(where, "duplicate member name")
        seen.add(key)
        members.append(info)
    return members


def _scenario_top(names: list[PurePosixPath], label: str) -> str | None:
    """None when scenario.json is at the root, else the single top-level folder's name."""
    if PurePosixPath("scenario.json") in names:
        return None
    tops = {n.parts[0] for n in names if n.parts}
    nested = len(tops) == 1 and all(len(n.parts) > 1 for n in names)
    if nested and PurePosixPath(next(iter(tops)), "scenario.json") in names:
        return next(iter(tops))
    raise InputError(
        label, "no scenario.json at the archive root or inside a single top-level folder"
    )


def _extract_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, label: str
) -> None:
    """Copy one member, refusing to write more bytes than it declared."""
    where = f"{label}: member {info.filename[:200]!r}"
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with archive.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise InputError(where, "holds more data than its declared size")
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InputError(where, f"cannot be extracted ({exc})") from None
    except (FileExistsError, IsADirectoryError, NotADirectoryError):
        raise InputError(where, "clashes with another member's path") from None
