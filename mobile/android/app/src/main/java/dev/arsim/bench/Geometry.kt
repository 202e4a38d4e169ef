package dev.arsim.bench

import kotlin.math.acos
import kotlin.math.sin
import kotlin.math.sqrt

// Pure Kotlin: poses, TUM interpolation and anchor projection, with the conventions of
// scenarios/README.md and simulator/pipeline/compose.py (camera-to-world pose, right-handed,
// y up, the camera looks down -z, image v grows downwards).

/** Camera-to-world pose: position [t] (m) and unit quaternion [q] = (x, y, z, w). */
class Pose(val t: DoubleArray, val q: DoubleArray) {
    /** 3x3 rotation matrix, row-major (simulator/types.py Pose.rotation). */
    fun rotation(): Array<DoubleArray> {
        val (x, y, z, w) = q.toList()
        return arrayOf(
            doubleArrayOf(1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
            doubleArrayOf(2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
            doubleArrayOf(2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y))
        )
    }
}

/** Pinhole intrinsics in pixels for images of [width] x [height]. */
class Intrinsics(val width: Int, val height: Int, val fx: Double, val fy: Double, val cx: Double, val cy: Double)

class Anchor(val id: String, val position: DoubleArray, val rotation: DoubleArray, val size: DoubleArray)

/** poses.txt: lerp for positions, shortest-arc slerp for rotations (simulator/scenario/poses.py). */
class Trajectory(private val times: DoubleArray, private val poses: List<Pose>) {
    init {
        require(times.size >= 2 && times.size == poses.size) { "poses.txt: at least two poses" }
    }

    /** Pose at [t], clamped to the recorded range (the scenario format forbids extrapolation). */
    fun at(t: Double): Pose {
        if (t <= times.first()) return poses.first()
        if (t >= times.last()) return poses.last()
        var lo = 0
        var hi = times.size - 1 // invariant: times[lo] <= t < times[hi]
        while (hi - lo > 1) {
            val mid = (lo + hi) / 2
            if (times[mid] <= t) lo = mid else hi = mid
        }
        val a = (t - times[lo]) / (times[hi] - times[lo])
        val p0 = poses[lo]
        val p1 = poses[hi]
        val pos = DoubleArray(3) { (1 - a) * p0.t[it] + a * p1.t[it] }
        return Pose(pos, slerp(p0.q, p1.q, a))
    }

    companion object {
        private const val SMALL_ANGLE = 1e-6

        fun slerp(q0: DoubleArray, q1: DoubleArray, a: Double): DoubleArray {
            if (a == 0.0) return q0
            if (a == 1.0) return q1
            var dot = q0[0] * q1[0] + q0[1] * q1[1] + q0[2] * q1[2] + q0[3] * q1[3]
            val sign = if (dot < 0) -1.0 else 1.0 // q and -q are one rotation: the short way
            dot = (dot * sign).coerceIn(-1.0, 1.0)
            val angle = acos(dot)
            val s = sin(angle)
            val w0 = if (s < SMALL_ANGLE) 1 - a else sin((1 - a) * angle) / s
            val w1 = if (s < SMALL_ANGLE) a else sin(a * angle) / s
            val out = DoubleArray(4) { w0 * q0[it] + w1 * sign * q1[it] }
            val n = sqrt(out[0] * out[0] + out[1] * out[1] + out[2] * out[2] + out[3] * out[3])
            return DoubleArray(4) { out[it] / n }
        }
    }
}

object Projection {
    /** The 12 box edges as corner index pairs, corners enumerated by sign bits (compose.py). */
    val BOX_EDGES = arrayOf(
        intArrayOf(0, 1), intArrayOf(0, 2), intArrayOf(0, 4), intArrayOf(1, 3), intArrayOf(1, 5), intArrayOf(2, 3),
        intArrayOf(2, 6), intArrayOf(3, 7), intArrayOf(4, 5), intArrayOf(4, 6), intArrayOf(5, 7), intArrayOf(6, 7)
    )
    const val NEAR_M = 0.05 // edges with an end closer than this to the camera plane are not drawn

    fun corners(anchor: Anchor): List<DoubleArray> {
        val r = Pose(doubleArrayOf(0.0, 0.0, 0.0), anchor.rotation).rotation()
        val out = ArrayList<DoubleArray>()
        for (sx in intArrayOf(-1, 1)) for (sy in intArrayOf(-1, 1)) for (sz in intArrayOf(-1, 1)) {
            val h = doubleArrayOf(sx * anchor.size[0] / 2, sy * anchor.size[1] / 2, sz * anchor.size[2] / 2)
            out.add(DoubleArray(3) { i -> anchor.position[i] + r[i][0] * h[0] + r[i][1] * h[1] + r[i][2] * h[2] })
        }
        return out
    }

    /** (u, v, depth) of world point [p]: c = Rᵀ(p − t), u = cx + fx·cx/(−cz), v = cy − fy·cy/(−cz). */
    fun project(pose: Pose, k: Intrinsics, p: DoubleArray): DoubleArray {
        val r = pose.rotation()
        val d = DoubleArray(3) { p[it] - pose.t[it] }
        val c = DoubleArray(3) { j -> r[0][j] * d[0] + r[1][j] * d[1] + r[2][j] * d[2] }
        val depth = -c[2]
        val safe = if (kotlin.math.abs(depth) < 1e-9) 1e-9 else depth
        return doubleArrayOf(k.cx + k.fx * c[0] / safe, k.cy - k.fy * c[1] / safe, depth)
    }

    /** Line segments (x0, y0, x1, y1) in camera-image pixels of [anchor]'s wireframe. */
    fun anchorSegments(anchor: Anchor, pose: Pose, k: Intrinsics): List<DoubleArray> {
        val px = corners(anchor).map { project(pose, k, it) }
        return BOX_EDGES.filter { (a, b) -> px[a][2] >= NEAR_M && px[b][2] >= NEAR_M }
            .map { (a, b) -> doubleArrayOf(px[a][0], px[a][1], px[b][0], px[b][1]) }
    }
}
