"""arsim compare / calibrate and the mobile report contract (schema + test vector)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator.compare import compare_reports, format_table, write_compare_html
from simulator.device.calibrate import calibrate_profile
from simulator.device.catalog import load_profile
from simulator.device.profile import PROFILES_DIR
from simulator.errors import InputError
from simulator.mobile.contract import schema_errors
from simulator.report.reader import load_report
from simulator.run import RunSettings, run_scenario

ROOT = Path(__file__).resolve().parents[1]
VECTOR_PATH = ROOT / "mobile" / "test-vectors" / "minimal-device-report.json"


def _run(scenario: Path, out: Path, device: str, model: str = "toon-classic",
         size: int | None = None) -> Path:
    settings = RunSettings(device=device, backend="cpu", model=model, input_size=size,
                           timing_only=True)
    return run_scenario(scenario, settings, out).paths["json"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("sc") / "tiny", frames=30)


@pytest.fixture(scope="module")
def two_devices(scenario, tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("runs")
    return [_run(scenario, out / d, d) for d in ("redmi-note-10", "iphone-se-2020")]


def test_compare_two_devices(two_devices, tmp_path):
    result = compare_reports(two_devices)
    assert [r["label"] for r in result["reports"]] == [
        "simulator/redmi-note-10/cpu/toon-classic@256",
        "simulator/iphone-se-2020/cpu/toon-classic@256",
    ]
    rows = {row["key"]: row for row in result["rows"]}
    assert len(rows) == 10 and rows["oom_count"]["values"] == [0, 0]
    mem = rows["metrics.memory_peak_mb"]
    assert mem["delta"][0] == 0
    assert mem["delta"][1] == pytest.approx(mem["values"][1] - mem["values"][0])
    assert mem["delta_pct"][1] == pytest.approx(100 * mem["delta"][1] / mem["values"][0])
    assert rows["metrics.flicker.warp_error"]["delta"] == [None, None]  # timing-only: null
    table = format_table(result)
    assert "memory peak (MB)" in table and "verdict" in table and "%)" in table
    html = write_compare_html(result, tmp_path / "cmp.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "iphone-se-2020" in html
    assert "http" not in re.sub(r'xmlns="http[^"]*"', "", html)  # self-contained


def test_compare_refuses_bad_reports(two_devices, tmp_path):
    data = json.loads(two_devices[0].read_text())
    cases = {
        "schema": ({**data, "schema": "other/1"}, "field 'schema'"),
        "missing": ({**data, "metrics": {k: v for k, v in data["metrics"].items()
                                         if k != "jank_pct"}}, "missing field 'metrics.jank_pct'"),
        "type": ({**data, "input_size": "256"}, "field 'input_size': expected an integer"),
        "scenario": ({**data, "scenario": {**data["scenario"], "name": "other"}}, "scenario.name"),
    }
    for name, (report, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(report))
        with pytest.raises(InputError, match=re.escape(message)) as info:
            compare_reports([two_devices[0], path])
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_report(tmp_path / "bad.json")
    with pytest.raises(InputError, match="at least two"):
        compare_reports([two_devices[0]])


def test_device_test_vector_matches_schema_and_loads(two_devices, tmp_path):
    vector = json.loads(VECTOR_PATH.read_text())
    assert vector["target"] in ("android", "ios", "web")
    assert schema_errors(vector) == []
    assert schema_errors(json.loads(two_devices[0].read_text())) == []  # simulator reports too
    broken = {**vector, "metrics": {**vector["metrics"], "display_fps": "fast"}}
    assert schema_errors(broken)
    # a device report and a simulator report of the same scenario compare side by side
    device = {**vector, "scenario": {**vector["scenario"], "name": "tiny"}}
    path = tmp_path / "device.json"
    path.write_text(json.dumps(device))
    result = compare_reports([two_devices[0], path])
    assert result["reports"][1]["label"].startswith(f"{vector['target']}/")


# --- calibrate ---------------------------------------------------------------------------

def test_calibrate_recovers_altered_profile(scenario, tmp_path):
    text = (PROFILES_DIR / "redmi-note-10.toml").read_text()
    truth = {"seed_fps": 5.0, "overhead_ms": 3.0, "seed_memory_mb": 200.0}
    altered = re.sub(r'(\[backends\.cpu\]\nseed_fps = \{ value = )3\.2', r"\g<1>5.0", text)
    altered = altered.replace('overhead_ms = { value = 1.5,', 'overhead_ms = { value = 3.0,')
    altered = altered.replace('seed_memory_mb = { value = 180,', 'seed_memory_mb = { value = 200,')
    device = tmp_path / "altered.toml"
    device.write_text(altered)
    assert load_profile(device).backends["cpu"].seed_fps == 5.0
    reports = [_run(scenario, tmp_path / f"r{size}", str(device), "animeganv2-arch", size)
               for size in (256, 512)]
    new_text, summary = calibrate_profile(reports, "redmi-note-10")
    fit = summary["backends"]["cpu"]
    assert fit["seed_fps"] == pytest.approx(truth["seed_fps"], rel=0.02)
    assert fit["overhead_ms"] == pytest.approx(truth["overhead_ms"], rel=0.02)
    assert summary["memory"]["seed_memory_mb"] == pytest.approx(truth["seed_memory_mb"], rel=0.02)
    out = tmp_path / "calibrated.toml"
    out.write_text(new_text)
    profile = load_profile(out)
    assert profile.backends["cpu"].seed_fps == pytest.approx(5.0, rel=0.02)
    assert profile.backends["gpu-fp16"].seed_fps == 9.8  # untouched
    source = profile.sources["backends.cpu.seed_fps"]
    assert source.startswith("measured: arsim calibrate from ") and str(reports[0]) in source
    assert profile.sources["backends.gpu-fp16.seed_fps"] == "seed table"
    assert {c["key"] for c in summary["changes"]} == {
        "backends.cpu.seed_fps", "backends.cpu.overhead_ms", "memory.seed_memory_mb"}
    # one model size: overhead kept (3.0 true, 1.5 in the profile), throughput still fitted
    _, single = calibrate_profile(reports[:1], "redmi-note-10")
    assert single["backends"]["cpu"]["overhead_ms"] == 1.5
    assert "calibrated redmi-note-10" in single["text"]


def test_calibrate_refuses_unknown_backend(two_devices, tmp_path):
    data = json.loads(two_devices[0].read_text())
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**data, "backend": "npu"}))
    with pytest.raises(InputError, match="'npu' is not a backend"):
        calibrate_profile([path], "redmi-note-10")


def test_calibrate_cycle_timing_fits_completion_intervals(two_devices, tmp_path):
    # A single-threaded target: the model call takes 60 ms but a new result completes every
    # 100 ms (pre- and post-processing on the same thread). --timing cycle fits the 100 ms.
    data = json.loads(two_devices[0].read_text())
    frames = [{"index": i, "t_capture": i / 30, "stylized": True, "input_size": 256,
               "t_infer_start": 0.04 + 0.1 * i, "t_infer_end": 0.1 + 0.1 * i, "dropped": False}
              for i in range(20)]
    path = tmp_path / "single-thread.json"
    path.write_text(json.dumps({**data, "frames": frames, "series": {}}))
    _, model = calibrate_profile([path], "redmi-note-10", timing="model")
    _, cycle = calibrate_profile([path], "redmi-note-10", timing="cycle")
    overhead = load_profile("redmi-note-10").backends["cpu"].overhead_ms
    flops = data["model"]["flops"]
    for summary, latency in ((model, 60.0), (cycle, 100.0)):
        slope = 1.0 / (summary["backends"]["cpu"]["throughput_gflops"] * 1e6)
        assert overhead + flops * slope == pytest.approx(latency, rel=1e-6)
    assert "completion intervals" in " ".join(cycle["notes"])
    with pytest.raises(InputError, match="timing"):
        calibrate_profile([path], "redmi-note-10", timing="wall")


def test_the_cycle_is_the_mean_completion_interval_never_across_a_background_period():
    """Display FPS is 1 / the mean interval, so the fitted cycle is the mean (a slow model's
    occasional long cycle counts), but an interval spanning a background period is not a cycle."""
    from simulator.device.calibrate import cycle_ms

    ends = [0.1, 0.2, 0.3, 0.4, 0.7]  # intervals 100, 100, 100, 300 ms
    report = {"input_size": 256, "display": [],
              "frames": [{"stylized": True, "t_infer_end": t} for t in ends]}
    assert cycle_ms(report, "r")[0] == pytest.approx(150.0)  # the median would say 100
    report["display"] = [{"t": 0.65, "after_gap": True}]  # the app was away in (0.4, 0.7]
    cycle, how = cycle_ms(report, "r")
    assert cycle == pytest.approx(100.0) and how == "mean of 3 completion intervals"


@pytest.mark.parametrize("height", [":", [None], 0, True])
def test_calibrate_refuses_a_bad_frame_size(tmp_path, height):
    """Found by make fuzz: scenario.height ':' or [None] was a ValueError / TypeError."""
    report = json.loads(VECTOR_PATH.read_text())
    report["scenario"]["height"] = height
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    with pytest.raises(InputError, match=r"field 'scenario.height': expected a positive integer"):
        calibrate_profile([path], "redmi-note-10")


def test_fit_line_states_its_uncertainty_and_what_it_cannot_determine():
    import numpy as np

    from simulator.device.calibrate import fit_line

    rng = np.random.default_rng(7)
    overhead, slope = 4.0, 20.0 / 1e9  # 4 ms + 20 ms per GFLOP
    flops = [g * 1e9 for g in (1, 2, 4, 8) for _ in range(5)]
    points = [(f, overhead + slope * f + rng.normal(0, 1.0)) for f in flops]
    fit = fit_line(points, overhead_ms=99.0)
    assert fit.overhead_se and fit.slope_se and not fit.warnings
    assert abs(fit.overhead_ms - overhead) < 4 * fit.overhead_se
    assert abs(fit.slope - slope) < 4 * fit.slope_se
    # relative least squares: the residuals weighted by 1 / latency^2 sum to zero
    weighted = [r / lat**2 for r, (_, lat) in zip(fit.residuals_ms, points, strict=True)]
    assert len(fit.residuals_ms) == 20 and abs(sum(weighted)) < 1e-9 and not fit.rejected
    # more runs, smaller errors
    more = fit_line(points * 4, overhead_ms=99.0)
    assert more.slope_se < fit.slope_se
    fps, fps_se = fit.seed_fps()
    assert fps > 0 and 0 < fps_se < fps
    # two runs, two parameters: no uncertainty, and it says so
    two = fit_line(points[:1] + points[-1:], overhead_ms=99.0)
    assert two.slope_se is None and any("nothing is left" in w for w in two.warnings)
    assert any("two FLOP counts" in w for w in two.warnings)
    # one FLOP count: the overhead is the profile's, said as much
    one = fit_line([p for p in points if p[0] == 1e9], overhead_ms=3.0)
    assert one.overhead_ms == 3.0 and one.overhead_se is None and one.slope_se is not None
    assert any("one FLOP count" in w for w in one.warnings)


def test_a_stray_run_is_left_out_of_the_fit_and_named():
    """One run of a slow workload 50 % off (the machine was busy) must not bend the fit: it is
    left out, said so, and the fast workloads, judged in per cent, stay within 2 %."""
    import numpy as np

    from simulator.device.calibrate import fit_with_pixels

    rng = np.random.default_rng(3)
    overhead, slope, per_px = 40.0, 300.0 / 1e9, 1000e-6

    def cost(flops: float, px: float) -> float:
        return overhead + slope * flops + per_px * px

    workloads = [(k * s * s, s * s) for k in (250.0, 22000.0) for s in (192, 256)]
    points = [(f, px, cost(f, px) * (1 + rng.normal(0, 0.02))) for f, px in workloads
              for _ in range(3)]
    stray = len(points) - 1
    points[stray] = (*points[stray][:2], points[stray][2] * 1.5)
    fit = fit_with_pixels(points, overhead_ms=1.0)
    assert fit.rejected == (stray,)
    assert any("left out of the fit" in w and f"run {stray + 1} " in w for w in fit.warnings)
    for f, px in workloads:
        predicted = fit.overhead_ms + fit.slope * f + fit.pixel_ns * 1e-6 * px
        assert abs(predicted / cost(f, px) - 1) < 0.02
    # without the stray run nothing is left out: ordinary scatter is never an outlier
    assert fit_with_pixels(points[:stray], overhead_ms=1.0).rejected == ()


def test_calibrated_profile_records_standard_errors(scenario, tmp_path):
    reports = [_run(scenario, tmp_path / f"r{size}-{k}", "redmi-note-10", "animeganv2-arch",
                    size) for size in (192, 256, 320) for k in range(2)]
    text, summary = calibrate_profile(reports, "redmi-note-10")
    fit = summary["backends"]["cpu"]
    assert fit["stderr"]["seed_fps"] is not None and "± " in summary["text"]
    assert "residuals (ms)" in summary["text"]
    out = tmp_path / "fitted.toml"
    out.write_text(text)
    profile = load_profile(out)
    assert profile.stderrs["backends.cpu.seed_fps"] == pytest.approx(
        fit["stderr"]["seed_fps"], rel=1e-3)
    out.write_text(text.replace("stderr = ", "stderr = -", 1))
    with pytest.raises(InputError, match="stderr"):
        load_profile(out)


def test_compare_states_spread_over_repeats_and_significance(two_devices, tmp_path):
    from simulator.compare import format_table, render_compare_html, repeat_stats

    base = json.loads(Path(two_devices[0]).read_text())
    paths = []
    for target, fps in (("simulator", [20.0]), ("web", [15.1, 14.8, 15.3]),
                        ("android", [19.0, 21.5, 20.2])):
        for k, value in enumerate(fps):
            report = json.loads(json.dumps(base))
            report["target"], report["metrics"]["display_fps"] = target, value
            path = tmp_path / f"{target}-{k}.json"
            path.write_text(json.dumps(report))
            paths.append(path)
    result = compare_reports(paths)
    sides = {s["side"].split("/")[0]: s for s in repeat_stats(result)}
    assert [s["n"] for s in sides.values()] == [1, 3, 3]
    fps = {name: side["rows"][0] for name, side in sides.items()}
    assert fps["simulator"]["low"] is None and fps["simulator"]["p"] is None
    assert fps["web"]["low"] < 15.07 < fps["web"]["high"]
    assert fps["web"]["significant"] and fps["web"]["p"] < 0.01  # 15 vs 20: real
    assert not fps["android"]["significant"]  # 20.2 +- 1.2 vs 20: noise
    text = format_table(result)
    assert "spread over repeats" in text and "within the noise" in text and "significant" in text
    assert "Spread over repeats" in render_compare_html(result)
    # no repeats: no such section
    assert "spread over repeats" not in format_table(compare_reports(two_devices))


def test_a_run_on_a_calibrated_profile_states_a_prediction_interval(scenario, tmp_path):
    text = (PROFILES_DIR / "redmi-note-10.toml").read_text()
    marked = re.sub(r'(\[backends\.cpu\]\nseed_fps = \{ value = 3\.2, source = "[^"]*")',
                    r"\g<1>, stderr = 0.4", text)
    assert marked != text
    device = tmp_path / "fitted.toml"
    device.write_text(marked)
    settings = RunSettings(device=str(device), model="animeganv2-arch", timing_only=True)
    report = run_scenario(scenario, settings, tmp_path / "run").report
    prediction = report["prediction"]
    low, high = prediction["display_fps"]
    assert low <= report["metrics"]["display_fps"] <= high and low < high
    assert prediction["level"] == 0.95 and "seed_fps" in prediction["method"]
    slow, fast = prediction["latency_p50_ms"]
    assert slow < report["metrics"]["latency_ms"]["p50"] < fast or \
        fast < report["metrics"]["latency_ms"]["p50"] < slow
    from simulator.report.console import format_verdict

    assert "predicted (95% from the calibration's standard errors)" in format_verdict(report)
    plain = run_scenario(scenario, RunSettings(model="animeganv2-arch", timing_only=True),
                         tmp_path / "plain").report
    assert "prediction" not in plain and "predicted" not in format_verdict(plain)


def test_a_per_input_pixel_cost_is_fitted_when_the_runs_can_tell_it_apart():
    import numpy as np

    from simulator.device.calibrate import fit_with_pixels

    rng = np.random.default_rng(11)
    overhead, slope, per_px = 50.0, 400.0 / 1e9, 800e-6  # ms, ms/FLOP, ms/pixel
    flops_per_px = {"small": 250.0, "big": 22000.0}  # two models' FLOPs per input pixel
    points = []
    for k in flops_per_px.values():
        for side in (192, 224, 256):
            px = side * side
            for _ in range(3):
                points.append((k * px, px, overhead + slope * k * px + per_px * px
                               + rng.normal(0, 2.0)))
    fit = fit_with_pixels(points, overhead_ms=1.0)
    assert fit.pixel_se is not None and "input pixels" in fit.method
    assert abs(fit.pixel_ns - per_px * 1e6) < 4 * fit.pixel_se
    assert abs(fit.slope - slope) < 4 * fit.slope_se
    # one model: FLOPs grow with the pixels, the two costs cannot be told apart
    one = fit_with_pixels([p for p in points if p[0] / p[1] == 250.0], overhead_ms=1.0)
    assert one.pixel_ns == 0.0 and any("per-input-pixel" in w for w in one.warnings)


def test_the_pixel_cost_goes_into_the_profile_and_the_cost_model(tmp_path):
    from simulator.device.calibrate import _rewrite
    from simulator.device.cost import CostModel

    text = (PROFILES_DIR / "web-chromium.toml").read_text()
    assert "input_ns_per_px" not in text  # left out: 0, with a source that says so
    plain = load_profile("web-chromium")
    assert plain.backends["wasm"].input_ns_per_px == 0.0
    assert "default" in plain.sources["backends.wasm.input_ns_per_px"]
    fitted = tmp_path / "fitted.toml"
    fitted.write_text(_rewrite(text, {"backends.wasm.input_ns_per_px": 800.0},
                               "measured: a test", {"backends.wasm.input_ns_per_px": 50.0}))
    profile = load_profile(fitted)
    assert profile.backends["wasm"].input_ns_per_px == 800.0
    assert profile.stderrs["backends.wasm.input_ns_per_px"] == 50.0
    before = CostModel(plain, "wasm").inference_ms(1e9, input_pixels=65536)
    after = CostModel(profile, "wasm").inference_ms(1e9, input_pixels=65536)
    assert after - before == pytest.approx(800e-6 * 65536)


def _fidelity_bench():
    """bench/mobile_calibration.py, loaded from its path (bench/ is no package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "mobile_calibration.py"
    spec = importlib.util.spec_from_file_location("mobile_calibration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fidelity_bench_appends_each_run_to_its_history(tmp_path):
    """--history: each run of the bench becomes the next numbered section, with its commit
    and its worst row; the earlier sections stay as they were. The result is the last real
    bench run this repository holds."""
    import copy

    bench = _fidelity_bench()
    result = json.loads((Path(bench.ROOT) / "bench" / "mobile_calibration.json").read_text())
    history = tmp_path / "runs.md"
    assert bench.append_history(history, {**result, "commit": "abc1234"}) == 1
    first = history.read_text()
    missed = copy.deepcopy(result)
    row = missed["phones"][1]["rows"][0]
    row.update(error_pct=-12.5, within_goal=False, why="a model error")
    assert bench.append_history(history, missed) == 2
    text = history.read_text()
    assert text.startswith(first) and text.startswith("# Runs of the web-phone fidelity check")
    sections = text.split("\n## Run ")[1:]
    assert sections[0].startswith("1: 15 of 15 within ±10 %") and "commit abc1234" in sections[0]
    rows = len(result["phones"]) * len(result["phones"][0]["rows"])
    assert sections[1].startswith(f"2: {rows - 1} of {rows} within ±10 % (largest error -12.5 %,"
                                  f" x{row['throttle']:g} {row['model']}@{row['input_size']})")
    assert "-12.5 % (a model error) |" in sections[1]
    assert sum(line.startswith("| x") for line in sections[1].splitlines()) == rows


@pytest.mark.parametrize("flag", ["--out", "--history"])
def test_the_fidelity_bench_refuses_an_unwritable_output_before_any_run(
    tmp_path, monkeypatch, flag
):
    """Half an hour of web runs is never lost to a bad path given at the start: the bench
    stops at once (OutputError: one line and exit 4 from its __main__), no Appium started."""
    from simulator.errors import OutputError

    bench = _fidelity_bench()
    monkeypatch.setattr(bench, "AppiumServer", lambda *a, **k: pytest.fail("runs started"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = ["--out", str(tmp_path / "out"), flag, str(blocker / "below")]  # the last --out wins
    with pytest.raises(OutputError, match=flag):
        bench.main(args)
