"""Read PyTorch checkpoints (``torch.save`` zip format) without torch and without running
any code from the file.

A ``torch.save`` file is a zip archive: ``<root>/data.pkl`` (a pickle of the saved
object), ``<root>/data/<key>`` (raw tensor storages, little-endian unless
``<root>/byteorder`` says otherwise) and bookkeeping members (``version``, ...). The pickle
is read by a restricted unpickler: the only names it may reference are the tensor rebuild
functions (replaced by our own, which build numpy arrays after checking every offset,
shape and stride against the storage), storage dtypes, ``collections.OrderedDict`` and a
few plain builtins. Any other name is refused before anything is called; storages are
looked up in the archive by their key and size-checked.

The legacy (pre-1.6, non-zip) format is refused: re-save such a file with a current torch.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import InputError, first_line

MAX_PICKLE_BYTES = 16 << 20  # a state dict's data.pkl is a few kB
MAX_TENSOR_BYTES = 2 << 30  # all storages together, and all tensors built from them
MAX_MEMBERS = 100_000
MAX_DIMS = 8
WRAPPER_KEYS = ("state_dict", "model", "generator", "g_ema")
MODULE_PREFIX = "module."

# torch storage class name -> numpy dtype of its elements ("bfloat16" is widened below)
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_ROOT = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # pickled 0x1950a86a20f9469cfc6c
TORCHSCRIPT_HINT = " (a TorchScript archive? save the model's state_dict() instead)"


# frozen + slots: a BUILD opcode in the pickle cannot change these objects
@dataclass(frozen=True, slots=True)
class _StorageType:
    """Stands in for ``torch.<Name>Storage`` in the pickle: just its element type."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass(frozen=True, slots=True)
class _Storage:
    """One storage read from the archive: a flat array of elements."""

    key: str
    values: np.ndarray
    bfloat16: bool


class _Reader:
    """Holds the archive and the storages loaded so far, for one checkpoint."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, max_bytes: int) -> None:
        self.path = path
        self.archive = archive
        self.max_bytes = max_bytes
        self.loaded_bytes = 0
        self.tensor_bytes = 0
        self.storages: dict[str, _Storage] = {}
        self.root = self._root()
        self.byteorder = self._byteorder()

    def error(self, problem: str) -> InputError:
        return InputError(self.path, problem)

    def _root(self) -> str:
        infos = self.archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self.error(f"zip archive has {len(infos)} members (at most {MAX_MEMBERS})")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise self.error("zip archive has duplicate member names")
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            hint = TORCHSCRIPT_HINT if any(n.endswith("/constants.pkl") for n in names) else ""
            raise self.error(
                f"not a torch.save checkpoint: expected one '<root>/data.pkl' in the zip{hint}"
            )
        root = pickles[0].split("/")[0]
        if not _ROOT.fullmatch(root) or root in (".", ".."):
            raise self.error(f"zip member '{pickles[0]}': unsafe archive root name")
        return root

    def member(self, name: str, limit: int) -> bytes:
        """The bytes of ``<root>/<name>``, refusing members larger than ``limit``."""
        full = f"{self.root}/{name}"
        try:
            info = self.archive.getinfo(full)
        except KeyError:
            raise self.error(f"zip member '{full}' is missing") from None
        if info.file_size > limit:
            raise self.error(f"zip member '{full}' is {info.file_size} bytes (at most {limit})")
        with self.archive.open(info) as handle:
            data = handle.read(limit + 1)  # bounded even if the header lies about the size
        if len(data) != info.file_size:
            raise self.error(f"zip member '{full}': size does not match its header")
        return data

    def _byteorder(self) -> str:
        if f"{self.root}/byteorder" not in self.archive.namelist():
            return "little"
        order = self.member("byteorder", 16).decode("ascii", "replace").strip()
        if order not in ("little", "big"):
            raise self.error(f"byteorder: expected 'little' or 'big', got '{order[:16]}'")
        return order

    def storage(self, pid: Any) -> _Storage:
        """Resolve a persistent id ('storage', type, key, location, numel) to its data."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise self.error(f"refused: unknown persistent id {str(pid)[:60]}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType):
            raise self.error(f"refused: storage of unknown type {str(kind)[:40]}")
        if not isinstance(key, str) or not _STORAGE_KEY.fullmatch(key):
            raise self.error(f"refused: unsafe storage key {str(key)[:40]!r}")
        if not _is_int(numel) or numel < 0:
            raise self.error(f"storage '{key}': element count must be an integer >= 0")
        if key in self.storages:
            known = self.storages[key]
            if known.values.dtype.newbyteorder("=") != kind.dtype.newbyteorder("="):
                raise self.error(f"storage '{key}' is referenced with two different dtypes")
            return known
        nbytes = numel * kind.dtype.itemsize
        if self.loaded_bytes + nbytes > self.max_bytes:
            raise self.error(f"tensors exceed {self.max_bytes} bytes (the limit for a checkpoint)")
        data = self.member(f"data/{key}", nbytes)
        if len(data) != nbytes:
            raise self.error(
                f"storage '{key}': {len(data)} bytes in the archive, {nbytes} expected "
                f"({numel} x {kind.dtype.itemsize})"
            )
        dtype = kind.dtype.newbyteorder("<" if self.byteorder == "little" else ">")
        values = np.frombuffer(data, dtype=dtype).astype(kind.dtype.newbyteorder("="))
        self.loaded_bytes += nbytes
        self.storages[key] = _Storage(key, values, kind.name == "BFloat16Storage")
        return self.storages[key]

    def rebuild_tensor(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any = False,
        backward_hooks: Any = None,
        metadata: Any = None,
    ) -> np.ndarray:
        """Safe stand-in for ``torch._utils._rebuild_tensor_v2``: a copy of the strided view,
        after checking that every element it addresses lies inside the storage."""
        del requires_grad, backward_hooks, metadata  # autograd state means nothing here
        if type(storage) is not _Storage or self.storages.get(storage.key) is not storage:
            raise self.error("refused: tensor built from something that is not a storage")
        where = f"tensor on storage '{storage.key}'"
        if not _is_int(offset) or offset < 0:
            raise self.error(f"{where}: storage offset must be an integer >= 0")
        if not _int_tuple(size) or not _int_tuple(stride) or len(size) != len(stride):
            raise self.error(f"{where}: size and stride must be integer tuples of equal length")
        if len(size) > MAX_DIMS or any(n < 0 for n in size) or any(s < 0 for s in stride):
            raise self.error(f"{where}: at most {MAX_DIMS} dims, sizes and strides >= 0")
        count = len(storage.values)
        # stride 0 can repeat one element endlessly: cap what the copy would allocate
        self.tensor_bytes += int(np.prod(size, dtype=object)) * storage.values.itemsize
        if self.tensor_bytes > self.max_bytes:
            raise self.error(f"{where}: tensors exceed {self.max_bytes} bytes")
        if 0 not in size:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if last >= count:
                raise self.error(
                    f"{where}: offset {offset}, size {list(size)}, stride {list(stride)} reach "
                    f"element {last}, but the storage has {count}"
                )
            itemsize = storage.values.itemsize
            view = np.lib.stride_tricks.as_strided(
                storage.values[offset:],
                shape=size,
                strides=tuple(s * itemsize for s in stride),
                writeable=False,
            )
            array = np.array(view)
        else:
            array = np.zeros(size, dtype=storage.values.dtype)
        if storage.bfloat16:  # bfloat16 is the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def find_class(self, module: str, name: str) -> Any:
        allowed = self.allowed()
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise self.error(
            f"refused: pickle references {module}.{name} "
            "(only tensors and plain containers are allowed)"
        )

    def allowed(self) -> dict[tuple[str, str], Callable[..., Any]]:
        return {
            ("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): self.rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("_codecs", "encode"): _latin1_encode,  # protocol 2 pickles bytes this way
        }


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, reader: _Reader) -> None:
        super().__init__(io.BytesIO(data))
        self.reader = reader

    def find_class(self, module: str, name: str) -> Any:
        return self.reader.find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return self.reader.storage(pid)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_int(v) for v in value)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
    """Safe stand-in for ``torch._utils._rebuild_parameter``: the tensor itself."""
    if not isinstance(data, np.ndarray):
        raise pickle.UnpicklingError("parameter data is not a tensor")
    return data


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin1 bytes")
    return text.encode("latin1")


def read_checkpoint(path: str | Path, *, max_bytes: int = MAX_TENSOR_BYTES) -> Any:
    """The object saved by ``torch.save``, with tensors as numpy arrays (float16 stays
    float16, bfloat16 becomes float32). Refuses anything but tensors and plain containers."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_LEGACY_MAGIC))
    except FileNotFoundError:
        raise InputError(path, "checkpoint not found") from None
    except OSError as exc:
        raise InputError(path, f"cannot read checkpoint ({exc.__class__.__name__})") from None
    if head == _LEGACY_MAGIC:
        raise InputError(
            path,
            "legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with "
            "torch >= 1.6: torch.save(torch.load(f), 'new.pt')",
        )
    if head.startswith(b"\x80"):
        raise InputError(
            path, "refused: a bare pickle file (only the zip format of torch.save is read)"
        )
    if not zipfile.is_zipfile(path):
        raise InputError(path, "not a PyTorch checkpoint (expected the zip format of torch.save)")
    try:
        with zipfile.ZipFile(path) as archive:
            reader = _Reader(path, archive, max_bytes)
            data = reader.member("data.pkl", MAX_PICKLE_BYTES)
            return _RestrictedUnpickler(data, reader).load()
    except InputError:
        raise
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
        raise InputError(path, f"broken zip archive ({exc})".splitlines()[0]) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        MemoryError,
        RecursionError,
    ) as exc:
        raise InputError(path, f"broken data.pkl: {first_line(exc, limit=120)}") from None


def load_state_dict(
    path: str | Path, *, max_bytes: int = MAX_TENSOR_BYTES
) -> dict[str, np.ndarray]:
    """The state dict in a checkpoint: at top level or under one of ``WRAPPER_KEYS``, with a
    ``module.`` prefix (DataParallel) stripped from every key."""
    path = Path(path)
    saved = read_checkpoint(path, max_bytes=max_bytes)
    state = _find_state_dict(saved)
    if state is None:
        wrappers = "/".join(f"'{k}'" for k in WRAPPER_KEYS)
        raise InputError(
            path,
            f"expected a state dict (names -> tensors) at top level or under {wrappers}",
        )
    if state and all(key.startswith(MODULE_PREFIX) for key in state):
        state = {key.removeprefix(MODULE_PREFIX): value for key, value in state.items()}
    return dict(state)


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items())
    )


def _find_state_dict(saved: Any) -> dict[str, np.ndarray] | None:
    if _is_state_dict(saved):
        return saved
    if isinstance(saved, dict):
        for key in WRAPPER_KEYS:
            if _is_state_dict(saved.get(key)):
                return saved[key]
    return None
