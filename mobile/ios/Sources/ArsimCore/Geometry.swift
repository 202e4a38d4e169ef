import Foundation

// Poses, TUM interpolation and anchor projection with the conventions of scenarios/README.md
// and simulator/pipeline/compose.py: camera-to-world pose, right-handed, y up, the camera looks
// down -z, image v grows downwards. (ARKit's camera transform uses the same axes.)

/// Camera-to-world pose: position `t` (m), unit quaternion `q` = (x, y, z, w).
public struct Pose {
    public var t: [Double]
    public var q: [Double]
    public init(t: [Double], q: [Double]) { self.t = t; self.q = q }

    /// Row-major 3x3 rotation (simulator/types.py Pose.rotation).
    public func rotation() -> [[Double]] {
        let (x, y, z, w) = (q[0], q[1], q[2], q[3])
        return [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    }
}

public struct Intrinsics {
    public let width: Int, height: Int
    public let fx: Double, fy: Double, cx: Double, cy: Double
    public init(width: Int, height: Int, fx: Double, fy: Double, cx: Double, cy: Double) {
        self.width = width; self.height = height; self.fx = fx; self.fy = fy; self.cx = cx; self.cy = cy
    }
}

public struct Anchor {
    public let id: String
    public let position: [Double], rotation: [Double], size: [Double]
    public init(id: String, position: [Double], rotation: [Double], size: [Double]) {
        self.id = id; self.position = position; self.rotation = rotation; self.size = size
    }
}

/// poses.txt: lerp for positions, shortest-arc slerp for rotations (simulator/scenario/poses.py).
public struct Trajectory {
    let times: [Double]
    let poses: [Pose]
    static let smallAngle = 1e-6

    public init(times: [Double], poses: [Pose]) throws {
        guard times.count >= 2, times.count == poses.count else { throw ArsimError("poses.txt: at least two poses") }
        self.times = times
        self.poses = poses
    }

    /// Pose at `t`, clamped to the recorded range (the format forbids extrapolation).
    public func at(_ t: Double) -> Pose {
        if t <= times[0] { return poses[0] }
        if t >= times[times.count - 1] { return poses[poses.count - 1] }
        var lo = 0, hi = times.count - 1 // times[lo] <= t < times[hi]
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if times[mid] <= t { lo = mid } else { hi = mid }
        }
        let a = (t - times[lo]) / (times[hi] - times[lo])
        let p0 = poses[lo], p1 = poses[hi]
        let position = (0..<3).map { (1 - a) * p0.t[$0] + a * p1.t[$0] }
        return Pose(t: position, q: Trajectory.slerp(p0.q, p1.q, a))
    }

    public static func slerp(_ q0: [Double], _ q1: [Double], _ a: Double) -> [Double] {
        if a == 0 { return q0 }
        if a == 1 { return q1 }
        var dot = (0..<4).reduce(0.0) { $0 + q0[$1] * q1[$1] }
        let sign: Double = dot < 0 ? -1 : 1 // q and -q are one rotation: take the short way
        dot = min(1, max(-1, dot * sign))
        let angle = acos(dot)
        let s = sin(angle)
        let w0 = s < smallAngle ? 1 - a : sin((1 - a) * angle) / s
        let w1 = s < smallAngle ? a : sin(a * angle) / s
        let out = (0..<4).map { w0 * q0[$0] + w1 * sign * q1[$0] }
        let n = sqrt(out.reduce(0.0) { $0 + $1 * $1 })
        return out.map { $0 / n }
    }
}

public enum Projection {
    /// The 12 box edges as corner index pairs, corners enumerated by sign bits (compose.py).
    public static let boxEdges = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3),
                                  (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]
    public static let nearM = 0.05 // edges with an end closer than this to the camera are not drawn

    public static func corners(_ a: Anchor) -> [[Double]] {
        let r = Pose(t: [0, 0, 0], q: a.rotation).rotation()
        var out = [[Double]]()
        for sx in [-1.0, 1.0] { for sy in [-1.0, 1.0] { for sz in [-1.0, 1.0] {
            let h = [sx * a.size[0] / 2, sy * a.size[1] / 2, sz * a.size[2] / 2]
            out.append((0..<3).map { i in a.position[i] + r[i][0] * h[0] + r[i][1] * h[1] + r[i][2] * h[2] })
        } } }
        return out
    }

    /// (u, v, depth) of world point `p`: c = Rᵀ(p − t), u = cx + fx·c.x/(−c.z), v = cy − fy·c.y/(−c.z).
    public static func project(_ pose: Pose, _ k: Intrinsics, _ p: [Double]) -> (u: Double, v: Double, depth: Double) {
        let r = pose.rotation()
        let d = (0..<3).map { p[$0] - pose.t[$0] }
        let c = (0..<3).map { j in r[0][j] * d[0] + r[1][j] * d[1] + r[2][j] * d[2] }
        let depth = -c[2]
        let safe = abs(depth) < 1e-9 ? 1e-9 : depth
        return (k.cx + k.fx * c[0] / safe, k.cy - k.fy * c[1] / safe, depth)
    }

    /// Segments (x0, y0, x1, y1) in camera-image pixels of the anchor's wireframe.
    public static func anchorSegments(_ a: Anchor, _ pose: Pose, _ k: Intrinsics) -> [(Double, Double, Double, Double)] {
        let px = corners(a).map { project(pose, k, $0) }
        return boxEdges.filter { px[$0.0].depth >= nearM && px[$0.1].depth >= nearM }
            .map { (px[$0.0].u, px[$0.0].v, px[$0.1].u, px[$0.1].v) }
    }
}
