"""The built-in ``toon-classic`` model: a cartoon filter written directly as an ONNX graph.

No training and no download: every weight is a fixed, hand-chosen constant.
1. Edge-preserving smoothing: two passes of a bilateral filter over the 3x3 neighbourhood
   (the second with dilation 2), weights exp(-dY^2 / sigma_r^2) * spatial Gaussian.
2. Colour quantisation: luminance is snapped softly to a few levels (tanh steps, after
   Winnemoeller et al. 2006) and the shift is added to all channels, so hue is kept.
3. Dark lines: Sobel gradient magnitude of the smoothed luminance, ramped smoothly
   between two thresholds, darkens the quantised colours.

Run ``python -m simulator.zoo.toon --out models`` to write the ONNX file and its card.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx

from simulator.zoo import graph_stats
from simulator.zoo.card import BYTES_PER_MB, ImageSpec, InputSpec, ModelCard, save_card
from simulator.zoo.onnx_graph import GraphBuilder, image_model

NAME = "toon-classic"
CARD_SIZES = (256, 512)

RANGE_SIGMA = 0.06  # luminance difference at which a neighbour's weight falls to 1/e
SPATIAL_SIGMA = 1.0  # in neighbourhood steps
PASS_DILATIONS = (1, 2)
LUMA_LEVELS = 6
STEP_SHARPNESS = 6.0  # tanh slope inside one quantisation step (higher = harder steps)
EDGE_LOW, EDGE_HIGH = 0.3, 0.7  # Sobel magnitude where lines start / are fully dark
LINE_DARKNESS = 0.85
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601


def _window(g: GraphBuilder, padded: str, pad: int, dy: int, dx: int) -> str:
    """The ``pad``-padded image shifted by (dy, dx): the original size again."""
    # ends count back from the far border; 0 would mean "empty", so the last window uses max
    ends = [shift - pad if shift < pad else np.iinfo(np.int64).max for shift in (dy, dx)]
    starts = g.const("starts", [pad + dy, pad + dx])
    return g.op("Slice", padded, starts, g.const("ends", ends), g.const("axes", [2, 3]))


def _edge_pad(g: GraphBuilder, image: str, pad: int) -> str:
    return g.op("Pad", image, g.const("pads", [0, 0, pad, pad, 0, 0, pad, pad]), mode="edge")


def _luminance(g: GraphBuilder, image: str) -> str:
    weights = np.array(LUMA_WEIGHTS).reshape(1, 3, 1, 1)
    weighted = g.op("Mul", image, g.const("luma_weights", weights))
    return g.op("ReduceSum", weighted, g.const("channel_axis", [1]), keepdims=1)


def _bilateral_pass(g: GraphBuilder, image: str, dilation: int) -> str:
    """One bilateral pass over the (dilated) 3x3 neighbourhood.

    The range weight exp(-dY^2 / sigma_r^2) uses the luminance difference: one channel
    instead of three, which halves the cost and looks the same on natural images.
    Each neighbour is a shifted Slice of the edge-padded image, summed with a variadic
    Sum: ONNX Runtime runs these much faster than a 5-D stack with ReduceSum.
    """
    d = dilation
    luma = _luminance(g, image)
    padded, padded_luma = _edge_pad(g, image, d), _edge_pad(g, luma, d)
    neg_inv_var = g.const("neg_inv_var", -1.0 / RANGE_SIGMA**2)
    weighted, weights = [image], [g.const("centre_weight", np.ones((1, 1, 1, 1)))]
    for dy, dx in ((dy, dx) for dy in (-d, 0, d) for dx in (-d, 0, d) if dy or dx):
        diff = g.op("Sub", _window(g, padded_luma, d, dy, dx), luma)
        log_spatial = -(dy * dy + dx * dx) / (2 * (d * SPATIAL_SIGMA) ** 2)
        logit = g.op("Mul", g.op("Mul", diff, diff), neg_inv_var)
        weight = g.op("Exp", g.op("Add", logit, g.const("log_spatial", log_spatial)))
        weighted.append(g.op("Mul", _window(g, padded, d, dy, dx), weight))
        weights.append(weight)
    return g.op("Div", g.op("Sum", *weighted), g.op("Sum", *weights))


def _quantize_luminance(g: GraphBuilder, image: str, luma: str) -> str:
    """Snap luminance softly to LUMA_LEVELS steps and shift all channels by the change."""
    scaled = g.op("Mul", luma, g.const("levels", float(LUMA_LEVELS)))
    nearest = g.op("Floor", g.op("Add", scaled, g.const("half", 0.5)))
    offset = g.op("Sub", scaled, nearest)  # in [-0.5, 0.5)
    soft = g.op("Tanh", g.op("Mul", offset, g.const("sharp", STEP_SHARPNESS)))
    snapped = g.op("Add", nearest, g.op("Mul", soft, g.const("half", 0.5)))
    shift = g.op("Sub", g.op("Div", snapped, g.const("levels", float(LUMA_LEVELS))), luma)
    return g.op("Add", image, shift)


def _line_mask(g: GraphBuilder, luma: str) -> str:
    """1 - darkness of the ink line at each pixel, from the Sobel gradient magnitude."""
    padded = _edge_pad(g, luma, 1)

    def across(dy: int, dx: int) -> str:
        """Value at (dy, dx) minus value at (-dy, -dx)."""
        return g.op("Sub", _window(g, padded, 1, dy, dx), _window(g, padded, 1, -dy, -dx))

    # Sobel from the two diagonal differences plus twice the axis-aligned ones
    falling, rising = across(1, 1), across(1, -1)
    two = g.const("two", 2.0)
    gx = g.op("Sum", g.op("Sub", falling, rising), g.op("Mul", across(0, 1), two))
    gy = g.op("Sum", g.op("Add", falling, rising), g.op("Mul", across(1, 0), two))
    magnitude = g.op("Sqrt", g.op("Add", g.op("Mul", gx, gx), g.op("Mul", gy, gy)))
    ramp = g.op(
        "Mul",
        g.op("Sub", magnitude, g.const("edge_low", EDGE_LOW)),
        g.const("edge_slope", 1.0 / (EDGE_HIGH - EDGE_LOW)),
    )
    ink = g.op("Clip", ramp, g.const("zero", 0.0), g.const("one", 1.0))
    return g.op("Sub", g.const("one", 1.0), g.op("Mul", ink, g.const("dark", LINE_DARKNESS)))


def build_toon_classic() -> onnx.ModelProto:
    """The toon-classic graph: input "input" [1,3,H,W] RGB in [0,1] -> "output" same shape."""
    g = GraphBuilder()
    smooth = "input"
    for dilation in PASS_DILATIONS:
        smooth = _bilateral_pass(g, smooth, dilation)
    luma = _luminance(g, smooth)
    flat = _quantize_luminance(g, smooth, luma)
    inked = g.op("Mul", flat, _line_mask(g, luma))
    g.op("Clip", inked, g.const("zero", 0.0), g.const("one", 1.0), out="output")

    return image_model(g.nodes, g.initializers, NAME)


def toon_classic_card(model: onnx.ModelProto) -> ModelCard:
    """The card for the graph, with costs measured by graph_stats."""
    stats = {size: graph_stats.analyze(model, size) for size in CARD_SIZES}
    first = stats[CARD_SIZES[0]]
    return ModelCard(
        name=NAME,
        file=f"{NAME}.onnx",
        description=(
            "Cartoon look without training: bilateral smoothing, soft luminance "
            "quantisation and dark Sobel edge lines."
        ),
        input=InputSpec(
            layout="NCHW",
            value_range=(0.0, 1.0),
            channels="RGB",
            default_size=256,
            size_multiple=8,
            min_size=64,
            max_size=1024,
            fully_convolutional=True,  # any H x W: checked by tests/test_input_fit.py
        ),
        output=ImageSpec(layout="NCHW", value_range=(0.0, 1.0), channels="RGB"),
        parameters=first.parameters,
        weights_mb=round(first.weights_bytes / BYTES_PER_MB, 6),
        flops={size: s.flops for size, s in stats.items()},
        activation_mb={
            size: round(s.activation_peak_bytes / BYTES_PER_MB, 3) for size, s in stats.items()
        },
        provenance="built by simulator/zoo/toon.py (python -m simulator.zoo.toon); "
        "hand-chosen constants, no training, no download",
        notes=(
            f"{len(PASS_DILATIONS)} bilateral passes (3x3, dilations {PASS_DILATIONS}, "
            f"sigma_r={RANGE_SIGMA}), {LUMA_LEVELS} luminance levels, Sobel lines "
            f"between {EDGE_LOW} and {EDGE_HIGH}. Any size works; multiples of 8 are advised."
        ),
    )


def write_toon_classic(out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``toon-classic.onnx`` and its card into ``out_dir``; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_toon_classic()
    model_path = out_dir / f"{NAME}.onnx"
    card_path = out_dir / f"{NAME}.card.json"
    model_path.write_bytes(model.SerializeToString())
    save_card(toon_classic_card(model), card_path)
    return model_path, card_path


def main(argv: list[str] | None = None) -> int:
    """Console entry: ``python -m simulator.zoo.toon --out models``."""
    parser = argparse.ArgumentParser(description=f"Build the {NAME} ONNX model and its card.")
    parser.add_argument("--out", default="models", help="output folder (default: models)")
    args = parser.parse_args(argv)
    for path in write_toon_classic(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
