package dev.arsim.bench

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** The proposed recording start parameters (RunParams.kt RecordParams). */
class RecordParamsTest {
    private fun error(extras: Map<String, Any?>): String = try {
        RecordParams.parse(extras)
        fail("accepted $extras")
        ""
    } catch (e: IllegalArgumentException) {
        e.message ?: ""
    }

    @Test
    fun typedAndStringExtras() {
        assertEquals(RecordParams("desk-1", null, false), RecordParams.parse(mapOf("arsim.record" to "desk-1")))
        assertEquals(RecordParams("desk-1", 20, true), RecordParams.parse(mapOf("arsim.record" to "desk-1", "arsim.record_seconds" to 20, "arsim.record_camera" to "largest")))
        assertEquals(RecordParams("desk-1", 20, false), RecordParams.parse(mapOf("arsim.record" to "desk-1", "arsim.record_seconds" to " 20")))
    }

    @Test
    fun onlyWhenAsked() {
        assertTrue(RecordParams.requested(mapOf("arsim.record" to "x")))
        assertFalse(RecordParams.requested(mapOf("arsim.scenario" to "orbit-desk")))
    }

    @Test
    fun badValuesAreOneLineErrors() {
        assertTrue(error(mapOf("arsim.record" to "../etc")).startsWith("arsim.record: expected"))
        assertTrue(error(mapOf("arsim.record" to "..")).startsWith("arsim.record: expected"))
        assertTrue(error(mapOf("arsim.record" to "a", "arsim.record_seconds" to "0")).startsWith("arsim.record_seconds:"))
        assertTrue(error(mapOf("arsim.record" to "a", "arsim.record_camera" to "4k")).startsWith("arsim.record_camera:"))
        assertEquals("arsim.scenario does not apply to a recording (arsim.record is given)", error(mapOf("arsim.record" to "a", "arsim.scenario" to "s")))
    }
}
