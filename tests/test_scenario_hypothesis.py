"""Property tests: whatever the input, the reader loads it or raises InputError — nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scenario_fixtures import make_scenario

from simulator.errors import InputError
from simulator.scenario.load import load_scenario
from simulator.scenario.model import Scenario
from simulator.scenario.poses import Trajectory, parse_tum

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)

# Paths into a valid scenario.json where a random value may land (None: drop the field).
FIELD_PATHS: list[tuple[Any, ...]] = [
    ("format",), ("name",), ("description",), ("video",), ("fps",), ("camera",),
    ("camera", "width"), ("camera", "height"), ("camera", "fx"), ("camera", "fy"),
    ("camera", "cx"), ("camera", "cy"), ("source",), ("source", "recorded"), ("anchors",),
    ("anchors", 0), ("anchors", 0, "id"), ("anchors", 0, "position"),
    ("anchors", 0, "rotation"), ("anchors", 0, "size"), ("anchors", 0, "size", 1),
    ("events",), ("events", 0), ("events", 0, "t"), ("events", 0, "type"),
    ("events", 0, "mb"), ("events", 1, "factor"), ("expect",), ("expect", "max_flicker"),
    ("unexpected",),
]

EVENTS = [
    {"t": 0.1, "type": "memory_pressure", "mb": 50},
    {"t": 0.2, "type": "thermal", "factor": 1.2},
]


@pytest.fixture(scope="module")
def valid_folder(tmp_path_factory) -> Path:
    return make_scenario(tmp_path_factory.mktemp("hyp") / "base", frames=6, events=EVENTS)


def mutate(data: Any, path: tuple[Any, ...], value: Any, drop: bool) -> None:
    """Set (or delete) ``data[path]``; a path through a missing or wrong-typed part is a no-op."""
    target = data
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(target, dict):
        if drop:
            target.pop(last, None)
        else:
            target[last] = value
    elif isinstance(target, list) and isinstance(last, int) and last < len(target):
        if drop:
            del target[last]
        else:
            target[last] = value


def assert_loads_or_input_error(folder: Path) -> Scenario | None:
    try:
        scenario = load_scenario(folder)
    except InputError as err:
        assert str(err) and "\n" not in str(err)
        event("refused")
        return None
    event("loaded")
    scenario.close()
    return scenario


@SETTINGS
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(FIELD_PATHS), json_values, st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_random_scenario_json_mutations(valid_folder: Path, mutations) -> None:
    path = valid_folder / "scenario.json"
    original = path.read_text(encoding="utf-8")
    data = json.loads(original)
    mutated = copy.deepcopy(data)
    for field_path, value, drop in mutations:
        mutate(mutated, field_path, value, drop)
    try:
        path.write_text(json.dumps(mutated), encoding="utf-8")
        scenario = assert_loads_or_input_error(valid_folder)
        if scenario is not None:  # whatever was accepted must be well-formed
            assert scenario.frame_count == 6
            assert 1 <= scenario.fps <= 240
            assert all(np.isfinite(a.position).all() for a in scenario.anchors)
    finally:
        path.write_text(original, encoding="utf-8")


@SETTINGS
@given(text=st.text(max_size=200))
def test_random_scenario_json_text(valid_folder: Path, text: str) -> None:
    path = valid_folder / "scenario.json"
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=r"scenario\.json"):
            load_scenario(valid_folder)
    finally:
        path.write_text(original, encoding="utf-8")


number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 5).map(str),
    st.sampled_from(["0", "1", "-0.5", "1e3", "x", "", "nan", "1_0", "0x10", ".5", "1."]),
)
pose_line = st.one_of(
    st.lists(number_text, min_size=6, max_size=10).map(" ".join),
    st.just("# comment"),
    st.just(""),
    st.text(max_size=30),
)


@SETTINGS
@given(lines=st.lists(pose_line, max_size=8))
def test_random_poses_txt(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "poses.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        trajectory = parse_tum(path)
    except InputError as err:
        assert "poses.txt" in str(err)
        return
    assert isinstance(trajectory, Trajectory)
    assert np.all(np.diff(trajectory.times) > 0)
    assert np.allclose(np.linalg.norm(trajectory.quaternions, axis=1), 1.0)


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(st.floats(0, 1e3), st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10),
                  st.lists(st.floats(-1, 1), min_size=4, max_size=4)),
        min_size=2,
        max_size=8,
    ),
    fraction=st.floats(0, 1),
)
def test_interpolation_of_any_accepted_trajectory(tmp_path: Path, rows, fraction: float) -> None:
    path = tmp_path / "poses.txt"
    path.write_text(
        "\n".join(" ".join(repr(v) for v in (t, x, y, z, *q)) for t, x, y, z, q in rows),
        encoding="utf-8",
    )
    try:
        trajectory = parse_tum(path)
    except InputError:
        return
    t = trajectory.start + fraction * (trajectory.end - trajectory.start)
    pose = trajectory.at(min(max(t, trajectory.start), trajectory.end))
    assert np.isclose(np.linalg.norm(pose.q), 1.0)
    assert np.all(pose.t >= trajectory.positions.min(axis=0) - 1e-9)
    assert np.all(pose.t <= trajectory.positions.max(axis=0) + 1e-9)
