package dev.arsim.bench

import ai.onnxruntime.NNAPIFlags
import ai.onnxruntime.OnnxJavaType
import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
import ai.onnxruntime.TensorInfo
import android.graphics.Bitmap
import android.os.SystemClock
import org.json.JSONObject
import java.io.Closeable
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.EnumSet

/** The fields of a model card (simulator/zoo/card.py, `arsim-model-card/1`) that playback needs. */
class ModelCard(json: JSONObject?, val name: String) {
    private val input = json?.optJSONObject("input") ?: JSONObject()
    private val output = json?.optJSONObject("output") ?: JSONObject()
    val inLayout: String = input.optString("layout", "NCHW")
    val inChannels: String = input.optString("channels", "RGB")
    val inRange = range(input)
    val outLayout: String = output.optString("layout", "NCHW")
    val outChannels: String = output.optString("channels", "RGB")
    val outRange = range(output)
    val defaultSize = input.optInt("default_size", 256)
    private val multiple = input.optInt("size_multiple", 8)
    private val minSize = input.optInt("min_size", 64)
    private val maxSize = input.optInt("max_size", 1024)
    val parameters: Long? = if (json?.has("parameters") == true) json.getLong("parameters") else null
    private val flops = json?.optJSONObject("flops")

    /** FLOPs at [size] from the card's table, or null (report `model.flops` may be null). */
    fun flops(size: Int): Double? = flops?.optDouble(size.toString())?.takeIf { !it.isNaN() }

    /** card.py InputSpec.size_problem. */
    fun sizeProblem(size: Int): String? = when {
        size < minSize || size > maxSize -> "input size $size is outside $minSize..$maxSize"
        size % multiple != 0 -> "input size $size is not a multiple of $multiple"
        else -> null
    }

    private fun range(o: JSONObject): DoubleArray =
        o.optJSONArray("range")?.let { doubleArrayOf(it.getDouble(0), it.getDouble(1)) } ?: doubleArrayOf(0.0, 1.0)

    companion object {
        /** `arsim/models/<model>.json` (as the harness pushes it), else `<model>.card.json`, else defaults. */
        fun load(modelsDir: File, model: String): ModelCard {
            val f = listOf("$model.json", "$model.card.json").map { File(modelsDir, it) }.firstOrNull { it.isFile }
            return ModelCard(f?.let { JSONObject(it.readText()) }, model)
        }
    }
}

/**
 * One ONNX Runtime session: preprocess per the card (square resize, channel order, value range,
 * layout), `session.run` (timed alone: CONTRACT §4 inference_ms), postprocess to a Bitmap.
 * Backends (RunParams.BACKENDS): `cpu` = ORT's default CPU EP; `xnnpack` = XNNPACK EP;
 * `nnapi` = NNAPI EP; `nnapi-fp16` and `gpu-fp16` = NNAPI with USE_FP16 (the standard
 * onnxruntime-android package has no OpenGL/Vulkan EP: NNAPI picks the GPU/DSP/NPU driver; NNAPI
 * is deprecated from Android 15 but still shipped). Not thread-safe: used from the one worker.
 */
class Stylizer(modelFile: File, private val card: ModelCard, val size: Int, backend: String) : Closeable {
    private val env = OrtEnvironment.getEnvironment()
    private val session: OrtSession
    private val inputName: String
    private val input = ByteBuffer.allocateDirect(4 * 3 * size * size).order(ByteOrder.nativeOrder()).asFloatBuffer()
    private val pixels = IntArray(size * size)

    init {
        val opts = OrtSession.SessionOptions()
        when (backend) {
            "cpu" -> Unit
            "xnnpack" -> opts.addXnnpack(mapOf("intra_op_num_threads" to "4"))
            "nnapi" -> opts.addNnapi()
            "nnapi-fp16", "gpu-fp16" -> opts.addNnapi(EnumSet.of(NNAPIFlags.USE_FP16))
            else -> throw IllegalArgumentException("arsim.backend: unknown backend '$backend'")
        }
        session = env.createSession(modelFile.absolutePath, opts)
        inputName = session.inputNames.first()
        val info = session.inputInfo.getValue(inputName).info
        if (info !is TensorInfo || info.type != OnnxJavaType.FLOAT)
            throw IllegalArgumentException("model ${card.name}: input '$inputName' is not a float32 tensor")
    }

    class Output(val bitmap: Bitmap, val runStartNs: Long, val runEndNs: Long)

    fun stylize(frame: Bitmap): Output {
        val scaled = Bitmap.createScaledBitmap(frame, size, size, true)
        scaled.getPixels(pixels, 0, size, 0, 0, size, size)
        if (scaled !== frame) scaled.recycle()
        val lo = card.inRange[0].toFloat()
        val scale = ((card.inRange[1] - card.inRange[0]) / 255.0).toFloat()
        val bgr = card.inChannels == "BGR"
        val nhwc = card.inLayout == "NHWC"
        val plane = size * size
        for (i in 0 until plane) {
            val p = pixels[i]
            val r = (p shr 16) and 255
            val g = (p shr 8) and 255
            val b = p and 255
            val first = lo + scale * (if (bgr) b else r)
            val last = lo + scale * (if (bgr) r else b)
            if (nhwc) {
                input.put(i * 3, first); input.put(i * 3 + 1, lo + scale * g); input.put(i * 3 + 2, last)
            } else {
                input.put(i, first); input.put(plane + i, lo + scale * g); input.put(2 * plane + i, last)
            }
        }
        input.rewind()
        val shape = if (card.inLayout == "NHWC") longArrayOf(1, size.toLong(), size.toLong(), 3) else longArrayOf(1, 3, size.toLong(), size.toLong())
        OnnxTensor.createTensor(env, input, shape).use { tensor ->
            val start = SystemClock.elapsedRealtimeNanos()
            session.run(mapOf(inputName to tensor)).use { result ->
                val end = SystemClock.elapsedRealtimeNanos()
                val out = result.get(0) as OnnxTensor
                return Output(toBitmap(out), start, end)
            }
        }
    }

    private fun toBitmap(out: OnnxTensor): Bitmap {
        val s = (out.info as TensorInfo).shape
        val nhwc = card.outLayout == "NHWC"
        val h = (if (nhwc) s[1] else s[2]).toInt()
        val w = (if (nhwc) s[2] else s[3]).toInt()
        val buf = out.floatBuffer
        val lo = card.outRange[0]
        val scale = 255.0 / (card.outRange[1] - card.outRange[0])
        val bgr = card.outChannels == "BGR"
        val plane = w * h
        fun at(i: Int, c: Int): Int = // rounded and saturated to 0..255, as stylize.py
            Math.round((buf.get(if (nhwc) i * 3 + c else c * plane + i) - lo) * scale).toInt().coerceIn(0, 255)
        val argb = IntArray(plane) { i ->
            val r = at(i, if (bgr) 2 else 0)
            val b = at(i, if (bgr) 0 else 2)
            (0xFF shl 24) or (r shl 16) or (at(i, 1) shl 8) or b
        }
        return Bitmap.createBitmap(argb, w, h, Bitmap.Config.ARGB_8888)
    }

    override fun close() = session.close()
}
