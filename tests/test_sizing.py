"""Dynamic input size controller: steps down over budget, back up with headroom, no flapping."""

from __future__ import annotations

import pytest

from simulator.engine.sizing import SizeController, SizeSettings
from simulator.errors import InputError


def latency_at(size: int) -> float:
    """A phone whose model latency grows with the pixel count: 120 ms at 256."""
    return 120.0 * (size / 256) ** 2


def test_steps_down_until_within_budget_and_stays() -> None:
    ctl = SizeController(SizeSettings(sizes=(128, 192, 256), budget_ms=66.7), 256)
    sizes = []
    for i in range(30):
        sizes.append(ctl.observe(i * 0.1, latency_at(ctl.size)))
    assert sizes[-1] == 192 or sizes[-1] == 128
    assert latency_at(sizes[-1]) <= 66.7
    assert len(ctl.changes) <= 2  # hysteresis: no oscillation
    assert all(c["to"] < c["from"] for c in ctl.changes)
    assert ctl.changes[0]["t"] == pytest.approx(0.2)  # patience of 3 inferences


def test_steps_up_when_the_bigger_size_fits() -> None:
    ctl = SizeController(SizeSettings(sizes=(160, 256), budget_ms=66.7), 160)
    fast = {160: 10.0, 256: 10.0 * (256 / 160) ** 2}
    for i in range(10):
        ctl.observe(i * 0.05, fast[ctl.size])
    assert ctl.size == 256
    assert [c["to"] for c in ctl.changes] == [256]


def test_a_single_slow_inference_does_not_switch() -> None:
    ctl = SizeController(SizeSettings(sizes=(160, 256), budget_ms=66.7), 256)
    for i, ms in enumerate([40, 40, 200, 40, 40, 40]):
        ctl.observe(i * 0.05, ms)
    assert ctl.size == 256 and not ctl.changes


def test_fixed_size_without_candidates() -> None:
    ctl = SizeController(SizeSettings(), 256)
    assert [ctl.observe(i, 500.0) for i in range(5)] == [256] * 5


@pytest.mark.parametrize("sizes", [(0, 256), (256, 256)])
def test_bad_sizes_are_input_errors(sizes: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="sizes"):
        SizeController(SizeSettings(sizes=sizes), 256)
