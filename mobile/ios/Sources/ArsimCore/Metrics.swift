import Foundation

/// One camera frame of a run, as it goes into report.json `frames[]`. Times are seconds from the
/// first played frame's capture time; nil = it did not happen. Mutated under `Recorder`'s lock.
public final class FrameRecord {
    public let index: Int
    public let tCapture: Double
    public let tracking: String
    public var stylized = false // its inference completed
    public var tInferStart: Double? // session.run only (CONTRACT §4 inference_ms)
    public var tInferEnd: Double?
    public var inputSize: Int?
    public var tDisplay: Double? // present time of its stylized picture
    public var replaced = false // replaced while waiting by a newer frame: never stylized
    public var skipped = false // a policy chose not to stylize it (never in this app; shared rules)
    public var dropped = false // not on screen by t_end (Metrics.markDropped)

    public init(index: Int, tCapture: Double, tracking: String = "tracking") {
        self.index = index
        self.tCapture = tCapture
        self.tracking = tracking
    }
}

/// One picture on screen: report `display[]` entry. `frame`: the camera frame whose pose it
/// shows; `source`: the stylized frame whose content it shows; `refresh`: that pose was already
/// shown; `afterGap`: first after a background period. This app makes only new pictures of the
/// frame they were stylized from (source = frame, no refresh, no gap).
public struct DisplayEntry {
    public let t: Double
    public let frame: Int
    public let source: Int
    public let refresh: Bool
    public let afterGap: Bool
    public init(t: Double, frame: Int, source: Int? = nil, refresh: Bool = false, afterGap: Bool = false) {
        self.t = t; self.frame = frame; self.source = source ?? frame; self.refresh = refresh; self.afterGap = afterGap
    }
}

/// Port of simulator/metrics/timing.py `timing_metrics`, with the timeline rules every device
/// target follows (mobile/web/metrics.mjs `sessionMetrics`, checked by the shared vector
/// mobile/test-vectors/metrics-vector.json `rules`): the session starts at the first frame's
/// capture and ends at `tEnd`, and nothing after it counts; rates come from timestamps (display
/// FPS = 1 / mean display interval); shown = display entries with t <= tEnd and not `refresh`;
/// foreground = tEnd - first capture - background time (none in this app: it stops instead);
/// dropped = frames not on screen by tEnd and not skipped.
public enum Metrics {
    static let frozenS = 0.7
    static let eps = 1e-9

    /// numpy.percentile, default linear method with numpy's two-sided lerp; nil for no values.
    public static func percentile(_ values: [Double], _ p: Double) -> Double? {
        if values.isEmpty { return nil }
        let a = values.sorted()
        let n = a.count
        let q = p / 100
        let pos = Double(n) * q + (1 - q) - 1
        if pos >= Double(n - 1) { return a[n - 1] }
        if pos < 0 { return a[0] }
        let lo = Int(pos.rounded(.down))
        let t = pos - Double(lo)
        let diff = a[lo + 1] - a[lo]
        return t >= 0.5 ? a[lo + 1] - diff * (1 - t) : a[lo] + diff * t
    }

    /// numpy.median.
    public static func median(_ values: [Double]) -> Double {
        let a = values.sorted()
        let h = a.count / 2
        return a.count % 2 == 1 ? a[h] : (a[h - 1] + a[h]) / 2
    }

    static func percentiles(_ values: [Double], _ names: [Int]) -> [String: Any] {
        var out = [String: Any]()
        for p in names { out["p\(p)"] = percentile(values, Double(p)).map { $0 as Any } ?? NSNull() }
        return out
    }

    /// Percentiles in ms of intervals in seconds, with `n`: their sample count (timing.py `_intervals_ms`).
    static func intervalsMs(_ valuesS: [Double], _ names: [Int]) -> [String: Any] {
        var out = percentiles(valuesS.map { 1000 * $0 }, names)
        out["n"] = valuesS.count
        return out
    }

    /// Background time within [start, end] (timing.py `_away`).
    static func away(within start: Double, _ end: Double, _ background: [(Double, Double)]) -> Double {
        background.reduce(0.0) { $0 + max(0, min($1.1, end) - max($1.0, start)) }
    }

    static func displayed(_ f: FrameRecord, by tEnd: Double) -> Bool {
        if let t = f.tDisplay { return t <= tEnd }
        return false
    }

    public static func markDropped(_ frames: [FrameRecord], tEnd: Double) {
        for f in frames { f.dropped = !displayed(f, by: tEnd) && !f.skipped }
    }

    /// report `metrics` except flicker, memory and thermal (the caller adds those); NSNull for null.
    public static func session(frames: [FrameRecord], display: [DisplayEntry], displayHz: Double,
                               cameraFps: Double, tEnd: Double, minDisplayFps: Double?,
                               background: [(Double, Double)] = []) -> [String: Any] {
        var byIndex = [Int: FrameRecord]()
        for f in frames { byIndex[f.index] = f }
        let shown = display.filter { $0.t <= tEnd && !$0.refresh }
            .compactMap { e -> (t: Double, capture: Double, source: Double, afterGap: Bool)? in
                guard let aligned = byIndex[e.frame] else { return nil }
                return (e.t, aligned.tCapture, (byIndex[e.source] ?? aligned).tCapture, e.afterGap)
            }
        let latencies = shown.map { 1000 * ($0.t - $0.capture) }
        let intervals: [Double] = shown.count < 2 ? [] : (1..<shown.count).filter { !shown[$0].afterGap }
            .map { shown[$0].t - shown[$0 - 1].t }
        let cadence = intervals.isEmpty ? 0 : max(1 / cameraFps, median(intervals))
        let jankLimit = cadence + 1 / displayHz
        let janky = intervals.filter { $0 > jankLimit + eps }.count
        let done = frames.compactMap { f -> Double? in
            guard f.stylized, let end = f.tInferEnd, end <= tEnd else { return nil }
            return end
        }.sorted()
        var inferenceFps: Any = NSNull()
        if done.count >= 2 {
            let first = done.first!, last = done.last!
            let span = last - first - away(within: first, last, background)
            if span > 0 { inferenceFps = Double(done.count - 1) / span }
        }
        let inferenceIntervals: [Double] = done.count < 2 ? [] : (1..<done.count).filter { i in
            !background.contains { period in period.0 < done[i] && done[i - 1] < period.1 }
        }.map { done[$0] - done[$0 - 1] }
        let awayS = background.reduce(0.0) { $0 + $1.1 - $1.0 }
        let sessionStart = frames.first?.tCapture ?? 0
        let foregroundS = max(0, tEnd - sessionStart - awayS)
        // display FPS = 1 / mean display interval (timing.py `_display_rate`); a stall at the
        // end (last picture to the session end, foreground time) is one more interval when
        // longer than the median; no interval: pictures / foreground seconds
        let sessionEnd = sessionStart + foregroundS + awayS
        var displayTotal = intervals.reduce(0.0, +)
        var displaySamples = intervals.count
        let displayFps: Double
        if displaySamples > 0 && displayTotal > 0 {
            let lastShown = shown[shown.count - 1].t
            let stall = sessionEnd - lastShown - away(within: lastShown, sessionEnd, background)
            if stall > median(intervals) + eps {
                displayTotal += stall
                displaySamples += 1
            }
            displayFps = Double(displaySamples) / displayTotal
        } else {
            displaySamples = 0
            displayFps = foregroundS > 0 ? Double(shown.count) / foregroundS : 0.0
        }
        var latency = percentiles(latencies, [50, 95, 99])
        latency["mean"] = latencies.isEmpty ? NSNull() as Any : latencies.reduce(0, +) / Double(latencies.count) as Any
        let inferMs = frames.compactMap { f -> Double? in
            guard f.stylized, let s = f.tInferStart, let e = f.tInferEnd else { return nil }
            return 1000 * (e - s)
        }
        var slow: Any = NSNull()
        if let minFps = minDisplayFps, minFps != 0 {
            slow = intervals.filter { $0 > 1 / minFps + eps }.count
        }
        var m = [String: Any]()
        m["display_fps"] = displayFps
        m["inference_fps"] = inferenceFps
        m["latency_ms"] = latency
        m["content_age_ms"] = percentiles(shown.map { 1000 * ($0.t - $0.source) }, [50, 95])
        m["frame_interval_ms"] = intervalsMs(intervals, [50, 90, 95, 99]) // display_interval_ms's older name
        m["display_interval_ms"] = intervalsMs(intervals, [50, 90, 95, 99])
        m["inference_interval_ms"] = intervalsMs(inferenceIntervals, [50, 95])
        m["jank_pct"] = intervals.isEmpty ? 0.0 : 100.0 * Double(janky) / Double(intervals.count)
        m["slow_frames"] = slow
        m["frozen_frames"] = intervals.filter { $0 > frozenS }.count
        m["dropped_frames"] = frames.filter { !displayed($0, by: tEnd) && !$0.skipped }.count
        m["skipped_frames"] = frames.filter { $0.skipped }.count
        m["stylized_frames"] = frames.filter { $0.stylized }.count
        m["displayed_frames"] = shown.count
        m["inference_ms"] = percentiles(inferMs, [50, 95])
        m["samples"] = [
            "display_intervals": displaySamples,
            "inference_intervals": inferenceFps is NSNull ? 0 : done.count - 1,
            "latencies": latencies.count,
        ] as [String: Any]
        return m
    }
}

/// Port of simulator/metrics/verdict.py: budgets → checks → verdict.
public enum Verdict {
    public static let defaultBudgets: [(String, Double)] = [
        ("min_display_fps", 15), ("max_latency_p95_ms", 66), ("max_jank_pct", 10),
        ("max_flicker", 0.002), ("max_oom_events", 0),
    ]
    /// Budget name → path of its metric in `metrics`, in report order (`oom_count` passed apart).
    public static let budgetMetrics: [(String, [String])] = [
        ("min_display_fps", ["display_fps"]), ("max_latency_p95_ms", ["latency_ms", "p95"]),
        ("max_jank_pct", ["jank_pct"]), ("max_flicker", ["flicker", "warp_error"]),
        ("max_memory_mb", ["memory_peak_mb"]), ("max_oom_events", ["oom_count"]),
    ]

    public static func op(_ name: String) -> String { name.hasPrefix("min_") ? ">=" : "<=" }

    /// Defaults, the device's memory budget (20 % of RAM, as the profiles), then `expect`; ordered.
    public static func budgets(deviceBudgetMb: Double?, expect: [String: Double]) throws -> [(String, Double?)] {
        var all = [String: Double?]()
        for (k, v) in defaultBudgets { all[k] = v }
        all["max_memory_mb"] = deviceBudgetMb
        let known = budgetMetrics.map { $0.0 }
        for (k, v) in expect {
            guard known.contains(k) else { throw ArsimError("expect.\(k): unknown budget") }
            all[k] = v
        }
        return known.compactMap { k -> (String, Double?)? in
            guard let limit = all[k] else { return nil }
            return (k, limit)
        }
    }

    static func value(_ metrics: [String: Any], _ path: [String]) -> Double? {
        var node: Any? = metrics
        for key in path { node = (node as? [String: Any])?[key] }
        guard let d = jsonNumber(node) else { return nil }
        return d.isNaN ? nil : d
    }

    /// `{"passed", "checks": [{name, value, limit, op, passed}], "skipped": [names]}`.
    public static func evaluate(metrics: [String: Any], budgets: [(String, Double?)], oomCount: Int) throws -> [String: Any] {
        var values = metrics
        values["oom_count"] = oomCount
        var checks = [[String: Any]]()
        var skipped = [String]()
        for (name, limit) in budgets {
            guard let path = budgetMetrics.first(where: { $0.0 == name })?.1 else {
                throw ArsimError("unknown budget '\(name)'")
            }
            guard let v = value(values, path), let limit = limit else { skipped.append(name); continue }
            let comparison = op(name)
            let passed = comparison == ">=" ? v >= limit : v <= limit
            checks.append(["name": name, "value": v, "limit": limit, "op": comparison, "passed": passed])
        }
        return ["passed": checks.allSatisfy { $0["passed"] as? Bool == true }, "checks": checks, "skipped": skipped]
    }
}

/// A number of a JSONSerialization object or of a `[String: Any]` as a Double; nil for a
/// boolean (JSONSerialization's true/false are NSNumbers too, and a Swift Bool bridges to one),
/// NSNull or anything else. Booleans are the NSNumbers of C type "c" (CFBoolean on Apple
/// platforms, __NSCFBoolean in swift-corelibs-foundation, which has no CFGetTypeID); the numbers
/// JSONSerialization makes never are.
func jsonNumber(_ value: Any?) -> Double? {
    guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
    return number.doubleValue
}

/// A one-line problem for `ARSIM error <message>`.
public struct ArsimError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
