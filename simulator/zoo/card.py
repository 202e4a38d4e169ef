"""Model cards: what a stylization model expects and costs (JSON ``arsim-model-card/1``).

A card sits next to its ONNX file as ``<name>.card.json``. Sizes are square input
sizes in pixels; ``flops`` counts one multiply-add as 2 FLOPs; "MB" is 2**20 bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.jsonfile import read_json

CARD_FORMAT = "arsim-model-card/1"
CARD_SUFFIX = ".card.json"
BYTES_PER_MB = 1 << 20
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ImageSpec:
    """How an image tensor is laid out: axis order, value range and channel order."""

    layout: str = "NCHW"
    value_range: tuple[float, float] = (0.0, 1.0)
    channels: str = "RGB"


@dataclass(frozen=True)
class InputSpec(ImageSpec):
    """The model input: an image spec plus the square sizes the model accepts.

    ``fully_convolutional``: the graph accepts any H x W (each side a multiple of
    ``size_multiple`` within min..max), so a frame can keep its aspect (``--fit aspect``);
    false: only square ``size x size`` inputs are known to work."""

    default_size: int = 256
    size_multiple: int = 8
    min_size: int = 64
    max_size: int = 1024
    fully_convolutional: bool = False

    def size_problem(self, size: int) -> str | None:
        """Why ``size`` is not an acceptable input size, or None when it is."""
        if size < self.min_size or size > self.max_size:
            return f"input size {size} is outside {self.min_size}..{self.max_size}"
        if size % self.size_multiple:
            return f"input size {size} is not a multiple of {self.size_multiple}"
        return None


@dataclass(frozen=True)
class ModelCard:
    """Everything the simulator needs to know about a model besides its graph."""

    name: str
    file: str
    description: str = ""
    input: InputSpec = field(default_factory=InputSpec)
    output: ImageSpec = field(default_factory=ImageSpec)
    parameters: int = 0
    weights_mb: float = 0.0
    flops: dict[int, int] = field(default_factory=dict)
    activation_mb: dict[int, float] = field(default_factory=dict)
    provenance: str = ""
    notes: str = ""
    # variants (simulator/zoo/quantize.py); the defaults describe an original FP32 model
    parent: str = ""  # the model this one was converted from ("" = an original)
    precision: str = "fp32"
    file_bytes: int = 0  # size of the ONNX file (0 = not recorded)
    quality: dict[str, float | str] = field(default_factory=dict)  # PSNR/SSIM vs parent
    host_ms: dict[int, float] = field(default_factory=dict)  # median session.run on this host


class _Fields:
    """Reads typed fields out of a JSON object, naming file and field on any problem."""

    def __init__(self, data: Any, where: str, prefix: str = "") -> None:
        self.where = where
        self.prefix = prefix
        if not isinstance(data, dict):
            raise InputError(where, f"{self._name('') or 'card'}: expected a JSON object")
        self.data = data

    def _name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)

    def error(self, key: str, expected: str) -> InputError:
        got = json.dumps(self.data.get(key))[:40] if key in self.data else "missing"
        return InputError(self.where, f"field '{self._name(key)}': expected {expected}, got {got}")

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or (choices and value not in choices):
            raise self.error(key, " or ".join(choices) if choices else "a string")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        value = self.data.get(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"an integer >= {minimum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.data.get(key, default)
        if not _is_finite_number(value) or value < 0:
            raise self.error(key, "a non-negative number")
        return float(value)

    def value_range(self, key: str) -> tuple[float, float]:
        value = self.data.get(key, [0.0, 1.0])
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(_is_finite_number(v) for v in value)
            or not value[0] < value[1]
        ):
            raise self.error(key, "[low, high] with low < high")
        return float(value[0]), float(value[1])

    def size_table(self, key: str, cast: type) -> dict[int, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, 'an object like {"256": number}')
        table = {}
        for size, amount in value.items():
            if not str(size).isdigit() or int(size) <= 0 or not _is_finite_number(amount):
                raise self.error(key, 'an object like {"256": number} with sizes > 0')
            if amount < 0:
                raise self.error(key, "non-negative numbers")
            table[int(size)] = cast(amount)
        return table

    def flat_object(self, key: str) -> dict[str, float | str]:
        value = self.data.get(key, {})
        if not isinstance(value, dict) or not all(
            isinstance(v, str) or _is_finite_number(v) for v in value.values()
        ):
            raise self.error(key, "an object of strings and finite numbers")
        return dict(value)

    def nested(self, key: str) -> _Fields:
        return _Fields(self.data.get(key, {}), self.where, self._name(key))


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _image_fields(fields: _Fields) -> dict[str, Any]:
    return {
        "layout": fields.text("layout", "NCHW", LAYOUTS),
        "value_range": fields.value_range("range"),
        "channels": fields.text("channels", "RGB", CHANNEL_ORDERS),
    }


def card_from_dict(data: Any, where: str | Path) -> ModelCard:
    """Validate a parsed card; ``where`` names the file in error messages."""
    top = _Fields(data, str(where))
    if top.data.get("format") != CARD_FORMAT:
        raise top.error("format", f'"{CARD_FORMAT}"')
    inp = top.nested("input")
    input_spec = InputSpec(
        **_image_fields(inp),
        default_size=inp.integer("default_size", 256, minimum=1),
        size_multiple=inp.integer("size_multiple", 8, minimum=1),
        min_size=inp.integer("min_size", 64, minimum=1),
        max_size=inp.integer("max_size", 1024, minimum=1),
        fully_convolutional=inp.boolean("fully_convolutional", False),
    )
    if input_spec.min_size > input_spec.max_size:
        raise inp.error("max_size", f"a size >= min_size ({input_spec.min_size})")
    problem = input_spec.size_problem(input_spec.default_size)
    if problem:
        raise InputError(where, f"field 'input.default_size': {problem}")
    return ModelCard(
        name=top.text("name"),
        file=top.text("file"),
        description=top.text("description", ""),
        input=input_spec,
        output=ImageSpec(**_image_fields(top.nested("output"))),
        parameters=top.integer("parameters", 0),
        weights_mb=top.number("weights_mb", 0.0),
        flops=top.size_table("flops", int),
        activation_mb=top.size_table("activation_mb", float),
        provenance=top.text("provenance", ""),
        notes=top.text("notes", ""),
        parent=top.text("parent", ""),
        precision=top.text("precision", "fp32", PRECISIONS),
        file_bytes=top.integer("file_bytes", 0),
        quality=top.flat_object("quality"),
        host_ms=top.size_table("host_ms", float),
    )


def card_to_dict(card: ModelCard) -> dict[str, Any]:
    """The JSON form of a card (sizes become string keys, as JSON requires)."""

    def image(spec: ImageSpec) -> dict[str, Any]:
        return {"layout": spec.layout, "range": list(spec.value_range), "channels": spec.channels}

    variant = {  # written only when set, so cards of original models stay as they were
        "parent": card.parent,
        "precision": card.precision if card.precision != "fp32" else "",
        "file_bytes": card.file_bytes,
        "quality": card.quality,
        "host_ms": {str(size): value for size, value in sorted(card.host_ms.items())},
    }
    return {
        "format": CARD_FORMAT,
        "name": card.name,
        "file": card.file,
        "description": card.description,
        "input": {
            **image(card.input),
            "default_size": card.input.default_size,
            "size_multiple": card.input.size_multiple,
            "min_size": card.input.min_size,
            "max_size": card.input.max_size,
            "fully_convolutional": card.input.fully_convolutional,
        },
        "output": image(card.output),
        "parameters": card.parameters,
        "weights_mb": card.weights_mb,
        "flops": {str(size): value for size, value in sorted(card.flops.items())},
        "activation_mb": {str(size): value for size, value in sorted(card.activation_mb.items())},
        "provenance": card.provenance,
        "notes": card.notes,
        **{key: value for key, value in variant.items() if value},
    }


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a card file; any problem is an InputError naming the file and field."""
    path = Path(path)
    return card_from_dict(read_json(path, "model card"), path)


def save_card(card: ModelCard, path: str | Path) -> None:
    """Write a card as indented JSON (stable key order, so rebuilt cards diff cleanly)."""
    Path(path).write_text(json.dumps(card_to_dict(card), indent=2) + "\n", encoding="utf-8")
