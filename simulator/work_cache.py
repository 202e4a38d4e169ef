"""Content-addressed results of deterministic host work, reused across runs.

A matrix of runs repeats the same host work: every device of a scenario stylizes the same
(frame, size) pairs and the flicker metric computes the flow of the same input pairs. What a
call computes depends only on what goes into it, so its result is kept under a hash of those
inputs (``key``) and looked up before the work is done again:

- ``stylized``: one model call's output; key: the host runtime, the model file's SHA-256, the
  fit, the input size and the array fed in (shape and bytes: a face crop is its own key);
- ``flow``: forward and backward optical flow of two grey analysis frames; key: the flow
  preset and both frames.

Two tiers, looked up in order:
- memory, per process: a least-recently-used dict bounded in bytes (the runs of a matrix in
  one process, the pytest plugin's items, the app's replays);
- disk, optional (``DIR/work/<kind>/<2 hex>/<key>.npy``, size-capped): across processes and
  sessions. Files are written atomically (a temporary file, then ``os.replace``), so
  concurrent writers of a key write the same bytes and a reader never sees half a file;
  they are read with ``allow_pickle=False`` and a size cap, and a file that cannot be read
  or is not the expected kind of array is removed and recomputed, never an error. A hit
  touches the file's modification time; when the folder passes its cap the oldest files go
  until it is at 90 % of the cap (least recently used first).

A cache never changes a result: a warm replay's ``report.json`` is byte-identical to a cold
one's apart from ``host`` (tests/test_work_cache.py). Under real throttling nothing is cached
(the worker's measured latency is the point of such a run).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# kind -> whether it goes to disk too (decoded frames do: reading one back from the page cache
# is ~0.2 ms, decoding it ~2-4 ms)
KINDS = {"stylized": True, "flow": True, "flicker": True, "decoded": True,
         "video": True}  # facts of a video file (its decoded frame count)
FOLDER = "work"  # under the cache directory (cache_dir)
DEFAULT_MEMORY_MB = 1024
DEFAULT_DISK_MB = 4096
TRIM_TO = 0.9  # a full disk tier is trimmed to this fraction of its cap
MAX_ENTRY_BYTES = 64 << 20  # a bigger .npy file is not one of ours


def cache_dir() -> Path:
    """Where arsim keeps derived data that can always be recomputed: ``$ARSIM_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/arsim``, else ``~/.cache/arsim``."""
    if os.environ.get("ARSIM_CACHE_DIR"):
        return Path(os.environ["ARSIM_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "arsim"
    try:
        return Path.home() / ".cache" / "arsim"
    except RuntimeError:  # no HOME and no passwd entry (some containers)
        return Path(tempfile.gettempdir()) / f"arsim-cache-{os.getuid()}"


# what ``usage`` counts and ``clear`` removes: graph figures (simulator/zoo/stats_cache.py)
# and this module's results
CACHE_FOLDERS = ("graph-stats", FOLDER)


def usage(directory: Path | None = None) -> dict[str, tuple[int, int]]:
    """Files and bytes in each of arsim's folders of ``directory`` (default ``cache_dir()``)."""
    root = directory or cache_dir()
    found = {}
    for name in CACHE_FOLDERS:
        files = [p for p in (root / name).rglob("*") if p.is_file() and not p.is_symlink()]
        found[name] = (len(files), sum(p.stat().st_size for p in files))
    return found


def clear(directory: Path | None = None) -> int:
    """Remove arsim's folders of ``directory`` (only those: it may be shared); returns the
    bytes freed."""
    root = directory or cache_dir()
    freed = sum(size for _count, size in usage(root).values())
    for name in CACHE_FOLDERS:
        shutil.rmtree(root / name, ignore_errors=True)
    return freed


_file_hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and modification time)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _file_hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _file_hashes[key] = digest.hexdigest()
    return _file_hashes[key]


def key_of(*parts: object) -> str:
    """A 40-hex-digit key of ``parts``: strings and numbers by their text, arrays by their
    content (``content_key``); each part delimited, so ("ab", "c") and ("a", "bc") differ.
    SHA-256: with the CPU's SHA extensions the fastest of hashlib's (0.5 ms for a 640x360
    RGB frame here, blake2b 1.4 ms)."""
    digest = hashlib.sha256()
    for part in parts:
        text = (content_key(part) if isinstance(part, np.ndarray) else repr(part)).encode()
        digest.update(len(text).to_bytes(4, "little") + text)
    return digest.hexdigest()[:40]


# content keys of read-only arrays, by object: a decoded frame or a cached result is hashed
# once however many runs and stages ask (an array that can still change is hashed each time)
_content_keys: dict[int, str] = {}


def content_key(array: np.ndarray) -> str:
    """A key of an array's dtype, shape and bytes."""
    # only an array that owns its bytes and is read-only cannot change behind its key
    stable = not array.flags.writeable and array.flags.owndata
    known = _content_keys.get(id(array)) if stable else None
    if known is not None:
        return known
    digest = hashlib.sha256(f"<{array.dtype.str}{array.shape}>".encode())
    digest.update(np.ascontiguousarray(array).data)
    key = digest.hexdigest()[:40]
    if stable:
        _remember_key(array, key)
    return key


def frozen(array: np.ndarray, key: str | None = None) -> np.ndarray:
    """``array`` made read-only (shared from now on: whoever changes it copies it), with its
    content key when the caller knows it already."""
    array.flags.writeable = False
    if key is not None:
        _remember_key(array, key)
    return array


def _remember_key(array: np.ndarray, key: str) -> None:
    if id(array) not in _content_keys:
        weakref.finalize(array, _content_keys.pop, id(array), None)
    _content_keys[id(array)] = key


@dataclass
class KindStats:
    """Lookups of one kind: found in memory, found on disk, computed."""

    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0

    def since(self, before: KindStats) -> KindStats:
        return KindStats(self.memory_hits - before.memory_hits,
                         self.disk_hits - before.disk_hits, self.misses - before.misses)


@dataclass
class CacheStats:
    """Lookups per kind (``snapshot`` and ``since`` give one run's share)."""

    kinds: dict[str, KindStats] = field(
        default_factory=lambda: {kind: KindStats() for kind in KINDS})

    def snapshot(self) -> CacheStats:
        return CacheStats({k: KindStats(**vars(s)) for k, s in self.kinds.items()})

    def since(self, before: CacheStats) -> CacheStats:
        return CacheStats({k: s.since(before.kinds[k]) for k, s in self.kinds.items()})

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {kind: vars(stats).copy() for kind, stats in self.kinds.items()}


class WorkCache:
    """See the module docstring. ``directory`` None: memory only. Caps in bytes."""

    def __init__(self, directory: Path | None, *, memory_bytes: int = DEFAULT_MEMORY_MB << 20,
                 disk_bytes: int = DEFAULT_DISK_MB << 20) -> None:
        self.directory = Path(directory) / FOLDER if directory is not None else None
        self.memory_bytes, self.disk_bytes = memory_bytes, disk_bytes
        self.stats = CacheStats()
        self._memory: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._memory_used = 0
        self._disk_used: int | None = None  # scanned at the first write

    # --- lookups --------------------------------------------------------------------------

    def get_or_compute(self, kind: str, key: str,
                       compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached value of ``key``, else ``compute()``'s, kept (``store``)."""
        value = self.lookup(kind, key)
        return value if value is not None else self.store(kind, key, compute())

    def lookup(self, kind: str, key: str) -> np.ndarray | None:
        """The cached value of ``key`` (counted as a miss when there is none). The array is
        shared and read-only (``frozen``): a caller that changes it works on a copy."""
        stats = self.stats.kinds[kind]
        value = self._memory.get((kind, key))
        if value is not None:
            self._memory.move_to_end((kind, key))
            stats.memory_hits += 1
            return value
        value = self._read(kind, key) if KINDS[kind] else None
        if value is None:
            stats.misses += 1
            return None
        stats.disk_hits += 1
        value = frozen(value, key_of("value", kind, key))
        self._remember(kind, key, value)
        return value

    def store(self, kind: str, key: str, value: np.ndarray) -> np.ndarray:
        """Keep ``value`` under ``key``; returns it, frozen (the caller must not have other
        references through which it changes)."""
        if not value.flags.owndata:  # a view: its base could change behind the key
            value = value.copy()
        if KINDS[kind]:
            self._write(kind, key, value)
        value = frozen(value, key_of("value", kind, key))
        self._remember(kind, key, value)
        return value

    # --- memory tier ----------------------------------------------------------------------

    def _remember(self, kind: str, key: str, value: np.ndarray) -> None:
        if value.nbytes > self.memory_bytes:
            return
        self._memory[(kind, key)] = value
        self._memory_used += value.nbytes
        while self._memory_used > self.memory_bytes:
            _, dropped = self._memory.popitem(last=False)
            self._memory_used -= dropped.nbytes

    # --- disk tier ------------------------------------------------------------------------

    def _path(self, kind: str, key: str) -> Path:
        assert self.directory is not None
        return self.directory / kind / key[:2] / f"{key}.npy"

    def _read(self, kind: str, key: str) -> np.ndarray | None:
        if self.directory is None:
            return None
        path = self._path(kind, key)
        try:
            value = _read_npy(path)
            os.utime(path)  # least recently used goes first
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):  # damaged or not ours: recompute it
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return value

    def _write(self, kind: str, key: str, value: np.ndarray) -> None:
        if self.directory is None or value.nbytes > MAX_ENTRY_BYTES // 2:
            return
        path = self._path(kind, key)
        with contextlib.suppress(OSError):  # an unwritable cache is no error, only slower
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.save(handle, value, allow_pickle=False)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if self._disk_used is None:
                self._disk_used = self.disk_usage()[1]
            else:
                self._disk_used += path.stat().st_size
            if self._disk_used > self.disk_bytes:
                self._disk_used = self.trim(int(self.disk_bytes * TRIM_TO))

    def _files(self) -> list[os.DirEntry]:
        found: list[os.DirEntry] = []
        if self.directory is None:
            return found
        for kind in KINDS:
            with contextlib.suppress(OSError):
                for shard in os.scandir(self.directory / kind):
                    if shard.is_dir(follow_symlinks=False):
                        with contextlib.suppress(OSError):
                            found.extend(e for e in os.scandir(shard.path)
                                         if e.name.endswith(".npy")
                                         and e.is_file(follow_symlinks=False))
        return found

    def disk_usage(self) -> tuple[int, int]:
        """(files, bytes) of the disk tier."""
        sizes = []
        for entry in self._files():
            with contextlib.suppress(OSError):
                sizes.append(entry.stat(follow_symlinks=False).st_size)
        return len(sizes), sum(sizes)

    def trim(self, target_bytes: int) -> int:
        """Remove the least recently used files until the disk tier holds at most
        ``target_bytes``; returns the bytes left."""
        entries = []
        for entry in self._files():
            with contextlib.suppress(OSError):
                stat = entry.stat(follow_symlinks=False)
                entries.append((stat.st_mtime_ns, stat.st_size, entry.path))
        entries.sort()
        used = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if used <= target_bytes:
                break
            with contextlib.suppress(FileNotFoundError):  # another process trimmed it
                os.unlink(path)
            used -= size
        return used


def _read_npy(path: Path) -> np.ndarray:
    """A ``.npy`` file of numbers read straight into an array that owns its bytes (np.load
    gives a view of a buffer, whose content key could not be remembered); ValueError when it
    is oversized, truncated or holds anything but numbers (never unpickled)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size > MAX_ENTRY_BYTES:
            raise ValueError("oversized")
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"npy format {version}")
        if dtype.kind not in "uif" or fortran:
            raise ValueError("not a C-ordered array of numbers")
        value = np.empty(shape, dtype)
        if handle.readinto(memoryview(value).cast("B")) != value.nbytes or handle.read(1):
            raise ValueError("truncated or trailing bytes")
    return value


_shared: dict[tuple[str | None, int, int], WorkCache] = {}


def shared_cache(directory: Path | None, *, memory_bytes: int = DEFAULT_MEMORY_MB << 20,
                 disk_bytes: int = DEFAULT_DISK_MB << 20) -> WorkCache:
    """This process's cache for ``directory`` (one memory tier however many runs use it)."""
    key = (str(Path(directory).resolve()) if directory is not None else None,
           memory_bytes, disk_bytes)
    if key not in _shared:
        _shared[key] = WorkCache(directory, memory_bytes=memory_bytes, disk_bytes=disk_bytes)
    return _shared[key]
