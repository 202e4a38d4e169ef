package dev.arsim.bench

import org.json.JSONObject
import java.io.File

/**
 * An unpacked `arsim-scenario/1` folder (scenarios/README.md) as pushed by the harness to
 * `getExternalFilesDir(null)/arsim/<name>/`. This reader is not the validator (the harness
 * validates before pushing); it reads what playback needs and fails with one line otherwise.
 */
class Scenario(
    val dir: File,
    val name: String,
    val video: String, // file name, or "frames/"
    val fps: Double,
    val camera: Intrinsics,
    val frameTimes: DoubleArray, // frames.csv timestamp, seconds
    val tracking: List<String>, // frames.csv tracking
    val trajectory: Trajectory,
    val anchors: List<Anchor>,
    val expect: Map<String, Double>,
    /** PROPOSED extension: `"arcore_dataset": "<file>.mp4"`, an ARCore recording of the session. */
    val arcoreDataset: String?
) {
    val frameCount get() = frameTimes.size
    val durationS get() = frameTimes.last() - frameTimes.first() + 1.0 / fps

    companion object {
        fun load(dir: File): Scenario {
            val f = File(dir, "scenario.json")
            if (!f.isFile) throw IllegalArgumentException("scenario ${dir.name}: no scenario.json in ${dir.absolutePath}")
            val j = JSONObject(f.readText().removePrefix("\uFEFF"))
            val cam = j.getJSONObject("camera")
            val camera = Intrinsics(
                cam.getInt("width"), cam.getInt("height"),
                cam.getDouble("fx"), cam.getDouble("fy"), cam.getDouble("cx"), cam.getDouble("cy")
            )
            val anchors = ArrayList<Anchor>()
            val arr = j.optJSONArray("anchors")
            for (i in 0 until (arr?.length() ?: 0)) {
                val a = arr!!.getJSONObject(i)
                fun vec(key: String, default: DoubleArray?): DoubleArray {
                    val v = a.optJSONArray(key) ?: return default ?: throw IllegalArgumentException("anchors[$i].$key missing")
                    return DoubleArray(v.length()) { v.getDouble(it) }
                }
                anchors.add(Anchor(a.getString("id"), vec("position", null), vec("rotation", doubleArrayOf(0.0, 0.0, 0.0, 1.0)), vec("size", null)))
            }
            val expect = LinkedHashMap<String, Double>()
            j.optJSONObject("expect")?.let { e -> e.keys().forEach { expect[it] = e.getDouble(it) } }
            val (times, tracking) = readFramesCsv(File(dir, "frames.csv"))
            return Scenario(
                dir, j.getString("name"), j.getString("video"), j.getDouble("fps"), camera,
                times, tracking, readTum(File(dir, "poses.txt")), anchors, expect,
                if (j.has("arcore_dataset")) j.getString("arcore_dataset") else null
            )
        }

        private fun lines(f: File): List<Pair<Int, String>> =
            f.readText().removePrefix("\uFEFF").lines().mapIndexed { i, s -> (i + 1) to s.trim() }.filter { it.second.isNotEmpty() }

        fun readFramesCsv(f: File): Pair<DoubleArray, List<String>> {
            val rows = lines(f)
            if (rows.isEmpty() || rows[0].second.replace(" ", "") != "index,timestamp,tracking")
                throw IllegalArgumentException("frames.csv line 1: expected header index,timestamp,tracking")
            val times = DoubleArray(rows.size - 1)
            val tracking = ArrayList<String>()
            for ((k, row) in rows.drop(1).withIndex()) {
                val cells = row.second.split(",").map { it.trim() }
                if (cells.size != 3 || cells[0].toIntOrNull() != k)
                    throw IllegalArgumentException("frames.csv line ${row.first}: expected $k,<timestamp>,<tracking>")
                times[k] = cells[1].toDouble()
                tracking.add(cells[2])
            }
            if (times.isEmpty()) throw IllegalArgumentException("frames.csv: no frames")
            return times to tracking
        }

        fun readTum(f: File): Trajectory {
            val times = ArrayList<Double>()
            val poses = ArrayList<Pose>()
            for ((line, text) in lines(f)) {
                if (text.startsWith("#")) continue
                val v = text.split(Regex("\\s+")).map { it.toDoubleOrNull() }
                if (v.size != 8 || v.any { it == null }) throw IllegalArgumentException("poses.txt line $line: expected 8 numbers")
                times.add(v[0]!!)
                poses.add(Pose(doubleArrayOf(v[1]!!, v[2]!!, v[3]!!), doubleArrayOf(v[4]!!, v[5]!!, v[6]!!, v[7]!!)))
            }
            return Trajectory(times.toDoubleArray(), poses)
        }
    }
}
