"""Stylizer: pre/post-processing against a plain numpy reference, sizes, a real model run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from simulator.errors import InputError
from simulator.pipeline.stylize import Stylizer, shrink_to_square
from simulator.zoo.card import ImageSpec, InputSpec, ModelCard, save_card
from simulator.zoo.registry import ResolvedModel, resolve_model


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(90, 160, 3), dtype=np.uint8)


def _reference_input(rgb: np.ndarray, size: int, spec: InputSpec) -> np.ndarray:
    small = shrink_to_square(rgb, size).astype(np.float64)
    if spec.channels == "BGR":
        small = small[:, :, ::-1]
    low, high = spec.value_range
    values = small / 255.0 * (high - low) + low
    tensor = values.transpose(2, 0, 1) if spec.layout == "NCHW" else values
    return tensor[None].astype(np.float32)


def _reference_output(out: np.ndarray, width: int, height: int, spec: ImageSpec) -> np.ndarray:
    image = out[0].transpose(1, 2, 0) if spec.layout == "NCHW" else out[0]
    if spec.channels == "BGR":
        image = image[:, :, ::-1]
    low, high = spec.value_range
    scaled = np.clip((image.astype(np.float64) - low) / (high - low) * 255.0, 0, 255)
    rgb = np.ascontiguousarray(np.rint(scaled).astype(np.uint8))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def nhwc_bgr_model(tmp_path_factory: pytest.TempPathFactory) -> ResolvedModel:
    """An identity model with an NHWC, BGR, [-1, 1] card: the other side of every option."""
    folder = tmp_path_factory.mktemp("nhwc")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["styled"])],
        "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, "h", "w", 3])],
        [helper.make_tensor_value_info("styled", TensorProto.FLOAT, [1, "h", "w", 3])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        folder / "ident.onnx",
    )
    spec = ImageSpec("NHWC", (-1.0, 1.0), "BGR")
    card = ModelCard(
        name="ident",
        file="ident.onnx",
        input=InputSpec(spec.layout, spec.value_range, spec.channels, 64, 16, 32, 128),
        output=spec,
    )
    save_card(card, folder / "ident.card.json")
    return resolve_model(str(folder / "ident.onnx"))


def test_preprocess_matches_reference_nchw(frame: np.ndarray) -> None:
    stylizer = Stylizer(resolve_model("toon-classic"), 128, fit="squash")  # the reference squashes
    tensor = stylizer.preprocess(frame)
    assert tensor.dtype == np.float32 and tensor.flags.c_contiguous
    expected = _reference_input(frame, 128, stylizer.model.card.input)
    np.testing.assert_allclose(tensor, expected, atol=1e-6)


def test_pre_and_postprocess_match_reference_nhwc_bgr(
    frame: np.ndarray, nhwc_bgr_model: ResolvedModel
) -> None:
    stylizer = Stylizer(nhwc_bgr_model, 64)
    tensor = stylizer.preprocess(frame)
    assert tensor.shape == (1, 64, 64, 3) and tensor.flags.c_contiguous
    np.testing.assert_allclose(
        tensor, _reference_input(frame, 64, nhwc_bgr_model.card.input), atol=1e-6
    )
    # an out-of-range model output is clipped, not wrapped
    out = np.random.default_rng(5).uniform(-1.2, 1.2, size=(1, 64, 64, 3)).astype(np.float32)
    got = stylizer.postprocess(out.copy(), 160, 90)
    np.testing.assert_array_equal(got, _reference_output(out, 160, 90, nhwc_bgr_model.card.output))


def test_postprocess_matches_reference_nchw() -> None:
    stylizer = Stylizer(resolve_model("toon-classic"), 64)
    out = np.random.default_rng(9).uniform(-0.1, 1.1, size=(1, 3, 64, 64)).astype(np.float32)
    got = stylizer.postprocess(out.copy(), 100, 50)
    assert got.shape == (50, 100, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, _reference_output(out, 100, 50, stylizer.model.card.output))


def test_identity_model_round_trips_the_frame(
    frame: np.ndarray, nhwc_bgr_model: ResolvedModel
) -> None:
    out = Stylizer(nhwc_bgr_model, 128).stylize(frame)
    down = shrink_to_square(frame, 128)
    expected = cv2.resize(down, (160, 90), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_stylize_toon_keeps_frame_size(frame: np.ndarray) -> None:
    smooth = cv2.GaussianBlur(frame, (0, 0), 3)
    out = Stylizer(resolve_model("toon-classic"), 64).stylize(smooth)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not np.array_equal(out, smooth)


@pytest.mark.parametrize(
    ("size", "problem"), [(100, "multiple of 8"), (32, "outside"), (2048, "outside")]
)
def test_invalid_input_size_is_an_input_error(size: int, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        Stylizer(resolve_model("toon-classic"), size)


def test_missing_model_file_is_an_input_error(tmp_path: Path) -> None:
    model = resolve_model("toon-classic")
    gone = replace(model, path=tmp_path / "gone.onnx")
    with pytest.raises(InputError, match=r"gone\.onnx"):
        Stylizer(gone, 256)


def test_shrink_to_square_is_close_to_area_averaging() -> None:
    rng = np.random.default_rng(5)
    photo_like = cv2.GaussianBlur(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), (0, 0), 2)
    fast = shrink_to_square(photo_like, 256).astype(float)
    area = cv2.resize(photo_like, (256, 256), interpolation=cv2.INTER_AREA).astype(float)
    assert fast.shape == area.shape
    assert np.abs(fast - area).mean() < 1.5  # grey levels
    # and it really averages: far closer to area than plain bilinear decimation
    plain = cv2.resize(photo_like, (256, 256), interpolation=cv2.INTER_LINEAR).astype(float)
    assert np.abs(fast - area).mean() < np.abs(plain - area).mean()


def test_one_session_serves_other_sizes(frame: np.ndarray) -> None:
    stylizer = Stylizer(resolve_model("toon-classic"), 256)
    # toon-classic is fully convolutional: the 16:9 frame keeps its aspect at 128*128 pixels
    assert stylizer.preprocess(frame, 128).shape == (1, 3, 96, 168)
    small = stylizer.stylize(frame, 128)
    assert small.shape == frame.shape
    assert not np.array_equal(small, stylizer.stylize(frame))  # a different resolution
    with pytest.raises(InputError, match="multiple"):
        stylizer.check_size(130)
