package dev.arsim.bench

import android.app.Activity
import android.app.ActivityManager
import android.app.ApplicationExitInfo
import android.content.ComponentCallbacks2
import android.content.Intent
import android.graphics.Bitmap
import android.graphics.Color
import android.os.Build
import android.os.Bundle
import android.os.Debug
import android.os.Handler
import android.os.Looper
import android.os.SystemClock
import android.util.Log
import android.view.SurfaceView
import android.view.WindowManager
import java.io.File
import java.util.Locale
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Plays one scenario through the stylization pipeline and measures itself (mobile/CONTRACT.md).
 * Started by the harness with the §2 extras; speaks the §3 `ARSIM` lines on logcat tag ARSIM;
 * writes `getExternalFilesDir(null)/arsim/runs/<run_id>/report.json` (§4) atomically.
 */
class PlaybackActivity : Activity() {
    private lateinit var params: RunParams
    private lateinit var surface: SurfaceView
    private val recorder = Recorder()
    private val ended = AtomicBoolean(false) // report written, error reported, or never started
    private val main = Handler(Looper.getMainLooper())
    private var started = false
    private var total = 0
    private var info: RunInfo? = null
    private var pipeline: Pipeline? = null
    private var stylizer: Stylizer? = null
    private var presenter: Presenter? = null
    private var memorySampler: ScheduledExecutorService? = null

    private fun say(line: String) = Log.i(TAG, "ARSIM $line")

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        surface = SurfaceView(this).also { it.setBackgroundColor(Color.BLACK); setContentView(it) }
        reportPreviousLowMemoryExits()
        @Suppress("DEPRECATION")
        val extras = intent.extras?.let { b -> b.keySet().associateWith { b.get(it) } } ?: emptyMap()
        if (RecordParams.requested(extras)) { // PROPOSED: recording mode (CONTRACT §6), its own activity
            startActivity(Intent(this, RecordingActivity::class.java).putExtras(intent))
            finish()
            return
        }
        params = try {
            RunParams.parse(extras)
        } catch (e: IllegalArgumentException) {
            return fail(e.message ?: e.toString())
        }
        Thread({ run() }, "arsim-run").start()
    }

    /** Set-up, warm-up, playback and the end of the run, off the main thread. */
    private fun run() {
        try {
            val root = File(getExternalFilesDir(null), "arsim")
            val scDir = File(root, params.scenario)
            if (!File(scDir, "scenario.json").isFile) return fail("unknown scenario ${params.scenario}: no ${scDir.absolutePath}/scenario.json")
            val sc = Scenario.load(scDir)
            val modelFile = File(root, "models/${params.model}.onnx")
            if (!modelFile.isFile) return fail("unknown model ${params.model}: no ${modelFile.absolutePath}")
            val card = ModelCard.load(modelFile.parentFile!!, params.model)
            val size = params.inputSize ?: card.defaultSize
            card.sizeProblem(size)?.let { return fail("arsim.input_size: $it") }
            val source: FrameSource = if (sc.arcoreDataset != null) {
                val dataset = File(scDir, sc.arcoreDataset)
                if (!dataset.isFile) return fail("scenario ${sc.name}: arcore_dataset ${dataset.name} not found")
                if (!params.realtime) return fail("arsim.realtime=false: an ARCore recording plays in real time only")
                ArcoreFrameSource(this, dataset)
            } else ScenarioFrameSource(sc, params.realtime)
            val st = Stylizer(modelFile, card, size, params.backend).also { stylizer = it }
            info = runInfo(sc, modelFile, card, size)
            total = sc.frameCount

            val grey = Bitmap.createBitmap(sc.camera.width, sc.camera.height, Bitmap.Config.ARGB_8888).apply { eraseColor(Color.GRAY) }
            repeat(params.warmupFrames) { st.stylize(grey) } // before measuring (CONTRACT §2)

            val pres = Presenter(surface, sc.anchors, recorder).also { presenter = it }
            pipeline = Pipeline(st, recorder, onResult = { pres.show(it) }, onError = { fail("inference failed: $it") })
            main.post { pres.start() }
            say("start ${params.runId} $total")
            startMonitors()
            source.play({ image, pose, camera, tracking ->
                if (!params.realtime) pipeline?.awaitSlot() // as fast as possible, no frame replaced
                val rec = recorder.capture(SystemClock.elapsedRealtimeNanos(), tracking)
                pipeline?.submit(Job(rec, image, pose, camera))
            }, stopped = { ended.get() })
            if (ended.get()) return
            val endNs = if (params.realtime) {
                // as the simulator: the run ends one camera interval after the last frame
                val last = recorder.frames.lastOrNull()?.tCapture ?: 0.0
                val ms = ((last + 1.0 / sc.fps - recorder.t(SystemClock.elapsedRealtimeNanos())) * 1000).toLong()
                if (ms > 0) Thread.sleep(ms)
                SystemClock.elapsedRealtimeNanos()
            } else {
                pipeline?.awaitIdle(30_000) // as fast as possible: until the last result is on screen
                val until = SystemClock.uptimeMillis() + 500
                while (!pres.idle && SystemClock.uptimeMillis() < until) Thread.sleep(5)
                SystemClock.elapsedRealtimeNanos()
            }
            finishRun(endNs, complete = true, reason = null)
        } catch (e: Exception) {
            fail("${e.javaClass.simpleName}: ${e.message}")
        }
    }

    private fun runInfo(sc: Scenario, modelFile: File, card: ModelCard, size: Int): RunInfo {
        val am = getSystemService(ActivityManager::class.java)
        val mem = ActivityManager.MemoryInfo().also { am.getMemoryInfo(it) }
        val ramMb = mem.totalMem / 1048576.0
        @Suppress("DEPRECATION")
        val hz = (if (Build.VERSION.SDK_INT >= 30) display else windowManager.defaultDisplay)?.refreshRate?.toDouble() ?: 60.0
        val displayHz = Math.round(hz * 100) / 100.0
        val version = packageManager.getPackageInfo(packageName, 0).versionName
        val device = linkedMapOf<String, Any?>(
            "id" to (params.device ?: Build.MODEL), "name" to "${Build.MANUFACTURER} ${Build.MODEL}",
            "display_hz" to displayHz, "ram_mb" to Math.round(ramMb).toDouble(), "os" to "Android ${Build.VERSION.RELEASE}"
        )
        // max_memory_mb: 20 % of RAM, as the arsim device profiles' app budget
        val budgets = Verdict.budgetsFor(0.2 * ramMb, sc.expect)
        return RunInfo(params, sc, modelFile, card, size, "arsim-bench-android $version", device, displayHz, budgets)
    }

    /** Progress (§3, every 0.5 s) and memory (Debug.MemoryInfo.getTotalPss, ~1 Hz, KB → MiB). */
    private fun startMonitors() {
        started = true
        val tick = object : Runnable {
            override fun run() {
                if (ended.get()) return
                say("progress ${recorder.framesDone()}/$total")
                main.postDelayed(this, 500)
            }
        }
        main.post(tick)
        memorySampler = Executors.newSingleThreadScheduledExecutor().also {
            it.scheduleAtFixedRate({ recorder.memory(SystemClock.elapsedRealtimeNanos(), pssMb()) }, 0, 1, TimeUnit.SECONDS)
        }
    }

    private fun pssMb(): Double = Debug.MemoryInfo().also { Debug.getMemoryInfo(it) }.totalPss / 1024.0

    /** Once: freeze the timeline at [endNs], write the report, `ARSIM done <path>`. */
    @Synchronized
    private fun finishRun(endNs: Long, complete: Boolean, reason: String?) {
        if (ended.getAndSet(true)) return
        pipeline?.stop() // a frame still waiting was never stylized
        recorder.memory(SystemClock.elapsedRealtimeNanos(), pssMb())
        recorder.freeze()
        memorySampler?.shutdownNow()
        say("progress ${recorder.framesDone()}/$total")
        val report = Report.build(info!!, recorder, recorder.t(endNs), complete, reason)
        val file = Report.write(report, File(getExternalFilesDir(null), "arsim/runs/${params.runId}"))
        say("done ${file.absolutePath}")
        Thread({ pipeline?.join(); stylizer?.close() }, "arsim-close").start()
        main.post {
            presenter?.stop()
            if (complete) finish()
        }
    }

    /** `ARSIM error <message>`, no report, finish (§2, §3). */
    private fun fail(message: String) {
        if (ended.getAndSet(true)) return
        say("error ${message.replace('\n', ' ')}")
        pipeline?.stop()
        memorySampler?.shutdownNow()
        main.post {
            presenter?.stop()
            finish()
        }
    }

    /** §5: an orderly stop before the end writes a partial report. */
    override fun onStop() {
        super.onStop()
        if (started && !ended.get()) {
            try {
                finishRun(SystemClock.elapsedRealtimeNanos(), complete = false, reason = "stopped")
            } catch (e: Exception) {
                say("error cannot write the partial report: $e") // ended is already set: say it here
            }
        }
    }

    /** §5 memory warning: log, record, carry on. (Android 14+ no longer sends RUNNING_* levels.) */
    @Suppress("DEPRECATION")
    override fun onTrimMemory(level: Int) {
        super.onTrimMemory(level)
        if (level != ComponentCallbacks2.TRIM_MEMORY_RUNNING_CRITICAL || !started || ended.get()) return
        val now = SystemClock.elapsedRealtimeNanos()
        val mb = pssMb()
        recorder.memory(now, mb)
        val t = recorder.oom(now, mb)
        say(String.format(Locale.US, "oom %.3f %.1f", t, mb))
    }

    /**
     * PROPOSED contract line: `ARSIM previous-exit low_memory <timestamp ms>` for each lmkd kill
     * of this app since the last launch that reported one (ApplicationExitInfo, Android 11+).
     */
    private fun reportPreviousLowMemoryExits() {
        if (Build.VERSION.SDK_INT < 30) return
        val prefs = getSharedPreferences("arsim", MODE_PRIVATE)
        val seen = prefs.getLong("last_exit_reported", 0L)
        val exits = getSystemService(ActivityManager::class.java).getHistoricalProcessExitReasons(packageName, 0, 16)
            .filter { it.reason == ApplicationExitInfo.REASON_LOW_MEMORY && it.timestamp > seen }
            .sortedBy { it.timestamp }
        exits.forEach { say("previous-exit low_memory ${it.timestamp}") }
        exits.lastOrNull()?.let { prefs.edit().putLong("last_exit_reported", it.timestamp).apply() }
    }

    companion object {
        const val TAG = "ARSIM"
    }
}
