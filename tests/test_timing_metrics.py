"""simulator/metrics/timing.py: rates from timestamps (display and inference intervals), the
stall at the end, background periods and the sample counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from simulator.metrics.timing import Shown, timing_metrics
from simulator.mobile.contract import schema_errors

MINIMAL_DEVICE_REPORT = (Path(__file__).resolve().parents[1] / "mobile" / "test-vectors"
                         / "minimal-device-report.json")


def metrics(
    display_times: Sequence[float],
    *,
    foreground_s: float,
    done: Sequence[float] | None = None,
    background: Sequence[tuple[float, float]] = (),
    after_gap: Sequence[int] = (),
    session_start: float = 0.0,
) -> dict:
    """timing_metrics of results shown at ``display_times`` (captured 50 ms earlier); the
    inferences finish at ``done`` (default: the display times)."""
    shown = [Shown(t, t - 0.05, i in after_gap) for i, t in enumerate(display_times)]
    return timing_metrics(
        shown=shown,
        inference_done_times=list(display_times if done is None else done),
        background=list(background),
        foreground_s=foreground_s,
        camera_fps=30.0,
        display_hz=60.0,
        min_display_fps=15.0,
        dropped_frames=0,
        skipped_frames=0,
        stylized_frames=len(shown),
        session_start=session_start,
    )


@pytest.mark.parametrize(("first", "session_s"), [(0.45, 3.0), (0.2, 3.0), (0.45, 3.3), (0.1, 2.9)])
def test_a_slow_model_reads_its_rate_whatever_the_phase(first: float, session_s: float) -> None:
    # 2.2 results/s: a count over the session reads 2.0 to 2.4 depending on where the results
    # fall (the ar-lite runs: 2.0, 2.0, 2.4); the intervals give 2.2 every time
    times = [first + k / 2.2 for k in range(20) if first + k / 2.2 <= session_s]
    m = metrics(times, foreground_s=session_s)
    assert m["display_fps"] == pytest.approx(2.2, abs=1e-9)
    assert m["inference_fps"] == pytest.approx(2.2, abs=1e-9)
    assert abs(len(times) / session_s - 2.2) > 0.05  # the count-based value was a step off
    n = len(times) - 1
    assert m["samples"] == {"display_intervals": n, "inference_intervals": n,
                            "latencies": len(times)}
    assert m["display_interval_ms"] == m["frame_interval_ms"]
    assert m["display_interval_ms"]["n"] == m["inference_interval_ms"]["n"] == n
    assert m["inference_interval_ms"]["p50"] == pytest.approx(1000 / 2.2)


def test_a_stall_at_the_end_counts_as_one_more_interval() -> None:
    # 30 FPS for 2 s of an 8 s session, then nothing: not a 30 FPS app
    times = [k / 30 for k in range(1, 61)]
    m = metrics(times, foreground_s=8.0)
    stall = 8.0 - times[-1]
    assert m["display_fps"] == pytest.approx(60 / (times[-1] - times[0] + stall))
    assert m["display_fps"] < 8.0
    assert m["samples"]["display_intervals"] == m["display_interval_ms"]["n"] + 1 == 60
    assert m["display_interval_ms"]["p95"] == pytest.approx(1000 / 30)  # percentiles: closed ones
    assert m["inference_fps"] == pytest.approx(30.0)  # between completions, as before


def test_an_open_interval_up_to_the_median_is_not_counted() -> None:
    times = [0.1, 0.3, 0.5, 0.7]
    for session_s in (0.7, 0.85, 0.9):  # 0, 0.15 and 0.2 s after the last result
        m = metrics(times, foreground_s=session_s)
        assert m["display_fps"] == pytest.approx(5.0)
        assert m["samples"]["display_intervals"] == 3
    longer = metrics(times, foreground_s=0.95)  # 0.25 s > the 0.2 s median: a stall
    assert longer["display_fps"] == pytest.approx(4 / 0.85)
    assert longer["samples"]["display_intervals"] == 4


def test_background_time_is_in_no_interval() -> None:
    # foreground 0-2 s, background 2-5 s, foreground 5-8 s (8 s session, 5 s in foreground)
    before = [0.5, 1.0, 1.5]
    after = [5.5, 6.0, 6.5, 7.0, 7.5]
    m = metrics(before + after, foreground_s=5.0, background=[(2.0, 5.0)], after_gap=(3,))
    assert m["display_fps"] == pytest.approx(2.0)  # 0.5 s apart, the gap not counted
    assert m["display_interval_ms"]["n"] == m["inference_interval_ms"]["n"] == 6
    assert m["inference_interval_ms"]["p95"] == pytest.approx(500.0)
    assert m["samples"]["inference_intervals"] == 7  # inference FPS: completions - 1
    assert m["inference_fps"] == pytest.approx(7 / (7.5 - 0.5 - 3.0))
    # nothing shown after 1.5 s: the stall is its foreground time only (0.5 + 3 s)
    stalled = metrics(before, foreground_s=5.0, background=[(2.0, 5.0)])
    assert stalled["display_fps"] == pytest.approx(3 / (1.0 + 3.5))
    assert stalled["samples"]["display_intervals"] == 3


def test_a_session_on_another_clock_gives_the_same_numbers() -> None:
    times = [0.2, 0.4, 0.6, 1.0]
    here = metrics(times, foreground_s=3.0, background=[(1.5, 2.0)])
    offset = 1000.0  # live mode: perf_counter seconds
    there = metrics([offset + t for t in times], foreground_s=3.0, session_start=offset,
                    background=[(offset + 1.5, offset + 2.0)])
    assert there["display_fps"] == pytest.approx(here["display_fps"])
    assert here["samples"] == there["samples"] == {
        "display_intervals": 4, "inference_intervals": 3, "latencies": 4}


def test_without_an_interval_the_rate_is_the_count() -> None:
    assert metrics([], foreground_s=4.0)["display_fps"] == 0.0
    assert metrics([], foreground_s=0.0)["display_fps"] == 0.0
    one = metrics([1.0], foreground_s=4.0)
    assert one["display_fps"] == 0.25 and one["inference_fps"] is None
    assert one["samples"] == {"display_intervals": 0, "inference_intervals": 0, "latencies": 1}
    assert one["display_interval_ms"] == {"p50": None, "p90": None, "p95": None, "p99": None,
                                          "n": 0}
    # two results, the second after a background period: no interval between them
    gap = metrics([1.0, 3.0], foreground_s=4.0, background=[(1.5, 2.5)], after_gap=(1,))
    assert gap["display_fps"] == 0.5 and gap["samples"]["display_intervals"] == 0
    assert gap["inference_interval_ms"]["n"] == 0 and gap["inference_fps"] == pytest.approx(1.0)


def test_report_schema_takes_the_new_fields_and_still_older_reports() -> None:
    older = json.loads(MINIMAL_DEVICE_REPORT.read_text(encoding="utf-8"))
    assert "samples" not in older["metrics"] and schema_errors(older) == []
    m = metrics([0.5, 1.0, 1.5], foreground_s=2.0)
    newer = {**older, "metrics": {**older["metrics"], **m}}
    assert schema_errors(newer) == []
    bad_n = {**m["display_interval_ms"], "n": -1}
    assert schema_errors({**newer, "metrics": {**newer["metrics"], "display_interval_ms": bad_n}})
    bad_samples = {**m["samples"], "latencies": 2.5}
    assert schema_errors({**newer, "metrics": {**newer["metrics"], "samples": bad_samples}})
