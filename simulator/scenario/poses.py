"""Camera trajectories: TUM ``poses.txt`` parsing and lerp + slerp interpolation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import read_user_text
from simulator.types import Pose

UNIT_TOLERANCE = 1e-3  # |‖q‖ - 1| allowed for a quaternion read from a file
# A plain decimal number; stricter than float(), which also takes "nan", "1_0" and " 1 ".
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Below this angle between two quaternions slerp falls back to normalised lerp.
_SMALL_ANGLE = 1e-6


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Time-stamped camera-to-world poses: ``times`` (N,), ``positions`` (N, 3) and unit
    ``quaternions`` (N, 4, x y z w), N ≥ 2, times strictly increasing."""

    times: np.ndarray
    positions: np.ndarray
    quaternions: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.times)
        if n < 2 or self.positions.shape != (n, 3) or self.quaternions.shape != (n, 4):
            raise ValueError("a trajectory needs N ≥ 2 times, (N, 3) positions, (N, 4) quats")
        if not np.all(np.diff(self.times) > 0):
            raise ValueError("trajectory times must be strictly increasing")

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def at(self, t: float) -> Pose:
        """Pose at time ``t`` (within [start, end]; extrapolation raises ValueError)."""
        positions, quats = self.at_many(np.array([t], dtype=np.float64))
        return Pose(t=positions[0], q=quats[0])

    def at_many(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (M, 3) and unit quaternions (M, 4) at ``times`` (M,), vectorised.

        Exact (bit for bit) at sample times; lerp for positions, shortest-arc slerp for
        rotations in between.
        """
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if times.size and (
            not np.all(np.isfinite(times))
            or times.min() < self.times[0]
            or times.max() > self.times[-1]
        ):
            raise ValueError(
                f"time outside the trajectory [{self.start}, {self.end}]: extrapolation refused"
            )
        i = np.clip(np.searchsorted(self.times, times, side="right") - 1, 0, len(self.times) - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        a = (times - t0) / (t1 - t0)
        # (1-a)·p0 + a·p1 rather than p0 + a·(p1-p0): exact at both ends.
        positions = (1.0 - a)[:, None] * self.positions[i] + a[:, None] * self.positions[i + 1]
        quats = slerp_many(self.quaternions[i], self.quaternions[i + 1], a)
        return positions, quats


def slerp_many(q0: np.ndarray, q1: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Row-wise shortest-arc slerp between unit quaternions q0, q1 (M, 4) at fractions a (M,).

    Returns unit quaternions; ``a == 0`` gives q0 and ``a == 1`` gives q1 exactly (not -q1).
    """
    q0 = np.asarray(q0, dtype=np.float64).reshape(-1, 4)
    q1 = np.asarray(q1, dtype=np.float64).reshape(-1, 4)
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    dot = np.sum(q0 * q1, axis=1)
    sign = np.where(dot < 0.0, -1.0, 1.0)  # q and -q are the same rotation: take the short way
    q1_near = q1 * sign[:, None]
    cos_angle = np.clip(dot * sign, -1.0, 1.0)
    angle = np.arccos(cos_angle)
    sin_angle = np.sin(angle)
    small = sin_angle < _SMALL_ANGLE
    safe_sin = np.where(small, 1.0, sin_angle)
    w0 = np.where(small, 1.0 - a, np.sin((1.0 - a) * angle) / safe_sin)
    w1 = np.where(small, a, np.sin(a * angle) / safe_sin)
    out = w0[:, None] * q0 + w1[:, None] * q1_near
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    out = np.where((a == 0.0)[:, None], q0, out)
    return np.where((a == 1.0)[:, None], q1, out)


def slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    """Shortest-arc spherical linear interpolation of two unit quaternions (x, y, z, w)."""
    return slerp_many(q0, q1, np.array([a], dtype=np.float64))[0]


def parse_tum(
    path: Path,
    label: str | None = None,
    *,
    origin: Decimal | None = None,
    root: Path | None = None,
    report: Callable[[InputError], None] | None = None,
) -> Trajectory:
    """Read a TUM trajectory (``timestamp tx ty tz qx qy qz qw`` per line, ``#`` comments).

    Every problem raises InputError naming ``label`` (default: the path) and the line; with
    ``report``, a bad row is reported and skipped instead, and only a file that yields no
    trajectory raises. ``origin``: subtracted from every timestamp in exact decimal
    arithmetic (an epoch clock loses nothing). ``root``: the folder the file must stay in.
    Quaternions are normalised after the unit-norm check.
    """
    label = label or str(path)
    text = read_text(path, label, root=root)
    times: list[float] = []
    rows: list[list[float]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            values = _tum_row(stripped, f"{label} line {line_no}", times, origin)
        except InputError as problem:
            if report is None:
                raise
            report(problem)
            continue
        times.append(values[0])
        rows.append(values)
    if len(rows) < 2:
        raise InputError(label, f"expected at least two pose rows, found {len(rows)}")
    data = np.array(rows, dtype=np.float64)
    quats = data[:, 4:8] / np.linalg.norm(data[:, 4:8], axis=1, keepdims=True)
    return Trajectory(times=data[:, 0].copy(), positions=data[:, 1:4].copy(), quaternions=quats)


def _tum_row(
    stripped: str, where: str, times: list[float], origin: Decimal | None
) -> list[float]:
    fields = stripped.split()
    if len(fields) != 8:
        raise InputError(
            where, f"expected 8 numbers 'timestamp tx ty tz qx qy qz qw', got {len(fields)}"
        )
    values = [
        parse_number(text, where, name) for text, name in zip(fields, _TUM_COLUMNS, strict=True)
    ]
    if origin is not None:
        values[0] = float(Decimal(fields[0]) - origin)
    if times and values[0] <= times[-1]:
        raise InputError(
            where,
            f"timestamp {fields[0]} is not after the previous row's "
            "(timestamps must be strictly increasing)",
        )
    norm = float(np.linalg.norm(values[4:]))
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        raise InputError(
            where, f"quaternion qx qy qz qw has norm {norm:.6g}, expected 1 (within 1e-3)"
        )
    return values


_TUM_COLUMNS = ("timestamp", "tx", "ty", "tz", "qx", "qy", "qz", "qw")


def parse_number(text: str, where: str, name: str) -> float:
    """A finite decimal number, or InputError naming ``where`` and the field ``name``."""
    if len(text) > 64 or not NUMBER.fullmatch(text):
        raise InputError(where, f"{name} must be a number (at most 64 characters), "
                         f"got {text[:40]!r}")
    value = float(text)
    if not np.isfinite(value):
        raise InputError(where, f"{name} must be finite, got {text[:40]!r}")
    return value


def read_text(path: Path, label: str, *, root: Path | None = None) -> str:
    """A UTF-8 text file (a leading BOM is tolerated), or InputError naming ``label``:
    regular files only, size-capped, inside ``root`` when given (``simulator.safe_files``)."""
    return read_user_text(path, label, root=root)
