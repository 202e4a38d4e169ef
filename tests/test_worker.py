"""simulator.engine.worker: confined inference process, OOM kills, restart, clean-up."""

from __future__ import annotations

import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from simulator.device import throttle
from simulator.device.catalog import load_profile
from simulator.device.cpu_quota import calibrate
from simulator.engine import worker as worker_mod
from simulator.engine.worker import InferenceWorker
from simulator.errors import InputError
from simulator.pipeline.stylize import Stylizer
from simulator.zoo.probe import write_conv_probe
from simulator.zoo.registry import resolve_model

AVAILABLE = throttle.available_mechanisms()
CGROUP = next((m for m in ("cgroup-v2", "cgroup-v1") if m in AVAILABLE), None)
needs_cgroup = pytest.mark.skipif(CGROUP is None, reason="no writable cgroup controllers")
FRAME = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
SMALL = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Needs > 250 MB at 1024 x 1024 (two 128 MB activations), ~20 MB at 128."""
    return write_conv_probe(tmp_path_factory.mktemp("probe") / "probe.onnx", width=32, depth=1)


@pytest.fixture(scope="module")
def free_worker() -> Iterator[InferenceWorker]:
    with InferenceWorker("ar-lite") as w:
        yield w


def owned_by(owner: int) -> list[str]:
    """Cgroups and segments another process (``owner``) left behind."""
    return [str(p) for p in throttle.our_cgroups(owner)] + worker_mod.our_segments(owner)


def test_output_matches_in_process_stylizer(free_worker: InferenceWorker) -> None:
    reply = free_worker.infer(FRAME, 256)
    expected = Stylizer(resolve_model("ar-lite"), 256).stylize(FRAME)
    assert reply.killed is None and reply.output is not None
    assert np.abs(reply.output.astype(int) - expected).max() <= 1
    assert reply.latency_ms > 0 and reply.rss_mb and reply.cpu_ms
    bigger = np.zeros((360, 640, 3), np.uint8)  # segments grow for a larger frame
    assert free_worker.infer(bigger, 128).output.shape == (360, 640, 3)  # type: ignore[union-attr]


@pytest.mark.parametrize("mechanism", [*([CGROUP] if CGROUP else []), "duty-cycle+rlimit"])
def test_quota_of_0_3_is_about_3x_slower(free_worker: InferenceWorker, mechanism: str) -> None:
    with InferenceWorker("ar-lite", cpu_fraction=0.3, mechanism=mechanism) as w:
        assert w.mechanism == mechanism
        for worker in (free_worker, w, free_worker, w):  # warm-up
            worker.infer(FRAME, 256)
        # interleaved, so a busy moment of this shared host slows both alike
        free, confined = [], []
        for _ in range(5):
            free.append(free_worker.infer(FRAME, 256).latency_ms)
            confined.append(w.infer(FRAME, 256).latency_ms)
    ratio = statistics.median(confined) / statistics.median(free)
    # ~3.3x on a quiet box (docs/throttling.md); an unconfined worker would give ~1
    assert 1.5 < ratio < 10.0, ratio


@needs_cgroup
def test_kernel_oom_kill_is_detected_and_restart_works(probe: Path) -> None:
    with InferenceWorker(probe, memory_limit_mb=100) as w:
        assert w.infer(SMALL, 128).killed is None  # fits
        first = w.pid
        reply = w.infer(SMALL, 1024)  # does not fit: the kernel kills the worker
        assert reply.killed == "kernel OOM" and reply.output is None
        assert reply.latency_ms > 0 and not w.alive
        assert w.infer(SMALL, 128).killed == "kernel OOM"  # dead until relaunched
        w.restart()
        assert w.alive and w.pid != first and w.launches == 2
        assert w.infer(SMALL, 128).output is not None


@needs_cgroup
def test_memory_pressure_below_usage(probe: Path) -> None:
    with InferenceWorker(probe, memory_limit_mb=400) as w:
        assert w.infer(SMALL, 512).killed is None
        assert w.set_memory_limit(300) is None  # still fits
        killed = w.set_memory_limit(1)
        if killed is None:  # cgroup v2 reclaims then OOM-kills on the next allocation
            killed = w.infer(SMALL, 512).killed
        assert killed in ("kernel OOM", "low-memory kill: usage above the new limit")


def test_rlimit_fallback_fails_the_allocation(probe: Path) -> None:
    """The limit is set relative to what this worker holds once its model is loaded, so the
    test does not depend on the worker's baseline footprint (it once sat at 160 MB RSS under
    a fixed 150 MB limit, and even the small inference failed)."""
    with InferenceWorker(probe, cpu_fraction=8.0, mechanism="duty-cycle+rlimit") as w:
        assert w.mechanism == "duty-cycle+rlimit"
        held = w.rss_mb()
        assert held and w.set_memory_limit(held + 60) is None
        assert w.infer(SMALL, 128).killed is None
        killed = w.infer(SMALL, 1024).killed
        assert killed and killed.startswith("allocation failure under RLIMIT_AS")
        w.restart()
        assert w.infer(SMALL, 128).output is not None


def test_rlimit_below_what_the_worker_holds_is_refused(probe: Path) -> None:
    before = owned_by(os.getpid())
    with pytest.raises(InputError, match="not above what the process already holds"):
        InferenceWorker(probe, memory_limit_mb=5, mechanism="duty-cycle+rlimit")
    assert owned_by(os.getpid()) == before  # the refused worker is gone


def test_release_memory_and_no_arena(probe: Path) -> None:
    with InferenceWorker(probe, arena=False) as w:
        assert w.infer(SMALL, 512).output.shape == SMALL.shape
        released = w.release_memory()
        assert released > 0 and w.arena is False  # the worker's RSS after the release
        assert w.release_memory(arena=True) > 0 and w.arena is True
        assert w.infer(SMALL, 128).output.shape == SMALL.shape


def test_bad_input(free_worker: InferenceWorker) -> None:
    for frame, size in ((FRAME.astype(np.float32), 256), (FRAME[..., 0], 256), (FRAME, 7)):
        with pytest.raises(InputError):
            free_worker.infer(frame, size)
    with pytest.raises(InputError):
        InferenceWorker("ar-lite", threads=0)
    with pytest.raises(InputError):
        InferenceWorker("ar-lite", cpu_fraction=-1.0)
    assert free_worker.alive


def test_close_leaves_nothing() -> None:
    before = owned_by(os.getpid())  # the module's shared worker is still open
    with pytest.raises(RuntimeError), InferenceWorker(
            "ar-lite", cpu_fraction=0.5, memory_limit_mb=500) as w:
        w.infer(FRAME, 256)
        pid = w.pid
        raise RuntimeError("boom")
    assert pid and not throttle.pid_alive(pid)
    assert owned_by(os.getpid()) == before


SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading, numpy as np
    from simulator.engine.worker import InferenceWorker
    w = InferenceWorker("ar-lite", cpu_fraction=0.1, memory_limit_mb=500)
    print(os.getpid(), w.pid, flush=True)
    frame = np.zeros((256, 256, 3), np.uint8)
    w.infer(frame, 256)
    how = sys.argv[1]
    if how == "crash":
        raise RuntimeError("crash")
    if how == "ctrl-c":
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        while True:
            w.infer(frame, 256)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("how", ["crash", "ctrl-c", "sigkill"])
def test_nothing_left_after_abnormal_exit(how: str) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, how], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    owner, worker_pid = (int(x) for x in proc.stdout.split()[:2])
    if how == "sigkill":  # no clean-up code can run: the worker exits on EOF, the tracker
        assert proc.returncode == -signal.SIGKILL  # unlinks the segments, sweep the cgroup
        for _ in range(100):
            if not throttle.pid_alive(worker_pid) and not owned_by(owner):
                break
            time.sleep(0.05)
            throttle.sweep_stale()
    else:
        assert ("KeyboardInterrupt" if how == "ctrl-c" else "RuntimeError") in proc.stderr
    assert not throttle.pid_alive(worker_pid)
    assert owned_by(owner) == []


def test_calibration_finds_the_quota() -> None:
    redmi = load_profile("redmi-note-10")
    slow = dataclasses.replace(redmi.backend("cpu"), seed_fps=0.1)  # ~5x slower than us
    profile = dataclasses.replace(redmi, backends={"cpu": slow})
    result = calibrate(profile, "cpu", "ar-lite", 256, runs=3)
    assert result.host_too_slow is None and result.cpu_fraction is not None
    assert 0.05 < result.cpu_fraction < 1.0
    assert abs(result.measured_ms / result.predicted_ms - 1) <= 0.10 or result.iterations == 6
    fast = calibrate(redmi, "gpu-fp16", "ar-lite", 256, runs=3)
    assert fast.cpu_fraction is None and fast.host_too_slow and fast.host_too_slow > 1


def test_stale_segment_sweep(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = Path("/dev/shm") / f"arsim-{dead}-0-in"
    stale.write_bytes(b"x")
    assert stale.name in worker_mod.sweep_stale_segments()
    assert not stale.exists()


def test_face_tracker_in_the_worker_matches_the_in_process_one(leftovers) -> None:
    import cv2

    from simulator.pipeline.face import FaceTracker, FaceTrackerSettings
    from simulator.scenario.synth import FACE_ASSET

    photo = cv2.cvtColor(cv2.imread(str(FACE_ASSET)), cv2.COLOR_BGR2RGB)
    frame = np.full((240, 320, 3), 90, np.uint8)
    frame[32 : 32 + photo.shape[0], 72 : 72 + photo.shape[1]] = photo
    settings = FaceTrackerSettings(detect_every=1)
    with FaceTracker(settings) as tracker:
        local = tracker.update(0.0, frame, 0)
    assert local is not None
    with InferenceWorker("ar-lite", cpu_fraction=0.5) as w:
        got = w.track(0.0, frame, 0, settings)
        assert got is not None and got.detected and got.age == 0
        assert got.keypoints.shape == (6, 2)
        (ax, ay, aw, ah), (bx, by, bw, bh) = got.box, local.box
        iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
        ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
        assert iw * ih / (aw * ah + bw * bh - iw * ih) > 0.8
        assert w.tracker_stats.detections == 1 and w.tracker_stats.found == 1
        assert w.infer(frame, 256).output is not None  # inference still works after it
        assert w.track(0.1, np.zeros((240, 320, 3), np.uint8), 3) is not None  # cached
    assert not leftovers.new()
