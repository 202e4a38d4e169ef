package dev.arsim.bench

import org.json.JSONArray
import org.json.JSONObject
import java.io.File
import java.io.FileOutputStream

/** What report.json says about the device and the model besides the recorded timeline. */
class RunInfo(
    val params: RunParams,
    val scenario: Scenario,
    val modelFile: File,
    val card: ModelCard,
    val inputSize: Int,
    val generatedBy: String, // "<app> <version>"
    val device: Map<String, Any?>, // id, name, display_hz, ram_mb, os
    val displayHz: Double,
    val budgets: Map<String, Double?>
)

/** report.json (`arsim-report/1`, CONTRACT §4, mobile/report.schema.json). */
object Report {
    /** [tEnd]: the end of the session, seconds on the report clock (nothing after it counts). */
    fun build(info: RunInfo, rec: Recorder, tEnd: Double, complete: Boolean, reason: String?): Map<String, Any?> {
        val sc = info.scenario
        Metrics.markDropped(rec.frames, tEnd)
        val metrics = Metrics.session(rec.frames, rec.display, info.displayHz, sc.fps, tEnd, info.budgets["min_display_fps"])
        // Not measured on the device: null, never 0 (CONTRACT §4). The harness may compute flicker.
        metrics["flicker"] = linkedMapOf("warp_error" to null, "warp_error_p95" to null, "luminance_flicker" to null)
        metrics["memory_peak_mb"] = rec.memoryPeakMb
        metrics["thermal_factor_max"] = null
        return linkedMapOf(
            "schema" to "arsim-report/1",
            "complete" to complete,
            "incomplete_reason" to reason,
            "generated_by" to info.generatedBy,
            "target" to "android",
            "run_id" to info.params.runId,
            "scenario" to linkedMapOf(
                "name" to sc.name, "path" to sc.dir.absolutePath, "frames" to sc.frameCount,
                "duration_s" to sc.durationS, "fps" to sc.fps, "width" to sc.camera.width, "height" to sc.camera.height
            ),
            "device" to info.device,
            "backend" to info.params.backend,
            "model" to linkedMapOf(
                "name" to info.params.model, "path" to info.modelFile.absolutePath,
                "flops" to info.card.flops(info.inputSize), "parameters" to info.card.parameters
            ),
            "input_size" to info.inputSize,
            "playback" to linkedMapOf(
                "realtime" to info.params.realtime, "warmup_frames" to info.params.warmupFrames, "t_end" to tEnd,
                // arcore: ARCore Session playback of the recording; scenario: frames + poses.txt, no ARCore tracking
                "source" to if (sc.arcoreDataset != null) "arcore" else "scenario"
            ),
            "budgets" to info.budgets,
            "metrics" to metrics,
            "oom_events" to rec.oomEvents,
            "verdict" to Verdict.evaluate(metrics, info.budgets, rec.oomEvents.size),
            "frames" to rec.frames.map {
                linkedMapOf(
                    "index" to it.index, "t_capture" to it.tCapture, "tracking" to it.tracking, "stylized" to it.stylized,
                    "t_infer_start" to it.tInferStart, "t_infer_end" to it.tInferEnd, "input_size" to it.inputSize,
                    "t_display" to it.tDisplay, "dropped" to it.dropped, "skipped" to it.skipped, "replaced" to it.replaced
                )
            },
            "display" to rec.display.map {
                linkedMapOf("t" to it.t, "frame" to it.frame, "source" to it.frame, "kind" to "new", "refresh" to false)
            },
            "series" to linkedMapOf("t" to rec.memoryT, "memory_mb" to rec.memoryMb)
        )
    }

    fun toJson(v: Any?): Any = when (v) {
        null -> JSONObject.NULL
        is Map<*, *> -> JSONObject().also { o -> v.forEach { (k, x) -> o.put(k.toString(), toJson(x)) } }
        is List<*> -> JSONArray().also { a -> v.forEach { a.put(toJson(it)) } }
        is Double -> if (v.isNaN() || v.isInfinite()) JSONObject.NULL else v
        else -> v
    }

    /** Temp file + fsync + rename, so the harness never pulls half a report. Returns the file. */
    fun write(report: Map<String, Any?>, dir: File): File {
        dir.mkdirs()
        val tmp = File(dir, "report.json.tmp")
        FileOutputStream(tmp).use { out ->
            out.write((toJson(report) as JSONObject).toString(1).toByteArray())
            out.fd.sync()
        }
        val target = File(dir, "report.json")
        if (!tmp.renameTo(target)) throw IllegalStateException("cannot rename $tmp to $target")
        return target
    }
}
