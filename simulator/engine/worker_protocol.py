"""The messages between ``InferenceWorker`` and its confined child (engine/worker.py).

Frozen dataclasses sent over a socketpair ``multiprocessing.connection.Connection`` (both
ends are this package: nothing untrusted is unpickled); frames never travel in them, they
go through the two shared-memory segments named by ``Map``.

    parent -> child         child -> parent
    Load                    Hello first (before Load), then Ready | Error
    Map                     -
    Infer                   Done | Error | OutOfMemory
    Detect                  Tracked | Error | OutOfMemory
    Release                 Released
    Stop                    - (the child exits)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """Load the model (after the parent confined the process)."""

    path: str
    threads: int
    arena: bool  # ONNX Runtime's CPU memory arena (pooled buffers)


@dataclass(frozen=True)
class Map:
    """Map the input and output shared-memory segments (``/dev/shm`` names)."""

    input: str
    output: str
    nbytes: int


@dataclass(frozen=True)
class Infer:
    """Stylize the height x width x 3 frame in the input segment into the output one."""

    seq: int
    height: int
    width: int
    size: int
    fit: str


@dataclass(frozen=True)
class Detect:
    """``FaceTracker.update`` on the frame in the input segment; ``face``: the
    ``FaceTrackerSettings`` fields, applied when the tracker is created."""

    seq: int
    height: int
    width: int
    t: float
    index: int
    face: dict[str, Any]


@dataclass(frozen=True)
class Release:
    """Drop pooled buffers: reopen the session (``arena``: pool from now on), gc, trim."""

    arena: bool


@dataclass(frozen=True)
class Stop:
    pass


# --- replies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    pid: int


@dataclass(frozen=True)
class Ready:
    rss_mb: float | None


@dataclass(frozen=True)
class Done:
    """One inference: latency and CPU time measured in the child around the Stylizer."""

    seq: int
    latency_ms: float
    cpu_ms: float
    rss_mb: float | None


@dataclass(frozen=True)
class FoundFace:
    """A face track, as plain values (``FaceTrack`` rebuilt by the parent)."""

    box: tuple[float, float, float, float]
    keypoints: list[list[float]]
    confidence: float
    detected: bool
    age: int
    detection_box: tuple[float, ...] | None


@dataclass(frozen=True)
class Tracked:
    """One ``Detect``: the track (None: no face) and the tracker's counters
    (``TrackerStats`` fields)."""

    seq: int
    found: FoundFace | None
    stats: dict[str, float]


@dataclass(frozen=True)
class Error:
    """A request failed (one line; ``seq`` 0 for ``Load``)."""

    seq: int
    text: str


@dataclass(frozen=True)
class OutOfMemory:
    """An allocation failed under RLIMIT_AS: the app dies, as it would on the phone."""

    seq: int
    text: str


@dataclass(frozen=True)
class Released:
    rss_mb: float | None
