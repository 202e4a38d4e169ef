"""A video's frame count from its container's sample table, decoding only where the container
cannot be trusted (simulator/scenario/video.py: container_frame_count)."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.scenario import video
from simulator.scenario.video import container_frame_count, count_frames

ROOT = Path(__file__).resolve().parents[1]
PHONE = ROOT / "tests" / "data" / "real" / "phone-video"
BUNDLED = sorted((ROOT / "scenarios").glob("*/video.mp4"))


def decoded(path: Path) -> int:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


@pytest.mark.parametrize("path", [*BUNDLED, PHONE / "sample_android_slow_motion.mp4"],
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_the_container_count_is_the_decoded_count(path: Path, monkeypatch) -> None:
    """The bundled clips and a variable-frame-rate Android slow-motion clip (7 frames,
    one 325 ms gap): the sample table says what the decoder shows, and nothing is decoded."""
    expected = decoded(path)
    assert container_frame_count(path) == expected
    import simulator.work_cache

    monkeypatch.setattr(video, "_decoded_count", lambda *a: pytest.fail("decoded"))
    monkeypatch.setattr(simulator.work_cache, "shared_cache", lambda *a, **k: pytest.fail("cache"))
    assert count_frames(path) == expected


def test_an_edit_that_hides_a_sample_is_decoded(tmp_path: Path, monkeypatch) -> None:
    """The iPhone HEVC clip holds 5 video samples, but its edit list ends before the last
    one and the decoder shows 4: the container's count is not used."""
    monkeypatch.setenv("ARSIM_CACHE_DIR", str(tmp_path / "cache"))
    clip = PHONE / "dolbyVision-hdr.MOV"
    assert container_frame_count(clip) is None
    assert count_frames(clip) == decoded(clip) == 4


def _patched(source: Path, target: Path, box: bytes, offset: int, value: bytes) -> Path:
    """A copy of ``source`` with ``value`` written ``offset`` bytes into the first ``box``
    payload (after its 8-byte header)."""
    data = bytearray(source.read_bytes())
    at = data.index(box) + 4 + offset
    data[at: at + len(value)] = value
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("change", ["media time", "short edit", "two video tracks"])
def test_what_the_table_cannot_say_is_decoded(change: str, tmp_path: Path) -> None:
    source = BUNDLED[0]
    copy = tmp_path / "clip.mp4"
    if change == "media time":  # the edit starts into the media: earlier samples hidden
        _patched(source, copy, b"elst", 12, struct.pack(">i", 512))
    elif change == "short edit":  # the edit ends at half the track
        data = source.read_bytes()
        segment = struct.unpack(">I", data[data.index(b"elst") + 12:][:4])[0]
        _patched(source, copy, b"elst", 8, struct.pack(">I", segment // 2))
    else:
        _two_video_tracks(source, copy)
    assert container_frame_count(source) is not None
    assert container_frame_count(copy) is None


def _two_video_tracks(source: Path, target: Path) -> None:
    """The clip with its one track box repeated inside moov (sizes fixed up)."""
    data = source.read_bytes()
    moov = data.index(b"moov") - 4
    trak = data.index(b"trak", moov) - 4
    trak_size = struct.unpack(">I", data[trak: trak + 4])[0]
    moov_size = struct.unpack(">I", data[moov: moov + 4])[0]
    assert moov + moov_size == len(data)  # moov last, as the bundled clips are written
    doubled = data[:moov] + struct.pack(">I", moov_size + trak_size) + \
        data[moov + 4: trak + trak_size] + data[trak: trak + trak_size] + data[trak + trak_size:]
    target.write_bytes(doubled)


def test_a_truncated_file_is_decoded(tmp_path: Path) -> None:
    """The sample table is whole but the media data is cut: the count comes from decoding,
    which shows what is left."""
    data = BUNDLED[0].read_bytes()
    moov = data.index(b"moov") - 4
    assert moov > len(data) // 2  # the clips put their media data first
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov lost with the second half
    assert container_frame_count(cut) is None
    # media data cut inside, the table kept: its box runs past the end it now has
    inside = tmp_path / "inside.mp4"
    mdat = data.index(b"mdat") - 4
    inside.write_bytes(data[: mdat + 8 + 1000])
    assert container_frame_count(inside) is None


def test_other_containers_and_garbage_return_none(tmp_path: Path) -> None:
    avi = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    assert container_frame_count(avi) is None
    assert count_frames(avi) == 5
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x10ftypisom" + bytes(range(256)) * 3)
    assert container_frame_count(junk) is None
    missing = tmp_path / "none.mp4"
    assert container_frame_count(missing) is None
