"""One Euro filter against its definition (Casiez et al. 2012)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simulator.errors import InputError
from simulator.pipeline.one_euro import OneEuroFilter, smoothing_factor

DT = 1 / 30


def test_smoothing_factor() -> None:
    r = 2 * math.pi * 1.0 * DT
    assert smoothing_factor(DT, 1.0) == pytest.approx(r / (r + 1))
    assert smoothing_factor(DT, 1e9) == pytest.approx(1.0)


def test_constant_stays_constant() -> None:
    scalar = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    vector = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    for i in range(50):
        assert scalar.filter(i * DT, 3.25) == 3.25
        np.testing.assert_array_equal(vector.filter(i * DT, np.array([1.0, -2.0])), [1.0, -2.0])
    assert isinstance(scalar.filter(50 * DT, 3.25), float)


@pytest.mark.parametrize("beta", [0.0, 0.3])
def test_first_step_uses_the_definition(beta: float) -> None:
    f = OneEuroFilter(min_cutoff=1.0, beta=beta, d_cutoff=1.0)
    assert f.filter(0.0, 0.0) == 0.0  # the first sample passes through
    out = f.filter(DT, 10.0)
    speed = smoothing_factor(DT, 1.0) * (10.0 / DT)  # filtered derivative, from 0
    alpha = smoothing_factor(DT, 1.0 + beta * speed)
    assert out == pytest.approx(alpha * 10.0)
    assert f.velocity == pytest.approx(speed)
    assert 0.0 < out < 10.0  # a step is smoothed


def test_step_converges_to_the_new_level() -> None:
    f = OneEuroFilter(min_cutoff=1.0)
    values = [f.filter(i * DT, 0.0 if i == 0 else 1.0) for i in range(120)]
    assert all(a <= b for a, b in itertools.pairwise(values))  # no overshoot
    assert values[-1] == pytest.approx(1.0, abs=1e-3)


def test_higher_beta_follows_a_ramp_faster() -> None:
    lag = {}
    for beta in (0.0, 0.01, 0.1):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        for i in range(60):
            out = f.filter(i * DT, 100.0 * i * DT)  # 100 units per second
        lag[beta] = 100.0 * 59 * DT - out
    assert lag[0.0] > lag[0.01] > lag[0.1] > 0


def test_vector_elements_are_filtered_independently() -> None:
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(40, 3)) * [1.0, 10.0, 100.0]
    vector = OneEuroFilter(min_cutoff=0.5, beta=0.2)
    scalars = [OneEuroFilter(min_cutoff=0.5, beta=0.2) for _ in range(3)]
    for i, x in enumerate(samples):
        out = vector.filter(i * DT, x)
        expected = [s.filter(i * DT, float(v)) for s, v in zip(scalars, x, strict=True)]
        np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_reset_and_time_order() -> None:
    f = OneEuroFilter()
    f.filter(0.0, 0.0)
    smoothed = f.filter(DT, 5.0)
    assert f.filter(DT, 100.0) == smoothed  # not later than the previous sample: ignored
    f.reset()
    assert f.value is None
    assert f.filter(2 * DT, 7.0) == 7.0


def test_shape_change_and_bad_parameters() -> None:
    f = OneEuroFilter()
    f.filter(0.0, np.zeros(2))
    with pytest.raises(InputError):
        f.filter(DT, np.zeros(3))
    for kwargs in ({"min_cutoff": 0.0}, {"beta": -1.0}, {"d_cutoff": math.nan}):
        with pytest.raises(InputError):
            OneEuroFilter(**kwargs)
