"""Frame-skip policy: skip only small changes, never beyond the maximum reuse age."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.errors import InputError
from simulator.pipeline.skip import SkipPolicy, SkipSettings, pose_delta, thumbnail
from simulator.types import Pose


def pose(x: float = 0.0, yaw_deg: float = 0.0) -> Pose:
    half = math.radians(yaw_deg) / 2
    return Pose(t=np.array([x, 0.0, 0.0]), q=np.array([0.0, math.sin(half), 0.0, math.cos(half)]))


def frame(level: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, (90, 160, 3), dtype=np.uint8)
    return np.clip(base.astype(int) + level, 0, 255).astype(np.uint8)


def test_pose_delta() -> None:
    angle, shift = pose_delta(pose(0.0, 0.0), pose(0.1, 10.0))
    assert angle == pytest.approx(10.0) and shift == pytest.approx(0.1)


def test_skips_still_frames_but_not_changes() -> None:
    policy = SkipPolicy(SkipSettings(reuse="warp", skip=True, max_age=10))
    policy.stylized(thumbnail(frame(0)), pose())
    policy.new_frame()
    assert policy.should_skip(thumbnail(frame(1)), pose())  # sensor noise level
    assert not policy.should_skip(thumbnail(frame(40)), pose())  # lighting change
    assert not policy.should_skip(thumbnail(frame(0)), pose(yaw_deg=5))  # camera turned
    assert not policy.should_skip(thumbnail(frame(0)), pose(x=0.1))  # camera moved


def test_max_age_forces_a_fresh_result() -> None:
    policy = SkipPolicy(SkipSettings(reuse="warp", skip=True, max_age=3))
    policy.stylized(None, pose())
    decisions = []
    for _ in range(5):
        policy.new_frame()
        decisions.append(policy.should_skip(None, pose()))
    assert decisions == [True, True, True, False, False]


def test_skip_off_never_skips() -> None:
    policy = SkipPolicy(SkipSettings(reuse="warp"))
    policy.stylized(None, pose())
    policy.new_frame()
    assert not policy.should_skip(None, pose())


@pytest.mark.parametrize(
    "settings",
    [SkipSettings(reuse="blend"), SkipSettings(skip=True), SkipSettings(max_age=0),
     SkipSettings(reuse="warp", diff_threshold=-1.0)],
)
def test_bad_settings_are_input_errors(settings: SkipSettings) -> None:
    with pytest.raises(InputError, match="skip"):
        SkipPolicy(settings)
