"""Confine a process to a phone's CPU and memory budget with real OS mechanisms.

``confine(pid, cpu_fraction=..., memory_limit_mb=...)`` picks, in order:

* ``cgroup-v2``: a child cgroup of our own (delegated, writable) cgroup: ``cpu.max`` with a
  10 ms period, ``memory.max`` (+ ``memory.swap.max`` 0); OOM kills read from ``memory.events``.
* ``cgroup-v1``: ``arsim-<owner pid>-<n>`` under our own cgroup of the ``cpu`` and ``memory``
  hierarchies: ``cpu.cfs_period_us`` 10000 (10 ms: smooth, no 100 ms stalls),
  ``cpu.cfs_quota_us`` = fraction x period; ``memory.limit_in_bytes`` (+ memsw); OOM kills
  read from ``memory.oom_control`` (``oom_kill``), peak from ``memory.max_usage_in_bytes``.
* ``duty-cycle+rlimit``: a thread sends SIGSTOP/SIGCONT to the process in a 10 ms period
  (duty = cpu_fraction / threads), and ``RLIMIT_AS`` (prlimit) caps its *address space* at
  its address space when confined plus the RSS headroom ``limit - RSS``. RLIMIT_AS is not
  RSS: allocations fail (MemoryError / ORT allocation error) instead of a kernel OOM kill,
  and reserved-but-untouched memory counts.
* ``none``: nothing requested.

Cgroups are always removed by ``close()`` (the process is moved back out first if alive),
by ``atexit``, and cgroups of dead owners are swept by the next ``confine()``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import math
import os
import re
import resource
import signal
import threading
import time
import weakref
from pathlib import Path

from simulator.errors import InputError

MECHANISMS = ("cgroup-v2", "cgroup-v1", "duty-cycle+rlimit", "none")
CPU_PERIOD_US = 10_000  # 10 ms: quota granted in small slices, no 100 ms stalls
MIN_QUOTA_US = 1_000  # the kernel's minimum cfs quota
DUTY_PERIOD_S = 0.010
PREFIX = "arsim-"
_MB = 1 << 20
_counter = itertools.count()
_live: weakref.WeakSet[Confinement] = weakref.WeakSet()


class Confinement:
    """A process confined to a CPU fraction and a memory limit; a context manager.

    Subclasses implement one mechanism. ``close()`` is idempotent and always safe.
    """

    mechanism = "none"

    def __init__(self, pid: int, cpu_fraction: float | None, memory_limit_mb: float | None,
                 threads: int = 1) -> None:
        self.pid = pid
        self.cpu_fraction = cpu_fraction
        self.memory_limit_mb = memory_limit_mb
        self.threads = threads
        self.closed = False
        self.notes: list[str] = []  # why faster mechanisms were not used
        _live.add(self)

    def __enter__(self) -> Confinement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Confinement {self.mechanism} pid={self.pid} cpu={self.cpu_fraction} "
                f"mem={self.memory_limit_mb}MB>")

    def set_cpu_fraction(self, fraction: float | None) -> None:
        """Change the CPU quota (fraction of one core; None = unlimited)."""
        self.cpu_fraction = _check_fraction(fraction)

    def set_memory_limit(self, mb: float | None) -> bool:
        """Change the memory limit (a memory pressure event); False if the kernel refused
        because the usage is above it and cannot be reclaimed (cgroup v1: EBUSY)."""
        self.memory_limit_mb = _check_mb(mb)
        return True

    def oom_killed(self) -> bool:
        """True once the kernel's OOM killer has killed a process of this confinement."""
        return False

    def memory_cgroup(self) -> Path | None:
        """The memory cgroup the process is charged to (where a ``Balloon`` goes), if any."""
        return None

    def rss_mb(self) -> float | None:
        """Resident set of the process (/proc/PID/status VmRSS), None once it is gone."""
        return proc_status_mb(self.pid, "VmRSS")

    def peak_mb(self) -> float | None:
        """Peak memory charged (cgroup) or peak RSS (VmHWM)."""
        return proc_status_mb(self.pid, "VmHWM")

    def close(self) -> None:
        """Undo the confinement (idempotent)."""
        self.closed = True
        _live.discard(self)


class _CgroupConfinement(Confinement):
    """Shared by v1 and v2: a set of created cgroup directories."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.dirs: list[Path] = []

    def _make(self, parent: Path) -> Path:
        path = parent / f"{PREFIX}{os.getpid()}-{next(_counter)}"
        path.mkdir()
        self.dirs.append(path)
        return path

    def _attach(self) -> None:
        for path in self.dirs:
            _write(path / "cgroup.procs", str(self.pid))

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        alive = pid_alive(self.pid)
        for path in self.dirs:
            if alive:
                with contextlib.suppress(OSError):
                    _write(path.parent / "cgroup.procs", str(self.pid))
            _rmdir_retry(path)
        self.dirs = []


class CgroupV1(_CgroupConfinement):
    """cgroup v1: separate cpu and memory hierarchies."""

    mechanism = "cgroup-v1"

    def __init__(self, pid: int, cpu_fraction: float | None, memory_limit_mb: float | None,
                 threads: int = 1) -> None:
        super().__init__(pid, cpu_fraction, memory_limit_mb, threads)
        self.cpu_dir: Path | None = None
        self.mem_dir: Path | None = None
        try:
            if cpu_fraction is not None:
                self.cpu_dir = self._make(v1_parent("cpu"))
                self._write_cpu(cpu_fraction)
            if memory_limit_mb is not None:
                self.mem_dir = self._make(v1_parent("memory"))
                with contextlib.suppress(OSError):  # charges follow the process (best effort)
                    _write(self.mem_dir / "memory.move_charge_at_immigrate", "3")
                with contextlib.suppress(OSError):
                    _write(self.mem_dir / "memory.swappiness", "0")
                if not self._write_mem(memory_limit_mb):
                    raise OSError(errno.EBUSY, "memory limit refused")
            self._attach()
        except BaseException:
            self.close()
            raise

    def _write_cpu(self, fraction: float | None) -> None:
        assert self.cpu_dir is not None
        if fraction is None:
            _write(self.cpu_dir / "cpu.cfs_quota_us", "-1")
            return
        period, quota = quota_us(fraction)
        _write(self.cpu_dir / "cpu.cfs_quota_us", "-1")  # any period is valid when unlimited
        _write(self.cpu_dir / "cpu.cfs_period_us", str(period))
        _write(self.cpu_dir / "cpu.cfs_quota_us", str(quota))

    def _write_mem(self, mb: float | None) -> bool:
        assert self.mem_dir is not None
        value = "-1" if mb is None else str(int(mb * _MB))
        memsw = self.mem_dir / "memory.memsw.limit_in_bytes"
        files = [self.mem_dir / "memory.limit_in_bytes"]
        if memsw.exists():  # memsw >= limit at all times: try both orders
            files = [*files, memsw] if _lowering(files[0], value) else [memsw, *files]
        try:
            for path in files:
                _write(path, value)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return False
            raise
        return True

    def set_cpu_fraction(self, fraction: float | None) -> None:
        super().set_cpu_fraction(fraction)
        if self.cpu_dir is None:
            self.cpu_dir = self._make(v1_parent("cpu"))
            _write(self.cpu_dir / "cgroup.procs", str(self.pid))
        self._write_cpu(fraction)

    def set_memory_limit(self, mb: float | None) -> bool:
        super().set_memory_limit(mb)
        if self.mem_dir is None:
            self.mem_dir = self._make(v1_parent("memory"))
            _write(self.mem_dir / "cgroup.procs", str(self.pid))
        return self._write_mem(mb)

    def oom_killed(self) -> bool:
        if self.mem_dir is None:
            return False
        fields = _kv(self.mem_dir / "memory.oom_control")
        return fields.get("oom_kill", 0) > 0 or fields.get("under_oom", 0) > 0

    def peak_mb(self) -> float | None:
        if self.mem_dir is None:
            return super().peak_mb()
        return _read_int(self.mem_dir / "memory.max_usage_in_bytes") / _MB

    def memory_cgroup(self) -> Path | None:
        return self.mem_dir

    def failcnt(self) -> int:
        """How often the memory limit was hit (reclaim or OOM)."""
        return 0 if self.mem_dir is None else _read_int(self.mem_dir / "memory.failcnt")


class CgroupV2(_CgroupConfinement):
    """cgroup v2: one child of our own cgroup with cpu.max and memory.max."""

    mechanism = "cgroup-v2"

    def __init__(self, pid: int, cpu_fraction: float | None, memory_limit_mb: float | None,
                 threads: int = 1) -> None:
        super().__init__(pid, cpu_fraction, memory_limit_mb, threads)
        try:
            need = [n for n, v in (("cpu", cpu_fraction), ("memory", memory_limit_mb))
                    if v is not None]
            self.dir = self._make(v2_parent(need))
            if cpu_fraction is not None:
                self._write_cpu(cpu_fraction)
            if memory_limit_mb is not None:
                self._write_mem(memory_limit_mb)
                with contextlib.suppress(OSError):
                    _write(self.dir / "memory.swap.max", "0")
            self._attach()
        except BaseException:
            self.close()
            raise

    def _write_cpu(self, fraction: float | None) -> None:
        if fraction is None:
            _write(self.dir / "cpu.max", f"max {CPU_PERIOD_US}")
        else:
            period, quota = quota_us(fraction)
            _write(self.dir / "cpu.max", f"{quota} {period}")

    def _write_mem(self, mb: float | None) -> None:
        _write(self.dir / "memory.max", "max" if mb is None else str(int(mb * _MB)))

    def set_cpu_fraction(self, fraction: float | None) -> None:
        super().set_cpu_fraction(fraction)
        self._write_cpu(fraction)

    def set_memory_limit(self, mb: float | None) -> bool:
        super().set_memory_limit(mb)
        self._write_mem(mb)  # v2 reclaims, then OOM-kills if it must: never refused
        return True

    def oom_killed(self) -> bool:
        return _kv(self.dir / "memory.events").get("oom_kill", 0) > 0

    def memory_cgroup(self) -> Path | None:
        return self.dir if self.memory_limit_mb is not None else None

    def peak_mb(self) -> float | None:
        peak = self.dir / "memory.peak"
        return _read_int(peak) / _MB if peak.exists() else super().peak_mb()


class DutyCycle(Confinement):
    """Fallback: SIGSTOP/SIGCONT duty cycle for CPU, RLIMIT_AS (address space) for memory."""

    mechanism = "duty-cycle+rlimit"

    def __init__(self, pid: int, cpu_fraction: float | None, memory_limit_mb: float | None,
                 threads: int = 1) -> None:
        super().__init__(pid, cpu_fraction, memory_limit_mb, threads)
        self._pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._pidfd = os.pidfd_open(pid)  # immune to pid reuse
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base_vm = proc_status_mb(pid, "VmSize") or 0.0
        self._base_rss = proc_status_mb(pid, "VmRSS") or 0.0
        try:
            if memory_limit_mb is not None:
                self._apply_rlimit(memory_limit_mb)
            self.set_cpu_fraction(cpu_fraction)
        except BaseException:
            self.close()
            raise

    @property
    def duty(self) -> float:
        """Share of wall time the process may run (1 = never stopped)."""
        if self.cpu_fraction is None:
            return 1.0
        return min(1.0, self.cpu_fraction / max(1, self.threads))

    def set_cpu_fraction(self, fraction: float | None) -> None:
        super().set_cpu_fraction(fraction)
        if self.duty < 1.0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"duty-{self.pid}",
                                            daemon=True)
            self._thread.start()

    def _apply_rlimit(self, mb: float | None) -> None:
        if mb is None:
            limit = resource.RLIM_INFINITY
        elif mb <= self._base_rss:  # no headroom: the first allocation would fail
            raise ValueError(f"a memory limit of {mb:g} MB is not above what the process "
                             f"already holds ({self._base_rss:.0f} MB RSS when confined); "
                             "give a larger limit")
        else:  # address space when confined + the RSS headroom left under the limit
            limit = int((self._base_vm + mb - self._base_rss) * _MB)
        resource.prlimit(self.pid, resource.RLIMIT_AS, (limit, limit))

    def set_memory_limit(self, mb: float | None) -> bool:
        super().set_memory_limit(mb)
        if mb is not None and mb <= self._base_rss:
            return False  # below what the process held when confined: it cannot go on
        if pid_alive(self.pid):
            self._apply_rlimit(mb)
        return True

    def _signal(self, sig: int) -> bool:
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
            return True
        except (ProcessLookupError, OSError):
            return False

    def _loop(self) -> None:
        deadline = time.perf_counter()
        try:
            while not self._stop.is_set():
                duty = self.duty
                if duty >= 1.0:
                    self._stop.wait(DUTY_PERIOD_S)
                    deadline = time.perf_counter()
                    continue
                deadline += duty * DUTY_PERIOD_S
                _sleep_until(deadline)
                if self._stop.is_set() or not self._signal(signal.SIGSTOP):
                    break
                deadline += (1.0 - duty) * DUTY_PERIOD_S
                _sleep_until(deadline)
                if not self._signal(signal.SIGCONT):
                    break
                now = time.perf_counter()
                if now - deadline > DUTY_PERIOD_S:  # fell behind: do not try to catch up
                    deadline = now
        finally:
            self._signal(signal.SIGCONT)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._signal(signal.SIGCONT)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


_BALLOON_CODE = """
import mmap, sys
n = int(sys.stdin.readline())
m = mmap.mmap(-1, max(n, 4096), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
chunk = b"\\1" * (1 << 20)
for off in range(0, n, 1 << 20):
    m[off:off + min(1 << 20, n - off)] = chunk[:min(1 << 20, n - off)]
sys.stdout.write("ok\\n")
sys.stdout.flush()
sys.stdin.read()
"""
BALLOON_MARGIN_MB = 16.0  # the balloon never fills its cgroup alone (it could not be killed)


class Balloon:
    """"Other apps take ``mb`` MB": a process in a memory cgroup that allocates and touches
    ``mb`` MB, with ``oom_score_adj`` -1000 so that the kernel's OOM killer picks the other
    processes of the cgroup (the worker), never the balloon. Lowering an oom_score_adj
    needs CAP_SYS_RESOURCE; without it the ``victim``'s is raised to +1000 instead (same
    choice inside the cgroup); ``self.exemption`` says which. Its size is capped at the
    cgroup's limit minus max(``BALLOON_MARGIN_MB``, 10 %) (``self.mb`` is what it holds), so that it
    fits alone once the worker is gone. ``close()`` (idempotent, also ``with``) kills it."""

    def __init__(self, cgroup: Path, mb: float, limit_mb: float | None = None,
                 victim: int | None = None, timeout_s: float = 30.0) -> None:
        import subprocess
        import sys

        self.cgroup = Path(cgroup)
        self.requested_mb = float(mb)
        self.killed = False  # the balloon itself was OOM-killed while inflating
        margin = 0.0 if limit_mb is None else max(BALLOON_MARGIN_MB, 0.1 * limit_mb)
        cap = math.inf if limit_mb is None else max(0.0, limit_mb - margin)
        self.mb = min(self.requested_mb, cap)
        self.proc: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-S", "-c", _BALLOON_CODE], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        _live_balloons.add(self)
        try:
            try:
                _write(Path(f"/proc/{self.proc.pid}/oom_score_adj"), "-1000")
                self.exemption = "balloon oom_score_adj -1000"
            except PermissionError:
                if victim is None:
                    raise
                _write(Path(f"/proc/{victim}/oom_score_adj"), "1000")
                self.exemption = "worker oom_score_adj +1000 (no CAP_SYS_RESOURCE for -1000)"
            _write(self.cgroup / "cgroup.procs", str(self.proc.pid))
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(f"{int(self.mb * _MB)}\n")
            self.proc.stdin.flush()
            import select

            ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
            line = self.proc.stdout.readline().strip() if ready else None
            if line == "" and self.proc.wait(timeout=5.0) == -signal.SIGKILL:
                # the OOM killer took the balloon too, right after the worker (before the
                # worker's memory was freed): the pressure is gone with it
                self.killed = True
                self.close()
                return
            if line != "ok":
                raise OSError(errno.ETIMEDOUT, f"balloon of {self.mb:.0f} MB did not inflate")
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def __enter__(self) -> Balloon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the balloon and reap it (frees its memory; the cgroup can then be removed)."""
        proc, self.proc = self.proc, None
        _live_balloons.discard(self)
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


_live_balloons: weakref.WeakSet[Balloon] = weakref.WeakSet()


def confine(pid: int, *, cpu_fraction: float | None, memory_limit_mb: float | None,
            threads: int = 1, mechanism: str = "auto") -> Confinement:
    """Confine process ``pid`` to ``cpu_fraction`` of one core (> 1 = several cores) and
    ``memory_limit_mb`` MB (2**20 bytes); ``threads`` sizes the duty-cycle fallback.
    ``mechanism`` "auto" tries cgroup v2, cgroup v1, then the duty-cycle+rlimit fallback."""
    cpu_fraction = _check_fraction(cpu_fraction)
    memory_limit_mb = _check_mb(memory_limit_mb)
    if not isinstance(pid, int) or pid <= 0 or not pid_alive(pid):
        raise InputError("pid", f"expected a running process id, got {pid!r}")
    if mechanism not in ("auto", *MECHANISMS):
        raise InputError("mechanism", f"expected auto or one of {', '.join(MECHANISMS)}, "
                         f"got {mechanism!r}")
    if mechanism == "none" or (cpu_fraction is None and memory_limit_mb is None):
        return Confinement(pid, None, None, threads)
    sweep_stale()
    order = {"auto": ("cgroup-v2", "cgroup-v1", "duty-cycle+rlimit")}.get(mechanism,
                                                                          (mechanism,))
    notes: list[str] = []
    for name in order:
        cls = {"cgroup-v2": CgroupV2, "cgroup-v1": CgroupV1, "duty-cycle+rlimit": DutyCycle}[name]
        try:
            result = cls(pid, cpu_fraction, memory_limit_mb, threads)
        except (OSError, ValueError) as exc:
            notes.append(f"{name}: {exc}")
            continue
        result.notes = notes
        return result
    raise InputError("throttle", f"no confinement mechanism works here ({'; '.join(notes)})")


def available_mechanisms() -> list[str]:
    """Mechanisms that work on this machine now (probed by creating and removing a cgroup)."""
    found = []
    for name, probe in (("cgroup-v2", lambda: v2_parent(["cpu", "memory"])),
                        ("cgroup-v1", lambda: [v1_parent("cpu"), v1_parent("memory")])):
        try:
            parents = probe()
            for parent in parents if isinstance(parents, list) else [parents]:
                path = parent / f"{PREFIX}{os.getpid()}-probe{next(_counter)}"
                path.mkdir()
                path.rmdir()
            found.append(name)
        except (OSError, ValueError):
            pass
    return [*found, "duty-cycle+rlimit", "none"]


def quota_us(fraction: float) -> tuple[int, int]:
    """(period, quota) in µs for a CPU fraction: 10 ms period, longer only where the quota
    would fall under the kernel's 1 ms minimum."""
    period = CPU_PERIOD_US
    if fraction * period < MIN_QUOTA_US:
        period = min(1_000_000, math.ceil(MIN_QUOTA_US / fraction))
    return period, max(MIN_QUOTA_US, round(fraction * period))


def _mountinfo() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every mount."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) >= 5 and len(rparts) >= 3:
            mounts.append((parts[4].replace("\\040", " "), rparts[0],
                           set(rparts[2].split(","))))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> our cgroup path, from /proc/self/cgroup."""
    result: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            result[name] = path
    return result


def v1_parent(controller: str) -> Path:
    """Our own cgroup in the v1 hierarchy of ``controller`` (where ours are created)."""
    mount = next((m for m, fs, opts in _mountinfo() if fs == "cgroup" and controller in opts),
                 None)
    if mount is None:
        raise ValueError(f"no cgroup v1 {controller} hierarchy mounted")
    path = Path(mount) / _own_cgroups().get(controller, "/").lstrip("/")
    if not os.access(path, os.W_OK):
        raise ValueError(f"{path} is not writable")
    return path


def v2_parent(controllers: list[str]) -> Path:
    """Our own cgroup v2 directory when it can hold children with ``controllers``."""
    mount = next((m for m, fs, _ in _mountinfo() if fs == "cgroup2"), None)
    if mount is None:
        raise ValueError("no cgroup v2 mounted")
    path = Path(mount) / _own_cgroups().get("", "/").lstrip("/")
    available = (path / "cgroup.controllers").read_text().split()
    missing = [c for c in controllers if c not in available]
    if missing:
        raise ValueError(f"{path}: controllers {missing} not delegated")
    if not os.access(path, os.W_OK):
        raise ValueError(f"{path} is not writable")
    enabled = (path / "cgroup.subtree_control").read_text().split()
    for name in controllers:
        if name not in enabled:  # fails (EBUSY) under the no-internal-process rule
            _write(path / "cgroup.subtree_control", f"+{name}")
    return path


def sweep_stale() -> list[Path]:
    """Remove empty ``arsim-<pid>-*`` cgroups whose owner process is gone; the removed."""
    parents: set[Path] = set()
    for get in (lambda: v1_parent("cpu"), lambda: v1_parent("memory"), lambda: v2_parent([])):
        with contextlib.suppress(OSError, ValueError):
            parents.add(get())
    removed = []
    for parent in parents:
        for path in parent.glob(f"{PREFIX}*"):
            match = re.match(rf"{PREFIX}(\d+)-", path.name)
            if path.is_dir() and match and not pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    path.rmdir()  # refused while it still holds a process
                    removed.append(path)
    return removed


def our_cgroups(owner: int | None = None) -> list[Path]:
    """The ``arsim-<owner>-*`` cgroups that process ``owner`` (default: this one) created
    under our own cgroups (for leak checks; another process, e.g. a parallel test worker,
    may share the parent cgroup with its own)."""
    owner = os.getpid() if owner is None else owner
    found: list[Path] = []
    for get in (lambda: v1_parent("cpu"), lambda: v1_parent("memory"), lambda: v2_parent([])):
        with contextlib.suppress(OSError, ValueError):
            found += [p for p in get().glob(f"{PREFIX}{owner}-*") if p.is_dir()]
    return sorted(set(found))


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def proc_status_mb(pid: int, key: str) -> float | None:
    """A kB field of /proc/PID/status (VmRSS, VmHWM, VmSize) in MB; None if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) / 1024 if match else None


def close_all() -> None:
    """Close every live balloon and confinement (atexit)."""
    for balloon in list(_live_balloons):
        with contextlib.suppress(Exception):
            balloon.close()
    for item in list(_live):
        with contextlib.suppress(Exception):
            item.close()


atexit.register(close_all)


def _check_fraction(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise InputError("cpu fraction", f"expected a number > 0 (share of one core), "
                         f"got {value!r}")
    return float(value)


def _check_mb(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value >= 1):
        raise InputError("memory limit", f"expected a number of MB >= 1, got {value!r}")
    return float(value)


def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _read_int(path: Path) -> int:
    return int(path.read_text().split()[0])


def _kv(path: Path) -> dict[str, int]:
    try:
        pairs = (line.split() for line in path.read_text().splitlines())
        return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}
    except OSError:
        return {}


def _lowering(path: Path, value: str) -> bool:
    if value == "-1":
        return False
    try:
        return int(value) < _read_int(path)
    except (OSError, ValueError):
        return True


def _rmdir_retry(path: Path, timeout_s: float = 10.0) -> None:
    """rmdir, retrying while a dying process still holds the cgroup (EBUSY)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return
            time.sleep(0.01)


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
