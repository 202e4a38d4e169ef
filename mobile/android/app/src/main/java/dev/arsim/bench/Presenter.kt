package dev.arsim.bench

import android.graphics.Color
import android.graphics.Paint
import android.graphics.RectF
import android.os.SystemClock
import android.view.Choreographer
import android.view.SurfaceView
import java.util.concurrent.atomic.AtomicReference
import kotlin.math.min
import kotlin.math.roundToInt

/**
 * Draws the newest stylized picture and the anchor wireframes on a SurfaceView, once per vsync
 * (Choreographer, main thread). Anchors are projected with the pose of the stylized frame, so
 * they stay glued to the picture (compose.py), and not drawn while tracking is `lost`.
 * Present time (report `t_display`): the Choreographer frame time of the vsync after the one
 * that drew the picture, i.e. when the posted buffer is latched onto the screen.
 */
class Presenter(private val view: SurfaceView, private val anchors: List<Anchor>, private val recorder: Recorder) :
    Choreographer.FrameCallback {
    private val latest = AtomicReference<Job?>()
    private var drawn: Job? = null // drawn at the last vsync, presented at this one
    private var running = false
    // Choreographer's frameTimeNanos is System.nanoTime (CLOCK_MONOTONIC); the report clock is
    // elapsedRealtimeNanos (CLOCK_BOOTTIME): constant offset while the device is awake.
    private val bootOffsetNs = SystemClock.elapsedRealtimeNanos() - System.nanoTime()
    private val imagePaint = Paint(Paint.FILTER_BITMAP_FLAG)
    private val anchorPaint = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.rgb(255, 64, 160) } // compose.py magenta

    /** Any thread. A picture replaced before a vsync drew it is never shown. */
    fun show(job: Job) = latest.set(job)

    val idle get() = latest.get() == null && drawn == null

    fun start() {
        running = true
        Choreographer.getInstance().postFrameCallback(this)
    }

    fun stop() {
        running = false
        Choreographer.getInstance().removeFrameCallback(this)
    }

    override fun doFrame(frameTimeNanos: Long) {
        if (!running) return
        drawn?.let { recorder.displayed(it.record, frameTimeNanos + bootOffsetNs) }
        drawn = latest.getAndSet(null)?.takeIf { draw(it) } // not drawn (no surface): not shown
        Choreographer.getInstance().postFrameCallback(this)
    }

    private fun draw(job: Job): Boolean {
        val holder = view.holder
        if (!holder.surface.isValid) return false
        val canvas = holder.lockHardwareCanvas() ?: return false
        try {
            canvas.drawColor(Color.BLACK)
            val k = job.camera // letterbox the camera image into the view
            val scale = min(canvas.width / k.width.toFloat(), canvas.height / k.height.toFloat())
            val w = k.width * scale
            val h = k.height * scale
            val dst = RectF((canvas.width - w) / 2, (canvas.height - h) / 2, (canvas.width + w) / 2, (canvas.height + h) / 2)
            canvas.drawBitmap(job.image, null, dst, imagePaint)
            if (job.record.tracking == "lost") return true
            canvas.clipRect(dst)
            anchorPaint.strokeWidth = maxOf(1, (min(w, h) / 240).roundToInt()).toFloat()
            for (anchor in anchors) for (s in Projection.anchorSegments(anchor, job.pose, k)) {
                canvas.drawLine(
                    dst.left + (s[0] * scale).toFloat(), dst.top + (s[1] * scale).toFloat(),
                    dst.left + (s[2] * scale).toFloat(), dst.top + (s[3] * scale).toFloat(), anchorPaint
                )
            }
        } finally {
            holder.unlockCanvasAndPost(canvas)
        }
        return true
    }
}
