"""The replay engine end to end through ``run_scenario``: calibration, scheduler invariants,
events, OOM, determinism (also under CPU load), Ctrl-C and the output video."""

from __future__ import annotations

import json
import math
import multiprocessing
from itertools import pairwise
from pathlib import Path

import cv2
import pytest
from scenario_fixtures import make_scenario

from simulator.device.catalog import list_profiles
from simulator.run import RunSettings, run_scenario
from simulator.sinks import ShownFrame
from simulator.zoo.probe import write_conv_probe

SEED_FPS = {  # the seed table (DESIGN.md), AnimeGANv2 at 256x256
    ("redmi-note-10", "cpu"): 3.2,
    ("redmi-note-10", "gpu-fp16"): 9.8,
    ("iphone-se-2020", "cpu"): 4.1,
    ("iphone-se-2020", "gpu-fp16"): 12.5,
    ("ipad-pro-m1", "cpu"): 8.7,
    ("ipad-pro-m1", "gpu-fp16"): 22.3,
}


@pytest.fixture(scope="module")
def ten_seconds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("s") / "ten", frames=300, width=64, height=48)


@pytest.fixture(scope="module")
def animegan_sized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_conv_probe(tmp_path_factory.mktemp("m") / "gen52.onnx")


def test_every_bundled_profile_is_calibrated_here() -> None:
    covered = {dev for dev, _ in SEED_FPS}
    # no seed rows: tight-1gb (estimates, FLOP/s ratios to the Redmi) and web-chromium (the
    # web target, fitted with arsim calibrate)
    assert {p.id for p in list_profiles()} == covered | {"tight-1gb", "web-chromium"}


@pytest.mark.parametrize(("device", "backend"), sorted(SEED_FPS))
def test_calibration_reproduces_seed_table(
    device: str, backend: str, ten_seconds: Path, animegan_sized: Path, tmp_path: Path
) -> None:
    settings = RunSettings(device=device, backend=backend, model=str(animegan_sized),
                           timing_only=True)
    report = run_scenario(ten_seconds, settings, tmp_path).report
    assert report["model"]["flops"] == pytest.approx(52.6e9, rel=0.001)
    assert report["metrics"]["inference_fps"] == pytest.approx(SEED_FPS[device, backend], rel=0.02)
    # latest-frame-wins keeps the worker busy: display rate follows the inference rate (a
    # rate of intervals: a count over the 10 s would be a whole frame, 3 %, short)
    assert report["metrics"]["display_fps"] == pytest.approx(SEED_FPS[device, backend], rel=0.02)


def test_scheduler_invariants(ten_seconds: Path, animegan_sized: Path, tmp_path: Path) -> None:
    settings = RunSettings(device="iphone-se-2020", backend="gpu-fp16",
                           model=str(animegan_sized), timing_only=True)
    report = run_scenario(ten_seconds, settings, tmp_path).report
    frames = report["frames"]
    hz = report["device"]["display_hz"]
    runs = [f for f in frames if f["stylized"]]
    assert 0 < len(runs) < len(frames)  # slower than the camera: frames are dropped
    for a, b in pairwise(runs):
        assert a["t_infer_end"] <= b["t_infer_start"] + 1e-12  # at most one in flight
    for run in runs:
        # latest frame wins: no newer frame was already captured when this one started
        newer = [f for f in frames if f["index"] > run["index"]]
        assert not newer or newer[0]["t_capture"] > run["t_infer_start"] - 1e-3
    for f in frames:
        if f["displayed"]:
            assert f["stylized"] and f["t_display"] >= f["t_infer_end"]
            assert math.isclose(f["t_display"] * hz, round(f["t_display"] * hz), abs_tol=1e-6)
        assert f["dropped"] == (not f["displayed"])
    m = report["metrics"]
    assert m["dropped_frames"] == len(frames) - m["displayed_frames"]
    assert m["latency_ms"]["p50"] >= 1000.0 / 12.5  # at least one inference


def test_background_pauses_and_memory_pressure_kills(
    tmp_path: Path, animegan_sized: Path
) -> None:
    events = [
        {"t": 2.0, "type": "background"},
        {"t": 3.0, "type": "foreground"},
        {"t": 6.0, "type": "memory_pressure", "mb": 100000},
    ]
    scenario = make_scenario(tmp_path / "ev", frames=300, width=64, height=48, events=events)
    settings = RunSettings(device="ipad-pro-m1", backend="gpu-fp16", model=str(animegan_sized),
                           timing_only=True)
    report = run_scenario(scenario, settings, tmp_path / "out").report
    shown = [d["t"] for d in report["display"]]
    assert shown and not [t for t in shown if 2.0 < t < 3.0]
    assert [t for t in shown if 3.0 < t < 6.0]  # it came back
    assert not [t for t in shown if t > 6.0 + 0.1]  # killed
    assert report["metrics"]["inference_fps"] == pytest.approx(22.3, rel=0.02)  # pause excluded
    (oom,) = report["oom_events"]
    assert oom["t"] == pytest.approx(6.0) and oom["source"] == "model"
    assert oom["memory_mb"] > oom["limit_mb"]
    assert not report["verdict"]["passed"]
    assert any(c["name"] == "max_oom_events" and not c["passed"]
               for c in report["verdict"]["checks"])


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator.scenario.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("syn") / "orbit", "orbit", 3, width=160,
                      height=96, duration_s=1.5)


def _burn(stop_at: float) -> None:
    import time

    x = 0
    while time.monotonic() < stop_at:
        x += 1


def _deterministic_part(report: dict) -> str:
    keep = ("frames", "display", "metrics", "verdict", "series", "oom_events")
    return json.dumps({k: report[k] for k in keep}, sort_keys=True)


@pytest.mark.slow
def test_same_run_twice_is_identical_even_under_load(small_scene: Path, tmp_path: Path) -> None:
    import time

    settings = RunSettings(device="redmi-note-10", backend="gpu-fp16")
    first = run_scenario(small_scene, settings, tmp_path / "a").report
    burners = [multiprocessing.Process(target=_burn, args=(time.monotonic() + 60,))
               for _ in range(2)]
    for p in burners:
        p.start()
    try:
        second = run_scenario(small_scene, settings, tmp_path / "b").report
    finally:
        for p in burners:
            p.terminate()
            p.join()
    assert first["metrics"]["flicker"]["warp_error"] is not None
    assert _deterministic_part(first) == _deterministic_part(second)


def test_ctrl_c_leaves_a_partial_report(small_scene: Path, tmp_path: Path) -> None:
    def interrupt_at_10(done: int, total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    outcome = run_scenario(small_scene, RunSettings(), tmp_path, progress=interrupt_at_10)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["complete"] is False and "Ctrl-C" in on_disk["incomplete_reason"]
    assert (tmp_path / "report.html").exists() and (tmp_path / "junit.xml").exists()
    reached = [f for f in outcome.report["frames"] if f["stylized"]]
    assert 0 < len(reached) <= 10


def test_output_video_shows_the_phone_screen(small_scene: Path, tmp_path: Path) -> None:
    outcome = run_scenario(small_scene, RunSettings(output_video=True), tmp_path)
    video = cv2.VideoCapture(str(outcome.paths["video"]))
    count = 0
    while video.grab():
        count += 1
    assert count == outcome.report["scenario"]["frames"]
    assert video.get(cv2.CAP_PROP_FRAME_WIDTH) == outcome.report["scenario"]["width"]
    assert len(outcome.report["frames"]) == count


@pytest.mark.parametrize(("model", "check"), [
    ("animeganv2-arch", lambda m: m["inference_fps"] == pytest.approx(3.2, rel=0.02)),
    ("ar-lite", lambda m: m["display_fps"] >= 15 and m["inference_fps"] >= 15),
])
def test_zoo_models_on_the_redmi_cpu(model: str, check, ten_seconds: Path, tmp_path: Path) -> None:
    settings = RunSettings(device="redmi-note-10", backend="cpu", model=model, timing_only=True)
    assert check(run_scenario(ten_seconds, settings, tmp_path).report["metrics"])


def test_observer_sees_every_display_with_its_images(small_scene: Path, tmp_path: Path) -> None:
    seen: list[ShownFrame] = []

    class Recorder:
        def send(self, frame: ShownFrame) -> None:
            seen.append(frame)

        def close(self) -> None:
            pass

    outcome = run_scenario(small_scene, RunSettings(), tmp_path, sinks=(Recorder(),))
    assert [f.entry for f in seen] == outcome.report["display"]
    assert [f.t for f in seen] == [e["t"] for e in outcome.report["display"]]
    last = seen[-1]
    assert last.input.shape == last.screen.shape == last.stylized.shape == (96, 160, 3)
    assert not (last.screen == last.stylized).all()  # the HUD is drawn on the screen only
    # the engine's flicker map is the one the report's warp error is the mean of
    compared = [f for f in seen if f.entry["warp_error"] is not None]
    assert compared and all(f.flicker_map is not None for f in compared)
    assert seen[0].flicker_map is None
