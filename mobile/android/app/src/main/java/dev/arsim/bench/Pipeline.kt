package dev.arsim.bench

import android.graphics.Bitmap
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

/**
 * The run's timeline: frames[], display[], memory samples and oom_events, on one clock
 * (SystemClock.elapsedRealtimeNanos, t = 0 at the first played frame's capture). Thread-safe.
 * After [freeze] (the run's end) late events are ignored, as the simulator ignores events after
 * its end time.
 */
class Recorder {
    private var t0Ns = -1L
    private var frozen = false
    val frames = ArrayList<FrameRecord>()
    val display = ArrayList<DisplayEntry>()
    val oomEvents = ArrayList<Map<String, Any?>>()
    val memoryT = ArrayList<Double>()
    val memoryMb = ArrayList<Double>()
    var memoryPeakMb: Double? = null
        private set

    @Synchronized fun t(ns: Long): Double = if (t0Ns < 0) 0.0 else (ns - t0Ns) / 1e9

    @Synchronized fun capture(ns: Long, tracking: String): FrameRecord {
        if (t0Ns < 0) t0Ns = ns
        return FrameRecord(frames.size, t(ns), tracking).also { if (!frozen) frames.add(it) }
    }

    @Synchronized fun inferred(rec: FrameRecord, startNs: Long, endNs: Long, size: Int) {
        if (frozen) return
        rec.tInferStart = t(startNs)
        rec.tInferEnd = t(endNs)
        rec.inputSize = size
        rec.stylized = true
    }

    @Synchronized fun replaced(rec: FrameRecord) {
        if (!frozen) rec.replaced = true
    }

    @Synchronized fun displayed(rec: FrameRecord, ns: Long) {
        if (frozen || rec.tDisplay != null) return
        val t = t(ns)
        rec.tDisplay = t
        display.add(DisplayEntry(t, rec.index))
    }

    @Synchronized fun memory(ns: Long, mb: Double) {
        if (frozen) return
        memoryT.add(t(ns))
        memoryMb.add(mb)
        memoryPeakMb = maxOf(memoryPeakMb ?: mb, mb)
    }

    /** CONTRACT §5 memory warning: returns t for the `ARSIM oom` line. */
    @Synchronized fun oom(ns: Long, mb: Double?): Double {
        val t = t(ns)
        if (!frozen) oomEvents.add(linkedMapOf("t" to t, "memory_mb" to mb, "limit_mb" to null, "cause" to "memory_warning", "source" to "os"))
        return t
    }

    @Synchronized fun freeze() {
        frozen = true
    }

    @Synchronized fun framesDone() = frames.size
}

/** A camera frame on its way through the pipeline, then its stylized picture. */
class Job(val record: FrameRecord, val image: Bitmap, val pose: Pose, val camera: Intrinsics)

/**
 * Latest-frame-wins with one inference in flight (the seed's mobile design, as the simulator's
 * scheduler): a new frame replaces a frame still waiting (that one is `replaced`: never stylized); one
 * worker thread (a single-thread executor) takes the waiting frame whenever it is free.
 */
class Pipeline(
    private val stylizer: Stylizer,
    private val recorder: Recorder,
    private val onResult: (Job) -> Unit, // Job with the stylized image
    private val onError: (Throwable) -> Unit
) {
    private val lock = Object()
    private var pending: Job? = null
    private var busy = false
    private var running = true
    private val worker = Executors.newSingleThreadExecutor { Thread(it, "arsim-infer") }

    init {
        worker.execute { loop() }
    }

    /**
     * arsim.realtime=false: waits until the worker is idle, so frames go through one at a time
     * and none is replaced (as mobile/web's as-fast-as-possible mode).
     */
    fun awaitSlot() = synchronized(lock) {
        while ((pending != null || busy) && running) lock.wait()
    }

    fun submit(job: Job) {
        synchronized(lock) {
            if (!running) return recorder.replaced(job.record)
            pending?.let { recorder.replaced(it.record) }
            pending = job
            lock.notifyAll()
        }
    }

    /** Waits until no frame waits and none is in flight (the end of an as-fast-as-possible run). */
    fun awaitIdle(timeoutMs: Long) = synchronized(lock) {
        val until = System.currentTimeMillis() + timeoutMs
        while ((pending != null || busy) && running && System.currentTimeMillis() < until) lock.wait(20)
    }

    private fun loop() {
        while (true) {
            val job = synchronized(lock) {
                while (pending == null && running) lock.wait()
                if (!running) return
                busy = true
                pending!!.also { pending = null; lock.notifyAll() }
            }
            try {
                val out = stylizer.stylize(job.image)
                recorder.inferred(job.record, out.runStartNs, out.runEndNs, stylizer.size)
                onResult(Job(job.record, out.bitmap, job.pose, job.camera))
            } catch (t: Throwable) {
                onError(t)
                return
            } finally {
                synchronized(lock) { busy = false; lock.notifyAll() }
            }
        }
    }

    /** Takes no more frames (a frame still waiting counts as replaced). Does not block. */
    fun stop() = synchronized(lock) {
        running = false
        pending?.let { recorder.replaced(it.record) }
        pending = null
        lock.notifyAll()
    }

    /** Waits for the inference in flight (after [stop]) so the session can be closed. */
    fun join() {
        worker.shutdown()
        worker.awaitTermination(10, TimeUnit.SECONDS)
    }
}
