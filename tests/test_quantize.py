"""FP16 and INT8 variants (real ONNX Runtime conversion and quantisation), their cards, their
quality against the FP32 parent, and the host benchmark."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from simulator.errors import InputError
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.zoo.card import CARD_SUFFIX, load_card, save_card
from simulator.zoo.host_bench import bench_frame, bench_model, format_bench
from simulator.zoo.probe import write_conv_probe
from simulator.zoo.quality import compare_models
from simulator.zoo.quantize import DEFAULT_EVALUATION, quantize_model, scenario_frames
from simulator.zoo.registry import resolve_model

# Measured here on 2 pan-fast frames at 256 (4 calibration frames): fp16 66 / 74 dB, int8
# 43.3 / 52.8 dB and SSIM 0.995 / 0.998 (toon-classic / probe). Weights cut to 1..3 mantissa
# bits score 27..35 dB (toon-classic) and 38..40 dB (probe); a probe with other weights 24 dB.
FP16_MIN_PSNR = 50.0
INT8_MIN_PSNR = 40.0
INT8_MIN_SSIM = 0.98


@pytest.fixture(scope="module")
def parents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("parents")
    probe = write_conv_probe(folder / "probe.onnx", width=8, depth=1)
    return {"toon-classic": "toon-classic", "probe": str(probe)}


@pytest.fixture(scope="module")
def variants(parents: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("variants")
    return {
        (name, mode): quantize_model(
            source, mode, out_dir=out, frames=4, eval_frames=2, host_runs=2
        )
        for name, source in parents.items()
        for mode in ("fp16", "int8")
    }


@pytest.fixture(scope="module")
def eval_frames() -> list[np.ndarray]:
    return scenario_frames(DEFAULT_EVALUATION, 2)[0]


def _coarsened_copy(source: str, path: Path, bits: int) -> str:
    """A deliberately broken conversion: every float weight keeps ``bits`` mantissa bits."""
    parent = resolve_model(source)
    model = onnx.load(str(parent.path))
    for tensor in model.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype == np.float32:
            mantissa, exponent = np.frexp(values)
            rounded = np.ldexp(np.round(mantissa * 2**bits) / 2**bits, exponent)
            tensor.CopyFrom(numpy_helper.from_array(rounded.astype(np.float32), tensor.name))
    onnx.save(model, str(path))
    save_card(
        replace(parent.card, name=path.stem, file=path.name),
        path.with_name(path.stem + CARD_SUFFIX),
    )
    return str(path)


@pytest.mark.parametrize("name", ["toon-classic", "probe"])
@pytest.mark.parametrize("mode", ["fp16", "int8"])
def test_variant_card_records_parent_precision_and_costs(
    variants: dict, parents: dict, name: str, mode: str
) -> None:
    path = variants[(name, mode)]
    assert path.name == f"{name}-{mode}.onnx"
    parent = resolve_model(parents[name])
    variant = resolve_model(str(path))  # the sibling card is found and validated
    card = variant.card
    assert (card.name, card.parent, card.precision) == (f"{name}-{mode}", name, mode)
    assert card.file_bytes == path.stat().st_size
    assert card.parameters == parent.parameters
    assert card.flops == {size: parent.flops(size) for size in card.flops} and 256 in card.flops
    assert card.input == parent.card.input and card.output == parent.card.output
    assert card.host_ms[256] > 0
    assert card.quality["reference"] == name and card.quality["scenario"] == "pan-fast"
    assert card.quality["frames"] == 2
    assert ("calibration" in card.quality) == (mode == "int8")
    if mode == "fp16":  # activations are half the bytes
        assert card.activation_mb[256] == pytest.approx(parent.activation_mb(256) / 2, rel=0.05)
        assert "phone GPUs" in card.notes


def test_fp16_file_holds_float16_weights_and_float32_io(variants: dict) -> None:
    model = onnx.load(str(variants[("probe", "fp16")]))
    weights = {t.name: t.data_type for t in model.graph.initializer}
    assert set(weights.values()) == {onnx.TensorProto.FLOAT16}
    io = [*model.graph.input, *model.graph.output]
    assert {v.type.tensor_type.elem_type for v in io} == {onnx.TensorProto.FLOAT}


def test_int8_file_is_qdq_with_per_channel_conv_weights(variants: dict) -> None:
    model = onnx.load(str(variants[("probe", "int8")]))
    ops = [node.op_type for node in model.graph.node]
    assert "QuantizeLinear" in ops and ops.count("Conv") == 3
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv_weights = [n.input[1] for n in model.graph.node if n.op_type == "Conv"]
    producers = {n.output[0]: n for n in model.graph.node}
    for weight in conv_weights:  # int8 weights, one scale per output channel
        dequant = producers[weight]
        assert dequant.op_type == "DequantizeLinear"
        assert init[dequant.input[0]].dtype == np.int8
        assert init[dequant.input[1]].shape == (init[dequant.input[0]].shape[0],)


@pytest.mark.parametrize("name", ["toon-classic", "probe"])
def test_variants_run_through_the_stylizer_and_match_the_parent(
    variants: dict, parents: dict, eval_frames: list, name: str, tmp_path: Path
) -> None:
    frame = eval_frames[0]
    for mode in ("fp16", "int8"):
        out = Stylizer(resolve_model(str(variants[(name, mode)])), 128).stylize(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8
    fp16 = compare_models(parents[name], str(variants[(name, "fp16")]), eval_frames, 256)
    int8 = compare_models(parents[name], str(variants[(name, "int8")]), eval_frames, 256)
    assert fp16["psnr_db"] > FP16_MIN_PSNR
    assert int8["psnr_db"] > INT8_MIN_PSNR and int8["ssim"] > INT8_MIN_SSIM
    # the bounds catch a broken conversion: weights cut to 2 mantissa bits, or other weights
    broken = _coarsened_copy(parents[name], tmp_path / f"{name}-broken.onnx", bits=2)
    wrong = write_conv_probe(tmp_path / "other.onnx", width=8, depth=1, seed=7)
    for bad in (broken, str(wrong)) if name == "probe" else (broken,):
        assert compare_models(parents[name], bad, eval_frames, 256)["psnr_db"] < INT8_MIN_PSNR


def test_variants_resolve_by_name_from_the_models_folder(
    variants: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = variants[("toon-classic", "int8")].parent
    monkeypatch.setenv("ARSIM_MODELS_DIR", str(folder))
    model = resolve_model("toon-classic-int8")
    assert model.path == folder / "toon-classic-int8.onnx" and model.card.precision == "int8"


def test_card_file_is_strict_json(variants: dict) -> None:
    path = variants[("toon-classic", "int8")]
    text = path.with_name(path.stem + CARD_SUFFIX).read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert data["quality"]["calibration"].startswith("orbit-desk: 4 frames")
    assert load_card(path.with_name(path.stem + CARD_SUFFIX)).host_ms


def test_evaluation_frames_avoid_calibration_frames_of_the_same_scenario() -> None:
    keep = [5, 77, 140]
    used = [i for i in range(150) if i not in keep]
    left, name = scenario_frames(DEFAULT_EVALUATION, 3, avoid=used)
    with load_scenario(DEFAULT_EVALUATION) as loaded:
        expected = [f.image for f in loaded.frames() if f.index in keep]
    assert name == "pan-fast" and len(left) == 3
    assert all(np.array_equal(a, b) for a, b in zip(left, expected, strict=True))
    with pytest.raises(InputError, match="no frames left"):
        scenario_frames(DEFAULT_EVALUATION, 3, avoid=list(range(150)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "int4"}, "mode"),
        ({"mode": "fp16", "calibration": Path("scenarios/orbit-desk")}, "only int8"),
        ({"mode": "int8", "method": "magic"}, "method"),
        ({"mode": "int8", "frames": 0}, "frames"),
        ({"mode": "int8", "calibration": Path("no/such/scenario")}, "no such scenario"),
    ],
)
def test_bad_requests_are_input_errors(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match) as caught:
        quantize_model("toon-classic", out_dir=tmp_path, **kwargs)
    assert "\n" not in str(caught.value)


def test_a_variant_is_not_quantised_again(variants: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="already a fp16 variant"):
        quantize_model(str(variants[("probe", "fp16")]), "int8", out_dir=tmp_path)


def test_bench_model_times_run_and_stylize_per_size() -> None:
    result = bench_model("toon-classic", sizes=(64, 128), runs=3, threads=1)
    assert result["model"] == "toon-classic" and result["precision"] == "fp32"
    assert set(result["sizes"]) == {64, 128}
    for row in result["sizes"].values():
        for timing in (row["run_ms"], row["stylize_ms"]):
            assert 0 < timing["median"] <= timing["p90"]
    # the full stage includes resizing a 1280x720 frame in and out
    assert result["sizes"][128]["stylize_ms"]["median"] > result["sizes"][128]["run_ms"]["median"]
    table = format_bench(result)
    assert "toon-classic (fp32)" in table and len(table.splitlines()) == 4
    assert bench_frame().shape == (720, 1280, 3)
    with pytest.raises(InputError, match="input size"):
        bench_model("toon-classic", sizes=(100,), runs=1)
