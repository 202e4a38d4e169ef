package dev.arsim.bench

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Color
import android.graphics.Paint
import android.graphics.RectF
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraManager
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import android.view.Surface
import android.view.SurfaceView
import android.view.WindowManager
import com.google.ar.core.ArCoreApk
import com.google.ar.core.CameraConfig
import com.google.ar.core.CameraConfigFilter
import com.google.ar.core.Config
import com.google.ar.core.Frame
import com.google.ar.core.RecordingConfig
import com.google.ar.core.RecordingStatus
import com.google.ar.core.Session
import com.google.ar.core.Track
import com.google.ar.core.TrackingState
import com.google.ar.core.exceptions.UnavailableException
import java.io.File
import java.nio.ByteBuffer
import java.util.Locale
import java.util.concurrent.Executors
import java.util.concurrent.RejectedExecutionException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.math.min

/**
 * Records a session on the phone (CONTRACT §6) with ARCore's Recording API into
 * `getExternalFilesDir(null)/arsim/recordings/<name>.mp4`: ARCore writes its camera track(s)
 * and its own data tracks, the app adds the arsim pose track, one [PoseRecord] per new camera
 * frame. Reached from PlaybackActivity when the start extras hold `arsim.record`
 * ([RecordParams]). Lines on logcat tag ARSIM: `ARSIM recording <abs path>` when ARCore
 * records, `ARSIM recorded <abs path> <frames> <samples>` once the file is complete (frames:
 * new camera frames seen while recording; samples: pose records ARCore accepted), or
 * `ARSIM error <message>`.
 *
 * The recording stops on a tap, after `arsim.record_seconds`, or when the activity pauses
 * (home, another app, screen off); the file is finished in every case. A force-stop
 * (`am force-stop`, `am start -S`) kills the process before ARCore has written the MP4's
 * index: such a file is unusable.
 */
class RecordingActivity : Activity() {
    private lateinit var params: RecordParams
    private lateinit var surface: SurfaceView
    private lateinit var file: File
    private val stop = AtomicBoolean(false)
    private var worker: Thread? = null
    private var done = false // recorded or failed: never starts again
    private var askedPermission = false
    private var askedInstall = false
    private val frames = AtomicInteger(0) // new camera frames while recording
    private val samples = AtomicInteger(0) // pose records ARCore accepted
    private val previewer = Executors.newSingleThreadExecutor()
    private val previewBusy = AtomicBoolean(false)
    private var lastPreviewMs = 0L // worker thread only
    private val imagePaint = Paint(Paint.FILTER_BITMAP_FLAG)
    private val textPaint = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.WHITE; textSize = 36f; setShadowLayer(3f, 0f, 0f, Color.BLACK) }

    private fun say(line: String) = Log.i(PlaybackActivity.TAG, "ARSIM $line")

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        // No background on the SurfaceView itself: a view background is drawn over its surface.
        surface = SurfaceView(this).also { setContentView(it) }
        surface.setOnClickListener { stop.set(true) }
        @Suppress("DEPRECATION")
        val extras = intent.extras?.let { b -> b.keySet().associateWith { b.get(it) } } ?: emptyMap()
        params = try {
            RecordParams.parse(extras)
        } catch (e: IllegalArgumentException) {
            return fail(e.message ?: e.toString())
        }
        file = File(getExternalFilesDir(null), "arsim/recordings/${params.name}.mp4")
        // ARCore would overwrite it; a name is one session, so an existing file is an error.
        if (file.exists()) return fail("recording ${params.name} exists: ${file.absolutePath} (pick another arsim.record name)")
    }

    override fun onResume() {
        super.onResume()
        if (done || worker != null) return
        if (checkSelfPermission(Manifest.permission.CAMERA) != PackageManager.PERMISSION_GRANTED) {
            if (!askedPermission) { // the answer comes to onRequestPermissionsResult, then onResume again
                askedPermission = true
                requestPermissions(arrayOf(Manifest.permission.CAMERA), CAMERA_REQUEST)
            }
            return
        }
        try {
            // A live session (unlike playback) needs Google Play Services for AR installed.
            if (ArCoreApk.getInstance().requestInstall(this, !askedInstall) == ArCoreApk.InstallStatus.INSTALL_REQUESTED) {
                askedInstall = true
                return // ARCore's install flow runs; onResume comes again after it
            }
        } catch (e: UnavailableException) {
            return fail("ARCore unavailable: ${e.javaClass.simpleName}")
        }
        val rotation = displayRotationDegrees()
        stop.set(false)
        worker = Thread({ record(rotation) }, "arsim-record").also { it.start() }
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults)
        if (requestCode == CAMERA_REQUEST && grantResults.firstOrNull() != PackageManager.PERMISSION_GRANTED) {
            fail("camera permission denied (adb shell pm grant $packageName android.permission.CAMERA)")
        }
    }

    /**
     * The camera must be given up when the activity pauses: stop and wait for the worker, which
     * stops the recording (ARCore then writes the MP4 index) and closes the session. Usually
     * well under a second; bounded so that a stuck ARCore cannot make the app not respond.
     */
    override fun onPause() {
        stop.set(true)
        worker?.join(STOP_WAIT_MS)
        super.onPause()
    }

    override fun onDestroy() {
        previewer.shutdownNow()
        super.onDestroy()
    }

    /** The recording, on its own thread: ARCore's update() needs the GL context current here. */
    private fun record(displayRotation: Int) {
        var gl: ArcoreFrameSource.OffscreenGl? = null
        var session: Session? = null
        var recording = false
        try {
            gl = ArcoreFrameSource.OffscreenGl()
            val s = Session(this).also { session = it }
            if (params.largestImage) largestCpuImage(s)?.let { s.cameraConfig = it }
            s.configure(Config(s).apply { updateMode = Config.UpdateMode.BLOCKING })
            s.setCameraTextureName(gl.cameraTexture)
            s.resume()
            val rotation = PoseRecord.recordingRotation(sensorOrientation(s.cameraConfig), displayRotation)
            file.parentFile?.mkdirs()
            val track = Track(s)
                .setId(PoseRecord.TRACK_ID)
                .setMimeType(PoseRecord.MIME_TYPE)
                .setMetadata(ByteBuffer.wrap(PoseRecord.TRACK_METADATA.toByteArray(Charsets.UTF_8)))
            s.startRecording(
                RecordingConfig(s)
                    .setMp4DatasetUri(Uri.fromFile(file))
                    .setAutoStopOnPause(true) // a pause that bypasses stopRecording below still ends the file
                    .setRecordingRotation(rotation)
                    .addTrack(track)
            )
            if (s.recordingStatus != RecordingStatus.OK) throw IllegalStateException("ARCore recording status ${s.recordingStatus} after startRecording")
            recording = true
            say("recording ${file.absolutePath}")
            val startMs = SystemClock.elapsedRealtime()
            val endMs = params.seconds?.let { startMs + it * 1000L }
            var last = 0L
            while (!stop.get() && (endMs == null || SystemClock.elapsedRealtime() < endMs)) {
                val frame = s.update()
                if (s.recordingStatus == RecordingStatus.IO_ERROR) throw IllegalStateException("ARCore recording: I/O error writing ${file.name}")
                val ts = frame.timestamp
                if (ts == 0L || ts == last) continue // no new camera image in this update
                last = ts
                frames.incrementAndGet()
                if (recordPose(frame)) samples.incrementAndGet()
                preview(frame, (SystemClock.elapsedRealtime() - startMs) / 1000.0)
            }
            s.stopRecording()
            recording = false
            if (!file.isFile) throw IllegalStateException("ARCore wrote no file at ${file.absolutePath}")
            say("recorded ${file.absolutePath} ${frames.get()} ${samples.get()}")
            runOnUiThread { finishRecording() }
        } catch (e: Exception) {
            if (recording) runCatching { session?.stopRecording() } // keep what was recorded readable
            runOnUiThread { fail("recording: ${e.javaClass.simpleName}: ${e.message}") }
        } finally {
            session?.close() // also pauses: the camera is free again
            gl?.release()
        }
    }

    /**
     * The pose track's sample for this frame. Returns false when there is none: a record the
     * importer would reject (PoseRecord.problem), or ARCore refusing the sample with
     * IllegalStateException, which its docs allow under load (the importer interpolates frames
     * without a sample and says how many in its notes).
     */
    private fun recordPose(frame: Frame): Boolean {
        val camera = frame.camera
        val pose = camera.pose // the physical camera of the CPU image, not getDisplayOrientedPose()
        val k = camera.imageIntrinsics // of the CPU image, not getTextureIntrinsics()
        val t = pose.translation
        val q = pose.rotationQuaternion
        val focal = k.focalLength
        val principal = k.principalPoint
        val size = k.imageDimensions
        if (PoseRecord.problem(t, q, focal, principal, size) != null) return false
        val state = when (camera.trackingState) {
            TrackingState.TRACKING -> PoseRecord.TRACKING
            TrackingState.PAUSED -> PoseRecord.PAUSED
            else -> PoseRecord.STOPPED
        }
        return try {
            frame.recordTrackData(PoseRecord.TRACK_ID, PoseRecord.encode(frame.timestamp, state, t, q, focal, principal, size))
            true
        } catch (e: IllegalStateException) {
            false
        }
    }

    /** The camera config with the largest CPU image (`arsim.record_camera=largest`); ARCore's own default is 640x480. */
    private fun largestCpuImage(session: Session): CameraConfig? {
        val filter = CameraConfigFilter(session).setFacingDirection(CameraConfig.FacingDirection.BACK)
        return session.getSupportedCameraConfigs(filter).maxByOrNull { it.imageSize.width.toLong() * it.imageSize.height }
    }

    private fun sensorOrientation(config: CameraConfig): Int =
        getSystemService(CameraManager::class.java).getCameraCharacteristics(config.cameraId)
            .get(CameraCharacteristics.SENSOR_ORIENTATION) ?: 90

    @Suppress("DEPRECATION")
    private fun displayRotationDegrees(): Int {
        val rotation = (if (Build.VERSION.SDK_INT >= 30) display else windowManager.defaultDisplay)?.rotation ?: Surface.ROTATION_0
        return when (rotation) {
            Surface.ROTATION_90 -> 90
            Surface.ROTATION_180 -> 180
            Surface.ROTATION_270 -> 270
            else -> 0
        }
    }

    /**
     * A small picture of the camera (about 320 px wide, at most ~10 per second) so the person
     * recording can aim. Converted here (the Image is valid only with its frame) but drawn on
     * another thread, and skipped while the previous one is still being drawn, so that it
     * never holds up session.update() and the pose samples.
     */
    private fun preview(frame: Frame, seconds: Double) {
        val now = SystemClock.elapsedRealtime()
        if (now - lastPreviewMs < 100 || previewBusy.get()) return
        lastPreviewMs = now
        val bitmap = try {
            frame.acquireCameraImage().use { yuvToBitmap(it, maxOf(1, it.width / 320)) }
        } catch (e: Exception) {
            return // NotYetAvailable, resources exhausted…: a preview is optional
        }
        val status = String.format(Locale.US, "REC %s  %.1f s  %d frames  %d poses — tap to stop", params.name, seconds, frames.get(), samples.get())
        previewBusy.set(true)
        try {
            previewer.execute {
                try {
                    draw(bitmap, status)
                } finally {
                    previewBusy.set(false)
                }
            }
        } catch (e: RejectedExecutionException) {
            previewBusy.set(false) // the activity is being destroyed: no preview any more
        }
    }

    private fun draw(image: Bitmap, status: String) {
        val holder = surface.holder
        if (!holder.surface.isValid) return
        val canvas = try {
            holder.lockCanvas()
        } catch (e: Exception) {
            null
        } ?: return
        try {
            canvas.drawColor(Color.BLACK)
            val scale = min(canvas.width / image.width.toFloat(), canvas.height / image.height.toFloat())
            val w = image.width * scale
            val h = image.height * scale
            canvas.drawBitmap(image, null, RectF((canvas.width - w) / 2, (canvas.height - h) / 2, (canvas.width + w) / 2, (canvas.height + h) / 2), imagePaint)
            canvas.drawText(status, 24f, 48f, textPaint)
        } finally {
            holder.unlockCanvasAndPost(canvas)
        }
    }

    private fun finishRecording() {
        done = true
        finish()
    }

    /** `ARSIM error <message>` (one line), then finish. */
    private fun fail(message: String) {
        if (done) return
        done = true
        say("error ${message.replace('\n', ' ')}")
        finish()
    }

    companion object {
        private const val CAMERA_REQUEST = 1
        private const val STOP_WAIT_MS = 3000L
    }
}
