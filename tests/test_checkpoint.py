"""The torch-free, code-free checkpoint reader (simulator.zoo.checkpoint) on hand-written files."""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from checkpoint_fixtures import (
    MALICIOUS_CALLS,
    Call,
    TensorRef,
    pickle_bytes,
    tensor_entries,
    write_archive,
    write_checkpoint,
    write_malicious,
)

from simulator.errors import InputError
from simulator.zoo.checkpoint import load_state_dict, read_checkpoint

RNG = np.random.default_rng(3)
TENSORS = {
    "conv.weight": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
    "norm.bias": RNG.standard_normal(4).astype(np.float64),
    "half": RNG.standard_normal((2, 5)).astype(np.float16),
    "steps": np.arange(6, dtype=np.int64).reshape(2, 3),
    "mask": np.array([True, False, True]),
}


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for key, array in want.items():
        assert got[key].dtype == array.dtype, key
        np.testing.assert_array_equal(got[key], array, err_msg=key)


def test_reads_every_dtype_of_a_plain_state_dict(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "plain.pt", TENSORS)
    _assert_same(load_state_dict(path), TENSORS)


@pytest.mark.parametrize("wrap", ["state_dict", "model", "generator", "g_ema"])
def test_wrappers_and_module_prefix_are_unwrapped(tmp_path: Path, wrap: str) -> None:
    path = write_checkpoint(
        tmp_path / "wrapped.pth", TENSORS, wrap=wrap, prefix="module.", parameters=True
    )
    saved = read_checkpoint(path)
    assert saved["epoch"] == 7 and "module.conv.weight" in saved[wrap]
    _assert_same(load_state_dict(path), TENSORS)


def test_strided_views_and_shared_storage_are_rebuilt(tmp_path: Path) -> None:
    base = np.arange(24, dtype=np.float32)
    views = {
        "transposed": TensorRef("0", "FloatStorage", 24, 0, (4, 3), (1, 4)),
        "offset_slice": TensorRef("0", "FloatStorage", 24, 5, (3,), (2,)),
        "broadcast": TensorRef("0", "FloatStorage", 24, 23, (2, 2), (0, 0)),
        "empty": TensorRef("0", "FloatStorage", 24, 0, (0, 7), (7, 1)),
    }
    path = write_archive(tmp_path / "views.pt", pickle_bytes(views), {"0": base.tobytes()})
    state = load_state_dict(path)
    np.testing.assert_array_equal(state["transposed"], base[:12].reshape(3, 4).T)
    np.testing.assert_array_equal(state["offset_slice"], [5, 7, 9])
    np.testing.assert_array_equal(state["broadcast"], np.full((2, 2), 23))
    assert state["empty"].shape == (0, 7)
    state["transposed"][0, 0] = 99  # copies, not views of a shared buffer
    assert state["offset_slice"][0] == 5


def test_big_endian_archives_are_byteswapped(tmp_path: Path) -> None:
    values = np.array([1.5, -2.25, 3.0], dtype=np.float32)
    refs = {"w": TensorRef("0", "FloatStorage", 3, 0, (3,), (1,))}
    raw = values.astype(">f4").tobytes()
    path = write_archive(tmp_path / "be.pt", pickle_bytes(refs), {"0": raw}, byteorder="big")
    np.testing.assert_array_equal(load_state_dict(path)["w"], values)


def test_bfloat16_is_widened_to_float32(tmp_path: Path) -> None:
    values = np.array([1.0, -0.5, 256.0, 3.140625], dtype=np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    refs = {"w": TensorRef("0", "BFloat16Storage", 4, 0, (4,), (1,))}
    path = write_archive(tmp_path / "bf16.pt", pickle_bytes(refs), {"0": raw})
    got = load_state_dict(path)["w"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize("call", sorted(MALICIOUS_CALLS))
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path: Path, call: str) -> None:
    # control: the plain unpickler really would run it
    control_marker = tmp_path / "control-ran"
    control = write_malicious(tmp_path / "control.pt", control_marker, call)
    data = zipfile.ZipFile(control).read("archive/data.pkl")

    class _StoragesAsNone(pickle.Unpickler):
        def persistent_load(self, pid: object) -> None:
            return None

        def find_class(self, module: str, name: str) -> object:
            if module.startswith("torch"):
                return lambda *args: None
            return super().find_class(module, name)

    _StoragesAsNone(io.BytesIO(data)).load()
    assert control_marker.exists()

    marker = tmp_path / "reader-ran"
    path = write_malicious(tmp_path / "evil.pt", marker, call)
    with pytest.raises(InputError) as caught:
        load_state_dict(path)
    assert str(caught.value) == (
        f"{path}: refused: pickle references {call} (only tensors and plain containers are allowed)"
    )
    assert not marker.exists()


def _single_tensor_archive(tmp_path: Path, ref: TensorRef, raw: bytes, key: str = "0") -> Path:
    return write_archive(tmp_path / "abuse.pt", pickle_bytes({"w": ref}), {key: raw})


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            TensorRef("0", "FloatStorage", 6, 0, (7,), (1,)),
            "reach element 6, but the storage has 6",
        ),
        (TensorRef("0", "FloatStorage", 6, 4, (2, 2), (1, 1)), "reach element 6"),
        (TensorRef("0", "FloatStorage", 6, 0, (2, 3), (3, 1, 1)), "equal length"),
        (TensorRef("0", "FloatStorage", 6, -1, (2,), (1,)), "offset must be an integer >= 0"),
        (TensorRef("0", "FloatStorage", 6, 0, (2, 3), (-3, 1)), "strides >= 0"),
        (TensorRef("0", "FloatStorage", 6, 0, (2**40, 2**40), (0, 0)), "tensors exceed"),
        (TensorRef("0", "FloatStorage", 9, 0, (6,), (1,)), "0 bytes in the archive"),
        (TensorRef("0", "FloatStorage", 3, 0, (3,), (1,)), "is 24 bytes (at most 12)"),
        (TensorRef("../../etc/passwd", "FloatStorage", 6, 0, (6,), (1,)), "unsafe storage key"),
        (TensorRef("7", "FloatStorage", 6, 0, (6,), (1,)), "'archive/data/7' is missing"),
        (TensorRef("0", "ComplexFloatStorage", 6, 0, (6,), (1,)), "torch.ComplexFloatStorage"),
    ],
)
def test_storage_and_view_abuse_is_refused(tmp_path: Path, ref: TensorRef, expected: str) -> None:
    raw = np.arange(6, dtype=np.float32).tobytes()
    path = _single_tensor_archive(tmp_path, ref, b"" if ref.numel == 9 else raw)
    with pytest.raises(InputError, match="^" + re.escape(str(path))) as caught:
        load_state_dict(path)
    assert expected in str(caught.value)


def test_tensor_size_limit_is_enforced(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "big.pt", {"w": np.zeros(1000, np.float32)})
    assert load_state_dict(path, max_bytes=4000)["w"].shape == (1000,)
    with pytest.raises(InputError, match="exceed 3999 bytes"):
        load_state_dict(path, max_bytes=3999)


def test_unsafe_archive_layouts_are_refused(tmp_path: Path) -> None:
    refs, storages = tensor_entries({"w": np.ones(2, np.float32)})
    pkl = pickle_bytes(refs)
    nested = write_archive(tmp_path / "nested.pt", pkl, storages, root="a/b")
    with pytest.raises(InputError, match=r"expected one '<root>/data.pkl'"):
        load_state_dict(nested)
    two = write_archive(tmp_path / "two.pt", pkl, storages, extra={"other/data.pkl": pkl})
    with pytest.raises(InputError, match=r"expected one '<root>/data.pkl'"):
        load_state_dict(two)
    script = tmp_path / "script.pt"
    with zipfile.ZipFile(script, "w") as archive:
        archive.writestr("m/constants.pkl", b"")
        archive.writestr("m/code/m.py", b"")
    with pytest.raises(InputError, match="TorchScript"):
        load_state_dict(script)
    bad_order = write_archive(tmp_path / "order.pt", pkl, storages, byteorder="middle")
    with pytest.raises(InputError, match="byteorder: expected 'little' or 'big'"):
        load_state_dict(bad_order)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.", "legacy (pre-1.6, non-zip) torch.save"),
        (pickle.dumps({"w": [1.0]}, protocol=2), "refused: a bare pickle file"),
        (b"PK\x03\x04 but truncated", "expected the zip format of torch.save"),
        (b"ONNX? no, just text", "not a PyTorch checkpoint"),
    ],
)
def test_legacy_and_unknown_files_get_a_clear_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "weird.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(expected)):
        read_checkpoint(path)


def test_non_state_dict_content_is_refused(tmp_path: Path) -> None:
    path = write_archive(tmp_path / "list.pt", pickle_bytes({"weights": [1, 2]}), {})
    with pytest.raises(InputError, match="expected a state dict"):
        load_state_dict(path)
    mixed = write_archive(
        tmp_path / "call.pt",
        pickle_bytes({"w": Call("torch._utils", "_rebuild_parameter", ("not a tensor",))}),
        {},
    )
    with pytest.raises(InputError, match=r"broken data\.pkl: parameter data is not a tensor"):
        load_state_dict(mixed)
    truncated = write_archive(tmp_path / "cut.pt", pickle_bytes({"a": 1})[:-3], {})
    with pytest.raises(InputError, match=r"broken data\.pkl"):
        load_state_dict(truncated)
    with pytest.raises(InputError, match="checkpoint not found"):
        load_state_dict(tmp_path / "absent.pt")
