"""Reduced-precision variants of a model: FP16 and static INT8 (QDQ), each with a card.

- ``fp16``: weights and compute in float16 (``onnxruntime.transformers.float16``), float32
  input and output kept, so the Stylizer and the cost model treat it like its parent.
  ONNX Runtime's CPU provider lacks float16 kernels for most ops on x86 and inserts
  Casts back to float32 around them: the FP16 file is for phone GPUs, not for this host.
- ``int8``: static quantisation in QDQ format (``onnxruntime.quantization``): activations
  uint8 per tensor, weights int8 per output channel where the op allows. Calibration
  frames come from a scenario (default ``scenarios/orbit-desk``) and are preprocessed by
  the parent's own ``Stylizer.preprocess`` so layout and value range match the card.
  MinMax calibration is the default: measured on toon-classic and a conv probe it was
  as good as Entropy and better than Percentile on held-out frames, at a fraction of the
  calibration time (numbers in models/README.md, "Variants").

The variant's card records its parent, precision, file size, the parent's FLOPs (precision
does not change FLOPs; the device cost model decides speed), its own activation peak,
PSNR/SSIM against the parent on frames not used for calibration (default
``scenarios/pan-fast``) and the median ``session.run`` time on this host.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

import simulator
from simulator.errors import InputError
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.zoo import graph_stats
from simulator.zoo.card import BYTES_PER_MB, CARD_SUFFIX, ModelCard, save_card
from simulator.zoo.host_bench import bench_models
from simulator.zoo.quality import compare_models
from simulator.zoo.registry import ResolvedModel, resolve_model

MODES = ("fp16", "int8")
CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}
SCENARIOS_DIR = Path(simulator.__file__).parents[1] / "scenarios"
DEFAULT_CALIBRATION = SCENARIOS_DIR / "orbit-desk"
DEFAULT_EVALUATION = SCENARIOS_DIR / "pan-fast"
HOST_SIZE = 256
CARD_SIZES = (256, 512)
INTEGER_KERNEL_OPS = frozenset(("Conv", "ConvTranspose", "MatMul", "Gemm"))
_MISSING_KERNEL = re.compile(r"implementation for (\w+)\(")


def quantize_model(
    name_or_path: str,
    mode: str,
    *,
    calibration: Path | None = None,
    out_dir: Path,
    frames: int = 32,
    method: str = "minmax",
    evaluation: Path | None = None,
    eval_frames: int = 8,
    host_runs: int = 20,
    threads: int = 2,
) -> Path:
    """Write ``NAME-fp16.onnx`` or ``NAME-int8.onnx`` and its card into ``out_dir``;
    returns the ONNX path. ``calibration`` (a scenario, int8 only) gives ``frames``
    calibration frames; ``evaluation`` gives ``eval_frames`` other frames for the quality
    figures; ``host_runs`` timed runs per model (0 skips host timing)."""
    if mode not in MODES:
        raise InputError("mode", f"expected one of {', '.join(MODES)}, got '{mode}'")
    if method not in CALIBRATION_METHODS:
        raise InputError(
            "method", f"expected one of {', '.join(CALIBRATION_METHODS)}, got '{method}'"
        )
    if mode == "fp16" and calibration is not None:
        raise InputError("calibration", "only int8 quantisation uses calibration frames")
    for name, value, minimum in (
        ("frames", frames, 1),
        ("eval_frames", eval_frames, 1),
        ("host_runs", host_runs, 0),
    ):
        if value < minimum:
            raise InputError(name, f"expected a count >= {minimum}, got {value}")
    parent = resolve_model(name_or_path)
    if parent.card.precision != "fp32":
        raise InputError(
            parent.path, f"already a {parent.card.precision} variant; quantise its fp32 parent"
        )
    size = parent.card.input.default_size
    host_size = HOST_SIZE if parent.card.input.size_problem(HOST_SIZE) is None else size
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{parent.name}-{mode}.onnx"

    calibration_note = ""
    evaluation = Path(evaluation or DEFAULT_EVALUATION)
    if mode == "fp16":
        eval_images, eval_name = scenario_frames(evaluation, eval_frames)
        _convert_fp16(parent.path, out)
    else:
        calibration = Path(calibration or DEFAULT_CALIBRATION)
        tensors, cal_indices, cal_name = _calibration_tensors(parent, size, calibration, frames)
        same = calibration.resolve() == evaluation.resolve()
        avoid = cal_indices if same else []
        eval_images, eval_name = scenario_frames(evaluation, eval_frames, avoid)
        _quantize_int8(parent.path, out, tensors, method)
        calibration_note = f"{cal_name}: {len(tensors)} frames, {method}"

    card_path = out.with_name(out.stem + CARD_SUFFIX)
    save_card(_variant_card(parent, out, mode), card_path)
    variant = resolve_model(str(card_path))  # validates the file, the card and the runtime
    quality = compare_models(parent, variant, eval_images, size, threads=threads)
    host_ms: dict[str, float] = {}
    if host_runs:  # parent and variant interleaved, so that machine load hits both alike
        results = bench_models([parent, variant], (host_size,), runs=host_runs, threads=threads)
        host_ms = {r["model"]: r["sizes"][host_size]["run_ms"]["median"] for r in results}
    card = replace(
        variant.card,
        quality=_quality_fields(quality, eval_name, calibration_note),
        host_ms={host_size: host_ms[variant.name]} if host_ms else {},
        notes=_notes(mode, parent, variant, host_ms, f"at {host_size}, {threads} threads"),
    )
    save_card(card, card_path)
    return out


def scenario_frames(
    scenario: Path, count: int, avoid: list[int] | None = None
) -> tuple[list[np.ndarray], str]:
    """``count`` RGB frames spread evenly over a scenario (skipping the indices in
    ``avoid``), and the scenario's name."""
    images, _, name = _sampled(scenario, count, avoid or [], lambda image: image)
    return images, name


def _calibration_tensors(
    parent: ResolvedModel, size: int, scenario: Path, count: int
) -> tuple[list[np.ndarray], list[int], str]:
    """Model inputs made from ``count`` scenario frames exactly as the Stylizer makes them,
    with the frame indices used and the scenario's name."""
    return _sampled(scenario, count, [], Stylizer(parent, size).preprocess)


def _sampled(
    scenario: Path, count: int, avoid: list[int], convert: Callable[[np.ndarray], np.ndarray]
) -> tuple[list[np.ndarray], list[int], str]:
    with load_scenario(scenario) as loaded:
        skip = set(avoid)
        candidates = [i for i in range(loaded.frame_count) if i not in skip]
        if not candidates:
            raise InputError(scenario, "no frames left that were not used for calibration")
        spread = np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round()
        wanted = sorted({candidates[int(i)] for i in spread})
        images = []
        for frame in loaded.frames():
            if frame.index in wanted:
                images.append(convert(frame.image))
                if len(images) == len(wanted):
                    break
        return images, wanted, loaded.name


def _convert_fp16(source: Path, out: Path) -> None:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(source))
    half = convert_float_to_float16(
        model, keep_io_types=True, op_block_list=list(DEFAULT_OP_BLOCK_LIST)
    )
    _save_lean(half, out)
    _check_runs(out)


def _save_lean(model: onnx.ModelProto, out: Path) -> None:
    """Save without the intermediate shapes the converters annotate (ONNX Runtime infers
    them again on load); for small graphs they are most of the file."""
    del model.graph.value_info[:]
    onnx.save(model, str(out))


def _check_runs(path: Path) -> None:
    """Fail with the op's name when ONNX Runtime's CPU provider cannot run the variant."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT has its own exception hierarchy
        missing = _MISSING_KERNEL.search(str(exc))
        what = f"no CPU kernel for {missing.group(1)}" if missing else str(exc).splitlines()[0]
        raise InputError(path, f"ONNX Runtime cannot run the variant: {what}") from None


class _Frames(CalibrationDataReader):
    """Feeds calibration tensors to ONNX Runtime's calibrator."""

    def __init__(self, input_name: str, tensors: list[np.ndarray]) -> None:
        self._feeds = iter([{input_name: t} for t in tensors])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _quantize_int8(source: Path, out: Path, tensors: list[np.ndarray], method: str) -> None:
    input_name = graph_stats.image_input(onnx.load(str(source), load_external_data=False)).name
    with tempfile.TemporaryDirectory(prefix="arsim-quant-") as work:
        prepared = Path(work) / "prepared.onnx"
        try:
            # shape inference + basic graph optimisation: recommended before quantising
            # symbolic shape inference cannot follow graphs whose resize sizes are computed
            # (AR-lite, AnimeGANv2): ONNX shape inference and the optimiser are enough
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(out),
                _Frames(input_name, tensors),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATION_METHODS[method],
            )
        except Exception as exc:  # the quantisation tool raises assorted types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(source, f"INT8 quantisation failed: {first}") from None
    _save_lean(onnx.load(str(out)), out)
    _check_runs(out)


def _variant_card(parent: ResolvedModel, out: Path, mode: str) -> ModelCard:
    """The variant's card before quality and host timing are measured."""
    graph = onnx.load(str(out))
    sizes = sorted(parent.card.flops) or [
        s for s in CARD_SIZES if parent.card.input.size_problem(s) is None
    ]
    what = {
        "fp16": "FP16 weights and compute, float32 input/output",
        "int8": "static INT8 (QDQ: uint8 activations, int8 per-channel weights)",
    }[mode]
    return replace(
        parent.card,
        name=out.stem,
        file=out.name,
        description=f"{what} variant of {parent.name}. {parent.card.description}".strip(),
        parameters=parent.parameters,
        weights_mb=round(graph_stats.weights_bytes(graph) / BYTES_PER_MB, 6),
        flops={s: parent.flops(s) for s in sizes},
        activation_mb={
            s: round(graph_stats.activation_peak_bytes(graph, s) / BYTES_PER_MB, 3) for s in sizes
        },
        provenance=f"simulator/zoo/quantize.py ({mode}) from {parent.name} "
        f"({parent.path.name}); parent: {parent.card.provenance}",
        parent=parent.name,
        precision=mode,
        file_bytes=out.stat().st_size,
        quality={},
        host_ms={},
    )


def _quality_fields(quality: dict[str, Any], scenario: str, calibration: str) -> dict:
    fields: dict[str, float | str] = {"reference": quality["reference"], "scenario": scenario}
    fields.update(frames=quality["frames"], size=quality["size"])
    for key in ("psnr_db", "psnr_db_min", "ssim", "ssim_min"):
        value = quality[key]
        fields[key] = "inf" if value == float("inf") else round(value, 4)  # JSON has no inf
    if calibration:
        fields["calibration"] = calibration
    return fields


def _notes(
    mode: str,
    parent: ResolvedModel,
    variant: ResolvedModel,
    host_ms: dict[str, float],
    timing: str,
) -> str:
    """What is true of this variant, with this host's measured numbers."""
    if mode == "fp16":
        notes = (
            "FP16 is for phone GPUs (backend gpu-fp16); ONNX Runtime's CPU provider on "
            "x86 has few float16 kernels and inserts Casts to float32 around the rest."
        )
    else:
        graph = onnx.load(str(variant.path), load_external_data=False).graph
        fused = sum(node.op_type in INTEGER_KERNEL_OPS for node in graph.node)
        notes = (
            f"INT8 QDQ: ONNX Runtime's CPU provider fuses QuantizeLinear/DequantizeLinear "
            f"around the {fused} Conv/MatMul/Gemm nodes into integer kernels; other ops run "
            "in float between quantise/dequantise pairs."
            if fused
            else "INT8 QDQ: this graph has no Conv/MatMul/Gemm for integer kernels, so every "
            "op runs in float between quantise/dequantise pairs: on a CPU that only adds work."
        )
    if host_ms:
        ratio = host_ms[variant.name] / host_ms[parent.name]
        notes += (
            f" On this host (median session.run {timing}): "
            f"{host_ms[variant.name]:.2f} ms vs {host_ms[parent.name]:.2f} ms for FP32 "
            f"({ratio:.2f}x)."
        )
    return notes + (
        " FLOPs are the parent's: precision does not change them; the device cost model, "
        "not this host, says how fast a phone runs it."
    )
