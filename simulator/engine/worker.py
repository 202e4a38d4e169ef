"""Inference in a child process confined by the OS to a phone's CPU and memory budget.

``InferenceWorker`` starts ``python -m simulator.engine.worker FD`` (a socketpair end),
confines it (``simulator.device.throttle.confine``) *before* it loads the model, and talks a
small explicit protocol over the socket: the dataclass messages of
``simulator.engine.worker_protocol`` (never frames).

Frames travel through two POSIX shared-memory segments (input, output) sized for the
largest frame so far. ``Detect`` runs ``simulator.pipeline.face.FaceTracker`` (created in
the child on first use) on the frame in the input segment. ``Done.latency_ms`` is measured
inside the worker around the Stylizer's preprocess + run + postprocess. If the worker
dies (kernel OOM kill = SIGKILL with the cgroup's oom_kill counter up), ``infer`` says so
in ``WorkerReply.killed`` and ``restart()`` relaunches it like a phone app. ``close()``
(also ``with``, atexit) removes the process, the shared memory and the cgroup.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from dataclasses import asdict, dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import simulator
from simulator.device.throttle import Balloon, Confinement, confine, pid_alive
from simulator.engine import worker_protocol as wp
from simulator.errors import InputError, first_line
from simulator.zoo.registry import ResolvedModel, resolve_model

SHM_DIR = Path("/dev/shm")
PREFIX = "arsim-"
if TYPE_CHECKING:
    from simulator.pipeline.face import FaceTrack, FaceTrackerSettings

_counter = itertools.count()
_live: weakref.WeakSet[InferenceWorker] = weakref.WeakSet()


@dataclass
class WorkerReply:
    """One inference: the stylized frame (None if the worker died), latency measured in the
    worker (or, when killed, the time from the request to the death), resident memory."""

    output: np.ndarray | None
    latency_ms: float
    rss_mb: float | None
    killed: str | None = None
    cpu_ms: float | None = None  # CPU time of the worker (all threads) for this inference


@dataclass
class TrackerStats:
    """The worker's face tracker counters (as ``FaceTracker``'s; reset by a relaunch)."""

    frames: int = 0
    detections: int = 0
    found: int = 0
    detections_per_s: float = 0.0
    ms_per_detection: float = 0.0


class InferenceWorker:
    """A confined child process running one model; see the module docstring."""

    def __init__(self, model_name_or_path: str | Path | ResolvedModel, *, threads: int = 1,
                 cpu_fraction: float | None = None, memory_limit_mb: float | None = None,
                 arena: bool = True, mechanism: str = "auto",
                 start_timeout_s: float = 60.0, fit: str | None = None) -> None:
        self.model = (model_name_or_path if isinstance(model_name_or_path, ResolvedModel)
                      else resolve_model(str(model_name_or_path)))
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InputError("threads", f"expected a thread count >= 1, got {threads!r}")
        self.threads = threads
        from simulator.pipeline.stylize import resolve_fit  # onnxruntime: not at import

        # how frames fit the model input (pipeline/stylize.py); None: the card's default
        self.fit = resolve_fit(self.model.card, fit)
        self.cpu_fraction = cpu_fraction
        self.memory_limit_mb = memory_limit_mb
        self.arena = arena
        self.mechanism_request = mechanism
        self.start_timeout_s = start_timeout_s
        self.confinement: Confinement | None = None
        self.launches = 0
        self.killed: str | None = None  # why the current process is dead, if it is
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._shm: tuple[shared_memory.SharedMemory, shared_memory.SharedMemory] | None = None
        self._seq = 0
        self._closed = False
        self._last_peak: float | None = None  # memory peak of the last dead process
        self.pressure_mb = 0.0  # other apps' memory (apply_pressure); kept across restarts
        self.balloon: Balloon | None = None
        self.tracker_stats = TrackerStats()  # the face tracker in the worker (``track``)
        _live.add(self)
        sweep_stale_segments()
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> InferenceWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id (None before the first start)."""
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        """True while the worker process runs and answers."""
        return self._proc is not None and self._proc.poll() is None and self.killed is None

    @property
    def mechanism(self) -> str:
        """The confinement mechanism in use ("cgroup-v1", ..., "none")."""
        return self.confinement.mechanism if self.confinement else "none"

    def start(self) -> None:
        """Launch the worker, confine it, load the model (a dead launch sets ``killed``)."""
        if self._closed:
            raise RuntimeError("worker is closed")
        parent_sock, child_sock = socket.socketpair()
        # the confined child's memory is what its limits measure: glibc's default policy
        env = {**os.environ, "ARSIM_MALLOC": "default"}
        root = str(Path(simulator.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "simulator.engine.worker", str(child_sock.fileno())],
                pass_fds=[child_sock.fileno()], env=env, stdin=subprocess.DEVNULL)
        finally:
            child_sock.close()
        self._conn = Connection(parent_sock.detach())
        self.killed = None
        self.launches += 1
        self.tracker_stats = TrackerStats()  # a new process: a new tracker
        hello = self._receive(self.start_timeout_s)
        if hello is None:
            return
        self.confinement = confine(self._proc.pid, cpu_fraction=self.cpu_fraction,
                                   memory_limit_mb=self.memory_limit_mb, threads=self.threads,
                                   mechanism=self.mechanism_request)
        self._conn.send(wp.Load(str(self.model.path), self.threads, self.arena))
        ready = self._receive(self.start_timeout_s)
        if ready is None:
            return
        if isinstance(ready, wp.Error):
            raise InputError(self.model.path, ready.text)
        if self._shm is not None:
            self._conn.send(wp.Map(self._shm[0].name, self._shm[1].name, self._shm[0].size))
        if self.pressure_mb > 0 and self.can_balloon:
            self._inflate()  # a relaunch under pressure: the other apps still hold it

    def restart(self) -> None:
        """Relaunch the worker after a kill (same model, same limits: a phone app relaunch)."""
        self._stop_process()
        self.start()

    def close(self) -> None:
        """Stop the process, remove the cgroup and the shared memory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_process()
        finally:
            if self._shm is not None:
                for segment in self._shm:
                    _drop_segment(segment)
                self._shm = None
            _live.discard(self)

    def _stop_process(self) -> None:
        self._stop_balloon()
        conf, self.confinement = self.confinement, None
        proc, self._proc = self._proc, None
        conn, self._conn = self._conn, None
        try:
            if conf is not None and conf.mechanism == "duty-cycle+rlimit":
                conf.close()  # SIGCONT first: a stopped process cannot exit
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    if conn is not None:
                        conn.send(wp.Stop())
                try:
                    proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            if conf is not None:
                conf.close()
            if conn is not None:
                conn.close()

    # --- requests --------------------------------------------------------------------------

    def infer(self, rgb: np.ndarray, size: int | None = None,
              timeout_s: float = 60.0) -> WorkerReply:
        """Stylize one RGB uint8 frame at ``size`` (default: the card's) in the worker."""
        size = self.model.card.input.default_size if size is None else size
        problem = self.model.card.input.size_problem(size)
        if problem:
            raise InputError("input size", f"{problem} (model {self.model.name})")
        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
                and rgb.shape[2] == 3 and rgb.shape[0] > 0 and rgb.shape[1] > 0):
            raise InputError("frame", "expected an RGB uint8 array of shape H x W x 3, got "
                             f"{getattr(rgb, 'dtype', type(rgb).__name__)} "
                             f"{getattr(rgb, 'shape', '')}")
        if not self.alive:
            return WorkerReply(None, 0.0, None, killed=self.killed or "not running")
        height, width = rgb.shape[:2]
        nbytes = rgb.nbytes
        self._ensure_shm(nbytes)
        assert self._shm is not None and self._conn is not None
        np.frombuffer(self._shm[0].buf, np.uint8, nbytes)[:] = rgb.reshape(-1)
        self._seq += 1
        seq = self._seq
        start = time.perf_counter()
        self._conn.send(wp.Infer(seq, height, width, size, self.fit))
        while True:
            reply = self._receive(timeout_s)
            elapsed = (time.perf_counter() - start) * 1000.0
            if reply is None:
                return WorkerReply(None, elapsed, self._last_peak, killed=self.killed)
            if getattr(reply, "seq", None) != seq:
                continue  # the answer to a request abandoned by an exception (Ctrl-C)
            if isinstance(reply, wp.Done):
                out = np.frombuffer(self._shm[1].buf, np.uint8, nbytes)
                output = out.reshape(height, width, 3).copy()
                return WorkerReply(output, reply.latency_ms, reply.rss_mb, None, reply.cpu_ms)
            if isinstance(reply, wp.OutOfMemory):  # RLIMIT_AS: the allocation failed
                self._kill(f"allocation failure under RLIMIT_AS ({reply.text})")
                return WorkerReply(None, elapsed, self._last_peak, killed=self.killed)
            raise RuntimeError(f"inference worker: {reply.text}")

    def track(self, t: float, rgb: np.ndarray, index: int,
              settings: FaceTrackerSettings | None = None,
              timeout_s: float = 60.0) -> FaceTrack | None:
        """``FaceTracker.update(t, rgb, index)`` in the worker (its tracker keeps the track
        between calls; ``settings`` apply when it is created, i.e. on the first call after
        each launch). None when there is no face, or when the worker is dead."""
        from simulator.pipeline.face import FaceTrack, FaceTrackerSettings

        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
                and rgb.shape[2] == 3):
            raise InputError("frame", "expected an RGB uint8 array of shape H x W x 3")
        if not self.alive:
            return None
        face = asdict(settings or FaceTrackerSettings())
        height, width = rgb.shape[:2]
        self._ensure_shm(rgb.nbytes)
        assert self._shm is not None and self._conn is not None
        np.frombuffer(self._shm[0].buf, np.uint8, rgb.nbytes)[:] = rgb.reshape(-1)
        self._seq += 1
        seq = self._seq
        self._conn.send(wp.Detect(seq, height, width, float(t), int(index), face))
        while True:
            reply = self._receive(timeout_s)
            if reply is None:
                return None
            if getattr(reply, "seq", None) != seq:
                continue
            if isinstance(reply, wp.OutOfMemory):
                self._kill(f"allocation failure under RLIMIT_AS ({reply.text})")
                return None
            if not isinstance(reply, wp.Tracked):
                raise RuntimeError(f"face tracker in the worker: {reply.text}")
            self.tracker_stats = TrackerStats(**reply.stats)
            found = reply.found
            if found is None:
                return None
            return FaceTrack(box=found.box, keypoints=np.asarray(found.keypoints, float),
                             confidence=found.confidence, detected=found.detected,
                             age=found.age, detection_box=found.detection_box)

    def release_memory(self, arena: bool | None = None) -> float | None:
        """Drop pooled buffers: recreate the session (``arena`` False disables the CPU
        arena from now on), gc, malloc_trim. Returns the worker's RSS in MB afterwards."""
        if not self.alive:
            return None
        if arena is not None:
            self.arena = arena
        assert self._conn is not None
        self._conn.send(wp.Release(self.arena))
        while True:
            reply = self._receive(60.0)
            if reply is None or isinstance(reply, wp.Released):
                return None if reply is None else reply.rss_mb

    def set_cpu_fraction(self, fraction: float | None) -> None:
        """Change the CPU quota of the running worker (and of later launches)."""
        self.cpu_fraction = fraction
        if self.confinement is not None and self.confinement.mechanism != "none":
            self.confinement.set_cpu_fraction(fraction)
        elif self.alive and fraction is not None:
            if self.confinement is not None:
                self.confinement.close()
            self.confinement = confine(self._proc.pid, cpu_fraction=fraction,  # type: ignore
                                       memory_limit_mb=self.memory_limit_mb,
                                       threads=self.threads, mechanism=self.mechanism_request)

    def set_memory_limit(self, mb: float | None) -> str | None:
        """A memory pressure event: lower (or raise) the limit. Returns the kill reason when
        the worker did not survive it (the kernel refused to shrink below its usage)."""
        self.memory_limit_mb = mb
        conf = self.confinement
        if conf is None or conf.mechanism == "none" or not self.alive:
            return self.killed
        if not conf.set_memory_limit(mb):
            self._kill("low-memory kill: usage above the new limit")
        return self.killed

    @property
    def can_balloon(self) -> bool:
        """True when ``apply_pressure`` can put a balloon in the worker's memory cgroup."""
        conf = self.confinement
        return (self.alive and self.memory_limit_mb is not None and conf is not None
                and conf.memory_cgroup() is not None)

    def apply_pressure(self, mb: float) -> str | None:
        """Other apps take ``mb`` MB (0 releases them): a ``Balloon`` in the worker's memory
        cgroup holds that much (capped at the limit minus a margin), so the worker's own
        memory must fit in the rest or the kernel OOM-kills it (the balloon is exempt).
        Returns the kill reason when the worker did not survive the inflation. Only where
        ``can_balloon``; elsewhere lower the limit with ``set_memory_limit``."""
        if not (isinstance(mb, int | float) and not isinstance(mb, bool) and mb >= 0):
            raise InputError("memory pressure", f"expected MB >= 0, got {mb!r}")
        self.pressure_mb = float(mb)
        self._stop_balloon()
        if not self.alive:
            return self.killed
        if not self.can_balloon:
            raise RuntimeError("no memory cgroup for a balloon (see can_balloon)")
        if mb > 0:
            self._inflate()
        return self.killed

    def _inflate(self) -> None:
        conf = self.confinement
        assert conf is not None and self._proc is not None
        cgroup = conf.memory_cgroup()
        assert cgroup is not None
        self.balloon = Balloon(cgroup, self.pressure_mb, self.memory_limit_mb, self._proc.pid)
        if self.balloon.killed:
            self.balloon = None
        if conf.oom_killed():  # the worker was the OOM killer's victim while it inflated
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5.0)
            self._diagnose(self._proc.poll())

    def _stop_balloon(self) -> None:
        balloon, self.balloon = self.balloon, None
        if balloon is not None:
            balloon.close()

    def rss_mb(self) -> float | None:
        """The worker's resident memory now (VmRSS)."""
        return self.confinement.rss_mb() if self.confinement and self.alive else None

    # --- internals -------------------------------------------------------------------------

    def _receive(self, timeout_s: float) -> Any:
        """The next message, or None when the worker died / timed out (``killed`` set)."""
        assert self._conn is not None and self._proc is not None
        try:
            if self._conn.poll(timeout_s):
                return self._conn.recv()
            self._kill(f"watchdog: no reply within {timeout_s:g} s")
            return None
        except (EOFError, OSError):
            pass
        try:
            code = self._proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self._kill("worker stopped answering")
            return None
        self._diagnose(code)
        return None

    def _diagnose(self, code: int | None) -> None:
        """Why the worker died (kernel OOM, signal, exit code); releases the confinement."""
        conf = self.confinement
        self._last_peak = conf.peak_mb() if conf else None
        if conf is not None and conf.oom_killed():
            self.killed = "kernel OOM"
        elif code is not None and code < 0:
            self.killed = f"signal {signal.Signals(-code).name}"
        else:
            self.killed = f"exit code {code}"
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._release_confinement()

    def _kill(self, reason: str) -> None:
        self.killed = reason
        if self.confinement is not None:
            self._last_peak = self.confinement.peak_mb()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._release_confinement()

    def _release_confinement(self) -> None:
        self._stop_balloon()  # first: a cgroup holding the balloon cannot be removed
        if self.confinement is not None:
            self.confinement.close()
            self.confinement = None

    def _ensure_shm(self, nbytes: int) -> None:
        if self._shm is not None and self._shm[0].size >= nbytes:
            return
        base = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        new = (shared_memory.SharedMemory(f"{base}-in", create=True, size=nbytes),
               shared_memory.SharedMemory(f"{base}-out", create=True, size=nbytes))
        old, self._shm = self._shm, new
        assert self._conn is not None
        self._conn.send(wp.Map(new[0].name, new[1].name, nbytes))
        for segment in old or ():
            _drop_segment(segment)  # the worker keeps its mapping until it maps the new pair


def _drop_segment(segment: shared_memory.SharedMemory) -> None:
    with contextlib.suppress(OSError, BufferError):
        segment.close()
    with contextlib.suppress(OSError):
        segment.unlink()


def sweep_stale_segments() -> list[str]:
    """Unlink /dev/shm/arsim-<pid>-* segments whose owner process is gone."""
    removed = []
    for path in SHM_DIR.glob(f"{PREFIX}*"):
        owner = path.name[len(PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not pid_alive(int(owner)):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path.name)
    return removed


def our_segments(owner: int | None = None) -> list[str]:
    """The shared-memory segments of process ``owner`` (default: this one; leak checks)."""
    owner = os.getpid() if owner is None else owner
    return sorted(p.name for p in SHM_DIR.glob(f"{PREFIX}{owner}-*"))


def close_all() -> None:
    """Close every live worker (atexit; runs before throttle's, atexit being LIFO)."""
    for worker in list(_live):
        with contextlib.suppress(Exception):
            worker.close()


atexit.register(close_all)


# --- the child process -----------------------------------------------------------------------


def _child_main(fd: int) -> None:
    """The worker: serve requests until ``Stop`` or EOF (the parent went away)."""
    import ctypes
    import gc
    import mmap

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    with contextlib.suppress(AttributeError):
        libc.mallopt(-8, 1)  # M_ARENA_MAX = 1: no 64 MB arena per thread
    # libraries first: their mappings are the baseline of the address-space (RLIMIT_AS) budget
    import cv2  # noqa: F401
    import onnxruntime as ort

    from simulator.pipeline.stylize import Stylizer

    ort.set_default_logger_severity(4)  # errors travel back in the reply, not on stderr
    conn = Connection(fd)
    conn.send(wp.Hello(os.getpid()))
    try:
        load = conn.recv()
    except EOFError:
        return
    try:
        model = resolve_model(load.path)
        stylizer = Stylizer(model, model.card.input.default_size, load.threads, arena=load.arena)
    except Exception as exc:  # one line back to the parent
        conn.send(wp.Error(0, first_line(exc)))
        return
    conn.send(wp.Ready(_self_rss()))
    maps: list[mmap.mmap] = []
    tracker: Any = None  # FaceTracker, created by the first Detect
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if isinstance(msg, wp.Stop):
            if tracker is not None:
                tracker.close()
            return
        if isinstance(msg, wp.Map):
            for m in maps:
                m.close()
            maps = []
            for name in (msg.input, msg.output):
                with open(SHM_DIR / name, "r+b") as handle:  # no resource tracker here
                    maps.append(mmap.mmap(handle.fileno(), msg.nbytes))
        elif isinstance(msg, wp.Infer):
            conn.send(_infer(stylizer, maps, msg))
        elif isinstance(msg, wp.Detect):
            if tracker is None:
                from simulator.pipeline.face import FaceTracker, FaceTrackerSettings

                tracker = FaceTracker(FaceTrackerSettings(**msg.face))
            conn.send(_detect(tracker, maps, msg))
        elif isinstance(msg, wp.Release):
            def trim() -> None:
                gc.collect()
                with contextlib.suppress(AttributeError):
                    libc.malloc_trim(0)

            stylizer.reopen(msg.arena, before=trim)
            conn.send(wp.Released(_self_rss()))


def _frame(maps: list, height: int, width: int) -> np.ndarray:
    return np.frombuffer(maps[0], np.uint8, height * width * 3).reshape(height, width, 3)


def _infer(stylizer: Any, maps: list, msg: wp.Infer) -> wp.Done | wp.Error | wp.OutOfMemory:
    """One ``Infer`` in the child: the frame from the input segment, the result into the
    output one, timed around the Stylizer."""
    frame = _frame(maps, msg.height, msg.width)
    stylizer.fit = msg.fit
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        out = stylizer.stylize(frame, msg.size)
        latency = (time.perf_counter() - t0) * 1000.0
        cpu_ms = (time.process_time() - cpu0) * 1000.0
        np.frombuffer(maps[1], np.uint8, frame.nbytes)[:] = out.reshape(-1)
        del frame, out
        return wp.Done(msg.seq, latency, cpu_ms, _self_rss())
    except MemoryError as exc:
        return wp.OutOfMemory(msg.seq, f"MemoryError {exc}"[:200])
    except Exception as exc:
        text = first_line(exc, limit=10_000)
        if "failed to allocate" in text.lower():
            text = text[text.lower().index("failed to allocate"):]
        if "alloc" in text.lower():
            return wp.OutOfMemory(msg.seq, text[:200])
        return wp.Error(msg.seq, text[:200])


def _detect(tracker: Any, maps: list, msg: wp.Detect) -> wp.Tracked | wp.Error | wp.OutOfMemory:
    """One ``Detect`` in the child: the face tracker on the frame in the input segment."""
    try:
        track = tracker.update(msg.t, _frame(maps, msg.height, msg.width).copy(), msg.index)
        found = None if track is None else wp.FoundFace(
            tuple(float(v) for v in track.box), track.keypoints.tolist(),
            float(track.confidence), bool(track.detected), int(track.age),
            None if track.detection_box is None else tuple(track.detection_box))
        stats = {"frames": tracker.frames, "detections": tracker.detections,
                 "found": tracker.found, "detections_per_s": tracker.detections_per_s,
                 "ms_per_detection": tracker.ms_per_detection}
        return wp.Tracked(msg.seq, found, stats)
    except MemoryError as exc:
        return wp.OutOfMemory(msg.seq, f"MemoryError {exc}"[:200])
    except Exception as exc:
        return wp.Error(msg.seq, first_line(exc))


def _self_rss() -> float | None:
    from simulator.device.throttle import proc_status_mb

    return proc_status_mb(os.getpid(), "VmRSS")


if __name__ == "__main__":
    _child_main(int(sys.argv[1]))
