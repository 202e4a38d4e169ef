"""AR-lite: a small real-time student generator (MobileNetV2-style encoder-decoder).

The topology is written once, in :func:`forward`, against a tiny "ops" interface; two
backends walk it: :class:`OnnxOps` here (emits ONNX nodes from a numpy state dict, no
torch) and the PyTorch module in :mod:`simulator.zoo.train_lite`. The state-dict keys are
``<conv>.weight`` / ``<conv>.bias`` for every conv named by :func:`conv_specs`.

Layout: input and output NCHW RGB in [0, 1], any H, W that are multiples of 4 (the card
asks for multiples of 8). Inverted residual blocks (1x1 expand, ReLU, 3x3 depthwise,
ReLU, 1x1 linear project, identity shortcut when shapes match); two stride-2 blocks go
down to 1/4 resolution, two bilinear x2 upsamplings come back, each followed by an
additive skip from the encoder at that scale; a 3x3 head predicts a residual that is
added to the input image and clipped to [0, 1]. No normalisation layers, so export
needs no folding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import onnx
from onnx import helper, numpy_helper

from simulator.errors import InputError
from simulator.zoo.onnx_graph import image_model

NAME = "ar-lite"

T = TypeVar("T")


@dataclass(frozen=True)
class LiteConfig:
    """Widths at full, 1/2 and 1/4 resolution; the expansion ratio of the blocks whose input
    is at each of those resolutions; the number of bottleneck blocks at 1/4."""

    widths: tuple[int, int, int] = (16, 32, 64)
    expand: tuple[int, int, int] = (2, 3, 4)
    deep_blocks: int = 2


@dataclass(frozen=True)
class ConvSpec:
    """One convolution (always with bias): its name, shape and stride."""

    name: str
    cin: int
    cout: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.cout, self.cin // self.groups, self.kernel, self.kernel)


def _block_specs(name: str, cin: int, cout: int, expand: int, stride: int) -> list[ConvSpec]:
    hidden = cin * expand
    return [
        ConvSpec(f"{name}_expand", cin, hidden),
        ConvSpec(f"{name}_dw", hidden, hidden, 3, stride, hidden),
        ConvSpec(f"{name}_project", hidden, cout),
    ]


def conv_specs(config: LiteConfig = LiteConfig()) -> list[ConvSpec]:
    """Every conv of the network in forward order (the parameter layout)."""
    c0, c1, c2 = config.widths
    t0, t1, t2 = config.expand
    specs = [ConvSpec("stem", 3, c0, 3)]
    specs += _block_specs("down1", c0, c1, t0, 2)
    specs += _block_specs("down2", c1, c2, t1, 2)
    for i in range(config.deep_blocks):
        specs += _block_specs(f"deep{i}", c2, c2, t2, 1)
    specs += [ConvSpec("up1_reduce", c2, c1)]
    specs += _block_specs("up1", c1, c1, t1, 1)
    specs += [ConvSpec("up0_reduce", c1, c0)]
    specs += _block_specs("up0", c0, c0, t0, 1)
    specs += [ConvSpec("head", c0, 3, 3)]
    return specs


class Ops(Protocol[T]):
    """What :func:`forward` needs from a backend (T is its tensor type)."""

    def conv(self, name: str, x: T, relu: bool) -> T: ...
    def add(self, a: T, b: T) -> T: ...
    def upsample2(self, x: T) -> T: ...
    def clip01(self, x: T) -> T: ...


def _inverted_residual(ops: Ops[T], name: str, x: T, shortcut: bool) -> T:
    hidden = ops.conv(f"{name}_dw", ops.conv(f"{name}_expand", x, True), True)
    out = ops.conv(f"{name}_project", hidden, False)
    return ops.add(out, x) if shortcut else out


def forward(ops: Ops[T], image: T, config: LiteConfig, clip: bool = True) -> T:
    """The network on ``image`` (RGB in [0, 1]); ``clip=False`` leaves the output unclipped
    (training uses it so that overshoot is still penalised)."""
    skip0 = ops.conv("stem", image, True)
    skip1 = _inverted_residual(ops, "down1", skip0, False)
    x = _inverted_residual(ops, "down2", skip1, False)
    for i in range(config.deep_blocks):
        x = _inverted_residual(ops, f"deep{i}", x, True)
    x = ops.add(ops.upsample2(ops.conv("up1_reduce", x, False)), skip1)
    x = _inverted_residual(ops, "up1", x, True)
    x = ops.add(ops.upsample2(ops.conv("up0_reduce", x, False)), skip0)
    x = _inverted_residual(ops, "up0", x, True)
    out = ops.add(ops.conv("head", x, False), image)
    return ops.clip01(out) if clip else out


def config_from_state(state: Mapping[str, np.ndarray]) -> LiteConfig:
    """The configuration a state dict was made for, read from its weight shapes; any
    missing or misshapen weight is an InputError naming the key."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise InputError("ar-lite state", f"missing weight '{key}'")
        return tuple(np.shape(state[key]))

    widths = tuple(shape(f"{name}.weight")[0] for name in ("stem", "down1_project",
                                                             "down2_project"))
    deep = 0
    while f"deep{deep}_expand.weight" in state:
        deep += 1
    blocks = ("down1", "down2", "deep0" if deep else "up1")
    hidden = [shape(f"{name}_expand.weight")[0] for name in blocks]
    expand = tuple(h // max(c, 1) for h, c in zip(hidden, widths, strict=True))
    config = LiteConfig(widths, expand, deep)
    expected = {}
    for spec in conv_specs(config):
        expected[f"{spec.name}.weight"] = spec.weight_shape
        expected[f"{spec.name}.bias"] = (spec.cout,)
    for key, want in expected.items():
        if shape(key) != want:
            raise InputError(
                "ar-lite state", f"weight '{key}': expected shape {want}, got {shape(key)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise InputError("ar-lite state", f"unexpected weight '{extra[0]}'")
    return config


def init_state(config: LiteConfig = LiteConfig(), seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded He-initialised weights (float32); residual projections and the head start
    small so the untrained network is close to the identity."""
    rng = np.random.default_rng(seed)
    state = {}
    for spec in conv_specs(config):
        fan_in = spec.cin // spec.groups * spec.kernel * spec.kernel
        scale = np.sqrt(2.0 / fan_in)
        if spec.name == "head" or spec.name.endswith("_project"):
            scale *= 0.1
        state[f"{spec.name}.weight"] = (rng.standard_normal(spec.weight_shape) * scale).astype(
            np.float32
        )
        state[f"{spec.name}.bias"] = np.zeros(spec.cout, np.float32)
    return state


class OnnxOps:
    """Backend of :func:`forward` that appends ONNX nodes; tensors are value names."""

    def __init__(self, state: Mapping[str, np.ndarray], config: LiteConfig) -> None:
        self.specs = {spec.name: spec for spec in conv_specs(config)}
        self.nodes: list[onnx.NodeProto] = []
        self.initializers = [
            numpy_helper.from_array(np.asarray(state[key], np.float32), key)
            for spec in self.specs.values()
            for key in (f"{spec.name}.weight", f"{spec.name}.bias")
        ]
        self._consts: dict[str, str] = {}

    def _node(self, op: str, inputs: list[str], stem: str, **attrs) -> str:
        name = f"{stem}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def _const(self, name: str, value: list[float]) -> str:
        if name not in self._consts:
            self.initializers.append(numpy_helper.from_array(np.array(value, np.float32), name))
            self._consts[name] = name
        return name

    def conv(self, name: str, x: str, relu: bool) -> str:
        spec = self.specs[name]
        pad = spec.kernel // 2
        out = self._node(
            "Conv",
            [x, f"{name}.weight", f"{name}.bias"],
            name,
            kernel_shape=[spec.kernel] * 2,
            strides=[spec.stride] * 2,
            pads=[pad] * 4,
            group=spec.groups,
        )
        return self._node("Relu", [out], f"{name}_relu") if relu else out

    def add(self, a: str, b: str) -> str:
        return self._node("Add", [a, b], "add")

    def upsample2(self, x: str) -> str:
        scales = self._const("scales_x2", [1.0, 1.0, 2.0, 2.0])
        return self._node(
            "Resize",
            [x, "", scales],
            "up",
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        )

    def clip01(self, x: str) -> str:
        low, high = self._const("zero", [0.0]), self._const("one", [1.0])
        return self._node("Clip", [x, low, high], "clip")


def build_lite(state: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The AR-lite ONNX graph (opset 17) from a numpy state dict of the PyTorch student:
    input "input" [1,3,H,W] RGB in [0,1] -> "output" of the same shape."""
    config = config_from_state(state)
    ops = OnnxOps(state, config)
    result = forward(ops, "input", config)
    # Rename the last node's output to "output" (the graph's output name).
    ops.nodes[-1].output[0] = "output"
    assert result == ops.nodes[-1].name
    return image_model(ops.nodes, ops.initializers, NAME)
