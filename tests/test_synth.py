"""Synthetic scenarios: writer output, presets, determinism, projection vs rendering."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.errors import InputError
from simulator.scenario import synth
from simulator.scenario.write import write_scenario
from simulator.types import Intrinsics, Pose

W, H, FPS = 96, 64, 30.0
SHORT_S = 10 / FPS  # ten frames
SPEC_KEYS = {"format", "name", "description", "video", "fps", "camera", "source", "anchors",
             "events", "expect"}


def _tiny(out: Path, preset: str = "orbit", seed: int = 0, **options) -> Path:
    options = {"width": W, "height": H, "fps": FPS, "duration_s": SHORT_S, **options}
    return synth.synthesize(out, preset, seed, **options)


def _decoded(folder: Path) -> list[np.ndarray]:
    from simulator.scenario.load import load_scenario

    with load_scenario(folder) as scenario:
        return [frame.image for frame in scenario.frames()]


def _text_files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("scenario.json", "frames.csv",
                                                           "poses.txt")}


def test_unknown_preset_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown preset 'spin'"):
        synth.synthesize(tmp_path / "x", "spin")
    assert not (tmp_path / "x").exists()


def test_bad_size_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="width"):
        _tiny(tmp_path / "x", width=95)


@pytest.mark.parametrize("preset", sorted(synth.PRESETS))
def test_every_preset_renders_a_loadable_scenario(tmp_path: Path, preset: str) -> None:
    from simulator.scenario.load import load_scenario

    calls: list[tuple[int, int]] = []
    folder = _tiny(tmp_path / preset, preset, video="frames/",
                   progress=lambda done, total: calls.append((done, total)))
    with load_scenario(folder) as scenario:
        assert scenario.frame_count == 10 == len(calls)
        assert calls[-1] == (10, 10)
        assert (scenario.camera.width, scenario.camera.height) == (W, H)
        assert 1 <= len(scenario.anchors) <= 3
        images = [frame.image for frame in scenario.frames()]
    assert all(image.shape == (H, W, 3) for image in images)
    assert all(image.std() > 5 for image in images)  # a scene, not a blank frame
    if preset == "walk":
        types = [event.type for event in scenario.events]
        assert types[:3] == ["background", "foreground", "memory_pressure"]
        assert scenario.events[2].mb == 300


def test_same_seed_same_bytes_and_frames(tmp_path: Path) -> None:
    first = _tiny(tmp_path / "a", "handheld-shake", seed=3)
    second = _tiny(tmp_path / "b", "handheld-shake", seed=3)
    assert _text_files(first) == _text_files(second)
    assert all(np.array_equal(x, y) for x, y in zip(_decoded(first), _decoded(second),
                                                   strict=True))


def test_different_seeds_differ(tmp_path: Path) -> None:
    first = _tiny(tmp_path / "a", "orbit", seed=1, video="frames/")
    second = _tiny(tmp_path / "b", "orbit", seed=2, video="frames/")
    assert (first / "poses.txt").read_text() != (second / "poses.txt").read_text()
    diff = np.abs(_decoded(first)[0].astype(int) - _decoded(second)[0].astype(int))
    assert diff.mean() > 5


def test_written_files_follow_the_spec(tmp_path: Path) -> None:
    folder = _tiny(tmp_path / "walk", "walk")
    meta = json.loads((folder / "scenario.json").read_text())
    assert set(meta) <= SPEC_KEYS and meta["format"] == "arsim-scenario/1"
    assert meta["video"] == "video.mp4" and (folder / "video.mp4").stat().st_size > 0
    rows = (folder / "frames.csv").read_text().splitlines()
    assert rows[0] == "index,timestamp,tracking"
    indices, times, states = zip(*(row.split(",") for row in rows[1:]), strict=True)
    assert [int(i) for i in indices] == list(range(10))
    assert np.all(np.diff([float(t) for t in times]) > 0)
    assert set(states) <= {"tracking", "limited", "lost"}
    pose_lines = (folder / "poses.txt").read_text().splitlines()
    assert pose_lines[0].startswith("#")
    poses = np.array([[float(v) for v in line.split()] for line in pose_lines
                      if not line.startswith("#")])
    assert poses.shape[1] == 8 and len(poses) > len(rows)  # 60 Hz poses, 30 fps frames
    assert np.allclose(np.linalg.norm(poses[:, 4:], axis=1), 1.0, atol=1e-8)
    assert poses[0, 0] <= float(times[0]) and poses[-1, 0] >= float(times[-1])
    event_times = [event["t"] for event in meta["events"]]
    assert event_times == sorted(event_times)
    cap = cv2.VideoCapture(str(folder / "video.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    cap.release()


def test_loaded_poses_match_the_rendered_path(tmp_path: Path) -> None:
    """The reader's interpolated pose at a frame time is the pose the frame was drawn with."""
    from simulator.scenario.load import load_scenario

    folder = _tiny(tmp_path / "pan", "pan-fast", seed=5, duration_s=1.0, video="frames/")
    rng = np.random.default_rng([5, 0])
    synth.build_scene(rng)
    rig = synth.PRESETS["pan-fast"].make_rig(rng, 1.0)
    with load_scenario(folder) as scenario:
        for t in scenario.frame_times[::7]:
            # session time + the clock offset = the time on the file's clock
            eye, rot = rig.pose_at(float(t) + scenario.clock_offset_s)
            loaded = scenario.pose_at(float(t))
            assert np.allclose(loaded.t, eye, atol=1e-4)
            cos_angle = (np.trace(loaded.rotation().T @ rot) - 1) / 2
            assert np.degrees(np.arccos(min(1.0, cos_angle))) < 0.05


def test_projection_agrees_with_rendering() -> None:
    """Intrinsics.project of a rectangle's corners lands where the renderer draws them."""
    white = np.full((synth.TEXTURE_SIZE,) * 2 + (3,), 255, np.uint8)
    square = synth._face((0.3, 1.2, -2.0), (0.2, 0.1, 1.0), (0, 1, 0), (0.8, 0.6), 0, None)
    scene = synth.Scene([square], [white], [False])
    camera = Intrinsics(160, 120, 140.0, 140.0, 83.0, 57.0)
    eye = np.array([0.1, 1.3, 0.4])
    pose = Pose(eye, synth.quaternion_from_matrix(synth.look_at(eye, (0.4, 1.1, -2.0), 0.3)))
    renderer = synth.Renderer(scene, camera, supersample=1.0)
    image = renderer.render(pose, synth.Lighting((0, 0, 1), ambient=1.0, diffuse=0.0))
    corners, depth = camera.project(pose, square.corners())
    assert np.all(depth > 0)
    centre = corners.mean(axis=0)
    for corner in corners:
        toward = (centre - corner) / np.linalg.norm(centre - corner)
        inside = np.round(corner + 3 * toward).astype(int)
        outside = np.round(corner - 3 * toward).astype(int)
        assert image[inside[1], inside[0]].mean() > 150
        assert image[outside[1], outside[0]].mean() < 40
    ids = renderer.cast(pose)
    x, y = np.round(centre).astype(int)
    assert ids[y, x] == 0 and ids[0, 0] == -1


def test_photo_billboard_projects_onto_the_face() -> None:
    rng = np.random.default_rng([0, 0])
    scene = synth.build_scene(rng)
    rig = synth.PRESETS["orbit"].make_rig(rng, 8.0)
    camera = synth.camera_for(W * 2, H * 2)
    eye, rot = rig.pose_at(2.0)
    pose = Pose(eye, synth.quaternion_from_matrix(rot))
    ids = synth.Renderer(scene, camera, supersample=1.0).cast(pose)
    (u, v), = camera.project(pose, synth.PHOTO_CENTER[None] + [0, 0, 0.02])[0]
    photo = next(i for i, rect in enumerate(scene.rects) if rect.texture == 9)
    assert ids[round(v), round(u)] == photo


def test_tracking_is_mostly_tracking_with_some_limited_and_lost() -> None:
    for name, preset in synth.PRESETS.items():
        rig = preset.make_rig(np.random.default_rng(0), preset.duration_s)
        states = Counter(rig.tracking_at(i / FPS) for i in range(int(preset.duration_s * FPS)))
        assert states["tracking"] / sum(states.values()) > 0.7, name
        if name in ("walk", "handheld-shake"):
            assert states["limited"] > 0 and states["lost"] > 0, name


def _write_minimal(out: Path, **changes) -> Path:
    camera = Intrinsics(32, 16, 30.0, 30.0, 16.0, 8.0)
    args = {
        "name": "tiny",
        "fps": 10.0,
        "camera": camera,
        "frames": [np.zeros((16, 32, 3), np.uint8)] * 3,
        "frame_times": [0.0, 0.1, 0.2],
        "tracking": ["tracking", "limited", "lost"],
        "pose_rows": ([0.0, 0.25], np.zeros((2, 3)), np.array([[0, 0, 0, 1.0]] * 2)),
        "video": "frames/",
        **changes,
    }
    return write_scenario(out, **args)


def test_writer_output_loads(tmp_path: Path) -> None:
    from simulator.scenario.load import load_scenario

    folder = _write_minimal(tmp_path / "ok", events=[{"t": 0.1, "type": "thermal", "factor": 1.5}],
                            anchors=[{"id": "a", "position": [0, 0, -1], "size": [1, 1, 1]}])
    with load_scenario(folder) as scenario:
        assert scenario.tracking == ["tracking", "limited", "lost"]
        assert scenario.events[0].factor == 1.5
    assert sorted(p.name for p in (folder / "frames").iterdir()) == [
        "000000.png", "000001.png", "000002.png"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"frames": [np.zeros((16, 32, 3), np.uint8)] * 2}, "got 2 frames"),
        ({"frames": [np.zeros((8, 8, 3), np.uint8)] * 3}, "frame 0"),
        ({"tracking": ["tracking", "ok", "lost"]}, "row 1"),
        ({"frame_times": [0.0, 0.1, 0.3]}, "every frame must lie within"),
        ({"frame_times": [0.0, 0.2, 0.1]}, "increase strictly"),
        ({"name": "bad name"}, "name"),
        ({"pose_rows": ([0.0, 0.25], np.zeros((2, 3)), np.array([[0, 0, 0, 2.0]] * 2))},
         "quaternion norm"),
    ],
)
def test_writer_rejects_bad_input(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _write_minimal(tmp_path / "bad", **changes)
