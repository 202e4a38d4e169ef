import Foundation

/// The iOS session recording of CONTRACT §6, its platform-free part: the folder's file names,
/// the `arsim-recording.json` header, one `frames.jsonl` line per frame, the quaternion of a
/// rotation and the video's rotation matrix. Read by simulator/scenario/importers/arsim_app.py.
/// (The ARKit/AVFoundation part is ArsimBench/SessionRecorder.swift.)
public enum SessionRecording {
    public static let format = "arsim-ios-recording/1"
    public static let headerFile = "arsim-recording.json"
    public static let videoFile = "video.mp4"
    public static let framesFile = "frames.jsonl"

    /// `ARCamera.TrackingState` as written in `frames.jsonl` (`limited` whatever its reason).
    public enum Tracking: String {
        case normal, limited, notAvailable
    }

    /// `arsim-recording.json`: W x H = `ARCamera.imageResolution` (the captured image as stored).
    public static func header(width: Int, height: Int, device: String, app: String, recorded: Date) throws -> Data {
        let object: [String: Any] = [
            "format": format, "video": videoFile, "frames": framesFile, "width": width, "height": height,
            "device": device, "app": app, "recorded": isoDate(recorded),
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// ISO 8601 in UTC, whole seconds: "2025-01-02T03:04:05Z".
    public static func isoDate(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// Unit quaternion [x, y, z, w] with w ≥ 0 of a row-major 3x3 rotation `r` (Shepperd's
    /// method: the branch with the largest diagonal term keeps the division well conditioned).
    public static func quaternion(_ r: [[Double]]) -> [Double] {
        let trace = r[0][0] + r[1][1] + r[2][2]
        var q: [Double]
        if trace > 0 {
            let s = 2 * (trace + 1).squareRoot()
            q = [(r[2][1] - r[1][2]) / s, (r[0][2] - r[2][0]) / s, (r[1][0] - r[0][1]) / s, s / 4]
        } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
            let s = 2 * (1 + r[0][0] - r[1][1] - r[2][2]).squareRoot()
            q = [s / 4, (r[0][1] + r[1][0]) / s, (r[0][2] + r[2][0]) / s, (r[2][1] - r[1][2]) / s]
        } else if r[1][1] > r[2][2] {
            let s = 2 * (1 + r[1][1] - r[0][0] - r[2][2]).squareRoot()
            q = [(r[0][1] + r[1][0]) / s, s / 4, (r[1][2] + r[2][1]) / s, (r[0][2] - r[2][0]) / s]
        } else {
            let s = 2 * (1 + r[2][2] - r[0][0] - r[1][1]).squareRoot()
            q = [(r[0][2] + r[2][0]) / s, (r[1][2] + r[2][1]) / s, s / 4, (r[1][0] - r[0][1]) / s]
        }
        if q[3] < 0 { q = q.map { -$0 } } // q and −q are one rotation: the w ≥ 0 one
        let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).squareRoot()
        // ARKit's float matrices are orthonormal to ~1e-7 only; + 0 turns −0.0 into 0.0 for the text.
        return q.map { $0 / n + 0 }
    }

    /// One `frames.jsonl` line (no newline) or nil when a value is not finite (the frame is
    /// then not recorded at all). `transform`: `ARCamera.transform`'s 16 floats column by column
    /// as simd stores them (camera-to-world, translation in the last column); `intrinsics`:
    /// `ARCamera.intrinsics`' 9 floats column by column (fx = [0], fy = [4], cx = [6], cy = [7]).
    /// t has 9 decimals (the importer reads it exactly); other numbers are the shortest text
    /// that reads back as the same Float/Double.
    public static func frameLine(timestamp: Double, transform m: [Float], intrinsics k: [Float], tracking: Tracking) -> String? {
        precondition(m.count == 16 && k.count == 9, "a 4x4 transform and a 3x3 intrinsics matrix")
        let p = [m[12], m[13], m[14]]
        let kk = [k[0], k[4], k[6], k[7]]
        let r = (0..<3).map { row in (0..<3).map { col in Double(m[col * 4 + row]) } }
        guard timestamp.isFinite, (p + kk).allSatisfy({ $0.isFinite }), r.joined().allSatisfy({ $0.isFinite }) else { return nil }
        let q = quaternion(r)
        guard q.allSatisfy({ $0.isFinite }) else { return nil }
        func list<T: LosslessStringConvertible>(_ values: [T]) -> String { "[" + values.map(\.description).joined(separator: ",") + "]" }
        return "{\"t\":" + String(format: "%.9f", timestamp) + ",\"p\":" + list(p) + ",\"q\":" + list(q)
            + ",\"k\":" + list(kk) + ",\"tracking\":\"" + tracking.rawValue + "\"}"
    }

    /// The video track's matrix (a, b, c, d, tx, ty) that shows the stored picture turned
    /// `degreesCW` clockwise (0, 90, 180, 270; the MP4 rotation metadata), translated back into
    /// view as Apple's own camera files are; `width` x `height`: the stored picture.
    public static func videoTransform(degreesCW: Int, width: Int, height: Int) -> (a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double) {
        let w = Double(width), h = Double(height)
        switch ((degreesCW % 360) + 360) % 360 {
        case 90: return (0, 1, -1, 0, h, 0)
        case 180: return (-1, 0, 0, -1, w, h)
        case 270: return (0, -1, 1, 0, 0, w)
        default: return (1, 0, 0, 1, 0, 0)
        }
    }
}

/// PROPOSED (see README.md): the launch arguments of a session recording (CONTRACT §6).
/// `-arsim.record <name>` puts the app in recording mode instead of playback; the playback
/// arguments do not apply and are refused.
public struct RecordParams: Equatable {
    public let name: String // the folder Documents/arsim/recordings/<name>/
    public let seconds: Int? // stop by itself after this long; nil: until tapped or the app is left

    public static let key = "arsim.record"
    static let known: Set<String> = [key, "arsim.record_seconds"]

    public init(name: String, seconds: Int?) { self.name = name; self.seconds = seconds }

    /// Whether the launch arguments ask for a recording rather than a playback run.
    public static func requested(_ args: [String: Any]) -> Bool { args[key] != nil }

    /// Throws ArsimError with the one-line message for `ARSIM error`.
    public static func parse(_ args: [String: Any]) throws -> RecordParams {
        if let other = args.keys.sorted().first(where: { $0.hasPrefix("arsim.") && !known.contains($0) }) {
            throw ArsimError("\(other) does not apply to a recording (\(key) is given)")
        }
        func text(_ key: String) -> String? {
            if let s = args[key] as? String { return s }
            return (args[key] as? NSNumber)?.stringValue
        }
        // not starting with ".": the name is a folder name, and "." or ".." would leave recordings/
        guard let name = text(key), RunParams.isId(name), !name.hasPrefix(".") else {
            throw ArsimError("\(key): expected [A-Za-z0-9._-]{1,64} not starting with '.', got '\(text(key) ?? "")'")
        }
        var seconds: Int?
        if let v = text("arsim.record_seconds") {
            guard let n = Int(v.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                throw ArsimError("arsim.record_seconds: expected an integer >= 1, got '\(v)'")
            }
            seconds = n
        }
        return RecordParams(name: name, seconds: seconds)
    }
}
