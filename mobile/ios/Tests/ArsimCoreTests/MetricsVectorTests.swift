import Foundation
import XCTest
@testable import ArsimCore

/// The app's metric code (ArsimCore Metrics/Verdict) against the shared vector
/// mobile/test-vectors/metrics-vector.json, whose `expected` values come from the simulator's
/// Python (timing_metrics + evaluate); the web page and the Android app check the same file.
/// Path: $ARSIM_METRICS_VECTOR, else found from this file's location in the repository.
/// Case: {name, camera_fps, display_hz, t_end, background, budgets, oom_count, frames[],
/// display[], expected: {metrics, verdict}}; numbers agree within the vector's `tolerance`
/// (absolute); every other expected metric (display_fps from display intervals,
/// display_interval_ms / inference_interval_ms with their `n`, samples, ...) must be computed by
/// the app, except those in `measuredApart`, which enter the verdict from `expected`.
final class MetricsVectorTests: XCTestCase {
    /// Metrics the app does not compute from the timeline (flicker: no luminance here).
    static let measuredApart: Set<String> = ["flicker"]

    static var vectorURL: URL {
        if let path = ProcessInfo.processInfo.environment["ARSIM_METRICS_VECTOR"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath) // mobile/ios/Tests/ArsimCoreTests/<this file>
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("test-vectors/metrics-vector.json")
    }

    func number(_ v: Any?) -> Double? { jsonNumber(v) }

    /// Every number/null leaf of `expected` (but `measuredApart`) against the app's, within `tol`.
    func compare(_ name: String, _ path: [String], _ expected: Any, _ actual: [String: Any], tol: Double) {
        if let dict = expected as? [String: Any] {
            for (k, v) in dict { compare(name, path + [k], v, actual, tol: tol) }
            return
        }
        if let top = path.first, Self.measuredApart.contains(top) { return }
        let where_ = "\(name): metrics.\(path.joined(separator: "."))"
        var node: Any = actual
        for key in path {
            guard let d = node as? [String: Any], let next = d[key] else {
                return XCTFail("\(where_): not computed by the app")
            }
            node = next
        }
        if expected is NSNull || node is NSNull {
            XCTAssertTrue(expected is NSNull && node is NSNull, "\(where_): expected \(expected), got \(node)")
            return
        }
        guard let e = number(expected), let a = number(node) else { return XCTFail("\(where_): not numbers") }
        XCTAssertEqual(a, e, accuracy: tol, where_)
    }

    /// JSON booleans and Swift Bools are not numbers, JSON 0/1 and Swift numbers are (the one
    /// check that differs between Apple's Foundation and swift-corelibs-foundation).
    func testJsonNumberTellsBooleansFromNumbers() throws {
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(#"{"t": true, "f": false, "one": 1, "zero": 0, "x": 1.5, "n": null}"#.utf8)) as? [String: Any])
        XCTAssertNil(jsonNumber(parsed["t"]))
        XCTAssertNil(jsonNumber(parsed["f"]))
        XCTAssertNil(jsonNumber(parsed["n"]))
        XCTAssertEqual(jsonNumber(parsed["one"]), 1)
        XCTAssertEqual(jsonNumber(parsed["zero"]), 0)
        XCTAssertEqual(jsonNumber(parsed["x"]), 1.5)
        let swiftValues: [String: Any] = ["b": true, "i": 3, "d": 2.5]
        XCTAssertNil(jsonNumber(swiftValues["b"]))
        XCTAssertEqual(jsonNumber(swiftValues["i"]), 3)
        XCTAssertEqual(jsonNumber(swiftValues["d"]), 2.5)
        XCTAssertNil(Verdict.value(["jank_pct": true], ["jank_pct"]))
    }

    func testMetricsAndVerdictMatchTheSharedVector() throws {
        let url = Self.vectorURL
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("no shared vector at \(url.path)") }
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try XCTUnwrap(root["cases"] as? [[String: Any]])
        let tol = number(root["tolerance"]) ?? 1e-6
        XCTAssertFalse(cases.isEmpty)
        for (i, c) in cases.enumerated() {
            let name = c["name"] as? String ?? "case \(i)"
            let frames = try XCTUnwrap(c["frames"] as? [[String: Any]]).map { f -> FrameRecord in
                let r = FrameRecord(index: (f["index"] as? NSNumber)?.intValue ?? 0,
                                    tCapture: number(f["t_capture"]) ?? 0, tracking: f["tracking"] as? String ?? "tracking")
                r.stylized = f["stylized"] as? Bool ?? false
                r.tInferStart = number(f["t_infer_start"])
                r.tInferEnd = number(f["t_infer_end"])
                r.tDisplay = number(f["t_display"])
                r.skipped = f["skipped"] as? Bool ?? false
                return r
            }
            let display = try XCTUnwrap(c["display"] as? [[String: Any]]).map {
                DisplayEntry(t: number($0["t"]) ?? 0, frame: ($0["frame"] as? NSNumber)?.intValue ?? -1,
                             source: ($0["source"] as? NSNumber)?.intValue, refresh: $0["refresh"] as? Bool ?? false,
                             afterGap: $0["after_gap"] as? Bool ?? false)
            }
            let background = (c["background"] as? [[NSNumber]] ?? []).map { ($0[0].doubleValue, $0[1].doubleValue) }
            let budgetsIn = c["budgets"] as? [String: Any] ?? [:]
            let budgets: [(String, Double?)] = Verdict.budgetMetrics.map { $0.0 }
                .filter { budgetsIn.keys.contains($0) }.map { ($0, number(budgetsIn[$0])) }
            let displayHz = try XCTUnwrap(number(c["display_hz"]), "\(name): display_hz")
            let cameraFps = try XCTUnwrap(number(c["camera_fps"] ?? c["fps"]), "\(name): camera_fps")
            let tEnd = try XCTUnwrap(number(c["t_end"]), "\(name): t_end")
            let metrics = Metrics.session(frames: frames, display: display, displayHz: displayHz, cameraFps: cameraFps,
                                          tEnd: tEnd, minDisplayFps: budgets.first(where: { $0.0 == "min_display_fps" })?.1,
                                          background: background)
            let expected = try XCTUnwrap(c["expected"] as? [String: Any])
            let expectedMetrics = try XCTUnwrap(expected["metrics"] as? [String: Any])
            compare(name, [], expectedMetrics, metrics, tol: tol)

            // metrics a device measures apart (memory, flicker) come from the case into the verdict
            let judged = expectedMetrics.merging(metrics) { _, app in app }
            let oomCount = (c["oom_count"] as? NSNumber)?.intValue ?? (c["oom_events"] as? [Any])?.count ?? 0
            let verdict = try Verdict.evaluate(metrics: judged, budgets: budgets, oomCount: oomCount)
            let want = try XCTUnwrap(expected["verdict"] as? [String: Any])
            XCTAssertEqual(verdict["passed"] as? Bool, want["passed"] as? Bool, "\(name): verdict.passed")
            if let skipped = want["skipped"] as? [String] {
                XCTAssertEqual(verdict["skipped"] as? [String], skipped, "\(name): verdict.skipped")
            }
            let checks = verdict["checks"] as? [[String: Any]] ?? []
            let wantChecks = want["checks"] as? [[String: Any]] ?? []
            XCTAssertEqual(checks.count, wantChecks.count, "\(name): number of checks")
            for (got, w) in zip(checks, wantChecks) {
                XCTAssertEqual(got["name"] as? String, w["name"] as? String, name)
                XCTAssertEqual(got["op"] as? String, w["op"] as? String, name)
                XCTAssertEqual(got["passed"] as? Bool, w["passed"] as? Bool, "\(name): \(w["name"] ?? "")")
                XCTAssertEqual(number(got["value"]) ?? .nan, number(w["value"]) ?? 0, accuracy: tol, name)
            }
        }
    }
}
