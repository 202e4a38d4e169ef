"""The AnimeGANv2 generator builder, the animeganv2-arch model and the importer (no torch)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from checkpoint_fixtures import write_checkpoint

from simulator.errors import InputError
from simulator.zoo import animegan, graph_stats
from simulator.zoo.card import card_to_dict, load_card
from simulator.zoo.importer import import_model
from simulator.zoo.registry import resolve_model

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"
PARAMETERS = 2_143_552


@pytest.fixture(scope="module")
def arch() -> bytes:
    return animegan.build_arch().SerializeToString()


def _conv_flops(size: int) -> int:
    """Conv FLOPs counted by hand from the port's layer list: (c_in, c_out, k, groups, bias,
    output side as a fraction of the input side)."""
    layers = [(3, 32, 7, 1, False, 1), (32, 64, 3, 1, False, 2), (64, 64, 3, 1, False, 2)]
    layers += [(64, 128, 3, 1, False, 4), (128, 128, 3, 1, False, 4), (128, 128, 3, 1, False, 4)]
    for cin in (128, 256, 256, 256):  # inverted residual blocks: expand, depthwise, project
        width = 2 * cin
        layers += [(cin, width, 1, 1, False, 4), (width, width, 3, width, True, 4)]
        layers += [(width, 256, 1, 1, False, 4)]
    layers += [(256, 128, 3, 1, False, 4), (128, 128, 3, 1, False, 2), (128, 128, 3, 1, False, 2)]
    layers += [(128, 64, 3, 1, False, 1), (64, 64, 3, 1, False, 1), (64, 32, 7, 1, False, 1)]
    layers += [(32, 3, 1, 1, False, 1)]
    total = 0
    for cin, cout, k, groups, bias, shrink in layers:
        outputs = cout * (size // shrink) ** 2
        total += 2 * outputs * k * k * cin // groups + (outputs if bias else 0)
    return total


# --- the architecture ---------------------------------------------------------------------


def test_state_keys_follow_the_pytorch_port() -> None:
    shapes = animegan.STATE_SHAPES
    assert len(animegan.STATE_KEYS) == len(shapes) == 77
    assert sum(int(np.prod(s)) for s in shapes.values()) == PARAMETERS
    assert shapes["block_a.0.1.weight"] == (32, 3, 7, 7)
    assert "block_a.0.1.bias" not in shapes  # convs have no bias ...
    assert shapes["block_c.1.layers.1.1.bias"] == (256,)  # ... except the depthwise ones
    assert shapes["block_c.1.layers.1.1.weight"] == (256, 1, 3, 3)
    assert shapes["block_c.4.layers.2.weight"] == (256, 512, 1, 1)
    assert shapes["block_c.4.layers.3.bias"] == (256,)
    assert shapes["block_e.2.2.weight"] == (32,)
    assert animegan.STATE_KEYS[-1] == "out_layer.0.weight"
    assert shapes["out_layer.0.weight"] == (3, 32, 1, 1)


def test_parameters_and_flops_match_the_published_figures(arch: bytes) -> None:
    model = animegan.build_arch()
    assert graph_stats.parameter_count(model) == PARAMETERS
    assert graph_stats.weights_bytes(model) == 4 * PARAMETERS
    at_256 = graph_stats.analyze(model, 256)
    convs = _conv_flops(256)
    assert convs == pytest.approx(52.6e9, rel=1e-3)  # the seed table's 52.6 GFLOPs are the convs
    # norms, activations and resizes add 0.76 %
    assert convs < at_256.flops < 1.01 * convs
    assert at_256.flops == 52_973_612_208
    at_512 = graph_stats.analyze(model, 512)
    assert at_512.flops == 211_892_710_576 == pytest.approx(4 * at_256.flops, rel=1e-3)
    assert _conv_flops(512) < at_512.flops
    assert at_512.activation_peak_bytes == pytest.approx(4 * at_256.activation_peak_bytes, 1e-2)


@pytest.fixture(scope="module")
def session(arch: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(arch, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(("height", "width"), [
    pytest.param(256, 256, marks=pytest.mark.slow),  # full-size runs: seconds each
    pytest.param(264, 264, marks=pytest.mark.slow),
    (72, 136),
])
def test_runs_at_any_size_and_keeps_the_shape(
    session: ort.InferenceSession, height: int, width: int
) -> None:
    image = np.random.default_rng(1).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
    out = session.run(["output"], {"input": image})[0]
    assert out.shape == (1, 3, height, width) and out.dtype == np.float32
    assert np.abs(out).max() < 1  # tanh
    assert 0.05 < out.std() < 0.6  # the seeded init keeps activations sane: neither 0 nor saturated


def test_graph_shapes_resolve_statically_at_odd_quarter_sizes(arch: bytes) -> None:
    # 260 -> 130 -> 65: the resizes go back to 130 and 260, read from the runtime shapes
    stats = graph_stats.analyze(animegan.build_arch(), 260)
    assert stats.flops > _conv_flops(260) * 0.99


def test_seeded_state_dict_is_deterministic_and_pytorch_scaled() -> None:
    first, again, other = (animegan.seeded_state_dict(s) for s in (0, 0, 1))
    assert list(first) == list(animegan.STATE_KEYS)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["block_a.0.1.weight"], other["block_a.0.1.weight"])
    stem = first["block_a.0.1.weight"]  # fan_in 3*7*7: uniform in +-1/sqrt(147)
    assert stem.dtype == np.float32
    assert 0.9 / np.sqrt(147) < np.abs(stem).max() <= 1 / np.sqrt(147)
    assert np.all(first["block_c.2.layers.3.weight"] == 1)
    assert np.all(first["block_c.2.layers.3.bias"] == 0)
    depthwise_bias = first["block_c.2.layers.1.1.bias"]  # fan_in 1*3*3
    assert 0 < np.abs(depthwise_bias).max() <= 1 / 3


def test_build_is_byte_identical(arch: bytes) -> None:
    assert animegan.build_arch().SerializeToString() == arch


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.pop("block_d.1.2.bias"), "missing key 'block_d.1.2.bias'"),
        (lambda s: s.update(extra=np.zeros(1, np.float32)), "unexpected key 'extra'"),
        (
            lambda s: s.update({"block_b.0.1.weight": np.zeros((128, 64, 3, 2), np.float32)}),
            "key 'block_b.0.1.weight': expected shape [128, 64, 3, 3], got [128, 64, 3, 2]",
        ),
        (
            lambda s: s.update({"out_layer.0.weight": np.zeros((3, 32, 1, 1), np.int64)}),
            "key 'out_layer.0.weight': expected a floating-point array",
        ),
        (
            lambda s: s["block_a.2.2.weight"].__setitem__(5, np.nan),
            "key 'block_a.2.2.weight': contains NaN or infinity",
        ),
    ],
)
def test_bad_state_dicts_name_the_key(change: Callable[[dict], object], expected: str) -> None:
    state = animegan.seeded_state_dict(0)
    change(state)
    with pytest.raises(InputError) as caught:
        animegan.build_generator(state, "ckpt.pt")
    assert str(caught.value).startswith("ckpt.pt: ") and expected in str(caught.value)


# --- animeganv2-arch: built on first use ---------------------------------------------------


def test_committed_card_matches_the_builder(arch: bytes) -> None:
    committed = load_card(REPO_MODELS / "animeganv2-arch.card.json")
    assert card_to_dict(committed) == card_to_dict(animegan.arch_card(animegan.build_arch()))
    assert committed.input.value_range == committed.output.value_range == (-1.0, 1.0)
    assert committed.parameters == PARAMETERS and set(committed.flops) == {256, 512}
    assert "meaningless" in committed.notes


def test_ensure_built_writes_once_and_the_registry_accepts_it(tmp_path: Path, arch: bytes) -> None:
    assert animegan.ensure_built("toon-classic", tmp_path) is None
    assert not any(tmp_path.iterdir())
    path = animegan.ensure_built("animeganv2-arch", tmp_path)
    assert path == tmp_path / "animeganv2-arch.onnx"
    assert path.read_bytes() == arch
    card_path = tmp_path / "animeganv2-arch.card.json"
    assert json.loads(card_path.read_text()) == json.loads(
        (REPO_MODELS / "animeganv2-arch.card.json").read_text()
    )
    stamp = path.stat().st_mtime_ns
    assert animegan.ensure_built("animeganv2-arch", tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # not rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == [card_path.name, path.name]
    resolved = resolve_model(str(card_path))
    assert resolved.flops(256) == 52_973_612_208 and resolved.parameters == PARAMETERS


def test_ensure_built_in_a_read_only_folder_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot write the generated model"):
        animegan.ensure_built("animeganv2-arch", blocker / "models")


# --- importer -------------------------------------------------------------------------------


def test_checkpoint_import_writes_the_same_graph_and_a_card(tmp_path: Path, arch: bytes) -> None:
    checkpoint = write_checkpoint(tmp_path / "seeded.pth", animegan.seeded_state_dict(0))
    models = tmp_path / "models"
    path = import_model(checkpoint, "seeded-copy", models_dir=models)
    assert path == models / "seeded-copy.onnx" and path.read_bytes() == arch
    card = load_card(models / "seeded-copy.card.json")
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert card.name == "seeded-copy" and card.file == "seeded-copy.onnx"
    assert f"seeded.pth (sha256 {digest})" in card.provenance
    assert card.flops == {256: 52_973_612_208, 512: 211_892_710_576}
    assert card.parameters == PARAMETERS and card.activation_mb[256] > 0
    assert import_model(checkpoint, "seeded-copy", models_dir=models) == path  # same: fine


def test_import_refuses_to_replace_a_different_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = write_checkpoint(tmp_path / "a.pt", animegan.seeded_state_dict(0))
    second = write_checkpoint(tmp_path / "b.pt", animegan.seeded_state_dict(1))
    path = import_model(first, "mine", models_dir=models)
    with pytest.raises(InputError, match="a different model already exists"):
        import_model(second, "mine", models_dir=models)
    assert "a.pt" in load_card(models / "mine.card.json").provenance
    import_model(second, "mine", models_dir=models, overwrite=True)
    assert "b.pt" in load_card(models / "mine.card.json").provenance
    assert path.read_bytes() != import_model(first, "other", models_dir=models).read_bytes()


def test_onnx_import_copies_with_a_card(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "cartoon.onnx"
    source = REPO_MODELS / "toon-classic.onnx"
    assert import_model(source, "cartoon", out) == out
    assert out.read_bytes() == source.read_bytes()
    card = load_card(out.with_name("cartoon.card.json"))
    original = load_card(REPO_MODELS / "toon-classic.card.json")
    assert card.name == "cartoon" and card.input == original.input  # the sibling card's specs
    assert card.flops == original.flops and card.parameters == original.parameters
    assert "toon-classic.onnx (sha256 " in card.provenance


@pytest.mark.parametrize(
    ("name", "file", "expected"),
    [
        ("Bad Name", "x.pt", "expected a file stem of [a-z0-9._-] characters"),
        ("../up", "x.pt", "expected a file stem"),
        ("fine", "x.pt", "file not found"),
        ("fine", "notes.txt", "expected a .onnx model or a .pt/.pth/.ckpt PyTorch checkpoint"),
        ("fine", "fake.onnx", "not an ONNX model"),
        ("fine", "small.pt", "missing key 'block_a.0.1.weight'"),
    ],
)
def test_import_rejects_bad_input(tmp_path: Path, name: str, file: str, expected: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.onnx").write_bytes(b"\x00not a protobuf")
    write_checkpoint(tmp_path / "small.pt", {"weight": np.ones(3, np.float32)})
    with pytest.raises(InputError) as caught:
        import_model(tmp_path / file, name, models_dir=tmp_path / "models")
    assert expected in str(caught.value)
    assert not (tmp_path / "models").exists()
