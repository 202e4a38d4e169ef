package dev.arsim.bench

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Test
import java.nio.ByteOrder

/**
 * The pose-track record of CONTRACT §6 (PoseRecord.kt) against the layout the Python importer
 * reads (simulator/scenario/importers/arsim_app.py, `struct` "<4sBBHq7d4f2i").
 */
class PoseRecordTest {
    private val translation = floatArrayOf(0.25f, -1.5f, 3.0f)
    private val quaternion = floatArrayOf(0.5f, -0.5f, 0.5f, 0.5f)
    private val focal = floatArrayOf(500.5f, 500.25f)
    private val principal = floatArrayOf(319.75f, 239.25f)
    private val size = intArrayOf(640, 480)
    private val timestamp = 123_456_789_012_345L

    private fun record() = PoseRecord.encode(timestamp, PoseRecord.PAUSED, translation, quaternion, focal, principal, size)

    private fun bytes(): ByteArray = record().let { b -> ByteArray(b.remaining()).also { b.get(it) } }

    @Test
    fun sizeMagicVersionAndState() {
        val b = record()
        assertEquals(0, b.position())
        assertEquals(96, b.remaining())
        assertEquals(PoseRecord.SIZE, b.limit())
        val raw = bytes()
        assertArrayEquals("ARSP".toByteArray(Charsets.US_ASCII), raw.copyOfRange(0, 4))
        assertEquals(1, raw[4].toInt()) // version
        assertEquals(1, raw[5].toInt()) // PAUSED
        assertEquals(0, raw[6].toInt())
        assertEquals(0, raw[7].toInt()) // reserved
    }

    @Test
    fun littleEndianFieldOffsets() {
        val b = record().order(ByteOrder.LITTLE_ENDIAN)
        assertEquals(timestamp, b.getLong(8))
        val pose = doubleArrayOf(0.25, -1.5, 3.0, 0.5, -0.5, 0.5, 0.5)
        for (i in 0 until 7) assertEquals("pose[$i]", pose[i], b.getDouble(16 + 8 * i), 0.0)
        assertEquals(500.5f, b.getFloat(72), 0f)
        assertEquals(500.25f, b.getFloat(76), 0f)
        assertEquals(319.75f, b.getFloat(80), 0f)
        assertEquals(239.25f, b.getFloat(84), 0f)
        assertEquals(640, b.getInt(88))
        assertEquals(480, b.getInt(92))
        // least significant byte first: the timestamp's low byte is at offset 8
        assertEquals((timestamp and 0xFF).toByte(), bytes()[8])
    }

    /** Byte for byte what Python's struct.pack("<4sBBHq7d4f2i", ...) gives for these values. */
    @Test
    fun sameBytesAsPythonStruct() {
        val python = "415253500101000079df0d8648700000000000000000d03f000000000000f8bf" +
            "0000000000000840000000000000e03f000000000000e0bf000000000000e03f" +
            "000000000000e03f0040fa430020fa4300e09f4300406f4380020000e0010000"
        assertEquals(python, bytes().joinToString("") { "%02x".format(it.toInt() and 0xFF) })
    }

    @Test
    fun recordsTheImporterWouldRejectAreFlagged() {
        assertNull(PoseRecord.problem(translation, quaternion, focal, principal, size))
        assertNotNull(PoseRecord.problem(translation, floatArrayOf(0f, 0f, 0f, 0f), focal, principal, size))
        assertNotNull(PoseRecord.problem(floatArrayOf(Float.NaN, 0f, 0f), quaternion, focal, principal, size))
        assertNotNull(PoseRecord.problem(translation, quaternion, floatArrayOf(0f, 0f), principal, size))
        assertNotNull(PoseRecord.problem(translation, quaternion, focal, principal, intArrayOf(0, 0)))
    }

    @Test
    fun recordingRotationShowsTheImageUpright() {
        assertEquals(90, PoseRecord.recordingRotation(90, 0)) // phone upright, usual back sensor
        assertEquals(0, PoseRecord.recordingRotation(90, 90)) // landscape (this app's orientation)
        assertEquals(180, PoseRecord.recordingRotation(90, 270))
        assertEquals(270, PoseRecord.recordingRotation(270, 0)) // sensor mounted the other way
    }

    @Test
    fun trackConstantsMatchTheContract() {
        assertEquals("cd354e51-2cf6-4072-ae06-5210330d5f0a", PoseRecord.TRACK_ID.toString())
        assertEquals("application/x-arsim-pose", PoseRecord.MIME_TYPE)
        assertEquals("arsim-pose/1", PoseRecord.TRACK_METADATA)
    }
}
