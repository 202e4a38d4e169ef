"""MP4 files as phone apps write them, for tests and the bench: H.264 video tracks (PyAV),
data tracks with Android MediaMuxer's 'mett' sample entry (TextMetaDataSampleEntry, ISO/IEC
14496-12 §12.3.3.2) holding their MIME type, and a display rotation in the first video
track's tkhd matrix (what a phone held upright writes). ffmpeg's muxer can write neither the
'mett' MIME nor (through PyAV) the matrix, so the moov box is rewritten after muxing.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

US = Fraction(1, 1_000_000)  # MediaMuxer takes presentation times in microseconds


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _children(data: bytes):
    off = 0
    while off + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, off)
        yield kind, data[off + 8: off + size]
        off += size


def _matrix(rotation_cw: int, w: int, h: int) -> bytes:
    angle = math.radians(rotation_cw)
    cos, sin = round(math.cos(angle)), round(math.sin(angle))
    tx, ty = {0: (0, 0), 90: (h, 0), 180: (w, h), 270: (0, w)}[rotation_cw]
    one = 1 << 16
    return struct.pack(">9i", cos * one, sin * one, 0, -sin * one, cos * one, 0,
                       tx * one, ty * one, 1 << 30)


def _rewrite(data: bytes, mimes: dict[int, str], rotations: dict[int, tuple]) -> bytes:
    """Data tracks get a 'mett' entry with their MIME (and Android's handler name); video
    tracks the tkhd rotation. Only the moov (after mdat) changes size."""
    out = b""
    for kind, body in _children(data):
        if kind != b"moov":
            out += _box(kind, body)
            continue
        assert b"mdat" in out, "moov must follow mdat (its offsets would shift otherwise)"
        traks = []
        for k, trak in _children(body):
            if k != b"trak":
                traks.append(_box(k, trak))
                continue
            tkhd = dict(_children(trak))[b"tkhd"]
            track_id = struct.unpack_from(">I", tkhd, 12)[0]
            traks.append(_box(b"trak", _rewrite_trak(trak, mimes.get(track_id),
                                                     rotations.get(track_id))))
        out += _box(b"moov", b"".join(traks))
    return out


def _rewrite_trak(trak: bytes, mime: str | None, rotation: tuple | None) -> bytes:
    def walk(kind, body):
        if kind == b"tkhd" and rotation is not None:
            return _box(kind, body[:40] + _matrix(*rotation) + body[76:])
        if kind == b"hdlr" and mime is not None:
            return _box(kind, body[:24] + b"MetaHandle\0")
        if kind == b"stsd" and mime is not None:
            entry = b"\0" * 6 + struct.pack(">H", 1) + b"\0" + mime.encode() + b"\0"
            return _box(kind, body[:4] + struct.pack(">I", 1) + _box(b"mett", entry))
        if kind in (b"mdia", b"minf", b"stbl"):
            return _box(kind, b"".join(walk(k, b) for k, b in _children(body)))
        return _box(kind, body)

    return b"".join(walk(k, b) for k, b in _children(trak))


def write_arcore_mp4(
    path: Path,
    videos: list[tuple[list[np.ndarray], list[int]]],
    data_tracks: list[tuple[str, list[tuple[int, bytes]]]],
    rotation_cw: int = 0,
    mett: bool = True,
) -> Path:
    """``videos``: (RGB frames, pts in µs) per video track, in file order; ``data_tracks``:
    (MIME, [(pts µs, payload)]). The first video track gets ``rotation_cw``."""
    raw = path.with_suffix(".raw.mp4")
    with av.open(str(raw), "w", format="mp4") as out:
        vstreams = []
        for frames, _ in videos:
            s = out.add_stream("libx264", rate=30)
            s.width, s.height = frames[0].shape[1], frames[0].shape[0]
            s.pix_fmt = "yuv420p"
            s.codec_context.time_base = US
            s.options = {"crf": "12", "bf": "0"}
            vstreams.append(s)
        dstreams = []
        for mime, _ in data_tracks:
            d = out.add_data_stream("bin_data")
            d.metadata["handler_name"] = mime  # what ffmpeg's muxer can carry
            dstreams.append(d)
        for s, (frames, pts) in zip(vstreams, videos, strict=True):
            for image, t in zip(frames, pts, strict=True):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = t, US
                for packet in s.encode(frame):
                    out.mux(packet)
            for packet in s.encode():
                out.mux(packet)
        for d, (_, samples) in zip(dstreams, data_tracks, strict=True):
            for t, payload in samples:
                packet = av.Packet(payload)
                packet.stream, packet.pts, packet.dts, packet.time_base = d, t, t, US
                out.mux(packet)
    data = raw.read_bytes()
    raw.unlink()
    n_video = len(videos)
    mimes = {n_video + 1 + i: mime for i, (mime, _) in enumerate(data_tracks)} if mett else {}
    h, w = videos[0][0][0].shape[:2]
    rotations = {1: (rotation_cw, w, h)} if rotation_cw else {}
    path.write_bytes(_rewrite(data, mimes, rotations))
    return path
