"""The work cache (simulator/work_cache.py): keys by content, the memory and disk tiers, and
that a warm run's report is the cold run's (and an uncached run's) apart from ``host``."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scenario_fixtures import make_scenario

from simulator import work_cache
from simulator.metrics.flicker import FlickerMeter
from simulator.run import RunSettings, run_scenario
from simulator.work_cache import WorkCache, content_key, frozen, key_of

ROOT = Path(__file__).resolve().parents[1]


def test_keys_follow_content_and_keep_parts_apart() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    assert content_key(a) == content_key(b)
    b[0, 0, 0] = 1
    assert content_key(a) != content_key(b)
    assert content_key(a) != content_key(a.astype(np.int16))  # dtype counts
    assert content_key(a) != content_key(a.reshape(4, 12))  # shape counts
    assert key_of("ab", "c") != key_of("a", "bc")
    assert key_of(1, a) == key_of(1, b.copy() * 0)


def test_a_writable_array_is_hashed_again_a_frozen_one_once() -> None:
    a = np.zeros((8, 8), np.uint8)
    before = content_key(a)
    a[1, 1] = 7  # writable: the key follows the change
    assert content_key(a) != before
    frozen_key = content_key(frozen(a))
    with pytest.raises(ValueError):
        a[0, 0] = 1  # frozen arrays are shared: nobody changes them in place
    assert content_key(a) == frozen_key
    # a key given at freezing stands for the content from then on (a cached value's)
    b = frozen(np.ones(3), "given")
    assert content_key(b) == "given"


def test_memory_tier_is_lru_bounded_by_bytes() -> None:
    cache = WorkCache(None, memory_bytes=3000)
    computed = []

    def make(v: int):
        def compute() -> np.ndarray:
            computed.append(v)
            return np.full(1000, v, np.uint8)
        return compute

    for v in (1, 2, 3):
        cache.get_or_compute("stylized", f"k{v}", make(v))
    cache.get_or_compute("stylized", "k1", make(1))  # a hit: k1 is now the most recent
    cache.get_or_compute("stylized", "k4", make(4))  # evicts k2, the least recently used
    cache.get_or_compute("stylized", "k1", make(1))
    cache.get_or_compute("stylized", "k2", make(2))
    assert computed == [1, 2, 3, 4, 2]
    stats = cache.stats.kinds["stylized"]
    assert (stats.memory_hits, stats.misses) == (2, 5)
    value = cache.get_or_compute("stylized", "k2", make(9))
    assert not value.flags.writeable and value[0] == 2


def test_disk_tier_round_trip_damage_and_pickles(tmp_path: Path) -> None:
    writer = WorkCache(tmp_path, memory_bytes=0)
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    writer.get_or_compute("flow", "k" * 40, lambda: value)
    reader = WorkCache(tmp_path, memory_bytes=0)
    got = reader.get_or_compute("flow", "k" * 40, lambda: pytest.fail("recomputed"))
    np.testing.assert_array_equal(got, value)
    assert reader.stats.kinds["flow"].disk_hits == 1
    path = tmp_path / "work" / "flow" / "kk" / f"{'k' * 40}.npy"
    # a damaged file, and a pickle in .npy clothing: ignored, removed, recomputed
    for bad in (path.read_bytes()[:40], _pickled_npy()):
        path.write_bytes(bad)
        again = WorkCache(tmp_path, memory_bytes=0)
        out = again.get_or_compute("flow", "k" * 40, lambda: value + 1)
        np.testing.assert_array_equal(out, value + 1)
        assert again.stats.kinds["flow"].misses == 1
        np.testing.assert_array_equal(np.load(path, allow_pickle=False), value + 1)


def _pickled_npy() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"boom": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def test_disk_cap_drops_the_least_recently_used(tmp_path: Path) -> None:
    cache = WorkCache(tmp_path, memory_bytes=0, disk_bytes=5 * 1128)  # five 1000-byte entries
    for k in range(5):
        cache.get_or_compute("stylized", f"{k:02d}" + "x" * 38, lambda: np.zeros(1000, np.uint8))
        os.utime(next((tmp_path / "work" / "stylized").glob(f"{k:02d}/*.npy")), (k, k))
    os.utime(next((tmp_path / "work" / "stylized").glob("00/*.npy")), (10, 10))  # 00 was read
    cache.get_or_compute("stylized", "05" + "x" * 38, lambda: np.zeros(1000, np.uint8))
    left = sorted(p.parent.name for p in (tmp_path / "work" / "stylized").rglob("*.npy"))
    assert "01" not in left and "00" in left and "05" in left
    assert cache.disk_usage()[1] <= 5 * 1128 * work_cache.TRIM_TO + 1128


def test_an_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = WorkCache(blocker)
    assert cache.get_or_compute("flow", "a" * 40, lambda: np.ones(3))[0] == 1.0
    assert cache.get_or_compute("flow", "a" * 40, lambda: np.ones(3) * 2)[0] == 1.0  # memory


def _write_many(directory: str, seed: int) -> None:
    cache = WorkCache(Path(directory), memory_bytes=0)
    for k in range(40):
        cache.get_or_compute("stylized", f"{k:040d}", lambda k=k: np.full(50_000, k % 251,
                                                                           np.uint8))


def test_concurrent_writers_leave_whole_files(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(tmp_path), s)) for s in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    files = list((tmp_path / "work" / "stylized").rglob("*.npy"))
    assert len(files) == 40
    for f in files:
        value = np.load(f, allow_pickle=False)
        assert value.shape == (50_000,) and value[0] == int(f.stem) % 251
    assert not list((tmp_path / "work").rglob(".tmp-*"))


def test_a_second_run_in_the_process_reuses_frames_and_outputs(tmp_path: Path) -> None:
    scenario = make_scenario(tmp_path / "sc", frames=12)
    cache = WorkCache(None)
    settings = RunSettings(device="redmi-note-10", thumbnails=0)
    cold = run_scenario(scenario, settings, tmp_path / "cold", cache=cache)
    warm = run_scenario(scenario, RunSettings(device="iphone-se-2020", thumbnails=0),
                        tmp_path / "warm", cache=cache)
    counts = cold.report["host"]["cache"], warm.report["host"]["cache"]
    assert counts[0]["decoded"]["misses"] == 12 and counts[0]["stylized"]["misses"] > 0
    assert counts[1]["decoded"] == {"memory_hits": 12, "disk_hits": 0, "misses": 0}
    assert counts[1]["stylized"]["misses"] == 0
    uncached = run_scenario(scenario, RunSettings(device="iphone-se-2020", thumbnails=0),
                            tmp_path / "none")
    assert "cache" not in uncached.report["host"]
    assert _without_host(warm.report) == _without_host(uncached.report)


def _without_host(report: dict) -> dict:
    return {k: v for k, v in json.loads(json.dumps(report)).items() if k != "host"}


@pytest.mark.slow
def test_warm_disk_cache_report_is_byte_identical_in_another_process(tmp_path: Path) -> None:
    def run(name: str, *flags: str) -> dict:
        subprocess.run([sys.executable, "-m", "simulator", "run", "scenarios/pan-fast",
                        "--out", str(tmp_path / name), "--quiet", *flags],
                       cwd=ROOT, check=True, capture_output=True, timeout=300)
        return json.loads((tmp_path / name / "report.json").read_text())

    cache = ["--cache", str(tmp_path / "cache")]
    cold, warm, none = run("cold", *cache), run("warm", *cache), run("none", "--no-cache")
    assert cold["host"]["cache"]["stylized"]["misses"] > 0
    assert warm["host"]["cache"]["stylized"]["misses"] == 0
    assert warm["host"]["cache"]["stylized"]["disk_hits"] == \
        cold["host"]["cache"]["stylized"]["misses"]
    assert _without_host(cold) == _without_host(warm) == _without_host(none)
    info = subprocess.run([sys.executable, "-m", "simulator", "cache", "info"], cwd=ROOT,
                          env={**os.environ, "ARSIM_CACHE_DIR": str(tmp_path / "cache")},
                          capture_output=True, text=True, check=True).stdout
    assert "work: " in info and "work: 0 files" not in info


def _moving_frames(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8), (7, 7), 0)
    return [frozen(np.roll(base, 3 * i, axis=1).copy()) for i in range(n)]


def test_flicker_pairs_and_flow_are_reused_with_the_same_results() -> None:
    inputs = _moving_frames()
    outputs = [frozen(255 - f) for f in inputs]
    darker = [frozen((f // 2).astype(np.uint8)) for f in outputs]  # other "settings"

    def measure(outs, cache, maps=False):
        meter = FlickerMeter(cache=cache, maps=maps)
        errors = [meter.add(i * 0.1, a, b) for i, (a, b) in enumerate(zip(inputs, outs,
                                                                            strict=True))]
        return errors, meter.summary()

    cache = WorkCache(None)
    plain = measure(outputs, None)
    assert measure(outputs, cache) == plain  # cold: measured and kept
    assert cache.stats.kinds["flicker"].misses == len(inputs) - 1
    assert measure(outputs, cache) == plain  # warm: every pair known
    assert cache.stats.kinds["flicker"].memory_hits == len(inputs) - 1
    flow_misses = cache.stats.kinds["flow"].misses
    assert measure(darker, cache) == measure(darker, None)  # new outputs, known flow
    assert cache.stats.kinds["flow"].misses == flow_misses
    assert cache.stats.kinds["flow"].memory_hits >= len(inputs) - 1
    # a viewer showing the heat-map gets it: known pairs are measured again
    meter = FlickerMeter(cache=cache, maps=True)
    for i, (a, b) in enumerate(zip(inputs, outputs, strict=True)):
        meter.add(i * 0.1, a, b)
        assert (meter.last_map is None) == (i == 0)


def test_model_outputs_do_not_depend_on_the_thread_count() -> None:
    """Why a cached output's key leaves out ONNX Runtime's thread count (a matrix's pool
    workers run with fewer threads than a lone run)."""
    from simulator.pipeline.stylize import Stylizer
    from simulator.zoo.registry import resolve_model

    frame = _moving_frames(1)[0]
    for name in ("toon-classic", "ar-lite"):
        one, two = (Stylizer(resolve_model(name), 128, threads=t).stylize(frame) for t in (1, 2))
        np.testing.assert_array_equal(one, two)


def test_a_videos_frame_count_is_decoded_once(tmp_path: Path, monkeypatch) -> None:
    from simulator.scenario import video

    monkeypatch.setenv("ARSIM_CACHE_DIR", str(tmp_path / "cache"))
    # as for a container that does not say (an iPhone clip with an edit list, an AVI)
    monkeypatch.setattr(video, "container_frame_count", lambda path: None)
    scenario = make_scenario(tmp_path / "sc", frames=9)
    clip = next(p for p in scenario.iterdir() if p.suffix in (".mp4", ".avi", ".mkv"))
    assert video.count_frames(clip) == 9
    monkeypatch.setattr(video, "_decoded_count", lambda *a: pytest.fail("decoded again"))
    assert video.count_frames(clip) == 9
    other = make_scenario(tmp_path / "sc2", frames=7)  # other content: counted anew
    monkeypatch.undo()
    monkeypatch.setenv("ARSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(video, "container_frame_count", lambda path: None)
    assert video.count_frames(next(p for p in other.iterdir() if p.suffix == clip.suffix)) == 7
