"""Aspect-preserving model input (--fit): shapes, mapping back to the frame, cost charged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from scenario_fixtures import make_scenario

from simulator.cli import main
from simulator.errors import InputError
from simulator.pipeline.stylize import FITS, Stylizer, input_shape, resolve_fit
from simulator.run import RunSettings, run_scenario
from simulator.zoo import graph_stats
from simulator.zoo.card import InputSpec, ModelCard, load_card, save_card
from simulator.zoo.registry import models_dir, resolve_model

FC_MODELS = ("toon-classic", "animeganv2-arch", "ar-lite", "ar-lite-fp16", "ar-lite-int8")
PORTRAIT = (1080, 1920)  # a phone held upright: width x height


def _identity_model(folder: Path, fully_convolutional: bool) -> Path:
    """An NCHW [0, 1] identity model with symbolic H, W and a card saying so (or not)."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["styled"])], "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("styled", TensorProto.FLOAT, [1, 3, "h", "w"])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), folder / "ident.onnx")
    card = ModelCard(name="ident", file="ident.onnx",
                     input=InputSpec(fully_convolutional=fully_convolutional))
    save_card(card, folder / "ident.card.json")
    return folder / "ident.card.json"


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory):
    return resolve_model(str(_identity_model(tmp_path_factory.mktemp("fc"), True)))


@pytest.fixture(scope="module")
def square_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _identity_model(tmp_path_factory.mktemp("sq"), False)


def _circle_frame(width: int, height: int) -> np.ndarray:
    frame = np.full((height, width, 3), 30, np.uint8)
    radius = min(width, height) // 4
    cv2.circle(frame, (width // 2, height // 2), radius, (230, 230, 230), -1, cv2.LINE_AA)
    return frame


def _extent(gray: np.ndarray) -> tuple[int, int]:
    """(width, height) of the bright blob."""
    ys, xs = np.nonzero(gray > 128)
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


# AnimeGANv2's full generator at three rectangles takes seconds: the slow set runs it
@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow)
                                  if m == "animeganv2-arch" else m for m in FC_MODELS])
def test_cards_that_say_fully_convolutional_accept_any_rectangle(name: str) -> None:
    """The committed card's claim, checked by running the graph at non-square shapes."""
    card = load_card(models_dir() / f"{name}.card.json")
    assert card.input.fully_convolutional
    session = ort.InferenceSession(str(models_dir() / card.file),
                                   providers=["CPUExecutionProvider"])
    image = session.get_inputs()[0]
    assert isinstance(image.shape[2], str) and isinstance(image.shape[3], str)  # symbolic H, W
    for h, w in ((192, 344), (344, 192), (136, 480)):
        out = session.run(None, {image.name: np.random.rand(1, 3, h, w).astype(np.float32)})[0]
        assert out.shape == (1, 3, h, w)


def test_input_shape_of_each_fit() -> None:
    card = resolve_model("toon-classic").card  # size_multiple 8, 64..1024
    assert input_shape(card, 256, *PORTRAIT, "aspect") == (192, 344)
    assert input_shape(card, 256, 640, 360, "aspect") == (344, 192)
    for fit in ("crop", "letterbox", "squash"):
        assert input_shape(card, 256, *PORTRAIT, fit) == (256, 256)
    assert input_shape(card, 256, 500, 500, "aspect") == (256, 256)
    w, h = input_shape(card, 1024, 1920, 1080, "aspect")  # the long side capped at max_size
    assert (w, h) == (1024, 576)
    w, h = input_shape(card, 64, 4000, 100, "aspect")  # extreme: sides kept within min..max
    assert w % 8 == 0 and h % 8 == 0 and h >= 64 and w <= 1024


def test_default_fit_follows_the_card(square_only: Path) -> None:
    assert resolve_fit(resolve_model("toon-classic").card, None) == "aspect"
    assert resolve_fit(load_card(square_only), None) == "squash"
    with pytest.raises(InputError, match="fit"):
        resolve_fit(resolve_model("toon-classic").card, "stretch")


@pytest.mark.parametrize("fit", FITS)
def test_tensor_shape_of_each_fit_on_a_portrait_frame(fit: str) -> None:
    stylizer = Stylizer(resolve_model("toon-classic"), 256, fit=fit)
    frame = _circle_frame(*PORTRAIT)
    expected = (344, 192) if fit == "aspect" else (256, 256)  # (height, width)
    assert stylizer.preprocess(frame).shape == (1, 3, *expected)
    assert stylizer.stylize(frame).shape == frame.shape


def test_portrait_frame_keeps_its_aspect_in_the_model_input_and_the_output() -> None:
    stylizer = Stylizer(resolve_model("toon-classic"), 256)  # aspect: the default here
    frame = _circle_frame(*PORTRAIT)
    seen = stylizer.preprocess(frame)[0].transpose(1, 2, 0)[:, :, 0] * 255
    w, h = _extent(seen)
    assert abs(w / h - 1) < 0.05  # the model sees a circle
    squashed = Stylizer(resolve_model("toon-classic"), 256, fit="squash").preprocess(frame)
    w, h = _extent(squashed[0, 0] * 255)
    assert w / h > 1.6  # what squash did: 1920/1080 = 1.78 wider than tall
    out = cv2.cvtColor(stylizer.stylize(frame), cv2.COLOR_RGB2GRAY)
    w, h = _extent(out)
    assert abs(w / h - 1) < 0.05 and abs(w - 540) < 30  # still a circle of the same size


def test_each_fit_maps_the_output_back_to_the_frame(identity) -> None:
    frame = _circle_frame(360, 640)
    frame[:, :40] = (200, 40, 40)  # a strip that crop leaves outside the square
    for fit in ("aspect", "letterbox", "squash"):
        out = Stylizer(identity, 128, fit=fit).stylize(frame)
        blurred = cv2.GaussianBlur(frame, (0, 0), 4).astype(int)
        # an identity model: the frame comes back (softened by the resize), not shifted
        assert np.abs(cv2.GaussianBlur(out, (0, 0), 4).astype(int) - blurred).mean() < 6, fit
    crop = Stylizer(identity, 128, fit="crop").stylize(frame)
    x0, y0, side = 0, (640 - 360) // 2, 360
    outside = np.ones(frame.shape[:2], bool)
    outside[y0 : y0 + side, x0 : x0 + side] = False
    np.testing.assert_array_equal(crop[outside], frame[outside])  # sides exactly as captured


def test_flops_and_activations_at_a_shape_equal_graph_stats() -> None:
    model = resolve_model("toon-classic")
    stats = graph_stats.analyze(model.path, (192, 344))
    assert stats.shape == (192, 344)
    assert model.flops((192, 344)) == stats.flops != model.flops(256)
    assert model.activation_mb((192, 344)) == stats.activation_peak_bytes / 2**20
    assert (192, 344) in model._stats  # cached
    assert model.flops((256, 256)) == model.card.flops[256]  # a square is its card size


def test_replay_charges_the_real_input_pixels(tmp_path: Path) -> None:
    scenario = make_scenario(tmp_path / "portrait", frames=8, width=108, height=192, fps=10.0)
    model = resolve_model("toon-classic")
    reports = {}
    for fit in ("aspect", "squash"):
        settings = RunSettings(model="toon-classic", timing_only=True, fit=fit, input_size=128)
        reports[fit] = run_scenario(scenario, settings, tmp_path / fit).report
    aspect = reports["aspect"]
    shape = tuple(aspect["input_shape"])
    assert shape == input_shape(model.card, 128, 108, 192, "aspect") == (96, 168)
    assert aspect["fit"] == "aspect"
    assert aspect["model"]["flops"] == graph_stats.flops(model.path, shape)
    stylized = [f for f in aspect["frames"] if f["stylized"]]
    assert stylized and all(f["input_shape"] == [96, 168] and f["input_size"] == 128
                            for f in stylized)
    assert reports["squash"]["input_shape"] == [128, 128]
    assert reports["squash"]["model"]["flops"] == model.flops(128)
    # the inference latency follows the FLOPs charged: fewer pixels, a shorter inference
    latency = {fit: r["frames"][0]["t_infer_end"] - r["frames"][0]["t_infer_start"]
               for fit, r in reports.items()}
    assert latency["aspect"] < latency["squash"]


def test_aspect_on_a_square_only_model_is_refused(square_only: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    model = resolve_model(str(square_only))
    with pytest.raises(InputError, match="fully convolutional"):
        Stylizer(model, 256, fit="aspect")
    assert Stylizer(model, 256).fit == "squash"
    scenario = make_scenario(tmp_path / "s", frames=4)
    code = main(["run", str(scenario), "--model", str(square_only), "--fit", "aspect",
                 "--timing-only", "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "fully convolutional" in err[0]
    report = run_scenario(scenario, RunSettings(model=str(square_only), timing_only=True),
                          tmp_path / "ok").report
    assert report["fit"] == "squash"
    assert json.loads((tmp_path / "ok" / "report.json").read_text())["input_shape"] == [256, 256]


def test_card_field_round_trips_and_is_checked(tmp_path: Path) -> None:
    card = load_card(models_dir() / "toon-classic.card.json")
    save_card(replace(card, input=replace(card.input, fully_convolutional=False)),
              tmp_path / "c.card.json")
    assert not load_card(tmp_path / "c.card.json").input.fully_convolutional
    data = json.loads((tmp_path / "c.card.json").read_text())
    data["input"]["fully_convolutional"] = "yes"
    (tmp_path / "bad.card.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"input\.fully_convolutional"):
        load_card(tmp_path / "bad.card.json")
