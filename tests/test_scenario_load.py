"""load_scenario: a valid scenario round-trips; every kind of bad input is one clear InputError."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from scenario_fixtures import REMOVE, edit_json, frame_image, make_scenario, zip_folder

from simulator.errors import InputError
from simulator.scenario.load import load_scenario

CAMERA = {"width": 64, "height": 48, "fx": 50.0, "fy": 50.0, "cx": 32.0, "cy": 24.0}


def load_error(path: Path) -> str:
    with pytest.raises(InputError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "\n" not in message
    return message


# --- good scenarios ---------------------------------------------------------------------


def test_video_scenario_loads_and_streams_frames(tmp_path) -> None:
    events = [
        {"t": 0.1, "type": "memory_pressure", "mb": 120},
        {"t": 0.2, "type": "thermal", "factor": 1.5},
        {"t": 0.2, "type": "background"},
        {"t": 0.3, "type": "foreground"},
    ]
    folder = make_scenario(tmp_path / "walk", events=events, tracking=["tracking"] * 11 + ["lost"])
    with load_scenario(folder) as sc:
        assert sc.name == "walk" and sc.video == "video.mp4" and sc.root == folder
        assert sc.frame_count == 12
        assert sc.duration_s == pytest.approx(11 / 30 + 1 / 30)
        assert sc.frame_times.dtype == np.float64
        assert (sc.camera.width, sc.camera.height) == (64, 48)
        assert [e.type for e in sc.events] == ["memory_pressure", "thermal", "background",
                                               "foreground"]
        assert sc.events[0].mb == 120.0 and sc.events[1].factor == 1.5
        assert sc.events[2].mb is None and sc.events[2].factor is None
        assert sc.anchors[0].id == "box"
        assert np.array_equal(sc.anchors[0].rotation, [0, 0, 0, 1])  # identity when absent
        assert sc.expect == {"min_display_fps": 10.0}
        assert sc.source["recorded"] == "2024-05-01"
        stream = sc.frames()
        assert inspect.isgenerator(stream)
        frames = list(stream)
    assert [f.index for f in frames] == list(range(12))
    assert frames[-1].tracking == "lost"
    for frame in frames:
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        expected = frame_image(frame.index, 64, 48).astype(int)
        assert np.abs(frame.image.astype(int) - expected).mean() < 12  # mp4v is lossy
        assert np.array_equal(frame.pose.t, sc.pose_at(frame.time).t)
        assert np.array_equal(frame.pose.q, sc.pose_at(frame.time).q)


def test_png_frames_scenario_decodes_exactly_rgb(tmp_path) -> None:
    folder = make_scenario(tmp_path / "pngs", video="frames/", frames=5)
    with load_scenario(folder) as sc:
        images = [f.image for f in sc.frames()]
    assert len(images) == 5
    assert all(np.array_equal(img, frame_image(i, 64, 48)) for i, img in enumerate(images))


def test_pose_at_frame_time_interpolates_between_pose_rows(tmp_path) -> None:
    folder = make_scenario(tmp_path / "walk")  # poses at half the frame rate
    with load_scenario(folder) as sc:
        traj = sc.trajectory
        assert len(traj.times) < sc.frame_count
        mid = 0.5 * (traj.times[0] + traj.times[1])
        pose = sc.pose_at(mid)
    assert np.allclose(pose.t, 0.5 * (traj.positions[0] + traj.positions[1]))
    assert np.isclose(np.linalg.norm(pose.q), 1.0)


@pytest.mark.parametrize("top", [None, "walk"])
def test_zip_scenario_is_extracted_and_removed_on_close(tmp_path, top) -> None:
    folder = make_scenario(tmp_path / "walk")
    zip_path = zip_folder(folder, tmp_path / "walk.zip", top=top)
    with load_scenario(zip_path) as sc:
        assert sc.source_path == zip_path
        root = sc.root
        assert (root / "video.mp4").is_file()
        assert len(list(sc.frames())) == 12
    assert not root.exists()


def test_zip_error_names_the_archive_and_the_file(tmp_path) -> None:
    folder = edit_json(make_scenario(tmp_path / "walk"), fps=500)
    message = load_error(zip_folder(folder, tmp_path / "walk.zip"))
    assert message.startswith(f"{tmp_path / 'walk.zip'}:scenario.json: fps")


# --- scenario.json ----------------------------------------------------------------------


def test_broken_json_names_line_and_column(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "scenario.json").write_text('{\n  "format": "arsim-scenario/1",\n  "name" "x"\n}')
    message = load_error(folder)
    assert "scenario.json: broken JSON at line 3 column 10" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"fps": NaN}', "NaN is not valid JSON"),
        ('{"fps": 1, "fps": 2}', "field 'fps' appears twice"),
        ("[1, 2]", "top level: expected a JSON object"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_json_that_is_not_an_object_of_finite_fields(tmp_path, text: str, expected: str) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "scenario.json").write_text(text)
    message = load_error(folder)
    assert "scenario.json" in message and expected in message


def test_missing_scenario_json(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "scenario.json").unlink()
    assert f"{folder}: no scenario.json" in load_error(folder)  # and what it looks like


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"format": "arsim-scenario/2"}, "format: expected 'arsim-scenario/1'"),
    ({"format": REMOVE}, "format: missing required field"),
    ({"camera": REMOVE}, "camera: missing required field"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"name": "has space"}, "name: expected 1-64 characters"),
    ({"name": "x" * 65}, "name: expected 1-64 characters"),
    ({"name": 7}, "name: expected a string"),
    ({"description": "d" * 2001}, "description: at most 2000"),
    ({"video": "../video.mp4"}, "video: expected a file name in the scenario folder"),
    ({"video": "sub/video.mp4"}, "video: expected a file name"),
    ({"video": ".."}, "video: expected a file name"),
    ({"fps": 0.5}, "fps: expected a finite number in 1-240"),
    ({"fps": "30"}, "fps: expected a number"),
    ({"fps": True}, "fps: expected a number"),
    ({"fps": 10**400}, "fps: expected a finite number in 1-240"),
    ({"camera": [64, 48]}, "camera: expected a JSON object"),
    ({"camera": {**CAMERA, "width": 64.5}}, "camera.width: expected an integer 16-8192"),
    ({"camera": {**CAMERA, "height": 8}}, "camera.height: expected an integer 16-8192"),
    ({"camera": {**CAMERA, "fx": 0}}, "camera.fx: expected a finite number > 0"),
    ({"camera": {**CAMERA, "fy": 10**400}}, "camera.fy: expected a finite number > 0"),
    ({"camera": {**CAMERA, "cx": 65}}, "camera.cx: expected a finite number in 0-64"),
    ({"camera": {**CAMERA, "cy": -1}}, "camera.cy: expected a finite number in 0-48"),
    ({"camera": {**CAMERA, "k1": 0.1}}, "camera.k1: unknown field"),
    ({"camera": {**CAMERA, "width": 80}}, "camera.width x camera.height is 80x48 but the frames"),
    ({"source": {"phone": "x"}}, "source.phone: unknown field"),
    ({"source": {"app": 3}}, "source.app: expected a string"),
    ({"source": {"recorded": "last tuesday"}}, "source.recorded: expected an ISO 8601 date"),
    ({"expect": {"max_fps": 3}}, "expect.max_fps: unknown field"),
    ({"expect": {"max_jank_pct": -1}}, "expect.max_jank_pct: expected a finite number >= 0"),
    ({"expect": []}, "expect: expected a JSON object"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_FIELDS)
def test_bad_scenario_json_field(tmp_path, overrides: dict[str, Any], expected: str) -> None:
    message = load_error(edit_json(make_scenario(tmp_path / "s"), **overrides))
    assert f"{tmp_path / 's' / 'scenario.json'}: {expected}" in message


BOX = {"id": "a", "position": [0, 0, -1], "size": [1, 1, 1]}
BAD_ANCHORS: list[tuple[list[Any], str]] = [
    ({"not": "a list"}, "anchors: expected a JSON array"),
    ([{**BOX, "size": [1, 0, 1]}], "anchors[0].size: extents must be > 0"),
    ([{**BOX, "size": [1, 1]}], "anchors[0].size: expected an array of 3 numbers"),
    ([{**BOX, "position": [0, "x", 0]}], "anchors[0].position[1]: expected a number"),
    ([{**BOX, "rotation": [0, 0, 0, 2]}], "anchors[0].rotation: quaternion norm is 2"),
    ([BOX, {**BOX}], "anchors[1].id: \"a\" is used twice"),
    ([{**BOX, "id": ""}], "anchors[0].id: expected a non-empty string"),
    ([{"id": "a", "position": [0, 0, 0]}], "anchors[0].size: missing required field"),
    ([{**BOX, "colour": 1}], "anchors[0].colour: unknown field"),
]


@pytest.mark.parametrize(("anchors", "expected"), BAD_ANCHORS)
def test_bad_anchor(tmp_path, anchors: list[Any], expected: str) -> None:
    message = load_error(make_scenario(tmp_path / "s", anchors=anchors))
    assert f"scenario.json: {expected}" in message


BAD_EVENTS: list[tuple[list[Any], str]] = [
    ([{"t": -1, "type": "background"}], "events[0].t: expected a finite number >= 0"),
    ([{"t": 1, "type": "sleep"}], "events[0].type: expected background, foreground"),
    ([{"t": 1, "type": "background"}, {"t": 0.5, "type": "foreground"}],
     "events[1].t: 0.5 is before the previous event's 1"),
    ([{"t": 1, "type": "memory_pressure"}],
     "events[0]: a 'memory_pressure' event needs the field 'mb'"),
    ([{"t": 1, "type": "memory_pressure", "mb": -5}], "events[0].mb: expected a finite number"),
    ([{"t": 1, "type": "thermal", "factor": 0.5}], "events[0].factor: expected a finite number"),
    ([{"t": 1, "type": "background", "mb": 5}], "events[0].mb: not a field of a 'background'"),
    ([{"t": 1, "type": "thermal", "factor": 2, "x": 1}], "events[0].x: unknown field"),
]


@pytest.mark.parametrize(("events", "expected"), BAD_EVENTS)
def test_bad_event(tmp_path, events: list[Any], expected: str) -> None:
    message = load_error(make_scenario(tmp_path / "s", events=events))
    assert f"scenario.json: {expected}" in message


# --- frames.csv -------------------------------------------------------------------------

BAD_CSV: list[tuple[str, str]] = [
    ("idx,timestamp,tracking\n0,0,tracking\n", "line 1: expected the header"),
    ("", "line 1: expected the header"),
    ("index,timestamp,tracking\n", "no frame rows after the header"),
    ("index,timestamp,tracking\n0,0,tracking\n2,0.1,tracking\n",
     "line 3: index is '2', expected 1"),
    ("index,timestamp,tracking\n0,0,tracking\nx,0.1,tracking\n", "line 3: index is 'x'"),
    ("index,timestamp,tracking\n0,0.1,tracking\n1,0.05,tracking\n",
     "line 3: timestamp 0.05 is not after"),
    ("index,timestamp,tracking\n0,0.1,tracking\n1,0.1,tracking\n", "strictly increasing"),
    ("index,timestamp,tracking\n0,inf,tracking\n", "line 2: timestamp must be a number"),
    ("index,timestamp,tracking\n0,0,tracking\n1,0.1,sleeping\n",
     "line 3: tracking is 'sleeping', expected tracking, limited or lost"),
    ("index,timestamp,tracking\n0,0,tracking,extra\n", "line 2: expected 3 columns"),
]


@pytest.mark.parametrize(("csv_text", "expected"), BAD_CSV)
def test_bad_frames_csv(tmp_path, csv_text: str, expected: str) -> None:
    message = load_error(make_scenario(tmp_path / "s", frames_csv=csv_text))
    assert f"{tmp_path / 's' / 'frames.csv'}" in message and expected in message


def test_frame_count_mismatch_between_csv_and_video(tmp_path) -> None:
    rows = "".join(f"{i},{i / 30!r},tracking\n" for i in range(11))
    folder = make_scenario(tmp_path / "s", frames_csv="index,timestamp,tracking\n" + rows)
    message = load_error(folder)
    assert "frames.csv: 11 frame rows but video.mp4 holds 12 frames" in message


def test_frame_times_outside_the_pose_range(tmp_path) -> None:
    poses = "0.0 0 0 0 0 0 0 1\n0.2 0 0 0 0 0 0 1\n"  # frames run to 11/30 s
    message = load_error(make_scenario(tmp_path / "s", poses_text=poses))
    assert "frames.csv line 9: timestamp 0.2333" in message  # row 7, after the header
    assert "outside the poses.txt time range" in message


def test_bad_poses_row_names_file_and_line(tmp_path) -> None:
    poses = "# header\n0.0 0 0 0 0 0 0 1\n1.0 0 0 0 0 0 0.5 0.5\n"
    message = load_error(make_scenario(tmp_path / "s", poses_text=poses))
    assert f"{tmp_path / 's' / 'poses.txt'} line 3: quaternion" in message


# --- video ------------------------------------------------------------------------------


def test_video_that_is_not_decodable(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "video.mp4").write_bytes(b"definitely not an mp4 file" * 10)
    assert "video.mp4: not a video OpenCV can decode" in load_error(folder)


def test_video_file_missing(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "video.mp4").unlink()
    assert "video.mp4: video file not found" in load_error(folder)


def test_png_folder_with_a_gap(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s", video="frames/", frames=4)
    (folder / "frames" / "000002.png").unlink()
    assert "frames/: 000002.png is missing" in load_error(folder)


def test_png_of_another_size(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s", video="frames/", frames=4)
    cv2.imwrite(str(folder / "frames" / "000003.png"), np.zeros((40, 64, 3), np.uint8))
    message = load_error(folder)
    assert "frames/000003.png: frame is 64x40, expected 64x48" in message


def test_stray_file_in_png_folder(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s", video="frames/", frames=2)
    (folder / "frames" / "notes.txt").write_text("x")
    assert "frames/notes.txt: unexpected entry" in load_error(folder)


def test_corrupt_png_fails_while_streaming_with_its_name(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s", video="frames/", frames=3)
    png = folder / "frames" / "000001.png"
    png.write_bytes(png.read_bytes()[:40])  # header intact, image data cut off
    with load_scenario(folder) as sc, pytest.raises(InputError, match=r"000001\.png: cannot be"):
        list(sc.frames())


# --- what the user points at ------------------------------------------------------------


def test_path_that_does_not_exist(tmp_path) -> None:
    assert "no such scenario folder or .zip file" in load_error(tmp_path / "nope")


def test_plain_file_that_is_not_a_zip(tmp_path) -> None:
    folder = make_scenario(tmp_path / "s")
    assert "expected a scenario folder or a .zip" in load_error(folder / "frames.csv")


def test_zip_named_file_that_is_not_a_zip(tmp_path) -> None:
    fake = tmp_path / "s.zip"
    fake.write_text(json.dumps({"not": "zip"}))
    assert "not a readable zip archive" in load_error(fake)
