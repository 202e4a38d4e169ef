package dev.arsim.bench

/**
 * The playback parameters of CONTRACT §2. Pure Kotlin: [parse] takes the intent extras as a
 * map so that `--es/--ei/--ez` (typed) and Appium string extras both work.
 */
data class RunParams(
    val scenario: String,
    val runId: String,
    val model: String,
    val inputSize: Int?, // null: the model card's default_size
    val backend: String,
    val realtime: Boolean,
    val warmupFrames: Int,
    val device: String? // PROPOSED for all targets (web has it): `arsim.device` = arsim profile id → report device.id
) {
    companion object {
        /** ONNX Runtime execution providers this build maps a backend name to (Stylizer.kt). */
        val BACKENDS = listOf("cpu", "xnnpack", "nnapi", "nnapi-fp16", "gpu-fp16")
        const val DEFAULT_BACKEND = "cpu"
        internal val ID = Regex("[A-Za-z0-9._-]{1,64}") // run ids, recording names
        private val KNOWN = setOf(
            "arsim.scenario", "arsim.run_id", "arsim.model", "arsim.input_size", "arsim.backend",
            "arsim.realtime", "arsim.warmup_frames", "arsim.device"
        )

        /** Throws IllegalArgumentException with the one-line message for `ARSIM error`. */
        fun parse(extras: Map<String, Any?>): RunParams {
            extras.keys.filter { it.startsWith("arsim.") && it !in KNOWN }.forEach {
                throw IllegalArgumentException("unknown parameter $it")
            }
            fun id(key: String): String {
                val v = extras[key] ?: throw IllegalArgumentException("missing $key")
                if (v !is String || !ID.matches(v)) throw IllegalArgumentException("$key: expected [A-Za-z0-9._-]{1,64}, got '$v'")
                return v
            }
            fun int(key: String, min: Int): Int? {
                val v = extras[key] ?: return null
                val n = when (v) {
                    is Int -> v
                    is Long -> v.toInt()
                    is String -> v.trim().toIntOrNull()
                    else -> null
                }
                if (n == null || n < min) throw IllegalArgumentException("$key: expected an integer >= $min, got '$v'")
                return n
            }
            val realtime = when (val v = extras["arsim.realtime"]) {
                null -> true
                is Boolean -> v
                "true" -> true
                "false" -> false
                else -> throw IllegalArgumentException("arsim.realtime: expected true or false, got '$v'")
            }
            val backend = (extras["arsim.backend"] ?: DEFAULT_BACKEND).toString()
            if (backend !in BACKENDS) throw IllegalArgumentException("arsim.backend: unknown backend '$backend'; this build knows ${BACKENDS.joinToString(", ")}")
            return RunParams(
                scenario = id("arsim.scenario"),
                runId = id("arsim.run_id"),
                model = id("arsim.model"),
                inputSize = int("arsim.input_size", 1),
                backend = backend,
                realtime = realtime,
                warmupFrames = int("arsim.warmup_frames", 0) ?: 0,
                device = if (extras["arsim.device"] != null) id("arsim.device") else null
            )
        }
    }
}

/**
 * PROPOSED (see README.md): the start parameters of a session recording (CONTRACT §6). An
 * `arsim.record` extra puts the app in recording mode instead of playback; the other playback
 * parameters do not apply and are refused. Pure Kotlin, like [RunParams].
 */
data class RecordParams(
    val name: String, // the file: getExternalFilesDir(null)/arsim/recordings/<name>.mp4
    val seconds: Int?, // stop by itself after this long; null: until tapped or the app is left
    val largestImage: Boolean // camera config with the largest CPU image instead of ARCore's default (640x480)
) {
    companion object {
        const val KEY = "arsim.record"
        private val KNOWN = setOf(KEY, "arsim.record_seconds", "arsim.record_camera")
        val CAMERAS = listOf("default", "largest")

        /** Whether the extras ask for a recording rather than a playback run. */
        fun requested(extras: Map<String, Any?>): Boolean = extras[KEY] != null

        /** Throws IllegalArgumentException with the one-line message for `ARSIM error`. */
        fun parse(extras: Map<String, Any?>): RecordParams {
            extras.keys.filter { it.startsWith("arsim.") && it !in KNOWN }.sorted().forEach {
                throw IllegalArgumentException("$it does not apply to a recording ($KEY is given)")
            }
            val name = extras[KEY]
            // not starting with ".": the name makes a file name (hidden files, "..")
            if (name !is String || !RunParams.ID.matches(name) || name.startsWith("."))
                throw IllegalArgumentException("$KEY: expected [A-Za-z0-9._-]{1,64} not starting with '.', got '$name'")
            val seconds = when (val v = extras["arsim.record_seconds"]) {
                null -> null
                is Int -> v
                is Long -> v.toInt()
                is String -> v.trim().toIntOrNull()
                else -> null
            }
            if (extras["arsim.record_seconds"] != null && (seconds == null || seconds < 1))
                throw IllegalArgumentException("arsim.record_seconds: expected an integer >= 1, got '${extras["arsim.record_seconds"]}'")
            val camera = (extras["arsim.record_camera"] ?: "default").toString()
            if (camera !in CAMERAS) throw IllegalArgumentException("arsim.record_camera: expected ${CAMERAS.joinToString(" or ")}, got '$camera'")
            return RecordParams(name, seconds, camera == "largest")
        }
    }
}
