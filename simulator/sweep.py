"""Settings sweep: the bundled scenarios through a grid of pipeline settings, one table.

Each row is a full replay (the same engine as ``arsim run``) plus the host cost the
setting adds per 1280x720 frame (smoother and re-projection, timed on this machine).
Deltas are against the first row of the same group on the same scenario.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from simulator.engine.sizing import SizeSettings
from simulator.output_paths import prepare_output_dir, writing
from simulator.pipeline.chain import Chain
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.skip import SkipSettings
from simulator.pipeline.smooth import SmoothSettings
from simulator.pipeline.stylize import Stylizer
from simulator.report.json_report import write_atomic
from simulator.run import RunSettings, run_scenario
from simulator.scenario.load import load_scenario
from simulator.types import Frame, Intrinsics
from simulator.work_cache import WorkCache
from simulator.zoo.registry import resolve_model

HD = (1280, 720)


@dataclass(frozen=True)
class Variant:
    group: str  # rows are compared with the first row of their group
    label: str
    settings: RunSettings


def default_grid() -> list[Variant]:
    """Smoothing on a model that keeps up with the camera (every frame stylized); reuse and
    dynamic size for AnimeGANv2's cost on the Redmi Note 10's CPU; frame skip with AR-lite."""
    toon = RunSettings(device="redmi-note-10", backend="cpu", model="toon-classic")

    def smooth(method: str, alpha: float, colour: str = "none") -> RunSettings:
        return replace(toon, pipeline=PipelineSettings(
            smoothing=SmoothSettings(method=method, alpha=alpha, colour=colour)))

    gen = RunSettings(device="redmi-note-10", backend="cpu", model="animeganv2-arch")
    lite = RunSettings(device="redmi-note-10", backend="cpu", model="ar-lite")
    warp = SkipSettings(reuse="warp")
    sizes = SizeSettings(sizes=(160, 256))
    return [
        Variant("smoothing", "none", toon),
        Variant("smoothing", "ema a=0.5", smooth("ema", 0.5)),
        Variant("smoothing", "pose a=0.2", smooth("pose", 0.2)),
        Variant("smoothing", "flow a=0.2", smooth("flow", 0.2)),
        Variant("smoothing", "flow a=0.2 + stats", smooth("flow", 0.2, "stats")),
        Variant("reuse", "animeganv2-arch plain", gen),
        Variant("reuse", "repeat", replace(gen, pipeline=PipelineSettings(
            skip=SkipSettings(reuse="repeat")))),
        Variant("reuse", "warp", replace(gen, pipeline=PipelineSettings(skip=warp))),
        Variant("reuse", "warp + sizes 160,256", replace(gen, pipeline=PipelineSettings(
            skip=warp, sizing=sizes))),
        Variant("reuse", "warp + sizes + pose smoothing", replace(gen, pipeline=PipelineSettings(
            skip=warp, sizing=sizes, smoothing=SmoothSettings(method="pose")))),
        # skipping needs a free worker: a model faster than the camera
        Variant("skip", "ar-lite warp", replace(lite, pipeline=PipelineSettings(skip=warp))),
        Variant("skip", "ar-lite warp + skip", replace(lite, pipeline=PipelineSettings(
            skip=replace(warp, skip=True)))),
    ]


@dataclass(frozen=True)
class HostSamples:
    """A scenario's first frames upscaled to 720p, their stylization, the 720p camera."""

    frames: list[Frame]
    outputs: list[np.ndarray]
    camera: Intrinsics
    stylizer: Stylizer


def added_host_ms(pipeline: PipelineSettings, samples: HostSamples) -> float:
    """Median host ms per 1280x720 frame of the setting's extra stages (the chain's smoother,
    and its re-projection of a reused result)."""
    smoothing = pipeline.smoothing
    active = smoothing.method != "none" or smoothing.colour != "none"
    if not active and pipeline.skip.reuse != "warp":
        return 0.0
    stylizer = samples.stylizer
    chain = Chain(pipeline, model=stylizer.model, input_size=stylizer.input_size,
                  fit=stylizer.fit, camera=samples.camera, stylizer=stylizer)
    times = []
    previous: Frame | None = None
    for frame, out in zip(samples.frames, samples.outputs, strict=True):
        started = time.perf_counter()
        if active:
            out = chain.smooth(out, frame)
        if pipeline.skip.reuse == "warp" and previous is not None:
            chain.reproject(out, previous.pose, frame.pose)
        times.append(time.perf_counter() - started)
        previous = frame
    return 1000.0 * statistics.median(times[1:])


def _hd_samples(scenario_path: Path, count: int) -> HostSamples:
    """``count`` frames of a scenario upscaled to 720p, their toon-classic stylization,
    the matching camera."""
    with load_scenario(scenario_path) as sc:
        frames = [
            replace(frame, image=cv2.resize(frame.image, HD, interpolation=cv2.INTER_LINEAR))
            for frame, _ in zip(sc.frames(), range(count), strict=False)
        ]
        c = sc.camera
        sx, sy = HD[0] / c.width, HD[1] / c.height
        camera = Intrinsics(HD[0], HD[1], c.fx * sx, c.fy * sy, c.cx * sx, c.cy * sy)
    stylizer = Stylizer(resolve_model("toon-classic"), 256, threads=2)
    return HostSamples(frames, [stylizer.stylize(f.image) for f in frames], camera, stylizer)


def run_sweep(
    scenarios: Sequence[Path],
    grid: Sequence[Variant],
    progress: Callable[[str], None] = print,
    rows: list[dict] | None = None,
    cache: WorkCache | None = None,
) -> list[dict]:
    """One row per (scenario, variant), appended to ``rows`` (a new list by default) as each
    run ends, so a caller interrupted mid-sweep still holds the finished ones; with ``cache``
    the variants of a model reuse its outputs (smoothing variants stylize nothing twice)."""
    rows = [] if rows is None else rows
    for scenario in scenarios:
        hd = _hd_samples(scenario, 12)
        baseline: dict[str, dict] = {}
        for variant in grid:
            progress(f"sweep: {scenario.name} / {variant.label}")
            with tempfile.TemporaryDirectory() as out:
                outcome = run_scenario(scenario, variant.settings, Path(out), cache=cache)
            outcome.raise_if_interrupted()  # a partial run is no row
            report = outcome.report
            m = report["metrics"]
            row = {
                "scenario": scenario.name,
                "group": variant.group,
                "setting": variant.label,
                "device": f"{report['device']['id']} {report['backend']}",
                "model": report["model"]["name"],
                "display_fps": m["display_fps"],
                "inference_fps": m["inference_fps"],
                "latency_p95_ms": m["latency_ms"]["p95"],
                "content_age_p50_ms": m["content_age_ms"]["p50"],
                "warp_error": m["flicker"]["warp_error"],
                "ghosting_ssim": m["flicker"]["ghosting_ssim"],
                "reused": m["reused_frames"],
                "skipped": m["skipped_frames"],
                "resized": m["resized_inferences"],
                "host_ms_720p": added_host_ms(variant.settings.pipeline, hd),
                "passed": report["verdict"]["passed"],
            }
            base = baseline.setdefault(variant.group, row)
            row["warp_error_change_pct"] = (
                100.0 * (row["warp_error"] / base["warp_error"] - 1.0)
                if row["warp_error"] is not None and base["warp_error"] else None
            )
            rows.append(row)
    return rows


def _cell(value: object, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_markdown(rows: Sequence[dict]) -> str:
    head = ("| scenario | setting | display FPS | latency p95 ms | content age p50 ms "
            "| warp error | vs first | ghosting SSIM | reused / skipped / resized "
            "| host ms @720p | verdict |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        change = r["warp_error_change_pct"]
        lines.append(
            f"| {r['scenario']} | {r['setting']} | {_cell(r['display_fps'], 1)} "
            f"| {_cell(r['latency_p95_ms'], 1)} | {_cell(r['content_age_p50_ms'], 0)} "
            f"| {_cell(r['warp_error'], 5)} | {'–' if change is None else f'{change:+.0f} %'} "
            f"| {_cell(r['ghosting_ssim'], 3)} | {r['reused']} / {r['skipped']} / {r['resized']} "
            f"| {_cell(r['host_ms_720p'], 2)} | {_cell(r['passed'])} |"
        )
    return "\n".join(lines) + "\n"


def write_sweep(rows: Sequence[dict], out_dir: Path,
                incomplete_reason: str | None = None) -> tuple[Path, Path]:
    """``sweep.json`` (``{"complete", "incomplete_reason", "rows"}``) and ``sweep.md``; an
    interrupted sweep writes the rows it finished, marked incomplete."""
    prepare_output_dir(out_dir)
    json_path, md_path = out_dir / "sweep.json", out_dir / "sweep.md"
    data = {"complete": incomplete_reason is None, "incomplete_reason": incomplete_reason,
            "rows": list(rows)}
    note = "" if incomplete_reason is None else (
        f"**Incomplete**: {incomplete_reason} after {len(rows)} runs.\n\n")
    for path, text in ((json_path, json.dumps(data, indent=2) + "\n"),
                       (md_path, note + format_markdown(rows))):
        with writing(path):  # a full disk: one line, exit 4
            write_atomic(path, text.encode())
    return json_path, md_path
