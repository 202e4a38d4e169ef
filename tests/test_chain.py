"""The stage chain (pipeline/chain.py) and the scheduler (engine/scheduler.py): the one
place the stages are built and the one place the scheduling rules live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scenario_fixtures import make_scenario

from simulator.engine.scheduler import Decision, Scheduler
from simulator.pipeline.chain import Chain, scene_pipeline
from simulator.pipeline.compose import Compositor
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.skip import SkipSettings
from simulator.pipeline.smooth import Smoother, SmoothSettings
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.types import Pose
from simulator.zoo.registry import resolve_model


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("chain") / "s", frames=4, width=96, height=64)


def test_process_is_the_stages_back_to_back(scenario: Path) -> None:
    settings = PipelineSettings(smoothing=SmoothSettings(method="ema", alpha=0.5))
    model = resolve_model("toon-classic")
    with load_scenario(scenario) as sc:
        frames = list(sc.frames())
        stylizer = Stylizer(model, 128, 1)
        chain = Chain.for_scenario(settings, sc, model=model, input_size=128,
                                   fit=stylizer.fit, stylizer=stylizer)
        by_hand = Smoother(settings.smoothing, sc.camera)
        compositor = Compositor(sc.camera, sc.anchors)
        for frame in frames:
            processed = chain.process(frame, 96, "hud")
            styled = stylizer.stylize(frame.image, 96)
            smoothed = by_hand.apply(styled, frame.image, frame.pose, frame.tracking)
            assert np.array_equal(processed.stylized.image, styled)
            assert np.array_equal(processed.image, smoothed)
            assert np.array_equal(processed.screen,
                                  compositor.compose(smoothed, frame.pose, frame.tracking, "hud"))
        assert processed.stylized.input_shapes == (stylizer.input_shape(96, 64, 96),)
        assert processed.stylized.measured_ms is None  # in-process: the cost model charges


def test_a_shapes_only_chain_answers_without_a_model_session(scenario: Path) -> None:
    model = resolve_model("toon-classic")
    with load_scenario(scenario) as sc:
        chain = Chain.for_scenario(PipelineSettings(), sc, model=model, input_size=256,
                                   fit="aspect")
    assert not chain.images and chain.input_shape(256) == (312, 208)  # 3:2 at ~256² pixels
    with pytest.raises(AssertionError):
        chain.stylize(np.zeros((64, 96, 3), np.uint8), 256)


def test_scene_depth_reaches_pose_smoothing_and_warp() -> None:
    settings = PipelineSettings()
    assert scene_pipeline(settings, None) is settings
    assert scene_pipeline(settings, 0.7).smoothing.pose_depth_m == 0.7


def _pose(x: float = 0.0) -> Pose:
    return Pose(t=np.array([x, 0.0, 0.0]), q=np.array([0.0, 0.0, 0.0, 1.0]))


def test_latest_frame_wins_and_one_inference_in_flight() -> None:
    sched: Scheduler[int] = Scheduler(PipelineSettings(), 256)
    assert sched.offer(0, None, _pose(), can_reuse=False) is Decision.START
    assert sched.start() == 0 and sched.in_flight == 0
    assert sched.offer(1, None, _pose(), can_reuse=True) is Decision.WAIT
    assert sched.offer(2, None, _pose(), can_reuse=True) is Decision.WAIT  # 1 is dropped
    assert sched.start() is None  # busy
    assert sched.finished(0.1, 100.0) == 0
    assert sched.start() == 2 and sched.start() is None
    sched.clear()
    assert sched.in_flight is None and sched.start() is None


def test_skip_only_with_a_free_model_and_a_result_to_reuse() -> None:
    pipeline = PipelineSettings(skip=SkipSettings(reuse="warp", skip=True, max_age=2))
    sched: Scheduler[int] = Scheduler(pipeline, 256)
    still = np.zeros((18, 32), np.float32)
    assert sched.offer(0, still, _pose(), can_reuse=False) is Decision.START
    sched.start()
    assert sched.offer(1, still, _pose(), can_reuse=True) is Decision.WAIT  # busy: no skip
    sched.finished(0.05, 50.0)
    sched.drop_waiting()
    assert sched.offer(2, still, _pose(), can_reuse=False) is Decision.START  # nothing to reuse
    sched.start()
    sched.finished(0.1, 50.0)
    assert sched.offer(3, still, _pose(), can_reuse=True) is Decision.SKIP
    assert sched.offer(4, still, _pose(0.5), can_reuse=True) is Decision.START  # camera moved
    assert sched.offer(5, still, _pose(), can_reuse=True) is Decision.START  # age 3 > max 2


def test_dynamic_size_steps_down_after_slow_inferences() -> None:
    from simulator.engine.sizing import SizeSettings

    sched: Scheduler[int] = Scheduler(PipelineSettings(sizing=SizeSettings(sizes=(160, 256))),
                                      256)
    for i in range(3):
        sched.offer(i, None, _pose(), can_reuse=False)
        sched.start()
        sched.finished(0.2 * (i + 1), 200.0)
    assert sched.size == 160 and sched.sizes.changes[0]["to"] == 160


def test_the_app_stage_costs_are_what_the_replay_charges(scenario: Path, tmp_path: Path) -> None:
    from simulator.device.catalog import load_profile
    from simulator.engine.costs import device_stage_costs
    from simulator.run import RunSettings, run_scenario

    settings = RunSettings(device="redmi-note-10", model="toon-classic", timing_only=True)
    report = run_scenario(scenario, settings, tmp_path).report
    costs = device_stage_costs(load_profile("redmi-note-10"), "cpu",
                               resolve_model("toon-classic"), 256, None, settings.pipeline,
                               (96, 64))
    first = report["frames"][0]
    assert 1000 * (first["t_infer_start"] - first["t_capture"]) == pytest.approx(
        costs.preprocess)
    assert 1000 * (first["t_infer_end"] - first["t_infer_start"]) == pytest.approx(
        costs.inference, rel=1e-3)  # a cool phone: thermal factor 1 on the first frame
    assert costs.chart()["warp"] == 0.0 and costs.warp > 0  # charged only with warped reuse
