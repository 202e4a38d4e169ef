package dev.arsim.bench

import kotlin.math.floor
import kotlin.math.max
import kotlin.math.min

// Pure Kotlin (no Android imports): runs in the JVM unit tests against
// mobile/test-vectors/metrics-vector.json.

/**
 * One camera frame of a run, as it goes into report.json `frames[]`. Times are seconds from the
 * first played frame's capture time; null = it did not happen. Written by the pipeline threads
 * under [Recorder]'s lock.
 */
class FrameRecord(val index: Int, val tCapture: Double, val tracking: String = "tracking") {
    var stylized = false // its inference completed
    var tInferStart: Double? = null // session.run() call only (CONTRACT §4 inference_ms)
    var tInferEnd: Double? = null
    var inputSize: Int? = null
    var tDisplay: Double? = null // present time of its stylized picture
    var replaced = false // replaced while waiting by a newer frame: never stylized (pipeline busy)
    var skipped = false // a policy chose not to stylize it (never, in this app; kept for the shared rules)
    var dropped = false // never reached the screen by t_end (set by [Metrics.markDropped])
}

/**
 * One picture on screen: report `display[]` entry. [frame]: the camera frame whose pose it shows;
 * [source]: the stylized frame whose content it shows; [refresh]: that pose was already shown
 * (not a new picture); [afterGap]: first after a background period. This app only makes new
 * pictures of the frame they were stylized from (source = frame, no refresh, no gap).
 */
class DisplayEntry(
    val t: Double,
    val frame: Int,
    val source: Int = frame,
    val refresh: Boolean = false,
    val afterGap: Boolean = false
)

/**
 * Port of simulator/metrics/timing.py `timing_metrics`, fed by the timeline rules every device
 * target follows (mobile/web/metrics.mjs `sessionMetrics`, checked by the shared vector
 * mobile/test-vectors/metrics-vector.json `rules`): the session starts at the first frame's
 * capture and ends at [tEnd] (real time: last capture + 1/fps, as the simulator) and nothing
 * after it counts; rates come from timestamps (display FPS = 1 / mean display interval);
 * shown = display entries with t <= tEnd and not `refresh`; foreground = tEnd - first
 * capture - background time (a device run has none: the app stops instead); dropped = frames
 * not on screen by tEnd and not skipped.
 */
object Metrics {
    private const val FROZEN_S = 0.7
    private const val EPS = 1e-9

    /** numpy.percentile, default linear method, numpy's two-sided lerp; null for no values. */
    fun percentile(values: List<Double>, p: Double): Double? {
        if (values.isEmpty()) return null
        val a = values.sorted()
        val n = a.size
        val q = p / 100.0
        val pos = n * q + (1 - q) - 1
        if (pos >= n - 1) return a[n - 1]
        if (pos < 0) return a[0]
        val lo = floor(pos).toInt()
        val t = pos - lo
        val diff = a[lo + 1] - a[lo]
        return if (t >= 0.5) a[lo + 1] - diff * (1 - t) else a[lo] + diff * t
    }

    /** numpy.median: the middle value or the mean of the two middle values. */
    fun median(values: List<Double>): Double {
        val a = values.sorted()
        val h = a.size / 2
        return if (a.size % 2 == 1) a[h] else (a[h - 1] + a[h]) / 2
    }

    private fun percentiles(values: List<Double>, names: IntArray): LinkedHashMap<String, Any?> {
        val out = LinkedHashMap<String, Any?>()
        for (p in names) out["p$p"] = percentile(values, p.toDouble())
        return out
    }

    /** Percentiles in ms of intervals in seconds, with `n`: their sample count (timing.py `_intervals_ms`). */
    private fun intervalsMs(valuesS: List<Double>, names: IntArray): LinkedHashMap<String, Any?> =
        percentiles(valuesS.map { 1000.0 * it }, names).also { it["n"] = valuesS.size }

    /** Background time within [start, end] (timing.py `_away`). */
    private fun awayWithin(start: Double, end: Double, background: List<Pair<Double, Double>>): Double =
        background.map { (a, b) -> max(0.0, min(b, end) - max(a, start)) }.sum()

    private fun displayedBy(f: FrameRecord, tEnd: Double) = f.tDisplay.let { it != null && it <= tEnd }

    /** Sets every frame's `dropped`: not on screen by [tEnd] and not skipped. */
    fun markDropped(frames: List<FrameRecord>, tEnd: Double) =
        frames.forEach { it.dropped = !displayedBy(it, tEnd) && !it.skipped }

    /**
     * `metrics` of report.json except flicker, memory and thermal (the caller adds those).
     * [cameraFps]: scenario.json `fps`; [displayHz]: the screen's refresh rate;
     * [minDisplayFps]: the run's `min_display_fps` budget (null: slow_frames not counted).
     */
    fun session(
        frames: List<FrameRecord>,
        display: List<DisplayEntry>,
        displayHz: Double,
        cameraFps: Double,
        tEnd: Double,
        minDisplayFps: Double?,
        background: List<Pair<Double, Double>> = emptyList() // (start, end); none in this app
    ): LinkedHashMap<String, Any?> {
        val byIndex = frames.associateBy { it.index }
        class Shown(val t: Double, val tCapture: Double, val tSource: Double, val afterGap: Boolean)
        val shown = display.filter { it.t <= tEnd && !it.refresh }.mapNotNull { e ->
            val aligned = byIndex[e.frame] ?: return@mapNotNull null
            Shown(e.t, aligned.tCapture, (byIndex[e.source] ?: aligned).tCapture, e.afterGap)
        }
        val latencies = shown.map { 1000.0 * (it.t - it.tCapture) }
        val intervals = shown.zipWithNext { a, b -> if (b.afterGap) null else b.t - a.t }.filterNotNull()
        val cadence = if (intervals.isEmpty()) 0.0 else max(1.0 / cameraFps, median(intervals))
        val jankLimit = cadence + 1.0 / displayHz
        val janky = intervals.count { it > jankLimit + EPS }
        val done = frames.mapNotNull { f -> f.tInferEnd?.takeIf { f.stylized && it <= tEnd } }.sorted()
        var inferenceFps: Double? = null
        if (done.size >= 2) {
            val first = done.first()
            val last = done.last()
            val span = last - first - awayWithin(first, last, background)
            inferenceFps = if (span > 0) (done.size - 1) / span else null
        }
        val inferenceIntervals = done.zipWithNext { a, b ->
            if (background.any { (start, end) -> start < b && a < end }) null else b - a
        }.filterNotNull()
        val away = background.map { (a, b) -> b - a }.sum()
        val sessionStart = frames.firstOrNull()?.tCapture ?: 0.0
        val foregroundS = max(0.0, tEnd - sessionStart - away)
        // display FPS = 1 / mean display interval (timing.py `_display_rate`); a stall at the
        // end (last picture to the session end, foreground time) is one more interval when
        // longer than the median; no interval: pictures / foreground seconds
        val sessionEnd = sessionStart + foregroundS + away
        var displayTotal = intervals.sum()
        var displaySamples = intervals.size
        val displayFps = if (displaySamples > 0 && displayTotal > 0) {
            val lastShown = shown.last().t
            val stall = sessionEnd - lastShown - awayWithin(lastShown, sessionEnd, background)
            if (stall > median(intervals) + EPS) {
                displayTotal += stall
                displaySamples += 1
            }
            displaySamples / displayTotal
        } else {
            displaySamples = 0
            if (foregroundS > 0) shown.size / foregroundS else 0.0
        }
        val latency = percentiles(latencies, intArrayOf(50, 95, 99))
        latency["mean"] = if (latencies.isEmpty()) null else latencies.sum() / latencies.size
        val inferMs = frames.filter { it.stylized && it.tInferStart != null && it.tInferEnd != null }
            .map { 1000.0 * (it.tInferEnd!! - it.tInferStart!!) }

        val m = LinkedHashMap<String, Any?>()
        m["display_fps"] = displayFps
        m["inference_fps"] = inferenceFps
        m["latency_ms"] = latency
        m["content_age_ms"] = percentiles(shown.map { 1000.0 * (it.t - it.tSource) }, intArrayOf(50, 95))
        m["frame_interval_ms"] = intervalsMs(intervals, intArrayOf(50, 90, 95, 99)) // display_interval_ms's older name
        m["display_interval_ms"] = intervalsMs(intervals, intArrayOf(50, 90, 95, 99))
        m["inference_interval_ms"] = intervalsMs(inferenceIntervals, intArrayOf(50, 95))
        m["jank_pct"] = if (intervals.isEmpty()) 0.0 else 100.0 * janky / intervals.size
        m["slow_frames"] = if (minDisplayFps == null || minDisplayFps == 0.0) null
            else intervals.count { it > 1.0 / minDisplayFps + EPS }
        m["frozen_frames"] = intervals.count { it > FROZEN_S }
        m["dropped_frames"] = frames.count { !displayedBy(it, tEnd) && !it.skipped }
        m["skipped_frames"] = frames.count { it.skipped }
        m["stylized_frames"] = frames.count { it.stylized }
        m["displayed_frames"] = shown.size
        m["inference_ms"] = percentiles(inferMs, intArrayOf(50, 95))
        m["samples"] = linkedMapOf<String, Any?>(
            "display_intervals" to displaySamples,
            "inference_intervals" to (if (inferenceFps == null) 0 else done.size - 1),
            "latencies" to latencies.size
        )
        return m
    }
}

/** Port of simulator/metrics/verdict.py: budgets → checks → verdict. */
object Verdict {
    val DEFAULT_BUDGETS: Map<String, Double> = linkedMapOf(
        "min_display_fps" to 15.0,
        "max_latency_p95_ms" to 66.0,
        "max_jank_pct" to 10.0,
        "max_flicker" to 0.002,
        "max_oom_events" to 0.0
    )

    /** Budget name → path of its metric in report `metrics` (`oom_count` is passed apart). */
    val BUDGET_METRICS: Map<String, List<String>> = linkedMapOf(
        "min_display_fps" to listOf("display_fps"),
        "max_latency_p95_ms" to listOf("latency_ms", "p95"),
        "max_jank_pct" to listOf("jank_pct"),
        "max_flicker" to listOf("flicker", "warp_error"),
        "max_memory_mb" to listOf("memory_peak_mb"),
        "max_oom_events" to listOf("oom_count")
    )

    fun op(name: String) = if (name.startsWith("min_")) ">=" else "<="

    /** Defaults, then the device's memory budget (20 % of RAM, as the profiles), then `expect`. */
    fun budgetsFor(deviceBudgetMb: Double?, expect: Map<String, Double>): LinkedHashMap<String, Double?> {
        val all = LinkedHashMap<String, Double?>(DEFAULT_BUDGETS)
        all["max_memory_mb"] = deviceBudgetMb
        for ((name, limit) in expect) {
            require(name in BUDGET_METRICS) { "expect.$name: unknown budget; expected one of ${BUDGET_METRICS.keys.joinToString(", ")}" }
            all[name] = limit
        }
        val ordered = LinkedHashMap<String, Double?>()
        for (name in BUDGET_METRICS.keys) if (name in all) ordered[name] = all[name]
        return ordered
    }

    private fun metricValue(values: Map<String, Any?>, path: List<String>): Double? {
        var v: Any? = values
        for (key in path) v = (v as? Map<*, *>)?.get(key) ?: return null
        if (v !is Number) return null // Boolean is not a Number in Kotlin
        val d = v.toDouble()
        return if (d.isNaN()) null else d
    }

    /** `{"passed", "checks": [{name, value, limit, op, passed}], "skipped": [names]}`. */
    fun evaluate(metrics: Map<String, Any?>, budgets: Map<String, Double?>, oomCount: Int): LinkedHashMap<String, Any?> {
        val values = LinkedHashMap<String, Any?>(metrics)
        values["oom_count"] = oomCount
        val checks = ArrayList<Map<String, Any?>>()
        val skipped = ArrayList<String>()
        for ((name, limit) in budgets) {
            val path = BUDGET_METRICS[name] ?: throw IllegalArgumentException("unknown budget '$name'")
            val value = metricValue(values, path)
            if (value == null || limit == null) {
                skipped.add(name)
                continue
            }
            val op = op(name)
            val passed = if (op == ">=") value >= limit else value <= limit
            checks.add(linkedMapOf("name" to name, "value" to value, "limit" to limit, "op" to op, "passed" to passed))
        }
        return linkedMapOf("passed" to checks.all { it["passed"] == true }, "checks" to checks, "skipped" to skipped)
    }
}
