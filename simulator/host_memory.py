"""The C allocator's policy for this process: freed frame-sized buffers are kept for reuse.

A replay allocates and frees many arrays of a few hundred kB to a few MB per frame (OpenCV
and numpy temporaries of 320x180 flow fields, 640x360 frames). glibc's malloc hands blocks
that large to mmap and gives them back to the kernel on free (its dynamic threshold does not
settle here, and the heap top is trimmed above 128 kB), so every such array costs fresh
zeroed pages: ~650 page faults per flicker comparison, the larger part of its time on this
host (a KVM guest, where a fault costs several microseconds).

``keep_freed_memory`` raises both thresholds once per process: blocks up to 32 MB come from
the heap, and up to 256 MB of free heap top is kept rather than trimmed. Measured on
orbit-desk (2-core EPYC VM, interleaved runs): the flicker comparison 12-15 -> 5-7 ms per
640x360 pair under load, a full replay 5.9 -> 4.7 s wall, peak RSS +2 %, the report identical
(only where memory comes from changes). It is a no-op off glibc, and when the user set a
threshold (``MALLOC_*_`` variables) or ``ARSIM_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2): a 1080p float32
# RGB frame (25 MB) stays below it.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_applied: bool | None = None


def _glibc() -> ctypes.CDLL | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (AttributeError, ValueError, OSError):  # not a glibc system
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Set the thresholds (once per process); True when they are in effect."""
    global _applied
    if _applied is None:
        _applied = False
        wanted = os.environ.get("ARSIM_MALLOC", "") != "default"
        if wanted and not any(name in os.environ for name in _USER_SETTINGS):
            libc = _glibc()
            if libc is not None and hasattr(libc, "mallopt"):
                # mmap first: setting it also turns off glibc's dynamic threshold
                _applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
