import Foundation

/// What report.json says about the run besides the recorded timeline.
public struct RunInfo {
    public let params: RunParams
    public let scenario: Scenario
    public let modelPath: String
    public let card: ModelCard
    public let inputSize: Int
    public let generatedBy: String // "<app> <version>"
    public let device: [String: Any] // id, name, display_hz, ram_mb, os
    public let displayHz: Double
    public let budgets: [(String, Double?)]

    public init(params: RunParams, scenario: Scenario, modelPath: String, card: ModelCard, inputSize: Int,
                generatedBy: String, device: [String: Any], displayHz: Double, budgets: [(String, Double?)]) {
        self.params = params; self.scenario = scenario; self.modelPath = modelPath; self.card = card
        self.inputSize = inputSize; self.generatedBy = generatedBy; self.device = device
        self.displayHz = displayHz; self.budgets = budgets
    }
}

/// report.json (`arsim-report/1`, CONTRACT §4, mobile/report.schema.json).
public enum Report {
    static func orNull<T>(_ v: T?) -> Any { v.map { $0 as Any } ?? NSNull() }

    /// `tEnd`: the end of the session on the report clock (nothing after it counts).
    public static func build(_ info: RunInfo, _ rec: Recorder, tEnd: Double, complete: Bool, reason: String?) throws -> [String: Any] {
        let sc = info.scenario
        Metrics.markDropped(rec.frames, tEnd: tEnd)
        let minFps = info.budgets.first(where: { $0.0 == "min_display_fps" })?.1
        var metrics = Metrics.session(frames: rec.frames, display: rec.display, displayHz: info.displayHz,
                                      cameraFps: sc.fps, tEnd: tEnd, minDisplayFps: minFps)
        // Not measured on the device: null, never 0 (CONTRACT §4); the harness may compute flicker.
        metrics["flicker"] = ["warp_error": NSNull(), "warp_error_p95": NSNull(), "luminance_flicker": NSNull()]
        metrics["memory_peak_mb"] = orNull(rec.memoryPeakMb)
        metrics["thermal_factor_max"] = NSNull()
        var budgets = [String: Any]()
        for (name, limit) in info.budgets { budgets[name] = orNull(limit) }
        let verdict = try Verdict.evaluate(metrics: metrics, budgets: info.budgets, oomCount: rec.oomEvents.count)
        let scenario: [String: Any] = [
            "name": sc.name, "path": sc.dir.path, "frames": sc.frameCount, "duration_s": sc.durationS,
            "fps": sc.fps, "width": sc.camera.width, "height": sc.camera.height,
        ]
        let model: [String: Any] = [
            "name": info.params.model, "path": info.modelPath,
            "flops": orNull(info.card.flops[String(info.inputSize)]), "parameters": orNull(info.card.parameters),
        ]
        // extra: how the run was played; source "scenario" = frames + poses.txt, no ARKit tracking
        let playback: [String: Any] = [
            "realtime": info.params.realtime, "warmup_frames": info.params.warmupFrames, "t_end": tEnd, "source": "scenario",
        ]
        let frames: [[String: Any]] = rec.frames.map { f in
            ["index": f.index, "t_capture": f.tCapture, "tracking": f.tracking, "stylized": f.stylized,
             "t_infer_start": orNull(f.tInferStart), "t_infer_end": orNull(f.tInferEnd),
             "input_size": orNull(f.inputSize), "t_display": orNull(f.tDisplay),
             "dropped": f.dropped, "skipped": f.skipped, "replaced": f.replaced]
        }
        let display: [[String: Any]] = rec.display.map { d in
            ["t": d.t, "frame": d.frame, "source": d.frame, "kind": "new", "refresh": false]
        }
        let series: [String: Any] = ["t": rec.memoryT, "memory_mb": rec.memoryMb]
        var report: [String: Any] = [
            "schema": "arsim-report/1", "complete": complete, "incomplete_reason": orNull(reason),
            "generated_by": info.generatedBy, "target": "ios", "run_id": info.params.runId,
        ]
        report["scenario"] = scenario
        report["device"] = info.device
        report["backend"] = info.params.backend
        report["model"] = model
        report["input_size"] = info.inputSize
        report["playback"] = playback
        report["budgets"] = budgets
        report["metrics"] = metrics
        report["oom_events"] = rec.oomEvents
        report["verdict"] = verdict
        report["frames"] = frames
        report["display"] = display
        report["series"] = series
        return report
    }

    /// Atomic: Data.write(.atomic) writes a temporary file and renames it over report.json.
    public static func write(_ report: [String: Any], runDir: URL) throws -> URL {
        try FileManager.default.createDirectory(at: runDir, withIntermediateDirectories: true)
        let url = runDir.appendingPathComponent("report.json")
        let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url, options: .atomic)
        return url
    }
}
