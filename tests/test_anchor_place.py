"""Anchors placed from pixels (simulator/scenario/anchors.py, `arsim scenario anchor add`):
an existing anchor's centre projected into frames with the forward model
(``Intrinsics.project``) and placed again from those pixels lands back on the centre."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main
from simulator.errors import InputError
from simulator.scenario.anchors import (
    add_anchor,
    anchor_from_depth,
    anchor_from_two_views,
    default_depth,
    undistort_normalised,
)
from simulator.scenario.load import load_scenario
from simulator.scenario.synth import synthesize
from simulator.types import Distortion, Intrinsics


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("anchors") / "orbit"
    synthesize(out, "orbit", width=160, height=90, fps=10, duration_s=1.0)
    return out


@pytest.fixture
def scenario_dir(rendered: Path, tmp_path: Path) -> Path:
    """A private copy (tests write into scenario.json)."""
    return Path(shutil.copytree(rendered, tmp_path / "orbit"))


def edit_json(folder: Path, **fields) -> None:
    path = folder / "scenario.json"
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data, indent=2))


def observe(scenario, point: np.ndarray, frame: int) -> tuple[tuple[float, float], float]:
    """Pixel and depth (loaded units) of a world point in a frame: the forward model."""
    pose = scenario.pose_at(float(scenario.frame_times[frame]))
    pixels, depth = scenario.camera_at(frame).project(pose, point[None, :])
    return (float(pixels[0, 0]), float(pixels[0, 1])), float(depth[0])


def far_point(scenario, point: np.ndarray, distance: float = 300.0) -> np.ndarray:
    """The point ``distance`` away from frame 0's camera in the direction of ``point``."""
    origin = scenario.pose_at(float(scenario.frame_times[0])).t
    ray = point - origin
    return origin + distance * ray / np.linalg.norm(ray)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_two_views_and_depth_recover_an_anchor(scenario_dir: Path) -> None:
    with load_scenario(scenario_dir) as scenario:
        centre = scenario.anchors[0].position
        last = scenario.frame_count - 1
        px0, depth0 = observe(scenario, centre, 0)
        px9, _ = observe(scenario, centre, last)
        two = anchor_from_two_views(scenario, 0, px0, last, px9)
        one = anchor_from_depth(scenario, 0, px0, depth0)
    assert np.linalg.norm(np.array(two["position"]) - centre) < 0.01  # 1 cm
    assert np.linalg.norm(np.array(one["position"]) - centre) < 1e-6
    assert one["size"] == pytest.approx([0.1 * depth0] * 3)  # default: 10 % of the depth
    written = add_anchor(scenario_dir, two)
    assert written["id"] == "anchor-3"  # two anchors already
    custom = add_anchor(scenario_dir, {**one, "size": [0.2] * 3}, "on-desk")
    assert custom["id"] == "on-desk"
    with load_scenario(scenario_dir) as again:
        ids = [a.id for a in again.anchors]
        assert ids == ["desk-cube", "floor-crate", "anchor-3", "on-desk"]
        np.testing.assert_allclose(again.anchors[3].position, centre, atol=1e-6)
    data = json.loads((scenario_dir / "scenario.json").read_text())
    assert list(data) == ["format", "name", "description", "video", "fps", "camera", "source",
                          "anchors"]  # every other field kept, in its order
    assert not [p for p in scenario_dir.iterdir() if p.name.startswith(".")]  # no temp file
    with pytest.raises(InputError, match="already an anchor"):
        add_anchor(scenario_dir, one, "on-desk")


def test_scaled_poses_write_file_units(scenario_dir: Path) -> None:
    """poses.metric false with scale 0.4: the loader multiplies positions by 0.4; the
    anchor written must be in the file's units (and --depth is too)."""
    factor = 2.5  # file units per metre
    poses = scenario_dir / "poses.txt"
    rows = []
    for line in poses.read_text().splitlines():
        if line.startswith("#"):
            rows.append(line)
            continue
        v = line.split()
        rows.append(" ".join([v[0], *(f"{float(c) * factor:.9f}" for c in v[1:4]), *v[4:]]))
    poses.write_text("\n".join(rows) + "\n")
    data = json.loads((scenario_dir / "scenario.json").read_text())
    for anchor in data["anchors"]:
        anchor["position"] = [c * factor for c in anchor["position"]]
        anchor["size"] = [c * factor for c in anchor["size"]]
    data["format"] = "arsim-scenario/1.1"
    data["poses"] = {"metric": False, "scale": 1 / factor}
    (scenario_dir / "scenario.json").write_text(json.dumps(data, indent=2))
    file_centre = np.array(data["anchors"][0]["position"])
    with load_scenario(scenario_dir) as scenario:
        assert scenario.pose_scale == pytest.approx(0.4)
        metres = scenario.anchors[0].position
        np.testing.assert_allclose(metres * factor, file_centre, atol=1e-6)
        px0, depth_m = observe(scenario, metres, 0)
        px9, _ = observe(scenario, metres, scenario.frame_count - 1)
        two = anchor_from_two_views(scenario, 0, px0, scenario.frame_count - 1, px9)
        one = anchor_from_depth(scenario, 0, px0, depth_m * factor)  # file units
        assert default_depth(scenario) == pytest.approx(2.0 * factor)
    assert np.linalg.norm(np.array(two["position"]) - file_centre) < 0.01 * factor
    np.testing.assert_allclose(one["position"], file_centre, atol=1e-5)
    assert one["size"][0] == pytest.approx(0.1 * depth_m * factor)
    add_anchor(scenario_dir, one)
    with load_scenario(scenario_dir) as again:
        np.testing.assert_allclose(again.anchors[-1].position, metres, atol=1e-5)


@pytest.mark.parametrize("distortion", [
    Distortion("radtan", (-0.28, 0.07, 0.001, -0.0005)),
    Distortion("fisheye", (0.05, -0.01, 0.002, -0.0003)),
])
def test_distorted_pixels_are_undistorted_first(scenario_dir: Path, distortion) -> None:
    data = json.loads((scenario_dir / "scenario.json").read_text())
    data["format"] = "arsim-scenario/1.1"
    data["camera"]["distortion"] = {"model": distortion.model, "coeffs": list(distortion.coeffs)}
    (scenario_dir / "scenario.json").write_text(json.dumps(data, indent=2))
    with load_scenario(scenario_dir) as scenario:
        assert scenario.camera.distortion == distortion
        centre = scenario.anchors[0].position
        px0, depth0 = observe(scenario, centre, 0)
        pinhole = Intrinsics(**{**scenario.camera.__dict__, "distortion": None})
        undistorted = pinhole.project(scenario.pose_at(float(scenario.frame_times[0])),
                                      centre[None])[0][0]
        assert np.hypot(*(np.array(px0) - undistorted)) > 0.5  # the lens moves it
        one = anchor_from_depth(scenario, 0, px0, depth0)
        px9, _ = observe(scenario, centre, scenario.frame_count - 1)
        two = anchor_from_two_views(scenario, 0, px0, scenario.frame_count - 1, px9)
    np.testing.assert_allclose(one["position"], centre, atol=1e-6)
    assert np.linalg.norm(np.array(two["position"]) - centre) < 0.01


def test_undistort_inverts_apply() -> None:
    cam = Intrinsics(640, 480, 500, 500, 320, 240, Distortion("radtan", (-0.3, 0.1, 0, 0, -0.02)))
    for x, y in ((0.0, 0.0), (0.3, -0.2), (-0.5, 0.35)):
        xd, yd = cam.distortion.apply(np.array([x]), np.array([y]))
        u, v = cam.cx + cam.fx * xd[0], cam.cy + cam.fy * yd[0]
        assert undistort_normalised(cam, u, v) == pytest.approx((x, y), abs=1e-9)


def test_refusals(scenario_dir: Path, tmp_path: Path) -> None:
    with load_scenario(scenario_dir) as scenario:
        centre = scenario.anchors[0].position
        px0, _ = observe(scenario, centre, 0)
        # a point 300 units away on frame 0's ray, seen from frame 1 (0.1 m on): the
        # rays meet under a degree apart
        px1, _ = observe(scenario, far_point(scenario, centre), 1)
        with pytest.raises(InputError, match="nearly parallel") as exc:
            anchor_from_two_views(scenario, 0, px0, 1, px1)
        one_line(exc)
        # the same frame twice: parallel
        with pytest.raises(InputError, match="nearly parallel"):
            anchor_from_two_views(scenario, 3, px0, 3, px0)
        # rays that meet behind the cameras: frame 0's ray through the centre, and the
        # last frame's ray whose line passes through a point 6 units behind frame 0's camera
        # (a point behind a camera projects to the pixel whose ray points away from it)
        last = scenario.frame_count - 1
        behind = far_point(scenario, centre, -6.0)
        pb, depth = observe(scenario, behind, last)
        assert depth < 0 and 0 < pb[0] < 160 and 0 < pb[1] < 90
        with pytest.raises(InputError, match="behind the camera") as exc:
            anchor_from_two_views(scenario, 0, px0, last, pb)
        one_line(exc)
        # pixels of different points (30 px off the epipolar line): the rays miss
        p9, _ = observe(scenario, centre, last)
        with pytest.raises(InputError, match="do not show the same point") as exc:
            anchor_from_two_views(scenario, 0, px0, last, (p9[0], p9[1] + 30))
        assert "units apart" in one_line(exc)
        with pytest.raises(InputError, match="no frame 99") as exc:
            anchor_from_depth(scenario, 99, px0, 1.0)
        one_line(exc)
        with pytest.raises(InputError, match="no frame -1"):
            anchor_from_two_views(scenario, 0, px0, -1, px0)
        with pytest.raises(InputError, match="outside the 160x90 image"):
            anchor_from_depth(scenario, 0, (500.0, 10.0), 1.0)
        with pytest.raises(InputError, match="--depth"):
            anchor_from_depth(scenario, 0, px0, -1.0)
        with pytest.raises(InputError, match="--size"):
            anchor_from_depth(scenario, 0, px0, 1.0, size=0.0)
    # a .zip: unzip first
    archive = tmp_path / "orbit.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in scenario_dir.iterdir():
            zf.write(path, path.name)
    with pytest.raises(InputError, match="unzip it") as exc:
        add_anchor(archive, {"position": [0, 0, 0], "size": [1, 1, 1]})
    one_line(exc)


def test_no_poses_refused(scenario_dir: Path) -> None:
    (scenario_dir / "poses.txt").unlink()
    frames = scenario_dir / "frames.csv"
    lines = frames.read_text().splitlines()
    frames.write_text("\n".join([lines[0], *(
        line.rsplit(",", 1)[0] + ",unavailable" for line in lines[1:])]) + "\n")
    edit_json(scenario_dir, format="arsim-scenario/1.1", anchors=[], poses={"available": False})
    with load_scenario(scenario_dir) as scenario:
        assert not scenario.poses_available
        with pytest.raises(InputError, match="no poses") as exc:
            anchor_from_depth(scenario, 0, (80.0, 45.0), 1.0)
        one_line(exc)
    assert main(["scenario", "anchor", "add", str(scenario_dir), "--frame", "0",
                 "--pixel", "80,45", "--depth", "1"]) == 2


# --- the command line ----------------------------------------------------------------------


def test_cli_anchor_add(scenario_dir: Path, capsys) -> None:
    with load_scenario(scenario_dir) as scenario:
        centre = scenario.anchors[0].position
        last = scenario.frame_count - 1
        (u0, v0), depth0 = observe(scenario, centre, 0)
        (u9, v9), _ = observe(scenario, centre, last)
        (uf, vf), _ = observe(scenario, far_point(scenario, centre), 1)
    args = ["scenario", "anchor", "add", str(scenario_dir), "--frame", "0",
            "--pixel", f"{u0!r},{v0!r}"]
    assert main([*args, "--frame2", str(last), "--pixel2", f"{u9!r},{v9!r}"]) == 0
    assert "added anchor 'anchor-3'" in capsys.readouterr().out
    assert main([*args, "--depth", repr(depth0), "--id", "crate-2", "--size", "0.3"]) == 0
    assert "'crate-2'" in capsys.readouterr().out
    with load_scenario(scenario_dir) as again:
        placed = {a.id: a for a in again.anchors}
    assert np.linalg.norm(placed["anchor-3"].position - centre) < 0.01
    np.testing.assert_allclose(placed["crate-2"].position, centre, atol=1e-6)
    np.testing.assert_allclose(placed["crate-2"].size, [0.3] * 3)

    for extra, message in (
        ([], "expected --depth D, or --frame2"),
        (["--depth", "1", "--frame2", "3", "--pixel2", "1,1"], "not both"),
        (["--frame2", "3"], "--pixel2: --frame2 and --pixel2 go together"),
        (["--depth", "1", "--id", "crate-2"], "already an anchor"),
        (["--frame2", "1", "--pixel2", f"{uf},{vf}"], "nearly parallel"),
    ):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (extra, err)
    assert main(["scenario", "anchor", "add", str(scenario_dir), "--frame", "0",
                 "--pixel", "1;2", "--depth", "1"]) == 2
    assert "--pixel: expected a pixel U,V" in capsys.readouterr().err
    assert main(["scenario", "anchor", "add", str(scenario_dir), "--frame", "40",
                 "--pixel", "1,2", "--depth", "1"]) == 2
    assert "--frame: no frame 40" in capsys.readouterr().err
    assert main(["scenario", "anchor", "add", str(scenario_dir.parent / "nope"), "--frame",
                 "0", "--pixel", "1,2", "--depth", "1"]) == 2
    assert "no such scenario folder" in capsys.readouterr().err
