"""TUM trajectory parsing and lerp + slerp interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.errors import InputError
from simulator.scenario.poses import Trajectory, parse_tum, slerp


def quat_about(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    axis_arr = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.array([*(axis_arr * math.sin(angle / 2)), math.cos(angle / 2)])


def random_trajectory(rng: np.random.Generator, n: int = 20) -> Trajectory:
    quats = rng.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    return Trajectory(
        times=np.cumsum(rng.uniform(0.01, 0.2, n)),
        positions=rng.normal(size=(n, 3)),
        quaternions=quats,
    )


def test_interpolation_is_exact_at_sample_times() -> None:
    traj = random_trajectory(np.random.default_rng(1))
    positions, quats = traj.at_many(traj.times)
    assert np.array_equal(positions, traj.positions)
    assert np.array_equal(quats, traj.quaternions)
    last = traj.at(float(traj.times[-1]))
    assert np.array_equal(last.q, traj.quaternions[-1])  # not its negation


def test_position_is_lerped_between_samples() -> None:
    traj = Trajectory(
        times=np.array([1.0, 3.0]),
        positions=np.array([[0.0, 0.0, 0.0], [4.0, -2.0, 8.0]]),
        quaternions=np.array([[0, 0, 0, 1.0], [0, 0, 0, 1.0]]),
    )
    assert np.allclose(traj.at(1.5).t, [1.0, -0.5, 2.0])


def test_slerp_midpoint_is_half_the_angle() -> None:
    q90 = quat_about((0, 0, 1), math.pi / 2)
    mid = slerp(np.array([0, 0, 0, 1.0]), q90, 0.5)
    assert np.allclose(mid, quat_about((0, 0, 1), math.pi / 4))
    quarter = slerp(np.array([0, 0, 0, 1.0]), q90, 0.25)
    assert np.allclose(quarter, quat_about((0, 0, 1), math.pi / 8))


def test_slerp_takes_the_shortest_arc() -> None:
    q0 = np.array([0, 0, 0, 1.0])
    q1 = quat_about((0, 1, 0), math.radians(40))
    mid_near = slerp(q0, q1, 0.5)
    mid_far = slerp(q0, -q1, 0.5)  # -q1 is the same rotation: must give the same midpoint
    assert np.allclose(mid_near, mid_far)
    assert np.allclose(mid_near, quat_about((0, 1, 0), math.radians(20)))


def test_slerp_of_nearly_equal_quaternions_is_stable() -> None:
    q0 = quat_about((1, 0, 0), 0.3)
    q1 = quat_about((1, 0, 0), 0.3 + 1e-9)
    out = slerp(q0, q1, 0.5)
    assert np.all(np.isfinite(out))
    assert np.allclose(out, q0, atol=1e-8)


def test_interpolated_quaternions_have_unit_norm() -> None:
    traj = random_trajectory(np.random.default_rng(2), n=50)
    times = np.linspace(traj.times[0], traj.times[-1], 997)
    _, quats = traj.at_many(times)
    assert np.allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-12)


def test_extrapolation_is_refused() -> None:
    traj = random_trajectory(np.random.default_rng(3), n=3)
    with pytest.raises(ValueError, match="extrapolation"):
        traj.at(float(traj.times[-1]) + 0.01)


def test_parse_tum_reads_rows_and_skips_comments(tmp_path) -> None:
    path = tmp_path / "poses.txt"
    path.write_text(
        "# timestamp tx ty tz qx qy qz qw\n\n"
        "0.0 1 2 3 0 0 0 1\n"
        "  # indented comment\n"
        "0.5 4 5 6 0 0 0 1.0004\n",  # within the 1e-3 tolerance: normalised
        encoding="utf-8",
    )
    traj = parse_tum(path)
    assert traj.times.tolist() == [0.0, 0.5]
    assert traj.positions[1].tolist() == [4.0, 5.0, 6.0]
    assert np.isclose(np.linalg.norm(traj.quaternions[1]), 1.0, atol=1e-15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 0 0 0 0 0 0 1\n1 0 0 0 0 0 1\n", "line 2: expected 8 numbers"),
        ("0 0 0 0 0 0 0 1\n1 0 0 0 0 0 0 1 9\n", "line 2: expected 8 numbers"),
        ("0 0 0 0 0 0 0 1\n1 0 abc 0 0 0 0 1\n", "line 2: ty must be a number"),
        ("0 0 0 0 0 0 0 1\n1 nan 0 0 0 0 0 1\n", "line 2: tx must be a number"),
        ("0 0 0 0 0 0 0 1\n1 1e999 0 0 0 0 0 1\n", "line 2: tx must be finite"),
        ("0 0 0 0 0 0 0 1\n# c\n0.5 0 0 0 0 0 0 1\n0.4 0 0 0 0 0 0 1\n", "line 4: timestamp"),
        ("0 0 0 0 0 0 0 1\n0 0 0 0 0 0 0 1\n", "strictly increasing"),
        ("0 0 0 0 0 0 0 1\n1 0 0 0 0 0 0 1.01\n", "line 2: quaternion qx qy qz qw has norm"),
        ("0 0 0 0 0 0 0 0\n1 0 0 0 0 0 0 1\n", "line 1: quaternion"),
        ("# only one row\n0 0 0 0 0 0 0 1\n", "at least two pose rows, found 1"),
        ("", "at least two pose rows, found 0"),
    ],
)
def test_parse_tum_rejects_bad_rows(tmp_path, text: str, expected: str) -> None:
    path = tmp_path / "poses.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse_tum(path, "walk/poses.txt")
    assert str(err.value).startswith("walk/poses.txt")
    assert expected in str(err.value)


def test_parse_tum_rejects_non_utf8_and_missing_file(tmp_path) -> None:
    path = tmp_path / "poses.txt"
    path.write_bytes(b"0 0 0 0 0 0 0 1\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"poses\.txt: not UTF-8"):
        parse_tum(path)
    with pytest.raises(InputError, match=r"missing\.txt: file not found"):
        parse_tum(tmp_path / "missing.txt")
