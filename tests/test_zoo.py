"""Model zoo: graph statistics, cards, registry and the built-in toon-classic model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from simulator.errors import InputError
from simulator.zoo import graph_stats
from simulator.zoo.card import load_card, save_card
from simulator.zoo.registry import list_models, resolve_model
from simulator.zoo.toon import build_toon_classic, toon_classic_card

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


def _weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 100
    return numpy_helper.from_array(values, name)


def _image_model(nodes, initializers, out_channels: int = 3, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, out_channels, "h", "w"])],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _conv_relu_conv(out_channels: int = 3) -> onnx.ModelProto:
    """input -> Conv 3x3 (3->4, bias) -> Relu -> Conv 1x1 (4->out, no bias) -> output."""
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w2"], ["output"]),
    ]
    weights = [
        _weight("w1", (4, 3, 3, 3)),
        _weight("b1", (4,)),
        _weight("w2", (out_channels, 4, 1, 1)),
    ]
    return _image_model(nodes, weights, out_channels)


# --- graph statistics -------------------------------------------------------------------


def test_conv_graph_flops_parameters_and_activation_are_exact() -> None:
    model = _conv_relu_conv()
    pixels = 8 * 8
    conv1 = 2 * (3 * 3 * 3) * 4 * pixels + 4 * pixels  # MACs x2 + bias
    relu = 4 * pixels
    conv2 = 2 * 4 * 3 * pixels
    assert graph_stats.flops(model, 8) == conv1 + relu + conv2 == 15872
    assert graph_stats.flops(model, 16) == 4 * 15872  # dynamic H, W follow the size
    assert graph_stats.parameter_count(model) == 108 + 4 + 12
    assert graph_stats.weights_bytes(model) == 124 * 4
    # live sets: {input, a} = 768+1024, {a, b} = 2048, {b, output} = 1024+768
    assert graph_stats.activation_peak_bytes(model, 8) == 2048


def test_conv_transpose_resize_reduce_and_matmul_costs() -> None:
    nodes = [
        helper.make_node("ConvTranspose", ["input", "wt"], ["up"], strides=[2, 2]),
        helper.make_node("Resize", ["up", "", "scales"], ["big"], mode="linear"),
        helper.make_node("ReduceMean", ["big", "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "proj"], ["output"]),
    ]
    weights = [
        _weight("wt", (3, 2, 2, 2)),
        numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales"),
        numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes"),
        _weight("proj", (2, 5)),
    ]
    graph = helper.make_graph(
        nodes,
        "mixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    stats = graph_stats.analyze(model, 4)
    conv_t = 2 * 16 * (3 * 2 * 2 * 2)  # every input pixel through the full kernel
    resize = 2 * 16 * 16 * 4  # linear: 4 per output element
    reduce = 2 * 16 * 16
    matmul = 2 * 1 * 5 * 2
    assert stats.flops == conv_t + resize + reduce + matmul
    assert stats.parameters == 24 + 4 + 2 + 10


def test_shapes_unknown_to_inference_are_read_from_a_real_run() -> None:
    # a Reshape target computed through float maths defeats ONNX shape inference
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Cast", ["shape"], ["shape_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["shape_f", "ones"], ["scaled"]),
        helper.make_node("Cast", ["scaled"], ["target"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["input", "target"], ["reshaped"]),
        helper.make_node("Relu", ["reshaped"], ["output"]),
    ]
    ones = numpy_helper.from_array(np.ones(4, dtype=np.float32), "ones")
    stats = graph_stats.analyze(_image_model(nodes, [ones]), 8)
    assert stats.flops == 4 + 3 * 64  # Mul on the 4-vector, Relu on the image
    assert stats.activation_peak_bytes == 768 + 32 + 768  # input, target, reshaped


def test_image_input_must_have_three_channels() -> None:
    model = _conv_relu_conv()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1
    with pytest.raises(InputError, match="3 channels"):
        graph_stats.flops(model, 8)


# --- cards ------------------------------------------------------------------------------


def test_card_round_trip(tmp_path: Path) -> None:
    card = load_card(REPO_MODELS / "toon-classic.card.json")
    copy = replace(card, flops={320: 123}, activation_mb={320: 1.5}, notes="x")
    save_card(copy, tmp_path / "c.card.json")
    assert load_card(tmp_path / "c.card.json") == copy


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"format": "arsim-model-card/9"}, "format"),
        ({"name": 3}, "name"),
        ({"input": {"layout": "CHW"}}, "input.layout"),
        ({"input": {"range": [1, 0]}}, "input.range"),
        ({"input": {"default_size": 100}}, "input.default_size"),
        ({"output": {"channels": "RGBA"}}, "output.channels"),
        ({"flops": {"big": 1}}, "flops"),
        ({"parameters": -1}, "parameters"),
    ],
)
def test_bad_card_names_file_and_field(tmp_path: Path, edit: dict, field: str) -> None:
    data = json.loads((REPO_MODELS / "toon-classic.card.json").read_text())
    for key, value in edit.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "bad.card.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as caught:
        load_card(path)
    message = str(caught.value)
    assert "bad.card.json" in message and f"'{field}'" in message and "\n" not in message


def test_card_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.card.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.card\.json: not valid JSON"):
        load_card(path)


# --- registry ---------------------------------------------------------------------------


def test_resolve_builtin_by_name_and_by_path() -> None:
    by_name = resolve_model("toon-classic")
    assert by_name.path == REPO_MODELS / "toon-classic.onnx"
    assert by_name.card.input.value_range == (0.0, 1.0)
    by_path = resolve_model(str(REPO_MODELS / "toon-classic.onnx"))
    assert by_path.card == by_name.card  # the sibling card is used
    assert "toon-classic" in [card.name for card in list_models()]


def test_costs_come_from_card_or_graph() -> None:
    model = resolve_model("toon-classic")
    assert model.flops(256) == model.card.flops[256]
    graph = onnx.load(str(model.path))
    assert model.flops(320) == graph_stats.flops(graph, 320)
    expected_mb = graph_stats.activation_peak_bytes(graph, 320) / 2**20
    assert model.activation_mb(320) == pytest.approx(expected_mb)
    assert model.weights_bytes() == graph_stats.weights_bytes(graph)


def test_bare_onnx_gets_a_derived_card(tmp_path: Path) -> None:
    path = tmp_path / "gen.onnx"
    onnx.save(_conv_relu_conv(), path)
    model = resolve_model(str(path))
    assert model.name == "gen"
    assert model.card.input.layout == "NCHW"
    assert model.card.input.value_range == (-1.0, 1.0)
    assert model.card.parameters == 124
    assert model.flops(8) == 15872


def test_models_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onnx.save(_conv_relu_conv(), tmp_path / "mine.onnx")
    monkeypatch.setenv("ARSIM_MODELS_DIR", str(tmp_path))
    assert resolve_model("mine").path == tmp_path / "mine.onnx"


def test_text_file_renamed_onnx_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "fake.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(InputError, match=r"fake\.onnx: not an ONNX model"):
        resolve_model(str(path))


def test_one_channel_output_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "gray.onnx"
    onnx.save(_conv_relu_conv(out_channels=1), path)
    with pytest.raises(InputError, match=r"gray\.onnx: model output.*3 channels"):
        resolve_model(str(path))


def test_missing_file_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model file not found"):
        resolve_model(str(tmp_path / "nope.onnx"))
    with pytest.raises(InputError, match=r"unknown model 'no-such-model'.*toon-classic"):
        resolve_model("no-such-model")


def test_model_runtime_refuses_is_rejected(tmp_path: Path) -> None:
    model = _conv_relu_conv()
    model.graph.node[1].op_type = "NoSuchOp"
    path = tmp_path / "odd.onnx"
    onnx.save(model, path)
    with pytest.raises(InputError, match=r"odd\.onnx: ONNX Runtime cannot load"):
        resolve_model(str(path))


# --- toon-classic -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toon_session() -> ort.InferenceSession:
    return ort.InferenceSession(
        str(REPO_MODELS / "toon-classic.onnx"), providers=["CPUExecutionProvider"]
    )


def _run(session: ort.InferenceSession, rgb: np.ndarray) -> np.ndarray:
    tensor = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255
    out = session.run(None, {"input": tensor})[0]
    assert out.shape == tensor.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    return np.rint(out[0].transpose(1, 2, 0) * 255).astype(np.uint8)


def test_toon_build_is_deterministic_and_matches_shipped_files() -> None:
    model = build_toon_classic()
    assert model.SerializeToString() == build_toon_classic().SerializeToString()
    assert model.SerializeToString() == (REPO_MODELS / "toon-classic.onnx").read_bytes()
    assert toon_classic_card(model) == load_card(REPO_MODELS / "toon-classic.card.json")


def test_toon_flattens_colours(toon_session: ort.InferenceSession) -> None:
    # a photo-like scene: flat coloured regions with sensor noise
    rng = np.random.default_rng(7)
    scene = np.zeros((96, 128, 3), dtype=np.float64)
    scene[:, :] = (70, 120, 190)  # sky
    scene[60:, :] = (60, 140, 50)  # grass
    cv2.circle(scene, (40, 40), 18, (230, 200, 60), thickness=-1)  # sun
    noisy = np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255).astype(np.uint8)
    out = _run(toon_session, noisy)
    colours_in = len(np.unique(noisy.reshape(-1, 3), axis=0))
    colours_out = len(np.unique(out.reshape(-1, 3), axis=0))
    assert colours_out < colours_in / 2


def test_toon_draws_dark_lines_on_edges(toon_session: ort.InferenceSession) -> None:
    image = np.full((64, 64, 3), 200, dtype=np.uint8)
    cv2.rectangle(image, (16, 16), (47, 47), (40, 90, 160), thickness=-1)
    out = _run(toon_session, image).astype(int).sum(axis=2)
    border = out[14:18, 16:48].min()  # across the top edge of the square
    assert border < 0.5 * out[30:34, 30:34].mean()  # darker than the square's inside
    assert border < 0.5 * out[2:6, 2:6].mean()  # and than the flat background
    assert abs(int(out[2:6, 2:6].mean()) - 3 * 200) < 3 * 40  # flat areas stay close


def test_conv_probe_costs_what_animeganv2_costs(tmp_path: Path) -> None:
    from simulator.zoo.probe import write_conv_probe

    model = resolve_model(str(write_conv_probe(tmp_path / "probe.onnx")))
    assert model.card.flops[256] == pytest.approx(52.6e9, rel=0.001)
    assert model.flops(512) == pytest.approx(4 * model.flops(256), rel=0.001)
    assert model.card.input.value_range == (0.0, 1.0)


# --- variant fields of the card (simulator/zoo/quantize.py) --------------------------------


def test_variant_card_fields_round_trip(tmp_path: Path) -> None:
    card = replace(
        load_card(REPO_MODELS / "toon-classic.card.json"),
        name="toon-classic-int8",
        parent="toon-classic",
        precision="int8",
        file_bytes=83226,
        quality={"scenario": "pan-fast", "psnr_db": 43.8, "ssim": 0.995, "frames": 8},
        host_ms={256: 7.2},
    )
    save_card(card, tmp_path / "v.card.json")
    data = json.loads((tmp_path / "v.card.json").read_text())
    assert data["precision"] == "int8" and data["host_ms"] == {"256": 7.2}
    assert load_card(tmp_path / "v.card.json") == card


def test_original_card_has_fp32_defaults_and_writes_no_variant_fields(tmp_path: Path) -> None:
    card = load_card(REPO_MODELS / "toon-classic.card.json")
    assert (card.parent, card.precision, card.file_bytes, card.quality) == ("", "fp32", 0, {})
    save_card(card, tmp_path / "c.card.json")
    data = json.loads((tmp_path / "c.card.json").read_text())
    assert not {"parent", "precision", "file_bytes", "quality", "host_ms"} & data.keys()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"precision": "int4"}, "precision"),
        ({"quality": {"psnr_db": [1.0]}}, "quality"),
        ({"quality": "good"}, "quality"),
        ({"host_ms": {"big": 1.0}}, "host_ms"),
        ({"file_bytes": -1}, "file_bytes"),
    ],
)
def test_bad_variant_fields_name_the_field(tmp_path: Path, edit: dict, field: str) -> None:
    data = json.loads((REPO_MODELS / "toon-classic.card.json").read_text())
    path = tmp_path / "bad.card.json"
    path.write_text(json.dumps({**data, **edit}))
    with pytest.raises(InputError, match=f"'{field}'"):
        load_card(path)
