"""AR-lite student: graph builder (no torch), budgets, and the committed model and card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from simulator.errors import InputError
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.zoo import graph_stats
from simulator.zoo.card import load_card
from simulator.zoo.lite import LiteConfig, build_lite, config_from_state, conv_specs, init_state
from simulator.zoo.quality import ssim
from simulator.zoo.registry import resolve_model

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
ANIMEGANV2_FLOPS_256 = 52.6e9


@pytest.fixture(scope="module")
def seeded_model():
    return build_lite(init_state(LiteConfig(), seed=7))


def _session(model) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_budget_is_a_tenth_of_animeganv2(seeded_model) -> None:
    stats = graph_stats.analyze(seeded_model, 256)
    assert stats.flops <= ANIMEGANV2_FLOPS_256 / 10
    conv_weights = sum(int(np.prod(s.weight_shape)) + s.cout for s in conv_specs(LiteConfig()))
    assert stats.parameters - conv_weights == 6  # + Resize scales (4) and the Clip bounds (2)
    # FLOPs grow with the pixel count (every op is per pixel): 4x at twice the size
    assert graph_stats.flops(seeded_model, 512) == pytest.approx(4 * stats.flops, rel=1e-3)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (96, 160), (256, 256)])
def test_dynamic_sizes_give_an_image_in_range(seeded_model, height: int, width: int) -> None:
    rng = np.random.default_rng(height + width)
    image = rng.random((1, 3, height, width), dtype=np.float32)
    out = _session(seeded_model).run(None, {"input": image})[0]
    assert out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    # near-identity at initialisation (small head), but not the identity
    assert 0 < np.abs(out - image).mean() < 0.2


def test_config_is_read_back_from_the_state() -> None:
    config = LiteConfig((8, 16, 24), (1, 2, 3), 1)
    assert config_from_state(init_state(config)) == config


def test_bad_state_is_one_input_error() -> None:
    state = init_state()
    del state["head.bias"]
    with pytest.raises(InputError, match=r"missing weight 'head\.bias'"):
        build_lite(state)
    state = init_state()
    state["up0_dw.weight"] = state["up0_dw.weight"][:, :, :2]
    with pytest.raises(InputError, match=r"weight 'up0_dw.weight': expected shape"):
        build_lite(state)
    state = init_state()
    state["extra.weight"] = np.zeros(1, np.float32)
    with pytest.raises(InputError, match=r"unexpected weight 'extra\.weight'"):
        build_lite(state)


# --- the committed model --------------------------------------------------------------


@pytest.fixture(scope="module")
def committed():
    return resolve_model("ar-lite")


def test_committed_card_costs_match_the_graph(committed) -> None:
    card = load_card(MODELS / "ar-lite.card.json")
    assert card.input.value_range == (0.0, 1.0) and card.input.layout == "NCHW"
    for size in (256, 512):
        stats = graph_stats.analyze(committed.path, size)
        assert card.flops[size] == stats.flops
        assert card.activation_mb[size] == pytest.approx(stats.activation_peak_bytes / 2**20,
                                                         abs=1e-3)
    assert card.flops[256] <= ANIMEGANV2_FLOPS_256 / 10
    assert card.parameters == graph_stats.parameter_count(committed.path)
    train = json.loads((MODELS / "ar-lite.train.json").read_text())
    recipe = train["recipe"]
    assert (f"from {recipe['teacher']} with seed {recipe['seed']}, {recipe['steps']} steps"
            in card.provenance)
    assert train["holdout"]["ssim"] >= 0.85


def test_committed_model_stylizes_like_its_teacher(committed) -> None:
    with load_scenario(REPO / "scenarios" / "orbit-desk") as scenario:
        frame = next(scenario.frames()).image
    recipe = json.loads((MODELS / "ar-lite.train.json").read_text())["recipe"]
    student = Stylizer(committed, 256, threads=2).stylize(frame)
    teacher = Stylizer(resolve_model(recipe["teacher"]), 256, threads=2).stylize(frame)
    assert student.shape == frame.shape and student.dtype == np.uint8
    # closer to the teacher's picture than the camera frame itself is
    assert ssim(student, teacher) >= 0.85
    assert ssim(student, teacher) > ssim(frame, teacher) + 0.05
