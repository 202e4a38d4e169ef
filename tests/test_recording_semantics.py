"""What real recordings break and the format 1.1 loader and replay must get right: clocks
with any origin or unit, non-metric scale, declared fps, pose jumps, every problem listed,
lens distortion, JPEG frames (issue 11)."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.cli import main
from simulator.errors import InputError
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.skip import SkipSettings
from simulator.pipeline.smooth import SmoothSettings
from simulator.run import RunSettings, run_scenario
from simulator.scenario.importers.base import ImportOptions, PoseTrack, Recording, VideoFrames
from simulator.scenario.importers.output import write_recording
from simulator.scenario.load import load_scenario, validate_scenario
from simulator.scenario.synth import synthesize
from simulator.types import Distortion, Intrinsics, Pose

EPOCH = Decimal("1400000000")  # a Unix-epoch clock: 1.4e9 s


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A short rendered scene (orbit, 1.5 s, 160x90) with anchors."""
    out = tmp_path_factory.mktemp("base") / "orbit"
    return synthesize(out, "orbit", 3, width=160, height=90, fps=30.0, duration_s=1.5,
                      supersample=1.0)


def _shifted_copy(src: Path, dst: Path, shift: Decimal) -> Path:
    """The same scenario with every timestamp moved by ``shift`` (exact decimal text)."""
    shutil.copytree(src, dst)
    lines = (src / "frames.csv").read_text().splitlines()
    rows = [lines[0]]
    for line in lines[1:]:
        i, t, state = line.split(",")
        rows.append(f"{i},{Decimal(t) + shift},{state}")
    (dst / "frames.csv").write_text("\n".join(rows) + "\n")
    out = []
    for line in (src / "poses.txt").read_text().splitlines():
        if line.startswith("#"):
            out.append(line)
            continue
        t, *rest = line.split()
        out.append(" ".join([str(Decimal(t) + shift), *rest]))
    (dst / "poses.txt").write_text("\n".join(out) + "\n")
    return dst


def _nanosecond_import(src: Path, dst: Path) -> Path:
    """The scenario as a capture app with an epoch nanosecond clock would record it, run
    through the importers' writer (integer ns in, seconds from the first frame out)."""
    with load_scenario(src) as scenario:
        camera = scenario.camera
    frame_text = [line.split(",")[1] for line in (src / "frames.csv").read_text().splitlines()[1:]]
    frame_ns = np.array([int((Decimal(t) + EPOCH) * 10**9) for t in frame_text], np.int64)
    rows = [r.split() for r in (src / "poses.txt").read_text().splitlines() if r[:1] != "#"]
    pose_ns = np.array([int((Decimal(r[0]) + EPOCH) * 10**9) for r in rows], np.int64)
    values = np.array([[float(v) for v in r[1:]] for r in rows])
    meta = json.loads((src / "scenario.json").read_text())
    recording = Recording(
        format="test-ns", camera=camera, frames=VideoFrames(src / "video.mp4"),
        frame_ns=frame_ns, poses=PoseTrack(pose_ns, values[:, :3], values[:, 3:]),
        fps=meta["fps"], anchors=meta["anchors"], clock="Unix epoch, nanoseconds",
    )
    return write_recording(recording, dst, ImportOptions())


def _replay(path: Path, out: Path, **settings) -> dict:
    return run_scenario(path, RunSettings(thumbnails=0, **settings), out).report


@pytest.mark.slow
def test_clock_origin_and_unit_do_not_change_the_replay(base: Path, tmp_path: Path) -> None:
    first = Decimal((base / "frames.csv").read_text().splitlines()[1].split(",")[1])
    zero = _shifted_copy(base, tmp_path / "zero", -first)
    epoch = _shifted_copy(base, tmp_path / "epoch", EPOCH)
    nano = _nanosecond_import(base, tmp_path / "nano")
    pipeline = PipelineSettings(smoothing=SmoothSettings(method="pose"))
    reports = [_replay(p, tmp_path / f"r{k}", pipeline=pipeline)
               for k, p in enumerate((zero, epoch, nano))]
    assert reports[1]["scenario"]["clock_offset_s"] == pytest.approx(1.4e9 + float(first))
    assert reports[2]["scenario"]["clock_offset_s"] == pytest.approx(1.4e9 + float(first))
    for other in reports[1:]:
        assert other["metrics"] == reports[0]["metrics"]
        assert other["verdict"] == reports[0]["verdict"]
        assert [f["t_display"] for f in other["frames"]] == [
            f["t_display"] for f in reports[0]["frames"]
        ]
    assert reports[0]["metrics"]["flicker"]["warp_error"] is not None


def _scaled_copy(src: Path, dst: Path, factor: float, poses: dict | None) -> Path:
    """The scene with every position and anchor scaled by ``factor`` (a non-metric export of
    the same capture) and the given ``poses`` block (format 1.1)."""
    shutil.copytree(src, dst)
    out = []
    for line in (src / "poses.txt").read_text().splitlines():
        if line.startswith("#"):
            out.append(line)
            continue
        t, x, y, z, *q = line.split()
        out.append(" ".join([t, *(f"{float(v) * factor:.9f}" for v in (x, y, z)), *q]))
    (dst / "poses.txt").write_text("\n".join(out) + "\n")
    meta = json.loads((src / "scenario.json").read_text())
    meta["format"] = "arsim-scenario/1.1"
    for anchor in meta["anchors"]:
        anchor["position"] = [v * factor for v in anchor["position"]]
        anchor["size"] = [v * factor for v in anchor["size"]]
    if poses is not None:
        meta["poses"] = poses
    (dst / "scenario.json").write_text(json.dumps(meta, indent=2))
    return dst


POSE_PIPELINE = PipelineSettings(
    smoothing=SmoothSettings(method="pose"), skip=SkipSettings(reuse="warp", skip=True)
)


def test_declared_scale_gives_the_same_pose_stages(base: Path, tmp_path: Path) -> None:
    metric = _replay(base, tmp_path / "m", pipeline=POSE_PIPELINE)
    declared = _scaled_copy(base, tmp_path / "s", 0.4, {"metric": False, "scale": 2.5})
    scaled = _replay(declared, tmp_path / "sr", pipeline=POSE_PIPELINE)
    assert scaled["scenario"]["pose_scale"] == 2.5
    for key in ("warp_error", "frame_diff", "luminance_flicker"):
        assert scaled["metrics"]["flicker"][key] == pytest.approx(
            metric["metrics"]["flicker"][key], rel=1e-6)
    assert scaled["metrics"]["skipped_frames"] == metric["metrics"]["skipped_frames"]
    assert scaled["verdict"]["passed"] == metric["verdict"]["passed"]
    # the same 0.4 scene taken for metres (the old behaviour) smooths differently
    wrong = _scaled_copy(base, tmp_path / "w", 0.4, None)
    misread = _replay(wrong, tmp_path / "wr", pipeline=POSE_PIPELINE)
    assert misread["metrics"]["skipped_frames"] != metric["metrics"]["skipped_frames"] or (
        misread["metrics"]["flicker"]["warp_error"]
        != pytest.approx(metric["metrics"]["flicker"]["warp_error"], rel=1e-3))


def test_non_metric_scale_from_anchors_or_depth_else_refused(base: Path, tmp_path: Path) -> None:
    by_anchor = _scaled_copy(base, tmp_path / "a", 0.4, {"metric": False})
    with load_scenario(by_anchor) as scenario:
        assert scenario.scale_source == "anchor distance"
        assert scenario.scene_depth_m == 2.0
    by_depth = _scaled_copy(base, tmp_path / "d", 0.4, {"metric": False, "scene_depth": 1.2})
    with load_scenario(by_depth) as scenario:
        assert scenario.pose_scale == pytest.approx(2.0 / 1.2)
    unknown = _scaled_copy(base, tmp_path / "u", 0.4, {"metric": False})
    meta = json.loads((unknown / "scenario.json").read_text())
    del meta["anchors"]
    (unknown / "scenario.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="--smooth pose and --reuse warp and --skip cannot run"):
        _replay(unknown, tmp_path / "ur", pipeline=POSE_PIPELINE)
    assert _replay(unknown, tmp_path / "plain", timing_only=True)["complete"]


def _edit_times(folder: Path, scale: int) -> None:
    for name, sep in (("frames.csv", ","), ("poses.txt", " ")):
        lines = (folder / name).read_text().splitlines()
        out = []
        for line in lines:
            cells = line.split(sep)
            if line.startswith(("#", "index")):
                out.append(line)
                continue
            k = 1 if name == "frames.csv" else 0
            cells[k] = str(int((Decimal(cells[k]) + EPOCH) * scale))
            out.append(sep.join(cells))
        (folder / name).write_text("\n".join(out) + "\n")


def test_nanosecond_timestamps_refused_with_a_hint(base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ns"
    shutil.copytree(base, folder)
    _edit_times(folder, 10**9)
    problems = [str(p) for p in validate_scenario(folder).problems]
    assert any("look like nanoseconds" in p and "divide both by 1e+09" in p for p in problems)


def test_declared_fps_must_match_the_frame_times(base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "fps"
    shutil.copytree(base, folder)
    meta = json.loads((folder / "scenario.json").read_text())
    meta["fps"] = 10.0
    (folder / "scenario.json").write_text(json.dumps(meta))
    problems = [str(p) for p in validate_scenario(folder).problems]
    assert len(problems) == 1
    assert problems[0].startswith(f"{folder / 'scenario.json'}: fps: declared 10 but the "
                                  "frame times give")
    assert "give 30." in problems[0] or "give 29." in problems[0]


def test_validate_lists_every_problem(base: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(base, folder)
    meta = json.loads((folder / "scenario.json").read_text())
    meta["name"] = "has spaces"
    meta["camera"]["k1"] = 0.1
    (folder / "scenario.json").write_text(json.dumps(meta))
    lines = (folder / "frames.csv").read_text().splitlines()
    lines[3] = lines[3].replace("tracking", "tracked")
    lines[5] = "x," + lines[5].split(",", 1)[1]
    (folder / "frames.csv").write_text("\n".join(lines) + "\n")
    assert main(["scenario", "validate", str(folder)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any("name: expected 1-64 characters" in e for e in err)
    assert any("camera.k1: unknown field" in e for e in err)
    assert any("frames.csv line 4: tracking is 'tracked'" in e for e in err)
    assert any("frames.csv line 6: index is 'x'" in e for e in err)
    assert err[-1].endswith("4 problem(s)")


def test_pose_jump_is_reported_and_never_bridged(base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "jump"
    shutil.copytree(base, folder)
    lines = (folder / "poses.txt").read_text().splitlines()
    body = [k for k, line in enumerate(lines) if not line.startswith("#")]
    half = body[len(body) // 2]
    for k in body[len(body) // 2:]:  # relocalisation: the rest of the path moves 0.6 m
        t, x, *rest = lines[k].split()
        lines[k] = " ".join([t, f"{float(x) + 0.6:.9f}", *rest])
    (folder / "poses.txt").write_text("\n".join(lines) + "\n")
    jump_t = float(lines[half].split()[0]) - float(
        (folder / "frames.csv").read_text().splitlines()[1].split(",")[1])
    result = validate_scenario(folder)
    assert not result.problems
    jumps = [d for d in result.scenario.discontinuities if d.kind == "pose jump"]
    result.scenario.close()
    assert len(jumps) == 1 and abs(jumps[0].t - jump_t) < 0.05
    report = _replay(folder, tmp_path / "r", pipeline=POSE_PIPELINE)
    first_after = jumps[0].frame
    crossing = [d for d in report["display"] if d["source"] < first_after <= d["frame"]]
    assert crossing == []
    assert report["scenario"]["discontinuities"][0]["frame"] == first_after


def test_distortion_projection_matches_opencv() -> None:
    rng = np.random.default_rng(4)
    points = np.column_stack([rng.uniform(-1, 1, 20), rng.uniform(-0.6, 0.6, 20),
                              rng.uniform(-4, -1.5, 20)])  # in front: the camera looks down -z
    pose = Pose(t=np.zeros(3), q=np.array([0.0, 0.0, 0.0, 1.0]))
    for model, coeffs in (("radtan", (-0.28, 0.07, 0.0005, -0.0002, 0.01)),
                          ("fisheye", (0.02, -0.01, 0.003, -0.001))):
        cam = Intrinsics(640, 480, 458.6, 457.3, 367.2, 248.4, Distortion(model, coeffs))
        pixels, depth = cam.project(pose, points)
        cv_points = points * np.array([1.0, -1.0, -1.0])  # to OpenCV's camera axes
        k = cam.matrix()
        if model == "fisheye":
            expected, _ = cv2.fisheye.projectPoints(cv_points[None], np.zeros(3), np.zeros(3), k,
                                                    np.array(coeffs))
        else:
            expected, _ = cv2.projectPoints(cv_points, np.zeros(3), np.zeros(3), k,
                                            np.array(coeffs))
        assert np.all(depth > 0)
        assert np.allclose(pixels, expected.reshape(-1, 2), atol=1e-6)


def test_jpeg_frames_load_and_replay(base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "jpeg"
    shutil.copytree(base, folder, ignore=shutil.ignore_patterns("video.mp4"))
    frames = folder / "frames"
    frames.mkdir()
    with load_scenario(base) as scenario:
        for frame in scenario.frames():
            cv2.imwrite(str(frames / f"{frame.index:06d}.jpg"),
                        cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        count = scenario.frame_count
    meta = json.loads((folder / "scenario.json").read_text())
    meta["video"] = "frames/"
    (folder / "scenario.json").write_text(json.dumps(meta))
    report = _replay(folder, tmp_path / "r")
    assert report["scenario"]["frames"] == count
    (frames / f"{count:06d}.png").write_bytes((frames / "000000.jpg").read_bytes())
    assert any("mix extensions" in str(p) for p in validate_scenario(folder).problems)


def test_output_video_covers_a_real_clip_with_a_pause(tmp_path: Path) -> None:
    """A real phone clip (tests/data/real/phone-video, Apache-2.0) pauses 325 ms after its
    first frame. output.mp4 lies on the 30 fps grid over the whole session (it was one video
    frame per camera frame: 7 frames, 0.23 s of a 0.49 s session, the rest missing)."""
    from simulator.scenario.importers import import_recording
    from simulator.scenario.video import count_frames, iter_frames

    clip = Path(__file__).parent / "data/real/phone-video/sample_android_slow_motion.mp4"
    scenario = import_recording(clip, tmp_path / "clip", "auto", ImportOptions())
    outcome = run_scenario(scenario, RunSettings(device="ipad-pro-m1", model="ar-lite",
                                                 input_size=64, output_video=True),
                           tmp_path / "out")
    times = [f["t_capture"] for f in outcome.report["frames"]]
    assert len(times) == 7 and times[1] - times[0] > 0.3
    frames = count_frames(outcome.paths["video"])
    assert frames == int(times[-1] * 30) + 1 == 15  # grid points 0 .. 14/30 s <= 0.492 s
    *_, last = iter_frames(outcome.paths["video"])
    assert last.mean() > 10  # the last result, not the black screen before the first
