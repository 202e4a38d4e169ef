package dev.arsim.bench

import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.UUID
import kotlin.math.abs
import kotlin.math.sqrt

/**
 * One sample of the app's pose track in an ARCore recording (mobile/CONTRACT.md §6): 96 bytes,
 * little-endian, no padding, Python `struct` "<4sBBHq7d4f2i", as
 * simulator/scenario/importers/arsim_app.py reads it:
 *
 * | offset | type | field |
 * |---|---|---|
 * | 0 | 4 bytes | magic `ARSP` |
 * | 4 | uint8 | version 1 |
 * | 5 | uint8 | tracking state: 0 TRACKING, 1 PAUSED, 2 STOPPED |
 * | 6 | uint16 | reserved, 0 |
 * | 8 | int64 | `Frame.getTimestamp()`, ns |
 * | 16 | 7 × float64 | `Camera.getPose()`: tx ty tz qx qy qz qw |
 * | 72 | 4 × float32 | `Camera.getImageIntrinsics()`: fx fy cx cy (pixels of the CPU image) |
 * | 88 | 2 × int32 | CPU image width, height |
 *
 * Pure Kotlin (primitives and ByteBuffer only) so that a JVM unit test checks the layout.
 */
object PoseRecord {
    const val SIZE = 96
    const val VERSION = 1
    val MAGIC = byteArrayOf('A'.code.toByte(), 'R'.code.toByte(), 'S'.code.toByte(), 'P'.code.toByte())

    /** Track id (`Track.setId`): what ARCore playback passes to `Frame.getUpdatedTrackData`. */
    val TRACK_ID: UUID = UUID.fromString("cd354e51-2cf6-4072-ae06-5210330d5f0a")

    /** `Track.setMimeType`: the importer finds the track by this MIME type. */
    const val MIME_TYPE = "application/x-arsim-pose"

    /** `Track.setMetadata` (UTF-8; informational, nothing reads it). */
    const val TRACK_METADATA = "arsim-pose/1"

    /**
     * Tracking-state codes of byte 5. Written through an explicit mapping in the app rather
     * than `TrackingState.ordinal`, so a reordered enum in a later ARCore cannot change them.
     */
    const val TRACKING = 0
    const val PAUSED = 1
    const val STOPPED = 2

    /**
     * The record of one camera frame, as a little-endian buffer of [SIZE] bytes, position 0.
     * [translation] (x y z, m) and [quaternion] (x y z w) are `Pose.getTranslation()` /
     * `getRotationQuaternion()`; [focalLength], [principalPoint], [imageDimensions] those of
     * `CameraIntrinsics`. ARCore hands out floats: they are widened to doubles (exact).
     */
    fun encode(
        timestampNs: Long,
        trackingState: Int,
        translation: FloatArray,
        quaternion: FloatArray,
        focalLength: FloatArray,
        principalPoint: FloatArray,
        imageDimensions: IntArray,
    ): ByteBuffer {
        require(trackingState in 0..255) { "tracking state $trackingState does not fit a byte" }
        require(translation.size == 3 && quaternion.size == 4) { "pose: 3 + 4 values expected" }
        require(focalLength.size == 2 && principalPoint.size == 2 && imageDimensions.size == 2) { "intrinsics: 2 + 2 + 2 values expected" }
        val out = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN)
        out.put(MAGIC)
        out.put(VERSION.toByte())
        out.put(trackingState.toByte())
        out.putShort(0) // reserved
        out.putLong(timestampNs)
        for (v in translation) out.putDouble(v.toDouble())
        for (v in quaternion) out.putDouble(v.toDouble())
        out.putFloat(focalLength[0]).putFloat(focalLength[1])
        out.putFloat(principalPoint[0]).putFloat(principalPoint[1])
        out.putInt(imageDimensions[0]).putInt(imageDimensions[1])
        check(out.position() == SIZE) // the layout above adds up to 96 bytes
        out.flip()
        return out
    }

    /**
     * Null when the values make a record the importer accepts; else why not. The importer
     * rejects the *whole file* for one sample with a non-finite value, a quaternion off unit
     * length by more than 1e-3 or non-positive focal lengths or image size, so such a frame
     * is better left without a sample (the importer interpolates frames without one).
     */
    fun problem(translation: FloatArray, quaternion: FloatArray, focalLength: FloatArray, principalPoint: FloatArray, imageDimensions: IntArray): String? {
        val values = translation + quaternion + focalLength + principalPoint
        if (values.any { !it.isFinite() }) return "non-finite pose or intrinsics"
        val norm = sqrt(quaternion.sumOf { it.toDouble() * it.toDouble() })
        if (abs(norm - 1.0) > 1e-3) return "quaternion of length $norm"
        if (focalLength.any { it <= 0f } || imageDimensions.any { it <= 0 }) return "no intrinsics yet"
        return null
    }

    /**
     * `RecordingConfig.setRecordingRotation`: the clockwise turn that shows the recorded CPU
     * image upright (written as the MP4's rotation metadata). For a back camera that is the
     * sensor orientation less the display rotation, as for any Camera2 preview: a sensor
     * mounted at 90° on a phone held upright (display rotation 0) gives 90; the same phone
     * turned to landscape (display rotation 90) gives 0, the picture is upright as stored.
     */
    fun recordingRotation(sensorOrientationDegrees: Int, displayRotationDegrees: Int): Int =
        Math.floorMod(sensorOrientationDegrees - displayRotationDegrees, 360)
}
