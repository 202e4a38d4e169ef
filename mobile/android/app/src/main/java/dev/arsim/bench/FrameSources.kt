package dev.arsim.bench

import android.content.Context
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.media.Image
import android.media.MediaMetadataRetriever
import android.net.Uri
import android.opengl.EGL14
import android.opengl.GLES20
import android.os.SystemClock
import com.google.ar.core.Config
import com.google.ar.core.PlaybackStatus
import com.google.ar.core.Session
import com.google.ar.core.TrackingState
import com.google.ar.core.exceptions.NotYetAvailableException
import java.io.File
import java.util.concurrent.ArrayBlockingQueue
import java.util.concurrent.TimeUnit

/** Receives each camera frame: its image, the camera pose and intrinsics, the tracking state. */
typealias Emit = (image: Bitmap, pose: Pose, camera: Intrinsics, tracking: String) -> Unit

/** Where camera frames come from. [play] runs on the caller's thread until the end or [stopped]. */
interface FrameSource {
    fun play(emit: Emit, stopped: () -> Boolean)
}

/**
 * Mode 2, the default: the scenario's own frames (video via MediaMetadataRetriever, which decodes
 * with MediaCodec, or `frames/` images) and the poses of poses.txt interpolated at each frame's
 * timestamp. THIS BYPASSES ARCORE TRACKING: the poses are the recorded ones, not ARCore's.
 * [realtime]: frame i is released at start + (t_i - t_0); else as fast as [emit] returns.
 */
class ScenarioFrameSource(private val sc: Scenario, private val realtime: Boolean) : FrameSource {
    private val queue = ArrayBlockingQueue<Bitmap>(8) // decode-ahead, so decoding does not pace playback

    private val frameFiles by lazy {
        File(sc.dir, "frames").listFiles { f -> !f.name.startsWith(".") }!!.sortedBy { it.name }
    }

    private fun decode(start: Int, count: Int): List<Bitmap> {
        if (sc.video == "frames/") {
            return frameFiles.subList(start, start + count).map {
                BitmapFactory.decodeFile(it.absolutePath) ?: throw IllegalStateException("cannot decode ${it.name}")
            }
        }
        val mmr = MediaMetadataRetriever()
        try {
            mmr.setDataSource(File(sc.dir, sc.video).absolutePath)
            val params = MediaMetadataRetriever.BitmapParams().apply { preferredConfig = Bitmap.Config.ARGB_8888 }
            return mmr.getFramesAtIndex(start, count, params)
        } finally {
            mmr.release()
        }
    }

    override fun play(emit: Emit, stopped: () -> Boolean) {
        val decoder = Thread({
            try {
                var i = 0
                while (i < sc.frameCount && !stopped()) {
                    val n = minOf(8, sc.frameCount - i)
                    for (b in decode(i, n)) while (!queue.offer(b, 100, TimeUnit.MILLISECONDS)) if (stopped()) return@Thread
                    i += n
                }
            } catch (e: InterruptedException) {
                return@Thread
            }
        }, "arsim-decode")
        decoder.start()
        try {
            while (queue.remainingCapacity() > 0 && decoder.isAlive) Thread.sleep(5) // fill before the clock starts
            var startNs = 0L
            for (i in 0 until sc.frameCount) {
                if (stopped()) return
                val image = queue.poll(5, TimeUnit.SECONDS) ?: throw IllegalStateException("video decoding stalled at frame $i")
                if (i == 0) startNs = SystemClock.elapsedRealtimeNanos()
                if (realtime) {
                    val dueNs = startNs + ((sc.frameTimes[i] - sc.frameTimes[0]) * 1e9).toLong()
                    val waitMs = (dueNs - SystemClock.elapsedRealtimeNanos()) / 1_000_000
                    if (waitMs > 0) Thread.sleep(waitMs)
                }
                emit(image, sc.trajectory.at(sc.frameTimes[i]), sc.camera, sc.tracking[i])
            }
        } finally {
            decoder.interrupt()
        }
    }
}

/**
 * Mode 1: a real ARCore Session replaying an ARCore recording (the scenario's proposed
 * `arcore_dataset` file): pause → setPlaybackDatasetUri → resume; each new frame of
 * `session.update()` gives the CPU camera image, ARCore's own camera pose and intrinsics.
 * Playback is real time only (ARCore cannot change its speed). A GL context with a camera
 * texture exists only because ARCore requires one; nothing is drawn with it.
 */
class ArcoreFrameSource(private val context: Context, private val dataset: File) : FrameSource {
    override fun play(emit: Emit, stopped: () -> Boolean) {
        val egl = OffscreenGl()
        val session = Session(context)
        try {
            session.configure(Config(session).apply { updateMode = Config.UpdateMode.BLOCKING })
            session.setCameraTextureName(egl.cameraTexture)
            session.pause()
            session.setPlaybackDatasetUri(Uri.fromFile(dataset))
            session.resume()
            var last = -1L
            while (!stopped()) {
                val frame = session.update()
                when (session.playbackStatus) {
                    PlaybackStatus.FINISHED -> return
                    PlaybackStatus.IO_ERROR -> throw IllegalStateException("ARCore playback: I/O error reading ${dataset.name}")
                    else -> Unit
                }
                if (frame.timestamp == last || frame.timestamp == 0L) continue
                last = frame.timestamp
                val image = try {
                    frame.acquireCameraImage()
                } catch (e: NotYetAvailableException) {
                    continue
                }
                val bitmap = image.use { yuvToBitmap(it) }
                val cam = frame.camera
                val p = cam.pose // physical camera: same orientation as the CPU image
                val k = cam.imageIntrinsics
                val (w, h) = k.imageDimensions.let { it[0] to it[1] }
                val pose = Pose(
                    doubleArrayOf(p.tx().toDouble(), p.ty().toDouble(), p.tz().toDouble()),
                    doubleArrayOf(p.qx().toDouble(), p.qy().toDouble(), p.qz().toDouble(), p.qw().toDouble())
                )
                val intr = Intrinsics(
                    w, h, k.focalLength[0].toDouble(), k.focalLength[1].toDouble(),
                    k.principalPoint[0].toDouble(), k.principalPoint[1].toDouble()
                )
                val tracking = if (cam.trackingState == TrackingState.TRACKING) "tracking" else "lost"
                emit(bitmap, pose, intr, tracking)
            }
        } finally {
            session.close()
            egl.release()
        }
    }

    /**
     * A 1x1 pbuffer GLES2 context current on this thread, with an external OES texture. Also
     * used by RecordingActivity: ARCore needs a camera texture even when nothing is drawn.
     */
    internal class OffscreenGl {
        private val display = EGL14.eglGetDisplay(EGL14.EGL_DEFAULT_DISPLAY)
        private val context: android.opengl.EGLContext
        private val surface: android.opengl.EGLSurface
        val cameraTexture: Int

        init {
            val version = IntArray(2)
            EGL14.eglInitialize(display, version, 0, version, 1)
            val attrs = intArrayOf(
                EGL14.EGL_RENDERABLE_TYPE, EGL14.EGL_OPENGL_ES2_BIT, EGL14.EGL_SURFACE_TYPE, EGL14.EGL_PBUFFER_BIT,
                EGL14.EGL_RED_SIZE, 8, EGL14.EGL_GREEN_SIZE, 8, EGL14.EGL_BLUE_SIZE, 8, EGL14.EGL_NONE
            )
            val configs = arrayOfNulls<android.opengl.EGLConfig>(1)
            val n = IntArray(1)
            EGL14.eglChooseConfig(display, attrs, 0, configs, 0, 1, n, 0)
            check(n[0] > 0) { "no EGL config for the ARCore camera texture" }
            context = EGL14.eglCreateContext(display, configs[0], EGL14.EGL_NO_CONTEXT,
                intArrayOf(EGL14.EGL_CONTEXT_CLIENT_VERSION, 2, EGL14.EGL_NONE), 0)
            surface = EGL14.eglCreatePbufferSurface(display, configs[0],
                intArrayOf(EGL14.EGL_WIDTH, 1, EGL14.EGL_HEIGHT, 1, EGL14.EGL_NONE), 0)
            EGL14.eglMakeCurrent(display, surface, surface, context)
            val tex = IntArray(1)
            GLES20.glGenTextures(1, tex, 0)
            GLES20.glBindTexture(0x8D65 /* GL_TEXTURE_EXTERNAL_OES */, tex[0])
            cameraTexture = tex[0]
        }

        fun release() {
            EGL14.eglMakeCurrent(display, EGL14.EGL_NO_SURFACE, EGL14.EGL_NO_SURFACE, EGL14.EGL_NO_CONTEXT)
            EGL14.eglDestroySurface(display, surface)
            EGL14.eglDestroyContext(display, context)
        }
    }
}

/**
 * YUV_420_888 (any row/pixel strides) → ARGB_8888, BT.601 full range as camera images are.
 * [step] > 1 keeps every step-th pixel of every step-th row (a small, cheap preview).
 */
fun yuvToBitmap(image: Image, step: Int = 1): Bitmap {
    val w = image.width / step
    val h = image.height / step
    val (yP, uP, vP) = image.planes.let { Triple(it[0], it[1], it[2]) }
    val y = yP.buffer
    val u = uP.buffer
    val v = vP.buffer
    val out = IntArray(w * h)
    for (oy in 0 until h) {
        val row = oy * step
        for (ox in 0 until w) {
            val col = ox * step
            val yy = (y.get(row * yP.rowStride + col * yP.pixelStride).toInt() and 255).toFloat()
            val ci = (row / 2) * uP.rowStride + (col / 2) * uP.pixelStride
            val cb = (u.get(ci).toInt() and 255) - 128f
            val cr = (v.get((row / 2) * vP.rowStride + (col / 2) * vP.pixelStride).toInt() and 255) - 128f
            val r = (yy + 1.402f * cr).toInt().coerceIn(0, 255)
            val g = (yy - 0.344136f * cb - 0.714136f * cr).toInt().coerceIn(0, 255)
            val b = (yy + 1.772f * cb).toInt().coerceIn(0, 255)
            out[oy * w + ox] = (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
    }
    return Bitmap.createBitmap(out, w, h, Bitmap.Config.ARGB_8888)
}
