import Foundation

/// The playback parameters of CONTRACT §2, from the launch arguments
/// (`-arsim.scenario orbit-desk -arsim.run_id r1 …`): pass
/// `UserDefaults.standard.volatileDomain(forName: UserDefaults.argumentDomain)`, whose values
/// are strings (or numbers/booleans when the argument parsed as a property list).
public struct RunParams: Equatable {
    public let scenario: String
    public let runId: String
    public let model: String
    public let inputSize: Int? // nil: the card's default_size
    public let backend: String
    public let realtime: Bool
    public let warmupFrames: Int
    public let device: String? // PROPOSED for all targets (web has it): arsim profile id → device.id

    /// ONNX Runtime execution providers this build maps a backend name to (Stylizer.swift).
    public static let backends = ["coreml", "gpu-fp16", "cpu"]
    public static let defaultBackend = "coreml"
    static let known: Set<String> = ["arsim.scenario", "arsim.run_id", "arsim.model", "arsim.input_size",
                                     "arsim.backend", "arsim.realtime", "arsim.warmup_frames", "arsim.device"]

    /// `[A-Za-z0-9._-]{1,64}`: run ids and recording names (used as folder names).
    static func isId(_ v: String) -> Bool {
        (1...64).contains(v.count) && v.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// Throws ArsimError with the one-line message for `ARSIM error`.
    public static func parse(_ args: [String: Any]) throws -> RunParams {
        if let unknown = args.keys.sorted().first(where: { $0.hasPrefix("arsim.") && !known.contains($0) }) {
            throw ArsimError("unknown parameter \(unknown)")
        }
        func text(_ key: String) -> String? {
            if let s = args[key] as? String { return s }
            return (args[key] as? NSNumber)?.stringValue
        }
        func id(_ key: String) throws -> String {
            guard let v = text(key) else { throw ArsimError("missing \(key)") }
            guard isId(v) else { throw ArsimError("\(key): expected [A-Za-z0-9._-]{1,64}, got '\(v)'") }
            return v
        }
        func int(_ key: String, min: Int) throws -> Int? {
            guard let v = text(key) else { return nil }
            guard let n = Int(v.trimmingCharacters(in: .whitespaces)), n >= min else {
                throw ArsimError("\(key): expected an integer >= \(min), got '\(v)'")
            }
            return n
        }
        var realtime = true
        if let v = text("arsim.realtime")?.lowercased() {
            switch v {
            case "true", "yes", "1": realtime = true
            case "false", "no", "0": realtime = false
            default: throw ArsimError("arsim.realtime: expected true or false, got '\(v)'")
            }
        }
        let backend = text("arsim.backend") ?? defaultBackend
        guard backends.contains(backend) else {
            throw ArsimError("arsim.backend: unknown backend '\(backend)'; this build knows \(backends.joined(separator: ", "))")
        }
        let scenario = try id("arsim.scenario"), runId = try id("arsim.run_id"), model = try id("arsim.model")
        let inputSize = try int("arsim.input_size", min: 1), warmup = try int("arsim.warmup_frames", min: 0) ?? 0
        var device: String?
        if text("arsim.device") != nil { device = try id("arsim.device") }
        return RunParams(scenario: scenario, runId: runId, model: model, inputSize: inputSize, backend: backend,
                         realtime: realtime, warmupFrames: warmup, device: device)
    }
}
