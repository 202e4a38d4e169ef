"""``arsim calibrate``: fit a device profile's measured numbers to device reports.

Input: ``report.json`` files (schema ``arsim-report/1``, usually ``"target": "android"`` or
``"ios"``, see mobile/CONTRACT.md) of one device. Per backend the inference latency of each
report (median of ``t_infer_end - t_infer_start`` over the stylized frames, divided by the
thermal factor at that frame when the report has one; else ``metrics.inference_ms.p50``; else
``1000 / metrics.inference_fps``) is fitted to the cost model

    latency_ms = overhead_ms + FLOPs / throughput [+ input pixels x input_ns_per_px]

by least squares in relative terms, with a stray run left out (``_weighted_fit``), when the
reports hold >= 2 distinct FLOP counts (models or input sizes); the pixel term only where two
models at two sizes can tell it from the FLOPs. With one FLOP count the profile's overhead is
kept and only the throughput is fitted.
The throughput is stored as its seed-FPS equivalent (the profile derives throughput from
``seed_fps`` and ``overhead_ms``): ``seed_fps = 1000 / (overhead_ms + 52.6 GFLOPs / throughput)``.
The app base memory is each report's ``metrics.memory_peak_mb`` minus the modelled weights,
activations, buffers and input tensor (docs/device-model.md), averaged; it is stored as the
``memory.seed_memory_mb`` that derives it back. Every changed number gets the source
``measured: arsim calibrate from <report files> (<date>)``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from simulator.device.catalog import load_profile
from simulator.device.memory import derived_app_base_mb, model_and_buffers_mb
from simulator.device.profile import REFERENCE_MODEL, DeviceProfile
from simulator.errors import InputError
from simulator.report.reader import load_report

TIMINGS = ("model", "cycle")

_LINE_RE = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)\{.*\}\s*$")
_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*$")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def cycle_ms(report: Mapping, where: str) -> tuple[float, str]:
    """A report's per-inference cycle (ms): the mean interval between consecutive inference
    completions (none across a background period: one ending at the first picture after one).
    On a target whose stages run one after another on one thread (the web page) this is what
    one more inference costs, pre- and post-processing included. The mean, not the median:
    display FPS is 1 / the mean display interval, and a slow model's occasional long cycle
    (a collection, a busy host) lowers it; a median-fitted cycle predicted 2-3 % too fast."""
    frames = report.get("frames")
    size = report["input_size"]
    ends = sorted(
        frame["t_infer_end"] for frame in (frames if isinstance(frames, list) else [])
        if isinstance(frame, Mapping) and frame.get("stylized")
        and _number(frame.get("t_infer_end")) and frame.get("input_size", size) == size)
    display = report.get("display")
    resumed = [d["t"] for d in (display if isinstance(display, list) else [])
               if isinstance(d, Mapping) and d.get("after_gap") and _number(d.get("t"))]
    intervals = [1000.0 * (b - a) for a, b in pairwise(ends)
                 if b > a and not any(a < t <= b for t in resumed)]
    if not intervals:
        raise InputError(where, "--timing cycle needs frames[].t_infer_end of at least two"
                         " stylized frames")
    return statistics.fmean(intervals), f"mean of {len(intervals)} completion intervals"


def inference_latency_ms(report: Mapping, where: str) -> tuple[float, str]:
    """A report's cool-device inference latency (ms) and how it was obtained."""
    frames = report.get("frames")
    thermal = (report.get("series") or {}).get("thermal_factor") if isinstance(
        report.get("series"), Mapping) else None
    samples = []
    if isinstance(frames, list):
        for frame in frames:
            if not isinstance(frame, Mapping) or not frame.get("stylized"):
                continue
            start, end = frame.get("t_infer_start"), frame.get("t_infer_end")
            size = frame.get("input_size", report["input_size"])
            timed = _number(start) and _number(end) and end > start
            if not timed or size != report["input_size"]:
                continue
            factor = 1.0
            index = frame.get("index")
            if isinstance(thermal, list) and isinstance(index, int) and 0 <= index < len(thermal):
                factor = thermal[index] if _number(thermal[index]) and thermal[index] >= 1 else 1.0
            samples.append(1000.0 * (end - start) / factor)
    if samples:
        return statistics.median(samples), f"median of {len(samples)} frame inference times"
    metrics = report["metrics"]
    p50 = (metrics.get("inference_ms") or {}).get("p50") if isinstance(
        metrics.get("inference_ms"), Mapping) else None
    if _number(p50) and p50 > 0:
        return float(p50), "metrics.inference_ms.p50"
    fps = metrics.get("inference_fps")
    if _number(fps) and fps > 0:
        return 1000.0 / fps, "1000 / metrics.inference_fps (assumes inference-bound)"
    raise InputError(where, "no inference timing: expected frames[].t_infer_start/t_infer_end,"
                     " metrics.inference_ms.p50 or metrics.inference_fps")


def _model_memory(report: Mapping, where: str) -> tuple[float, float]:
    """FP32 weight bytes and FP32 activation MB of the report's model at its input size."""
    model = report["model"]
    weights, activation = model.get("weights_bytes"), model.get("activation_mb")
    if _number(weights) and _number(activation):
        return float(weights), float(activation)
    from simulator.zoo.registry import resolve_model  # heavy import: only when needed

    name = model["name"]
    path = model.get("path")
    try:
        resolved = resolve_model(path if isinstance(path, str) and Path(path).is_file() else name)
    except InputError:
        raise InputError(where, f"field 'model.name': '{name}' is not in the model zoo; give"
                         " 'model.weights_bytes' and 'model.activation_mb' in the report") from None
    return float(resolved.weights_bytes()), float(resolved.activation_mb(report["input_size"]))


@dataclass(frozen=True)
class LineFit:
    """latency = overhead + FLOPs x slope fitted to (FLOPs, latency) points, with standard
    errors (None where the points cannot say: no residual degree of freedom, or a parameter
    held fixed), the residuals and what the data could not determine."""

    overhead_ms: float
    slope: float  # ms per FLOP
    overhead_se: float | None
    slope_se: float | None
    covariance: float | None  # of overhead and slope
    residuals_ms: tuple[float, ...]
    method: str
    warnings: tuple[str, ...]
    pixel_ns: float = 0.0  # ns per input pixel (fit_with_pixels); 0: not fitted
    pixel_se: float | None = None
    rejected: tuple[int, ...] = ()  # runs left out as outliers (0-based, in input order)

    def seed_fps(self) -> tuple[float, float | None]:
        """The profile's seed FPS (1000 / latency of the reference model) and its standard
        error, propagated to first order from the parameters' covariance."""
        flops = REFERENCE_MODEL.flops
        latency = self.overhead_ms + flops * self.slope
        fps = 1000.0 / latency
        if self.slope_se is None:
            return fps, None
        variance = (self.overhead_se or 0.0) ** 2 + flops**2 * self.slope_se**2 \
            + 2 * flops * (self.covariance or 0.0)
        return fps, fps / latency * math.sqrt(max(variance, 0.0))


OUTLIER_SD = 3.5  # a run this many robust standard deviations off the fit is left out ...
OUTLIER_FLOOR = 0.15  # ... and never one within 15 % of it: that much a phone scatters anyway


@dataclass(frozen=True)
class _Weighted:
    coef: Any  # numpy arrays: the parameters, their covariance, every run's residual (ms)
    cov: Any
    residuals: Any
    kept: Any  # bool per run: False = left out as an outlier


def _weighted_fit(design: Any, latency: Any) -> _Weighted:
    """Least squares in relative terms, robust to a stray run.

    Each run is weighted by 1 / latency²: a run's scatter grows with its length, and a
    prediction is judged in per cent, so a 900 ms model must not outvote a 40 ms one. A run
    whose relative residual from a start fit on each workload's median lies more than
    ``OUTLIER_SD`` robust standard deviations (1.4826 x the median absolute residual) and
    ``OUTLIER_FLOOR`` away is left out (a quarter of the runs at most), unless that would leave
    its workload without a run or the fit without a spare degree of freedom; the fit is then
    made on the runs kept.
    """
    import numpy as np

    n, p = design.shape
    columns = np.abs(design).max(axis=0)  # FLOPs are ~1e9, the constant 1: scale for pinv
    design = design / columns
    rows = [tuple(row) for row in design]
    workloads = sorted(set(rows))
    medians = np.array([np.median([y for r, y in zip(rows, latency, strict=True) if r == w])
                        for w in workloads])
    start, *_ = np.linalg.lstsq(np.array(workloads) / medians[:, None], np.ones(len(workloads)),
                                rcond=None)
    relative = (latency - design @ start) / latency
    kept = np.ones(n, dtype=bool)
    if n - p >= 2:
        scale = 1.4826 * float(np.median(np.abs(relative)))
        limit = max(OUTLIER_SD * scale, OUTLIER_FLOOR)
        for i in np.argsort(-np.abs(relative)):
            if abs(relative[i]) <= limit or kept.sum() - 1 <= p or (~kept).sum() >= n // 4:
                break
            if sum(kept[j] for j in range(n) if rows[j] == rows[i]) > 1:
                kept[i] = False
    weights = 1.0 / latency[kept] ** 2
    a = design[kept] * np.sqrt(weights)[:, None]
    coef, *_ = np.linalg.lstsq(a, latency[kept] * np.sqrt(weights), rcond=None)
    residuals = latency - design @ coef
    dof = int(kept.sum()) - p
    cov = None
    if dof > 0:
        s2 = float(np.sum(weights * residuals[kept] ** 2)) / dof
        cov = s2 * np.linalg.pinv(a.T @ a) / np.outer(columns, columns)
    return _Weighted(coef / columns, cov, residuals, kept)


def _left_out(fit: _Weighted, latency: Any) -> tuple[tuple[int, ...], list[str]]:
    """The runs a fit left out, and a warning naming each (1-based, in report order)."""
    out = tuple(int(i) for i in (~fit.kept).nonzero()[0])
    if not out:
        return out, []
    runs = ", ".join(f"run {i + 1} ({latency[i]:.4g} ms, {fit.residuals[i]:+.3g} ms"
                     f" = {100 * fit.residuals[i] / latency[i]:+.0f} %)" for i in out)
    return out, [f"left out of the fit as outliers (over {OUTLIER_SD:g} robust standard "
                 f"deviations and {100 * OUTLIER_FLOOR:g} % from it; runs counted in the "
                 f"order given): {runs}"]


def _undetermined_overhead(overhead: float, stderr: float) -> list[str]:
    if stderr <= max(overhead, 1e-9):
        return []
    return [f"the overhead ({overhead:.3g} ms) is smaller than its standard error "
            f"({stderr:.3g} ms): the data do not determine it"]


def fit_line(points: Sequence[tuple[float, float]], overhead_ms: float) -> LineFit:
    """Least squares of latency on FLOPs (see ``LineFit`` and ``_weighted_fit``). One FLOP
    count cannot separate overhead from throughput: the profile's ``overhead_ms`` is kept and
    only the throughput is fitted. A free fit with a negative overhead is refitted through 0."""
    import numpy as np

    n = len(points)
    distinct = sorted({f for f, _ in points})
    warnings = []
    if len(distinct) < 2:
        warnings.append(f"one FLOP count ({distinct[0] / 1e9:.4g} GFLOPs): the overhead cannot "
                        f"be told from the throughput; the profile's {overhead_ms:g} ms is kept "
                        "(run at least two more models or input sizes)")
        slopes = [(lat - overhead_ms) / f for f, lat in points]
        slope = statistics.fmean(slopes)
        se = statistics.stdev(slopes) / math.sqrt(n) if n >= 2 else None
        return LineFit(overhead_ms, slope, None, se, None,
                       tuple(lat - overhead_ms - f * slope for f, lat in points),
                       "one FLOP count: profile overhead kept, throughput fitted",
                       tuple(warnings))
    if len(distinct) == 2:
        warnings.append("two FLOP counts: a straight line through two workloads cannot be "
                        "checked for curvature (use at least three models or input sizes)")
    latency = np.array([lat for _, lat in points])
    fit = _weighted_fit(np.array([[1.0, f] for f, _ in points]), latency)
    overhead, slope = (float(c) for c in fit.coef)
    method = f"relative least squares over {len(distinct)} FLOP counts ({n} runs)"
    through_zero = overhead < 0 and slope > 0
    if through_zero:
        fit = _weighted_fit(np.array([[f] for f, _ in points]), latency)
        overhead, slope = 0.0, float(fit.coef[0])
        method = "relative least squares through 0 (the free fit gave a negative overhead)"
    rejected, notes = _left_out(fit, latency)
    warnings += notes
    residuals = tuple(float(r) for r in fit.residuals)
    if fit.cov is None:
        warnings.append(f"{int(fit.kept.sum())} runs for {fit.coef.size} parameters: nothing "
                        "is left to estimate their uncertainty (repeat each run)")
        return LineFit(overhead, slope, None, None, None, residuals, method, tuple(warnings),
                       rejected=rejected)
    se = np.sqrt(np.maximum(np.diag(fit.cov), 0.0))
    if through_zero:
        return LineFit(overhead, slope, None, float(se[0]), None, residuals, method,
                       tuple(warnings), rejected=rejected)
    warnings += _undetermined_overhead(overhead, float(se[0]))
    return LineFit(overhead, slope, float(se[0]), float(se[1]), float(fit.cov[0, 1]),
                   residuals, method, tuple(warnings), rejected=rejected)


def fit_with_pixels(points: Sequence[tuple[float, float, float]],
                    overhead_ms: float) -> LineFit:
    """latency = overhead + FLOPs x slope + input pixels x pixel cost, by the relative least
    squares of ``_weighted_fit``, where the runs can tell the three apart (at least two models
    with different FLOPs per pixel, and more runs than parameters); otherwise ``fit_line`` on
    FLOPs alone, saying why. A negative overhead or pixel cost (nothing a phone has) also
    falls back to ``fit_line``."""
    import numpy as np

    def flops_only(why: str) -> LineFit:
        line = fit_line([(f, lat) for f, _, lat in points], overhead_ms)
        return replace(line, warnings=(*line.warnings, why))

    design = np.array([[1.0, f, px] for f, px, _ in points])
    latency = np.array([lat for _, _, lat in points])
    n = len(points)
    if n <= 3 or np.linalg.matrix_rank(design / design.max(axis=0)) < 3:
        return flops_only("the per-input-pixel cost is not fitted: it needs runs of two or "
                          "more models at two or more input sizes (within one model FLOPs grow"
                          " with the pixels)")
    fit = _weighted_fit(design, latency)
    overhead, slope, per_px = (float(c) for c in fit.coef)
    if overhead < 0 or per_px < 0 or slope <= 0 or fit.cov is None:
        return flops_only("a per-input-pixel term made the overhead, pixel cost or throughput"
                          " negative, or left no degree of freedom: not used")
    se = np.sqrt(np.maximum(np.diag(fit.cov), 0.0))
    rejected, warnings = _left_out(fit, latency)
    warnings += _undetermined_overhead(overhead, float(se[0]))
    return LineFit(overhead, slope, float(se[0]), float(se[1]), float(fit.cov[0, 1]),
                   tuple(float(r) for r in fit.residuals),
                   f"relative least squares on FLOPs and input pixels ({n} runs)",
                   tuple(warnings), pixel_ns=per_px * 1e6, pixel_se=float(se[2]) * 1e6,
                   rejected=rejected)


def _input_pixels(report: Mapping) -> float:
    """Pixels of the report's model input (``input_shape``, else input_size squared)."""
    shape = report.get("input_shape")
    if isinstance(shape, list) and len(shape) == 2 and all(_number(v) for v in shape):
        return float(shape[0] * shape[1])
    return float(report["input_size"]) ** 2


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _rewrite(text: str, changes: Mapping[str, Any], source: str,
             stderrs: Mapping[str, float] | None = None) -> str:
    """``text`` with the dotted keys in ``changes`` given new values and ``source`` (and
    their standard errors, where ``stderrs`` has them)."""
    stderrs = stderrs or {}

    def entry(key: str, dotted: str, ending: str, indent: str = "", equals: str = " = ") -> str:
        stderr = f", stderr = {stderrs[dotted]:.4g}" if dotted in stderrs else ""
        return (f"{indent}{key}{equals}{{ value = {changes[dotted]!r},"
                f" source = {_toml_string(source)}{stderr} }}{ending}")

    section, out, done = "", [], set()
    last_key_line: dict[str, int] = {}  # section -> index in out of its last key line
    for line in text.splitlines(keepends=True):
        head = _SECTION_RE.match(line)
        if head:
            section = head.group(1).strip()
        match = _LINE_RE.match(line)
        dotted = f"{section}.{match.group(2)}" if match else None
        if match:
            last_key_line[section] = len(out)
        if dotted in changes:
            line = entry(match.group(2), dotted, "\n" if line.endswith("\n") else "",
                         match.group(1), match.group(3))
            done.add(dotted)
        out.append(line)
    for dotted in sorted(set(changes) - done, reverse=True):  # keys the profile left out
        section, key = dotted.rsplit(".", 1)
        if section not in last_key_line:
            raise InputError("calibrate", f"cannot find the section [{section}] of key "
                             f"'{dotted}' in the profile file")
        out.insert(last_key_line[section] + 1, entry(key, dotted, "\n"))
    return "".join(out)


def calibrate_profile(
    device_reports: Sequence[str | Path],
    profile_id: str | Path,
    *,
    timing: str = "model",
    today: _dt.date | None = None,
) -> tuple[str, dict]:
    """Fit ``profile_id`` (bundled id or .toml path) to ``device_reports``.

    ``timing`` "model" fits the model call alone; "cycle" fits the completion interval
    (:func:`cycle_ms`), for targets that run pre-processing, model and post-processing on one
    thread, where the simulator's inference latency must carry all three.

    Returns the updated profile TOML text and a summary ``{"backends": {name: {...}},
    "memory": {...} | None, "changes": [{"key", "old", "new"}], "notes": [...], "text"}``.
    """
    if not device_reports:
        raise InputError("calibrate", "expected at least one device report")
    if timing not in TIMINGS:
        raise InputError("--timing", f"expected one of {', '.join(TIMINGS)}, got {timing!r}")
    profile = load_profile(profile_id)
    reports = [(str(path), load_report(path)) for path in device_reports]
    date = (today or _dt.date.today()).isoformat()
    source = f"measured: arsim calibrate from {', '.join(p for p, _ in reports)} ({date})"
    notes: list[str] = []
    by_backend: dict[str, list[tuple[float, float, float]]] = {}
    for where, report in reports:
        if report["device"]["id"] != profile.id:
            notes.append(f"{where}: device.id '{report['device']['id']}' is not '{profile.id}'")
        backend = report["backend"]
        if backend not in profile.backends:
            raise InputError(where, f"field 'backend': '{backend}' is not a backend of"
                             f" {profile.id} ({', '.join(profile.backends)})")
        flops = report["model"]["flops"]
        if not (_number(flops) and flops > 0):
            raise InputError(where, f"field 'model.flops': expected a number > 0, got {flops!r}")
        latency, how = (cycle_ms if timing == "cycle" else inference_latency_ms)(report, where)
        notes.append(f"{where}: {backend} {flops / 1e9:.4g} GFLOPs -> {latency:.4g} ms ({how})")
        by_backend.setdefault(backend, []).append((float(flops), _input_pixels(report),
                                                   latency))

    changes: dict[str, Any] = {}
    stderrs: dict[str, float] = {}
    backends_summary = {}
    for name, points in by_backend.items():
        old = profile.backends[name]
        fit = fit_with_pixels(points, old.overhead_ms)
        if fit.slope <= 0:
            raise InputError("calibrate", f"backend {name}: measured latencies are not above the"
                             f" per-call overhead {old.overhead_ms:g} ms; cannot fit a throughput")
        seed_fps, seed_fps_se = fit.seed_fps()
        fitted = {"seed_fps": float(f"{seed_fps:.5g}"), "overhead_ms": round(fit.overhead_ms, 3),
                  "input_ns_per_px": round(fit.pixel_ns, 4)}
        errors = {"seed_fps": seed_fps_se, "overhead_ms": fit.overhead_se,
                  "input_ns_per_px": fit.pixel_se}
        for key, value in fitted.items():
            if errors[key] is not None:
                stderrs[f"backends.{name}.{key}"] = errors[key]
            if not math.isclose(value, getattr(old, key), rel_tol=1e-9, abs_tol=1e-12) \
                    or errors[key] is not None:
                changes[f"backends.{name}.{key}"] = value
        notes.extend(f"{name}: {warning}" for warning in fit.warnings)
        throughput = 1.0 / fit.slope / 1e6
        backends_summary[name] = {
            **fitted, "throughput_gflops": throughput, "method": fit.method,
            "stderr": {"seed_fps": seed_fps_se, "overhead_ms": fit.overhead_se,
                       "input_ns_per_px": fit.pixel_se,
                       # d(1/slope) = slope_se / slope^2, in GFLOP/s
                       "throughput_gflops": None if fit.slope_se is None
                       else throughput * fit.slope_se / fit.slope},
            "warnings": list(fit.warnings),
            "points": [{"flops": f, "input_pixels": px, "latency_ms": lat, "residual_ms": r,
                        "left_out": k in fit.rejected}
                       for k, ((f, px, lat), r) in enumerate(zip(points, fit.residuals_ms,
                                                                  strict=True))],
        }

    memory_summary = _fit_memory(profile, reports)
    if memory_summary is not None:
        new = memory_summary["seed_memory_mb"]
        if not math.isclose(new, profile.memory.seed_memory_mb, abs_tol=1e-9):
            changes["memory.seed_memory_mb"] = new
    else:
        notes.append("memory: no report has metrics.memory_peak_mb; memory not calibrated")

    old_text = Path(profile.path).read_text(encoding="utf-8")
    new_text = _rewrite(old_text, changes, source, stderrs)
    _validate(new_text)
    change_rows = [{"key": key, "old": _old_value(profile, key), "new": value}
                   for key, value in changes.items()]
    summary = {"profile": profile.id, "source": source, "backends": backends_summary,
               "memory": memory_summary, "changes": change_rows, "notes": notes}
    summary["text"] = format_summary(summary)
    return new_text, summary


def _fit_memory(profile: DeviceProfile, reports: list[tuple[str, dict]]) -> dict | None:
    bases = []
    for where, report in reports:
        peak = report["metrics"]["memory_peak_mb"]
        if not _number(peak):
            continue
        weights, activation = _model_memory(report, where)
        parts = model_and_buffers_mb(
            profile, profile.backend(report["backend"]), weights_bytes_fp32=int(weights),
            activation_mb=activation,
            # checked by the report reader: positive integers when present
            camera_w=report["scenario"].get("width") or profile.camera.width,
            camera_h=report["scenario"].get("height") or profile.camera.height,
            input_size=report["input_size"])
        bases.append(peak - sum(parts.values()))
    if not bases:
        return None
    base = statistics.fmean(bases)
    # seed memory that derives `base` back: base + the reference model's modelled parts
    offset = profile.memory.seed_memory_mb - derived_app_base_mb(profile)
    return {"app_base_mb": base, "per_report_base_mb": bases,
            "seed_memory_mb": round(base + offset, 1)}


def _old_value(profile: DeviceProfile, dotted: str) -> Any:
    parts = dotted.split(".")
    if parts[0] == "backends":
        return getattr(profile.backends[parts[1]], parts[2])
    return getattr(getattr(profile, parts[0]), parts[1])


def _validate(text: str) -> None:
    """The new profile must load (bounds, overhead below the seed latency, base > 0)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calibrated.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load_profile(path)
        except InputError as exc:
            raise InputError("calibrate", f"the fitted profile is invalid: {exc.problem}") from None


def format_summary(summary: Mapping) -> str:
    """What ``arsim calibrate`` prints."""
    lines = [f"calibrated {summary['profile']}"]
    for name, fit in summary["backends"].items():
        se = fit["stderr"]

        def pm(value: float, error: float | None, fmt: str) -> str:
            return f"{value:{fmt}}" + ("" if error is None else f" ± {error:{fmt}}")

        lines.append(f"  {name}: seed_fps {pm(fit['seed_fps'], se['seed_fps'], '.4g')}, overhead"
                     f" {pm(fit['overhead_ms'], se['overhead_ms'], '.3g')} ms, throughput"
                     f" {pm(fit['throughput_gflops'], se['throughput_gflops'], '.3g')} GFLOP/s"
                     + (f", input {pm(fit['input_ns_per_px'], se['input_ns_per_px'], '.3g')}"
                        " ns per pixel" if fit["input_ns_per_px"] else "")
                     + f" ({fit['method']}; ± one standard error)")
        lines.append("    residuals (ms): " + ", ".join(
            f"{p['residual_ms']:+.3g}" + (" (left out)" if p.get("left_out") else "")
            for p in fit["points"]))
    memory = summary["memory"]
    if memory:
        lines.append(f"  memory: app base {memory['app_base_mb']:.1f} MB ->"
                     f" seed_memory_mb {memory['seed_memory_mb']:g}")
    for change in summary["changes"]:
        lines.append(f"  changed {change['key']}: {change['old']:g} -> {change['new']:g}")
    if not summary["changes"]:
        lines.append("  no number changed")
    lines += [f"  note: {note}" for note in summary["notes"]]
    return "\n".join(lines)
