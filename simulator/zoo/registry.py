"""Find a model by name or path, check that it is a usable image-to-image ONNX graph,
and pair it with its card (``ResolvedModel``).

Names are looked up in the models folder: ``$ARSIM_MODELS_DIR`` if set, else the
repository's ``models/`` next to the ``simulator`` package. A path to an ``.onnx`` file
uses the sibling ``<stem>.card.json`` when there is one; otherwise the card is derived
from the graph: layout from the axis of length 3, RGB, value range [-1, 1] (the AnimeGAN
convention, the usual case for a bare exported generator), sizes 64..1024 in steps of 8.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import simulator
from simulator.errors import InputError, first_line
from simulator.safe_files import check_user_file, inside_root
from simulator.zoo import graph_stats, stats_cache

if TYPE_CHECKING:
    import onnx
from simulator.zoo.card import (
    BYTES_PER_MB,
    CARD_SUFFIX,
    ImageSpec,
    InputSpec,
    ModelCard,
    load_card,
)

MODELS_DIR_ENV = "ARSIM_MODELS_DIR"
DERIVED_RANGE = (-1.0, 1.0)


def models_dir() -> Path:
    """The folder where model names are looked up."""
    configured = os.environ.get(MODELS_DIR_ENV)
    return Path(configured) if configured else Path(simulator.__file__).parents[1] / "models"


@dataclass
class ResolvedModel:
    """A validated ONNX model file and its card; costs are computed once per input shape.

    Sizes are a square side (``256``) or a real input shape ``(width, height)``; a square
    shape is the same as its side (card tables first), any other is computed from the graph
    (and cached)."""

    name: str
    path: Path
    card: ModelCard
    _stats: dict[tuple[int, int], graph_stats.GraphStats] = field(
        default_factory=dict, repr=False
    )
    _graph: onnx.ModelProto | None = field(default=None, repr=False)

    def _analyze(self, size: graph_stats.InputSize) -> graph_stats.GraphStats:
        """The graph's figures at ``size``: remembered, then from the disk cache
        (zoo/stats_cache.py), then from the graph itself."""
        shape = graph_stats.input_wh(size)
        if shape not in self._stats:
            cached = stats_cache.load(self.path, shape)
            if cached is None:
                if self._graph is None:
                    import onnx

                    self._graph = onnx.load(str(self.path), load_external_data=False)
                cached = graph_stats.analyze(self._graph, shape)
                stats_cache.store(self.path, cached)
            self._stats[shape] = cached
        return self._stats[shape]

    def flops(self, size: graph_stats.InputSize) -> int:
        """FLOPs of one inference at ``size x size`` or at ``(width, height)`` (card table
        first for squares, else the graph)."""
        width, height = graph_stats.input_wh(size)
        if width == height and width in self.card.flops:
            return self.card.flops[width]
        return self._analyze((width, height)).flops

    def activation_mb(self, size: graph_stats.InputSize) -> float:
        """Activation peak in MB (2**20 bytes) at ``size x size`` or ``(width, height)``."""
        width, height = graph_stats.input_wh(size)
        if width == height and width in self.card.activation_mb:
            return self.card.activation_mb[width]
        return self._analyze((width, height)).activation_peak_bytes / BYTES_PER_MB

    def weights_bytes(self) -> int:
        """Bytes of the model's weights (initializers)."""
        return self._analyze(self.card.input.default_size).weights_bytes

    @property
    def parameters(self) -> int:
        """Number of weights, from the card (or the graph when the card has none)."""
        return self.card.parameters or self._analyze(self.card.input.default_size).parameters


def resolve_model(name_or_path: str) -> ResolvedModel:
    """A model by zoo name (``toon-classic``) or by path to an ``.onnx`` or card file."""
    text = str(name_or_path)
    looks_like_path = (
        text.endswith((".onnx", CARD_SUFFIX))
        or os.sep in text
        or "/" in text
        or Path(text).is_file()
    )
    if looks_like_path:
        path = Path(text)
        if text.endswith(CARD_SUFFIX):
            return _from_card(path)
        sibling_card = path.with_name(path.stem + CARD_SUFFIX)
        return _from_card(sibling_card) if sibling_card.is_file() else _from_graph(path)
    folder = models_dir()
    if not (folder / f"{text}{CARD_SUFFIX}").is_file() or not (folder / f"{text}.onnx").is_file():
        from simulator.zoo import animegan  # imports onnx: only when a model may need building

        animegan.ensure_built(text, folder)  # models that are generated, not shipped
    if (folder / f"{text}{CARD_SUFFIX}").is_file():
        return _from_card(folder / f"{text}{CARD_SUFFIX}")
    if (folder / f"{text}.onnx").is_file():
        return _from_graph(folder / f"{text}.onnx")
    known = ", ".join(card.name for card in list_models()) or "none"
    raise InputError("model", f"unknown model '{text}' in {folder} (known: {known})")


def list_models() -> list[ModelCard]:
    """Cards of every model in the models folder, sorted by file name."""
    folder = models_dir()
    if not folder.is_dir():
        return []
    return [load_card(path) for path in sorted(folder.glob(f"*{CARD_SUFFIX}"))]


def _from_card(card_path: Path) -> ResolvedModel:
    card = load_card(card_path)
    model_path = card_path.parent / card.file
    # a card names a file beside it: "../../etc/passwd" or a link out of the folder is refused
    if Path(card.file).name != card.file:
        raise InputError(card_path, f"field 'file': {card.file!r} must be a file name in the "
                         "card's folder (no '/' or '..')")
    inside_root(model_path, str(model_path), card_path.parent)
    check_user_file(model_path, str(model_path))
    graph = None
    axis = stats_cache.checked_axis(model_path)  # this file passed the checks before
    if axis is None:
        graph = _load_checked(model_path)
        axis = graph_stats.channel_axis(graph_stats.image_input(graph))
        stats_cache.store_checked(model_path, axis)
    expected_axis = 1 if card.input.layout == "NCHW" else 3
    if axis != expected_axis:
        raise InputError(
            card_path,
            f"field 'input.layout': {card.input.layout} does not match the model's input, "
            f"whose 3-channel axis is {axis}",
        )
    return ResolvedModel(card.name, model_path, card, _graph=graph)


def _from_graph(model_path: Path) -> ResolvedModel:
    graph = _load_checked(model_path)
    image = graph_stats.image_input(graph)
    layout = "NCHW" if graph_stats.channel_axis(image) == 1 else "NHWC"
    dims = [d.dim_value for d in image.type.tensor_type.shape.dim]  # 0 where dynamic
    spatial = dims[2:4] if layout == "NCHW" else dims[1:3]
    fixed = spatial[0] if spatial[0] > 0 and spatial[0] == spatial[1] else None
    sizes = (
        InputSpec(layout, DERIVED_RANGE, "RGB", fixed, 1, fixed, fixed)
        if fixed
        else InputSpec(layout, DERIVED_RANGE, "RGB", 256, 8, 64, 1024)
    )
    weight_bytes = graph_stats.weights_bytes(graph)
    card = ModelCard(
        name=model_path.stem,
        file=model_path.name,
        description=f"{model_path.name} (no card: derived from the graph)",
        input=sizes,
        output=ImageSpec(layout, DERIVED_RANGE, "RGB"),
        parameters=graph_stats.parameter_count(graph),
        weights_mb=weight_bytes / BYTES_PER_MB,
        provenance="card derived from the ONNX graph by simulator/zoo/registry.py",
        notes="value range [-1, 1] and RGB assumed (AnimeGAN convention); add a card to change",
    )
    return ResolvedModel(card.name, model_path, card, _graph=graph)


def _load_checked(path: Path) -> onnx.ModelProto:
    """Load an ONNX file and check it is one RGB image in, one RGB image out, and that
    ONNX Runtime accepts it; every failure is an InputError naming the file."""
    if not path.is_file():
        raise InputError(path, "model file not found")
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf and onnx raise assorted types for a bad file
        raise InputError(
            path, f"not an ONNX model (cannot parse: {exc.__class__.__name__})"
        ) from None
    if not model.graph.node:
        raise InputError(path, "not an ONNX model (the graph has no nodes)")
    try:
        image = graph_stats.image_input(model)
    except ValueError as exc:
        raise InputError(path, f"model input: {exc}") from None
    if graph_stats.channel_axis(image) is None:
        raise InputError(
            path,
            f"model input '{image.name}': expected a rank-4 RGB image "
            f"[1,3,H,W] or [1,H,W,3], got {_shape_text(image)}",
        )
    if not model.graph.output or graph_stats.channel_axis(model.graph.output[0]) is None:
        got = _shape_text(model.graph.output[0]) if model.graph.output else "no output"
        raise InputError(path, f"model output: expected a rank-4 image with 3 channels, got {got}")
    _check_runtime_accepts(path)
    return model


def _shape_text(value: onnx.ValueInfoProto) -> str:
    dims = value.type.tensor_type.shape.dim
    return (
        "["
        + ",".join(
            str(d.dim_value) if d.HasField("dim_value") else d.dim_param or "?" for d in dims
        )
        + "]"
    )


def _check_runtime_accepts(path: Path) -> None:
    import onnxruntime as ort  # heavy import, only needed once a model is really used

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # load fast
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT has its own exception hierarchy
        raise InputError(path, f"ONNX Runtime cannot load the model: {first_line(exc)}") from None
