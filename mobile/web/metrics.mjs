// Report metrics and verdict of a device run: a port of simulator/metrics/timing.py
// (timing_metrics), simulator/metrics/flicker.py (luminance_flicker) and
// simulator/metrics/verdict.py (evaluate). Pure: no DOM, so node can import it and check it
// against mobile/test-vectors/metrics-vector.json (tests/test_web_metrics_vector.py).

export const FROZEN_S = 0.7;

// Budget name -> path of the metric it limits (verdict.BUDGET_METRICS, same order).
export const BUDGET_METRICS = {
  min_display_fps: ["display_fps"],
  max_latency_p95_ms: ["latency_ms", "p95"],
  max_jank_pct: ["jank_pct"],
  max_flicker: ["flicker", "warp_error"],
  max_memory_mb: ["memory_peak_mb"],
  max_oom_events: ["oom_count"],
};

// What the page judges when the harness passes no arsim.budgets (the rest not judged).
export const FALLBACK_BUDGETS = {
  min_display_fps: 15,
  max_latency_p95_ms: 66,
  max_jank_pct: 10,
  max_flicker: null,
  max_memory_mb: null,
  max_oom_events: null,
};

function sorted(values) {
  return Float64Array.from(values).sort();
}

// numpy.percentile with the default linear method (including numpy's two-sided lerp).
export function percentile(values, p) {
  const a = sorted(values);
  const n = a.length;
  if (n === 0) return null;
  const q = p / 100;
  const pos = n * q + (1 - q) - 1;
  if (pos >= n - 1) return a[n - 1];
  if (pos < 0) return a[0];
  const lo = Math.floor(pos);
  const hi = lo + 1;
  const t = pos - lo;
  const diff = a[hi] - a[lo];
  return t >= 0.5 ? a[hi] - diff * (1 - t) : a[lo] + diff * t;
}

// numpy.median: the middle value, or the mean of the two middle values.
export function median(values) {
  const a = sorted(values);
  const n = a.length;
  if (n === 0) return null;
  const half = Math.floor(n / 2);
  return n % 2 ? a[half] : (a[half - 1] + a[half]) / 2;
}

function mean(values) {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

function percentiles(valuesMs, names) {
  const out = {};
  for (const p of names) out[`p${p}`] = valuesMs.length ? percentile(valuesMs, p) : null;
  return out;
}

// _intervals_ms(): percentiles in ms of intervals in seconds, with n (their sample count).
function intervalsMs(valuesS, names) {
  return { ...percentiles(valuesS.map((dt) => 1000 * dt), names), n: valuesS.length };
}

// _away(): background time within [start, end].
function awayWithin(start, end, background) {
  let away = 0;
  for (const [a, b] of background) away += Math.max(0, Math.min(b, end) - Math.max(a, start));
  return away;
}

// _display_rate(): [display FPS, intervals it averages]. 1 / mean display interval; the open
// interval from the last result to the session end (foreground time) counts as one more when
// longer than the median (a stall at the end); no interval: results / foreground seconds.
function displayRate(shown, intervals, background, foregroundS, sessionEnd) {
  let total = 0;
  for (const dt of intervals) total += dt;
  let n = intervals.length;
  if (n && total > 0) {
    const last = shown[shown.length - 1].t_display;
    const stall = sessionEnd - last - awayWithin(last, sessionEnd, background);
    if (stall > median(intervals) + 1e-9) {
      total += stall;
      n += 1;
    }
    return [n / total, n];
  }
  return [foregroundS > 0 ? shown.length / foregroundS : 0, 0];
}

// timing_metrics(): `shown` = [{t_display, t_capture, after_gap, t_source}], times in seconds;
// sessionStart: the session's first capture on that clock (the session ends foregroundS plus
// the background time later).
export function timingMetrics({
  shown, inferenceDoneTimes, background, foregroundS, cameraFps, displayHz, minDisplayFps,
  droppedFrames, skippedFrames, stylizedFrames, sessionStart = 0,
}) {
  const latencies = shown.map((s) => 1000 * (s.t_display - s.t_capture));
  const intervals = [];
  for (let i = 1; i < shown.length; i++) {
    if (!shown[i].after_gap) intervals.push(shown[i].t_display - shown[i - 1].t_display);
  }
  const cadence = intervals.length ? Math.max(1 / cameraFps, median(intervals)) : 0;
  const jankLimit = cadence + 1 / displayHz;
  const janky = intervals.filter((dt) => dt > jankLimit + 1e-9).length;
  let backgroundS = 0;
  for (const [start, end] of background) backgroundS += end - start;
  const [displayFps, displaySamples] = displayRate(
    shown, intervals, background, foregroundS, sessionStart + foregroundS + backgroundS,
  );
  const done = [...inferenceDoneTimes];
  let inferenceFps = null;
  if (done.length >= 2) {
    const first = done[0];
    const last = done[done.length - 1];
    const span = last - first - awayWithin(first, last, background);
    inferenceFps = span > 0 ? (done.length - 1) / span : null;
  }
  const inferenceIntervals = [];
  for (let i = 1; i < done.length; i++) {
    const [a, b] = [done[i - 1], done[i]];
    if (!background.some(([start, end]) => start < b && a < end)) inferenceIntervals.push(b - a);
  }
  const latency = percentiles(latencies, [50, 95, 99]);
  latency.mean = latencies.length ? mean(latencies) : null;
  const ages = shown.map(
    (s) => 1000 * (s.t_display - (s.t_source !== null && s.t_source !== undefined ? s.t_source : s.t_capture)),
  );
  const slowLimit = minDisplayFps ? 1 / minDisplayFps + 1e-9 : null;
  return {
    display_fps: displayFps,
    inference_fps: inferenceFps,
    latency_ms: latency,
    content_age_ms: percentiles(ages, [50, 95]),
    frame_interval_ms: intervalsMs(intervals, [50, 90, 95, 99]),
    display_interval_ms: intervalsMs(intervals, [50, 90, 95, 99]),
    inference_interval_ms: intervalsMs(inferenceIntervals, [50, 95]),
    jank_pct: intervals.length ? (100 * janky) / intervals.length : 0,
    slow_frames: slowLimit === null ? null : intervals.filter((dt) => dt > slowLimit).length,
    frozen_frames: intervals.filter((dt) => dt > FROZEN_S).length,
    dropped_frames: droppedFrames,
    skipped_frames: skippedFrames,
    stylized_frames: stylizedFrames,
    displayed_frames: shown.length,
    samples: {
      display_intervals: displaySamples,
      inference_intervals: inferenceFps === null ? 0 : done.length - 1,
      latencies: latencies.length,
    },
  };
}

// luminance_flicker(): mean |second difference|; null below three samples.
export function luminanceFlicker(series) {
  if (series.length < 3) return null;
  let sum = 0;
  for (let i = 2; i < series.length; i++) {
    sum += Math.abs(series[i] - 2 * series[i - 1] + series[i - 2]);
  }
  return sum / (series.length - 2);
}

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

/**
 * Metrics of a device run from its report timeline (the rules every target follows):
 * - session: times in seconds from the first played frame's capture; it ends at `t_end`
 *   (realtime: last capture + 1/fps); anything after it is not counted, as in the simulator;
 * - shown: `display` entries with t <= t_end and refresh !== true, in order;
 *   t_capture = frames[entry.frame].t_capture, t_source = frames[entry.source ?? entry.frame];
 *   after_gap = entry.after_gap === true;
 * - inference done times: stylized frames' t_infer_end <= t_end, sorted;
 * - foreground_s = t_end - frames[0].t_capture - background time; the session starts at
 *   frames[0].t_capture (display FPS counts a stall from the last result to its end);
 * - dropped: frames not displayed by t_end (t_display null or > t_end) and not skipped;
 *   stylized: frames with stylized true; skipped: frames with skipped true;
 * - inference_ms {p50, p95}: t_infer_end - t_infer_start of every stylized frame with both;
 * - flicker.luminance_flicker over the non-null display[].luminance with t <= t_end.
 */
export function sessionMetrics({ frames, display, displayHz, cameraFps, tEnd, background = [], minDisplayFps }) {
  const byIndex = new Map(frames.map((f) => [f.index, f]));
  const shown = [];
  const luminance = [];
  for (const entry of display) {
    if (!(entry.t <= tEnd)) continue;
    if (isNumber(entry.luminance)) luminance.push(entry.luminance);
    if (entry.refresh === true) continue;
    const aligned = byIndex.get(entry.frame);
    const source = byIndex.get(entry.source ?? entry.frame) ?? aligned;
    shown.push({
      t_display: entry.t,
      t_capture: aligned.t_capture,
      after_gap: entry.after_gap === true,
      t_source: source.t_capture,
    });
  }
  const done = frames
    .filter((f) => f.stylized && isNumber(f.t_infer_end) && f.t_infer_end <= tEnd)
    .map((f) => f.t_infer_end)
    .sort((a, b) => a - b);
  const away = background.reduce((sum, [start, end]) => sum + (end - start), 0);
  const foregroundS = Math.max(0, tEnd - (frames.length ? frames[0].t_capture : 0) - away);
  const displayedBy = (f) => isNumber(f.t_display) && f.t_display <= tEnd;
  const metrics = timingMetrics({
    shown,
    inferenceDoneTimes: done,
    background,
    foregroundS,
    cameraFps,
    displayHz,
    minDisplayFps,
    droppedFrames: frames.filter((f) => !displayedBy(f) && !f.skipped).length,
    skippedFrames: frames.filter((f) => f.skipped).length,
    stylizedFrames: frames.filter((f) => f.stylized).length,
    sessionStart: frames.length ? frames[0].t_capture : 0,
  });
  const inferMs = frames
    .filter((f) => f.stylized && isNumber(f.t_infer_start) && isNumber(f.t_infer_end))
    .map((f) => 1000 * (f.t_infer_end - f.t_infer_start));
  metrics.inference_ms = percentiles(inferMs, [50, 95]);
  metrics.flicker = { luminance_flicker: luminanceFlicker(luminance) };
  return metrics;
}

/** Budgets: `base` (or the fallback), then the scenario's `expect`, in BUDGET_METRICS order. */
export function budgetsWith(base, expect = {}) {
  const merged = { ...(base ?? FALLBACK_BUDGETS), ...expect };
  const out = {};
  for (const name of Object.keys(BUDGET_METRICS)) {
    if (name in merged) out[name] = merged[name] === null ? null : Number(merged[name]);
  }
  return out;
}

function metricValue(values, path) {
  let value = values;
  for (const key of path) {
    if (value === null || typeof value !== "object") return null;
    value = value[key];
  }
  return typeof value === "number" && !Number.isNaN(value) ? value : null;
}

// evaluate(): {passed, checks: [{name, value, limit, op, passed}], skipped}.
export function evaluate(metrics, budgets, oomCount) {
  const values = { ...metrics, oom_count: oomCount };
  const checks = [];
  const skipped = [];
  for (const [name, limit] of Object.entries(budgets)) {
    if (!(name in BUDGET_METRICS)) throw new Error(`unknown budget '${name}'`);
    const value = metricValue(values, BUDGET_METRICS[name]);
    if (value === null || limit === null || limit === undefined) {
      skipped.push(name);
      continue;
    }
    const op = name.startsWith("min_") ? ">=" : "<=";
    const passed = op === ">=" ? value >= limit : value <= limit;
    checks.push({ name, value, limit: Number(limit), op, passed });
  }
  return { passed: checks.every((c) => c.passed), checks, skipped };
}
