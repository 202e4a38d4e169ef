"""Device profiles and the cost, memory and thermal models of a simulated phone."""

from __future__ import annotations

import itertools
import math
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.device.catalog import (
    bundled_profile_ids,
    describe,
    list_profiles,
    load_profile,
    summary_line,
)
from simulator.device.cost import CostModel
from simulator.device.memory import MemoryModel, derived_app_base_mb
from simulator.device.profile import PROFILES_DIR, REFERENCE_MODEL, BackendProfile
from simulator.device.thermal import ThermalModel
from simulator.errors import InputError

SEED_TABLE = {  # device: (CPU FPS, GPU + FP16 FPS, memory MB)
    "redmi-note-10": (3.2, 9.8, 180),
    "iphone-se-2020": (4.1, 12.5, 160),
    "ipad-pro-m1": (8.7, 22.3, 140),
}
RAM_MB = {"redmi-note-10": 4096, "iphone-se-2020": 3072, "ipad-pro-m1": 8192}
DEVICE_BACKENDS = [(d, b) for d in SEED_TABLE for b in ("cpu", "gpu-fp16")]


def reference_memory(device_id: str, backend: str, **overrides) -> MemoryModel:
    profile = load_profile(device_id)
    options = {
        "weights_bytes_fp32": REFERENCE_MODEL.weights_bytes_fp32,
        "activation_mb": REFERENCE_MODEL.activation_mb_fp32,
        "camera_w": profile.camera.width,
        "camera_h": profile.camera.height,
        "input_size": REFERENCE_MODEL.input_size,
    }
    return MemoryModel(profile, backend, **{**options, **overrides})


def full_load_factors(device_id: str, seconds: int) -> list[float]:
    thermal = ThermalModel(load_profile(device_id))
    factors = []
    for _ in range(seconds):
        thermal.advance(1.0, 1.0)
        factors.append(thermal.factor)
    return factors


def profile_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (PROFILES_DIR / "redmi-note-10.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


# --- profiles ---------------------------------------------------------------------------


NOT_SEED = ["tight-1gb", "web-chromium"]  # bundled, no seed row: estimates or published


def test_bundled_profiles_are_the_seed_devices_with_their_ids():
    assert bundled_profile_ids() == sorted([*SEED_TABLE, *NOT_SEED])
    assert [p.id for p in list_profiles()] == sorted([*SEED_TABLE, *NOT_SEED])


def test_the_tight_profile_leaves_the_model_process_about_100_mb():
    from simulator.device.memory import model_process_budget_mb

    profile = load_profile("tight-1gb")
    assert profile.hardware.ram_mb == 1024
    assert not [k for k, v in profile.sources.items() if v.startswith("seed table")
                and k.startswith("backends")]
    assert 90 < model_process_budget_mb(profile) < 110
    assert model_process_budget_mb(load_profile("redmi-note-10")) > 500


@pytest.mark.parametrize("device_id", SEED_TABLE)
def test_profile_matches_seed_table_and_published_ram(device_id):
    cpu_fps, gpu_fps, memory_mb = SEED_TABLE[device_id]
    profile = load_profile(device_id)
    assert profile.backend("cpu").seed_fps == cpu_fps
    assert profile.backend("gpu-fp16").seed_fps == gpu_fps
    assert profile.memory.seed_memory_mb == memory_mb
    assert profile.hardware.ram_mb == RAM_MB[device_id]
    assert profile.backend("cpu").precision_bytes == 4
    assert profile.backend("gpu-fp16").precision_bytes == 2


@pytest.mark.parametrize("device_id", SEED_TABLE)
def test_every_number_has_a_source(device_id):
    profile = load_profile(device_id)
    sections = [
        profile.hardware,
        profile.camera,
        profile.app,
        profile.render,
        profile.stages,
        profile.memory,
        profile.thermal,
        *profile.backends.values(),
    ]
    ruled = sum(1 for part in sections for f in fields(part) if "rule" in f.metadata)
    assert len(profile.sources) == ruled
    seed_keys = {k for k, v in profile.sources.items() if v.startswith("seed table")}
    assert {
        "backends.cpu.seed_fps",
        "backends.gpu-fp16.seed_fps",
        "memory.seed_memory_mb",
        "memory.budget_fraction",
    } <= seed_keys


def test_load_by_path_equals_load_by_id():
    by_path = load_profile(str(PROFILES_DIR / "iphone-se-2020.toml"))
    assert by_path == load_profile("iphone-se-2020")


def test_describe_lists_every_source_and_derived_numbers():
    profile = load_profile("redmi-note-10")
    text = describe(profile)
    for source in profile.sources.values():
        assert source in text
    assert "GFLOP/s" in text and "app base memory" in text and "819.2" in text


def test_summary_line_is_one_line_per_device():
    lines = [summary_line(p) for p in list_profiles()]
    assert all("\n" not in line for line in lines)
    assert "redmi-note-10" in lines[2] and "9.8 fps" in lines[2]


def test_unknown_device_lists_known_ids():
    with pytest.raises(InputError) as err:
        load_profile("pixel-99")
    assert "pixel-99" in str(err.value)
    for device_id in SEED_TABLE:
        assert device_id in str(err.value)


def test_unknown_backend_lists_available():
    with pytest.raises(InputError, match=r"unknown backend 'npu'.*available: cpu, gpu-fp16"):
        load_profile("redmi-note-10").backend("npu")
    with pytest.raises(InputError, match="npu"):
        CostModel(load_profile("redmi-note-10"), "npu")


def test_missing_profile_file(tmp_path):
    with pytest.raises(InputError, match="no such device profile file"):
        load_profile(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[hardware]", "[hardware", "not a valid TOML file"),
        (
            'ram_mb = { value = 4096, source = "published: Xiaomi spec sheet, 4 GB LPDDR4X'
            ' variant (also sold with 6 GB)" }\n',
            "",
            "missing key 'hardware.ram_mb'",
        ),
        (
            "seed_fps = { value = 3.2,",
            "seed_fps = { value = -3.2,",
            r"key 'backends.cpu.seed_fps.value': expected a number > 0",
        ),
        (
            'tau_s = { value = 200, source = "estimate:',
            'tau_s = { value = 200, source = "guess:',
            "key 'thermal.tau_s.source'",
        ),
        (
            "display_hz = { value = 60,",
            "display_hz = { value = 60.5,",
            "key 'hardware.display_hz.value': expected an integer",
        ),
        (
            "[camera]",
            '[camera]\nzoom = { value = 1, source = "estimate: x" }',
            "key 'camera.zoom': unknown key",
        ),
        (
            "overhead_ms = { value = 1.5,",
            "overhead_ms = { value = 400,",
            "key 'backends.cpu.overhead_ms': expected less than the seed latency",
        ),
        (
            'seed_backend = { value = "gpu-fp16"',
            'seed_backend = { value = "npu"',
            "key 'memory.seed_backend.value'",
        ),
        (
            "seed_memory_mb = { value = 180,",
            "seed_memory_mb = { value = 20,",
            "key 'memory.seed_memory_mb'",
        ),
        (
            "ram_mb = { value = 4096, source",
            "ram_mb = { amount = 4096, source",
            "key 'hardware.ram_mb': expected { value = an integer > 0",
        ),
    ],
)
def test_bad_profile_names_file_and_key(tmp_path, old, new, message):
    path = profile_variant(tmp_path, old, new)
    with pytest.raises(InputError, match=message) as err:
        load_profile(str(path))
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)


# --- cost -------------------------------------------------------------------------------


@pytest.mark.parametrize(("device_id", "backend"), DEVICE_BACKENDS)
def test_reference_inference_reproduces_seed_fps(device_id, backend):
    cost = CostModel(load_profile(device_id), backend)
    seed_fps = SEED_TABLE[device_id][0 if backend == "cpu" else 1]
    assert cost.inference_ms(52.6e9) == pytest.approx(1000.0 / seed_fps, rel=1e-9)


def test_inference_is_overhead_plus_flops_over_throughput_times_thermal_factor():
    profile = load_profile("iphone-se-2020")
    cost = CostModel(profile, profile.backend("gpu-fp16"))
    overhead = profile.backend("gpu-fp16").overhead_ms
    assert cost.inference_ms(0.0) == pytest.approx(overhead)
    compute_256 = cost.inference_ms(52.6e9) - overhead
    assert cost.inference_ms(4 * 52.6e9) == pytest.approx(overhead + 4 * compute_256)
    assert cost.inference_ms(52.6e9, thermal_factor=1.5) == pytest.approx(1.5 * 80.0)
    assert cost.throughput_gflops == pytest.approx(52.6 / (compute_256 / 1000.0))
    with pytest.raises(ValueError):
        cost.inference_ms(1e9, thermal_factor=0.5)


def test_gpu_is_faster_than_cpu_on_every_device():
    for profile in list_profiles():
        if "gpu-fp16" not in profile.backends:
            continue  # the web target has one backend (wasm)
        cpu, gpu = CostModel(profile, "cpu"), CostModel(profile, "gpu-fp16")
        assert gpu.throughput_gflops > cpu.throughput_gflops


def test_pre_post_and_compose_scale_with_pixels():
    profile = load_profile("redmi-note-10")
    cost = CostModel(profile, "cpu")
    assert cost.preprocess_ms(1280, 720) == pytest.approx(3.0 * 1280 * 720 / 1e6)
    assert cost.preprocess_ms(2560, 1440) == pytest.approx(4 * cost.preprocess_ms(1280, 720))
    assert cost.postprocess_ms(512, 1080, 2400) > cost.postprocess_ms(256, 1080, 2400)
    assert cost.postprocess_ms(256, 1080, 2400) == pytest.approx(4.0 * (256**2 + 1080 * 2400) / 1e6)
    assert cost.compose_ms(1080, 2400) == pytest.approx(1.0 + 0.4 * 1080 * 2400 / 1e6)
    assert CostModel(profile, "gpu-fp16").postprocess_ms(256, 1080, 2400) < cost.postprocess_ms(
        256, 1080, 2400
    )


# --- memory -----------------------------------------------------------------------------


@pytest.mark.parametrize("device_id", SEED_TABLE)
def test_reference_footprint_reproduces_seed_memory(device_id):
    seed_mb = SEED_TABLE[device_id][2]
    gpu = reference_memory(device_id, "gpu-fp16")
    assert gpu.footprint_mb(inferring=True) == pytest.approx(seed_mb, abs=5.0)
    # The CPU keeps FP32 weights and activations: exactly the FP16 halves more.
    cpu = reference_memory(device_id, "cpu")
    extra = REFERENCE_MODEL.weights_bytes_fp32 / 2 / 2**20 + REFERENCE_MODEL.activation_mb_fp32 / 2
    assert cpu.footprint_mb(inferring=True) == pytest.approx(seed_mb + extra)


@pytest.mark.parametrize("device_id", SEED_TABLE)
def test_budget_is_20_percent_of_ram_and_kill_limit_drops_with_pressure(device_id):
    memory = reference_memory(device_id, "gpu-fp16")
    assert memory.budget_mb == pytest.approx(0.2 * RAM_MB[device_id])
    limit = memory.kill_limit_mb()
    assert memory.budget_mb < limit < RAM_MB[device_id]
    assert memory.kill_limit_mb(pressure_mb=300) == pytest.approx(limit - 300)
    assert memory.kill_limit_mb(pressure_mb=1e6) == 0.0


def test_footprint_components_follow_inputs():
    base = reference_memory("redmi-note-10", "gpu-fp16")
    assert base.app_base_mb == pytest.approx(derived_app_base_mb(load_profile("redmi-note-10")))
    assert base.app_base_mb > 50
    bigger_camera = reference_memory("redmi-note-10", "gpu-fp16", camera_w=1920, camera_h=1080)
    camera_extra = 3 * 1.5 * (1920 * 1080 - 1280 * 720) / 2**20
    assert bigger_camera.footprint_mb(True) - base.footprint_mb(True) == pytest.approx(camera_extra)
    size_512 = reference_memory(
        "redmi-note-10",
        "gpu-fp16",
        input_size=512,
        activation_mb=4 * REFERENCE_MODEL.activation_mb_fp32,
    )
    assert size_512.footprint_mb(True) > base.footprint_mb(True) + 70
    parts = base.breakdown_mb(inferring=True)
    assert sum(parts.values()) == pytest.approx(base.footprint_mb(inferring=True))


def test_arena_release_counts_activations_only_while_inferring():
    retained = reference_memory("ipad-pro-m1", "gpu-fp16")
    assert retained.footprint_mb(False) == retained.footprint_mb(True)
    released = reference_memory("ipad-pro-m1", "gpu-fp16", retain_arena=False)
    drop = released.footprint_mb(True) - released.footprint_mb(False)
    assert drop == pytest.approx(REFERENCE_MODEL.activation_mb_fp32 / 2)


# --- thermal ----------------------------------------------------------------------------


@pytest.mark.parametrize("device_id", SEED_TABLE)
def test_thermal_cool_first_minute_then_throttles_monotonically(device_id):
    factors = full_load_factors(device_id, 600)
    assert factors[29] == 1.0 and factors[59] == 1.0
    assert factors[-1] > 1.0
    assert all(b >= a for a, b in itertools.pairwise(factors))
    assert factors[-1] <= load_profile(device_id).thermal.max_factor


def test_thermal_cools_down_when_idle_and_time_to_throttle_matches():
    thermal = ThermalModel(load_profile("iphone-se-2020"))
    onset = thermal.time_to_throttle_s()
    thermal.advance(onset - 1.0, 1.0)
    assert thermal.factor == 1.0
    thermal.advance(60.0, 1.0)
    hot = thermal.factor
    assert hot > 1.0
    thermal.advance(600.0, 0.0)
    assert thermal.factor == 1.0
    assert ThermalModel(load_profile("iphone-se-2020")).time_to_throttle_s(0.1) == math.inf


def test_forced_factor_is_a_floor_until_reset():
    thermal = ThermalModel(load_profile("ipad-pro-m1"))
    thermal.force(1.8)
    assert thermal.factor == 1.8
    thermal.advance(3600.0, 1.0)
    assert thermal.factor == 1.8  # above the iPad's modelled maximum of 1.1
    thermal.force(1.0)
    assert 1.0 < thermal.factor <= 1.1
    with pytest.raises(ValueError):
        thermal.force(0.9)


@settings(max_examples=50, deadline=None)
@given(
    steps=st.lists(st.floats(0.0, 120.0), min_size=1, max_size=8),
    busy=st.floats(0.0, 1.0),
)
def test_thermal_state_does_not_depend_on_step_size(steps, busy):
    profile = load_profile("redmi-note-10")
    stepped, single = ThermalModel(profile), ThermalModel(profile)
    for dt in steps:
        stepped.advance(dt, busy)
    single.advance(sum(steps), busy)
    assert stepped.temperature_c == pytest.approx(single.temperature_c, rel=1e-9, abs=1e-12)


def test_backend_profile_throughput_is_derived_not_stored():
    backend = BackendProfile(
        "x",
        seed_fps=10.0,
        overhead_ms=50.0,
        precision_bytes=2,
        preprocess_ns_per_px=0.0,
        postprocess_ns_per_px=0.0,
    )
    assert backend.throughput_gflops == pytest.approx(52.6 / 0.05)


def test_stage_costs_order_and_scale() -> None:
    cost = CostModel(load_profile("redmi-note-10"), "gpu-fp16")
    w, h = 1280, 720
    assert cost.smooth_ms("none", False, w, h) == 0.0
    ema, pose, flow = (cost.smooth_ms(m, False, w, h) for m in ("ema", "pose", "flow"))
    assert 0 < ema < pose < flow
    assert cost.smooth_ms("ema", True, w, h) > ema  # colour stabilisation costs extra
    assert cost.warp_ms(2 * w, h) == pytest.approx(2 * cost.warp_ms(w, h))
    assert cost.face_detect_ms() > 0 and cost.change_ms() > 0
