"""Write PyTorch checkpoints in torch.save's zip format without torch, for the reader tests.

The pickle is emitted opcode by opcode (protocol 2, as torch.save writes it), so names such
as ``torch._utils._rebuild_tensor_v2`` are only GLOBAL opcodes in the stream: nothing needs
to import them. Storages are referenced by BINPERSID with torch's persistent-id tuple
``('storage', <GLOBAL torch.FloatStorage>, key, 'cpu', numel)``.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STORAGE_NAMES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


@dataclass(frozen=True)
class TensorRef:
    """A tensor as torch pickles it: a view (offset, size, stride) of storage ``key``."""

    key: str
    storage: str  # e.g. "FloatStorage"
    numel: int
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    parameter: bool = False


@dataclass(frozen=True)
class Call:
    """``module.name(*args)`` in the pickle: GLOBAL + args + REDUCE."""

    module: str
    name: str
    args: tuple = ()


@dataclass
class _Emitter:
    out: bytearray = field(default_factory=bytearray)

    def op(self, code: bytes, payload: bytes = b"") -> None:
        self.out += code + payload

    def global_(self, module: str, name: str) -> None:
        self.op(pickle.GLOBAL, f"{module}\n{name}\n".encode())

    def tuple_(self, items: Sequence[Any]) -> None:
        self.op(pickle.MARK)
        for item in items:
            self.emit(item)
        self.op(pickle.TUPLE)

    def emit(self, obj: Any) -> None:
        if isinstance(obj, bool):
            self.op(pickle.NEWTRUE if obj else pickle.NEWFALSE)
        elif isinstance(obj, int):
            if -(2**31) <= obj < 2**31:
                self.op(pickle.BININT, struct.pack("<i", obj))
            else:
                raw = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
                self.op(pickle.LONG1, bytes([len(raw)]) + raw)
        elif isinstance(obj, str):
            raw = obj.encode()
            self.op(pickle.BINUNICODE, struct.pack("<I", len(raw)) + raw)
        elif isinstance(obj, tuple):
            self.tuple_(obj)
        elif isinstance(obj, list):
            self.op(pickle.EMPTY_LIST)
            if obj:
                self.op(pickle.MARK)
                for item in obj:
                    self.emit(item)
                self.op(pickle.APPENDS)
        elif isinstance(obj, Mapping):
            self.global_("collections", "OrderedDict")
            self.op(pickle.EMPTY_TUPLE)
            self.op(pickle.REDUCE)
            if obj:
                self.op(pickle.MARK)
                for key, value in obj.items():
                    self.emit(key)
                    self.emit(value)
                self.op(pickle.SETITEMS)
        elif isinstance(obj, TensorRef):
            self.tensor(obj)
        elif isinstance(obj, Call):
            self.global_(obj.module, obj.name)
            self.tuple_(obj.args)
            self.op(pickle.REDUCE)
        else:
            raise TypeError(f"cannot emit {type(obj).__name__}")

    def tensor(self, ref: TensorRef) -> None:
        if ref.parameter:
            self.global_("torch._utils", "_rebuild_parameter")
            self.op(pickle.MARK)
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.op(pickle.MARK)
        self.op(pickle.MARK)  # the persistent id tuple
        self.emit("storage")
        self.global_("torch", ref.storage)
        for item in (ref.key, "cpu", ref.numel):
            self.emit(item)
        self.op(pickle.TUPLE)
        self.op(pickle.BINPERSID)
        for item in (ref.offset, ref.size, ref.stride, False, {}):
            self.emit(item)
        self.op(pickle.TUPLE)
        self.op(pickle.REDUCE)
        if ref.parameter:
            self.emit(True)
            self.emit({})
            self.op(pickle.TUPLE)
            self.op(pickle.REDUCE)


def pickle_bytes(obj: Any) -> bytes:
    """Protocol-2 pickle of ``obj`` (dicts, lists, tuples, str, int, bool, TensorRef, Call)."""
    emitter = _Emitter()
    emitter.op(pickle.PROTO, b"\x02")
    emitter.emit(obj)
    emitter.op(pickle.STOP)
    return bytes(emitter.out)


def write_archive(
    path: Path,
    data_pkl: bytes,
    storages: Mapping[str, bytes],
    *,
    root: str = "archive",
    byteorder: str | None = "little",
    extra: Mapping[str, bytes] | None = None,
) -> Path:
    """A zip laid out like torch.save's: ``root/data.pkl``, ``root/data/KEY``, ``root/version``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/data.pkl", data_pkl)
        if byteorder is not None:
            archive.writestr(f"{root}/byteorder", byteorder)
        for key, raw in storages.items():
            archive.writestr(f"{root}/data/{key}", raw)
        archive.writestr(f"{root}/version", "3\n")
        for name, raw in (extra or {}).items():
            archive.writestr(name, raw)
    return path


def tensor_entries(
    tensors: Mapping[str, np.ndarray], *, parameters: bool = False
) -> tuple[dict[str, TensorRef], dict[str, bytes]]:
    """One storage per tensor (C order, little-endian), as torch saves a state dict."""
    refs, storages = {}, {}
    for index, (name, array) in enumerate(tensors.items()):
        array = np.ascontiguousarray(array)
        key = str(index)
        strides = tuple(s // array.itemsize for s in array.strides)
        refs[name] = TensorRef(
            key, STORAGE_NAMES[array.dtype.name], array.size, 0, array.shape, strides, parameters
        )
        storages[key] = array.astype(array.dtype.newbyteorder("<")).tobytes()
    return refs, storages


def write_checkpoint(
    path: Path,
    tensors: Mapping[str, np.ndarray],
    *,
    wrap: str | None = None,
    prefix: str = "",
    parameters: bool = False,
) -> Path:
    """A state-dict checkpoint, optionally under ``{wrap: ...}`` with key prefix ``prefix``."""
    refs, storages = tensor_entries(tensors, parameters=parameters)
    state = {prefix + name: ref for name, ref in refs.items()}
    saved = {wrap: state, "epoch": 7} if wrap else state
    return write_archive(path, pickle_bytes(saved), storages)


MALICIOUS_CALLS = {
    "os.system": lambda marker: Call("os", "system", (f"touch {marker}",)),
    "builtins.exec": lambda marker: Call("builtins", "exec", (f"open({str(marker)!r}, 'w')",)),
    "subprocess.call": lambda marker: Call("subprocess", "call", (["touch", str(marker)],)),
}


def write_malicious(path: Path, marker: Path, call: str) -> Path:
    """A checkpoint whose data.pkl would create ``marker`` if its REDUCE ran (a tensor first,
    so the reader has started working when it meets the call)."""
    refs, storages = tensor_entries({"w": np.ones(3, np.float32)})
    saved = {"w": refs["w"], "payload": MALICIOUS_CALLS[call](marker)}
    return write_archive(path, pickle_bytes(saved), storages)
