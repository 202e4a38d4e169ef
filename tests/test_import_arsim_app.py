"""The arsim-app importer: the bench apps' own recordings (mobile/CONTRACT.md §6).

Fixtures are built here from that contract. ARCore-like MP4s: PyAV muxes H.264 video
tracks and ``bin_data`` data tracks (ffmpeg's mp4 muxer writes those as a 'meta' handler
track with a 'gpmd' sample entry); the moov box is then rewritten so each data track has
the 'mett' TextMetaDataSampleEntry with its MIME type (ISO/IEC 14496-12 §12.3.3.2), which is
how Android's MediaMuxer signals a metadata track's MIME type and how ARCore's own tracks
appear (ExifTool reads ``application/arcore-accel`` etc. from them), and the video track's
tkhd matrix gets the rotation. The pose records follow the contract's 96-byte layout.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from mp4_fixtures import write_arcore_mp4

from simulator.errors import InputError
from simulator.scenario.importers import arsim_app, detect, import_recording, read_recording
from simulator.scenario.importers.arsim_app import (
    NO_POSE_NOTE,
    POSE_MIME,
    POSE_RECORD,
    mp4_tracks,
)
from simulator.scenario.load import load_scenario, validate_scenario
from simulator.scenario.synth import synthesize
from simulator.scenario.video import iter_frames
from simulator.types import Pose

BOOT_NS = 123_456_789_012_345  # a Frame.getTimestamp() clock far from 0


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny rendered scene (64x48, 15 fps, 1 s) and its poses at the frame times."""
    out = synthesize(tmp_path_factory.mktemp("syn") / "orbit", "orbit", width=64, height=48,
                     fps=15.0, duration_s=1.0, supersample=1.0)
    sc = load_scenario(out)
    images = list(iter_frames(sc.root / sc.video))
    positions, quats = sc.trajectory.at_many(sc.frame_times)
    return sc, images, positions, quats


def pose_record(ts_ns, p, q, k, size, state=0, magic=b"ARSP", version=1) -> bytes:
    return POSE_RECORD.pack(magic, version, state, 0, ts_ns, *p, *q, *k, *size)


def arcore_recording(path, source, *, rotation_cw=0, drop=(), mutate=None, with_poses=True,
                     depth_first=False):
    """The synthetic scene as the Android app would record it."""
    sc, images, positions, quats = source
    t = sc.frame_times - sc.frame_times[0]
    pts = [round(v * 1e6) for v in t]
    k = (sc.camera.fx, sc.camera.fy, sc.camera.cx, sc.camera.cy)
    samples = []
    for i in range(len(pts)):
        if i in drop:
            continue
        payload = pose_record(BOOT_NS + round(t[i] * 1e9), positions[i], quats[i], k,
                              (sc.camera.width, sc.camera.height))
        samples.append((pts[i], mutate(i, payload) if mutate else payload))
    accel = [(p, b"\x0a\x22\x10\x01" + bytes(30)) for p in pts]  # ARCore's own: opaque here
    tracks = [("application/arcore-accel", accel)]
    if with_poses:
        tracks.append((POSE_MIME, samples))
    depth = ([im[::2, ::2] for im in images], pts)  # a smaller "depth visualisation" track
    videos = [depth, (images, pts)] if depth_first else [(images, pts), depth]
    return write_arcore_mp4(path, videos, tracks, rotation_cw)


# --- Android / ARCore -----------------------------------------------------------------------


def test_arcore_poses_and_frame_times_round_trip(tmp_path, source):
    sc, images, positions, quats = source
    mp4 = arcore_recording(tmp_path / "session.mp4", source)
    kinds = {(t.handler, t.entry, t.mime) for t in mp4_tracks(mp4, tmp_path)}
    assert ("meta", "mett", POSE_MIME) in kinds and ("vide", "avc1", "") in kinds
    assert detect(mp4).name == "arsim-app"

    rec = read_recording(mp4)
    assert rec.poses is not None and rec.frame_count == len(images)
    # frame times on the camera clock (Frame.getTimestamp), exact to the µs of the MP4
    expected_ns = BOOT_NS + np.round((sc.frame_times - sc.frame_times[0]) * 1e9)
    assert np.max(np.abs(rec.frame_ns - expected_ns)) <= 1000
    assert (rec.camera.width, rec.camera.height) == (64, 48)
    assert rec.camera.fx == pytest.approx(sc.camera.fx, rel=1e-6)

    out = import_recording(mp4, tmp_path / "imported", "arsim-app")
    meta = json.loads((out / "scenario.json").read_text())
    assert meta["source"]["format"] == "arsim-app"
    assert meta["source"]["clock_offset_s"] == pytest.approx(BOOT_NS / 1e9, abs=1e-6)
    assert meta["video"] == "video.mp4"  # the camera track is the first: carried as is
    check = validate_scenario(out)
    assert not check.problems, check.problems
    got = load_scenario(out)
    assert np.allclose(got.frame_times, sc.frame_times - sc.frame_times[0], atol=2e-6)
    p2, q2 = got.trajectory.at_many(got.frame_times)
    assert np.allclose(p2, positions, atol=1e-5)
    assert np.allclose(np.abs(np.sum(q2 * quats, axis=1)), 1.0, atol=1e-8)
    assert set(got.tracking) == {"tracking"}


def test_portrait_rotation_turns_pose_and_intrinsics_with_the_image(tmp_path, source):
    sc, images, positions, quats = source
    mp4 = arcore_recording(tmp_path / "portrait.mp4", source, rotation_cw=90)
    out = import_recording(mp4, tmp_path / "imported", "arsim-app")
    got = load_scenario(out)
    assert (got.camera.width, got.camera.height) == (48, 64)  # portrait kept
    # the decoded picture is the stored one turned 90° clockwise (OpenCV applies the tkhd)
    first = next(iter(iter_frames(got.root / got.video)))
    turned = np.rot90(images[0], k=-1).astype(float)
    assert np.abs(first.astype(float) - turned).mean() < 6
    assert np.abs(first.astype(float) - turned[::-1, ::-1]).mean() > 12  # not the other way
    # a point the stored camera sees at (u, v) is at (H − v, u) in the decoded image
    k = 5
    pose = Pose(t=positions[k], q=quats[k])
    r = pose.rotation()
    point = pose.t + r @ np.array([0.12, -0.05, -1.5])  # in front of the camera
    px, _ = sc.camera.project(pose, point[None])
    u, v = px[0]
    imported = got.trajectory.at(got.frame_times[k])
    px2, depth = got.camera_at(k).project(imported, point[None])
    u2, v2 = px2[0]
    assert depth[0] > 0
    assert u2 == pytest.approx(48 - v, abs=1e-4) and v2 == pytest.approx(u, abs=1e-4)


def test_camera_track_not_first_is_decoded(tmp_path, source):
    _, images, _, _ = source
    mp4 = arcore_recording(tmp_path / "s.mp4", source, depth_first=True)
    rec = read_recording(mp4)
    assert (rec.camera.width, rec.camera.height) == (64, 48)  # the intrinsics' size wins
    assert isinstance(rec.frames, arsim_app.DecodedFrames)
    decoded = list(rec.frames.open())
    assert len(decoded) == len(images) and decoded[0].shape == (48, 64, 3)


def test_frames_without_a_pose_sample_are_interpolated(tmp_path, source):
    mp4 = arcore_recording(tmp_path / "s.mp4", source, drop={3, 4})
    rec = read_recording(mp4)
    assert rec.frame_count == len(source[1]) and len(rec.poses.ns) == len(source[1]) - 2
    assert any("2 frames without a pose sample" in n for n in rec.notes)


def test_lost_tracking_state_is_carried(tmp_path, source):
    def paused(i, payload):
        return payload[:5] + bytes([1]) + payload[6:] if i in (6, 7) else payload

    rec = read_recording(arcore_recording(tmp_path / "s.mp4", source, mutate=paused))
    assert rec.tracking[6:8] == ["lost", "lost"] and rec.tracking[5] == "tracking"


def test_recording_without_pose_track_is_video_only(tmp_path, source):
    mp4 = arcore_recording(tmp_path / "plain.mp4", source, with_poses=False)
    assert detect(mp4).name == "arsim-app"  # ARCore's own tracks say what it is
    rec = read_recording(mp4)
    assert rec.poses is None and NO_POSE_NOTE in rec.notes
    out = import_recording(mp4, tmp_path / "imported", "arsim-app")
    meta = json.loads((out / "scenario.json").read_text())
    assert meta["poses"] == {"available": False}
    assert NO_POSE_NOTE in meta["source"]["notes"]
    got = load_scenario(out)
    assert set(got.tracking) == {"unavailable"} or not got.poses_available
    assert np.allclose(got.frame_times, source[0].frame_times - source[0].frame_times[0],
                       atol=2e-6)


def test_plain_mp4_is_not_ours(tmp_path, source):
    mp4 = write_arcore_mp4(tmp_path / "phone.mp4", [(source[1], list(range(0, 15 * 66_666,
                                                                              66_666)))], [])
    assert "without ARCore data tracks" in arsim_app.IMPORTER.why_not(mp4)
    assert "no " in arsim_app.IMPORTER.why_not(tmp_path)  # a folder without the iOS header


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda i, p: b"XXXX" + p[4:], "expected a record starting with b'ARSP'"),
        (lambda i, p: p[:4] + b"\x02" + p[5:], "record version 2"),
        (lambda i, p: p[:-4], "record of 92 bytes; expected 96"),
        (lambda i, p: p[:5] + b"\x07" + p[6:], "tracking state 7"),
        (lambda i, p: p[:48] + struct.pack("<d", 3.0) + p[56:], "not of unit length"),
    ],
)
def test_malformed_pose_samples_are_one_line_errors(tmp_path, source, mutate, expected):
    mp4 = arcore_recording(tmp_path / "bad.mp4", source,
                           mutate=lambda i, p: mutate(i, p) if i == 4 else p)
    with pytest.raises(InputError) as err:
        read_recording(mp4, "arsim-app")
    message = str(err.value)
    assert "\n" not in message and expected in message
    assert "bad.mp4" in message and "sample 4" in message
    assert not (tmp_path / "out").exists()


def test_track_found_by_handler_name_without_mett(tmp_path, source):
    """A file re-muxed by ffmpeg keeps the MIME only as the handler name."""
    sc, images, positions, quats = source
    pts = [round((t - sc.frame_times[0]) * 1e6) for t in sc.frame_times]
    k = (sc.camera.fx, sc.camera.fy, sc.camera.cx, sc.camera.cy)
    samples = [(p, pose_record(BOOT_NS + p * 1000, positions[i], quats[i], k, (64, 48)))
               for i, p in enumerate(pts)]
    mp4 = write_arcore_mp4(tmp_path / "remux.mp4", [(images, pts)], [(POSE_MIME, samples)],
                           mett=False)
    assert read_recording(mp4, "arsim-app").poses is not None


def test_replay_timing_only(tmp_path, source):
    from simulator.run import RunSettings, run_scenario

    out = import_recording(arcore_recording(tmp_path / "s.mp4", source), tmp_path / "sc")
    run_scenario(out, RunSettings(timing_only=True), tmp_path / "run")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["metrics"]["display_fps"] > 0


# --- iOS ------------------------------------------------------------------------------------


def ios_recording(folder: Path, source, rotation_cw=0, lines=None) -> Path:
    sc, images, positions, quats = source
    folder.mkdir()
    pts = [round((t - sc.frame_times[0]) * 1e6) for t in sc.frame_times]
    write_arcore_mp4(folder / "video.mp4", [(images, pts)], [], rotation_cw)
    uptime = 5123.25  # ARFrame.timestamp: seconds since boot
    rows = []
    for i, t in enumerate(sc.frame_times - sc.frame_times[0]):
        rows.append(json.dumps({
            "t": float(f"{uptime + t:.9f}"),
            "p": [float(v) for v in positions[i]],
            "q": [float(v) for v in quats[i]],
            "k": [sc.camera.fx, sc.camera.fy, sc.camera.cx, sc.camera.cy],
            "tracking": "limited" if i == 2 else "normal",
        }))
    (folder / "frames.jsonl").write_text("\n".join(lines or rows) + "\n")
    (folder / "arsim-recording.json").write_text(json.dumps({
        "format": "arsim-ios-recording/1", "video": "video.mp4", "frames": "frames.jsonl",
        "width": 64, "height": 48, "device": "iPhone12,8", "app": "arsim bench 1.0",
        "recorded": "2025-01-02T03:04:05Z",
    }))
    return folder


def test_ios_folder_round_trip(tmp_path, source):
    sc, _images, positions, _quats = source
    folder = ios_recording(tmp_path / "ios-session", source, rotation_cw=90)
    assert detect(folder).name == "arsim-app"
    out = import_recording(folder, tmp_path / "imported")
    meta = json.loads((out / "scenario.json").read_text())
    assert meta["source"]["device"] == "iPhone12,8"
    assert meta["source"]["clock_offset_s"] == pytest.approx(5123.25, abs=1e-9)
    got = load_scenario(out)
    assert (got.camera.width, got.camera.height) == (48, 64)
    assert np.allclose(got.frame_times, sc.frame_times - sc.frame_times[0], atol=2e-9)
    assert got.tracking[2] == "limited" and got.tracking[3] == "tracking"
    p2, _ = got.trajectory.at_many(got.frame_times)
    assert np.allclose(p2, positions, atol=1e-6)


def test_ios_bad_line_names_file_and_line(tmp_path, source):
    good = ios_recording(tmp_path / "a", source)
    lines = (good / "frames.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"normal"', '"great"')
    folder = ios_recording(tmp_path / "b", source, lines=lines)
    with pytest.raises(InputError, match=r"frames\.jsonl:4: tracking must be normal"):
        read_recording(folder, "arsim-app")
