"""Anchors placed from pixels (simulator/scenario/anchors.py, `arsim scenario anchor add`):
an existing anchor's centre projected into frames with the forward model
(``Intrinsics.project``) and placed again from those pixels lands back on the centre."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from simulator.app.main import prepare_qt_environment

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
prepare_qt_environment(offscreen=os.environ["QT_QPA_PLATFORM"] == "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PyQt6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402
from PyQt6.QtWidgets import QDialog, QFileDialog, QMessageBox  # noqa: E402

from simulator.app.recordings import ImportDialog  # noqa: E402
from simulator.app.window import MainWindow  # noqa: E402
from simulator.cli import main  # noqa: E402
from simulator.errors import InputError  # noqa: E402
from simulator.scenario.anchors import (  # noqa: E402
    add_anchor,
    anchor_from_depth,
    anchor_from_two_views,
    default_depth,
    undistort_normalised,
)
from simulator.scenario.load import load_scenario  # noqa: E402
from simulator.scenario.synth import synthesize  # noqa: E402
from simulator.types import Distortion, Intrinsics  # noqa: E402


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


# --- the app: clicking the picture, File > Import recording… -------------------------------

WAIT_MS = 20_000


@pytest.fixture
def store(tmp_path: Path) -> QSettings:
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    return QSettings(str(tmp_path / "arsim-gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, store: QSettings) -> MainWindow:
    win = MainWindow(store)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def click_camera_pixel(qtbot, window: MainWindow, view, camera, pixel) -> None:
    """A real mouse click on ``view`` where it shows camera pixel ``pixel``."""
    height, width = view.image().shape[:2]
    pos = view.image_to_widget(pixel[0] * width / camera.width,
                               pixel[1] * height / camera.height)
    assert pos is not None
    QTest.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(round(pos.x()), round(pos.y())))


def shown_frame(qtbot, window: MainWindow, frame: int | None = None) -> int:
    qtbot.waitUntil(lambda: window.shown_count >= 1 and window.input_view.image() is not None
                    and (frame is None or window.current_frame == frame), timeout=WAIT_MS)
    return window.current_frame


def test_view_maps_widget_positions_to_image_pixels(qtbot, window: MainWindow) -> None:
    view = window.input_view
    view.set_image(np.zeros((90, 160, 3), np.uint8))
    qtbot.waitUntil(lambda: view.image_rect() is not None)
    for x, y in ((0.0, 0.0), (12.25, 80.5), (159.0, 89.0)):
        back = view.widget_to_image(view.image_to_widget(x, y))
        assert back == pytest.approx((x, y))
    assert view.widget_to_image(view.image_to_widget(-20, 10)) is None  # off the picture


def test_click_places_an_anchor_at_depth(qtbot, window: MainWindow, scenario_dir: Path) -> None:
    tools = window.recordings
    assert window.open_scenario(scenario_dir, paused=True)
    assert tools.depth_spin.value() == pytest.approx(2.0) and tools.depth_spin.suffix() == " m"
    frame = shown_frame(qtbot, window)
    with load_scenario(scenario_dir) as scenario:
        centre = scenario.anchors[0].position
        pixel, depth = observe(scenario, centre, frame)
        camera = scenario.camera
    tools.place_action.setChecked(True)
    assert window.worker.paused
    tools.depth_spin.setValue(depth)
    with qtbot.waitSignal(tools.placed, timeout=WAIT_MS) as placed:
        click_camera_pixel(qtbot, window, window.input_view, camera, pixel)
    anchor = placed.args[0]
    assert anchor["id"] == "anchor-3"
    assert np.linalg.norm(np.array(anchor["position"]) - centre) < 0.01
    with load_scenario(scenario_dir) as again:
        assert [a.id for a in again.anchors][-1] == "anchor-3"
    assert [a.id for a in window.composer.anchors][-1] == "anchor-3"  # shown at once
    before = window.shown_count
    qtbot.waitUntil(lambda: window.shown_count > before, timeout=WAIT_MS)  # replay restarted
    assert window.current_frame == frame
    # off: clicks do nothing
    tools.place_action.setChecked(False)
    click_camera_pixel(qtbot, window, window.input_view, camera, pixel)
    with load_scenario(scenario_dir) as again:
        assert len(again.anchors) == 3


def test_clicks_on_two_frames_triangulate(qtbot, window: MainWindow, scenario_dir: Path) -> None:
    tools = window.recordings
    assert window.open_scenario(scenario_dir, paused=True)
    shown_frame(qtbot, window, 0)
    with load_scenario(scenario_dir) as scenario:
        centre = scenario.anchors[0].position
        last = scenario.frame_count - 1
        px0, _ = observe(scenario, centre, 0)
        px9, _ = observe(scenario, centre, last)
        camera, last_t = scenario.camera, float(scenario.frame_times[last])
    tools.place_action.setChecked(True)
    tools.mode_combo.setCurrentText("two views")
    click_camera_pixel(qtbot, window, window.phone_view, camera, px0)  # the phone's screen
    assert "now step or seek" in window.statusBar().currentMessage()
    window.seek(last_t)
    shown_frame(qtbot, window, last)
    qtbot.waitUntil(lambda: window.phone_view.image() is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(tools.placed, timeout=WAIT_MS) as placed:
        click_camera_pixel(qtbot, window, window.phone_view, camera, px9)
    assert np.linalg.norm(np.array(placed.args[0]["position"]) - centre) < 0.02


def test_click_on_a_zip_scenario_says_unzip(qtbot, window: MainWindow, scenario_dir: Path,
                                            tmp_path: Path) -> None:
    archive = tmp_path / "orbit.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in scenario_dir.iterdir():
            zf.write(path, path.name)
    tools = window.recordings
    assert window.open_scenario(archive, paused=True)
    shown_frame(qtbot, window)
    tools.place_action.setChecked(True)
    click_camera_pixel(qtbot, window, window.input_view, Intrinsics(160, 90, 1, 1, 80, 45),
                       (80, 45))
    message = window.statusBar().currentMessage()
    assert message.startswith("cannot place anchor:") and "unzip it" in message


def tum_source(scenario_dir: Path, folder: Path) -> Path:
    """The rendered scenario as a TUM trajectory beside its video (the `tum` importer)."""
    folder.mkdir()
    shutil.copy(scenario_dir / "video.mp4", folder / "video.mp4")
    with load_scenario(scenario_dir) as scenario:
        traj, times, cam = scenario.trajectory, scenario.frame_times, scenario.camera
    t0 = traj.times[0]
    (folder / "poses.txt").write_text("".join(
        f"{t - t0:.6f} " + " ".join(f"{v:.9f}" for v in (*p, *q)) + "\n"
        for t, p, q in zip(traj.times, traj.positions, traj.quaternions, strict=True)))
    (folder / "times.txt").write_text("".join(f"{t - t0:.6f}\n" for t in times))
    (folder / "camera.json").write_text(json.dumps(
        {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy, "width": cam.width,
         "height": cam.height, "camera_axes": "opengl"}))
    return folder


def fill_import_dialog(monkeypatch, src: Path, out: Path) -> None:
    """The dialog's own buttons clicked, with the file dialogs answering ``src``, ``out``."""
    answers = iter([str(src), str(out)])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: next(answers)))

    def exec_(dialog: ImportDialog) -> int:
        dialog.folder_button.click()
        assert dialog.out_edit.text().endswith("-scenario")  # proposed beside the source
        dialog.out_button.click()
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ImportDialog, "exec", exec_)


def test_import_recording_opens_the_scenario(qtbot, window: MainWindow, scenario_dir: Path,
                                             tmp_path: Path, monkeypatch) -> None:
    src = tum_source(scenario_dir, tmp_path / "capture")
    out = tmp_path / "imported"
    fill_import_dialog(monkeypatch, src, out)
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    assert window.recordings.import_action in file_menu.actions()
    progress: list[tuple[int, int]] = []
    with qtbot.waitSignal(window.recordings.imported, timeout=WAIT_MS) as done:
        window.recordings.import_action.trigger()
        window.recordings.importer.progress.connect(lambda d, t: progress.append((d, t)))
    assert done.args[0] == str(out)
    assert progress and progress[-1][0] == progress[-1][1]
    assert window.scenario_path == str(out)
    with load_scenario(out) as scenario:
        assert scenario.source["format"] == "tum" and scenario.frame_count == 10
    shown_frame(qtbot, window)
    assert window.recordings.importer is None


def test_import_error_is_one_line_in_a_message_box(qtbot, window: MainWindow, tmp_path: Path,
                                                   monkeypatch) -> None:
    src = tmp_path / "not-a-capture"
    src.mkdir()
    (src / "notes.txt").write_text("hello")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda _parent, _title, text: shown.append(text)))
    fill_import_dialog(monkeypatch, src, tmp_path / "out")
    with qtbot.waitSignal(window.recordings.import_failed, timeout=WAIT_MS) as failed:
        window.recordings.ask_import()
    assert shown == [failed.args[0]]
    assert "not a recording of any known format" in shown[0] and "\n" not in shown[0]
    assert not (tmp_path / "out").exists()
    assert window.scenario_path is None
