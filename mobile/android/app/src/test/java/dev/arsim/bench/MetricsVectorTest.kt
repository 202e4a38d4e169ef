package dev.arsim.bench

import org.json.JSONArray
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import java.io.File
import kotlin.math.abs

/**
 * The app's metric code (Metrics.kt) against the shared vector
 * mobile/test-vectors/metrics-vector.json, whose `expected` values come from the simulator's
 * Python (timing_metrics + evaluate) and are checked by the web page's metrics.mjs too.
 * Path: system property `arsim.metricsVector` (app/build.gradle.kts), else relative to the
 * Gradle project. Case: {name, camera_fps, display_hz, t_end, background, budgets, oom_count,
 * frames[], display[], expected: {metrics, verdict}}; numbers agree within the vector's
 * `tolerance` (absolute); every other expected metric (display_fps from display intervals,
 * display_interval_ms / inference_interval_ms with their `n`, samples, ...) must be computed
 * by the app, except those in [measuredApart], which enter the verdict from `expected`.
 */
class MetricsVectorTest {
    /** Metrics the app does not compute from the timeline (flicker: no luminance here). */
    private val measuredApart = setOf("flicker")

    private fun vectorFile(): File =
        File(System.getProperty("arsim.metricsVector") ?: "../../test-vectors/metrics-vector.json")

    private fun num(o: JSONObject, vararg keys: String): Double? =
        keys.firstOrNull { o.has(it) && !o.isNull(it) }?.let { o.getDouble(it) }

    private fun plain(v: Any?): Any? = when (v) {
        null, JSONObject.NULL -> null
        is JSONObject -> v.keySet().associateWith { plain(v.get(it)) }
        is JSONArray -> (0 until v.length()).map { plain(v.get(it)) }
        else -> v
    }

    private fun frames(a: JSONArray): List<FrameRecord> = (0 until a.length()).map { i ->
        val f = a.getJSONObject(i)
        FrameRecord(f.getInt("index"), f.getDouble("t_capture"), f.optString("tracking", "tracking")).apply {
            stylized = f.optBoolean("stylized", false)
            tInferStart = num(f, "t_infer_start")
            tInferEnd = num(f, "t_infer_end")
            tDisplay = num(f, "t_display")
            skipped = f.optBoolean("skipped", false)
        }
    }

    private fun display(a: JSONArray): List<DisplayEntry> = (0 until a.length()).map { i ->
        val d = a.getJSONObject(i)
        val frame = d.getInt("frame")
        DisplayEntry(d.getDouble("t"), frame, d.optInt("source", frame), d.optBoolean("refresh", false), d.optBoolean("after_gap", false))
    }

    /** Every number/null leaf of [expected] (but [measuredApart]) against the app's, within [tol]. */
    private fun compare(case: String, path: String, expected: Any?, actual: Map<String, Any?>, tol: Double) {
        if (expected is Map<*, *>) {
            for ((k, v) in expected) compare(case, if (path.isEmpty()) "$k" else "$path.$k", v, actual, tol)
            return
        }
        if (path.substringBefore('.') in measuredApart) return
        val where = "$case: metrics.$path"
        var node: Any? = actual
        for (key in path.split(".")) {
            val parent = node as? Map<*, *>
            assertTrue("$where: not computed by the app", parent != null && parent.containsKey(key))
            node = parent!![key]
        }
        if (expected == null || node == null) return assertEquals(where, expected, node)
        if (expected is Int || expected is Long) return assertEquals(where, (expected as Number).toLong(), (node as Number).toLong())
        val e = (expected as Number).toDouble()
        val a = (node as Number).toDouble()
        assertTrue("$where: expected $e, got $a", abs(e - a) <= tol)
    }

    @Test
    fun metricsAndVerdictMatchTheSharedVector() {
        val file = vectorFile()
        assumeTrue("no shared vector at ${file.absolutePath}", file.isFile)
        val root = JSONObject(file.readText())
        val tol = root.optDouble("tolerance", 1e-6)
        val cases = root.getJSONArray("cases")
        assertTrue("the vector holds no case", cases.length() > 0)
        for (i in 0 until cases.length()) {
            val c = cases.getJSONObject(i)
            val name = c.optString("name", "case $i")
            val budgets = LinkedHashMap<String, Double?>()
            // in the simulator's budget order (org.json objects do not keep key order)
            c.optJSONObject("budgets")?.let { b -> Verdict.BUDGET_METRICS.keys.filter { b.has(it) }.forEach { budgets[it] = num(b, it) } }
            val bg = c.optJSONArray("background") ?: JSONArray()
            val background = (0 until bg.length()).map { bg.getJSONArray(it).let { p -> p.getDouble(0) to p.getDouble(1) } }
            val metrics = Metrics.session(
                frames(c.getJSONArray("frames")), display(c.getJSONArray("display")),
                c.getDouble("display_hz"), num(c, "camera_fps", "fps")!!, num(c, "t_end")!!,
                budgets["min_display_fps"], background
            )
            val expected = c.getJSONObject("expected")
            @Suppress("UNCHECKED_CAST")
            val expectedMetrics = plain(expected.getJSONObject("metrics")) as Map<String, Any?>
            compare(name, "", expectedMetrics, metrics, tol)

            // Metrics a device measures apart (memory, flicker) come from the case into the verdict.
            val judged = LinkedHashMap<String, Any?>(expectedMetrics)
            judged.putAll(metrics)
            val oomCount = c.optInt("oom_count", c.optJSONArray("oom_events")?.length() ?: 0)
            val verdict = Verdict.evaluate(judged, budgets, oomCount)
            val want = expected.getJSONObject("verdict")
            assertEquals("$name: verdict.passed", want.getBoolean("passed"), verdict["passed"])
            want.optJSONArray("skipped")?.let { assertEquals("$name: verdict.skipped", plain(it), verdict["skipped"]) }
            val wantChecks = want.getJSONArray("checks")
            val checks = verdict["checks"] as List<*>
            assertEquals("$name: number of checks", wantChecks.length(), checks.size)
            for (k in 0 until wantChecks.length()) {
                val w = wantChecks.getJSONObject(k)
                val got = checks[k] as Map<*, *>
                assertEquals("$name: check $k name", w.getString("name"), got["name"])
                assertEquals("$name: check $k op", w.getString("op"), got["op"])
                assertEquals("$name: check $k passed", w.getBoolean("passed"), got["passed"])
                assertEquals("$name: check $k value", w.getDouble("value"), got["value"] as Double, tol)
            }
        }
    }
}
