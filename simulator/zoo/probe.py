"""Cost-probe models: plain conv stacks with a chosen FLOP count, for calibration checks and
benchmarks when the cost of a real generator matters but its pictures do not.

``conv_probe(width=70, depth=9)`` costs 52.6 GFLOPs at 256x256 (AnimeGANv2's figure,
within 0.1 %). Weights are seeded random: the output means nothing.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_probe(*, width: int = 70, depth: int = 9, seed: int = 0) -> onnx.ModelProto:
    """3x3 convs 3 -> width, depth x (width -> width), width -> 3, ReLU between them and a
    Sigmoid at the end; input and output RGB in [0, 1], NCHW, dynamic size."""
    rng = np.random.default_rng(seed)
    chans = [3, width, *([width] * depth), 3]
    nodes, inits, prev = [], [], "input"
    for i, (cin, cout) in enumerate(pairwise(chans)):
        w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"),
                  numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"],
                                      pads=[1, 1, 1, 1]))
        last = i == len(chans) - 2
        prev = "output" if last else f"r{i}"
        nodes.append(helper.make_node("Sigmoid" if last else "Relu", [f"c{i}"], [prev]))
    image = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        nodes, "conv_probe", [helper.make_tensor_value_info("input", TensorProto.FLOAT, image)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, image)], inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def write_conv_probe(path: Path, **kwargs: int) -> Path:
    """Save a probe with a card next to it (range [0, 1]; FLOPs counted from the graph)."""
    from simulator.zoo import graph_stats
    from simulator.zoo.card import CARD_SUFFIX, ModelCard, save_card

    path = Path(path)
    model = conv_probe(**kwargs)
    onnx.save(model, str(path))
    card = ModelCard(  # the card defaults are this graph's: NCHW RGB in [0, 1], size 256
        name=path.stem,
        file=path.name,
        description="cost probe: seeded conv stack, pictures are meaningless",
        parameters=graph_stats.parameter_count(model),
        weights_mb=graph_stats.weights_bytes(model) / (1 << 20),
        flops={s: graph_stats.flops(model, s) for s in (256, 512)},
        activation_mb={256: graph_stats.activation_peak_bytes(model, 256) / (1 << 20)},
        provenance="simulator/zoo/probe.py (seeded random weights)",
        notes=f"conv_probe({kwargs})",
    )
    save_card(card, path.with_name(path.stem + CARD_SUFFIX))
    return path
