"""Sessions recorded on the phone with the project's own apps (mobile/CONTRACT.md §6,
"Recording a session on the device"), so that one recording replays on both sides.

Android: an ARCore recording (Recording & Playback API), one ``.mp4`` holding ARCore's H.264
camera track(s), its own data tracks (``application/arcore-*``) and the app's pose track: a
timed-metadata track ('meta' handler, 'mett' sample entry) whose MIME type is
``application/x-arsim-pose``, one 96-byte little-endian record per camera frame
(``Frame.recordTrackData``): magic, version, tracking state, ``Frame.getTimestamp()`` ns,
``Camera.getPose()`` (tx ty tz qx qy qz qw) and ``Camera.getImageIntrinsics()``.

iOS: a folder with ``arsim-recording.json`` (header), ``video.mp4`` (ARFrame.capturedImage
as captured, AVAssetWriter) and ``frames.jsonl`` (one line per frame in the video: ARFrame
timestamp, camera.transform as position + quaternion, intrinsics, tracking state).

Source conventions: both poses are camera-to-world, world y up (gravity), metres; the
camera's x is right and y up *of the image as stored* (landscape sensor readout), looking
down −z — the scenario's convention, so no axis change. The MP4's rotation metadata (set by
the app for a phone held upright) turns the decoded image; poses and intrinsics are turned
with it (``convert.rotate_camera_cw``). Clocks: the camera clock (Android
``Frame.getTimestamp``, iOS ``ARFrame.timestamp``, both boot-time based).

What the importer does with an ARCore file: the camera track whose size is the intrinsics'
image size (else the largest) gives the frames and their times (MP4 presentation times);
pose samples are matched to frames by presentation time, and frame times are moved onto the
camera clock by the median (pose timestamp − frame time). An ARCore recording without the
pose track imports as video only (poses unavailable, intrinsics assumed, said in the notes).
The MP4 boxes are read here (ffmpeg/PyAV do not expose a 'mett' track's MIME type); the
packets through PyAV.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.safe_files import JSON_CAP, MB, check_user_file, open_user_file, read_user_text
from simulator.scenario.importers import convert
from simulator.scenario.importers.base import (
    DecodedFrames,
    ImportOptions,
    PoseTrack,
    Progress,
    Recording,
    VideoFrames,
)
from simulator.types import Intrinsics

POSE_MIME = "application/x-arsim-pose"
POSE_TRACK_UUID = "cd354e51-2cf6-4072-ae06-5210330d5f0a"
POSE_MAGIC = b"ARSP"
POSE_VERSION = 1
# magic, version, tracking, reserved, timestamp ns, tx ty tz qx qy qz qw, fx fy cx cy, w h
POSE_RECORD = struct.Struct("<4sBBHq7d4f2i")
# ARCore TrackingState ordinals (TRACKING, PAUSED, STOPPED) as the app writes them
_ARCORE_TRACKING = {0: "tracking", 1: "lost", 2: "lost"}
_ARKIT_TRACKING = {"normal": "tracking", "limited": "limited", "notAvailable": "lost"}
IOS_HEADER = "arsim-recording.json"
IOS_FORMAT = "arsim-ios-recording/1"
NO_POSE_NOTE = "no arsim pose track: imported as video only; tracking unavailable"
# Without the pose track nothing in the file gives the intrinsics we can read (ARCore's
# own calibration is in undocumented protobuf samples): a typical phone main camera.
_ASSUMED_FOV_DEG = 65.0
_MOOV_CAP = 64 * MB
_SNIFF_CAP = 16 * MB


@dataclass(frozen=True)
class Mp4Track:
    """One ``trak`` of an MP4: what PyAV does not tell (sample entry, MIME type, rotation)."""

    track_id: int
    handler: str  # 'vide', 'soun', 'meta', ...
    entry: str  # sample entry type: 'avc1', 'hvc1', 'mett', 'gpmd', ...
    mime: str  # a 'mett' entry's mime_format ('' otherwise)
    name: str  # the hdlr name
    rotation_cw: int  # display rotation from the tkhd matrix, degrees clockwise


class ArsimAppImporter:
    name = "arsim-app"
    description = ("the arsim bench apps' own recordings: an ARCore .mp4 with the "
                   "application/x-arsim-pose track (Android), or a folder with "
                   f"{IOS_HEADER}, video.mp4 and frames.jsonl (iOS)")

    def why_not(self, src: Path) -> str | None:
        src = Path(src)
        if src.is_dir():
            if (src / IOS_HEADER).is_file():
                return None
            return f"no {IOS_HEADER} in the folder (iOS app recording)"
        if not src.is_file():
            return "not a file or folder"
        if src.suffix.lower() != ".mp4":
            return "not an .mp4 (ARCore recording) nor a folder with " + IOS_HEADER
        try:
            moov = _read_moov(src, src, cap=_SNIFF_CAP)
        except InputError:
            return "not a readable MP4"
        if POSE_MIME.encode() in moov or b"application/arcore-" in moov:
            return None
        return "an MP4 without ARCore data tracks (not an ARCore recording)"

    def read(self, src: Path, options: ImportOptions, progress: Progress | None) -> Recording:
        src = Path(src)
        if src.is_dir():
            return _read_ios(src, progress)
        return _read_arcore(src, src.parent, progress)


IMPORTER = ArsimAppImporter()


# --- MP4 boxes ----------------------------------------------------------------------------


def _boxes(data: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """(type, body) of each box in ``data``."""
    off = 0
    while off + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, off)
        head = 8
        if size == 1:
            if off + 16 > len(data):
                raise InputError(where, "truncated MP4 box header")
            size = struct.unpack_from(">Q", data, off + 8)[0]
            head = 16
        elif size == 0:
            size = len(data) - off
        if size < head or off + size > len(data):
            raise InputError(where, f"MP4 box {kind!r} has a bad size {size}")
        yield kind, data[off + head: off + size]
        off += size


def _read_moov(path: Path, root: Path, cap: int = _MOOV_CAP) -> bytes:
    """The ``moov`` box's body: top-level box headers are skipped over, not read."""
    info = check_user_file(path, str(path), root=root)
    with open_user_file(path, str(path), root=root) as handle:
        off = 0
        while off + 8 <= info.st_size:
            handle.seek(off)
            header = handle.read(16)
            if len(header) < 8:
                break
            size, kind = struct.unpack_from(">I4s", header)
            head = 8
            if size == 1 and len(header) == 16:
                size, head = struct.unpack_from(">Q", header, 8)[0], 16
            elif size == 0:
                size = info.st_size - off
            if size < head:
                raise InputError(path, f"not an MP4: box {kind!r} at byte {off} has size {size}")
            if kind == b"moov":
                if size - head > cap:
                    raise InputError(path, f"moov box of {size // MB} MB; expected at most "
                                     f"{cap // MB} MB")
                handle.seek(off + head)
                body = handle.read(size - head)
                if len(body) != size - head:
                    raise InputError(path, "truncated moov box (recording not finished?)")
                return body
            off += size
    raise InputError(path, "no moov box: not an MP4, or a recording that was not stopped "
                     "(ARCore writes the index when recording stops)")


def mp4_tracks(path: Path, root: Path) -> list[Mp4Track]:
    """Every track of the MP4 at ``path`` with its handler, sample entry, MIME, rotation."""
    where = str(path)
    tracks = []
    for kind, trak in _boxes(_read_moov(path, root), where):
        if kind != b"trak":
            continue
        track_id, rotation, handler, name, entry, mime = 0, 0, "", "", "", ""
        for k, body in _boxes(trak, where):
            if k == b"tkhd" and len(body) >= 84:
                v1 = body[0] == 1
                track_id = struct.unpack_from(">I", body, 20 if v1 else 12)[0]
                a, b = struct.unpack_from(">ii", body, 52 if v1 else 40)
                rotation = round(math.degrees(math.atan2(b, a))) % 360
            elif k == b"mdia":
                handler, name, entry, mime = _media(body, where)
        tracks.append(Mp4Track(track_id, handler, entry, mime, name, rotation))
    return tracks


def _media(mdia: bytes, where: str) -> tuple[str, str, str, str]:
    handler = name = entry = mime = ""
    for k, body in _boxes(mdia, where):
        if k == b"hdlr" and len(body) >= 24:
            handler = body[8:12].decode("latin-1")
            name = body[24:].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif k == b"minf":
            for k2, minf in _boxes(body, where):
                if k2 != b"stbl":
                    continue
                for k3, stbl in _boxes(minf, where):
                    if k3 == b"stsd" and len(stbl) >= 16:
                        for k4, sample_entry in _boxes(stbl[8:], where):
                            entry = k4.decode("latin-1")
                            if k4 == b"mett":  # TextMetaDataSampleEntry, ISO 14496-12 12.3.3
                                strings = sample_entry[8:].split(b"\0")
                                if len(strings) >= 2:
                                    mime = strings[1].decode("utf-8", "replace")
                            break
    return handler, name, entry, mime


# --- Android: an ARCore recording -----------------------------------------------------------


def _ns(pts: int, time_base: Fraction) -> int:
    return round(Fraction(pts) * time_base * convert.NS_PER_S)


def _read_arcore(path: Path, root: Path, progress: Progress | None) -> Recording:
    import av

    str(path)
    tracks = {t.track_id: t for t in mp4_tracks(path, root)}
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise InputError(path, f"not an MP4 PyAV can read: {exc}") from None
    with container:
        videos = [s for s in container.streams.video if s.codec_context.width > 0]
        if not videos:
            raise InputError(path, "no video track (expected ARCore's camera image track)")
        pose_streams = [
            s for s in container.streams
            if s.type == "data" and s.id in tracks
            and POSE_MIME in (tracks[s.id].mime, tracks[s.id].name)
        ]
        if len(pose_streams) > 1:
            raise InputError(path, f"{len(pose_streams)} tracks of type {POSE_MIME}; "
                             "expected one")
        pose_stream = pose_streams[0] if pose_streams else None
        packets: dict[int, list[tuple[int, bytes]]] = {s.index: [] for s in videos}
        if pose_stream is not None:
            packets[pose_stream.index] = []
        total = sum(max(0, s.frames) for s in videos)
        try:
            for n, packet in enumerate(container.demux([*videos, *(
                    [pose_stream] if pose_stream is not None else [])])):
                if packet.pts is None or packet.size == 0:
                    continue  # the demuxer's end-of-stream flush packets
                tb = packet.time_base or packet.stream.time_base
                packets[packet.stream.index].append((_ns(packet.pts, tb), bytes(packet)))
                if progress and total and n % 256 == 0:
                    progress(min(n, total), total)
        except av.FFmpegError as exc:
            raise InputError(path, f"cannot read the MP4's packets: {exc}") from None
        records = _pose_records(path, packets[pose_stream.index]) if pose_stream else None
        video = _choose_video(videos, records)
        frame_pts = np.array(sorted(t for t, _ in packets[video.index]), dtype=np.int64)
        if len(frame_pts) == 0:
            raise InputError(path, "the camera track holds no frames")
        if np.any(np.diff(frame_pts) <= 0):
            raise InputError(path, "two camera frames share a presentation time")
        stored_w, stored_h = video.codec_context.width, video.codec_context.height
        rotation = tracks[video.id].rotation_cw if video.id in tracks else 0
        if rotation % 90:
            raise InputError(path, f"video rotation of {rotation} degrees; expected a "
                             "multiple of 90")
        first_video = min(s.index for s in container.streams.video)
        frames = VideoFrames(path) if video.index == first_video else _decoded(
            path, video.index, len(frame_pts), rotation)
        meta = dict(container.metadata)
    device = " ".join(v for v in (meta.get("com.android.manufacturer", ""),
                                  meta.get("com.android.model", "")) if v)
    notes = []
    if len(videos) > 1:
        sizes = ", ".join(f"{s.codec_context.width}x{s.codec_context.height}" for s in videos)
        notes.append(f"camera track {stored_w}x{stored_h} chosen of the video tracks {sizes}")
    if video.index != first_video:
        notes.append("frames decoded from a video track other than the first (re-encoded)")
    if records is None:
        return _video_only(path, frames, frame_pts, stored_w, stored_h, rotation, device,
                           [*notes, NO_POSE_NOTE])
    return _arcore_with_poses(path, frames, frame_pts, records, stored_w, stored_h, rotation,
                              device, notes)


def _decoded(path: Path, stream_index: int, count: int, rotation: int) -> DecodedFrames:
    """Frames of one video track decoded with PyAV, turned by the rotation metadata."""

    def frames() -> Iterator[np.ndarray]:
        import av

        with av.open(str(path)) as container:
            stream = container.streams[stream_index]
            for frame in container.decode(stream):
                yield np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"),
                                                    k=-(rotation // 90)))

    return DecodedFrames(count=count, open=frames, lossy=True)


@dataclass(frozen=True)
class _PoseRecords:
    pts_ns: np.ndarray  # (M,) MP4 presentation times of the samples
    ns: np.ndarray  # (M,) camera clock (Frame.getTimestamp)
    positions: np.ndarray  # (M, 3)
    quaternions: np.ndarray  # (M, 4) x y z w
    intrinsics: np.ndarray  # (M, 4) fx fy cx cy of the CPU image
    sizes: np.ndarray  # (M, 2) image width, height
    tracking: list[str]


def _pose_records(path: Path, samples: list[tuple[int, bytes]]) -> _PoseRecords:
    """Decode the pose track's samples (mobile/CONTRACT.md §6); InputError naming the
    sample for anything that is not a version-1 record."""
    samples = sorted(samples, key=lambda s: s[0])
    if not samples:
        raise InputError(path, f"the {POSE_MIME} track holds no samples")
    rows = []
    for k, (_, data) in enumerate(samples):
        where = f"{path}: {POSE_MIME} sample {k}"
        if len(data) < 5 or data[:4] != POSE_MAGIC:
            raise InputError(where, f"expected a record starting with {POSE_MAGIC!r}, got "
                             f"{data[:8]!r}")
        if data[4] != POSE_VERSION:
            raise InputError(where, f"record version {data[4]}; this importer reads "
                             f"version {POSE_VERSION}")
        if len(data) != POSE_RECORD.size:
            raise InputError(where, f"record of {len(data)} bytes; expected "
                             f"{POSE_RECORD.size}")
        _, _, state, _, ts, *values = POSE_RECORD.unpack(data)
        pose, k4, size = values[:7], values[7:11], values[11:13]
        if state not in _ARCORE_TRACKING:
            raise InputError(where, f"tracking state {state}; expected 0 (TRACKING), "
                             "1 (PAUSED) or 2 (STOPPED)")
        if not all(math.isfinite(v) for v in (*pose, *k4)):
            raise InputError(where, "pose or intrinsics hold a non-finite value")
        if abs(math.sqrt(sum(q * q for q in pose[3:])) - 1.0) > 1e-3:
            raise InputError(where, "quaternion qx qy qz qw is not of unit length")
        if min(k4[0], k4[1], size[0], size[1]) <= 0:
            raise InputError(where, "intrinsics need positive focal lengths and image size")
        rows.append((ts, pose, k4, size, _ARCORE_TRACKING[state]))
    ns = np.array([r[0] for r in rows], dtype=np.int64)
    if np.any(np.diff(ns) <= 0):
        k = int(np.argmax(np.diff(ns) <= 0)) + 1
        raise InputError(f"{path}: {POSE_MIME} sample {k}",
                         "timestamp_ns does not increase (one record per new camera frame)")
    poses = np.array([r[1] for r in rows], dtype=np.float64)
    quats = poses[:, 3:] / np.linalg.norm(poses[:, 3:], axis=1, keepdims=True)
    return _PoseRecords(
        pts_ns=np.array([s[0] for s in samples], dtype=np.int64),
        ns=ns,
        positions=poses[:, :3],
        quaternions=quats,
        intrinsics=np.array([r[2] for r in rows], dtype=np.float64),
        sizes=np.array([r[3] for r in rows], dtype=np.int64),
        tracking=[r[4] for r in rows],
    )


def _choose_video(videos: list, records: _PoseRecords | None):
    """The camera track: the one of the intrinsics' image size, else the largest (ARCore
    puts its highest-resolution track first; a depth visualisation track is smaller)."""
    if records is not None:
        w, h = (int(v) for v in records.sizes[0])
        for s in videos:
            if (s.codec_context.width, s.codec_context.height) == (w, h):
                return s
    return max(videos, key=lambda s: (s.codec_context.width * s.codec_context.height,
                                      -s.index))


def _arcore_with_poses(
    path: Path,
    frames: VideoFrames | DecodedFrames,
    frame_pts: np.ndarray,
    rec: _PoseRecords,
    stored_w: int,
    stored_h: int,
    rotation: int,
    device: str,
    notes: list[str],
) -> Recording:
    interval = int(np.median(np.diff(frame_pts))) if len(frame_pts) > 1 else 33_333_333
    pairs = convert.associate(frame_pts, rec.pts_ns, max(1, interval // 2))
    if not pairs:
        raise InputError(path, f"no {POSE_MIME} sample lies within half a frame of a camera "
                         "frame's time")
    fi = np.array([i for i, _ in pairs])
    pj = np.array([j for _, j in pairs])
    offsets = rec.ns[pj] - frame_pts[fi]
    offset = int(np.median(offsets))
    spread = int(np.max(np.abs(offsets - offset)))
    if spread > 1_000_000:
        notes.append(f"pose timestamps differ from their frames' times by up to "
                     f"{spread / 1e6:.1f} ms")
    frame_ns = frame_pts + offset
    # intrinsics and tracking per frame: of its own pose sample, else of the nearest one
    nearest = np.clip(np.searchsorted(rec.ns, frame_ns), 0, len(rec.ns) - 1)
    before = np.clip(nearest - 1, 0, len(rec.ns) - 1)
    nearest = np.where(np.abs(rec.ns[before] - frame_ns) < np.abs(rec.ns[nearest] - frame_ns),
                       before, nearest)
    nearest[fi] = pj
    missing = len(frame_pts) - len(pairs)
    if missing:
        notes.append(f"{missing} frames without a pose sample (ARCore skips recordTrackData "
                     "under load): pose interpolated, tracking of the nearest sample")
    size_w, size_h = (int(v) for v in rec.sizes[0])
    k = rec.intrinsics[nearest]
    if (size_w, size_h) != (stored_w, stored_h):
        sx, sy = stored_w / size_w, stored_h / size_h
        if abs(sx - sy) > 1e-3:
            raise InputError(path, f"the pose track's intrinsics are for {size_w}x{size_h} "
                             f"images but no camera track has that size or aspect (largest "
                             f"{stored_w}x{stored_h})")
        k = k * np.array([sx, sy, sx, sy])
        notes.append(f"intrinsics scaled from {size_w}x{size_h} to the {stored_w}x{stored_h} "
                     "track")
    rot = convert.quat_to_matrix(rec.quaternions)
    width, height, k, rot = convert.rotate_camera_cw(rotation, stored_w, stored_h, k, rot)
    if rotation:
        notes.append(f"video rotation metadata {rotation} deg clockwise: poses turned about "
                     "the camera z and intrinsics with the image")
    notes.append("no lens distortion (ARCore's image intrinsics give none)")
    varying = bool(np.any(np.abs(k - k[0]) > 1e-6))
    fx, fy, cx, cy = (float(v) for v in k[0])
    return Recording(
        format=IMPORTER.name,
        camera=Intrinsics(width, height, fx, fy, cx, cy),
        frames=frames,
        frame_ns=frame_ns,
        poses=PoseTrack(rec.ns, rec.positions, convert.matrix_to_quat(rot)),
        tracking=[rec.tracking[int(j)] for j in nearest],
        intrinsics=k if varying else None,
        metric=True,
        device=device,
        app="arsim bench (Android, ARCore recording)",
        axes=("none: ARCore Camera.getPose() is camera-to-world, world y up, camera x right / "
              "y up of the stored image, looking down -z"),
        clock=("ARCore camera clock (Frame.getTimestamp, ns); MP4 times shifted by "
               f"{offset / 1e9:.9f} s"),
        notes=notes,
    )


def _video_only(
    path: Path,
    frames: VideoFrames | DecodedFrames,
    frame_pts: np.ndarray,
    stored_w: int,
    stored_h: int,
    rotation: int,
    device: str,
    notes: list[str],
) -> Recording:
    focal = max(stored_w, stored_h) / (2 * math.tan(math.radians(_ASSUMED_FOV_DEG) / 2))
    k = np.array([[focal, focal, stored_w / 2, stored_h / 2]])
    width, height, k, _ = convert.rotate_camera_cw(rotation, stored_w, stored_h, k)
    notes.append(f"intrinsics unknown: assumed a {_ASSUMED_FOV_DEG:g} deg field of view "
                 "across the long side, centred")
    fx, fy, cx, cy = (float(v) for v in k[0])
    return Recording(
        format=IMPORTER.name,
        camera=Intrinsics(width, height, fx, fy, cx, cy),
        frames=frames,
        frame_ns=frame_pts,
        poses=None,
        device=device,
        app="ARCore recording",
        clock="MP4 presentation time of the camera track",
        notes=notes,
    )


# --- iOS: the app's recording folder --------------------------------------------------------


def _read_ios(folder: Path, progress: Progress | None) -> Recording:
    header_path = folder / IOS_HEADER
    header = _json_object(read_user_text(header_path, str(header_path), cap=JSON_CAP,
                                         root=folder), str(header_path))
    where = str(header_path)
    if header.get("format") != IOS_FORMAT:
        raise InputError(f"{where}: format", f"expected {IOS_FORMAT!r}, got "
                         f"{header.get('format')!r}")
    names = {}
    for key in ("video", "frames"):
        value = header.get(key)
        if not isinstance(value, str) or "/" in value or value.startswith("."):
            raise InputError(f"{where}: {key}", "expected a file name in the folder")
        names[key] = folder / value
    try:
        stored_w, stored_h = int(header["width"]), int(header["height"])
    except (KeyError, TypeError, ValueError):
        raise InputError(where, "width and height (captured image size) must be integers"
                         ) from None
    video = names["video"]
    check_user_file(video, str(video), root=folder)
    tracks = [t for t in mp4_tracks(video, folder) if t.handler == "vide"]
    if not tracks:
        raise InputError(video, "no video track")
    rotation = tracks[0].rotation_cw
    if rotation % 90:
        raise InputError(video, f"video rotation of {rotation} degrees; expected a multiple "
                         "of 90")
    rows = _ios_frames(names["frames"], folder)
    ns = np.array([r[0] for r in rows], dtype=np.int64)
    if np.any(np.diff(ns) <= 0):
        k = int(np.argmax(np.diff(ns) <= 0)) + 2
        raise InputError(f"{names['frames']}:{k}", "t must increase from line to line")
    positions = np.array([r[1] for r in rows], dtype=np.float64)
    quats = np.array([r[2] for r in rows], dtype=np.float64)
    k = np.array([r[3] for r in rows], dtype=np.float64)
    rot = convert.quat_to_matrix(quats)
    width, height, k, rot = convert.rotate_camera_cw(rotation, stored_w, stored_h, k, rot)
    notes = ["no lens distortion (ARKit's intrinsics give none)"]
    if rotation:
        notes.append(f"video rotation metadata {rotation} deg clockwise: poses turned about "
                     "the camera z and intrinsics with the image")
    varying = bool(np.any(np.abs(k - k[0]) > 1e-6))
    fx, fy, cx, cy = (float(v) for v in k[0])
    if progress:
        progress(len(rows), len(rows))
    return Recording(
        format=IMPORTER.name,
        camera=Intrinsics(width, height, fx, fy, cx, cy),
        frames=VideoFrames(video),
        frame_ns=ns,
        poses=PoseTrack(ns, positions, convert.matrix_to_quat(rot)),
        tracking=[r[4] for r in rows],
        intrinsics=k if varying else None,
        metric=True,
        device=str(header.get("device", "")),
        app=str(header.get("app", "arsim bench (iOS)")),
        recorded=str(header.get("recorded", "")),
        axes=("none: ARKit camera.transform is camera-to-world, world y up, camera x right / "
              "y up of the captured image, looking down -z"),
        clock="ARFrame.timestamp (seconds since boot, system uptime)",
        notes=notes,
    )


def _json_object(text: str, where: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(where, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise InputError(where, "expected a JSON object")
    return value


def _ios_frames(path: Path, root: Path) -> list[tuple]:
    """(ns, position, quaternion, fx fy cx cy, tracking) per line of frames.jsonl; numbers
    are kept as text until converted, so timestamps stay exact."""
    text = read_user_text(path, str(path), root=root)
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            obj = json.loads(line, parse_float=str, parse_int=str)
        except json.JSONDecodeError as exc:
            raise InputError(where, f"not a JSON object ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(where, "expected a JSON object per line")
        if not isinstance(obj.get("t"), str):
            raise InputError(where, "t (ARFrame.timestamp, seconds) must be a number")
        ns = convert.seconds_text_to_ns(obj["t"], where, "t")
        p = _numbers(obj, "p", 3, where)
        q = _numbers(obj, "q", 4, where)
        k = _numbers(obj, "k", 4, where)
        if abs(math.sqrt(sum(v * v for v in q)) - 1.0) > 1e-3:
            raise InputError(where, "q (x y z w) is not a unit quaternion")
        if k[0] <= 0 or k[1] <= 0:
            raise InputError(where, "k needs positive focal lengths fx fy")
        state = obj.get("tracking")
        if state not in _ARKIT_TRACKING:
            raise InputError(where, "tracking must be normal, limited or notAvailable, got "
                             f"{state!r}")
        rows.append((ns, p, q, k, _ARKIT_TRACKING[state]))
    if len(rows) < 2:
        raise InputError(path, "fewer than two frames")
    return rows


def _numbers(obj: dict, key: str, n: int, where: str) -> list[float]:
    value = obj.get(key)
    if not isinstance(value, list) or len(value) != n or not all(
            isinstance(v, str) for v in value):
        raise InputError(where, f"{key} must be a list of {n} numbers")
    return [convert.number(v, where, key) for v in value]
