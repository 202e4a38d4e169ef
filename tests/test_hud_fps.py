"""The on-screen FPS counter uses report.json's display-FPS definition."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator.pipeline.compose import Compositor
from simulator.run import RunSettings, run_scenario
from simulator.sinks import ShownFrame


class _Discard:
    """A sink that looks at nothing: the screens are composed (the HUD drawn) for it."""

    def send(self, frame: ShownFrame) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("device", ["redmi-note-10", "ipad-pro-m1"])
def test_hud_reads_the_report_fps_on_a_steady_10_fps_camera(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    scenario = make_scenario(tmp_path / "steady", frames=40, width=96, height=64, fps=10.0)
    huds: list[tuple[float, str]] = []
    compose = Compositor.compose

    def spy(self, image, pose, tracking, hud="", **kwargs):
        huds.append(hud)
        return compose(self, image, pose, tracking, hud, **kwargs)

    monkeypatch.setattr(Compositor, "compose", spy)
    report = run_scenario(scenario, RunSettings(device=device, model="ar-lite", input_size=64),
                          tmp_path / "out", sinks=(_Discard(),)).report
    assert report["metrics"]["display_fps"] == pytest.approx(10.0, abs=0.05)
    assert report["metrics"]["displayed_frames"] == 40
    # every picture shown once a full second of results is on screen
    steady = [hud.split(" FPS")[0].strip() for hud in huds[10:]]
    assert steady and set(steady) == {"10.0"}
