"""The desktop app (pytest-qt, offscreen): the real MainWindow on the real engine."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from simulator.app.main import prepare_qt_environment

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
prepare_qt_environment(offscreen=os.environ["QT_QPA_PLATFORM"] == "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PyQt6.QtCore import QSettings, Qt  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402

from simulator.app.ab_view import DIFFERS  # noqa: E402
from simulator.app.main import run_gui  # noqa: E402
from simulator.app.window import MainWindow  # noqa: E402
from simulator.device.catalog import load_profile  # noqa: E402
from simulator.device.memory import app_budget_mb  # noqa: E402
from simulator.pipeline.settings import PipelineSettings  # noqa: E402
from simulator.scenario.synth import synthesize  # noqa: E402

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("app") / "orbit"
    synthesize(out, "orbit", 3, width=160, height=96, duration_s=2.0)
    return out


@pytest.fixture
def store(tmp_path: Path) -> QSettings:
    """QSettings redirected into the test's own folder."""
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


def _bottom(image: np.ndarray) -> np.ndarray:
    """The lower half of a screen: below the engine's one-line HUD."""
    return image[image.shape[0] // 2 :].astype(np.int16)


def test_play_pause_step_seek(qtbot, window: MainWindow, scenario: Path) -> None:
    assert window.open_scenario(scenario)
    qtbot.waitUntil(lambda: window.shown_count >= 2, timeout=WAIT_MS)
    assert window.phone_view.image() is not None and window.input_view.image() is not None
    assert window.heat_view.image() is not None  # a heat-map from the last two frames
    window.pause()
    qtbot.wait(150)  # a picture already under way may still arrive
    paused_at = window.shown_count
    qtbot.wait(700)
    assert window.shown_count == paused_at  # 700 ms at 1x would be 2 more on this phone

    window.step()
    qtbot.waitUntil(lambda: window.shown_count > paused_at, timeout=WAIT_MS)
    qtbot.wait(300)
    assert window.shown_count == paused_at + 1

    target = float(window.frame_times[40])
    window.seek(target)
    qtbot.waitUntil(lambda: window.shown_count > paused_at + 1, timeout=WAIT_MS)
    assert window.current_frame >= 40  # nothing before the target is shown
    assert window.timeline.value() == window.current_frame


def test_space_and_right_shortcuts(qtbot, window: MainWindow, scenario: Path) -> None:
    window.open_scenario(scenario, paused=True)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.shown_count >= 1, timeout=WAIT_MS)  # paused start: 1 frame
    QTest.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.shown_count >= 2, timeout=WAIT_MS)
    assert window.worker.paused
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert not window.worker.paused
    qtbot.waitUntil(lambda: window.shown_count >= 4, timeout=WAIT_MS)


def test_smoothing_change_reprocesses_the_paused_frame(
    qtbot, window: MainWindow, scenario: Path
) -> None:
    window.open_scenario(scenario)
    qtbot.waitUntil(lambda: window.shown_count >= 2, timeout=WAIT_MS)
    window.pause()
    qtbot.wait(200)
    frame, before = window.current_frame, window.phone_view.image().copy()
    assert frame >= 1
    with qtbot.waitSignal(window.preview.ready, timeout=WAIT_MS) as ready:
        window.settings_panel.method.setCurrentText("ema")  # alpha 0.2: blend with previous
    index, _input, screen, _stylized = ready.args
    assert window.settings_panel.settings().smoothing.method == "ema"
    assert index == frame and screen is not None
    assert np.abs(_bottom(screen) - _bottom(before)).mean() > 0.5
    qtbot.waitUntil(
        lambda: np.abs(_bottom(window.phone_view.image()) - _bottom(before)).mean() > 0.5,
        timeout=WAIT_MS,
    )


def test_device_switch_moves_the_memory_budget_line(window: MainWindow) -> None:
    memory = window.charts.charts["memory"]
    window.set_device("redmi-note-10")
    redmi = memory.budget_line.value()
    assert redmi == pytest.approx(app_budget_mb(load_profile("redmi-note-10")))
    window.set_device("ipad-pro-m1")
    assert memory.budget_line.value() == pytest.approx(
        app_budget_mb(load_profile("ipad-pro-m1"))
    )
    assert memory.budget_line.value() > 1.5 * redmi  # 8 GB against 4 GB of RAM
    assert window.charts.charts["fps"].budget_line.value() == pytest.approx(15.0)


def test_export_report_of_a_running_replay(
    qtbot, window: MainWindow, scenario: Path, tmp_path: Path
) -> None:
    window.open_scenario(scenario)
    qtbot.waitUntil(lambda: window.shown_count >= 2, timeout=WAIT_MS)
    with qtbot.waitSignal(window.exported, timeout=WAIT_MS):
        window.export_report(tmp_path / "export")
    report = json.loads((tmp_path / "export" / "report.json").read_text())
    assert report["schema"] == "arsim-report/1"
    assert report["device"]["id"] == window.run_settings().device
    assert report["complete"] is False  # cut at the current position
    assert len(report["display"]) >= 2
    assert ET.parse(tmp_path / "export" / "junit.xml").getroot().tag in ("testsuites", "testsuite")
    assert "<html" in (tmp_path / "export" / "report.html").read_text()[:500].lower()


def test_settings_files_and_remembered_choices(
    qtbot, store: QSettings, tmp_path: Path
) -> None:
    first = MainWindow(store)
    qtbot.addWidget(first)
    first.set_device("iphone-se-2020")
    wanted = PipelineSettings()
    wanted = replace(wanted, smoothing=replace(wanted.smoothing, method="pose", alpha=0.35))
    first.set_pipeline(wanted)
    first.save_settings_file(tmp_path / "s.json")
    first.close()
    assert json.loads((tmp_path / "s.json").read_text())["smoothing"]["method"] == "pose"

    second = MainWindow(store)
    qtbot.addWidget(second)
    assert second.run_settings().device == "iphone-se-2020"  # remembered (QSettings)
    assert second.settings_panel.settings() == PipelineSettings()
    assert second.load_settings_file(tmp_path / "s.json")
    assert second.settings_panel.method.currentText() == "pose"
    assert second.run_settings().pipeline.smoothing.alpha == pytest.approx(0.35)
    second.close()


def test_screenshot_writes_a_png(qapp, store: QSettings, scenario: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    assert run_gui(str(scenario), screenshot=shot, frames=4) == 0
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 500


def test_screenshot_of_a_bad_scenario_is_exit_2(qapp, store: QSettings, tmp_path: Path) -> None:
    assert run_gui(str(tmp_path / "missing"), screenshot=tmp_path / "x.png") == 2
    assert not (tmp_path / "x.png").exists()


def _magenta(image: np.ndarray) -> int:
    """Pixels close to the Compositor's anchor colour (255, 64, 160)."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g < 110) & (b > 120) & (b < 200)).sum())


def test_overlay_toggles_recompose_the_paused_frame(
    qtbot, window: MainWindow, scenario: Path
) -> None:
    window.open_scenario(scenario)
    qtbot.waitUntil(lambda: window.shown_count >= 2, timeout=WAIT_MS)
    window.pause()
    qtbot.wait(200)
    shown = window.shown_count
    engine = window.phone_view.image().copy()
    assert _magenta(engine) > 0  # the engine's anchors
    window.set_overlays(axes=True)
    axes = window.phone_view.image()
    assert window.shown_count == shown  # re-composed at once, not a new engine frame
    assert np.abs(axes.astype(int) - engine.astype(int)).sum() > 0
    window.set_overlays(axes=False, minimap=True)
    mapped = window.phone_view.image()
    h, w = mapped.shape[:2]
    side = round(min(w, h) * 0.3)
    diff = np.abs(mapped.astype(int) - engine.astype(int)).sum(axis=2) > 0
    assert diff[6:side, w - side : w - 6].mean() > 0.5  # the mini-map, top right
    assert not diff[side + 8 :, : w - side - 8].any()  # nothing else moved
    window.anchors_action.trigger()  # View ▸ Anchors off
    assert not window.overlays.anchors
    assert _magenta(window.phone_view.image()) == 0  # off the picture and off the map
    window.set_overlays(anchors=True, minimap=False)
    assert np.array_equal(window.phone_view.image(), engine)  # back to the engine's look
    window.set_overlays(anchors=False)
    window.play()  # the running replay follows the toggles
    qtbot.waitUntil(lambda: window.shown_count >= shown + 2, timeout=WAIT_MS)
    assert _magenta(window.phone_view.image()) == 0


class RecordingTestCam:
    """Test backend for pyvirtualcam's registry: keeps what it is sent (no device)."""

    frames: ClassVar[list[np.ndarray]] = []

    def __init__(self, *, width: int, height: int, **kw: object) -> None:
        self.width, self.height = width, height
        RecordingTestCam.frames = []

    def send(self, frame: np.ndarray) -> None:
        RecordingTestCam.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self) -> None:
        pass

    def device(self) -> str:
        return "test://gui"

    def native_fourcc(self) -> int | None:
        return None


class UnavailableTestCam:
    def __init__(self, **kw: object) -> None:
        raise RuntimeError("no virtual camera device found")


@pytest.fixture
def test_cams():
    import pyvirtualcam

    pyvirtualcam.register_backend("arsim-gui-test", RecordingTestCam)
    pyvirtualcam.register_backend("arsim-gui-none", UnavailableTestCam)
    yield
    for name in ("arsim-gui-test", "arsim-gui-none"):
        pyvirtualcam.camera.BACKENDS.pop(name, None)


def test_virtual_webcam_gets_every_phone_frame(
    qtbot, window: MainWindow, scenario: Path, test_cams: None
) -> None:
    window.vcam_backend = "arsim-gui-none"
    window.vcam_action.trigger()
    assert window.vcam is None and not window.vcam_action.isChecked()
    message = window.statusBar().currentMessage()
    assert "virtual camera unavailable" in message and "\n" not in message

    window.vcam_backend = "arsim-gui-test"
    window.vcam_action.trigger()
    assert window.vcam is not None and window.vcam_action.isChecked()
    assert "test://gui" in window.statusBar().currentMessage()
    window.set_overlays(minimap=True)
    window.open_scenario(scenario)
    qtbot.waitUntil(lambda: len(RecordingTestCam.frames) >= 3, timeout=WAIT_MS)
    frame = RecordingTestCam.frames[-1]
    assert frame.shape == (720, 1280, 3) and frame.max() > 0  # letterboxed phone screen
    window.vcam_action.trigger()
    assert window.vcam is None


def test_live_mode_feeds_the_phone_view_and_stops(
    qtbot, window: MainWindow, scenario: Path
) -> None:
    window.open_scenario(scenario, paused=True)
    window.start_live(str(scenario))  # the scenario looped as a camera
    assert window.live is not None and window.live_action.isChecked()
    assert window.worker.paused  # the replay waits meanwhile
    qtbot.waitUntil(lambda: window.live_frames >= 3, timeout=WAIT_MS)
    qtbot.wait(1000)
    assert window.live_frames >= 6  # frames keep arriving on the wall clock
    screen = window.phone_view.image()
    assert screen is not None and screen.shape[:2] == (96, 160) and screen.max() > 0
    assert window.charts.charts["fps"].value is not None
    assert window.charts.charts["latency"].value is not None
    worker = window.live
    window.stop_live()
    assert window.live is None and not window.live_action.isChecked()
    qtbot.waitUntil(lambda: worker not in window._live_workers, timeout=WAIT_MS)
    assert "live ended (stopped)" in window.statusBar().currentMessage()
    frames = window.live_frames
    qtbot.wait(300)
    assert window.live_frames == frames


def test_live_camera_without_poses_reports_the_error(qtbot, window: MainWindow) -> None:
    wanted = PipelineSettings()
    window.set_pipeline(replace(wanted, smoothing=replace(wanted.smoothing, method="pose")))
    window.start_live(0)  # pose smoothing needs poses: refused before opening the camera
    qtbot.waitUntil(lambda: window.live is None, timeout=WAIT_MS)
    assert "live failed" in window.statusBar().currentMessage()
    assert not window.live_action.isChecked()


def test_stage_chart_follows_device_and_settings(window: MainWindow) -> None:
    stages = window.charts.stages
    window.set_device("redmi-note-10")
    slow = stages.height_of("inference")
    assert slow > 0 and stages.height_of("preprocess") > 0
    assert stages.height_of("warp") == 0.0  # no warp reuse by default
    window.set_device("ipad-pro-m1")
    assert 0 < stages.height_of("inference") < slow  # the faster phone
    wanted = PipelineSettings()
    smooth_none = stages.height_of("smoothing")
    window.set_pipeline(replace(wanted, smoothing=replace(wanted.smoothing, method="flow"),
                                skip=replace(wanted.skip, reuse="warp")))
    assert stages.height_of("smoothing") > smooth_none
    assert stages.height_of("warp") > 0


def test_real_throttling_action_runs_the_model_in_a_confined_worker(leftovers,
    qtbot, window: MainWindow, scenario: Path
) -> None:
    from simulator.device import throttle

    window.model_combo.setCurrentIndex(window.model_combo.findData("ar-lite"))
    window.open_scenario(scenario)
    qtbot.waitUntil(lambda: window.shown_count >= 1, timeout=WAIT_MS)
    assert window.run_settings().throttle is False
    with qtbot.waitSignal(window.run_finished, timeout=90_000) as finished:
        window.throttle_action.trigger()  # on: the replay restarts with a worker
        assert window.run_settings().throttle is True
    report = finished.args[0].report
    assert report["settings"]["throttle"] is True
    assert report["throttle"]["mechanism"] in throttle.MECHANISMS
    assert not leftovers.new()


def test_preview_runs_the_engine_chain_at_the_replay_start_size(scenario: Path) -> None:
    """The paused-frame preview is the engine's chain: with dynamic sizes it stylizes at
    the size the replay starts at (the largest candidate not above the input size)."""
    from itertools import islice

    from simulator.app.worker import PreviewRequest, PreviewWorker
    from simulator.engine.sizing import SizeSettings
    from simulator.pipeline.stylize import Stylizer
    from simulator.run import RunSettings
    from simulator.scenario.load import load_scenario
    from simulator.zoo.registry import resolve_model

    pipeline = PipelineSettings(sizing=SizeSettings(sizes=(96, 160)))
    settings = RunSettings(model="toon-classic", input_size=256, pipeline=pipeline)
    worker = PreviewWorker()
    got: list[tuple] = []
    worker.ready.connect(lambda *args: got.append(args))  # same thread: a direct call
    worker._process(PreviewRequest(str(scenario), 3, settings), True)
    index, _input, screen, image = got[-1]
    with load_scenario(scenario) as sc:
        frame = next(iter(islice(sc.frames(), 3, 4)))
    stylizer = Stylizer(resolve_model("toon-classic"), 256, 2)
    assert index == 3 and screen is not None
    assert np.array_equal(image, stylizer.stylize(frame.image, 160))
    assert not np.array_equal(image, stylizer.stylize(frame.image, 256))


def test_ab_view_compares_pinned_settings_with_the_current_ones(
    qtbot, window: MainWindow, scenario: Path
) -> None:
    """Compare ▸ Pin settings as A, change the smoothing, Compare A/B: two real replays,
    the split view on synchronized screens, both flicker curves, the differences marked."""
    from simulator.pipeline.smooth import SmoothSettings

    assert not window.ab.compare()  # nothing pinned, no scenario: a status message
    window.open_scenario(scenario, paused=True)
    window.ab.pin()
    window.set_pipeline(PipelineSettings(smoothing=SmoothSettings(method="ema", alpha=0.3)))
    with qtbot.waitSignal(window.ab.compared, timeout=120_000) as done:
        assert window.ab.compare()
    result = done.args[0]
    view = window.ab.view
    assert result.html.is_file() and len(result.frames) >= 2
    assert view.view._images is not None and view.frame_slider.maximum() == len(result.frames) - 1
    assert len(view.chart.getPlotItem().listDataItems()) == 2  # a flicker curve per run
    labels = [view.table.item(r, 0).text() for r in range(view.table.rowCount())]
    flicker_row = labels.index("flicker (warp error)")
    assert view.table.item(flicker_row, 0).background().color() == DIFFERS
    a_flicker, b_flicker = (row for row in result.comparison["rows"]
                            if row["key"] == "metrics.flicker.warp_error").__next__()["values"]
    assert b_flicker < a_flicker
    differing = [k for k, f in enumerate(result.frames) if not np.array_equal(*f.screens)]
    view.frame_slider.setValue(differing[-1])
    shots = []
    for split in (0.0, 1.0):  # all B, all A
        view.view.set_split(split)
        image = view.view.grab().toImage()
        shots.append(bytes(image.constBits().asarray(image.sizeInBytes())))
    assert shots[0] != shots[1]
