"""The AnimeGANv2 generator as an ONNX graph, built from a state dict without PyTorch.

The layout is the widely used PyTorch port (bryandlee/animegan2-pytorch, ``model.py``,
class ``Generator``), so its checkpoints load by parameter name:

- ConvNormLReLU = pad (reflection) + Conv2d (no bias unless stated) + GroupNorm(1 group,
  affine, eps 1e-5) + LeakyReLU(0.2); parameters ``<p>.1.weight[, <p>.1.bias]`` (conv),
  ``<p>.2.weight``, ``<p>.2.bias`` (norm).
- InvertedResBlock(in, out, expansion 2): 1x1 ConvNormLReLU to 2*in, depthwise 3x3
  ConvNormLReLU (with bias), 1x1 conv to out, GroupNorm; input added when in == out.
- block_a (full, then half size) -> block_b (quarter) -> block_c -> bilinear resize
  (align_corners) to block_a's size -> block_d -> resize to the input size -> block_e ->
  1x1 conv -> tanh. Stride-2 convs pad 0 above/left and 1 below/right.

Input "input" and output "output" are RGB in [-1, 1], NCHW, with dynamic height and width
(any size works; multiples of 4 keep the resizes exact halvings).

``animeganv2-arch`` is this graph with seeded random weights: it has the real cost
(parameters, FLOPs, memory) and meaningless pictures. Its 8.6 MB ONNX file is not kept in
the repository; ``ensure_built`` writes it on first use (``python -m simulator.zoo.animegan``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from simulator.errors import InputError
from simulator.report.json_report import write_atomic
from simulator.zoo import graph_stats
from simulator.zoo.card import (
    BYTES_PER_MB,
    CARD_SUFFIX,
    ImageSpec,
    InputSpec,
    ModelCard,
    save_card,
)
from simulator.zoo.onnx_graph import GraphBuilder, image_model

ARCH_NAME = "animeganv2-arch"
ARCH_SEED = 0
CARD_SIZES = (256, 512)
NORM_EPS = 1e-5
LEAKY_SLOPE = 0.2
EXPANSION = 2
VALUE_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class ConvNormLReLU:
    """Pad + Conv2d + GroupNorm(1) + LeakyReLU; ``pads`` = (top, left, bottom, right)."""

    prefix: str
    cin: int
    cout: int
    kernel: int = 3
    stride: int = 1
    pads: tuple[int, int, int, int] = (1, 1, 1, 1)
    groups: int = 1
    bias: bool = False

    def shapes(self) -> Iterator[tuple[str, tuple[int, ...]]]:
        """(state-dict key, shape) of every parameter, in the port's order."""
        yield (
            f"{self.prefix}.1.weight",
            (self.cout, self.cin // self.groups, self.kernel, self.kernel),
        )
        if self.bias:
            yield f"{self.prefix}.1.bias", (self.cout,)
        yield f"{self.prefix}.2.weight", (self.cout,)
        yield f"{self.prefix}.2.bias", (self.cout,)


@dataclass(frozen=True)
class InvertedResBlock:
    """MobileNetV2-style block: expand 1x1, depthwise 3x3, project 1x1 + GroupNorm."""

    prefix: str
    cin: int
    cout: int

    @property
    def expand(self) -> ConvNormLReLU:
        width = self.cin * EXPANSION
        return ConvNormLReLU(f"{self.prefix}.layers.0", self.cin, width, 1, pads=(0, 0, 0, 0))

    @property
    def depthwise(self) -> ConvNormLReLU:
        width = self.cin * EXPANSION
        return ConvNormLReLU(f"{self.prefix}.layers.1", width, width, groups=width, bias=True)

    def shapes(self) -> Iterator[tuple[str, tuple[int, ...]]]:
        """(state-dict key, shape) of every parameter, in the port's order."""
        yield from self.expand.shapes()
        yield from self.depthwise.shapes()
        yield f"{self.prefix}.layers.2.weight", (self.cout, self.cin * EXPANSION, 1, 1)
        yield f"{self.prefix}.layers.3.weight", (self.cout,)
        yield f"{self.prefix}.layers.3.bias", (self.cout,)


Layer = ConvNormLReLU | InvertedResBlock
_DOWN = (0, 0, 1, 1)  # stride-2 convs: ReflectionPad2d((0, 1, 0, 1))


def _blocks() -> dict[str, list[Layer]]:
    c = ConvNormLReLU
    return {
        "block_a": [
            c("block_a.0", 3, 32, kernel=7, pads=(3, 3, 3, 3)),
            c("block_a.1", 32, 64, stride=2, pads=_DOWN),
            c("block_a.2", 64, 64),
        ],
        "block_b": [c("block_b.0", 64, 128, stride=2, pads=_DOWN), c("block_b.1", 128, 128)],
        "block_c": [
            c("block_c.0", 128, 128),
            InvertedResBlock("block_c.1", 128, 256),
            *(InvertedResBlock(f"block_c.{i}", 256, 256) for i in (2, 3, 4)),
            c("block_c.5", 256, 128),
        ],
        "block_d": [c("block_d.0", 128, 128), c("block_d.1", 128, 128)],
        "block_e": [
            c("block_e.0", 128, 64),
            c("block_e.1", 64, 64),
            c("block_e.2", 64, 32, kernel=7, pads=(3, 3, 3, 3)),
        ],
    }


BLOCKS = _blocks()
OUT_WEIGHT = "out_layer.0.weight"
STATE_SHAPES: dict[str, tuple[int, ...]] = {
    **{
        key: shape
        for layers in BLOCKS.values()
        for layer in layers
        for key, shape in layer.shapes()
    },
    OUT_WEIGHT: (3, 32, 1, 1),
}
"""Every state-dict key of the port's Generator with its shape, in the port's order."""
STATE_KEYS: tuple[str, ...] = tuple(STATE_SHAPES)


def seeded_state_dict(seed: int) -> dict[str, np.ndarray]:
    """Deterministic weights with PyTorch's default init scale: conv weights and biases
    uniform in +-1/sqrt(fan_in), GroupNorm weight 1 and bias 0."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in STATE_SHAPES.items():
        weight_shape = STATE_SHAPES[key.rsplit(".", 1)[0] + ".weight"]
        if len(weight_shape) == 4:  # a conv weight or bias (else a GroupNorm affine)
            bound = 1.0 / np.sqrt(np.prod(weight_shape[1:]))
            state[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
        else:
            state[key] = np.full(shape, 1.0 if key.endswith("weight") else 0.0, np.float32)
    return state


def check_state_dict(state: Mapping[str, np.ndarray], where: str = "state dict") -> None:
    """InputError naming the first missing, unexpected or wrongly shaped key."""
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(where, f"missing key '{missing[0]}'{more}: not an AnimeGANv2 generator")
    unexpected = [key for key in state if key not in STATE_SHAPES]
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise InputError(where, f"unexpected key '{unexpected[0]}'{more}")
    for key, shape in STATE_SHAPES.items():
        value = state[key]
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise InputError(where, f"key '{key}': expected a floating-point array")
        if value.shape != shape:
            raise InputError(
                where, f"key '{key}': expected shape {list(shape)}, got {list(value.shape)}"
            )
        if not np.isfinite(value).all():
            raise InputError(where, f"key '{key}': contains NaN or infinity")


class _GeneratorGraph(GraphBuilder):
    """Adds the generator's layers to a graph; weights are initializers named by their key."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.state = state

    def const(self, stem: str, value: np.ndarray | list | float) -> str:
        """Small fixed tensors (pads, eps) as Constant nodes, so the initializers are exactly
        the learnable parameters."""
        array = np.asarray(value)
        array = array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            self._consts[key] = self._fresh(stem)
            tensor = numpy_helper.from_array(array, self._consts[key])
            self.nodes.append(
                helper.make_node(
                    "Constant", [], [self._consts[key]], name=self._consts[key], value=tensor
                )
            )
        return self._consts[key]

    def weight(self, key: str, shape: tuple[int, ...] | None = None) -> str:
        array = np.asarray(self.state[key], dtype=np.float32)
        self.initializers.append(numpy_helper.from_array(array.reshape(shape or array.shape), key))
        return key

    def group_norm(self, x: str, prefix: str, channels: int) -> str:
        """GroupNorm with one group: mean and variance over C, H, W (two passes), then the
        per-channel affine."""
        centred = self.op("Sub", x, self.mean_chw(x))
        variance = self.mean_chw(self.op("Mul", centred, centred))
        std = self.op("Sqrt", self.op("Add", variance, self.const("eps", NORM_EPS)))
        normed = self.op("Div", centred, std)
        scale = self.weight(f"{prefix}.weight", (channels, 1, 1))
        shift = self.weight(f"{prefix}.bias", (channels, 1, 1))
        return self.op("Add", self.op("Mul", normed, scale), shift)

    def mean_chw(self, x: str) -> str:
        """Mean over W, then H, then C. ONNX Runtime sums one reduction naively in float32:
        over all of C*H*W at once (4M values at 512) the error reaches 1e-3; a few hundred at
        a time keeps it at PyTorch's level (1e-6)."""
        for axis in (3, 2, 1):
            x = self.op("ReduceMean", x, axes=[axis], keepdims=1)  # axes: an attribute in opset 17
        return x

    def conv_norm_lrelu(self, x: str, layer: ConvNormLReLU) -> str:
        if any(layer.pads):
            top, left, bottom, right = layer.pads
            pads = self.const("pads", [0, 0, top, left, 0, 0, bottom, right])
            x = self.op("Pad", x, pads, mode="reflect")
        inputs = [x, self.weight(f"{layer.prefix}.1.weight")]
        if layer.bias:
            inputs.append(self.weight(f"{layer.prefix}.1.bias"))
        conv = self.op(
            "Conv",
            *inputs,
            kernel_shape=[layer.kernel] * 2,
            strides=[layer.stride] * 2,
            group=layer.groups,
        )
        normed = self.group_norm(conv, f"{layer.prefix}.2", layer.cout)
        return self.op("LeakyRelu", normed, alpha=LEAKY_SLOPE)

    def inverted_res_block(self, x: str, block: InvertedResBlock) -> str:
        hidden = self.conv_norm_lrelu(self.conv_norm_lrelu(x, block.expand), block.depthwise)
        projected = self.op("Conv", hidden, self.weight(f"{block.prefix}.layers.2.weight"))
        out = self.group_norm(projected, f"{block.prefix}.layers.3", block.cout)
        return self.op("Add", x, out) if block.cin == block.cout else out

    def block(self, x: str, name: str) -> str:
        for layer in BLOCKS[name]:
            if isinstance(layer, InvertedResBlock):
                x = self.inverted_res_block(x, layer)
            else:
                x = self.conv_norm_lrelu(x, layer)
        return x

    def resize_like(self, x: str, like: str) -> str:
        """Bilinear resize (align_corners) of ``x`` to the height and width of ``like``,
        read from the runtime shapes so any input size works."""
        sizes = self.op(
            "Concat",
            self.op("Shape", x, start=0, end=2),
            self.op("Shape", like, start=2, end=4),
            axis=0,
        )
        return self.op(
            "Resize",
            x,
            "",
            "",
            sizes,
            mode="linear",
            coordinate_transformation_mode="align_corners",
        )


def build_generator(state: Mapping[str, np.ndarray], where: str = "state dict") -> onnx.ModelProto:
    """The generator graph with the given weights (opset 17); a bad state dict is an
    InputError naming ``where`` and the key."""
    check_state_dict(state, where)
    g = _GeneratorGraph(state)
    half = g.block("input", "block_a")
    x = g.block(g.block(half, "block_b"), "block_c")
    x = g.block(g.resize_like(x, half), "block_d")
    x = g.block(g.resize_like(x, "input"), "block_e")
    g.op("Tanh", g.op("Conv", x, g.weight(OUT_WEIGHT)), out="output")

    return image_model(g.nodes, g.initializers, "animeganv2_generator")


def generator_card(
    model: onnx.ModelProto, *, name: str, file: str, description: str, provenance: str, notes: str
) -> ModelCard:
    """A card for a generator graph: RGB in [-1, 1], costs measured by graph_stats."""
    stats = {size: graph_stats.analyze(model, size) for size in CARD_SIZES}
    first = stats[CARD_SIZES[0]]
    return ModelCard(
        name=name,
        file=file,
        description=description,
        input=InputSpec("NCHW", VALUE_RANGE, "RGB", 256, 8, 64, 1024, fully_convolutional=True),
        output=ImageSpec("NCHW", VALUE_RANGE, "RGB"),
        parameters=first.parameters,
        weights_mb=round(first.weights_bytes / BYTES_PER_MB, 6),
        flops={size: s.flops for size, s in stats.items()},
        activation_mb={
            size: round(s.activation_peak_bytes / BYTES_PER_MB, 3) for size, s in stats.items()
        },
        provenance=provenance,
        notes=notes,
    )


def arch_card(model: onnx.ModelProto) -> ModelCard:
    """The card of ``animeganv2-arch``."""
    return generator_card(
        model,
        name=ARCH_NAME,
        file=f"{ARCH_NAME}.onnx",
        description="AnimeGANv2 generator architecture with seeded random weights (cost only)",
        provenance=(
            f"built by simulator/zoo/animegan.py with seeded random weights (seed {ARCH_SEED}); "
            "architecture of bryandlee/animegan2-pytorch; no training, no download"
        ),
        notes=(
            "Its pictures are meaningless: the weights are random, not trained. It is for cost "
            "and timing work only (the real generator's parameters, FLOPs and memory). The ONNX "
            "file is generated on first use (python -m simulator.zoo.animegan --out models)."
        ),
    )


def build_arch() -> onnx.ModelProto:
    """The ``animeganv2-arch`` graph (same bytes on every call)."""
    return build_generator(seeded_state_dict(ARCH_SEED), ARCH_NAME)


def ensure_built(name: str, models_dir: Path) -> Path | None:
    """For ``animeganv2-arch``: write its ONNX file (and card, if absent) into ``models_dir``
    when missing and return the ONNX path. None for any other name."""
    if name != ARCH_NAME:
        return None
    models_dir = Path(models_dir)
    model_path = models_dir / f"{ARCH_NAME}.onnx"
    card_path = models_dir / f"{ARCH_NAME}{CARD_SUFFIX}"
    if model_path.is_file() and card_path.is_file():
        return model_path
    model = build_arch()
    try:
        if not model_path.is_file():
            models_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(model_path, model.SerializeToString())
        if not card_path.is_file():
            save_card(arch_card(model), card_path)
    except OSError as exc:
        raise InputError(
            model_path,
            f"cannot write the generated model ({exc.strerror or exc.__class__.__name__}); "
            "set ARSIM_MODELS_DIR to a writable folder",
        ) from None
    return model_path


def main(argv: list[str] | None = None) -> int:
    """Console entry: ``python -m simulator.zoo.animegan --out models`` (file and card)."""
    parser = argparse.ArgumentParser(description=f"Build {ARCH_NAME} (ONNX file and card).")
    parser.add_argument("--out", default="models", help="output folder (default: models)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    model = build_arch()
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / f"{ARCH_NAME}.onnx", model.SerializeToString())
    save_card(arch_card(model), out / f"{ARCH_NAME}{CARD_SUFFIX}")
    print(out / f"{ARCH_NAME}.onnx")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
