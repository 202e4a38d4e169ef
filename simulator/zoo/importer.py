"""Bring a model into the zoo (``arsim models import FILE --name NAME [--out PATH.onnx]``).

- A PyTorch checkpoint (``.pt``/``.pth``/``.ckpt``) of the AnimeGANv2 generator is read
  without torch and without running pickle code (``simulator.zoo.checkpoint``), turned into
  an ONNX graph (``simulator.zoo.animegan``) and written with a card.
- An ``.onnx`` file is checked to be an image-to-image model by the registry's validation
  (which also loads it in ONNX Runtime) and copied with a card.

The card records the source file's name and SHA-256 and the costs measured on the graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import onnx

from simulator.errors import InputError, OutputError
from simulator.output_paths import prepare_output_file, writing
from simulator.report.json_report import write_atomic
from simulator.zoo import animegan, graph_stats, registry
from simulator.zoo.card import BYTES_PER_MB, CARD_SUFFIX, ModelCard, save_card

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def import_model(
    file: str | Path,
    name: str,
    out: str | Path | None = None,
    *,
    models_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Import ``file`` as model ``name``; return the written ONNX path.

    The ONNX file goes to ``out`` (a ``.onnx`` path) or ``models_dir/NAME.onnx`` (default:
    the registry's models folder), its card beside it as ``<stem>.card.json``. An existing,
    different model there is only replaced with ``overwrite=True``.
    """
    file = Path(file)
    if not _SAFE_NAME.fullmatch(name) or name.endswith(".") or ".." in name:
        raise InputError("--name", f"'{name}': expected a file stem of [a-z0-9._-] characters")
    target = Path(out) if out is not None else Path(models_dir or registry.models_dir()) / name
    if out is None:
        target = target.with_name(f"{name}.onnx")
    elif target.suffix != ".onnx":
        raise InputError(target, "--out: expected a path ending in .onnx")
    if not file.is_file():
        raise InputError(file, "file not found")
    suffix = file.suffix.lower()
    source = f"{file.name} (sha256 {_sha256(file)})"
    if suffix in CHECKPOINT_SUFFIXES:
        from simulator.zoo.checkpoint import load_state_dict

        model = animegan.build_generator(load_state_dict(file), str(file))
        data = model.SerializeToString()
        card = animegan.generator_card(
            model,
            name=name,
            file=target.name,
            description="AnimeGANv2 generator (bryandlee/animegan2-pytorch layout)",
            provenance=f"imported from the PyTorch checkpoint {source} by "
            "simulator/zoo/importer.py (AnimeGANv2 generator, bryandlee/animegan2-pytorch "
            "layout); the weights' licence is that of the checkpoint",
            notes="converted without torch; input and output RGB in [-1, 1], NCHW",
        )
    elif suffix == ".onnx":
        data, card = _onnx_with_card(file, name, target, source)
    else:
        raise InputError(file, "expected a .onnx model or a .pt/.pth/.ckpt PyTorch checkpoint")
    # Only now: a file that is not a model must not leave an empty models folder behind.
    prepare_output_file(target)
    card_path = target.with_name(target.stem + CARD_SUFFIX)
    if not overwrite:
        _refuse_replacing(target, card_path, data)
    with writing(target):
        write_atomic(target, data)
    try:
        with writing(card_path):
            save_card(card, card_path)
    except OutputError:
        target.unlink(missing_ok=True)  # a model without its card must not stay behind
        raise
    return target


def _onnx_with_card(file: Path, name: str, target: Path, source: str) -> tuple[bytes, ModelCard]:
    """The file's bytes and a card for it (the sibling card's specs when it has one)."""
    resolved = registry.resolve_model(str(file))  # validates: one RGB image in and out, ORT loads
    model = onnx.load(str(file), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise InputError(file, "models with external weight files are not supported; inline them")
    stats = {size: graph_stats.analyze(model, size) for size in animegan.CARD_SIZES}
    first = stats[animegan.CARD_SIZES[0]]
    card = dataclasses.replace(
        resolved.card,
        name=name,
        file=target.name,
        parameters=first.parameters,
        weights_mb=round(first.weights_bytes / BYTES_PER_MB, 6),
        flops={size: s.flops for size, s in stats.items()},
        activation_mb={
            size: round(s.activation_peak_bytes / BYTES_PER_MB, 3) for size, s in stats.items()
        },
        provenance=f"imported from {source} by simulator/zoo/importer.py",
    )
    return file.read_bytes(), card


def _refuse_replacing(target: Path, card_path: Path, data: bytes) -> None:
    """InputError unless the target is free or already holds exactly these bytes."""
    if target.exists():
        same = target.is_file() and target.read_bytes() == data
    else:
        same = not card_path.exists()  # a card without its model still names another model
    if not same:
        raise InputError(
            target, "a different model already exists here; choose another name or overwrite it"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
