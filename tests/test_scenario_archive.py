"""Safe extraction of .zip scenarios: good layouts accepted, hostile archives refused unwritten."""

from __future__ import annotations

import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from simulator.errors import InputError
from simulator.scenario import archive
from simulator.scenario.archive import safe_extract

SCENARIO_FILES = {"scenario.json": "{}", "frames.csv": "index,timestamp,tracking\n"}


def write_zip(path: Path, members: dict[str, bytes | str], **kwargs) -> Path:
    with zipfile.ZipFile(path, "w", kwargs.pop("compression", zipfile.ZIP_DEFLATED)) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def refused(zip_path: Path, dest: Path, expected: str) -> None:
    with pytest.raises(InputError) as err:
        safe_extract(zip_path, dest)
    assert str(zip_path) in str(err.value)
    assert expected in str(err.value)
    assert not dest.exists(), "nothing may be written for a refused archive"


def test_files_at_the_archive_root(tmp_path) -> None:
    zip_path = write_zip(tmp_path / "s.zip", SCENARIO_FILES)
    root = safe_extract(zip_path, tmp_path / "out")
    assert root == tmp_path / "out"
    assert (root / "frames.csv").read_text() == "index,timestamp,tracking\n"


def test_files_in_a_single_top_level_folder(tmp_path) -> None:
    members = {f"walk/{name}": data for name, data in SCENARIO_FILES.items()}
    members["walk/frames/000000.png"] = b"png"
    members["__MACOSX/walk/._scenario.json"] = b"finder junk"
    root = safe_extract(write_zip(tmp_path / "s.zip", members), tmp_path / "out")
    assert root == tmp_path / "out" / "walk"
    assert (root / "scenario.json").read_text() == "{}"
    assert (root / "frames" / "000000.png").read_bytes() == b"png"
    assert not (tmp_path / "out" / "__MACOSX").exists()


def test_two_top_level_folders_without_scenario_json_at_root(tmp_path) -> None:
    zip_path = write_zip(tmp_path / "s.zip", {"a/scenario.json": "{}", "b/poses.txt": "x"})
    refused(zip_path, tmp_path / "out", "no scenario.json at the archive root")


def test_parent_directory_member_is_refused(tmp_path) -> None:
    zip_path = write_zip(tmp_path / "s.zip", {**SCENARIO_FILES, "../evil": "pwned"})
    refused(zip_path, tmp_path / "out", "'..' in the path")
    assert not (tmp_path / "evil").exists()


def test_backslash_parent_directory_member_is_refused(tmp_path) -> None:
    zip_path = write_zip(tmp_path / "s.zip", {**SCENARIO_FILES, "sub\\..\\..\\evil": "x"})
    refused(zip_path, tmp_path / "out", "'..' in the path")


def test_absolute_member_is_refused(tmp_path) -> None:
    zip_path = write_zip(tmp_path / "s.zip", {**SCENARIO_FILES, "/tmp/evil": "pwned"})
    refused(zip_path, tmp_path / "out", "absolute path")


def test_symlink_member_is_refused(tmp_path) -> None:
    zip_path = tmp_path / "s.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name, data in SCENARIO_FILES.items():
            zf.writestr(name, data)
        link = zipfile.ZipInfo("poses.txt")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    refused(zip_path, tmp_path / "out", "symbolic link")


def test_compression_bomb_is_refused(tmp_path) -> None:
    zip_path = write_zip(tmp_path / "s.zip", {**SCENARIO_FILES, "video.mp4": b"\0" * 2_000_000})
    refused(zip_path, tmp_path / "out", "exceeds 200:1")


def test_not_a_zip_is_refused(tmp_path) -> None:
    fake = tmp_path / "s.zip"
    fake.write_bytes(b"this is not a zip archive at all")
    refused(fake, tmp_path / "out", "not a readable zip archive")


def test_too_many_members_is_refused(tmp_path) -> None:
    members = {f"walk/f{i}.txt": "" for i in range(archive.MAX_MEMBERS + 1)}
    zip_path = write_zip(tmp_path / "s.zip", members, compression=zipfile.ZIP_STORED)
    refused(zip_path, tmp_path / "out", f"at most {archive.MAX_MEMBERS}")


def test_too_many_bytes_in_all_is_refused(tmp_path, monkeypatch) -> None:
    # 2 GiB of real data would be slow to build; the limit is the same code with a smaller
    # number (the per-member ratio stays under 200:1 with stored members).
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1000)
    members = {**SCENARIO_FILES, "a.bin": b"x" * 600, "b.bin": b"y" * 600}
    zip_path = write_zip(tmp_path / "s.zip", members, compression=zipfile.ZIP_STORED)
    refused(zip_path, tmp_path / "out", "uncompressed")


def test_duplicate_member_is_refused(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate
        zip_path = write_zip(tmp_path / "s.zip", {**SCENARIO_FILES})
        with zipfile.ZipFile(zip_path, "a") as zf:
            zf.writestr("scenario.json", "{}")
    refused(zip_path, tmp_path / "out", "duplicate member name")


def test_member_with_a_lying_size_is_refused(tmp_path) -> None:
    """Header says 4 bytes, the data holds 4096: extraction must not trust the header."""
    zip_path = write_zip(
        tmp_path / "s.zip", {**SCENARIO_FILES, "video.mp4": b"v" * 4096},
        compression=zipfile.ZIP_STORED,
    )
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo("video.mp4")
    local = info.header_offset
    struct.pack_into("<I", data, local + 22, 4)  # local header: uncompressed size
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + 9] != b"video.mp4":
        central = data.index(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, 4)  # central directory: uncompressed size
    zip_path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"member 'video\.mp4'") as err:
        safe_extract(zip_path, tmp_path / "out")
    assert "cannot be extracted" in str(err.value) or "more data" in str(err.value)
    written = tmp_path / "out" / "video.mp4"
    assert not written.exists() or written.stat().st_size <= 4
